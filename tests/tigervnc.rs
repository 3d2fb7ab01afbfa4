//! TigerVNC's vncviewer (a real X11 viewer, under Xvfb) against `kvnc serve` with the demo
//! target: its window shows the target's screen, and keys typed into it reach the target.

use std::time::Duration;

use kvnc::demo::{BANNER, DemoState};
use kvnc_test_support::{demo_screen, viewers};
use viewers::{KvncServer, TigerViewer};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
const WAIT: Duration = Duration::from_secs(20);

fn assert_clean_log(viewer: &TigerViewer) {
    let log = viewer.log();
    for bad in ["Protocol error", "rror: ", "nknown", "nexpected", "End of stream", "xception"] {
        assert!(!log.contains(bad), "vncviewer log mentions {bad:?}:\n{log}");
    }
}

#[test]
fn raw_window_shows_the_demo_screen() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let viewer = TigerViewer::start(&server.vnc_target(), &["-PreferredEncoding=Raw", "-AutoSelect=0"]);
    let expected = demo_screen::expected(&DemoState::new());
    let shown = viewer.wait_until_fb(|fb| demo_screen::differences(fb, &expected, 0) == 0, WAIT);
    if let Err(last) = &shown {
        last.save_artifact("tigervnc-raw-window.png");
        expected.save_artifact("tigervnc-raw-expected.png");
    }
    assert!(shown.is_ok(), "the viewer window never matched the demo screen; kvnc log:\n{}", server.log());
    assert!(viewer.log().contains("Using pixel format"), "{}", viewer.log());
    assert!(server.log().contains("sending 0"), "kvnc chose Raw: {}", server.log());
    assert_clean_log(&viewer);
}

#[test]
fn keys_typed_into_the_viewer_reach_the_target() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let viewer = TigerViewer::start(&server.vnc_target(), &["-PreferredEncoding=Raw", "-AutoSelect=0"]);
    viewer.type_text("Typed in TigerVNC: 1+1=2!");
    let typed = viewer.wait_until_fb(
        |fb| demo_screen::console(fb).get(2).is_some_and(|line| line == "Typed in TigerVNC: 1+1=2!"),
        WAIT,
    );
    if let Err(last) = &typed {
        last.save_artifact("tigervnc-typed.png");
    }
    let fb = typed.unwrap_or_else(|last| panic!("console shows {:?}", demo_screen::console(&last)));
    assert_eq!(demo_screen::console(&fb)[0], BANNER);
    assert_clean_log(&viewer);
}
