//! Zlib round trips: frames go through `ZlibEncoder` and back through an independent decoder
//! that keeps one inflater per connection, as real clients do. Zlib is lossless and carries
//! exactly Raw's bytes, so every decoded pixel must equal the converter's value.

mod support {
    pub mod formats;
    pub mod frames;
    pub mod parallel;
    pub mod round_trip;
    pub mod wire;
    pub mod zlib_decoder;
}

use std::fmt::Debug;

use flate2::{Decompress, FlushDecompress};
use rfb::encoders::{Encoder, Encoders, RawEncoder, ZlibEncoder};
use rfb::encoding::{COMPRESS_LEVEL_0, COPY_RECT, ClientEncodings, HEXTILE, RAW, ZLIB};
use rfb::{Frame, PixelConverter, PixelFormat, Rect};
use support::frames::{self, Text};
use support::round_trip::{Decoded, RectDecoder, UNTOUCHED, for_every_format, params, send_frames};
use support::wire::{ClientFramebuffer, RectHeader, colour_mask};
use support::zlib_decoder::{DecodeError, decode_rects};

type Client = support::round_trip::Client<ZlibEncoder, ZlibDecoder>;

/// One connection's decoder: its inflater. (Here rather than in `support/zlib_decoder.rs`,
/// which the vs_tigervnc bench includes without `round_trip`.)
struct ZlibDecoder {
    inflater: Decompress,
}

impl Default for ZlibDecoder {
    fn default() -> Self {
        ZlibDecoder { inflater: Decompress::new(true) }
    }
}

impl RectDecoder for ZlibDecoder {
    fn decode(&mut self, format: &PixelFormat, bytes: &[u8], fb: &mut ClientFramebuffer) -> Decoded<impl Debug> {
        decode_rects(format, &mut self.inflater, bytes, fb)
    }

    /// Bits outside the colour channels are cleared.
    fn shown(format: &PixelFormat, value: u32) -> u32 {
        value & colour_mask(format)
    }
}

/// libvncserver's largest Zlib rect in pixels (at least two rows are always sent).
const MAX_RECT_PIXELS: usize = 128 * 256;

/// Dark glyph-like strokes on white in 8x16 cells.
fn text_frame(width: u16, height: u16) -> Frame {
    frames::text(width, height, Text { links: false, every_third_cell_blank: false, random_cells_blank: false })
}

fn gradient_frame(width: u16, height: u16) -> Frame {
    frames::from_fn(width, height, |x, y| (u32::from(x) & 0xff) << 16 | (u32::from(y) & 0xff) << 8 | 0x40)
}

fn connect(name: &'static str, format: PixelFormat) -> Client {
    Client::new(name, format, ZlibEncoder::new(), ZlibDecoder::default(), ZLIB)
}

/// Sends `rect`, decodes it, checks every pixel and returns the rects received.
fn send(client: &mut Client, frame: &Frame, rect: Rect) -> Vec<RectHeader> {
    let name = client.name;
    let (_, headers, _) = client.send(frame, rect);
    // Bands of whole rows, top to bottom, each a Zlib rect within libvncserver's limit.
    let mut y = rect.y;
    for h in &headers {
        assert_eq!(h.encoding, ZLIB, "{name}");
        assert_eq!((h.rect.x, h.rect.y, h.rect.width), (rect.x, y, rect.width), "{name}");
        assert!(h.rect.area() <= MAX_RECT_PIXELS || h.rect.height <= 2, "{name}: {:?}", h.rect);
        y += h.rect.height;
    }
    assert_eq!(y, rect.y + rect.height, "{name}: bands cover the rect");
    headers
}

#[test]
fn round_trip_every_format_on_one_connection() {
    let frames = [
        text_frame(200, 150),
        frames::photo(200, 150),
        gradient_frame(300, 200),
        frames::blocks(300, 200, false),
        frames::photo(1, 1),
        text_frame(17, 33),
    ];
    let big = frames::photo(700, 120);
    let rects = [
        Rect::new(37, 21, 130, 70),
        Rect::new(16, 16, 16, 16),
        Rect::new(199, 149, 1, 1),
        Rect::new(1, 2, 198, 1),
        Rect::new(5, 0, 1, 150),
    ];
    for_every_format(|name, format| {
        let mut client = connect(name, format);
        // Many updates on one stream: the inflater must stay in step throughout.
        for _ in 0..2 {
            send_frames(&frames, &rects, |frame, rect| {
                send(&mut client, frame, rect);
            });
        }
        // 700 x 120 = 84000 pixels: 46 rows per band, so 3 bands.
        assert_eq!(send(&mut client, &big, big.bounds()).len(), 3, "{name}");
    });
}

#[test]
fn payload_is_exactly_raw_pixels() {
    let frame = frames::photo(90, 40);
    for (name, format) in support::formats::all() {
        let mut client = connect(name, format);
        for rect in [frame.bounds(), Rect::new(3, 4, 50, 30)] {
            let (_, bytes) = client.encode(&frame, rect);
            let len = u32::from_be_bytes(bytes[12..16].try_into().unwrap()) as usize;
            assert_eq!(bytes.len(), 16 + len, "{name}");
            let mut plain = Vec::with_capacity(rect.area() * 4 + 1);
            client.decoder.inflater.decompress_vec(&bytes[16..], &mut plain, FlushDecompress::Sync).unwrap();
            let mut raw = Vec::new();
            RawEncoder.encode(&frame, &rect, &params(&client.converter, &client.encodings), &mut raw);
            assert_eq!(plain, raw[12..], "{name}: {rect:?}");
            assert_eq!(bytes[..8], raw[..8], "{name}: same rect");
        }
    }
}

#[test]
fn level_changes_mid_stream_keep_the_stream_decodable() {
    let text = text_frame(200, 130);
    let photo = frames::photo(200, 130);
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    for level in [None, Some(1), Some(9), Some(0), Some(2), Some(6), Some(3), Some(0), Some(9), None] {
        let mut list = vec![ZLIB, RAW];
        list.extend(level.map(|l| COMPRESS_LEVEL_0 + l));
        client.encodings = ClientEncodings::from_list(list);
        send(&mut client, &text, text.bounds());
        send(&mut client, &photo, Rect::new(3, 7, 190, 100));
    }
}

#[test]
fn compresses_text_and_level_zero_stores() {
    let text = text_frame(320, 100);
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    let (_, bytes) = client.encode(&text, text.bounds());
    assert!(bytes.len() * 5 < 320 * 100 * 4, "{}", bytes.len());
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    client.encodings = ClientEncodings::from_list(vec![ZLIB, COMPRESS_LEVEL_0]);
    let (_, stored) = client.encode(&text, Rect::new(0, 0, 100, 50));
    assert!(stored.len() > 100 * 50 * 4, "{}", stored.len());
}

#[test]
fn degenerate_rects() {
    let frame = text_frame(100, 80);
    let mut client = connect("rgb888-le", PixelFormat::NATIVE);
    for empty in [Rect::new(5, 6, 0, 10), Rect::new(5, 6, 10, 0), Rect::new(200, 200, 5, 5)] {
        assert_eq!(client.encode(&frame, empty), (0, vec![]), "{empty:?}");
    }
    send(&mut client, &frame, frame.bounds());
    // A rect reaching outside the frame is clipped.
    let (count, bytes) = client.encode(&frame, Rect::new(90, 70, 50, 50));
    assert_eq!(count, 1);
    let mut fb = ClientFramebuffer::new(100, 80, UNTOUCHED);
    let headers = decode_rects(&client.format, &mut client.decoder.inflater, &bytes, &mut fb).unwrap();
    assert_eq!(headers, [RectHeader { rect: Rect::new(90, 70, 10, 10), encoding: ZLIB }]);
    send(&mut client, &frame, Rect::new(1, 1, 98, 78));
    // One pixel wide and very tall: bands of MAX_RECT_PIXELS rows.
    let tall = gradient_frame(1, 40000);
    let headers = send(&mut client, &tall, tall.bounds());
    assert_eq!(headers.iter().map(|h| h.rect.height).collect::<Vec<_>>(), [32768, 40000 - 32768]);
}

#[test]
fn encoders_dispatch_on_the_clients_list() {
    let frame = frames::blocks(64, 48, false);
    let converter = PixelConverter::new(PixelFormat::NATIVE);
    for (list, want) in [
        (vec![COPY_RECT, ZLIB, HEXTILE, RAW], ZLIB),
        (vec![COPY_RECT, HEXTILE, ZLIB, RAW], HEXTILE),
        (vec![COPY_RECT, RAW], RAW),
    ] {
        let encodings = ClientEncodings::from_list(list);
        let mut out = Vec::new();
        assert_eq!(Encoders::default().encode(&frame, &frame.bounds(), &params(&converter, &encodings), &mut out), 1);
        assert_eq!(i32::from_be_bytes(out[8..12].try_into().unwrap()), want);
    }
}

#[test]
fn test_decoder_rejects_malformed_data() {
    let format = PixelFormat::NATIVE;
    let header = |w: u16, h: u16| {
        let mut b = Vec::new();
        for v in [0, 0, w, h] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&ZLIB.to_be_bytes());
        b
    };
    let zlib = |plain: &[u8]| {
        let mut out = Vec::with_capacity(plain.len() + 64);
        flate2::Compress::new(flate2::Compression::default(), true)
            .compress_vec(plain, &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        let mut payload = (out.len() as u32).to_be_bytes().to_vec();
        payload.extend(out);
        payload
    };
    let decode = |bytes: &[u8]| {
        let mut fb = ClientFramebuffer::new(8, 8, UNTOUCHED);
        decode_rects(&format, &mut Decompress::new(true), bytes, &mut fb)
    };
    let rect = |w, h, payload: Vec<u8>| [header(w, h), payload].concat();
    assert!(decode(&rect(1, 1, zlib(&[1, 2, 3, 4]))).is_ok());
    assert_eq!(decode(&rect(1, 1, zlib(&[1, 2, 3]))), Err(DecodeError::ShortData { want: 4, got: 3 }));
    assert_eq!(decode(&rect(1, 1, zlib(&[1, 2, 3, 4, 5]))), Err(DecodeError::LongData { want: 4 }));
    assert_eq!(decode(&rect(1, 1, vec![0, 0, 0, 9, 1])), Err(DecodeError::Truncated("zlib data")));
    assert!(matches!(decode(&rect(1, 1, vec![0, 0, 0, 3, 1, 2, 3])), Err(DecodeError::Zlib(_))));
    assert_eq!(decode(&rect(9, 1, zlib(&[0; 36]))), Err(DecodeError::OutsideFramebuffer(Rect::new(0, 0, 9, 1))));
}

#[test]
fn large_updates_on_four_threads_keep_one_stream() {
    for (name, format) in [("rgb888-le", PixelFormat::NATIVE), ("bgr233", PixelFormat::BGR233)] {
        support::parallel::parallel_and_serial_updates_share_one_stream(&mut connect(name, format), ZLIB);
    }
}
