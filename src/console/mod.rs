//! The web console: a page of kvnc's own (`src/console/web/`) that drives noVNC's `RFB` class,
//! served on kvnc's one port beside RFB, `ws://` and `wss://` (`server/arrival.rs` hands it the
//! GET and HEAD requests that are neither WebSocket upgrades nor control API calls).
//!
//! Every file is in the binary (`build.rs` gathers them at build time: our page, and noVNC from
//! the npm tarball pinned in `package-lock.json`), so no request needs anything beyond the board.
//! noVNC lives under `/novnc/VERSION/`, so its files may be cached for good; the page's own files
//! are revalidated by ETag. One request per connection, as the control API does: a browser's
//! idle kept-alive connections would count as connections waiting to log in and crowd out the
//! page's own WebSocket and API calls (8 per address). Responses carry a Content-Security-Policy
//! that allows only kvnc's own scripts, styles and connections and no framing; the page's
//! WebSocket and API calls go to the same origin, so the Origin checks of both pass without
//! exceptions, and requests from pages of other sites are refused here as there.

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// One embedded file.
pub struct Asset {
    /// The URL path it is served at.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The body gzipped, when that is usefully smaller.
    pub gzip: Option<&'static [u8]>,
    /// A hash of the body (without quotes).
    pub etag: &'static str,
    /// The path changes whenever the content does (noVNC's files): cacheable for good.
    pub immutable: bool,
}

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// Only kvnc's own files and connections; noVNC draws on a canvas, takes cursor images as data:
/// URLs and JPEG rects as blobs. Nothing may frame the page (a framing page could trick clicks
/// into the target's keyboard).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; \
     style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Headers every console answer carries.
const SECURITY_HEADERS: &str = "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n\
     Referrer-Policy: no-referrer\r\nCross-Origin-Opener-Policy: same-origin\r\n\
     Cross-Origin-Resource-Policy: same-origin\r\n";

/// A request for one of the console's files.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// HEAD: the headers only.
    head_only: bool,
    /// The path without its query.
    path: String,
    /// The ETags an `If-None-Match` lists (`*` included as such).
    if_none_match: Vec<String>,
    /// The browser takes gzip.
    gzip: bool,
    /// The page that asked (browsers send it with module scripts and fetches), and the `Host`.
    origin: Option<String>,
    host: Option<String>,
}

impl Request {
    /// The request in `head` if it is for the console: a complete GET or HEAD head that asks for
    /// no upgrade and not for the control API (`/api/...`). Anything else is for the caller.
    pub fn parse(head: &[u8]) -> Option<Request> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(_)) = parsed.parse(head) else { return None };
        let head_only = match parsed.method? {
            "GET" => false,
            "HEAD" => true,
            _ => return None,
        };
        let path = parsed.path?.split(['?', '#']).next().unwrap_or_default().to_string();
        if !path.starts_with('/') || path.starts_with("/api/") {
            return None;
        }
        let header = |name: &str| header_values(parsed.headers, name);
        // A WebSocket upgrade, even a broken one, is the WebSocket path's to answer.
        if !header("upgrade").is_empty() {
            return None;
        }
        let tokens = |name: &str| -> Vec<String> {
            header(name).iter().flat_map(|value| value.split(',')).map(|item| item.trim().to_string()).collect()
        };
        let gzip = tokens("accept-encoding").iter().any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let named = parts.next().is_some_and(|name| name.eq_ignore_ascii_case("gzip"));
            // "gzip;q=0" refuses it.
            let refused = parts.any(|param| param.replace(' ', "").eq_ignore_ascii_case("q=0"));
            named && !refused
        });
        let if_none_match = tokens("if-none-match")
            .into_iter()
            .map(|tag| tag.trim_start_matches("W/").trim_matches('"').to_string())
            .collect();
        let first = |name: &str| header(name).first().map(|value| value.to_string());
        Some(Request { head_only, path, if_none_match, gzip, origin: first("origin"), host: first("host") })
    }
}

/// The values of every header called `name`.
fn header_values<'h>(headers: &[httparse::Header<'h>], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case(name))
        .filter_map(|header| std::str::from_utf8(header.value).ok())
        .collect()
}

/// Answers one console request and closes the connection; returns what to log (the path, never
/// a query).
pub async fn serve<S: AsyncWrite + Unpin>(mut stream: S, request: &Request, allowed_origins: &[String]) -> String {
    // The WebSocket path's rule: pages of other sites get nothing from kvnc through the browser
    // (here: its scripts as modules, or its files through fetch).
    if let Some(origin) =
        crate::server::http::foreign_origin(request.origin.as_deref(), request.host.as_deref(), allowed_origins)
    {
        let body = format!("kvnc: requests from pages at {origin} are refused\n");
        plain(&mut stream, "403 Forbidden", &body, request.head_only).await;
        let _ = stream.shutdown().await;
        return format!("web console: refused a request from a page at {origin:?}");
    }
    let status = respond(&mut stream, request).await;
    let _ = stream.shutdown().await;
    let path: String = request.path.chars().take(200).collect();
    format!("web console: {path} answered with {status}")
}

/// Writes the answer to `request`; returns its status code.
async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, request: &Request) -> u16 {
    let asset =
        ASSETS.iter().find(|asset| asset.path == request.path || (asset.path == "/" && request.path == "/index.html"));
    let Some(asset) = asset else {
        plain(stream, "404 Not Found", "kvnc: no such page. The web console is at /\n", request.head_only).await;
        return 404;
    };
    let (body, etag, encoding) = match asset.gzip {
        Some(gzip) if request.gzip => (gzip, format!("\"{}-gzip\"", asset.etag), "Content-Encoding: gzip\r\n"),
        _ => (asset.body, format!("\"{}\"", asset.etag), ""),
    };
    let cache = if asset.immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    let unchanged = request.if_none_match.iter().any(|tag| tag == "*" || format!("\"{tag}\"") == etag);
    let (status, code) = if unchanged { ("304 Not Modified", 304) } else { ("200 OK", 200) };
    // A 304 repeats the validators and caching headers, and has no body.
    let length = if unchanged { String::new() } else { format!("Content-Length: {}\r\n", body.len()) };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\n{length}{encoding}Vary: Accept-Encoding\r\nETag: {etag}\r\n\
         Cache-Control: {cache}\r\nContent-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n{SECURITY_HEADERS}\
         Connection: close\r\n\r\n",
        asset.content_type
    );
    send(stream, &head, (!request.head_only && !unchanged).then_some(body)).await;
    code
}

/// A short plain-text answer, with the same security headers as the page.
async fn plain<S: AsyncWrite + Unpin>(stream: &mut S, status: &str, body: &str, head_only: bool) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nContent-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n{SECURITY_HEADERS}\
         Connection: close\r\n\r\n",
        body.len()
    );
    send(stream, &head, (!head_only).then_some(body.as_bytes())).await;
}

/// Writes an answer (a browser that went away meanwhile is no error of ours).
async fn send<S: AsyncWrite + Unpin>(stream: &mut S, head: &str, body: Option<&[u8]>) {
    if stream.write_all(head.as_bytes()).await.is_ok()
        && let Some(body) = body
    {
        let _ = stream.write_all(body).await;
    }
    let _ = stream.flush().await;
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    fn request(text: &str) -> Option<Request> {
        Request::parse(text.as_bytes())
    }

    /// The whole answer to `text`, head and body (the connection is closed after it).
    async fn answer(text: &str) -> (String, Vec<u8>) {
        let parsed = request(text).unwrap();
        let (mut client, server) = tokio::io::duplex(4 << 20);
        let logged = serve(server, &parsed, &[]).await;
        assert!(logged.starts_with("web console: "), "{logged}");
        let mut raw = Vec::new();
        client.read_to_end(&mut raw).await.unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        (String::from_utf8(raw[..split].to_vec()).unwrap(), raw[split..].to_vec())
    }

    fn asset(path: &str) -> &'static Asset {
        ASSETS.iter().find(|asset| asset.path == path).unwrap()
    }

    #[test]
    fn only_plain_gets_and_heads_outside_the_api_are_console_requests() {
        assert!(request("GET / HTTP/1.1\r\nHost: board\r\n\r\n").is_some());
        assert!(
            request("HEAD /console.js?x=1 HTTP/1.1\r\n\r\n").is_some_and(|r| r.head_only && r.path == "/console.js")
        );
        assert!(request("GET /nothing HTTP/1.1\r\n\r\n").is_some(), "answered with 404 by the console");
        assert!(request("GET /api/status HTTP/1.1\r\n\r\n").is_none());
        assert!(request("POST / HTTP/1.1\r\n\r\n").is_none());
        assert!(request("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").is_none());
        assert!(request("GET / HTTP/1.1\r\nHost: x\r\n").is_none(), "incomplete");
        assert!(request("GET http://x/ HTTP/1.1\r\n\r\n").is_none(), "not a path");
    }

    #[tokio::test]
    async fn the_page_comes_with_its_security_headers() {
        let (head, body) = answer("GET / HTTP/1.1\r\nHost: board\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        for header in [
            "Content-Type: text/html; charset=utf-8",
            "Content-Security-Policy: default-src 'self'",
            "frame-ancestors 'none'",
            "X-Frame-Options: DENY",
            "X-Content-Type-Options: nosniff",
            "Referrer-Policy: no-referrer",
            "Cache-Control: no-cache",
            "Connection: close",
        ] {
            assert!(head.contains(header), "{header} missing in\n{head}");
        }
        assert_eq!(body, asset("/").body);
        assert!(String::from_utf8_lossy(&body).contains("console.js"));
    }

    #[tokio::test]
    async fn novnc_is_gzipped_cached_for_good_and_revalidated_by_etag() {
        let path = format!("/novnc/{NOVNC_VERSION}/core/rfb.js");
        let rfb = asset(&path);
        let (head, body) = answer(&format!("GET {path} HTTP/1.1\r\nAccept-Encoding: br, gzip\r\n\r\n")).await;
        assert!(head.contains("Content-Type: text/javascript") && head.contains("Content-Encoding: gzip"), "{head}");
        assert!(head.contains("immutable"), "{head}");
        assert_eq!(Some(body.as_slice()), rfb.gzip);
        let (head, body) = answer(&format!("GET {path} HTTP/1.1\r\nAccept-Encoding: gzip;q=0\r\n\r\n")).await;
        assert!(!head.contains("Content-Encoding"), "{head}");
        assert_eq!(body, rfb.body);
        let (head, body) =
            answer(&format!("GET {path} HTTP/1.1\r\nIf-None-Match: \"other\", \"{}\"\r\n\r\n", rfb.etag)).await;
        assert!(head.starts_with("HTTP/1.1 304") && body.is_empty(), "{head}");
        let (head, body) = answer(&format!("HEAD {path} HTTP/1.1\r\n\r\n")).await;
        assert!(head.contains(&format!("Content-Length: {}", rfb.body.len())) && body.is_empty(), "{head}");
    }

    #[tokio::test]
    async fn pages_of_other_sites_are_refused() {
        let (head, body) =
            answer("GET /console.js HTTP/1.1\r\nHost: board:5900\r\nOrigin: https://evil.example\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 403"), "{head}");
        assert!(String::from_utf8_lossy(&body).contains("https://evil.example"));
        let (head, _) =
            answer("GET /console.js HTTP/1.1\r\nHost: board:5900\r\nOrigin: http://board:5900\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200"), "kvnc's own page: {head}");
    }

    #[tokio::test]
    async fn unknown_paths_get_404() {
        let (head, body) = answer("GET /etc/passwd HTTP/1.1\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 404") && head.contains("X-Frame-Options: DENY"), "{head}");
        assert!(String::from_utf8_lossy(&body).contains("no such page"));
        let (head, _) = answer(&format!("GET /novnc/{NOVNC_VERSION}/../../x HTTP/1.1\r\n\r\n")).await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    }

    /// Every relative import of every embedded module, followed from the page, is embedded: a
    /// noVNC update that needs a file the build leaves out fails here, not in a browser.
    #[test]
    fn every_module_the_page_imports_is_embedded() {
        let mut pending = vec!["/console.js".to_string()];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(path) = pending.pop() {
            if !seen.insert(path.clone()) {
                continue;
            }
            let module = ASSETS.iter().find(|asset| asset.path == path);
            let module = module.unwrap_or_else(|| panic!("{path} is imported but not embedded"));
            let text = std::str::from_utf8(module.body).unwrap();
            for specifier in imports(text) {
                assert!(specifier.starts_with("./") || specifier.starts_with("../"), "{path} imports {specifier}");
                pending.push(resolve(&path, &specifier));
            }
        }
        assert!(seen.contains(&format!("/novnc/{NOVNC_VERSION}/core/rfb.js")), "{seen:?}");
        assert!(seen.len() > 40, "noVNC's modules: {seen:?}");
    }

    /// The module specifiers of `import ... from "x"`, `export ... from "x"` and `import "x"`.
    fn imports(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for line in text.lines().map(str::trim_start) {
            if line.starts_with("//") || line.starts_with('*') {
                continue;
            }
            for keyword in ["from ", "import "] {
                let mut rest = line;
                while let Some(at) = rest.find(keyword) {
                    rest = &rest[at + keyword.len()..];
                    let quote = rest.chars().next();
                    if let Some(quote @ ('"' | '\'')) = quote
                        && let Some(end) = rest[1..].find(quote)
                    {
                        found.push(rest[1..=end].to_string());
                    }
                }
            }
        }
        found
    }

    fn resolve(from: &str, specifier: &str) -> String {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for segment in specifier.split('/') {
            match segment {
                "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        parts.join("/")
    }
}
