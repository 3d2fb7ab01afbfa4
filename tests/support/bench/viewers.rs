//! Viewer connections for the kvnc benches: `rfb::ServerConnection`s past the handshake, whose
//! output the bench counts and discards instead of writing to a socket.

use std::sync::Arc;

use rfb::{Event, ServerConfig, ServerConnection};

/// Tight, JPEG quality 8: what noVNC and TigerVNC send by default.
pub const TIGHT_JPEG: [i32; 3] = [7, -224, -24];
/// ZRLE alone.
pub const ZRLE: [i32; 1] = [16];

/// A viewer of a `width`x`height` screen that sent SetEncodings `encodings`.
pub fn viewer(width: u16, height: u16, encodings: &[i32]) -> ServerConnection {
    let config = Arc::new(ServerConfig { name: "bench".into(), max_cut_text: 0, ..ServerConfig::default() });
    let mut conn = ServerConnection::new(config, rfb::security::Transport::Tcp, [0; 32]);
    let mut client = b"RFB 003.008\n".to_vec();
    client.extend([1, 1]); // security None, shared
    conn.read(&client).expect("handshake");
    while conn.poll_event().is_some() {}
    conn.accept(width, height).expect("accept");
    let mut set_encodings = vec![2, 0];
    set_encodings.extend((encodings.len() as u16).to_be_bytes());
    set_encodings.extend(encodings.iter().flat_map(|e| e.to_be_bytes()));
    conn.read(&set_encodings).expect("SetEncodings");
    while let Some(event) = conn.poll_event() {
        assert!(matches!(event, Event::EncodingsChanged), "{event:?}");
    }
    drain(&mut conn);
    conn
}

/// Takes the connection's pending output as if written to the socket; returns its length.
pub fn drain(conn: &mut ServerConnection) -> usize {
    let n = conn.pending_output().len();
    conn.advance_output(n);
    n
}
