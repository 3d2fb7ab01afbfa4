//! The seam where a screen comes in: anything that produces frames (the demo target now,
//! V4L2 capture and replay later) implements [`FrameSource`].

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rfb::Rect;
use rfb::region::Region;
use tokio::sync::watch;

use crate::jpeg::{JpegError, crop, decode_to_frame, ensure_dht, validate};

/// One frame as published by a source. `generation` grows by at least one every time the
/// picture (or its size) changes, so a viewer can tell "nothing new" without comparing pixels.
#[derive(Debug)]
pub struct SourceFrame {
    pub generation: u64,
    pub picture: Picture,
}

/// A frame's content: pixels, or the device's JPEG, decoded only if some viewer needs pixels.
#[derive(Debug)]
pub enum Picture {
    Pixels(rfb::Frame),
    Jpeg(JpegPicture),
}

/// A validated JPEG frame (Huffman tables included) and, once viewers asked, its pixels and
/// lossless crops of it.
#[derive(Debug)]
pub struct JpegPicture {
    bytes: Arc<[u8]>,
    width: u16,
    height: u16,
    mcu: (u16, u16),
    /// SOF0, not SOF1 (see [`crate::jpeg::JpegInfo::baseline`]).
    baseline: bool,
    /// Decoded at most once, by the first viewer that needs pixels; a failure is kept too, so
    /// a broken frame is not decoded again by every viewer.
    decoded: OnceLock<Result<rfb::Frame, JpegError>>,
    /// Crops made for viewers, kept for the others (viewers usually ask for the same rects).
    crops: Mutex<Vec<(Rect, Arc<[u8]>)>>,
}

impl JpegPicture {
    /// Checks the frame's structure (no decoding).
    pub fn new(bytes: Arc<[u8]>) -> Result<Self, JpegError> {
        let info = validate(&bytes)?;
        Ok(Self {
            bytes,
            width: info.width,
            height: info.height,
            mcu: info.mcu,
            baseline: info.baseline,
            decoded: OnceLock::new(),
            crops: Mutex::default(),
        })
    }

    /// A frame as a capture device sends it: Huffman tables inserted when missing (cheap
    /// dongles leave them out, relying on the standard ones), then checked like [`Self::new`].
    pub fn from_capture(frame: &[u8]) -> Result<Self, JpegError> {
        let jpeg = ensure_dht(frame)?;
        Self::new(Arc::from(jpeg.as_ref()))
    }

    pub fn bytes(&self) -> &Arc<[u8]> {
        &self.bytes
    }

    /// Whether the frame is baseline JPEG (SOF0), which every JPEG (21) decoder takes.
    pub fn is_baseline(&self) -> bool {
        self.baseline
    }

    /// Whether some viewer has needed (and so decoded) the pixels.
    pub fn is_decoded(&self) -> bool {
        self.decoded.get().is_some()
    }

    /// The rects of at most [`crop::MAX_CROPS`] lossless crops of this JPEG that cover
    /// `region`; `None` when the region does not reduce to so few rects.
    pub fn crop_rects(&self, region: &Region) -> Option<Vec<Rect>> {
        crop::crop_rects(region, self.mcu, self.width, self.height)
    }

    /// A lossless crop to `rect` (one of [`Self::crop_rects`]), made once per frame and rect.
    pub fn crop(&self, rect: Rect) -> Result<Arc<[u8]>, JpegError> {
        let cached = |crops: &Vec<(Rect, Arc<[u8]>)>| crops.iter().find(|(r, _)| *r == rect).map(|(_, c)| c.clone());
        if let Some(jpeg) = cached(&self.crops.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(jpeg);
        }
        // Cropped outside the lock: another viewer may crop the same rect meanwhile (rare, harmless).
        let jpeg: Arc<[u8]> = crop::crop(&self.bytes, rect)?.into();
        self.crops.lock().unwrap_or_else(PoisonError::into_inner).push((rect, jpeg.clone()));
        Ok(jpeg)
    }
}

impl SourceFrame {
    pub fn width(&self) -> u16 {
        match &self.picture {
            Picture::Pixels(frame) => frame.width(),
            Picture::Jpeg(jpeg) => jpeg.width,
        }
    }

    pub fn height(&self) -> u16 {
        match &self.picture {
            Picture::Pixels(frame) => frame.height(),
            Picture::Jpeg(jpeg) => jpeg.height,
        }
    }

    pub fn bounds(&self) -> rfb::Rect {
        rfb::Rect::new(0, 0, self.width(), self.height())
    }

    /// The frame as the device's JPEG, when it came as one: viewers that take Tight JPEG get
    /// these bytes (or crops of them) as they are instead of a re-encode.
    pub fn jpeg(&self) -> Option<&JpegPicture> {
        match &self.picture {
            Picture::Pixels(_) => None,
            Picture::Jpeg(jpeg) => Some(jpeg),
        }
    }

    /// The pixels, decoding a JPEG frame the first time they are asked for (blocks for the
    /// decode: tens of milliseconds at 1080p on a Pi).
    pub fn pixels(&self) -> Result<&rfb::Frame, JpegError> {
        match &self.picture {
            Picture::Pixels(frame) => Ok(frame),
            Picture::Jpeg(jpeg) => {
                let decoded = jpeg.decoded.get_or_init(|| {
                    tracing::debug!(
                        "decoding a {}x{} JPEG frame for viewers that need pixels",
                        jpeg.width,
                        jpeg.height
                    );
                    decode_to_frame(&jpeg.bytes)
                });
                decoded.as_ref().map_err(Clone::clone)
            }
        }
    }

    /// The pixels if they can be had without decoding: always for a pixel frame, for a JPEG
    /// frame once another viewer had it decoded.
    pub fn pixels_at_hand(&self) -> Option<&rfb::Frame> {
        match &self.picture {
            Picture::Pixels(frame) => Some(frame),
            Picture::Jpeg(jpeg) => jpeg.decoded.get()?.as_ref().ok(),
        }
    }
}

pub trait FrameSource: Send + Sync + 'static {
    /// A receiver that always holds the newest frame; `changed()` wakes when a newer one arrives.
    /// Slow consumers simply skip intermediate frames.
    fn frames(&self) -> watch::Receiver<Arc<SourceFrame>>;

    /// Whether any viewer is connected. A source that costs something per frame (capture)
    /// stops converting frames, and eventually streaming, while nobody watches.
    fn set_watched(&self, _watched: bool) {}

    /// What the screen comes from and whether a picture is coming, for the control interface.
    fn status(&self) -> SourceStatus;
}

/// A source's state as the control interface reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceStatus {
    /// "demo", "replay:PATH", "v4l2:/dev/video0".
    pub source: String,
    /// Whether pictures are coming in (false: a no-signal screen is shown).
    pub signal: bool,
    /// The capture mode in use, e.g. "MJPG 1920x1080@30".
    pub mode: Option<String>,
    /// Why there is no picture, in the words of the screen that says so.
    pub problem: Option<String>,
}

pub mod mjpeg;
pub mod replay;
pub mod status;
pub mod v4l2;

/// Publishes frames on a watch channel, numbering generations; what every source needs.
pub struct FramePublisher {
    sender: watch::Sender<Arc<SourceFrame>>,
}

impl FramePublisher {
    pub fn new(first: Picture) -> Self {
        Self { sender: watch::Sender::new(Arc::new(SourceFrame { generation: 0, picture: first })) }
    }

    /// Publishes `picture` as the next generation. (Whether it changed anything is found once,
    /// by the server's damage detection.)
    pub fn publish(&self, picture: Picture) {
        self.sender.send_modify(|current| {
            *current = Arc::new(SourceFrame { generation: current.generation + 1, picture });
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<SourceFrame>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::test_util::{encode_rgb, synthetic_rgb};
    use crate::jpeg::{has_dht, strip_dht};

    /// A dongle-like frame: 4:2:2 JPEG of a synthetic picture.
    fn frame() -> Vec<u8> {
        encode_rgb(&synthetic_rgb(320, 240), 320, 240, 80)
    }

    #[test]
    fn capture_frames_with_and_without_huffman_tables_decode_alike() {
        let with = JpegPicture::from_capture(&frame()).expect("a complete frame");
        let stripped = strip_dht(&frame()).expect("strip").into_owned();
        assert!(!has_dht(&stripped).unwrap(), "the test frame lost its tables");
        let without = JpegPicture::from_capture(&stripped).expect("the standard tables are inserted");
        assert!(has_dht(without.bytes()).unwrap());
        let source = |picture| SourceFrame { generation: 1, picture: Picture::Jpeg(picture) };
        let (with, without) = (source(with), source(without));
        assert_eq!(with.pixels().unwrap().pixels(), without.pixels().unwrap().pixels());
        assert_eq!((without.width(), without.height()), (320, 240));
    }

    #[test]
    fn broken_capture_frames_are_refused_not_shown() {
        let good = frame();
        let truncated = &good[..good.len() / 2];
        let mut corrupt = good.clone();
        // Garbage in place of the start-of-frame header.
        let sof = corrupt.windows(2).position(|marker| marker == [0xFF, 0xC0]).expect("SOF0");
        corrupt[sof + 5..sof + 9].fill(0);
        for (name, bytes) in
            [("empty", &[][..]), ("truncated", truncated), ("corrupt", &corrupt), ("not JPEG", b"RIFF")]
        {
            assert!(JpegPicture::from_capture(bytes).is_err(), "{name} was accepted");
        }
    }
}
