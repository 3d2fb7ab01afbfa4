//! `--source replay:FILE.mjpeg`: the frames of an MJPEG file (concatenated JPEGs, as a capture
//! dongle's stream saved to disk), kept as JPEG so they can be passed through to viewers.
//! [`MjpegFile`] loads, splits and checks the file; playing it (one frame per period, looping)
//! is the replay source's job.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::jpeg::{ensure_dht, split_mjpeg, validate};

/// Largest file loaded (all frames stay in memory).
const MAX_FILE_LEN: u64 = 1 << 30;

/// Whether `path` names an MJPEG file (`.mjpeg` or `.mjpg`, any case).
pub fn is_mjpeg_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "mjpeg" | "mjpg"))
}

/// One frame of an MJPEG file.
#[derive(Debug, Clone)]
pub struct MjpegFrame {
    /// A valid baseline JPEG, with a Huffman table (inserted when the file's frame had none).
    pub jpeg: Arc<[u8]>,
    pub width: u16,
    pub height: u16,
}

/// The good frames of an MJPEG file, in file order. Sizes may differ between frames (a file can
/// contain a resolution change).
#[derive(Debug, Clone)]
pub struct MjpegFile {
    frames: Vec<MjpegFrame>,
    jpegs: Vec<Arc<[u8]>>,
    skipped: usize,
}

impl MjpegFile {
    /// Loads and splits `path`. Broken stretches are skipped with a warning; a file without a
    /// single good frame is an error.
    pub fn open(path: &Path) -> anyhow::Result<MjpegFile> {
        let len = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
        if len > MAX_FILE_LEN {
            bail!("{} is {len} bytes; MJPEG replay files are limited to {MAX_FILE_LEN}", path.display());
        }
        let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        MjpegFile::from_bytes(&data).with_context(|| format!("replay source {}", path.display()))
    }

    /// Splits `data` into frames, validates each and inserts missing Huffman tables.
    pub fn from_bytes(data: &[u8]) -> anyhow::Result<MjpegFile> {
        let mut frames = Vec::new();
        let mut skipped = 0;
        for (index, frame) in split_mjpeg(data).enumerate() {
            let checked = frame.map_err(anyhow::Error::from).and_then(|jpeg| {
                let info = validate(jpeg)?;
                Ok((ensure_dht(jpeg)?, info))
            });
            match checked {
                Ok((jpeg, info)) => {
                    frames.push(MjpegFrame { jpeg: Arc::from(jpeg.as_ref()), width: info.width, height: info.height })
                }
                Err(e) => {
                    skipped += 1;
                    tracing::warn!("MJPEG: skipping piece {index}: {e:#}");
                }
            }
        }
        if frames.is_empty() {
            bail!("no valid JPEG frames found ({skipped} broken pieces)");
        }
        let jpegs = frames.iter().map(|f| Arc::clone(&f.jpeg)).collect();
        Ok(MjpegFile { frames, jpegs, skipped })
    }

    /// The JPEGs, each valid and with a DHT.
    pub fn frames(&self) -> &[Arc<[u8]>] {
        &self.jpegs
    }

    /// The frames with their sizes.
    pub fn frame_info(&self) -> &[MjpegFrame] {
        &self.frames
    }

    /// How many broken pieces of the file were skipped.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::{has_dht, strip_dht};

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sequences").join(name)
    }

    #[test]
    fn loads_the_fixture_files() {
        assert!(is_mjpeg_path(&fixture("desktop-moving-window.mjpeg")));
        assert!(is_mjpeg_path(Path::new("a/B.MJPG")));
        assert!(!is_mjpeg_path(Path::new("a/b.jpg")));
        let with = MjpegFile::open(&fixture("desktop-moving-window.mjpeg")).unwrap();
        let without = MjpegFile::open(&fixture("desktop-moving-window-nodht.mjpeg")).unwrap();
        for file in [&with, &without] {
            assert_eq!((file.frames().len(), file.skipped()), (15, 0));
            assert!(file.frame_info().iter().all(|f| (f.width, f.height) == (1280, 720)));
            assert!(file.frames().iter().all(|j| has_dht(j) == Ok(true)));
        }
        // The frames of the DHT-less file got the standard table; the others are unchanged.
        let raw = std::fs::read(fixture("desktop-moving-window.mjpeg")).unwrap();
        assert_eq!(with.frames().iter().map(|j| j.len()).sum::<usize>(), raw.len());
        assert!(MjpegFile::open(&fixture("missing.mjpeg")).is_err());
    }

    #[test]
    fn broken_pieces_are_skipped() {
        let raw = std::fs::read(fixture("desktop-moving-window-nodht.mjpeg")).unwrap();
        let frames: Vec<&[u8]> = split_mjpeg(&raw).map(Result::unwrap).collect();
        let mut data = frames[0].to_vec();
        data.extend_from_slice(b"junk between frames");
        data.extend_from_slice(&frames[1][..frames[1].len() - 100]);
        data.extend_from_slice(frames[2]);
        data.extend_from_slice(&strip_dht(frames[3]).unwrap());
        let file = MjpegFile::from_bytes(&data).unwrap();
        assert_eq!((file.frames().len(), file.skipped()), (3, 2));
        assert!(MjpegFile::from_bytes(b"nothing").is_err());
        assert!(MjpegFile::from_bytes(&[]).is_err());
    }
}
