//! Encoded data that viewers with equal settings can share. Rects that carry no compression
//! state (today: Tight JPEG rects) are encoded once per frame and copied to every viewer that
//! asks for the same rect of the same frame at the same quality (Tight JPEG rects and JPEG (21)
//! rects alike: their bytes are the same JPEG); zlib-stream rects cannot be
//! shared because each connection's streams differ.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::jpeg_codec::Subsampling;
use crate::frame::Rect;

/// One JPEG rect of one frame at one quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JpegKey {
    /// The frame's generation number.
    pub frame: u64,
    pub rect: Rect,
    pub quality: u8,
    pub subsampling: Subsampling,
}

/// Implemented by the server (kvnc keeps one for all viewers).
pub trait SharedEncodings: Send + Sync {
    /// The JPEG for `key`; `compress` runs only if no viewer has compressed it yet. `None`
    /// when compressing failed (the encoder then falls back to zlib).
    fn jpeg(&self, key: JpegKey, compress: &mut dyn FnMut() -> Option<Vec<u8>>) -> Option<Arc<[u8]>>;
}

/// The usual [`SharedEncodings`]: one JPEG per rect, frame and quality, compressed by whichever
/// connection needs it first while the others wait for that one rect only. Entries of frames
/// older than the newest asked for are dropped, so the cache holds about one frame's rects.
#[derive(Default)]
pub struct SharedRects {
    jpegs: Mutex<HashMap<JpegKey, Slot>>,
}

type Slot = Arc<OnceLock<Option<Arc<[u8]>>>>;

impl SharedEncodings for SharedRects {
    fn jpeg(&self, key: JpegKey, compress: &mut dyn FnMut() -> Option<Vec<u8>>) -> Option<Arc<[u8]>> {
        let slot = {
            let mut jpegs = self.jpegs.lock().unwrap_or_else(PoisonError::into_inner);
            // Viewers move on to newer frames; older entries would only grow the cache.
            jpegs.retain(|cached, _| cached.frame >= key.frame);
            jpegs.entry(key).or_default().clone()
        };
        slot.get_or_init(|| compress().map(Arc::from)).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(frame: u64) -> JpegKey {
        JpegKey { frame, rect: Rect::new(0, 0, 8, 8), quality: 92, subsampling: Subsampling::S444 }
    }

    #[test]
    fn compresses_once_per_key_and_forgets_old_frames() {
        let cache = SharedRects::default();
        let mut calls = 0;
        for _ in 0..3 {
            let jpeg = cache.jpeg(key(1), &mut || {
                calls += 1;
                Some(vec![1, 2, 3])
            });
            assert_eq!(jpeg.as_deref(), Some(&[1, 2, 3][..]));
        }
        assert_eq!(calls, 1);
        cache.jpeg(key(2), &mut || Some(vec![4]));
        assert_eq!(cache.jpegs.lock().unwrap().len(), 1, "frame 1's entry was dropped");
    }
}
