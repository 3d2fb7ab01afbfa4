//! MJPEG as a cheap capture dongle sends it (no Huffman tables) replayed by kvnc: viewers that
//! take Tight JPEG get the frame's own JPEG passed through and decode it (noVNC needs the
//! tables kvnc inserts); viewers that need pixels get the decoded frame losslessly.

#[path = "support/novnc.rs"]
mod novnc;
#[path = "support/viewers.rs"]
mod viewers;

use std::time::Duration;

use kvnc::jpeg::{decode_to_frame, ensure_dht, has_dht, split_mjpeg};
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
    let frame = decode_to_frame(&ensure_dht(first).expect("tables inserted")).expect("decodes");
    let mut image = RgbImage::filled(usize::from(frame.width()), usize::from(frame.height()), [0, 0, 0]);
    for y in 0..frame.height() {
        for x in 0..frame.width() {
            let [b, g, r, _] = frame.pixel(x, y).to_le_bytes();
            image.set_pixel(usize::from(x), usize::from(y), [r, g, b]);
        }
    }
    (path.display().to_string(), image)
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
