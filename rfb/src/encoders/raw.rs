//! Raw (0): every pixel of the rect in the client's pixel format, row-major.

use super::{EncodeParams, Encoder};
use crate::encoding::RAW;
use crate::frame::{Frame, Rect};
use crate::messages::server::write_rect_header;

#[derive(Debug, Default)]
pub struct RawEncoder;

impl Encoder for RawEncoder {
    fn encode(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        write_rect_header(out, rect, RAW);
        out.reserve(rect.area() * params.converter.bytes_per_pixel());
        params.converter.convert_rect(frame, rect, out);
        1
    }
}
