//! MJPEG pass-through benchmark: 1080p JPEG frames as a capture dongle sends them (4:2:2, q80),
//! served to viewers that take Tight JPEG, three ways side by side in one run:
//!
//! - **kvnc**: what the server does (`src/server/screen.rs`, `viewer.rs`): byte-identical frames
//!   dropped, damage from a 1/8-scale decode, sustained broad motion passed on undecoded, broad
//!   changes sent as the dongle's JPEG, small ones as lossless crops of it (at most two), the
//!   rest encoded from pixels decoded once per frame;
//! - **decode 1/8 always**: the same, but every frame decoded at 1/8 scale for damage;
//! - **decode + re-encode**: every frame decoded in full, damage from pixels, Tight JPEG encoded
//!   (what a server without pass-through does).
//!
//! Figures per frame: CPU (one thread, median of several passes), share of one core at 60 fps,
//! bytes per viewer. `cargo bench --bench passthrough`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use image::{RgbImage, imageops};
use kvnc::jpeg::{BROAD_CHANGE_DIVISOR, JpegChange, JpegDamage, crop, decode_to_frame, validate};
use kvnc_test_support::bench::{screens, viewers};
use rfb::damage::DamageDetector;
use rfb::encoders::shared::SharedRects;
use rfb::region::Region;
use rfb::{Frame, Rect, ServerConnection};
use screens::{dongle_jpeg_of, fixture, sequence};
use viewers::{TIGHT_JPEG, drain, viewer};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const PASSES: usize = 5;

/// A 720p fixture sequence scaled to 1080p, as a dongle would capture that screen.
fn upscaled_sequence(name: &str) -> Vec<Arc<[u8]>> {
    sequence(name, WIDTH, HEIGHT).iter().map(dongle_jpeg_of).collect()
}

/// Full-screen motion: the 1080p photo scrolling up 8 lines a frame (a video, a scroll, a boot
/// splash: every frame changes everywhere).
fn scrolling_photo(frames: usize) -> Vec<Arc<[u8]>> {
    let photo = fixture("photo-1080p.png");
    (0..frames)
        .map(|i| {
            let shift = (i as u32 * 8) % HEIGHT;
            let mut frame = RgbImage::new(WIDTH, HEIGHT);
            imageops::replace(
                &mut frame,
                &imageops::crop_imm(&photo, 0, shift, WIDTH, HEIGHT - shift).to_image(),
                0,
                0,
            );
            imageops::replace(
                &mut frame,
                &imageops::crop_imm(&photo, 0, 0, WIDTH, shift).to_image(),
                0,
                i64::from(HEIGHT - shift),
            );
            dongle_jpeg_of(&frame)
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Way {
    Kvnc,
    DecodeEveryFrameSmall,
    DecodeAndReencode,
}

struct Figures {
    cpu_per_frame: Duration,
    bytes_per_frame: usize,
    passed_through: usize,
    full_decodes: usize,
}

/// Plays `frames` to `viewers` Tight JPEG viewers the given way; the first frame (everything new)
/// is not counted.
fn play(frames: &[Arc<[u8]>], viewers: usize, way: Way) -> Figures {
    let mut conns: Vec<ServerConnection> =
        (0..viewers).map(|_| viewer(WIDTH as u16, HEIGHT as u16, &TIGHT_JPEG)).collect();
    let cache = SharedRects::default();
    let mut damage = match way {
        Way::Kvnc => JpegDamage::new(),
        _ => JpegDamage::new().examining_every_frame(),
    };
    let mut detector = DamageDetector::new();
    let bounds = Rect::new(0, 0, WIDTH as u16, HEIGHT as u16);
    let (mut bytes, mut passed_through, mut full_decodes) = (0, 0, 0);
    let mcu = validate(&frames[0]).expect("valid frame").mcu;
    let mut elapsed = Duration::ZERO;
    for (generation, jpeg) in frames.iter().enumerate() {
        let start = Instant::now();
        // The screen: what changed, once for all viewers.
        let (changed, pixels): (Region, Option<Frame>) = if way == Way::DecodeAndReencode {
            let frame = decode_to_frame(jpeg).expect("decode");
            full_decodes += usize::from(generation > 0);
            (detector.compare(&frame), Some(frame))
        } else {
            let changed = match damage.compare(jpeg).expect("valid frame") {
                JpegChange::Identical | JpegChange::NoVisibleChange => Region::new(),
                JpegChange::Changed(rects) => Region::from_rects(&rects),
                JpegChange::Unexamined | JpegChange::Resized { .. } => Region::from_rect(bounds),
            };
            (changed, None)
        };
        // The viewers: the whole JPEG for a broad change, crops of it for a small one (made once
        // per frame), else rects encoded from pixels that are decoded at most once per frame.
        let broad = changed.area() * BROAD_CHANGE_DIVISOR >= bounds.area();
        let mut pixels = pixels;
        let mut crops: Option<Vec<(Rect, Vec<u8>)>> = None;
        let crop_rects = crop::crop_rects(&changed, mcu, bounds.width, bounds.height);
        if !changed.is_empty() {
            for conn in &mut conns {
                if way != Way::DecodeAndReencode && broad {
                    conn.write_jpeg_update(&[(bounds, jpeg)], true).expect("pass-through");
                    passed_through += usize::from(generation > 0);
                } else if let (Way::Kvnc, Some(rects)) = (way, &crop_rects) {
                    let crops = crops.get_or_insert_with(|| {
                        rects.iter().map(|r| (*r, crop::crop(jpeg, *r).expect("crop"))).collect()
                    });
                    let parts: Vec<(Rect, &[u8])> = crops.iter().map(|(r, c)| (*r, &c[..])).collect();
                    conn.write_jpeg_update(&parts, true).expect("crops");
                    passed_through += usize::from(generation > 0);
                } else {
                    let frame = pixels.get_or_insert_with(|| {
                        full_decodes += usize::from(generation > 0);
                        decode_to_frame(jpeg).expect("decode")
                    });
                    conn.write_update_shared(frame, changed.rects(), Some((generation as u64, &cache)));
                }
                let written = drain(conn);
                if generation > 0 {
                    bytes += written;
                }
            }
        }
        if generation > 0 {
            elapsed += start.elapsed();
        }
    }
    let counted = frames.len() - 1;
    Figures {
        cpu_per_frame: elapsed / counted as u32,
        bytes_per_frame: bytes / counted / viewers,
        passed_through: passed_through / viewers,
        full_decodes,
    }
}

/// The pass with the median CPU time of `PASSES`.
fn median(frames: &[Arc<[u8]>], viewers: usize, way: Way) -> Figures {
    let mut runs: Vec<Figures> = (0..PASSES).map(|_| play(frames, viewers, way)).collect();
    runs.sort_by_key(|f| f.cpu_per_frame);
    runs.swap_remove(PASSES / 2)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let still = {
        let frame = dongle_jpeg_of(&fixture("desktop-1080p.png"));
        vec![frame; 30]
    };
    let sequences = [
        ("scrolling photo (full motion)", scrolling_photo(60)),
        ("video region", upscaled_sequence("video-region")),
        ("desktop moving window", upscaled_sequence("desktop-moving-window")),
        ("console typing", upscaled_sequence("console-typing")),
        ("still desktop", still),
    ];
    println!("MJPEG 1080p (4:2:2 q80), viewers taking Tight JPEG q8; CPU per frame on one thread, median of {PASSES}");
    println!(
        "(% of one core at 60 fps = ms per frame x 6; passed = frames sent as the dongle's JPEG or crops of it; decodes = full decodes)"
    );
    println!();
    println!(
        "| sequence | viewers | kvnc | decode 1/8 always | decode + re-encode | kvnc vs re-encode | kvnc bytes/frame | re-encode bytes/frame | kvnc passed / decodes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, frames) in &sequences {
        for viewers in [1, 10] {
            let kvnc = median(frames, viewers, Way::Kvnc);
            let small = median(frames, viewers, Way::DecodeEveryFrameSmall);
            let reencode = median(frames, viewers, Way::DecodeAndReencode);
            let cell = |f: &Figures| format!("{:.2} ms ({:.1} %)", ms(f.cpu_per_frame), ms(f.cpu_per_frame) * 6.0);
            println!(
                "| {name} | {viewers} | {} | {} | {} | {:.2}x | {} | {} | {} / {} of {} |",
                cell(&kvnc),
                cell(&small),
                cell(&reencode),
                kvnc.cpu_per_frame.as_secs_f64() / reencode.cpu_per_frame.as_secs_f64(),
                kvnc.bytes_per_frame,
                reencode.bytes_per_frame,
                kvnc.passed_through,
                kvnc.full_decodes,
                frames.len() - 1,
            );
        }
    }
}
