//! Encoders: one per file, behind [`Encoder`]. The connection picks one per client from the
//! client's SetEncodings and feeds it rectangles of the native frame.

mod raw;

pub use raw::RawEncoder;

use crate::frame::{Frame, Rect};
use crate::pixel_format::PixelConverter;

pub trait Encoder: Send {
    /// The encoding number written in each rect header.
    fn encoding(&self) -> i32;

    /// Appends the encoded pixels of `rect` (header not included) in the client's format.
    fn encode(&mut self, frame: &Frame, rect: &Rect, converter: &PixelConverter, out: &mut Vec<u8>);
}
