//! Which areas of a screen are photo-like, where JPEG pays, and which are text or flat UI, where
//! a lossless encoding is smaller and exact. Tight (per sub-rect) and JPEG (21) (per tile) take
//! their colour limits from here: an area with more colours than the limit is photo-like. The
//! colours are counted by Tight's palette analysis, which gives up as soon as the limit is
//! passed, so a photo tile costs a few dozen runs and a text tile one pass over its pixels.

use super::tight::palette::{Analysis, Palette};
use crate::frame::{Frame, Rect};

/// The side of the tiles JPEG (21) classifies: ZRLE's tile and the damage block, so a changed
/// block is one tile.
pub const TILE: u16 = 64;

/// The most colours a [`TILE`]-sized tile may have and still go losslessly in JPEG (21).
/// Measured on the fixtures' 64×64 tiles: BIOS text and flat UI have ≤ 16 colours, anti-aliased
/// text 120–350 (JPEG at q8 keeps it legible), and the desktop wallpaper's gradient tiles
/// 25–150, which the lossless encodings take at several times JPEG's bytes. Bytes of one frame,
/// JPEG (21) then ZRLE listed, by limit (16 / 24 / 32 / 48 / 96 / 256): desktop 291 / 286 / 278
/// / 290 / 334 / 409 KB (all JPEG: 299), wide 361 / 358 / 342 / 342 / 335 / 233 KB (all JPEG:
/// 566); the POST screen is 23 KB at every limit (all JPEG: 434). 32 is the best or near it on
/// each. Tight's limit ([`colour_limit`]) is larger because its sub-rects are up to 16 times a
/// tile's area.
pub const TILE_COLOUR_LIMIT: usize = 32;

/// The most colours a Tight sub-rect may have and still go with a palette while JPEG is in use
/// (TigerVNC's `EncodeManager` rule): 24 at compression levels 0 and 1, else 96.
pub fn colour_limit(compress_level: Option<u8>) -> usize {
    if compress_level.is_some_and(|level| level < 2) { 24 } else { 96 }
}

/// One part of a classified rect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub rect: Rect,
    /// More colours than the limit: goes as JPEG.
    pub photo: bool,
}

/// A run of tiles of one kind in a tile row, still open for the rows below: tile columns
/// `first..end`, starting at tile row `top`.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: usize,
    end: usize,
    photo: bool,
    top: usize,
}

/// Classifies tiles; reused across updates (the palette's tables are allocated once).
pub struct Classifier {
    palette: Palette,
    open: Vec<Run>,
    row: Vec<Run>,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier { palette: Palette::new(), open: Vec::new(), row: Vec::new() }
    }
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier").finish_non_exhaustive()
    }
}

impl Classifier {
    /// Whether `rect` (inside `frame`) has more than `limit` colours.
    pub fn is_photo(&mut self, frame: &Frame, rect: &Rect, limit: usize) -> bool {
        self.palette.analyse(frame, rect, limit) == Analysis::FullColour
    }

    /// Cuts `rect` (inside `frame`) into areas that exactly cover it, each all photo-like or all
    /// not (by [`TILE_COLOUR_LIMIT`]), in [`TILE`]-sized tiles from the rect's corner. Tiles of
    /// one kind side by side in a tile row make one area, and such runs spanning the same
    /// columns in consecutive rows make one taller area: a JPEG's ~600 bytes of tables then come
    /// once per run, not per tile, and a photo-only or text-only rect stays one area. Areas are
    /// appended top to bottom, left to right.
    pub fn split(&mut self, frame: &Frame, rect: &Rect, out: &mut Vec<Area>) {
        let start = out.len();
        let (columns, rows) = (usize::from(rect.width.div_ceil(TILE)), usize::from(rect.height.div_ceil(TILE)));
        let tile = |column: usize, row: usize| {
            // Both fit in u16: they are offsets inside the rect.
            let (x, y) = ((column * usize::from(TILE)) as u16, (row * usize::from(TILE)) as u16);
            Rect::new(rect.x + x, rect.y + y, TILE.min(rect.width - x), TILE.min(rect.height - y))
        };
        let area = |run: &Run, bottom: usize| {
            let (top_left, bottom_right) = (tile(run.first, run.top), tile(run.end - 1, bottom - 1));
            Area { rect: top_left.union(&bottom_right), photo: run.photo }
        };
        self.open.clear();
        for row in 0..rows {
            self.row.clear();
            for column in 0..columns {
                let photo = self.is_photo(frame, &tile(column, row), TILE_COLOUR_LIMIT);
                match self.row.last_mut() {
                    Some(run) if run.photo == photo => run.end = column + 1,
                    _ => self.row.push(Run { first: column, end: column + 1, photo, top: row }),
                }
            }
            // A run over the same columns as an open one continues it; open runs that nothing
            // continues end above this row. Both lists are in column order.
            let mut open = self.open.iter().peekable();
            for run in &mut self.row {
                while let Some(above) = open.next_if(|above| above.first < run.first) {
                    out.push(area(above, row));
                }
                match open.peek() {
                    Some(above) if above.first == run.first && above.end == run.end && above.photo == run.photo => {
                        run.top = above.top;
                        open.next();
                    }
                    _ => {}
                }
            }
            out.extend(open.map(|above| area(above, row)));
            std::mem::swap(&mut self.open, &mut self.row);
        }
        out.extend(self.open.iter().map(|run| area(run, rows)));
        out[start..].sort_by_key(|area| (area.rect.y, area.rect.x));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of many colours (photo-like) with `flat` areas painted in one colour.
    fn frame_with_flat(width: u16, height: u16, flat: &[Rect]) -> Frame {
        let mut pixels = Vec::with_capacity(usize::from(width) * usize::from(height) * 4);
        for y in 0..height {
            for x in 0..width {
                let v = u32::from(x) * 7 + u32::from(y) * 13;
                pixels.extend_from_slice(&[v as u8, (v >> 3) as u8, (x ^ y) as u8, 0]);
            }
        }
        let mut frame = Frame::from_pixels(width, height, pixels).unwrap();
        for rect in flat {
            frame.fill_rect(rect, 0x00c0_c0c0);
        }
        frame
    }

    fn split(frame: &Frame, rect: Rect) -> Vec<Area> {
        let mut areas = vec![Area { rect: Rect::new(0, 0, 1, 1), photo: false }];
        Classifier::default().split(frame, &rect, &mut areas);
        assert_eq!(areas.remove(0).rect, Rect::new(0, 0, 1, 1), "earlier areas are kept");
        let covered: usize = areas.iter().map(|a| a.rect.area()).sum();
        assert_eq!(covered, rect.area(), "the areas cover the rect once");
        for (i, a) in areas.iter().enumerate() {
            assert_eq!(a.rect.intersect(&rect), a.rect, "{a:?} inside {rect:?}");
            assert!(areas[..i].iter().all(|b| b.rect.intersect(&a.rect).is_empty()), "{a:?} overlaps");
        }
        areas
    }

    #[test]
    fn one_kind_stays_one_area() {
        let photo = frame_with_flat(300, 200, &[]);
        let rect = Rect::new(5, 3, 290, 190);
        assert_eq!(split(&photo, rect), [Area { rect, photo: true }]);
        let flat = frame_with_flat(300, 200, &[photo.bounds()]);
        assert_eq!(split(&flat, rect), [Area { rect, photo: false }]);
        assert!(split(&flat, Rect::new(0, 0, 0, 5)).is_empty());
    }

    #[test]
    fn runs_merge_across_rows_with_the_same_columns() {
        // Tiles from (0, 0): a flat column at tile column 1 over tile rows 0..2, then a flat
        // tile at (3, 2) alone.
        let frame = frame_with_flat(320, 256, &[Rect::new(64, 0, 64, 128), Rect::new(192, 128, 64, 64)]);
        let areas = split(&frame, frame.bounds());
        let want = [
            (Rect::new(0, 0, 64, 128), true),
            (Rect::new(64, 0, 64, 128), false),
            (Rect::new(128, 0, 192, 128), true),
            (Rect::new(0, 128, 192, 64), true),
            (Rect::new(192, 128, 64, 64), false),
            (Rect::new(256, 128, 64, 64), true),
            (Rect::new(0, 192, 320, 64), true),
        ];
        assert_eq!(areas, want.map(|(rect, photo)| Area { rect, photo }));
    }

    #[test]
    fn limits() {
        assert_eq!((colour_limit(None), colour_limit(Some(2)), colour_limit(Some(9))), (96, 96, 96));
        assert_eq!((colour_limit(Some(0)), colour_limit(Some(1))), (24, 24));
        let frame = frame_with_flat(64, 64, &[]);
        let mut classifier = Classifier::default();
        assert!(classifier.is_photo(&frame, &frame.bounds(), TILE_COLOUR_LIMIT));
        assert!(!classifier.is_photo(&frame, &Rect::new(0, 0, 8, 1), TILE_COLOUR_LIMIT));
    }
}
