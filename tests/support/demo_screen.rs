//! What the demo target should look like, for comparing against what a viewer shows.

use kvnc::demo::layout::CLOCK_RECT;
use kvnc::demo::{DemoState, render};

use crate::viewers::RgbImage;

/// The demo target's screen for `state` as RGB (the clock is left out of every comparison).
pub fn expected(state: &DemoState) -> RgbImage {
    RgbImage::from_frame(&render(state, "00:00:00"))
}

/// Pixels outside the clock whose channels differ from `expected` by more than `tolerance`;
/// `usize::MAX` when the sizes differ.
pub fn differences(actual: &RgbImage, expected: &RgbImage, tolerance: u8) -> usize {
    if (actual.width, actual.height) != (expected.width, expected.height) {
        return usize::MAX;
    }
    let in_clock = |x: usize, y: usize| {
        let (cx, cy) = (usize::from(CLOCK_RECT.x), usize::from(CLOCK_RECT.y));
        (cx..cx + usize::from(CLOCK_RECT.width)).contains(&x) && (cy..cy + usize::from(CLOCK_RECT.height)).contains(&y)
    };
    let mut count = 0;
    for y in 0..actual.height {
        for x in 0..actual.width {
            let (a, e) = (actual.pixel(x, y), expected.pixel(x, y));
            if !in_clock(x, y) && a.iter().zip(e).any(|(a, e)| a.abs_diff(e) > tolerance) {
                count += 1;
            }
        }
    }
    count
}

/// PSNR of `actual` to `expected` in dB outside the clock (see [`RgbImage::psnr`]); None when
/// the sizes differ.
pub fn psnr(actual: &RgbImage, expected: &RgbImage) -> Option<f64> {
    if (actual.width, actual.height) != (expected.width, expected.height) {
        return None;
    }
    let mut masked = actual.clone();
    let (cx, cy) = (usize::from(CLOCK_RECT.x), usize::from(CLOCK_RECT.y));
    for y in cy..(cy + usize::from(CLOCK_RECT.height)).min(actual.height) {
        for x in cx..(cx + usize::from(CLOCK_RECT.width)).min(actual.width) {
            masked.set_pixel(x, y, expected.pixel(x, y));
        }
    }
    masked.psnr(expected)
}

/// The console's lines as read from `image` (see `screen::read_console`).
pub fn console(image: &RgbImage) -> Vec<String> {
    crate::screen::read_console(&image.rgb, image.width, image.height)
}
