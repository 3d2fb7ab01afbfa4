//! RFB over WebSocket on the RFB port itself, so noVNC connects without websockify.
//!
//! An RFB client waits for the server to speak first while a WebSocket client starts with an
//! HTTP `GET`, so a connection that sends `GET ` within [`SNIFF_TIMEOUT`] is a WebSocket.
//! Binary messages carry the RFB byte stream; a bridge task turns them into a plain byte pipe
//! so the viewer task serves both transports the same way.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// How long a new connection may take to show it is a WebSocket. Browsers send the upgrade
/// request right after the TCP handshake; plain RFB clients pay this once per connection.
pub const SNIFF_TIMEOUT: Duration = Duration::from_millis(150);
/// Bytes buffered between the WebSocket bridge and the viewer task.
const PIPE_CAPACITY: usize = 256 * 1024;
const PROTOCOL_HEADER: &str = "sec-websocket-protocol";

/// Whether the peer opened with an HTTP GET (a WebSocket upgrade) before the timeout.
pub async fn is_websocket(stream: &TcpStream) -> bool {
    let mut first = [0u8; 4];
    let peek = async {
        loop {
            match stream.peek(&mut first).await {
                Ok(n) if n >= first.len() || n == 0 => return n,
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(_) => return 0,
            }
        }
    };
    matches!(tokio::time::timeout(SNIFF_TIMEOUT, peek).await, Ok(4)) && &first == b"GET "
}

/// Completes the WebSocket handshake and returns the RFB byte stream inside it.
// The callback's Result type is tungstenite's, large error variant included.
#[allow(clippy::result_large_err)]
pub async fn accept(stream: TcpStream) -> anyhow::Result<DuplexStream> {
    let websocket = tokio_tungstenite::accept_hdr_async(stream, |request: &Request, mut response: Response| {
        echo_binary_subprotocol(request, &mut response);
        Ok(response)
    })
    .await?;
    let (rfb_side, bridge_side) = tokio::io::duplex(PIPE_CAPACITY);
    tokio::spawn(bridge(websocket, bridge_side));
    Ok(rfb_side)
}

/// No sub-protocol is required; `binary` is echoed when offered (old noVNC and websockify
/// clients ask for it).
fn echo_binary_subprotocol(request: &Request, response: &mut Response) {
    let offers_binary = request
        .headers()
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == "binary");
    if offers_binary {
        response.headers_mut().insert(PROTOCOL_HEADER, HeaderValue::from_static("binary"));
    }
}

/// Moves bytes between the WebSocket and the pipe until either side ends.
async fn bridge(websocket: tokio_tungstenite::WebSocketStream<TcpStream>, pipe: DuplexStream) {
    let (mut ws_tx, mut ws_rx) = websocket.split();
    let (mut pipe_rx, mut pipe_tx) = tokio::io::split(pipe);
    let inbound = async {
        while let Some(Ok(message)) = ws_rx.next().await {
            let bytes = match message {
                Message::Binary(bytes) => bytes,
                // Some clients send the stream as text frames; the bytes are the same.
                Message::Text(text) => text.as_bytes().to_vec().into(),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            if pipe_tx.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = pipe_tx.shutdown().await;
    };
    let outbound = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match pipe_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws_tx.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = ws_tx.close().await;
    };
    // Either direction ending ends the connection.
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
    }
}
