//! Capture-to-wire benchmark: what one captured frame costs from the V4L2 buffer to the bytes
//! of every viewer's update, for what capture devices send (YUYV; MJPEG 4:2:2 q80 without
//! Huffman tables, like a cheap dongle) at 720p and 1080p, side by side in one run. Per frame,
//! on one thread, in the server's order:
//!
//! 1. the buffer becomes a `Picture` exactly as the capture thread makes it
//!    (`kvnc::source::v4l2::picture`: the JPEG checked and its tables inserted, or the YUYV
//!    converted into a new frame);
//! 2. damage, once for all viewers: `src/server/screen.rs`'s own `Tracker`;
//! 3. each viewer's update as `src/server/viewer.rs` makes it: for a Tight JPEG viewer of an
//!    MJPEG source the source's JPEG or crops of it, else rects encoded from the pixels (a JPEG
//!    frame decoded at most once, Tight JPEG rects compressed once for all viewers).
//!
//! The screen is `fixtures/sequences/desktop-moving-window` (a window moving over a desktop)
//! scaled to the size, played forwards and backwards so that the window keeps moving.
//!
//! Figures: CPU per frame (the thread's time on a CPU from /proc/thread-self/schedstat, so time
//! the shared machine gives to others is not counted) and its share of one core at 60 fps;
//! bytes per frame per viewer; latency per frame, buffer → last byte of the last viewer's update
//! produced (wall clock, p50 and p99). On one thread the viewers take their turns one after
//! another; the server runs them on several workers, and its latency also has thread hand-offs
//! and socket writes that are not counted here. `cargo bench --bench capture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;
use kvnc::jpeg::strip_dht;
use kvnc::server::MAX_PENDING_RECTS;
use kvnc::server::passthrough::pass_jpeg_through;
use kvnc::server::screen::Tracker;
use kvnc::source::SourceFrame;
use kvnc::source::v4l2::convert::{RawFormat, YuvMatrix, YuvParams};
use kvnc::source::v4l2::{FrameKind, picture};
use kvnc_test_support::bench::{screens, viewers};
use rfb::ServerConnection;
use rfb::encoders::shared::SharedRects;
use rfb::region::Region;
use screens::{dongle_jpeg_of, sequence};
use viewers::{TIGHT_JPEG, ZRLE, drain, viewer};

const SIZES: [(u16, u16); 2] = [(1280, 720), (1920, 1080)];
const SEQUENCE: &str = "desktop-moving-window";
/// Frames measured per row, after a first frame (everything new) that is not: enough for a p99,
/// few enough that the whole run stays well under two minutes.
const FRAMES: usize = 280;
/// How HD YUYV from a device that names no colorspace is decoded (V4L2's defaults).
const YUV: YuvParams = YuvParams { matrix: YuvMatrix::Bt709, full_range: false };

/// What the device delivers: one buffer per frame of the sequence.
struct Capture {
    label: &'static str,
    kind: FrameKind,
    width: u16,
    height: u16,
    stride: u32,
    buffers: Vec<Arc<[u8]>>,
}

fn yuyv_capture(frames: &[RgbImage], width: u16, height: u16) -> Capture {
    Capture {
        label: "YUYV",
        kind: FrameKind::Raw(RawFormat::Yuyv, YUV),
        width,
        height,
        stride: u32::from(width) * 2,
        buffers: frames.iter().map(|frame| yuyv_of(frame).into()).collect(),
    }
}

fn mjpeg_capture(frames: &[RgbImage], width: u16, height: u16) -> Capture {
    let dongle_frame = |frame: &RgbImage| -> Arc<[u8]> {
        let jpeg = dongle_jpeg_of(frame);
        strip_dht(&jpeg).expect("dongle JPEG").as_ref().into()
    };
    Capture {
        label: "MJPEG",
        kind: FrameKind::Jpeg,
        width,
        height,
        stride: 0,
        buffers: frames.iter().map(dongle_frame).collect(),
    }
}

/// `image` as a device's YUYV buffer (no line padding), BT.709 limited range: each pixel's luma,
/// the chroma of each pixel pair's mean colour.
fn yuyv_of(image: &RgbImage) -> Vec<u8> {
    let (kr, kb) = (0.2126f32, 0.0722f32);
    let kg = 1.0 - kr - kb;
    let luma = |y: f32| (16.0 + y * 219.0 / 255.0).round() as u8;
    let chroma = |c: f32| (128.0 + c * 224.0 / 255.0).round() as u8;
    let mut yuyv = Vec::with_capacity(image.as_raw().len() / 3 * 2);
    // Even widths only (as the device's), so pairs never straddle lines.
    for pair in image.as_raw().chunks_exact(6) {
        let [r0, g0, b0, r1, g1, b1] = std::array::from_fn(|i| f32::from(pair[i]));
        let (y0, y1) = (kr * r0 + kg * g0 + kb * b0, kr * r1 + kg * g1 + kb * b1);
        let y = (y0 + y1) / 2.0;
        let cb = ((b0 + b1) / 2.0 - y) / (2.0 * (1.0 - kb));
        let cr = ((r0 + r1) / 2.0 - y) / (2.0 * (1.0 - kr));
        yuyv.extend([luma(y0), chroma(cb), luma(y1), chroma(cr)]);
    }
    yuyv
}

/// One viewer's update of `region`, as `src/server/viewer.rs`'s `send_update` writes it.
fn update(conn: &mut ServerConnection, frame: &SourceFrame, region: &Region, cache: &SharedRects) {
    if !pass_jpeg_through(conn, frame, region) {
        let pixels = frame.pixels().expect("decodable frame");
        conn.write_update_shared(pixels, region.rects(), Some((frame.generation, cache)));
    }
}

/// This thread's time on a CPU so far: the first field of /proc/thread-self/schedstat (ns).
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

struct Row {
    cpu_per_frame: Duration,
    /// Mean wall time per frame of: buffer → picture, damage, viewers' updates.
    stages: [Duration; 3],
    bytes_per_frame: usize,
    p50: Duration,
    p99: Duration,
    full_decodes: usize,
}

/// Plays the capture's frames forwards and backwards to `viewers` viewers taking `encodings`.
fn play(capture: &Capture, viewers: usize, encodings: &[i32]) -> Row {
    let mut conns: Vec<ServerConnection> =
        (0..viewers).map(|_| viewer(capture.width, capture.height, encodings)).collect();
    let cache = SharedRects::default();
    let mut damage: Option<Tracker> = None;
    let n = capture.buffers.len();
    let order = (0..n).chain((1..n - 1).rev()).cycle().take(FRAMES + 1);
    let mut latencies = Vec::with_capacity(FRAMES);
    let mut stages = [Duration::ZERO; 3];
    let (mut bytes, mut full_decodes) = (0, 0);
    let mut cpu_start = None;
    for (generation, index) in (1..).zip(order) {
        let counted = generation > 1;
        if generation == 2 {
            cpu_start = thread_cpu();
        }
        let buffer = &capture.buffers[index];
        let start = Instant::now();
        let picture = picture(capture.kind, buffer, capture.width, capture.height, capture.stride).expect("buffer");
        let frame = SourceFrame { generation, picture };
        let pictured = Instant::now();
        // The damage step includes the moved-area search; these viewers list no CopyRect, so a
        // move goes as the pixels its damage covers.
        let change = damage.get_or_insert_with(|| Tracker::start(&frame)).compare(&frame).unwrap_or_default();
        let mut region = change.damage;
        region.simplify(MAX_PENDING_RECTS);
        let compared = Instant::now();
        let mut written = 0;
        // An unchanged frame is not passed on to viewers (screen.rs).
        if !region.is_empty() {
            for conn in &mut conns {
                update(conn, &frame, &region, &cache);
                written += drain(conn);
            }
        }
        let done = Instant::now();
        if counted {
            stages[0] += pictured - start;
            stages[1] += compared - pictured;
            stages[2] += done - compared;
            latencies.push(done - start);
            bytes += written;
            full_decodes += usize::from(frame.jpeg().is_some_and(|jpeg| jpeg.is_decoded()));
        }
    }
    let wall: Duration = latencies.iter().sum();
    let cpu = match (cpu_start, thread_cpu()) {
        (Some(start), Some(end)) => end - start,
        // No schedstat (a kernel without it): the wall clock, an upper bound.
        _ => wall,
    };
    latencies.sort();
    let percentile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Row {
        cpu_per_frame: cpu / FRAMES as u32,
        stages: stages.map(|stage| stage / FRAMES as u32),
        bytes_per_frame: bytes / FRAMES / viewers,
        p50: percentile(0.5),
        p99: percentile(0.99),
        full_decodes,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    println!(
        "Capture → wire, {SEQUENCE} played forwards and backwards, {FRAMES} frames a row; YUYV BT.709 limited, \
         MJPEG 4:2:2 q80 without Huffman tables"
    );
    println!(
        "(CPU: one thread's time on a CPU per frame, {}; % of one core at 60 fps = ms x 6; stages: wall ms for \
         buffer → picture · damage · viewers; latency: buffer → last byte of the last viewer's update)",
        if thread_cpu().is_some() { "from schedstat" } else { "wall clock (no schedstat)" }
    );
    println!();
    println!(
        "| size | source | viewers | CPU/frame | % of a core at 60 fps | picture · damage · viewers | \
         bytes/frame/viewer | latency p50 | latency p99 | full decodes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut goal = Vec::new();
    for (width, height) in SIZES {
        let frames = sequence(SEQUENCE, u32::from(width), u32::from(height));
        for capture in [yuyv_capture(&frames, width, height), mjpeg_capture(&frames, width, height)] {
            let mut cases = vec![("Tight JPEG q8", 1, &TIGHT_JPEG[..]), ("Tight JPEG q8", 10, &TIGHT_JPEG[..])];
            if matches!(capture.kind, FrameKind::Raw(..)) {
                cases.push(("ZRLE", 1, &ZRLE[..]));
            }
            for (encoding, viewers, encodings) in cases {
                let row = play(&capture, viewers, encodings);
                let share = ms(row.cpu_per_frame) * 6.0;
                println!(
                    "| {width}x{height} | {} | {viewers} {encoding} | {:.2} ms | {share:.1} % | {:.2} · {:.2} · {:.2} | \
                     {} | {:.2} ms | {:.2} ms | {} |",
                    capture.label,
                    ms(row.cpu_per_frame),
                    ms(row.stages[0]),
                    ms(row.stages[1]),
                    ms(row.stages[2]),
                    row.bytes_per_frame,
                    ms(row.p50),
                    ms(row.p99),
                    if matches!(capture.kind, FrameKind::Jpeg) {
                        format!("{} of {FRAMES}", row.full_decodes)
                    } else {
                        "-".into()
                    },
                );
                if height == 1080 && matches!(capture.kind, FrameKind::Jpeg) {
                    goal.push(format!("{viewers} viewer(s) {share:.1} %"));
                }
            }
        }
    }
    println!();
    println!(
        "goal: 1080p MJPEG at 60 fps to Tight JPEG viewers at < 10 % of one core end to end; here: {}",
        goal.join(", ")
    );
}
