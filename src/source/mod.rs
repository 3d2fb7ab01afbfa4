//! The seam where a screen comes in: anything that produces frames (the demo target now,
//! V4L2 capture and replay later) implements [`FrameSource`].

use std::sync::Arc;

use tokio::sync::watch;

/// One frame as published by a source. `generation` grows by at least one every time the
/// picture (or its size) changes, so a viewer can tell "nothing new" without comparing pixels.
#[derive(Debug)]
pub struct SourceFrame {
    pub generation: u64,
    pub frame: rfb::Frame,
    /// The frame as the device's JPEG (Huffman tables included), when it came as one: viewers
    /// that take Tight JPEG get these bytes as they are instead of a re-encode.
    pub jpeg: Option<Arc<[u8]>>,
}

pub trait FrameSource: Send + Sync + 'static {
    /// A receiver that always holds the newest frame; `changed()` wakes when a newer one arrives.
    /// Slow consumers simply skip intermediate frames.
    fn frames(&self) -> watch::Receiver<Arc<SourceFrame>>;
}

pub mod mjpeg;
pub mod replay;

/// Publishes frames on a watch channel, numbering generations; what every source needs.
pub struct FramePublisher {
    sender: watch::Sender<Arc<SourceFrame>>,
}

impl FramePublisher {
    pub fn new(first: rfb::Frame, jpeg: Option<Arc<[u8]>>) -> Self {
        Self { sender: watch::Sender::new(Arc::new(SourceFrame { generation: 0, frame: first, jpeg })) }
    }

    /// Publishes `frame` as the next generation. (Whether it changed anything is found once,
    /// by the server's damage detection.)
    pub fn publish(&self, frame: rfb::Frame) {
        self.publish_with_jpeg(frame, None);
    }

    /// Like [`Self::publish`], for a frame that came as `jpeg`.
    pub fn publish_with_jpeg(&self, frame: rfb::Frame, jpeg: Option<Arc<[u8]>>) {
        self.sender.send_modify(|current| {
            *current = Arc::new(SourceFrame { generation: current.generation + 1, frame, jpeg });
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<SourceFrame>> {
        self.sender.subscribe()
    }
}
