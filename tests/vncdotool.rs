//! vncdotool, a real VNC client, against `kvnc serve` with the demo target: what it captures
//! is what the target drew, and what it types reaches the target as HID reports and appears on
//! the target's console.

use std::time::{Duration, Instant};

use kvnc::demo::{BANNER, DemoState};
use kvnc_test_support::{demo_screen, screen, viewers};
use viewers::{KvncServer, RgbImage, TempDir, capture, vncdo_run, vncdo_try};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
/// Mixed case, digits and the US punctuation that needs Shift and that which does not.
const TEXT: &str = "Hello, World! kvnc_42 (Mixed) #$%&*+=?@[]{}|;:'\"<>,./~`^";

/// Captures until the console shows `lines` at the top (the target renders asynchronously).
fn capture_console(server: &KvncServer, password: Option<&str>, lines: &[&str]) -> RgbImage {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let image = capture(&server.vnc_target(), password);
        let console = demo_screen::console(&image);
        if console.iter().take(lines.len()).eq(lines.iter()) || Instant::now() > deadline {
            assert_eq!(&console[..lines.len()], lines, "console as captured (see target/test-artifacts)");
            return image;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn capture_is_what_the_demo_target_drew() {
    let server = KvncServer::start(KVNC, &["serve"]);
    let image = capture(&server.vnc_target(), None);
    let expected = demo_screen::expected(&DemoState::new());
    let differences = demo_screen::differences(&image, &expected, 0);
    if differences != 0 {
        image.save_artifact("vncdotool-capture.png");
        expected.save_artifact("vncdotool-expected.png");
    }
    assert_eq!(differences, 0, "pixels differing from the demo target's own rendering");
    assert_eq!(demo_screen::console(&image)[0], BANNER);
    assert!(server.log().contains("encodings [0, -223, -224, -258], sending 0"), "{}", server.log());
}

#[test]
fn typed_text_appears_on_the_target_console() {
    let server = KvncServer::start(KVNC, &["serve"]);
    vncdo_run(&server.vnc_target(), None, &["type", TEXT, "key", "enter", "key", "shift-a", "type", "Z"]);
    let image = capture_console(&server, None, &[BANNER, "", TEXT, "AZ", ""]);
    // Every key went up again: the status line shows no stuck buttons and nothing is held.
    let status = screen::read_status_line(&image.rgb, image.width, image.height);
    assert!(status.contains("buttons ---"), "{status}");
}

#[test]
fn password_protects_the_target() {
    let dir = TempDir::new("kvnc-password");
    let full = dir.path().join("password");
    let view_only = dir.path().join("view-only");
    std::fs::write(&full, "s3cret\n").unwrap();
    std::fs::write(&view_only, "justlook\n").unwrap();
    let server = KvncServer::start(
        KVNC,
        &["serve", "--password-file", full.to_str().unwrap(), "--view-only-password-file", view_only.to_str().unwrap()],
    );
    let target = server.vnc_target();

    let wrong = vncdo_try(&target, Some("wrong"), &["type", "intruder"], Duration::from_secs(20));
    assert!(!wrong.status.success(), "a wrong password must not get in");
    assert!(server.wait_for_log("authentication failed", Duration::from_secs(5)), "{}", server.log());

    vncdo_run(&target, Some("justlook"), &["type", "ignored"]);
    assert!(server.wait_for_log("ViewOnly access", Duration::from_secs(5)), "{}", server.log());

    vncdo_run(&target, Some("s3cret"), &["type", "Typed With Password!"]);
    capture_console(&server, Some("s3cret"), &[BANNER, "", "Typed With Password!", ""]);
}

#[test]
fn clipboard_text_is_typed_on_the_target_when_paste_is_on() {
    let dir = TempDir::new("kvnc-paste");
    let clip = dir.path().join("clipboard.txt");
    std::fs::write(&clip, "Pasted: a+b=C!\nline 2\n").unwrap();
    let clip = clip.to_str().unwrap();

    // immediate: typed as soon as the viewer sends its clipboard.
    let server = KvncServer::start(KVNC, &["serve", "--paste", "immediate", "--paste-key-ms", "2"]);
    vncdo_run(&server.vnc_target(), None, &["pastefile", clip]);
    capture_console(&server, None, &[BANNER, "", "Pasted: a+b=C!", "line 2", ""]);

    // hotkey: kept until Ctrl+Alt+Shift+V, whose V never reaches the target.
    let server = KvncServer::start(KVNC, &["serve", "--paste", "hotkey", "--paste-key-ms", "2"]);
    vncdo_run(&server.vnc_target(), None, &["pastefile", clip, "type", "x"]);
    capture_console(&server, None, &[BANNER, "", "x", ""]);
    vncdo_run(&server.vnc_target(), None, &["key", "ctrl-alt-shift-v"]);
    capture_console(&server, None, &[BANNER, "", "xPasted: a+b=C!", "line 2", ""]);
}
