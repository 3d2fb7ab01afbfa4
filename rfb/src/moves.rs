//! Moved areas between two frames — a window dragged, a console or a page scrolled — found in
//! the pixels, so that a viewer that takes CopyRect is told "copy this from there" instead of
//! being sent the pixels again.
//!
//! An X server learns of moves from the drawing calls (TigerVNC's Xvnc sends CopyRect for
//! `XCopyArea`); a capture source only has frames. So: a short run of pixels (the needle) is
//! taken from a changed row of the new frame and looked for in the old frame's changed area
//! (`memmem`, vectorised on x86 and aarch64); each place it is found is an offset, which is
//! then grown into the largest rectangle around the needle that the old frame holds at that
//! offset, row by row and column by column (`memcmp`). The result is exact: every pixel of
//! the destination equals the old frame's pixel at the source, so a viewer showing the old
//! frame there ends up with the new one.

use memchr::memmem;

use crate::frame::{Frame, NATIVE_BYTES_PER_PIXEL, Rect};
use crate::region::Region;

/// An area of the new frame that is the old frame's area at (`src_x`, `src_y`), moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub dst: Rect,
    pub src_x: u16,
    pub src_y: u16,
}

impl Move {
    /// Where the pixels come from, in the old frame.
    pub fn src(&self) -> Rect {
        Rect::new(self.src_x, self.src_y, self.dst.width, self.dst.height)
    }
}

/// The smallest move worth reporting: below this a rect's own encoding costs little, and a
/// typed character's damage is never searched.
pub const MIN_MOVE_AREA: usize = 64 * 64;
/// Pixels in a needle: long enough that text and edges rarely repeat within a row at this
/// length, short enough to fit inside a small window.
const NEEDLE: usize = 32;
/// Needles tried per frame; a frame none of them finds a move for (a video playing, a page
/// redrawn) costs at most this many searches of its changed area.
const NEEDLES: usize = 4;
/// Places verified per needle (a needle of a repeating pattern is found at many).
const MAX_CANDIDATES: usize = 8;
/// The most frames a search that found nothing makes the next one wait.
const MAX_BACKOFF: u32 = 8;

/// [`find_move`] paced across a stream of frames. A search that finds nothing (a video
/// playing, a noisy capture that changes everywhere) makes the next ones wait 1, 2, 4, then 8
/// frames with large changes, so a screen where nothing moves costs at most one search in nine
/// such frames; a move found searches every frame again. Small changes (a typed character) are
/// never searched and do not count.
#[derive(Debug, Default)]
pub struct MoveSearch {
    /// Frames with large changes still to let pass without a search.
    skip: u32,
    /// How many frames the last fruitless search let pass (0 once a move is found).
    backoff: u32,
}

impl MoveSearch {
    pub fn new() -> Self {
        Self::default()
    }

    /// [`find_move`], unless this frame is one to let pass.
    pub fn find(&mut self, old: &Frame, new: &Frame, damage: &Region) -> Option<Move> {
        if damage.area() < MIN_MOVE_AREA {
            return None;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        let found = find_move(old, new, damage);
        if found.is_some() {
            self.backoff = 0;
        } else {
            self.backoff = (self.backoff * 2).clamp(1, MAX_BACKOFF);
            self.skip = self.backoff;
        }
        found
    }
}

/// The largest move found from `old` to `new` inside `damage` (what changed between them), if
/// one covers at least [`MIN_MOVE_AREA`] pixels. Frames of different sizes have none.
pub fn find_move(old: &Frame, new: &Frame, damage: &Region) -> Option<Move> {
    if (old.width(), old.height()) != (new.width(), new.height()) || damage.area() < MIN_MOVE_AREA {
        return None;
    }
    // A moved area's source changed too (something else is there now), so both ends lie in
    // the damage: the old frame is searched only inside its bounding box.
    // (Clipped to the frame, so a damage region from elsewhere can never index past it.)
    let bounds = new.bounds();
    let area = damage.bounding_box().intersect(&bounds);
    let mut best: Option<(Move, usize)> = None;
    let mut rects: Vec<Rect> =
        damage.rects().iter().map(|r| r.intersect(&bounds)).filter(|r| r.area() >= MIN_MOVE_AREA).collect();
    rects.sort_by_key(|r| std::cmp::Reverse(r.area()));
    // The middle rows of the largest rects first, then their rows a quarter and three quarters
    // down: inside a window with flat insides the largest rect's rows have needles only at the
    // window's edges, which hold what lies beside it too and are found nowhere, while the next
    // rect's (its title bar's) lie inside it. With the two ways of growing in `grow`, the
    // whole window of every step of `desktop-moving-window` is found, both ways (18 of 18;
    // 4 before, which sent half the window's pixels or all of them: rfb/tests/moves.rs).
    let seeds = [2u32, 1, 3].into_iter().flat_map(|quarter| {
        rects.iter().map(move |rect| (rect, rect.y + (u32::from(rect.height) * quarter / 4) as u16))
    });
    // Rows without a needle (flat) cost no search and do not count.
    let needles = seeds.filter_map(|(rect, y)| Some((distinctive_needle(new, rect, y)?, y)));
    for (x, y) in needles.take(NEEDLES) {
        let finder = memmem::Finder::new(new.row(&Rect::new(x, y, NEEDLE as u16, 1), 0));
        // Lazily: a place that grows into the move ends the scan of the rows below it.
        for (src_x, src_y) in needle_places(old, area, &finder, (x, y)) {
            let (found, covers) = grow(old, new, (x, y), (src_x, src_y), damage);
            // A move covering most of what changed is the move: searching on would only find
            // parts of it (and a tiled wallpaper matches at every multiple of its tile).
            if covers * 2 >= damage.area() {
                return Some(found);
            }
            if found.dst.area() >= MIN_MOVE_AREA && best.is_none_or(|(_, b)| covers > b) {
                best = Some((found, covers));
            }
        }
    }
    best.map(|(found, _)| found)
}

/// The x of a needle on row `y` of `rect` whose pixels are not all alike (a run of one
/// colour is found everywhere), or None when the row has none.
fn distinctive_needle(frame: &Frame, rect: &Rect, y: u16) -> Option<u16> {
    if usize::from(rect.width) < NEEDLE {
        return None;
    }
    let row = frame.row(&Rect::new(rect.x, y, rect.width, 1), 0);
    let last = usize::from(rect.width) - NEEDLE;
    // Starting in the middle: a window's or a console's edges are the least likely to have moved
    // with it.
    let middle = last / 2;
    let candidates = (middle..=last).step_by(NEEDLE / 4).chain((0..middle).rev().step_by(NEEDLE / 4));
    for offset in candidates {
        let needle = &row[offset * NATIVE_BYTES_PER_PIXEL..(offset + NEEDLE) * NATIVE_BYTES_PER_PIXEL];
        if colour_changes(needle) >= 4 {
            return Some(rect.x + offset as u16);
        }
    }
    None
}

/// How many neighbouring pixels of `pixels` differ.
fn colour_changes(pixels: &[u8]) -> usize {
    let (pixels, _) = pixels.as_chunks::<NATIVE_BYTES_PER_PIXEL>();
    pixels.windows(2).filter(|pair| pair[0] != pair[1]).count()
}

/// Where in `area` of `old` the needle `finder` looks for (taken from `at` in the new frame)
/// lies, as the needle's top-left pixel, top to bottom, except at `at` itself (unmoved); at
/// most [`MAX_CANDIDATES`].
fn needle_places<'a>(
    old: &'a Frame,
    area: Rect,
    finder: &'a memmem::Finder<'a>,
    at: (u16, u16),
) -> impl Iterator<Item = (u16, u16)> + 'a {
    (area.y..area.y + area.height)
        .flat_map(move |y| {
            let row = old.row(&Rect::new(area.x, y, area.width, 1), 0);
            finder
                .find_iter(row)
                // Only whole pixels: a match starting inside a pixel is a coincidence of bytes.
                .filter(|offset| offset % NATIVE_BYTES_PER_PIXEL == 0)
                // Inside the row's u16 width.
                .map(move |offset| (area.x + (offset / NATIVE_BYTES_PER_PIXEL) as u16, y))
        })
        .filter(move |&place| place != at)
        .take(MAX_CANDIDATES)
}

/// Of two rectangles around the needle at `at` in `new` that equal `old` shifted from `from`,
/// the one covering more of `damage`, with how much it covers: the needle's row widened both
/// ways as far as it matches, then rows added above and below while that whole span matches;
/// and the needle's columns heightened first, then widened. A window dragged over a flat
/// background matches beyond its sides on the rows where the background is flat on both ends
/// of the move: widening first then gives a wide, low band of the window (720p: 682x118 px of
/// a 360x240 window), heightening first the window. The second is grown only when the first
/// leaves some of the damage uncovered and the needle's columns match over other rows than
/// the first's span (over the same rows they widen into the same rect).
fn grow(old: &Frame, new: &Frame, at: (u16, u16), from: (u16, u16), damage: &Region) -> (Move, usize) {
    let (dx, dy) = (i32::from(at.0) - i32::from(from.0), i32::from(at.1) - i32::from(from.1));
    let shift = Shift { old, new, dx, dy };
    let (needle_left, needle_right, y) = (i32::from(at.0), i32::from(at.0) + NEEDLE as i32, i32::from(at.1));
    let (left, right) = shift.widen(needle_left, needle_right, y, y + 1);
    let (top, bottom) = shift.heighten(left, right, y, y + 1);
    // Inside both frames: `widen` and `heighten` never go past them.
    let moved = |(left, top, right, bottom): (i32, i32, i32, i32)| Move {
        dst: Rect::new(left as u16, top as u16, (right - left) as u16, (bottom - top) as u16),
        src_x: (left - dx) as u16,
        src_y: (top - dy) as u16,
    };
    let wide = moved((left, top, right, bottom));
    let wide_covers = covered(damage, &wide.dst);
    // Covering all that changed, it cannot be beaten.
    if wide_covers >= damage.area() {
        return (wide, wide_covers);
    }
    let (tall_top, tall_bottom) = shift.heighten(needle_left, needle_right, y, y + 1);
    if (tall_top, tall_bottom) == (top, bottom) {
        // Widened over the same rows, the needle's columns become the same rect again (a
        // page scrolled: that would compare the whole screen once more).
        return (wide, wide_covers);
    }
    let (left, right) = shift.widen(needle_left, needle_right, tall_top, tall_bottom);
    let tall = moved((left, tall_top, right, tall_bottom));
    let tall_covers = covered(damage, &tall.dst);
    // By the changed pixels each covers, not its area: a band over flat desktop can be larger
    // than the window and hold less of what changed.
    if tall_covers > wide_covers { (tall, tall_covers) } else { (wide, wide_covers) }
}

/// Whether each pixel of two equally long spans differs.
fn differing<'a>(new: &'a [u8], old: &'a [u8]) -> impl DoubleEndedIterator<Item = bool> + ExactSizeIterator + 'a {
    new.chunks_exact(NATIVE_BYTES_PER_PIXEL).zip(old.chunks_exact(NATIVE_BYTES_PER_PIXEL)).map(|(a, b)| a != b)
}

/// How many of the `damage` pixels `rect` covers: what a move there saves sending.
fn covered(damage: &Region, rect: &Rect) -> usize {
    damage.rects().iter().map(|r| r.intersect(rect).area()).sum()
}

/// The new frame against the old one shifted by (`dx`, `dy`): where they are equal.
struct Shift<'a> {
    old: &'a Frame,
    new: &'a Frame,
    dx: i32,
    dy: i32,
}

impl Shift<'_> {
    /// Columns `left..right` of the new frame's row `y` and of the old frame's at the shift:
    /// None unless both lie inside their frames.
    fn spans(&self, left: i32, right: i32, y: i32) -> Option<(&[u8], &[u8])> {
        let (width, height) = (i32::from(self.new.width()), i32::from(self.new.height()));
        let (sx, sy) = (left - self.dx, y - self.dy);
        let inside = |x: i32, end: i32, y: i32| x >= 0 && x <= end && end <= width && (0..height).contains(&y);
        if !inside(left, right, y) || !inside(sx, right - self.dx, sy) {
            return None;
        }
        // All inside the u16-sized frames, checked above.
        let span = (right - left) as u16;
        let new = self.new.row(&Rect::new(left as u16, y as u16, span, 1), 0);
        let old = self.old.row(&Rect::new(sx as u16, sy as u16, span, 1), 0);
        Some((new, old))
    }

    fn span_matches(&self, left: i32, right: i32, y: i32) -> bool {
        self.spans(left, right, y).is_some_and(|(new, old)| new == old)
    }

    /// Rows `top..bottom` of columns `left..right` (which match) heightened as far as whole
    /// rows match.
    fn heighten(&self, left: i32, right: i32, mut top: i32, mut bottom: i32) -> (i32, i32) {
        while self.span_matches(left, right, top - 1) {
            top -= 1;
        }
        while self.span_matches(left, right, bottom) {
            bottom += 1;
        }
        (top, bottom)
    }

    /// Columns `left..right` of rows `top..bottom` (which match) widened as far as whole
    /// columns match: each row narrows what the rows before it allowed, a whole span compared
    /// at once and only a span that differs searched pixel by pixel.
    fn widen(&self, left: i32, right: i32, top: i32, bottom: i32) -> (i32, i32) {
        let width = i32::from(self.new.width());
        // Both frames' columns: x and x - dx inside.
        let (mut lowest, mut highest) = (self.dx.max(0), width.min(width + self.dx));
        for y in top..bottom {
            // A span that cannot be compared (never, for rows that `heighten` checked) keeps
            // nothing beyond the columns known to match.
            lowest = match self.spans(lowest, left, y) {
                Some((new, old)) if new == old => lowest,
                Some((new, old)) => {
                    differing(new, old).rposition(|differs| differs).map_or(left, |i| lowest + i as i32 + 1)
                }
                None => left,
            };
            highest = match self.spans(right, highest, y) {
                Some((new, old)) if new == old => highest,
                Some((new, old)) => differing(new, old).position(|differs| differs).map_or(right, |i| right + i as i32),
                None => right,
            };
        }
        (lowest.min(left), highest.max(right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::damage::DamageDetector;

    /// A frame of pseudo-random pixels (every run of them distinctive), from `seed`.
    fn noise(width: u16, height: u16, seed: u32) -> Frame {
        let mut frame = Frame::new(width, height);
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        for pixel in frame.pixels_mut().as_chunks_mut::<4>().0 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *pixel = (state & 0x00ff_ffff).to_le_bytes();
        }
        frame
    }

    /// `frame` with `rect`'s pixels copied from `src` (top-left) of `from`.
    fn paste(frame: &Frame, from: &Frame, rect: Rect, src: (u16, u16)) -> Frame {
        let mut out = frame.clone();
        let stride = out.stride();
        for row in 0..rect.height {
            let source = from.row(&Rect::new(src.0, src.1 + row, rect.width, 1), 0).to_vec();
            let at = usize::from(rect.y + row) * stride + usize::from(rect.x) * 4;
            out.pixels_mut()[at..at + source.len()].copy_from_slice(&source);
        }
        out
    }

    fn moved(old: &Frame, new: &Frame) -> Option<Move> {
        let mut detector = DamageDetector::new();
        detector.compare(old);
        let damage = detector.compare(new);
        find_move(old, new, &damage)
    }

    /// Every pixel of the move's destination in `new` is the old frame's at its source.
    fn assert_exact(old: &Frame, new: &Frame, found: &Move) {
        let src = found.src();
        for row in 0..found.dst.height {
            assert_eq!(new.row(&found.dst, row), old.row(&src, row), "row {row} of {found:?}");
        }
    }

    #[test]
    fn a_dragged_window_is_found_exactly() {
        let desktop = noise(640, 480, 8);
        let window = noise(200, 150, 1);
        let old = paste(&desktop, &window, Rect::new(100, 80, 200, 150), (0, 0));
        let new = paste(&desktop, &window, Rect::new(156, 102, 200, 150), (0, 0));
        let found = moved(&old, &new).expect("a move");
        assert_eq!(found, Move { dst: Rect::new(156, 102, 200, 150), src_x: 100, src_y: 80 });
        assert_exact(&old, &new, &found);
    }

    /// Over a flat desktop the flat area around the window matches at the window's offset too,
    /// so the move found is larger than the window: still exact.
    #[test]
    fn a_window_over_a_flat_desktop_takes_the_flat_area_with_it() {
        let desktop = Frame::new(640, 480);
        let window = noise(200, 150, 1);
        let old = paste(&desktop, &window, Rect::new(100, 80, 200, 150), (0, 0));
        let new = paste(&desktop, &window, Rect::new(156, 102, 200, 150), (0, 0));
        let found = moved(&old, &new).expect("a move");
        assert_eq!((found.dst.x - found.src_x, found.dst.y - found.src_y), (56, 22));
        assert!(found.dst.area() >= 200 * 150, "{found:?}");
        assert_exact(&old, &new, &found);
    }

    #[test]
    fn a_scrolled_console_is_found_up_to_the_new_line() {
        let old = noise(640, 480, 2);
        // Scrolled up by one 16-pixel text line; a new line at the bottom.
        let mut new = paste(&old, &old, Rect::new(0, 0, 640, 464), (0, 16));
        new = paste(&new, &noise(640, 16, 3), Rect::new(0, 464, 640, 16), (0, 0));
        let found = moved(&old, &new).expect("a scroll");
        assert_eq!(found, Move { dst: Rect::new(0, 0, 640, 464), src_x: 0, src_y: 16 });
        assert_exact(&old, &new, &found);
    }

    #[test]
    fn new_content_and_small_changes_have_no_move() {
        let old = noise(320, 240, 4);
        assert_eq!(moved(&old, &noise(320, 240, 5)), None, "everything new");
        let mut typed = old.clone();
        typed.fill_rect(&Rect::new(10, 10, 8, 16), 0xffffff);
        assert_eq!(moved(&old, &typed), None, "a character cell");
        assert_eq!(moved(&old, &old.clone()), None, "nothing changed");
        assert_eq!(find_move(&old, &noise(320, 200, 4), &Region::from_rect(old.bounds())), None, "resized");
        let beyond = Region::from_rect(Rect::new(100, 100, 5000, 5000));
        assert_eq!(find_move(&old, &noise(320, 240, 5), &beyond), None, "damage past the frame is clipped");
    }

    /// Flat areas match at any offset, so a needle is never taken from one: a window moved over
    /// a flat desktop is found by its content, not by the desktop around it.
    #[test]
    fn flat_areas_give_no_needle() {
        let flat = Frame::new(256, 64);
        for y in 0..64 {
            assert_eq!(distinctive_needle(&flat, &flat.bounds(), y), None);
        }
        let old = Frame::new(320, 240);
        let mut new = old.clone();
        new.fill_rect(&Rect::new(0, 0, 320, 120), 0x123456);
        assert_eq!(moved(&old, &new), None, "a flat change is no move");
    }

    /// A needle found at several places (a repeating pattern) still gives the one offset at
    /// which the most matches.
    #[test]
    fn the_largest_of_several_places_wins() {
        let tile = noise(32, 8, 6);
        let mut pattern = Frame::new(320, 240);
        for ty in 0..240 / 8 {
            for tx in 0..320 / 32 {
                pattern = paste(&pattern, &tile, Rect::new(tx * 32, ty * 8, 32, 8), (0, 0));
            }
        }
        let window = noise(120, 100, 7);
        let old = paste(&pattern, &window, Rect::new(20, 20, 120, 100), (0, 0));
        let new = paste(&pattern, &window, Rect::new(60, 90, 120, 100), (0, 0));
        let found = moved(&old, &new).expect("a move");
        assert_exact(&old, &new, &found);
        assert!(found.dst.area() >= 120 * 100, "{found:?}");
    }

    /// Searches that find nothing space out the next ones (1, 2, 4, 8, 8 frames let pass); a
    /// move found brings the search back to every frame. Small changes never count.
    #[test]
    fn fruitless_searches_back_off_and_a_move_ends_that() {
        let old = noise(320, 240, 9);
        let unrelated = noise(320, 240, 10);
        let whole = Region::from_rect(old.bounds());
        let mut search = MoveSearch::new();
        let mut searched = Vec::new();
        for frame in 0..30 {
            let before = search.skip;
            assert_eq!(search.find(&old, &unrelated, &whole), None);
            if before == 0 {
                searched.push(frame);
            }
            assert_eq!(search.find(&old, &old, &Region::from_rect(Rect::new(0, 0, 8, 16))), None, "too small");
        }
        assert_eq!(searched, [0, 2, 5, 10, 19, 28]);
        // Skipping until the back-off is over, then the move is found and the next one too.
        let window = noise(100, 80, 11);
        let moved_from = paste(&old, &window, Rect::new(10, 10, 100, 80), (0, 0));
        let moved_to = paste(&old, &window, Rect::new(60, 50, 100, 80), (0, 0));
        let damage = Region::from_rect(Rect::new(10, 10, 150, 120));
        let found: Vec<bool> = (0..9).map(|_| search.find(&moved_from, &moved_to, &damage).is_some()).collect();
        assert_eq!(found, [false, false, false, false, false, false, false, true, true]);
    }
}
