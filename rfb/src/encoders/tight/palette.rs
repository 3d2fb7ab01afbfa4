//! Colour analysis of a sub-rect and the palette-filter data (mono bitmap, indices).

use super::MAX_PALETTE;
use super::pixels::{leading_run, native_pixels};
use crate::frame::NATIVE_BYTES_PER_PIXEL;
use crate::frame::{Frame, Rect};

/// Hash slots: a power of two, four times the largest palette, so probes stay short.
const SLOTS: usize = 1024;
/// Never a colour: colours are 24-bit.
const EMPTY: u32 = u32::MAX;

/// What [`Palette::analyse`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::encoders) enum Analysis {
    Solid(u32),
    /// Two colours; [`Palette::colours`] holds them, the more frequent first.
    Mono,
    /// 3..=limit colours, most frequent first.
    Indexed,
    /// More colours than the limit.
    FullColour,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    colour: u32,
    pixels: u32,
    slot: u16,
}

/// A colour → index table for up to 256 colours, reused across sub-rects: clearing touches
/// only the slots in use, and nothing is allocated per pixel.
pub(in crate::encoders) struct Palette {
    keys: Box<[u32; SLOTS]>,
    indices: Box<[u8; SLOTS]>,
    entries: Vec<Entry>,
    colours: Vec<u32>,
    /// The last analysis's runs of equal pixels in row-major order, as (hash slot, length),
    /// so [`Self::write_indices`] fills runs instead of looking every pixel up again. A run
    /// never crosses a row's end, and a row equal to the one above has none.
    runs: Vec<(u16, u32)>,
    /// Per row of the last analysis: how many of `runs` are its, or [`REPEAT`] for a row
    /// equal to the one above (UI and text screens repeat many rows: a row compare is far
    /// cheaper than finding its runs, and its output is a copy of the row above's).
    rows: Vec<u32>,
}

/// In [`Palette::rows`]: the row equals the one above it.
const REPEAT: u32 = u32::MAX;

impl Palette {
    pub(in crate::encoders) fn new() -> Palette {
        Palette {
            keys: Box::new([EMPTY; SLOTS]),
            indices: Box::new([0; SLOTS]),
            entries: Vec::with_capacity(MAX_PALETTE),
            colours: Vec::with_capacity(MAX_PALETTE),
            runs: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The colours of the last analysis that found 2 or more (index order).
    pub(super) fn colours(&self) -> &[u32] {
        &self.colours
    }

    /// Counts the colours of `rect` (inside `frame`), giving up once there are more than
    /// `max_colours` (clamped to 2..=256). Pixel runs are counted once, like TigerVNC, so flat
    /// areas cost one comparison per pixel, and a row equal to the one above costs a compare.
    pub(in crate::encoders) fn analyse(&mut self, frame: &Frame, rect: &Rect, max_colours: usize) -> Analysis {
        self.clear();
        if rect.is_empty() {
            return Analysis::Solid(0);
        }
        let max_colours = max_colours.clamp(2, MAX_PALETTE);
        // The runs of the last row scanned, and how many rows below it repeat it.
        let (mut scanned, mut repeats) = (0..0, 0);
        let mut above: &[u8] = &[];
        for row in frame.rows(rect) {
            if row == above {
                self.rows.push(REPEAT);
                repeats += 1;
                continue;
            }
            self.count_repeats(&scanned, std::mem::take(&mut repeats));
            let start = self.runs.len();
            if !self.scan_row(row, max_colours) {
                return Analysis::FullColour;
            }
            scanned = start..self.runs.len();
            // At most a row's width (<= 65535) of runs.
            self.rows.push(scanned.len() as u32);
            above = row;
        }
        self.count_repeats(&scanned, repeats);
        if let [only] = self.entries[..] {
            return Analysis::Solid(only.colour);
        }
        // Most frequent first (stable: ties keep first-seen order), then index the slots.
        self.entries.sort_by_key(|e| std::cmp::Reverse(e.pixels));
        for (index, entry) in self.entries.iter().enumerate() {
            self.indices[usize::from(entry.slot)] = index as u8;
            self.colours.push(entry.colour);
        }
        if self.entries.len() == 2 { Analysis::Mono } else { Analysis::Indexed }
    }

    /// Splits `row` into runs of equal pixels, counted and hashed; false once it holds a colour
    /// too many.
    fn scan_row(&mut self, row: &[u8], max_colours: usize) -> bool {
        let Some(first) = row.first_chunk::<NATIVE_BYTES_PER_PIXEL>() else { return true };
        // The first run is of the first pixel's colour (the loop counts that pixel too).
        let mut current = u32::from_le_bytes(*first) & 0x00ff_ffff;
        let mut run = 0u32;
        let mut at = 0;
        while at < row.len() {
            let same = leading_run(&row[at..], current);
            run += same as u32;
            at += same * NATIVE_BYTES_PER_PIXEL;
            let Some(&pixel) = row[at..].first_chunk::<NATIVE_BYTES_PER_PIXEL>() else { break };
            if !self.insert(current, run, max_colours) {
                return false;
            }
            current = u32::from_le_bytes(pixel) & 0x00ff_ffff;
            run = 1;
            at += NATIVE_BYTES_PER_PIXEL;
        }
        self.insert(current, run, max_colours)
    }

    /// Counts the pixels of `repeats` more rows like the one whose runs are `runs`.
    fn count_repeats(&mut self, runs: &std::ops::Range<usize>, repeats: u32) {
        if repeats == 0 {
            return;
        }
        for &(slot, len) in &self.runs[runs.clone()] {
            if let Some(entry) = self.entries.get_mut(usize::from(self.indices[usize::from(slot)])) {
                entry.pixels += len * repeats;
            }
        }
    }

    /// Appends the mono bitmap of `rect`: 1 bit per pixel, set for the second colour, MSB
    /// first, each row padded to a byte. Call after an analysis that returned `Mono`.
    pub(super) fn write_mono_bitmap(&self, frame: &Frame, rect: &Rect, out: &mut Vec<u8>) {
        let background = self.colours.first().copied().unwrap_or(EMPTY);
        let row_bytes = usize::from(rect.width).div_ceil(8);
        // Grown once: growing as it goes copies the bitmap each time and touches fresh memory twice.
        out.reserve(row_bytes * usize::from(rect.height));
        for (row, &runs) in frame.rows(rect).zip(&self.rows) {
            if runs == REPEAT && out.len() >= row_bytes {
                out.extend_from_within(out.len() - row_bytes..);
                continue;
            }
            // 8 pixels (32 bytes) per output byte; the last chunk is padded with zero bits.
            for chunk in row.chunks(32) {
                let mut bits = 0u8;
                let mut count = 0;
                for colour in native_pixels(chunk) {
                    bits = bits << 1 | u8::from(colour != background);
                    count += 1;
                }
                out.push(bits << (8 - count));
            }
        }
    }

    /// Appends one palette index byte per pixel of `rect`. Call after an analysis that
    /// returned `Mono` or `Indexed` for the same rect: its runs are filled in.
    pub(super) fn write_indices(&self, rect: &Rect, out: &mut Vec<u8>) {
        out.reserve(rect.area());
        let start = out.len();
        let width = usize::from(rect.width);
        let mut runs = self.runs.iter();
        for &count in &self.rows {
            if count == REPEAT {
                out.extend_from_within(out.len().saturating_sub(width).max(start)..);
                continue;
            }
            for &(slot, len) in runs.by_ref().take(count as usize) {
                out.resize(out.len() + len as usize, self.indices[usize::from(slot)]);
            }
        }
        // The runs cover the rect exactly; anything else would be a bug, never a short rect.
        debug_assert_eq!(out.len() - start, rect.area());
        out.resize(start + rect.area(), 0);
    }

    fn clear(&mut self) {
        for entry in &self.entries {
            self.keys[usize::from(entry.slot)] = EMPTY;
        }
        self.entries.clear();
        self.colours.clear();
        self.runs.clear();
        self.rows.clear();
    }

    #[inline]
    fn slot(colour: u32) -> usize {
        // Fibonacci hashing: the top 10 bits of the product.
        (colour.wrapping_mul(0x9e37_79b1) >> 22) as usize
    }

    /// Adds `pixels` to `colour`'s count; false when it is new and the palette is full.
    fn insert(&mut self, colour: u32, pixels: u32, max_colours: usize) -> bool {
        let mut slot = Self::slot(colour);
        loop {
            let key = self.keys[slot];
            if key == colour {
                let index = self.indices[slot];
                if let Some(entry) = self.entries.get_mut(usize::from(index)) {
                    entry.pixels += pixels;
                }
                self.runs.push((slot as u16, pixels));
                return true;
            }
            if key == EMPTY {
                if self.entries.len() >= max_colours {
                    return false;
                }
                self.keys[slot] = colour;
                // < 256 entries here, so the index fits.
                self.indices[slot] = self.entries.len() as u8;
                self.entries.push(Entry { colour, pixels, slot: slot as u16 });
                self.runs.push((slot as u16, pixels));
                return true;
            }
            slot = (slot + 1) % SLOTS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u16, height: u16, colour: impl Fn(u16, u16) -> u32) -> Frame {
        let mut f = Frame::new(width, height);
        for y in 0..height {
            for x in 0..width {
                f.fill_rect(&Rect::new(x, y, 1, 1), colour(x, y));
            }
        }
        f
    }

    #[test]
    fn runs_across_rows_and_white_give_the_right_indices() {
        // White first (the colour a wrong initial value would match), runs crossing rows.
        let f = frame(5, 3, |x, y| match (x + y * 5) % 7 {
            0..=3 => 0x00ff_ffff,
            4 => 0x0000_00ff,
            _ => 0x0012_3456,
        });
        let mut p = Palette::new();
        assert_eq!(p.analyse(&f, &f.bounds(), 16), Analysis::Indexed);
        let mut indices = Vec::new();
        p.write_indices(&f.bounds(), &mut indices);
        let colours = p.colours().to_vec();
        let expected: Vec<u8> =
            (0..15).map(|i| colours.iter().position(|&c| c == f.pixel(i % 5, i / 5)).unwrap() as u8).collect();
        assert_eq!(indices, expected);
        assert_eq!(colours[0], 0x00ff_ffff, "the most frequent colour first");
    }

    /// Rows equal to the one above are counted as many times as they appear, and their
    /// indices and bitmap rows are those of the row above.
    #[test]
    fn repeated_rows_count_and_write_like_scanned_ones() {
        let (x, y, z) = (0x00aa_0000, 0x0000_00bb, 0x0000_cc00);
        // 18 rows of 7 x and 30 y, then 2 rows of 32 x and 5 y: x is first seen and more
        // frequent among distinct rows, y among all pixels.
        let mono = frame(37, 20, |col, row| match (row < 18, col) {
            (true, 0..7) | (false, 0..32) => x,
            _ => y,
        });
        let mut p = Palette::new();
        assert_eq!(p.analyse(&mono, &mono.bounds(), 256), Analysis::Mono);
        assert_eq!(p.colours(), [y, x]);
        let mut bits = Vec::new();
        p.write_mono_bitmap(&mono, &mono.bounds(), &mut bits);
        let row = |ones: usize| -> Vec<u8> {
            (0..5).map(|byte| (0..8).fold(0u8, |b, bit| b << 1 | u8::from(byte * 8 + bit < ones))).collect()
        };
        let expected: Vec<u8> = (0..20).flat_map(|r| row(if r < 18 { 7 } else { 32 })).collect();
        assert_eq!(bits, expected);

        // A third colour on rows 5 and 19: repeats resume after it.
        let indexed =
            frame(37, 20, |col, row| if (row == 5 || row == 19) && col > 30 { z } else { mono.pixel(col, row) });
        assert_eq!(p.analyse(&indexed, &indexed.bounds(), 256), Analysis::Indexed);
        assert_eq!(p.colours(), [y, x, z]);
        let mut indices = vec![7];
        p.write_indices(&indexed.bounds(), &mut indices);
        let expected: Vec<u8> = std::iter::once(7)
            .chain(
                (0..20u16)
                    .flat_map(|r| (0..37u16).map(move |c| (r, c)))
                    .map(|(r, c)| p.colours().iter().position(|&colour| colour == indexed.pixel(c, r)).unwrap() as u8),
            )
            .collect();
        assert_eq!(indices, expected);
    }

    #[test]
    fn counts_and_orders_colours() {
        let mut p = Palette::new();
        let f = frame(10, 3, |x, _| if x < 3 { 0x0000ff } else { 0xff0000 });
        assert_eq!(p.analyse(&f, &f.bounds(), 256), Analysis::Mono);
        assert_eq!(p.colours(), [0xff0000, 0x0000ff]);
        let mut bits = Vec::new();
        p.write_mono_bitmap(&f, &f.bounds(), &mut bits);
        assert_eq!(bits, [0b1110_0000, 0, 0b1110_0000, 0, 0b1110_0000, 0]);

        let f = frame(4, 2, |x, y| [0x10, 0x20, 0x30][usize::from((x + y) % 3)]);
        assert_eq!(p.analyse(&f, &f.bounds(), 256), Analysis::Indexed);
        let mut indices = Vec::new();
        p.write_indices(&f.bounds(), &mut indices);
        let colours = p.colours().to_vec();
        let back: Vec<u32> = indices.iter().map(|&i| colours[usize::from(i)]).collect();
        assert_eq!(back, [0x10, 0x20, 0x30, 0x10, 0x20, 0x30, 0x10, 0x20]);
        assert_eq!(colours[0], 0x10, "the most frequent colour comes first");
    }

    #[test]
    fn solid_limits_and_padding_byte() {
        let mut p = Palette::new();
        let mut f = frame(5, 5, |_, _| 0x123456);
        assert_eq!(p.analyse(&f, &f.bounds(), 2), Analysis::Solid(0x123456));
        // The padding byte is ignored.
        f.pixels_mut()[3] = 0xff;
        assert_eq!(p.analyse(&f, &f.bounds(), 2), Analysis::Solid(0x123456));
        let f = frame(16, 16, |x, y| u32::from(x * 16 + y));
        assert_eq!(p.analyse(&f, &f.bounds(), 255), Analysis::FullColour);
        assert_eq!(p.analyse(&f, &f.bounds(), 256), Analysis::Indexed);
        assert_eq!(p.colours().len(), 256);
        assert_eq!(p.analyse(&f, &Rect::new(0, 0, 3, 1), 2), Analysis::FullColour);
        assert_eq!(p.analyse(&f, &Rect::new(0, 0, 3, 1), 3), Analysis::Indexed);
        // Reuse after many colours: stale slots are gone.
        let g = frame(2, 1, |x, _| u32::from(x) * 16);
        assert_eq!(p.analyse(&g, &g.bounds(), 2), Analysis::Mono);
        assert_eq!(p.colours(), [0, 16]);
    }

    #[test]
    fn colliding_colours() {
        // Colours that all hash to one slot still count and index correctly.
        let colours: Vec<u32> = (0..0x00ff_ffff).filter(|&c| Palette::slot(c) == 7).take(100).collect();
        let f = frame(200, 1, |x, _| colours[usize::from(x / 2)]);
        let mut p = Palette::new();
        assert_eq!(p.analyse(&f, &f.bounds(), 256), Analysis::Indexed);
        let mut indices = Vec::new();
        p.write_indices(&f.bounds(), &mut indices);
        let back: Vec<u32> = indices.iter().map(|&i| p.colours()[usize::from(i)]).collect();
        assert_eq!(back, (0..200).map(|x| colours[x / 2]).collect::<Vec<_>>());
    }
}
