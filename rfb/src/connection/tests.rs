use std::sync::Arc;

use super::*;
use crate::security::vencrypt;

const SEED: [u8; 32] = [7; 32];

/// The VNC Authentication challenge a connection seeded with [`SEED`] sends: the first bytes
/// of its random stream.
fn challenge() -> [u8; 16] {
    use rand_core::{RngCore, SeedableRng};
    let mut challenge = [0; 16];
    rand_chacha::ChaCha20Rng::from_seed(SEED).fill_bytes(&mut challenge);
    challenge
}

fn new_connection(config: Arc<ServerConfig>) -> ServerConnection {
    ServerConnection::new(config, Transport::Tcp, SEED)
}

fn config(password: Option<&str>, view_only: Option<&str>) -> Arc<ServerConfig> {
    Arc::new(ServerConfig {
        name: "test desk".into(),
        credentials: security::Credentials {
            password: password.map(|p| p.as_bytes().to_vec()),
            view_only_password: view_only.map(|p| p.as_bytes().to_vec()),
            accounts: false,
        },
        max_cut_text: 16,
        ..ServerConfig::default()
    })
}

fn take_output(conn: &mut ServerConnection) -> Vec<u8> {
    let out = conn.pending_output().to_vec();
    conn.advance_output(out.len());
    out
}

fn be32(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// Runs the handshake up to and including ClientInit for `version`, answering VncAuth with
/// `password` when challenged. Returns the connection and what the server sent after its version.
fn handshake(
    cfg: Arc<ServerConfig>,
    version: &[u8],
    password: Option<&str>,
) -> (ServerConnection, Vec<u8>, Result<(), ProtocolError>) {
    let mut conn = new_connection(cfg);
    assert_eq!(take_output(&mut conn), b"RFB 003.008\n");
    conn.read(version).unwrap();
    let mut sent = take_output(&mut conn);
    let minor = conn.version().1;
    let offered = if minor == 3 { sent[3] } else { sent[1] };
    if minor != 3 {
        conn.read(&[offered]).unwrap();
        sent.extend(take_output(&mut conn));
    }
    let mut result = Ok(());
    if offered == security::VNC_AUTH {
        let response = vnc_auth::expected_response(password.unwrap_or("").as_bytes(), &challenge());
        result = conn.read(&response);
        sent.extend(take_output(&mut conn));
    }
    if result.is_ok() {
        conn.read(&[1]).unwrap();
    }
    (conn, sent, result)
}

#[test]
fn none_per_version() {
    // 3.3: U32 type 1, no SecurityResult.
    let (mut conn, sent, _) = handshake(config(None, None), b"RFB 003.003\n", None);
    assert_eq!(sent, be32(1));
    assert_eq!(conn.poll_event(), Some(Event::ClientInit { shared: true, access: Access::Full }));
    // 3.7: list [1], no SecurityResult.
    let (_, sent, _) = handshake(config(None, None), b"RFB 003.007\n", None);
    assert_eq!(sent, [1, 1]);
    // 3.8: list [1] then SecurityResult OK.
    let (_, sent, _) = handshake(config(None, None), b"RFB 003.008\n", None);
    assert_eq!(sent, [vec![1, 1], be32(0)].concat());
}

#[test]
fn vnc_auth_per_version() {
    for (version, prefix) in
        [(&b"RFB 003.003\n"[..], be32(2)), (b"RFB 003.007\n", vec![1, 2]), (b"RFB 003.008\n", vec![1, 2])]
    {
        let (mut conn, sent, result) = handshake(config(Some("secret"), None), version, Some("secret"));
        result.unwrap();
        assert_eq!(sent, [prefix, challenge().to_vec(), be32(0)].concat());
        assert_eq!(conn.poll_event(), Some(Event::ClientInit { shared: true, access: Access::Full }));
    }
}

#[test]
fn bad_password_per_version() {
    let reason = b"Authentication failed";
    for (version, tail) in [
        (&b"RFB 003.003\n"[..], be32(1)),
        (b"RFB 003.007\n", be32(1)),
        (b"RFB 003.008\n", [be32(1), be32(reason.len() as u32), reason.to_vec()].concat()),
    ] {
        let (conn, sent, result) = handshake(config(Some("secret"), None), version, Some("wrong"));
        assert!(matches!(result, Err(ProtocolError::AuthenticationFailed)));
        assert!(sent.ends_with(&tail), "{version:?}: {sent:?}");
        assert!(conn.is_closed());
    }
}

#[test]
fn view_only_password_gives_view_only_access() {
    let cfg = config(Some("full"), Some("look"));
    let (mut conn, _, result) = handshake(cfg.clone(), b"RFB 003.008\n", Some("look"));
    result.unwrap();
    assert_eq!(conn.poll_event(), Some(Event::ClientInit { shared: true, access: Access::ViewOnly }));
    assert_input_dropped(&mut conn);
    // A view-only password alone also turns on VNC Authentication.
    let (_, _, result) = handshake(config(None, Some("look")), b"RFB 003.008\n", Some("look"));
    result.unwrap();
}

#[test]
fn odd_versions_map_like_tigervnc() {
    for (version, minor) in
        [(&b"RFB 003.889\n"[..], 8), (b"RFB 003.005\n", 3), (b"RFB 003.006\n", 3), (b"RFB 003.010\n", 8)]
    {
        let (conn, _, _) = handshake(config(None, None), version, None);
        assert_eq!(conn.version(), (3, minor));
    }
    let mut conn = new_connection(config(None, None));
    assert!(matches!(conn.read(b"RFB 004.000\n"), Err(ProtocolError::UnsupportedMajorVersion(4))));
    let mut conn = new_connection(config(None, None));
    assert!(matches!(conn.read(b"GET / HTTP/1"), Err(ProtocolError::BadVersion(_))));
}

#[test]
fn security_type_not_offered_closes() {
    let mut conn = new_connection(config(Some("x"), None));
    conn.read(b"RFB 003.008\n").unwrap();
    assert!(matches!(conn.read(&[1]), Err(ProtocolError::SecurityTypeNotOffered(1))));
    assert!(conn.is_closed());
}

#[test]
fn handshake_split_at_every_byte() {
    let mut wire = b"RFB 003.008\n".to_vec();
    wire.push(2);
    wire.extend(vnc_auth::expected_response(b"pw", &challenge()));
    wire.push(0);
    let mut conn = new_connection(config(Some("pw"), None));
    for byte in &wire {
        conn.read(std::slice::from_ref(byte)).unwrap();
    }
    assert_eq!(conn.poll_event(), Some(Event::ClientInit { shared: false, access: Access::Full }));
}

/// A view-only connection's key, pointer and clipboard messages produce no events: only the
/// update request behind them does.
fn assert_input_dropped(conn: &mut ServerConnection) {
    conn.accept(8, 8).unwrap();
    while conn.poll_event().is_some() {}
    conn.read(&[4, 1, 0, 0, 0, 0, 0, 0x61]).unwrap();
    conn.read(&[5, 1, 0, 1, 0, 1]).unwrap();
    conn.read(&[&[6, 0, 0, 0][..], &be32(2), b"hi"].concat()).unwrap();
    conn.read(&[3, 0, 0, 0, 0, 0, 0, 8, 0, 8]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::UpdateRequest { incremental: false, rect: Rect::new(0, 0, 8, 8) }));
    assert_eq!(conn.poll_event(), None, "a view-only viewer's input is dropped");
}

fn tls_config(password: Option<&str>, accounts: bool, require_encryption: bool) -> Arc<ServerConfig> {
    Arc::new(ServerConfig {
        credentials: security::Credentials {
            password: password.map(|p| p.as_bytes().to_vec()),
            view_only_password: None,
            accounts,
        },
        tls: true,
        require_encryption,
        ..ServerConfig::default()
    })
}

fn subtype_list(subtypes: &[u32]) -> Vec<u8> {
    let mut list = vec![0, subtypes.len() as u8];
    subtypes.iter().for_each(|subtype| list.extend(subtype.to_be_bytes()));
    list
}

#[test]
fn vencrypt_x509_vnc_runs_vnc_auth_inside_tls() {
    let mut conn = new_connection(tls_config(Some("pw"), false, false));
    take_output(&mut conn);
    conn.read(b"RFB 003.008\n").unwrap();
    assert_eq!(take_output(&mut conn), [2, security::VENCRYPT, security::VNC_AUTH]);
    conn.read(&[security::VENCRYPT]).unwrap();
    assert_eq!(take_output(&mut conn), vencrypt::VERSION);
    conn.read(&vencrypt::VERSION).unwrap();
    assert_eq!(take_output(&mut conn), subtype_list(&[vencrypt::X509_VNC, 2]));
    // The ClientHello may arrive right behind the choice: it is handed back, not parsed.
    let mut choice = vencrypt::X509_VNC.to_be_bytes().to_vec();
    choice.extend([0x16, 3, 1]);
    conn.read(&choice).unwrap();
    assert_eq!(take_output(&mut conn), [vencrypt::TLS_READY]);
    assert!(conn.tls_requested());
    assert_eq!(conn.start_tls().unwrap(), [0x16, 3, 1]);
    assert_eq!(take_output(&mut conn), challenge(), "the challenge goes out inside TLS");
    conn.read(&vnc_auth::expected_response(b"pw", &challenge())).unwrap();
    assert_eq!(take_output(&mut conn), be32(0));
    conn.read(&[1]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::ClientInit { shared: true, access: Access::Full }));
    assert_eq!(conn.security(), "VeNCrypt X509Vnc");
}

#[test]
fn plain_login_waits_for_the_callers_verdict() {
    let login = |verdict: Option<Access>| {
        let mut conn = ServerConnection::new(tls_config(None, true, true), Transport::Tls, SEED);
        take_output(&mut conn);
        let mut wire = b"RFB 003.008\n".to_vec();
        wire.push(security::VENCRYPT);
        wire.extend(vencrypt::VERSION);
        wire.extend(vencrypt::PLAIN.to_be_bytes());
        wire.extend([be32(5), be32(6)].concat());
        wire.extend(b"admins3cret");
        wire.push(1); // ClientInit, sent before the verdict
        for byte in &wire {
            conn.read(std::slice::from_ref(byte)).unwrap();
        }
        let sent = take_output(&mut conn);
        assert_eq!(
            sent,
            [vec![1, security::VENCRYPT], vencrypt::VERSION.to_vec(), subtype_list(&[vencrypt::PLAIN])].concat()
        );
        let expected = security::plain::Login { username: "admin".into(), password: b"s3cret".to_vec() };
        assert_eq!(conn.poll_event(), Some(Event::Credentials(expected)));
        assert_eq!(conn.poll_event(), None, "nothing happens before the verdict");
        let result = conn.login_checked(verdict);
        (conn, result)
    };
    let (mut conn, result) = login(Some(Access::ViewOnly));
    result.unwrap();
    assert_eq!(take_output(&mut conn), be32(0));
    assert_eq!(conn.poll_event(), Some(Event::ClientInit { shared: true, access: Access::ViewOnly }));
    assert_eq!((conn.security(), conn.username()), ("VeNCrypt Plain", Some("admin")));
    assert_input_dropped(&mut conn);

    let (mut conn, result) = login(None);
    assert!(matches!(result, Err(ProtocolError::AuthenticationFailed)));
    let reason = b"Authentication failed";
    assert_eq!(take_output(&mut conn), [be32(1), be32(reason.len() as u32), reason.to_vec()].concat());
    assert!(conn.is_closed());
}

#[test]
fn requiring_encryption_refuses_plain_connections_with_a_reason() {
    let reason = security::offer::NOTHING_ENCRYPTED.as_bytes();
    let mut conn = new_connection(tls_config(Some("pw"), false, true));
    take_output(&mut conn);
    assert!(matches!(conn.read(b"RFB 003.003\n"), Err(ProtocolError::NoSecurityType(_))));
    assert_eq!(take_output(&mut conn), [be32(0), be32(reason.len() as u32), reason.to_vec()].concat());

    let mut conn =
        ServerConnection::new(tls_config(Some("pw"), false, true), Transport::WebSocket { web_crypto: true }, SEED);
    take_output(&mut conn);
    assert!(conn.read(b"RFB 003.008\n").is_err());
    assert_eq!(take_output(&mut conn), [vec![0], be32(reason.len() as u32), reason.to_vec()].concat());

    // Over TCP only VeNCrypt is left, and inside it only TLS.
    let mut conn = new_connection(tls_config(Some("pw"), false, true));
    take_output(&mut conn);
    conn.read(b"RFB 003.008\n").unwrap();
    assert_eq!(take_output(&mut conn), [1, security::VENCRYPT]);
    conn.read(&[security::VENCRYPT, 0, 2]).unwrap();
    assert_eq!(take_output(&mut conn)[2..], subtype_list(&[vencrypt::X509_VNC]));
    assert!(matches!(conn.read(&2u32.to_be_bytes()), Err(ProtocolError::SubtypeNotOffered(2))));
}

#[test]
fn vencrypt_version_other_than_0_2_is_refused() {
    let mut conn = new_connection(tls_config(None, false, false));
    take_output(&mut conn);
    conn.read(b"RFB 003.008\n").unwrap();
    take_output(&mut conn);
    conn.read(&[security::VENCRYPT]).unwrap();
    take_output(&mut conn);
    assert!(matches!(conn.read(&[0, 1]), Err(ProtocolError::UnsupportedVeNCryptVersion(0, 1))));
    assert_eq!(take_output(&mut conn), [vencrypt::VERSION_REFUSED]);
    assert!(matches!(conn.start_tls(), Err(ProtocolError::Closed | ProtocolError::NotReady)));
}

/// An RSA-AES login through the whole connection, with the spec-written test client of
/// `rsa_aes.rs`, up to the server reading the credentials and ClientInit (sent in one read:
/// sealed for RA2, ClientInit plain for RA2ne). Returns the connection, the client and what
/// that read returned.
fn rsa_aes_login(
    kind: u8,
    accounts: bool,
    user: &[u8],
    password: &[u8],
) -> (ServerConnection, security::rsa_aes::tests::Client, Result<(), ProtocolError>) {
    use crate::security::rsa_aes::tests::{Client, TestRng, client_1024, server_2048};
    use crate::security::rsa_aes::{Ra2Kind, ServerKey};
    let config = Arc::new(ServerConfig {
        credentials: security::Credentials { password: Some(b"pw".to_vec()), view_only_password: None, accounts },
        rsa_key: Some(ServerKey::new(server_2048().clone()).unwrap()),
        ..ServerConfig::default()
    });
    let mut conn = new_connection(config);
    take_output(&mut conn);
    conn.read(b"RFB 003.008\n").unwrap();
    let offered = take_output(&mut conn);
    assert!(offered[1..].contains(&kind), "{offered:?}");
    conn.read(&[kind]).unwrap();
    let server_key_message = take_output(&mut conn);
    let ra2 = Ra2Kind::from_type(kind).unwrap();
    let mut rng = TestRng::new(9);
    let (mut client, flight) = Client::hello(ra2, client_1024(), &server_key_message, &mut rng);
    conn.read(&flight).unwrap();
    client.inbox.extend(take_output(&mut conn));
    let hash = client.read_server_random();
    client.check_server_hash();
    conn.read(&hash).unwrap();
    client.inbox.extend(take_output(&mut conn));
    assert_eq!(client.read_subtype(), if accounts { 1 } else { 2 });
    let mut wire = client.seal(&Client::credentials_plain(user, password));
    if ra2.encrypts_session() {
        wire.extend(client.seal(&[1]));
    } else {
        wire.push(1);
    }
    let result = conn.read(&wire);
    (conn, client, result)
}

#[test]
fn rsa_aes_with_the_vnc_password_seals_the_whole_session() {
    let (mut conn, mut client, result) = rsa_aes_login(security::RA2, false, b"", b"pw");
    result.unwrap();
    client.inbox.extend(take_output(&mut conn));
    assert_eq!(client.read_plain(4), be32(0), "the SecurityResult is sealed");
    assert_eq!(conn.poll_event(), Some(Event::ClientInit { shared: true, access: Access::Full }));
    assert_eq!(conn.security(), "RSA-AES (RA2)");
    conn.accept(4, 4).unwrap();
    client.inbox.extend(take_output(&mut conn));
    assert_eq!(client.read_plain(4), [0, 4, 0, 4], "ServerInit, sealed");
}

#[test]
fn rsa_aes_ne_with_an_account_leaves_the_session_plain() {
    let (mut conn, _, result) = rsa_aes_login(security::RA2NE, true, b"admin", b"secret phrase");
    result.unwrap();
    let expected = security::plain::Login { username: "admin".into(), password: b"secret phrase".to_vec() };
    assert_eq!(conn.poll_event(), Some(Event::Credentials(expected)));
    conn.login_checked(Some(Access::ViewOnly)).unwrap();
    assert_eq!(take_output(&mut conn), be32(0), "the SecurityResult is plain");
    assert_eq!(conn.poll_event(), Some(Event::ClientInit { shared: true, access: Access::ViewOnly }));
    assert_eq!(conn.username(), Some("admin"));
    conn.accept(4, 4).unwrap();
    assert_eq!(&take_output(&mut conn)[..4], &[0, 4, 0, 4], "plain ServerInit");
    let (mut conn, _, result) = rsa_aes_login(security::RA2NE, true, b"admin", b"secret phrase");
    result.unwrap();
    while let Some(event) = conn.poll_event() {
        if matches!(event, Event::Credentials(_)) {
            conn.login_checked(Some(Access::ViewOnly)).unwrap();
        }
    }
    assert_input_dropped(&mut conn);
}

#[test]
fn rsa_aes_wrong_password_fails_with_a_sealed_reason() {
    let (mut conn, mut client, result) = rsa_aes_login(security::RA2_256, false, b"", b"pw-but-longer");
    assert!(matches!(result, Err(ProtocolError::AuthenticationFailed)), "the whole password counts: {result:?}");
    client.inbox.extend(take_output(&mut conn));
    assert_eq!(client.read_plain(4), be32(1));
    let reason = b"Authentication failed";
    assert_eq!(client.read_plain(4 + reason.len()), [be32(reason.len() as u32), reason.to_vec()].concat());
    assert!(conn.is_closed());
}

fn ready(width: u16, height: u16) -> ServerConnection {
    let (mut conn, _, result) = handshake(config(None, None), b"RFB 003.008\n", None);
    result.unwrap();
    assert!(matches!(conn.poll_event(), Some(Event::ClientInit { .. })));
    conn.accept(width, height).unwrap();
    conn
}

#[test]
fn server_init_and_raw_update() {
    let mut conn = ready(2, 1);
    let init = take_output(&mut conn);
    assert_eq!(&init[..4], &[0, 2, 0, 1]);
    assert_eq!(&init[4..20], &PixelFormat::NATIVE.to_bytes());
    assert_eq!(&init[20..], &[&be32(9)[..], b"test desk"].concat());

    let mut frame = Frame::new(2, 1);
    frame.fill_rect(&Rect::new(1, 0, 1, 1), 0x00112233);
    // Without LastRect the count is exact; rects are cropped to the frame.
    conn.write_update(&frame, &[Rect::new(0, 0, 5, 5)]);
    let expected =
        [vec![0, 0, 0, 1], vec![0, 0, 0, 0, 0, 2, 0, 1], be32(0), vec![0, 0, 0, 0, 0x33, 0x22, 0x11, 0]].concat();
    assert_eq!(take_output(&mut conn), expected);
}

#[test]
fn last_rect_and_qemu_ack() {
    let mut conn = ready(1, 1);
    take_output(&mut conn);
    // SetEncodings [Raw, LastRect, QEMU ext key].
    conn.read(&[[2, 0, 0, 3].as_slice(), &be32(0), &(-224i32).to_be_bytes(), &(-258i32).to_be_bytes()].concat())
        .unwrap();
    assert_eq!(conn.poll_event(), Some(Event::EncodingsChanged));
    // QEMU key events are a protocol error until the ack went out.
    assert!(conn.has_pending_pseudo_rects());
    conn.write_update(&Frame::new(1, 1), &[]);
    let out = take_output(&mut conn);
    let expected = [
        vec![0, 0, 0xff, 0xff],
        [vec![0; 8], (-258i32).to_be_bytes().to_vec()].concat(),
        [vec![0; 8], (-224i32).to_be_bytes().to_vec()].concat(),
    ]
    .concat();
    assert_eq!(out, expected);
    assert!(!conn.has_pending_pseudo_rects());
    conn.read(&[255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::QemuKey { down: true, keysym: 0x61, keycode: 0x1e }));
}

#[test]
fn qemu_key_event_before_ack_is_an_error() {
    let mut conn = ready(1, 1);
    assert!(matches!(conn.read(&[255, 0]), Err(ProtocolError::QemuKeyEventNotAnnounced)));
}

#[test]
fn colour_map_request_gets_bgr233() {
    let mut conn = ready(1, 1);
    take_output(&mut conn);
    let mut colour_map = PixelFormat::BGR233;
    colour_map.true_colour = false;
    conn.read(&[[0, 0, 0, 0].as_slice(), &colour_map.to_bytes()].concat()).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::PixelFormatChanged(PixelFormat::BGR233)));
    let out = take_output(&mut conn);
    assert_eq!(&out[..6], &[1, 0, 0, 0, 1, 0], "SetColourMapEntries, first 0, 256 colours");
    assert_eq!(out.len(), 6 + 256 * 6);
    let mut frame = Frame::new(1, 1);
    frame.fill_rect(&frame.bounds(), 0x00ffffff);
    conn.write_update(&frame, &[frame.bounds()]);
    assert_eq!(take_output(&mut conn).last(), Some(&0xff));
}

#[test]
fn a_client_that_never_reads_cannot_pile_up_replies() {
    let mut conn = ready(1, 1);
    take_output(&mut conn);
    let mut colour_map = PixelFormat::BGR233;
    colour_map.true_colour = false;
    let message = [[0, 0, 0, 0].as_slice(), &colour_map.to_bytes()].concat();
    let flood = message.repeat(10_000);
    let mut fed = 0;
    // The caller reads only while the connection wants input, in chunks like a socket gives
    // (whole messages, so that the key below is a message of its own).
    for chunk in flood.chunks(4000) {
        if !conn.wants_input() {
            break;
        }
        conn.read(chunk).unwrap();
        fed += chunk.len();
    }
    let queued = conn.pending_output().len();
    assert!(queued < 2 * 64 * 1024, "{queued} bytes of replies queued");
    assert!(fed < flood.len() / 2, "reading stopped: {fed} bytes taken");
    // A key still arrives behind the held messages once the client reads its replies.
    conn.read(&[4, 1, 0, 0, 0, 0, 0, 0x61]).unwrap();
    while conn.poll_event().is_some() {}
    let mut got_key = false;
    for _ in 0..100 {
        take_output(&mut conn);
        conn.resume().unwrap();
        got_key |= std::iter::from_fn(|| conn.poll_event()).any(|e| e == Event::Key { down: true, keysym: 0x61 });
        if got_key {
            break;
        }
    }
    assert!(got_key, "the held messages went on once the output was taken");
}

#[test]
fn fence_requests_are_held_back_too() {
    let mut conn = ready(1, 1);
    conn.read(&[2, 0, 0, 1, 0xff, 0xff, 0xfe, 0xc8]).unwrap(); // SetEncodings [Fence]
    take_output(&mut conn);
    let fence = [&[248, 0, 0, 0][..], &be32(0x8000_0000), &[64], &[7; 64]].concat();
    for _ in 0..5000 {
        if conn.wants_input() {
            conn.read(&fence).unwrap();
        }
    }
    assert!(conn.pending_output().len() < 2 * 64 * 1024);
}

#[test]
fn invalid_pixel_format_is_an_error() {
    let mut conn = ready(1, 1);
    let mut bad = PixelFormat::NATIVE;
    bad.bits_per_pixel = 24;
    assert!(matches!(
        conn.read(&[[0, 0, 0, 0].as_slice(), &bad.to_bytes()].concat()),
        Err(ProtocolError::InvalidPixelFormat(_))
    ));
}

#[test]
fn oversized_cut_text_is_skipped_without_buffering() {
    let mut conn = ready(4, 4);
    // 40 bytes announced (cap is 16), sent in pieces, followed by a key event.
    conn.read(&[6, 0, 0, 0, 0, 0, 0, 40, b'x', b'x']).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::CutTextSkipped { len: 40, extended: false }));
    conn.read(&[b'x'; 30]).unwrap();
    assert!(conn.input.len() <= 1, "skipped text is not kept");
    conn.read(&[[b'x'; 8].as_slice(), &[4, 1, 0, 0, 0, 0, 0, 0x62]].concat()).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::Key { down: true, keysym: 0x62 }));
    // Extended clipboard (negative length) is skipped the same way.
    conn.read(&[6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe, 1, 2, 4, 0, 0, 0, 0, 0, 0, 0x63]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::CutTextSkipped { len: 2, extended: true }));
    assert_eq!(conn.poll_event(), Some(Event::Key { down: false, keysym: 0x63 }));
}

#[test]
fn update_request_is_cropped_and_resize_needs_desktop_size() {
    let mut conn = ready(100, 50);
    conn.read(&[3, 1, 0, 90, 0, 40, 0, 50, 0, 50]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::UpdateRequest { incremental: true, rect: Rect::new(90, 40, 10, 10) }));
    assert!(!conn.write_resize(200, 100), "no DesktopSize listed");
    conn.read(&[[2, 0, 0, 1].as_slice(), &(-223i32).to_be_bytes()].concat()).unwrap();
    take_output(&mut conn);
    assert!(conn.write_resize(200, 100));
    assert_eq!(conn.framebuffer_size(), (200, 100));
    assert_eq!(
        take_output(&mut conn),
        [vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 200, 0, 100], (-223i32).to_be_bytes().to_vec()].concat()
    );
}

#[test]
fn garbage_closes_connection() {
    let mut conn = ready(1, 1);
    assert!(matches!(conn.read(&[200]), Err(ProtocolError::UnknownMessageType(200))));
    assert!(matches!(conn.read(&[0]), Err(ProtocolError::Closed)));
}

fn set_encodings(conn: &mut ServerConnection, list: &[i32]) {
    let mut message = vec![2, 0];
    message.extend_from_slice(&(list.len() as u16).to_be_bytes());
    for e in list {
        message.extend_from_slice(&e.to_be_bytes());
    }
    conn.read(&message).unwrap();
}

#[test]
fn continuous_updates_need_fences_and_are_confirmed_once() {
    let mut conn = ready(10, 10);
    take_output(&mut conn);
    set_encodings(&mut conn, &[-313]);
    assert_eq!(take_output(&mut conn), [] as [u8; 0], "no CU without Fence");
    assert!(matches!(conn.read(&[150, 1, 0, 0, 0, 0, 0, 10, 0, 10]), Err(ProtocolError::UnknownMessageType(150))));

    let mut conn = ready(10, 10);
    take_output(&mut conn);
    set_encodings(&mut conn, &[-313, -312]);
    // Our first fence (a request, payload [0]) then EndOfContinuousUpdates as the confirmation.
    assert_eq!(take_output(&mut conn), [248, 0, 0, 0, 0x80, 0, 0, 0, 1, 0, 150]);
    set_encodings(&mut conn, &[-313, -312]);
    assert_eq!(take_output(&mut conn), [] as [u8; 0], "confirmed only once");
    while conn.poll_event().is_some() {}
    conn.read(&[150, 1, 0, 0, 0, 0, 0, 20, 0, 20]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::ContinuousUpdates { enable: true, rect: Rect::new(0, 0, 10, 10) }));
    conn.read(&[150, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(take_output(&mut conn), [150], "disable is answered with EndOfContinuousUpdates");
}

#[test]
fn fences_are_answered_and_responses_reported() {
    let mut conn = ready(10, 10);
    set_encodings(&mut conn, &[-312]);
    take_output(&mut conn);
    while conn.poll_event().is_some() {}
    // A client request with BlockBefore and SyncNext: the answer keeps BlockBefore and waits
    // until the next message has been handled.
    conn.read(&[248, 0, 0, 0, 0x80, 0, 0, 0x05, 1, 9]).unwrap();
    assert_eq!(take_output(&mut conn), [] as [u8; 0]);
    conn.read(&[3, 0, 0, 0, 0, 0, 0, 1, 0, 1]).unwrap();
    assert_eq!(take_output(&mut conn), [248, 0, 0, 0, 0, 0, 0, 1, 1, 9]);
    // A plain request is answered at once, without the Request bit.
    conn.read(&[248, 0, 0, 0, 0x80, 0, 0, 0x02, 0]).unwrap();
    assert_eq!(take_output(&mut conn), [248, 0, 0, 0, 0, 0, 0, 2, 0]);
    // A message without the Request bit answers one of ours.
    while conn.poll_event().is_some() {}
    assert!(conn.write_fence_request(&[7]));
    assert_eq!(take_output(&mut conn), [248, 0, 0, 0, 0x80, 0, 0, 1, 1, 7]);
    conn.read(&[248, 0, 0, 0, 0, 0, 0, 1, 1, 7]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::FenceResponse { payload: vec![7] }));
}

#[test]
fn extended_desktop_size_layout_and_set_desktop_size() {
    let mut conn = ready(640, 480);
    take_output(&mut conn);
    assert!(matches!(conn.read(&[251]), Err(ProtocolError::UnknownMessageType(251))), "only after listing -308");
    let mut conn = ready(640, 480);
    set_encodings(&mut conn, &[-308, -223]);
    take_output(&mut conn);
    while conn.poll_event().is_some() {}
    conn.read(&[[251, 0, 0x07, 0x80, 0x04, 0x38, 1, 0].as_slice(), &[0; 16]].concat()).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::SetDesktopSize { width: 1920, height: 1080 }));
    assert!(conn.write_screen_layout(desktop_size::REASON_THIS_CLIENT, desktop_size::RESULT_PROHIBITED));
    let out = take_output(&mut conn);
    assert_eq!(&out[..16], &[0, 0, 0, 1, 0, 1, 0, 1, 0x02, 0x80, 0x01, 0xe0, 0xff, 0xff, 0xfe, 0xcc]);
    // A resize goes out as ExtendedDesktopSize (reason server) when listed.
    assert!(conn.write_resize(800, 600));
    let out = take_output(&mut conn);
    let expected = [
        vec![0, 0, 0, 1, 0, 0, 0, 0, 0x03, 0x20, 0x02, 0x58, 0xff, 0xff, 0xfe, 0xcc],
        // One screen, id 1 (libvncclient ignores id 0), at 0,0, 800x600, no flags.
        vec![1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x03, 0x20, 0x02, 0x58, 0, 0, 0, 0],
    ]
    .concat();
    assert_eq!(out, expected);
    assert_eq!(conn.framebuffer_size(), (800, 600));
}

#[test]
fn jpeg_pass_through_only_to_tight_clients_with_a_quality_level() {
    let mut conn = ready(64, 32);
    set_encodings(&mut conn, &[7, -224]);
    assert!(conn.jpeg_passthrough(64, true).is_none(), "no quality level listed");
    set_encodings(&mut conn, &[16, -24]);
    assert!(conn.jpeg_passthrough(64, true).is_none(), "prefers ZRLE");
    set_encodings(&mut conn, &[7, -24]);
    assert!(conn.jpeg_passthrough(64, true).is_some());
    assert!(conn.jpeg_passthrough(2049, true).is_none(), "wider than a Tight rect");
    take_output(&mut conn);
    let jpeg = [0xff, 0xd8, 1, 2, 3, 0xff, 0xd9];
    conn.write_jpeg_update(&[(Rect::new(0, 0, 64, 32), &jpeg)], true).unwrap();
    let out = take_output(&mut conn);
    let expected =
        [vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 64, 0, 32, 0, 0, 0, 7, 0x90, jpeg.len() as u8], jpeg.to_vec()].concat();
    assert_eq!(out, expected);
    // Two crops in one update.
    conn.write_jpeg_update(&[(Rect::new(0, 0, 16, 8), &jpeg), (Rect::new(32, 16, 16, 8), &jpeg)], true).unwrap();
    let out = take_output(&mut conn);
    let rect =
        |x: u8, y: u8| [vec![0, x, 0, y, 0, 16, 0, 8, 0, 0, 0, 7, 0x90, jpeg.len() as u8], jpeg.to_vec()].concat();
    assert_eq!(out, [vec![0, 0, 0, 2], rect(0, 0), rect(32, 16)].concat());
    // A rect too wide for Tight: nothing is written.
    assert!(
        conn.write_jpeg_update(&[(Rect::new(0, 0, 16, 8), &jpeg), (Rect::new(0, 0, 2049, 8), &jpeg)], true).is_err()
    );
    assert!(take_output(&mut conn).is_empty());
}

#[test]
fn jpeg_pass_through_as_encoding_21() {
    let mut conn = ready(4096, 32);
    let jpeg = [0xff, 0xd8, 1, 2, 3, 0xff, 0xd9];
    // RealVNC-like: JPEG first. Any width, even past Tight's 2048.
    set_encodings(&mut conn, &[21, 16, 0]);
    assert_eq!((conn.jpeg_passthrough(64, true), conn.jpeg_passthrough(4096, true)), (Some(21), Some(21)));
    // Tight with a quality level first: Tight up to 2048 wide, 21 beyond when listed.
    set_encodings(&mut conn, &[7, 16, 21, -24]);
    assert_eq!((conn.jpeg_passthrough(2048, true), conn.jpeg_passthrough(2049, true)), (Some(7), Some(21)));
    set_encodings(&mut conn, &[7, -24]);
    assert_eq!(conn.jpeg_passthrough(2049, true), None);
    // Listed behind a lossless encoding, and Tight without a quality level: 21 (the source's
    // JPEG is what such a viewer would get decoded anyway).
    set_encodings(&mut conn, &[16, 21]);
    assert_eq!(conn.jpeg_passthrough(64, true), Some(21));
    set_encodings(&mut conn, &[7, 21]);
    assert_eq!(conn.jpeg_passthrough(64, true), Some(21));
    // Not baseline (SOF1): no JPEG (21), while Tight JPEG still takes it.
    assert_eq!(conn.jpeg_passthrough(64, false), None);
    set_encodings(&mut conn, &[7, 21, -24]);
    assert_eq!((conn.jpeg_passthrough(64, false), conn.jpeg_passthrough(2049, false)), (Some(7), None));
    set_encodings(&mut conn, &[7, 21]);
    take_output(&mut conn);
    conn.write_jpeg_update(&[(Rect::new(0, 0, 4096, 32), &jpeg)], true).unwrap();
    let expected = [vec![0, 0, 0, 1, 0, 0, 0, 0, 0x10, 0, 0, 32, 0, 0, 0, 21], jpeg.to_vec()].concat();
    assert_eq!(take_output(&mut conn), expected);
    // Not a complete JPEG: nothing is written.
    assert_eq!(
        conn.write_jpeg_update(&[(Rect::new(0, 0, 16, 8), &jpeg), (Rect::new(0, 0, 16, 8), &jpeg[..5])], true),
        Err(PassthroughError::NotStandalone)
    );
    assert!(take_output(&mut conn).is_empty());
    // 8 bpp: no JPEG at all.
    set_pixel_format(&mut conn, PixelFormat::BGR233);
    assert_eq!(conn.jpeg_passthrough(64, true), None);
    assert_eq!(conn.write_jpeg_update(&[(Rect::new(0, 0, 16, 8), &jpeg)], true), Err(PassthroughError::NotTaken(16)));
}

fn set_pixel_format(conn: &mut ServerConnection, format: PixelFormat) {
    conn.read(&[vec![0, 0, 0, 0], format.to_bytes().to_vec()].concat()).unwrap();
}

/// The encoding of the first pixel rect of the update in `out` (written without LastRect).
fn first_rect_encoding(out: &[u8]) -> i32 {
    i32::from_be_bytes([out[12], out[13], out[14], out[15]])
}

/// Sends all of `frame` as one update (lossless: as the refresh) and returns the rects it
/// reported as sent lossily; the output is dropped.
fn lossy_rects(conn: &mut ServerConnection, frame: &Frame, lossless: bool) -> Vec<Rect> {
    let job = conn.start_update(frame.bounds(), &[frame.bounds()], lossless).expect("a job");
    let done = job.encode(frame, None, &crate::encoders::workers::Serial);
    let lossy = done.lossy().to_vec();
    conn.complete_update(done);
    take_output(conn);
    lossy
}

#[test]
fn jpeg_21_is_lossy_and_refreshed_with_the_lossless_fallback() {
    let mut conn = ready(64, 64);
    let mut frame = Frame::new(64, 64);
    for y in 0..64 {
        for x in 0..64 {
            frame.fill_rect(&Rect::new(x, y, 1, 1), u32::from(x) * 0x0004_0000 + u32::from(y) * 0x0400);
        }
    }
    set_encodings(&mut conn, &[21, 16, 0]);
    assert_eq!(lossy_rects(&mut conn, &frame, false), [frame.bounds()], "JPEG needs no quality level");
    take_output(&mut conn);
    conn.write_update(&frame, &[frame.bounds()]);
    assert_eq!(first_rect_encoding(&take_output(&mut conn)), 21);
    conn.write_update_lossless(&frame, &[frame.bounds()]);
    assert_eq!(first_rect_encoding(&take_output(&mut conn)), 16, "ZRLE, the first lossless one listed");
    assert_eq!(conn.encodings().preferred, 21, "only that update");
    set_encodings(&mut conn, &[21]);
    take_output(&mut conn);
    conn.write_update_lossless(&frame, &[frame.bounds()]);
    assert_eq!(first_rect_encoding(&take_output(&mut conn)), 0, "Raw when nothing lossless is listed");
    // Tight with a quality level stays lossy, lossless without; ZRLE is never lossy.
    set_encodings(&mut conn, &[7, 21, -24]);
    assert_eq!(lossy_rects(&mut conn, &frame, false), [frame.bounds()]);
    set_encodings(&mut conn, &[7, 21]);
    assert_eq!(lossy_rects(&mut conn, &frame, false), []);
    set_encodings(&mut conn, &[16, 21, -24]);
    assert_eq!(lossy_rects(&mut conn, &frame, false), []);
    // Below 16 bpp a JPEG-preferring client gets its lossless fallback, and nothing is lossy.
    set_encodings(&mut conn, &[21, 5, 0]);
    set_pixel_format(&mut conn, PixelFormat::BGR233);
    assert_eq!(lossy_rects(&mut conn, &frame, false), []);
    take_output(&mut conn);
    conn.write_update(&frame, &[frame.bounds()]);
    assert_eq!(first_rect_encoding(&take_output(&mut conn)), 5, "Hextile");
}

#[test]
fn an_update_lists_the_rects_it_sent_as_jpeg() {
    // Left half flat with a few dark strokes (text-like), right half a gradient (photo-like).
    let mut frame = Frame::new(256, 128);
    frame.fill_rect(&Rect::new(0, 0, 128, 128), 0x00ff_ffff);
    for y in (4..128).step_by(8) {
        frame.fill_rect(&Rect::new(4, y, 100, 2), 0x0010_1010);
    }
    for y in 0..128 {
        for x in 128..256 {
            frame.fill_rect(&Rect::new(x, y, 1, 1), u32::from(x) * 0x0001_0000 + u32::from(y) * 0x0201);
        }
    }
    let photo = Rect::new(128, 0, 128, 128);
    let mut conn = ready(256, 128);
    let lossy = |conn: &mut ServerConnection, lossless: bool| lossy_rects(conn, &frame, lossless);
    // JPEG (21) then ZRLE: the photo half only.
    set_encodings(&mut conn, &[21, 16]);
    assert_eq!(lossy(&mut conn, false), [photo]);
    assert_eq!(lossy(&mut conn, true), [], "the refresh is lossless");
    // Tight with JPEG: its JPEG sub-rects, inside the photo half; the flat half goes as fills
    // and palettes.
    set_encodings(&mut conn, &[7, -24, -224]);
    let tight = lossy(&mut conn, false);
    assert!(!tight.is_empty());
    assert!(tight.iter().all(|r| r.intersect(&photo) == *r), "{tight:?}");
    // Lossless encodings send nothing lossy.
    set_encodings(&mut conn, &[16]);
    assert_eq!(lossy(&mut conn, false), []);
}

/// A FramebufferUpdate with no pixels, as written for `set_encodings` lists without LastRect:
/// the header with the exact count, then `rects`.
fn pseudo_update(rects: &[Vec<u8>]) -> Vec<u8> {
    [vec![0, 0, 0, rects.len() as u8], rects.concat()].concat()
}

fn qemu_led_rect(leds: u8) -> Vec<u8> {
    [vec![0; 8], (-261i32).to_be_bytes().to_vec(), vec![leds]].concat()
}

fn vmware_led_rect(leds: u8) -> Vec<u8> {
    [vec![0; 8], vec![0x57, 0x4d, 0x56, 0x68], be32(u32::from(leds))].concat()
}

/// Lets `conn` write an update with no pixels and returns what it wrote.
fn flush_update(conn: &mut ServerConnection) -> Vec<u8> {
    conn.write_update(&Frame::new(1, 1), &[]);
    take_output(conn)
}

#[test]
fn led_state_sent_once_per_change() {
    let mut conn = ready(1, 1);
    set_encodings(&mut conn, &[0, -261]);
    take_output(&mut conn);
    assert!(!conn.has_pending_pseudo_rects(), "state not known yet");
    conn.set_led_state(server::led::CAPS_LOCK);
    assert!(conn.has_pending_pseudo_rects());
    assert_eq!(flush_update(&mut conn), pseudo_update(&[qemu_led_rect(4)]));
    assert!(!conn.has_pending_pseudo_rects());
    // Only the latest of several changes goes out.
    conn.set_led_state(server::led::NUM_LOCK);
    conn.set_led_state(server::led::NUM_LOCK | server::led::SCROLL_LOCK);
    assert_eq!(flush_update(&mut conn), pseudo_update(&[qemu_led_rect(3)]));
    // Reserved bits are not a change.
    conn.set_led_state(0x80 | server::led::NUM_LOCK | server::led::SCROLL_LOCK);
    assert!(!conn.has_pending_pseudo_rects());
}

#[test]
fn led_state_not_resent_for_equal_state() {
    let mut conn = ready(1, 1);
    take_output(&mut conn);
    set_encodings(&mut conn, &[0, -261]);
    conn.set_led_state(2);
    assert_eq!(flush_update(&mut conn)[4..], qemu_led_rect(2));
    conn.set_led_state(2);
    assert!(!conn.has_pending_pseudo_rects());
    // Changed and changed back before an update: the client already shows it.
    conn.set_led_state(0);
    conn.set_led_state(2);
    assert!(!conn.has_pending_pseudo_rects());
    assert_eq!(flush_update(&mut conn), pseudo_update(&[]));
    // Listing it again is not a reason to resend what the client has.
    set_encodings(&mut conn, &[0, -261]);
    take_output(&mut conn);
    assert!(!conn.has_pending_pseudo_rects());
}

#[test]
fn led_state_u32_form_for_vmware_only_clients() {
    let mut conn = ready(1, 1);
    set_encodings(&mut conn, &[0, 0x574d5668]);
    take_output(&mut conn);
    conn.set_led_state(server::led::CAPS_LOCK | server::led::NUM_LOCK);
    assert_eq!(flush_update(&mut conn), pseudo_update(&[vmware_led_rect(6)]));
}

#[test]
fn led_state_u8_form_preferred_when_both_listed() {
    let mut conn = ready(1, 1);
    // TigerVNC's order: VMware's after QEMU's; either order gets the U8 form.
    for (list, leds) in [([-261, 0x574d5668], 1), ([0x574d5668, -261], 5)] {
        set_encodings(&mut conn, &list);
        take_output(&mut conn);
        conn.set_led_state(leds);
        assert_eq!(flush_update(&mut conn), pseudo_update(&[qemu_led_rect(leds)]));
    }
}

#[test]
fn led_state_not_sent_to_clients_that_did_not_list_it() {
    let mut conn = ready(1, 1);
    conn.set_led_state(server::led::CAPS_LOCK);
    assert!(!conn.has_pending_pseudo_rects());
    set_encodings(&mut conn, &[0, -258]);
    take_output(&mut conn);
    conn.set_led_state(server::led::NUM_LOCK);
    let ack = [vec![0; 8], (-258i32).to_be_bytes().to_vec()].concat();
    assert_eq!(flush_update(&mut conn), pseudo_update(&[ack]));
    assert!(!conn.has_pending_pseudo_rects());
}

#[test]
fn led_state_sent_when_first_listed_after_state_known() {
    let mut conn = ready(1, 1);
    conn.set_led_state(server::led::SCROLL_LOCK);
    set_encodings(&mut conn, &[0]);
    take_output(&mut conn);
    assert!(!conn.has_pending_pseudo_rects());
    // Listed with LastRect now: the LED rect comes before it and the count is open.
    set_encodings(&mut conn, &[0, -224, -261]);
    assert_eq!(take_output(&mut conn), [] as [u8; 0], "only inside a FramebufferUpdate");
    assert!(conn.has_pending_pseudo_rects());
    let last_rect = [vec![0; 8], (-224i32).to_be_bytes().to_vec()].concat();
    assert_eq!(flush_update(&mut conn), [vec![0, 0, 0xff, 0xff], qemu_led_rect(1), last_rect].concat());
}

#[test]
fn led_state_goes_before_pixels() {
    let mut conn = ready(1, 1);
    set_encodings(&mut conn, &[0, -261]);
    take_output(&mut conn);
    conn.set_led_state(server::led::CAPS_LOCK);
    let frame = Frame::new(1, 1);
    conn.write_update(&frame, &[frame.bounds()]);
    let out = take_output(&mut conn);
    assert_eq!(out[..4], [0, 0, 0, 2]);
    assert_eq!(out[4..17], qemu_led_rect(4));
    assert_eq!(out[17..29], [0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0], "then the Raw rect");
}

fn extended_mouse_ack() -> Vec<u8> {
    [vec![0; 8], (-316i32).to_be_bytes().to_vec()].concat()
}

#[test]
fn extended_mouse_buttons_ack_sent_once() {
    let mut conn = ready(1, 1);
    take_output(&mut conn);
    set_encodings(&mut conn, &[0, -316]);
    assert_eq!(take_output(&mut conn), [] as [u8; 0], "only inside a FramebufferUpdate");
    assert!(conn.has_pending_pseudo_rects());
    assert_eq!(flush_update(&mut conn), pseudo_update(&[extended_mouse_ack()]));
    assert!(!conn.has_pending_pseudo_rects());
    set_encodings(&mut conn, &[0]);
    set_encodings(&mut conn, &[0, -316]);
    assert!(!conn.has_pending_pseudo_rects(), "confirmed only once");
    assert_eq!(flush_update(&mut conn), pseudo_update(&[]));
}

#[test]
fn extended_pointer_decoded_only_after_ack() {
    let mut conn = ready(10, 10);
    take_output(&mut conn);
    // Never listed: bit 7 is back and the message is 6 bytes (the key event follows at once).
    conn.read(&[5, 0x81, 0, 1, 0, 2, 4, 1, 0, 0, 0, 0, 0, 0x61]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::Pointer { buttons: 0x81, x: 1, y: 2 }));
    assert_eq!(conn.poll_event(), Some(Event::Key { down: true, keysym: 0x61 }));
    // Listed but not yet confirmed: still the classic form.
    set_encodings(&mut conn, &[0, -316]);
    assert_eq!(conn.poll_event(), Some(Event::EncodingsChanged));
    conn.read(&[5, 0x80, 0, 3, 0, 4]).unwrap();
    assert_eq!(conn.poll_event(), Some(Event::Pointer { buttons: 0x80, x: 3, y: 4 }));
    assert_eq!(flush_update(&mut conn), pseudo_update(&[extended_mouse_ack()]));
    // Confirmed: marker plus extra byte, fed one byte at a time. Forward + left, then back.
    let wire = [[5, 0x81, 0, 5, 0, 6, 0x02].as_slice(), &[5, 0x80, 0, 7, 0, 8, 0x01], &[5, 0x04, 0, 9, 0, 9]].concat();
    for byte in &wire {
        conn.read(std::slice::from_ref(byte)).unwrap();
    }
    assert_eq!(conn.poll_event(), Some(Event::Pointer { buttons: 0x101, x: 5, y: 6 }));
    assert_eq!(conn.poll_event(), Some(Event::Pointer { buttons: 0x80, x: 7, y: 8 }));
    assert_eq!(conn.poll_event(), Some(Event::Pointer { buttons: 0x04, x: 9, y: 9 }));
    assert_eq!(conn.poll_event(), None);
}

/// One well-formed message of every client type a ready connection accepts, once the client has
/// listed what unlocks them (the SetEncodings comes first).
fn every_client_message() -> Vec<Vec<u8>> {
    let mut set_encodings = vec![2, 0, 0, 8];
    for encoding in [7i32, 16, 0, -258, -312, -313, -308, -316] {
        set_encodings.extend(encoding.to_be_bytes());
    }
    let mut colour_map = PixelFormat::BGR233;
    colour_map.true_colour = false;
    vec![
        set_encodings,
        [[0, 0, 0, 0].as_slice(), &colour_map.to_bytes()].concat(),
        [[0, 0, 0, 0].as_slice(), &PixelFormat::NATIVE.to_bytes()].concat(),
        vec![3, 1, 0, 0, 0, 0, 0, 64, 0, 48],
        vec![4, 1, 0, 0, 0, 0, 0, 0x61],
        vec![5, 1, 0, 10, 0, 10],
        [&[6, 0, 0, 0][..], &be32(3), b"abc"].concat(),
        vec![150, 1, 0, 0, 0, 0, 0, 64, 0, 48],
        [&[248, 0, 0, 0][..], &be32(0x8000_0000), &[4, 1, 2, 3, 4]].concat(),
        [&[251, 0][..], &[0, 64, 0, 48, 1, 0], &be32(1), &[0, 0, 0, 0, 0, 64, 0, 48], &be32(0)].concat(),
        [&[255, 0, 0, 1][..], &be32(0x61), &be32(0x1e)].concat(),
    ]
}

#[test]
fn random_and_mutated_input_never_panics_nor_grows_output() {
    let messages = every_client_message();
    let mut rng = fastrand::Rng::with_seed(0x6b766e63);
    let frame = Frame::new(64, 48);
    for round in 0..3000 {
        let mut conn = ready(64, 48);
        take_output(&mut conn);
        let mut stream = messages[0].clone();
        for _ in 0..rng.usize(1..20) {
            stream.extend(&messages[rng.usize(..messages.len())]);
        }
        // Flip, drop, insert or cut: truncated messages, impossible lengths and values.
        for _ in 0..rng.usize(0..4) {
            match rng.u8(0..4) {
                0 if !stream.is_empty() => {
                    let at = rng.usize(..stream.len());
                    stream[at] = rng.u8(..);
                }
                1 if !stream.is_empty() => {
                    stream.remove(rng.usize(..stream.len()));
                }
                2 => stream.insert(rng.usize(..=stream.len()), rng.u8(..)),
                _ => stream.truncate(rng.usize(..=stream.len())),
            }
        }
        if round % 10 == 0 {
            stream = (0..rng.usize(0..200)).map(|_| rng.u8(..)).collect();
        }
        let mut at = 0;
        while at < stream.len() {
            let n = rng.usize(1..=64).min(stream.len() - at);
            if conn.read(&stream[at..at + n]).is_err() {
                assert!(conn.is_closed());
                break;
            }
            at += n;
            while conn.poll_event().is_some() {}
            conn.write_update(&frame, &[frame.bounds()]);
            assert!(conn.pending_output().len() < 1 << 20, "round {round}: output keeps growing");
            take_output(&mut conn);
        }
    }
}

#[test]
fn random_input_during_every_login_never_panics() {
    use crate::security::rsa_aes::ServerKey;
    use crate::security::rsa_aes::tests::server_2048;
    let config = Arc::new(ServerConfig {
        credentials: security::Credentials { password: Some(b"pw".to_vec()), view_only_password: None, accounts: true },
        tls: true,
        rsa_key: Some(ServerKey::new(server_2048().clone()).unwrap()),
        ..ServerConfig::default()
    });
    let mut rng = fastrand::Rng::with_seed(42);
    let transports = [Transport::Tcp, Transport::WebSocket { web_crypto: true }, Transport::Tls];
    for round in 0..2000 {
        let mut conn = ServerConnection::new(config.clone(), transports[round % 3], SEED);
        take_output(&mut conn);
        let chosen = [security::VENCRYPT, security::RA2, security::RA2NE_256, security::VNC_AUTH][round % 4];
        let mut stream = b"RFB 003.008\n".to_vec();
        stream.push(chosen);
        stream.extend((0..rng.usize(0..600)).map(|_| rng.u8(..)));
        if chosen == security::VENCRYPT && rng.bool() {
            // A valid VeNCrypt start, then garbage where the subtype and login go.
            stream.splice(13..13, [0, 2, 0, 0, 1, 6]);
        }
        for chunk in stream.chunks(rng.usize(1..=32)) {
            if conn.read(chunk).is_err() {
                break;
            }
            while let Some(event) = conn.poll_event() {
                if matches!(event, Event::Credentials(_)) {
                    let _ = conn.login_checked(None);
                }
            }
            if conn.tls_requested() {
                let _ = conn.start_tls();
            }
            take_output(&mut conn);
        }
    }
}

/// A move goes first as a CopyRect (header, then the source's x and y) to a client that listed
/// CopyRect; to one that did not, or when an end lies outside the frame, its destination is
/// encoded with the other rects instead.
#[test]
fn a_move_goes_as_copy_rect_first_or_as_pixels() {
    let mut conn = ready(64, 64);
    let frame = Frame::new(64, 64);
    let copy = crate::moves::Move { dst: Rect::new(8, 4, 16, 8), src_x: 0, src_y: 2 };
    let update = |conn: &mut ServerConnection, copy: crate::moves::Move| {
        let job = conn.start_update_with_copy(frame.bounds(), Some(copy), &[Rect::new(40, 40, 2, 2)], false);
        let done = job.expect("a job").encode(&frame, None, &crate::encoders::workers::Serial);
        conn.complete_update(done);
        take_output(conn)
    };
    set_encodings(&mut conn, &[1, 0]);
    take_output(&mut conn);
    let out = update(&mut conn, copy);
    assert_eq!(&out[..4], &[0, 0, 0, 2], "two rects");
    assert_eq!(&out[4..20], &[0, 8, 0, 4, 0, 16, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2], "CopyRect from (0, 2)");
    assert_eq!(&out[20..28], &[0, 40, 0, 40, 0, 2, 0, 2], "then the rect");
    // Source partly outside the frame: the destination is sent as pixels.
    let out = update(&mut conn, crate::moves::Move { src_x: 50, ..copy });
    assert_eq!(&out[..4], &[0, 0, 0, 2]);
    assert_eq!(first_rect_encoding(&out), 0, "no CopyRect");
    assert_eq!(out.len(), 4 + 12 + 2 * 2 * 4 + 12 + 16 * 8 * 4);
    // Not listed: pixels.
    set_encodings(&mut conn, &[0]);
    take_output(&mut conn);
    let out = update(&mut conn, copy);
    assert_eq!(first_rect_encoding(&out), 0);
    assert_eq!(out.len(), 4 + 12 + 2 * 2 * 4 + 12 + 16 * 8 * 4);
}
