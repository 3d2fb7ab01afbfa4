//! `--source replay:PATH`: plays still images as if a capture device sent them — one PNG or
//! JPEG file, or a directory of them played in name order at a fixed rate, looping.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::watch;

use super::{FramePublisher, FrameSource, SourceFrame};

pub struct ReplaySource {
    publisher: FramePublisher,
}

impl FrameSource for ReplaySource {
    fn frames(&self) -> watch::Receiver<Arc<SourceFrame>> {
        self.publisher.subscribe()
    }
}

impl ReplaySource {
    /// Opens `path` and, when it holds several frames, starts playing them at `fps`.
    /// Must be called inside a tokio runtime.
    pub fn open(path: &Path, fps: u32) -> anyhow::Result<Arc<Self>> {
        let files = frame_files(path)?;
        let first = load_frame(&files[0])?;
        let source = Arc::new(Self { publisher: FramePublisher::new(first) });
        if files.len() > 1 {
            let period = Duration::from_secs(1) / fps.max(1);
            tokio::spawn(play(Arc::downgrade(&source), files, period));
        }
        Ok(source)
    }
}

/// Loops over `files`, one per `period`; a file that fails to load is skipped with a warning.
async fn play(source: std::sync::Weak<ReplaySource>, files: Vec<PathBuf>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticks.tick().await;
    for file in files.iter().cycle().skip(1) {
        ticks.tick().await;
        let Some(source) = source.upgrade() else { return };
        let path = file.clone();
        match tokio::task::spawn_blocking(move || load_frame(&path)).await {
            Ok(Ok(frame)) => source.publisher.publish(frame),
            Ok(Err(e)) => tracing::warn!("replay: skipping frame: {e:#}"),
            Err(e) => tracing::warn!("replay: frame loader failed: {e}"),
        }
    }
}

/// The frames to play: the file itself, or the images in the directory sorted by name.
fn frame_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).with_context(|| format!("cannot read replay source {}", path.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    if files.is_empty() {
        bail!("replay source {} holds no .png or .jpg frames", path.display());
    }
    files.sort();
    Ok(files)
}

/// Decodes an image file into a native frame.
pub fn load_frame(path: &Path) -> anyhow::Result<rfb::Frame> {
    let image = image::open(path).with_context(|| format!("cannot decode {}", path.display()))?.to_rgb8();
    let (width, height) = image.dimensions();
    let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
        bail!("{} is {width}x{height}, larger than RFB's 65535x65535", path.display());
    };
    let mut pixels = Vec::with_capacity(image.as_raw().len() / 3 * 4);
    for rgb in image.as_raw().chunks_exact(3) {
        pixels.extend_from_slice(&[rgb[2], rgb[1], rgb[0], 0]);
    }
    Ok(rfb::Frame::from_pixels(w, h, pixels)?)
}
