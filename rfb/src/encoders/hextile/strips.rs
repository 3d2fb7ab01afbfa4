//! Where a Hextile rect is cut into strips, each sent as a rect of its own.
//!
//! Tiles of one rect start every 16 rows, so a tile row often straddles a place where the
//! picture changes from one row to the next (a vertical gradient's colour steps, a window's
//! top edge), and every tile along it pays a subrect for that. The only way to move a tile
//! row's start is to end the rect (its last tile row may be shorter) and begin another, which
//! costs a rect header and the background again. The cut is chosen by dynamic programming over
//! the rect's rows with an estimate of each possible tile row's bytes (below), from a sample of
//! the columns, so it costs a small fraction of the encoding; on a gradient desktop most tiles
//! become solid.
//!
//! The estimate: a tile's subrects are about as many as its pixels that start one, those that
//! differ from their left and their upper neighbour within the tile (every subrect has one, at
//! its top-left corner), less one for the background; each is 2 bytes plus a colour. A tile
//! never costs more than raw.

use crate::frame::{Frame, NATIVE_BYTES_PER_PIXEL, Rect};

/// Rows (and columns) per tile.
const TILE: usize = 16;
/// One column in this many is compared; tile starts (every 16th) always are.
const SAMPLE: usize = 4;
/// The most strips one rect is cut into (a 4K vertical gradient in 8-row steps takes 270).
const MAX_STRIPS: usize = 512;
/// A rect header, and the background and mask byte the new rect's first tile must send.
const STRIP_BYTES: usize = 12 + 1;

/// The heights of the strips `rect` (non-empty, inside `frame`) is best sent as, top to
/// bottom; they add up to its height.
pub(super) fn strip_heights(frame: &Frame, rect: &Rect, bytes_per_pixel: usize) -> Vec<u16> {
    let height = usize::from(rect.height);
    let tiles = usize::from(rect.width).div_ceil(TILE);
    // Subrect starts in a tile row's first row (`first`) and in each later row (`later`,
    // summed from the rect's top). A tile's first column is always sampled and counts once (in
    // its first row it always starts a subrect); the other samples, every SAMPLE-th column,
    // count SAMPLE times, standing in for the columns between them.
    let mut first = Vec::with_capacity(height);
    let mut later_before = Vec::with_capacity(height + 1);
    later_before.extend([0, 0]);
    let mut later_total = 0;
    let pixels = |y: usize| {
        // Inside the rect, so the row exists and its index fits in u16.
        let (row, _) = frame.row(rect, y as u16).as_chunks::<NATIVE_BYTES_PER_PIXEL>();
        row
    };
    let differ = |p: &[u8; 4], q: &[u8; 4]| (u32::from_le_bytes(*p) ^ u32::from_le_bytes(*q)) & 0x00ff_ffff != 0;
    for y in 0..height {
        let row = pixels(y);
        // The first row has nothing above; comparing it with itself finds no change.
        let above = pixels(y.saturating_sub(1));
        let (mut starts_first, mut starts_later) = (0, 0);
        for x in (0..row.len()).step_by(SAMPLE) {
            let changed_above = || differ(&row[x], &above[x]);
            if x % TILE == 0 {
                // A tile's first pixel always starts a subrect in its first row.
                starts_first += 1;
                starts_later += usize::from(changed_above());
            } else if differ(&row[x], &row[x - 1]) {
                starts_first += SAMPLE;
                starts_later += SAMPLE * usize::from(changed_above());
            }
        }
        first.push(starts_first);
        if y > 0 {
            later_total += starts_later;
            later_before.push(later_total);
        }
    }
    let per_subrect = 2 + bytes_per_pixel;
    let per_strip = STRIP_BYTES + bytes_per_pixel;
    // The bytes of a tile row over rows y..y+h: a mask byte per tile, the subrects but one per
    // tile, at most raw.
    let tile_row = |y: usize, h: usize| {
        let starts = first[y] + later_before[y + h] - later_before[y + 1];
        let bytes = tiles + starts.saturating_sub(tiles) * per_subrect;
        bytes.min(tiles * (1 + TILE * h * bytes_per_pixel))
    };
    // best[y]: the least bytes for rows y.. when a tile row starts at y; chosen[y]: its height.
    let mut best = vec![0; height + 1];
    let mut chosen = vec![TILE; height + 1];
    for y in (0..height).rev() {
        let mut choice = (usize::MAX, TILE);
        // From the full tile row down, so a tie keeps the rect whole.
        for h in (1..=TILE.min(height - y)).rev() {
            // A short tile row ends the strip; another starts after it unless the rect ends.
            let cut = if h < TILE && y + h < height { per_strip } else { 0 };
            let bytes = tile_row(y, h) + best[y + h] + cut;
            if bytes < choice.0 {
                choice = (bytes, h);
            }
        }
        (best[y], chosen[y]) = choice;
    }
    let mut heights = Vec::new();
    let (mut y, mut start) = (0, 0);
    while y < height {
        let h = chosen[y];
        y += h;
        if h < TILE || y == height {
            // At most the rect's height, a u16.
            heights.push((y - start) as u16);
            start = y;
        }
    }
    // Each strip is a rect of the update, whose count a client without LastRect reads as a
    // U16: far more strips than a gradient needs means noise, which is not worth the cut.
    if heights.len() > MAX_STRIPS {
        return vec![rect.height];
    }
    heights
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vertical gradient in bands of `band` rows.
    fn bands(width: u16, height: u16, band: u16) -> Frame {
        let mut frame = Frame::new(width, height);
        for y in (0..height).step_by(usize::from(band)) {
            let rows = band.min(height - y);
            frame.fill_rect(&Rect::new(0, y, width, rows), u32::from(y / band) * 0x010203);
        }
        frame
    }

    #[test]
    fn a_flat_rect_stays_whole() {
        let frame = Frame::new(300, 100);
        assert_eq!(strip_heights(&frame, &frame.bounds(), 4), [100]);
    }

    #[test]
    fn tile_rows_start_at_the_bands_of_a_gradient() {
        // Bands of 8 rows, the rect starting inside one: after the first strip every tile row
        // starts on a band edge, so every tile is solid.
        let frame = bands(640, 200, 8);
        let rect = Rect::new(0, 5, 640, 190);
        let heights = strip_heights(&frame, &rect, 4);
        assert_eq!(heights.iter().sum::<u16>(), 190);
        assert_eq!(heights[0], 3, "{heights:?}");
        let mut y = 8;
        for h in &heights[1..] {
            for tile_row in (y..y + h).step_by(TILE) {
                assert_eq!(tile_row % 8, 0, "{heights:?}");
            }
            y += h;
        }
    }

    #[test]
    fn noise_is_not_cut_into_hundreds_of_strips() {
        // 2-row bands over a wide rect: strips would win, but more than MAX_STRIPS of them.
        let frame = bands(2048, 1100, 2);
        assert_eq!(strip_heights(&frame, &frame.bounds(), 4), [1100]);
        assert!(strip_heights(&frame, &Rect::new(0, 0, 2048, 512), 4).len() > 200);
    }

    #[test]
    fn a_small_change_is_not_worth_a_cut() {
        // One tile wide, one edge: its subrect costs less than a rect header.
        let mut frame = Frame::new(16, 40);
        frame.fill_rect(&Rect::new(0, 8, 16, 32), 0x102030);
        assert_eq!(strip_heights(&frame, &frame.bounds(), 4), [40]);
        // Wide, the same edge is worth one.
        let mut frame = Frame::new(640, 40);
        frame.fill_rect(&Rect::new(0, 8, 640, 32), 0x102030);
        assert_eq!(strip_heights(&frame, &frame.bounds(), 4), [8, 32]);
    }
}
