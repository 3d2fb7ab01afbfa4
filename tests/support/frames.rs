//! Synthetic frames and replay directories for pipeline tests.

use crate::viewers::{RgbImage, TempDir, save_png};

/// A test pattern that differs per size and per seed.
pub fn pattern(width: usize, height: usize, seed: u8) -> RgbImage {
    let mut image = RgbImage::filled(width, height, [0, 0, 0]);
    for y in 0..height {
        for x in 0..width {
            let v = [(x / 7) as u8 ^ seed, (y / 5) as u8, ((x + y) / 11) as u8 ^ seed.rotate_left(3)];
            image.set_pixel(x, y, v);
        }
    }
    image
}

/// A replay directory of `frames`, played in order.
pub fn replay_dir(frames: &[RgbImage]) -> TempDir {
    let dir = TempDir::new("kvnc-pipeline-replay");
    for (i, frame) in frames.iter().enumerate() {
        save_png(frame, dir.path().join(format!("{i:03}.png")));
    }
    dir
}
