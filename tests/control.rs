//! The control interface end to end: `kvnc ctl` through the local socket against the demo target
//! (typing, key combos, layout, screenshot, viewers, errors), and the same API on kvnc's port,
//! where it needs a login and failed logins count towards the blacklist.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kvnc_test_support::{demo_screen, raw_client, viewers};
use raw_client::{RawClient, closed_by_server};
use viewers::{KvncServer, TempDir, load_png, poll_until};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
const WAIT: Duration = Duration::from_secs(20);

/// `kvnc ctl --socket SOCKET ARGS..`: (success, stdout, stderr).
fn ctl(socket: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(KVNC).arg("ctl").arg("--socket").arg(socket).args(args).output().expect("kvnc ctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ctl_json(socket: &Path, args: &[&str]) -> serde_json::Value {
    let (ok, stdout, stderr) = ctl(socket, args);
    assert!(ok, "kvnc ctl {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("kvnc ctl {args:?} printed no JSON ({e}): {stdout}"))
}

/// The demo console as a `kvnc ctl screenshot` shows it.
fn console_via_screenshot(socket: &Path, dir: &Path) -> Vec<String> {
    let file = dir.join("screen.png");
    let (ok, _, stderr) = ctl(socket, &["screenshot", file.to_str().unwrap()]);
    assert!(ok, "screenshot: {stderr}");
    demo_screen::console(&load_png(&file))
}

#[test]
fn kvnc_ctl_drives_the_running_server() {
    let dir = TempDir::new("kvnc-ctl");
    let socket = dir.path().join("control.sock");
    let server = KvncServer::start(KVNC, &["serve", "--control-socket", socket.to_str().unwrap()]);
    assert!(server.wait_for_log("control socket", WAIT), "{}", server.log());
    let mode = std::fs::metadata(&socket).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "only the owner may open the socket");

    let status = ctl_json(&socket, &["status"]);
    assert_eq!(status["capture"]["source"], "demo", "{status}");
    assert_eq!((status["screen"]["width"].as_u64(), status["screen"]["height"].as_u64()), (Some(1280), Some(720)));
    assert_eq!(status["layout"], "us");

    // Typing and a key combination reach the target (the demo's console shows what it got).
    ctl_json(&socket, &["type", "typed by ctl 1+1=2"]);
    ctl_json(&socket, &["keys", "shift+k"]);
    let shown = poll_until(
        WAIT,
        Duration::from_millis(200),
        || console_via_screenshot(&socket, dir.path()),
        |console| console.iter().any(|line| line.contains("typed by ctl 1+1=2K")),
    );
    assert!(shown.is_ok(), "the console shows {shown:?}; kvnc log:\n{}", server.log());

    // The layout can change; a bad one is refused with its reason and a non-zero exit.
    assert_eq!(ctl_json(&socket, &["layout", "de"])["layout"], "de");
    let (ok, _, stderr) = ctl(&socket, &["layout", "no-such-layout"]);
    assert!(!ok && stderr.contains("no-such-layout"), "{stderr}");
    assert_eq!(ctl_json(&socket, &["mouse-mode", "relative"])["mouse_mode"], "relative");

    // Viewers: listed with what they do, and one can be disconnected.
    let mut viewer = RawClient::connect(&server.addr());
    let viewers = ctl_json(&socket, &["viewers"]);
    let listed = viewers.as_array().and_then(|list| list.iter().find(|v| v["logged_in"] == true)).cloned();
    let listed = listed.unwrap_or_else(|| panic!("the viewer is not listed: {viewers}"));
    assert_eq!((listed["encoding"].as_str(), listed["view_only"].as_bool()), (Some("Raw"), Some(false)));
    let id = listed["id"].as_u64().unwrap().to_string();
    ctl_json(&socket, &["disconnect", &id]);
    assert!(closed_by_server(&mut viewer.stream), "the viewer was disconnected");
    let (ok, _, stderr) = ctl(&socket, &["disconnect", "999"]);
    assert!(!ok && stderr.contains("no viewer 999") && stderr.contains("404"), "{stderr}");

    // Without --media-dir there is no drive, and ctl says so.
    let (ok, _, stderr) = ctl(&socket, &["media", "list"]);
    assert!(!ok && stderr.contains("--media-dir"), "{stderr}");
    // No server at the other end: a clear error, not a hang.
    let (ok, _, stderr) = ctl(&dir.path().join("nothing.sock"), &["status"]);
    assert!(!ok && stderr.contains("is `kvnc serve` running?"), "{stderr}");
}

/// An HTTP request to kvnc's port from `source`; returns the status and body (None if refused
/// before an answer).
fn http(addr: &str, source: IpAddr, request: &str) -> Option<(u16, String)> {
    let mut stream: TcpStream = RawClient::open_from(addr, source);
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()))
}

fn get(path: &str, authorization: Option<&str>) -> String {
    let auth = authorization.map(|value| format!("Authorization: Basic {value}\r\n")).unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n")
}

fn post(path: &str, authorization: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {authorization}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[test]
fn the_http_api_needs_a_login_and_counts_failures() {
    let dir = TempDir::new("kvnc-api");
    let (full, view): (PathBuf, PathBuf) = (dir.path().join("full"), dir.path().join("view"));
    std::fs::write(&full, "full-secret\n").unwrap();
    std::fs::write(&view, "look-only\n").unwrap();
    let server = KvncServer::start(
        KVNC,
        &[
            "serve",
            "--no-control-socket",
            "--password-file",
            full.to_str().unwrap(),
            "--view-only-password-file",
            view.to_str().unwrap(),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
        ],
    );
    let addr = server.addr();
    let local: IpAddr = "127.0.0.3".parse().unwrap();
    let guesser: IpAddr = "127.0.0.4".parse().unwrap();

    let (status, body) = http(&addr, local, &get("/api/status", None)).expect("an answer");
    assert_eq!(status, 401, "{body}");
    let (status, body) = http(&addr, local, &get("/api/status", Some(&basic("anyone", "full-secret")))).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"source\":\"demo\""), "{body}");

    // A view-only login may read, not change.
    let looker = basic("", "look-only");
    assert_eq!(http(&addr, local, &get("/api/viewers", Some(&looker))).unwrap().0, 200);
    let typed = post("/api/type", &looker, "application/json", r#"{"text":"x"}"#);
    assert_eq!(http(&addr, local, &typed).unwrap().0, 403);
    // Only JSON bodies change things (a form from another site cannot).
    let form = post("/api/type", &basic("", "full-secret"), "text/plain", r#"{"text":"x"}"#);
    assert_eq!(http(&addr, local, &form).unwrap().0, 415);
    let foreign = get("/api/status", Some(&basic("", "full-secret")))
        .replace("\r\n\r\n", "\r\nOrigin: https://evil.example\r\n\r\n");
    assert_eq!(http(&addr, local, &foreign).unwrap().0, 403);
    let (status, body) = http(
        &addr,
        local,
        &post("/api/keys", &basic("", "full-secret"), "application/json", r#"{"combo":"ctrl+nokey"}"#),
    )
    .unwrap();
    assert!(status == 400 && body.contains("nokey"), "{status} {body}");

    // Wrong passwords count like failed VNC logins: five, and the address is refused.
    for _ in 0..5 {
        assert_eq!(http(&addr, guesser, &get("/api/status", Some(&basic("", "guess")))).map(|(s, _)| s), Some(401));
    }
    assert!(server.wait_for_log("too many failed logins", WAIT), "{}", server.log());
    assert_eq!(http(&addr, guesser, &get("/api/status", Some(&basic("", "full-secret")))), None, "blocked");
    assert_eq!(
        http(&addr, local, &get("/api/status", Some(&basic("", "full-secret")))).unwrap().0,
        200,
        "others are not"
    );
}
