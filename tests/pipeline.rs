//! The update pipeline with real viewers: a resize mid-stream is followed, continuous updates
//! are used by noVNC and TigerVNC, a still screen costs nothing, a typed character sends only
//! what changed. (A viewer that stops reading: tests/stalled_viewer.rs, alone in its binary.)

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use frames::{pattern, replay_dir};
use kvnc_test_support::{frames, novnc, raw_client, viewers};
use novnc::{NoVncOptions, run_novnc};
use raw_client::RawClient;
use viewers::{KvncServer, RgbImage, TigerViewer, vncdo_run};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");

#[test]
fn resize_mid_stream_is_followed_by_tigervnc_and_novnc() {
    let small = pattern(800, 600, 1);
    let large = pattern(1024, 768, 2);
    let dir = replay_dir(&[small.clone(), large.clone()]);
    let source = format!("replay:{}", dir.path().display());
    let server = KvncServer::start(KVNC, &["serve", "--source", &source, "--fps", "1"]);

    let viewer = TigerViewer::start(&server.vnc_target(), &["-PreferredEncoding=ZRLE", "-AutoSelect=0"]);
    // Without a window manager the viewer window keeps its first size, so compare the part of
    // the new framebuffer that the window shows; the two patterns differ everywhere.
    for expected in [&large, &small, &large] {
        let shown = viewer.wait_until_fb(
            |fb| {
                let (w, h) = (fb.width.min(expected.width), fb.height.min(expected.height));
                w > 0 && h > 0 && fb.crop(0, 0, w, h).diff_count(&expected.crop(0, 0, w, h), 0) == Some(0)
            },
            Duration::from_secs(20),
        );
        if let Err(last) = &shown {
            last.save_artifact("pipeline-resize-tigervnc.png");
        }
        assert!(shown.is_ok(), "TigerVNC did not follow to {}x{}:\n{}", expected.width, expected.height, viewer.log());
    }
    assert!(viewer.log().contains("Resizing framebuffer from 800x600 to 1024x768"), "{}", viewer.log());
    assert!(server.log().contains("screen resized to 1024x768"), "{}", server.log());

    // noVNC: its canvas has the size of one of the two frames and shows it exactly, or, caught
    // between a resize to the large size and that frame's pixels (which are encoded off the
    // viewer's task, so they may trail the resize by an encode), the small frame still in its
    // top-left corner.
    let run = run_novnc(server.port(), &NoVncOptions::new().encodings(&[16]).settle_ms(2500).name("resize"));
    run.assert_ok();
    let canvas = &run.canvas;
    let shows = |frame: &RgbImage| {
        canvas.width >= frame.width
            && canvas.height >= frame.height
            && canvas.crop(0, 0, frame.width, frame.height).diff_count(frame, 0) == Some(0)
    };
    let exact = (canvas.width, canvas.height) == (large.width, large.height) && shows(&large)
        || (canvas.width, canvas.height) == (small.width, small.height) && shows(&small);
    let between = (canvas.width, canvas.height) == (large.width, large.height) && shows(&small);
    assert!(exact || between, "artifacts in {}", run.dir.display());
    assert!(run.rect_count(-308) >= 2, "noVNC saw the resizes as ExtendedDesktopSize: {:?}", run.rects);
}

#[test]
fn continuous_updates_with_novnc_and_tigervnc() {
    // The demo target's clock changes every second: pushed updates must keep coming.
    let server = KvncServer::start(KVNC, &["serve"]);
    let run = run_novnc(server.port(), &NoVncOptions::new().settle_ms(2500).name("continuous"));
    run.assert_ok();
    assert!(run.continuous_updates, "noVNC switched to continuous updates");
    assert!(run.updates >= 3, "pushed updates arrived: {}", run.updates);

    // noVNC enables them more than once (again after each layout update): count from here.
    let before = server.log().matches("continuous updates on").count();
    let viewer = TigerViewer::start(&server.vnc_target(), &[]);
    assert!(viewer.wait_for_log("Enabling continuous updates", Duration::from_secs(10)), "{}", viewer.log());
    assert!(
        server.wait_for_log_count("continuous updates on", before + 1, Duration::from_secs(10)),
        "kvnc saw TigerVNC enable continuous updates: {}",
        server.log()
    );
}

/// Reads whatever arrives within `window`; returns the byte count.
fn bytes_within(client: &mut RawClient, window: Duration) -> usize {
    client.stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let deadline = Instant::now() + window;
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    while Instant::now() < deadline {
        match client.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    client.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    total
}

#[test]
fn a_viewer_that_asks_for_nothing_after_jpeg_leaves_kvnc_idle() {
    // The photo goes out as JPEG and is owed a lossless refresh, but the viewer asks for
    // nothing more: nothing may be sent, so nothing may run. A refresh that came due while it
    // could not be sent once woke the viewer's loop over and over: a whole core, until the
    // viewer asked again.
    let path = format!("{}/fixtures/photo-1080p.png", env!("CARGO_MANIFEST_DIR"));
    let args = ["serve", "--source", &format!("replay:{path}"), "--lossless-refresh-ms", "100"];
    let server = KvncServer::start(KVNC, &args);
    let mut viewer = RawClient::connect(&server.addr());
    viewer.set_encodings(&[rfb::encoding::TIGHT, rfb::encoding::QUALITY_LEVEL_0 + 8]);
    viewer.request_update(false);
    assert!(bytes_within(&mut viewer, Duration::from_secs(2)) > 0, "the JPEG update");
    let before = server.cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_time() - before;
    assert!(used < Duration::from_millis(250), "kvnc ran {used:?} in a second with nothing to send");
    // Asked again, the refresh goes out.
    viewer.request_update(true);
    assert!(bytes_within(&mut viewer, Duration::from_secs(2)) > 0, "the lossless refresh");
    assert!(server.log().contains("lossless refresh of"), "kvnc log:\n{}", server.log());
}

#[test]
fn a_still_screen_costs_nothing_and_a_typed_character_little() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let mut viewer = RawClient::connect(&server.addr());
    viewer.request_update(false);
    assert_eq!(viewer.read_raw_update(), 1280 * 720 * 4);
    // Wait for a clock tick to pass, then a still second: an incremental request gets nothing
    // but the clock.
    viewer.request_update(true);
    let clock_tick = viewer.read_raw_update();
    assert!(clock_tick < 1280 * 720 * 4 / 100, "only the clock changed: {clock_tick} bytes");

    vncdo_run(&server.vnc_target(), None, &["type", "x"]);
    viewer.request_update(true);
    let typed = viewer.read_raw_update();
    assert!(typed < 1280 * 720 * 4 / 50, "a typed character sends a small area: {typed} bytes");

    // A replayed still image: after the first frame nothing at all is sent.
    let dir = replay_dir(&[pattern(640, 480, 3)]);
    let still = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{}", dir.path().display())]);
    let mut viewer = RawClient::connect(&still.addr());
    viewer.request_update(false);
    assert_eq!(viewer.read_raw_update(), 640 * 480 * 4);
    viewer.request_update(true);
    assert_eq!(bytes_within(&mut viewer, Duration::from_secs(2)), 0, "a still screen sends no bytes");
}
