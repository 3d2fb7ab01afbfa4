//! Encoders: one per file, behind [`Encoder`]. [`Encoders`] holds one connection's encoders
//! and picks one per update from what the client listed.

mod deflate;
mod hextile;
pub mod jpeg;
mod jpeg_codec;
mod raw;
pub mod shared;
pub mod tight;
pub mod workers;
mod zlib;
mod zrle;

pub use hextile::HextileEncoder;
pub use jpeg::JpegEncoder;
pub use jpeg_codec::Subsampling;
pub use raw::RawEncoder;
pub use tight::TightEncoder;
pub use zlib::ZlibEncoder;
pub use zrle::ZrleEncoder;

use crate::encoding::{ClientEncodings, HEXTILE, JPEG, TIGHT, ZLIB, ZRLE};
use crate::frame::{Frame, Rect};
use crate::pixel_format::PixelConverter;

/// What an encoder needs to know about the client.
pub struct EncodeParams<'a> {
    /// Converts native pixels to the client's pixel format.
    pub converter: &'a PixelConverter,
    /// The client's latest SetEncodings (allowed encodings, quality and compression levels).
    pub encodings: &'a ClientEncodings,
    /// The frame's generation and the server's cache of shareable rects, when it has one.
    pub shared: Option<(u64, &'a dyn shared::SharedEncodings)>,
    /// Where a large rect's pieces may be encoded in parallel.
    pub workers: &'a dyn workers::Workers,
}

pub trait Encoder: Send {
    /// Appends complete rectangles (header and data) that together cover `rect`, which lies
    /// inside `frame`, and returns how many it wrote.
    fn encode(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize;
}

/// One connection's encoders. Created lazily and kept for the connection's lifetime, because
/// compressed encodings carry zlib streams that the client's decoder continues across updates.
#[derive(Default)]
pub struct Encoders {
    raw: RawEncoder,
    hextile: HextileEncoder,
    jpeg: JpegEncoder,
    tight: TightEncoder,
    zlib: ZlibEncoder,
    zrle: ZrleEncoder,
}

impl Encoders {
    /// Encodes `rect` with the client's preferred encoding; returns the number of rects written.
    /// A client that prefers JPEG but has fewer than 16 bits per pixel gets its first listed
    /// lossless encoding.
    pub fn encode(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        let mut encoding = params.encodings.preferred;
        if encoding == JPEG && !jpeg::takes_jpeg(params.converter.client_format()) {
            encoding = params.encodings.lossless;
        }
        match encoding {
            JPEG => self.jpeg.encode(frame, rect, params, out),
            TIGHT => self.tight.encode(frame, rect, params, out),
            ZRLE => self.zrle.encode(frame, rect, params, out),
            ZLIB => self.zlib.encode(frame, rect, params, out),
            HEXTILE => self.hextile.encode(frame, rect, params, out),
            _ => self.raw.encode(frame, rect, params, out),
        }
    }
}
