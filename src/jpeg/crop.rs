//! Lossless crops of a JPEG frame: the DCT coefficients of a part of the frame, re-packed as a
//! JPEG of their own by libjpeg-turbo's transform (no IDCT, no re-compression, the source's
//! quality). A viewer that takes Tight JPEG gets a small change of a dongle's frame this way,
//! without the frame being decoded to pixels (a crop costs one Huffman pass over the frame,
//! about 40 % of a full decode).

use rfb::Rect;
use rfb::region::Region;
use turbojpeg::{OutputBuf, Transform, TransformCrop, Transformer};

use super::JpegError;

/// More crops than this for one update cost more than decoding the frame once.
pub const MAX_CROPS: usize = 2;

/// The rects to crop so that `region` is covered: every edge moved out to the MCU grid (a crop
/// must start on it; ends are moved too so that merged rects still start on it), clipped to the
/// `width`x`height` frame, merged into at most [`MAX_CROPS`] rects. `None` when the region
/// does not reduce to so few rects.
pub fn crop_rects(region: &Region, mcu: (u16, u16), width: u16, height: u16) -> Option<Vec<Rect>> {
    let align_down = |v: u16, step: u16| v - v % step.max(1);
    let align_up = |v: u32, step: u16, limit: u16| {
        let step = u32::from(step.max(1));
        (v.div_ceil(step) * step).min(u32::from(limit)) as u16
    };
    let aligned: Vec<Rect> = region
        .rects()
        .iter()
        .map(|r| {
            let (x, y) = (align_down(r.x, mcu.0), align_down(r.y, mcu.1));
            let right = align_up(u32::from(r.x) + u32::from(r.width), mcu.0, width);
            let bottom = align_up(u32::from(r.y) + u32::from(r.height), mcu.1, height);
            Rect::new(x, y, right.saturating_sub(x), bottom.saturating_sub(y))
        })
        .filter(|r| !r.is_empty())
        .collect();
    let mut merged = Region::from_rects(&aligned);
    merged.simplify(MAX_CROPS);
    (!merged.is_empty() && merged.rects().len() <= MAX_CROPS).then(|| merged.rects().to_vec())
}

/// Crops `jpeg` to `rect`, whose top left corner must lie on the MCU grid (see [`crop_rects`]).
/// The result is exactly `rect`'s size, with Huffman tables.
pub fn crop(jpeg: &[u8], rect: Rect) -> Result<Vec<u8>, JpegError> {
    let mut transform = Transform::default();
    transform.crop = Some(TransformCrop {
        x: usize::from(rect.x),
        y: usize::from(rect.y),
        width: Some(usize::from(rect.width)),
        height: Some(usize::from(rect.height)),
    });
    transform.perfect = true;
    let mut out = OutputBuf::new_owned();
    Transformer::new()?.transform(&transform, jpeg, &mut out)?;
    Ok(out.to_vec())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::validate;
    use super::*;

    #[test]
    fn rects_are_moved_out_to_the_mcu_grid_and_merged() {
        let region = Region::from_rect(Rect::new(101, 50, 5, 9));
        assert_eq!(crop_rects(&region, (16, 8), 320, 240), Some(vec![Rect::new(96, 48, 16, 16)]));
        // At the frame's edge the crop ends with the frame.
        let edge = Region::from_rect(Rect::new(310, 235, 10, 5));
        assert_eq!(crop_rects(&edge, (16, 16), 318, 240), Some(vec![Rect::new(304, 224, 14, 16)]));
        // Two far apart: two crops; three bands: merged into two groups.
        let two = Region::from_rects(&[Rect::new(0, 0, 8, 8), Rect::new(300, 200, 8, 8)]);
        assert_eq!(crop_rects(&two, (16, 8), 320, 240).map(|r| r.len()), Some(2));
        let three = Region::from_rects(&[Rect::new(0, 0, 8, 8), Rect::new(100, 100, 8, 8), Rect::new(300, 200, 8, 8)]);
        let crops = crop_rects(&three, (16, 8), 320, 240).expect("merged");
        assert!(crops.len() <= MAX_CROPS);
        assert!(crops.iter().all(|r| r.x % 16 == 0 && r.y % 8 == 0));
        assert!(three.rects().iter().all(|r| crops.iter().any(|c| c.intersect(r) == *r)), "{crops:?} covers");
        assert_eq!(crop_rects(&Region::new(), (16, 8), 320, 240), None);
    }

    #[test]
    fn a_crop_is_the_same_picture_as_that_part_of_the_frame() {
        let (w, h) = (320, 240);
        let jpeg = encode_rgb(&synthetic_rgb(w, h), w, h, 85);
        let whole = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::RGB).unwrap();
        for rect in [Rect::new(96, 48, 40, 24), Rect::new(0, 0, 16, 8), Rect::new(304, 232, 16, 8)] {
            let cropped = crop(&jpeg, rect).unwrap();
            let info = validate(&cropped).expect("a valid JPEG");
            assert!(info.has_dht, "browsers need the tables");
            assert_eq!((info.width, info.height), (rect.width, rect.height));
            let part = turbojpeg::decompress(&cropped, turbojpeg::PixelFormat::RGB).unwrap();
            // The same coefficients; only chroma upsampling at the crop's edges may differ.
            let mut worst = 0;
            for y in 0..usize::from(rect.height) {
                for x in 0..usize::from(rect.width) {
                    let a = &part.pixels[(y * part.width + x) * 3..][..3];
                    let b = &whole.pixels[((y + usize::from(rect.y)) * w + x + usize::from(rect.x)) * 3..][..3];
                    worst = a.iter().zip(b).map(|(a, b)| a.abs_diff(*b)).fold(worst, u8::max);
                }
            }
            assert!(worst <= 4, "{rect:?}: off by {worst}");
        }
        assert!(crop(&jpeg, Rect::new(5, 3, 16, 8)).is_err(), "not on the MCU grid");
    }
}
