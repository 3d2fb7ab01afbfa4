//! Telling apart what arrives on the one port, and HTTP request heads.
//!
//! An RFB client waits for the server to speak first; a browser (WebSocket) starts with an HTTP
//! `GET`, and TLS (`wss://`, `https://`) with a handshake record. So the first bytes a
//! connection sends within [`SNIFF_TIMEOUT`] say which it is. Inside TLS only HTTP is expected.

use std::time::Duration;

use anyhow::bail;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a new connection may take to show it is not plain RFB. Browsers send their first
/// bytes right after the TCP handshake; plain RFB clients pay this once per connection.
pub const SNIFF_TIMEOUT: Duration = Duration::from_millis(150);
/// The largest request head read; browsers send well under 2 KiB.
const MAX_HEAD: usize = 8 * 1024;
/// How HTTP requests start (WebSocket upgrades and the control API; the others get 400).
const HTTP_METHODS: [&[u8; 4]; 6] = [b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI"];
/// The first byte of a TLS record carrying a handshake message (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Nothing sent yet, or not HTTP or TLS: a VNC viewer (whose bytes RFB will judge).
    Rfb,
    Http,
    Tls,
}

/// Peeks at the first bytes (nothing is consumed).
pub async fn sniff(stream: &TcpStream) -> Arrival {
    let mut first = [0u8; 4];
    let peek = async {
        loop {
            match stream.peek(&mut first).await {
                Ok(n) if n == 0 || n >= first.len() || first[0] == TLS_HANDSHAKE_RECORD => return n,
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(_) => return 0,
            }
        }
    };
    match tokio::time::timeout(SNIFF_TIMEOUT, peek).await {
        Ok(n) if n > 0 && first[0] == TLS_HANDSHAKE_RECORD => Arrival::Tls,
        Ok(4) if HTTP_METHODS.contains(&&first) => Arrival::Http,
        _ => Arrival::Rfb,
    }
}

/// Reads up to the blank line that ends an HTTP request head; the bytes read are returned (a
/// WebSocket library reads them again).
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> anyhow::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("closed in the middle of an HTTP request");
        }
        head.extend_from_slice(&chunk[..n]);
        if memchr::memmem::find(&head, b"\r\n\r\n").is_some() {
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            bail!("HTTP request head over {MAX_HEAD} bytes");
        }
    }
}

/// What an HTTP request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    WebSocket,
    /// Anything else, with the reason it is not a WebSocket upgrade (answered with 400).
    Other(String),
}

pub fn classify(head: &[u8]) -> Request {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Request::Other("incomplete request".into()),
        Err(e) => return Request::Other(format!("malformed request: {e}")),
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .and_then(|header| std::str::from_utf8(header.value).ok())
    };
    let lists = |name: &str, token: &str| {
        header(name).is_some_and(|value| value.split(',').any(|item| item.trim().eq_ignore_ascii_case(token)))
    };
    if request.method != Some("GET") {
        Request::Other(format!("method {} is not GET", request.method.unwrap_or("?")))
    } else if !lists("upgrade", "websocket") || !lists("connection", "upgrade") {
        Request::Other("not a WebSocket upgrade".into())
    } else if header("sec-websocket-key").is_none_or(str::is_empty) {
        Request::Other("no Sec-WebSocket-Key".into())
    } else if header("sec-websocket-version").map(str::trim) != Some("13") {
        Request::Other("WebSocket version is not 13".into())
    } else {
        Request::WebSocket
    }
}

/// The `Origin` if it names another site than the server's own host (the `Host` header's host,
/// any port) and is not in `allowed` (exact `scheme://host[:port]`). Requests without `Origin`
/// come from programs, not web pages, and are not refused. (WebSocket upgrades and control
/// requests: a page the user visits must not reach kvnc through the browser.)
pub fn foreign_origin(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> Option<String> {
    let origin = origin?.trim().trim_end_matches('/');
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let host_only = |host_port: &str| -> String {
        // "[::1]:5900" → "[::1]", "board:5900" → "board"
        let host = match host_port.rfind(':') {
            Some(colon) if !host_port[colon..].contains(']') => &host_port[..colon],
            _ => host_port,
        };
        host.to_ascii_lowercase()
    };
    let same_host = host.is_some_and(|host| host_only(host.trim()) == host_only(origin_host));
    let listed = allowed.iter().any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin));
    (!same_host && !listed).then(|| origin.to_string())
}

/// Sends a short plain-text answer and ends the connection.
pub async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: board:5900\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                           Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn only_a_complete_websocket_upgrade_passes() {
        assert_eq!(classify(UPGRADE.as_bytes()), Request::WebSocket);
        let without = |header: &str| {
            let head: String =
                UPGRADE.split("\r\n").filter(|line| !line.starts_with(header)).collect::<Vec<_>>().join("\r\n");
            classify(head.as_bytes())
        };
        for header in ["Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"] {
            assert!(matches!(without(header), Request::Other(_)), "without {header}");
        }
        assert!(matches!(classify(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Request::Other(_)));
        assert!(matches!(classify(b"POST / HTTP/1.1\r\n\r\n"), Request::Other(reason) if reason.contains("POST")));
        assert!(
            matches!(classify(b"GET /\x01 HTTP/1.1\r\n\r\n"), Request::Other(reason) if reason.contains("malformed"))
        );
    }

    #[test]
    fn only_pages_of_another_site_are_refused() {
        let allowed = vec!["https://console.example:8443".to_string()];
        let foreign = |origin, host| foreign_origin(origin, Some(host), &allowed);
        assert_eq!(foreign(None, "board:5900"), None, "no Origin: not a web page");
        assert_eq!(foreign(Some("http://board:5900"), "board:5900"), None, "kvnc's own page");
        assert_eq!(foreign(Some("http://BOARD:8080/"), "board:5900"), None, "same host, another port");
        assert_eq!(foreign(Some("http://[::1]:8080"), "[::1]:5900"), None);
        assert_eq!(foreign(Some("https://console.example:8443"), "board:5900"), None, "allowed");
        assert_eq!(foreign(Some("https://evil.example"), "board:5900"), Some("https://evil.example".into()));
        assert_eq!(foreign(Some("null"), "board:5900"), Some("null".into()), "sandboxed or file pages");
        assert_eq!(foreign(Some("https://console.example"), "board:5900").as_deref(), Some("https://console.example"));
    }

    #[tokio::test]
    async fn head_is_read_to_its_end_and_bounded() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client.write_all(UPGRADE.as_bytes()).await.unwrap();
        assert_eq!(read_head(&mut server).await.unwrap(), UPGRADE.as_bytes());
        client.write_all(&[b'a'; MAX_HEAD + 10]).await.unwrap();
        assert!(read_head(&mut server).await.is_err());
    }
}
