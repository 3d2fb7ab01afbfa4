//! Several viewers at once: held input is released when a viewer leaves, a viewer that stops
//! reading does not hold up the others, and the shared-flag policy.

use std::io::Write;
use std::time::{Duration, Instant};

use kvnc::demo::BANNER;
use kvnc_test_support::{demo_screen, raw_client, screen, viewers};
use raw_client::{RawClient, closed_by_server};
use viewers::{KvncServer, capture, vncdo_run};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
const FULL_FRAME: usize = 1280 * 720 * 4;

#[test]
fn a_leaving_viewer_releases_its_keys_and_buttons() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let mut leaving = RawClient::connect(&server.addr());
    leaving.key(u32::from(b'q'), true);
    leaving.pointer(1, 100, 100);
    // Prove the events were handled before leaving: the update after them is answered.
    leaving.request_update(false);
    leaving.read_raw_update();
    drop(leaving);
    assert!(server.wait_for_log("disconnected", Duration::from_secs(5)), "{}", server.log());

    // Had 'q' stayed down, another viewer's 'q' would not be a new key press and type nothing.
    vncdo_run(&server.vnc_target(), None, &["type", "q"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let image = capture(&server.vnc_target(), None);
        let console = demo_screen::console(&image);
        let status = screen::read_status_line(&image.rgb, image.width, image.height);
        if (console[..3] == [BANNER, "", "qq"] && status.contains("buttons ---")) || Instant::now() > deadline {
            assert_eq!(console[..3], [BANNER, "", "qq"]);
            assert!(status.contains("buttons ---"), "left button still held: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_viewer_that_stops_reading_does_not_hold_up_others() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let mut stalled = RawClient::connect(&server.addr());
    // Ask for many full frames and never read them: the socket buffers fill up.
    for _ in 0..50 {
        stalled.request_update(false);
    }
    stalled.stream.flush().unwrap();
    let mut active = RawClient::connect(&server.addr());
    for _ in 0..10 {
        active.request_update(false);
        assert_eq!(active.read_raw_update(), FULL_FRAME);
    }
    drop(stalled);
}

#[test]
fn honour_policy_lets_an_exclusive_viewer_disconnect_the_others() {
    let server = KvncServer::start(KVNC, &["serve", "--shared-policy", "honour"]);
    let mut first = RawClient::connect(&server.addr());
    let mut exclusive = RawClient::connect_with(&server.addr(), false);
    assert!(closed_by_server(&mut first.stream), "the shared viewer is disconnected");
    assert!(server.wait_for_log("another viewer took exclusive access", Duration::from_secs(5)), "{}", server.log());
    exclusive.request_update(false);
    assert_eq!(exclusive.read_raw_update(), FULL_FRAME);
}

#[test]
fn a_view_only_viewer_asking_for_exclusive_access_disconnects_nobody() {
    let dir = viewers::TempDir::new("kvnc-view-only-exclusive");
    let (full, view) = (dir.path().join("full"), dir.path().join("view"));
    std::fs::write(&full, "full-pw\n").unwrap();
    std::fs::write(&view, "view-pw\n").unwrap();
    let server = KvncServer::start(
        KVNC,
        &[
            "serve",
            "--shared-policy",
            "honour",
            "--password-file",
            full.to_str().unwrap(),
            "--view-only-password-file",
            view.to_str().unwrap(),
        ],
    );
    let local = "127.0.0.1".parse().unwrap();
    let mut typist = RawClient::login_from(&server.addr(), local, b"full-pw").expect("full access");
    let mut watcher = RawClient::login_with(&server.addr(), local, b"view-pw", false).expect("view-only access");
    for viewer in [&mut typist, &mut watcher] {
        viewer.request_update(false);
        assert_eq!(viewer.read_raw_update(), FULL_FRAME, "both still served");
    }
    assert!(!server.log().contains("exclusive access: disconnecting"), "{}", server.log());
}

#[test]
fn always_policy_keeps_everyone_connected() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let mut first = RawClient::connect(&server.addr());
    let mut exclusive = RawClient::connect_with(&server.addr(), false);
    for viewer in [&mut first, &mut exclusive] {
        viewer.request_update(false);
        assert_eq!(viewer.read_raw_update(), FULL_FRAME);
    }
}

#[test]
fn sigterm_tells_viewers_and_exits_cleanly() {
    let mut server = KvncServer::start(KVNC, &["serve"]);
    let mut viewer = RawClient::connect(&server.addr());
    viewer.key(0x61, true);
    let killed = std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert!(killed.success());
    assert!(closed_by_server(&mut viewer.stream), "the viewer is told");
    let status = server.wait_exit(Duration::from_secs(10)).expect("kvnc exits");
    assert!(status.success(), "exit status {status}");
    let log = server.log();
    assert!(log.contains("SIGTERM") && log.contains("disconnected: the server is shutting down"), "{log}");
}
