//! Encoders: one per file, behind [`Encoder`]. [`Encoders`] holds one connection's encoders
//! and picks one per update from what the client listed.

pub(crate) mod classify;
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

use crate::encoding::{ClientEncodings, HEXTILE, JPEG, RAW, TIGHT, ZLIB, ZRLE};
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
    /// Rects sent as JPEG (Tight's or encoding 21) since the last [`Self::take_lossy`].
    lossy: Vec<Rect>,
    classifier: classify::Classifier,
    /// Scratch for [`Self::encode_jpeg`]: the classified areas and the photo-like ones' rects.
    areas: Vec<classify::Area>,
    photos: Vec<Rect>,
}

impl Encoders {
    /// Encodes `rect` with the client's preferred encoding; returns the number of rects written.
    /// A client that prefers JPEG but has fewer than 16 bits per pixel gets its first listed
    /// lossless encoding; one that takes JPEG gets it for the photo-like parts only (see
    /// [`Self::encode_jpeg`]).
    pub fn encode(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        let mut encoding = params.encodings.preferred;
        if encoding == JPEG {
            if !jpeg::takes_jpeg(params.converter.client_format()) {
                encoding = params.encodings.lossless;
            } else if params.encodings.lossless != RAW {
                return self.encode_jpeg(frame, rect, params, out);
            } else {
                // With nothing but Raw to fall back on, every part goes as JPEG: Raw's 4 bytes
                // a pixel are more than JPEG takes even for text.
                self.lossy.push(rect.intersect(&frame.bounds()));
            }
        }
        self.encode_with(encoding, frame, rect, params, out)
    }

    /// Makes the zlib streams of the encoding the client's updates will use (its lossless one
    /// when it prefers JPEG (21)) ahead of its first update, as TigerVNC makes its encoders'
    /// streams when a viewer connects. Called on every SetEncodings; a stream is made once.
    pub fn prepare(&mut self, encodings: &ClientEncodings) {
        let encoding = if encodings.preferred == JPEG { encodings.lossless } else { encodings.preferred };
        match encoding {
            TIGHT => self.tight.prepare(encodings),
            ZRLE => self.zrle.prepare(encodings),
            ZLIB => self.zlib.prepare(encodings),
            _ => {}
        }
    }

    /// The rects sent as JPEG since the last call (a rect JPEG did not pay for may be among
    /// them though it went as Raw): what a lossless refresh must send again once still. Taken
    /// after every update (`UpdateJob::encode`), so the list never outgrows one update.
    pub fn take_lossy(&mut self) -> Vec<Rect> {
        std::mem::take(&mut self.lossy)
    }

    fn encode_with(
        &mut self,
        encoding: i32,
        frame: &Frame,
        rect: &Rect,
        params: &EncodeParams,
        out: &mut Vec<u8>,
    ) -> usize {
        match encoding {
            JPEG => self.jpeg.encode(frame, rect, params, out),
            TIGHT => {
                let count = self.tight.encode(frame, rect, params, out);
                self.lossy.append(&mut self.tight.take_lossy());
                count
            }
            ZRLE => self.zrle.encode(frame, rect, params, out),
            ZLIB => self.zlib.encode(frame, rect, params, out),
            HEXTILE => self.hextile.encode(frame, rect, params, out),
            _ => self.raw.encode(frame, rect, params, out),
        }
    }

    /// JPEG (21) where it pays: `rect` is classified in tiles ([`classify::Classifier::split`]);
    /// photo-like areas go as JPEG (their bands spread over the workers together), the rest
    /// (text, flat UI: a JPEG of a BIOS screen is some 17 times its ZRLE, and blurred) with the
    /// client's first listed lossless encoding, through this connection's encoder of it, so its
    /// zlib stream continues as usual. That encoder is told no quality level, so Tight listed
    /// behind JPEG keeps those areas exact too.
    fn encode_jpeg(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        let rect = rect.intersect(&frame.bounds());
        if rect.is_empty() {
            return 0;
        }
        let mut areas = std::mem::take(&mut self.areas);
        areas.clear();
        self.classifier.split(frame, &rect, &mut areas);
        self.photos.clear();
        self.photos.extend(areas.iter().filter(|area| area.photo).map(|area| area.rect));
        let mut count = self.jpeg.encode_rects(frame, &self.photos, params, out);
        self.lossy.extend_from_slice(&self.photos);
        let encodings = ClientEncodings { quality_level: None, ..params.encodings.clone() };
        let lossless = EncodeParams { encodings: &encodings, ..*params };
        for area in areas.iter().filter(|area| !area.photo) {
            count += self.encode_with(params.encodings.lossless, frame, &area.rect, &lossless, out);
        }
        self.areas = areas;
        count
    }
}
