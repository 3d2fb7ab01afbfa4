//! noVNC 1.7 in headless Chromium as a real VNC client for kvnc's integration tests.
//!
//! An integration test runs it like this:
//! ```ignore
//! use kvnc_test_support::novnc::{NoVncOptions, run_novnc};
//! let run = run_novnc(port, &NoVncOptions::new().encodings(&[16]).type_text("ab"));
//! run.assert_ok();
//! ```
//! kvnc accepts WebSocket connections on its RFB port, so noVNC connects to `ws://127.0.0.1:PORT/`.
//!
//! It runs `node tests/web/drive.mjs` (playwright-core driving Debian's `/usr/bin/chromium`), which
//! serves `tests/web/index.html` from a throwaway HTTP server, waits for the connection and the first
//! painted FramebufferUpdate, optionally types, waits until the canvas stops changing and writes the
//! exact canvas pixels (`canvas.png`) plus `result.json` / `result.txt` into
//! `<target>/test-artifacts/novnc-<name>/`. A missing node, `tests/web/node_modules` or chromium
//! makes the test panic (fail, never skip) with a hint to run `scripts/test`, which installs them.
//!
//! Findings this module relies on (noVNC 1.7.0, Chromium 156, playwright-core 1.65):
//! * forcing encodings: noVNC has no option for it; index.html replaces the RFB instance's
//!   `_sendEncodings` and always appends DesktopSize, LastRect, QEMU ext key, ExtendedDesktopSize,
//!   Fence, ContinuousUpdates, QEMU LED and extended mouse buttons (plus quality / compression
//!   pseudo-encodings when those options are given). Without forcing, noVNC's own list goes out
//!   (with H.264 (50) in it, because headless Chromium can decode H.264);
//! * typed text becomes physical US-layout key presses (Shift for upper case and symbols), so noVNC
//!   sends QEMU extended key events (keysym + XT scancode) once the server has acknowledged -258,
//!   plain KeyEvents otherwise; keys typed before the acknowledgement arrives go out plain;
//! * noVNC reports a server-side close while connected as a *clean* disconnect: so
//!   [`NoVncRun::assert_ok`] checks `disconnected` (before the driver's own), not only `clean`;
//! * one run takes about 5–7 s wall time (about 2 s of it is node loading playwright-core), so runs in
//!   one test binary are serialised to keep them from starving each other on a 2-core machine.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::viewers::{RgbImage, load_png};
use crate::which;

/// How long one driver run may take before it is killed.
const NOVNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Budget `drive.mjs` gets for connecting, typing and settling (`--timeout-ms`).
const DRIVER_BUDGET_MS: u64 = 9000;

/// What [`run_novnc`] asks noVNC to do. `NoVncOptions::new()` (= `default()`) lets noVNC use its own
/// encodings and settles for 500 ms; the methods set one field each.
#[derive(Clone, Debug)]
pub struct NoVncOptions {
    /// Force the SetEncodings list (the pseudo-encodings noVNC needs are appended).
    encodings: Option<Vec<i32>>,
    /// noVNC `qualityLevel` 0..=9 (JPEG quality pseudo-encoding -32+N; noVNC's default is 6).
    quality: Option<u8>,
    /// noVNC `compressionLevel` 0..=9 (pseudo-encoding -256+N; noVNC's default is 2).
    compression: Option<u8>,
    /// VNC password; without one a server asking for it ends the run (not connected).
    password: Option<String>,
    /// User name, for servers that ask for one (VeNCrypt Plain, RSA-AES with accounts).
    username: Option<String>,
    /// Connect over `wss://` (kvnc's certificate is not checked: it is self-signed).
    tls: bool,
    /// Text typed as US-layout key presses once the first update is painted ("\n" = Enter, "\t" = Tab).
    type_text: Option<String>,
    /// Wait until the canvas has not changed for this long (bounded by the driver budget).
    settle_ms: u64,
    /// Artifact directory name `novnc-<name>`; default: the test's name plus a counter.
    name: Option<String>,
}

impl Default for NoVncOptions {
    fn default() -> Self {
        NoVncOptions {
            encodings: None,
            quality: None,
            compression: None,
            password: None,
            username: None,
            tls: false,
            type_text: None,
            settle_ms: 500,
            name: None,
        }
    }
}

impl NoVncOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn encodings(mut self, encodings: &[i32]) -> Self {
        self.encodings = Some(encodings.to_vec());
        self
    }
    pub fn quality(mut self, level: u8) -> Self {
        self.quality = Some(level);
        self
    }
    pub fn compression(mut self, level: u8) -> Self {
        self.compression = Some(level);
        self
    }
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_string());
        self
    }
    pub fn username(mut self, username: &str) -> Self {
        self.username = Some(username.to_string());
        self
    }
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }
    pub fn type_text(mut self, text: &str) -> Self {
        self.type_text = Some(text.to_string());
        self
    }
    pub fn settle_ms(mut self, ms: u64) -> Self {
        self.settle_ms = ms;
        self
    }
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// One key message noVNC sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentKey {
    /// True for a QEMU extended key event (message 255/0), false for a plain KeyEvent (message 4).
    pub qemu: bool,
    down: bool,
    keysym: u32,
    /// XT scancode (QEMU events only).
    scancode: Option<u32>,
}

/// What one noVNC run saw.
#[derive(Debug)]
pub struct NoVncRun {
    /// Exact canvas pixels at the end of the run (0x0 when nothing was painted).
    pub canvas: RgbImage,
    /// The driver's result.json, for failure messages.
    result_json: String,
    /// The `connect` event fired.
    pub connected: bool,
    /// Clean flag of the disconnect event (the early one, else the one after the driver's own disconnect).
    clean: bool,
    /// Console errors (noVNC's Log.Error, e.g. "Unexpected fence response"), page errors, security
    /// failures, driver failures.
    errors: Vec<String>,
    /// At least one FramebufferUpdate completed.
    painted: bool,
    /// The connection ended before the driver disconnected on purpose (server close or failure).
    disconnected: bool,
    /// The server acknowledged the QEMU extended key event pseudo-encoding (-258).
    pub qemu_ext_key_acked: bool,
    /// noVNC switched to continuous updates (the server sent EndOfContinuousUpdates).
    pub continuous_updates: bool,
    /// The last SetEncodings list noVNC sent.
    pub sent_encodings: Vec<i32>,
    /// Completed rectangles per encoding number (pseudo-encodings included), as the client decoded them.
    pub rects: Vec<(i32, u32)>,
    /// Key messages noVNC sent, in order.
    pub keys: Vec<SentKey>,
    /// Completed FramebufferUpdates.
    pub updates: u32,
    /// Where canvas.png, result.json, result.txt and drive.log are.
    pub dir: PathBuf,
}

impl NoVncRun {
    /// Number of completed rectangles with encoding `encoding`.
    pub fn rect_count(&self, encoding: i32) -> u32 {
        self.rects.iter().filter(|(e, _)| *e == encoding).map(|(_, n)| *n).sum()
    }

    /// Panics (with the driver's result and artifact paths) unless noVNC connected, painted,
    /// stayed connected until the driver's own clean disconnect, and logged no errors.
    pub fn assert_ok(&self) {
        assert!(
            self.connected && self.painted && !self.disconnected && self.clean && self.errors.is_empty(),
            "noVNC run failed: connected={} painted={} disconnected={} clean={} errors={:#?}\nartifacts: {}\n{}",
            self.connected,
            self.painted,
            self.disconnected,
            self.clean,
            self.errors,
            self.dir.display(),
            self.result_json
        );
    }
}

/// `tests/web` of the repository.
fn web_dir() -> PathBuf {
    crate::repo_root().join("tests").join("web")
}

/// Checks node, `tests/web/node_modules` and chromium; panics telling to run scripts/test.
fn require_driver() -> PathBuf {
    let node = match std::env::var_os("KVNC_NODE") {
        Some(p) => PathBuf::from(p),
        None => which("node").unwrap_or_else(|| {
            panic!("`node` not installed (Debian package nodejs): run scripts/test to install the test prerequisites")
        }),
    };
    let web = web_dir();
    for needed in ["node_modules/@novnc/novnc/core/rfb.js", "node_modules/playwright-core/package.json"] {
        if !web.join(needed).is_file() {
            panic!("{} missing: run scripts/test (it runs `npm ci --prefix tests/web`)", web.join(needed).display());
        }
    }
    let chromium = std::env::var_os("KVNC_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    if !chromium.is_file() {
        panic!("{} not installed (Debian package chromium): run scripts/test", chromium.display());
    }
    node
}

/// `<target dir>/test-artifacts/novnc-<name>`, emptied.
fn artifact_dir(opts: &NoVncOptions) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => {
            let test = thread::current().name().unwrap_or("run").to_string();
            format!("{}-{}", test, COUNTER.fetch_add(1, Ordering::Relaxed))
        }
    };
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let dir = crate::artifacts_dir_path().join(format!("novnc-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Undoes drive.mjs's escaping of `\`, newline and carriage return.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn parse_fields(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(|line| line.split_once('=')).map(|(k, v)| (k.to_string(), unescape(v))).collect()
}

fn parse_keys(v: &str) -> Vec<SentKey> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let parts: Vec<&str> = s.split(':').collect();
            assert!(parts.len() == 4, "bad key entry {s:?} in result.txt");
            SentKey {
                qemu: parts[0] == "qemu",
                down: parts[1] == "d",
                keysym: parts[2].parse().unwrap_or_else(|_| panic!("bad keysym in {s:?}")),
                scancode: parts[3].parse().ok(),
            }
        })
        .collect()
}

/// Serialises runs inside one test binary: two Chromiums at once on 2 cores make timings erratic.
static RUN_LOCK: Mutex<()> = Mutex::new(());

/// Connects noVNC to `ws://127.0.0.1:{port}/` (`wss://` with [`NoVncOptions::tls`]), does what `opts` says and reports what happened.
/// Panics if the driver itself cannot run (missing tools, Chromium failing, timeout); a failed
/// connection is reported in the result (`connected == false`, `errors`), not a panic.
pub fn run_novnc(port: u16, opts: &NoVncOptions) -> NoVncRun {
    let node = require_driver();
    let dir = artifact_dir(opts);
    let _guard = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());

    let mut cmd = Command::new(&node);
    cmd.current_dir(web_dir())
        .arg(web_dir().join("drive.mjs"))
        .arg("--url")
        .arg(format!("{}://127.0.0.1:{port}/", if opts.tls { "wss" } else { "ws" }))
        .arg("--out")
        .arg(&dir)
        .arg("--until-stable-ms")
        .arg(opts.settle_ms.to_string())
        .arg("--timeout-ms")
        .arg(DRIVER_BUDGET_MS.to_string());
    if let Some(encs) = &opts.encodings {
        let list: Vec<String> = encs.iter().map(|e| e.to_string()).collect();
        cmd.arg(format!("--encodings={}", list.join(",")));
    }
    if let Some(q) = opts.quality {
        cmd.arg("--quality").arg(q.to_string());
    }
    if let Some(c) = opts.compression {
        cmd.arg("--compression").arg(c.to_string());
    }
    if let Some(pw) = &opts.password {
        cmd.arg(format!("--password={pw}"));
    }
    if let Some(user) = &opts.username {
        cmd.arg(format!("--username={user}"));
    }
    if let Some(text) = &opts.type_text {
        cmd.arg(format!("--type={text}"));
    }
    let log_path = dir.join("drive.log");
    let log = fs::File::create(&log_path).unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
    let log2 = log.try_clone().expect("dup drive.log handle");
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2);

    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", node.display()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for drive.mjs") {
            break status;
        }
        if started.elapsed() > NOVNC_TIMEOUT {
            // SIGTERM first: playwright then closes Chromium (its own process group) on the way out.
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(5) {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "noVNC driver timed out after {NOVNC_TIMEOUT:?}; log {}:\n{}",
                log_path.display(),
                fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };

    let log_text = || fs::read_to_string(&log_path).unwrap_or_default();
    let result_txt = fs::read_to_string(dir.join("result.txt")).unwrap_or_else(|e| {
        panic!("noVNC driver wrote no result.txt ({e}), exit {status}; log {}:\n{}", log_path.display(), log_text())
    });
    let result_json = fs::read_to_string(dir.join("result.json")).unwrap_or_default();
    let fields = parse_fields(&result_txt);
    let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let all = |k: &str| fields.iter().filter(|(key, _)| key == k).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let errors = all("error");
    // Exit 2 (usage) and 3 (driver failure, e.g. Chromium did not start) are harness bugs, not results.
    if matches!(status.code(), Some(2) | Some(3) | None) {
        panic!("noVNC driver failed (exit {status}): {errors:#?}\nlog {}:\n{}", log_path.display(), log_text());
    }

    let png = dir.join("canvas.png");
    let canvas = if png.is_file() { load_png(&png) } else { RgbImage { width: 0, height: 0, rgb: Vec::new() } };
    let rects = get("rects")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (e, n) = s.split_once(':').unwrap_or_else(|| panic!("bad rects entry {s:?}"));
            (e.parse().expect("rect encoding"), n.parse().expect("rect count"))
        })
        .collect();
    let run = NoVncRun {
        canvas,
        result_json,
        connected: get("connected") == "true",
        clean: get("clean") == "true",
        errors,
        painted: get("painted") == "true",
        disconnected: get("disconnected") == "true",
        qemu_ext_key_acked: get("qemuExtKeyAcked") == "true",
        continuous_updates: get("continuousUpdates") == "true",
        sent_encodings: get("sentEncodings").split(',').filter_map(|s| s.parse().ok()).collect(),
        rects,
        keys: parse_keys(get("keys")),
        updates: get("fbu").parse().unwrap_or(0),
        dir,
    };
    assert_eq!(
        (run.canvas.width, run.canvas.height),
        (get("width").parse().unwrap_or(0), get("height").parse().unwrap_or(0)),
        "canvas.png size differs from result.txt in {}",
        run.dir.display()
    );
    run
}
