//! Bad input from the network closes (or is skipped on) only the connection it came on, with a
//! logged reason; another viewer keeps getting updates throughout.

#[path = "support/raw_client.rs"]
mod raw_client;
#[path = "support/viewers.rs"]
mod viewers;

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use raw_client::{RawClient, closed_by_server};
use viewers::KvncServer;

const FULL_FRAME: usize = 1280 * 720 * 4;

fn still_served(viewer: &mut RawClient) {
    viewer.request_update(false);
    assert_eq!(viewer.read_raw_update(), FULL_FRAME, "the other viewer still gets whole frames");
}

#[test]
fn bad_input_affects_only_its_own_connection() {
    let server = KvncServer::start(env!("CARGO_BIN_EXE_kvnc"), &["serve", "--max-cut-text", "1024"]);
    let addr = server.addr();
    let mut good = RawClient::connect(&addr);
    still_served(&mut good);

    // Garbage instead of a protocol version.
    let mut garbage = RawClient::connect_bare(&addr);
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_by_server(&mut garbage));
    assert!(server.wait_for_log("not an RFB protocol version message", Duration::from_secs(5)), "{}", server.log());
    still_served(&mut good);

    // A handshake cut short: the viewer goes away mid-version.
    let mut truncated = RawClient::connect_bare(&addr);
    truncated.write_all(b"RFB 003.0").unwrap();
    truncated.shutdown(Shutdown::Write).unwrap();
    assert!(closed_by_server(&mut truncated));
    assert!(server.wait_for_log("viewer closed the connection", Duration::from_secs(5)), "{}", server.log());
    still_served(&mut good);

    // An unknown message type after a good handshake.
    let mut unknown = RawClient::connect(&addr);
    unknown.stream.write_all(&[99]).unwrap();
    assert!(closed_by_server(&mut unknown.stream));
    assert!(server.wait_for_log("unknown client message type 99", Duration::from_secs(5)), "{}", server.log());
    still_served(&mut good);

    // Clipboard text over the limit (1 MiB against 1 KiB) is skipped without being buffered,
    // logged, and the stream stays in sync: the same viewer is served right after it.
    let mut clipboard = RawClient::connect(&addr);
    let len: u32 = 1 << 20;
    let mut message = vec![6, 0, 0, 0];
    message.extend_from_slice(&len.to_be_bytes());
    clipboard.stream.write_all(&message).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..(len as usize / chunk.len()) {
        clipboard.stream.write_all(&chunk).unwrap();
    }
    assert!(
        server.wait_for_log("skipped clipboard text over the size limit of 1048576 bytes", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    still_served(&mut clipboard);
    still_served(&mut good);

    // An absurd pixel format is a protocol error too.
    let mut bad_format = RawClient::connect(&addr);
    let message = [0, 0, 0, 0, 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0];
    bad_format.stream.write_all(&message).unwrap();
    assert!(closed_by_server(&mut bad_format.stream));
    assert!(server.wait_for_log("invalid pixel format", Duration::from_secs(5)), "{}", server.log());
    still_served(&mut good);
}
