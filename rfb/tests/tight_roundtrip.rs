//! Tight encoder round trips through the independent decoder in `support/tight_decoder.rs`.
//!
//! For every pixel format: synthetic frames (text-like, few-colour UI, photo-like, solid
//! blocks, 1x1, 2500x40 and 300x300 crossing the width and area limits) are encoded under
//! several SetEncodings and decoded with one decoder, i.e. one set of zlib inflaters, across
//! all rects of all updates. Lossless rects must reproduce exactly the client pixel values
//! `PixelConverter::pixel_value` gives; JPEG rects must reach a PSNR floor (30 dB for quality
//! level 8 on the photo-like frame, 20 dB for level 0). Every rect must be at most 2048 wide and
//! 65536 pixels (fills included), never use basic-without-zlib (0xA/0xE) or the gradient
//! filter, use JPEG only when a quality level was listed and the client has >= 16 bpp, and the
//! encoder's returned count must equal the rects written.

mod support {
    pub mod formats;
    pub mod tight_decoder;
}

use rfb::encoders::tight::{self, TightEncoder};
use rfb::encoders::workers::{ScopedThreads, Serial, Workers};
use rfb::encoders::{EncodeParams, Encoder};
use rfb::encoding::ClientEncodings;
use rfb::{Frame, PixelConverter, PixelFormat, Rect};
use std::sync::atomic::{AtomicUsize, Ordering};
use support::tight_decoder::{self, DecodedRect, Method, Pixels, TightDecoder};

const TIGHT: i32 = 7;
const LAST_RECT: i32 = -224;
const fn quality(level: i32) -> i32 {
    -32 + level
}
const fn compress(level: i32) -> i32 {
    -256 + level
}

/// `support::formats::all()` plus layouts that matter for TPIXEL in particular: 8-bit
/// channels off byte boundaries (4-byte TPIXELs although depth is 24), 15-bit and 6-bit colour.
fn formats() -> Vec<(&'static str, PixelFormat)> {
    let mut all = support::formats::all();
    all.extend([
        ("32bpp-unaligned-shifts", PixelFormat::true_colour(32, 24, false, [255; 3], [17, 9, 1])),
        ("rgb555-le", PixelFormat::true_colour(16, 15, false, [31, 31, 31], [10, 5, 0])),
        ("rgb222 (noVNC)", PixelFormat::true_colour(8, 6, false, [3, 3, 3], [0, 2, 4])),
    ]);
    all
}

fn frame_from(width: u16, height: u16, pixel: impl Fn(u32, u32) -> u32) -> Frame {
    let mut bytes = Vec::with_capacity(usize::from(width) * usize::from(height) * 4);
    for y in 0..u32::from(height) {
        for x in 0..u32::from(width) {
            bytes.extend_from_slice(&(pixel(x, y) & 0x00ff_ffff).to_le_bytes());
        }
    }
    Frame::from_pixels(width, height, bytes).expect("size")
}

/// Black glyph strokes on white, with red underlines if `red`: 2 or 3 colours.
fn text_frame(width: u16, height: u16, seed: u64, red: bool) -> Frame {
    let mut frame = frame_from(width, height, |_, _| 0xffffff);
    let mut rng = fastrand::Rng::with_seed(seed | 1);
    let mut y = 4;
    while y + 12 < height {
        let mut x = 4;
        while x + 8 < width {
            let word = 2 + rng.u16(..8);
            for _ in 0..word {
                if x + 8 >= width {
                    break;
                }
                for _ in 0..3 {
                    let (sx, sy) = (x + rng.u16(..6), y + rng.u16(..7));
                    let stroke = if rng.bool() {
                        Rect::new(sx, sy, 1, 3 + rng.u16(..5))
                    } else {
                        Rect::new(sx, sy, 2 + rng.u16(..4), 1)
                    };
                    frame.fill_rect(&stroke, 0x000000);
                }
                x += 7;
            }
            if red && rng.u8(..9) == 0 {
                frame.fill_rect(&Rect::new(x.saturating_sub(20), y + 11, 20, 1), 0xcc0000);
            }
            x += 6;
        }
        y += 15;
    }
    frame
}

/// Panels, buttons with borders, a stepped title bar and small icons: a few to ~40 colours.
fn ui_frame(width: u16, height: u16, seed: u64) -> Frame {
    let mut frame = frame_from(width, height, |x, y| if (x / 8 + y / 8) % 2 == 0 { 0xd4d0c8 } else { 0xc8c4bc });
    let mut rng = fastrand::Rng::with_seed(seed | 1);
    frame.fill_rect(&Rect::new(0, 0, width, 22.min(height)), 0x000080);
    for step in 0..8u16 {
        let x = width / 8 * step;
        frame.fill_rect(&Rect::new(x, 0, width / 8, 20.min(height)), 0x000080 + u32::from(step) * 0x101010);
    }
    for _ in 0..12 {
        let (w, h) = (20 + rng.u16(..80), 12 + rng.u16(..30));
        let (x, y) = (rng.u16(..width.max(1)), rng.u16(..height.max(1)));
        frame.fill_rect(&Rect::new(x, y, w, h), 0x404040);
        frame.fill_rect(&Rect::new(x.saturating_add(1), y.saturating_add(1), w - 2, h - 2), 0xe0e0e0);
        let icon = 0x200000 * rng.u32(..8) + 0x2000 * rng.u32(..8) + 0x20 * rng.u32(..8);
        frame.fill_rect(&Rect::new(x.saturating_add(3), y.saturating_add(3), 6, 6), icon);
    }
    frame
}

/// Smooth gradients, ripples and noise: thousands of colours.
fn photo_frame(width: u16, height: u16, seed: u64) -> Frame {
    let noise = fastrand::Rng::with_seed(seed | 1);
    let noise = std::cell::RefCell::new(noise);
    frame_from(width, height, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let n = f32::from(noise.borrow_mut().u8(..17)) - 8.0;
        let c = |v: f32| (v + n).clamp(0.0, 255.0) as u32;
        let r = c(128.0 + 100.0 * (fx / 53.0).sin() * (fy / 71.0).cos());
        let g = c(128.0 + 90.0 * ((fx + fy) / 97.0).sin());
        let b = c(110.0 + 80.0 * (fy / 37.0).sin() + 30.0 * (fx / 23.0).cos());
        r << 16 | g << 8 | b
    })
}

/// Large solid areas (found by the solid search with LastRect) around a noisy patch.
fn blocks_frame(width: u16, height: u16, seed: u64) -> Frame {
    let mut frame = frame_from(width, height, |_, _| 0x336699);
    frame.fill_rect(&Rect::new(0, 0, width, height / 5), 0x202020);
    frame.fill_rect(&Rect::new(width / 7, height / 3, width / 3, height / 2), 0xfafafa);
    frame.fill_rect(&Rect::new(width / 2 + 3, height / 4 + 5, width / 3, height / 3), 0x00aa00);
    let photo = photo_frame(width / 6, height / 6, seed);
    for y in 0..photo.height() {
        for x in 0..photo.width() {
            frame.fill_rect(&Rect::new(width - width / 6 + x, height - height / 6 + y, 1, 1), photo.pixel(x, y));
        }
    }
    frame
}

#[derive(Debug, Default)]
struct Stats {
    rects: usize,
    fills: usize,
    jpeg: usize,
    copy: usize,
    mono: usize,
    indexed: usize,
    uncompressed_basic: usize,
    jpeg_sq_err: f64,
    jpeg_samples: usize,
}

impl Stats {
    fn psnr(&self) -> f64 {
        if self.jpeg_samples == 0 {
            return f64::INFINITY;
        }
        let mse = self.jpeg_sq_err / self.jpeg_samples as f64;
        if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() }
    }
}

/// One client: encoder, decoder, converter, and the checks every update must pass.
struct Client {
    name: &'static str,
    converter: PixelConverter,
    encoder: TightEncoder,
    decoder: TightDecoder,
    workers: &'static dyn Workers,
}

impl Client {
    fn new(name: &'static str, format: PixelFormat) -> Client {
        let converter = PixelConverter::new(format);
        let decoder = TightDecoder::new(*converter.client_format());
        Client { name, converter, encoder: TightEncoder::new(), decoder, workers: &Serial }
    }

    /// Encodes `rect` of `frame`, decodes it and checks it; returns per-method statistics.
    fn round_trip(&mut self, frame: &Frame, rect: Rect, list: &[i32]) -> Stats {
        self.round_trip_decoded(frame, rect, list).0
    }

    /// [`Self::round_trip`], also returning the rects decoded.
    fn round_trip_decoded(&mut self, frame: &Frame, rect: Rect, list: &[i32]) -> (Stats, Vec<DecodedRect>) {
        let encodings = ClientEncodings::from_list(list.to_vec());
        let params =
            EncodeParams { converter: &self.converter, encodings: &encodings, shared: None, workers: self.workers };
        let mut out = Vec::new();
        let count = self.encoder.encode(frame, &rect, &params, &mut out);
        let ctx = format!("{} {list:?} {rect:?}", self.name);
        let rects = self.decoder.decode_rects(&out).unwrap_or_else(|e| panic!("{ctx}: decode failed: {e:?}"));
        assert_eq!(count, rects.len(), "{ctx}: returned count");
        let jpeg_allowed = encodings.quality_level.is_some() && self.converter.client_format().bits_per_pixel >= 16;
        let mut stats = Stats { rects: rects.len(), ..Stats::default() };
        let mut covered = vec![0u8; rect.area()];
        for r in &rects {
            self.check_rect(frame, &rect, r, jpeg_allowed, &mut covered, &mut stats, &ctx);
        }
        assert!(covered.iter().all(|&c| c == 1), "{ctx}: rects do not tile the update exactly");
        (stats, rects)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_rect(
        &self,
        frame: &Frame,
        update: &Rect,
        r: &DecodedRect,
        jpeg_allowed: bool,
        covered: &mut [u8],
        stats: &mut Stats,
        ctx: &str,
    ) {
        let ctx = format!("{ctx}: rect {},{} {}x{}", r.x, r.y, r.width, r.height);
        assert_eq!(r.encoding, TIGHT, "{ctx}: not Tight");
        assert!(r.width <= 2048, "{ctx}: wider than 2048");
        assert!(usize::from(r.width) * usize::from(r.height) <= 65536, "{ctx}: area over 65536");
        let control = r.control.expect("tight control");
        assert!(!matches!(control >> 4, 0xa | 0xe), "{ctx}: basic without zlib");
        let bpp = self.converter.client_format().bits_per_pixel;
        match r.method.expect("tight method") {
            Method::Fill => stats.fills += 1,
            Method::Jpeg => {
                assert!(jpeg_allowed, "{ctx}: JPEG not allowed");
                stats.jpeg += 1;
            }
            Method::Copy { stream } => {
                assert_eq!(stream, 0, "{ctx}: full colour on stream {stream}");
                stats.copy += 1;
            }
            Method::Palette { stream, colours: 2 } => {
                assert_eq!(stream, 1, "{ctx}: mono on stream {stream}");
                stats.mono += 1;
            }
            Method::Palette { stream, colours } => {
                assert_eq!(stream, 2, "{ctx}: indexed on stream {stream}");
                assert!((3..=256).contains(&colours), "{ctx}: {colours} colours");
                assert!(bpp > 8, "{ctx}: indexed rect for an 8 bpp client");
                stats.indexed += 1;
            }
        }
        if matches!(r.method, Some(Method::Copy { .. } | Method::Palette { .. })) && !r.compressed {
            stats.uncompressed_basic += 1;
        }
        let mut i = 0;
        for y in r.y..r.y + r.height {
            for x in r.x..r.x + r.width {
                assert!(
                    x >= update.x && y >= update.y && x - update.x < update.width && y - update.y < update.height,
                    "{ctx}: outside the update"
                );
                covered[usize::from(y - update.y) * usize::from(update.width) + usize::from(x - update.x)] += 1;
                let native = frame.pixel(x, y) & 0x00ff_ffff;
                match &r.pixels {
                    Pixels::Client(values) => {
                        let want = self.converter.pixel_value(native);
                        assert_eq!(values[i], want, "{ctx}: pixel {x},{y} native {native:06x}");
                    }
                    Pixels::Rgb(rgb) => {
                        for (got, want) in rgb[i].iter().zip([native >> 16, native >> 8, native]) {
                            let d = f64::from(*got) - f64::from(want as u8);
                            stats.jpeg_sq_err += d * d;
                            stats.jpeg_samples += 1;
                        }
                    }
                }
                i += 1;
            }
        }
    }
}

/// The SetEncodings lists each format goes through, in order, on one connection.
fn encoding_lists() -> Vec<Vec<i32>> {
    vec![
        vec![TIGHT],
        vec![TIGHT, LAST_RECT, compress(0)],
        vec![TIGHT, LAST_RECT, quality(8), compress(6)],
        vec![TIGHT, quality(0), compress(9)],
        vec![TIGHT, LAST_RECT, compress(1)],
    ]
}

/// Small frames every SetEncodings list sees, and the large ones that cross the width and
/// area limits, which two lists see (the test runs unoptimised in `cargo test`, so its pixel
/// count is kept moderate).
type Frames = Vec<(&'static str, Frame)>;

fn frames() -> (Frames, Frames) {
    let small = vec![
        ("text", text_frame(160, 100, 1, false)),
        ("text3", text_frame(160, 100, 12, true)),
        ("ui", ui_frame(160, 100, 2)),
        ("photo", photo_frame(160, 100, 3)),
        ("blocks", blocks_frame(160, 100, 4)),
        ("1x1", frame_from(1, 1, |_, _| 0x123456)),
    ];
    let large = vec![("wide 2500x40", photo_frame(2500, 40, 5)), ("300x300 blocks", blocks_frame(300, 300, 6))];
    (small, large)
}

/// Large updates are analysed in bands on four threads and their zlib streams compressed side
/// by side; small ones stay on one band. One decoder follows both kinds of update on the same
/// streams, exactly (lossless lists) or above the PSNR floor (JPEG).
#[test]
fn parallel_bands_keep_every_stream_in_order() {
    let big = [
        ("text", text_frame(600, 480, 21, false)),
        ("ui", ui_frame(600, 480, 22)),
        ("photo", photo_frame(600, 480, 23)),
        ("blocks", blocks_frame(600, 480, 24)),
    ];
    let small = text_frame(160, 100, 25, true);
    // Bands only change which pixels go where; three TPIXEL sizes are enough here.
    let formats = formats().into_iter().filter(|(name, _)| ["rgb888-le", "rgb565-be", "bgr233"].contains(name));
    for (name, format) in formats {
        let mut client = Client::new(name, format);
        client.workers = &ScopedThreads(4);
        for list in encoding_lists() {
            for (frame_name, frame) in &big {
                let stats = client.round_trip(frame, frame.bounds(), &list);
                assert!(stats.rects >= 4, "{name} {list:?} {frame_name}: {stats:?}");
                client.round_trip(frame, Rect::new(3, 5, 590, 470), &list);
                client.round_trip(&small, small.bounds(), &list);
            }
        }
    }
}

/// Workers that count how often they are given tasks.
struct CountingThreads {
    threads: ScopedThreads,
    runs: AtomicUsize,
}

impl Workers for CountingThreads {
    fn count(&self) -> usize {
        self.threads.count()
    }

    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.threads.run_all(tasks);
    }
}

/// The client pixel values `rects` put on a `width` x `height` screen.
fn screen(width: u16, height: u16, rects: &[DecodedRect]) -> Vec<u32> {
    let mut screen = vec![u32::MAX; usize::from(width) * usize::from(height)];
    for r in rects {
        let Pixels::Client(values) = &r.pixels else { panic!("lossless rects only") };
        for (row, values) in values.chunks(usize::from(r.width)).enumerate() {
            let start = (usize::from(r.y) + row) * usize::from(width) + usize::from(r.x);
            screen[start..start + values.len()].copy_from_slice(values);
        }
    }
    screen
}

/// A large photo-like update on two workers has its full-colour sub-rects compressed on both,
/// each primed with what the client inflated from stream 0 before it. Over two updates that
/// continue the same streams, with a level change between them that zlib-rs cannot make in
/// place, one decoder follows exactly, without a stream reset, and sees the same pixels as a
/// client of the serial encoder.
#[test]
fn large_photo_on_several_workers_decodes_like_the_serial_path() {
    static TWO: CountingThreads = CountingThreads { threads: ScopedThreads(2), runs: AtomicUsize::new(0) };
    let (width, height) = (1024, 600);
    let frames = [photo_frame(width, height, 31), photo_frame(width, height, 32)];
    let mut serial = Client::new("serial", PixelFormat::NATIVE);
    let mut parallel = Client::new("two workers", PixelFormat::NATIVE);
    parallel.workers = &TWO;
    // zlib level of full colour: 1, then 5.
    for (frame, level) in frames.iter().zip([1, 6]) {
        let list = [TIGHT, compress(level)];
        let (_, serial_rects) = serial.round_trip_decoded(frame, frame.bounds(), &list);
        let runs = TWO.runs.load(Ordering::Relaxed);
        let (stats, parallel_rects) = parallel.round_trip_decoded(frame, frame.bounds(), &list);
        // Analysis on the workers, then compression.
        assert_eq!(TWO.runs.load(Ordering::Relaxed) - runs, 2, "level {level}: compressed on the workers");
        assert!(stats.copy >= 10 && stats.copy == stats.rects, "level {level}: {stats:?}");
        assert!(
            screen(width, height, &serial_rects) == screen(width, height, &parallel_rects),
            "level {level}: the same pixels as the serial encoder's"
        );
    }
    assert_eq!(parallel.decoder.resets, [0; 4], "no stream was reset");
}

/// An update too small to be cut into bands hands a zlib stream to another thread only when
/// two streams have enough data for the hand-over to pay (128 KiB each): a photo strip above
/// a UI fills the full-colour and the indexed streams side by side; with only one of them
/// large, both are compressed on the calling thread. Both updates decode.
#[test]
fn streams_go_side_by_side_only_when_two_are_large() {
    static TWO: CountingThreads = CountingThreads { threads: ScopedThreads(2), runs: AtomicUsize::new(0) };
    let (width, height) = (512, 500);
    assert!(usize::from(width) * usize::from(height) < rfb::encoders::workers::MIN_PARALLEL_AREA);
    let photo = photo_frame(width, 100, 41);
    let ui = ui_frame(width, height - 100, 42);
    let frame = frame_from(width, height, |x, y| {
        let (x, y) = (x as u16, y as u16);
        if y < 100 { photo.pixel(x, y) } else { ui.pixel(x, y - 100) }
    });
    let mut client = Client::new("two workers", PixelFormat::NATIVE);
    client.workers = &TWO;
    let list = [TIGHT, compress(2)];
    let runs = TWO.runs.load(Ordering::Relaxed);
    let stats = client.round_trip(&frame, frame.bounds(), &list);
    assert!(stats.copy > 0 && stats.indexed > 0, "{stats:?}");
    assert_eq!(TWO.runs.load(Ordering::Relaxed) - runs, 1, "two large streams side by side");
    // A 512x128 full-colour sub-rect (196 KiB) with the photo's bottom rows, 512x72 of UI
    // (36 KiB) below it: one large stream.
    let runs = TWO.runs.load(Ordering::Relaxed);
    let stats = client.round_trip(&frame, Rect::new(0, 72, width, 200), &list);
    assert!(stats.copy > 0 && stats.indexed > 0, "{stats:?}");
    assert_eq!(TWO.runs.load(Ordering::Relaxed) - runs, 0, "one large stream: on the calling thread");
}

#[test]
fn every_format_round_trips() {
    let (small, large) = frames();
    let lists = encoding_lists();
    for (name, format) in formats() {
        let mut client = Client::new(name, format);
        for (i, list) in lists.iter().enumerate() {
            let with_large = if i == 0 || i == 2 { &large[..] } else { &[] };
            for (frame_name, frame) in small.iter().chain(with_large) {
                let bounds = frame.bounds();
                let stats = client.round_trip(frame, bounds, list);
                let bpp = client.converter.client_format().bits_per_pixel;
                let jpeg_listed = list.iter().any(|e| (-32..=-23).contains(e));
                match *frame_name {
                    "text" => {
                        assert_eq!(stats.jpeg + stats.copy, 0, "{name} {list:?}: text went full colour: {stats:?}");
                        assert!(stats.mono > 0, "{name} {list:?}: no mono rects for text: {stats:?}");
                    }
                    "text3" => {
                        assert_eq!(stats.jpeg, 0, "{name} {list:?}: text went JPEG: {stats:?}");
                        if bpp > 8 {
                            assert!(stats.copy == 0 && stats.indexed > 0, "{name} {list:?}: {stats:?}");
                        }
                    }
                    "photo" | "wide 2500x40" if jpeg_listed && bpp >= 16 => {
                        assert_eq!(stats.copy, 0, "{name} {list:?} {frame_name}: {stats:?}");
                        assert!(stats.jpeg > 0);
                        let floor = if list.contains(&quality(8)) { 30.0 } else { 20.0 };
                        assert!(stats.psnr() >= floor, "{name} {list:?} {frame_name}: PSNR {:.1} dB", stats.psnr());
                    }
                    "photo" | "wide 2500x40" => assert!(stats.copy > 0, "{name} {list:?}: {stats:?}"),
                    "ui" if bpp > 8 => assert!(stats.indexed > 0, "{name} {list:?}: {stats:?}"),
                    "blocks" | "300x300 blocks" if list.contains(&LAST_RECT) => {
                        assert!(stats.fills >= 2, "{name} {list:?}: solid areas not found: {stats:?}")
                    }
                    "1x1" => assert_eq!((stats.rects, stats.fills), (1, 1)),
                    _ => {}
                }
                // A rect that does not start at the frame's origin.
                if bounds.width > 40 && bounds.height > 20 && frame_name.starts_with(['t', 'b', 'w', '3']) {
                    let inner = Rect::new(7, 5, bounds.width - 20, bounds.height - 9);
                    client.round_trip(frame, inner, list);
                }
            }
        }
        // Level changes continue the streams: none is ever reset.
        assert_eq!(client.decoder.resets, [0; 4], "{name}: a stream was reset");
    }
}

#[test]
fn psnr_figures_for_the_photo_frame() {
    let frame = photo_frame(640, 360, 7);
    let mut client = Client::new("native", PixelFormat::NATIVE);
    let mut report = Vec::new();
    for level in 0..=9 {
        let stats = client.round_trip(&frame, frame.bounds(), &[TIGHT, quality(level)]);
        assert_eq!(stats.jpeg, stats.rects, "level {level}: all JPEG");
        report.push(format!("q{level} {:.1} dB", stats.psnr()));
        let floor = match level {
            0..=2 => 20.0,
            3..=7 => 26.0,
            _ => 30.0,
        };
        assert!(stats.psnr() >= floor, "level {level}: PSNR {:.1} dB", stats.psnr());
    }
    println!("photo 640x360 JPEG PSNR: {}", report.join(", "));
}

/// One connection whose compression level changes between updates; a single decoder (one
/// inflater per stream id) must follow every stream across every change, none of which resets
/// a stream.
#[test]
fn compression_level_changes_keep_streams_decodable() {
    for (name, format) in
        [("native", PixelFormat::NATIVE), ("rgb565", PixelFormat::true_colour(16, 16, false, [31, 63, 31], [11, 5, 0]))]
    {
        let mut client = Client::new(name, format);
        for (i, level) in [2, 2, 3, 6, 4, 9, 7, 8, 0, 1, 9, 5, 2].into_iter().enumerate() {
            let seed = i as u64 + 10;
            for frame in [
                text_frame(200, 120, seed, false),
                text_frame(200, 120, seed, true),
                ui_frame(200, 120, seed),
                photo_frame(120, 80, seed),
            ] {
                client.round_trip(&frame, frame.bounds(), &[TIGHT, compress(level)]);
            }
            // A new compressor primed with the stream's window continues the stream at any level.
            assert_eq!(client.decoder.resets, [0; 4], "{name}: level {level}: a stream was reset");
        }
        assert!(client.decoder.stream_input[..3].iter().all(|&n| n > 0), "{name}: all three streams used");
    }
}

#[test]
fn short_data_goes_uncompressed() {
    let mut client = Client::new("native", PixelFormat::NATIVE);
    // 2x1, two colours: a 1-byte bitmap; 3x1 with three colours: 9 bytes of TPIXELs.
    let two = frame_from(2, 1, |x, _| x * 0xff);
    let stats = client.round_trip(&two, two.bounds(), &[TIGHT]);
    assert_eq!((stats.mono, stats.uncompressed_basic), (1, 1));
    let three = frame_from(3, 1, |x, _| x * 0x40);
    let stats = client.round_trip(&three, three.bounds(), &[TIGHT]);
    assert_eq!((stats.copy, stats.uncompressed_basic), (1, 1));
    let four = frame_from(4, 1, |x, _| x * 0x40);
    let stats = client.round_trip(&four, four.bounds(), &[TIGHT]);
    assert_eq!((stats.copy, stats.uncompressed_basic), (1, 0), "12 bytes are compressed");
}

#[test]
fn counts_without_last_rect_are_the_plain_split() {
    let frame = blocks_frame(2500, 100, 9);
    let mut client = Client::new("native", PixelFormat::NATIVE);
    for rect in [frame.bounds(), Rect::new(100, 10, 2100, 70), Rect::new(0, 0, 2048, 32), Rect::new(3, 3, 1, 90)] {
        let stats = client.round_trip(&frame, rect, &[TIGHT, quality(5)]);
        assert_eq!(stats.rects, tight::sub_rects(&rect).count(), "{rect:?}");
    }
}

#[test]
fn rects_outside_the_frame_are_clipped_and_empty_ones_write_nothing() {
    let frame = ui_frame(64, 48, 3);
    let converter = PixelConverter::new(PixelFormat::NATIVE);
    let encodings = ClientEncodings::from_list(vec![TIGHT, LAST_RECT]);
    let params = EncodeParams {
        converter: &converter,
        encodings: &encodings,
        shared: None,
        workers: &rfb::encoders::workers::Serial,
    };
    let mut encoder = TightEncoder::new();
    let mut out = Vec::new();
    assert_eq!(encoder.encode(&frame, &Rect::new(10, 10, 0, 5), &params, &mut out), 0);
    assert_eq!(encoder.encode(&frame, &Rect::new(100, 100, 5, 5), &params, &mut out), 0);
    assert!(out.is_empty());
    let count = encoder.encode(&frame, &Rect::new(40, 30, 60_000, 60_000), &params, &mut out);
    let rects = TightDecoder::new(PixelFormat::NATIVE).decode_rects(&out).expect("decodes");
    assert_eq!(count, rects.len());
    let area: usize = rects.iter().map(|r| usize::from(r.width) * usize::from(r.height)).sum();
    assert_eq!(area, 24 * 18);
}

#[test]
fn fill_rect_helper_decodes() {
    for (name, format) in formats() {
        let converter = PixelConverter::new(format);
        let mut out = Vec::new();
        let count = tight::write_fill_rect(&Rect::new(5, 6, 3000, 40), 0x00c0ffee, &converter, &mut out);
        let rects = TightDecoder::new(*converter.client_format()).decode_rects(&out).expect("decodes");
        assert_eq!(count, rects.len(), "{name}");
        for r in rects {
            assert!(r.width <= 2048 && usize::from(r.width) * usize::from(r.height) <= 65536, "{name}");
            let Pixels::Client(values) = r.pixels else { panic!("{name}: not lossless") };
            assert!(values.iter().all(|&v| v == converter.pixel_value(0xc0ffee)), "{name}");
        }
    }
}

#[test]
fn jpeg_rects_are_baseline_with_the_rect_size() {
    let frame = photo_frame(700, 100, 11);
    let converter = PixelConverter::new(PixelFormat::NATIVE);
    let encodings = ClientEncodings::from_list(vec![TIGHT, quality(6)]);
    let params = EncodeParams {
        converter: &converter,
        encodings: &encodings,
        shared: None,
        workers: &rfb::encoders::workers::Serial,
    };
    let mut out = Vec::new();
    let rect = Rect::new(1, 2, 333, 77);
    assert_eq!(TightEncoder::new().encode(&frame, &rect, &params, &mut out), 1);
    assert_eq!(out[12], 0x90);
    // Compact length, then the JPEG itself.
    let (len, skip) = match (out[13], out[14], out[15]) {
        (a, b, _) if a & 0x80 != 0 && b & 0x80 == 0 => (usize::from(a & 0x7f) | usize::from(b) << 7, 2),
        (a, b, c) if a & 0x80 != 0 => (usize::from(a & 0x7f) | usize::from(b & 0x7f) << 7 | usize::from(c) << 14, 3),
        (a, _, _) => (usize::from(a), 1),
    };
    let jpeg = &out[13 + skip..];
    assert_eq!(jpeg.len(), len);
    assert!(tight_decoder::is_baseline_jpeg(jpeg));
    let rects = TightDecoder::new(PixelFormat::NATIVE).decode_rects(&out).expect("decodes");
    assert_eq!((rects[0].width, rects[0].height), (333, 77));
}

#[test]
fn decoder_reports_malformed_input() {
    use tight_decoder::TightError as E;
    let header = |w: u16, h: u16| {
        let mut v = Vec::new();
        for n in [0, 0, w, h] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        v.extend_from_slice(&TIGHT.to_be_bytes());
        v
    };
    let decode = |payload: &[u8], w, h| {
        let mut data = header(w, h);
        data.extend_from_slice(payload);
        TightDecoder::new(PixelFormat::NATIVE).decode_rects(&data)
    };
    assert!(matches!(decode(&[0x80, 1, 2], 4, 4), Err(E::Truncated { .. })));
    assert!(matches!(decode(&[0xa0, 0, 0, 0], 1, 1), Err(E::UnexpectedCompression(0xa))));
    assert!(matches!(decode(&[0xe0, 0], 1, 1), Err(E::UnexpectedCompression(0xe))));
    assert!(matches!(decode(&[0x40, 2], 1, 1), Err(E::GradientFilter)));
    assert!(matches!(decode(&[0x40, 7], 1, 1), Err(E::UnknownFilter(7))));
    // Palette of 3, index 5 (raw: 2 pixels = 2 bytes).
    assert!(matches!(
        decode(&[0x60, 1, 2, 0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 5], 2, 1),
        Err(E::PaletteIndex { index: 5, colours: 3 })
    ));
    // 16 bytes expected (4 px * 3 + ...), zlib data that is not zlib.
    assert!(matches!(decode(&[0x00, 5, 1, 2, 3, 4, 5], 4, 2), Err(E::Inflate(_) | E::InflatedSize { .. })));
    // JPEG that is not a JPEG.
    assert!(matches!(decode(&[0x90, 3, 1, 2, 3], 4, 2), Err(E::Jpeg(_))));
    // Empty rect headers are rejected; LastRect ends the list.
    assert!(matches!(decode(&[], 0, 2), Err(E::BadRect { .. })));
    let mut last = header(0, 0);
    last[8..12].copy_from_slice(&LAST_RECT.to_be_bytes());
    last.extend_from_slice(&[0xde, 0xad]);
    assert_eq!(TightDecoder::new(PixelFormat::NATIVE).decode_rects(&last).expect("ok").len(), 0);
}

/// Counts how often a JPEG really is compressed behind the shared cache.
#[derive(Default)]
struct CountingCache {
    inner: rfb::encoders::shared::SharedRects,
    compressions: std::sync::atomic::AtomicUsize,
}

impl rfb::encoders::shared::SharedEncodings for CountingCache {
    fn jpeg(
        &self,
        key: rfb::encoders::shared::JpegKey,
        compress: &mut dyn FnMut() -> Option<Vec<u8>>,
    ) -> Option<std::sync::Arc<[u8]>> {
        self.inner.jpeg(key, &mut || {
            self.compressions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            compress()
        })
    }
}

#[test]
fn viewers_with_equal_settings_share_jpeg_rects() {
    let frame = photo_frame(600, 300, 41);
    let converter = PixelConverter::new(PixelFormat::NATIVE);
    let encodings = ClientEncodings::from_list(vec![TIGHT, LAST_RECT, quality(8)]);
    let alone = EncodeParams {
        converter: &converter,
        encodings: &encodings,
        shared: None,
        workers: &rfb::encoders::workers::Serial,
    };
    let mut unshared = Vec::new();
    TightEncoder::new().encode(&frame, &frame.bounds(), &alone, &mut unshared);

    let cache = CountingCache::default();
    let shared = EncodeParams {
        converter: &converter,
        encodings: &encodings,
        shared: Some((7, &cache)),
        workers: &rfb::encoders::workers::Serial,
    };
    let mut outputs = Vec::new();
    for _ in 0..3 {
        let mut out = Vec::new();
        TightEncoder::new().encode(&frame, &frame.bounds(), &shared, &mut out);
        outputs.push(out);
    }
    assert!(outputs.iter().all(|out| *out == unshared), "sharing changes no byte");
    let jpeg_rects = tight::sub_rects(&frame.bounds()).count();
    assert_eq!(
        cache.compressions.load(std::sync::atomic::Ordering::Relaxed),
        jpeg_rects,
        "each JPEG rect compressed once for three viewers"
    );
}
