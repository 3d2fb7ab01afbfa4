//! Controlling a running kvnc from scripts and the web console. One set of operations (this
//! file), one HTTP API for them (`api.rs`), reached two ways: a local Unix socket that only its
//! owner can open (`socket.rs`, used by `kvnc ctl`, `client.rs`) and kvnc's own port, where the
//! same requests need a login.

pub mod api;
pub mod client;
pub mod socket;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::hid::layout::Layout;
use crate::hid::router::MouseMode;
use crate::media::{MediaMode, VirtualMedia};
use crate::server::Shared;

/// What the control interface needs beyond the server's own state.
#[derive(Clone, Default)]
pub struct ControlConfig {
    /// Where `kvnc ctl` finds the server (none: no socket).
    pub socket: Option<std::path::PathBuf>,
    /// The virtual drive, when `--media-dir` was given.
    pub media: Option<Arc<dyn VirtualMedia>>,
    /// The USB gadget's configfs name, when kvnc drives one.
    pub gadget: Option<String>,
}

/// An operation failed: an HTTP status and a reason for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlError {
    pub status: u16,
    pub reason: String,
}

impl ControlError {
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self { status: 400, reason: reason.into() }
    }

    pub fn not_found(reason: impl Into<String>) -> Self {
        Self { status: 404, reason: reason.into() }
    }

    fn failed(error: &anyhow::Error) -> Self {
        Self { status: 409, reason: format!("{error:#}") }
    }
}

/// What an operation returns.
pub enum Reply {
    Json(serde_json::Value),
    Png(Vec<u8>),
}

#[derive(Debug, Deserialize)]
pub struct AttachRequest {
    pub name: String,
    #[serde(default = "default_mode")]
    pub mode: MediaMode,
}

fn default_mode() -> MediaMode {
    MediaMode::Cdrom
}

#[derive(Debug, Deserialize)]
pub struct TypeRequest {
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub struct KeysRequest {
    pub combo: String,
}

#[derive(Debug, Deserialize)]
pub struct MouseModeRequest {
    pub mode: MouseMode,
}

#[derive(Debug, Deserialize)]
pub struct LayoutRequest {
    pub name: String,
}

#[derive(Debug, Serialize)]
struct UsbStatus {
    gadget: String,
    udc: Option<String>,
    /// "configured", "suspended", "not attached", ...
    state: Option<String>,
}

/// The operations, on the server's state.
pub(crate) struct Controller<'a> {
    pub shared: &'a Shared,
}

impl Controller<'_> {
    fn media(&self) -> Result<Arc<dyn VirtualMedia>, ControlError> {
        self.shared
            .control
            .media
            .clone()
            .ok_or_else(|| ControlError::not_found("no virtual media: start kvnc with --media-dir DIR"))
    }

    pub async fn media_list(&self) -> Result<Reply, ControlError> {
        let media = self.media()?;
        let (images, status) = blocking(move || Ok((media.list()?, media.status()?))).await?;
        Ok(Reply::Json(json!({ "images": images, "status": status })))
    }

    pub async fn media_status(&self) -> Result<Reply, ControlError> {
        let media = self.media()?;
        let status = blocking(move || media.status()).await?;
        Ok(Reply::Json(json!(status)))
    }

    pub async fn media_attach(&self, request: AttachRequest) -> Result<Reply, ControlError> {
        let media = self.media()?;
        let status = blocking(move || media.attach(&request.name, request.mode)).await?;
        tracing::info!("control: attached {:?} as {:?}", status.image, status.mode);
        Ok(Reply::Json(json!(status)))
    }

    pub async fn media_eject(&self) -> Result<Reply, ControlError> {
        let media = self.media()?;
        let status = blocking(move || media.eject()).await?;
        tracing::info!("control: ejected the virtual media");
        Ok(Reply::Json(json!(status)))
    }

    pub async fn type_text(&self, request: &TypeRequest) -> Result<Reply, ControlError> {
        self.shared.paste.type_now(&request.text).await.map_err(ControlError::bad_request)?;
        Ok(Reply::Json(json!({ "typing": request.text.chars().count() })))
    }

    pub async fn keys(&self, request: &KeysRequest) -> Result<Reply, ControlError> {
        let keysyms = crate::hid::combo::parse(&request.combo).map_err(ControlError::bad_request)?;
        tracing::info!("control: pressing {}", request.combo);
        self.shared.paste.press_combo(&keysyms).await;
        Ok(Reply::Json(json!({ "pressed": request.combo })))
    }

    pub fn mouse_mode(&self, request: &MouseModeRequest) -> Result<Reply, ControlError> {
        self.shared.input.set_mouse_mode(request.mode);
        Ok(Reply::Json(json!({ "mouse_mode": request.mode })))
    }

    pub async fn layout(&self, request: LayoutRequest) -> Result<Reply, ControlError> {
        let layout = tokio::task::spawn_blocking(move || Layout::load(&request.name))
            .await
            .map_err(|e| ControlError { status: 500, reason: e.to_string() })?
            .map_err(|e| ControlError::bad_request(e.to_string()))?;
        let name = layout.name().to_string();
        self.shared.input.set_layout(layout);
        Ok(Reply::Json(json!({ "layout": name })))
    }

    pub async fn screenshot(&self) -> Result<Reply, ControlError> {
        let frame = self.shared.screen.frames().borrow().clone();
        let png = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let frame = frame.pixels().map_err(|e| format!("the screen cannot be decoded: {e}"))?;
            png_of(frame)
        })
        .await
        .map_err(|e| ControlError { status: 500, reason: e.to_string() })?
        .map_err(|reason| ControlError { status: 500, reason })?;
        Ok(Reply::Png(png))
    }

    pub async fn status(&self) -> Result<Reply, ControlError> {
        let gadget = self.shared.control.gadget.clone();
        let usb = blocking(move || {
            let Some(name) = gadget else { return Ok(None) };
            let status = crate::hid::gadget::status(&name)?;
            Ok(Some(match status {
                Some(status) => UsbStatus { gadget: name, udc: status.udc, state: status.udc_state },
                None => UsbStatus { gadget: name, udc: None, state: Some("no gadget".into()) },
            }))
        })
        .await?;
        let frame = self.shared.screen.frames().borrow().clone();
        Ok(Reply::Json(json!({
            "usb": usb,
            "capture": self.shared.source_status(),
            "screen": { "width": frame.width(), "height": frame.height() },
            "viewers": self.shared.viewers.count(),
            "layout": self.shared.input.layout().name(),
            "mouse_mode": self.shared.input.mouse_mode(),
        })))
    }

    pub fn viewers(&self) -> Result<Reply, ControlError> {
        Ok(Reply::Json(json!(self.shared.viewers.report())))
    }

    pub fn disconnect(&self, id: u64) -> Result<Reply, ControlError> {
        if self.shared.viewers.close(id, "disconnected through the control interface") {
            Ok(Reply::Json(json!({ "disconnected": id })))
        } else {
            Err(ControlError::not_found(format!("no viewer {id}")))
        }
    }
}

/// Runs configfs and sysfs work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ControlError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ControlError { status: 500, reason: e.to_string() })?
        .map_err(|e| ControlError::failed(&e))
}

/// The frame as a PNG (native pixels are little-endian 0x00RRGGBB).
fn png_of(frame: &rfb::Frame) -> Result<Vec<u8>, String> {
    let rgb: Vec<u8> = frame.pixels().chunks_exact(4).flat_map(|pixel| [pixel[2], pixel[1], pixel[0]]).collect();
    let image = image::RgbImage::from_raw(u32::from(frame.width()), u32::from(frame.height()), rgb)
        .ok_or_else(|| "the frame's size does not match its pixels".to_string())?;
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).map_err(|e| e.to_string())?;
    Ok(png.into_inner())
}
