//! Update pipeline benchmark over frame sequences: per sequence and encoding, with 1 and 10
//! viewers of equal settings, the server CPU per frame (damage detection once, then each
//! viewer encodes the damaged region), bytes per frame per viewer, and the frame rate one core
//! sustains. Also: a still screen, and one character typed on a POST screen.
//!
//! `cargo bench -p rfb --bench pipeline` (sequences from `fixtures/sequences/*/`, PNG frames).

#[path = "support/fixture.rs"]
mod fixture;

use fixture::load;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rfb::damage::DamageDetector;
use rfb::encoders::shared::SharedRects;
use rfb::encoders::{EncodeParams, Encoders};
use rfb::encoding::ClientEncodings;
use rfb::{Frame, PixelConverter, PixelFormat, Rect};

const CASES: &[(&str, &[i32])] =
    &[("Raw", &[0]), ("ZRLE", &[16]), ("Tight", &[7, -224]), ("Tight+JPEG q8", &[7, -224, -24])];

fn sequences(root: &Path) -> Vec<(String, Vec<Frame>)> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .expect("sequence dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "png"))
                .collect();
            files.sort();
            let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            (name, files.iter().map(|f| load(f)).collect())
        })
        .filter(|(_, frames): &(String, Vec<Frame>)| frames.len() > 1)
        .collect()
}

struct Figures {
    cpu_per_frame: Duration,
    bytes_per_frame_per_viewer: usize,
}

/// Plays `frames` to `viewers` viewers: damage once per frame, then every viewer encodes it,
/// sharing stateless rects (JPEG) through one cache as kvnc does.
fn play(frames: &[Frame], list: &[i32], viewers: usize) -> Figures {
    let converter = PixelConverter::new(PixelFormat::NATIVE);
    let encodings = ClientEncodings::from_list(list.to_vec());
    let cache = SharedRects::default();
    let mut detector = DamageDetector::new();
    let mut encoders: Vec<Encoders> = (0..viewers).map(|_| Encoders::default()).collect();
    let mut out = Vec::new();
    // The first frame (everything new) warms the streams and is not counted.
    detector.compare(&frames[0]);
    let params = EncodeParams {
        converter: &converter,
        encodings: &encodings,
        shared: Some((0, &cache)),
        workers: &rfb::encoders::workers::Serial,
    };
    for encoder in &mut encoders {
        encoder.encode(&frames[0], &frames[0].bounds(), &params, &mut out);
    }
    let mut bytes = 0;
    let started = Instant::now();
    for (generation, frame) in (1..).zip(&frames[1..]) {
        let damage = detector.compare(frame);
        let params = EncodeParams {
            converter: &converter,
            encodings: &encodings,
            shared: Some((generation, &cache)),
            workers: &rfb::encoders::workers::Serial,
        };
        for encoder in &mut encoders {
            out.clear();
            for rect in damage.rects() {
                encoder.encode(frame, rect, &params, &mut out);
            }
            bytes += out.len();
        }
    }
    let counted = frames.len() - 1;
    Figures { cpu_per_frame: started.elapsed() / counted as u32, bytes_per_frame_per_viewer: bytes / counted / viewers }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    println!(
        "{:<24} {:<14} {:>12} {:>12} {:>10} {:>13} {:>9}",
        "sequence", "encoding", "1 viewer ms", "bytes/frame", "fps/core", "10 viewers ms", "10 vs 1"
    );
    for (name, frames) in sequences(&root.join("sequences")) {
        for (label, list) in CASES {
            let one = play(&frames, list, 1);
            let ten = play(&frames, list, 10);
            println!(
                "{name:<24} {label:<14} {:>12.2} {:>12} {:>10.0} {:>13.2} {:>8.1}x",
                ms(one.cpu_per_frame),
                one.bytes_per_frame_per_viewer,
                1000.0 / ms(one.cpu_per_frame).max(0.001),
                ms(ten.cpu_per_frame),
                ten.cpu_per_frame.as_secs_f64() / one.cpu_per_frame.as_secs_f64().max(1e-9)
            );
        }
    }

    // A still 1080p screen: the damage check is all the work, and no bytes go out.
    let post = load(&root.join("post-1080p.png"));
    let still: Vec<Frame> = (0..20).map(|_| post.clone()).collect();
    let figures = play(&still, &[7, -224], 1);
    println!(
        "\nstill 1080p screen: {:.2} ms CPU per frame, {} bytes",
        ms(figures.cpu_per_frame),
        figures.bytes_per_frame_per_viewer
    );

    // One character typed on the POST screen: a 16x16 glyph appears.
    let mut typed = post.clone();
    typed.fill_rect(&Rect::new(200, 1000, 2, 16), 0x00c0c0c0);
    typed.fill_rect(&Rect::new(206, 1000, 2, 16), 0x00c0c0c0);
    typed.fill_rect(&Rect::new(200, 1007, 8, 2), 0x00c0c0c0);
    for (label, list) in CASES {
        let figures = play(&[post.clone(), typed.clone(), post.clone()], list, 1);
        println!(
            "one typed character, {label:<14}: {:>6} bytes, {:.3} ms CPU per frame",
            figures.bytes_per_frame_per_viewer,
            ms(figures.cpu_per_frame)
        );
    }
}
