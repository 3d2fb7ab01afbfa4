//! Raw (0): every pixel of the rect in the client's pixel format, row-major.

use super::Encoder;
use crate::encoding::RAW;
use crate::frame::{Frame, Rect};
use crate::pixel_format::PixelConverter;

pub struct RawEncoder;

impl Encoder for RawEncoder {
    fn encoding(&self) -> i32 {
        RAW
    }

    fn encode(&mut self, frame: &Frame, rect: &Rect, converter: &PixelConverter, out: &mut Vec<u8>) {
        out.reserve(rect.area() * converter.bytes_per_pixel());
        converter.convert_rect(frame, rect, out);
    }
}
