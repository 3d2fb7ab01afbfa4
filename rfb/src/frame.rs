//! The server-side framebuffer: what a frame source produces and what encoders read.

/// A rectangle in framebuffer coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

impl Rect {
    pub const fn new(x: u16, y: u16, width: u16, height: u16) -> Self {
        Self { x, y, width, height }
    }

    /// The rect cut into tiles at most `size` on a side, left to right, top to bottom (the
    /// order the tiled encodings send them); nothing for an empty rect or a zero size.
    pub fn tiles(&self, size: u16) -> impl Iterator<Item = Rect> + use<> {
        let rect = *self;
        let size = u32::from(size);
        let (right, bottom) = (u32::from(rect.x) + u32::from(rect.width), u32::from(rect.y) + u32::from(rect.height));
        let (rows, cols) = match size {
            0 => (0, 0),
            _ if rect.is_empty() => (0, 0),
            _ => (u32::from(rect.height).div_ceil(size), u32::from(rect.width).div_ceil(size)),
        };
        (0..rows).flat_map(move |row| {
            let y = u32::from(rect.y) + row * size;
            let h = (bottom - y).min(size);
            (0..cols).map(move |col| {
                let x = u32::from(rect.x) + col * size;
                let w = (right - x).min(size);
                // Every value lies inside `rect`, whose coordinates and sizes fit in u16.
                Rect::new(x as u16, y as u16, w as u16, h as u16)
            })
        })
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    pub fn area(&self) -> usize {
        usize::from(self.width) * usize::from(self.height)
    }

    fn right(&self) -> u32 {
        u32::from(self.x) + u32::from(self.width)
    }

    fn bottom(&self) -> u32 {
        u32::from(self.y) + u32::from(self.height)
    }

    /// The part of `self` inside `other` (empty when they do not overlap).
    pub fn intersect(&self, other: &Rect) -> Rect {
        let left = self.x.max(other.x);
        let top = self.y.max(other.y);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        if right <= u32::from(left) || bottom <= u32::from(top) {
            return Rect::default();
        }
        // Both fit in u16: they are bounded by the right/bottom edges of u16 rects minus a u16 origin.
        Rect::new(left, top, (right - u32::from(left)) as u16, (bottom - u32::from(top)) as u16)
    }

    /// The smallest rectangle holding both (an empty rect adds nothing).
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let left = self.x.min(other.x);
        let top = self.y.min(other.y);
        let right = self.right().max(other.right()).min(u32::from(u16::MAX));
        let bottom = self.bottom().max(other.bottom()).min(u32::from(u16::MAX));
        Rect::new(left, top, (right - u32::from(left)) as u16, (bottom - u32::from(top)) as u16)
    }
}

/// Bytes per pixel of the native format (see [`crate::PixelFormat::NATIVE`]).
pub const NATIVE_BYTES_PER_PIXEL: usize = 4;

/// A frame in the native pixel format: 32 bpp little-endian `0x00RRGGBB`,
/// i.e. bytes B, G, R, X in memory, rows packed with no padding.
///
/// Cloning shares the pixels (copy on write): a frame handed to every viewer, an encode
/// worker and a replay's cache costs one buffer, not one each.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u16,
    height: u16,
    pixels: std::sync::Arc<Vec<u8>>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame").field("width", &self.width).field("height", &self.height).finish()
    }
}

/// `Frame::from_pixels` was given a buffer of the wrong length.
#[derive(Debug, thiserror::Error)]
#[error("a {width}x{height} frame needs {expected} bytes, got {actual}")]
pub struct FrameSizeError {
    pub width: u16,
    pub height: u16,
    pub expected: usize,
    pub actual: usize,
}

impl Frame {
    /// A black frame.
    pub fn new(width: u16, height: u16) -> Self {
        let len = usize::from(width) * usize::from(height) * NATIVE_BYTES_PER_PIXEL;
        Self { width, height, pixels: std::sync::Arc::new(vec![0; len]) }
    }

    pub fn from_pixels(width: u16, height: u16, pixels: Vec<u8>) -> Result<Self, FrameSizeError> {
        let expected = usize::from(width) * usize::from(height) * NATIVE_BYTES_PER_PIXEL;
        if pixels.len() != expected {
            return Err(FrameSizeError { width, height, expected, actual: pixels.len() });
        }
        Ok(Self { width, height, pixels: std::sync::Arc::new(pixels) })
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// The whole frame as a rectangle.
    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    pub fn stride(&self) -> usize {
        usize::from(self.width) * NATIVE_BYTES_PER_PIXEL
    }

    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    pub fn pixels_mut(&mut self) -> &mut [u8] {
        std::sync::Arc::make_mut(&mut self.pixels).as_mut_slice()
    }

    /// The native bytes of one row of `rect` (which must lie inside the frame).
    pub fn row(&self, rect: &Rect, row: u16) -> &[u8] {
        let start = (usize::from(rect.y + row)) * self.stride() + usize::from(rect.x) * NATIVE_BYTES_PER_PIXEL;
        &self.pixels[start..start + usize::from(rect.width) * NATIVE_BYTES_PER_PIXEL]
    }

    /// The rows of `rect` (inside the frame), top to bottom: what [`Self::row`] gives for each,
    /// without working out each row's place anew (the solid search walks many short rows).
    pub fn rows(&self, rect: &Rect) -> impl Iterator<Item = &[u8]> + '_ {
        let stride = self.stride();
        let start = usize::from(rect.y) * stride + usize::from(rect.x) * NATIVE_BYTES_PER_PIXEL;
        let width = usize::from(rect.width) * NATIVE_BYTES_PER_PIXEL;
        let rows = if rect.height == 0 { &[][..] } else { &self.pixels[start..] };
        rows.chunks(stride.max(1)).take(usize::from(rect.height)).map(move |row| &row[..width])
    }

    /// The pixel at (x, y) as `0x00RRGGBB`.
    pub fn pixel(&self, x: u16, y: u16) -> u32 {
        let i = usize::from(y) * self.stride() + usize::from(x) * NATIVE_BYTES_PER_PIXEL;
        u32::from_le_bytes([self.pixels[i], self.pixels[i + 1], self.pixels[i + 2], self.pixels[i + 3]])
    }

    /// Fills `rect` (clipped to the frame) with `rgb` (`0x00RRGGBB`).
    pub fn fill_rect(&mut self, rect: &Rect, rgb: u32) {
        let rect = rect.intersect(&self.bounds());
        let bytes = rgb.to_le_bytes();
        let stride = self.stride();
        let pixels = std::sync::Arc::make_mut(&mut self.pixels);
        for y in rect.y..rect.y + rect.height {
            let start = usize::from(y) * stride + usize::from(rect.x) * NATIVE_BYTES_PER_PIXEL;
            let end = start + usize::from(rect.width) * NATIVE_BYTES_PER_PIXEL;
            for px in pixels[start..end].chunks_exact_mut(NATIVE_BYTES_PER_PIXEL) {
                px.copy_from_slice(&bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_rect_in_wire_order() {
        let tiles: Vec<_> = Rect::new(10, 20, 100, 70).tiles(64).collect();
        assert_eq!(
            tiles,
            [Rect::new(10, 20, 64, 64), Rect::new(74, 20, 36, 64), Rect::new(10, 84, 64, 6), Rect::new(74, 84, 36, 6)]
        );
        assert_eq!(Rect::new(0, 0, 0, 5).tiles(16).count(), 0);
        assert_eq!(Rect::new(0, 0, 5, 5).tiles(0).count(), 0);
        let edge: Vec<_> = Rect::new(65530, 65530, 5, 5).tiles(4).collect();
        assert_eq!(edge.last(), Some(&Rect::new(65534, 65534, 1, 1)));
    }

    #[test]
    fn intersect_and_union() {
        let a = Rect::new(10, 10, 20, 20);
        let b = Rect::new(25, 0, 20, 15);
        assert_eq!(a.intersect(&b), Rect::new(25, 10, 5, 5));
        assert!(a.intersect(&Rect::new(30, 30, 5, 5)).is_empty());
        assert_eq!(a.union(&b), Rect::new(10, 0, 35, 30));
        assert_eq!(Rect::default().union(&b), b);
    }

    #[test]
    fn rows_are_the_rects_rows() {
        let mut frame = Frame::new(7, 5);
        for y in 0..5 {
            frame.fill_rect(&Rect::new(0, y, 7, 1), u32::from(y) * 0x10 + 1);
            frame.fill_rect(&Rect::new(y, y, 1, 1), 0xabcdef);
        }
        for rect in [Rect::new(1, 2, 4, 3), frame.bounds(), Rect::new(6, 4, 1, 1), Rect::new(2, 5, 3, 0)] {
            let rows: Vec<&[u8]> = frame.rows(&rect).collect();
            let expected: Vec<&[u8]> = (0..rect.height).map(|row| frame.row(&rect, row)).collect();
            assert_eq!(rows, expected, "{rect:?}");
        }
    }

    #[test]
    fn fill_and_read_back() {
        let mut f = Frame::new(4, 3);
        f.fill_rect(&Rect::new(1, 1, 10, 10), 0x00ff8000);
        assert_eq!(f.pixel(0, 0), 0);
        assert_eq!(f.pixel(3, 2), 0x00ff8000);
        assert_eq!(f.row(&Rect::new(1, 1, 2, 1), 0), &[0, 0x80, 0xff, 0, 0, 0x80, 0xff, 0]);
        assert!(Frame::from_pixels(2, 2, vec![0; 15]).is_err());
    }
}
