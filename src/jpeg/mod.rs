//! JPEG frames as capture dongles send them (MJPEG): splitting a stream of concatenated JPEGs,
//! validating frames, inserting the missing Huffman table, cheap damage detection and full
//! decoding. libjpeg-turbo (the `turbojpeg` crate, NEON on the board) does all decoding.
//!
//! How a JPEG frame's damage is found without decoding it fully (see [`JpegDamage`]):
//!
//! 1. A frame byte-identical to the previous one is dropped (`memcmp`, like ustreamer's
//!    `--drop-same-frames`).
//! 2. Otherwise the frame is decoded scaled down 1/8. libjpeg-turbo then computes each output
//!    pixel from the DC coefficient of an 8x8 block alone (no IDCT, a fraction of the colour
//!    conversion), so the cost is mostly the Huffman decoding: about 1/4 to 1/3 of a full decode
//!    (1080p on an x86-64 core: 3.3-4.1 ms against 12-14 ms). Each small pixel is compared with
//!    its value when last reported; one that moved by more than a threshold (default 3, for
//!    capture noise) marks its 8x8 block, plus one block of margin all round (chroma
//!    upsampling, the neighbouring blocks of a 4:2:2 or 4:2:0 MCU), as changed.
//! 3. While the stream is in sustained broad motion (a video, a scroll), frames are not decoded
//!    at all: they are reported as wholly changed, and one in 30 is decoded (with the next) to
//!    see whether the motion has died down.
//!
//! A change that keeps every block's average colour (within the threshold) is held back until
//! the caller asks for a settle ([`JpegDamage::settle`]) once the stream has gone quiet. A full
//! decode ([`JpegDecoder`]) is needed only for viewers that take pixels rather than the JPEG.

pub mod crop;
mod damage;
mod decode;
mod dht;
mod markers;
mod split;

pub use damage::{BROAD_CHANGE_DIVISOR, DEFAULT_THRESHOLD, JpegChange, JpegDamage};
pub use decode::{JpegDecoder, decode_to_frame};
pub use dht::{STANDARD_DHT, ensure_dht, has_dht, strip_dht};
pub use markers::jpeg_len;
pub use split::{MjpegError, MjpegFrames, split_mjpeg};

/// The smallest frame accepted (ustreamer drops smaller ones as broken).
pub const MIN_JPEG_LEN: usize = 128;
/// The most pixels a frame may have (8K UHD, 7680x4320); a larger header is taken as corrupt
/// rather than decoded into hundreds of megabytes.
pub const MAX_PIXELS: usize = 7680 * 4320;

/// What is wrong with a JPEG frame. Offsets count from the frame's first byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    #[error("JPEG frame of {0} bytes is too small (at least 128 expected)")]
    TooSmall(usize),
    #[error("no JPEG start-of-image marker (FF D8)")]
    NoStart,
    #[error("JPEG data ends early (truncated frame)")]
    Truncated,
    #[error("{0} bytes after the JPEG's end-of-image marker")]
    TrailingData(usize),
    #[error("unexpected byte 0x{byte:02X} where a JPEG marker should be, at offset {offset}")]
    BadMarker { offset: usize, byte: u8 },
    #[error("bad JPEG segment length {len} at offset {offset}")]
    BadLength { offset: usize, len: u16 },
    #[error("JPEG ends before its first scan")]
    NoScan,
    #[error("JPEG has no frame header (SOF) before its scan")]
    NoFrameHeader,
    #[error("unsupported JPEG type SOF{0} (only baseline and extended sequential Huffman, SOF0/SOF1)")]
    Unsupported(u8),
    #[error("unsupported JPEG frame header: {width}x{height}, {precision}-bit, {components} components")]
    BadFrameHeader { width: u16, height: u16, precision: u8, components: u8 },
    #[error("JPEG frame of {width}x{height} exceeds the {MAX_PIXELS}-pixel limit")]
    TooManyPixels { width: u16, height: u16 },
    #[error("JPEG decoder: {0}")]
    Codec(String),
}

impl From<turbojpeg::Error> for JpegError {
    fn from(e: turbojpeg::Error) -> Self {
        JpegError::Codec(e.to_string())
    }
}

/// What [`validate`] found out about a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    pub width: u16,
    pub height: u16,
    /// Whether a Huffman table segment comes before the first scan (see [`ensure_dht`]).
    pub has_dht: bool,
    /// The MCU's size in pixels: where a lossless crop may start (see [`crop`]).
    pub mcu: (u16, u16),
    /// Baseline (SOF0) rather than extended sequential (SOF1): noVNC's decoder for the JPEG
    /// encoding (21) finds no frame header in the latter.
    pub baseline: bool,
}

/// Checks that `jpeg` is one complete frame that viewers can decode: at least 128 bytes, SOI
/// first, well-formed marker segments, a baseline or extended sequential Huffman frame header
/// (SOF0/SOF1, 8-bit, 1 or 3 components, non-zero size up to [`MAX_PIXELS`]) before the first
/// scan, and the end-of-image marker as the last two bytes (use [`jpeg_len`] to cut a frame out
/// of a padded capture buffer first). Walks the headers and scans the entropy-coded data for
/// markers; decodes nothing.
pub fn validate(jpeg: &[u8]) -> Result<JpegInfo, JpegError> {
    if jpeg.len() < MIN_JPEG_LEN {
        return Err(JpegError::TooSmall(jpeg.len()));
    }
    let headers = markers::read_headers(jpeg)?;
    let sof = headers.sof.ok_or(JpegError::NoFrameHeader)?;
    if !matches!(sof.marker, markers::SOF0 | markers::SOF1) {
        return Err(JpegError::Unsupported(sof.marker - markers::SOF0));
    }
    if sof.width == 0 || sof.height == 0 || sof.precision != 8 || !matches!(sof.components, 1 | 3) {
        return Err(JpegError::BadFrameHeader {
            width: sof.width,
            height: sof.height,
            precision: sof.precision,
            components: sof.components,
        });
    }
    if usize::from(sof.width) * usize::from(sof.height) > MAX_PIXELS {
        return Err(JpegError::TooManyPixels { width: sof.width, height: sof.height });
    }
    let len = jpeg_len(jpeg)?;
    if len != jpeg.len() {
        return Err(JpegError::TrailingData(jpeg.len() - len));
    }
    Ok(JpegInfo {
        width: sof.width,
        height: sof.height,
        has_dht: headers.dht,
        mcu: sof.mcu,
        baseline: sof.marker == markers::SOF0,
    })
}

#[cfg(test)]
pub(crate) mod test_util {
    //! JPEGs for the tests: made with libjpeg-turbo from fixture PNGs or synthetic pixels.

    use std::path::{Path, PathBuf};

    pub fn fixture(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(path)
    }

    /// RGB pixels and size of a PNG fixture.
    pub fn load_rgb(path: &str) -> (Vec<u8>, usize, usize) {
        let image = image::open(fixture(path)).unwrap().to_rgb8();
        let (w, h) = image.dimensions();
        (image.into_raw(), w as usize, h as usize)
    }

    /// A baseline 4:2:2 JPEG with the standard Huffman tables (as dongles make them), from RGB.
    pub fn encode_rgb(rgb: &[u8], width: usize, height: usize, quality: i32) -> Vec<u8> {
        let mut compressor = turbojpeg::Compressor::new().unwrap();
        compressor.set_quality(quality).unwrap();
        compressor.set_subsamp(turbojpeg::Subsamp::Sub2x1).unwrap();
        compressor.set_optimize(false).unwrap();
        let image =
            turbojpeg::Image { pixels: rgb, width, pitch: width * 3, height, format: turbojpeg::PixelFormat::RGB };
        compressor.compress_to_vec(image).unwrap()
    }

    pub fn encode_png(path: &str, quality: i32) -> Vec<u8> {
        let (rgb, w, h) = load_rgb(path);
        encode_rgb(&rgb, w, h, quality)
    }

    /// A `width`x`height` test picture: a gradient with a few flat boxes.
    pub fn synthetic_rgb(width: usize, height: usize) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                let boxed = (x / 40 + y / 30) % 3 == 0;
                let (r, g, b) =
                    if boxed { (240, 200, 40) } else { ((x * 255 / width) as u8, (y * 255 / height) as u8, 90) };
                rgb.extend_from_slice(&[r, g, b]);
            }
        }
        rgb
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn validates_a_real_frame() {
        let jpeg = encode_png("desktop-1080p.png", 80);
        assert_eq!(
            validate(&jpeg),
            Ok(JpegInfo { width: 1920, height: 1080, has_dht: true, mcu: (16, 8), baseline: true })
        );
        let nodht = strip_dht(&jpeg).unwrap();
        assert_eq!(
            validate(&nodht),
            Ok(JpegInfo { width: 1920, height: 1080, has_dht: false, mcu: (16, 8), baseline: true })
        );
        // The same frame marked extended sequential (SOF1: same tables and data), which noVNC's
        // JPEG (21) decoder does not know.
        let mut sof1 = jpeg.to_vec();
        let at = sof1.windows(2).position(|w| w == [0xff, 0xc0]).expect("SOF0");
        sof1[at + 1] = 0xc1;
        assert_eq!(validate(&sof1).map(|info| info.baseline), Ok(false));
    }

    #[test]
    fn rejects_broken_frames() {
        let jpeg = encode_rgb(&synthetic_rgb(64, 48), 64, 48, 75);
        assert!(validate(&jpeg).is_ok());
        assert_eq!(validate(&jpeg[..100]), Err(JpegError::TooSmall(100)));
        assert_eq!(validate(&jpeg[..jpeg.len() - 1]), Err(JpegError::Truncated));
        assert_eq!(validate(&jpeg[..jpeg.len() / 2]), Err(JpegError::Truncated));
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(validate(&padded), Err(JpegError::TrailingData(3)));
        let mut no_soi = jpeg.clone();
        no_soi[1] = 0xd9;
        assert_eq!(validate(&no_soi), Err(JpegError::NoStart));
        // Progressive: SOF2.
        let mut progressive = jpeg.clone();
        let sof = progressive.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        progressive[sof + 1] = 0xc2;
        assert_eq!(validate(&progressive), Err(JpegError::Unsupported(2)));
        // Height 0 (defined by a DNL marker, which nobody supports).
        let mut no_height = jpeg.clone();
        no_height[sof + 5..sof + 7].copy_from_slice(&[0, 0]);
        assert!(matches!(validate(&no_height), Err(JpegError::BadFrameHeader { height: 0, .. })));
        let mut huge = jpeg.clone();
        huge[sof + 5..sof + 9].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(validate(&huge), Err(JpegError::TooManyPixels { width: 65535, height: 65535 }));
        // A segment length running past the end.
        let mut long = jpeg.clone();
        long[4..6].copy_from_slice(&[0xff, 0xf0]);
        assert_eq!(validate(&long), Err(JpegError::Truncated));
        let mut short = jpeg.clone();
        short[4..6].copy_from_slice(&[0, 1]);
        assert_eq!(validate(&short), Err(JpegError::BadLength { offset: 4, len: 1 }));
    }

    #[test]
    fn no_input_panics() {
        // Every prefix, and every single-byte corruption of the header area, of a small JPEG
        // gives a result rather than a panic; so do a few patterns of garbage.
        let jpeg = encode_rgb(&synthetic_rgb(32, 16), 32, 16, 50);
        for end in 0..=jpeg.len() {
            let _ = validate(&jpeg[..end]);
            let _ = ensure_dht(&jpeg[..end]);
            let _ = strip_dht(&jpeg[..end]);
            let _ = jpeg_len(&jpeg[..end]);
            let _ = split_mjpeg(&jpeg[..end]).count();
        }
        let mut decoder = JpegDecoder::new().unwrap();
        let mut damage = JpegDamage::new();
        for i in 0..jpeg.len().min(700) {
            for byte in [0x00, 0xff, 0xd9, 0xc4, 0x7f] {
                let mut bad = jpeg.clone();
                bad[i] = byte;
                let _ = validate(&bad);
                let _ = ensure_dht(&bad);
                let _ = split_mjpeg(&bad).count();
                let _ = decoder.decode(&bad);
                let _ = damage.compare(&bad);
            }
        }
        for garbage in [vec![0xff; 300], vec![0; 300], [0xff, 0xd8].repeat(100), [0xff, 0xd8, 0xff].repeat(100)] {
            assert!(validate(&garbage).is_err());
            let _ = split_mjpeg(&garbage).count();
            assert!(decoder.decode(&garbage).is_err());
        }
    }
}
