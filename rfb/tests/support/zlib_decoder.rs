//! A Zlib (6) decoder for tests, written from the RFB spec independently of the encoder.
//!
//! Each Zlib rect is `U32 length` + that many bytes of zlib data which inflate to exactly the
//! rect's pixels as Raw would send them. Like a real client it keeps one inflater for the whole
//! connection. Malformed data is reported as an error, never a panic.

use flate2::{Decompress, FlushDecompress, Status};
use rfb::{PixelFormat, Rect};

// `super::wire` is the crate's one copy of the shared helpers, whichever file brings it in.
use super::wire::{ClientFramebuffer, Reader, RectHeader, WireError, for_each_rect, pixel_len, put_pixels};

const RAW: i32 = 0;
const ZLIB: i32 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Truncated(&'static str),
    Zlib(String),
    /// The zlib stream ended; it must stay open for the next rect.
    StreamEnd,
    /// zlib data that inflated to nothing more although input remained.
    Stalled,
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

super::wire::from_wire_error!(DecodeError);

/// Decodes rects (headers and data, no FramebufferUpdate header) of encodings Zlib or Raw.
pub fn decode_rects(
    format: &PixelFormat,
    inflater: &mut Decompress,
    bytes: &[u8],
    fb: &mut ClientFramebuffer,
) -> Result<Vec<RectHeader>, DecodeError> {
    for_each_rect(bytes, |r, header| {
        let want = header.rect.area() * pixel_len(format)?;
        match header.encoding {
            ZLIB => {
                let used = decode_zlib_rect(format, inflater, header.rect, &r.data[r.pos..], fb)?;
                r.take(used, "rect data")?;
                Ok(())
            }
            RAW => Ok(put_pixels(format, header.rect, r.take(want, "raw pixels")?, fb)?),
            other => Err(DecodeError::UnexpectedEncoding(other)),
        }
    })
}

/// Decodes one Zlib rect's data (after its header) from the start of `data` into `fb` with the
/// connection's `inflater` and returns the bytes it used. The inflater is used only once the
/// rect's zlib data is all there, so after [`DecodeError::Truncated`] the rect can be decoded
/// again from the start with more data.
pub fn decode_zlib_rect(
    format: &PixelFormat,
    inflater: &mut Decompress,
    rect: Rect,
    data: &[u8],
    fb: &mut ClientFramebuffer,
) -> Result<usize, DecodeError> {
    let want = rect.area() * pixel_len(format)?;
    let mut r = Reader::new(data);
    let len = r.take(4, "zlib length")?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let pixels = inflate_exact(inflater, r.take(len, "zlib data")?, want)?;
    put_pixels(format, rect, &pixels, fb)?;
    Ok(r.pos)
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
            return Err(DecodeError::Stalled);
        }
    }
    if out.len() != want {
        return Err(DecodeError::ShortData { want, got: out.len() });
    }
    Ok(out)
}
