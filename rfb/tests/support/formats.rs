//! Pixel formats that round-trip tests run every encoder through: what real clients ask for,
//! plus layouts that exercise every CPIXEL / byte-order case.

use rfb::PixelFormat;

const FULL: [u16; 3] = [255, 255, 255];

pub fn all() -> Vec<(&'static str, PixelFormat)> {
    vec![
        // TigerVNC's native format, and the same values big-endian.
        ("rgb888-le", PixelFormat::true_colour(32, 24, false, FULL, [16, 8, 0])),
        ("rgb888-be", PixelFormat::true_colour(32, 24, true, FULL, [16, 8, 0])),
        // noVNC's R0 G8 B16.
        ("bgr888-le", PixelFormat::true_colour(32, 24, false, FULL, [0, 8, 16])),
        ("bgr888-be", PixelFormat::true_colour(32, 24, true, FULL, [0, 8, 16])),
        // Colour in the most significant 3 bytes (the other two CPIXEL placements).
        ("rgbx-le", PixelFormat::true_colour(32, 24, false, FULL, [24, 16, 8])),
        ("rgbx-be", PixelFormat::true_colour(32, 24, true, FULL, [24, 16, 8])),
        // UltraVNC-style depth 32: 4-byte CPIXELs.
        ("depth32-le", PixelFormat::true_colour(32, 32, false, FULL, [16, 8, 0])),
        ("depth32-be", PixelFormat::true_colour(32, 32, true, FULL, [16, 8, 0])),
        ("rgb565-le", PixelFormat::true_colour(16, 16, false, [31, 63, 31], [11, 5, 0])),
        ("rgb565-be", PixelFormat::true_colour(16, 16, true, [31, 63, 31], [11, 5, 0])),
        ("bgr233", PixelFormat::BGR233),
        // TigerVNC viewer's low-colour level 2.
        ("tiger-r7g7b3", PixelFormat::true_colour(8, 8, false, [7, 7, 3], [5, 2, 0])),
        // A colour-map client: served BGR233 pixels.
        ("colour-map-8", PixelFormat { true_colour: false, ..PixelFormat::BGR233 }),
    ]
}
