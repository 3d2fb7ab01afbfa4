//! Zlib (6): the rect's pixels exactly as Raw would send them (client format, row-major),
//! compressed by one zlib stream that lives as long as the connection. Each rect's payload is
//! `U32 length` + the zlib bytes, ended by a sync flush so the client can decode the rect without
//! waiting for later data.

use flate2::FlushCompress;

use super::deflate::{self, ZlibStream};
use super::workers::{MIN_PARALLEL_AREA, row_bands};
use super::{EncodeParams, Encoder};
use crate::encoding::{ClientEncodings, ZLIB};
use crate::frame::{Frame, Rect};

/// Largest rect, in pixels, sent as one Zlib rect; bigger ones go as bands of whole rows (at
/// least two). libvncserver's value (`ZLIB_MAX_RECT_SIZE`, `rfb.h`): it bounds the memory a
/// client needs for one rect's inflated pixels and lets it draw a big update band by band.
const MAX_RECT_PIXELS: usize = 128 * 256;
/// Converted pixels are handed to zlib in pieces of about this size (keeps them in cache).
const CHUNK: usize = 64 * 1024;

/// One connection's Zlib state: the zlib stream (never reset) and a reusable pixel buffer.
#[derive(Debug)]
pub struct ZlibEncoder {
    stream: ZlibStream,
    /// Converted pixels waiting for zlib.
    buf: Vec<u8>,
}

impl Default for ZlibEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ZlibEncoder {
    pub fn new() -> Self {
        Self { stream: ZlibStream::new(), buf: Vec::new() }
    }
    /// Makes the stream's compressor ahead of the first update ([`ZlibStream::prepare`]).
    pub fn prepare(&mut self, encodings: &ClientEncodings) {
        self.stream.prepare(deflate::stream_level(encodings));
    }
}

impl Encoder for ZlibEncoder {
    fn encode(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        // libvncserver's band height: as many rows as fit in MAX_RECT_PIXELS, but at least two.
        let band_rows = |width: u16| (MAX_RECT_PIXELS / usize::from(width)).max(2);
        let converter = params.converter;
        let clipped = rect.intersect(&frame.bounds());
        if clipped.area() >= MIN_PARALLEL_AREA && params.workers.count() > 1 {
            let bands = row_bands(&clipped, band_rows(clipped.width));
            let mut lanes = vec![(); params.workers.count()];
            return self.stream.write_bands_parallel(frame, &bands, ZLIB, params, out, &mut lanes, |(), band, data| {
                for row in 0..band.height {
                    converter.convert_row(frame.row(band, row), data);
                }
            });
        }
        let buf = &mut self.buf;
        self.stream.write_bands(frame, rect, ZLIB, band_rows, params, out, |zlib, band, out| {
            buf.clear();
            for row in 0..band.height {
                converter.convert_row(frame.row(band, row), buf);
                if buf.len() >= CHUNK {
                    zlib.write(buf, out, FlushCompress::None)?;
                    buf.clear();
                }
            }
            zlib.write(buf, out, FlushCompress::Sync)?;
            buf.clear();
            Ok(())
        })
    }
}
