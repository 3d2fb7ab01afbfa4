//! A Zlib (6) decoder for tests, written from the RFB spec independently of the encoder.
//!
//! Each Zlib rect is `U32 length` + that many bytes of zlib data which inflate to exactly the
//! rect's pixels as Raw would send them. Like a real client it keeps one inflater for the whole
//! connection. Malformed data is reported as an error, never a panic.

use std::fmt::Debug;

use flate2::{Decompress, FlushDecompress, Status};
use rfb::{PixelFormat, Rect};

use super::round_trip::{Decoded, RectDecoder};
use super::wire::{ClientFramebuffer, RectHeader, WireError, colour_mask, for_each_rect, pixel_len, put_pixels};

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

super::wire::from_wire_error!(DecodeError);

/// One connection's decoder: its inflater.
pub struct ZlibDecoder {
    pub inflater: Decompress,
}

impl Default for ZlibDecoder {
    fn default() -> Self {
        ZlibDecoder { inflater: Decompress::new(true) }
    }
}

impl RectDecoder for ZlibDecoder {
    fn decode(&mut self, format: &PixelFormat, bytes: &[u8], fb: &mut ClientFramebuffer) -> Decoded<impl Debug> {
        decode_rects(format, &mut self.inflater, bytes, fb)
    }

    /// Bits outside the colour channels are cleared.
    fn shown(format: &PixelFormat, value: u32) -> u32 {
        value & colour_mask(format)
    }
}

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
                let len = r.take(4, "zlib length")?;
                let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let pixels = inflate_exact(inflater, r.take(len, "zlib data")?, want)?;
                Ok(put_pixels(format, header.rect, &pixels, fb)?)
            }
            RAW => Ok(put_pixels(format, header.rect, r.take(want, "raw pixels")?, fb)?),
            other => Err(DecodeError::UnexpectedEncoding(other)),
        }
    })
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
