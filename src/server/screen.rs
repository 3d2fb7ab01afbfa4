//! The screen as viewers see it: the source's frames, plus what changed from one to the next.
//!
//! One task compares each new frame with the previous one once for all viewers — pixels in
//! 64×64 blocks (`rfb::damage`), JPEG frames without a full decode (`jpeg::JpegDamage`) — looks
//! for a moved area in what changed (`rfb::moves`: a dragged window, a scrolled console; pixel
//! frames only), and keeps a short history of those changes so that a viewer that skipped frames
//! can still ask "what changed since the frame I last took in?". Frames that change nothing are
//! not passed on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rfb::damage::DamageDetector;
use rfb::moves::{Move, MoveSearch};
use rfb::region::Region;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::jpeg::{JpegChange, JpegDamage};
use crate::source::{FrameSource, Picture, SourceFrame};

/// Frames of history kept; a viewer further behind is sent everything again.
const HISTORY: usize = 64;
/// How long a JPEG stream must bring no new frame bytes before what its damage threshold hid
/// is sent (so viewers end up with the newest frame exactly).
const SETTLE_AFTER: Duration = Duration::from_millis(200);

pub struct Screen {
    frames: watch::Receiver<Arc<SourceFrame>>,
    history: Arc<Mutex<DamageHistory>>,
}

/// What changed from one frame to another.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    pub damage: Region,
    /// An area of the newer frame that is the older frame's, moved (inside `damage`, unless
    /// those pixels did not change). Only between consecutive frames: moves are not chained.
    pub moved: Option<Move>,
}

impl From<Region> for Change {
    fn from(damage: Region) -> Self {
        Change { damage, moved: None }
    }
}

/// The changes between consecutive frames the screen published: (from, to, what changed).
#[derive(Default)]
struct DamageHistory {
    entries: VecDeque<(u64, u64, Change)>,
}

impl DamageHistory {
    fn record(&mut self, from: u64, to: u64, change: Change) {
        if self.entries.len() == HISTORY {
            self.entries.pop_front();
        }
        self.entries.push_back((from, to, change));
    }

    fn since(&self, generation: u64) -> Option<Change> {
        let Some(first) = self.entries.iter().position(|(_, to, _)| *to > generation) else {
            return Some(Change::default());
        };
        if self.entries[first].0 != generation {
            return None;
        }
        let newer = self.entries.range(first..);
        // A move is known from the frame it was found in: a viewer further behind gets the
        // damage, which covers the move's destination.
        let moved = if newer.len() == 1 { self.entries[first].2.moved } else { None };
        let mut damage = Region::new();
        for (_, _, change) in newer {
            damage.union(&change.damage);
        }
        Some(Change { damage, moved })
    }
}

impl Screen {
    /// Starts following `source` (kept alive as long as the screen is). Must be called inside a
    /// tokio runtime.
    pub fn start(source: Arc<dyn FrameSource>) -> Self {
        let mut source_frames = source.frames();
        let first = source_frames.borrow_and_update().clone();
        let (sender, frames) = watch::channel(first.clone());
        let history = Arc::new(Mutex::new(DamageHistory::default()));
        tokio::spawn(follow(source, source_frames, sender, history.clone(), first));
        Self { frames, history }
    }

    /// A receiver of the newest frame, published only after its damage is recorded.
    pub fn frames(&self) -> watch::Receiver<Arc<SourceFrame>> {
        self.frames.clone()
    }

    /// What changed after frame `generation` up to the newest frame; `None` when that is no
    /// longer known (the viewer must then take everything).
    pub fn changes_since(&self, generation: u64) -> Option<Change> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner).since(generation)
    }
}

async fn follow(
    // Owning the source keeps it publishing (a source ends when its last owner drops it).
    _source: Arc<dyn FrameSource>,
    mut source: watch::Receiver<Arc<SourceFrame>>,
    sender: watch::Sender<Arc<SourceFrame>>,
    history: Arc<Mutex<DamageHistory>>,
    first: Arc<SourceFrame>,
) {
    let mut tracker = Tracker::start(&first);
    let mut previous = first.generation;
    // The newest frame not passed on (its change was below the JPEG threshold), and when to
    // settle: SETTLE_AFTER after the last frame with new bytes.
    let mut unsettled: Option<(Arc<SourceFrame>, Instant)> = None;
    loop {
        let settle_at = unsettled.as_ref().map(|(_, at)| *at);
        let (frame, change) = tokio::select! {
            changed = source.changed() => {
                if changed.is_err() {
                    return;
                }
                let frame = source.borrow_and_update().clone();
                let compared = frame.clone();
                // Comparing 1080p frames takes milliseconds: keep it off the async workers.
                let Ok((returned, damage)) = tokio::task::spawn_blocking(move || {
                    let damage = tracker.compare(&compared);
                    (tracker, damage)
                })
                .await
                else {
                    return;
                };
                tracker = returned;
                let Some(change) = damage else { continue };
                unsettled = tracker.wants_settle().then(|| (frame.clone(), Instant::now() + SETTLE_AFTER));
                (frame, change)
            }
            () = tokio::time::sleep_until(settle_at.unwrap_or_else(Instant::now)), if settle_at.is_some() => {
                let Some((frame, _)) = unsettled.take() else { continue };
                let damage = tracker.settle();
                tracing::trace!("settled: {} px changed below the damage threshold", damage.area());
                (frame, Change::from(damage))
            }
        };
        // An unchanged frame is not passed on: a still screen wakes no viewer. (A new size is
        // always damage: the whole new frame.)
        if change.damage.is_empty() {
            continue;
        }
        history.lock().unwrap_or_else(PoisonError::into_inner).record(previous, frame.generation, change);
        previous = frame.generation;
        if sender.send(frame).is_err() {
            return;
        }
    }
}

/// Finds what changed between consecutive frames, by the kind of frame. Public so the capture
/// bench measures exactly the server's damage step.
pub enum Tracker {
    Pixels(DamageDetector, MoveSearch),
    Jpeg(JpegDamage),
}

impl Tracker {
    /// A tracker for frames of `first`'s kind, with `first` as the previous frame.
    pub fn start(first: &SourceFrame) -> Tracker {
        match &first.picture {
            Picture::Pixels(pixels) => {
                let mut detector = DamageDetector::new();
                detector.compare(pixels);
                Tracker::Pixels(detector, MoveSearch::new())
            }
            Picture::Jpeg(jpeg) => {
                let mut damage = JpegDamage::new();
                // A frame that fails here is still taken as the first: the next good one is
                // then compared from scratch.
                if let Err(e) = damage.compare(jpeg.bytes()) {
                    tracing::warn!("JPEG frame from the source: {e}");
                }
                Tracker::Jpeg(damage)
            }
        }
    }

    /// What changed from the previous frame to `frame`: `None` when it is the same frame
    /// (nothing at all changed), an empty damage for a change too small to report now, the
    /// whole frame when the kind of frame changed (the previous one cannot be compared).
    pub fn compare(&mut self, frame: &SourceFrame) -> Option<Change> {
        let whole = Region::from_rect(frame.bounds());
        let damage = match (&mut *self, &frame.picture) {
            (Tracker::Pixels(detector, moves), Picture::Pixels(pixels)) => {
                // Frames share their pixels: holding the previous one copies nothing.
                let previous = detector.previous().cloned();
                let damage = detector.compare(pixels);
                let moved = previous.and_then(|previous| moves.find(&previous, pixels, &damage));
                return (!damage.is_empty()).then_some(Change { damage, moved });
            }
            (Tracker::Jpeg(damage), Picture::Jpeg(jpeg)) => match damage.compare(jpeg.bytes()) {
                Ok(JpegChange::Identical) => Region::new(),
                Ok(JpegChange::NoVisibleChange) => return Some(Change::default()),
                Ok(JpegChange::Changed(rects)) => Region::from_rects(&rects),
                Ok(JpegChange::Unexamined | JpegChange::Resized { .. }) => whole,
                Err(e) => {
                    tracing::warn!("dropped a JPEG frame from the source: {e}");
                    Region::new()
                }
            },
            _ => {
                *self = Tracker::start(frame);
                whole
            }
        };
        (!damage.is_empty()).then_some(Change::from(damage))
    }

    fn wants_settle(&self) -> bool {
        matches!(self, Tracker::Jpeg(damage) if damage.wants_settle())
    }

    /// What a JPEG stream's threshold hid since the last visible change (see [`JpegDamage::settle`]).
    fn settle(&mut self) -> Region {
        match self {
            Tracker::Jpeg(damage) => Region::from_rects(&damage.settle()),
            Tracker::Pixels(..) => Region::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfb::Rect;

    #[test]
    fn history_unions_what_a_viewer_missed() {
        let mut history = DamageHistory::default();
        history.record(0, 1, Region::from_rect(Rect::new(0, 0, 1, 1)).into());
        history.record(1, 3, Region::from_rect(Rect::new(5, 5, 1, 1)).into());
        assert_eq!(history.since(3).map(|c| c.damage.area()), Some(0), "up to date");
        assert_eq!(history.since(1).map(|c| c.damage.area()), Some(1));
        assert_eq!(history.since(0).map(|c| c.damage.area()), Some(2));
        assert!(history.since(2).is_none(), "never published: unknown");
        for g in 3..3 + HISTORY as u64 {
            history.record(g, g + 1, Change::default());
        }
        assert!(history.since(0).is_none(), "forgotten");
    }

    /// A move reaches the viewer that saw the frame before it, not one further behind.
    #[test]
    fn a_move_is_known_only_from_the_frame_before_it() {
        let mut history = DamageHistory::default();
        let moved = Move { dst: Rect::new(10, 0, 50, 50), src_x: 0, src_y: 0 };
        let damage = Region::from_rect(Rect::new(0, 0, 60, 50));
        history.record(0, 1, Region::from_rect(Rect::new(90, 0, 1, 1)).into());
        history.record(1, 2, Change { damage: damage.clone(), moved: Some(moved) });
        assert_eq!(history.since(1), Some(Change { damage, moved: Some(moved) }));
        let both = history.since(0).expect("known");
        assert_eq!((both.damage.area(), both.moved), (60 * 50 + 1, None));
    }
}
