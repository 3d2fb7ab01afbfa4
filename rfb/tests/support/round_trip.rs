//! The round trip every lossless encoding's tests share: one client connection encodes rects of
//! a frame with its encoder in its pixel format, decodes them with an independent test decoder
//! (which keeps its state, such as zlib streams, across rects like a real client) and compares
//! every pixel exactly with the converter's value.

use std::fmt::Debug;

use rfb::encoders::workers::{Serial, Workers};
use rfb::encoders::{EncodeParams, Encoder};
use rfb::encoding::ClientEncodings;
use rfb::{Frame, PixelConverter, PixelFormat, Rect};

use super::wire::{ClientFramebuffer, RectHeader};

/// Never produced by any format's conversion (8/16 bpp values are small, 32 bpp ones leave a
/// byte free), so it marks pixels no rect wrote.
pub const UNTOUCHED: u32 = u32::MAX;

/// Serial encode parameters for `converter` and `encodings`.
pub fn params<'a>(converter: &'a PixelConverter, encodings: &'a ClientEncodings) -> EncodeParams<'a> {
    EncodeParams { converter, encodings, shared: None, workers: &Serial }
}

/// Runs `check(name, format)` for every format of `support::formats::all()`, each on its own
/// thread (each its own connection), which keeps debug builds quick.
pub fn for_every_format(check: impl Fn(&'static str, PixelFormat) + Sync) {
    std::thread::scope(|scope| {
        for (name, format) in super::formats::all() {
            let check = &check;
            scope.spawn(move || check(name, format));
        }
    });
}

/// Sends each frame whole, then each of `rects` that lies inside it.
pub fn send_frames(frames: &[Frame], rects: &[Rect], mut send: impl FnMut(&Frame, Rect)) {
    for frame in frames {
        send(frame, frame.bounds());
        for &rect in rects {
            if frame.bounds().intersect(&rect) == rect {
                send(frame, rect);
            }
        }
    }
}

/// The rects decoded, or what was wrong with the data.
pub type Decoded<E> = Result<Vec<RectHeader>, E>;

/// A test decoder for one connection.
pub trait RectDecoder {
    /// Decodes rects (headers and data, no FramebufferUpdate header) into `fb`.
    fn decode(&mut self, format: &PixelFormat, bytes: &[u8], fb: &mut ClientFramebuffer) -> Decoded<impl Debug>;

    /// What the decoder shows for a client pixel value.
    fn shown(_format: &PixelFormat, value: u32) -> u32 {
        value
    }
}

/// One client connection: its encoder, its decoder and what it asked for.
pub struct Client<E, D> {
    pub name: &'static str,
    pub converter: PixelConverter,
    /// What the client decodes with: its own format, or BGR233 for a colour-map client.
    pub format: PixelFormat,
    pub encoder: E,
    pub decoder: D,
    pub encodings: ClientEncodings,
    /// What the encoder may spread a large rect over (serial unless a test says otherwise).
    pub workers: &'static dyn Workers,
}

impl<E: Encoder, D: RectDecoder> Client<E, D> {
    /// A client in `format` that lists only `encoding`.
    pub fn new(name: &'static str, format: PixelFormat, encoder: E, decoder: D, encoding: i32) -> Self {
        let converter = PixelConverter::new(format);
        let format = *converter.client_format();
        let encodings = ClientEncodings::from_list(vec![encoding]);
        Client { name, converter, format, encoder, decoder, encodings, workers: &Serial }
    }

    /// Encodes `rect` of `frame` and returns the rect count and the bytes appended.
    pub fn encode(&mut self, frame: &Frame, rect: Rect) -> (usize, Vec<u8>) {
        let mut out = vec![0xa5, 0x5a];
        let params = EncodeParams { workers: self.workers, ..params(&self.converter, &self.encodings) };
        let count = self.encoder.encode(frame, &rect, &params, &mut out);
        assert_eq!(out[..2], [0xa5, 0x5a], "{}: earlier output must be kept", self.name);
        (count, out.split_off(2))
    }

    /// Sends `rect`, decodes it and checks that the returned count is the rects received and
    /// that exactly the rect's pixels are written, each with the converter's value. Returns the
    /// bytes sent, the rects received and the client's framebuffer.
    pub fn send(&mut self, frame: &Frame, rect: Rect) -> (Vec<u8>, Vec<RectHeader>, ClientFramebuffer) {
        let name = self.name;
        let (count, bytes) = self.encode(frame, rect);
        let mut fb = ClientFramebuffer::new(frame.width(), frame.height(), UNTOUCHED);
        let headers = self
            .decoder
            .decode(&self.format, &bytes, &mut fb)
            .unwrap_or_else(|e| panic!("{name}: {rect:?} of {frame:?}: {e:?}"));
        assert_eq!(count, headers.len(), "{name}: returned count");
        let mut want = ClientFramebuffer::new(frame.width(), frame.height(), UNTOUCHED);
        for y in rect.y..rect.y + rect.height {
            for x in rect.x..rect.x + rect.width {
                let value = D::shown(&self.format, self.converter.pixel_value(frame.pixel(x, y)));
                want.set(usize::from(x), usize::from(y), value);
            }
        }
        if fb != want {
            let i = fb.pixels.iter().zip(&want.pixels).position(|(a, b)| a != b).unwrap_or(0);
            let (x, y) = ((i % usize::from(frame.width())) as u16, (i / usize::from(frame.width())) as u16);
            panic!("{name}: {rect:?} of {frame:?}: pixel ({x},{y}) is {:x}, want {:x}", fb.get(x, y), want.get(x, y));
        }
        (bytes, headers, fb)
    }
}
