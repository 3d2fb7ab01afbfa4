//! `--source replay:PATH`: plays recorded frames as if a capture device sent them — one PNG or
//! JPEG file, a directory of them played in name order, or an MJPEG file (concatenated JPEGs,
//! as a USB capture dongle sends them), at a fixed rate, looping; or, at 0 fps, one frame
//! further at each SIGUSR1 (scripted demos, and benches that change the screen when they want).
//!
//! Image files are decoded once and kept (up to [`MAX_DECODED_BYTES`]), so replaying costs
//! about what a capture device's new frame costs, not a PNG decode per frame.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::watch;

use super::mjpeg::{MjpegFile, is_mjpeg_path};
use super::{FramePublisher, FrameSource, JpegPicture, Picture, SourceFrame};

pub struct ReplaySource {
    publisher: FramePublisher,
}

impl FrameSource for ReplaySource {
    fn frames(&self) -> watch::Receiver<Arc<SourceFrame>> {
        self.publisher.subscribe()
    }

    fn status(&self) -> super::SourceStatus {
        super::SourceStatus { source: "replay".into(), signal: true, ..Default::default() }
    }
}

/// Decoded frames kept for replaying again; more are decoded each time they come round.
const MAX_DECODED_BYTES: usize = 256 << 20;

/// What a replay plays: image files (with the frames decoded so far), or the JPEGs of an MJPEG
/// file (kept as JPEG, with Huffman tables inserted where the recording had none).
enum Recording {
    Files { files: Vec<PathBuf>, decoded: Mutex<Decoded> },
    Mjpeg(Vec<Arc<[u8]>>),
}

#[derive(Default)]
struct Decoded {
    frames: std::collections::HashMap<usize, rfb::Frame>,
    bytes: usize,
}

impl Recording {
    fn open(path: &Path) -> anyhow::Result<Self> {
        if is_mjpeg_path(path) {
            let file = MjpegFile::open(path)?;
            if file.frames().is_empty() {
                bail!("{} holds no valid JPEG frames", path.display());
            }
            return Ok(Self::Mjpeg(file.frames().to_vec()));
        }
        Ok(Self::Files { files: frame_files(path)?, decoded: Mutex::default() })
    }

    fn len(&self) -> usize {
        match self {
            Self::Files { files, .. } => files.len(),
            Self::Mjpeg(frames) => frames.len(),
        }
    }

    /// Frame `index`: an image file decoded, or a JPEG as it is (decoded only if a viewer
    /// needs its pixels).
    fn load(&self, index: usize) -> anyhow::Result<Picture> {
        match self {
            Self::Files { files, decoded } => {
                if let Some(frame) = decoded.lock().unwrap_or_else(PoisonError::into_inner).frames.get(&index) {
                    return Ok(Picture::Pixels(frame.clone()));
                }
                let frame = load_frame(&files[index])?;
                let mut decoded = decoded.lock().unwrap_or_else(PoisonError::into_inner);
                let size = frame.pixels().len();
                if decoded.bytes + size <= MAX_DECODED_BYTES {
                    decoded.bytes += size;
                    decoded.frames.insert(index, frame.clone());
                }
                Ok(Picture::Pixels(frame))
            }
            Self::Mjpeg(frames) => Ok(Picture::Jpeg(JpegPicture::new(frames[index].clone())?)),
        }
    }
}

impl ReplaySource {
    /// Opens `path` and, when it holds several frames, starts playing them at `fps`, or at
    /// each SIGUSR1 when `fps` is 0. Must be called inside a tokio runtime.
    pub fn open(path: &Path, fps: u32) -> anyhow::Result<Arc<Self>> {
        let recording = Arc::new(Recording::open(path)?);
        let first = recording.load(0)?;
        let source = Arc::new(Self { publisher: FramePublisher::new(first) });
        if recording.len() > 1 {
            let steps = if fps == 0 {
                let signals = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                    .context("cannot watch for SIGUSR1 to step the replay")?;
                Steps::Signal(signals)
            } else {
                let mut ticks = tokio::time::interval(Duration::from_secs(1) / fps);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                Steps::Ticks(ticks)
            };
            tokio::spawn(play(Arc::downgrade(&source), recording, steps));
        }
        Ok(source)
    }
}

/// When the replay moves to its next frame.
enum Steps {
    Ticks(tokio::time::Interval),
    Signal(tokio::signal::unix::Signal),
}

impl Steps {
    async fn next(&mut self) {
        match self {
            Steps::Ticks(ticks) => {
                ticks.tick().await;
            }
            Steps::Signal(signals) => {
                // None only once the runtime shuts down; then nothing moves any more.
                if signals.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Loops over the recording, one frame per step; a frame that fails to load is skipped with a
/// warning.
async fn play(source: std::sync::Weak<ReplaySource>, recording: Arc<Recording>, mut steps: Steps) {
    if let Steps::Ticks(ticks) = &mut steps {
        // An interval's first tick is immediate: the first frame is already showing.
        ticks.tick().await;
    }
    for index in (0..recording.len()).cycle().skip(1) {
        steps.next().await;
        let Some(source) = source.upgrade() else { return };
        let recording = recording.clone();
        match tokio::task::spawn_blocking(move || recording.load(index)).await {
            Ok(Ok(picture)) => source.publisher.publish(picture),
            Ok(Err(e)) => tracing::warn!("replay: skipping frame {index}: {e:#}"),
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
