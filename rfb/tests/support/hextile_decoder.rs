//! A Hextile (5) decoder for tests, written from the RFB spec independently of the encoder, and
//! strict where the spec leaves a client guessing: a background or foreground that is neither
//! specified nor validly carried over from the previous tile of the rect is an error, as are
//! ForegroundSpecified together with SubrectsColoured, undefined mask bits and subrects reaching
//! outside their tile. Malformed data is reported as an error, never a panic.
#![allow(dead_code)]

use rfb::{PixelFormat, Rect};

const RAW: i32 = 0;
const HEXTILE: i32 = 5;

const M_RAW: u8 = 1;
const M_BACKGROUND: u8 = 2;
const M_FOREGROUND: u8 = 4;
const M_ANY_SUBRECTS: u8 = 8;
const M_COLOURED: u8 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Truncated(&'static str),
    /// A non-raw tile relies on a background the client does not have.
    NoBackground,
    /// A one-colour-subrects tile relies on a foreground the client does not have.
    NoForeground,
    ForegroundAndColoured,
    UndefinedMaskBits(u8),
    SubrectOutsideTile {
        tile: Rect,
        x: usize,
        y: usize,
        w: usize,
        h: usize,
    },
    OutsideFramebuffer(Rect),
    UnexpectedEncoding(i32),
    UnsupportedFormat,
}

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

    fn set(&mut self, x: usize, y: usize, v: u32) {
        self.pixels[y * usize::from(self.width) + x] = v;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RectHeader {
    pub rect: Rect,
    pub encoding: i32,
}

/// Counts of what was decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub tiles: usize,
    pub raw: usize,
    /// Tiles without subrects.
    pub solid: usize,
    /// Tiles with subrects in the foreground colour.
    pub mono: usize,
    pub coloured: usize,
    pub subrects: usize,
    /// Non-raw tiles that left out the background / the mono ones that left out the foreground.
    pub background_carried: usize,
    pub foreground_carried: usize,
    /// Bytes of all rect data (headers included).
    pub bytes: usize,
}

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

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let s = self.data.get(self.pos..self.pos + n).ok_or(DecodeError::Truncated(what))?;
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn pixel(&mut self, format: &PixelFormat, what: &'static str) -> Result<u32, DecodeError> {
        let bytes = self.take(pixel_len(format)?, what)?;
        let fold = |acc: u32, &b: &u8| acc << 8 | u32::from(b);
        let v = if format.big_endian { bytes.iter().fold(0, fold) } else { bytes.iter().rev().fold(0, fold) };
        Ok(v & colour_mask(format))
    }
}

/// Decodes rects (headers and data, no FramebufferUpdate header) of encodings Hextile or Raw.
pub fn decode_rects(
    format: &PixelFormat,
    bytes: &[u8],
    fb: &mut ClientFramebuffer,
    stats: &mut Stats,
) -> Result<Vec<RectHeader>, DecodeError> {
    let mut r = Reader { data: bytes, pos: 0 };
    let mut headers = Vec::new();
    while r.pos < bytes.len() {
        let h = r.take(12, "rect header")?;
        let u16_at = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        let header = RectHeader {
            rect: Rect::new(u16_at(0), u16_at(2), u16_at(4), u16_at(6)),
            encoding: i32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        };
        let rect = header.rect;
        if usize::from(rect.x) + usize::from(rect.width) > usize::from(fb.width)
            || usize::from(rect.y) + usize::from(rect.height) > usize::from(fb.height)
        {
            return Err(DecodeError::OutsideFramebuffer(rect));
        }
        match header.encoding {
            HEXTILE => decode_hextile(format, &mut r, rect, fb, stats)?,
            RAW => {
                for y in 0..usize::from(rect.height) {
                    for x in 0..usize::from(rect.width) {
                        let v = r.pixel(format, "raw pixels")?;
                        fb.set(usize::from(rect.x) + x, usize::from(rect.y) + y, v);
                    }
                }
            }
            other => return Err(DecodeError::UnexpectedEncoding(other)),
        }
        headers.push(header);
    }
    stats.bytes += bytes.len();
    Ok(headers)
}

fn decode_hextile(
    format: &PixelFormat,
    r: &mut Reader,
    rect: Rect,
    fb: &mut ClientFramebuffer,
    stats: &mut Stats,
) -> Result<(), DecodeError> {
    // Per rect: nothing is known before the first tile.
    let mut background: Option<u32> = None;
    let mut foreground: Option<u32> = None;
    let (rx, ry) = (usize::from(rect.x), usize::from(rect.y));
    let (rw, rh) = (usize::from(rect.width), usize::from(rect.height));
    let mut ty = 0;
    while ty < rh {
        let th = (rh - ty).min(16);
        let mut tx = 0;
        while tx < rw {
            let tw = (rw - tx).min(16);
            let (x0, y0) = (rx + tx, ry + ty);
            stats.tiles += 1;
            let mask = r.u8("subencoding")?;
            if mask & M_RAW != 0 {
                stats.raw += 1;
                for y in 0..th {
                    for x in 0..tw {
                        let v = r.pixel(format, "raw tile")?;
                        fb.set(x0 + x, y0 + y, v);
                    }
                }
                // Neither colour may be carried over a raw tile.
                background = None;
                foreground = None;
                tx += 16;
                continue;
            }
            if mask & !0x1f != 0 {
                return Err(DecodeError::UndefinedMaskBits(mask));
            }
            if mask & M_BACKGROUND != 0 {
                background = Some(r.pixel(format, "background")?);
            } else {
                stats.background_carried += 1;
            }
            let bg = background.ok_or(DecodeError::NoBackground)?;
            if mask & M_FOREGROUND != 0 {
                if mask & M_COLOURED != 0 {
                    return Err(DecodeError::ForegroundAndColoured);
                }
                foreground = Some(r.pixel(format, "foreground")?);
            }
            for y in 0..th {
                for x in 0..tw {
                    fb.set(x0 + x, y0 + y, bg);
                }
            }
            if mask & M_ANY_SUBRECTS == 0 {
                // Solid: the foreground stays whatever it was.
                stats.solid += 1;
                tx += 16;
                continue;
            }
            let count = usize::from(r.u8("subrect count")?);
            let coloured = mask & M_COLOURED != 0;
            if coloured {
                stats.coloured += 1;
            } else {
                stats.mono += 1;
                if mask & M_FOREGROUND == 0 {
                    stats.foreground_carried += 1;
                }
            }
            stats.subrects += count;
            for _ in 0..count {
                let colour = if coloured {
                    r.pixel(format, "subrect colour")?
                } else {
                    foreground.ok_or(DecodeError::NoForeground)?
                };
                let xy = r.u8("subrect position")?;
                let wh = r.u8("subrect size")?;
                let (x, y) = (usize::from(xy >> 4), usize::from(xy & 15));
                let (w, h) = (usize::from(wh >> 4) + 1, usize::from(wh & 15) + 1);
                if x + w > tw || y + h > th {
                    let tile = Rect::new(x0 as u16, y0 as u16, tw as u16, th as u16);
                    return Err(DecodeError::SubrectOutsideTile { tile, x, y, w, h });
                }
                for sy in y..y + h {
                    for sx in x..x + w {
                        fb.set(x0 + sx, y0 + sy, colour);
                    }
                }
            }
            if coloured {
                // The foreground may not be carried over a tile with coloured subrects.
                foreground = None;
            }
            tx += 16;
        }
        ty += 16;
    }
    Ok(())
}
