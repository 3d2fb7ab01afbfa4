//! A Zlib (6) decoder for tests, written from the RFB spec independently of the encoder.
//!
//! Each Zlib rect is `U32 length` + that many bytes of zlib data which inflate to exactly the
//! rect's pixels as Raw would send them. Like a real client it keeps one inflater for the whole
//! connection. Malformed data is reported as an error, never a panic.
#![allow(dead_code)]

use flate2::{Decompress, FlushDecompress, Status};
use rfb::{PixelFormat, Rect};

const RAW: i32 = 0;
const ZLIB: i32 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Truncated(&'static str),
    Zlib(String),
    /// The zlib stream ended; it must stay open for the next rect.
    StreamEnd,
    /// The zlib data inflated to fewer bytes than the rect's pixels.
    ShortData {
        want: usize,
        got: usize,
    },
    /// The zlib data inflated to more bytes than the rect's pixels.
    LongData {
        want: usize,
    },
    OutsideFramebuffer(Rect),
    UnexpectedEncoding(i32),
    UnsupportedFormat,
}

/// What a client shows: one client pixel value per pixel, bits outside the colour channels
/// cleared (a client never looks at them).
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RectHeader {
    pub rect: Rect,
    pub encoding: i32,
}

/// Bytes per PIXEL.
pub fn pixel_len(format: &PixelFormat) -> Result<usize, DecodeError> {
    match format.bits_per_pixel {
        8 => Ok(1),
        16 => Ok(2),
        32 => Ok(4),
        _ => Err(DecodeError::UnsupportedFormat),
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

fn read_pixel(format: &PixelFormat, bytes: &[u8]) -> u32 {
    let fold = |acc: u32, &b: &u8| acc << 8 | u32::from(b);
    let v = if format.big_endian { bytes.iter().fold(0, fold) } else { bytes.iter().rev().fold(0, fold) };
    v & colour_mask(format)
}

/// Writes `data` (row-major pixels of `rect`) into `fb`.
fn put_pixels(format: &PixelFormat, rect: Rect, data: &[u8], fb: &mut ClientFramebuffer) -> Result<(), DecodeError> {
    let bpp = pixel_len(format)?;
    if usize::from(rect.x) + usize::from(rect.width) > usize::from(fb.width)
        || usize::from(rect.y) + usize::from(rect.height) > usize::from(fb.height)
    {
        return Err(DecodeError::OutsideFramebuffer(rect));
    }
    for (i, px) in data.chunks_exact(bpp).enumerate() {
        let (x, y) = (i % usize::from(rect.width), i / usize::from(rect.width));
        let at = (usize::from(rect.y) + y) * usize::from(fb.width) + usize::from(rect.x) + x;
        fb.pixels[at] = read_pixel(format, px);
    }
    Ok(())
}

/// Decodes rects (headers and data, no FramebufferUpdate header) of encodings Zlib or Raw.
pub fn decode_rects(
    format: &PixelFormat,
    inflater: &mut Decompress,
    mut bytes: &[u8],
    fb: &mut ClientFramebuffer,
) -> Result<Vec<RectHeader>, DecodeError> {
    let mut headers = Vec::new();
    while !bytes.is_empty() {
        let h = bytes.get(..12).ok_or(DecodeError::Truncated("rect header"))?;
        let u16_at = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        let header = RectHeader {
            rect: Rect::new(u16_at(0), u16_at(2), u16_at(4), u16_at(6)),
            encoding: i32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        };
        bytes = &bytes[12..];
        let want = header.rect.area() * pixel_len(format)?;
        let used = match header.encoding {
            ZLIB => {
                let len = bytes.get(..4).ok_or(DecodeError::Truncated("zlib length"))?;
                let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let data = bytes.get(4..4 + len).ok_or(DecodeError::Truncated("zlib data"))?;
                let pixels = inflate_exact(inflater, data, want)?;
                put_pixels(format, header.rect, &pixels, fb)?;
                4 + len
            }
            RAW => {
                let data = bytes.get(..want).ok_or(DecodeError::Truncated("raw pixels"))?;
                put_pixels(format, header.rect, data, fb)?;
                want
            }
            other => return Err(DecodeError::UnexpectedEncoding(other)),
        };
        bytes = &bytes[used..];
        headers.push(header);
    }
    Ok(headers)
}

/// Inflates all of `data`, which must produce exactly `want` bytes.
fn inflate_exact(inflater: &mut Decompress, mut data: &[u8], want: usize) -> Result<Vec<u8>, DecodeError> {
    // One byte of slack shows whether the data holds more than the rect's pixels.
    let mut out = Vec::with_capacity(want + 1);
    while !data.is_empty() {
        let before = (inflater.total_in(), out.len());
        let status = inflater
            .decompress_vec(data, &mut out, FlushDecompress::Sync)
            .map_err(|e| DecodeError::Zlib(e.to_string()))?;
        data = &data[(inflater.total_in() - before.0) as usize..];
        if out.len() > want {
            return Err(DecodeError::LongData { want });
        }
        if status == Status::StreamEnd {
            return Err(DecodeError::StreamEnd);
        }
        if (inflater.total_in() - before.0) == 0 && out.len() == before.1 {
            return Err(DecodeError::Truncated("zlib stream stalled"));
        }
    }
    if out.len() != want {
        return Err(DecodeError::ShortData { want, got: out.len() });
    }
    Ok(out)
}
