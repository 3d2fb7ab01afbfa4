//! Synthetic frames for the round-trip tests: text, photo-like and flat-window screens.

use rfb::{Frame, Rect};

/// A frame whose native pixel at (x, y) is `pixel(x, y)`.
pub fn from_fn(width: u16, height: u16, mut pixel: impl FnMut(u16, u16) -> u32) -> Frame {
    let mut bytes = Vec::with_capacity(usize::from(width) * usize::from(height) * 4);
    for y in 0..height {
        for x in 0..width {
            bytes.extend_from_slice(&pixel(x, y).to_le_bytes());
        }
    }
    Frame::from_pixels(width, height, bytes).unwrap()
}

/// How [`text`] looks.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    /// Every fifth text line in a link colour.
    pub links: bool,
    /// Every third cell blank.
    pub every_third_cell_blank: bool,
    /// About one cell in five blank at random (from a different pseudo-random glyph table).
    pub random_cells_blank: bool,
}

/// Dark glyph-like strokes on white in 8x16 cells.
pub fn text(width: u16, height: u16, style: Text) -> Frame {
    let cells_per_row = usize::from(width / 8 + 1);
    let mut rng = fastrand::Rng::with_seed(0x1234_5678);
    // 8-bit row masks, 16 per cell; a blank cell's first is 0 with `random_cells_blank`.
    let masks: Vec<u8> = if style.random_cells_blank {
        (0..cells_per_row * usize::from(height / 16 + 1) * 16)
            .map(|_| {
                let r = rng.u32(..);
                if r.is_multiple_of(5) { 0 } else { (r >> 8) as u8 & 0x7e }
            })
            .collect()
    } else {
        (0..usize::from(width) * usize::from(height) / 8 + 16).map(|_| rng.u8(..) & 0x7e).collect()
    };
    from_fn(width, height, |x, y| {
        let cell = usize::from(y / 16) * cells_per_row + usize::from(x / 8);
        let mask = masks[(cell * 16 + usize::from(y % 16)) % masks.len()];
        let blank =
            (style.every_third_cell_blank && cell % 3 == 0) || (style.random_cells_blank && masks[cell * 16] == 0);
        let ink = !blank && (3..13).contains(&(y % 16)) && mask & (0x80 >> (x % 8)) != 0;
        match (ink, style.links && (y / 16) % 5 == 0) {
            (false, _) => 0xffffff,
            (true, false) => 0x202020,
            (true, true) => 0x1a0dab,
        }
    })
}

/// Smooth gradients plus noise: almost every pixel differs from its neighbours. The padding byte
/// is garbage, which encoders must not leak into colour.
pub fn photo(width: u16, height: u16) -> Frame {
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9);
    from_fn(width, height, |x, y| {
        let noise = rng.u32(..);
        let r = (u32::from(x) * 255 / u32::from(width.max(1)) + (noise & 15)) & 0xff;
        let g = (u32::from(y) * 255 / u32::from(height.max(1)) + (noise >> 4 & 15)) & 0xff;
        let b = ((u32::from(x) ^ u32::from(y)) + (noise >> 8 & 31)) & 0xff;
        0xab00_0000 | r << 16 | g << 8 | b
    })
}

/// Flat windows on a desktop colour (solid and two-colour areas), the first with a title bar
/// if `title_bar`.
pub fn blocks(width: u16, height: u16, title_bar: bool) -> Frame {
    let mut frame = Frame::new(width, height);
    frame.fill_rect(&frame.bounds(), 0x3a6ea5);
    frame.fill_rect(&Rect::new(10, 10, 150, 90), 0xc0c0c0);
    if title_bar {
        frame.fill_rect(&Rect::new(12, 12, 146, 14), 0x000080);
    }
    frame.fill_rect(&Rect::new(100, 70, 170, 120), 0xffffff);
    frame
}
