//! Screens for the kvnc benches: fixture images and replay sequences at the size a bench
//! captures, and the dongle JPEGs of them.

use std::sync::Arc;

use image::RgbImage;
use image::imageops::{FilterType, resize};

use crate::dongle::dongle_jpeg;

/// A still from `fixtures/`, e.g. `desktop-1080p.png`.
pub fn fixture(path: &str) -> RgbImage {
    image::open(crate::repo_root().join("fixtures").join(path)).expect("fixture").to_rgb8()
}

/// The frames of `fixtures/sequences/NAME/` (720p) at `width`x`height`, scaled as a capture
/// device would scale that screen.
pub fn sequence(name: &str, width: u32, height: u32) -> Vec<RgbImage> {
    let dir = crate::repo_root().join("fixtures/sequences").join(name);
    let mut files: Vec<_> = std::fs::read_dir(dir).expect("sequence").map(|e| e.expect("entry").path()).collect();
    files.retain(|file| file.extension().is_some_and(|e| e == "png"));
    files.sort();
    files
        .iter()
        .map(|file| {
            let frame = image::open(file).expect("frame").to_rgb8();
            if frame.dimensions() == (width, height) {
                frame
            } else {
                resize(&frame, width, height, FilterType::Triangle)
            }
        })
        .collect()
}

/// A dongle's JPEG of `image`: baseline 4:2:2, quality 80.
pub fn dongle_jpeg_of(image: &RgbImage) -> Arc<[u8]> {
    dongle_jpeg(image.as_raw(), image.width() as usize, image.height() as usize, 80).into()
}
