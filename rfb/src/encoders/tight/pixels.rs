//! TPIXEL: how Tight sends a pixel value.

use crate::frame::{Frame, NATIVE_BYTES_PER_PIXEL, Rect};
use crate::pixel_format::{PixelConverter, PixelFormat};

/// 3 bytes R, G, B for "888" clients, else a PIXEL in the client's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TPixel {
    /// True colour, 32 bpp, depth 24, 8-bit channels on byte boundaries (TigerVNC
    /// `PixelFormat::is888`, libvncserver `tightUsePixelFormat24`).
    Rgb,
    /// The client's PIXEL: 1, 2 or 4 bytes (depth-32 clients get 4).
    Client,
}

impl TPixel {
    pub(super) fn for_converter(converter: &PixelConverter) -> TPixel {
        if is_888(converter.client_format()) { TPixel::Rgb } else { TPixel::Client }
    }

    /// Appends the TPIXEL of `rgb` (`0x00RRGGBB`).
    pub(super) fn write(self, converter: &PixelConverter, rgb: u32, out: &mut Vec<u8>) {
        let [b, g, r, _] = rgb.to_le_bytes();
        match self {
            TPixel::Rgb => out.extend_from_slice(&[r, g, b]),
            // Through the row converter, so single values are laid out exactly like rows.
            TPixel::Client => converter.convert_row(&[b, g, r, 0], out),
        }
    }

    /// Appends the TPIXELs of `rect` of `frame`, row-major.
    pub(super) fn write_rect(self, converter: &PixelConverter, frame: &Frame, rect: &Rect, out: &mut Vec<u8>) {
        match self {
            TPixel::Rgb => {
                let start = out.len();
                out.resize(start + rect.area() * 3, 0);
                let mut dst = out[start..].chunks_exact_mut(3);
                for row in frame.rows(rect) {
                    for (src, dst) in row.chunks_exact(NATIVE_BYTES_PER_PIXEL).zip(&mut dst) {
                        dst.copy_from_slice(&[src[2], src[1], src[0]]);
                    }
                }
            }
            TPixel::Client => converter.convert_rect(frame, rect, out),
        }
    }
}

/// The colours (`0x00RRGGBB`, padding byte dropped) of a row of native pixel bytes.
#[inline(always)]
pub(super) fn native_pixels(row: &[u8]) -> impl Iterator<Item = u32> + '_ {
    // One 4-byte load and a mask per pixel (building the value from 3 byte loads cost a
    // fifth of Tight's time in the palette analysis).
    row.as_chunks::<NATIVE_BYTES_PER_PIXEL>().0.iter().map(|p| u32::from_le_bytes(*p) & 0x00ff_ffff)
}

/// Four native pixels (16 bytes) as one number, and what they are compared with.
const QUAD: usize = 4 * NATIVE_BYTES_PER_PIXEL;
/// The colour bits of four native pixels (the padding bytes are not compared).
const QUAD_COLOURS: u128 = 0x00ff_ffff_00ff_ffff_00ff_ffff_00ff_ffff;

/// `colour` four times over, for comparing four pixels at once. `colour` must be `0x00RRGGBB`:
/// a value with bits above the 24 colour bits would match white.
#[inline(always)]
fn quad_of(colour: u32) -> u128 {
    debug_assert!(colour <= 0x00ff_ffff, "not a colour: {colour:#x}");
    u128::from(colour) * 0x0000_0001_0000_0001_0000_0001_0000_0001
}

/// How many of the leading pixels of `row` (native bytes) are `colour` (`0x00RRGGBB`), four at
/// a time while they all are: flat areas, the bulk of screen content, cost one compare per
/// four pixels.
#[inline(always)]
pub(super) fn leading_run(row: &[u8], colour: u32) -> usize {
    let want = quad_of(colour);
    let (quads, _) = row.as_chunks::<QUAD>();
    let whole = quads.iter().take_while(|q| (u128::from_le_bytes(**q) ^ want) & QUAD_COLOURS == 0).count();
    let done = whole * 4;
    done + native_pixels(&row[done * NATIVE_BYTES_PER_PIXEL..]).take_while(|&c| c == colour).count()
}

/// Whether every pixel of `row` (native bytes) is `colour` (`0x00RRGGBB`). Sixteen pixels per
/// step, whose four 4-pixel compares are merged without a branch between them: a row of a
/// 16x16 block of the solid search is one step (about half of `leading_run`'s instructions).
#[inline(always)]
pub(super) fn all_pixels_are(row: &[u8], colour: u32) -> bool {
    let want = quad_of(colour);
    let differences =
        |quads: &[[u8; QUAD]]| quads.iter().fold(0, |acc, q| acc | ((u128::from_le_bytes(*q) ^ want) & QUAD_COLOURS));
    let (steps, rest) = row.as_chunks::<{ 4 * QUAD }>();
    let (quads, tail) = rest.as_chunks::<QUAD>();
    steps.iter().all(|step| differences(step.as_chunks::<QUAD>().0) == 0)
        && differences(quads) == 0
        && native_pixels(tail).all(|c| c == colour)
}

fn is_888(f: &PixelFormat) -> bool {
    let channel = |max: u16, shift: u8| max == 255 && shift.is_multiple_of(8) && shift <= 24;
    f.true_colour
        && f.bits_per_pixel == 32
        && f.depth == 24
        && channel(f.red_max, f.red_shift)
        && channel(f.green_max, f.green_shift)
        && channel(f.blue_max, f.blue_shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(bpp: u8, depth: u8, big_endian: bool, max: u16, shifts: [u8; 3]) -> PixelFormat {
        PixelFormat::true_colour(bpp, depth, big_endian, [max; 3], shifts)
    }

    #[test]
    fn leading_runs() {
        let row: Vec<u8> = [5u32, 5, 5, 5, 5, 5 | 0xff00_0000, 5, 7, 5].iter().flat_map(|p| p.to_le_bytes()).collect();
        assert_eq!(leading_run(&row, 5), 7, "the padding byte does not count");
        assert_eq!(leading_run(&row, 7), 0);
        assert_eq!(leading_run(&row[..4 * 6], 5), 6);
        assert_eq!(leading_run(&[], 5), 0);
    }

    #[test]
    fn whole_rows_of_one_colour() {
        // Every length up to three steps, with one pixel off at each place (its padding byte
        // set or its colour changed) and none: the answer is leading_run's.
        for len in 0..=48 {
            for off in (0..len).map(Some).chain([None]) {
                for odd in [0xff00_0005u32, 6] {
                    let row: Vec<u8> =
                        (0..len).flat_map(|i| if Some(i) == off { odd } else { 5 }.to_le_bytes()).collect();
                    let expected = leading_run(&row, 5) == len;
                    assert_eq!(all_pixels_are(&row, 5), expected, "{len} pixels, {odd:#x} at {off:?}");
                    assert_eq!(expected, off.is_none() || odd == 0xff00_0005);
                }
            }
        }
    }

    #[test]
    fn which_clients_get_three_byte_pixels() {
        let kind = |f: PixelFormat| TPixel::for_converter(&PixelConverter::new(f));
        assert_eq!(kind(PixelFormat::NATIVE), TPixel::Rgb);
        assert_eq!(kind(format(32, 24, false, 255, [0, 8, 16])), TPixel::Rgb);
        assert_eq!(kind(format(32, 24, true, 255, [24, 16, 8])), TPixel::Rgb);
        // Depth 32 (UltraVNC), unaligned shifts, 16 and 8 bpp: the client's PIXEL.
        assert_eq!(kind(format(32, 32, false, 255, [16, 8, 0])), TPixel::Client);
        assert_eq!(kind(format(32, 24, false, 255, [17, 9, 1])), TPixel::Client);
        assert_eq!(kind(format(16, 16, false, 31, [11, 5, 0])), TPixel::Client);
        assert_eq!(kind(PixelFormat::BGR233), TPixel::Client);
    }

    #[test]
    fn pixel_bytes() {
        let write = |f: PixelFormat| {
            let c = PixelConverter::new(f);
            let mut out = Vec::new();
            TPixel::for_converter(&c).write(&c, 0x123456, &mut out);
            out
        };
        // 888: always R, G, B, whatever the shifts and endianness.
        assert_eq!(write(PixelFormat::NATIVE), [0x12, 0x34, 0x56]);
        assert_eq!(write(format(32, 24, true, 255, [0, 8, 16])), [0x12, 0x34, 0x56]);
        // rgb565 big endian: 0x11aa; depth 32: 4 bytes little endian.
        assert_eq!(write(format(16, 16, true, 31, [11, 5, 0]).with_green(63)), [0x11, 0xaa]);
        assert_eq!(write(format(32, 32, false, 255, [16, 8, 0])), [0x56, 0x34, 0x12, 0]);
        assert_eq!(write(PixelFormat::BGR233), [0x48]);
    }

    impl PixelFormat {
        fn with_green(mut self, max: u16) -> Self {
            self.green_max = max;
            self
        }
    }

    #[test]
    fn rect_rows() {
        let mut frame = Frame::new(3, 2);
        frame.fill_rect(&Rect::new(1, 0, 2, 2), 0xa1b2c3);
        let c = PixelConverter::new(PixelFormat::NATIVE);
        let mut out = vec![9];
        TPixel::Rgb.write_rect(&c, &frame, &Rect::new(0, 0, 2, 2), &mut out);
        assert_eq!(out, [9, 0, 0, 0, 0xa1, 0xb2, 0xc3, 0, 0, 0, 0xa1, 0xb2, 0xc3]);
    }
}
