//! A ZRLE (16) decoder for tests, written from the RFB spec independently of the encoder.
//!
//! Like a real client it keeps one zlib inflater for the whole connection and decodes into a
//! framebuffer of client pixel values. Malformed data is reported as an error, never a panic.

use flate2::{Decompress, FlushDecompress, Status};
use rfb::{PixelFormat, Rect};

// The vs_tigervnc bench's client (tests/support/bench/rfb_client.rs) includes this file by path,
// without the rest of support, so the shared helpers come in as a child module here; test crates
// that include this decoder use it as `support::wire` through `pub use zrle_decoder::wire`, and
// the bench client as `use zrle_decoder::wire` (the Hextile and Zlib decoders it includes next
// to this one reach it as `super::wire`: one copy per crate, so the types match).
#[path = "wire.rs"]
pub mod wire;

pub use wire::ClientFramebuffer;
use wire::{Reader, RectHeader, WireError, for_each_rect, pixel_len, put_pixels, read_uint};

const ZRLE: i32 = 16;
const RAW: i32 = 0;
const TILE: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The data ended before `what` was complete.
    Truncated(&'static str),
    Zlib(String),
    /// The zlib stream ended; a ZRLE stream must stay open for the next rect.
    StreamEnd,
    /// zlib data that inflated to nothing more although input remained.
    Stalled,
    BadSubencoding(u8),
    PaletteIndex {
        index: u8,
        palette: usize,
    },
    /// A run went past the end of its tile.
    RunOverflow,
    /// Uncompressed bytes left after the last tile.
    TrailingData(usize),
    /// The rect does not lie inside the framebuffer.
    OutsideFramebuffer(Rect),
    UnexpectedEncoding(i32),
    UnsupportedFormat,
}

wire::from_wire_error!(DecodeError);

/// Counts of what was decoded.
#[derive(Debug, Clone)]
pub struct Stats {
    pub tiles: usize,
    /// Tiles per subencoding byte.
    pub subencodings: [usize; 256],
    /// Packed-palette tiles per index width: [1 bit, 2 bits, 4 bits].
    pub packed_bits: [usize; 3],
}

impl Default for Stats {
    fn default() -> Self {
        Self { tiles: 0, subencodings: [0; 256], packed_bits: [0; 3] }
    }
}

/// Decodes a sequence of rects (headers and data, no FramebufferUpdate header) of encodings
/// ZRLE or Raw, returning their headers.
pub fn decode_rects(
    format: &PixelFormat,
    inflater: &mut Decompress,
    bytes: &[u8],
    fb: &mut ClientFramebuffer,
    stats: &mut Stats,
) -> Result<Vec<RectHeader>, DecodeError> {
    for_each_rect(bytes, |r, header| {
        let used = match header.encoding {
            ZRLE => decode_zrle_rect(format, inflater, header.rect, &r.data[r.pos..], fb, stats)?,
            RAW => decode_raw_rect(format, header.rect, &r.data[r.pos..], fb)?,
            other => return Err(DecodeError::UnexpectedEncoding(other)),
        };
        r.take(used, "rect data")?;
        Ok(())
    })
}

/// Where a CPIXEL's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpixelLayout {
    /// CPIXEL = PIXEL.
    Pixel,
    /// 3 bytes holding the 3 least significant bytes of the pixel value.
    LowBytes,
    /// 3 bytes holding the 3 most significant bytes of the pixel value.
    HighBytes,
}

/// The spec's rule: 3-byte CPIXELs iff true colour, 32 bpp, depth <= 24 and the colour bits fit
/// in the low or the high 3 bytes (low preferred when both do).
pub fn cpixel_layout(format: &PixelFormat) -> CpixelLayout {
    if !format.true_colour || format.bits_per_pixel != 32 || format.depth > 24 {
        return CpixelLayout::Pixel;
    }
    let mut bits: u64 = 0;
    for (max, shift) in [
        (format.red_max, format.red_shift),
        (format.green_max, format.green_shift),
        (format.blue_max, format.blue_shift),
    ] {
        if shift >= 32 {
            return CpixelLayout::Pixel;
        }
        bits |= u64::from(max) << shift;
    }
    if bits >> 24 == 0 {
        CpixelLayout::LowBytes
    } else if bits & 0xff == 0 && bits >> 32 == 0 {
        CpixelLayout::HighBytes
    } else {
        CpixelLayout::Pixel
    }
}

pub fn cpixel_len(format: &PixelFormat) -> Result<usize, DecodeError> {
    match cpixel_layout(format) {
        CpixelLayout::Pixel => Ok(pixel_len(format)?),
        CpixelLayout::LowBytes | CpixelLayout::HighBytes => Ok(3),
    }
}

fn read_cpixel(format: &PixelFormat, layout: CpixelLayout, bytes: &[u8]) -> u32 {
    let v = read_uint(bytes, format.big_endian);
    match layout {
        CpixelLayout::HighBytes => v << 8,
        CpixelLayout::Pixel | CpixelLayout::LowBytes => v,
    }
}

/// Scales each channel of a client pixel value back to 8 bits: `v * 255 / max`, rounded.
pub fn client_pixel_to_rgb(format: &PixelFormat, value: u32) -> [u8; 3] {
    let channel = |max: u16, shift: u8| -> u8 {
        let max = u32::from(max);
        if max == 0 {
            return 0;
        }
        let v = value.checked_shr(u32::from(shift)).unwrap_or(0) & max;
        ((v * 255 + max / 2) / max).min(255) as u8
    };
    [
        channel(format.red_max, format.red_shift),
        channel(format.green_max, format.green_shift),
        channel(format.blue_max, format.blue_shift),
    ]
}

fn byte(r: &mut Reader, what: &'static str) -> Result<u8, DecodeError> {
    Ok(r.take(1, what)?[0])
}

/// A run length: 255s continue, the final byte ends it; length = 1 + sum of the bytes.
fn run_length(r: &mut Reader) -> Result<usize, DecodeError> {
    let mut len = 1usize;
    loop {
        let b = byte(r, "run length")?;
        len += usize::from(b);
        if b != 255 {
            return Ok(len);
        }
    }
}

fn read_cpixels(r: &mut Reader, format: &PixelFormat, cp: usize, count: usize) -> Result<Vec<u32>, DecodeError> {
    let bytes = r.take(count * cp, "cpixels")?;
    let layout = cpixel_layout(format);
    Ok(bytes.chunks_exact(cp).map(|b| read_cpixel(format, layout, b)).collect())
}

/// Decodes a Raw rect's data; returns the bytes used.
pub fn decode_raw_rect(
    format: &PixelFormat,
    rect: Rect,
    data: &[u8],
    fb: &mut ClientFramebuffer,
) -> Result<usize, DecodeError> {
    fb.check_inside(rect)?;
    let len = rect.area() * pixel_len(format)?;
    put_pixels(format, rect, data.get(..len).ok_or(DecodeError::Truncated("raw rect"))?, fb)?;
    Ok(len)
}

/// Inflates all of `input` (one rect's zlib data) with the connection's inflater.
fn inflate(inflater: &mut Decompress, mut input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(input.len() * 4 + 1024);
    loop {
        out.reserve(out.len().max(64 * 1024));
        let (in_before, out_before) = (inflater.total_in(), out.len());
        let status = inflater
            .decompress_vec(input, &mut out, FlushDecompress::Sync)
            .map_err(|e| DecodeError::Zlib(e.to_string()))?;
        if status == Status::StreamEnd {
            return Err(DecodeError::StreamEnd);
        }
        let consumed = usize::try_from(inflater.total_in() - in_before).map_err(|_| DecodeError::Stalled)?;
        input = input.get(consumed..).ok_or(DecodeError::Stalled)?;
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(out);
        }
        if consumed == 0 && out.len() == out_before {
            return Err(DecodeError::Stalled);
        }
    }
}

/// Decodes one ZRLE rect given the bytes after its header; returns the bytes used
/// (4 + the length field).
pub fn decode_zrle_rect(
    format: &PixelFormat,
    inflater: &mut Decompress,
    rect: Rect,
    payload: &[u8],
    fb: &mut ClientFramebuffer,
    stats: &mut Stats,
) -> Result<usize, DecodeError> {
    fb.check_inside(rect)?;
    let length_bytes = payload.get(..4).ok_or(DecodeError::Truncated("zrle length"))?;
    let length = u32::from_be_bytes([length_bytes[0], length_bytes[1], length_bytes[2], length_bytes[3]]) as usize;
    let zlib_data = payload.get(4..4 + length).ok_or(DecodeError::Truncated("zrle data"))?;
    let plain = if zlib_data.is_empty() { Vec::new() } else { inflate(inflater, zlib_data)? };
    let cp = cpixel_len(format)?;
    let mut r = Reader::new(&plain);
    let mut tile = vec![0u32; TILE * TILE];

    let (width, height) = (usize::from(rect.width), usize::from(rect.height));
    for ty in (0..height).step_by(TILE) {
        for tx in (0..width).step_by(TILE) {
            let tw = TILE.min(width - tx);
            let th = TILE.min(height - ty);
            let n = tw * th;
            let sub = byte(&mut r, "subencoding")?;
            stats.tiles += 1;
            stats.subencodings[usize::from(sub)] += 1;
            match sub {
                0 => tile[..n].copy_from_slice(&read_cpixels(&mut r, format, cp, n)?),
                1 => {
                    let colour = read_cpixels(&mut r, format, cp, 1)?[0];
                    tile[..n].fill(colour);
                }
                2..=16 => {
                    let palette = read_cpixels(&mut r, format, cp, usize::from(sub))?;
                    let bits = match sub {
                        2 => 1,
                        3..=4 => 2,
                        _ => 4,
                    };
                    stats.packed_bits[match bits {
                        1 => 0,
                        2 => 1,
                        _ => 2,
                    }] += 1;
                    let row_bytes = (tw * bits).div_ceil(8);
                    for y in 0..th {
                        let row = r.take(row_bytes, "packed palette row")?;
                        for x in 0..tw {
                            let bit = x * bits;
                            let index = (row[bit / 8] >> (8 - bits - bit % 8)) & ((1 << bits) - 1);
                            let colour = palette
                                .get(usize::from(index))
                                .ok_or(DecodeError::PaletteIndex { index, palette: palette.len() })?;
                            tile[y * tw + x] = *colour;
                        }
                    }
                }
                128 => {
                    let mut filled = 0;
                    while filled < n {
                        let colour = read_cpixels(&mut r, format, cp, 1)?[0];
                        let len = run_length(&mut r)?;
                        let end = filled.checked_add(len).filter(|&e| e <= n).ok_or(DecodeError::RunOverflow)?;
                        tile[filled..end].fill(colour);
                        filled = end;
                    }
                }
                130..=255 => {
                    let palette = read_cpixels(&mut r, format, cp, usize::from(sub - 128))?;
                    let mut filled = 0;
                    while filled < n {
                        let b = byte(&mut r, "palette rle index")?;
                        let index = b & 0x7f;
                        let colour = *palette
                            .get(usize::from(index))
                            .ok_or(DecodeError::PaletteIndex { index, palette: palette.len() })?;
                        let len = if b & 0x80 != 0 { run_length(&mut r)? } else { 1 };
                        let end = filled.checked_add(len).filter(|&e| e <= n).ok_or(DecodeError::RunOverflow)?;
                        tile[filled..end].fill(colour);
                        filled = end;
                    }
                }
                other => return Err(DecodeError::BadSubencoding(other)),
            }
            for y in 0..th {
                let fy = usize::from(rect.y) + ty + y;
                let fx = usize::from(rect.x) + tx;
                let start = fy * usize::from(fb.width) + fx;
                fb.pixels[start..start + tw].copy_from_slice(&tile[y * tw..y * tw + tw]);
            }
        }
    }
    if r.pos != plain.len() {
        return Err(DecodeError::TrailingData(plain.len() - r.pos));
    }
    Ok(4 + length)
}
