//! Raw V4L2 capture buffers (packed and semi-planar YUV, packed RGB) into the native framebuffer
//! (bytes B, G, R, 0; see [`rfb::Frame`]). MJPEG is not handled here: it goes to the JPEG path.
//!
//! YUV goes through the `yuv` crate, which picks NEON / AVX2 / SSE at run time (a naive scalar
//! loop was 5× slower per 1080p frame in hardware.md §6). Line padding (`bytes_per_line` larger
//! than the pixel row) is handed to the crate as the source stride: no copies.
//!
//! Precision against the floating-point BT.601/709 equations: within 1 level per channel for
//! NV12/NV16 (the crate's 13-bit "Balanced" mode), within 3 for YUYV/UYVY (its packed 4:2:2
//! path has only 6-bit coefficients); packed RGB is exact. The crate clips limited-range luma
//! below 16 (sub-black footroom, not a legal picture value) to 16 before the matrix.

use rfb::Frame;
use rfb::frame::NATIVE_BYTES_PER_PIXEL;
use yuv::{
    YuvBiPlanarImage, YuvConversionMode, YuvPackedImage, YuvRange, YuvStandardMatrix, bgr_to_bgra, rgb_to_bgra,
    uyvy422_to_bgra, yuv_nv12_to_bgra, yuv_nv16_to_bgra, yuyv422_to_bgra,
};

/// Raw capture formats kvnc converts. The 32-bit RGB variants are named after their
/// `V4L2_PIX_FMT_*` constants, whose names do *not* give the byte order in memory (e.g. 'XR24',
/// `XBGR32`, is bytes B, G, R, X); each variant's doc gives the memory order. Alpha is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawFormat {
    /// 'YUYV': packed 4:2:2, bytes Y0 Cb Y1 Cr (USB capture dongles).
    Yuyv,
    /// 'UYVY': packed 4:2:2, bytes Cb Y0 Cr Y1 (the TC358743 HDMI-to-CSI bridge).
    Uyvy,
    /// 'NV12': a Y plane, then interleaved Cb Cr at half width and half height (4:2:0), both
    /// planes with the same line stride.
    Nv12,
    /// 'NV16': like NV12 with a full-height chroma plane (4:2:2).
    Nv16,
    /// 'RGB3': bytes R, G, B.
    Rgb24,
    /// 'BGR3': bytes B, G, R.
    Bgr24,
    /// 'XR24': bytes B, G, R, X (the native layout).
    Xbgr32,
    /// 'AR24': bytes B, G, R, A.
    Abgr32,
    /// 'RX24': bytes X, B, G, R.
    Bgrx32,
    /// 'RA24': bytes A, B, G, R.
    Bgra32,
    /// 'XB24': bytes R, G, B, X.
    Rgbx32,
    /// 'AB24': bytes R, G, B, A.
    Rgba32,
    /// 'BX24': bytes X, R, G, B.
    Xrgb32,
    /// 'BA24': bytes A, R, G, B.
    Argb32,
}

/// Every format with its fourcc, for both directions of the mapping.
const FOURCCS: [(RawFormat, [u8; 4]); 14] = [
    (RawFormat::Yuyv, *b"YUYV"),
    (RawFormat::Uyvy, *b"UYVY"),
    (RawFormat::Nv12, *b"NV12"),
    (RawFormat::Nv16, *b"NV16"),
    (RawFormat::Rgb24, *b"RGB3"),
    (RawFormat::Bgr24, *b"BGR3"),
    (RawFormat::Xbgr32, *b"XR24"),
    (RawFormat::Abgr32, *b"AR24"),
    (RawFormat::Bgrx32, *b"RX24"),
    (RawFormat::Bgra32, *b"RA24"),
    (RawFormat::Rgbx32, *b"XB24"),
    (RawFormat::Rgba32, *b"AB24"),
    (RawFormat::Xrgb32, *b"BX24"),
    (RawFormat::Argb32, *b"BA24"),
];

impl RawFormat {
    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<RawFormat> {
        FOURCCS.iter().find(|(_, f)| *f == fourcc).map(|(format, _)| *format)
    }

    pub fn fourcc(self) -> [u8; 4] {
        FOURCCS.iter().find(|(format, _)| *format == self).map_or(*b"????", |(_, f)| *f)
    }

    pub fn is_yuv(self) -> bool {
        matches!(self, RawFormat::Yuyv | RawFormat::Uyvy | RawFormat::Nv12 | RawFormat::Nv16)
    }

    /// Whether the width must be even: chroma is shared by pixel pairs, and V4L2 requires even
    /// widths for these formats (the crate would need a half pair at the end of each row).
    fn needs_even_width(self) -> bool {
        self.is_yuv()
    }

    /// The fewest bytes one line of `width` pixels takes (of the Y plane, for NV12/NV16); a
    /// `bytes_per_line` below this is invalid.
    pub fn min_bytes_per_line(self, width: u16) -> usize {
        let bytes_per_pixel = match self {
            RawFormat::Nv12 | RawFormat::Nv16 => 1,
            RawFormat::Yuyv | RawFormat::Uyvy => 2,
            RawFormat::Rgb24 | RawFormat::Bgr24 => 3,
            _ => 4,
        };
        usize::from(width) * bytes_per_pixel
    }

    /// Bytes of a frame of `height` lines `bytes_per_line` apart, padding of the last line
    /// included (V4L2's `sizeimage` for single-planar formats); what a buffer must hold.
    /// Saturates instead of overflowing (no buffer is that long).
    pub fn frame_len(self, height: u32, bytes_per_line: u32) -> usize {
        let lines = match self {
            // The chroma plane follows the Y plane with the same stride: ceil(h/2) or h lines.
            RawFormat::Nv12 => u64::from(height) + u64::from(height).div_ceil(2),
            RawFormat::Nv16 => 2 * u64::from(height),
            _ => u64::from(height),
        };
        usize::try_from(lines * u64::from(bytes_per_line)).unwrap_or(usize::MAX)
    }
}

/// The YCbCr-to-RGB matrix a device encodes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum YuvMatrix {
    Bt601,
    Bt709,
    Bt2020,
}

/// How to decode a device's YCbCr: matrix and quantization range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct YuvParams {
    pub matrix: YuvMatrix,
    /// Y and Cb/Cr span 0–255 (JPEG style) rather than 16–235 / 16–240.
    pub full_range: bool,
}

// Values of the V4L2 enums from <linux/videodev2.h> (`v4l2_pix_format` fields).
const V4L2_COLORSPACE_DEFAULT: u32 = 0;
const V4L2_COLORSPACE_SMPTE240M: u32 = 2;
const V4L2_COLORSPACE_REC709: u32 = 3;
const V4L2_COLORSPACE_JPEG: u32 = 7;
const V4L2_COLORSPACE_BT2020: u32 = 10;
const V4L2_COLORSPACE_DCI_P3: u32 = 12;
const V4L2_YCBCR_ENC_601: u32 = 1;
const V4L2_YCBCR_ENC_709: u32 = 2;
const V4L2_YCBCR_ENC_XV601: u32 = 3;
const V4L2_YCBCR_ENC_XV709: u32 = 4;
const V4L2_YCBCR_ENC_SYCC: u32 = 5;
const V4L2_YCBCR_ENC_BT2020: u32 = 6;
const V4L2_YCBCR_ENC_BT2020_CONST_LUM: u32 = 7;
const V4L2_YCBCR_ENC_SMPTE240M: u32 = 8;
const V4L2_QUANTIZATION_FULL_RANGE: u32 = 1;
const V4L2_QUANTIZATION_LIM_RANGE: u32 = 2;

impl YuvParams {
    /// What a device's format says it sends, with V4L2's rules for the `DEFAULT` values
    /// (videodev2.h `V4L2_MAP_*_DEFAULT`):
    /// * `ycbcr_enc` DEFAULT follows the colorspace: REC709 and DCI-P3 → BT.709, BT2020 →
    ///   BT.2020, everything else (SMPTE170M, sRGB, JPEG, …) → BT.601. A DEFAULT colorspace
    ///   means SDTV → BT.601, HDTV → BT.709; here HD is `height >= 720`.
    /// * `quantization` DEFAULT is limited range for YCbCr, except full range for the JPEG
    ///   colorspace.
    ///
    /// The `v4l` crate's `Format` has no `ycbcr_enc`: pass 0 (DEFAULT) then.
    /// Approximations: SMPTE 240M (obsolete) is decoded as BT.709, which it nearly equals;
    /// BT.2020 constant luminance as BT.2020 non-constant; the xvYCC extended-gamut encodings
    /// as their base matrices (values outside 16–240 are clamped).
    pub fn from_v4l2(height: u32, colorspace: u32, ycbcr_enc: u32, quantization: u32) -> YuvParams {
        let matrix = match ycbcr_enc {
            V4L2_YCBCR_ENC_601 | V4L2_YCBCR_ENC_XV601 | V4L2_YCBCR_ENC_SYCC => YuvMatrix::Bt601,
            V4L2_YCBCR_ENC_709 | V4L2_YCBCR_ENC_XV709 | V4L2_YCBCR_ENC_SMPTE240M => YuvMatrix::Bt709,
            V4L2_YCBCR_ENC_BT2020 | V4L2_YCBCR_ENC_BT2020_CONST_LUM => YuvMatrix::Bt2020,
            // DEFAULT (0), and values newer than this code: derive from the colorspace.
            _ => match colorspace {
                V4L2_COLORSPACE_REC709 | V4L2_COLORSPACE_DCI_P3 | V4L2_COLORSPACE_SMPTE240M => YuvMatrix::Bt709,
                V4L2_COLORSPACE_BT2020 => YuvMatrix::Bt2020,
                V4L2_COLORSPACE_DEFAULT if height >= 720 => YuvMatrix::Bt709,
                _ => YuvMatrix::Bt601,
            },
        };
        let full_range = match quantization {
            V4L2_QUANTIZATION_FULL_RANGE => true,
            V4L2_QUANTIZATION_LIM_RANGE => false,
            _ => colorspace == V4L2_COLORSPACE_JPEG,
        };
        YuvParams { matrix, full_range }
    }

    fn range(self) -> YuvRange {
        if self.full_range { YuvRange::Full } else { YuvRange::Limited }
    }

    fn standard_matrix(self) -> YuvStandardMatrix {
        match self.matrix {
            YuvMatrix::Bt601 => YuvStandardMatrix::Bt601,
            YuvMatrix::Bt709 => YuvStandardMatrix::Bt709,
            YuvMatrix::Bt2020 => YuvStandardMatrix::Bt2020,
        }
    }
}

/// A capture buffer that cannot be converted as described.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("a {width}x{height} frame has no pixels")]
    Empty { width: u16, height: u16 },
    #[error("{format:?} needs an even width, got {width}")]
    OddWidth { format: RawFormat, width: u16 },
    #[error("{format:?} lines of {width} pixels take {needed} bytes, but bytes_per_line is {bytes_per_line}")]
    BadStride { format: RawFormat, width: u16, bytes_per_line: u32, needed: usize },
    #[error("a {format:?} frame needs {needed} bytes, the buffer has {got}")]
    TooShort { format: RawFormat, needed: usize, got: usize },
    /// The crate refused the buffers; the checks above should make this unreachable.
    #[error("YUV conversion failed: {0}")]
    Yuv(#[from] yuv::YuvError),
}

/// Converts one captured buffer into `frame`: `data` holds the bytes used, lines
/// `bytes_per_line` apart (any padding after the pixels of a line is skipped). `frame` is reused
/// between captures to avoid an allocation per frame; it is replaced by a new one only when the
/// size differs. On error `frame` is left as it was.
pub fn convert(
    format: RawFormat,
    params: YuvParams,
    width: u16,
    height: u16,
    bytes_per_line: u32,
    data: &[u8],
    frame: &mut Frame,
) -> Result<(), ConvertError> {
    if width == 0 || height == 0 {
        return Err(ConvertError::Empty { width, height });
    }
    if format.needs_even_width() && !width.is_multiple_of(2) {
        return Err(ConvertError::OddWidth { format, width });
    }
    let min_line = format.min_bytes_per_line(width);
    let stride = usize::try_from(bytes_per_line).unwrap_or(usize::MAX);
    if stride < min_line {
        return Err(ConvertError::BadStride { format, width, bytes_per_line, needed: min_line });
    }
    let needed = format.frame_len(u32::from(height), bytes_per_line);
    // The crate walks rows with `chunks_exact(stride)` and wants the packed 4:2:2 buffer to be
    // exactly stride × height: give it whole lines, the last one's padding included.
    let Some(data) = data.get(..needed) else {
        return Err(ConvertError::TooShort { format, needed, got: data.len() });
    };

    if frame.width() != width || frame.height() != height {
        *frame = Frame::new(width, height);
    }
    let w = u32::from(width);
    let dst_stride = frame.stride();
    // At most 65535 × 4: fits.
    let dst_stride_u32 = dst_stride as u32;
    let dst = frame.pixels_mut();
    let (range, matrix) = (params.range(), params.standard_matrix());
    // Balanced: 13-bit fixed point (the faster mode is an opt-in crate feature). Only the
    // semi-planar conversions take a mode; packed 4:2:2 always uses 6-bit coefficients.
    let mode = YuvConversionMode::Balanced;
    // Whole lines `first..first + lines` of a plane starting at `plane`.
    let lines_of =
        |plane: usize, first: usize, lines: usize| &data[plane + first * stride..plane + (first + lines) * stride];
    let luma_len = stride * usize::from(height);

    match format {
        RawFormat::Yuyv | RawFormat::Uyvy => in_bands(dst, dst_stride, |first, lines, dst| {
            let image = YuvPackedImage {
                yuy: lines_of(0, first, lines),
                yuy_stride: bytes_per_line,
                width: w,
                height: lines as u32,
            };
            if format == RawFormat::Yuyv {
                yuyv422_to_bgra(&image, dst, dst_stride_u32, range, matrix)
            } else {
                uyvy422_to_bgra(&image, dst, dst_stride_u32, range, matrix)
            }
        })?,
        RawFormat::Nv12 => in_bands(dst, dst_stride, |first, lines, dst| {
            // Bands start on even lines, so chroma line `first / 2` belongs to the band's first
            // line; an odd last band has a chroma line of its own for its last line.
            let image = YuvBiPlanarImage {
                y_plane: lines_of(0, first, lines),
                y_stride: bytes_per_line,
                uv_plane: lines_of(luma_len, first / 2, lines.div_ceil(2)),
                uv_stride: bytes_per_line,
                width: w,
                height: lines as u32,
            };
            yuv_nv12_to_bgra(&image, dst, dst_stride_u32, range, matrix, mode)
        })?,
        RawFormat::Nv16 => in_bands(dst, dst_stride, |first, lines, dst| {
            let image = YuvBiPlanarImage {
                y_plane: lines_of(0, first, lines),
                y_stride: bytes_per_line,
                uv_plane: lines_of(luma_len, first, lines),
                uv_stride: bytes_per_line,
                width: w,
                height: lines as u32,
            };
            yuv_nv16_to_bgra(&image, dst, dst_stride_u32, range, matrix, mode)
        })?,
        RawFormat::Rgb24 => in_bands(dst, dst_stride, |first, lines, dst| {
            rgb_to_bgra(lines_of(0, first, lines), bytes_per_line, dst, dst_stride_u32, w, lines as u32)
        })?,
        RawFormat::Bgr24 => in_bands(dst, dst_stride, |first, lines, dst| {
            bgr_to_bgra(lines_of(0, first, lines), bytes_per_line, dst, dst_stride_u32, w, lines as u32)
        })?,
        // 32-bit RGB: one 32-bit shift or mask per pixel gives the native value 0x00RRGGBB,
        // where the crate's shuffles would leave the fourth byte to clear afterwards.
        RawFormat::Xbgr32 | RawFormat::Abgr32 => {
            shuffle_32(data, stride, dst, dst_stride, |p| u32::from_le_bytes(p) & 0x00ff_ffff);
        }
        RawFormat::Bgrx32 | RawFormat::Bgra32 => {
            shuffle_32(data, stride, dst, dst_stride, |p| u32::from_le_bytes(p) >> 8)
        }
        RawFormat::Rgbx32 | RawFormat::Rgba32 => {
            shuffle_32(data, stride, dst, dst_stride, |p| u32::from_be_bytes(p) >> 8)
        }
        RawFormat::Xrgb32 | RawFormat::Argb32 => {
            shuffle_32(data, stride, dst, dst_stride, |p| u32::from_be_bytes(p) & 0x00ff_ffff);
        }
    }
    Ok(())
}

/// Lines converted per crate call. The crate writes 255 into the fourth byte (alpha), which
/// native frames keep 0; clearing it band by band, while the band is still in cache, instead
/// of in a second pass over the whole frame (8 MB at 1080p) took a 1080p YUYV frame from 1.09
/// to 0.93 ms on x86 (the crate call alone: 0.77 ms), and the board's memory is slower still.
/// Even, so that NV12 bands start on a chroma line.
const BAND_LINES: usize = 16;

/// Runs `convert_band(first_line, lines, band_pixels)` over `dst` in bands of [`BAND_LINES`],
/// clearing the fourth byte of each band after it.
fn in_bands(
    dst: &mut [u8],
    dst_stride: usize,
    mut convert_band: impl FnMut(usize, usize, &mut [u8]) -> Result<(), yuv::YuvError>,
) -> Result<(), yuv::YuvError> {
    for (band, pixels) in dst.chunks_mut(dst_stride * BAND_LINES).enumerate() {
        convert_band(band * BAND_LINES, pixels.len() / dst_stride, pixels)?;
        clear_unused_byte(pixels);
    }
    Ok(())
}

/// Sets the fourth byte of every pixel to 0: native frames keep it 0 like every other source,
/// so frames from different paths compare equal.
fn clear_unused_byte(pixels: &mut [u8]) {
    // Two pixels per 64-bit word: the compiler vectorises this (0.30 ms per 1080p frame on x86,
    // as fast as a memset), where per-pixel u32 or byte stores took 0.45–0.6 ms.
    let mut pairs = pixels.chunks_exact_mut(2 * NATIVE_BYTES_PER_PIXEL);
    for pair in &mut pairs {
        let mut word = [0; 8];
        word.copy_from_slice(pair);
        pair.copy_from_slice(&(u64::from_le_bytes(word) & 0x00ff_ffff_00ff_ffff).to_le_bytes());
    }
    if let [_, _, _, x] = pairs.into_remainder() {
        *x = 0;
    }
}

/// Converts 4-byte pixels row by row: `native` maps a source pixel's bytes to `0x00RRGGBB`.
fn shuffle_32(data: &[u8], stride: usize, dst: &mut [u8], dst_stride: usize, native: impl Fn([u8; 4]) -> u32) {
    for (src_row, dst_row) in data.chunks(stride).zip(dst.chunks_exact_mut(dst_stride)) {
        // Validated: every line holds at least `dst_stride` bytes of pixels.
        let src_row = &src_row[..dst_stride];
        for (src, dst) in src_row.chunks_exact(4).zip(dst_row.chunks_exact_mut(NATIVE_BYTES_PER_PIXEL)) {
            dst.copy_from_slice(&native([src[0], src[1], src[2], src[3]]).to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_PARAMS: [YuvParams; 4] = [
        YuvParams { matrix: YuvMatrix::Bt601, full_range: false },
        YuvParams { matrix: YuvMatrix::Bt601, full_range: true },
        YuvParams { matrix: YuvMatrix::Bt709, full_range: false },
        YuvParams { matrix: YuvMatrix::Bt709, full_range: true },
    ];

    /// Kr and Kb as the standards give them: BT.601-7 §2.5.1 (0.299, 0.114), BT.709-6 item 3.2
    /// (0.2126, 0.0722), BT.2020-2 table 4 (0.2627, 0.0593).
    fn kr_kb(matrix: YuvMatrix) -> (f64, f64) {
        match matrix {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
            YuvMatrix::Bt2020 => (0.2627, 0.0593),
        }
    }

    /// Code values → normalised E'Y in [0, 1] and E'Cb, E'Cr in [-0.5, 0.5]: limited range puts
    /// black at 16 and white at 235 (219 steps), chroma 16–240 around 128 (224 steps); full range
    /// uses 255 steps for both (JFIF).
    fn normalise(params: YuvParams, y: u8, cb: u8, cr: u8) -> (f64, f64, f64) {
        let (y_off, y_range, c_range) = if params.full_range { (0.0, 255.0, 255.0) } else { (16.0, 219.0, 224.0) };
        ((f64::from(y) - y_off) / y_range, (f64::from(cb) - 128.0) / c_range, (f64::from(cr) - 128.0) / c_range)
    }

    /// The standards' inverse of E'Y = Kr·E'R + Kg·E'G + Kb·E'B, E'Cb = (E'B − E'Y) / (2(1 − Kb)),
    /// E'Cr = (E'R − E'Y) / (2(1 − Kr)), scaled to 0–255 and unrounded.
    fn reference_f64(params: YuvParams, y: u8, cb: u8, cr: u8) -> [f64; 3] {
        let (kr, kb) = kr_kb(params.matrix);
        let kg = 1.0 - kr - kb;
        let (ey, ecb, ecr) = normalise(params, y, cb, cr);
        let r = ey + 2.0 * (1.0 - kr) * ecr;
        let b = ey + 2.0 * (1.0 - kb) * ecb;
        let g = (ey - kr * r - kb * b) / kg;
        [r * 255.0, g * 255.0, b * 255.0]
    }

    fn reference_rgb(params: YuvParams, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        reference_f64(params, y, cb, cr).map(|c| c.round().clamp(0.0, 255.0) as u8)
    }

    /// The forward transform, to make saturated colours in a given encoding.
    fn encode(params: YuvParams, [r, g, b]: [u8; 3]) -> (u8, u8, u8) {
        let (kr, kb) = kr_kb(params.matrix);
        let (r, g, b) = (f64::from(r) / 255.0, f64::from(g) / 255.0, f64::from(b) / 255.0);
        let ey = kr * r + (1.0 - kr - kb) * g + kb * b;
        let (ecb, ecr) = ((b - ey) / (2.0 * (1.0 - kb)), (r - ey) / (2.0 * (1.0 - kr)));
        let (y_off, y_range, c_range) = if params.full_range { (0.0, 255.0, 255.0) } else { (16.0, 219.0, 224.0) };
        let q = |v: f64| v.round().clamp(0.0, 255.0) as u8;
        (q(y_off + ey * y_range), q(128.0 + ecb * c_range), q(128.0 + ecr * c_range))
    }

    #[test]
    fn reference_matches_published_coefficients() {
        // The usual rounded limited-range forms of the same equations.
        let bt601 = |y: f64, cb: f64, cr: f64| {
            let (y, cb, cr) = (y - 16.0, cb - 128.0, cr - 128.0);
            [1.164 * y + 1.596 * cr, 1.164 * y - 0.813 * cr - 0.391 * cb, 1.164 * y + 2.018 * cb]
        };
        let bt709 = |y: f64, cb: f64, cr: f64| {
            let (y, cb, cr) = (y - 16.0, cb - 128.0, cr - 128.0);
            [1.164 * y + 1.793 * cr, 1.164 * y - 0.213 * cb - 0.533 * cr, 1.164 * y + 2.112 * cb]
        };
        // Full range BT.601 is JFIF: R = Y + 1.402 (Cr − 128) etc.
        let jfif = |y: f64, cb: f64, cr: f64| {
            let (cb, cr) = (cb - 128.0, cr - 128.0);
            [y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb]
        };
        for (y, cb, cr) in
            [(16, 128, 128), (235, 128, 128), (81, 90, 240), (145, 54, 34), (200, 16, 200), (60, 240, 16)]
        {
            let cases: [(YuvParams, [f64; 3]); 3] = [
                (ALL_PARAMS[0], bt601(f64::from(y), f64::from(cb), f64::from(cr))),
                (ALL_PARAMS[2], bt709(f64::from(y), f64::from(cb), f64::from(cr))),
                (ALL_PARAMS[1], jfif(f64::from(y), f64::from(cb), f64::from(cr))),
            ];
            for (params, published) in cases {
                let ours = reference_f64(params, y, cb, cr);
                for c in 0..3 {
                    assert!(
                        (ours[c] - published[c]).abs() < 0.4,
                        "{params:?} {y},{cb},{cr}: {ours:?} vs {published:?}"
                    );
                }
            }
        }
    }

    /// A synthetic YCbCr picture: luma and chroma gradients that wrap through every code value
    /// (out-of-gamut combinations included, which must clamp), and a band of colour bars (white,
    /// yellow, cyan, green, magenta, red, blue, black, 100 % and 75 %) encoded with `params`.
    struct Picture {
        width: u16,
        height: u16,
        params: YuvParams,
    }

    const BARS: [[u8; 3]; 16] = [
        [255, 255, 255],
        [255, 255, 0],
        [0, 255, 255],
        [0, 255, 0],
        [255, 0, 255],
        [255, 0, 0],
        [0, 0, 255],
        [0, 0, 0],
        [191, 191, 191],
        [191, 191, 0],
        [0, 191, 191],
        [0, 191, 0],
        [191, 0, 191],
        [191, 0, 0],
        [0, 0, 191],
        [16, 16, 16],
    ];
    const BAR_ROWS: u32 = 6;

    impl Picture {
        fn bar(&self, x: u32) -> (u8, u8, u8) {
            let bar = (x as usize * BARS.len()) / usize::from(self.width);
            encode(self.params, BARS[bar])
        }

        fn luma(&self, x: u32, y: u32) -> u8 {
            if y < BAR_ROWS { self.bar(x).0 } else { ((x * 3 + y * 5) % 256) as u8 }
        }

        /// Chroma of the pixel pair `cx` (pixels 2cx and 2cx + 1) sampled on picture line
        /// `picture_y` (4:2:0 samples only the even lines).
        fn chroma(&self, cx: u32, picture_y: u32) -> (u8, u8) {
            if picture_y < BAR_ROWS {
                let (_, cb, cr) = self.bar(2 * cx);
                (cb, cr)
            } else {
                (((cx * 7 + picture_y * 3) % 256) as u8, (255 - (cx * 5 + picture_y * 11) % 256) as u8)
            }
        }

        /// The buffer in `format` with lines `bytes_per_line` apart; padding holds garbage.
        fn pack(&self, format: RawFormat, bytes_per_line: u32) -> Vec<u8> {
            let (w, h) = (u32::from(self.width), u32::from(self.height));
            let bpl = bytes_per_line as usize;
            let mut data: Vec<u8> = (0..format.frame_len(h, bytes_per_line)).map(|i| (i * 151 + 7) as u8).collect();
            for y in 0..h {
                let line = &mut data[y as usize * bpl..];
                for cx in 0..w / 2 {
                    let (y0, y1) = (self.luma(2 * cx, y), self.luma(2 * cx + 1, y));
                    let (cb, cr) = self.chroma(cx, y);
                    let at = cx as usize * 4;
                    match format {
                        RawFormat::Yuyv => line[at..at + 4].copy_from_slice(&[y0, cb, y1, cr]),
                        RawFormat::Uyvy => line[at..at + 4].copy_from_slice(&[cb, y0, cr, y1]),
                        RawFormat::Nv12 | RawFormat::Nv16 => {
                            line[cx as usize * 2..][..2].copy_from_slice(&[y0, y1]);
                        }
                        _ => unreachable!("not a YUV format"),
                    }
                }
            }
            // The chroma plane: one line per picture line (NV16) or per two (NV12), sampled on
            // the first picture line of the pair.
            let chroma_lines = match format {
                RawFormat::Nv12 => h.div_ceil(2),
                RawFormat::Nv16 => h,
                _ => 0,
            };
            for cy in 0..chroma_lines {
                let picture_y = if format == RawFormat::Nv12 { cy * 2 } else { cy };
                let line = &mut data[(h + cy) as usize * bpl..];
                for cx in 0..w / 2 {
                    let (cb, cr) = self.chroma(cx, picture_y);
                    line[cx as usize * 2..][..2].copy_from_slice(&[cb, cr]);
                }
            }
            data
        }

        /// Expected native pixel at (x, y) for `format`'s chroma siting.
        fn expected(&self, format: RawFormat, x: u32, y: u32) -> [u8; 3] {
            let chroma_y = if format == RawFormat::Nv12 { y / 2 * 2 } else { y };
            let (cb, cr) = self.chroma(x / 2, chroma_y);
            let mut luma = self.luma(x, y);
            if !self.params.full_range {
                // The crate clips limited-range luma below black (the 1–15 footroom, not a
                // legal picture value) to 16 before the matrix: a saturated colour with Y = 0
                // comes out up to 19 levels brighter than the unclipped equations give.
                luma = luma.max(16);
            }
            reference_rgb(self.params, luma, cb, cr)
        }
    }

    /// Converts `format` at a padded stride and returns the largest per-channel difference from
    /// the reference (also checking the unused byte is 0).
    fn max_error(format: RawFormat, params: YuvParams, width: u16, height: u16, padding: u32) -> u8 {
        let picture = Picture { width, height, params };
        let bytes_per_line = format.min_bytes_per_line(width) as u32 + padding;
        let data = picture.pack(format, bytes_per_line);
        let mut frame = Frame::new(1, 1);
        convert(format, params, width, height, bytes_per_line, &data, &mut frame).unwrap();
        assert_eq!((frame.width(), frame.height()), (width, height));
        let mut worst = 0;
        for y in 0..u32::from(height) {
            for x in 0..u32::from(width) {
                let got = frame.pixel(x as u16, y as u16).to_le_bytes();
                assert_eq!(got[3], 0, "unused byte at {x},{y}");
                let [r, g, b] = picture.expected(format, x, y);
                for (c, want) in [(got[2], r), (got[1], g), (got[0], b)] {
                    worst = worst.max(c.abs_diff(want));
                }
            }
        }
        worst
    }

    /// Per-channel error allowed against the floating-point reference (the largest measured, on
    /// x86 AVX2 and on aarch64 NEON under qemu). Packed 4:2:2 goes through the crate's 6-bit
    /// fixed-point coefficients (its only mode there): 2 for BT.601 limited, 3 for BT.709
    /// limited, 1 for full range; NV12/NV16 use its 13-bit "Balanced" mode: 1.
    fn tolerance(format: RawFormat) -> u8 {
        match format {
            RawFormat::Yuyv | RawFormat::Uyvy => PACKED_422_TOLERANCE,
            _ => SEMI_PLANAR_TOLERANCE,
        }
    }
    const PACKED_422_TOLERANCE: u8 = 3;
    const SEMI_PLANAR_TOLERANCE: u8 = 1;

    fn check_yuv_format(format: RawFormat, height: u16) {
        // 262 pixels: the SIMD paths (16/32 pixels a step) plus a scalar tail of a few pixels;
        // 40 or 41 lines: bands of 16, 16 and a short last one.
        for params in ALL_PARAMS {
            let worst = max_error(format, params, 262, height, 10);
            assert!(worst <= tolerance(format), "{format:?} {params:?}: max error {worst}");
        }
    }

    #[test]
    fn yuyv_matches_reference() {
        check_yuv_format(RawFormat::Yuyv, 40);
    }

    #[test]
    fn uyvy_matches_reference() {
        check_yuv_format(RawFormat::Uyvy, 40);
    }

    #[test]
    fn nv12_matches_reference() {
        // Odd height: the last line (and band) has a chroma line of its own.
        check_yuv_format(RawFormat::Nv12, 41);
    }

    #[test]
    fn nv16_matches_reference() {
        check_yuv_format(RawFormat::Nv16, 40);
    }

    #[test]
    fn bt2020_is_converted_too() {
        let params = YuvParams { matrix: YuvMatrix::Bt2020, full_range: false };
        assert!(max_error(RawFormat::Nv16, params, 64, 8, 0) <= SEMI_PLANAR_TOLERANCE);
    }

    /// Every format, padded with garbage vs packed tightly: identical frames.
    #[test]
    fn line_padding_is_skipped() {
        let (width, height) = (70, 9);
        for (format, _) in FOURCCS {
            let row = format.min_bytes_per_line(width);
            let tight = format.frame_len(u32::from(height), row as u32);
            let tight_data: Vec<u8> = (0..tight).map(|i| (i * 31 + i / 7) as u8).collect();
            let padding = 37;
            let padded_bpl = row + padding;
            let mut padded_data: Vec<u8> =
                (0..format.frame_len(u32::from(height), padded_bpl as u32)).map(|i| (i * 97) as u8).collect();
            for (tight_line, padded_line) in tight_data.chunks(row).zip(padded_data.chunks_mut(padded_bpl)) {
                padded_line[..row].copy_from_slice(tight_line);
            }
            let params = ALL_PARAMS[0];
            let mut a = Frame::new(1, 1);
            let mut b = Frame::new(1, 1);
            convert(format, params, width, height, row as u32, &tight_data, &mut a).unwrap();
            convert(format, params, width, height, padded_bpl as u32, &padded_data, &mut b).unwrap();
            assert!(a == b, "{format:?}");
            // Extra bytes after the frame (bytesused past sizeimage) are ignored too.
            padded_data.extend_from_slice(&[0xee; 100]);
            convert(format, params, width, height, padded_bpl as u32, &padded_data, &mut b).unwrap();
            assert!(a == b, "{format:?}");
        }
    }

    #[test]
    fn packed_rgb_is_exact() {
        let (width, height) = (67u16, 5u16);
        let colour = |x: u16, y: u16| [(x * 3) as u8, (y * 50 + x) as u8, (255 - x) as u8];
        // Memory order of each format, as (index of R, G, B, bytes per pixel).
        let layouts = [
            (RawFormat::Rgb24, [0, 1, 2], 3),
            (RawFormat::Bgr24, [2, 1, 0], 3),
            (RawFormat::Xbgr32, [2, 1, 0], 4),
            (RawFormat::Abgr32, [2, 1, 0], 4),
            (RawFormat::Bgrx32, [3, 2, 1], 4),
            (RawFormat::Bgra32, [3, 2, 1], 4),
            (RawFormat::Rgbx32, [0, 1, 2], 4),
            (RawFormat::Rgba32, [0, 1, 2], 4),
            (RawFormat::Xrgb32, [1, 2, 3], 4),
            (RawFormat::Argb32, [1, 2, 3], 4),
        ];
        assert_eq!(layouts.len(), FOURCCS.iter().filter(|(f, _)| !f.is_yuv()).count());
        for (format, [ri, gi, bi], bpp) in layouts {
            let bpl = usize::from(width) * bpp + 5;
            // The X/A byte and the padding hold 0x5a: none of it may reach the frame.
            let mut data = vec![0x5a; bpl * usize::from(height)];
            for y in 0..height {
                for x in 0..width {
                    let px = &mut data[usize::from(y) * bpl + usize::from(x) * bpp..][..bpp];
                    let [r, g, b] = colour(x, y);
                    (px[ri], px[gi], px[bi]) = (r, g, b);
                }
            }
            let mut frame = Frame::new(width, height);
            convert(format, ALL_PARAMS[0], width, height, bpl as u32, &data, &mut frame).unwrap();
            for y in 0..height {
                for x in 0..width {
                    let [r, g, b] = colour(x, y);
                    assert_eq!(frame.pixel(x, y), u32::from_be_bytes([0, r, g, b]), "{format:?} at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn matrix_choice_matters_for_saturated_red() {
        let bt709 = YuvParams { matrix: YuvMatrix::Bt709, full_range: false };
        let bt601 = YuvParams { matrix: YuvMatrix::Bt601, ..bt709 };
        let (y, cb, cr) = encode(bt709, [255, 0, 0]);
        let data: Vec<u8> = [y, cb, y, cr].repeat(8);
        let decode = |params| {
            let mut frame = Frame::new(16, 1);
            convert(RawFormat::Yuyv, params, 16, 1, 32, &data, &mut frame).unwrap();
            frame.pixel(0, 0).to_be_bytes()
        };
        let [_, r, g, b] = decode(bt709);
        assert!(r >= 253 && g <= 2 && b <= 2, "709 red decoded as 709: {r},{g},{b}");
        let [_, r601, g601, b601] = decode(bt601);
        // The same bytes read as BT.601 are a clearly darker red (R ≈ 234): decoding with the
        // wrong matrix is visible.
        assert!(r - r601 >= 15, "709 red decoded as 601: {r601},{g601},{b601}");
        let want = reference_rgb(bt601, y, cb, cr);
        for (got, want) in [r601, g601, b601].into_iter().zip(want) {
            assert!(got.abs_diff(want) <= PACKED_422_TOLERANCE, "{:?} vs {want:?}", [r601, g601, b601]);
        }
    }

    #[test]
    fn bad_buffers_are_errors_not_panics() {
        let params = ALL_PARAMS[0];
        let mut frame = Frame::new(3, 3);
        let before = frame.clone();
        let data = vec![0u8; 64 * 8 * 4];
        let err = |format, width, height, bpl, len: usize, frame: &mut Frame| {
            convert(format, params, width, height, bpl, &data[..len], frame).unwrap_err()
        };
        for (format, _) in FOURCCS {
            let row = format.min_bytes_per_line(16) as u32;
            let len = format.frame_len(4, row);
            assert!(
                matches!(err(format, 16, 4, row, len - 1, &mut frame), ConvertError::TooShort { needed, got, .. } if needed == len && got == len - 1)
            );
            assert!(matches!(err(format, 16, 4, row, 0, &mut frame), ConvertError::TooShort { .. }));
            assert!(matches!(err(format, 16, 4, row - 1, len, &mut frame), ConvertError::BadStride { .. }));
            assert!(matches!(err(format, 16, 4, 0, len, &mut frame), ConvertError::BadStride { .. }));
            assert!(matches!(err(format, 0, 4, row, len, &mut frame), ConvertError::Empty { .. }));
            assert!(matches!(err(format, 16, 0, row, len, &mut frame), ConvertError::Empty { .. }));
            assert!(matches!(
                err(format, u16::MAX, u16::MAX, u32::MAX, len, &mut frame),
                ConvertError::TooShort { .. } | ConvertError::OddWidth { .. }
            ));
            let huge = convert(format, params, u16::MAX - 1, u16::MAX, u32::MAX, &data, &mut frame).unwrap_err();
            assert!(matches!(huge, ConvertError::TooShort { .. }), "{format:?}: {huge}");
            if format.is_yuv() {
                assert!(matches!(err(format, 15, 4, row, len, &mut frame), ConvertError::OddWidth { width: 15, .. }));
            } else {
                convert(format, params, 15, 4, row, &data[..len], &mut frame).unwrap();
            }
            frame = before.clone();
        }
        assert!(frame == before, "a failed conversion leaves the frame alone");
    }

    #[test]
    fn frame_is_reused_until_the_size_changes() {
        let data = vec![128u8; 64 * 4 * 2];
        let mut frame = Frame::new(64, 4);
        let pixels = frame.pixels().as_ptr();
        convert(RawFormat::Yuyv, ALL_PARAMS[0], 64, 4, 128, &data, &mut frame).unwrap();
        assert_eq!(frame.pixels().as_ptr(), pixels);
        convert(RawFormat::Yuyv, ALL_PARAMS[0], 32, 4, 64, &data, &mut frame).unwrap();
        assert_eq!((frame.width(), frame.height()), (32, 4));
    }

    #[test]
    fn fourccs_round_trip() {
        for (format, fourcc) in FOURCCS {
            assert_eq!(RawFormat::from_fourcc(fourcc), Some(format));
            assert_eq!(format.fourcc(), fourcc);
        }
        assert_eq!(RawFormat::from_fourcc(*b"MJPG"), None);
        assert_eq!(RawFormat::from_fourcc(*b"yuyv"), None);
        assert_eq!(RawFormat::Nv12.frame_len(1081, 2048), 2048 * (1081 + 541));
        assert_eq!(RawFormat::Nv16.frame_len(1080, 1920), 1920 * 2160);
        assert_eq!(RawFormat::Yuyv.frame_len(1080, 3840), 3840 * 1080);
        assert_eq!(RawFormat::Rgb24.min_bytes_per_line(1920), 5760);
    }

    #[test]
    fn v4l2_default_rules() {
        let p = YuvParams::from_v4l2;
        let (bt601, bt709, bt2020) = (YuvMatrix::Bt601, YuvMatrix::Bt709, YuvMatrix::Bt2020);
        let limited = |matrix| YuvParams { matrix, full_range: false };
        let full = |matrix| YuvParams { matrix, full_range: true };
        // All DEFAULT: by size.
        assert_eq!(p(480, 0, 0, 0), limited(bt601));
        assert_eq!(p(576, 0, 0, 0), limited(bt601));
        assert_eq!(p(720, 0, 0, 0), limited(bt709));
        assert_eq!(p(1080, 0, 0, 0), limited(bt709));
        // Colorspace decides a DEFAULT encoding, whatever the size.
        assert_eq!(p(1080, 1, 0, 0), limited(bt601), "SMPTE170M");
        assert_eq!(p(1080, 8, 0, 0), limited(bt601), "sRGB (UVC webcams and dongles)");
        assert_eq!(p(480, 3, 0, 0), limited(bt709), "REC709");
        assert_eq!(p(1080, 10, 0, 0), limited(bt2020), "BT2020");
        assert_eq!(p(1080, 7, 0, 0), full(bt601), "JPEG: BT.601 full range");
        // An explicit encoding or quantization wins.
        assert_eq!(p(1080, 3, 1, 0), limited(bt601));
        assert_eq!(p(480, 1, 2, 1), full(bt709));
        assert_eq!(p(1080, 7, 0, 2), limited(bt601));
        assert_eq!(p(1080, 3, 3, 0), limited(bt601), "XV601");
        assert_eq!(p(480, 0, 8, 0), limited(bt709), "SMPTE240M ≈ 709");
        // Unknown values fall back to the defaults.
        assert_eq!(p(1080, 99, 99, 99), limited(bt601));
    }
}
