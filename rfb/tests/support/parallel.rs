//! Large updates spread over several threads, between serial ones, on one connection: for the
//! encodings whose zlib stream must stay one stream whoever compresses its pieces.

use rfb::Rect;
use rfb::encoders::Encoder;
use rfb::encoders::workers::{ScopedThreads, Serial};
use rfb::encoding::ClientEncodings;

use super::frames;
use super::round_trip::{Client, RectDecoder};

/// Sends large and small updates alternately, the large ones spread over four threads, level
/// changes in between: the client's one decoder (one inflater) must follow them all exactly.
pub fn parallel_and_serial_updates_share_one_stream<E: Encoder, D: RectDecoder>(
    client: &mut Client<E, D>,
    encoding: i32,
) {
    static THREADS: ScopedThreads = ScopedThreads(4);
    let big = [frames::photo(700, 420), frames::blocks(700, 420, true)];
    let small = frames::photo(90, 60);
    for (i, level) in [None, Some(1), Some(6), Some(9), Some(0), None].into_iter().enumerate() {
        let mut list = vec![encoding];
        list.extend(level.map(|l| rfb::encoding::COMPRESS_LEVEL_0 + l));
        client.encodings = ClientEncodings::from_list(list);
        let frame = &big[i % 2];
        client.workers = &THREADS;
        let (_, headers, _) = client.send(frame, frame.bounds());
        assert!(headers.len() > 1, "{}: a large update is cut into bands: {headers:?}", client.name);
        client.send(frame, Rect::new(5, 3, 650, 400));
        client.workers = &Serial;
        client.send(&small, small.bounds());
        client.send(frame, Rect::new(0, 0, 300, 200));
    }
}
