//! Reads the demo target's screen back from a captured RGB image (3 bytes per pixel, rows
//! top to bottom), so that tests can check what the target shows without trusting the server.
//!
//! Text is read cell by cell: pixels close to the text colour are ink, and the 16×16 ink bitmap
//! must equal a font8x8 glyph scaled 2× exactly; a cell that matches no printable ASCII glyph
//! (e.g. one the pointer covers) reads as '?'.

use kvnc::demo::layout::{
    CAPS_LOCK_RECT, CELL, COLUMNS, CONSOLE_TEXT, CONSOLE_X, CONSOLE_Y, LED_ON_BACKGROUND, NUM_LOCK_RECT, ROWS,
    SCROLL_LOCK_RECT, STATUS_COLUMNS, STATUS_TEXT, STATUS_X, STATUS_Y,
};
use kvnc::hid::led;

/// How far each channel of an ink pixel may be from the text colour. Lossless encodings give 0;
/// the margin absorbs pixel-format conversions such as 16-bit colour, not lossy compression.
const TOLERANCE: u8 = 48;

/// A cell's ink: bit `x` of element `y` is the pixel at (x, y) in the cell.
type Bitmap = [u16; CELL as usize];

/// The console's [`ROWS`] lines, top to bottom, trailing spaces trimmed.
pub fn read_console(rgb: &[u8], width: usize, height: usize) -> Vec<String> {
    let image = Image::new(rgb, width, height);
    let glyphs = glyphs();
    (0..ROWS)
        .map(|row| {
            let y = usize::from(CONSOLE_Y) + row * usize::from(CELL);
            image.read_text(&glyphs, usize::from(CONSOLE_X), y, COLUMNS, CONSOLE_TEXT)
        })
        .collect()
}

/// The status line, e.g. "pointer 12,34  buttons L--  wheel up".
pub fn read_status_line(rgb: &[u8], width: usize, height: usize) -> String {
    let image = Image::new(rgb, width, height);
    image.read_text(&glyphs(), usize::from(STATUS_X), usize::from(STATUS_Y), STATUS_COLUMNS, STATUS_TEXT)
}

/// Where the target's pointer is, as its status line says; None before the first pointer report.
pub fn read_status_pointer(rgb: &[u8], width: usize, height: usize) -> Option<(u16, u16)> {
    let line = read_status_line(rgb, width, height);
    let position = line.strip_prefix("pointer ")?.split_whitespace().next()?;
    let (x, y) = position.split_once(',')?;
    Some((x.parse().ok()?, y.parse().ok()?))
}

/// The lit lock LEDs in the title bar, as [`led`] bits.
pub fn read_leds(rgb: &[u8], width: usize, height: usize) -> u8 {
    let image = Image::new(rgb, width, height);
    [(NUM_LOCK_RECT, led::NUM_LOCK), (CAPS_LOCK_RECT, led::CAPS_LOCK), (SCROLL_LOCK_RECT, led::SCROLL_LOCK)]
        .into_iter()
        .filter(|(rect, _)| image.is_close(usize::from(rect.x) + 1, usize::from(rect.y) + 1, LED_ON_BACKGROUND))
        .fold(0, |leds, (_, bit)| leds | bit)
}

struct Image<'a> {
    rgb: &'a [u8],
    width: usize,
    height: usize,
}

impl<'a> Image<'a> {
    fn new(rgb: &'a [u8], width: usize, height: usize) -> Self {
        Self { rgb, width, height }
    }

    /// Whether the pixel at (x, y) is within [`TOLERANCE`] of `rgb`; false outside the image.
    fn is_close(&self, x: usize, y: usize, rgb: u32) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let start = (y * self.width + x) * 3;
        let Some(pixel) = self.rgb.get(start..start + 3) else { return false };
        let [_, red, green, blue] = rgb.to_be_bytes();
        pixel.iter().zip([red, green, blue]).all(|(&actual, expected)| actual.abs_diff(expected) <= TOLERANCE)
    }

    fn read_text(&self, glyphs: &[(char, Bitmap)], x: usize, y: usize, columns: usize, ink: u32) -> String {
        let text: String =
            (0..columns).map(|column| self.read_cell(glyphs, x + column * usize::from(CELL), y, ink)).collect();
        text.trim_end().to_owned()
    }

    fn read_cell(&self, glyphs: &[(char, Bitmap)], x: usize, y: usize, ink: u32) -> char {
        let mut bitmap = Bitmap::default();
        for (dy, row) in bitmap.iter_mut().enumerate() {
            for dx in 0..usize::from(CELL) {
                if self.is_close(x + dx, y + dy, ink) {
                    *row |= 1 << dx;
                }
            }
        }
        glyphs.iter().find(|(_, glyph)| *glyph == bitmap).map_or('?', |&(character, _)| character)
    }
}

/// Every printable ASCII glyph as the demo target draws it: font8x8, each pixel doubled.
pub fn glyphs() -> Vec<(char, Bitmap)> {
    (' '..='~')
        .map(|character| {
            let rows = font8x8::legacy::BASIC_LEGACY[character as usize];
            let mut bitmap = Bitmap::default();
            for (y, row) in bitmap.iter_mut().enumerate() {
                for x in 0..usize::from(CELL) {
                    if rows[y / 2] & (1 << (x / 2)) != 0 {
                        *row |= 1 << x;
                    }
                }
            }
            (character, bitmap)
        })
        .collect()
}
