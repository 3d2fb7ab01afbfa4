//! Where everything is on the demo target's screen, and in which colours (`0x00RRGGBB`), so that
//! tests can find it.

use rfb::Rect;

pub const WIDTH: u16 = 1280;
pub const HEIGHT: u16 = 720;
/// Text cells: font8x8 glyphs scaled 2×.
pub const CELL: u16 = crate::canvas::CELL;

pub const TITLE_BAR: Rect = Rect::new(0, 0, WIDTH, 2 * CELL);
pub const TITLE_X: u16 = CELL;
pub const TITLE_Y: u16 = CELL / 2;
pub const TITLE_BACKGROUND: u32 = 0x002E_3440;
pub const TITLE_TEXT: u32 = 0x00EC_EFF4;
pub const TITLE: &str = "kvnc demo target";

/// Lock LED indicators in the title bar; the label sits half a cell in from the box's left edge.
pub const NUM_LOCK_RECT: Rect = Rect::new(720, 4, 4 * CELL, 24);
pub const CAPS_LOCK_RECT: Rect = Rect::new(792, 4, 5 * CELL, 24);
pub const SCROLL_LOCK_RECT: Rect = Rect::new(880, 4, 7 * CELL, 24);
pub const LED_ON_BACKGROUND: u32 = 0x003F_B950;
pub const LED_ON_TEXT: u32 = 0x0000_0000;
pub const LED_OFF_BACKGROUND: u32 = 0x0043_4C5E;
pub const LED_OFF_TEXT: u32 = 0x007B_8394;

/// The UTC clock "HH:MM:SS"; it changes every second, so tests comparing screens mask it.
pub const CLOCK_RECT: Rect = Rect::new(WIDTH - CELL - 8 * CELL, CELL / 2, 8 * CELL, CELL);

/// The console's background area; its text grid starts at (CONSOLE_X, CONSOLE_Y).
pub const CONSOLE_AREA: Rect = Rect::new(0, TITLE_BAR.height, WIDTH, HEIGHT - TITLE_BAR.height - STATUS_BAR.height);
pub const CONSOLE_X: u16 = CELL;
pub const CONSOLE_Y: u16 = CONSOLE_AREA.y + CELL / 2;
pub const COLUMNS: usize = 78;
pub const ROWS: usize = 40;
pub const CONSOLE_BACKGROUND: u32 = 0x0010_2060;
pub const CONSOLE_TEXT: u32 = 0x00D0_D0D0;
/// An underline under the next cell; far from the text colour so it never reads as a glyph.
pub const CURSOR: u32 = 0x0040_E040;

pub const STATUS_BAR: Rect = Rect::new(0, HEIGHT - 2 * CELL, WIDTH, 2 * CELL);
pub const STATUS_X: u16 = CELL;
pub const STATUS_Y: u16 = STATUS_BAR.y + CELL / 2;
pub const STATUS_COLUMNS: usize = 78;
pub const STATUS_BACKGROUND: u32 = 0x0020_2020;
pub const STATUS_TEXT: u32 = 0x00A0_E0A0;

pub const POINTER_OUTLINE: u32 = 0x0000_0000;
pub const POINTER_FILL: u32 = 0x00FF_FFFF;

// The grids must fit on the screen.
const _: () = assert!(CONSOLE_X as usize + COLUMNS * CELL as usize <= WIDTH as usize);
const _: () = assert!(CONSOLE_Y as usize + ROWS * CELL as usize <= STATUS_BAR.y as usize);
const _: () = assert!(STATUS_X as usize + STATUS_COLUMNS * CELL as usize <= WIDTH as usize);
