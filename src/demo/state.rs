//! The simulated target machine: what its USB host makes of the HID reports it receives.
//! It sees only reports, never keysyms, so what it shows proves the report path end to end.

use super::console::Console;
use super::layout::{HEIGHT, WIDTH};
use super::us_layout;
use crate::hid::keymap::usage;
use crate::hid::pointer::hid_button;
use crate::hid::{HidReport, KeyboardReport, MouseReport, POINTER_MAX, PointerReport, led};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DemoState {
    console: Console,
    leds: u8,
    /// The last keyboard report, to find the keys newly pressed in the next one.
    keyboard: KeyboardReport,
    pointer: PointerState,
}

/// The mouse as the target sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PointerState {
    /// Screen position; None until the first pointer report, like a host without a mouse yet.
    pub position: Option<(u16, u16)>,
    /// HID button bits (see [`hid_button`]).
    pub buttons: u8,
    pub last_wheel: Option<WheelDirection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WheelDirection {
    Up,
    Down,
    Left,
    Right,
}

impl PointerState {
    pub fn is_pressed(&self, button: u8) -> bool {
        self.buttons & button != 0
    }
}

/// Usages 1..=3 are error codes (ErrorRollOver, POSTFail, ErrorUndefined), not keys.
const FIRST_KEY_USAGE: u8 = 0x04;
const SHIFT_BITS: u8 = usage::modifier_bit(usage::LEFT_SHIFT) | usage::modifier_bit(usage::RIGHT_SHIFT);

impl DemoState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The lock LEDs (see [`led`]), as this host would set them on a real keyboard.
    pub fn leds(&self) -> u8 {
        self.leds
    }

    pub fn pointer(&self) -> &PointerState {
        &self.pointer
    }

    pub fn apply(&mut self, report: &HidReport) {
        match report {
            HidReport::Keyboard(report) => self.keyboard_report(*report),
            HidReport::Pointer(report) => self.pointer_report(report),
            HidReport::Mouse(report) => self.mouse_report(report),
        }
    }

    fn keyboard_report(&mut self, report: KeyboardReport) {
        let previous = std::mem::replace(&mut self.keyboard, report);
        // A key acts when it goes down: present now, absent before.
        let pressed = report.keys.iter().filter(|&&key| key >= FIRST_KEY_USAGE && !previous.keys.contains(&key));
        for &key in pressed {
            self.key_pressed(key, report.modifiers);
        }
    }

    fn key_pressed(&mut self, key: u8, modifiers: u8) {
        match key {
            usage::CAPS_LOCK => self.leds ^= led::CAPS_LOCK,
            usage::NUM_LOCK => self.leds ^= led::NUM_LOCK,
            usage::SCROLL_LOCK => self.leds ^= led::SCROLL_LOCK,
            // With Ctrl, Alt or GUI held a key is a shortcut, which this console has none of.
            _ if modifiers & !SHIFT_BITS != 0 => {}
            usage::ENTER | usage::KEYPAD_ENTER => self.console.new_line(),
            usage::BACKSPACE => self.console.backspace(),
            usage::TAB => self.console.tab(),
            _ => {
                let shift = modifiers & SHIFT_BITS != 0;
                let caps_lock = self.leds & led::CAPS_LOCK != 0;
                let num_lock = self.leds & led::NUM_LOCK != 0;
                if let Some(character) = us_layout::character(key, shift, caps_lock, num_lock) {
                    self.console.type_char(character);
                }
            }
        }
    }

    fn pointer_report(&mut self, report: &PointerReport) {
        let x = from_hid_coordinate(report.x, WIDTH);
        let y = from_hid_coordinate(report.y, HEIGHT);
        self.pointer.position = Some((x, y));
        self.pointer.buttons = report.buttons & (hid_button::LEFT | hid_button::RIGHT | hid_button::MIDDLE);
        self.wheel(report.wheel, report.hwheel);
    }

    /// The boot mouse moves the pointer relative to where it is (from the centre at first).
    fn mouse_report(&mut self, report: &MouseReport) {
        let (x, y) = self.pointer.position.unwrap_or((WIDTH / 2, HEIGHT / 2));
        let moved = |at: u16, by: i8, size: u16| at.saturating_add_signed(by.into()).min(size - 1);
        self.pointer.position = Some((moved(x, report.dx, WIDTH), moved(y, report.dy, HEIGHT)));
        self.pointer.buttons = report.buttons & (hid_button::LEFT | hid_button::RIGHT | hid_button::MIDDLE);
        self.wheel(report.wheel, 0);
    }

    fn wheel(&mut self, wheel: i8, hwheel: i8) {
        let direction = match (wheel, hwheel) {
            (1.., _) => WheelDirection::Up,
            (..0, _) => WheelDirection::Down,
            (0, 1..) => WheelDirection::Right,
            (0, ..0) => WheelDirection::Left,
            (0, 0) => return,
        };
        self.pointer.last_wheel = Some(direction);
    }
}

/// Maps 0..=POINTER_MAX back onto `0..size` pixels, rounding to the nearest.
fn from_hid_coordinate(hid: u16, size: u16) -> u16 {
    let last = u32::from(size.saturating_sub(1));
    let max = u32::from(POINTER_MAX);
    let pixel = (u32::from(hid.min(POINTER_MAX)) * last + max / 2) / max;
    // pixel <= last < size.
    pixel as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hid::pointer::to_hid_coordinate;

    const SHIFT: u8 = 0x02;

    fn keys(state: &mut DemoState, modifiers: u8, keys: &[u8]) {
        let mut report = KeyboardReport { modifiers, keys: [0; 6] };
        report.keys[..keys.len()].copy_from_slice(keys);
        state.apply(&HidReport::Keyboard(report));
    }

    fn tap(state: &mut DemoState, modifiers: u8, key: u8) {
        keys(state, modifiers, &[key]);
        keys(state, modifiers, &[]);
    }

    fn typed(state: &DemoState) -> String {
        state.console().lines().skip(2).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn shift_and_press_edges() {
        let mut state = DemoState::new();
        tap(&mut state, 0, 0x0B); // h
        tap(&mut state, SHIFT, 0x0C); // I
        keys(&mut state, SHIFT, &[0x1E]); // !
        keys(&mut state, 0, &[0x1E]); // still held: nothing new
        keys(&mut state, 0, &[0x1E, 0x1F]); // 2
        keys(&mut state, 0, &[]);
        assert_eq!(typed(&state), "hI!2");
    }

    #[test]
    fn right_shift_counts_too() {
        let mut state = DemoState::new();
        tap(&mut state, 0x20, 0x38);
        assert_eq!(typed(&state), "?");
    }

    #[test]
    fn caps_lock_toggles_its_led_and_the_case_of_letters() {
        let mut state = DemoState::new();
        tap(&mut state, 0, usage::CAPS_LOCK);
        assert_eq!(state.leds(), led::CAPS_LOCK);
        tap(&mut state, 0, 0x04);
        tap(&mut state, SHIFT, 0x04);
        tap(&mut state, 0, 0x1E);
        tap(&mut state, 0, usage::CAPS_LOCK);
        assert_eq!(state.leds(), 0);
        tap(&mut state, 0, 0x04);
        assert_eq!(typed(&state), "Aa1a");
    }

    #[test]
    fn num_and_scroll_lock_leds() {
        let mut state = DemoState::new();
        tap(&mut state, 0, usage::NUM_LOCK);
        tap(&mut state, 0, usage::SCROLL_LOCK);
        assert_eq!(state.leds(), led::NUM_LOCK | led::SCROLL_LOCK);
        tap(&mut state, 0, 0x59); // keypad 1
        assert_eq!(typed(&state), "1");
    }

    #[test]
    fn return_backspace_and_tab() {
        let mut state = DemoState::new();
        for key in [0x04, 0x05, usage::BACKSPACE, usage::ENTER, 0x06, usage::TAB, 0x07, usage::KEYPAD_ENTER] {
            tap(&mut state, 0, key);
        }
        assert_eq!(typed(&state), "a\nc       d\n");
    }

    #[test]
    fn shortcuts_type_nothing_and_error_codes_are_not_keys() {
        let mut state = DemoState::new();
        tap(&mut state, 0x01, 0x06); // Ctrl+C
        keys(&mut state, 0, &[0x01; 6]); // ErrorRollOver
        keys(&mut state, 0, &[]);
        assert_eq!(typed(&state), "");
    }

    #[test]
    fn pointer_position_buttons_and_wheel() {
        let mut state = DemoState::new();
        assert_eq!(state.pointer().position, None);
        let report = PointerReport { buttons: hid_button::RIGHT, x: POINTER_MAX, y: 0, wheel: -1, hwheel: 0 };
        state.apply(&HidReport::Pointer(report));
        let pointer = *state.pointer();
        assert_eq!(pointer.position, Some((WIDTH - 1, 0)));
        assert!(pointer.is_pressed(hid_button::RIGHT) && !pointer.is_pressed(hid_button::MIDDLE));
        assert_eq!(pointer.last_wheel, Some(WheelDirection::Down));
        let report = PointerReport { buttons: 0, x: u16::MAX, y: POINTER_MAX, wheel: 0, hwheel: 0 };
        state.apply(&HidReport::Pointer(report));
        assert_eq!(state.pointer().position, Some((WIDTH - 1, HEIGHT - 1)), "clamped");
        assert_eq!(state.pointer().last_wheel, Some(WheelDirection::Down), "a still wheel keeps the last direction");
    }

    #[test]
    fn every_pixel_survives_the_trip_through_hid_coordinates() {
        for size in [WIDTH, HEIGHT] {
            for pixel in 0..size {
                assert_eq!(from_hid_coordinate(to_hid_coordinate(pixel, size), size), pixel);
            }
        }
    }
}
