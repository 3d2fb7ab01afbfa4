//! A Hextile (5) decoder for tests, written from the RFB spec independently of the encoder, and
//! strict where the spec leaves a client guessing: a background or foreground that is neither
//! specified nor validly carried over from the previous tile of the rect is an error, as are
//! ForegroundSpecified together with SubrectsColoured, undefined mask bits and subrects reaching
//! outside their tile. Malformed data is reported as an error, never a panic.

use rfb::{PixelFormat, Rect};

// `super::wire` is the crate's one copy of the shared helpers, whichever file brings it in.
use super::wire::{ClientFramebuffer, Reader, RectHeader, WireError, for_each_rect, pixel_len, put_pixels, read_pixel};

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

super::wire::from_wire_error!(DecodeError);

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

fn byte(r: &mut Reader, what: &'static str) -> Result<u8, DecodeError> {
    Ok(r.take(1, what)?[0])
}

fn pixel(r: &mut Reader, format: &PixelFormat, what: &'static str) -> Result<u32, DecodeError> {
    Ok(read_pixel(format, r.take(pixel_len(format)?, what)?))
}

/// Decodes rects (headers and data, no FramebufferUpdate header) of encodings Hextile or Raw.
pub fn decode_rects(
    format: &PixelFormat,
    bytes: &[u8],
    fb: &mut ClientFramebuffer,
    stats: &mut Stats,
) -> Result<Vec<RectHeader>, DecodeError> {
    let headers = for_each_rect(bytes, |r, header| {
        let rect = header.rect;
        fb.check_inside(rect)?;
        match header.encoding {
            HEXTILE => {
                let used = decode_hextile_rect(format, rect, &r.data[r.pos..], fb, stats)?;
                r.take(used, "rect data")?;
                Ok(())
            }
            RAW => Ok(put_pixels(format, rect, r.take(rect.area() * pixel_len(format)?, "raw pixels")?, fb)?),
            other => Err(DecodeError::UnexpectedEncoding(other)),
        }
    })?;
    stats.bytes += bytes.len();
    Ok(headers)
}

/// Decodes one Hextile rect's data (after its header) from the start of `data` into `fb` and
/// returns the bytes it used. Nothing is carried from one rect to the next, so after
/// [`DecodeError::Truncated`] the rect can be decoded again from the start with more data.
pub fn decode_hextile_rect(
    format: &PixelFormat,
    rect: Rect,
    data: &[u8],
    fb: &mut ClientFramebuffer,
    stats: &mut Stats,
) -> Result<usize, DecodeError> {
    fb.check_inside(rect)?;
    let r = &mut Reader::new(data);
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
            let mask = byte(r, "subencoding")?;
            if mask & M_RAW != 0 {
                stats.raw += 1;
                for y in 0..th {
                    for x in 0..tw {
                        let v = pixel(r, format, "raw tile")?;
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
                background = Some(pixel(r, format, "background")?);
            } else {
                stats.background_carried += 1;
            }
            let bg = background.ok_or(DecodeError::NoBackground)?;
            if mask & M_FOREGROUND != 0 {
                if mask & M_COLOURED != 0 {
                    return Err(DecodeError::ForegroundAndColoured);
                }
                foreground = Some(pixel(r, format, "foreground")?);
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
            let count = usize::from(byte(r, "subrect count")?);
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
                    pixel(r, format, "subrect colour")?
                } else {
                    foreground.ok_or(DecodeError::NoForeground)?
                };
                let xy = byte(r, "subrect position")?;
                let wh = byte(r, "subrect size")?;
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
    Ok(r.pos)
}
