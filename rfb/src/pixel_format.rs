//! RFB pixel formats and conversion from the native frame format to what a client asked for.

use crate::frame::{Frame, NATIVE_BYTES_PER_PIXEL, Rect};

/// An RFB `PIXEL_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub depth: u8,
    pub big_endian: bool,
    pub true_colour: bool,
    pub red_max: u16,
    pub green_max: u16,
    pub blue_max: u16,
    pub red_shift: u8,
    pub green_shift: u8,
    pub blue_shift: u8,
}

/// Why a client's pixel format was refused (TigerVNC's `PixelFormat::isSane` rules).
#[derive(Debug, thiserror::Error)]
pub enum InvalidPixelFormat {
    #[error("bits per pixel must be 8, 16 or 32, got {0}")]
    BitsPerPixel(u8),
    #[error("depth {depth} exceeds {bits_per_pixel} bits per pixel")]
    DepthExceedsBitsPerPixel { depth: u8, bits_per_pixel: u8 },
    #[error("colour-map formats must be 8 bpp with depth 8, got {bits_per_pixel} bpp depth {depth}")]
    ColourMap { bits_per_pixel: u8, depth: u8 },
    #[error("{channel} max {max} is not 2^n-1 with n in 1..=8")]
    ChannelMax { channel: &'static str, max: u16 },
    #[error("channels need {bits} bits but depth is {depth}")]
    BitsExceedDepth { bits: u32, depth: u8 },
    #[error("{channel} channel ({bits} bits at shift {shift}) does not fit in {bits_per_pixel} bits per pixel")]
    ShiftOverflow { channel: &'static str, bits: u32, shift: u8, bits_per_pixel: u8 },
    #[error("{first} and {second} channels overlap")]
    Overlap { first: &'static str, second: &'static str },
}

impl PixelFormat {
    /// What frames hold: 32 bpp little-endian `0x00RRGGBB` (TigerVNC's viewer buffer format).
    pub const NATIVE: PixelFormat = PixelFormat::true_colour(32, 24, false, [255, 255, 255], [16, 8, 0]);

    /// Served instead of a colour map, as TigerVNC does; see [`PixelFormat::bgr233_colour_map`].
    pub const BGR233: PixelFormat = PixelFormat::true_colour(8, 8, false, [7, 7, 3], [0, 3, 6]);

    /// A true-colour format from its fields: red, green, blue maxima and shifts.
    pub const fn true_colour(
        bits_per_pixel: u8,
        depth: u8,
        big_endian: bool,
        max: [u16; 3],
        shift: [u8; 3],
    ) -> PixelFormat {
        PixelFormat {
            bits_per_pixel,
            depth,
            big_endian,
            true_colour: true,
            red_max: max[0],
            green_max: max[1],
            blue_max: max[2],
            red_shift: shift[0],
            green_shift: shift[1],
            blue_shift: shift[2],
        }
    }

    pub const WIRE_LEN: usize = 16;

    /// Parses the wire layout without validating it (see [`PixelFormat::validate`]).
    pub fn from_bytes(bytes: &[u8; 16]) -> PixelFormat {
        PixelFormat {
            bits_per_pixel: bytes[0],
            depth: bytes[1],
            big_endian: bytes[2] != 0,
            true_colour: bytes[3] != 0,
            red_max: u16::from_be_bytes([bytes[4], bytes[5]]),
            green_max: u16::from_be_bytes([bytes[6], bytes[7]]),
            blue_max: u16::from_be_bytes([bytes[8], bytes[9]]),
            red_shift: bytes[10],
            green_shift: bytes[11],
            blue_shift: bytes[12],
        }
    }

    pub fn to_bytes(&self) -> [u8; 16] {
        let [rh, rl] = self.red_max.to_be_bytes();
        let [gh, gl] = self.green_max.to_be_bytes();
        let [bh, bl] = self.blue_max.to_be_bytes();
        [
            self.bits_per_pixel,
            self.depth,
            u8::from(self.big_endian),
            u8::from(self.true_colour),
            rh,
            rl,
            gh,
            gl,
            bh,
            bl,
            self.red_shift,
            self.green_shift,
            self.blue_shift,
            0,
            0,
            0,
        ]
    }

    /// Accepts what we can convert to. Colour-map formats only need 8 bpp depth 8: their
    /// channel fields are meaningless and we serve [`PixelFormat::BGR233`] instead.
    pub fn validate(&self) -> Result<(), InvalidPixelFormat> {
        let bpp = self.bits_per_pixel;
        if !matches!(bpp, 8 | 16 | 32) {
            return Err(InvalidPixelFormat::BitsPerPixel(bpp));
        }
        if self.depth > bpp {
            return Err(InvalidPixelFormat::DepthExceedsBitsPerPixel { depth: self.depth, bits_per_pixel: bpp });
        }
        if !self.true_colour {
            if bpp != 8 || self.depth != 8 {
                return Err(InvalidPixelFormat::ColourMap { bits_per_pixel: bpp, depth: self.depth });
            }
            return Ok(());
        }
        let channels = self.channels();
        for &(channel, max, _) in &channels {
            if max == 0 || max > 255 || max & (max + 1) != 0 {
                return Err(InvalidPixelFormat::ChannelMax { channel, max });
            }
        }
        let bits: u32 = channels.iter().map(|&(_, max, _)| max.count_ones()).sum();
        if bits > u32::from(self.depth) {
            return Err(InvalidPixelFormat::BitsExceedDepth { bits, depth: self.depth });
        }
        for &(channel, max, shift) in &channels {
            let bits = max.count_ones();
            if bits + u32::from(shift) > u32::from(bpp) {
                return Err(InvalidPixelFormat::ShiftOverflow { channel, bits, shift, bits_per_pixel: bpp });
            }
        }
        // Shifts are now < 32, so the masks below cannot overflow.
        let mask = |max: u16, shift: u8| u32::from(max) << shift;
        for (i, &(first, max_a, shift_a)) in channels.iter().enumerate() {
            for &(second, max_b, shift_b) in &channels[i + 1..] {
                if mask(max_a, shift_a) & mask(max_b, shift_b) != 0 {
                    return Err(InvalidPixelFormat::Overlap { first, second });
                }
            }
        }
        Ok(())
    }

    pub fn bytes_per_pixel(&self) -> usize {
        usize::from(self.bits_per_pixel).div_ceil(8)
    }

    /// The 256 entries (r,g,b as u16 0..=65535) of the fake colour map that makes an 8-bit
    /// colour-map client show BGR233 pixels right: entry i is the colour whose BGR233 pixel
    /// value is i.
    pub fn bgr233_colour_map() -> Vec<[u16; 3]> {
        let f = Self::BGR233;
        // Up-convert like TigerVNC: to 8 bits (v*255/max), then widen by byte repetition.
        let up = |pixel: u16, max: u16, shift: u8| ((pixel >> shift) & max) * 255 / max * 257;
        (0..256u16)
            .map(|i| {
                [up(i, f.red_max, f.red_shift), up(i, f.green_max, f.green_shift), up(i, f.blue_max, f.blue_shift)]
            })
            .collect()
    }

    fn channels(&self) -> [(&'static str, u16, u8); 3] {
        [
            ("red", self.red_max, self.red_shift),
            ("green", self.green_max, self.green_shift),
            ("blue", self.blue_max, self.blue_shift),
        ]
    }
}

/// How a row is converted; chosen once per format so the pixel loops carry no branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    /// The client format lays out bytes exactly like the native one (the padding byte passes
    /// through; clients ignore it).
    Copy,
    /// Native with bytes 0 and 2 swapped (noVNC's R0 G8 B16).
    SwapRedBlue,
    Table8,
    Table16 {
        big_endian: bool,
    },
    Table32 {
        big_endian: bool,
    },
    /// Any other width; only reachable with formats `validate` rejects.
    TableOther {
        bytes: usize,
        big_endian: bool,
    },
}

/// How [`PixelConverter::pixel_values`] makes client pixel values (which, unlike rows, do not
/// depend on byte order); chosen once per format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    /// Value = native `0x00RRGGBB` (32 bpp, 8-bit channels at 16, 8, 0: TigerVNC's format).
    Native,
    /// Value = `0x00BBGGRR` (8-bit channels at 0, 8, 16: noVNC's).
    SwapRedBlue,
    Tables,
}

/// Per-channel lookup tables holding each 8-bit channel value already scaled and shifted.
struct Tables {
    red: [u32; 256],
    green: [u32; 256],
    blue: [u32; 256],
}

/// Converts native pixels to a client's (validated, true-colour) format.
///
/// A colour-map format converts as [`PixelFormat::BGR233`], the layout the fake colour map
/// describes.
pub struct PixelConverter {
    format: PixelFormat,
    kind: RowKind,
    values: ValueKind,
    tables: Box<Tables>,
}

impl std::fmt::Debug for PixelConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PixelConverter").field("format", &self.format).field("kind", &self.kind).finish()
    }
}

impl PixelConverter {
    pub fn new(client: PixelFormat) -> PixelConverter {
        let format = if client.true_colour { client } else { PixelFormat::BGR233 };
        let table = |max: u16, shift: u8| {
            let max = u32::from(max);
            std::array::from_fn(|v| {
                // TigerVNC's rounding; `v * max` fits in u32 even for an unchecked 16-bit max.
                let scaled = (v as u32 * max + 128) / 255;
                scaled.checked_shl(u32::from(shift)).unwrap_or(0)
            })
        };
        let tables = Box::new(Tables {
            red: table(format.red_max, format.red_shift),
            green: table(format.green_max, format.green_shift),
            blue: table(format.blue_max, format.blue_shift),
        });
        PixelConverter { format, kind: Self::row_kind(&format), values: Self::value_kind(&format), tables }
    }

    fn value_kind(f: &PixelFormat) -> ValueKind {
        let full = f.bits_per_pixel == 32 && [f.red_max, f.green_max, f.blue_max] == [255; 3];
        match (full, f.red_shift, f.green_shift, f.blue_shift) {
            (true, 16, 8, 0) => ValueKind::Native,
            (true, 0, 8, 16) => ValueKind::SwapRedBlue,
            _ => ValueKind::Tables,
        }
    }

    fn row_kind(f: &PixelFormat) -> RowKind {
        match (f.bits_per_pixel, f.big_endian) {
            (32, big_endian) => {
                // With full 8-bit channels on byte boundaries a 32-bit format is a byte shuffle
                // of the native one; depth and which byte holds padding do not matter.
                let byte = |max: u16, shift: u8| {
                    (max == 255 && shift.is_multiple_of(8) && shift < 32)
                        .then(|| if big_endian { 3 - shift / 8 } else { shift / 8 })
                };
                match (byte(f.red_max, f.red_shift), byte(f.green_max, f.green_shift), byte(f.blue_max, f.blue_shift)) {
                    (Some(2), Some(1), Some(0)) => RowKind::Copy,
                    (Some(0), Some(1), Some(2)) => RowKind::SwapRedBlue,
                    _ => RowKind::Table32 { big_endian },
                }
            }
            (16, big_endian) => RowKind::Table16 { big_endian },
            (8, _) => RowKind::Table8,
            (_, big_endian) => RowKind::TableOther { bytes: f.bytes_per_pixel().min(4), big_endian },
        }
    }

    /// The format produced: the client's, or [`PixelFormat::BGR233`] for a colour-map client.
    pub fn client_format(&self) -> &PixelFormat {
        &self.format
    }

    /// Whether distinct native colours stay distinct in the client's format (8 bits per
    /// channel), so comparing native pixels is comparing client pixels.
    pub fn keeps_every_colour(&self) -> bool {
        let f = &self.format;
        f.bits_per_pixel >= 24 && [f.red_max, f.green_max, f.blue_max] == [255; 3]
    }

    pub fn bytes_per_pixel(&self) -> usize {
        match self.kind {
            RowKind::Copy | RowKind::SwapRedBlue | RowKind::Table32 { .. } => 4,
            RowKind::Table16 { .. } => 2,
            RowKind::Table8 => 1,
            RowKind::TableOther { bytes, .. } => bytes,
        }
    }

    /// Appends the converted pixels of one row of native bytes (len multiple of 4) to `out`.
    pub fn convert_row(&self, native: &[u8], out: &mut Vec<u8>) {
        debug_assert_eq!(native.len() % NATIVE_BYTES_PER_PIXEL, 0);
        // Whole pixels only, like the chunked paths below.
        let native = &native[..native.len() - native.len() % NATIVE_BYTES_PER_PIXEL];
        match self.kind {
            RowKind::Copy => out.extend_from_slice(native),
            RowKind::SwapRedBlue => {
                let start = out.len();
                out.extend_from_slice(native);
                // Copy then swap in place: measured faster than a separate read/write loop.
                for px in out[start..].chunks_exact_mut(4) {
                    px.swap(0, 2);
                }
            }
            RowKind::Table8 => {
                let dst = grow(out, native.len() / NATIVE_BYTES_PER_PIXEL);
                for (src, dst) in native.chunks_exact(4).zip(dst.iter_mut()) {
                    *dst = self.lookup(src) as u8;
                }
            }
            RowKind::Table16 { big_endian } => {
                let dst = grow(out, native.len() / NATIVE_BYTES_PER_PIXEL * 2);
                let pairs = native.chunks_exact(4).zip(dst.chunks_exact_mut(2));
                if big_endian {
                    pairs.for_each(|(src, dst)| dst.copy_from_slice(&(self.lookup(src) as u16).to_be_bytes()));
                } else {
                    pairs.for_each(|(src, dst)| dst.copy_from_slice(&(self.lookup(src) as u16).to_le_bytes()));
                }
            }
            RowKind::Table32 { big_endian } => {
                let dst = grow(out, native.len() / NATIVE_BYTES_PER_PIXEL * 4);
                let pairs = native.chunks_exact(4).zip(dst.chunks_exact_mut(4));
                if big_endian {
                    pairs.for_each(|(src, dst)| dst.copy_from_slice(&self.lookup(src).to_be_bytes()));
                } else {
                    pairs.for_each(|(src, dst)| dst.copy_from_slice(&self.lookup(src).to_le_bytes()));
                }
            }
            RowKind::TableOther { bytes, big_endian } => {
                if bytes == 0 {
                    return;
                }
                let dst = grow(out, native.len() / NATIVE_BYTES_PER_PIXEL * bytes);
                for (src, dst) in native.chunks_exact(4).zip(dst.chunks_exact_mut(bytes)) {
                    let p = self.lookup(src);
                    if big_endian {
                        dst.copy_from_slice(&p.to_be_bytes()[4 - bytes..]);
                    } else {
                        dst.copy_from_slice(&p.to_le_bytes()[..bytes]);
                    }
                }
            }
        }
    }

    /// Appends the converted pixels of `rect` of `frame`, row-major.
    pub fn convert_rect(&self, frame: &Frame, rect: &Rect, out: &mut Vec<u8>) {
        out.reserve(rect.area() * self.bytes_per_pixel());
        for row in frame.rows(rect) {
            self.convert_row(row, out);
        }
    }

    /// Converts one native pixel value 0x00RRGGBB to the client's pixel value (low
    /// bits_per_pixel bits).
    pub fn pixel_value(&self, rgb: u32) -> u32 {
        let [b, g, r, _] = rgb.to_le_bytes();
        let p = self.tables.red[usize::from(r)] | self.tables.green[usize::from(g)] | self.tables.blue[usize::from(b)];
        match self.format.bits_per_pixel {
            bits @ 0..32 => p & ((1 << bits) - 1),
            _ => p,
        }
    }

    /// Writes the client pixel value of each native pixel of `native` (bytes B, G, R, X) to
    /// `values`, as [`Self::pixel_value`] would, stopping at the shorter of the two. Encoders
    /// that compare pixels (ZRLE, Hextile) do it on these values, since several native colours
    /// can become one client value; the common 32-bit formats take no table lookups.
    pub fn pixel_values(&self, native: &[u8], values: &mut [u32]) {
        let (pixels, _) = native.as_chunks::<NATIVE_BYTES_PER_PIXEL>();
        let pairs = pixels.iter().zip(values.iter_mut());
        match self.values {
            ValueKind::Native => pairs.for_each(|(src, dst)| *dst = u32::from_le_bytes(*src) & 0x00ff_ffff),
            // 0xXXRRGGBB -> 0xBBGGRRXX -> 0x00BBGGRR.
            ValueKind::SwapRedBlue => pairs.for_each(|(src, dst)| *dst = u32::from_le_bytes(*src).swap_bytes() >> 8),
            ValueKind::Tables => pairs.for_each(|(src, dst)| *dst = self.pixel_value(u32::from_le_bytes(*src))),
        }
    }

    /// The client pixel value of one native pixel (bytes B, G, R, X).
    #[inline(always)]
    fn lookup(&self, native: &[u8]) -> u32 {
        self.tables.red[usize::from(native[2])]
            | self.tables.green[usize::from(native[1])]
            | self.tables.blue[usize::from(native[0])]
    }
}

/// Extends `out` by `len` zero bytes and returns them for index writes (no per-pixel push).
fn grow(out: &mut Vec<u8>, len: usize) -> &mut [u8] {
    let start = out.len();
    out.resize(start + len, 0);
    &mut out[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(bpp: u8, depth: u8, big_endian: bool, max: [u16; 3], shift: [u8; 3]) -> PixelFormat {
        PixelFormat::true_colour(bpp, depth, big_endian, max, shift)
    }

    fn rgb565(big_endian: bool) -> PixelFormat {
        tc(16, 16, big_endian, [31, 63, 31], [11, 5, 0])
    }

    /// Red, green, blue, white, grey, and an odd colour.
    const COLOURS: [u32; 6] = [0xff0000, 0x00ff00, 0x0000ff, 0xffffff, 0x808080, 0x123456];

    /// `COLOURS` as a native row: bytes B, G, R, X.
    const NATIVE_ROW: [u8; 24] = [
        0x00, 0x00, 0xff, 0, //
        0x00, 0xff, 0x00, 0, //
        0xff, 0x00, 0x00, 0, //
        0xff, 0xff, 0xff, 0, //
        0x80, 0x80, 0x80, 0, //
        0x56, 0x34, 0x12, 0,
    ];

    fn convert(format: PixelFormat) -> Vec<u8> {
        let mut out = vec![0xee]; // existing content must be kept
        PixelConverter::new(format).convert_row(&NATIVE_ROW, &mut out);
        assert_eq!(out.remove(0), 0xee);
        out
    }

    /// Converts with the table routine even where a fast path exists.
    fn convert_with_tables(format: PixelFormat, native: &[u8]) -> Vec<u8> {
        let mut c = PixelConverter::new(format);
        c.kind = RowKind::Table32 { big_endian: format.big_endian };
        let mut out = Vec::new();
        c.convert_row(native, &mut out);
        out
    }

    #[test]
    fn wire_round_trip() {
        let bytes = [16, 15, 1, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0];
        let f = PixelFormat::from_bytes(&bytes);
        assert_eq!(f, rgb565(true).with_depth(15));
        assert_eq!(f.to_bytes(), bytes);
        assert_eq!(PixelFormat::NATIVE.to_bytes(), [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
        assert_eq!(PixelFormat::from_bytes(&PixelFormat::BGR233.to_bytes()), PixelFormat::BGR233);
        // Any non-zero flag byte means true; padding is ignored.
        let odd = PixelFormat::from_bytes(&[8, 8, 7, 0x80, 0, 7, 0, 7, 0, 3, 0, 3, 6, 9, 9, 9]);
        assert!(odd.big_endian && odd.true_colour);
        assert_eq!(odd.to_bytes()[13..], [0, 0, 0]);
    }

    impl PixelFormat {
        fn with_depth(mut self, depth: u8) -> Self {
            self.depth = depth;
            self
        }
    }

    #[test]
    fn validate_accepts_formats_clients_send() {
        let ok = [
            PixelFormat::NATIVE,
            PixelFormat::BGR233,
            rgb565(false),
            rgb565(true),
            tc(32, 24, false, [255, 255, 255], [0, 8, 16]), // bgr888 / noVNC
            tc(8, 8, false, [7, 7, 3], [5, 2, 0]),          // TigerVNC low colour level 2
            tc(8, 6, false, [3, 3, 3], [4, 2, 0]),          // level 1
            tc(8, 3, false, [1, 1, 1], [2, 1, 0]),          // level 0
            tc(8, 8, false, [3, 3, 3], [0, 2, 4]),          // noVNC rgb222
            tc(32, 32, false, [255, 255, 255], [16, 8, 0]), // UltraVNC depth 32
            tc(32, 24, true, [255, 255, 255], [24, 16, 8]),
            PixelFormat { true_colour: false, ..PixelFormat::BGR233 }, // colour map
            PixelFormat { true_colour: false, red_max: 0, ..PixelFormat::BGR233 },
        ];
        for f in ok {
            assert!(f.validate().is_ok(), "{f:?}: {:?}", f.validate());
        }
    }

    #[test]
    fn validate_rejects_insane_formats() {
        use InvalidPixelFormat as E;
        let check = |f: PixelFormat, want: fn(&E) -> bool| {
            let err = f.validate().expect_err("should be rejected");
            assert!(want(&err), "{f:?}: unexpected {err:?}");
            assert!(!err.to_string().is_empty());
        };
        check(tc(24, 24, false, [255, 255, 255], [16, 8, 0]), |e| matches!(e, E::BitsPerPixel(24)));
        check(tc(0, 0, false, [1, 1, 1], [0, 1, 2]), |e| matches!(e, E::BitsPerPixel(0)));
        check(rgb565(false).with_depth(17), |e| matches!(e, E::DepthExceedsBitsPerPixel { depth: 17, .. }));
        check(tc(16, 16, false, [30, 63, 31], [11, 5, 0]), |e| matches!(e, E::ChannelMax { channel: "red", .. }));
        check(tc(16, 16, false, [31, 0, 31], [11, 5, 0]), |e| matches!(e, E::ChannelMax { channel: "green", .. }));
        check(tc(32, 32, false, [255, 255, 511], [0, 8, 16]), |e| matches!(e, E::ChannelMax { max: 511, .. }));
        check(rgb565(false).with_depth(15), |e| matches!(e, E::BitsExceedDepth { bits: 16, depth: 15 }));
        check(tc(16, 16, false, [31, 63, 31], [10, 5, 0]), |e| {
            matches!(e, E::Overlap { first: "red", second: "green" })
        });
        check(tc(32, 24, false, [255, 255, 255], [0, 8, 0]), |e| {
            matches!(e, E::Overlap { first: "red", second: "blue" })
        });
        check(tc(16, 16, false, [31, 63, 31], [12, 5, 0]), |e| matches!(e, E::ShiftOverflow { channel: "red", .. }));
        check(tc(8, 8, false, [7, 7, 3], [0, 3, 200]), |e| matches!(e, E::ShiftOverflow { channel: "blue", .. }));
        let map16 = PixelFormat { true_colour: false, ..rgb565(false) };
        check(map16, |e| matches!(e, E::ColourMap { bits_per_pixel: 16, .. }));
        let map_depth6 = PixelFormat { true_colour: false, ..PixelFormat::BGR233.with_depth(6) };
        check(map_depth6, |e| matches!(e, E::ColourMap { depth: 6, .. }));
    }

    #[test]
    fn native_is_copied() {
        let c = PixelConverter::new(PixelFormat::NATIVE);
        assert_eq!(c.kind, RowKind::Copy);
        assert_eq!(convert(PixelFormat::NATIVE), NATIVE_ROW);
        // Depth is irrelevant to the bytes, and so is which end the padding byte is on.
        assert_eq!(PixelConverter::new(PixelFormat::NATIVE.with_depth(32)).kind, RowKind::Copy);
        assert_eq!(PixelConverter::new(tc(32, 24, true, [255; 3], [8, 16, 24])).kind, RowKind::Copy);
        assert_eq!(convert(tc(32, 24, true, [255; 3], [8, 16, 24])), NATIVE_ROW);
    }

    #[test]
    fn rgb888_big_endian() {
        #[rustfmt::skip]
        let want = [
            0, 0xff, 0, 0,
            0, 0, 0xff, 0,
            0, 0, 0, 0xff,
            0, 0xff, 0xff, 0xff,
            0, 0x80, 0x80, 0x80,
            0, 0x12, 0x34, 0x56,
        ];
        assert_eq!(convert(tc(32, 24, true, [255; 3], [16, 8, 0])), want);
    }

    #[test]
    fn bgr888_little_endian_is_swapped() {
        let f = tc(32, 24, false, [255; 3], [0, 8, 16]);
        assert_eq!(PixelConverter::new(f).kind, RowKind::SwapRedBlue);
        #[rustfmt::skip]
        let want = [
            0xff, 0, 0, 0,
            0, 0xff, 0, 0,
            0, 0, 0xff, 0,
            0xff, 0xff, 0xff, 0,
            0x80, 0x80, 0x80, 0,
            0x12, 0x34, 0x56, 0,
        ];
        assert_eq!(convert(f), want);
    }

    #[test]
    fn bgr888_big_endian() {
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 0xff,
            0, 0, 0xff, 0,
            0, 0xff, 0, 0,
            0, 0xff, 0xff, 0xff,
            0, 0x80, 0x80, 0x80,
            0, 0x56, 0x34, 0x12,
        ];
        assert_eq!(convert(tc(32, 24, true, [255; 3], [0, 8, 16])), want);
    }

    #[test]
    fn rgbx_little_endian_uses_tables() {
        // Value R<<24 | G<<16 | B<<8: bytes X, B, G, R.
        let f = tc(32, 24, false, [255; 3], [24, 16, 8]);
        assert_eq!(PixelConverter::new(f).kind, RowKind::Table32 { big_endian: false });
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 0xff,
            0, 0, 0xff, 0,
            0, 0xff, 0, 0,
            0, 0xff, 0xff, 0xff,
            0, 0x80, 0x80, 0x80,
            0, 0x56, 0x34, 0x12,
        ];
        assert_eq!(convert(f), want);
    }

    #[test]
    fn fast_paths_match_tables() {
        // Non-zero padding bytes too: the fast paths may pass them through, tables drop them.
        let native: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for f in [PixelFormat::NATIVE, tc(32, 24, false, [255; 3], [0, 8, 16])] {
            let mut fast = Vec::new();
            PixelConverter::new(f).convert_row(&native, &mut fast);
            let slow = convert_with_tables(f, &native);
            let colour = |v: &[u8]| v.chunks_exact(4).map(|p| [p[0], p[1], p[2]]).collect::<Vec<_>>();
            assert_eq!(colour(&fast), colour(&slow), "{f:?}");
        }
    }

    #[test]
    fn rgb565_both_endians() {
        // red 31<<11 = f800, green 63<<5 = 07e0, blue 001f, white ffff,
        // grey 0x80: r (128*31+128)/255 = 16, g (128*63+128)/255 = 32, b 16 -> 8410,
        // 0x123456: r (18*31+128)/255 = 2, g (52*63+128)/255 = 13, b (86*31+128)/255 = 10 -> 11aa.
        let le = [0x00, 0xf8, 0xe0, 0x07, 0x1f, 0x00, 0xff, 0xff, 0x10, 0x84, 0xaa, 0x11];
        let be = [0xf8, 0x00, 0x07, 0xe0, 0x00, 0x1f, 0xff, 0xff, 0x84, 0x10, 0x11, 0xaa];
        assert_eq!(convert(rgb565(false)), le);
        assert_eq!(convert(rgb565(true)), be);
        assert_eq!(PixelConverter::new(rgb565(true)).bytes_per_pixel(), 2);
    }

    #[test]
    fn bgr233() {
        // red 7, green 7<<3 = 38, blue 3<<6 = c0, white ff,
        // grey 0x80: r,g (128*7+128)/255 = 4, b (128*3+128)/255 = 2 -> 4 | 4<<3 | 2<<6 = a4,
        // 0x123456: r (18*7+128)/255 = 0, g (52*7+128)/255 = 1, b (86*3+128)/255 = 1 -> 48.
        let want = [0x07, 0x38, 0xc0, 0xff, 0xa4, 0x48];
        assert_eq!(convert(PixelFormat::BGR233), want);
        // A colour-map client is served BGR233.
        let map = PixelFormat { true_colour: false, red_max: 0, ..PixelFormat::BGR233 };
        let c = PixelConverter::new(map);
        assert_eq!(*c.client_format(), PixelFormat::BGR233);
        assert_eq!(convert(map), want);
        assert_eq!(c.bytes_per_pixel(), 1);
    }

    #[test]
    fn tiger_low_colour() {
        // 8 bpp R7 G7 B3 at shifts 5/2/0: red e0, green 1c, blue 03, white ff,
        // grey 4<<5 | 4<<2 | 2 = 92, 0x123456 -> 0<<5 | 1<<2 | 1 = 05.
        assert_eq!(convert(tc(8, 8, false, [7, 7, 3], [5, 2, 0])), [0xe0, 0x1c, 0x03, 0xff, 0x92, 0x05]);
    }

    #[test]
    fn pixel_values() {
        let c = PixelConverter::new(rgb565(true));
        assert_eq!(COLOURS.map(|p| c.pixel_value(p)), [0xf800, 0x07e0, 0x001f, 0xffff, 0x8410, 0x11aa]);
        let c = PixelConverter::new(PixelFormat::NATIVE);
        assert_eq!(COLOURS.map(|p| c.pixel_value(p)), COLOURS);
        assert_eq!(c.pixel_value(0xff12_3456), 0x12_3456);
        let c = PixelConverter::new(tc(32, 24, false, [255; 3], [0, 8, 16]));
        assert_eq!(c.pixel_value(0x123456), 0x563412);
        let c = PixelConverter::new(PixelFormat::BGR233);
        assert_eq!(c.pixel_value(0x808080), 0xa4);
    }

    #[test]
    fn which_formats_keep_every_colour() {
        assert!(PixelConverter::new(PixelFormat::NATIVE).keeps_every_colour());
        assert!(PixelConverter::new(tc(32, 24, true, [255; 3], [0, 8, 16])).keeps_every_colour());
        assert!(!PixelConverter::new(rgb565(false)).keeps_every_colour());
        assert!(!PixelConverter::new(PixelFormat::BGR233).keeps_every_colour());
        assert!(!PixelConverter::new(tc(32, 30, false, [1023; 3], [20, 10, 0])).keeps_every_colour());
    }

    #[test]
    fn pixel_values_of_a_row_match_pixel_value() {
        // Non-zero padding bytes: no value may carry them.
        let native: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for f in [
            PixelFormat::NATIVE,
            tc(32, 24, false, [255; 3], [0, 8, 16]),
            tc(32, 24, true, [255; 3], [16, 8, 0]),
            tc(32, 24, true, [255; 3], [8, 16, 24]),
            tc(32, 24, true, [255; 3], [24, 16, 8]),
            tc(32, 24, true, [255; 3], [0, 8, 16]),
            rgb565(false),
            PixelFormat::BGR233,
        ] {
            let c = PixelConverter::new(f);
            let mut values = vec![0; 1024];
            c.pixel_values(&native, &mut values);
            for (src, value) in native.chunks_exact(4).zip(&values) {
                let rgb = u32::from_le_bytes([src[0], src[1], src[2], src[3]]);
                assert_eq!(*value, c.pixel_value(rgb), "{f:?} {rgb:#x}");
            }
        }
    }

    #[test]
    fn convert_sub_rect() {
        let mut frame = Frame::new(5, 4);
        for y in 0..4u16 {
            for x in 0..5u16 {
                let v = u32::from(y * 16 + x);
                frame.fill_rect(&Rect::new(x, y, 1, 1), v << 16 | (v + 1) << 8 | (v + 2));
            }
        }
        let rect = Rect::new(1, 2, 3, 2);
        let mut out = Vec::new();
        PixelConverter::new(tc(32, 24, true, [255; 3], [16, 8, 0])).convert_rect(&frame, &rect, &mut out);
        #[rustfmt::skip]
        let want = [
            0, 0x21, 0x22, 0x23, 0, 0x22, 0x23, 0x24, 0, 0x23, 0x24, 0x25,
            0, 0x31, 0x32, 0x33, 0, 0x32, 0x33, 0x34, 0, 0x33, 0x34, 0x35,
        ];
        assert_eq!(out, want);

        let mut out = Vec::new();
        PixelConverter::new(PixelFormat::NATIVE).convert_rect(&frame, &rect, &mut out);
        assert_eq!(out[..4], [0x23, 0x22, 0x21, 0]);
        assert_eq!(out.len(), 24);

        let mut out = vec![1, 2];
        PixelConverter::new(PixelFormat::BGR233).convert_rect(&frame, &Rect::new(0, 0, 0, 0), &mut out);
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn fake_colour_map() {
        let map = PixelFormat::bgr233_colour_map();
        assert_eq!(map.len(), 256);
        assert_eq!(map[0], [0, 0, 0]);
        assert_eq!(map[0xff], [65535, 65535, 65535]);
        assert_eq!(map[7], [65535, 0, 0]);
        assert_eq!(map[0x38], [0, 65535, 0]);
        assert_eq!(map[0xc0], [0, 0, 65535]);
        // Entry 0x49 = r1 g1 b1: 255/7 = 36 -> 36*257, 255/3 = 85 -> 85*257.
        assert_eq!(map[0x49], [9252, 9252, 21845]);
        // Each entry's colour converts back to its own index.
        let c = PixelConverter::new(PixelFormat::BGR233);
        for (i, [r, g, b]) in map.iter().enumerate() {
            let rgb = u32::from(r >> 8) << 16 | u32::from(g >> 8) << 8 | u32::from(b >> 8);
            assert_eq!(c.pixel_value(rgb), i as u32, "entry {i}");
        }
    }

    #[test]
    fn no_panic_on_unvalidated_formats() {
        for f in [
            tc(24, 24, false, [255; 3], [16, 8, 0]),
            tc(24, 24, true, [255; 3], [16, 8, 0]),
            tc(0, 0, false, [0; 3], [0; 3]),
            tc(64, 64, true, [65535; 3], [255, 40, 0]),
        ] {
            let c = PixelConverter::new(f);
            let mut out = Vec::new();
            c.convert_row(&NATIVE_ROW, &mut out);
            assert_eq!(out.len(), 6 * c.bytes_per_pixel());
            c.pixel_value(0x123456);
        }
        let mut out = Vec::new();
        PixelConverter::new(tc(24, 24, true, [255; 3], [16, 8, 0])).convert_row(&NATIVE_ROW[20..], &mut out);
        assert_eq!(out, [0x12, 0x34, 0x56]);
    }
}
