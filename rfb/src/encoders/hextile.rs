//! Hextile (5): the rect is cut into 16x16 tiles (left to right, top to bottom, edge tiles
//! smaller). Each tile is sent either raw or as a background colour plus up to 255 subrects,
//! drawn in one foreground colour or each in its own, whichever is smaller. Background and
//! foreground may be left out when the client still holds them from the previous tile of the
//! same rect. No compression and no state between rects, so the client's work per pixel is tiny.
//!
//! A tile that is not solid is cut into one-colour subrects in a single pass (widest run, then
//! as many rows as match, as TigerVNC does), counting each colour's subrects; the colour with
//! the most becomes the background, which leaves the fewest to send. The pass stops as soon as
//! raw is certain to be smaller, which photo-like tiles reach early.

mod strips;

use super::workers;
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

/// A connection's Hextile encoder: nothing carries over from rect to rect, so a large rect's
/// bands are encoded side by side, each as rects of its own, one coder per worker.
pub struct HextileEncoder {
    coders: Vec<TileCoder>,
}

/// Reusable per-tile buffers.
struct TileCoder {
    /// The tile's client pixel values, row-major, each row [`TILE`] long whatever the tile's
    /// width (the rest is ignored).
    pixels: [u32; TILE_PIXELS],
    /// The tile cut into one-colour subrects, in the order they are found (wire order).
    parts: Vec<Subrect>,
    palette: Palette,
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

impl HextileEncoder {
    pub fn new() -> Self {
        Self { coders: vec![TileCoder::new()] }
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

/// One subrect of a tile: its colour and where it lies, in tile coordinates (each below 16).
#[derive(Debug, Clone, Copy)]
struct Subrect {
    colour: u32,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
}

/// Slots of [`Palette`]'s table: a power of two, twice the most colours a tile can have, so
/// probes stay short.
const PALETTE_SLOTS: usize = 2 * TILE_PIXELS;

/// A tile's colours and how many subrects each has: an open-addressing table, cleared by
/// walking the slots in use, so a tile costs only what it has.
struct Palette {
    /// (colour, subrects); 0 subrects marks an empty slot.
    slots: Box<[(u32, u16); PALETTE_SLOTS]>,
    used: Vec<usize>,
    /// The colour with the most subrects so far (the first to reach that count).
    best: (u32, u16),
}

impl Palette {
    fn new() -> Self {
        Self { slots: Box::new([(0, 0); PALETTE_SLOTS]), used: Vec::with_capacity(TILE_PIXELS), best: (0, 0) }
    }

    fn clear(&mut self) {
        for &slot in &self.used {
            self.slots[slot] = (0, 0);
        }
        self.used.clear();
        self.best = (0, 0);
    }

    fn slot(&self, colour: u32) -> usize {
        // Fibonacci hashing: the top bits of the product spread nearby colours apart.
        let mut slot = (colour.wrapping_mul(0x9e37_79b1) >> (32 - PALETTE_SLOTS.trailing_zeros())) as usize;
        while self.slots[slot].1 != 0 && self.slots[slot].0 != colour {
            slot = (slot + 1) % PALETTE_SLOTS;
        }
        slot
    }

    /// Counts one more subrect of `colour`.
    fn add(&mut self, colour: u32) {
        let slot = self.slot(colour);
        let entry = &mut self.slots[slot];
        if entry.1 == 0 {
            *entry = (colour, 0);
            self.used.push(slot);
        }
        entry.1 += 1;
        if entry.1 > self.best.1 {
            self.best = *entry;
        }
    }

    fn subrects_of(&self, colour: u32) -> u16 {
        self.slots[self.slot(colour)].1
    }

    fn colours(&self) -> usize {
        self.used.len()
    }
}

impl TileCoder {
    fn new() -> Self {
        Self { pixels: [0; TILE_PIXELS], parts: Vec::with_capacity(TILE_PIXELS), palette: Palette::new() }
    }

    /// Appends `rect` (non-empty, inside `frame`) as Hextile rects, one per strip; returns how
    /// many.
    fn encode_rect(&mut self, frame: &Frame, rect: &Rect, converter: &PixelConverter, out: &mut Vec<u8>) -> usize {
        let writer = PixelWriter::for_converter(converter);
        // The cut is planned on native pixels, which only says where the client's pixels
        // change when no two colours become one (in bgr233 a gradient's steps mostly vanish).
        let heights = if converter.keeps_every_colour() {
            strips::strip_heights(frame, rect, writer.bytes)
        } else {
            vec![rect.height]
        };
        let mut y = rect.y;
        for &height in &heights {
            let strip = Rect::new(rect.x, y, rect.width, height);
            y += height;
            write_rect_header(out, &strip, HEXTILE);
            // Every rect starts with nothing carried: its first non-raw tile must specify the
            // background.
            let mut carried = Carried::default();
            for tile in strip.tiles(TILE as u16) {
                self.encode_tile(frame, &tile, converter, writer, &mut carried, out);
            }
        }
        heights.len()
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
        if let Some(colour) = solid_colour(frame, tile) {
            // Most tiles of a screen; found on the native pixels, so only one is converted.
            write_solid(converter.pixel_value(colour), writer, carried, out);
            return;
        }
        for (row, dst) in frame.rows(tile).zip(self.pixels.chunks_mut(TILE)) {
            converter.pixel_values(row, &mut dst[..width]);
        }
        let raw_len = width * height * writer.bytes;
        if !self.partition(width, height, writer.bytes, raw_len) {
            return write_raw(frame, tile, converter, carried, out);
        }
        let palette = &self.palette;
        if palette.colours() == 1 {
            // Distinct native colours can become one client value (e.g. in bgr233).
            return write_solid(palette.best.0, writer, carried, out);
        }
        // The background the client holds costs nothing to keep: it wins a tie.
        let background = match carried.background {
            Some(held) if palette.subrects_of(held) == palette.best.1 => held,
            _ => palette.best.0,
        };
        let subrects = self.parts.len() - usize::from(palette.subrects_of(background));
        // Two colours: every subrect has the other one, so it is sent once as the foreground.
        let foreground = (palette.colours() == 2)
            .then(|| self.parts.iter().find(|part| part.colour != background).map(|part| part.colour))
            .flatten();
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
        let subrect_len = 2 + if foreground.is_none() { writer.bytes } else { 0 };
        // Mask byte left out of both sizes; the count byte is part of the subrect form.
        if subrects > MAX_SUBRECTS || header + 1 + subrects * subrect_len > raw_len {
            return write_raw(frame, tile, converter, carried, out);
        }
        out.reserve(1 + header + 1 + subrects * subrect_len);
        out.push(mask);
        if mask & BACKGROUND_SPECIFIED != 0 {
            writer.write(background, out);
        }
        if let Some(fg) = foreground.filter(|_| mask & FOREGROUND_SPECIFIED != 0) {
            writer.write(fg, out);
        }
        // Checked against MAX_SUBRECTS above.
        out.push(subrects as u8);
        for part in self.parts.iter().filter(|part| part.colour != background) {
            if foreground.is_none() {
                writer.write(part.colour, out);
            }
            // Tile coordinates are below 16, so each fits in a nibble.
            out.push(((part.x << 4) | part.y) as u8);
            out.push((((part.width - 1) << 4) | (part.height - 1)) as u8);
        }
        carried.background = Some(background);
        carried.foreground = foreground;
    }

    /// Cuts the tile's pixels into one-colour subrects (into `self.parts`, counted per colour
    /// in `self.palette`); false as soon as the subrects that will have to be sent, whatever
    /// the background, take more than `raw_len` bytes (the tile then goes raw).
    fn partition(&mut self, width: usize, height: usize, bytes_per_pixel: usize, raw_len: usize) -> bool {
        self.parts.clear();
        self.palette.clear();
        let in_tile = ((1u32 << width) - 1) as u16;
        // Bit x of a row: pixel x of that row equals `colour`. Sixteen compares that the
        // compiler turns into a few vector instructions, so runs and rows are found by bit
        // arithmetic instead of pixel by pixel.
        let (rows, _) = self.pixels.as_chunks::<TILE>();
        let matching = |y: usize, colour: u32| -> u16 {
            rows[y].iter().enumerate().fold(0u16, |mask, (x, &p)| mask | (u16::from(p == colour) << x)) & in_tile
        };
        // Bit x of row y: pixel (x, y) lies in a subrect found earlier.
        let mut covered = [0u16; TILE];
        for y in 0..height {
            let mut free = in_tile & !covered[y];
            while free != 0 {
                let x = free.trailing_zeros() as usize;
                let colour = self.pixels[y * TILE + x];
                // Runs may cross pixels already covered in the same colour: painting them
                // twice is harmless and makes fewer subrects.
                let run = (matching(y, colour) >> x).trailing_ones() as usize;
                let bits = (((1u32 << run) - 1) << x) as u16;
                let rows = 1 + (y + 1..height).take_while(|&below| matching(below, colour) & bits == bits).count();
                for below in &mut covered[y + 1..y + rows] {
                    *below |= bits;
                }
                free &= !bits;
                self.parts.push(Subrect { colour, x, y, width: run, height: rows });
                self.palette.add(colour);
                // Whatever the background turns out to be, each later subrect adds at most one
                // to its count, so at least `parts - best` subrects will be sent; with more
                // than two colours each carries its colour too.
                let palette = &self.palette;
                let at_least = self.parts.len() - usize::from(palette.best.1);
                let each = 2 + if palette.colours() > 2 { bytes_per_pixel } else { 0 };
                if at_least * each > raw_len || at_least > MAX_SUBRECTS {
                    return false;
                }
            }
        }
        true
    }
}

/// A raw tile: the client's pixels row by row. Nothing is carried over it.
fn write_raw(frame: &Frame, tile: &Rect, converter: &PixelConverter, carried: &mut Carried, out: &mut Vec<u8>) {
    out.push(RAW);
    for row in frame.rows(tile) {
        converter.convert_row(row, out);
    }
    *carried = Carried::default();
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
    frame
        .rows(tile)
        .all(|row| {
            let (pixels, _) = row.as_chunks::<NATIVE_BYTES_PER_PIXEL>();
            // A whole row at once, without a branch per pixel, so it vectorises.
            let differences = pixels.iter().fold(0, |acc, p| acc | (u32::from_le_bytes(*p) ^ colour));
            differences & 0x00ff_ffff == 0
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
        let bands = workers::bands(&clipped, params.workers);
        workers::encode_bands(
            params.workers,
            &mut self.coders,
            TileCoder::new,
            &bands,
            |coder, band, out| coder.encode_rect(frame, band, converter, out),
            out,
        )
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
