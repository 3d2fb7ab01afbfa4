//! kvnc's own web console (src/console/): the page and noVNC come from kvnc's port with their
//! security headers, and in headless Chromium (tests/web/console.mjs, playwright-core driving
//! Debian's chromium) the page connects over ws:// and wss://, shows the demo target exactly,
//! types into it by keyboard and through the API, shows the LEDs, sets layout and mouse mode,
//! sends Ctrl+Alt+Del and other combinations as HID reports (FIFOs standing in for /dev/hidgN),
//! asks for a password and says in words when it is wrong, and shows the API's words when there
//! are no virtual media. In the virtual hardware lab the media panel attaches a disk image to the
//! gadget, and the lab's USB host reads it.
//!
//! Screenshots go to `<target>/test-artifacts/console-*.png` (kept as CI artifacts); each test's
//! driver log, canvas captures and the page's console are in `console-<test>/`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use kvnc::demo::DemoState;
use kvnc::hid::gadget::MediaLun;
use kvnc_test_support::{artifacts_dir, demo_screen, lab, viewers};
use lab::{Lab, LabOptions, Root};
use serde_json::{Value, json};
use viewers::{KvncServer, RgbImage, TempDir, load_png};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
const WAIT: Duration = Duration::from_secs(20);
/// How long one driver command may take (Chromium's start, a page load over the lab's slow net).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Plain HTTP
// ---------------------------------------------------------------------------------------------

/// One answer read off a connection: status, headers (lower-case names), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Reads one HTTP answer (Content-Length bodies, or up to the close) from `stream`.
fn read_answer(stream: &mut TcpStream, head_request: bool) -> Answer {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            other => panic!("the answer's head ended early ({other:?}): {}", String::from_utf8_lossy(&raw)),
        }
    }
    let head = String::from_utf8(raw).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|line| line.split_whitespace().nth(1)).and_then(|s| s.parse().ok());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut answer = Answer { status: status.expect("a status"), headers, body: Vec::new() };
    match answer.header("content-length").map(|length| length.parse::<usize>().expect("a length")) {
        _ if head_request || answer.status == 304 => {}
        Some(length) => {
            answer.body = vec![0; length];
            stream.read_exact(&mut answer.body).expect("the body");
        }
        None => {
            stream.read_to_end(&mut answer.body).expect("the body");
        }
    }
    answer
}

/// `GET path` (or another request line) with extra header lines, on a new connection.
fn request(port: u16, line: &str, extra: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to kvnc");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(stream, "{line} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n").expect("sending");
    read_answer(&mut stream, line.starts_with("HEAD "))
}

/// Whether `GET /` on `port` is answered as HTTP (not taken for a VNC viewer, which is greeted
/// with "RFB 003.008").
fn answers_http(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(WAIT));
    let mut start = [0u8; 12];
    write!(stream, "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").is_ok()
        && stream.read_exact(&mut start).is_ok()
        && start.starts_with(b"HTTP/1.1 200")
}

/// `gzip -dc` (kvnc has no gzip decoder of its own to test with).
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut child =
        Command::new("gzip").arg("-dc").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("running gzip -dc");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = bytes.to_vec();
    let writer = thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    child.stdout.take().expect("stdout").read_to_end(&mut out).expect("gzip's output");
    writer.join().expect("writer").expect("feeding gzip");
    assert!(child.wait().expect("gzip").success(), "gzip -dc failed");
    out
}

// ---------------------------------------------------------------------------------------------
// The page in Chromium
// ---------------------------------------------------------------------------------------------

/// Two Chromiums at once on 2 cores make every timing erratic: one page at a time.
static CHROMIUM: Mutex<()> = Mutex::new(());

/// kvnc's page in headless Chromium, driven by tests/web/console.mjs.
struct Page {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Receiver<Value>,
    next_id: u64,
    /// `<artifacts>/console-<name>/`: driver log, canvas captures.
    dir: PathBuf,
    name: String,
    log: Arc<Mutex<String>>,
    _turn: MutexGuard<'static, ()>,
}

impl Page {
    /// Opens `url` in a new Chromium.
    fn open(name: &str, url: &str) -> Page {
        Page::open_holding(CHROMIUM.lock().unwrap_or_else(|poisoned| poisoned.into_inner()), name, url)
    }

    /// Opens `url` in a new Chromium, for a test that took its turn already.
    fn open_holding(turn: MutexGuard<'static, ()>, name: &str, url: &str) -> Page {
        let node = kvnc_test_support::which("node")
            .unwrap_or_else(|| panic!("`node` not installed (Debian package nodejs): run scripts/test"));
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
        assert!(
            web.join("node_modules/playwright-core/package.json").is_file(),
            "tests/web/node_modules missing: run scripts/test (it runs `npm ci --prefix tests/web`)"
        );
        let chromium =
            std::env::var_os("KVNC_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        assert!(chromium.is_file(), "{} not installed (Debian package chromium): run scripts/test", chromium.display());
        let dir = artifacts_dir().join(format!("console-{name}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("artifact dir");
        let mut child = Command::new(node)
            .current_dir(&web)
            .arg(web.join("console.mjs"))
            .arg("--out")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting node tests/web/console.mjs");
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, replies) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stdout_log = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match line.strip_prefix("@@").map(serde_json::from_str::<Value>) {
                    Some(Ok(reply)) => {
                        let _ = sender.send(reply);
                    }
                    _ => stdout_log.lock().unwrap().push_str(&format!("{line}\n")),
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let stderr_log = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                stderr_log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let stdin = child.stdin.take();
        let mut page = Page { child, stdin, replies, next_id: 1, dir, name: name.to_string(), log, _turn: turn };
        page.goto(url);
        page
    }

    fn goto(&mut self, url: &str) {
        let opened = self.ok("open", json!({ "url": url }));
        assert_eq!(opened["status"], 200, "{url}: {opened}");
    }

    /// One driver command; Err with the driver's words when it failed.
    fn call(&mut self, op: &str, args: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut command = args;
        command["id"] = json!(id);
        command["op"] = json!(op);
        let stdin = self.stdin.as_mut().expect("the driver's stdin");
        writeln!(stdin, "{command}").map_err(|e| format!("the driver is gone: {e}"))?;
        stdin.flush().map_err(|e| format!("the driver is gone: {e}"))?;
        let reply = self
            .replies
            .recv_timeout(COMMAND_TIMEOUT)
            .map_err(|e| format!("no answer to {command} within {COMMAND_TIMEOUT:?}: {e}"))?;
        assert_eq!(reply["id"], json!(id), "answers come in order: {reply}");
        if reply["ok"] == json!(true) {
            Ok(reply["value"].clone())
        } else {
            Err(reply["error"].as_str().unwrap_or("?").to_string())
        }
    }

    /// A command that must succeed; panics with the page's state and the driver's log.
    #[track_caller]
    fn ok(&mut self, op: &str, args: Value) -> Value {
        match self.call(op, args.clone()) {
            Ok(value) => value,
            Err(error) => {
                let shot = self.screenshot("failure");
                let status = self.call("text", json!({ "selector": "#status" })).unwrap_or_default();
                let message = self.call("text", json!({ "selector": "#message" })).unwrap_or_default();
                let page_log = self.call("log", json!({})).unwrap_or_default();
                panic!(
                    "console page ({}): {op} {args} failed: {error}\nstatus: {status}\nmessage: {message}\n\
                     screenshot: {}\npage log: {}\ndriver log:\n{}",
                    self.name,
                    shot.display(),
                    page_log,
                    self.log.lock().unwrap()
                );
            }
        }
    }

    fn text(&mut self, selector: &str) -> String {
        self.ok("text", json!({ "selector": selector })).as_str().unwrap_or_default().to_string()
    }

    #[track_caller]
    fn wait_text(&mut self, selector: &str, pattern: &str) -> String {
        let text = self.ok("wait_text", json!({ "selector": selector, "pattern": pattern, "timeout_ms": 20000 }));
        text.as_str().unwrap_or_default().to_string()
    }

    #[track_caller]
    fn wait_attr(&mut self, selector: &str, name: &str, value: &str) {
        self.ok("wait_attr", json!({ "selector": selector, "name": name, "value": value, "timeout_ms": 20000 }));
    }

    #[track_caller]
    fn click(&mut self, selector: &str) {
        self.ok("click", json!({ "selector": selector }));
    }

    /// `<artifacts>/console-<name>.png`: the page as a person sees it.
    fn screenshot(&mut self, name: &str) -> PathBuf {
        let path = artifacts_dir().join(format!("console-{}-{name}.png", self.name));
        let _ = self.call("screenshot", json!({ "path": path }));
        path
    }

    /// Waits until the screen canvas's exact pixels (the framebuffer; the page scales it with CSS
    /// only) satisfy `done`; returns them, or panics naming `what`.
    #[track_caller]
    fn wait_canvas(&mut self, what: &str, done: impl Fn(&RgbImage) -> bool) -> RgbImage {
        let deadline = Instant::now() + WAIT;
        let path = self.dir.join("canvas-last.png");
        loop {
            // Before the first picture there may be no canvas, or an empty one.
            let canvas = self.call("canvas", json!({ "path": path })).map(|_| load_png(&path));
            if let Ok(canvas) = &canvas
                && done(canvas)
            {
                return canvas.clone();
            }
            if Instant::now() > deadline {
                let shot = self.screenshot("failure");
                let reads = canvas.map(|canvas| demo_screen::console(&canvas));
                panic!("the console's canvas never showed {what}; it reads {reads:?}; screenshot {}", shot.display());
            }
            thread::sleep(Duration::from_millis(150));
        }
    }

    /// Waits until the canvas shows the demo target's console.
    #[track_caller]
    fn wait_demo_screen(&mut self) {
        self.wait_canvas("the demo target's screen", |canvas| {
            demo_screen::console(canvas).first().is_some_and(|line| line.contains("kvnc demo console"))
        });
    }

    /// Waits until the demo's console shows a line containing `text`.
    #[track_caller]
    fn wait_console_line(&mut self, text: &str) {
        self.wait_canvas(&format!("a console line with {text:?}"), |canvas| {
            demo_screen::console(canvas).iter().any(|line| line.contains(text))
        });
    }

    /// Errors the page met: console errors (CSP violations among them), page errors, failed
    /// loads, except those matching `expected`.
    fn unexpected_errors(&mut self, expected: &[&str]) -> Vec<String> {
        let log = self.ok("log", json!({}));
        let _ = fs::write(self.dir.join("page-console.json"), log.to_string());
        log["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|error| !expected.iter().any(|pattern| error.contains(pattern)))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = fs::write(self.dir.join("driver.log"), self.log.lock().map(|log| log.clone()).unwrap_or_default());
        // End of input closes Chromium and the driver.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reports written to a FIFO standing in for `/dev/hidgN`, collected by a reader thread.
struct ReportFifo {
    path: PathBuf,
    reports: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ReportFifo {
    /// Creates the FIFO and reads `len`-byte reports from it. It is opened read-write: kvnc's
    /// non-blocking open succeeds at once, and kvnc closing it never ends the reads.
    fn new(path: PathBuf, len: usize) -> ReportFifo {
        let made = Command::new("mkfifo").arg("-m").arg("600").arg(&path).status().expect("running mkfifo");
        assert!(made.success(), "mkfifo {}", path.display());
        let mut fifo = fs::OpenOptions::new().read(true).write(true).open(&path).expect("opening the FIFO");
        let reports = Arc::new(Mutex::new(Vec::new()));
        let collected = reports.clone();
        thread::spawn(move || {
            let mut report = vec![0; len];
            while fifo.read_exact(&mut report).is_ok() {
                collected.lock().unwrap().push(report.clone());
            }
        });
        ReportFifo { path, reports }
    }

    fn count(&self) -> usize {
        self.reports.lock().unwrap().len()
    }

    /// Waits until the reports after the first `from` satisfy `done`; returns them.
    fn wait_since(&self, from: usize, done: impl Fn(&[Vec<u8>]) -> bool) -> Result<Vec<Vec<u8>>, Vec<Vec<u8>>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let reports = self.reports.lock().unwrap()[from..].to_vec();
            if done(&reports) {
                return Ok(reports);
            }
            if Instant::now() > deadline {
                return Err(reports);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A press of `usage` with exactly `modifiers` held, then a report with every key up.
fn pressed_then_released(reports: &[Vec<u8>], modifiers: u8, usage: u8) -> bool {
    let pressed = reports.iter().position(|report| report[0] == modifiers && report[2..].contains(&usage));
    pressed.is_some_and(|at| reports[at + 1..].iter().any(|report| report.iter().all(|&byte| byte == 0)))
}

fn api_status(port: u16) -> Value {
    let answer = request(port, "GET /api/status", "");
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    serde_json::from_slice(&answer.body).expect("JSON")
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn the_page_and_novnc_come_from_kvnc_with_security_headers() {
    let state = TempDir::new("kvnc-console-http");
    let server = KvncServer::start(
        KVNC,
        &["serve", "--no-control-socket", "--state-dir", state.path().to_str().expect("UTF-8 path")],
    );
    let port = server.port();

    let page = request(port, "GET /", "");
    assert_eq!(page.status, 200, "{page:?}");
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(html.contains("<script type=\"module\" src=\"console.js\">"), "{html}");
    for (name, value) in [
        ("content-type", "text/html; charset=utf-8"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(page.header(name), Some(value), "{name} in {:?}", page.headers);
    }
    let csp = page.header("content-security-policy").unwrap_or_default();
    for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} missing in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");

    // noVNC's version comes from the lockfile; its modules are JavaScript, gzipped on request,
    // cacheable for good and revalidated by ETag.
    let shim = String::from_utf8(request(port, "GET /novnc.js", "").body).expect("text");
    let rfb_path = shim.split('\'').find(|part| part.ends_with("/core/rfb.js")).expect("rfb.js in novnc.js");
    let rfb_path = rfb_path.trim_start_matches('.');
    let lockfile = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/package-lock.json"))
        .expect("the lockfile");
    let lock: Value = serde_json::from_str(&lockfile).expect("JSON");
    let version = lock["packages"]["node_modules/@novnc/novnc"]["version"].as_str().expect("noVNC's version");
    assert_eq!(rfb_path, format!("/novnc/{version}/core/rfb.js"));
    let plain = request(port, &format!("GET {rfb_path}"), "");
    assert_eq!((plain.status, plain.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
    assert!(String::from_utf8_lossy(&plain.body).contains("export default class RFB"));
    assert!(plain.header("cache-control").is_some_and(|value| value.contains("immutable")), "{plain:?}");
    let zipped = request(port, &format!("GET {rfb_path}"), "Accept-Encoding: gzip, deflate, br\r\n");
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert!(zipped.body.len() * 2 < plain.body.len(), "gzip: {} of {} bytes", zipped.body.len(), plain.body.len());
    assert_eq!(gunzip(&zipped.body), plain.body);
    let etag = plain.header("etag").expect("an ETag").to_string();
    let again = request(port, &format!("GET {rfb_path}"), &format!("If-None-Match: {etag}\r\n"));
    assert!(again.status == 304 && again.body.is_empty(), "{again:?}");
    assert_eq!(request(port, "HEAD /console.css", "").header("content-type"), Some("text/css; charset=utf-8"));
    assert!(request(port, "GET /novnc/LICENSE.txt", "").status == 404);
    // noVNC's licence goes with it.
    let license = request(port, &format!("GET /novnc/{version}/LICENSE.txt"), "");
    assert!(String::from_utf8_lossy(&license.body).contains("MPL 2.0"), "{license:?}");
    let mpl = request(port, &format!("GET /novnc/{version}/docs/LICENSE.MPL-2.0"), "");
    assert!(String::from_utf8_lossy(&mpl.body).contains("Mozilla Public License"), "{mpl:?}");

    // One request per connection (as the API): kept-alive idle connections would count as
    // connections waiting to log in.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(stream, "GET /console.js HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").expect("sending");
    let answer = read_answer(&mut stream, false);
    assert_eq!((answer.status, answer.header("connection")), (200, Some("close")));
    assert!(String::from_utf8_lossy(&answer.body).contains("import RFB from './novnc.js'"));
    assert_eq!(stream.read(&mut [0; 16]).ok(), Some(0), "closed after the answer");
    assert!(server.wait_for_log("web console: /console.js answered with 200", WAIT), "{}", server.log());

    // The WebSocket path's Origin rule: pages of other sites get nothing.
    let foreign = request(port, "GET /console.js", "Origin: https://evil.example\r\n");
    assert_eq!(foreign.status, 403, "{foreign:?}");
    assert_eq!(request(port, "GET /console.js", &format!("Origin: http://127.0.0.1:{port}\r\n")).status, 200);

    // Unknown pages: 404 with the same headers; other requests keep their 400.
    let missing = request(port, "GET /etc/passwd", "");
    assert_eq!((missing.status, missing.header("x-frame-options")), (404, Some("DENY")));
    assert_eq!(request(port, "POST /", "Content-Length: 0\r\n").status, 400);
    let broken_upgrade = request(port, "GET /", "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    assert_eq!(broken_upgrade.status, 400, "a WebSocket upgrade without a key is still refused");
}

#[test]
fn under_require_tls_the_page_is_only_served_over_https_and_a_view_only_user_only_watches() {
    let dir = TempDir::new("kvnc-console-tls");
    let users = dir.path().join("users");
    let mut passwd = Command::new(KVNC)
        .args(["passwd", "--users", users.to_str().expect("UTF-8 path"), "watcher", "--view-only"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kvnc passwd");
    passwd.stdin.take().expect("stdin").write_all(b"just-looking\n").expect("the password");
    assert!(passwd.wait().expect("kvnc passwd").success());
    let server = KvncServer::start(
        KVNC,
        &[
            "serve",
            "--no-control-socket",
            "--require-tls",
            "--users-file",
            users.to_str().expect("UTF-8 path"),
            "--state-dir",
            dir.path().to_str().expect("UTF-8 path"),
        ],
    );
    let refused = request(server.port(), "GET /", "");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.body).contains("https://"), "{refused:?}");

    // Over https:// the login goes inside wss://, with a user name (VeNCrypt Plain).
    let mut page = Page::open("require-tls", &format!("https://127.0.0.1:{}/", server.port()));
    page.ok("wait_visible", json!({ "selector": "#login", "timeout_ms": 20000 }));
    page.ok("wait_visible", json!({ "selector": "#login-user" }));
    assert!(page.text("#login-why").contains("user name and password"));
    page.ok("fill", json!({ "selector": "#login-user", "text": "watcher" }));
    page.ok("fill", json!({ "selector": "#login-password", "text": "just-looking" }));
    page.screenshot("login");
    page.click("#login-submit");
    page.wait_text("#status", "^Connected to ");
    // The API takes the same user name and password: it reads the status...
    page.wait_text("#host", "capture demo");
    page.wait_demo_screen();
    // ...but a view-only user changes nothing, and is told so in the API's words.
    page.click("#cad");
    page.wait_text("#message", "^Could not press Ctrl\\+Alt\\+Del: this login may only watch$");
    page.screenshot("view-only");
    let log = server.log();
    assert!(log.contains("user \"watcher\", ViewOnly access") && log.contains("over TLS"), "{log}");
    // The refusal is a 403 the browser reports; nothing else went wrong.
    let errors = page.unexpected_errors(&["/api/keys"]);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn the_console_shows_the_demo_types_and_drives_it() {
    let state = TempDir::new("kvnc-console-demo");
    let server = KvncServer::start(
        KVNC,
        &["serve", "--no-control-socket", "--state-dir", state.path().to_str().expect("UTF-8 path")],
    );
    let port = server.port();
    let started = Instant::now();
    let mut page = Page::open("demo", &format!("http://127.0.0.1:{port}/"));
    page.wait_text("#status", "^Connected to ");
    // The first picture is the demo target's screen, exactly (lossless encodings, 1:1 canvas).
    let expected = demo_screen::expected(&DemoState::new());
    let first =
        page.wait_canvas("the demo target's screen", |canvas| demo_screen::differences(canvas, &expected, 0) == 0);
    assert_eq!((first.width, first.height), (1280, 720));
    eprintln!("console: connected and painted {:.1?} after opening the page", started.elapsed());
    page.wait_attr("#led-num", "data-state", "off");
    page.wait_text("#host", "capture demo · 1280×720");
    page.screenshot("connected");

    // Keys typed on the screen reach the demo target.
    page.click("#screen canvas");
    page.ok("type_us", json!({ "text": "typed in the console: Hello, World!\n" }));
    page.wait_console_line("typed in the console: Hello, World!");

    // Typing through the paste box (POST /api/type).
    page.click("#paste-toggle");
    page.ok("fill", json!({ "selector": "#paste-text", "text": "pasted by the API 1+1=2" }));
    page.click("#paste-send");
    page.wait_text("#message", "^Typing 23 characters on the target$");
    page.wait_console_line("pasted by the API 1+1=2");
    page.click("#paste-close");

    // Num Lock on the target: its LED comes back to the page.
    page.click("#screen canvas");
    page.ok("keys", json!({ "keys": ["NumLock"] }));
    page.wait_attr("#led-num", "data-state", "on");
    page.wait_attr("#led-caps", "data-state", "off");
    page.screenshot("typed");

    // Layout and mouse mode through the API, and the status follows.
    page.ok("select", json!({ "selector": "#layout", "value": "de" }));
    page.wait_text("#message", "^Keyboard layout: de$");
    assert_eq!(api_status(port)["layout"], "de");
    page.ok("select", json!({ "selector": "#mouse-mode", "value": "relative" }));
    page.wait_text("#message", "relative");
    assert_eq!(api_status(port)["mouse_mode"], "relative");
    page.ok("select", json!({ "selector": "#mouse-mode", "value": "absolute" }));
    page.wait_text("#message", "absolute pointer");
    page.ok("select", json!({ "selector": "#layout", "value": "us" }));
    page.wait_text("#message", "^Keyboard layout: us$");

    // No --media-dir: the media panel says so in the API's words; the host state is shown.
    page.click("#media-toggle");
    let media = page.wait_text("#media-state", "media-dir");
    assert!(media.contains("no virtual media: start kvnc with --media-dir DIR"), "{media}");
    assert_eq!(page.ok("attr", json!({ "selector": "#media-attach", "name": "disabled" })), json!(""));
    page.wait_text("#host-details", "Capturedemo");
    page.screenshot("media-panel");
    // The API's 404 for the missing media is the only error the page met: no CSP violation,
    // no failed load, no script error.
    let errors = page.unexpected_errors(&["/api/media"]);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(page.text("#status").starts_with("Connected"), "still connected");
    drop(page);

    // The same page over https://, with noVNC over wss:// (kvnc's self-signed certificate).
    let mut page = Page::open("https", &format!("https://127.0.0.1:{port}/"));
    page.wait_text("#status", "^Connected to ");
    page.wait_demo_screen();
    page.screenshot("connected");
    let errors = page.unexpected_errors(&[]);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(server.wait_for_log("connected (WebSocket over TLS", WAIT), "{}", server.log());
}

#[test]
fn ctrl_alt_del_and_other_combinations_reach_the_keyboard_reports() {
    let dir = TempDir::new("kvnc-console-hid");
    let keyboard = ReportFifo::new(dir.path().join("keyboard.fifo"), 8);
    let pointer = ReportFifo::new(dir.path().join("pointer.fifo"), 7);
    let mouse = ReportFifo::new(dir.path().join("mouse.fifo"), 4);
    let devices = format!(
        "keyboard={},pointer={},mouse={}",
        keyboard.path.display(),
        pointer.path.display(),
        mouse.path.display()
    );
    let server =
        KvncServer::start(KVNC, &["serve", "--no-control-socket", "--source", "demo", "--hid-device", &devices]);
    let mut page = Page::open("hid", &format!("http://127.0.0.1:{}/", server.port()));
    page.wait_text("#status", "^Connected to ");

    // Left Ctrl + left Alt (modifier bits 0 and 2) with Delete (usage 0x4c), then all released.
    let before = keyboard.count();
    page.click("#cad");
    page.wait_text("#message", "^Pressed Ctrl\\+Alt\\+Del$");
    let reports = keyboard.wait_since(before, |reports| pressed_then_released(reports, 0x05, 0x4c));
    assert!(reports.is_ok(), "no Ctrl+Alt+Del in the keyboard reports: {reports:02x?}");
    page.screenshot("ctrl-alt-del");

    // From the menu: Ctrl+Alt+F2 (usage 0x3b) and Alt+SysRq+S (Print Screen 0x46 then S 0x16,
    // Alt held: modifier bit 2).
    let before = keyboard.count();
    page.ok("select", json!({ "selector": "#combo", "value": "ctrl+alt+f2" }));
    page.wait_text("#message", "^Pressed Ctrl\\+Alt\\+F2$");
    let reports = keyboard.wait_since(before, |reports| pressed_then_released(reports, 0x05, 0x3b));
    assert!(reports.is_ok(), "no Ctrl+Alt+F2: {reports:02x?}");
    let before = keyboard.count();
    page.ok("select", json!({ "selector": "#combo", "value": "alt+sysrq+s" }));
    page.wait_text("#message", "^Pressed Alt\\+SysRq\\+S$");
    let reports = keyboard.wait_since(before, |reports| {
        reports.iter().any(|report| report[0] == 0x04 && report[2..].contains(&0x46) && report[2..].contains(&0x16))
            && reports.last().is_some_and(|report| report.iter().all(|&byte| byte == 0))
    });
    assert!(reports.is_ok(), "no Alt+SysRq+S: {reports:02x?}");
    assert_eq!(page.ok("value", json!({ "selector": "#combo" })), "", "the menu is reset");
    let errors = page.unexpected_errors(&[]);
    assert!(errors.is_empty(), "{errors:#?}");

    // kvnc stops: the page says so, and says why a reconnect fails while it is away.
    let mut server = server;
    assert!(server.terminate(WAIT).is_some(), "kvnc did not stop on SIGTERM");
    page.wait_text("#status", "^Disconnected: kvnc closed the connection$");
    page.click("#reconnect");
    page.wait_text("#status", "^Could not connect to kvnc at 127.0.0.1:[0-9]+: the connection was refused or closed");
    page.screenshot("server-gone");
}

#[test]
fn the_console_asks_for_the_password_and_says_when_it_is_wrong() {
    let dir = TempDir::new("kvnc-console-login");
    let password_file = dir.path().join("password");
    let (right, wrong) = ("console-secret-42", "guessed-wrong-17");
    fs::write(&password_file, format!("{right}\n")).expect("password file");
    let server = KvncServer::start(
        KVNC,
        &[
            "serve",
            "--no-control-socket",
            "--password-file",
            password_file.to_str().expect("UTF-8 path"),
            "--state-dir",
            dir.path().join("state").to_str().expect("UTF-8 path"),
        ],
    );
    let port = server.port();
    let mut page = Page::open("login", &format!("http://127.0.0.1:{port}/"));

    // From http://127.0.0.1 (a secure context) noVNC takes RSA-AES: the page shows kvnc's key
    // fingerprint, the one kvnc logged, and asks to approve it.
    page.ok("wait_visible", json!({ "selector": "#verify", "timeout_ms": 20000 }));
    let shown = page.text("#verify-fingerprint");
    let logged = server.log();
    let logged = logged
        .split("RSA-AES key fingerprint ")
        .nth(1)
        .map(|rest| rest.chars().take(23).collect::<String>())
        .unwrap_or_else(|| panic!("no fingerprint in kvnc's log:\n{logged}"));
    assert_eq!(shown, logged, "the page shows the fingerprint kvnc logged");
    page.screenshot("fingerprint");
    page.click("#verify-approve");

    // A wrong password: the error in words, no connection.
    page.ok("wait_visible", json!({ "selector": "#login", "timeout_ms": 20000 }));
    assert!(page.text("#login-why").contains("password"));
    page.ok("fill", json!({ "selector": "#login-password", "text": wrong }));
    page.click("#login-submit");
    let failed = page.wait_text("#status", "^Login failed: ");
    assert!(failed.len() > "Login failed: ".len() + 3, "a reason in words: {failed}");
    page.ok("wait_visible", json!({ "selector": "#reconnect" }));
    page.screenshot("wrong-password");

    // Reconnecting asks again; the right password connects, and the API calls made with it work.
    page.click("#reconnect");
    page.ok("wait_visible", json!({ "selector": "#login", "timeout_ms": 20000 }));
    page.ok("fill", json!({ "selector": "#login-password", "text": right }));
    page.click("#login-submit");
    page.wait_text("#status", "^Connected to ");
    page.wait_text("#host", "capture demo");
    page.click("#cad");
    page.wait_text("#message", "^Pressed Ctrl\\+Alt\\+Del$");
    page.wait_demo_screen();
    page.screenshot("logged-in");
    assert!(server.log().contains("authenticated: RFB 3.8, RSA-AES"), "{}", server.log());
    assert!(server.log().contains("control request answered with 200"), "the API took the login");

    // Credentials never show up in the URL, the page or kvnc's log.
    let url = page.ok("url", json!({}));
    assert_eq!(url, json!(format!("http://127.0.0.1:{port}/")));
    assert_eq!(page.ok("value", json!({ "selector": "#login-password" })), "", "not left in the page");
    let log = server.log();
    assert!(!log.contains(right) && !log.contains(wrong), "a password in kvnc's log:\n{log}");
    // noVNC logs the refused login as an error of its own; nothing else went wrong.
    let errors = page.unexpected_errors(&["Security negotiation failed on security result (reason: "]);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_login_left_open_past_the_handshake_timeout_connects_anew() {
    let dir = TempDir::new("kvnc-console-slow-login");
    let password_file = dir.path().join("password");
    fs::write(&password_file, "slow-typist\n").expect("password file");
    let server = KvncServer::start(
        KVNC,
        &[
            "serve",
            "--no-control-socket",
            "--no-rsa-aes",
            "--handshake-timeout",
            "2",
            "--password-file",
            password_file.to_str().expect("UTF-8 path"),
            "--state-dir",
            dir.path().join("state").to_str().expect("UTF-8 path"),
        ],
    );
    let mut page = Page::open("slow-login", &format!("http://127.0.0.1:{}/", server.port()));
    page.ok("wait_visible", json!({ "selector": "#login", "timeout_ms": 20000 }));
    assert!(page.text("#login-why").contains("its password"));
    // kvnc gives up on the silent connection; the box stays, and says what happened.
    page.wait_text("#status", "^kvnc closed the connection while waiting for the login");
    assert_eq!(page.ok("visible", json!({ "selector": "#login" })), json!(true));
    assert!(page.text("#login-why").contains("closed the connection"));
    page.screenshot("timed-out");
    page.ok("fill", json!({ "selector": "#login-password", "text": "slow-typist" }));
    page.click("#login-submit");
    page.wait_text("#status", "^Connected to ");
    page.wait_demo_screen();
    // noVNC logs the dropped connection as an error of its own; nothing else went wrong.
    let errors = page.unexpected_errors(&["Failed when connecting: Connection closed"]);
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The media panel on a real gadget: kvnc in the lab guest with `--hid gadget --media-dir`, the
/// page in the host's Chromium through the forwarded port, logged in with the VNC password; the
/// panel attaches a disk image, the guest's USB host reads it, and the panel ejects it.
#[test]
fn the_media_panel_attaches_an_image_to_the_gadget_in_the_lab() {
    const MEDIA_DIR: &str = "/run/lab/media";
    const MARK: &str = "KVNC-CONSOLE-MEDIA";
    let timeout = Duration::from_secs(40);
    let host_dir = TempDir::new("kvnc-console-lab");
    let password = host_dir.path().join("password");
    fs::write(&password, "lab-console\n").expect("password file");
    let listen = format!("0.0.0.0:{}", lab::GUEST_KVNC_PORT);
    let mut options = LabOptions::kvnc(&[
        "serve",
        "--listen",
        &listen,
        "--hid",
        "gadget",
        "--media-dir",
        MEDIA_DIR,
        "--no-control-socket",
        "--password-file",
        password.to_str().expect("UTF-8 path"),
        "--no-rsa-aes",
        "--no-tls",
    ]);
    // A 4 MiB disk image starting with a mark the guest reads back.
    options.before_kvnc.push(format!(
        "mkdir -p {MEDIA_DIR} && truncate -s 4M {MEDIA_DIR}/console-disk.img && \
         printf {MARK} | dd of={MEDIA_DIR}/console-disk.img conv=notrunc status=none"
    ));
    // The guest is emulated (TCG, behind QEMU's user network): at times a request's first bytes
    // reach kvnc there later than the 150 ms in which kvnc tells a browser from a VNC viewer,
    // and kvnc greets it as a viewer (Chromium: ERR_INVALID_HTTP_RESPONSE). So this test runs
    // with no other Chromium beside it, and retries what a person would retry: a reload while
    // the page is half-loaded, or Reconnect (the page itself asks again when a read, an attach
    // or an eject got no answer).
    let turn = CHROMIUM.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(lab) = Lab::start_or_skip(options) else { return };
    lab.wait_listening(timeout);
    let deadline = Instant::now() + timeout;
    while !answers_http(lab.host_port()) {
        assert!(Instant::now() < deadline, "kvnc in the guest never answered GET /:\n{}", lab.kvnc_log());
    }

    let mut page = Page::open_holding(turn, "lab-media", &format!("http://127.0.0.1:{}/", lab.host_port()));
    let mut attempts = 0;
    while page.call("wait_visible", json!({ "selector": "#login", "timeout_ms": 20000 })).is_err() {
        attempts += 1;
        let status = page.text("#status");
        assert!(attempts < 6, "no login box after {attempts} tries; the page says {status:?}");
        eprintln!("console lab: no login box yet ({status}); trying again");
        if status.starts_with("Loading") {
            page.ok("reload", json!({}));
        } else {
            page.click("#reconnect");
        }
    }
    page.ok("fill", json!({ "selector": "#login-password", "text": "lab-console" }));
    page.click("#login-submit");
    page.ok("wait_text", json!({ "selector": "#status", "pattern": "^Connected to ", "timeout_ms": 60000 }));
    page.wait_demo_screen();
    page.click("#media-toggle");
    page.ok("wait_text", json!({ "selector": "#media-state", "pattern": "drive is empty", "timeout_ms": 30000 }));
    page.ok("wait_text", json!({ "selector": "#media-image", "pattern": "console-disk.img", "timeout_ms": 30000 }));
    page.ok("select", json!({ "selector": "#media-image", "value": "console-disk.img" }));
    assert_eq!(page.ok("value", json!({ "selector": "#media-mode" })), "read-only", "an .img goes in as a disk");
    page.click("#media-attach");
    let attached = json!({ "selector": "#message", "pattern": "^Attached console-disk.img as read-only disk$",
        "timeout_ms": 30000 });
    page.ok("wait_text", attached);
    let state = page.ok(
        "wait_text",
        json!({ "selector": "#media-state",
        "pattern": "In the drive: console-disk.img, as read-only disk. The target's USB host has configured",
        "timeout_ms": 30000 }),
    );
    eprintln!("console lab: {state}");

    // The guest's USB host sees the disk, read-only, with the image's bytes.
    let device = wait_block_device(&lab, MediaLun::Disk, timeout);
    let read_mark = format!("[ \"$(dd if={device} bs=512 count=1 status=none | head -c {})\" = {MARK} ]", MARK.len());
    assert!(lab.wait_until_in(Root::Host, &read_mark, timeout), "{device} does not start with {MARK}: {}", lab.dmesg());
    assert!(lab.wait_until_in(Root::Host, &format!("[ \"$(blockdev --getro {device})\" = 1 ]"), timeout));
    page.screenshot("attached");

    page.click("#media-eject");
    page.ok(
        "wait_text",
        json!({ "selector": "#message", "pattern": "^Ejected the virtual media$", "timeout_ms": 30000 }),
    );
    page.ok("wait_text", json!({ "selector": "#media-state", "pattern": "drive is empty", "timeout_ms": 30000 }));
    let no_medium = format!("! dd if={device} of=/dev/null bs=512 count=1 2>/dev/null");
    assert!(lab.wait_until_in(Root::Host, &no_medium, timeout), "{device} still has a medium");
    page.screenshot("ejected");
    // Requests kvnc took for a viewer (see above) are all that may have failed.
    let errors = page.unexpected_errors(&["ERR_INVALID_HTTP_RESPONSE", "Failed when connecting: Connection closed"]);
    assert!(errors.is_empty(), "{errors:#?}\nkvnc in the guest:\n{}", lab.kvnc_log());
}

/// The guest's block device of the gadget's drive `lun` (its SCSI LUN, under dummy_hcd).
fn wait_block_device(lab: &Lab, lun: MediaLun, timeout: Duration) -> String {
    let script = format!(
        "for b in /sys/block/*; do\n  \
         case \"$(readlink -f $b/device)\" in *dummy_hcd*:{}) echo /dev/${{b##*/}};; esac\n\
         done; true",
        lun.index()
    );
    assert!(
        lab.wait_until(&format!("[ -n \"$({script})\" ]"), timeout),
        "no block device for the {lun:?} drive: {}",
        lab.run_ok("ls -l /sys/block; dmesg | tail -20")
    );
    lab.run_ok_in(Root::Initramfs, &script).trim().to_string()
}
