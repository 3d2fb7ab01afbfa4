//! Pixel formats that round-trip tests run every encoder through: what real clients ask for,
//! plus layouts that exercise every CPIXEL / byte-order case.
#![allow(dead_code)]

use rfb::PixelFormat;

/// A true-colour format from its fields.
pub fn true_colour(bpp: u8, depth: u8, big_endian: bool, max: [u16; 3], shift: [u8; 3]) -> PixelFormat {
    PixelFormat {
        bits_per_pixel: bpp,
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

const FULL: [u16; 3] = [255, 255, 255];

pub fn all() -> Vec<(&'static str, PixelFormat)> {
    vec![
        // TigerVNC's native format, and the same values big-endian.
        ("rgb888-le", true_colour(32, 24, false, FULL, [16, 8, 0])),
        ("rgb888-be", true_colour(32, 24, true, FULL, [16, 8, 0])),
        // noVNC's R0 G8 B16.
        ("bgr888-le", true_colour(32, 24, false, FULL, [0, 8, 16])),
        ("bgr888-be", true_colour(32, 24, true, FULL, [0, 8, 16])),
        // Colour in the most significant 3 bytes (the other two CPIXEL placements).
        ("rgbx-le", true_colour(32, 24, false, FULL, [24, 16, 8])),
        ("rgbx-be", true_colour(32, 24, true, FULL, [24, 16, 8])),
        // UltraVNC-style depth 32: 4-byte CPIXELs.
        ("depth32-le", true_colour(32, 32, false, FULL, [16, 8, 0])),
        ("depth32-be", true_colour(32, 32, true, FULL, [16, 8, 0])),
        ("rgb565-le", true_colour(16, 16, false, [31, 63, 31], [11, 5, 0])),
        ("rgb565-be", true_colour(16, 16, true, [31, 63, 31], [11, 5, 0])),
        ("bgr233", PixelFormat::BGR233),
        // TigerVNC viewer's low-colour level 2.
        ("tiger-r7g7b3", true_colour(8, 8, false, [7, 7, 3], [5, 2, 0])),
        // A colour-map client: served BGR233 pixels.
        ("colour-map-8", PixelFormat { true_colour: false, ..PixelFormat::BGR233 }),
    ]
}
