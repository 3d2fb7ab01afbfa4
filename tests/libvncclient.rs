//! libvncclient, the library under Remmina and KRDC, follows kvnc's resizes. Its released
//! versions (up to 0.9.15; Debian 12 ships 0.9.14) ignore an ExtendedDesktopSize layout whose
//! screen id is 0, so this test fails if kvnc ever sends that id again.
//!
//! It also decodes kvnc's Zlib and Hextile, which Remmina's "Best" quality and KRDC's "High"
//! ask for, into exactly the pixels kvnc captured.
//!
//! The viewer is tests/support/libvncclient_viewer.c, compiled here with `cc` against Debian's
//! libvncclient (package libvncserver-dev, which scripts/test installs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use frames::{pattern, replay_dir};
use kvnc_test_support::{artifact_path, frames, viewers};
use viewers::{KvncServer, RgbImage, load_png, parse_ppm, require_tool, run_with_timeout};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");

/// How many framebuffer sizes the viewer waits for: the one at connect and three resizes, so
/// that it must go from one size to the other and back.
const SIZES: usize = 4;
/// How long the viewer may take to see them; at 5 frames per second it needs about a second.
const VIEWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The libvncclient viewer, compiled once for all the tests of this file: each compiling it to
/// the same path raced, a test starting the binary while another's linker was rewriting it.
fn viewer() -> &'static Path {
    static VIEWER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VIEWER.get_or_init(build_viewer)
}

/// Compiles the libvncclient viewer into target/test-artifacts and returns its path. Panics
/// (the test fails, never skips) when cc or libvncclient's headers or library are missing.
fn build_viewer() -> PathBuf {
    let cc = require_tool("cc", "gcc");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/libvncclient_viewer.c");
    let binary = artifact_path("libvncclient_viewer");
    let mut cmd = Command::new(cc);
    cmd.args(["-O1", "-Wall", "-Wextra", "-Werror", "-o"]).arg(&binary).arg(&source).arg("-lvncclient");
    let (out, timed_out) = run_with_timeout(&mut cmd, Duration::from_secs(120));
    if timed_out || !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("rfbclient.h") || stderr.contains("-lvncclient") {
            "libvncclient is not installed (Debian package libvncserver-dev): run scripts/test to install the test prerequisites\n"
        } else {
            ""
        };
        panic!("{hint}{cmd:?} failed ({}, timed out: {timed_out}):\n{stderr}", out.status);
    }
    binary
}

#[test]
fn libvncclient_follows_every_resize() {
    let viewer = viewer();
    // A replay of two frames of different sizes changes the screen size on every frame, like a
    // target switching resolution, with no capture hardware.
    let dir = replay_dir(&[pattern(640, 480, 1), pattern(800, 600, 2)]);
    let source = format!("replay:{}", dir.path().display());
    let state = dir.path().join("state");
    let state_arg = state.to_string_lossy().into_owned();
    let server = KvncServer::start(KVNC, &["serve", "--source", &source, "--fps", "5", "--state-dir", &state_arg]);

    let mut cmd = Command::new(viewer);
    // kvnc lists VeNCrypt first: libvncclient logs in over TLS, trusting kvnc's self-signed
    // certificate as the user would in Remmina's X509 dialog.
    cmd.env("KVNC_CA_FILE", state.join("tls.pem"));
    cmd.arg(server.addr()).arg(SIZES.to_string()).arg(VIEWER_TIMEOUT.as_secs().to_string());
    // The viewer stops itself at VIEWER_TIMEOUT; this limit only catches a hang.
    let (out, killed) = run_with_timeout(&mut cmd, VIEWER_TIMEOUT + Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let sizes: Vec<&str> = stdout.lines().filter_map(|line| line.strip_prefix("size ")).collect();
    let report = format!(
        "viewer {} (killed: {killed}) adopted sizes {sizes:?}\n--- viewer stderr ---\n{}\n--- kvnc log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(out.status.success() && sizes.len() == SIZES, "{report}");
    // libvncclient reallocates only when the size changes, so every line is a switch; both
    // sizes alternating over four lines means it went from one to the other and back.
    assert!(sizes.iter().all(|size| ["640x480", "800x600"].contains(size)), "{report}");
    assert!(sizes.windows(2).all(|pair| pair[0] != pair[1]), "{report}");
}

/// Updates the viewer waits for in the pixel check: enough for the replay to loop through its
/// frames more than once, so Zlib's stream is continued across many updates.
const UPDATES: usize = 8;

/// Connects with libvncclient asking only for `encodings`, lets the replay of `frames` run for
/// [`UPDATES`] updates and checks that what the viewer then shows is exactly one of them.
/// Returns how many CopyRect rects the viewer received.
fn check_pixels(encodings: &str, frames: &[RgbImage]) -> usize {
    let viewer = viewer();
    let dir = replay_dir(frames);
    let source = format!("replay:{}", dir.path().display());
    let state = dir.path().join("state");
    let state_arg = state.to_string_lossy().into_owned();
    let server = KvncServer::start(KVNC, &["serve", "--source", &source, "--fps", "10", "--state-dir", &state_arg]);
    let ppm = dir.path().join(format!("{encodings}.ppm"));
    let mut cmd = Command::new(viewer);
    cmd.env("KVNC_CA_FILE", state.join("tls.pem"));
    cmd.arg(server.addr()).arg(UPDATES.to_string()).arg(VIEWER_TIMEOUT.as_secs().to_string());
    cmd.arg(encodings).arg(&ppm);
    let (out, killed) = run_with_timeout(&mut cmd, VIEWER_TIMEOUT + Duration::from_secs(10));
    let report = format!(
        "viewer {} (killed: {killed})\n--- viewer stdout ---\n{}--- viewer stderr ---\n{}\n--- kvnc log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(out.status.success(), "{report}");
    let shown = parse_ppm(&std::fs::read(&ppm).unwrap()).unwrap_or_else(|e| panic!("{e}\n{report}"));
    // Lossless encodings at 32 bpp: byte-identical to one of the captured frames.
    if !frames.contains(&shown) {
        let diffs: Vec<_> = frames.iter().map(|f| f.diff_count(&shown, 0)).collect();
        let path = shown.save_artifact(&format!("libvncclient-{encodings}.png"));
        panic!("{encodings}: shown image ({}) matches no frame; differing pixels {diffs:?}\n{report}", path.display());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find_map(|line| line.split_once(" copies ")).map(|(_, copies)| copies.parse());
    last.and_then(Result::ok).unwrap_or_else(|| panic!("no update line\n{report}"))
}

/// Crops of the fixture screens: anti-aliased desktop text, flat UI and a few-colour BIOS screen.
fn fixture_frames() -> Vec<RgbImage> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let desktop = load_png(fixtures.join("desktop-1080p.png"));
    let post = load_png(fixtures.join("post-1080p.png"));
    vec![desktop.crop(0, 0, 800, 600), desktop.crop(561, 243, 800, 600), post.crop(0, 0, 800, 600)]
}

#[test]
fn libvncclient_shows_exact_pixels_with_zlib() {
    check_pixels("zlib", &fixture_frames());
}

/// A window dragged across a desktop: kvnc finds the moves in the frames and sends them as
/// CopyRect, libvncclient copies inside its framebuffer, and the result is exactly a frame.
#[test]
fn libvncclient_shows_exact_pixels_with_copyrect() {
    let sequence = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sequences/desktop-moving-window");
    let frames: Vec<RgbImage> = (0..15).map(|i| load_png(sequence.join(format!("{i:03}.png")))).collect();
    let copies = check_pixels("copyrect zlib", &frames);
    assert!(copies > 0, "the moves went as pixels");
}

#[test]
fn libvncclient_shows_exact_pixels_with_hextile() {
    check_pixels("hextile", &fixture_frames());
}
