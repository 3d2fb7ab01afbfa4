//! RFB over WebSocket on the RFB port itself, so noVNC connects without websockify (how such a
//! connection is recognised is in `http.rs`). Binary messages carry the RFB byte stream; a bridge task turns them into a plain byte pipe
//! so the viewer task serves both transports the same way.
//!
//! A browser lets any web page open a WebSocket anywhere, so an upgrade whose `Origin` is not
//! kvnc's own host (or an allowed origin) is refused with 403: otherwise a page the user visits
//! could type on the target through a password-less kvnc. Frames and messages are capped at
//! sizes that fit RFB, so an unauthenticated client cannot pin megabytes with an unfinished one.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Bytes buffered between the WebSocket bridge and the viewer task.
const PIPE_CAPACITY: usize = 256 * 1024;
const PROTOCOL_HEADER: &str = "sec-websocket-protocol";
/// The largest WebSocket message or frame taken: RFB client messages are small, except
/// clipboard text, which the protocol layer caps (256 KiB by default) and skips beyond that.
const MAX_MESSAGE: usize = 1024 * 1024;
/// How long a closing connection waits for the other direction to finish (the Close reply).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Completes the WebSocket handshake and returns the RFB byte stream inside it, and whether the
/// page that opened it has WebCrypto (see [`page_has_web_crypto`]).
// The callback's Result type is tungstenite's, large error variant included.
#[allow(clippy::result_large_err)]
pub async fn accept<S>(stream: S, allowed_origins: &[String]) -> anyhow::Result<(DuplexStream, bool)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE));
    let mut web_crypto = false;
    let callback = |request: &Request, mut response: Response| {
        web_crypto = page_has_web_crypto(request);
        let header = |name| request.headers().get(name).and_then(|value| value.to_str().ok());
        if let Some(origin) = super::http::foreign_origin(header("origin"), header("host"), allowed_origins) {
            tracing::warn!("refused a WebSocket from a page at {origin:?} (allow it with --ws-allowed-origin)");
            let mut refusal = ErrorResponse::new(Some("cross-origin WebSocket refused".into()));
            *refusal.status_mut() = StatusCode::FORBIDDEN;
            return Err(refusal);
        }
        echo_binary_subprotocol(request, &mut response);
        Ok(response)
    };
    let websocket = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await?;
    let (rfb_side, bridge_side) = tokio::io::duplex(PIPE_CAPACITY);
    tokio::spawn(bridge(websocket, bridge_side));
    Ok((rfb_side, web_crypto))
}

/// Whether the client can run RSA-AES: browsers give WebCrypto only to pages in a secure context
/// (https, or http from the local machine); a request without `Origin` is not from a page.
fn page_has_web_crypto(request: &Request) -> bool {
    let Some(origin) = request.headers().get("origin").and_then(|value| value.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim().to_ascii_lowercase();
    let Some(host_port) = origin.strip_prefix("http://") else {
        return origin.starts_with("https://");
    };
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => host,
        _ => host_port,
    };
    host == "localhost" || host.ends_with(".localhost") || host.starts_with("127.") || host == "[::1]"
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
async fn bridge<S: AsyncRead + AsyncWrite + Unpin>(
    websocket: tokio_tungstenite::WebSocketStream<S>,
    pipe: DuplexStream,
) {
    let (mut ws_tx, mut ws_rx) = websocket.split();
    let (mut pipe_rx, mut pipe_tx) = tokio::io::split(pipe);
    let inbound = async {
        while let Some(received) = ws_rx.next().await {
            let message = match received {
                Ok(message) => message,
                Err(e) => {
                    tracing::info!("WebSocket closed: {e}");
                    break;
                }
            };
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
    // Either direction ending ends the connection; the other gets a moment to finish, so a
    // Close from the viewer is answered with one (tungstenite queues the reply, the outbound
    // side's close sends it) and ours reaches the viewer.
    tokio::pin!(inbound, outbound);
    tokio::select! {
        () = &mut inbound => { let _ = tokio::time::timeout(CLOSE_GRACE, &mut outbound).await; }
        () = &mut outbound => { let _ = tokio::time::timeout(CLOSE_GRACE, &mut inbound).await; }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: Option<&str>, host: &str) -> Request {
        let mut builder = Request::builder().uri("/").header("host", host);
        if let Some(origin) = origin {
            builder = builder.header("origin", origin);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn web_crypto_only_in_secure_contexts() {
        let crypto = |origin| page_has_web_crypto(&request(origin, "board:5900"));
        assert!(crypto(None), "not a page");
        assert!(crypto(Some("https://board:5900")));
        assert!(crypto(Some("http://127.0.0.1:8080")));
        assert!(crypto(Some("http://localhost")));
        assert!(crypto(Some("http://[::1]:8080")));
        assert!(!crypto(Some("http://board:6080")));
        assert!(!crypto(Some("http://192.168.1.20")));
        assert!(!crypto(Some("null")));
    }
}
