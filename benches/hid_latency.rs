//! Key event in → HID report written: how long the input path takes, from the router (what a
//! viewer's KeyEvent calls) through the /dev/hidgN writer thread to the bytes arriving at the
//! other end of the device (here a FIFO, read as fast as a USB host would collect).
//!
//!     cargo bench --bench hid_latency
//!
//! Prints p50/p99/max over 2000 key taps (4000 reports: press and release), for keysym and
//! scancode events. The target is p99 < 1 ms on x86.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kvnc::hid::Role;
use kvnc::hid::descriptor::KEYBOARD;
use kvnc::hid::hidg::HidgSink;
use kvnc::hid::layout::Layout;
use kvnc::hid::router::InputRouter;

const TAPS: usize = 2000;

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("kvnc-hid-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let fifo: PathBuf = dir.join("keyboard");
    anyhow::ensure!(Command::new("mkfifo").arg(&fifo).status()?.success(), "mkfifo failed");

    // The "host": reads whole reports and timestamps each.
    let (arrived, arrivals) = mpsc::channel::<Instant>();
    let reader_path = fifo.clone();
    std::thread::spawn(move || -> std::io::Result<()> {
        let mut device = File::open(reader_path)?;
        let mut report = vec![0u8; KEYBOARD.report_len];
        loop {
            device.read_exact(&mut report)?;
            if arrived.send(Instant::now()).is_err() {
                return Ok(());
            }
        }
    });

    let sink = HidgSink::start(&[(Role::Keyboard, fifo)])?;
    let router = InputRouter::new(sink, Layout::us());
    // The writer opens the FIFO once the reader is there; until then it keeps only the latest
    // state, so the warm-up tap arrives as one or two reports.
    router.key(1, u32::from(b'a'), true);
    router.key(1, u32::from(b'a'), false);
    arrivals.recv_timeout(Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(200));
    while arrivals.try_recv().is_ok() {}

    println!("key event in → report written, {TAPS} taps (press + release each):");
    for (name, scancode) in [("keysym  ", false), ("scancode", true)] {
        let mut latencies = Vec::with_capacity(TAPS * 2);
        for tap in 0..TAPS {
            for down in [true, false] {
                let sent = Instant::now();
                if scancode {
                    router.scancode_key(1, 0x1E, 0, down);
                } else {
                    router.key(1, u32::from(b'a'), down);
                }
                let at = arrivals.recv_timeout(Duration::from_secs(10))?;
                latencies.push(at.duration_since(sent));
            }
            if tap % 500 == 499 {
                // Pauses like a typist's, so the writer thread also wakes from idle.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        println!(
            "  {name}: p50 {:>7.1} µs   p99 {:>7.1} µs   max {:>7.1} µs",
            micros(at(0.5)),
            micros(at(0.99)),
            micros(at(1.0))
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
