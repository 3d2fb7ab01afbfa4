//! Zlib (6): the rect's pixels exactly as Raw would send them (client format, row-major),
//! compressed by one zlib stream that lives as long as the connection. Each rect's payload is
//! `U32 length` + the zlib bytes, ended by a sync flush so the client can decode the rect without
//! waiting for later data.

use flate2::{Compress, Compression, FlushCompress};

use super::{EncodeParams, Encoder, RawEncoder};
use crate::encoding::ZLIB;
use crate::frame::{Frame, Rect};
use crate::messages::server::write_rect_header;

/// zlib level when the client sent no compression level (zlib's own default, as ZRLE uses).
const DEFAULT_LEVEL: u8 = 6;
/// Largest rect, in pixels, sent as one Zlib rect; bigger ones go as bands of whole rows (at
/// least two). libvncserver's value (`ZLIB_MAX_RECT_SIZE`, `rfb.h`): it bounds the memory a
/// client needs for one rect's inflated pixels and lets it draw a big update band by band.
const MAX_RECT_PIXELS: usize = 128 * 256;
/// Converted pixels are handed to zlib in pieces of about this size (keeps them in cache).
const CHUNK: usize = 64 * 1024;

/// One connection's Zlib state: the zlib stream (never reset) and a reusable pixel buffer.
pub struct ZlibEncoder {
    zlib: Option<Compress>,
    /// The level the stream compresses at.
    level: u8,
    /// The level last asked for, so a level the stream cannot switch to is tried only once.
    requested: u8,
    /// Set when zlib reported an error: the stream can no longer be trusted, so every later rect
    /// is sent as Raw (always allowed) instead.
    broken: bool,
    /// Converted pixels waiting for zlib.
    buf: Vec<u8>,
}

impl std::fmt::Debug for ZlibEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZlibEncoder")
            .field("level", &self.level)
            .field("started", &self.zlib.is_some())
            .field("broken", &self.broken)
            .finish()
    }
}

impl Default for ZlibEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ZlibEncoder {
    pub fn new() -> Self {
        Self { zlib: None, level: DEFAULT_LEVEL, requested: DEFAULT_LEVEL, broken: false, buf: Vec::new() }
    }

    /// Creates the stream on first use, or moves it to the client's latest level.
    fn prepare_stream(&mut self, level: u8) {
        match &mut self.zlib {
            Some(zlib) => {
                if level != self.requested {
                    self.requested = level;
                    self.level = change_level(zlib, self.level, level);
                }
            }
            None => {
                self.level = level;
                self.requested = level;
                self.zlib = Some(Compress::new(Compression::new(u32::from(level)), true));
            }
        }
    }

    /// Writes one Zlib rect for `rect` (inside `frame`, at most [`MAX_RECT_PIXELS`] pixels or two
    /// rows).
    fn encode_one(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> Result<(), ()> {
        let level = params.encodings.compress_level.map_or(DEFAULT_LEVEL, |l| l.min(9));
        let converter = params.converter;
        write_rect_header(out, rect, ZLIB);
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);

        self.prepare_stream(level);
        let Self { zlib: Some(zlib), buf, .. } = self else { return Err(()) };
        buf.clear();
        for row in 0..rect.height {
            converter.convert_row(frame.row(rect, row), buf);
            if buf.len() >= CHUNK {
                deflate(zlib, buf, out, FlushCompress::None)?;
                buf.clear();
            }
        }
        deflate(zlib, buf, out, FlushCompress::Sync)?;
        buf.clear();

        let length = u32::try_from(out.len() - length_at - 4).map_err(|_| ())?;
        out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}

impl Encoder for ZlibEncoder {
    fn encode(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        // Only what lies inside the frame is sent; nothing at all for an empty rect (zero rects
        // cover it, and some viewers complain about zero-size rects).
        let clipped = rect.intersect(&frame.bounds());
        if clipped.is_empty() {
            return 0;
        }
        // libvncserver's band height: as many rows as fit in MAX_RECT_PIXELS, but at least two.
        let band_rows = (MAX_RECT_PIXELS / usize::from(clipped.width)).max(2);
        let band_rows = u16::try_from(band_rows).unwrap_or(u16::MAX);
        let mut count = 0;
        let mut y = 0;
        while y < clipped.height {
            let band = Rect::new(clipped.x, clipped.y + y, clipped.width, band_rows.min(clipped.height - y));
            let start = out.len();
            if !self.broken && self.encode_one(frame, &band, params, out).is_ok() {
                count += 1;
            } else {
                // The stream may hold data the client will never see: give up on it for good.
                self.broken = true;
                out.truncate(start);
                count += RawEncoder.encode(frame, &band, params, out);
            }
            y += band.height;
        }
        count
    }
}

/// Moves `zlib` (already sync-flushed, so nothing is pending) to `wanted`, returning the level it
/// ends up at. zlib-rs refuses changes that switch its compression function once data has gone
/// through the stream (e.g. 6 -> 1); the refusal leaves the stream untouched, so the closest
/// level that is accepted, walking back towards the current one, is used instead. Same logic as
/// ZRLE's stream.
fn change_level(zlib: &mut Compress, current: u8, wanted: u8) -> u8 {
    let mut level = wanted;
    while level != current {
        if zlib.set_level(Compression::new(u32::from(level))).is_ok() {
            return level;
        }
        level = if level > current { level - 1 } else { level + 1 };
    }
    current
}

/// Feeds `input` to `zlib`, appending what it produces to `out`. With [`FlushCompress::Sync`]
/// returns only once all of it (and everything before it) is in `out`.
fn deflate(zlib: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> Result<(), ()> {
    loop {
        // Room for incompressible input plus zlib's block overhead and earlier buffered data.
        out.reserve(input.len() + input.len() / 16 + 4096);
        let (in_before, out_before) = (zlib.total_in(), out.len());
        zlib.compress_vec(input, out, flush).map_err(|_| ())?;
        let consumed = usize::try_from(zlib.total_in() - in_before).map_err(|_| ())?;
        input = input.get(consumed..).ok_or(())?;
        // Output space left over means zlib had nothing more to write.
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(());
        }
        if consumed == 0 && out.len() == out_before {
            // No progress despite room to write: never spin.
            return Err(());
        }
    }
}
