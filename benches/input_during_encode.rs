//! A viewer's keys while that same viewer's large updates are being encoded: the time from a
//! KeyEvent leaving the viewer until kvnc's HID report reaches the device (a FIFO standing in
//! for /dev/hidg0), while the viewer asks for full 1080p Tight updates (compress level 9, no
//! JPEG) of a replay that changes between a photo and a desktop, back to back.
//!
//!     cargo bench --bench input_during_encode
//!
//! Were an update encoded inside the viewer's own task, a key would wait for the update in
//! progress: up to the encode time, printed alongside. kvnc encodes on its pool
//! (`--encode-workers`), so the viewer's task goes on reading input meanwhile.

use std::fs::File;
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use kvnc_test_support::bench::{rfb_client, servers};
use rfb_client::{Client, LAST_RECT, RGB888, TIGHT};
use servers::{free_port, start_kvnc};

const TAPS: usize = 200;
/// Compress level 9: the costliest lossless Tight, as a slow viewer link would ask for.
const TIGHT_C9: [i32; 3] = [TIGHT, -256 + 9, LAST_RECT];
/// HID usage of the `a` key, in the report's first key slot.
const KEY_A: u8 = 0x04;

fn main() {
    let dir = std::env::temp_dir().join(format!("kvnc-input-during-encode-{}", std::process::id()));
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).expect("temp dir");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for (i, name) in ["photo-1080p.png", "desktop-1080p.png"].iter().enumerate() {
        std::fs::copy(fixtures.join(name), frames.join(format!("{i}.png"))).expect("copy fixture");
    }
    let fifo = dir.join("keyboard");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success(), "mkfifo failed");

    // The "host": timestamps every key press report (a key in the first slot).
    let (pressed, presses) = mpsc::channel::<Instant>();
    let device = fifo.clone();
    std::thread::spawn(move || {
        let mut device = File::open(device).expect("open FIFO");
        let mut report = [0u8; 8];
        while device.read_exact(&mut report).is_ok() {
            if report[2] == KEY_A && pressed.send(Instant::now()).is_err() {
                return;
            }
        }
    });

    let port = free_port();
    let replay = format!("replay:{}", frames.display());
    let keyboard = format!("keyboard={}", fifo.display());
    let mut kvnc = start_kvnc(&["--source", &replay, "--fps", "10", "--hid-device", &keyboard, "--no-tls"], port, &dir);

    let mut client = Client::connect(&format!("127.0.0.1:{port}"), kvnc.id(), RGB888, &TIGHT_C9).expect("connect");
    let mut input = client.input().expect("input handle");
    // Full updates back to back on another thread, each timed.
    let stop = Arc::new(AtomicBool::new(false));
    let updating = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut walls = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let update = client.request(false, None).expect("update").expect("an update");
                walls.push(update.wall);
            }
            walls
        })
    };
    std::thread::sleep(Duration::from_millis(500));

    let key = |down: bool| {
        let mut message = vec![4, u8::from(down), 0, 0];
        message.extend_from_slice(&u32::from(b'a').to_be_bytes());
        message
    };
    let mut latencies = Vec::with_capacity(TAPS);
    for _ in 0..TAPS {
        let sent = Instant::now();
        input.write_all(&key(true)).expect("key down");
        let at = presses.recv_timeout(Duration::from_secs(10)).expect("the key reached the device");
        latencies.push(at.duration_since(sent));
        input.write_all(&key(false)).expect("key up");
        std::thread::sleep(Duration::from_millis(15));
    }
    stop.store(true, Ordering::Relaxed);
    let mut walls = updating.join().expect("update thread");
    servers::stop(&mut kvnc);
    let _ = std::fs::remove_dir_all(&dir);

    latencies.sort();
    walls.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!("key event in → HID report at the device, {TAPS} taps, while the same viewer takes full 1080p updates:");
    println!("  key latency: p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms", ms(at(0.5)), ms(at(0.99)), ms(at(1.0)));
    println!(
        "  full update (request → last byte): median {:.1} ms, max {:.1} ms, {} updates",
        ms(walls[walls.len() / 2]),
        ms(walls[walls.len() - 1]),
        walls.len()
    );
}
