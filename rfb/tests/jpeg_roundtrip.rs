//! JPEG (21) round trips through `Encoders`, as a connection that listed JPEG (21) first and
//! ZRLE behind it: photo-like tiles come as JPEG rects, text and flat areas as ZRLE rects of the
//! connection's one ZRLE stream. Decoded with the independent ZRLE decoder (one inflater across
//! all updates, as a client keeps it) and zune-jpeg, the rects must cover the update exactly once,
//! the returned count must be the rects written, the lossless part must be exact and the JPEG
//! part at least 30 dB PSNR at quality level 8.

mod support {
    pub mod formats;
    #[allow(dead_code, reason = "shared with the other round trips; this one draws text only")]
    pub mod frames;
    #[allow(dead_code, reason = "shared with the other round trips; this one decodes rect by rect")]
    pub mod zrle_decoder;
    pub use zrle_decoder::wire;
}

use std::io::Cursor;

use flate2::Decompress;
use rfb::encoders::workers::{ScopedThreads, Serial, Workers};
use rfb::encoders::{EncodeParams, Encoders};
use rfb::encoding::{ClientEncodings, JPEG, RAW, ZRLE};
use rfb::{Frame, PixelConverter, PixelFormat, Rect};
use support::frames::{self, Text};
use support::wire::{ClientFramebuffer, RectHeader, for_each_rect};
use support::zrle_decoder::{DecodeError, Stats, decode_raw_rect, decode_zrle_rect};

/// Quality level 8 (JPEG 92, 4:4:4), as most viewers send it.
const QUALITY_8: i32 = -24;
const UNTOUCHED: u32 = u32::MAX;

/// One client: its encoders (ZRLE stream included) and its decoder state.
struct Client {
    converter: PixelConverter,
    encodings: ClientEncodings,
    encoders: Encoders,
    inflater: Decompress,
}

/// What one update decoded to: lossless pixels as client values, JPEG pixels as RGB.
struct Screen {
    lossless: ClientFramebuffer,
    jpeg: Vec<Option<[u8; 3]>>,
    headers: Vec<RectHeader>,
    bytes: usize,
}

impl Client {
    fn new(format: PixelFormat, list: Vec<i32>) -> Client {
        Client {
            converter: PixelConverter::new(format),
            encodings: ClientEncodings::from_list(list),
            encoders: Encoders::default(),
            inflater: Decompress::new(true),
        }
    }

    /// Encodes `rect` of `frame` as one update and decodes it.
    fn send(&mut self, frame: &Frame, rect: Rect, workers: &dyn Workers) -> Screen {
        let params = EncodeParams { converter: &self.converter, encodings: &self.encodings, shared: None, workers };
        let mut out = Vec::new();
        let count = self.encoders.encode(frame, &rect, &params, &mut out);
        let format = *self.converter.client_format();
        let mut lossless = ClientFramebuffer::new(frame.width(), frame.height(), UNTOUCHED);
        let mut jpeg = vec![None; usize::from(frame.width()) * usize::from(frame.height())];
        let inflater = &mut self.inflater;
        let headers = for_each_rect(&out, |r, header| {
            let data = &r.data[r.pos..];
            let used = match header.encoding {
                ZRLE => decode_zrle_rect(&format, inflater, header.rect, data, &mut lossless, &mut Stats::default())?,
                RAW => decode_raw_rect(&format, header.rect, data, &mut lossless)?,
                JPEG => decode_jpeg_rect(header.rect, data, frame.width(), &mut jpeg),
                other => return Err(DecodeError::UnexpectedEncoding(other)),
            };
            r.take(used, "rect data")?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{rect:?}: {e:?}"));
        assert_eq!(count, headers.len(), "the returned count is the rects written");
        let mut covered = vec![0u8; jpeg.len()];
        for header in &headers {
            assert_eq!(header.rect.intersect(&rect), header.rect, "{header:?} inside {rect:?}");
            for y in header.rect.y..header.rect.y + header.rect.height {
                for x in header.rect.x..header.rect.x + header.rect.width {
                    covered[usize::from(y) * usize::from(frame.width()) + usize::from(x)] += 1;
                }
            }
        }
        for y in 0..frame.height() {
            for x in 0..frame.width() {
                let inside = rect.intersect(&Rect::new(x, y, 1, 1)).area();
                assert_eq!(usize::from(covered[usize::from(y) * usize::from(frame.width()) + usize::from(x)]), inside);
            }
        }
        Screen { lossless, jpeg, headers, bytes: out.len() }
    }
}

/// Decodes the JPEG at the start of `data` (its end found by walking the markers, as noVNC
/// does) into `rgb`; returns its length.
fn decode_jpeg_rect(rect: Rect, data: &[u8], width: u16, rgb: &mut [Option<[u8; 3]>]) -> usize {
    let len = jpeg_len(data);
    let mut decoder = zune_jpeg::JpegDecoder::new(Cursor::new(&data[..len]));
    let pixels = decoder.decode().expect("a JPEG");
    let info = decoder.info().expect("its size");
    assert_eq!((info.width, info.height), (rect.width, rect.height), "the JPEG is the rect's size");
    for (i, p) in pixels.chunks_exact(3).enumerate() {
        let (x, y) =
            (usize::from(rect.x) + i % usize::from(rect.width), usize::from(rect.y) + i / usize::from(rect.width));
        rgb[y * usize::from(width) + x] = Some([p[0], p[1], p[2]]);
    }
    len
}

/// The length of the JPEG at the start of `data`: markers walked to EOI.
fn jpeg_len(data: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        assert_eq!(data[pos], 0xff, "a marker at {pos}");
        let kind = data[pos + 1];
        pos += 2;
        match kind {
            0xd9 => return pos,
            0xd0..=0xd8 | 0x01 => continue,
            _ => pos += usize::from(u16::from_be_bytes([data[pos], data[pos + 1]])),
        }
        if kind == 0xda {
            // Entropy-coded data runs to the next marker that is neither stuffing nor RSTn.
            while !(data[pos] == 0xff && data[pos + 1] != 0 && !(0xd0..=0xd7).contains(&data[pos + 1])) {
                pos += 1;
            }
        }
    }
}

fn rgb(pixel: u32) -> [u8; 3] {
    let [b, g, r, _] = pixel.to_le_bytes();
    [r, g, b]
}

/// Smooth gradients (what JPEG is for): hundreds of colours in every 64×64 tile.
fn gradient(x: u16, y: u16) -> u32 {
    let (x, y) = (u32::from(x), u32::from(y));
    (x * 255 / 1920) << 16 | (y * 255 / 1080) << 8 | (((x + y) / 4) & 0xff)
}

/// Text on the left `text_width` columns, a gradient on the right.
fn half_text_half_photo(width: u16, height: u16, text_width: u16) -> Frame {
    let text =
        frames::text(width, height, Text { links: true, every_third_cell_blank: false, random_cells_blank: true });
    frames::from_fn(width, height, |x, y| if x < text_width { text.pixel(x, y) } else { gradient(x, y) })
}

/// Checks `screen` against `frame` inside `rect`: lossless pixels exact, and returns the PSNR
/// of the JPEG pixels with which pixels (by `in_jpeg(x, y)`) must have come as JPEG.
fn check(client: &Client, frame: &Frame, rect: Rect, screen: &Screen, in_jpeg: impl Fn(u16, u16) -> bool) -> f64 {
    let (mut squared, mut samples) = (0.0, 0usize);
    for y in rect.y..rect.y + rect.height {
        for x in rect.x..rect.x + rect.width {
            let jpeg = screen.jpeg[usize::from(y) * usize::from(frame.width()) + usize::from(x)];
            assert_eq!(jpeg.is_some(), in_jpeg(x, y), "({x}, {y}) as JPEG");
            match jpeg {
                Some(got) => {
                    for (a, b) in got.into_iter().zip(rgb(frame.pixel(x, y))) {
                        squared += (f64::from(a) - f64::from(b)).powi(2);
                        samples += 1;
                    }
                }
                None => {
                    let want = client.converter.pixel_value(frame.pixel(x, y));
                    assert_eq!(screen.lossless.get(x, y), want, "({x}, {y}) exact");
                }
            }
        }
    }
    if samples == 0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64.powi(2) / (squared / samples as f64)).log10()
}

#[test]
fn text_goes_exact_and_photos_as_jpeg() {
    // 16 and 32 bpp (below 16 a JPEG-preferring client gets ZRLE for everything).
    let formats = support::formats::all().into_iter().filter(|(_, f)| f.bits_per_pixel >= 16);
    for (name, format) in formats {
        let frame = half_text_half_photo(640, 384, 320);
        let mut client = Client::new(format, vec![JPEG, ZRLE, QUALITY_8]);
        let screen = client.send(&frame, frame.bounds(), &Serial);
        let psnr = check(&client, &frame, frame.bounds(), &screen, |x, _| x >= 320);
        assert!(psnr >= 30.0, "{name}: PSNR {psnr:.1} dB");
        let kinds: Vec<_> = screen.headers.iter().map(|h| (h.rect, h.encoding)).collect();
        assert_eq!(kinds, [(Rect::new(320, 0, 320, 384), JPEG), (Rect::new(0, 0, 320, 384), ZRLE)], "{name}");

        // The same with nothing but JPEG (21) listed: all of it JPEG, as before the split.
        let mut jpeg_only = Client::new(format, vec![JPEG, QUALITY_8]);
        let all_jpeg = jpeg_only.send(&frame, frame.bounds(), &Serial);
        assert_eq!(all_jpeg.headers.len(), 1);
        assert!(
            screen.bytes * 2 < all_jpeg.bytes,
            "{name}: split {} bytes, all JPEG {} bytes",
            screen.bytes,
            all_jpeg.bytes
        );

        // A text window over a photo, sent after the first update on the same ZRLE stream: one
        // JPEG above it, one each side, one below; the window (tile-aligned) exact.
        let window = Rect::new(192, 128, 256, 128);
        let frame = frames::from_fn(640, 384, |x, y| {
            if window.intersect(&Rect::new(x, y, 1, 1)).is_empty() { gradient(x, y) } else { frame.pixel(x - 192, y) }
        });
        let rect = Rect::new(0, 64, 640, 320);
        let screen = client.send(&frame, rect, &Serial);
        let outside = |x, y| window.intersect(&Rect::new(x, y, 1, 1)).is_empty();
        let psnr = check(&client, &frame, rect, &screen, outside);
        assert!(psnr >= 30.0, "{name}: PSNR {psnr:.1} dB");
        let jpegs = screen.headers.iter().filter(|h| h.encoding == JPEG).count();
        assert_eq!((jpegs, screen.headers.len()), (4, 5), "{name}: {:?}", screen.headers);
    }
}

#[test]
fn an_all_photo_frame_goes_as_one_jpeg_per_band() {
    let frame = frames::from_fn(1920, 1080, gradient);
    let mut client = Client::new(PixelFormat::NATIVE, vec![JPEG, ZRLE, QUALITY_8]);
    let screen = client.send(&frame, frame.bounds(), &Serial);
    assert_eq!(screen.headers.len(), 1, "one JPEG on one worker");
    assert!(check(&client, &frame, frame.bounds(), &screen, |_, _| true) >= 30.0);
    // Spread over four workers: twelve bands (three per worker), not a JPEG per tile.
    let threads = ScopedThreads(4);
    let screen = client.send(&frame, frame.bounds(), &threads);
    assert_eq!(screen.headers.len(), rfb::encoders::workers::bands(&frame.bounds(), &threads).len());
    assert!(screen.headers.len() <= 12 && screen.headers.iter().all(|h| h.encoding == JPEG));
    assert!(check(&client, &frame, frame.bounds(), &screen, |_, _| true) >= 30.0);
}
