//! What the test decoders share, written from the RFB spec independently of the encoders: the
//! client's framebuffer, rect headers, a cursor over received bytes and reading PIXELs in a
//! client's pixel format. Errors are [`WireError`], which each decoder's own error type takes
//! in through `From`, so malformed data is reported, never a panic.

use rfb::{PixelFormat, Rect};

/// What went wrong in the shared parts of decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The data ended before `what` was complete.
    Truncated(&'static str),
    /// The rect does not lie inside the framebuffer.
    OutsideFramebuffer(Rect),
    /// A bits-per-pixel value other than 8, 16 or 32.
    UnsupportedFormat,
}

/// `From<WireError>` for a decoder's error type, which has variants of the same names.
macro_rules! from_wire_error {
    ($error:ty) => {
        impl From<WireError> for $error {
            fn from(e: WireError) -> Self {
                match e {
                    WireError::Truncated(what) => Self::Truncated(what),
                    WireError::OutsideFramebuffer(rect) => Self::OutsideFramebuffer(rect),
                    WireError::UnsupportedFormat => Self::UnsupportedFormat,
                }
            }
        }
    };
}
pub(crate) use from_wire_error;

/// What a client shows: one client pixel value per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFramebuffer {
    pub width: u16,
    pub height: u16,
    pub pixels: Vec<u32>,
}

impl ClientFramebuffer {
    pub fn new(width: u16, height: u16, fill: u32) -> Self {
        Self { width, height, pixels: vec![fill; usize::from(width) * usize::from(height)] }
    }

    pub fn get(&self, x: u16, y: u16) -> u32 {
        self.pixels[usize::from(y) * usize::from(self.width) + usize::from(x)]
    }

    pub fn set(&mut self, x: usize, y: usize, v: u32) {
        self.pixels[y * usize::from(self.width) + x] = v;
    }

    /// `rect` if it lies inside the framebuffer, else the error.
    pub fn check_inside(&self, rect: Rect) -> Result<(), WireError> {
        let inside = u32::from(rect.x) + u32::from(rect.width) <= u32::from(self.width)
            && u32::from(rect.y) + u32::from(rect.height) <= u32::from(self.height);
        if inside { Ok(()) } else { Err(WireError::OutsideFramebuffer(rect)) }
    }
}

/// One rect of a FramebufferUpdate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RectHeader {
    pub rect: Rect,
    pub encoding: i32,
}

/// Cursor over received (or inflated) bytes.
pub struct Reader<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated(what))?;
        let bytes = self.data.get(self.pos..end).ok_or(WireError::Truncated(what))?;
        self.pos = end;
        Ok(bytes)
    }

    /// A 12-byte rect header.
    pub fn rect_header(&mut self) -> Result<RectHeader, WireError> {
        let h = self.take(12, "rect header")?;
        let u16_at = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Ok(RectHeader {
            rect: Rect::new(u16_at(0), u16_at(2), u16_at(4), u16_at(6)),
            encoding: i32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        })
    }
}

/// Walks rects (headers and data, no FramebufferUpdate header), `rect` decoding each one's data
/// after its header from `r`; returns the headers.
pub fn for_each_rect<E: From<WireError>>(
    bytes: &[u8],
    mut rect: impl FnMut(&mut Reader, RectHeader) -> Result<(), E>,
) -> Result<Vec<RectHeader>, E> {
    let mut r = Reader::new(bytes);
    let mut headers = Vec::new();
    while !r.is_empty() {
        let header = r.rect_header()?;
        rect(&mut r, header)?;
        headers.push(header);
    }
    Ok(headers)
}

/// Bytes per PIXEL.
pub fn pixel_len(format: &PixelFormat) -> Result<usize, WireError> {
    match format.bits_per_pixel {
        8 => Ok(1),
        16 => Ok(2),
        32 => Ok(4),
        _ => Err(WireError::UnsupportedFormat),
    }
}

/// The bits of a pixel value that carry colour (all of them for a colour-map format).
pub fn colour_mask(format: &PixelFormat) -> u32 {
    if !format.true_colour {
        return u32::MAX;
    }
    [(format.red_max, format.red_shift), (format.green_max, format.green_shift), (format.blue_max, format.blue_shift)]
        .iter()
        .fold(0, |m, &(max, shift)| m | u32::from(max).checked_shl(u32::from(shift)).unwrap_or(0))
}

/// Reads an unsigned big- or little-endian integer from `bytes` (1 to 4 of them).
pub fn read_uint(bytes: &[u8], big_endian: bool) -> u32 {
    let fold = |acc: u32, &b: &u8| acc << 8 | u32::from(b);
    if big_endian { bytes.iter().fold(0, fold) } else { bytes.iter().rev().fold(0, fold) }
}

/// A PIXEL's value with the bits outside the colour channels cleared (a client never looks at
/// them).
pub fn read_pixel(format: &PixelFormat, bytes: &[u8]) -> u32 {
    read_uint(bytes, format.big_endian) & colour_mask(format)
}

/// Writes `data` (row-major PIXELs of `rect`, as Raw sends them) into `fb`.
pub fn put_pixels(format: &PixelFormat, rect: Rect, data: &[u8], fb: &mut ClientFramebuffer) -> Result<(), WireError> {
    let bpp = pixel_len(format)?;
    fb.check_inside(rect)?;
    for (i, px) in data.chunks_exact(bpp).enumerate() {
        let (x, y) = (i % usize::from(rect.width), i / usize::from(rect.width));
        fb.set(usize::from(rect.x) + x, usize::from(rect.y) + y, read_pixel(format, px));
    }
    Ok(())
}
