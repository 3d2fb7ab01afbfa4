//! Virtual media: disk and CD images from one directory, shown to the target through the
//! gadget's mass-storage function, attached, swapped and ejected while kvnc runs.
//!
//! `library.rs` decides which files may be attached (only regular files inside `--media-dir`);
//! `drive.rs` drives the gadget's mass-storage LUNs through configfs; `command.rs` is
//! `kvnc media`, which works without the server.

pub mod command;
pub mod drive;
pub mod library;

use serde::{Deserialize, Serialize};

/// How an image is shown to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MediaMode {
    /// A CD/DVD drive (read-only): for installer ISOs.
    Cdrom,
    /// A removable disk the target can only read.
    ReadOnly,
    /// A removable disk the target can write to.
    ReadWrite,
}

/// One image in the media directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The file's name inside the media directory (the name to attach it by).
    pub name: String,
    pub size_bytes: u64,
}

/// What the target's virtual drive holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStatus {
    /// The attached image's name, or None when the drive is empty. An image attached from
    /// outside the media directory (by hand) is given by its full path.
    pub image: Option<String>,
    pub mode: Option<MediaMode>,
    /// The gadget is bound to a USB device controller whose state is `configured`: the target's
    /// USB host has enumerated the device, so it sees the drives and, if one is in, the medium.
    /// Whether the target's system has also opened or mounted the medium is not visible from
    /// the device side (the kernel keeps the target's "medium locked" flag to itself; an eject
    /// that finds it set is logged, and forced).
    pub host_configured: bool,
}

/// The virtual drive, as the control interface sees it. Errors are for people: they say what
/// went wrong and what to do (no such image, the target holds the drive, no gadget, ...).
pub trait VirtualMedia: Send + Sync {
    fn list(&self) -> anyhow::Result<Vec<ImageInfo>>;
    fn attach(&self, name: &str, mode: MediaMode) -> anyhow::Result<MediaStatus>;
    fn eject(&self) -> anyhow::Result<MediaStatus>;
    fn status(&self) -> anyhow::Result<MediaStatus>;
}
