//! Decoding with libjpeg-turbo: full size into a native frame, or scaled down for damage checks.

use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor};

use super::{JpegError, validate};

/// A reusable libjpeg-turbo decompressor (creating one per frame costs allocations).
pub struct JpegDecoder {
    decompressor: Decompressor,
    scale: ScalingFactor,
}

impl std::fmt::Debug for JpegDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JpegDecoder").field("scale", &self.scale).finish_non_exhaustive()
    }
}

impl JpegDecoder {
    pub fn new() -> Result<JpegDecoder, JpegError> {
        Ok(JpegDecoder { decompressor: Decompressor::new()?, scale: ScalingFactor::ONE })
    }

    fn set_scale(&mut self, scale: ScalingFactor) -> Result<(), JpegError> {
        if self.scale != scale {
            self.decompressor.set_scaling_factor(scale)?;
            self.scale = scale;
        }
        Ok(())
    }

    /// Decodes a frame (checked with [`validate`] first) into the native pixel format, with the
    /// unused fourth byte zero like every other frame source. A missing DHT needs no fixing here:
    /// libjpeg-turbo assumes the standard tables.
    pub fn decode(&mut self, jpeg: &[u8]) -> Result<rfb::Frame, JpegError> {
        let info = validate(jpeg)?;
        self.set_scale(ScalingFactor::ONE)?;
        let (width, height) = (usize::from(info.width), usize::from(info.height));
        let mut pixels = vec![0; width * height * 4];
        let image = Image { pixels: pixels.as_mut_slice(), width, pitch: width * 4, height, format: PixelFormat::BGRX };
        self.decompressor.decompress(jpeg, image)?;
        for pixel in pixels.chunks_exact_mut(4) {
            pixel[3] = 0;
        }
        rfb::Frame::from_pixels(info.width, info.height, pixels).map_err(|e| JpegError::Codec(e.to_string()))
    }

    /// Decodes `jpeg` (already validated, `width`x`height`) scaled by 1/`denominator` (1, 2, 4
    /// or 8) as packed RGB into `out`; returns the scaled size. At 1/8 each output pixel is the
    /// average colour of one 8x8 block (the DC coefficient; libjpeg-turbo skips the IDCT).
    pub(super) fn decode_scaled_rgb(
        &mut self,
        jpeg: &[u8],
        width: u16,
        height: u16,
        denominator: usize,
        out: &mut Vec<u8>,
    ) -> Result<(usize, usize), JpegError> {
        let scale = ScalingFactor::new(1, denominator);
        self.set_scale(scale)?;
        let (w, h) = (scale.scale(usize::from(width)), scale.scale(usize::from(height)));
        out.clear();
        out.resize(w * h * 3, 0);
        let image = Image { pixels: out.as_mut_slice(), width: w, pitch: w * 3, height: h, format: PixelFormat::RGB };
        self.decompressor.decompress(jpeg, image)?;
        Ok((w, h))
    }
}

/// Decodes one frame at full size into native BGRX pixels (for viewers that need pixels).
/// Creates a decoder each time; keep a [`JpegDecoder`] for a stream of frames.
pub fn decode_to_frame(jpeg: &[u8]) -> Result<rfb::Frame, JpegError> {
    JpegDecoder::new()?.decode(jpeg)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{ensure_dht, strip_dht};
    use super::*;

    #[test]
    fn decodes_to_native_pixels() {
        let rgb = synthetic_rgb(200, 120);
        let jpeg = encode_rgb(&rgb, 200, 120, 95);
        let frame = decode_to_frame(&jpeg).unwrap();
        assert_eq!((frame.width(), frame.height()), (200, 120));
        // libjpeg-turbo's RGB output, as bytes B, G, R, 0.
        let rgb = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::RGB).unwrap().pixels;
        for (native, rgb) in frame.pixels().chunks_exact(4).zip(rgb.chunks_exact(3)) {
            assert_eq!(native, [rgb[2], rgb[1], rgb[0], 0]);
        }
        // Close to the source (a flat box colour away from edges).
        assert_eq!(frame.pixel(10, 10) >> 16, 240);
        // Without DHT: same pixels.
        let mut decoder = JpegDecoder::new().unwrap();
        let nodht = strip_dht(&jpeg).unwrap();
        assert_eq!(decoder.decode(&nodht).unwrap(), frame);
        assert_eq!(decoder.decode(&ensure_dht(&nodht).unwrap()).unwrap(), frame);
    }

    #[test]
    fn scaled_decode_sizes() {
        let jpeg = encode_rgb(&synthetic_rgb(203, 121), 203, 121, 80);
        let mut decoder = JpegDecoder::new().unwrap();
        let mut out = Vec::new();
        assert_eq!(decoder.decode_scaled_rgb(&jpeg, 203, 121, 8, &mut out).unwrap(), (26, 16));
        assert_eq!(out.len(), 26 * 16 * 3);
        // The decoder switches back to full size.
        assert_eq!(decoder.decode(&jpeg).unwrap().width(), 203);
        assert_eq!(decoder.decode_scaled_rgb(&jpeg, 203, 121, 2, &mut out).unwrap(), (102, 61));
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let jpeg = encode_rgb(&synthetic_rgb(64, 64), 64, 64, 80);
        let mut decoder = JpegDecoder::new().unwrap();
        // Entropy data cut short but the frame still ends in EOI: libjpeg-turbo warns, which
        // TurboJPEG reports as an error.
        let mut cut = jpeg[..jpeg.len() - 60].to_vec();
        cut.extend_from_slice(&[0xff, 0xd9]);
        assert!(matches!(decoder.decode(&cut), Err(JpegError::Codec(_))));
        assert!(decoder.decode(&jpeg).is_ok());
    }
}
