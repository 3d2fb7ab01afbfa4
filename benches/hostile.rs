//! What a hostile network costs kvnc (the release binary, on this machine), the figures the
//! hardening is judged by:
//!
//! - memory per connection that connects and says nothing, and how many of them are held;
//! - how many password guesses one address gets answered per second;
//! - memory after a viewer sent 40 MB of colour-map requests without reading the replies.
//!
//! `cargo bench --bench hostile`.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use kvnc_test_support::{raw_client, viewers};
use raw_client::{RawClient, closed_by_server};
use viewers::{KvncServer, TempDir};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");

fn address(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250 + 2) as u8))
}

/// `count` connections that send nothing, at most 8 per address (kvnc's per-address cap).
fn silent_connections(server: &KvncServer, count: usize) -> Vec<TcpStream> {
    let streams: Vec<TcpStream> = (0..count).map(|i| RawClient::open_from(&server.addr(), address(i / 8))).collect();
    std::thread::sleep(Duration::from_millis(500));
    streams
}

fn main() {
    let dir = TempDir::new("kvnc-bench-hostile");
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let password = password.to_string_lossy().into_owned();
    let state = dir.path().join("state").to_string_lossy().into_owned();
    let args = ["serve", "--password-file", password.as_str(), "--state-dir", state.as_str()];

    let server = KvncServer::start(KVNC, &args);
    let idle = server.rss_kib();
    let waiting = silent_connections(&server, 120);
    let per_connection = (server.rss_kib().saturating_sub(idle)) as f64 / waiting.len() as f64;
    drop(waiting);
    // Let kvnc see those go before the next batch comes from the same addresses.
    std::thread::sleep(Duration::from_secs(1));
    let mut flood = silent_connections(&server, 400);
    std::thread::sleep(Duration::from_millis(500));
    // Open means still open after a short wait (the whole check must end before the 30 s
    // login deadline closes the rest).
    let still_open = |stream: &mut TcpStream| {
        stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        !closed_by_server(stream)
    };
    let held = flood.iter_mut().map(still_open).filter(|open| *open).count();
    drop(flood);

    // One address guessing for 10 s; a failure is answered after 100 ms, five in a row block it.
    let guesser = address(300);
    let started = Instant::now();
    let (mut answered, mut refused) = (0, 0);
    while started.elapsed() < Duration::from_secs(10) {
        match RawClient::login_from(&server.addr(), guesser, b"guess") {
            Err(e) if e.starts_with("failed") => answered += 1,
            Err(_) => refused += 1,
            Ok(_) => unreachable!("a wrong password logged in"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(server);

    let server = KvncServer::start(KVNC, &["serve"]);
    let mut flooder = RawClient::connect(&server.addr());
    let before = server.rss_kib();
    let colour_map_request = [0u8, 0, 0, 0, 8, 8, 0, 0, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0];
    let requests = colour_map_request.repeat(2_000_000);
    flooder.stream.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut sent = 0;
    while let Ok(n) = flooder.stream.write(&requests[sent..]) {
        sent += n;
        if sent == requests.len() {
            break;
        }
    }
    let grown = server.rss_kib().saturating_sub(before);

    println!("kvnc under hostile clients (release build, this machine)");
    println!("  memory per silent connection      {per_connection:8.1} KiB (120 connections)");
    println!("  silent connections held           {held:8} of 400 (cap: 128 waiting to log in)");
    println!(
        "  password guesses answered         {:8.2} /s from one address ({answered} answered, {refused} refused in {seconds:.1} s)",
        f64::from(answered) / seconds
    );
    println!(
        "  colour-map flood, never read      {:8} KiB more memory after {} of {} MB were taken",
        grown,
        sent / 1_000_000,
        requests.len() / 1_000_000
    );
}
