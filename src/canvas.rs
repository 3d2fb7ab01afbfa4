//! Drawing on a native frame: filled rectangles and text in an 8×8 font scaled 2× (16 px cells).
//! What the demo target and the capture status screens draw with.

use rfb::frame::NATIVE_BYTES_PER_PIXEL;
use rfb::{Frame, Rect};

/// Width and height of one character cell drawn by [`draw_text`].
pub const CELL: u16 = 16;

/// Draws the glyphs of `text` (font8x8 scaled 2×) with their top-left at (`x`, `y`); only the
/// glyphs' pixels are written, the background stays. Characters off the frame are clipped.
pub fn draw_text(frame: &mut Frame, x: u16, y: u16, text: &str, rgb: u32) {
    let mut left = usize::from(x);
    for character in text.chars() {
        let glyph = font8x8::legacy::BASIC_LEGACY.get(character as usize).copied().unwrap_or_default();
        for (row, bits) in glyph.into_iter().enumerate() {
            for column in (0..8).filter(|column| bits & (1 << column) != 0) {
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    put_pixel(frame, left + 2 * column + dx, usize::from(y) + 2 * row + dy, rgb);
                }
            }
        }
        left += usize::from(CELL);
    }
}

pub fn put_pixel(frame: &mut Frame, x: usize, y: usize, rgb: u32) {
    if x >= usize::from(frame.width()) || y >= usize::from(frame.height()) {
        return;
    }
    let start = y * frame.stride() + x * NATIVE_BYTES_PER_PIXEL;
    if let Some(pixel) = frame.pixels_mut().get_mut(start..start + NATIVE_BYTES_PER_PIXEL) {
        pixel.copy_from_slice(&rgb.to_le_bytes());
    }
}

/// Fills `rect` (clipped): the first row pixel by pixel, the others as copies of it, which is
/// much faster than [`Frame::fill_rect`] for the screen-sized areas drawn on every frame.
pub fn fill(frame: &mut Frame, rect: Rect, rgb: u32) {
    let rect = rect.intersect(&frame.bounds());
    if rect.is_empty() {
        return;
    }
    let stride = frame.stride();
    let start = usize::from(rect.y) * stride + usize::from(rect.x) * NATIVE_BYTES_PER_PIXEL;
    let row_len = usize::from(rect.width) * NATIVE_BYTES_PER_PIXEL;
    let pixels = frame.pixels_mut();
    for pixel in pixels[start..start + row_len].chunks_exact_mut(NATIVE_BYTES_PER_PIXEL) {
        pixel.copy_from_slice(&rgb.to_le_bytes());
    }
    for row in 1..usize::from(rect.height) {
        pixels.copy_within(start..start + row_len, start + row * stride);
    }
}
