//! When a viewer gets an update, and of what: one FramebufferUpdate answers every request
//! received since the last one, and an incremental request waits until the picture changes.
//!
//! Change is tracked per frame generation (the whole requested area is re-sent on change);
//! damage regions replace that when damage detection arrives.

use rfb::Rect;

#[derive(Debug, Default)]
pub struct UpdateScheduler {
    /// Union of the areas requested since the last update.
    requested: Rect,
    has_request: bool,
    /// Areas asked for non-incrementally: sent even when nothing changed.
    forced: Rect,
    /// Everything must be sent again (e.g. the pixel format changed).
    refresh: bool,
    sent_generation: Option<u64>,
}

impl UpdateScheduler {
    pub fn request(&mut self, incremental: bool, rect: Rect) {
        self.has_request = true;
        self.requested = self.requested.union(&rect);
        if !incremental {
            self.forced = self.forced.union(&rect);
        }
    }

    /// Whether the viewer is waiting for an update (only then may anything be sent).
    pub fn has_request(&self) -> bool {
        self.has_request
    }

    /// The viewer's copy of the screen is no longer valid (new pixel format, new size).
    pub fn refresh(&mut self) {
        self.refresh = true;
    }

    /// A resize went out in an update of its own: it answered the pending request.
    pub fn resized(&mut self) {
        self.has_request = false;
        self.requested = Rect::default();
        self.forced = Rect::default();
        self.refresh = true;
    }

    /// The area to send now for the frame of `generation`, or `None` to keep waiting.
    /// `pseudo_pending`: a pseudo-rect must go out, so an update is due even with no pixels.
    pub fn take(&mut self, generation: u64, pseudo_pending: bool) -> Option<Rect> {
        if !self.has_request {
            return None;
        }
        let changed = self.refresh || self.sent_generation != Some(generation);
        let area = if changed { self.requested.union(&self.forced) } else { self.forced };
        if area.is_empty() && !pseudo_pending {
            return None;
        }
        *self = Self { sent_generation: Some(generation), ..Self::default() };
        Some(area)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Rect = Rect::new(0, 0, 100, 50);

    #[test]
    fn incremental_waits_for_a_new_generation() {
        let mut s = UpdateScheduler::default();
        assert_eq!(s.take(1, false), None, "no request, no update");
        s.request(true, SCREEN);
        assert_eq!(s.take(1, false), Some(SCREEN), "first update sends everything requested");
        s.request(true, SCREEN);
        assert_eq!(s.take(1, false), None, "same generation: wait");
        assert_eq!(s.take(2, false), Some(SCREEN));
    }

    #[test]
    fn non_incremental_is_sent_at_once() {
        let mut s = UpdateScheduler::default();
        s.request(true, SCREEN);
        s.take(1, false);
        s.request(false, Rect::new(0, 0, 10, 10));
        s.request(true, SCREEN);
        assert_eq!(s.take(1, false), Some(Rect::new(0, 0, 10, 10)), "only the forced part when unchanged");
        s.request(true, Rect::new(0, 0, 10, 10));
        s.request(true, Rect::new(50, 20, 10, 10));
        assert_eq!(s.take(2, false), Some(Rect::new(0, 0, 60, 30)), "requests coalesce into one update");
    }

    #[test]
    fn refresh_and_pseudo_rects() {
        let mut s = UpdateScheduler::default();
        s.request(true, SCREEN);
        s.take(1, false);
        s.request(true, SCREEN);
        s.refresh();
        assert_eq!(s.take(1, false), Some(SCREEN));
        s.request(true, Rect::default());
        assert_eq!(s.take(1, true), Some(Rect::default()), "a pending ack goes out without pixels");
        s.request(true, SCREEN);
        s.resized();
        assert_eq!(s.take(1, false), None, "the resize answered the request");
        s.request(true, SCREEN);
        assert_eq!(s.take(1, false), Some(SCREEN), "everything again after a resize");
    }
}
