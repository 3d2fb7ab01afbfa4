//! Zlib (6): the rect's pixels exactly as Raw would send them (client format, row-major),
//! compressed by one zlib stream that lives as long as the connection. Each rect's payload is
//! `U32 length` + the zlib bytes, ended by a sync flush so the client can decode the rect without
//! waiting for later data.

use flate2::{Compress, Compression, FlushCompress};

use super::deflate::{change_level, deflate, in_bands};
use super::{EncodeParams, Encoder};
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
        // libvncserver's band height: as many rows as fit in MAX_RECT_PIXELS, but at least two.
        let band_rows = |width: u16| (MAX_RECT_PIXELS / usize::from(width)).max(2);
        let mut broken = self.broken;
        let count = in_bands(frame, rect, band_rows, &mut broken, params, out, |band, out| {
            self.encode_one(frame, band, params, out)
        });
        self.broken = broken;
        count
    }
}
