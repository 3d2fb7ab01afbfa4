//! Damage detection by comparing frames, like TigerVNC's `ComparingUpdateTracker`.
//!
//! A capture source (HDMI grabber) gives whole frames with no hint of what changed, so the
//! detector keeps a copy of the previous frame and compares: in 64×64 blocks, each block's first
//! and last differing rows, then unchanged 8-pixel column strips trimmed from its left and right,
//! then the outer strips narrowed to the exact changed columns.
//! The resulting rectangles become a [`Region`]; the copy is updated only where it changed.
//!
//! Everything is compared as byte slices (`==` on `[u8]` is `memcmp`, vectorised on both x86 and
//! aarch64): first a 64-row stripe of the frame at once (rows are packed, so a stripe is one
//! contiguous slice — an unchanged frame costs one `memcmp` per stripe), then full rows to find
//! the stripe's changed rows, then the blocks' row spans inside those, then 32-byte strips.

use crate::frame::{Frame, NATIVE_BYTES_PER_PIXEL, Rect};
use crate::region::Region;

/// Side of the square comparison blocks, in pixels (TigerVNC's `BLOCK_SIZE`).
pub const BLOCK_SIZE: u16 = 64;

/// Width of the column strips trimmed from a changed block's sides, in pixels.
pub const STRIP_WIDTH: u16 = BLOCK_SIZE / 8;

const BLOCK: usize = BLOCK_SIZE as usize;
const STRIP_BYTES: usize = STRIP_WIDTH as usize * NATIVE_BYTES_PER_PIXEL;

/// Finds the parts of a frame that differ from the previous one (see the module docs).
#[derive(Debug, Default)]
pub struct DamageDetector {
    /// The previous frame, as far as it has been reported: `None` before the first one.
    shadow: Option<Frame>,
    /// Per-compare scratch for the changed blocks' rectangles.
    rects: Vec<Rect>,
}

impl DamageDetector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The previous frame (as of the last `compare`), if any.
    pub fn previous(&self) -> Option<&Frame> {
        self.shadow.as_ref()
    }

    /// Forgets the previous frame: the next `compare` reports the whole frame.
    pub fn reset(&mut self) {
        self.shadow = None;
    }

    /// What changed since the previous call. The first frame, and any frame whose size differs
    /// from the previous one, is changed everywhere.
    pub fn compare(&mut self, frame: &Frame) -> Region {
        let shadow = match &self.shadow {
            Some(shadow) if shadow.width() == frame.width() && shadow.height() == frame.height() => shadow,
            _ => {
                self.shadow = Some(frame.clone());
                return Region::from_rect(frame.bounds());
            }
        };
        let width = usize::from(frame.width());
        let height = usize::from(frame.height());
        let stride = frame.stride();
        let new = frame.pixels();
        let old = shadow.pixels();
        self.rects.clear();

        for stripe_y in (0..height).step_by(BLOCK) {
            let stripe_end = (stripe_y + BLOCK).min(height);
            if new[stripe_y * stride..stripe_end * stride] == old[stripe_y * stride..stripe_end * stride] {
                continue;
            }
            let row_differs = |y: usize| new[y * stride..(y + 1) * stride] != old[y * stride..(y + 1) * stride];
            let Some(top) = (stripe_y..stripe_end).find(|&y| row_differs(y)) else { continue };
            let bottom = (top..stripe_end).rev().find(|&y| row_differs(y)).unwrap_or(top);

            for block_x in (0..width).step_by(BLOCK) {
                let block_end = (block_x + BLOCK).min(width);
                let span = |y: usize| {
                    y * stride + block_x * NATIVE_BYTES_PER_PIXEL..y * stride + block_end * NATIVE_BYTES_PER_PIXEL
                };
                let block_differs = |y: usize| new[span(y)] != old[span(y)];
                let Some(y0) = (top..=bottom).find(|&y| block_differs(y)) else { continue };
                let y1 = (y0..=bottom).rev().find(|&y| block_differs(y)).unwrap_or(y0);

                // One bit per strip that differs in some row; stop once all of them do.
                let all = (1u32 << (block_end - block_x).div_ceil(usize::from(STRIP_WIDTH))) - 1;
                let mut mask = 0;
                for y in y0..=y1 {
                    mask |= strip_mask(&new[span(y)], &old[span(y)]);
                    if mask == all {
                        break;
                    }
                }
                let first_strip = mask.trailing_zeros() as usize;
                let end_strip = 32 - mask.leading_zeros() as usize;
                let strips_x0 = block_x + first_strip * usize::from(STRIP_WIDTH);
                let strips_x1 = (block_x + end_strip * usize::from(STRIP_WIDTH)).min(block_end);
                // The outer strips are narrowed to the exact changed columns, so that a character
                // cell goes out at its own size rather than rounded out to the 8-pixel strips
                // (at most 8 columns of `y1 - y0 + 1` pixels each side).
                let column_differs = |x: usize| {
                    (y0..=y1).any(|y| {
                        let at = y * stride + x * NATIVE_BYTES_PER_PIXEL;
                        new[at..at + NATIVE_BYTES_PER_PIXEL] != old[at..at + NATIVE_BYTES_PER_PIXEL]
                    })
                };
                let Some(x0) = (strips_x0..strips_x1).find(|&x| column_differs(x)) else {
                    continue; // Unreachable: some strip of a differing row differs.
                };
                let x1 = (x0..strips_x1).rev().find(|&x| column_differs(x)).map_or(strips_x1, |x| x + 1);
                // All coordinates are within the u16-sized frame.
                self.rects.push(Rect::new(x0 as u16, y0 as u16, (x1 - x0) as u16, (y1 + 1 - y0) as u16));
            }
        }
        if !self.rects.is_empty() {
            // Outside the rects the frames are equal, so the new frame is the next reference;
            // frames share their pixels, so this copies nothing.
            self.shadow = Some(frame.clone());
        }
        Region::from_rects(&self.rects)
    }
}

/// Bit `i` set when the `i`th 8-pixel strip of one block row differs (the last may be partial).
fn strip_mask(new: &[u8], old: &[u8]) -> u32 {
    let (new_strips, new_rest) = new.as_chunks::<STRIP_BYTES>();
    let (old_strips, old_rest) = old.as_chunks::<STRIP_BYTES>();
    let mut mask = 0;
    for (i, (a, b)) in new_strips.iter().zip(old_strips).enumerate() {
        mask |= u32::from(a != b) << (i & 31);
    }
    if new_rest != old_rest {
        mask |= 1 << (new_strips.len() & 31);
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame with some texture, so that unchanged is not all zero.
    fn textured(width: u16, height: u16) -> Frame {
        let mut frame = Frame::new(width, height);
        for (i, px) in frame.pixels_mut().chunks_exact_mut(4).enumerate() {
            px.copy_from_slice(&((i as u32).wrapping_mul(2_654_435_761) & 0x00ff_ffff).to_le_bytes());
        }
        frame
    }

    fn set(frame: &mut Frame, x: u16, y: u16, rgb: u32) {
        frame.fill_rect(&Rect::new(x, y, 1, 1), rgb);
    }

    fn flip(frame: &mut Frame, x: u16, y: u16) {
        let rgb = frame.pixel(x, y) ^ 0x0080_0001;
        set(frame, x, y, rgb);
    }

    /// The expected damage by the definition, pixel by pixel: each 64×64 block's bounding box of
    /// changed pixels.
    fn reference(old: &Frame, new: &Frame) -> Region {
        let mut rects = Vec::new();
        for by in (0..new.height()).step_by(BLOCK) {
            for bx in (0..new.width()).step_by(BLOCK) {
                let (mut x0, mut y0, mut x1, mut y1) = (u16::MAX, u16::MAX, 0, 0);
                for y in by..(by + BLOCK_SIZE).min(new.height()) {
                    for x in bx..(bx + BLOCK_SIZE).min(new.width()) {
                        if old.pixel(x, y) != new.pixel(x, y) {
                            (x0, y0) = (x0.min(x), y0.min(y));
                            (x1, y1) = (x1.max(x + 1), y1.max(y + 1));
                        }
                    }
                }
                if x0 < x1 {
                    rects.push(Rect::new(x0, y0, x1 - x0, y1 - y0));
                }
            }
        }
        Region::from_rects(&rects)
    }

    #[test]
    fn identical_frame_is_no_damage() {
        let frame = textured(1000, 700);
        let mut detector = DamageDetector::new();
        assert_eq!(detector.compare(&frame).rects(), &[frame.bounds()], "first frame");
        assert!(detector.compare(&frame).is_empty());
        assert!(detector.compare(&frame.clone()).is_empty());
    }

    #[test]
    fn one_pixel_is_one_pixel() {
        let mut frame = textured(1000, 700);
        let mut detector = DamageDetector::new();
        detector.compare(&frame);
        flip(&mut frame, 100, 70);
        assert_eq!(detector.compare(&frame).rects(), &[Rect::new(100, 70, 1, 1)]);
        assert!(detector.compare(&frame).is_empty(), "the shadow took the change");
        // Right edge: 1003 = 15 * 64 + 43, so the last block's last strip is partial.
        let mut frame = textured(1003, 701);
        detector.compare(&frame);
        flip(&mut frame, 1002, 700);
        assert_eq!(detector.compare(&frame).rects(), &[Rect::new(1002, 700, 1, 1)]);
    }

    #[test]
    fn changes_in_several_blocks() {
        let mut frame = textured(1000, 700);
        let mut detector = DamageDetector::new();
        detector.compare(&frame);
        // A glyph-sized change across a block corner (sent at its own size, not rounded out to
        // 8-pixel strips), two single pixels in one block, the bottom-right pixel.
        for y in 56..72 {
            for x in 60..70 {
                flip(&mut frame, x, y);
            }
        }
        flip(&mut frame, 500, 300);
        flip(&mut frame, 509, 310);
        flip(&mut frame, 999, 699);
        let damage = detector.compare(&frame);
        let mut expected = Region::new();
        for rect in [
            Rect::new(60, 56, 4, 8),
            Rect::new(64, 56, 6, 8),
            Rect::new(60, 64, 4, 8),
            Rect::new(64, 64, 6, 8),
            Rect::new(500, 300, 10, 11),
            Rect::new(999, 699, 1, 1),
        ] {
            expected.union_rect(rect);
        }
        assert_eq!(damage, expected);
        assert_eq!(detector.previous(), Some(&frame));
    }

    #[test]
    fn random_changes_match_the_reference() {
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        for (width, height) in [(333, 201), (259, 130), (64, 64), (65, 1), (1, 130), (128, 128)] {
            let mut detector = DamageDetector::new();
            let mut frame = textured(width, height);
            detector.compare(&frame);
            for round in 0..30 {
                let before = frame.clone();
                let changes = [0, 1, 3, 20, 200][round % 5];
                for _ in 0..changes {
                    let (x, y) = (rng.u16(..width), rng.u16(..height));
                    let (w, h) = (rng.u16(1..=20), rng.u16(1..=20));
                    frame.fill_rect(&Rect::new(x, y, w, h), rng.u32(..=0x00ff_ffff));
                }
                let damage = detector.compare(&frame);
                assert_eq!(damage, reference(&before, &frame), "{width}x{height} round {round}");
                assert_eq!(detector.previous(), Some(&frame), "shadow updated");
            }
        }
    }

    #[test]
    fn whole_frame_change() {
        let frame = textured(1000, 700);
        let mut other = frame.clone();
        for b in other.pixels_mut() {
            *b ^= 0x11;
        }
        let mut detector = DamageDetector::new();
        detector.compare(&frame);
        assert_eq!(detector.compare(&other).rects(), &[other.bounds()]);
        assert_eq!(detector.compare(&frame).rects(), &[frame.bounds()]);
    }

    #[test]
    fn tiny_and_empty_frames() {
        let mut detector = DamageDetector::new();
        let mut frame = Frame::new(1, 1);
        assert_eq!(detector.compare(&frame).rects(), &[Rect::new(0, 0, 1, 1)]);
        assert!(detector.compare(&frame).is_empty());
        set(&mut frame, 0, 0, 0x00ff_ffff);
        assert_eq!(detector.compare(&frame).rects(), &[Rect::new(0, 0, 1, 1)]);

        for (w, h) in [(0, 0), (0, 10), (10, 0)] {
            let empty = Frame::new(w, h);
            assert!(detector.compare(&empty).is_empty());
            assert!(detector.compare(&empty).is_empty());
        }
    }

    #[test]
    fn size_change_is_full_damage_and_resets() {
        let mut detector = DamageDetector::new();
        let small = textured(640, 480);
        detector.compare(&small);
        let mut big = textured(800, 600);
        assert_eq!(detector.compare(&big).rects(), &[big.bounds()]);
        assert!(detector.compare(&big).is_empty());
        flip(&mut big, 799, 599);
        assert_eq!(detector.compare(&big).rects(), &[Rect::new(799, 599, 1, 1)]);
        // Same pixel count, other shape.
        let tall = textured(600, 800);
        assert_eq!(detector.compare(&tall).rects(), &[tall.bounds()]);
        detector.reset();
        assert_eq!(detector.compare(&tall).rects(), &[tall.bounds()]);
        assert!(detector.compare(&tall).is_empty());
    }
}
