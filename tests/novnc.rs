//! noVNC (in headless Chromium) connects straight to kvnc's port over WebSocket: its canvas
//! shows exactly the source's pixels, and keys typed in the browser reach the target.

#[path = "support/demo_screen.rs"]
mod demo_screen;
#[path = "support/novnc.rs"]
mod novnc;
#[path = "support/screen.rs"]
mod screen;
#[path = "support/viewers.rs"]
mod viewers;

use kvnc::demo::{BANNER, DemoState};
use novnc::{NoVncOptions, run_novnc};
use viewers::{KvncServer, load_png};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");

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
