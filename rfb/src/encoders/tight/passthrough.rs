//! MJPEG pass-through: a JPEG that already exists (a capture dongle's frame) goes out unchanged
//! as one Tight JPEG rect, with no decode and no re-encode (what PiKVM's kvmd does; reference
//! §B4). The caller checks that the viewer takes it (Tight listed, a quality level sent, at least
//! 16 bpp) and that the JPEG's size equals `rect` exactly (TigerVNC's viewer rejects anything
//! else), and inserts a missing Huffman table (DHT) first: browsers, hence noVNC, cannot decode a
//! JPEG without one.
//!
//! The control byte is `0x90` without stream-reset bits: the connection's [`super::TightEncoder`]
//! keeps its zlib streams across rects, so telling the viewer to reset its inflaters here would
//! desynchronise them (kvmd sends `0x9F` because it never sends zlib rects).

use super::{CTL_JPEG, MAX_COMPACT_LEN, MAX_RECT_WIDTH, write_compact_len};
use crate::encoding::TIGHT;
use crate::frame::Rect;
use crate::messages::server::write_rect_header;

/// Why a JPEG cannot go out as one Tight or JPEG (21) rect; the caller then encodes decoded
/// pixels instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassthroughError {
    #[error("a {0}-byte JPEG exceeds Tight's compact-length limit of 4194303 bytes")]
    TooLarge(usize),
    #[error("a Tight rect {0} pixels wide exceeds the 2048-pixel limit (TigerVNC's viewer rejects it)")]
    TooWide(u16),
    #[error("a JPEG rect cannot be empty")]
    EmptyRect,
    #[error("the JPEG does not start with SOI and end with EOI (encoding 21 needs a complete image)")]
    NotStandalone,
    #[error("this viewer takes no JPEG rect {0} pixels wide")]
    NotTaken(u16),
}

/// Appends one Tight rect (header with encoding 7, control byte `0x90`, compact length, the
/// JPEG) covering `rect`. On error nothing is written.
pub fn write_jpeg_rect(out: &mut Vec<u8>, rect: &Rect, jpeg: &[u8]) -> Result<(), PassthroughError> {
    if rect.is_empty() {
        return Err(PassthroughError::EmptyRect);
    }
    if rect.width > MAX_RECT_WIDTH {
        return Err(PassthroughError::TooWide(rect.width));
    }
    if jpeg.len() > MAX_COMPACT_LEN {
        return Err(PassthroughError::TooLarge(jpeg.len()));
    }
    out.reserve(12 + 1 + 3 + jpeg.len());
    write_rect_header(out, rect, TIGHT);
    out.push(CTL_JPEG);
    write_compact_len(out, jpeg.len());
    out.extend_from_slice(jpeg);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::jpeg_codec::JpegCompressor;
    use crate::encoders::tight::Subsampling;
    use crate::frame::Frame;

    /// Reads one Tight JPEG rect back the way a viewer does: (rect, control byte, JPEG, rest).
    fn parse(bytes: &[u8]) -> (Rect, i32, u8, &[u8], &[u8]) {
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let rect = Rect::new(u16_at(0), u16_at(2), u16_at(4), u16_at(6));
        let encoding = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let control = bytes[12];
        // Compact length: 7 + 7 + 8 bits, low group first, continuation in bit 7.
        let (mut len, mut pos) = (usize::from(bytes[13] & 0x7f), 14);
        if bytes[13] & 0x80 != 0 {
            len |= usize::from(bytes[14] & 0x7f) << 7;
            pos = 15;
            if bytes[14] & 0x80 != 0 {
                len |= usize::from(bytes[15]) << 14;
                pos = 16;
            }
        }
        (rect, encoding, control, &bytes[pos..pos + len], &bytes[pos + len..])
    }

    #[test]
    fn a_real_jpeg_round_trips() {
        let mut frame = Frame::new(320, 200);
        frame.fill_rect(&Rect::new(0, 0, 160, 200), 0x00ff_8000);
        frame.fill_rect(&Rect::new(100, 50, 200, 20), 0x0000_40ff);
        let mut compressor = JpegCompressor::new().unwrap();
        let jpeg = compressor.compress(&frame, &frame.bounds(), 80, Subsampling::S422).unwrap().to_vec();
        let mut out = vec![0xaa];
        write_jpeg_rect(&mut out, &Rect::new(0, 0, 320, 200), &jpeg).unwrap();
        let (rect, encoding, control, data, rest) = parse(&out[1..]);
        assert_eq!((rect, encoding, control, rest), (Rect::new(0, 0, 320, 200), TIGHT, 0x90, &[][..]));
        assert_eq!(data, jpeg);
        // What the viewer decodes has the rect's size and the frame's colours.
        let image = turbojpeg::decompress(data, turbojpeg::PixelFormat::RGB).unwrap();
        assert_eq!((image.width, image.height), (320, 200));
        let px = |x: usize, y: usize| &image.pixels[(y * 320 + x) * 3..][..3];
        assert!(px(10, 10).iter().zip([0xff, 0x80, 0]).all(|(&a, b)| a.abs_diff(b) < 8), "{:?}", px(10, 10));
        assert!(px(250, 60).iter().zip([0, 0x40, 0xff]).all(|(&a, b)| a.abs_diff(b) < 8), "{:?}", px(250, 60));
    }

    #[test]
    fn lengths_use_all_three_compact_forms() {
        for (len, header) in [(100, vec![100]), (10000, vec![0x90, 0x4e]), (MAX_COMPACT_LEN, vec![0xff, 0xff, 0xff])] {
            let jpeg = vec![0x5a; len];
            let mut out = Vec::new();
            write_jpeg_rect(&mut out, &Rect::new(7, 8, 2048, 1), &jpeg).unwrap();
            assert_eq!(&out[..12], [0, 7, 0, 8, 8, 0, 0, 1, 0, 0, 0, 7]);
            assert_eq!(out[12], 0x90);
            assert_eq!(&out[13..13 + header.len()], header);
            let (_, _, _, data, rest) = parse(&out);
            assert_eq!((data.len(), rest.len()), (len, 0));
        }
    }

    #[test]
    fn limits_are_errors_that_write_nothing() {
        let mut out = vec![1, 2, 3];
        let big = vec![0; MAX_COMPACT_LEN + 1];
        assert_eq!(
            write_jpeg_rect(&mut out, &Rect::new(0, 0, 100, 100), &big),
            Err(PassthroughError::TooLarge(4_194_304))
        );
        assert_eq!(
            write_jpeg_rect(&mut out, &Rect::new(0, 0, 2049, 10), &[0; 200]),
            Err(PassthroughError::TooWide(2049))
        );
        assert_eq!(write_jpeg_rect(&mut out, &Rect::new(0, 0, 0, 10), &[0; 200]), Err(PassthroughError::EmptyRect));
        assert_eq!(out, [1, 2, 3]);
    }
}
