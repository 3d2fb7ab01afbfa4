//! Encrypted logins with viewers we did not write: TigerVNC's vncviewer over VeNCrypt X509Vnc and
//! X509Plain against a test CA, noVNC over wss:// and with RSA-AES over ws://, and what
//! `--require-tls` leaves to plain clients.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};

use std::time::Duration;

use kvnc::demo::DemoState;
use kvnc_test_support::{demo_screen, novnc, raw_client, test_ca, viewers};
use raw_client::RawClient;
use test_ca::TestCa;
use viewers::{KvncServer, TempDir, TigerViewer};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "s3cret";

fn password_file(dir: &TempDir) -> String {
    let path = dir.path().join("vnc-password");
    std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
    path.to_string_lossy().into_owned()
}

/// An accounts file made by `kvnc passwd`, as a user would.
fn users_file(dir: &TempDir, name: &str, password: &str, view_only: bool) -> String {
    let path = dir.path().join("users");
    let mut args = vec!["passwd".to_string(), "--users".into(), path.to_string_lossy().into_owned(), name.into()];
    if view_only {
        args.push("--view-only".into());
    }
    let mut child = Command::new(KVNC).args(&args).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kvnc passwd: {}", String::from_utf8_lossy(&out.stderr));
    path.to_string_lossy().into_owned()
}

fn assert_shows_demo_screen(viewer: &TigerViewer, server: &KvncServer, name: &str) {
    let expected = demo_screen::expected(&DemoState::new());
    let shown = viewer.wait_until_fb(|fb| demo_screen::differences(fb, &expected, 0) == 0, WAIT);
    if let Err(last) = &shown {
        last.save_artifact(&format!("{name}.png"));
    }
    assert!(shown.is_ok(), "the viewer never showed the demo screen; kvnc log:\n{}", server.log());
}

#[test]
fn tigervnc_logs_in_over_x509vnc_under_require_tls() {
    let ca = TestCa::new();
    let dir = TempDir::new("kvnc-tls-vnc");
    let mut args = vec!["serve".to_string(), "--require-tls".into(), "--password-file".into(), password_file(&dir)];
    args.extend(ca.kvnc_args());
    let server = KvncServer::start(KVNC, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let ca_path = ca.ca().to_string_lossy().into_owned();
    let viewer = TigerViewer::start_with_password(
        &server.vnc_target(),
        PASSWORD,
        &["-SecurityTypes", "X509Vnc", "-X509CA", &ca_path, "-PreferredEncoding=ZRLE"],
    );
    assert_shows_demo_screen(&viewer, &server, "tigervnc-x509vnc");
    assert!(
        server.wait_for_log("authenticated: RFB 3.8, VeNCrypt X509Vnc over TLSv1_3", WAIT),
        "kvnc log:\n{}",
        server.log()
    );
}

#[test]
fn tigervnc_logs_in_with_an_account_over_x509plain() {
    let ca = TestCa::new();
    let dir = TempDir::new("kvnc-tls-plain");
    let mut args =
        vec!["serve".to_string(), "--users-file".into(), users_file(&dir, "operator", "long pass phrase", false)];
    args.extend(ca.kvnc_args());
    let server = KvncServer::start(KVNC, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let ca_path = ca.ca().to_string_lossy().into_owned();
    let viewer = TigerViewer::start_with_env(
        &server.vnc_target(),
        &[("VNC_USERNAME", "operator"), ("VNC_PASSWORD", "long pass phrase")],
        &["-SecurityTypes", "X509Plain", "-X509CA", &ca_path, "-PreferredEncoding=ZRLE"],
    );
    assert_shows_demo_screen(&viewer, &server, "tigervnc-x509plain");
    assert!(
        server.wait_for_log("VeNCrypt X509Plain over TLSv1_3, user \"operator\", Full access", WAIT),
        "kvnc log:\n{}",
        server.log()
    );
}

#[test]
fn wrong_passwords_over_tls_block_the_address_but_not_others() {
    let ca = TestCa::new();
    let dir = TempDir::new("kvnc-tls-blacklist");
    let mut args = vec!["serve".to_string(), "--password-file".into(), password_file(&dir)];
    args.extend(ca.kvnc_args());
    let server = KvncServer::start(KVNC, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let ca_path = ca.ca().to_string_lossy().into_owned();
    let tiger_args = ["-SecurityTypes", "X509Vnc", "-X509CA", ca_path.as_str()];
    let mut viewer = TigerViewer::spawn(&server.vnc_target(), Some("wrong"), &tiger_args);
    assert!(viewer.wait_exit(WAIT).is_some(), "vncviewer did not give up: {}", viewer.log());
    assert!(viewer.log().contains("Authentication failed"), "vncviewer log:\n{}", viewer.log());
    // Four more failures from the same address, in plain VNC Authentication: the count is per
    // address across every login type.
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    for _ in 0..4 {
        assert!(RawClient::login_from(&server.addr(), local, b"wrong").is_err());
    }
    assert!(server.wait_for_log("too many failed logins", WAIT), "kvnc log:\n{}", server.log());
    let mut viewer = TigerViewer::spawn(&server.vnc_target(), Some(PASSWORD), &tiger_args);
    assert!(viewer.wait_exit(WAIT).is_some(), "a blocked address is refused: {}", viewer.log());
    assert!(!viewer.log().contains("Authentication failed"), "refused before any login: {}", viewer.log());
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    assert!(RawClient::login_from(&server.addr(), other, PASSWORD.as_bytes()).is_ok(), "{}", server.log());
}

#[test]
fn novnc_logs_in_over_wss() {
    let dir = TempDir::new("kvnc-wss");
    let state = dir.path().join("state").to_string_lossy().into_owned();
    let users = users_file(&dir, "web", "browser pass", true);
    let server = KvncServer::start(
        KVNC,
        &["serve", "--password-file", &password_file(&dir), "--users-file", &users, "--state-dir", &state],
    );
    // VeNCrypt Plain inside wss://: noVNC sends the user name and password.
    let options = novnc::NoVncOptions::new().tls().username("web").password("browser pass").type_text("typed");
    let run = novnc::run_novnc(server.port(), &options);
    run.assert_ok();
    // The account is view-only: what the browser typed never reached the target.
    let console = demo_screen::console(&run.canvas);
    assert!(!console.iter().any(|line| line.contains("typed")), "{console:?}");
    assert!(server.log().contains("connected (WebSocket over TLSv1_3)"), "kvnc log:\n{}", server.log());
    assert!(server.log().contains("VeNCrypt Plain, user \"web\", ViewOnly access"), "kvnc log:\n{}", server.log());
    assert!(dir.path().join("state/tls.pem").exists(), "the self-signed certificate is kept in the state directory");
}

#[test]
fn novnc_logs_in_with_rsa_aes_over_ws() {
    let dir = TempDir::new("kvnc-ra2ne");
    let state = dir.path().join("state").to_string_lossy().into_owned();
    let server = KvncServer::start(KVNC, &["serve", "--password-file", &password_file(&dir), "--state-dir", &state]);
    assert!(server.log().contains("RSA-AES key fingerprint"), "{}", server.log());
    // The test page comes from 127.0.0.1, a secure context: noVNC has WebCrypto and picks RA2ne.
    let run = novnc::run_novnc(server.port(), &novnc::NoVncOptions::new().password(PASSWORD));
    run.assert_ok();
    assert!(
        server.log().contains("authenticated: RFB 3.8, RSA-AES without session encryption (RA2ne), Full access"),
        "kvnc log:\n{}",
        server.log()
    );
    // A wrong password fails as any login does.
    let run = novnc::run_novnc(server.port(), &novnc::NoVncOptions::new().password("wrong"));
    assert!(!run.connected, "logged in with a wrong password");
    assert!(server.wait_for_log("protocol error: authentication failed", WAIT), "{}", server.log());
}

#[test]
fn an_rfb_33_client_still_logs_in_with_vnc_authentication_beside_tls() {
    let dir = TempDir::new("kvnc-rfb33");
    let state = dir.path().join("state").to_string_lossy().into_owned();
    let server = KvncServer::start(KVNC, &["serve", "--password-file", &password_file(&dir), "--state-dir", &state]);
    // What macOS Screen Sharing does: RFB 3.3, where the server picks the type.
    let mut stream = RawClient::connect_bare(&server.addr());
    stream.write_all(b"RFB 003.003\n").unwrap();
    let mut chosen = [0u8; 4];
    stream.read_exact(&mut chosen).unwrap();
    assert_eq!(u32::from_be_bytes(chosen), u32::from(rfb::security::VNC_AUTH));
    let mut challenge = [0u8; 16];
    stream.read_exact(&mut challenge).unwrap();
    stream.write_all(&rfb::security::vnc_auth::expected_response(PASSWORD.as_bytes(), &challenge)).unwrap();
    let mut result = [0u8; 4];
    stream.read_exact(&mut result).unwrap();
    assert_eq!(result, [0; 4]);
    stream.write_all(&[1]).unwrap();
    let mut init = [0u8; 4];
    stream.read_exact(&mut init).unwrap();
    assert_eq!(init, [5, 0, 2, 208], "ServerInit for the 1280x720 demo screen");
    assert!(server.wait_for_log("authenticated: RFB 3.3, VncAuth", WAIT), "{}", server.log());
}

#[test]
fn require_tls_refuses_plain_clients_with_a_reason() {
    let dir = TempDir::new("kvnc-require-tls");
    let state = dir.path().join("state").to_string_lossy().into_owned();
    let server = KvncServer::start(
        KVNC,
        &["serve", "--require-tls", "--password-file", &password_file(&dir), "--state-dir", &state],
    );
    // An RFB 3.3 client (macOS Screen Sharing speaks it) cannot choose TLS: told why.
    let mut stream = RawClient::connect_bare(&server.addr());
    stream.write_all(b"RFB 003.003\n").unwrap();
    let mut refusal = Vec::new();
    let _ = stream.read_to_end(&mut refusal);
    assert_eq!(&refusal[..4], &[0, 0, 0, 0], "no security type");
    assert!(String::from_utf8_lossy(&refusal[8..]).contains("only encrypted connections"), "{refusal:?}");
    // vncdotool has no VeNCrypt: it fails instead of logging in without encryption.
    let capture = dir.path().join("capture.png").to_string_lossy().into_owned();
    let out = viewers::vncdo_try(&server.addr(), Some(PASSWORD), &["capture", &capture], WAIT);
    assert!(!out.status.success(), "vncdotool logged in without TLS");
    assert!(!server.log().contains("authenticated:"), "kvnc log:\n{}", server.log());
    // A browser on ws:// is told to use wss://.
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403") && answer.contains("wss://"), "{answer}");
    // The control API too: a password must not cross the network in plain HTTP.
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403") && answer.contains("https://"), "{answer}");
}
