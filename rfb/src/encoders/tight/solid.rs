//! Solid-area search (TigerVNC `EncodeManager::findSolidRect`), used when the client listed
//! LastRect because the number of rects is not known in advance.
//!
//! Walk the rect in 16x16 blocks; at the first single-colour block, grow by whole blocks
//! (width first, then height, keeping the largest area), drop the result if it is under 2048
//! pixels (unless it is the whole rect), grow it pixel by pixel up, down, left and right, and
//! clip it to 2048 wide and 65536 pixels. The rest of the rect is split into disjoint pieces:
//! the rows above the area (already searched, so sent as they are) and the parts left, right
//! and below, which are searched again. TigerVNC subtracts each area from a region instead;
//! the pieces here are computed directly, so they tile the rect exactly by construction.
//! An explicit work stack replaces TigerVNC's recursion, so stack depth is bounded.

use super::pixels::{all_pixels_are, native_pixels};
use super::{MAX_RECT_AREA, MAX_RECT_WIDTH};
use crate::frame::{Frame, Rect};

/// TigerVNC `SolidSearchBlock`.
const BLOCK: u32 = 16;
/// TigerVNC `SolidBlockMinArea`.
const MIN_AREA: u32 = 2048;

/// A piece of the searched rect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// A single-colour area (`0x00RRGGBB`) at most 2048 wide and 65536 pixels.
    Solid(Rect, u32),
    /// Anything else, to be split and analysed.
    Rest(Rect),
}

/// Edges as u32 so arithmetic near 65535 cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Area {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

impl Area {
    fn of(r: &Rect) -> Area {
        let (x0, y0) = (u32::from(r.x), u32::from(r.y));
        Area { x0, y0, x1: x0 + u32::from(r.width), y1: y0 + u32::from(r.height) }
    }

    fn rect(&self) -> Rect {
        // Every area is a part of a u16 rect, so its origin and size fit in u16.
        Rect::new(self.x0 as u16, self.y0 as u16, (self.x1 - self.x0) as u16, (self.y1 - self.y0) as u16)
    }

    fn area(&self) -> u32 {
        (self.x1 - self.x0) * (self.y1 - self.y0)
    }

    fn is_empty(&self) -> bool {
        self.x1 <= self.x0 || self.y1 <= self.y0
    }
}

/// Appends to `parts` solid areas and remaining pieces that together tile `rect` exactly
/// (`rect` must lie inside `frame`). `stack` is scratch space.
pub(super) fn find_solid_areas(frame: &Frame, rect: &Rect, stack: &mut Vec<Rect>, parts: &mut Vec<Part>) {
    stack.clear();
    if rect.is_empty() {
        return;
    }
    stack.push(*rect);
    while let Some(r) = stack.pop() {
        let outer = Area::of(&r);
        let Some((solid, colour)) = find_solid(frame, &outer) else {
            parts.push(Part::Rest(r));
            continue;
        };
        parts.push(Part::Solid(solid.rect(), colour));
        let above = Area { y1: solid.y0, ..outer };
        let left = Area { x1: solid.x0, y0: solid.y0, y1: solid.y1, ..outer };
        let right = Area { x0: solid.x1, y0: solid.y0, y1: solid.y1, ..outer };
        let below = Area { y0: solid.y1, ..outer };
        if !above.is_empty() {
            parts.push(Part::Rest(above.rect()));
        }
        for piece in [below, right, left] {
            if !piece.is_empty() {
                stack.push(piece.rect());
            }
        }
    }
}

/// The first acceptable solid area of `r` and its colour.
fn find_solid(frame: &Frame, r: &Area) -> Option<(Area, u32)> {
    for y0 in (r.y0..r.y1).step_by(BLOCK as usize) {
        let y1 = (y0 + BLOCK).min(r.y1);
        for x0 in (r.x0..r.x1).step_by(BLOCK as usize) {
            let block = Area { x0, y0, x1: (x0 + BLOCK).min(r.x1), y1 };
            let colour = pixel(frame, x0, y0);
            if !is_solid(frame, &block, colour) {
                continue;
            }
            let by_block = extend_by_block(frame, &Area { x0, y0, ..*r }, colour);
            let found = if by_block == *r {
                by_block
            } else if by_block.area() < MIN_AREA {
                continue;
            } else {
                extend_by_pixel(frame, r, &by_block, colour)
            };
            return Some((clip(found), colour));
        }
    }
    None
}

/// Grows a solid block at the top-left of `r` by whole blocks: as wide as possible on each
/// block row, going down while the first block stays solid; keeps the largest area.
fn extend_by_block(frame: &Frame, r: &Area, colour: u32) -> Area {
    let mut width = r.x1 - r.x0;
    let (mut best_w, mut best_h) = (0, 0);
    for y0 in (r.y0..r.y1).step_by(BLOCK as usize) {
        let y1 = (y0 + BLOCK).min(r.y1);
        let first = Area { x0: r.x0, y0, x1: r.x0 + BLOCK.min(width), y1 };
        if !is_solid(frame, &first, colour) {
            break;
        }
        let mut x = first.x1;
        while x < r.x0 + width {
            let block = Area { x0: x, y0, x1: (x + BLOCK).min(r.x0 + width), y1 };
            if !is_solid(frame, &block, colour) {
                break;
            }
            x = block.x1;
        }
        width = x - r.x0;
        let height = y1 - r.y0;
        if width * height > best_w * best_h {
            (best_w, best_h) = (width, height);
        }
    }
    Area { x0: r.x0, y0: r.y0, x1: r.x0 + best_w, y1: r.y0 + best_h }
}

/// Grows `area` (inside `r`) row by row up and down, then column by column left and right.
fn extend_by_pixel(frame: &Frame, r: &Area, area: &Area, colour: u32) -> Area {
    let mut e = *area;
    while e.y0 > r.y0 && is_solid(frame, &Area { y0: e.y0 - 1, y1: e.y0, ..e }, colour) {
        e.y0 -= 1;
    }
    while e.y1 < r.y1 && is_solid(frame, &Area { y0: e.y1, y1: e.y1 + 1, ..e }, colour) {
        e.y1 += 1;
    }
    while e.x0 > r.x0 && is_solid(frame, &Area { x0: e.x0 - 1, x1: e.x0, ..e }, colour) {
        e.x0 -= 1;
    }
    while e.x1 < r.x1 && is_solid(frame, &Area { x0: e.x1, x1: e.x1 + 1, ..e }, colour) {
        e.x1 += 1;
    }
    e
}

/// Keeps the top-left part that is at most 2048 wide and 65536 pixels.
fn clip(a: Area) -> Area {
    let width = (a.x1 - a.x0).min(u32::from(MAX_RECT_WIDTH));
    let height = (a.y1 - a.y0).min(MAX_RECT_AREA as u32 / width.max(1));
    Area { x1: a.x0 + width, y1: a.y0 + height, ..a }
}

fn pixel(frame: &Frame, x: u32, y: u32) -> u32 {
    let row = frame.row(&Area { x0: x, y0: y, x1: x + 1, y1: y + 1 }.rect(), 0);
    native_pixels(row).next().unwrap_or(0)
}

fn is_solid(frame: &Frame, a: &Area, colour: u32) -> bool {
    let rect = a.rect();
    frame.rows(&rect).all(|row| all_pixels_are(row, colour))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(frame: &Frame, rect: Rect) -> Vec<Part> {
        let mut parts = Vec::new();
        find_solid_areas(frame, &rect, &mut Vec::new(), &mut parts);
        // The parts tile `rect` exactly.
        let mut covered = vec![0u8; rect.area()];
        for part in &parts {
            let (Part::Solid(p, _) | Part::Rest(p)) = part;
            assert!(!p.is_empty());
            for y in p.y..p.y + p.height {
                for x in p.x..p.x + p.width {
                    assert!(x >= rect.x && y >= rect.y && x < rect.x + rect.width && y < rect.y + rect.height);
                    covered[usize::from(y - rect.y) * usize::from(rect.width) + usize::from(x - rect.x)] += 1;
                }
            }
            if let Part::Solid(p, colour) = part {
                assert!(p.width <= MAX_RECT_WIDTH && p.area() <= MAX_RECT_AREA);
                assert!(is_solid(frame, &Area::of(p), *colour));
            }
        }
        assert!(covered.iter().all(|&c| c == 1), "parts overlap or leave gaps");
        parts
    }

    fn noise(frame: &mut Frame) {
        let rect = frame.bounds();
        for y in rect.y..rect.y + rect.height {
            for x in rect.x..rect.x + rect.width {
                let v = (u32::from(x) * 7919 + u32::from(y) * 104_729).wrapping_mul(2_654_435_761) >> 8;
                frame.fill_rect(&Rect::new(x, y, 1, 1), v);
            }
        }
    }

    #[test]
    fn finds_an_unaligned_area() {
        let mut f = Frame::new(200, 150);
        noise(&mut f);
        f.fill_rect(&Rect::new(21, 13, 100, 70), 0x00ff00);
        let parts = search(&f, Rect::new(3, 2, 190, 140));
        let solids: Vec<_> = parts.iter().filter(|p| matches!(p, Part::Solid(..))).collect();
        assert_eq!(solids, [&Part::Solid(Rect::new(21, 13, 100, 70), 0x00ff00)]);
    }

    #[test]
    fn whole_small_rect_and_tiny_areas() {
        let f = Frame::new(40, 40);
        assert_eq!(search(&f, Rect::new(1, 1, 10, 10)), [Part::Solid(Rect::new(1, 1, 10, 10), 0)]);
        // A 20x20 solid area (< 2048 px) in noise is not worth a rect.
        let mut f = Frame::new(64, 64);
        noise(&mut f);
        f.fill_rect(&Rect::new(16, 16, 20, 20), 0x123456);
        assert_eq!(search(&f, f.bounds()), [Part::Rest(f.bounds())]);
    }

    #[test]
    fn big_areas_are_clipped() {
        let f = Frame::new(2500, 100);
        let parts = search(&f, f.bounds());
        assert!(parts.iter().all(|p| matches!(p, Part::Solid(..))));
        assert_eq!(parts.len(), 8, "{parts:?}");
    }

    #[test]
    fn desktop_like() {
        let mut f = Frame::new(300, 200);
        noise(&mut f);
        f.fill_rect(&Rect::new(0, 0, 300, 40), 0x202020);
        f.fill_rect(&Rect::new(50, 60, 120, 120), 0xeeeeee);
        f.fill_rect(&Rect::new(200, 60, 90, 100), 0x3366aa);
        let parts = search(&f, f.bounds());
        let solid_px: usize = parts.iter().map(|p| if let Part::Solid(r, _) = p { r.area() } else { 0 }).sum();
        assert_eq!(solid_px, 300 * 40 + 120 * 120 + 90 * 100);
        search(&f, Rect::new(7, 3, 250, 190));
    }
}
