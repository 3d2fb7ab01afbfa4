//! `kvnc ctl`: the control API from a shell, through the local socket. Prints the JSON answer
//! (or writes the screenshot), and exits non-zero with the server's reason when it refuses.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::json;

use crate::hid::router::MouseMode;
use crate::media::MediaMode;

#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The server's control socket (default: as `kvnc serve` chooses it).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// USB host state, capture state, screen size, viewers, layout and mouse mode.
    Status,
    /// The viewers connected: address, login, view-only, encoding, bytes sent.
    Viewers,
    /// Disconnect one viewer (its id from `kvnc ctl viewers`).
    Disconnect { id: u64 },
    /// Virtual media: list, attach, eject, status.
    Media {
        #[command(subcommand)]
        action: MediaCtl,
    },
    /// Type text on the target, as keystrokes for its keyboard layout.
    Type { text: String },
    /// Press a key combination, e.g. ctrl+alt+delete, alt+sysrq+b, ctrl+alt+f2.
    Keys { combo: String },
    /// Drive the absolute pointer or the relative boot mouse.
    MouseMode {
        #[arg(value_enum)]
        mode: MouseMode,
    },
    /// The target's keyboard layout for typed text (us, de, fr, ...).
    Layout { name: String },
    /// Save the target's screen as a PNG file.
    Screenshot { file: PathBuf },
}

#[derive(Debug, clap::Subcommand)]
pub enum MediaCtl {
    /// The images in the media directory and what is attached.
    List,
    /// What the target's virtual drive holds.
    Status,
    /// Attach an image from the media directory.
    Attach {
        name: String,
        #[arg(long, value_enum, default_value_t = MediaMode::Cdrom)]
        mode: MediaMode,
    },
    /// Empty the drive.
    Eject,
}

pub fn run(args: &CtlArgs) -> anyhow::Result<()> {
    let socket = match &args.socket {
        Some(path) => path.clone(),
        None => super::socket::default_path().ok_or_else(|| anyhow!("no control socket path: give --socket PATH"))?,
    };
    let (method, path, body) = match &args.command {
        CtlCommand::Status => ("GET", "/api/status".to_string(), None),
        CtlCommand::Viewers => ("GET", "/api/viewers".into(), None),
        CtlCommand::Disconnect { id } => ("POST", format!("/api/viewers/{id}/disconnect"), None),
        CtlCommand::Media { action: MediaCtl::List } => ("GET", "/api/media".into(), None),
        CtlCommand::Media { action: MediaCtl::Status } => ("GET", "/api/media/status".into(), None),
        CtlCommand::Media { action: MediaCtl::Attach { name, mode } } => {
            ("POST", "/api/media/attach".into(), Some(json!({ "name": name, "mode": mode })))
        }
        CtlCommand::Media { action: MediaCtl::Eject } => ("POST", "/api/media/eject".into(), None),
        CtlCommand::Type { text } => ("POST", "/api/type".into(), Some(json!({ "text": text }))),
        CtlCommand::Keys { combo } => ("POST", "/api/keys".into(), Some(json!({ "combo": combo }))),
        CtlCommand::MouseMode { mode } => ("POST", "/api/mouse-mode".into(), Some(json!({ "mode": mode }))),
        CtlCommand::Layout { name } => ("POST", "/api/layout".into(), Some(json!({ "name": name }))),
        CtlCommand::Screenshot { .. } => ("GET", "/api/screenshot".into(), None),
    };
    let (status, body) = request(&socket, method, &path, body.as_ref())?;
    if !(200..300).contains(&status) {
        let reason = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value.get("error").and_then(|error| error.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        bail!("{reason} (HTTP {status})");
    }
    if let CtlCommand::Screenshot { file } = &args.command {
        std::fs::write(file, &body).with_context(|| format!("cannot write {}", file.display()))?;
        println!("{}", file.display());
        return Ok(());
    }
    let value: serde_json::Value = serde_json::from_slice(&body).context("the server's answer is not JSON")?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// One HTTP request over the socket; returns the status and body.
fn request(
    socket: &std::path::Path,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach kvnc at {} (is `kvnc serve` running?)", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(serde_json::Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).context("reading the server's answer")?;
    let split = memchr::memmem::find(&response, b"\r\n\r\n")
        .ok_or_else(|| anyhow!("the server's answer has no end of head"))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| anyhow!("the server's answer has no status: {head}"))?;
    Ok((status, response[split + 4..].to_vec()))
}
