//! Damage detection benchmark: milliseconds per 1920×1080 `DamageDetector::compare` (median of
//! several runs) for an unchanged frame, one typed character (a 16×16 glyph) and a whole new frame;
//! then the moved-area search (`rfb::moves::find_move`) on the replay sequences' frames, where it
//! finds a move and where it must give up.
//!
//! `cargo bench -p rfb --bench damage`

use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "support/fixture.rs"]
mod fixture;

use std::path::Path;

use rfb::damage::DamageDetector;
use rfb::moves::find_move;
use rfb::{Frame, Rect};

const RUNS: usize = 21;
const WIDTH: u16 = 1920;
const HEIGHT: u16 = 1080;

/// A desktop-like frame: flat background with some texture (the compare cost does not depend on
/// the content, only on where the first difference is).
fn desktop() -> Frame {
    let mut frame = Frame::new(WIDTH, HEIGHT);
    frame.fill_rect(&frame.bounds(), 0x003a_6ea5);
    for i in 0..40u16 {
        frame.fill_rect(&Rect::new(i * 47 % 1800, i * 29 % 1000, 120, 80), 0x0010_1010 * u32::from(i % 15));
    }
    frame
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Compares `a` and `b` alternately (so that every compare sees the change between them) and
/// returns the median time and the last damage's (rect count, area).
fn measure(a: &Frame, b: &Frame) -> (f64, usize, usize) {
    let mut detector = DamageDetector::new();
    detector.compare(a);
    let mut times = Vec::with_capacity(RUNS);
    let mut last = (0, 0);
    for run in 0..RUNS {
        let frame = if run % 2 == 0 { b } else { a };
        let start = Instant::now();
        let damage = detector.compare(black_box(frame));
        times.push(start.elapsed());
        last = (damage.rects().len(), damage.area());
        black_box(damage);
    }
    (median(times).as_secs_f64() * 1000.0, last.0, last.1)
}

fn main() {
    let base = desktop();
    let mut typed = base.clone();
    // A 16×16 glyph in the middle of a text line, straddling no block edge.
    for y in 0..16u16 {
        for x in 0..16u16 {
            if (x * 3 + y * 5) % 7 < 3 {
                typed.fill_rect(&Rect::new(1000 + x, 520 + y, 1, 1), 0x00ff_ffff);
            }
        }
    }
    let mut whole = base.clone();
    for b in whole.pixels_mut() {
        *b ^= 0x5a;
    }

    println!("{:<28} {:>9} {:>7} {:>9}", "1920x1080 compare", "ms", "rects", "pixels");
    for (label, other) in [("identical frame", &base), ("one 16x16 glyph", &typed), ("whole frame changed", &whole)] {
        let (ms, rects, area) = measure(&base, other);
        println!("{label:<28} {ms:>9.3} {rects:>7} {area:>9}");
    }

    println!();
    println!("{:<40} {:>9} {:>9} {:>9}  move", "move search (after the compare)", "ms", "changed", "moved");
    let sequences = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sequences");
    let frame = |path: &str| fixture::load(&sequences.join(path));
    let post = fixture::load(&sequences.join("../post-1080p.png"));
    // The POST screen scrolled up by one 16-pixel text line, a blank line coming in.
    let mut scrolled = post.clone();
    let stride = post.stride();
    scrolled.pixels_mut()[..stride * (usize::from(HEIGHT) - 16)].copy_from_slice(&post.pixels()[stride * 16..]);
    scrolled.fill_rect(&Rect::new(0, HEIGHT - 16, WIDTH, 16), 0);
    let cases = [
        (
            "720p window dragged 56,22 px",
            frame("desktop-moving-window/000.png"),
            frame("desktop-moving-window/001.png"),
        ),
        ("720p window dragged back", frame("desktop-moving-window/001.png"), frame("desktop-moving-window/000.png")),
        ("720p video region panned", frame("video-region/000.png"), frame("video-region/001.png")),
        ("1080p text scrolled one line", post.clone(), scrolled),
        ("1080p whole frame changed (no move)", base, whole),
        (
            "1080p photo replaced by desktop (no move)",
            fixture::load(&sequences.join("../photo-1080p.png")),
            fixture::load(&sequences.join("../desktop-1080p.png")),
        ),
    ];
    for (label, old, new) in cases {
        let mut detector = DamageDetector::new();
        detector.compare(&old);
        let damage = detector.compare(&new);
        let mut times = Vec::with_capacity(RUNS);
        let mut found = None;
        for _ in 0..RUNS {
            let start = Instant::now();
            found = black_box(find_move(&old, &new, &damage));
            times.push(start.elapsed());
        }
        let ms = median(times).as_secs_f64() * 1000.0;
        let moved = found.map_or(0, |m| m.dst.area());
        let what = found.map_or_else(String::new, |m| format!("{:?} from {},{}", m.dst, m.src_x, m.src_y));
        println!("{label:<40} {ms:>9.3} {:>9} {moved:>9}  {what}", damage.area());
    }
}
