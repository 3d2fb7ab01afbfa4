//! How long one full 1080p update takes to encode with 1, 2 and 4 encode workers: the pool a
//! viewer's update runs on (`kvnc::server::encode_pool`), with the encoders spreading a large
//! rect over it (Tight, JPEG (21), ZRLE, Zlib and Hextile in bands; Raw stays on one worker).
//!
//!     cargo bench --bench encode_workers
//!
//! Each figure is the median of several full updates of a fixture, measured from handing the
//! job to the pool until its bytes are back, every time on a new frame generation so the shared
//! JPEG cache never answers. Workers beyond the machine's cores cannot help: the header says
//! how many this machine has.

#[path = "support/viewers.rs"]
mod viewers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvnc::server::encode_pool::EncodePool;
use kvnc::source::{Picture, SourceFrame};
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

/// Median wall time and bytes of a full update of `frame` for a viewer listing `encodings`.
fn full_update(pool: &Arc<EncodePool>, frame: &rfb::Frame, encodings: &[i32]) -> (Duration, usize) {
    let mut conn = viewers::viewer(frame.width(), frame.height(), encodings);
    let bounds = frame.bounds();
    let mut times = Vec::new();
    let mut bytes = 0;
    for generation in 0..ROUNDS as u64 {
        let source = Arc::new(SourceFrame { generation, picture: Picture::Pixels(frame.clone()) });
        let started = Instant::now();
        let job = conn.start_update(bounds, &[bounds], false).expect("the viewer takes updates");
        let result = pool.encode(job, source, Arc::new(SharedRects::default()));
        let encoded = result.blocking_recv().expect("the pool answers").expect("pixels");
        conn.complete_update(encoded);
        times.push(started.elapsed());
        bytes = viewers::drain(&mut conn);
    }
    times.sort();
    (times[ROUNDS / 2], bytes)
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fixtures = ["desktop-1080p.png", "photo-1080p.png", "post-1080p.png"];
    let pools: Vec<_> = WORKERS.iter().map(|&n| EncodePool::new(n).expect("pool")).collect();
    println!("full 1920x1080 update, median of {ROUNDS}, ms; this machine has {cores} cores");
    println!(
        "{:<20} {:<18} {:>9} {:>9} {:>9} {:>8} {:>10} {:>10}",
        "setting", "frame", "1 worker", "2", "4", "1/4", "bytes (1)", "bytes (4)"
    );
    for name in fixtures {
        let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let frame = kvnc::source::replay::load_frame(std::path::Path::new(&path)).expect("fixture");
        for (setting, encodings) in settings() {
            let figures: Vec<_> = pools.iter().map(|pool| full_update(pool, &frame, &encodings)).collect();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{setting:<20} {name:<18} {:>9.1} {:>9.1} {:>9.1} {:>7.2}x {:>10} {:>10}",
                ms(figures[0].0),
                ms(figures[1].0),
                ms(figures[2].0),
                figures[0].0.as_secs_f64() / figures[2].0.as_secs_f64(),
                figures[0].1,
                figures[2].1,
            );
        }
    }
}
