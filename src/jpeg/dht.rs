//! The missing Huffman table. Cheap UVC grabbers (and Motion-JPEG in general, see the AVI1
//! convention) leave out the DHT segment and expect the decoder to assume the "typical" tables
//! of the JPEG standard. libjpeg-turbo does (so TigerVNC's viewer copes), browsers do not (so
//! noVNC shows nothing). ustreamer inserts the standard tables before SOF0 when no DHT precedes
//! the first SOS (`encoders/hw/encoder.c` `_copy_plus_huffman`); so does [`ensure_dht`].

use std::borrow::Cow;

use super::JpegError;
use super::markers::{self, DHT, SOS};

// ITU T.81 annex K.3.3.1 (Tables K.3, K.4) and K.3.3.2 (Tables K.5, K.6): for each table the
// number of codes of each length 1..=16, then the symbols in code order.

/// Table K.3: luminance DC differences.
const DC_LUMINANCE_COUNTS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_LUMINANCE_SYMBOLS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/// Table K.4: chrominance DC differences.
const DC_CHROMINANCE_COUNTS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_CHROMINANCE_SYMBOLS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/// Table K.5: luminance AC coefficients (run/size symbols).
const AC_LUMINANCE_COUNTS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
#[rustfmt::skip]
const AC_LUMINANCE_SYMBOLS: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

/// Table K.6: chrominance AC coefficients.
const AC_CHROMINANCE_COUNTS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
#[rustfmt::skip]
const AC_CHROMINANCE_SYMBOLS: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

/// Bytes of the DHT segment: marker (2), length (2), then per table class/id (1), counts (16)
/// and symbols.
const STANDARD_DHT_LEN: usize = 4 + 4 * 17 + 12 + 12 + 162 + 162;

/// The four standard tables as one DHT segment (marker included): DC luminance (class 0, id 0),
/// AC luminance (1, 0), DC chrominance (0, 1), AC chrominance (1, 1); the order ustreamer uses.
pub const STANDARD_DHT: [u8; STANDARD_DHT_LEN] = build_standard_dht();

const fn build_standard_dht() -> [u8; STANDARD_DHT_LEN] {
    let mut out = [0u8; STANDARD_DHT_LEN];
    out[0] = 0xff;
    out[1] = DHT;
    let len = (STANDARD_DHT_LEN - 2) as u16;
    out[2] = (len >> 8) as u8;
    out[3] = len as u8;
    let mut pos = 4;
    pos = put_table(&mut out, pos, 0x00, &DC_LUMINANCE_COUNTS, &DC_LUMINANCE_SYMBOLS);
    pos = put_table(&mut out, pos, 0x10, &AC_LUMINANCE_COUNTS, &AC_LUMINANCE_SYMBOLS);
    pos = put_table(&mut out, pos, 0x01, &DC_CHROMINANCE_COUNTS, &DC_CHROMINANCE_SYMBOLS);
    pos = put_table(&mut out, pos, 0x11, &AC_CHROMINANCE_COUNTS, &AC_CHROMINANCE_SYMBOLS);
    assert!(pos == STANDARD_DHT_LEN);
    out
}

const fn put_table(
    out: &mut [u8; STANDARD_DHT_LEN],
    mut pos: usize,
    class_id: u8,
    counts: &[u8; 16],
    symbols: &[u8],
) -> usize {
    out[pos] = class_id;
    pos += 1;
    let mut i = 0;
    let mut total = 0;
    while i < 16 {
        out[pos] = counts[i];
        total += counts[i] as usize;
        pos += 1;
        i += 1;
    }
    assert!(total == symbols.len());
    i = 0;
    while i < symbols.len() {
        out[pos] = symbols[i];
        pos += 1;
        i += 1;
    }
    pos
}

/// Whether a DHT segment precedes the first scan.
pub fn has_dht(jpeg: &[u8]) -> Result<bool, JpegError> {
    Ok(markers::read_headers(jpeg)?.dht)
}

/// `jpeg` unchanged when it carries a Huffman table before its first scan (or is
/// arithmetic-coded, needing none); else a copy with [`STANDARD_DHT`] inserted right before the
/// frame header (SOFn), as ustreamer does. Errors on a malformed header or a missing SOF.
pub fn ensure_dht(jpeg: &[u8]) -> Result<Cow<'_, [u8]>, JpegError> {
    let headers = markers::read_headers(jpeg)?;
    let sof = headers.sof.ok_or(JpegError::NoFrameHeader)?;
    if headers.dht || !markers::is_huffman_sof(sof.marker) {
        return Ok(Cow::Borrowed(jpeg));
    }
    let (head, tail) = jpeg.split_at_checked(sof.start).ok_or(JpegError::Truncated)?;
    let mut out = Vec::with_capacity(jpeg.len() + STANDARD_DHT.len());
    out.extend_from_slice(head);
    out.extend_from_slice(&STANDARD_DHT);
    out.extend_from_slice(tail);
    Ok(Cow::Owned(out))
}

/// `jpeg` without the DHT segments before its first scan: what a cheap dongle sends. Decodable
/// only if the frame was encoded with the standard tables. For tests and fixture tools.
pub fn strip_dht(jpeg: &[u8]) -> Result<Cow<'_, [u8]>, JpegError> {
    let mut dht = Vec::new();
    let mut sos_start = None;
    for segment in markers::header_segments(jpeg)? {
        let segment = segment?;
        match segment.marker {
            DHT => dht.push(segment.start..segment.end),
            SOS => sos_start = Some(segment.start),
            _ => {}
        }
    }
    if sos_start.is_none() {
        return Err(JpegError::NoScan);
    }
    if dht.is_empty() {
        return Ok(Cow::Borrowed(jpeg));
    }
    let mut out = Vec::with_capacity(jpeg.len());
    let mut pos = 0;
    for range in dht {
        out.extend_from_slice(jpeg.get(pos..range.start).unwrap_or_default());
        pos = range.end;
    }
    out.extend_from_slice(jpeg.get(pos..).unwrap_or_default());
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn standard_table_layout() {
        // 0x01A2 = 418: the length ustreamer's table carries.
        assert_eq!(&STANDARD_DHT[..5], [0xff, 0xc4, 0x01, 0xa2, 0x00]);
        assert_eq!(STANDARD_DHT.len(), 420);
        let class_ids: Vec<u8> = [4, 4 + 17 + 12, 4 + 2 * 17 + 12 + 162, 4 + 3 * 17 + 24 + 162]
            .into_iter()
            .map(|i| STANDARD_DHT[i])
            .collect();
        assert_eq!(class_ids, [0x00, 0x10, 0x01, 0x11]);
    }

    /// The tables equal the ones libjpeg-turbo's encoder writes when it does not optimise:
    /// collect the symbols of every DHT it emits and compare.
    #[test]
    fn tables_match_libjpeg_turbo_defaults() {
        let jpeg = encode_rgb(&synthetic_rgb(64, 48), 64, 48, 75);
        let mut tables = Vec::new();
        for segment in markers::header_segments(&jpeg).unwrap() {
            let segment = segment.unwrap();
            if segment.marker == DHT {
                let mut body = &jpeg[segment.start + 4..segment.end];
                while let Some((&class_id, rest)) = body.split_first() {
                    let n: usize = rest[..16].iter().map(|&c| usize::from(c)).sum();
                    tables.push((class_id, rest[..16 + n].to_vec()));
                    body = &rest[16 + n..];
                }
            }
        }
        tables.sort();
        let mut ours = Vec::new();
        let mut body = &STANDARD_DHT[4..];
        while let Some((&class_id, rest)) = body.split_first() {
            let n: usize = rest[..16].iter().map(|&c| usize::from(c)).sum();
            ours.push((class_id, rest[..16 + n].to_vec()));
            body = &rest[16 + n..];
        }
        ours.sort();
        assert_eq!(tables, ours);
    }

    #[test]
    fn inserted_table_makes_frames_decodable_everywhere() {
        let jpeg = encode_png("desktop-1080p.png", 80);
        let reference = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::RGB).unwrap();
        assert!(matches!(ensure_dht(&jpeg), Ok(Cow::Borrowed(_))));

        let nodht = strip_dht(&jpeg).unwrap().into_owned();
        assert!(nodht.len() < jpeg.len());
        assert_eq!(has_dht(&nodht), Ok(false));
        // Before: the pure-Rust decoder (zune-jpeg, as in image) refuses it, like a browser.
        assert!(image::load_from_memory_with_format(&nodht, image::ImageFormat::Jpeg).is_err());

        let fixed = ensure_dht(&nodht).unwrap();
        assert!(matches!(fixed, Cow::Owned(_)));
        assert_eq!(fixed.len(), nodht.len() + STANDARD_DHT.len());
        assert_eq!(has_dht(&fixed), Ok(true));
        // The table goes right before SOF0.
        let sof = fixed.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        assert_eq!(&fixed[sof - STANDARD_DHT.len()..sof], STANDARD_DHT);
        // After: both decoders read it, with the pixels of the original frame.
        let decoded = image::load_from_memory_with_format(&fixed, image::ImageFormat::Jpeg).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (1920, 1080));
        let max_diff = decoded.as_raw().iter().zip(&reference.pixels).map(|(a, b)| a.abs_diff(*b)).max();
        assert!(max_diff.unwrap() <= 8, "zune vs libjpeg-turbo differ by {max_diff:?}");
        let turbo = turbojpeg::decompress(&fixed, turbojpeg::PixelFormat::RGB).unwrap();
        assert_eq!(turbo.pixels, reference.pixels);
        // libjpeg-turbo itself assumes the standard tables (jdhuff.c), so TigerVNC's viewer copes
        // even without insertion; browsers (noVNC) do not.
        let lenient = turbojpeg::decompress(&nodht, turbojpeg::PixelFormat::RGB).unwrap();
        assert_eq!(lenient.pixels, reference.pixels);
    }

    #[test]
    fn the_fixture_without_dht_matches_the_one_with() {
        let with = std::fs::read(fixture("sequences/desktop-moving-window.mjpeg")).unwrap();
        let without = std::fs::read(fixture("sequences/desktop-moving-window-nodht.mjpeg")).unwrap();
        let with: Vec<&[u8]> = super::super::split_mjpeg(&with).map(Result::unwrap).collect();
        let without: Vec<&[u8]> = super::super::split_mjpeg(&without).map(Result::unwrap).collect();
        assert_eq!((with.len(), without.len()), (15, 15));
        for (a, b) in with.iter().zip(&without) {
            assert_eq!(has_dht(a), Ok(true));
            assert_eq!(has_dht(b), Ok(false));
            let fixed = ensure_dht(b).unwrap();
            let a = image::load_from_memory_with_format(a, image::ImageFormat::Jpeg).unwrap();
            let b = image::load_from_memory_with_format(&fixed, image::ImageFormat::Jpeg).unwrap();
            assert_eq!(a.to_rgb8().as_raw(), b.to_rgb8().as_raw());
        }
    }

    #[test]
    fn arithmetic_and_broken_frames() {
        let jpeg = encode_rgb(&synthetic_rgb(64, 48), 64, 48, 75);
        let mut arithmetic = strip_dht(&jpeg).unwrap().into_owned();
        let sof = arithmetic.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        arithmetic[sof + 1] = 0xc9;
        assert!(matches!(ensure_dht(&arithmetic), Ok(Cow::Borrowed(_))));
        assert_eq!(ensure_dht(&jpeg[..10]), Err(JpegError::Truncated));
        assert_eq!(ensure_dht(b"not a jpeg"), Err(JpegError::NoStart));
    }
}
