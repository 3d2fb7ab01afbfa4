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
}

pub trait FrameSource: Send + Sync + 'static {
    /// A receiver that always holds the newest frame; `changed()` wakes when a newer one arrives.
    /// Slow consumers simply skip intermediate frames.
    fn frames(&self) -> watch::Receiver<Arc<SourceFrame>>;
}
