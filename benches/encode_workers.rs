//! How long one full 1080p update takes to encode with 1, 2 and 4 encode workers: the pool a
//! viewer's update runs on (`kvnc::server::encode_pool`), with the encoders spreading a large
//! rect over it (Tight, JPEG (21), ZRLE, Zlib and Hextile in bands; Raw stays on one worker).
//!
//!     cargo bench --bench encode_workers
//!
//! Each figure is the median of several full updates of a fixture, measured from handing the
//! job to the pool until its bytes are back, every time on a new frame generation so the shared
//! JPEG cache never answers, with the CPU time it took (all threads of the process: what
//! spreading an update costs on top, e.g. priming zlib streams). Workers beyond the machine's
//! cores cannot help: the header says how many this machine has.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvnc::server::encode_pool::EncodePool;
use kvnc::source::{Picture, SourceFrame};
use kvnc_test_support::bench::viewers;
use kvnc_test_support::cpu;
use rfb::encoders::shared::SharedRects;

const ROUNDS: usize = 9;
const WORKERS: [usize; 3] = [1, 2, 4];

fn settings() -> Vec<(&'static str, Vec<i32>)> {
    vec![
        ("Tight JPEG q8", viewers::TIGHT_JPEG.to_vec()),
        ("Tight c2 (no JPEG)", vec![7, -224, -254]),
        ("JPEG (21) q8", vec![21, -224, -24]),
        ("ZRLE", viewers::ZRLE.to_vec()),
        ("Hextile", vec![5, 0]),
    ]
}

/// A full update's median wall time and CPU time, and its bytes.
struct Figures {
    wall: Duration,
    cpu: Duration,
    bytes: usize,
}

/// A full update of `frame` for a viewer listing `encodings`.
fn full_update(pool: &Arc<EncodePool>, frame: &rfb::Frame, encodings: &[i32]) -> Figures {
    let mut conn = viewers::viewer(frame.width(), frame.height(), encodings);
    let bounds = frame.bounds();
    let mut times = Vec::new();
    let mut cpu_times = Vec::new();
    let mut bytes = 0;
    for generation in 0..ROUNDS as u64 {
        let source = Arc::new(SourceFrame { generation, picture: Picture::Pixels(frame.clone()) });
        let started = Instant::now();
        let cpu_before = cpu::cpu_time(std::process::id());
        let job = conn.start_update(bounds, &[bounds], false).expect("the viewer takes updates");
        let result = pool.encode(job, source, Arc::new(SharedRects::default()));
        let encoded = result.blocking_recv().expect("the pool answers").expect("pixels");
        conn.complete_update(encoded);
        times.push(started.elapsed());
        cpu_times.push(cpu::cpu_time(std::process::id()).saturating_sub(cpu_before));
        bytes = viewers::drain(&mut conn);
    }
    times.sort();
    cpu_times.sort();
    Figures { wall: times[ROUNDS / 2], cpu: cpu_times[ROUNDS / 2], bytes }
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Counts the scoped threads that encode bands, which exit before the figures are read.
    cpu::account(std::process::id());
    let fixtures = ["desktop-1080p.png", "photo-1080p.png", "post-1080p.png"];
    let pools: Vec<_> = WORKERS.iter().map(|&n| EncodePool::new(n).expect("pool")).collect();
    println!(
        "full 1920x1080 update, median of {ROUNDS}, ms (wall, and CPU of all threads); this machine has {cores} cores"
    );
    println!(
        "{:<20} {:<18} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "setting", "frame", "1 worker", "2", "4", "1/4", "CPU 1", "CPU 2", "CPU 4", "bytes (1)", "bytes (4)"
    );
    for name in fixtures {
        let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let frame = kvnc::source::replay::load_frame(std::path::Path::new(&path)).expect("fixture");
        for (setting, encodings) in settings() {
            let figures: Vec<_> = pools.iter().map(|pool| full_update(pool, &frame, &encodings)).collect();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{setting:<20} {name:<18} {:>9.1} {:>9.1} {:>9.1} {:>7.2}x {:>9.1} {:>9.1} {:>9.1} {:>10} {:>10}",
                ms(figures[0].wall),
                ms(figures[1].wall),
                ms(figures[2].wall),
                figures[0].wall.as_secs_f64() / figures[2].wall.as_secs_f64(),
                ms(figures[0].cpu),
                ms(figures[1].cpu),
                ms(figures[2].cpu),
                figures[0].bytes,
                figures[2].bytes,
            );
        }
    }
    cpu::release(std::process::id());
}
