//! Sets of pixels as lists of non-overlapping rectangles (damage, requested areas).
//!
//! The representation is the X11 / pixman "y-x banded" one that TigerVNC's `Region` uses: the
//! rectangles are sorted top to bottom; rectangles that share a row range form a *band* (same `y`
//! and `height`), sorted left to right, never touching or overlapping; bands never overlap, and
//! two bands that touch vertically never have the same column spans (they would have been merged).
//! That form is canonical — one pixel set has exactly one list — so `==` compares pixel sets.
//!
//! Every operation is a single merge pass over the two band lists, linear in the number of
//! rectangles. Coordinates are clipped to `0..65535` (the largest framebuffer RFB can describe),
//! so no input can overflow.

use crate::frame::Rect;

/// A set of pixels: non-overlapping rectangles in canonical banded order (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Region {
    rects: Vec<Rect>,
}

/// The largest area a region can describe: rights and bottoms are clipped to `u16::MAX`.
const LIMIT: Rect = Rect::new(0, 0, u16::MAX, u16::MAX);

/// A column span `[start, end)` of one band.
type Span = (u32, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Intersect,
    Subtract,
}

fn span(r: &Rect) -> Span {
    (u32::from(r.x), u32::from(r.x) + u32::from(r.width))
}

fn rows(r: &Rect) -> (u32, u32) {
    (u32::from(r.y), u32::from(r.y) + u32::from(r.height))
}

/// Index one past the last rectangle of the band starting at `start`.
fn band_end(rects: &[Rect], start: usize) -> usize {
    match rects.get(start) {
        Some(first) => start + rects[start..].iter().take_while(|r| r.y == first.y).count(),
        None => start,
    }
}

/// Appends the band `[y0, y1) × spans` to `out`, merging it into the previous band (which starts
/// at `out[*prev_band..]`) when that one ends at `y0` with the same spans. `spans` must be sorted,
/// disjoint, non-touching and within [`LIMIT`], and `y0 < y1 <= u16::MAX`.
fn push_band(out: &mut Vec<Rect>, prev_band: &mut usize, y0: u32, y1: u32, spans: &[Span]) {
    if spans.is_empty() || y1 <= y0 {
        return;
    }
    let prev = &out[*prev_band..];
    if let Some(first) = prev.first()
        && rows(first).1 == y0
        && prev.len() == spans.len()
        && prev.iter().zip(spans).all(|(r, s)| span(r) == *s)
    {
        // The previous band starts above y0 < y1 <= u16::MAX, so the height fits.
        let height = (y1 - u32::from(first.y)) as u16;
        for r in &mut out[*prev_band..] {
            r.height = height;
        }
        return;
    }
    *prev_band = out.len();
    // All values are <= u16::MAX (clipped to LIMIT).
    out.extend(spans.iter().map(|&(x0, x1)| Rect::new(x0 as u16, y0 as u16, (x1 - x0) as u16, (y1 - y0) as u16)));
}

/// Union of two sorted, disjoint span lists (given as the rectangles of a band), merging touching
/// spans.
fn union_spans(a: &[Rect], b: &[Rect], out: &mut Vec<Span>) {
    let (mut i, mut j) = (0, 0);
    loop {
        let next = match (a.get(i), b.get(j)) {
            (Some(ra), Some(rb)) if ra.x <= rb.x => {
                i += 1;
                span(ra)
            }
            (_, Some(rb)) => {
                j += 1;
                span(rb)
            }
            (Some(ra), None) => {
                i += 1;
                span(ra)
            }
            (None, None) => break,
        };
        match out.last_mut() {
            Some(last) if next.0 <= last.1 => last.1 = last.1.max(next.1),
            _ => out.push(next),
        }
    }
}

fn intersect_spans(a: &[Rect], b: &[Rect], out: &mut Vec<Span>) {
    let (mut i, mut j) = (0, 0);
    while let (Some(ra), Some(rb)) = (a.get(i), b.get(j)) {
        let ((a0, a1), (b0, b1)) = (span(ra), span(rb));
        let (lo, hi) = (a0.max(b0), a1.min(b1));
        if lo < hi {
            out.push((lo, hi));
        }
        if a1 < b1 {
            i += 1;
        } else {
            j += 1;
        }
    }
}

fn subtract_spans(a: &[Rect], b: &[Rect], out: &mut Vec<Span>) {
    let mut j = 0;
    for ra in a {
        let (mut x0, x1) = span(ra);
        while b.get(j).is_some_and(|rb| span(rb).1 <= x0) {
            j += 1;
        }
        // Spans of b from j on may cut into this span; the last one may reach into the next.
        for rb in &b[j..] {
            let (b0, b1) = span(rb);
            if b0 >= x1 || x0 >= x1 {
                break;
            }
            if b0 > x0 {
                out.push((x0, b0));
            }
            x0 = x0.max(b1);
        }
        if x0 < x1 {
            out.push((x0, x1));
        }
    }
}

/// `a op b` for two canonical rectangle lists, canonical again.
fn combine(a: &[Rect], b: &[Rect], op: Op) -> Vec<Rect> {
    let mut out = Vec::with_capacity(match op {
        Op::Union => a.len() + b.len(),
        Op::Intersect | Op::Subtract => a.len(),
    });
    let mut spans = Vec::new();
    let mut prev_band = 0;
    let (mut ia, mut ea) = (0, band_end(a, 0));
    let (mut ib, mut eb) = (0, band_end(b, 0));
    // Everything above `y` has been emitted; a band whose top is <= y is active (and its bottom is
    // then > y, since finished bands are skipped at the end of each step).
    let mut y = 0u32;
    loop {
        let band_a = a.get(ia).map(rows);
        let band_b = b.get(ib).map(rows);
        let done = match op {
            Op::Union => band_a.is_none() && band_b.is_none(),
            Op::Intersect => band_a.is_none() || band_b.is_none(),
            Op::Subtract => band_a.is_none(),
        };
        if done {
            break;
        }
        let active_a = band_a.is_some_and(|(top, _)| top <= y);
        let active_b = band_b.is_some_and(|(top, _)| top <= y);
        // The next row where something starts or ends; always > y.
        let next = [band_a, band_b]
            .into_iter()
            .flatten()
            .map(|(top, bottom)| if top <= y { bottom } else { top })
            .min()
            .unwrap_or(u32::MAX);
        if active_a || active_b {
            let sa = if active_a { &a[ia..ea] } else { &[] };
            let sb = if active_b { &b[ib..eb] } else { &[] };
            spans.clear();
            match op {
                Op::Union => union_spans(sa, sb, &mut spans),
                Op::Intersect => intersect_spans(sa, sb, &mut spans),
                Op::Subtract => subtract_spans(sa, sb, &mut spans),
            }
            push_band(&mut out, &mut prev_band, y, next, &spans);
        }
        y = next;
        if band_a.is_some_and(|(_, bottom)| bottom <= y) {
            ia = ea;
            ea = band_end(a, ia);
        }
        if band_b.is_some_and(|(_, bottom)| bottom <= y) {
            ib = eb;
            eb = band_end(b, ib);
        }
    }
    out
}

impl Region {
    /// The empty region.
    pub const fn new() -> Self {
        Self { rects: Vec::new() }
    }

    /// The pixels of one rectangle (empty for an empty rectangle).
    pub fn from_rect(rect: Rect) -> Self {
        let rect = rect.intersect(&LIMIT);
        Self { rects: if rect.is_empty() { Vec::new() } else { vec![rect] } }
    }

    /// The union of any number of (possibly overlapping) rectangles, built in one sweep: cheaper
    /// than `union_rect` one by one when there are many.
    pub fn from_rects(rects: &[Rect]) -> Self {
        let mut sorted: Vec<Rect> = rects.iter().map(|r| r.intersect(&LIMIT)).filter(|r| !r.is_empty()).collect();
        sorted.sort_unstable_by_key(|r| r.y);
        let mut breaks: Vec<u32> = sorted.iter().flat_map(|r| <[u32; 2]>::from(rows(r))).collect();
        breaks.sort_unstable();
        breaks.dedup();

        let mut out = Vec::with_capacity(sorted.len());
        let mut prev_band = 0;
        let mut active: Vec<(Span, u32)> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        let mut next = 0;
        for pair in breaks.windows(2) {
            let (y0, y1) = (pair[0], pair[1]);
            active.retain(|&(_, bottom)| bottom > y0);
            // Every top is a break, so the rectangles starting here are exactly those with y == y0.
            while let Some(r) = sorted.get(next).filter(|r| u32::from(r.y) <= y0) {
                active.push((span(r), rows(r).1));
                next += 1;
            }
            if active.is_empty() {
                continue;
            }
            spans.clear();
            spans.extend(active.iter().map(|&(s, _)| s));
            spans.sort_unstable();
            let mut merged = 0;
            for i in 1..spans.len() {
                if spans[i].0 <= spans[merged].1 {
                    spans[merged].1 = spans[merged].1.max(spans[i].1);
                } else {
                    merged += 1;
                    spans[merged] = spans[i];
                }
            }
            spans.truncate(merged + 1);
            push_band(&mut out, &mut prev_band, y0, y1, &spans);
        }
        Self { rects: out }
    }

    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }

    /// The rectangles: non-overlapping, sorted by band (top to bottom), then left to right.
    pub fn rects(&self) -> &[Rect] {
        &self.rects
    }

    /// The number of pixels.
    pub fn area(&self) -> usize {
        self.rects.iter().map(Rect::area).sum()
    }

    /// The smallest rectangle holding the whole region (empty for the empty region).
    pub fn bounding_box(&self) -> Rect {
        let (Some(first), Some(last)) = (self.rects.first(), self.rects.last()) else {
            return Rect::default();
        };
        let left = self.rects.iter().map(|r| r.x).min().unwrap_or(0);
        let right = self.rects.iter().map(|r| span(r).1).max().unwrap_or(0);
        // Canonical rects lie within LIMIT, so the sizes fit in u16.
        Rect::new(left, first.y, (right - u32::from(left)) as u16, (rows(last).1 - u32::from(first.y)) as u16)
    }

    /// Whether the pixel (x, y) is in the region.
    pub fn contains(&self, x: u16, y: u16) -> bool {
        let (x, y) = (u32::from(x), u32::from(y));
        self.rects.iter().any(|r| {
            let ((x0, x1), (y0, y1)) = (span(r), rows(r));
            x0 <= x && x < x1 && y0 <= y && y < y1
        })
    }

    pub fn clear(&mut self) {
        self.rects.clear();
    }

    pub fn union_rect(&mut self, rect: Rect) {
        let rect = rect.intersect(&LIMIT);
        if rect.is_empty() {
            return;
        }
        if self.rects.is_empty() {
            self.rects.push(rect);
            return;
        }
        self.rects = combine(&self.rects, &[rect], Op::Union);
    }

    pub fn union(&mut self, other: &Region) {
        if other.rects.is_empty() {
            return;
        }
        if self.rects.is_empty() {
            self.rects.clone_from(&other.rects);
            return;
        }
        self.rects = combine(&self.rects, &other.rects, Op::Union);
    }

    pub fn intersect_rect(&self, rect: Rect) -> Region {
        let rect = rect.intersect(&LIMIT);
        if rect.is_empty() {
            return Region::new();
        }
        Region { rects: combine(&self.rects, &[rect], Op::Intersect) }
    }

    pub fn intersect(&self, other: &Region) -> Region {
        Region { rects: combine(&self.rects, &other.rects, Op::Intersect) }
    }

    pub fn subtract_rect(&mut self, rect: Rect) {
        let rect = rect.intersect(&LIMIT);
        if rect.is_empty() || self.rects.is_empty() {
            return;
        }
        self.rects = combine(&self.rects, &[rect], Op::Subtract);
    }

    pub fn subtract(&mut self, other: &Region) {
        if other.rects.is_empty() || self.rects.is_empty() {
            return;
        }
        self.rects = combine(&self.rects, &other.rects, Op::Subtract);
    }

    /// Bounds the rectangle count by growing the region (never shrinking it): when there are more
    /// than `max_rects` (at least 1) rectangles, each band becomes its bounding rectangle; if that
    /// is still too many, runs of consecutive bands become their bounding rectangle.
    pub fn simplify(&mut self, max_rects: usize) {
        let max_rects = max_rects.max(1);
        if self.rects.len() <= max_rects {
            return;
        }
        let mut boxes = Vec::new();
        let mut start = 0;
        while start < self.rects.len() {
            let end = band_end(&self.rects, start);
            let band = &self.rects[start..end];
            let (Some(first), Some(last)) = (band.first(), band.last()) else { break };
            let right = span(last).1;
            // Within LIMIT, so the width fits.
            boxes.push(Rect::new(first.x, first.y, (right - u32::from(first.x)) as u16, first.height));
            start = end;
        }
        if boxes.len() > max_rects {
            let per_group = boxes.len().div_ceil(max_rects);
            boxes = boxes
                .chunks(per_group)
                .map(|group| group.iter().fold(Rect::default(), |acc, r| acc.union(r)))
                .collect();
        }
        *self = Region::from_rects(&boxes);
    }
}

impl From<Rect> for Region {
    fn from(rect: Rect) -> Self {
        Region::from_rect(rect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIDE: usize = 96;

    /// Mostly inside a 64×64 canvas, sometimes sticking out of it, sometimes empty.
    fn rect(rng: &mut fastrand::Rng) -> Rect {
        Rect::new(rng.u16(..64), rng.u16(..64), rng.u16(..24), rng.u16(..24))
    }

    fn rects(rng: &mut fastrand::Rng) -> Vec<Rect> {
        let n = rng.usize(..8);
        (0..n).map(|_| rect(rng)).collect()
    }

    /// One bit per pixel, a u128 per row.
    type Bitmap = [u128; SIDE];

    fn row_mask(r: &Rect) -> u128 {
        ((1u128 << r.width) - 1) << r.x
    }

    fn paint(rects: &[Rect]) -> Bitmap {
        let mut bits = [0; SIDE];
        for r in rects {
            for y in r.y..r.y + r.height {
                bits[usize::from(y)] |= row_mask(r);
            }
        }
        bits
    }

    fn zip(a: &Bitmap, b: &Bitmap, f: impl Fn(u128, u128) -> u128) -> Bitmap {
        std::array::from_fn(|y| f(a[y], b[y]))
    }

    /// Checks the canonical form and that the rectangles do not overlap; returns the pixels.
    fn check(region: &Region) -> Bitmap {
        let rects = region.rects();
        let mut bits = [0; SIDE];
        for r in rects {
            assert!(!r.is_empty(), "{rects:?}");
            for y in r.y..r.y + r.height {
                assert_eq!(bits[usize::from(y)] & row_mask(r), 0, "overlap in {rects:?}");
                bits[usize::from(y)] |= row_mask(r);
            }
        }
        let mut start = 0;
        let mut prev: Option<&[Rect]> = None;
        while start < rects.len() {
            let end = band_end(rects, start);
            let band = &rects[start..end];
            for pair in band.windows(2) {
                assert_eq!(pair[0].height, pair[1].height, "{rects:?}");
                assert!(span(&pair[0]).1 < span(&pair[1]).0, "spans touch or unsorted: {rects:?}");
            }
            if let Some(prev) = prev {
                let (above, here) = (rows(&prev[0]), rows(&band[0]));
                assert!(above.1 <= here.0, "bands overlap or unsorted: {rects:?}");
                let same = prev.len() == band.len() && prev.iter().zip(band).all(|(a, b)| span(a) == span(b));
                assert!(!(above.1 == here.0 && same), "uncoalesced bands: {rects:?}");
            }
            prev = Some(band);
            start = end;
        }
        bits
    }

    fn area(bits: &Bitmap) -> usize {
        bits.iter().map(|row| row.count_ones() as usize).sum()
    }

    #[test]
    fn random_operations_match_a_bitmap() {
        let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5000 {
            let (ra, rb) = (rects(&mut rng), rects(&mut rng));
            let (pa, pb) = (paint(&ra), paint(&rb));

            let mut a = Region::new();
            for r in &ra {
                a.union_rect(*r);
            }
            assert_eq!(check(&a), pa);
            assert_eq!(a.area(), area(&pa));
            assert_eq!(Region::from_rects(&ra), a, "from_rects is canonical too");
            let b = Region::from_rects(&rb);
            assert_eq!(check(&b), pb);

            let mut union = a.clone();
            union.union(&b);
            let expected = zip(&pa, &pb, |x, y| x | y);
            assert_eq!(check(&union), expected);
            assert_eq!(union.area(), area(&expected));

            let inter = a.intersect(&b);
            let expected = zip(&pa, &pb, |x, y| x & y);
            assert_eq!(check(&inter), expected);
            assert_eq!(inter.area(), area(&expected));

            let mut diff = a.clone();
            diff.subtract(&b);
            let expected = zip(&pa, &pb, |x, y| x & !y);
            assert_eq!(check(&diff), expected);
            assert_eq!(diff.area(), area(&expected));

            let clip = rect(&mut rng);
            let inter = a.intersect_rect(clip);
            let pc = paint(&[clip]);
            let expected = zip(&pa, &pc, |x, y| x & y);
            assert_eq!(check(&inter), expected);

            let mut diff = a.clone();
            diff.subtract_rect(clip);
            let expected = zip(&pa, &pc, |x, y| x & !y);
            assert_eq!(check(&diff), expected);

            let bbox = a.bounding_box();
            let expected = ra.iter().filter(|r| !r.is_empty()).fold(Rect::default(), |acc, r| acc.union(r));
            assert_eq!(bbox, expected);

            for _ in 0..4 {
                let (x, y) = (rng.u16(..SIDE as u16), rng.u16(..SIDE as u16));
                assert_eq!(a.contains(x, y), pa[usize::from(y)] >> x & 1 == 1);
            }

            let max = rng.usize(..6);
            let mut simple = union.clone();
            simple.simplify(max);
            let bits = check(&simple);
            assert!(simple.rects().len() <= max.max(1) || simple.rects() == union.rects());
            assert!(union.rects().len() > max.max(1) || simple == union);
            assert_eq!(zip(&paint(union.rects()), &bits, |u, s| u & !s), [0; SIDE], "simplify lost pixels");
            assert_eq!(simple.bounding_box(), union.bounding_box());
        }
    }

    #[test]
    fn basics() {
        let mut r = Region::new();
        assert!(r.is_empty());
        assert_eq!(r.bounding_box(), Rect::default());
        r.union_rect(Rect::new(10, 10, 0, 5));
        assert!(r.is_empty());
        r.union_rect(Rect::new(0, 0, 10, 10));
        r.union_rect(Rect::new(10, 0, 10, 10));
        assert_eq!(r.rects(), &[Rect::new(0, 0, 20, 10)]);
        r.union_rect(Rect::new(0, 10, 20, 5));
        assert_eq!(r.rects(), &[Rect::new(0, 0, 20, 15)]);
        r.subtract_rect(Rect::new(5, 5, 5, 5));
        assert_eq!(
            r.rects(),
            &[Rect::new(0, 0, 20, 5), Rect::new(0, 5, 5, 5), Rect::new(10, 5, 10, 5), Rect::new(0, 10, 20, 5)]
        );
        assert_eq!(r.area(), 300 - 25);
        assert_eq!(r.bounding_box(), Rect::new(0, 0, 20, 15));
        r.clear();
        assert!(r.is_empty());
        assert_eq!(Region::from(Rect::new(1, 2, 3, 4)).rects(), &[Rect::new(1, 2, 3, 4)]);
    }

    #[test]
    fn coordinates_clip_at_u16_max() {
        let mut r = Region::from_rect(Rect::new(65000, 65000, u16::MAX, u16::MAX));
        assert_eq!(r.rects(), &[Rect::new(65000, 65000, 535, 535)]);
        r.union_rect(Rect::new(u16::MAX, 0, 10, 10));
        assert_eq!(r.area(), 535 * 535);
        r.union_rect(Rect::new(0, 0, u16::MAX, u16::MAX));
        assert_eq!(r.rects(), &[Rect::new(0, 0, u16::MAX, u16::MAX)]);
        assert_eq!(r.bounding_box(), Rect::new(0, 0, u16::MAX, u16::MAX));
        r.subtract_rect(Rect::new(1, 1, u16::MAX, u16::MAX));
        assert_eq!(r.area(), 2 * 65535 - 1);
    }

    #[test]
    fn simplify_bounds_the_count() {
        // A checkerboard of 16×16 cells: many bands of many rects.
        let cells: Vec<Rect> = (0..40u16)
            .flat_map(|cy| {
                (0..40u16).filter(move |cx| (cx + cy) % 2 == 0).map(move |cx| Rect::new(cx * 16, cy * 16, 16, 16))
            })
            .collect();
        let region = Region::from_rects(&cells);
        assert_eq!(region.rects().len(), 800);
        let mut per_band = region.clone();
        per_band.simplify(100);
        assert_eq!(per_band.rects().len(), 40, "one rect per band");
        assert_eq!(per_band.rects()[1], Rect::new(16, 16, 624, 16));
        let mut grouped = region.clone();
        grouped.simplify(10);
        assert_eq!(grouped.rects(), &[Rect::new(0, 0, 640, 640)], "groups of bands with equal bounds merge");

        let mut stairs = Region::new();
        for i in 0..300u16 {
            stairs.union_rect(Rect::new(i * 2, i * 2, 4, 2));
            stairs.union_rect(Rect::new(i * 2 + 100, i * 2, 4, 2));
        }
        let before = stairs.clone();
        stairs.simplify(50);
        assert!(stairs.rects().len() <= 50, "{}", stairs.rects().len());
        assert!(before.clone().intersect(&stairs) == before, "superset");
        let mut tiny = before.clone();
        tiny.simplify(0);
        assert_eq!(tiny.rects(), &[before.bounding_box()]);
    }
}
