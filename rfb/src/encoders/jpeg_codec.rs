//! The JPEG codec behind Tight's JPEG subencoding and the JPEG encoding (21): libjpeg-turbo
//! through the `turbojpeg` crate (NEON on aarch64, AVX2/SSE2 on x86-64). Everything
//! codec-specific is in this file, so another codec can be swapped in by reimplementing
//! [`JpegCompressor`]. Both encodings map the client's quality level the same way
//! ([`JPEG_QUALITY`]), so viewers of either share the server's cached JPEGs.

use crate::frame::{Frame, NATIVE_BYTES_PER_PIXEL, Rect};

/// Chroma subsampling of a JPEG rect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subsampling {
    /// Full chroma resolution.
    S444,
    /// Chroma halved horizontally.
    S422,
    /// Chroma halved in both directions.
    S420,
}

/// JPEG quality and chroma subsampling per quality level (TigerVNC `TightJPEGEncoder`).
pub const JPEG_QUALITY: [(u8, Subsampling); 10] = [
    (15, Subsampling::S420),
    (29, Subsampling::S420),
    (41, Subsampling::S420),
    (42, Subsampling::S422),
    (62, Subsampling::S422),
    (77, Subsampling::S422),
    (79, Subsampling::S444),
    (86, Subsampling::S444),
    (92, Subsampling::S444),
    (100, Subsampling::S444),
];

/// JPEG quality and subsampling for a client quality level (0..=9; higher is taken as 9).
pub fn quality_for_level(level: u8) -> (u8, Subsampling) {
    JPEG_QUALITY[usize::from(level.min(9))]
}

/// Compresses rects of native frames to baseline JFIF. Reuses its output buffer.
pub(super) struct JpegCompressor {
    compressor: turbojpeg::Compressor,
    /// The settings last given to `compressor`.
    settings: Option<(u8, Subsampling)>,
    output: Vec<u8>,
}

impl JpegCompressor {
    /// None when libjpeg-turbo cannot be initialised.
    pub(super) fn new() -> Option<JpegCompressor> {
        let compressor = turbojpeg::Compressor::new().ok()?;
        Some(JpegCompressor { compressor, settings: None, output: Vec::new() })
    }

    /// A JPEG of exactly `rect` (non-empty, inside `frame`) at `quality` (1..=100), or None
    /// if the codec failed.
    pub(super) fn compress(
        &mut self,
        frame: &Frame,
        rect: &Rect,
        quality: u8,
        subsampling: Subsampling,
    ) -> Option<&[u8]> {
        if rect.is_empty() {
            return None;
        }
        if self.settings != Some((quality, subsampling)) {
            self.settings = None;
            self.compressor.set_quality(i32::from(quality.clamp(1, 100))).ok()?;
            self.compressor
                .set_subsamp(match subsampling {
                    Subsampling::S444 => turbojpeg::Subsamp::None,
                    Subsampling::S422 => turbojpeg::Subsamp::Sub2x1,
                    Subsampling::S420 => turbojpeg::Subsamp::Sub2x2,
                })
                .ok()?;
            self.settings = Some((quality, subsampling));
        }
        let (width, height) = (usize::from(rect.width), usize::from(rect.height));
        let stride = frame.stride();
        // The rect's pixels straight from the frame, rows `stride` apart: no copy. The slice
        // ends at the rect's last pixel, which is what the codec checks.
        let start = usize::from(rect.y) * stride + usize::from(rect.x) * NATIVE_BYTES_PER_PIXEL;
        let end = start + (height - 1) * stride + width * NATIVE_BYTES_PER_PIXEL;
        let pixels = frame.pixels().get(start..end)?;
        let image = turbojpeg::Image { pixels, width, pitch: stride, height, format: turbojpeg::PixelFormat::BGRX };
        let capacity = self.compressor.buf_len(width, height).ok()?;
        if self.output.len() < capacity {
            self.output.resize(capacity, 0);
        }
        let len = self.compressor.compress_to_slice(image, &mut self.output).ok()?;
        self.output.get(..len)
    }
}
