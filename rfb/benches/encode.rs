//! Encoder benchmark: for each fixture screen and each encoding, the time to encode one full
//! frame (median of several runs, streams warm) and the bytes it takes.
//!
//! `cargo bench -p rfb --bench encode` (fixtures from `fixtures/*.png`) encodes for a 32-bit
//! client; `cargo bench -p rfb --bench encode -- bgr233` for an 8-bit BGR233 one. Other words
//! after `--` keep the cases whose fixture contains or label is each of them (`-- moving Tight`), and
//! `RUNS=N` in the environment repeats each encode N times (for a profiler).

#[path = "support/fixture.rs"]
mod fixture;

use fixture::load;
use std::path::Path;
use std::time::{Duration, Instant};

use rfb::encoders::{EncodeParams, Encoders};
use rfb::encoding::ClientEncodings;
use rfb::{PixelConverter, PixelFormat};

/// Encodes measured per case, unless `RUNS` says otherwise.
const RUNS: usize = 7;
const FIXTURES: &[&str] = &[
    "post-1080p.png",
    "desktop-1080p.png",
    "photo-1080p.png",
    "wide-2560x1080.png",
    // The 720p desktop that `cargo bench --bench vs_tigervnc` measures against TigerVNC.
    "sequences/desktop-moving-window/000.png",
];

/// (label, SetEncodings list as a viewer would send it).
const CASES: &[(&str, &[i32])] = &[
    ("Raw", &[0]),
    ("Hextile", &[5]),
    ("Zlib", &[6]),
    ("ZRLE", &[16]),
    ("Tight", &[7, -224]),
    ("Tight+JPEG q8", &[7, -224, -24]),
    ("JPEG (21) q8", &[21, -24]),
    // RealVNC-like: JPEG first, ZRLE behind it, so text and flat areas go as ZRLE.
    ("JPEG (21)+ZRLE q8", &[21, 16, -24]),
    ("JPEG (21)+Tight q8", &[21, 7, -224, -24]),
];

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    // Words after `--` (cargo passes `--bench` itself): "bgr233" picks that client format.
    let words: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    let bgr233 = words.iter().any(|word| word == "bgr233");
    let filters: Vec<&String> = words.iter().filter(|word| *word != "bgr233").collect();
    let runs = std::env::var("RUNS").ok().and_then(|runs| runs.parse().ok()).unwrap_or(RUNS).max(1);
    let chosen = |name: &str, label: &str| filters.iter().all(|w| name.contains(w.as_str()) || label == w.as_str());
    let converter = PixelConverter::new(if bgr233 { PixelFormat::BGR233 } else { PixelFormat::NATIVE });
    println!("{:<22} {:<18} {:>10} {:>12} {:>8}", "fixture", "encoding", "ms/frame", "bytes/frame", "ratio");
    for name in FIXTURES {
        if !CASES.iter().any(|(label, _)| chosen(name, label)) {
            continue;
        }
        let frame = load(&fixtures.join(name));
        let raw_bytes = frame.bounds().area() * converter.bytes_per_pixel();
        for (label, list) in CASES {
            if !chosen(name, label) {
                continue;
            }
            let encodings = ClientEncodings::from_list(list.to_vec());
            let params = EncodeParams {
                converter: &converter,
                encodings: &encodings,
                shared: None,
                workers: &rfb::encoders::workers::Serial,
            };
            let mut encoders = Encoders::default();
            let mut out = Vec::with_capacity(raw_bytes + 1024);
            let mut times = Vec::with_capacity(runs);
            // The first run warms the zlib streams like a connection's first update does.
            for _ in 0..=runs {
                out.clear();
                let start = Instant::now();
                encoders.encode(&frame, &frame.bounds(), &params, &mut out);
                times.push(start.elapsed());
            }
            times.remove(0);
            let ms = median(times).as_secs_f64() * 1000.0;
            let ratio = raw_bytes as f64 / out.len() as f64;
            println!("{name:<22} {label:<18} {ms:>10.2} {:>12} {ratio:>7.1}x", out.len());
        }
    }
}
