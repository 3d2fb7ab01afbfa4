//! A new connection on the one port: plain RFB, `ws://`, or TLS (`wss://`), told apart by its
//! first bytes (`http.rs`), and served as what it is.

use std::net::IpAddr;

use anyhow::{Context, anyhow};
use rfb::security::Transport;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::http::{self, Arrival, Request};
use super::transport::{BoxedStream, Prefixed};
use super::viewers::Viewer;
use super::{Shared, viewer, websocket};
use crate::hid::router::ViewerId;

/// What a browser is told when plain `ws://` is refused under `--require-tls`.
const TLS_REQUIRED: &str = "kvnc accepts only encrypted connections: use wss:// (https://).\n";
/// What any other HTTP request is told (GET and HEAD requests get the web console instead).
const NOT_A_WEBSOCKET: &str = "kvnc serves VNC on this port: connect a VNC viewer, or noVNC over ws:// or wss://.\n";

pub(super) async fn serve(
    stream: TcpStream,
    peer: IpAddr,
    id: ViewerId,
    shared: &Shared,
    viewer: &Viewer,
) -> anyhow::Result<String> {
    // Everything up to the login shares one deadline, TLS and HTTP included.
    let deadline = Instant::now() + shared.limits.handshake_timeout;
    match http::sniff(&stream).await {
        Arrival::Rfb => {
            tracing::info!("connected");
            viewer::serve(Box::new(stream), Transport::Tcp, deadline, peer, id, shared, viewer).await
        }
        Arrival::Http => serve_http(Box::new(stream), None, deadline, peer, id, shared, viewer).await,
        Arrival::Tls => {
            let identity =
                shared.tls.as_ref().ok_or_else(|| anyhow!("TLS is turned off, and this connection began with it"))?;
            let stream = tokio::time::timeout_at(deadline, identity.acceptor.accept(stream))
                .await
                .map_err(|_| anyhow!("no TLS handshake within the login deadline"))?
                .context("TLS handshake failed")?;
            let version = stream.get_ref().1.protocol_version().map_or("TLS".into(), |v| format!("{v:?}"));
            serve_http(Box::new(stream), Some(version), deadline, peer, id, shared, viewer).await
        }
    }
}

/// An HTTP request on the port (inside TLS of this version, or not): a WebSocket carrying RFB,
/// or a short answer.
async fn serve_http(
    mut stream: BoxedStream,
    tls_version: Option<String>,
    deadline: Instant,
    peer: IpAddr,
    id: ViewerId,
    shared: &Shared,
    viewer: &Viewer,
) -> anyhow::Result<String> {
    let head = tokio::time::timeout_at(deadline, http::read_head(&mut stream))
        .await
        .map_err(|_| anyhow!("no complete HTTP request within the login deadline"))??;
    if let Some(request) = crate::console::Request::parse(&head) {
        if tls_version.is_none() && shared.config.require_encryption {
            http::respond(&mut stream, "403 Forbidden", TLS_REQUIRED).await;
            return Ok("refused the web console over http:// (TLS is required)".into());
        }
        return Ok(crate::console::serve(stream, &request, &shared.limits.allowed_origins).await);
    }
    if crate::control::api::is_api_request(&head) {
        let caller = crate::control::api::Caller::Network { peer, tls: tls_version.is_some() };
        return Ok(crate::control::api::serve(stream, head, caller, shared).await);
    }
    match http::classify(&head) {
        Request::Other(reason) => {
            http::respond(&mut stream, "400 Bad Request", NOT_A_WEBSOCKET).await;
            Ok(format!("HTTP request answered with 400: {reason}"))
        }
        Request::WebSocket if tls_version.is_none() && shared.config.require_encryption => {
            http::respond(&mut stream, "403 Forbidden", TLS_REQUIRED).await;
            Ok("refused ws:// (TLS is required)".into())
        }
        Request::WebSocket => {
            let upgrade = websocket::accept(Prefixed::new(head, stream), &shared.limits.allowed_origins);
            let (pipe, web_crypto) = tokio::time::timeout_at(deadline, upgrade)
                .await
                .map_err(|_| anyhow!("no WebSocket handshake within the login deadline"))?
                .context("WebSocket handshake failed")?;
            let transport = match &tls_version {
                Some(version) => {
                    tracing::info!("connected (WebSocket over {version})");
                    Transport::Tls
                }
                None => {
                    tracing::info!("connected (WebSocket)");
                    Transport::WebSocket { web_crypto }
                }
            };
            viewer::serve(Box::new(pipe), transport, deadline, peer, id, shared, viewer).await
        }
    }
}
