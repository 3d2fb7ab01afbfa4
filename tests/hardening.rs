//! A stranger on the network: connections that never log in are closed at the handshake
//! deadline, and password guessing is slowed and then refused per source address, while
//! everyone else is still served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use kvnc_test_support::{raw_client, viewers};
use raw_client::{RawClient, closed_by_server};
use viewers::{KvncServer, TempDir};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
const GUESSER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const NEIGHBOUR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[test]
fn a_connection_that_never_logs_in_is_closed_at_the_deadline() {
    let server = KvncServer::start(KVNC, &["serve", "--handshake-timeout", "1"]);
    let addr = server.addr();
    let mut viewer = RawClient::connect(&addr);
    let started = Instant::now();
    let mut silent = RawClient::connect_bare(&addr);
    let mut half = RawClient::connect_bare(&addr);
    half.write_all(b"RFB 003.0").unwrap();
    assert!(closed_by_server(&mut silent) && closed_by_server(&mut half));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "{waited:?}");
    assert!(server.wait_for_log_count("no login within 1s", 2, Duration::from_secs(5)), "{}", server.log());
    // The logged-in viewer outlives the deadline.
    std::thread::sleep(Duration::from_millis(500));
    viewer.request_update(false);
    assert!(viewer.read_raw_update() > 0);
}

#[test]
fn password_guessing_is_slowed_then_refused_for_that_address_only() {
    let dir = TempDir::new("kvnc-hardening");
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let server = KvncServer::start(KVNC, &["serve", "--password-file", password.to_str().unwrap()]);
    let addr = server.addr();

    let started = Instant::now();
    for _ in 0..5 {
        let result = RawClient::login_from(&addr, GUESSER, b"guess");
        assert_eq!(result.err().as_deref(), Some("failed: Authentication failed"));
    }
    // Each failure was held back (100 ms): five guesses took at least half a second.
    assert!(started.elapsed() >= Duration::from_millis(500), "{:?}", started.elapsed());
    assert!(server.wait_for_log("too many failed logins", Duration::from_secs(5)), "{}", server.log());

    // The guesser is refused even with the right password; a neighbour still gets in.
    assert_eq!(RawClient::login_from(&addr, GUESSER, b"s3cret").err().as_deref(), Some("refused"));
    let mut neighbour = RawClient::login_from(&addr, NEIGHBOUR, b"s3cret").expect("the neighbour logs in");
    neighbour.request_update(false);
    assert!(neighbour.read_raw_update() > 0);
}

#[test]
fn a_flood_of_silent_connections_does_not_lock_a_viewer_out() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let addr = server.addr();
    let from = |n: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
    // One address gets 8 connections waiting to log in; the ninth is closed at once.
    let first: Vec<TcpStream> = (0..8).map(|_| RawClient::open_from(&addr, GUESSER)).collect();
    let mut flood: Vec<TcpStream> =
        first.into_iter().map(|stream| RawClient::read_version(stream).expect("admitted")).collect();
    assert_eq!(RawClient::connect_bare_from(&addr, GUESSER).err().as_deref(), Some("refused"));
    // Fifteen more addresses fill the 128 waiting places (connected all at once: each greeting
    // waits 150 ms for a WebSocket request first).
    let more: Vec<TcpStream> =
        (10..25).flat_map(|n| (0..8).map(move |_| n)).map(|n| RawClient::open_from(&addr, from(n))).collect();
    flood.extend(more.into_iter().map(|stream| RawClient::read_version(stream).expect("admitted")));
    // A real viewer still gets in: the oldest waiting connection makes room.
    let mut viewer = RawClient::login_from(&addr, from(200), b"").expect("the viewer logs in");
    viewer.request_update(false);
    assert!(viewer.read_raw_update() > 0);
    assert!(closed_by_server(&mut flood[0]), "the oldest silent connection was shed");
    assert!(server.wait_for_log("shed: too many connections waiting to log in", Duration::from_secs(5)));
}

#[test]
fn websocket_upgrades_from_pages_of_other_sites_are_refused() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let upgrade = |origin: &str| -> String {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n",
            server.port()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut status = [0u8; 12];
        stream.read_exact(&mut status).unwrap();
        String::from_utf8_lossy(&status).into_owned()
    };
    // A page anywhere else cannot reach a password-less kvnc through the user's browser...
    assert_eq!(upgrade("https://evil.example"), "HTTP/1.1 403");
    assert!(server.wait_for_log("refused a WebSocket from a page at \"https://evil.example\"", Duration::from_secs(5)));
    // ...a page from kvnc's own host can (noVNC served beside it).
    assert_eq!(upgrade("http://127.0.0.1:8080"), "HTTP/1.1 101");
}

#[test]
fn http_requests_that_are_not_websocket_upgrades_get_400() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let answer = |request: &str| -> String {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    // GET and HEAD get the web console (tests/console.rs); other requests still get 400.
    let post = answer("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 400") && post.contains("VNC"), "{post}");
    let no_key = answer("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    assert!(no_key.starts_with("HTTP/1.1 400"), "{no_key}");
    assert!(server.wait_for_log("answered with 400: no Sec-WebSocket-Key", Duration::from_secs(5)), "{}", server.log());
    // An endless head is cut off instead of buffered.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let _ = stream.write_all(&[b'x'; 16 * 1024]);
    assert!(closed_by_server(&mut stream), "a 16 KiB request head is refused");
}

#[test]
fn a_viewer_that_sends_but_never_reads_is_not_read_either() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let mut flooder = RawClient::connect(&server.addr());
    let rss_before = server.rss_kib();
    // SetPixelFormat with a colour map: 20 bytes in, a 1542-byte colour map out, never read.
    let mut message = vec![0u8, 0, 0, 0, 8, 8, 0, 0, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0];
    message[7] = 0; // true-colour flag off: a colour map
    // More than the kernel's socket buffers hold (a few MiB each way on loopback).
    let flood = message.repeat(2_000_000);
    flooder.stream.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut written = 0;
    while written < flood.len() {
        match flooder.stream.write(&flood[written..]) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    assert!(written < flood.len(), "kvnc kept reading a viewer that reads nothing ({written} bytes)");
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(grown < 32 * 1024, "kvnc grew by {grown} KiB for {written} bytes sent");
    // Everyone else is served as usual.
    let mut other = RawClient::connect(&server.addr());
    other.request_update(false);
    assert!(other.read_raw_update() > 0);
    eprintln!("flood: {written} bytes taken of {}, kvnc grew by {grown} KiB", flood.len());
}
