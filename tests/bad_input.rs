//! Bad input from the network closes (or is skipped on) only the connection it came on, with a
//! logged reason; another viewer keeps getting updates throughout.

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use kvnc_test_support::{raw_client, viewers};
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

#[test]
fn every_message_type_cut_short_or_impossible_closes_only_its_connection() {
    let server = KvncServer::start(env!("CARGO_BIN_EXE_kvnc"), &["serve"]);
    let addr = server.addr();
    let mut good = RawClient::connect(&addr);
    let fence_too_long = [&[248, 0, 0, 0, 0x80, 0, 0, 0, 200][..], &[0u8; 200]].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("SetPixelFormat cut short", vec![0, 0, 0, 0, 32, 24]),
        ("SetPixelFormat with 0 bits per pixel", [&[0u8, 0, 0, 0, 0, 24, 0, 1][..], &[0; 12]].concat()),
        ("SetEncodings promising 65535 encodings", vec![2, 0, 0xff, 0xff, 0, 0, 0, 7]),
        ("FramebufferUpdateRequest cut short", vec![3, 1, 0, 0]),
        ("KeyEvent cut short", vec![4, 1, 0]),
        ("PointerEvent cut short", vec![5, 1]),
        ("ClientCutText cut short", vec![6, 0, 0, 0, 0, 0, 0, 10, b'a']),
        ("EnableContinuousUpdates never offered", vec![150, 1, 0, 0, 0, 0, 0, 1, 0, 1]),
        ("a fence never offered, with a 200-byte payload", fence_too_long),
        ("SetDesktopSize cut short", vec![251, 0, 0, 10, 0, 10, 255, 0]),
        ("a QEMU message before QEMU keys were offered", vec![255, 0, 0, 1, 0, 0, 0, 0x61]),
        ("message type 254", vec![254]),
    ];
    for (what, bytes) in cases {
        let mut client = RawClient::connect(&addr);
        client.stream.write_all(&bytes).unwrap();
        client.stream.shutdown(Shutdown::Write).unwrap();
        assert!(closed_by_server(&mut client.stream), "{what}: not closed");
        still_served(&mut good);
    }
    // Impossible but harmless: a request far outside the screen is cropped, not refused.
    let mut outside = RawClient::connect(&addr);
    outside.stream.write_all(&[3, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
    still_served(&mut outside);
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn a_handshake_sent_one_byte_at_a_time_still_logs_in() {
    let server = KvncServer::start(env!("CARGO_BIN_EXE_kvnc"), &["serve"]);
    let mut stream = RawClient::connect_bare(&server.addr());
    let slowly = |stream: &mut std::net::TcpStream, bytes: &[u8]| {
        for byte in bytes {
            stream.write_all(std::slice::from_ref(byte)).unwrap();
            std::thread::sleep(Duration::from_millis(40));
        }
    };
    slowly(&mut stream, b"RFB 003.008\n");
    let mut types = [0u8; 16];
    let n = std::io::Read::read(&mut stream, &mut types).unwrap();
    assert!(types[1..n].contains(&1), "None offered: {:?}", &types[..n]);
    slowly(&mut stream, &[1]);
    let mut result = [0u8; 4];
    std::io::Read::read_exact(&mut stream, &mut result).unwrap();
    assert_eq!(result, [0; 4]);
    slowly(&mut stream, &[1]);
    let mut init = [0u8; 24];
    std::io::Read::read_exact(&mut stream, &mut init).unwrap();
    assert_eq!(&init[..4], &[5, 0, 2, 208], "ServerInit for the 1280x720 demo screen");
}
