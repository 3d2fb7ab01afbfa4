//! The screen reader that the integration tests trust must itself read exactly what the demo
//! target renders, and nothing else.

use kvnc::demo::layout::*;
use kvnc::demo::{BANNER, DemoState, render};
use kvnc::hid::keymap::{keysym_to_usage, usage};
use kvnc::hid::{HidReport, KeyboardReport, POINTER_MAX, PointerReport, led};
use kvnc_test_support::screen;

use screen::*;

fn press_and_release(state: &mut DemoState, modifiers: u8, key: u8) {
    let report = |keys| HidReport::Keyboard(KeyboardReport { modifiers, keys });
    state.apply(&report([key, 0, 0, 0, 0, 0]));
    state.apply(&report([0; 6]));
}

/// Types `text` the way a viewer's keys would arrive: as HID reports.
fn type_text(state: &mut DemoState, text: &str) {
    for character in text.chars() {
        if character == '\n' {
            press_and_release(state, 0, usage::ENTER);
        } else if let Some(key) = keysym_to_usage(u32::from(character)) {
            press_and_release(state, if key.shift { 0x02 } else { 0 }, key.usage);
        }
    }
}

fn screenshot(state: &DemoState) -> Vec<u8> {
    let frame = render(state, "12:34:56");
    // Native pixels are B, G, R, X in memory.
    frame.pixels().chunks_exact(4).flat_map(|pixel| [pixel[2], pixel[1], pixel[0]]).collect()
}

const SIZE: (usize, usize) = (WIDTH as usize, HEIGHT as usize);

#[test]
fn every_printable_glyph_is_distinct() {
    let glyphs = glyphs();
    for (index, (character, bitmap)) in glyphs.iter().enumerate() {
        assert!(glyphs[index + 1..].iter().all(|(_, other)| other != bitmap), "{character:?} is ambiguous");
    }
}

#[test]
fn reads_back_what_was_typed() {
    let mut state = DemoState::new();
    let printable: String = (' '..='~').collect();
    type_text(&mut state, &format!("Hello, World!\n{printable}\n  indented"));
    let rgb = screenshot(&state);
    let lines = read_console(&rgb, SIZE.0, SIZE.1);
    assert_eq!(lines.len(), ROWS);
    assert_eq!(
        lines[..7],
        [BANNER, "", "Hello, World!", &printable[..COLUMNS], &printable[COLUMNS..], "  indented", ""]
    );
    assert!(lines[7..].iter().all(String::is_empty));
}

#[test]
fn survives_16_bit_colour() {
    let mut state = DemoState::new();
    type_text(&mut state, "16 bits {ok}");
    let rgb565: Vec<u8> =
        screenshot(&state).chunks_exact(3).flat_map(|p| [p[0] & 0xF8, p[1] & 0xFC, p[2] & 0xF8]).collect();
    assert_eq!(read_console(&rgb565, SIZE.0, SIZE.1)[2], "16 bits {ok}");
}

#[test]
fn pointer_status_and_leds() {
    let mut state = DemoState::new();
    let rgb = screenshot(&state);
    assert_eq!(read_status_pointer(&rgb, SIZE.0, SIZE.1), None);
    assert_eq!(read_leds(&rgb, SIZE.0, SIZE.1), 0);

    type_text(&mut state, "xyz");
    press_and_release(&mut state, 0, usage::CAPS_LOCK);
    press_and_release(&mut state, 0, usage::SCROLL_LOCK);
    // The pointer's tip on the 'y': that cell no longer matches any glyph.
    let (x, y) = (CONSOLE_X + CELL + 2, CONSOLE_Y + 2 * CELL + 2);
    let to_hid = |pixel: u16, size: u16| (u32::from(pixel) * u32::from(POINTER_MAX) / u32::from(size - 1)) as u16;
    let report = PointerReport { buttons: 1, x: to_hid(x, WIDTH), y: to_hid(y, HEIGHT), wheel: -1, hwheel: 0 };
    state.apply(&HidReport::Pointer(report));
    let rgb = screenshot(&state);
    assert_eq!(read_status_pointer(&rgb, SIZE.0, SIZE.1), Some((x, y)));
    assert_eq!(read_status_line(&rgb, SIZE.0, SIZE.1), format!("pointer {x},{y}  buttons L--  wheel down"));
    assert_eq!(read_leds(&rgb, SIZE.0, SIZE.1), led::CAPS_LOCK | led::SCROLL_LOCK);
    assert_eq!(read_console(&rgb, SIZE.0, SIZE.1)[2], "x?z");
}

#[test]
fn a_short_or_small_image_reads_as_blank_not_a_panic() {
    assert!(read_console(&[0; 30], 1280, 720).iter().all(String::is_empty));
    assert!(read_console(&[], 0, 0).iter().all(String::is_empty));
    assert_eq!(read_status_pointer(&[], 0, 0), None);
}
