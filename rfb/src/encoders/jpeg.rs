//! JPEG (21): each rect is one complete baseline JFIF image of exactly the rect's size, with no
//! length before it: the client finds the image's end by walking its markers to EOI (noVNC's
//! `core/decoders/jpeg.js`; TigerVNC 1.16 and RealVNC Viewer decode it too). Decoders give RGB,
//! so the client's pixel format does not matter, as long as it has at least 16 bits per pixel
//! (as for Tight JPEG); a client with fewer gets its lossless fallback instead. A client that
//! listed a lossless encoding too gets JPEG for the photo-like parts of a rect only, the rest
//! with that encoding (see [`super::Encoders::encode`] and [`super::classify`]).
//!
//! The quality level maps to JPEG quality and subsampling as for Tight JPEG
//! ([`super::jpeg_codec::JPEG_QUALITY`]); without one, level 8. The JPEGs come from the server's
//! shared cache, so viewers with equal settings (Tight JPEG viewers included, for equal rects)
//! compress each rect of a frame once. A rect longer than [`MAX_SIDE`] on a side is cut into
//! tiles, which bounds what one image costs a decoder. A rect whose JPEG is not smaller than
//! its Raw form (tiny rects: a JPEG's tables alone take some 600 bytes), or that the codec
//! fails on, goes as Raw, which every client takes.

use super::jpeg_codec::{JpegCompressor, Subsampling, quality_for_level};
use super::raw::RawEncoder;
use super::shared::JpegKey;
use super::tight::passthrough::PassthroughError;
use super::workers;
use super::{EncodeParams, Encoder};
use crate::encoding::JPEG;
use crate::frame::{Frame, Rect};
use crate::messages::server::write_rect_header;
use crate::pixel_format::PixelFormat;

/// The longest side of one JPEG rect. 4K frames (3840x2160) go as one image; an 8K frame's
/// broad change as a few, each at most 64 MiB of RGBA in the decoder.
pub const MAX_SIDE: u16 = 4096;
/// The quality level used when the client sent none (JPEG 92, 4:4:4: text stays sharp).
pub const DEFAULT_QUALITY_LEVEL: u8 = 8;

/// Whether a client in `format` can be sent JPEG rects: decoders produce 24-bit colour, which
/// fewer than 16 bits per pixel would waste (Tight JPEG has the same rule).
pub fn takes_jpeg(format: &PixelFormat) -> bool {
    format.bits_per_pixel >= 16
}

/// A connection's JPEG encoder: one codec per worker (created on first use) and nothing else,
/// since encoding 21 carries no state from rect to rect.
#[derive(Default)]
pub struct JpegEncoder {
    lanes: Vec<Lane>,
}

/// One worker's codec; `Err` once creating the codec failed (then its rects go as Raw).
#[derive(Default)]
struct Lane {
    compressor: Option<Result<JpegCompressor, ()>>,
}

impl std::fmt::Debug for JpegEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JpegEncoder").finish_non_exhaustive()
    }
}

impl Lane {
    /// Writes `rect` (non-empty, inside `frame`) as one JPEG rect; false (writing nothing) when
    /// the codec is unavailable or fails, or the JPEG would not be smaller than Raw.
    fn write_jpeg(
        &mut self,
        frame: &Frame,
        rect: &Rect,
        (quality, subsampling): (u8, Subsampling),
        params: &EncodeParams,
        out: &mut Vec<u8>,
    ) -> bool {
        let compressor = self.compressor.get_or_insert_with(|| JpegCompressor::new().ok_or(()));
        let Ok(compressor) = compressor else { return false };
        let shared_jpeg;
        let jpeg: &[u8] = match params.shared {
            Some((generation, cache)) => {
                let key = JpegKey { frame: generation, rect: *rect, quality, subsampling };
                let mut compress = || compressor.compress(frame, rect, quality, subsampling).map(<[u8]>::to_vec);
                let Some(bytes) = cache.jpeg(key, &mut compress) else { return false };
                shared_jpeg = bytes;
                &shared_jpeg
            }
            None => match compressor.compress(frame, rect, quality, subsampling) {
                Some(bytes) => bytes,
                None => return false,
            },
        };
        if jpeg.len() >= rect.area() * params.converter.bytes_per_pixel() {
            return false;
        }
        write_rect_header(out, rect, JPEG);
        out.extend_from_slice(jpeg);
        true
    }

    /// Appends `rect` as JPEG rects (Raw where JPEG does not pay); returns how many.
    fn encode(
        &mut self,
        frame: &Frame,
        rect: &Rect,
        settings: (u8, Subsampling),
        params: &EncodeParams,
        out: &mut Vec<u8>,
    ) -> usize {
        let mut count = 0;
        for tile in rect.tiles(MAX_SIDE) {
            if !self.write_jpeg(frame, &tile, settings, params, out) {
                RawEncoder.encode(frame, &tile, params, out);
            }
            count += 1;
        }
        count
    }
}

impl JpegEncoder {
    /// Writes each of `rects` (inside `frame`) as JPEG rects and returns how many rects that
    /// made. Large rects are cut into bands; all the bands are spread over the workers together
    /// (each worker's codec taking the next band as it finishes one), so a frame's photo areas
    /// cost a fraction of their time on a Pi's four cores whether they are one rect or several.
    pub fn encode_rects(&mut self, frame: &Frame, rects: &[Rect], params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        let settings = quality_for_level(params.encodings.quality_level.unwrap_or(DEFAULT_QUALITY_LEVEL));
        let bands: Vec<Rect> = rects
            .iter()
            .map(|rect| rect.intersect(&frame.bounds()))
            .filter(|rect| !rect.is_empty())
            .flat_map(|rect| workers::bands(&rect, params.workers))
            .collect();
        if bands.is_empty() {
            return 0;
        }
        workers::encode_bands(
            params.workers,
            &mut self.lanes,
            Lane::default,
            &bands,
            |lane, band, out| lane.encode(frame, band, settings, params, out),
            out,
        )
    }
}

impl Encoder for JpegEncoder {
    /// All of `rect` as JPEG (see [`Self::encode_rects`]); [`super::Encoders::encode`] sends
    /// only photo-like areas this way.
    fn encode(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        self.encode_rects(frame, std::slice::from_ref(rect), params, out)
    }
}

/// Appends one JPEG rect carrying `jpeg` unchanged (MJPEG pass-through: a capture dongle's
/// frame or a lossless crop of it). The caller checks that the JPEG's size equals `rect` and
/// that it has its Huffman tables (noVNC reuses the previous rect's tables for a JPEG without
/// them, which for the first rect means none). On error nothing is written.
pub fn write_jpeg_rect(out: &mut Vec<u8>, rect: &Rect, jpeg: &[u8]) -> Result<(), PassthroughError> {
    if rect.is_empty() {
        return Err(PassthroughError::EmptyRect);
    }
    // Without SOI first and EOI last the client would read past the image, or stop inside it,
    // and take the rest as the next message.
    if jpeg.len() < 4 || !jpeg.starts_with(&[0xff, 0xd8]) || !jpeg.ends_with(&[0xff, 0xd9]) {
        return Err(PassthroughError::NotStandalone);
    }
    out.reserve(12 + jpeg.len());
    write_rect_header(out, rect, JPEG);
    out.extend_from_slice(jpeg);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::encoders::shared::{SharedEncodings, SharedRects};
    use crate::encoders::workers::{Serial, Workers};
    use crate::encoding::{ClientEncodings, RAW};
    use crate::pixel_format::PixelConverter;

    /// A frame with smooth gradients (what JPEG is for) and a sharp block.
    fn photo(width: u16, height: u16) -> Frame {
        let mut frame = Frame::new(width, height);
        for y in 0..height {
            for x in 0..width {
                let r = u32::from(x) * 255 / u32::from(width);
                let g = u32::from(y) * 255 / u32::from(height);
                frame.fill_rect(&Rect::new(x, y, 1, 1), r << 16 | g << 8 | 0x60);
            }
        }
        frame.fill_rect(&Rect::new(width / 4, height / 4, width / 4, height / 4), 0x00ff_ffff);
        frame
    }

    /// One rect as a viewer reads it: (rect, encoding, data, rest). The data of a JPEG rect
    /// ends at its EOI, found by walking the markers as noVNC does.
    fn parse_rect(bytes: &[u8], bytes_per_pixel: usize) -> (Rect, i32, &[u8], &[u8]) {
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let rect = Rect::new(u16_at(0), u16_at(2), u16_at(4), u16_at(6));
        let encoding = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let body = &bytes[12..];
        let len = match encoding {
            JPEG => jpeg_end(body),
            RAW => rect.area() * bytes_per_pixel,
            other => panic!("unexpected encoding {other}"),
        };
        (rect, encoding, &body[..len], &body[len..])
    }

    /// The length of the JPEG at the start of `data`, found like noVNC's `_readSegment`.
    fn jpeg_end(data: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            assert_eq!(data[pos], 0xff, "a marker at {pos}");
            let kind = data[pos + 1];
            pos += 2;
            if kind == 0xd9 {
                return pos;
            }
            if (0xd0..=0xd8).contains(&kind) || kind == 0x01 {
                continue;
            }
            let len = usize::from(u16::from_be_bytes([data[pos], data[pos + 1]]));
            pos += len;
            if kind == 0xda {
                // Entropy-coded data up to the next marker that is neither stuffing nor RSTn.
                while !(data[pos] == 0xff && data[pos + 1] != 0 && !(0xd0..=0xd7).contains(&data[pos + 1])) {
                    pos += 1;
                }
            }
        }
    }

    fn encode(frame: &Frame, rect: &Rect, format: PixelFormat, list: Vec<i32>) -> (Vec<u8>, usize) {
        encode_on(&Serial, frame, rect, format, list)
    }

    fn encode_on(
        workers: &dyn Workers,
        frame: &Frame,
        rect: &Rect,
        format: PixelFormat,
        list: Vec<i32>,
    ) -> (Vec<u8>, usize) {
        let converter = PixelConverter::new(format);
        let encodings = ClientEncodings::from_list(list);
        let params = EncodeParams { converter: &converter, encodings: &encodings, shared: None, workers };
        let mut out = Vec::new();
        let count = JpegEncoder::default().encode(frame, rect, &params, &mut out);
        (out, count)
    }

    #[test]
    fn a_large_rect_goes_as_one_jpeg_per_band_on_several_workers() {
        let frame = photo(700, 500);
        let rect = Rect::new(3, 2, 690, 490);
        let threads = workers::ScopedThreads(3);
        let (out, count) = encode_on(&threads, &frame, &rect, PixelFormat::NATIVE, vec![JPEG]);
        assert_eq!(count, workers::bands(&rect, &threads).len());
        assert!(count > 1);
        let mut rest = &out[..];
        let mut next_y = rect.y;
        while !rest.is_empty() {
            let (band, encoding, jpeg, after) = parse_rect(rest, 4);
            assert_eq!((band.x, band.y, band.width, encoding), (rect.x, next_y, rect.width, JPEG));
            let image = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).unwrap();
            assert_eq!((image.width, image.height), (usize::from(band.width), usize::from(band.height)));
            assert!(mean_error(&image, &frame, &band) < 2.0);
            next_y += band.height;
            rest = after;
        }
        assert_eq!(next_y, rect.y + rect.height, "the bands cover the rect");
        assert_eq!(encode(&frame, &rect, PixelFormat::NATIVE, vec![JPEG]).1, 1, "one band without workers");
    }

    /// Mean absolute difference per channel between a decoded RGB image and `rect` of `frame`.
    fn mean_error(image: &turbojpeg::Image<Vec<u8>>, frame: &Frame, rect: &Rect) -> f64 {
        let mut total = 0u64;
        for y in 0..rect.height {
            for x in 0..rect.width {
                let [b, g, r, _] = frame.pixel(rect.x + x, rect.y + y).to_le_bytes();
                let at = (usize::from(y) * image.width + usize::from(x)) * 3;
                for (c, want) in [r, g, b].into_iter().enumerate() {
                    total += u64::from(image.pixels[at + c].abs_diff(want));
                }
            }
        }
        total as f64 / (rect.area() * 3) as f64
    }

    #[test]
    fn a_rect_is_a_jpeg_of_its_size_in_any_pixel_format() {
        let frame = photo(320, 200);
        let rect = Rect::new(17, 9, 250, 150);
        let mut jpegs = Vec::new();
        let rgb565 = PixelFormat::true_colour(16, 16, false, [31, 63, 31], [11, 5, 0]);
        let big_endian_bgr = PixelFormat::true_colour(32, 24, true, [255, 255, 255], [0, 8, 16]);
        for format in [PixelFormat::NATIVE, rgb565, big_endian_bgr] {
            let (out, count) = encode(&frame, &rect, format, vec![JPEG, -24]);
            assert_eq!(count, 1);
            let (got, encoding, jpeg, rest) = parse_rect(&out, format.bits_per_pixel as usize / 8);
            assert_eq!((got, encoding, rest.len()), (rect, JPEG, 0));
            let image = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).unwrap();
            assert_eq!((image.width, image.height), (250, 150));
            let error = mean_error(&image, &frame, &rect);
            assert!(error < 2.0, "quality 92 looks like the frame: {error}");
            jpegs.push(jpeg.to_vec());
        }
        // The client's pixel format does not change the bytes.
        assert!(jpegs.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn quality_levels_map_as_for_tight_and_default_to_8() {
        let frame = photo(256, 256);
        let size = |list: Vec<i32>| encode(&frame, &frame.bounds(), PixelFormat::NATIVE, list).0.len();
        let (low, default, eight, best) =
            (size(vec![JPEG, -32]), size(vec![JPEG]), size(vec![JPEG, -24]), size(vec![JPEG, -23]));
        assert_eq!(default, eight);
        assert!(low < eight && eight < best, "{low} < {eight} < {best}");
        let header = |list: Vec<i32>| {
            let (out, _) = encode(&frame, &frame.bounds(), PixelFormat::NATIVE, list);
            turbojpeg::read_header(&out[12..]).unwrap()
        };
        assert_eq!(header(vec![JPEG, -32]).subsamp, turbojpeg::Subsamp::Sub2x2);
        assert_eq!(header(vec![JPEG, -27]).subsamp, turbojpeg::Subsamp::Sub2x1);
        assert_eq!(header(vec![JPEG]).subsamp, turbojpeg::Subsamp::None);
    }

    #[test]
    fn large_rects_are_tiled_and_tiny_ones_go_raw() {
        let frame = photo(5000, 20);
        let (out, count) = encode(&frame, &frame.bounds(), PixelFormat::NATIVE, vec![JPEG]);
        assert_eq!(count, 2);
        let (first, encoding, jpeg, rest) = parse_rect(&out, 4);
        assert_eq!((first, encoding), (Rect::new(0, 0, 4096, 20), JPEG));
        assert_eq!(turbojpeg::read_header(jpeg).map(|h| (h.width, h.height)).ok(), Some((4096, 20)));
        let (second, encoding, jpeg, rest) = parse_rect(rest, 4);
        assert_eq!((second, encoding, rest.len()), (Rect::new(4096, 0, 904, 20), JPEG, 0));
        assert_eq!(turbojpeg::read_header(jpeg).map(|h| (h.width, h.height)).ok(), Some((904, 20)));
        let all = |r: Rect| r.tiles(MAX_SIDE).collect::<Vec<_>>();
        assert!(all(Rect::new(3, 4, 0, 10)).is_empty());
        let big = all(Rect::new(0, 0, 65535, 65535));
        assert_eq!(big.len(), 16 * 16);
        assert_eq!(big.iter().map(Rect::area).sum::<usize>(), 65535 * 65535);
        assert_eq!(big.last(), Some(&Rect::new(61440, 61440, 4095, 4095)));

        // A 3x3 rect's JPEG is far larger than its 36 bytes of Raw.
        let (out, count) = encode(&frame, &Rect::new(1, 1, 3, 3), PixelFormat::NATIVE, vec![JPEG]);
        assert_eq!(count, 1);
        let (rect, encoding, pixels, rest) = parse_rect(&out, 4);
        assert_eq!((rect, encoding, pixels.len(), rest.len()), (Rect::new(1, 1, 3, 3), RAW, 36, 0));
        // Nothing for a rect outside the frame.
        assert_eq!(encode(&frame, &Rect::new(6000, 0, 5, 5), PixelFormat::NATIVE, vec![JPEG]).1, 0);
    }

    /// A cache whose compressions all fail, as a broken codec would.
    struct Failing;
    impl SharedEncodings for Failing {
        fn jpeg(&self, _: JpegKey, _: &mut dyn FnMut() -> Option<Vec<u8>>) -> Option<Arc<[u8]>> {
            None
        }
    }

    #[test]
    fn codec_failure_falls_back_to_raw_and_the_cache_is_shared() {
        let frame = photo(64, 64);
        let converter = PixelConverter::new(PixelFormat::NATIVE);
        let encodings = ClientEncodings::from_list(vec![JPEG]);
        let mut out = Vec::new();
        let params = EncodeParams {
            converter: &converter,
            encodings: &encodings,
            shared: Some((3, &Failing)),
            workers: &crate::encoders::workers::Serial,
        };
        assert_eq!(JpegEncoder::default().encode(&frame, &frame.bounds(), &params, &mut out), 1);
        let (_, encoding, pixels, rest) = parse_rect(&out, 4);
        assert_eq!((encoding, pixels.len(), rest.len()), (RAW, 64 * 64 * 4, 0));

        // Two viewers with equal settings: the second copies the first one's JPEG.
        let cache = SharedRects::default();
        let params = EncodeParams {
            converter: &converter,
            encodings: &encodings,
            shared: Some((7, &cache)),
            workers: &crate::encoders::workers::Serial,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        JpegEncoder::default().encode(&frame, &frame.bounds(), &params, &mut a);
        JpegEncoder::default().encode(&frame, &frame.bounds(), &params, &mut b);
        assert_eq!(a, b);
        let key = JpegKey { frame: 7, rect: frame.bounds(), quality: 92, subsampling: Subsampling::S444 };
        let cached = cache.jpeg(key, &mut || panic!("already compressed")).unwrap();
        assert_eq!(&a[12..], &cached[..]);
    }

    #[test]
    fn pass_through_rects_carry_the_jpeg_unchanged() {
        let frame = photo(64, 32);
        let jpeg =
            JpegCompressor::new().unwrap().compress(&frame, &frame.bounds(), 80, Subsampling::S420).unwrap().to_vec();
        let mut out = vec![9];
        write_jpeg_rect(&mut out, &frame.bounds(), &jpeg).unwrap();
        let (rect, encoding, data, rest) = parse_rect(&out[1..], 4);
        assert_eq!((rect, encoding, data, rest), (frame.bounds(), JPEG, &jpeg[..], &[][..]));
        let mut out = vec![9];
        assert_eq!(write_jpeg_rect(&mut out, &Rect::new(0, 0, 0, 5), &jpeg), Err(PassthroughError::EmptyRect));
        assert_eq!(
            write_jpeg_rect(&mut out, &frame.bounds(), &jpeg[..jpeg.len() - 1]),
            Err(PassthroughError::NotStandalone)
        );
        assert_eq!(write_jpeg_rect(&mut out, &frame.bounds(), &jpeg[2..]), Err(PassthroughError::NotStandalone));
        assert_eq!(out, [9]);
    }
}
