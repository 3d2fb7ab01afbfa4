//! What changed between two JPEG frames, without decoding them fully (see the module notes in
//! `jpeg/mod.rs`): byte-identical frames are recognised by comparing bytes; other frames are
//! decoded at 1/8 scale (one pixel per 8x8 block) and compared with the previous small image.

use rfb::Rect;

use super::decode::JpegDecoder;
use super::{JpegError, validate};

/// A block counts as changed when a colour channel of its 1/8-scale pixel moved by more than
/// this. Absorbs capture noise of analogue dongles; a typed character moves a block's average
/// by 10 or more.
pub const DEFAULT_THRESHOLD: u8 = 3;

/// A change covering at least 1/BROAD_CHANGE_DIVISOR of the frame is broad: cheaper to send as
/// the whole JPEG than as encoded rects.
pub const BROAD_CHANGE_DIVISOR: usize = 4;

/// Pixels per scaled-down pixel in each direction.
const BLOCK: usize = 8;
/// Above this many rects the bounding box of the change is returned instead.
const MAX_RECTS: usize = 64;
/// After this many broad changes in a row the stream is in motion (a video, a scroll, a boot
/// splash): frames are no longer decoded, as the whole frame goes out anyway.
const MOTION_AFTER: u32 = 3;
/// In motion, one frame in this many is decoded with the next to see whether the motion has
/// settled into something small (half a second at 60 fps; a probe costs two 1/8-scale decodes).
const MOTION_PROBE_EVERY: u32 = 30;

/// How a frame differs from the previous one given to [`JpegDamage::compare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JpegChange {
    /// Byte-identical: drop it without decoding.
    Identical,
    /// Different bytes but no block's average colour moved by more than the threshold since the
    /// block was last reported (capture noise, or a change too small to see at 1/8 scale).
    /// [`JpegDamage::settle`] reports such leftovers once things stay quiet.
    NoVisibleChange,
    /// The changed area in frame coordinates: 8x8-block aligned, one block of margin around
    /// every changed block, clipped to the frame, sorted top to bottom; never empty.
    Changed(Vec<Rect>),
    /// The stream is in motion and the frame was not decoded: take all of it as changed.
    Unexamined,
    /// The first frame, or one whose size differs from the previous frame: everything changed.
    Resized { width: u16, height: u16 },
}

/// Whether frames are being decoded (still) or passed on whole (in motion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Motion {
    /// Every frame is decoded; `broad` broad changes came in a row.
    Still { broad: u32 },
    /// Frames are not decoded; `skipped` were passed on since the last probe.
    Moving { skipped: u32 },
    /// The previous frame was decoded as a fresh reference: compare the next one with it.
    Probing,
}

/// Tracks the previous frame of a JPEG stream. A frame that fails (invalid, undecodable) is an
/// error and leaves the state as it was, so the next good frame is compared with the last good one.
///
/// Each block is compared with its colour when it was last reported (not with the previous
/// frame), so a slow drift below the threshold per frame is still reported once it adds up.
pub struct JpegDamage {
    threshold: u8,
    /// Whether sustained broad motion stops decoding (see [`JpegChange::Unexamined`]).
    skip_in_motion: bool,
    motion: Motion,
    decoder: Option<JpegDecoder>,
    /// The last good frame's bytes, for the byte-identical check.
    previous: Vec<u8>,
    /// Its size, None before the first frame.
    size: Option<(u16, u16)>,
    /// The 1/8-scale RGB reference: each block as last reported. And its size.
    small: Vec<u8>,
    small_size: (usize, usize),
    /// The newest decoded frame's 1/8-scale image.
    scratch: Vec<u8>,
    /// Changed blocks grown by the margin, row by row.
    grown: Vec<bool>,
    /// Sub-threshold changes came since the last report or settle.
    unsettled: bool,
}

impl std::fmt::Debug for JpegDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JpegDamage")
            .field("threshold", &self.threshold)
            .field("motion", &self.motion)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Default for JpegDamage {
    fn default() -> Self {
        Self::new()
    }
}

impl JpegDamage {
    pub fn new() -> JpegDamage {
        JpegDamage::with_threshold(DEFAULT_THRESHOLD)
    }

    /// `threshold` 0 reports every block whose decoded average changed at all.
    pub fn with_threshold(threshold: u8) -> JpegDamage {
        JpegDamage {
            threshold,
            skip_in_motion: true,
            motion: Motion::Still { broad: 0 },
            decoder: None,
            previous: Vec::new(),
            size: None,
            small: Vec::new(),
            small_size: (0, 0),
            scratch: Vec::new(),
            grown: Vec::new(),
            unsettled: false,
        }
    }

    /// Decodes every frame, even in sustained motion (to measure what motion skipping saves,
    /// or to see every change).
    pub fn examining_every_frame(mut self) -> JpegDamage {
        self.skip_in_motion = false;
        self
    }

    /// Forgets the previous frame: the next one is reported as [`JpegChange::Resized`].
    pub fn reset(&mut self) {
        self.size = None;
        self.previous.clear();
        self.motion = Motion::Still { broad: 0 };
        self.unsettled = false;
    }

    /// Compares `jpeg` with the previous good frame and makes it the previous frame.
    pub fn compare(&mut self, jpeg: &[u8]) -> Result<JpegChange, JpegError> {
        if self.size.is_some() && jpeg == self.previous.as_slice() {
            return Ok(JpegChange::Identical);
        }
        let info = validate(jpeg)?;
        let same_size = self.size == Some((info.width, info.height));
        if let (true, Motion::Moving { skipped }) = (same_size, self.motion)
            && skipped + 1 < MOTION_PROBE_EVERY
        {
            self.motion = Motion::Moving { skipped: skipped + 1 };
            self.remember(jpeg);
            return Ok(self.reported(JpegChange::Unexamined));
        }
        let decoder = match &mut self.decoder {
            Some(decoder) => decoder,
            None => self.decoder.insert(JpegDecoder::new()?),
        };
        let small_size = decoder.decode_scaled_rgb(jpeg, info.width, info.height, BLOCK, &mut self.scratch)?;
        self.remember(jpeg);
        if !same_size || self.small_size != small_size || matches!(self.motion, Motion::Moving { .. }) {
            // A new reference: a new size, or the probe's first frame after frames not decoded.
            self.small.clone_from(&self.scratch);
            self.small_size = small_size;
            if !same_size {
                self.size = Some((info.width, info.height));
                self.motion = Motion::Still { broad: 0 };
                return Ok(self.reported(JpegChange::Resized { width: info.width, height: info.height }));
            }
            self.motion = Motion::Probing;
            return Ok(self.reported(JpegChange::Unexamined));
        }
        let rects = self.changed_rects(info.width, info.height, self.threshold);
        let area: usize = rects.iter().map(Rect::area).sum();
        let broad = area * BROAD_CHANGE_DIVISOR >= usize::from(info.width) * usize::from(info.height);
        self.motion = match (self.motion, broad) {
            (_, false) => Motion::Still { broad: 0 },
            (Motion::Probing, true) => Motion::Moving { skipped: 0 },
            (Motion::Still { broad }, true) if self.skip_in_motion && broad + 1 >= MOTION_AFTER => {
                Motion::Moving { skipped: 0 }
            }
            (Motion::Still { broad }, true) => Motion::Still { broad: broad + 1 },
            (moving @ Motion::Moving { .. }, true) => moving,
        };
        if rects.is_empty() {
            self.unsettled = true;
            return Ok(JpegChange::NoVisibleChange);
        }
        Ok(self.reported(JpegChange::Changed(rects)))
    }

    /// Whether [`Self::settle`] may have something to report: changes below the threshold
    /// came after the last report.
    pub fn wants_settle(&self) -> bool {
        self.unsettled
    }

    /// What differs at all (threshold 0) between the newest frame and what was last reported,
    /// so that viewers end up with the newest frame. Callers run it once the stream has brought
    /// no new bytes for a while: a still screen settles once, a noisy capture (new bytes every
    /// frame) never, rather than being re-sent over and over.
    pub fn settle(&mut self) -> Vec<Rect> {
        if !self.unsettled {
            return Vec::new();
        }
        self.unsettled = false;
        let Some((width, height)) = self.size else { return Vec::new() };
        self.changed_rects(width, height, 0)
    }

    fn remember(&mut self, jpeg: &[u8]) {
        self.previous.clear();
        self.previous.extend_from_slice(jpeg);
    }

    /// Notes that `change` reports everything up to this frame.
    fn reported(&mut self, change: JpegChange) -> JpegChange {
        self.unsettled = false;
        change
    }

    /// Compares `self.scratch` (new) with the reference `self.small`, both `self.small_size`,
    /// and updates the reference where a change is reported.
    fn changed_rects(&mut self, width: u16, height: u16, threshold: u8) -> Vec<Rect> {
        let (w, h) = self.small_size;
        self.grown.clear();
        self.grown.resize(w * h, false);
        let new_rows = self.scratch.chunks_exact(w * 3);
        for (by, (new, old)) in new_rows.zip(self.small.chunks_exact(w * 3)).enumerate() {
            for (bx, (a, b)) in new.chunks_exact(3).zip(old.chunks_exact(3)).enumerate() {
                if a.iter().zip(b).any(|(a, b)| a.abs_diff(*b) > threshold) {
                    // Mark the block and its 8 neighbours.
                    for y in by.saturating_sub(1)..(by + 2).min(h) {
                        self.grown[y * w + bx.saturating_sub(1)..y * w + (bx + 2).min(w)].fill(true);
                    }
                }
            }
        }
        let blocks = runs_to_rects(&self.grown, w);
        if blocks.is_empty() {
            return Vec::new();
        }
        for (i, _) in self.grown.iter().enumerate().filter(|(_, reported)| **reported) {
            if let (Some(reference), Some(new)) =
                (self.small.get_mut(i * 3..i * 3 + 3), self.scratch.get(i * 3..i * 3 + 3))
            {
                reference.copy_from_slice(new);
            }
        }
        // Block units to pixels, clipped to the frame.
        let to_pixels = |[x0, x1, y0, y1]: [usize; 4]| {
            let px = |b: usize, limit: u16| (b * BLOCK).min(usize::from(limit)) as u16;
            let (x, y) = (px(x0, width), px(y0, height));
            Rect::new(x, y, px(x1, width) - x, px(y1, height) - y)
        };
        if blocks.len() > MAX_RECTS {
            let bounds = blocks.iter().fold([usize::MAX, 0, usize::MAX, 0], |[x0, x1, y0, y1], b| {
                [x0.min(b[0]), x1.max(b[1]), y0.min(b[2]), y1.max(b[3])]
            });
            return vec![to_pixels(bounds)];
        }
        blocks.into_iter().map(to_pixels).collect()
    }
}

/// Rectangles `[x0, x1, y0, y1]` (exclusive ends) covering the set cells of a row-major mask
/// `width` cells wide: runs in each row, with identical runs in consecutive rows merged into
/// one rect. Sorted by top edge, then left edge.
fn runs_to_rects(mask: &[bool], width: usize) -> Vec<[usize; 4]> {
    let mut done = Vec::new();
    let mut open: Vec<[usize; 4]> = Vec::new();
    let mut next_open = Vec::new();
    for (y, row) in mask.chunks_exact(width.max(1)).enumerate() {
        let mut x = 0;
        while x < row.len() {
            if !row[x] {
                x += 1;
                continue;
            }
            let end = row[x..].iter().position(|&set| !set).map_or(row.len(), |n| x + n);
            match open.iter().position(|r| r[0] == x && r[1] == end) {
                Some(i) => {
                    let mut rect = open.swap_remove(i);
                    rect[3] = y + 1;
                    next_open.push(rect);
                }
                None => next_open.push([x, end, y, y + 1]),
            }
            x = end;
        }
        done.append(&mut open);
        std::mem::swap(&mut open, &mut next_open);
    }
    done.append(&mut open);
    done.sort_by_key(|r| (r[2], r[0]));
    done
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn runs_merge_into_rects() {
        #[rustfmt::skip]
        let mask = [
            0, 1, 1, 0, 0,
            0, 1, 1, 0, 1,
            0, 0, 0, 0, 1,
            1, 1, 1, 1, 1,
        ].map(|v| v == 1);
        assert_eq!(runs_to_rects(&mask, 5), [[1, 3, 0, 2], [4, 5, 1, 3], [0, 5, 3, 4]]);
        assert!(runs_to_rects(&[false; 6], 3).is_empty());
        assert!(runs_to_rects(&[], 0).is_empty());
    }

    #[test]
    fn a_small_change_gives_a_small_rect() {
        let (w, h) = (320, 240);
        let rgb = synthetic_rgb(w, h);
        let mut changed = rgb.clone();
        // A 5x9 "character" at (101, 50).
        for y in 50..59 {
            for x in 101..106 {
                changed[(y * w + x) * 3..][..3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let (a, b) = (encode_rgb(&rgb, w, h, 80), encode_rgb(&changed, w, h, 80));
        let mut damage = JpegDamage::new();
        assert_eq!(damage.compare(&a), Ok(JpegChange::Resized { width: 320, height: 240 }));
        assert_eq!(damage.compare(&a), Ok(JpegChange::Identical));
        // Blocks x 96..112 (12, 13), y 48..64 (6, 7), grown by one block.
        assert_eq!(damage.compare(&b), Ok(JpegChange::Changed(vec![Rect::new(88, 40, 32, 32)])));
        assert_eq!(damage.compare(&a), Ok(JpegChange::Changed(vec![Rect::new(88, 40, 32, 32)])));
        // A broken frame changes nothing; the next good frame compares with the last good one.
        assert!(damage.compare(&b[..b.len() - 10]).is_err());
        assert_eq!(damage.compare(&a), Ok(JpegChange::Identical));
        // Same picture re-encoded at another quality: new bytes, (almost) no visible change.
        let requality = encode_rgb(&rgb, w, h, 78);
        assert_ne!(requality, a);
        assert_eq!(JpegDamage::with_threshold(8).compare(&a).map(|_| ()), Ok(()));
        let mut tolerant = JpegDamage::with_threshold(8);
        tolerant.compare(&a).unwrap();
        assert_eq!(tolerant.compare(&requality), Ok(JpegChange::NoVisibleChange));
        // Another size.
        let small = encode_rgb(&synthetic_rgb(64, 48), 64, 48, 80);
        assert_eq!(damage.compare(&small), Ok(JpegChange::Resized { width: 64, height: 48 }));
        damage.reset();
        assert_eq!(damage.compare(&small), Ok(JpegChange::Resized { width: 64, height: 48 }));
    }

    #[test]
    fn slow_drift_is_reported_once_it_adds_up() {
        let (w, h) = (64, 64);
        let frame = |level: u8| encode_rgb(&vec![level; w * h * 3], w, h, 100);
        let mut damage = JpegDamage::with_threshold(3);
        damage.compare(&frame(100)).unwrap();
        let changes: Vec<_> = (101..=106).map(|level| damage.compare(&frame(level)).unwrap()).collect();
        let reported: Vec<bool> = changes.iter().map(|c| matches!(c, JpegChange::Changed(_))).collect();
        // 101..103 are within 3 of 100; 104 is reported and becomes the reference; 105, 106 are not.
        assert_eq!(reported, [false, false, false, true, false, false]);
        assert!(changes.iter().all(|c| matches!(c, JpegChange::NoVisibleChange | JpegChange::Changed(_))));
    }

    #[test]
    fn the_margin_is_clipped_at_the_frame_edges() {
        let (w, h) = (100, 60); // not multiples of 8: the last block column/row is partial
        let rgb = synthetic_rgb(w, h);
        let mut changed = rgb.clone();
        for (x, y) in [(0, 0), (99, 59)] {
            changed[(y * w + x) * 3..][..3].copy_from_slice(&[0, 0, 0]);
        }
        let mut damage = JpegDamage::with_threshold(0);
        damage.compare(&encode_rgb(&rgb, w, h, 95)).unwrap();
        let JpegChange::Changed(rects) = damage.compare(&encode_rgb(&changed, w, h, 95)).unwrap() else {
            panic!("no change found")
        };
        // At (0, 0) the 4:2:2 chroma sample covers blocks 0 and 1, so both changed: 0..24.
        assert_eq!(rects, [Rect::new(0, 0, 24, 16), Rect::new(88, 48, 12, 12)]);
    }

    /// Frames of a scroll: `frame(n)` is a picture shifted down by `n` * 16 pixels.
    fn scrolled(n: usize) -> Vec<u8> {
        let (w, h) = (128, 96);
        let rgb = synthetic_rgb(w, h + 2048);
        encode_rgb(&rgb[n * 16 * w * 3..][..w * h * 3], w, h, 90)
    }

    #[test]
    fn sustained_motion_is_passed_on_undecoded_and_probed_for_its_end() {
        let mut damage = JpegDamage::new();
        let changes: Vec<JpegChange> = (0..70).map(|n| damage.compare(&scrolled(n)).unwrap()).collect();
        let kinds: String = changes
            .iter()
            .map(|c| match c {
                JpegChange::Resized { .. } => 'R',
                JpegChange::Changed(_) => 'C',
                JpegChange::Unexamined => 'U',
                other => panic!("{other:?}"),
            })
            .collect();
        // Three broad changes, then frames passed on, a probe (decoded, reported whole) and the
        // frame after it compared: still broad, so back to passing on.
        let passed_on = "U".repeat(MOTION_PROBE_EVERY as usize - 1);
        assert_eq!(&kinds[..4 + 2 * (passed_on.len() + 2)], format!("RCCC{passed_on}UC{passed_on}UC"));
        // The motion stops; only a small square blinks: the next probe sees that and decoding resumes.
        let (w, h) = (128, 96);
        let base = synthetic_rgb(w, h + 2048)[70 * 16 * w * 3..][..w * h * 3].to_vec();
        let mut dotted = base.clone();
        for y in 50..56 {
            dotted[(y * w + 60) * 3..][..6 * 3].fill(255);
        }
        let blink = [encode_rgb(&base, w, h, 90), encode_rgb(&dotted, w, h, 90)];
        let mut frames = 0;
        let still = loop {
            frames += 1;
            match damage.compare(&blink[frames % 2]).unwrap() {
                JpegChange::Unexamined => continue,
                change => break change,
            }
        };
        assert!(frames <= MOTION_PROBE_EVERY as usize + 1, "probed after {frames} frames");
        assert!(matches!(&still, JpegChange::Changed(rects) if rects.len() == 1), "{still:?}");
        // Back to still: identical frames are dropped, the next blink is decoded and compared.
        assert_eq!(damage.compare(&blink[frames % 2]), Ok(JpegChange::Identical));
        assert!(matches!(damage.compare(&blink[(frames + 1) % 2]), Ok(JpegChange::Changed(r)) if r.len() == 1));
        // Measuring mode never skips.
        let mut every = JpegDamage::new().examining_every_frame();
        assert!((0..70).all(|n| every.compare(&scrolled(n)).unwrap() != JpegChange::Unexamined));
    }

    #[test]
    fn a_settle_reports_what_the_threshold_hid() {
        let (w, h) = (64, 64);
        let frame = |level: u8| encode_rgb(&vec![level; w * h * 3], w, h, 100);
        let mut damage = JpegDamage::with_threshold(3);
        damage.compare(&frame(100)).unwrap();
        assert!(!damage.wants_settle());
        assert!(damage.settle().is_empty());
        assert_eq!(damage.compare(&frame(102)), Ok(JpegChange::NoVisibleChange));
        assert!(damage.wants_settle());
        assert_eq!(damage.settle(), [Rect::new(0, 0, 64, 64)]);
        assert!(!damage.wants_settle(), "settled");
        // Back to the settled picture at 1/8 scale: nothing to report.
        assert_eq!(damage.compare(&frame(101)), Ok(JpegChange::NoVisibleChange));
        assert_eq!(damage.compare(&frame(102)), Ok(JpegChange::NoVisibleChange));
        assert!(damage.wants_settle());
        assert!(damage.settle().is_empty());
        // A visible change reports everything: nothing left to settle.
        assert_eq!(damage.compare(&frame(101)), Ok(JpegChange::NoVisibleChange));
        assert!(matches!(damage.compare(&frame(120)), Ok(JpegChange::Changed(_))));
        assert!(!damage.wants_settle());
    }

    /// `rects` as a mask of `w`x`h` pixels.
    fn coverage(rects: &[Rect], w: usize, h: usize) -> Vec<bool> {
        let mut mask = vec![false; w * h];
        for r in rects {
            for y in usize::from(r.y)..usize::from(r.y) + usize::from(r.height) {
                mask[y * w + usize::from(r.x)..][..usize::from(r.width)].fill(true);
            }
        }
        mask
    }

    /// (index, new pixel, old pixel) of two RGB images `w` wide, in the rows that differ only
    /// (debug builds are slow).
    fn rows<'a>(new: &'a [u8], old: &'a [u8], w: usize) -> impl Iterator<Item = (usize, &'a [u8], &'a [u8])> {
        let pairs = new.chunks_exact(w * 3).zip(old.chunks_exact(w * 3)).enumerate();
        pairs.filter(|(_, (a, b))| a != b).flat_map(move |(y, (a, b))| {
            a.chunks_exact(3).zip(b.chunks_exact(3)).enumerate().map(move |(x, (a, b))| (y * w + x, a, b))
        })
    }

    /// The replay sequences, encoded as a dongle would (4:2:2, q80): every pixel that differs
    /// between consecutive source PNGs lies in the reported damage; outside it, the decoded
    /// frames are identical (threshold 0) or differ by no more than the threshold (default);
    /// and the damage stays small where the change is small.
    #[test]
    fn damage_covers_every_change_in_the_fixture_sequences() {
        for (sequence, max_share) in
            [("post-memtest", 0.02), ("console-typing", 0.01), ("desktop-moving-window", 0.45), ("video-region", 0.15)]
        {
            let dir = fixture(&format!("sequences/{sequence}"));
            let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            let mut trackers =
                [JpegDamage::with_threshold(0).examining_every_frame(), JpegDamage::new().examining_every_frame()];
            let mut previous: Option<(Vec<u8>, Vec<u8>)> = None;
            let mut worst_missed = [0; 2];
            for file in files {
                let (rgb, w, h) = load_rgb(file.strip_prefix(fixture("")).unwrap().to_str().unwrap());
                let jpeg = encode_rgb(&rgb, w, h, 80);
                let decoded = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::RGB).unwrap().pixels;
                let changes = trackers.each_mut().map(|t| t.compare(&jpeg).unwrap());
                let Some((old, old_decoded)) = previous.replace((rgb.clone(), decoded.clone())) else {
                    assert!(changes.iter().all(|c| *c == JpegChange::Resized { width: 1280, height: 720 }));
                    continue;
                };
                for (change, worst) in changes.into_iter().zip(&mut worst_missed) {
                    let JpegChange::Changed(rects) = change else { panic!("{}: {change:?}", file.display()) };
                    let area: usize = rects.iter().map(Rect::area).sum();
                    assert!(area as f64 <= max_share * (w * h) as f64, "{}: {area} px in {rects:?}", file.display());
                    let mask = coverage(&rects, w, h);
                    for (i, a, b) in rows(&rgb, &old, w) {
                        assert!(a == b || mask[i], "{}: ({}, {}) missed", file.display(), i % w, i / w);
                    }
                    for (i, a, b) in rows(&decoded, &old_decoded, w) {
                        if !mask[i] {
                            *worst = a.iter().zip(b).map(|(a, b)| a.abs_diff(*b)).fold(*worst, u8::max);
                        }
                    }
                }
            }
            assert_eq!(worst_missed[0], 0, "{sequence}: decoded pixels outside the threshold-0 damage moved");
            assert!(worst_missed[1] <= DEFAULT_THRESHOLD, "{sequence}: outside the damage: {}", worst_missed[1]);
        }
    }
}
