//! The control operations as an HTTP API: JSON in and out (a PNG for the screenshot), one request
//! per connection. Over the Unix socket the caller is trusted (the socket is its owner's only);
//! on kvnc's port a request needs a login (HTTP Basic: a user of the accounts file, or any name
//! with a VNC password), failed logins count towards the address's blacklist like failed VNC
//! logins, and a view-only login may only read.
//!
//! | request | does |
//! |---|---|
//! | `GET /api/status` | USB host state, capture state, screen size, viewers, layout, mouse mode |
//! | `GET /api/viewers` | who is connected: address, login, view-only, encoding, bytes sent |
//! | `POST /api/viewers/ID/disconnect` | closes one viewer |
//! | `GET /api/media` | images in the media directory and what is attached |
//! | `POST /api/media/attach` `{"name": ..., "mode": "cdrom"\|"read-only"\|"read-write"}` | attaches an image |
//! | `POST /api/media/eject` | empties the drive |
//! | `POST /api/type` `{"text": ...}` | types text on the target (layout-aware, paced) |
//! | `POST /api/keys` `{"combo": "ctrl+alt+delete"}` | presses a key combination |
//! | `POST /api/mouse-mode` `{"mode": "absolute"\|"relative"}` | switches the mouse |
//! | `POST /api/layout` `{"name": "de"}` | the target's keyboard layout |
//! | `GET /api/screenshot` | the screen as PNG |

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ControlError, Controller, Reply};
use crate::server::Shared;

/// Requests that carry JSON are small; anything larger is refused before it is read.
const MAX_BODY: usize = 64 * 1024;
/// Failed logins are answered this late, as VNC logins are.
const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(100);

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Through the Unix socket: its owner.
    Local,
    /// On kvnc's port, from this address, inside TLS (`https://`) or not.
    Network { peer: IpAddr, tls: bool },
}

/// A parsed request.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// Whether an HTTP request head is for this API.
pub fn is_api_request(head: &[u8]) -> bool {
    head.starts_with(b"GET /api/") || head.starts_with(b"POST /api/")
}

/// Answers one request whose head (and maybe some of its body) was already read.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: Vec<u8>,
    caller: Caller,
    shared: &Shared,
) -> String {
    let (status, content_type, body) = match answer(&mut stream, head, caller, shared).await {
        Ok((Reply::Json(value), status)) => (status, "application/json", value.to_string().into_bytes()),
        Ok((Reply::Png(png), status)) => (status, "image/png", png),
        Err(error) => (error.status, "application/json", json!({ "error": error.reason }).to_string().into_bytes()),
    };
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
        reason_phrase(status),
        body.len()
    );
    if status == 401 {
        response.push_str("WWW-Authenticate: Basic realm=\"kvnc\", charset=\"UTF-8\"\r\n");
    }
    response.push_str("\r\n");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
    format!("control request answered with {status}")
}

async fn answer<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: Vec<u8>,
    caller: Caller,
    shared: &Shared,
) -> Result<(Reply, u16), ControlError> {
    let request = read_request(stream, head).await?;
    let may_change = match caller {
        Caller::Local => true,
        Caller::Network { tls: false, .. } if shared.config.require_encryption => {
            return Err(ControlError {
                status: 403,
                reason: "this server accepts only https:// (--require-tls)".into(),
            });
        }
        Caller::Network { peer, .. } => authorize(&request, peer, shared).await?,
    };
    if request.method == "POST" {
        if !may_change {
            return Err(ControlError { status: 403, reason: "this login may only watch".into() });
        }
        // A page of another site cannot send this without a CORS preflight, which is never
        // answered: no cross-site request can change anything.
        let json = request.header("content-type").is_some_and(|value| value.starts_with("application/json"));
        if !json && !request.body.is_empty() {
            return Err(ControlError { status: 415, reason: "send the body as application/json".into() });
        }
    }
    let controller = Controller { shared };
    let segments: Vec<&str> = request.path.trim_start_matches("/api/").split('/').collect();
    let reply = match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["status"]) => controller.status().await?,
        ("GET", ["viewers"]) => controller.viewers()?,
        ("POST", ["viewers", id, "disconnect"]) => {
            let id = id.parse().map_err(|_| ControlError::not_found(format!("no viewer {id}")))?;
            controller.disconnect(id)?
        }
        ("GET", ["media"]) => controller.media_list().await?,
        ("GET", ["media", "status"]) => controller.media_status().await?,
        ("POST", ["media", "attach"]) => controller.media_attach(body(&request)?).await?,
        ("POST", ["media", "eject"]) => controller.media_eject().await?,
        ("POST", ["type"]) => controller.type_text(&body(&request)?).await?,
        ("POST", ["keys"]) => controller.keys(&body(&request)?).await?,
        ("POST", ["mouse-mode"]) => controller.mouse_mode(&body(&request)?)?,
        ("POST", ["layout"]) => controller.layout(body(&request)?).await?,
        ("GET", ["screenshot"]) => controller.screenshot().await?,
        _ => return Err(ControlError::not_found(format!("no {} {}", request.method, request.path))),
    };
    Ok((reply, 200))
}

fn body<T: DeserializeOwned>(request: &Request) -> Result<T, ControlError> {
    serde_json::from_slice(&request.body).map_err(|e| ControlError::bad_request(format!("request body: {e}")))
}

/// Parses the head and reads the body its Content-Length announces.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S, head: Vec<u8>) -> Result<Request, ControlError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(&head) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err(ControlError::bad_request("incomplete request")),
        Err(e) => return Err(ControlError::bad_request(format!("malformed request: {e}"))),
    };
    let method = parsed.method.unwrap_or_default().to_string();
    let path = parsed.path.unwrap_or_default().split('?').next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|header| (header.name.to_string(), String::from_utf8_lossy(header.value).into_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.trim().parse().map_err(|_| ControlError::bad_request("bad Content-Length")))
        .transpose()?
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err(ControlError { status: 413, reason: format!("request body over {MAX_BODY} bytes") });
    }
    let mut body = head.get(head_len..).unwrap_or_default().to_vec();
    body.truncate(length);
    let mut chunk = [0u8; 4096];
    while body.len() < length {
        let n = stream.read(&mut chunk).await.map_err(|e| ControlError::bad_request(e.to_string()))?;
        if n == 0 {
            return Err(ControlError::bad_request("the request body ended early"));
        }
        body.extend_from_slice(&chunk[..n.min(length - body.len())]);
    }
    Ok(Request { method, path, headers, body })
}

/// Checks a network caller's login; Ok(whether it may change things).
async fn authorize(request: &Request, peer: IpAddr, shared: &Shared) -> Result<bool, ControlError> {
    if let Some(origin) = request.header("origin")
        && crate::server::http::foreign_origin(Some(origin), request.header("host"), &shared.limits.allowed_origins)
            .is_some()
    {
        return Err(ControlError { status: 403, reason: format!("requests from pages at {origin} are refused") });
    }
    let credentials = &shared.config.credentials;
    if !credentials.required() {
        return Ok(true);
    }
    let unauthorized = || ControlError { status: 401, reason: "log in with a user name and password".into() };
    let Some((user, password)) = request.header("authorization").and_then(basic_credentials) else {
        return Err(unauthorized());
    };
    let access = match credentials.password_access(password.as_bytes()) {
        Some(access) => Some(access),
        None if credentials.accounts => {
            shared.check_login(rfb::security::plain::Login { username: user, password: password.into_bytes() }).await
        }
        None => None,
    };
    match access {
        Some(access) => {
            shared.blacklist.succeeded(peer);
            Ok(access == rfb::Access::Full)
        }
        None => {
            tracing::info!(%peer, "control request with a wrong login");
            shared.blacklist.failed(peer);
            tokio::time::sleep(AUTH_FAILURE_DELAY).await;
            Err(unauthorized())
        }
    }
}

/// The user name and password of an `Authorization: Basic ...` header.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.trim().strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded() {
        assert_eq!(basic_credentials("Basic b3BlcmF0b3I6cDpzcw=="), Some(("operator".into(), "p:ss".into())));
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
    }

    #[tokio::test]
    async fn body_is_read_to_its_length_and_bounded() {
        let head = b"POST /api/type?x=1 HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"text\":".to_vec();
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"\"hi\"}").await.unwrap();
        let request = read_request(&mut server, head).await.unwrap();
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/api/type"));
        assert_eq!(request.body, b"{\"text\":\"hi\"}");
        let huge = format!("POST /api/type HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1).into_bytes();
        assert_eq!(read_request(&mut server, huge).await.err().map(|e| e.status), Some(413));
    }
}
