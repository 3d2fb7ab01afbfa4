//! Hextile (5): the rect is cut into 16x16 tiles (left to right, top to bottom, edge tiles
//! smaller). Each tile is sent either raw or as a background colour plus up to 255 subrects,
//! drawn in one foreground colour or each in its own, whichever is smaller. Background and
//! foreground may be left out when the client still holds them from the previous tile of the
//! same rect. No compression and no state between rects, so the client's work per pixel is tiny.

use super::{EncodeParams, Encoder};
use crate::encoding::HEXTILE;
use crate::frame::{Frame, NATIVE_BYTES_PER_PIXEL, Rect};
use crate::messages::server::write_rect_header;
use crate::pixel_format::PixelConverter;

const TILE: usize = 16;
const TILE_PIXELS: usize = TILE * TILE;
/// The subrect count is a U8.
const MAX_SUBRECTS: usize = 255;

// Subencoding mask bits.
const RAW: u8 = 1;
const BACKGROUND_SPECIFIED: u8 = 2;
const FOREGROUND_SPECIFIED: u8 = 4;
const ANY_SUBRECTS: u8 = 8;
const SUBRECTS_COLOURED: u8 = 16;

/// Reusable per-tile buffers; Hextile keeps nothing across rects.
pub struct HextileEncoder {
    /// The tile's client pixel values, row-major.
    pixels: [u32; TILE_PIXELS],
    /// The same values sorted, to find the most common one.
    sorted: [u32; TILE_PIXELS],
    /// Pixels already painted by an earlier subrect of the tile.
    covered: [bool; TILE_PIXELS],
    /// The tile's subrects as they go on the wire.
    subrects: Vec<u8>,
}

impl std::fmt::Debug for HextileEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HextileEncoder").finish_non_exhaustive()
    }
}

impl Default for HextileEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// What the client still holds from the previous tile of this rect. The spec forbids carrying
/// the background over a raw tile, and the foreground over a raw tile or one with coloured
/// subrects; a solid tile keeps both as they were.
#[derive(Debug, Clone, Copy, Default)]
struct Carried {
    background: Option<u32>,
    foreground: Option<u32>,
}

/// How pixel values are written: the client's bytes per pixel and byte order.
#[derive(Debug, Clone, Copy)]
struct PixelWriter {
    bytes: usize,
    big_endian: bool,
}

impl PixelWriter {
    fn for_converter(converter: &PixelConverter) -> Self {
        Self { bytes: converter.bytes_per_pixel(), big_endian: converter.client_format().big_endian }
    }

    fn write(self, value: u32, out: &mut Vec<u8>) {
        // Same byte placement as the converter's own rows (low bytes of the value).
        if self.big_endian {
            out.extend_from_slice(&value.to_be_bytes()[4 - self.bytes..]);
        } else {
            out.extend_from_slice(&value.to_le_bytes()[..self.bytes]);
        }
    }
}

impl HextileEncoder {
    pub fn new() -> Self {
        Self {
            pixels: [0; TILE_PIXELS],
            sorted: [0; TILE_PIXELS],
            covered: [false; TILE_PIXELS],
            subrects: Vec::with_capacity(MAX_SUBRECTS * 6),
        }
    }

    /// Appends one tile (at most 16x16, inside `frame`) and updates what the client holds.
    fn encode_tile(
        &mut self,
        frame: &Frame,
        tile: &Rect,
        converter: &PixelConverter,
        writer: PixelWriter,
        carried: &mut Carried,
        out: &mut Vec<u8>,
    ) {
        let (width, height) = (usize::from(tile.width), usize::from(tile.height));
        let n = width * height;
        if let Some(colour) = solid_colour(frame, tile) {
            // Most tiles of a screen; found on the native pixels, so only one is converted.
            write_solid(converter.pixel_value(colour), writer, carried, out);
            return;
        }
        for row in 0..height {
            // Inside the tile, so the row index fits in u16.
            let native = frame.row(tile, row as u16);
            for (dst, src) in
                self.pixels[row * width..(row + 1) * width].iter_mut().zip(native.chunks_exact(NATIVE_BYTES_PER_PIXEL))
            {
                // `pixel_value` reads only the colour bytes, so the padding byte never leaks.
                *dst = converter.pixel_value(u32::from_le_bytes([src[0], src[1], src[2], src[3]]));
            }
        }
        let pixels = &self.pixels[..n];
        let first = pixels[0];
        if pixels.iter().all(|&p| p == first) {
            // Distinct native colours can become one client value (e.g. in bgr233).
            write_solid(first, writer, carried, out);
            return;
        }

        let (background, colours) = self.most_common(n);
        // Two colours: every subrect has the other one, so it is sent once as the foreground.
        let pixels = &self.pixels[..n];
        let foreground = (colours == 2).then(|| *pixels.iter().find(|&&p| p != background).unwrap_or(&background));
        let mut mask = ANY_SUBRECTS;
        let mut header = 0;
        if carried.background != Some(background) {
            mask |= BACKGROUND_SPECIFIED;
            header += writer.bytes;
        }
        match foreground {
            Some(fg) if carried.foreground != Some(fg) => {
                mask |= FOREGROUND_SPECIFIED;
                header += writer.bytes;
            }
            Some(_) => {}
            None => mask |= SUBRECTS_COLOURED,
        }
        // Mask byte left out of both sizes; the count byte is part of the subrect form.
        let raw_len = n * writer.bytes;
        let budget = raw_len.saturating_sub(header + 1);
        let coloured = foreground.is_none();
        // Every colour but the background needs a subrect of its own: when even one each would
        // not fit the budget (photo-like tiles), the tile goes raw without a search.
        let least = (colours - 1) * (2 + if coloured { writer.bytes } else { 0 });
        let subrects = if least > budget || colours - 1 > MAX_SUBRECTS {
            None
        } else {
            self.find_subrects(width, height, background, coloured, writer, budget)
        };
        match subrects {
            Some(count) => {
                out.push(mask);
                if mask & BACKGROUND_SPECIFIED != 0 {
                    writer.write(background, out);
                }
                if let Some(fg) = foreground.filter(|_| mask & FOREGROUND_SPECIFIED != 0) {
                    writer.write(fg, out);
                }
                // `find_subrects` stops at MAX_SUBRECTS.
                out.push(count as u8);
                out.extend_from_slice(&self.subrects);
                carried.background = Some(background);
                carried.foreground = foreground;
            }
            None => {
                out.push(RAW);
                for &p in &self.pixels[..n] {
                    writer.write(p, out);
                }
                *carried = Carried::default();
            }
        }
    }

    /// The most common pixel value of the tile's first `n` pixels and how many distinct values
    /// there are.
    fn most_common(&mut self, n: usize) -> (u32, usize) {
        let sorted = &mut self.sorted[..n];
        sorted.copy_from_slice(&self.pixels[..n]);
        sorted.sort_unstable();
        let (mut best, mut best_len, mut colours) = (sorted[0], 0, 0);
        for run in sorted.chunk_by(|a, b| a == b) {
            colours += 1;
            if run.len() > best_len {
                (best, best_len) = (run[0], run.len());
            }
        }
        (best, colours)
    }

    /// Covers every pixel that is not `background` with subrects of one colour each, written to
    /// `self.subrects`. Returns their count, or `None` once they would take more than `budget`
    /// bytes or exceed [`MAX_SUBRECTS`] (raw is then no bigger).
    fn find_subrects(
        &mut self,
        width: usize,
        height: usize,
        background: u32,
        coloured: bool,
        writer: PixelWriter,
        budget: usize,
    ) -> Option<usize> {
        let pixels = &self.pixels[..width * height];
        let covered = &mut self.covered[..width * height];
        covered.fill(false);
        self.subrects.clear();
        let mut count = 0;
        for y in 0..height {
            for x in 0..width {
                let colour = pixels[y * width + x];
                if colour == background || covered[y * width + x] {
                    continue;
                }
                let same = |x: usize, y: usize| pixels[y * width + x] == colour;
                // Two greedy shapes, the larger wins: widest run then as many rows as match, or
                // tallest run then as many columns as match. Pixels already covered in the same
                // colour may be painted again (harmless), which lets rects grow past them.
                let run_w = (x..width).take_while(|&cx| same(cx, y)).count();
                let rows = (y..height).take_while(|&cy| (x..x + run_w).all(|cx| same(cx, cy))).count();
                let run_h = (y..height).take_while(|&cy| same(x, cy)).count();
                let cols = (x..width).take_while(|&cx| (y..y + run_h).all(|cy| same(cx, cy))).count();
                let (w, h) = if run_w * rows >= cols * run_h { (run_w, rows) } else { (cols, run_h) };
                for cy in y..y + h {
                    covered[cy * width + x..cy * width + x + w].fill(true);
                }
                count += 1;
                if count > MAX_SUBRECTS {
                    return None;
                }
                if coloured {
                    writer.write(colour, &mut self.subrects);
                }
                // Tile coordinates are below 16, so each fits in a nibble.
                self.subrects.push(((x << 4) | y) as u8);
                self.subrects.push((((w - 1) << 4) | (h - 1)) as u8);
                if self.subrects.len() > budget {
                    return None;
                }
            }
        }
        Some(count)
    }
}

/// A solid tile of client `value`: the background only, and nothing at all when the client
/// already has it.
fn write_solid(value: u32, writer: PixelWriter, carried: &mut Carried, out: &mut Vec<u8>) {
    if carried.background == Some(value) {
        out.push(0);
    } else {
        out.push(BACKGROUND_SPECIFIED);
        writer.write(value, out);
        carried.background = Some(value);
    }
}

/// The tile's colour (`0x00RRGGBB`) when all its native pixels have it.
fn solid_colour(frame: &Frame, tile: &Rect) -> Option<u32> {
    let colour = u32::from_le_bytes(*frame.row(tile, 0).first_chunk::<NATIVE_BYTES_PER_PIXEL>()?) & 0x00ff_ffff;
    (0..tile.height)
        .all(|row| {
            let (pixels, _) = frame.row(tile, row).as_chunks::<NATIVE_BYTES_PER_PIXEL>();
            pixels.iter().all(|p| u32::from_le_bytes(*p) & 0x00ff_ffff == colour)
        })
        .then_some(colour)
}

impl Encoder for HextileEncoder {
    fn encode(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        // Only what lies inside the frame is sent; nothing at all for an empty rect.
        let clipped = rect.intersect(&frame.bounds());
        if clipped.is_empty() {
            return 0;
        }
        let converter = params.converter;
        let writer = PixelWriter::for_converter(converter);
        write_rect_header(out, &clipped, HEXTILE);
        // Every rect starts with nothing carried: its first non-raw tile must specify the
        // background.
        let mut carried = Carried::default();
        for tile in clipped.tiles(TILE as u16) {
            self.encode_tile(frame, &tile, converter, writer, &mut carried, out);
        }
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::ClientEncodings;
    use crate::pixel_format::PixelFormat;

    fn encode(frame: &Frame) -> Vec<u8> {
        let converter = PixelConverter::new(PixelFormat::NATIVE);
        let encodings = ClientEncodings::from_list(vec![HEXTILE]);
        let params = EncodeParams {
            converter: &converter,
            encodings: &encodings,
            shared: None,
            workers: &crate::encoders::workers::Serial,
        };
        let mut out = Vec::new();
        assert_eq!(HextileEncoder::new().encode(frame, &frame.bounds(), &params, &mut out), 1);
        out.split_off(12)
    }

    #[test]
    fn solid_tiles_carry_the_background() {
        let mut frame = Frame::new(32, 16);
        frame.fill_rect(&frame.bounds(), 0x123456);
        // First tile specifies it, the second reuses it.
        assert_eq!(encode(&frame), [BACKGROUND_SPECIFIED, 0x56, 0x34, 0x12, 0, 0]);
    }

    #[test]
    fn two_colours_use_the_foreground() {
        let mut frame = Frame::new(16, 16);
        frame.fill_rect(&frame.bounds(), 0xffffff);
        frame.fill_rect(&Rect::new(2, 3, 4, 5), 0x000080);
        assert_eq!(
            encode(&frame),
            [
                BACKGROUND_SPECIFIED | FOREGROUND_SPECIFIED | ANY_SUBRECTS,
                0xff,
                0xff,
                0xff,
                0,
                0x80,
                0,
                0,
                0,
                1,
                0x23,
                0x34
            ]
        );
    }
}
