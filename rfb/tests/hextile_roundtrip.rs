//! Hextile round trips: frames go through `HextileEncoder` and back through an independent,
//! strict decoder. Hextile is lossless, so every decoded pixel must equal the converter's value.

mod support {
    pub mod fixtures;
    pub mod formats;
    pub mod frames;
    pub mod hextile_decoder;
    pub mod round_trip;
    pub mod wire;
}

use std::fmt::Debug;

use rfb::encoders::workers::ScopedThreads;
use rfb::encoders::{Encoders, HextileEncoder};
use rfb::encoding::{ClientEncodings, HEXTILE, RAW, ZLIB};
use rfb::{Frame, PixelConverter, PixelFormat, Rect};
use support::fixtures;
use support::frames::{self, Text};
use support::hextile_decoder::{DecodeError, Stats, decode_rects};
use support::round_trip::{Decoded, RectDecoder, UNTOUCHED, for_every_format, params, send_frames};
use support::wire::{ClientFramebuffer, RectHeader};

type Client = support::round_trip::Client<HextileEncoder, HextileDecoder>;

/// One connection's decoder: what it decoded so far. (Here rather than in
/// `support/hextile_decoder.rs`, which the vs_tigervnc bench includes without `round_trip`.)
#[derive(Default)]
struct HextileDecoder {
    stats: Stats,
}

impl RectDecoder for HextileDecoder {
    fn decode(&mut self, format: &PixelFormat, bytes: &[u8], fb: &mut ClientFramebuffer) -> Decoded<impl Debug> {
        decode_rects(format, bytes, fb, &mut self.stats)
    }
}

/// Dark glyph-like strokes on white in 8x16 cells, every fifth text line in a link colour and
/// every third cell blank.
fn text_frame(width: u16, height: u16) -> Frame {
    frames::text(width, height, Text { links: true, every_third_cell_blank: true, random_cells_blank: false })
}

/// Horizontal bands of a few colours each: tiles with several flat colours (coloured subrects).
fn gradient_frame(width: u16, height: u16) -> Frame {
    frames::from_fn(width, height, |x, y| {
        let band = u32::from(y / 5) * 40 % 256;
        (band << 16) | ((u32::from(x / 7) * 30 % 256) << 8) | 0x40
    })
}

/// Flat windows on a desktop colour, with a thin frame line: solid and two-colour tiles.
fn blocks_frame(width: u16, height: u16) -> Frame {
    let mut frame = frames::blocks(width, height, true);
    frame.fill_rect(&Rect::new(100, 70, 170, 1), 0x000000);
    frame
}

fn connect(name: &'static str, format: PixelFormat) -> Client {
    Client::new(name, format, HextileEncoder::new(), HextileDecoder::default(), HEXTILE)
}

/// Checks that `headers` are Hextile strips covering `rect` top to bottom, full width, and
/// returns how many tiles they hold.
fn strip_tiles(headers: &[RectHeader], rect: Rect) -> usize {
    let mut y = rect.y;
    let mut tiles = 0;
    for header in headers {
        let strip = header.rect;
        assert_eq!(header.encoding, HEXTILE);
        assert_eq!((strip.x, strip.y, strip.width), (rect.x, y, rect.width), "{headers:?} for {rect:?}");
        y += strip.height;
        tiles += usize::from(strip.width).div_ceil(16) * usize::from(strip.height).div_ceil(16);
    }
    assert_eq!(y, rect.y + rect.height, "{headers:?} for {rect:?}");
    tiles
}

/// Sends `rect`, decodes it and checks every pixel; returns the bytes sent.
fn send(client: &mut Client, frame: &Frame, rect: Rect) -> usize {
    let name = client.name;
    let (bytes, headers, _) = client.send(frame, rect);
    let tiles = strip_tiles(&headers, rect);
    // Never bigger than Raw plus one mask byte per tile and a header per strip: each tile
    // takes the smaller form.
    let most = 12 * headers.len() + rect.area() * client.converter.bytes_per_pixel() + tiles;
    assert!(bytes.len() <= most, "{name}: {rect:?}");
    bytes.len()
}

#[test]
fn round_trip_every_format() {
    let frames = [
        text_frame(200, 150),
        frames::photo(200, 150),
        gradient_frame(300, 200),
        blocks_frame(300, 200),
        frames::photo(1, 1),
        text_frame(17, 33),
    ];
    let rects = [
        Rect::new(37, 21, 130, 70),
        Rect::new(16, 16, 16, 16),
        Rect::new(199, 149, 1, 1),
        Rect::new(1, 2, 198, 1),
        Rect::new(5, 0, 1, 150),
        Rect::new(3, 5, 31, 47),
    ];
    for_every_format(|name, format| {
        let mut client = connect(name, format);
        send_frames(&frames, &rects, |frame, rect| {
            send(&mut client, frame, rect);
        });
        // Every tile form, and both kinds of carried colour, for every format.
        let s = &client.decoder.stats;
        assert!(s.raw > 0 && s.solid > 0 && s.mono > 0 && s.coloured > 0, "{name}: {s:?}");
        assert!(s.background_carried > 0 && s.foreground_carried > 0, "{name}: {s:?}");
    });
}

#[test]
fn foreground_survives_solid_tiles_but_not_coloured_or_raw_ones() {
    // Tiles left to right: mono (fg A), solid, mono (fg A carried), three colours (coloured),
    // mono (fg A must be specified again), noise (raw), solid (bg must be specified again).
    let mut rng = fastrand::Rng::with_seed(3);
    let frame = frames::from_fn(16 * 7, 16, |x, y| {
        let (tile, lx, ly) = (x / 16, x % 16, y % 16);
        let dot = lx == 3 && ly == 4;
        match tile {
            0 | 2 | 4 if dot => 0xff0000,
            3 if dot => 0x00ff00,
            3 if lx == 9 && ly == 9 => 0x0000ff,
            5 => rng.u32(..=0xffffff),
            _ => 0xffffff,
        }
    });
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    let (_, bytes) = client.encode(&frame, frame.bounds());
    let p = |v: u32| v.to_le_bytes();
    let mut want = vec![2 | 4 | 8];
    want.extend(p(0xffffff));
    want.extend(p(0xff0000));
    want.extend([1, 0x34, 0x00]);
    want.push(0);
    want.extend([8, 1, 0x34, 0x00]);
    want.extend([8 | 16, 2]);
    want.extend(p(0x00ff00));
    want.extend([0x34, 0x00]);
    want.extend(p(0x0000ff));
    want.extend([0x99, 0x00]);
    want.push(4 | 8);
    want.extend(p(0xff0000));
    want.extend([1, 0x34, 0x00]);
    assert_eq!(bytes[12..12 + want.len()], want);
    assert_eq!(bytes[12 + want.len()], 1, "raw tile");
    let solid_at = 12 + want.len() + 1 + 256 * 4;
    assert_eq!(bytes[solid_at], 2, "background specified after a raw tile");
    assert_eq!(bytes.len(), solid_at + 5);
    send(&mut client, &frame, frame.bounds());
}

#[test]
fn text_is_much_smaller_than_raw() {
    let frame = text_frame(320, 160);
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    let bytes = send(&mut client, &frame, frame.bounds());
    assert!(bytes * 3 < 320 * 160 * 4, "{bytes}");
}

#[test]
fn a_gradient_goes_in_strips_of_solid_tiles() {
    // A vertical gradient in bands of 7 rows (a desktop background): 16-row tiles would hold
    // three bands each; strips that start at the bands make every tile solid.
    let frame = frames::from_fn(640, 350, |_, y| 0x203050 + u32::from(y / 7) * 0x010101);
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    let rect = Rect::new(0, 0, 640, 350);
    let (_, headers, _) = client.send(&frame, rect);
    strip_tiles(&headers, rect);
    let stats = &client.decoder.stats;
    assert_eq!(stats.solid, stats.tiles, "{stats:?}");
    assert_eq!(headers.len(), 50);
}

#[test]
fn a_large_rect_is_encoded_in_bands_on_several_workers() {
    // Text over a gradient, large enough to be cut into bands: the same pixels as on one
    // worker, and strips still top to bottom.
    let mut frame = frames::from_fn(1024, 600, |_, y| 0x203050 + u32::from(y / 7) * 0x010101);
    let text = text_frame(600, 300);
    for y in 0..300 {
        for x in 0..600 {
            frame.fill_rect(&Rect::new(100 + x, 150 + y, 1, 1), text.pixel(x, y));
        }
    }
    let rect = frame.bounds();
    let mut serial = connect("rgb888-le", PixelFormat::NATIVE);
    let (_, serial_headers, serial_fb) = serial.send(&frame, rect);
    let mut parallel = connect("rgb888-le", PixelFormat::NATIVE);
    parallel.workers = &ScopedThreads(3);
    let (_, headers, fb) = parallel.send(&frame, rect);
    strip_tiles(&headers, rect);
    assert!(headers.len() > serial_headers.len(), "one strip or more per band");
    assert!(fb == serial_fb, "the same picture");
}

#[test]
fn degenerate_rects() {
    let frame = text_frame(100, 80);
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    for empty in [Rect::new(5, 6, 0, 10), Rect::new(5, 6, 10, 0), Rect::new(200, 200, 5, 5)] {
        assert_eq!(client.encode(&frame, empty), (0, vec![]), "{empty:?}");
    }
    let (count, bytes) = client.encode(&frame, Rect::new(90, 70, 50, 50));
    assert_eq!(count, 1);
    let mut fb = ClientFramebuffer::new(100, 80, UNTOUCHED);
    let headers = decode_rects(&client.format, &bytes, &mut fb, &mut client.decoder.stats).unwrap();
    assert_eq!(headers, [RectHeader { rect: Rect::new(90, 70, 10, 10), encoding: HEXTILE }]);
}

#[test]
fn test_decoder_rejects_malformed_data() {
    let format = PixelFormat::NATIVE;
    let decode = |w: u16, h: u16, tiles: &[u8]| {
        let mut b = Vec::new();
        for v in [0, 0, w, h] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&HEXTILE.to_be_bytes());
        b.extend_from_slice(tiles);
        let mut fb = ClientFramebuffer::new(32, 32, UNTOUCHED);
        decode_rects(&format, &b, &mut fb, &mut Stats::default())
    };
    assert!(decode(2, 2, &[2, 1, 2, 3, 0]).is_ok());
    assert_eq!(decode(2, 2, &[0]), Err(DecodeError::NoBackground));
    assert_eq!(decode(2, 2, &[2 | 8, 1, 2, 3, 0, 1, 0, 0]), Err(DecodeError::NoForeground));
    assert_eq!(decode(2, 2, &[2 | 4 | 16, 1, 2, 3, 0, 1, 2, 3, 0]), Err(DecodeError::ForegroundAndColoured));
    assert_eq!(decode(2, 2, &[32]), Err(DecodeError::UndefinedMaskBits(32)));
    assert!(matches!(
        decode(2, 2, &[2 | 4 | 8, 1, 2, 3, 0, 1, 2, 3, 0, 1, 0x11, 0x10]),
        Err(DecodeError::SubrectOutsideTile { .. })
    ));
    // Raw tile then a tile without background; a coloured tile then one without foreground.
    // A background carried from the previous tile is fine.
    assert!(decode(32, 1, &[2, 1, 2, 3, 0, 0]).is_ok());
    assert_eq!(decode(32, 1, &[2, 1, 2, 3, 0]), Err(DecodeError::Truncated("subencoding")));
    let raw: Vec<u8> = [vec![1], vec![0; 64], vec![0]].concat();
    assert_eq!(decode(32, 1, &raw), Err(DecodeError::NoBackground));
    let coloured = [2 | 8 | 16, 1, 2, 3, 0, 1, 9, 9, 9, 0, 0, 0, 8, 1, 0, 0];
    assert_eq!(decode(32, 1, &coloured), Err(DecodeError::NoForeground));
    assert_eq!(decode(2, 2, &[2, 1, 2]), Err(DecodeError::Truncated("background")));
}

#[test]
fn encoders_pick_hextile_when_listed_first() {
    let frame = blocks_frame(64, 48);
    let converter = PixelConverter::new(PixelFormat::NATIVE);
    let encodings = ClientEncodings::from_list(vec![HEXTILE, ZLIB, RAW]);
    let mut out = Vec::new();
    let count = Encoders::default().encode(&frame, &frame.bounds(), &params(&converter, &encodings), &mut out);
    let mut fb = ClientFramebuffer::new(64, 48, UNTOUCHED);
    let headers = decode_rects(&PixelFormat::NATIVE, &out, &mut fb, &mut Stats::default()).unwrap();
    assert_eq!(headers.len(), count);
    strip_tiles(&headers, frame.bounds());
}

/// Bytes per frame for Raw, Zlib and Hextile on the fixture screens, each Hextile frame checked
/// through the decoder. Slow in debug builds: `cargo test --release -p rfb --test
/// hextile_roundtrip -- --ignored --nocapture`.
#[test]
#[ignore]
fn fixture_sizes() {
    let converter = PixelConverter::new(PixelFormat::NATIVE);
    for (name, width, height) in [
        ("desktop-1080p.png", 1280, 720),
        ("desktop-1080p.png", 1920, 1080),
        ("post-1080p.png", 1920, 1080),
        ("photo-1080p.png", 1920, 1080),
    ] {
        let frame = fixtures::load(name, width, height);
        let mut sizes = Vec::new();
        for list in [vec![RAW], vec![ZLIB], vec![HEXTILE]] {
            let encodings = ClientEncodings::from_list(list);
            let mut out = Vec::new();
            let start = std::time::Instant::now();
            Encoders::default().encode(&frame, &frame.bounds(), &params(&converter, &encodings), &mut out);
            sizes.push((out.len(), start.elapsed()));
        }
        let mut client = connect("rgb888-le", PixelFormat::NATIVE);
        send(&mut client, &frame, frame.bounds());
        let [raw, zlib, hextile] = [sizes[0], sizes[1], sizes[2]];
        println!(
            "{name} {width}x{height}: Raw {} B, Zlib {} B ({:.1}x, {:?}), Hextile {} B ({:.1}x, {:?})",
            raw.0,
            zlib.0,
            raw.0 as f64 / zlib.0 as f64,
            zlib.1,
            hextile.0,
            raw.0 as f64 / hextile.0 as f64,
            hextile.1
        );
    }
}
