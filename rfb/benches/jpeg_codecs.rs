//! JPEG encoder comparison for the Tight JPEG path: `image`'s JpegEncoder, `jpeg-encoder`
//! (scalar, or AVX2 with its `simd` feature) and `turbojpeg` (libjpeg-turbo).
//!
//! Encodes a 1920x1080 photo-like frame and a desktop-like frame at Tight quality levels 8
//! (92, 4:4:4), 6 (79, 4:4:4), 5 (77, 4:2:2) and 2 (41, 4:2:0) and prints the minimum and
//! median time and the size. `image` has no subsampling setting and always encodes 4:4:4.
//! Input is the native frame layout (bytes B, G, R, X); codecs that cannot read it pay for a
//! conversion to RGB, which is included in their time.
//!
//! Run: `cargo bench -p rfb --bench jpeg_codecs [CODEC]`. jpeg-encoder's `simd` feature is
//! AVX2-only (runtime-detected); enable it to see its x86 speed (`--features
//! jpeg-encoder/simd`): without it you get the scalar code that aarch64 always runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

const WIDTH: usize = 1920;
const HEIGHT: usize = 1080;
const RUNS: usize = 7;

#[derive(Clone, Copy)]
enum Sub {
    S444,
    S422,
    S420,
}

impl Sub {
    fn name(self) -> &'static str {
        match self {
            Sub::S444 => "4:4:4",
            Sub::S422 => "4:2:2",
            Sub::S420 => "4:2:0",
        }
    }
}

/// Smooth colour gradients with sine ripples and per-pixel noise, like a photo or video frame.
fn photo_frame() -> Vec<u8> {
    // Fixed seeds, so runs are comparable.
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    let mut px = Vec::with_capacity(WIDTH * HEIGHT * 4);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let (fx, fy) = (x as f32, y as f32);
            let r = 128.0 + 100.0 * (fx / 173.0).sin() * (fy / 211.0).cos();
            let g = 128.0 + 90.0 * ((fx + fy) / 301.0).sin();
            let b = 110.0 + 80.0 * (fy / 97.0).sin() + 30.0 * (fx / 57.0).cos();
            let n = f32::from(rng.u8(..25)) - 12.0;
            let c = |v: f32| (v + n).clamp(0.0, 255.0) as u8;
            px.extend_from_slice(&[c(b), c(g), c(r), 0]);
        }
    }
    px
}

/// Flat backgrounds, window frames, buttons and dark text-like glyph strokes.
fn desktop_frame() -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
    let mut px = vec![0u8; WIDTH * HEIGHT * 4];
    let fill = |x0: usize, y0: usize, w: usize, h: usize, rgb: u32, px: &mut Vec<u8>| {
        for y in y0..(y0 + h).min(HEIGHT) {
            for x in x0..(x0 + w).min(WIDTH) {
                let i = (y * WIDTH + x) * 4;
                px[i..i + 4].copy_from_slice(&rgb.to_le_bytes());
            }
        }
    };
    fill(0, 0, WIDTH, HEIGHT, 0x3a6ea5, &mut px);
    fill(0, HEIGHT - 40, WIDTH, 40, 0x202020, &mut px);
    for (wx, wy, ww, wh) in [(100, 80, 900, 700), (700, 300, 1100, 650)] {
        fill(wx, wy, ww, wh, 0xf0f0f0, &mut px);
        fill(wx, wy, ww, 30, 0x2b579a, &mut px);
        for line in 0..(wh - 60) / 18 {
            let mut x = wx + 10;
            let y = wy + 40 + line * 18;
            while x < wx + ww - 20 {
                let word = 3 + rng.usize(..8);
                for _ in 0..word {
                    // A glyph: a few random vertical and horizontal strokes in a 7x12 cell.
                    for _ in 0..3 {
                        let sx = x + rng.usize(..6);
                        let sy = y + rng.usize(..8);
                        if rng.bool() {
                            fill(sx, sy, 1, 4 + rng.usize(..5), 0x101010, &mut px);
                        } else {
                            fill(sx, sy, 2 + rng.usize(..4), 1, 0x101010, &mut px);
                        }
                    }
                    x += 8;
                }
                x += 8;
            }
        }
    }
    px
}

fn bgrx_to_rgb(bgrx: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(bgrx.len() / 4 * 3);
    for p in bgrx.chunks_exact(4) {
        rgb.extend_from_slice(&[p[2], p[1], p[0]]);
    }
    rgb
}

fn encode_image(bgrx: &[u8], quality: u8) -> Vec<u8> {
    let rgb = bgrx_to_rgb(bgrx);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode(&rgb, WIDTH as u32, HEIGHT as u32, image::ExtendedColorType::Rgb8)
        .expect("image encode");
    out
}

fn encode_jpeg_encoder(bgrx: &[u8], quality: u8, sub: Sub) -> Vec<u8> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, quality);
    enc.set_sampling_factor(match sub {
        Sub::S444 => SamplingFactor::F_1_1,
        Sub::S422 => SamplingFactor::F_2_1,
        Sub::S420 => SamplingFactor::F_2_2,
    });
    enc.encode(bgrx, WIDTH as u16, HEIGHT as u16, ColorType::Bgra).expect("jpeg-encoder encode");
    out
}

fn encode_turbojpeg(compressor: &mut turbojpeg::Compressor, bgrx: &[u8], quality: u8, sub: Sub) -> Vec<u8> {
    compressor.set_quality(i32::from(quality)).expect("quality");
    compressor
        .set_subsamp(match sub {
            Sub::S444 => turbojpeg::Subsamp::None,
            Sub::S422 => turbojpeg::Subsamp::Sub2x1,
            Sub::S420 => turbojpeg::Subsamp::Sub2x2,
        })
        .expect("subsamp");
    let image = turbojpeg::Image {
        pixels: bgrx,
        width: WIDTH,
        pitch: WIDTH * 4,
        height: HEIGHT,
        format: turbojpeg::PixelFormat::BGRX,
    };
    compressor.compress_to_vec(image).expect("turbojpeg encode")
}

/// Minimum and median time and the size of `RUNS` encodes after one warm-up run. The
/// minimum is the figure to compare on a shared, noisy machine.
fn measure(mut encode: impl FnMut() -> Vec<u8>) -> (Duration, Duration, usize) {
    let size = black_box(encode()).len();
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(encode());
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[RUNS / 2], size)
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter may follow.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    println!("# JPEG encoders, {WIDTH}x{HEIGHT}, {RUNS} runs each");
    println!("{:<8} {:<12} {:<20} {:>8} {:>8} {:>9}", "frame", "setting", "codec", "min ms", "med ms", "bytes");
    let mut compressor = turbojpeg::Compressor::new().expect("turbojpeg");
    for (frame_name, frame) in [("photo", photo_frame()), ("desktop", desktop_frame())] {
        for (quality, sub) in [(92, Sub::S444), (79, Sub::S444), (77, Sub::S422), (41, Sub::S420)] {
            let setting = format!("q{quality} {}", sub.name());
            let row = |codec: &str, encode: &mut dyn FnMut() -> Vec<u8>| {
                if filter.as_deref().is_some_and(|f| !codec.contains(f)) {
                    return;
                }
                let (min, median, size) = measure(encode);
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                println!("{frame_name:<8} {setting:<12} {codec:<20} {:>8.1} {:>8.1} {size:>9}", ms(min), ms(median));
            };
            row("image (4:4:4 only)", &mut || encode_image(&frame, quality));
            row("jpeg-encoder", &mut || encode_jpeg_encoder(&frame, quality, sub));
            row("turbojpeg", &mut || encode_turbojpeg(&mut compressor, &frame, quality, sub));
        }
    }
}
