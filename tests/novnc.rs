//! noVNC (in headless Chromium) connects straight to kvnc's port over WebSocket: its canvas
//! shows exactly the source's pixels, and keys typed in the browser reach the target.

use std::process::Command;
use std::time::Duration;

use kvnc::demo::{BANNER, DemoState};
use kvnc_test_support::{demo_screen, novnc, viewers};
use novnc::{NoVncOptions, run_novnc};
use viewers::{KvncServer, load_png};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
/// How close the demo screen sent as JPEG at quality level 8 must look once the browser has
/// decoded it (48 dB measured with noVNC 1.7 in Chromium).
const JPEG_PSNR: f64 = 40.0;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn canvas_shows_the_demo_screen() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let run = run_novnc(server.port(), &NoVncOptions::new().name("demo"));
    run.assert_ok();
    assert!(server.log().contains("connected (WebSocket)"), "{}", server.log());
    let expected = demo_screen::expected(&DemoState::new());
    assert_eq!(demo_screen::differences(&run.canvas, &expected, 0), 0, "artifacts in {}", run.dir.display());
}

/// noVNC lists Tight before JPEG (21); forced to prefer 21, it decodes kvnc's JPEG rects (its
/// `core/decoders/jpeg.js` walks the markers to find each image's end) into the demo screen.
#[test]
fn canvas_shows_the_demo_screen_through_jpeg_21() {
    // No lossless refresh: what is on the canvas is what the JPEG rects carried.
    let server = KvncServer::start(KVNC, &["serve", "--lossless-refresh-ms", "0"]);
    let run = run_novnc(server.port(), &NoVncOptions::new().encodings(&[21, 0]).name("jpeg21"));
    run.assert_ok();
    assert_eq!(run.sent_encodings.first(), Some(&21), "noVNC preferred JPEG: {:?}", run.sent_encodings);
    assert!(run.rect_count(21) >= 1, "kvnc sent JPEG rects: {:?}", run.rects);
    let expected = demo_screen::expected(&DemoState::new());
    let psnr = demo_screen::psnr(&run.canvas, &expected).unwrap_or(0.0);
    // Quality level 8 (JPEG 92, 4:4:4) by default: text edges ring a little, nothing more.
    assert!(psnr >= JPEG_PSNR, "canvas after JPEG: {psnr:.1} dB (artifacts in {})", run.dir.display());
}

/// A JPEG (21) viewer that lists ZRLE too gets a desktop's photo-like parts (wallpaper,
/// anti-aliased text) as JPEG and its flat parts as ZRLE; once the screen is still the JPEG
/// areas are sent again with ZRLE, after which the canvas is exact.
#[test]
fn jpeg_21_is_refreshed_losslessly() {
    let path = fixture("desktop-1080p.png");
    let server =
        KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{path}"), "--lossless-refresh-ms", "300"]);
    let run =
        run_novnc(server.port(), &NoVncOptions::new().encodings(&[21, 16]).settle_ms(1500).name("jpeg21-refresh"));
    run.assert_ok();
    assert!(run.rect_count(21) >= 1 && run.rect_count(16) >= 1, "JPEG and ZRLE: {:?}", run.rects);
    // Exact only if the JPEG areas were refreshed.
    let expected = load_png(&path);
    assert_eq!(run.canvas.diff_count(&expected, 0), Some(0), "artifacts in {}", run.dir.display());
}

#[test]
fn keys_typed_in_the_browser_reach_the_target() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let run = run_novnc(server.port(), &NoVncOptions::new().type_text("noVNC says: Hi!").name("typing"));
    run.assert_ok();
    assert!(run.qemu_ext_key_acked, "kvnc acknowledges QEMU extended key events");
    assert!(run.keys.iter().any(|key| key.qemu), "noVNC typed with extended key events: {:?}", run.keys);
    let console = demo_screen::console(&run.canvas);
    assert_eq!(console[..3], [BANNER, "", "noVNC says: Hi!"], "artifacts in {}", run.dir.display());
}

#[test]
fn canvas_equals_a_replayed_fixture() {
    for name in ["desktop-1080p.png", "wide-2560x1080.png"] {
        let path = fixture(name);
        let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{path}")]);
        // Raw keeps the comparison exact; tests/encodings.rs covers the other encodings.
        let run = run_novnc(server.port(), &NoVncOptions::new().encodings(&[0]).name(name));
        run.assert_ok();
        let expected = load_png(&path);
        assert_eq!((run.canvas.width, run.canvas.height), (expected.width, expected.height));
        assert_eq!(run.canvas.diff_count(&expected, 0), Some(0), "{name}: artifacts in {}", run.dir.display());
    }
}

/// A window dragged across the desktop, one replayed frame per step: kvnc finds each move and
/// noVNC, which lists CopyRect first, copies inside its canvas; it ends up showing the last
/// frame exactly.
#[test]
fn a_dragged_window_reaches_novnc_as_copy_rect() {
    const STEPS: usize = 6;
    let dir = fixture("sequences/desktop-moving-window");
    let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{dir}"), "--fps", "0"]);
    let run = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Once noVNC is in and has taken the first frame, step the replay (SIGUSR1).
            assert!(server.wait_for_log("connected (WebSocket)", Duration::from_secs(60)), "{}", server.log());
            std::thread::sleep(Duration::from_millis(1000));
            for _ in 0..STEPS {
                let stepped = Command::new("kill").args(["-USR1", &server.pid().to_string()]).status();
                assert!(stepped.is_ok_and(|status| status.success()), "kill -USR1");
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        run_novnc(server.port(), &NoVncOptions::new().encodings(&[1, 16]).settle_ms(4000).name("copyrect"))
    });
    run.assert_ok();
    assert!(run.rect_count(1) >= 1, "moves went as CopyRect: {:?}", run.rects);
    let expected = load_png(format!("{dir}/{STEPS:03}.png"));
    assert_eq!(run.canvas.diff_count(&expected, 0), Some(0), "artifacts in {}", run.dir.display());
}
