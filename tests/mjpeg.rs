//! MJPEG as a cheap capture dongle sends it (no Huffman tables) replayed by kvnc: viewers that
//! take Tight JPEG get the frame's own JPEG passed through and decode it (noVNC needs the
//! tables kvnc inserts); viewers that need pixels get the decoded frame losslessly.

use std::time::Duration;

use dongle::dongle_jpeg;
use kvnc::jpeg::{decode_to_frame, ensure_dht, has_dht, split_mjpeg};
use kvnc_test_support::{dongle, novnc, viewers};
use novnc::{NoVncOptions, run_novnc};
use viewers::{KvncServer, RgbImage, TempDir, TigerViewer};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
/// Two JPEG decoders (the browser's or TigerVNC's, and libjpeg-turbo here) agree this well.
const DECODERS_AGREE_PSNR: f64 = 40.0;

/// A still MJPEG "recording" of one DHT-less frame, and that frame decoded as kvnc sees it.
fn still_dongle_frame(dir: &TempDir) -> (String, RgbImage) {
    let recording =
        std::fs::read(format!("{}/fixtures/sequences/desktop-moving-window-nodht.mjpeg", env!("CARGO_MANIFEST_DIR")))
            .expect("fixture");
    let first = split_mjpeg(&recording).next().expect("a frame").expect("a valid frame");
    assert_eq!(has_dht(first).ok(), Some(false), "the fixture is DHT-less, like a cheap dongle's MJPEG");
    let path = dir.path().join("still-nodht.mjpeg");
    std::fs::write(&path, first).unwrap();
    (path.display().to_string(), decoded_rgb(&ensure_dht(first).expect("tables inserted")))
}

#[test]
fn dht_less_mjpeg_passes_through_to_novnc_and_tigervnc() {
    let dir = TempDir::new("kvnc-mjpeg");
    let (path, decoded) = still_dongle_frame(&dir);
    let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{path}")]);

    let run = run_novnc(server.port(), &NoVncOptions::new().encodings(&[7]).quality(6).name("mjpeg-passthrough"));
    run.assert_ok();
    assert_eq!(run.rect_count(7), 1, "one Tight rect: the whole JPEG ({:?})", run.rects);
    let psnr = run.canvas.psnr(&decoded).unwrap_or(0.0);
    assert!(psnr >= DECODERS_AGREE_PSNR, "noVNC shows the dongle's frame: {psnr:.1} dB ({})", run.dir.display());
    assert!(server.log().contains("passed the source's JPEG through"), "{}", server.log());

    let viewer = TigerViewer::start(&server.vnc_target(), &["-PreferredEncoding=Tight", "-AutoSelect=0"]);
    let shown = viewer.wait_until_fb(
        |fb| {
            fb.width >= decoded.width
                && fb.height >= decoded.height
                && fb.crop(0, 0, decoded.width, decoded.height).psnr(&decoded).unwrap_or(0.0) >= DECODERS_AGREE_PSNR
        },
        Duration::from_secs(20),
    );
    if let Err(last) = &shown {
        last.save_artifact("mjpeg-tigervnc.png");
    }
    assert!(shown.is_ok(), "TigerVNC shows the dongle's frame:\n{}", viewer.log());
}

#[test]
fn viewers_that_need_pixels_get_the_decoded_frame() {
    let dir = TempDir::new("kvnc-mjpeg-pixels");
    let (path, decoded) = still_dongle_frame(&dir);
    let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{path}")]);
    for (name, encodings) in [("zrle", &[16][..]), ("tight-lossless", &[7])] {
        let run = run_novnc(server.port(), &NoVncOptions::new().encodings(encodings).name(name));
        run.assert_ok();
        assert_eq!(run.canvas.diff_count(&decoded, 0), Some(0), "{name}: exact decoded pixels ({})", run.dir.display());
    }
    assert!(!server.log().contains("passed the source's JPEG through"), "{}", server.log());
}

/// A fixture PNG as RGB pixels, cropped to `w`x`h` from the top left.
fn fixture_rgb(path: &str, w: u32, h: u32) -> Vec<u8> {
    let image = image::open(format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).expect("fixture").to_rgb8();
    image::imageops::crop_imm(&image, 0, 0, w, h).to_image().into_raw()
}

/// A JPEG frame decoded as kvnc decodes it, as RGB.
fn decoded_rgb(jpeg: &[u8]) -> RgbImage {
    let frame = decode_to_frame(jpeg).expect("decodes");
    let mut image = RgbImage::filled(usize::from(frame.width()), usize::from(frame.height()), [0, 0, 0]);
    for y in 0..frame.height() {
        for x in 0..frame.width() {
            let [b, g, r, _] = frame.pixel(x, y).to_le_bytes();
            image.set_pixel(usize::from(x), usize::from(y), [r, g, b]);
        }
    }
    image
}

/// A dongle's stream with a moving window that then stands still: TigerVNC (watching all along)
/// and noVNC, both taking Tight JPEG, are sent the dongle's JPEG whole or in lossless crops and
/// never make kvnc decode a frame in full; all viewers end with the last frame, vncdotool (Raw,
/// which does make kvnc decode) exactly.
#[test]
fn viewers_end_with_the_last_frame_and_only_pixel_viewers_cost_a_decode() {
    let dir = TempDir::new("kvnc-mjpeg-lazy");
    let recording =
        std::fs::read(format!("{}/fixtures/sequences/desktop-moving-window.mjpeg", env!("CARGO_MANIFEST_DIR")))
            .expect("fixture");
    let frames: Vec<&[u8]> = split_mjpeg(&recording).map(|frame| frame.expect("a valid frame")).collect();
    let last = *frames.last().expect("frames");
    let last_shown = decoded_rgb(last);
    // Still for 5 s (a still HDMI picture gives identical frames) while TigerVNC connects, the
    // motion twice, then the last frame over and over.
    let path = dir.path().join("moving-then-still.mjpeg");
    let lead_in = std::iter::repeat_n(frames[0], 25);
    let motion = frames.iter().chain(&frames).copied();
    let recording: Vec<&[u8]> = lead_in.chain(motion).chain(std::iter::repeat_n(last, 150)).collect();
    std::fs::write(&path, recording.concat()).unwrap();
    let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{}", path.display()), "--fps", "5"]);
    let tiger = TigerViewer::start(&server.vnc_target(), &["-PreferredEncoding=Tight", "-AutoSelect=0"]);

    let (w, h) = (last_shown.width, last_shown.height);
    let shows_last = |fb: &RgbImage| {
        fb.width >= w && fb.height >= h && fb.crop(0, 0, w, h).psnr(&last_shown).unwrap_or(0.0) >= DECODERS_AGREE_PSNR
    };
    let shown = tiger.wait_until_fb(shows_last, Duration::from_secs(30));
    if let Err(last) = &shown {
        last.save_artifact("mjpeg-lazy-tigervnc.png");
    }
    assert!(shown.is_ok(), "TigerVNC ends with the last frame:\n{}", tiger.log());
    assert!(
        server.log().contains("crops of the source's JPEG through"),
        "small changes went as crops:\n{}",
        server.log()
    );

    let run = run_novnc(server.port(), &NoVncOptions::new().encodings(&[7]).quality(6).name("lazy-decode"));
    run.assert_ok();
    let psnr = run.canvas.psnr(&last_shown).unwrap_or(0.0);
    assert!(psnr >= DECODERS_AGREE_PSNR, "noVNC shows the last frame: {psnr:.1} dB ({})", run.dir.display());
    assert!(!server.log().contains("decoding a 1280x720 JPEG frame"), "decoded for JPEG viewers:\n{}", server.log());

    let captured = viewers::capture(&server.vnc_target(), None);
    assert_eq!(captured.diff_count(&last_shown, 0), Some(0), "vncdotool shows the last frame exactly");
    assert!(server.log().contains("decoding a 1280x720 JPEG frame"), "{}", server.log());
}

/// A viewer without Tight that lists JPEG (21), as RealVNC Viewer, gets the DHT-less dongle
/// frame passed through as a JPEG rect, tables inserted, and noVNC's JPEG decoder shows it.
#[test]
fn dht_less_mjpeg_passes_through_as_jpeg_21() {
    let dir = TempDir::new("kvnc-mjpeg-21");
    let (path, decoded) = still_dongle_frame(&dir);
    let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{path}")]);
    let run = run_novnc(server.port(), &NoVncOptions::new().encodings(&[21, 16]).name("mjpeg-jpeg21"));
    run.assert_ok();
    assert_eq!((run.rect_count(21), run.rect_count(16)), (1, 0), "one JPEG rect: the whole frame ({:?})", run.rects);
    let psnr = run.canvas.psnr(&decoded).unwrap_or(0.0);
    assert!(psnr >= DECODERS_AGREE_PSNR, "noVNC shows the dongle's frame: {psnr:.1} dB ({})", run.dir.display());
    assert!(server.log().contains("passed the source's JPEG through as JPEG"), "{}", server.log());
    assert!(!server.log().contains("decoding a "), "decoded for a JPEG viewer:\n{}", server.log());
}

/// A frame wider than a Tight rect (2048 px) passes through whole as a JPEG (21) rect to a
/// viewer that prefers Tight but lists 21 too: no decode on the board.
#[test]
fn frames_wider_than_a_tight_rect_pass_through_as_jpeg_21() {
    let dir = TempDir::new("kvnc-mjpeg-wide-21");
    let (w, h) = (2560, 1080);
    let jpeg = dongle_jpeg(&fixture_rgb("wide-2560x1080.png", w, h), w as usize, h as usize, 90);
    let path = dir.path().join("wide.mjpeg");
    std::fs::write(&path, &jpeg).unwrap();
    let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{}", path.display())]);
    let run = run_novnc(server.port(), &NoVncOptions::new().encodings(&[7, 21]).quality(8).name("wide-jpeg21"));
    run.assert_ok();
    assert_eq!((run.rect_count(21), run.rect_count(7)), (1, 0), "the whole frame as JPEG (21): {:?}", run.rects);
    let psnr = run.canvas.psnr(&decoded_rgb(&jpeg)).unwrap_or(0.0);
    assert!(psnr >= DECODERS_AGREE_PSNR, "noVNC shows the wide frame: {psnr:.1} dB ({})", run.dir.display());
    assert!(server.log().contains("passed the source's JPEG through as JPEG"), "{}", server.log());
    assert!(!server.log().contains("decoding a 2560x1080 JPEG frame"), "{}", server.log());
}

/// A change too small for the JPEG damage check (under its threshold at 1/8 scale) is still
/// delivered once the stream goes quiet: a lossless viewer ends with the newest frame exactly.
#[test]
fn a_change_below_the_damage_threshold_reaches_lossless_viewers() {
    let dir = TempDir::new("kvnc-mjpeg-settle");
    let (w, h) = (320, 240);
    let before = fixture_rgb("sequences/post-memtest/000.png", w, h);
    let mut after = before.clone();
    // A 2x2 patch a little brighter: a few levels of its 8x8 block's average.
    for (x, y) in [(200, 100), (201, 100), (200, 101), (201, 101)] {
        for c in &mut after[(y * w as usize + x) * 3..][..3] {
            *c = c.saturating_add(40);
        }
    }
    let [first, last] = [&before, &after].map(|rgb| dongle_jpeg(rgb, w as usize, h as usize, 95));
    let mut damage = kvnc::jpeg::JpegDamage::new();
    damage.compare(&first).unwrap();
    assert_eq!(damage.compare(&last), Ok(kvnc::jpeg::JpegChange::NoVisibleChange), "the change is below the threshold");
    let (first_shown, last_shown) = (decoded_rgb(&first), decoded_rgb(&last));
    assert_ne!(first_shown.diff_count(&last_shown, 0), Some(0), "the frames differ once decoded");

    // One frame, then the other over and over (identical frames, as a still HDMI picture).
    let path = dir.path().join("settle.mjpeg");
    std::fs::write(
        &path,
        [first.clone()].into_iter().chain(std::iter::repeat_n(last, 60)).collect::<Vec<_>>().concat(),
    )
    .unwrap();
    let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{}", path.display()), "--fps", "5"]);
    assert!(server.wait_for_log("settled", Duration::from_secs(10)), "{}", server.log());
    let captured = viewers::capture(&server.vnc_target(), None);
    assert_eq!(captured.diff_count(&last_shown, 0), Some(0), "vncdotool shows the newest frame exactly");
}

/// A frame wider than a Tight rect allows (2048 px) cannot pass through whole: noVNC gets it
/// encoded from the decoded pixels instead, and shows it.
#[test]
fn frames_wider_than_a_tight_rect_are_encoded_instead() {
    let dir = TempDir::new("kvnc-mjpeg-wide");
    let (w, h) = (2560, 1080);
    let jpeg = dongle_jpeg(&fixture_rgb("wide-2560x1080.png", w, h), w as usize, h as usize, 90);
    let path = dir.path().join("wide.mjpeg");
    std::fs::write(&path, &jpeg).unwrap();
    let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{}", path.display())]);
    let run = run_novnc(server.port(), &NoVncOptions::new().encodings(&[7]).quality(8).name("wide-jpeg"));
    run.assert_ok();
    let psnr = run.canvas.psnr(&decoded_rgb(&jpeg)).unwrap_or(0.0);
    assert!(psnr >= 30.0, "noVNC shows the wide frame: {psnr:.1} dB ({})", run.dir.display());
    assert!(!server.log().contains("passed the source's JPEG through"), "{}", server.log());
    assert!(server.log().contains("decoding a 2560x1080 JPEG frame"), "{}", server.log());
}
