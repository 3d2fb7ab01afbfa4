//! What a viewer gets next, and when (TigerVNC's per-connection `requested` region plus damage
//! tracker): damage accumulates in `pending`; an update sends the pending damage inside what
//! the viewer asked for, plus whatever it asked for non-incrementally; one update answers every
//! request received since the last one; nothing is sent that was not asked for, except under
//! continuous updates, which are paced by fences so a slow viewer is never flooded.
//!
//! A moved area found in the frames (`rfb::moves`) goes as a CopyRect ahead of the update's
//! pixels, provided the viewer shows the move's source as it was (nothing owed there), and
//! only one at a time: what the viewer shows must be known exactly for a copy to be right.
//!
//! Areas sent lossily (JPEG) are remembered; once the screen has been still for a while
//! (`--lossless-refresh-ms`) they are sent again losslessly, a bounded piece per update and only
//! when nothing fresher is owed, so the refresh never holds up a change (TigerVNC's lossless
//! refresh).

use std::time::{Duration, Instant};

use rfb::Rect;
use rfb::moves::Move;
use rfb::region::Region;

use super::screen::Change;

/// More rects than this in a viewer's pending damage, or in what it asked for, are merged,
/// bounding memory and the work per update: a viewer sending thousands of tiny requests gets a
/// few larger areas (asking for more than was asked is harmless) instead of slowing everyone.
pub const MAX_PENDING_RECTS: usize = 64;

/// How long the screen must be still before lossy areas are sent again losslessly, in the tests.
#[cfg(test)]
const LOSSLESS_REFRESH_DELAY: Duration = Duration::from_millis(500);
/// The most pixels one refresh update carries, so a change arriving meanwhile waits little.
const MAX_REFRESH_PIXELS: usize = 256 * 1024;

/// What to write next.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// An ExtendedDesktopSize-only update with this reason and result.
    Layout { reason: u16, result: u16 },
    /// A FramebufferUpdate with these rects (possibly none: pseudo-rects only), after a
    /// CopyRect for the move when there is one.
    Pixels(Region, Option<Move>),
}

#[derive(Debug, Default)]
pub struct UpdateScheduler {
    /// Union of the areas requested since the last update.
    requested: Region,
    has_request: bool,
    /// Areas asked for non-incrementally: sent whether or not they changed.
    forced: Region,
    /// Damage not yet sent.
    pending: Region,
    /// A move to send as CopyRect: its source shows on the viewer as the move found it, and
    /// its destination is not in `pending` (unless changed again since).
    copy: Option<Move>,
    /// The frame generation whose damage `pending` includes.
    seen_generation: Option<u64>,
    /// A screen layout (ExtendedDesktopSize) update owed to the viewer.
    layout: Option<(u16, u16)>,
    /// Continuous updates: the area to push, while enabled.
    continuous: Option<Rect>,
    /// A pushed update's fence is still unanswered: push nothing more until it is.
    awaiting_fence: bool,
    /// Areas the viewer shows with lossy (JPEG) pixels, not yet refreshed.
    lossy: Region,
    /// When damage last came in (the screen has been still since).
    last_change: Option<Instant>,
    /// How long the screen must be still before a lossless refresh (None: never).
    refresh_delay: Option<Duration>,
    /// The frame generation whose pixels could not be had: wait for a newer frame.
    postponed_for: Option<u64>,
}

impl UpdateScheduler {
    pub fn request(&mut self, incremental: bool, rect: Rect) {
        self.has_request = true;
        self.requested.union_rect(rect);
        self.requested.simplify(MAX_PENDING_RECTS);
        if !incremental {
            self.forced.union_rect(rect);
            self.forced.simplify(MAX_PENDING_RECTS);
        }
    }

    /// Owe the viewer an ExtendedDesktopSize update (a reply to SetDesktopSize, or the layout
    /// that goes with a non-incremental request).
    pub fn owe_layout(&mut self, reason: u16, result: u16) {
        self.layout = Some((reason, result));
    }

    pub fn set_continuous(&mut self, area: Option<Rect>) {
        self.continuous = area;
        self.awaiting_fence = false;
    }

    pub fn is_continuous(&self) -> bool {
        self.continuous.is_some()
    }

    /// A pushed update went out followed by a fence request.
    pub fn fence_sent(&mut self) {
        self.awaiting_fence = true;
    }

    /// The viewer answered our fence: it has processed what came before.
    pub fn fence_answered(&mut self) {
        self.awaiting_fence = false;
    }

    /// Everything the viewer shows is invalid (new pixel format, new size).
    pub fn refresh(&mut self, screen: Rect) {
        self.pending = Region::from_rect(screen);
        self.copy = None;
    }

    /// The owed move is sent as pixels instead.
    fn uncopy(&mut self) {
        if let Some(copy) = self.copy.take() {
            self.pending.union_rect(copy.dst);
        }
    }

    /// The screen changed size; the resize update answered the pending request.
    pub fn resized(&mut self, screen: Rect) {
        self.lossy = Region::new();
        self.has_request = false;
        self.requested.clear();
        self.forced.clear();
        self.refresh(screen);
        if self.continuous.is_some() {
            self.continuous = Some(screen);
        }
    }

    /// Whether anything may be written now (a request is waiting, or updates are pushed).
    pub fn may_send(&self) -> bool {
        self.has_request || (self.continuous.is_some() && !self.awaiting_fence)
    }

    /// Whether an update was postponed until a frame newer than `generation` comes.
    pub fn is_postponed(&self, generation: u64) -> bool {
        self.postponed_for == Some(generation)
    }

    /// The update `taken` could not be written from frame `generation` (its pixels could not
    /// be had): it stays owed and requested, and waits for a newer frame. A move owed since
    /// then whose source lies there is no longer right (the viewer lacks those pixels).
    pub fn postpone(&mut self, taken: &Region, generation: u64) {
        if self.copy.is_some_and(|copy| !taken.intersect_rect(copy.src()).is_empty()) {
            self.uncopy();
        }
        self.pending.union(taken);
        self.pending.simplify(MAX_PENDING_RECTS);
        self.requested.union(taken);
        self.has_request = true;
        self.postponed_for = Some(generation);
    }

    /// Takes in the changes of frames up to `generation`: `changes_since(g)` gives what changed
    /// after generation `g`, or `None` when that is no longer known (then all of `screen`).
    pub fn absorb_damage(&mut self, generation: u64, screen: Rect, changes_since: impl FnOnce(u64) -> Option<Change>) {
        if self.seen_generation == Some(generation) {
            return;
        }
        match self.seen_generation.and_then(changes_since) {
            Some(change) if change.damage.is_empty() => {}
            Some(Change { mut damage, moved }) => {
                // The viewer shows the old frame wherever nothing is owed, so a move whose
                // source is all there is exact; its destination then needs no pixels, whatever
                // was owed there before.
                if let Some(moved) = moved
                    && self.copy.is_none()
                    && self.pending.intersect_rect(moved.src()).is_empty()
                {
                    damage.subtract_rect(moved.dst);
                    self.pending.subtract_rect(moved.dst);
                    self.copy = Some(moved);
                }
                self.pending.union(&damage);
                self.last_change = Some(Instant::now());
            }
            None => {
                self.pending = Region::from_rect(screen);
                self.copy = None;
                self.last_change = Some(Instant::now());
            }
        }
        self.pending.simplify(MAX_PENDING_RECTS);
        self.seen_generation = Some(generation);
    }

    /// The next update to write, if one is due. `pseudo_pending`: a pseudo-rect must go out,
    /// so an update is due even without pixels.
    pub fn take(&mut self, pseudo_pending: bool) -> Option<Plan> {
        if !self.may_send() {
            return None;
        }
        let mut wanted = self.requested.clone();
        if let (Some(area), false) = (self.continuous, self.awaiting_fence) {
            wanted.union_rect(area);
        }
        // A copy goes only into an area the viewer asked for; else its pixels are owed.
        if self.copy.is_some_and(|copy| wanted.intersect_rect(copy.dst).area() != copy.dst.area()) {
            self.uncopy();
        }
        let mut area = self.pending.intersect(&wanted);
        area.union(&self.forced);
        if area.is_empty() && self.copy.is_none() && !pseudo_pending {
            // Layout updates carry no pixels, so they go out when no pixels are owed (noVNC
            // blanks its canvas when the layout comes before the first pixels), and they answer
            // the request like TigerVNC's do.
            if let Some((reason, result)) = self.layout.take() {
                self.has_request = false;
                self.requested.clear();
                return Some(Plan::Layout { reason, result });
            }
            return None;
        }
        self.pending.subtract(&area);
        self.requested.clear();
        self.forced.clear();
        self.has_request = false;
        let copy = self.copy.take();
        if let Some(copy) = copy {
            // The destination now shows what the source showed: lossy pixels stay lossy.
            let lossy_source = !self.lossy.intersect_rect(copy.src()).is_empty();
            self.lossy.subtract_rect(copy.dst);
            if lossy_source {
                self.lossy.union_rect(copy.dst);
            }
        }
        Some(Plan::Pixels(area, copy))
    }
}

impl UpdateScheduler {
    /// Refresh lossy areas losslessly once the screen has been still this long (None: never).
    pub fn set_lossless_refresh(&mut self, delay: Option<Duration>) {
        self.refresh_delay = delay;
    }

    /// `region` went out, the `lossy` part of it as JPEG from a pixel source (owed a lossless
    /// refresh), the rest losslessly.
    pub fn sent(&mut self, region: &Region, lossy: &Region) {
        self.lossy.subtract(region);
        if self.refresh_delay.is_some() && !lossy.is_empty() {
            self.lossy.union(&lossy.intersect(region));
            self.lossy.simplify(MAX_PENDING_RECTS);
        }
    }

    /// When a lossless refresh will be due, if one could be sent then: the viewer may be sent
    /// something, part of what it wants is lossy, and no fresh change is owed there. None
    /// otherwise, also while the refresh is merely blocked: what unblocks it (a request, an
    /// update sent, a new frame) wakes the viewer's loop anyway, and a loop woken by a timer
    /// that is due but cannot lead anywhere would spin.
    pub fn refresh_at(&self) -> Option<Instant> {
        self.refresh_due().map(|(at, _)| at)
    }

    /// [`Self::refresh_at`], with what the viewer may be sent then.
    fn refresh_due(&self) -> Option<(Instant, Region)> {
        let delay = self.refresh_delay?;
        if self.lossy.is_empty() {
            return None;
        }
        let wanted = self.wanted()?;
        if self.lossy.intersect(&wanted).is_empty() || !self.pending.intersect(&wanted).is_empty() {
            return None;
        }
        Some((self.last_change.map_or_else(Instant::now, |at| at + delay), wanted))
    }

    /// What the viewer may be sent now (what it requested, or the continuous area), if anything.
    fn wanted(&self) -> Option<Region> {
        if !self.may_send() {
            return None;
        }
        let mut wanted = self.requested.clone();
        if let (Some(area), false) = (self.continuous, self.awaiting_fence) {
            wanted.union_rect(area);
        }
        Some(wanted)
    }

    /// The lossy areas are no longer owed a refresh (the source's own pixels are lossy now).
    pub fn forget_lossy(&mut self) {
        self.lossy.clear();
    }

    /// The next piece of lossy area to send again losslessly, when [`Self::refresh_at`] has come
    /// (call it when [`Self::take`] had nothing).
    pub fn take_refresh(&mut self, now: Instant) -> Option<Region> {
        let (at, wanted) = self.refresh_due()?;
        if now < at {
            return None;
        }
        let mut piece = Region::new();
        for rect in self.lossy.intersect(&wanted).rects() {
            if piece.area() >= MAX_REFRESH_PIXELS {
                break;
            }
            piece.union_rect(*rect);
        }
        if piece.is_empty() {
            return None;
        }
        self.lossy.subtract(&piece);
        self.requested.clear();
        self.has_request = false;
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Rect = Rect::new(0, 0, 100, 50);

    fn rects(plan: Option<Plan>) -> Vec<Rect> {
        match plan {
            Some(Plan::Pixels(region, _)) => region.rects().to_vec(),
            other => panic!("expected pixels, got {other:?}"),
        }
    }

    #[test]
    fn first_update_sends_everything_then_only_damage() {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| unreachable!("nothing seen yet"));
        assert_eq!(s.take(false), None, "no request, no update");
        s.request(true, SCREEN);
        assert_eq!(Region::from_rects(&rects(s.take(false))).area(), SCREEN.area());
        s.request(true, SCREEN);
        assert_eq!(s.take(false), None, "nothing changed: wait");
        let typed = Rect::new(10, 10, 8, 16);
        s.absorb_damage(2, SCREEN, |since| {
            assert_eq!(since, 1);
            Some(Region::from_rect(typed).into())
        });
        assert_eq!(rects(s.take(false)), [typed]);
    }

    #[test]
    fn thousands_of_tiny_requests_stay_a_few_rects_covering_them_all() {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| None);
        let tiny: Vec<Rect> = (0..SCREEN.height)
            .step_by(2)
            .flat_map(|y| (0..SCREEN.width).step_by(3).map(move |x| Rect::new(x, y, 1, 1)))
            .collect();
        assert!(tiny.len() > 500);
        for (i, rect) in tiny.iter().enumerate() {
            s.request(i % 2 == 0, *rect);
        }
        assert!(s.requested.rects().len() <= MAX_PENDING_RECTS && s.forced.rects().len() <= MAX_PENDING_RECTS);
        let sent = Region::from_rects(&rects(s.take(false)));
        assert!(tiny.iter().all(|rect| sent.contains(rect.x, rect.y)), "every requested pixel is sent");
    }

    #[test]
    fn lossy_areas_are_refreshed_once_still_and_never_before_fresh_changes() {
        let mut s = UpdateScheduler::default();
        s.set_lossless_refresh(Some(LOSSLESS_REFRESH_DELAY));
        s.absorb_damage(1, SCREEN, |_| None);
        s.request(true, SCREEN);
        let Some(Plan::Pixels(sent, _)) = s.take(false) else { panic!("the first update") };
        s.sent(&sent, &sent);
        s.request(true, SCREEN);
        let due = s.refresh_at().expect("a refresh is owed");
        assert_eq!(s.take_refresh(due - Duration::from_millis(1)), None, "not before the screen is still");
        // A change meanwhile goes first, and restarts the wait.
        s.absorb_damage(2, SCREEN, |_| Some(Region::from_rect(Rect::new(0, 0, 4, 4)).into()));
        assert_eq!(s.take_refresh(due + LOSSLESS_REFRESH_DELAY * 2), None, "fresh pixels are owed");
        let Some(Plan::Pixels(change, _)) = s.take(false) else { panic!("the change") };
        s.sent(&change, &change);
        assert_eq!(s.refresh_at(), None, "no request waiting: nothing is due");
        assert_eq!(s.take_refresh(Instant::now() + LOSSLESS_REFRESH_DELAY * 2), None, "no request waiting");
        s.request(true, SCREEN);
        let due = s.refresh_at().expect("still owed");
        let refreshed = s.take_refresh(due).expect("the refresh");
        assert_eq!(refreshed.area(), SCREEN.area(), "the whole lossy area, small enough for one update");
        assert_eq!(s.refresh_at(), None, "nothing lossy left");
        // Lossless updates of an area clear it too.
        let screen = Region::from_rect(SCREEN);
        s.sent(&screen, &screen);
        s.sent(&screen, &Region::new());
        assert_eq!(s.refresh_at(), None);
        // Only the part that went as JPEG is owed (JPEG (21) sends text losslessly).
        let photo = Region::from_rect(Rect::new(8, 8, 16, 16));
        s.sent(&screen, &photo);
        s.request(true, SCREEN);
        let due = s.refresh_at().expect("the photo is owed");
        assert_eq!(s.take_refresh(due), Some(photo));
    }

    #[test]
    fn a_refresh_is_due_only_when_it_could_be_sent() {
        // The viewer's loop sleeps until `refresh_at`: a time that comes while the refresh
        // cannot be sent would wake it over and over (a spinning core).
        let mut s = UpdateScheduler::default();
        s.set_lossless_refresh(Some(LOSSLESS_REFRESH_DELAY));
        s.absorb_damage(1, SCREEN, |_| None);
        s.request(true, SCREEN);
        let Some(Plan::Pixels(sent, _)) = s.take(false) else { panic!("the first update") };
        s.sent(&sent, &Region::from_rect(Rect::new(0, 0, 10, 10)));
        assert_eq!(s.refresh_at(), None, "no request");
        s.request(true, Rect::new(50, 0, 50, 50));
        assert_eq!(s.refresh_at(), None, "the request is for an area with nothing lossy");
        s.request(true, SCREEN);
        assert!(s.refresh_at().is_some(), "the lossy area is wanted");
        s.absorb_damage(2, SCREEN, |_| Some(Region::from_rect(Rect::new(5, 5, 1, 1)).into()));
        assert_eq!(s.refresh_at(), None, "a fresh change is owed first");
        let Some(Plan::Pixels(change, _)) = s.take(false) else { panic!("the change") };
        s.sent(&change, &Region::new());
        s.request(true, SCREEN);
        assert!(s.refresh_at().is_some(), "owed again once the change went");
        s.forget_lossy();
        assert_eq!(s.refresh_at(), None, "forgotten");
    }

    #[test]
    fn unknown_history_means_everything() {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| None);
        s.request(true, SCREEN);
        s.take(false);
        s.absorb_damage(9, SCREEN, |_| None);
        s.request(true, SCREEN);
        assert_eq!(Region::from_rects(&rects(s.take(false))).area(), SCREEN.area());
    }

    #[test]
    fn non_incremental_is_sent_even_unchanged_and_requests_coalesce() {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| None);
        s.request(true, SCREEN);
        s.take(false);
        s.request(false, Rect::new(0, 0, 10, 10));
        s.request(true, SCREEN);
        assert_eq!(rects(s.take(false)), [Rect::new(0, 0, 10, 10)]);
    }

    #[test]
    fn damage_outside_the_request_waits_for_a_request_that_covers_it() {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| None);
        s.request(true, SCREEN);
        s.take(false);
        s.absorb_damage(2, SCREEN, |_| {
            Some(Region::from_rects(&[Rect::new(0, 0, 5, 5), Rect::new(90, 40, 5, 5)]).into())
        });
        s.request(true, Rect::new(0, 0, 50, 50));
        assert_eq!(rects(s.take(false)), [Rect::new(0, 0, 5, 5)]);
        s.request(true, SCREEN);
        assert_eq!(rects(s.take(false)), [Rect::new(90, 40, 5, 5)]);
    }

    #[test]
    fn layout_update_follows_the_pixels_and_answers_a_request_of_its_own() {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| None);
        s.request(false, SCREEN);
        s.owe_layout(0, 0);
        assert_eq!(Region::from_rects(&rects(s.take(false))).area(), SCREEN.area());
        assert_eq!(s.take(false), None, "the pixels answered the request");
        s.request(true, SCREEN);
        assert_eq!(s.take(false), Some(Plan::Layout { reason: 0, result: 0 }));
        s.request(true, SCREEN);
        assert_eq!(s.take(false), None);
    }

    #[test]
    fn continuous_updates_push_damage_paced_by_fences() {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| None);
        s.set_continuous(Some(SCREEN));
        assert!(s.may_send());
        assert_eq!(Region::from_rects(&rects(s.take(false))).area(), SCREEN.area(), "pushed without a request");
        s.fence_sent();
        s.absorb_damage(2, SCREEN, |_| Some(Region::from_rect(Rect::new(1, 1, 1, 1)).into()));
        assert!(!s.may_send(), "wait for the fence");
        assert_eq!(s.take(false), None);
        s.fence_answered();
        assert_eq!(rects(s.take(false)), [Rect::new(1, 1, 1, 1)]);
        s.set_continuous(None);
        s.absorb_damage(3, SCREEN, |_| Some(Region::from_rect(Rect::new(2, 2, 1, 1)).into()));
        assert_eq!(s.take(false), None, "disabled: back to requests");
    }

    #[test]
    fn a_postponed_update_waits_for_the_next_frame_and_stays_owed() {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| None);
        s.request(true, SCREEN);
        let Some(Plan::Pixels(taken, _)) = s.take(false) else { panic!("nothing to send") };
        s.postpone(&taken, 1);
        assert!(s.is_postponed(1) && !s.is_postponed(2));
        s.absorb_damage(2, SCREEN, |_| Some(Region::from_rect(Rect::new(1, 1, 1, 1)).into()));
        assert_eq!(Region::from_rects(&rects(s.take(false))).area(), SCREEN.area(), "still owed and requested");
    }

    #[test]
    fn resize_refreshes_everything() {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| None);
        s.request(true, SCREEN);
        s.take(false);
        s.request(true, SCREEN);
        let bigger = Rect::new(0, 0, 200, 100);
        s.resized(bigger);
        assert_eq!(s.take(false), None, "the resize answered the request");
        s.request(true, bigger);
        assert_eq!(Region::from_rects(&rects(s.take(false))).area(), bigger.area());
    }

    /// A viewer that has taken in frame 1 entirely, then a window moved in frame 2: the move
    /// (10, 0, 40x20 from 0, 0) inside the damage (0, 0, 50x20).
    fn up_to_date() -> UpdateScheduler {
        let mut s = UpdateScheduler::default();
        s.absorb_damage(1, SCREEN, |_| None);
        s.request(true, SCREEN);
        s.take(false);
        s
    }

    const WINDOW_MOVE: Move = Move { dst: Rect::new(10, 0, 40, 20), src_x: 0, src_y: 0 };

    fn window_moved() -> Change {
        Change { damage: Region::from_rect(Rect::new(0, 0, 50, 20)), moved: Some(WINDOW_MOVE) }
    }

    #[test]
    fn a_move_goes_as_a_copy_and_only_the_uncovered_rest_as_pixels() {
        let mut s = up_to_date();
        s.absorb_damage(2, SCREEN, |_| Some(window_moved()));
        s.request(true, SCREEN);
        assert_eq!(s.take(false), Some(Plan::Pixels(Region::from_rect(Rect::new(0, 0, 10, 20)), Some(WINDOW_MOVE))));
        // A second move right after (the first one already went) is a copy again.
        let next = Move { dst: Rect::new(20, 0, 40, 20), src_x: 10, src_y: 0 };
        s.absorb_damage(3, SCREEN, |_| {
            Some(Change { damage: Region::from_rect(Rect::new(10, 0, 50, 20)), moved: Some(next) })
        });
        s.request(true, SCREEN);
        assert_eq!(s.take(false), Some(Plan::Pixels(Region::from_rect(Rect::new(10, 0, 10, 20)), Some(next))));
    }

    #[test]
    fn a_move_from_where_pixels_are_owed_goes_as_pixels() {
        let mut s = up_to_date();
        // Frame 2's change at the move's source has not been sent: the viewer lacks it.
        s.absorb_damage(2, SCREEN, |_| Some(Region::from_rect(Rect::new(5, 5, 2, 2)).into()));
        s.absorb_damage(3, SCREEN, |_| Some(window_moved()));
        s.request(true, SCREEN);
        let Some(Plan::Pixels(area, None)) = s.take(false) else { panic!("pixels without a copy") };
        assert_eq!(area, Region::from_rect(Rect::new(0, 0, 50, 20)));
    }

    #[test]
    fn one_copy_at_a_time_and_only_into_the_requested_area() {
        let mut s = up_to_date();
        s.absorb_damage(2, SCREEN, |_| Some(window_moved()));
        // Not sent yet: the next move is taken as its damage.
        let next = Move { dst: Rect::new(60, 20, 30, 20), src_x: 60, src_y: 0 };
        s.absorb_damage(3, SCREEN, |_| {
            Some(Change { damage: Region::from_rect(Rect::new(60, 0, 30, 40)), moved: Some(next) })
        });
        s.request(true, SCREEN);
        let Some(Plan::Pixels(area, Some(copy))) = s.take(false) else { panic!("a copy") };
        assert_eq!((copy, area.area()), (WINDOW_MOVE, 10 * 20 + 30 * 40));
        // A move whose destination was not asked for is owed as pixels.
        s.absorb_damage(4, SCREEN, |_| Some(window_moved()));
        s.request(true, Rect::new(0, 0, 20, 20));
        let Some(Plan::Pixels(area, None)) = s.take(false) else { panic!("no copy") };
        assert_eq!(area, Region::from_rect(Rect::new(0, 0, 20, 20)));
        s.request(true, SCREEN);
        assert_eq!(rects(s.take(false)), [Rect::new(20, 0, 30, 20)]);
    }

    #[test]
    fn a_move_out_of_an_update_that_failed_is_owed_as_pixels() {
        let mut s = up_to_date();
        s.absorb_damage(2, SCREEN, |_| Some(Region::from_rect(Rect::new(0, 0, 5, 5)).into()));
        s.request(true, SCREEN);
        let Some(Plan::Pixels(taken, None)) = s.take(false) else { panic!("the change") };
        // While that update is encoded, a move out of the area it carries is found; then the
        // update fails.
        s.absorb_damage(3, SCREEN, |_| Some(window_moved()));
        s.postpone(&taken, 3);
        s.absorb_damage(4, SCREEN, |_| Some(Region::from_rect(Rect::new(90, 40, 1, 1)).into()));
        s.request(true, SCREEN);
        let Some(Plan::Pixels(area, None)) = s.take(false) else { panic!("no copy") };
        assert_eq!(area.area(), 50 * 20 + 1);
    }

    #[test]
    fn a_copy_of_lossy_pixels_is_lossy() {
        let mut s = up_to_date();
        s.set_lossless_refresh(Some(LOSSLESS_REFRESH_DELAY));
        s.sent(&Region::from_rect(SCREEN), &Region::from_rect(Rect::new(0, 0, 5, 5)));
        s.absorb_damage(2, SCREEN, |_| Some(window_moved()));
        s.request(true, SCREEN);
        let Some(Plan::Pixels(area, Some(_))) = s.take(false) else { panic!("a copy") };
        s.sent(&area, &Region::new());
        s.request(true, SCREEN);
        let due = s.refresh_at().expect("a refresh is owed");
        assert_eq!(s.take_refresh(due), Some(WINDOW_MOVE.dst.into()), "the copied window, not its old place");
    }
}
