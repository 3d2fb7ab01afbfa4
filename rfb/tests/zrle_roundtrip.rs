//! ZRLE round trips: frames go through `ZrleEncoder` and back through an independent decoder that
//! keeps one zlib inflater per connection, as real clients do. ZRLE is lossless, so every decoded
//! client pixel must equal the converter's value for the native pixel.

mod support {
    pub mod formats;
    pub mod frames;
    pub mod round_trip;
    pub mod zrle_decoder;
    // zrle_decoder brings the shared wire helpers in itself (a bench includes it on its own).
    pub use zrle_decoder::wire;
    pub mod parallel;
}

use std::fmt::Debug;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use rfb::encoders::{Encoder, ZrleEncoder};
use rfb::encoding::{COMPRESS_LEVEL_0, ClientEncodings, RAW, ZRLE};
use rfb::{Frame, PixelFormat, Rect};
use support::frames::{self, Text};
use support::round_trip::{Decoded, RectDecoder, UNTOUCHED, for_every_format, send_frames};
use support::wire::RectHeader;
use support::zrle_decoder::{
    ClientFramebuffer, DecodeError, Stats, client_pixel_to_rgb, cpixel_len, decode_rects, decode_zrle_rect,
};

type Client = support::round_trip::Client<ZrleEncoder, ZrleDecoder>;

/// One connection's decoder: its inflater and what it decoded so far. (Here rather than in
/// `support/zrle_decoder.rs`, which the vs_tigervnc bench includes without `round_trip`.)
struct ZrleDecoder {
    inflater: Decompress,
    stats: Stats,
}

impl RectDecoder for ZrleDecoder {
    fn decode(&mut self, format: &PixelFormat, bytes: &[u8], fb: &mut ClientFramebuffer) -> Decoded<impl Debug> {
        decode_rects(format, &mut self.inflater, bytes, fb, &mut self.stats)
    }
}

/// Dark glyph-like strokes on white in 8x16 cells, every fifth line in a link colour.
fn text_frame(width: u16, height: u16) -> Frame {
    frames::text(width, height, Text { links: true, every_third_cell_blank: false, random_cells_blank: true })
}

/// A few flat-coloured windows on a desktop colour.
fn blocks_frame(width: u16, height: u16) -> Frame {
    let mut frame = frames::blocks(width, height, true);
    frame.fill_rect(&Rect::new(0, height.saturating_sub(20), width, 20), 0x202020);
    frame
}

/// A colour distinct from the other 255 in every test format (8 red, 8 green, 4 blue levels).
fn level_colour(k: u32) -> u32 {
    let r = (k % 8) * 255 / 7;
    let g = (k / 8 % 8) * 255 / 7;
    let b = (k / 64 % 4) * 85;
    r << 16 | g << 8 | b
}

/// 4x2 tiles, each made for one subencoding: solid, 2, 4 and 12 colours (packed palette with 1, 2
/// and 4 bits), 20 colours in mixed short runs (palette RLE), 256 colours in runs of 16 (plain
/// RLE), noise (raw), and a text tile.
fn mixed_frame() -> Frame {
    let mut rng = fastrand::Rng::with_seed(42);
    let text = text_frame(64, 64);
    frames::from_fn(256, 128, |x, y| {
        let (tx, ty, lx, ly) = (x / 64, y / 64, u32::from(x % 64), u32::from(y % 64));
        let i = ly * 64 + lx;
        match (tx, ty) {
            (0, 0) => 0x445566,
            (1, 0) => level_colour((lx + ly) % 2 * 7),
            (2, 0) => level_colour((lx + 2 * ly) % 4 * 9),
            (3, 0) => level_colour((lx + ly) % 12 * 5),
            // Runs alternately 1 and 5 long, cycling through 20 colours.
            (0, 1) => level_colour((i / 6 * 2 + u32::from(i % 6 != 0)) % 20 * 3),
            (1, 1) => level_colour(i / 16),
            (2, 1) => rng.u32(..=0xffffff),
            _ => text.pixel(x % 64, y % 64),
        }
    })
}

fn connect(name: &'static str, format: PixelFormat) -> Client {
    let decoder = ZrleDecoder { inflater: Decompress::new(true), stats: Stats::default() };
    Client::new(name, format, ZrleEncoder::new(), decoder, ZRLE)
}

/// Sends `rect`, decodes it and checks every pixel; returns the rects received.
fn send(client: &mut Client, frame: &Frame, rect: Rect) -> Vec<RectHeader> {
    let name = client.name;
    let (_, headers, fb) = client.send(frame, rect);
    assert_eq!(headers, [RectHeader { rect, encoding: ZRLE }], "{name}");
    // Spot-check that the client shows the native colours.
    for (i, &shown) in fb.pixels.iter().enumerate().filter(|&(_, &p)| p != UNTOUCHED).step_by(13) {
        let (x, y) = (i % usize::from(frame.width()), i / usize::from(frame.width()));
        check_rgb(client, frame.pixel(x as u16, y as u16), shown);
    }
    headers
}

/// The colour the client shows is the native one, up to the format's precision.
fn check_rgb(client: &Client, native: u32, value: u32) {
    let f = &client.format;
    let shown = client_pixel_to_rgb(f, value);
    let [b, g, r, _] = native.to_le_bytes();
    for (channel, (want, max)) in shown.iter().zip([(r, f.red_max), (g, f.green_max), (b, f.blue_max)]) {
        let tolerance = 255 / (2 * i32::from(max)) + 1;
        assert!(
            (i32::from(*channel) - i32::from(want)).abs() <= tolerance,
            "{}: native {native:06x} shown as {shown:?}",
            client.name
        );
    }
}

#[test]
fn round_trip_every_format() {
    let small = [
        text_frame(200, 150),
        frames::photo(200, 150),
        blocks_frame(300, 200),
        mixed_frame(),
        frames::photo(1, 1),
        frames::photo(63, 65),
        text_frame(130, 70),
    ];
    let big = [text_frame(260, 200), frames::photo(260, 200)];
    let rects = [
        Rect::new(37, 21, 130, 70),
        Rect::new(64, 64, 64, 64),
        Rect::new(259, 199, 1, 1),
        Rect::new(1, 2, 258, 1),
        Rect::new(5, 0, 1, 200),
        Rect::new(100, 70, 160, 130),
    ];
    for_every_format(|name, format| {
        let mut client = connect(name, format);
        send_frames(&small, &[], |frame, rect| {
            send(&mut client, frame, rect);
        });
        for frame in &big {
            for rect in rects {
                send(&mut client, frame, rect);
            }
        }
        // Every subencoding was used, for every format.
        let s = &client.decoder.stats;
        assert!(s.subencodings[0] > 0, "{name}: raw");
        assert!(s.subencodings[1] > 0, "{name}: solid");
        assert!(s.packed_bits.iter().all(|&n| n > 0), "{name}: packed palettes {:?}", s.packed_bits);
        assert!(s.subencodings[128] > 0, "{name}: plain RLE");
        assert!(s.subencodings[130..].iter().sum::<usize>() > 0, "{name}: palette RLE");
        assert_eq!(s.subencodings[17..128].iter().sum::<usize>() + s.subencodings[129], 0, "{name}");
    });
}

#[test]
fn mixed_frame_picks_the_expected_subencodings() {
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    send(&mut client, &mixed_frame(), Rect::new(0, 0, 256, 128));
    let s = &client.decoder.stats;
    assert_eq!(s.tiles, 8);
    assert_eq!(s.subencodings[1], 1);
    assert_eq!(s.subencodings[2], 1);
    assert_eq!(s.subencodings[4], 1);
    assert_eq!(s.subencodings[12], 1);
    assert_eq!(s.subencodings[128 + 20], 1);
    assert_eq!(s.subencodings[128], 1);
    assert_eq!(s.subencodings[0], 1);
}

#[test]
fn level_changes_mid_stream_keep_the_stream_decodable() {
    let text = text_frame(200, 130);
    let photo = frames::photo(200, 130);
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    let levels = [None, Some(1), Some(9), Some(0), Some(2), Some(6), Some(3), Some(0), Some(9), Some(5), None];
    for level in levels {
        let mut list = vec![ZRLE, RAW];
        list.extend(level.map(|l| COMPRESS_LEVEL_0 + l));
        client.encodings = ClientEncodings::from_list(list);
        send(&mut client, &text, text.bounds());
        send(&mut client, &photo, Rect::new(3, 7, 190, 100));
        send(&mut client, &text, Rect::new(10, 10, 64, 64));
    }
}

#[test]
fn first_level_is_the_clients() {
    // Level 0 from the start: zlib stores, so the payload is at least as big as the tile data.
    let photo = frames::photo(128, 64);
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    client.encodings = ClientEncodings::from_list(vec![ZRLE, COMPRESS_LEVEL_0]);
    let (_, stored) = client.encode(&photo, photo.bounds());
    assert!(stored.len() > 128 * 64 * 3, "{}", stored.len());
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    client.encodings = ClientEncodings::from_list(vec![ZRLE, COMPRESS_LEVEL_0 + 9]);
    send(&mut client, &photo, photo.bounds());
}

fn true_colour(bpp: u8, depth: u8, big_endian: bool, shift: [u8; 3]) -> PixelFormat {
    PixelFormat::true_colour(bpp, depth, big_endian, [255; 3], shift)
}

/// The uncompressed bytes of a 1x1 rect of colour 0x123456: subencoding and CPIXEL.
fn solid_tile_bytes(format: PixelFormat) -> Vec<u8> {
    let frame = frames::from_fn(1, 1, |_, _| 0x123456);
    let mut client = connect("cpixel", format);
    let (count, bytes) = client.encode(&frame, frame.bounds());
    assert_eq!(count, 1);
    let length = u32::from_be_bytes(bytes[12..16].try_into().unwrap()) as usize;
    assert_eq!(bytes.len(), 16 + length);
    let mut plain = Vec::with_capacity(64);
    Decompress::new(true).decompress_vec(&bytes[16..], &mut plain, FlushDecompress::Sync).unwrap();
    plain
}

#[test]
fn cpixel_byte_placement() {
    let cases: [(&str, PixelFormat, &[u8]); 9] = [
        // Colour in the low 3 bytes: little-endian sends them first to last...
        ("le low", true_colour(32, 24, false, [16, 8, 0]), &[0x56, 0x34, 0x12]),
        // ...big-endian sends the last 3 bytes of the pixel (00 12 34 56).
        ("be low", true_colour(32, 24, true, [16, 8, 0]), &[0x12, 0x34, 0x56]),
        // Colour in the high 3 bytes: value 0x12345600, LE bytes 00 56 34 12.
        ("le high", true_colour(32, 24, false, [24, 16, 8]), &[0x56, 0x34, 0x12]),
        // BE bytes 12 34 56 00.
        ("be high", true_colour(32, 24, true, [24, 16, 8]), &[0x12, 0x34, 0x56]),
        // Depth 32: CPIXEL = PIXEL.
        ("depth 32 le", true_colour(32, 32, false, [16, 8, 0]), &[0x56, 0x34, 0x12, 0]),
        ("depth 32 be", true_colour(32, 32, true, [16, 8, 0]), &[0, 0x12, 0x34, 0x56]),
        // Colour bits in both bytes 0 and 3: no 3 bytes hold them all.
        ("spread", true_colour(32, 24, false, [24, 8, 0]), &[0x56, 0x34, 0, 0x12]),
        // 16 and 8 bpp: CPIXEL = PIXEL (0x123456 is 0x11aa in rgb565, 0x48 in bgr233).
        (
            "rgb565 be",
            PixelFormat { red_max: 31, green_max: 63, blue_max: 31, ..true_colour(16, 16, true, [11, 5, 0]) },
            &[0x11, 0xaa],
        ),
        ("bgr233", PixelFormat::BGR233, &[0x48]),
    ];
    for (name, format, cpixel) in cases {
        let mut want = vec![1];
        want.extend_from_slice(cpixel);
        assert_eq!(solid_tile_bytes(format), want, "{name}");
        assert_eq!(cpixel_len(&format), Ok(cpixel.len()), "{name}: test decoder");
    }
}

#[test]
fn degenerate_rects() {
    let frame = text_frame(100, 80);
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    // Empty rects are covered by zero rects, and leave the zlib stream alone.
    for empty in [Rect::new(5, 6, 0, 10), Rect::new(5, 6, 10, 0), Rect::new(200, 200, 5, 5), Rect::new(100, 0, 5, 5)] {
        let (count, bytes) = client.encode(&frame, empty);
        assert_eq!((count, bytes.len()), (0, 0), "{empty:?}");
    }
    send(&mut client, &frame, Rect::new(0, 0, 100, 80));
    // A rect reaching outside the frame is clipped rather than panicking.
    let (count, bytes) = client.encode(&frame, Rect::new(90, 70, 50, 50));
    assert_eq!(count, 1);
    let mut fb = ClientFramebuffer::new(100, 80, UNTOUCHED);
    let headers =
        decode_rects(&client.format, &mut client.decoder.inflater, &bytes, &mut fb, &mut client.decoder.stats).unwrap();
    assert_eq!(headers, [RectHeader { rect: Rect::new(90, 70, 10, 10), encoding: ZRLE }]);
    assert_eq!(fb.get(99, 79), frame.pixel(99, 79));
    // The stream is still in step.
    send(&mut client, &frame, Rect::new(1, 1, 98, 78));
}

#[test]
fn encoder_is_send_and_default() {
    fn assert_send<T: Send>(_: &T) {}
    let encoder = ZrleEncoder::default();
    assert_send(&encoder);
    let _: Box<dyn Encoder> = Box::new(encoder);
}

/// zlib data (from a fresh stream, sync-flushed) holding `plain`.
fn zlib(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() + 64);
    Compress::new(Compression::default(), true).compress_vec(plain, &mut out, FlushCompress::Sync).unwrap();
    let mut payload = (out.len() as u32).to_be_bytes().to_vec();
    payload.extend(out);
    payload
}

#[test]
fn test_decoder_rejects_malformed_data() {
    let format = PixelFormat::NATIVE;
    let decode = |rect: Rect, payload: &[u8]| {
        let mut fb = ClientFramebuffer::new(64, 64, UNTOUCHED);
        decode_zrle_rect(&format, &mut Decompress::new(true), rect, payload, &mut fb, &mut Stats::default())
    };
    let r = Rect::new(0, 0, 2, 2);
    assert_eq!(decode(r, &zlib(&[1, 1, 2, 3])), Ok(4 + zlib(&[1, 1, 2, 3]).len() - 4));
    assert_eq!(decode(r, &zlib(&[17])), Err(DecodeError::BadSubencoding(17)));
    assert_eq!(decode(r, &zlib(&[129])), Err(DecodeError::BadSubencoding(129)));
    assert_eq!(decode(r, &zlib(&[1, 1, 2])), Err(DecodeError::Truncated("cpixels")));
    assert_eq!(decode(r, &zlib(&[1, 1, 2, 3, 0])), Err(DecodeError::TrailingData(1)));
    assert_eq!(decode(r, &zlib(&[128, 1, 2, 3, 4])), Err(DecodeError::RunOverflow));
    assert_eq!(
        decode(r, &zlib(&[130, 1, 2, 3, 4, 5, 6, 0x82, 1])),
        Err(DecodeError::PaletteIndex { index: 2, palette: 2 })
    );
    assert_eq!(
        decode(r, &zlib(&[2, 1, 2, 3, 4, 5, 6, 0x40, 0x80])),
        Ok(zlib(&[2, 1, 2, 3, 4, 5, 6, 0x40, 0x80]).len())
    );
    assert_eq!(
        decode(Rect::new(60, 0, 5, 1), &zlib(&[1, 0, 0, 0])),
        Err(DecodeError::OutsideFramebuffer(Rect::new(60, 0, 5, 1)))
    );
    assert!(matches!(decode(r, &[0, 0, 0, 3, 1, 2, 3]), Err(DecodeError::Zlib(_))));
    assert_eq!(decode(r, &[0, 0, 0, 9, 1]), Err(DecodeError::Truncated("zrle data")));
    assert_eq!(decode(r, &[0, 0]), Err(DecodeError::Truncated("zrle length")));
    // Random garbage never panics.
    let mut rng = fastrand::Rng::with_seed(7);
    for len in 0..300 {
        let mut plain: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        if let Some(first) = plain.first_mut() {
            *first = [0, 1, 2, 5, 16, 128, 130, 200][len % 8];
        }
        let _ = decode(Rect::new(0, 0, 9, 7), &zlib(&plain));
        let garbage: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let _ = decode(Rect::new(0, 0, 9, 7), &garbage);
    }
}

#[test]
fn large_updates_on_four_threads_keep_one_stream() {
    for (name, format) in [("rgb888-le", PixelFormat::NATIVE), ("bgr233", PixelFormat::BGR233)] {
        support::parallel::parallel_and_serial_updates_share_one_stream(&mut connect(name, format), ZRLE);
    }
}
