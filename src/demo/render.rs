//! Draws the demo target's screen from its state: a pure function, so tests can reproduce it.

use rfb::{Frame, Rect};

use super::layout::*;
use super::state::{DemoState, WheelDirection};
use crate::canvas::{draw_text, fill, put_pixel};
use crate::hid::led;
use crate::hid::pointer::hid_button;

/// The whole screen for `state`, with `clock_text` (normally "HH:MM:SS") in [`CLOCK_RECT`].
pub fn render(state: &DemoState, clock_text: &str) -> Frame {
    let mut frame = Frame::new(WIDTH, HEIGHT);
    draw_title_bar(&mut frame, state.leds(), clock_text);
    draw_console(&mut frame, state);
    fill(&mut frame, STATUS_BAR, STATUS_BACKGROUND);
    draw_text(&mut frame, STATUS_X, STATUS_Y, &status_text(state), STATUS_TEXT);
    if let Some((x, y)) = state.pointer().position {
        draw_pointer(&mut frame, x, y);
    }
    frame
}

/// The status line, e.g. "pointer 12,34  buttons L--  wheel up".
pub fn status_text(state: &DemoState) -> String {
    let pointer = state.pointer();
    let position = match pointer.position {
        Some((x, y)) => format!("{x},{y}"),
        None => "-".to_owned(),
    };
    let button = |bit, name| if pointer.is_pressed(bit) { name } else { '-' };
    let wheel = match pointer.last_wheel {
        Some(WheelDirection::Up) => "up",
        Some(WheelDirection::Down) => "down",
        Some(WheelDirection::Left) => "left",
        Some(WheelDirection::Right) => "right",
        None => "-",
    };
    let (left, middle, right) =
        (button(hid_button::LEFT, 'L'), button(hid_button::MIDDLE, 'M'), button(hid_button::RIGHT, 'R'));
    format!("pointer {position}  buttons {left}{middle}{right}  wheel {wheel}")
}

fn draw_title_bar(frame: &mut Frame, leds: u8, clock_text: &str) {
    fill(frame, TITLE_BAR, TITLE_BACKGROUND);
    draw_text(frame, TITLE_X, TITLE_Y, TITLE, TITLE_TEXT);
    for (rect, bit, label) in [
        (NUM_LOCK_RECT, led::NUM_LOCK, "NUM"),
        (CAPS_LOCK_RECT, led::CAPS_LOCK, "CAPS"),
        (SCROLL_LOCK_RECT, led::SCROLL_LOCK, "SCROLL"),
    ] {
        let (background, text) =
            if leds & bit != 0 { (LED_ON_BACKGROUND, LED_ON_TEXT) } else { (LED_OFF_BACKGROUND, LED_OFF_TEXT) };
        fill(frame, rect, background);
        draw_text(frame, rect.x + CELL / 2, rect.y + (rect.height - CELL) / 2, label, text);
    }
    draw_text(frame, CLOCK_RECT.x, CLOCK_RECT.y, clock_text, TITLE_TEXT);
}

fn draw_console(frame: &mut Frame, state: &DemoState) {
    fill(frame, CONSOLE_AREA, CONSOLE_BACKGROUND);
    let console = state.console();
    for (row, line) in console.lines().enumerate() {
        draw_text(frame, CONSOLE_X, cell_y(row), line, CONSOLE_TEXT);
    }
    let (column, row) = console.cursor();
    let cursor = Rect::new(cell_x(column), cell_y(row).saturating_add(CELL - 2), CELL, 2);
    fill(frame, cursor, CURSOR);
}

fn cell_x(column: usize) -> u16 {
    CONSOLE_X.saturating_add(to_pixels(column))
}

fn cell_y(row: usize) -> u16 {
    CONSOLE_Y.saturating_add(to_pixels(row))
}

fn to_pixels(cells: usize) -> u16 {
    u16::try_from(cells).unwrap_or(u16::MAX).saturating_mul(CELL)
}

/// An arrow with its tip at the pointer position: `X` outline, `o` fill, space transparent.
const ARROW: [&str; 17] = [
    "X",
    "XX",
    "XoX",
    "XooX",
    "XoooX",
    "XooooX",
    "XoooooX",
    "XooooooX",
    "XoooooooX",
    "XooooooooX",
    "XoooooXXXXX",
    "XooXooX",
    "XoX XooX",
    "XX  XooX",
    "X    XooX",
    "     XooX",
    "      XX",
];

fn draw_pointer(frame: &mut Frame, x: u16, y: u16) {
    for (row, line) in ARROW.iter().enumerate() {
        for (column, mark) in line.bytes().enumerate() {
            let rgb = match mark {
                b'X' => POINTER_OUTLINE,
                b'o' => POINTER_FILL,
                _ => continue,
            };
            put_pixel(frame, usize::from(x) + column, usize::from(y) + row, rgb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hid::{HidReport, KeyboardReport, PointerReport};

    fn press_and_release(state: &mut DemoState, modifiers: u8, key: u8) {
        let report = |keys| HidReport::Keyboard(KeyboardReport { modifiers, keys });
        state.apply(&report([key, 0, 0, 0, 0, 0]));
        state.apply(&report([0; 6]));
    }

    /// Whether the cell at (column, row) shows exactly `character` in the console text colour.
    fn cell_shows(frame: &Frame, column: usize, row: usize, character: char) -> bool {
        let glyph = font8x8::legacy::BASIC_LEGACY[character as usize];
        (0..16).all(|dy| {
            (0..16).all(|dx| {
                let ink = glyph[dy / 2] & (1 << (dx / 2)) != 0;
                let pixel = frame.pixel(cell_x(column) + dx as u16, cell_y(row) + dy as u16);
                (pixel == CONSOLE_TEXT) == ink
            })
        })
    }

    #[test]
    fn typed_characters_appear_in_their_cells() {
        let mut state = DemoState::new();
        press_and_release(&mut state, 0x02, 0x0B); // H
        press_and_release(&mut state, 0, 0x0C); // i
        let frame = render(&state, "12:34:56");
        assert!(cell_shows(&frame, 0, 0, 'k'), "the banner");
        assert!(cell_shows(&frame, 0, 2, 'H'));
        assert!(cell_shows(&frame, 1, 2, 'i'));
        assert!(cell_shows(&frame, 2, 2, ' '));
        assert!(!cell_shows(&frame, 1, 2, 'I'));
        // The cursor underlines the next cell.
        assert_eq!(frame.pixel(cell_x(2), cell_y(2) + CELL - 1), CURSOR);
        assert_eq!(frame.pixel(cell_x(2), cell_y(2)), CONSOLE_BACKGROUND);
    }

    #[test]
    fn bars_leds_and_clock() {
        let mut state = DemoState::new();
        press_and_release(&mut state, 0, crate::hid::keymap::usage::CAPS_LOCK);
        let frame = render(&state, "12:34:56");
        assert_eq!(frame.pixel(CAPS_LOCK_RECT.x, CAPS_LOCK_RECT.y), LED_ON_BACKGROUND);
        assert_eq!(frame.pixel(NUM_LOCK_RECT.x, NUM_LOCK_RECT.y), LED_OFF_BACKGROUND);
        assert_eq!(frame.pixel(0, 0), TITLE_BACKGROUND);
        assert_eq!(frame.pixel(0, HEIGHT - 1), STATUS_BACKGROUND);
        let other_time = render(&state, "12:34:57");
        let differing = (0..HEIGHT)
            .flat_map(|y| (0..WIDTH).map(move |x| (x, y)))
            .filter(|&(x, y)| frame.pixel(x, y) != other_time.pixel(x, y));
        let clock = CLOCK_RECT;
        assert!(differing.clone().count() > 0);
        assert!(differing.into_iter().all(|(x, y)| {
            (clock.x..clock.x + clock.width).contains(&x) && (clock.y..clock.y + clock.height).contains(&y)
        }));
    }

    #[test]
    fn pointer_is_drawn_on_top_and_reported_in_the_status_line() {
        let mut state = DemoState::new();
        assert_eq!(status_text(&state), "pointer -  buttons ---  wheel -");
        let report = PointerReport { buttons: hid_button::LEFT | hid_button::MIDDLE, x: 0, y: 0, wheel: 1, hwheel: 0 };
        state.apply(&HidReport::Pointer(report));
        assert_eq!(status_text(&state), "pointer 0,0  buttons LM-  wheel up");
        let frame = render(&state, "00:00:00");
        assert_eq!(frame.pixel(0, 0), POINTER_OUTLINE);
        assert_eq!(frame.pixel(1, 2), POINTER_FILL);
        assert_eq!(frame.pixel(3, 1), TITLE_BACKGROUND);
    }

    #[test]
    fn pointer_at_the_corner_is_clipped() {
        let mut state = DemoState::new();
        let corner = PointerReport { buttons: 0, x: u16::MAX, y: u16::MAX, wheel: 0, hwheel: 0 };
        state.apply(&HidReport::Pointer(corner));
        let frame = render(&state, "");
        assert_eq!(frame.pixel(WIDTH - 1, HEIGHT - 1), POINTER_OUTLINE);
    }
}
