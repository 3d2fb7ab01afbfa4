//! The boot keyboard's pressed-key state, from which every keyboard report is built.

use super::KeyboardReport;
use super::keymap::usage;

/// Keyboard usage 0x01: in every key slot, it says "more keys are down than a report holds".
pub const ERROR_ROLL_OVER: u8 = 0x01;

/// Modifier bits plus the pressed keys, oldest press first.
///
/// A boot report has six key slots. With a seventh key down, every slot says ErrorRollOver
/// (HID 1.11, appendix C): the host then keeps its previous key state until the report is
/// sensible again, instead of seeing a key released that is still held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyboard {
    modifiers: u8,
    /// Pressed non-modifier usages (at most one of each: 256 possible).
    keys: Vec<u8>,
}

impl Keyboard {
    pub fn new() -> Self {
        Self::default()
    }

    /// The report describing the current state.
    pub fn report(&self) -> KeyboardReport {
        let mut slots = [0; 6];
        if self.keys.len() > slots.len() {
            slots = [ERROR_ROLL_OVER; 6];
        } else {
            slots[..self.keys.len()].copy_from_slice(&self.keys);
        }
        KeyboardReport { modifiers: self.modifiers, keys: slots }
    }

    pub fn modifiers(&self) -> u8 {
        self.modifiers
    }

    pub fn is_pressed(&self, usage: u8) -> bool {
        if usage::is_modifier(usage) {
            self.modifiers & usage::modifier_bit(usage) != 0
        } else {
            usage != 0 && self.keys.contains(&usage)
        }
    }

    /// Presses `usage`; returns the report to send if the state changed.
    pub fn press(&mut self, usage: u8) -> Option<KeyboardReport> {
        if usage == 0 || self.is_pressed(usage) {
            return None;
        }
        if usage::is_modifier(usage) {
            self.modifiers |= usage::modifier_bit(usage);
        } else {
            self.keys.push(usage);
        }
        Some(self.report())
    }

    /// Releases `usage`; returns the report to send if the state changed.
    pub fn release(&mut self, usage: u8) -> Option<KeyboardReport> {
        if usage == 0 || !self.is_pressed(usage) {
            return None;
        }
        if usage::is_modifier(usage) {
            self.modifiers &= !usage::modifier_bit(usage);
        } else {
            // Keep the remaining keys in press order.
            self.keys.retain(|&key| key != usage);
        }
        Some(self.report())
    }

    /// Replaces the whole modifier byte; returns the report to send if it changed.
    pub fn set_modifiers(&mut self, modifiers: u8) -> Option<KeyboardReport> {
        if self.modifiers == modifiers {
            return None;
        }
        self.modifiers = modifiers;
        Some(self.report())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(modifiers: u8, keys: &[u8]) -> KeyboardReport {
        let mut report = KeyboardReport { modifiers, keys: [0; 6] };
        report.keys[..keys.len()].copy_from_slice(keys);
        report
    }

    #[test]
    fn keys_fill_slots_in_press_order() {
        let mut keyboard = Keyboard::new();
        assert_eq!(keyboard.press(0x04), Some(report(0, &[0x04])));
        assert_eq!(keyboard.press(0x05), Some(report(0, &[0x04, 0x05])));
        assert_eq!(keyboard.press(0x04), None, "already pressed");
        assert_eq!(keyboard.release(0x04), Some(report(0, &[0x05])));
        assert_eq!(keyboard.release(0x04), None, "already released");
        assert_eq!(keyboard.release(0x05), Some(report(0, &[])));
    }

    #[test]
    fn modifiers_are_bits_not_slots() {
        let mut keyboard = Keyboard::new();
        assert_eq!(keyboard.press(usage::LEFT_SHIFT), Some(report(0x02, &[])));
        assert_eq!(keyboard.press(0xE7), Some(report(0x82, &[])));
        assert_eq!(keyboard.press(0x04), Some(report(0x82, &[0x04])));
        assert!(keyboard.is_pressed(usage::LEFT_SHIFT));
        assert_eq!(keyboard.release(usage::LEFT_SHIFT), Some(report(0x80, &[0x04])));
        assert_eq!(keyboard.set_modifiers(0x80), None);
        assert_eq!(keyboard.set_modifiers(0x01), Some(report(0x01, &[0x04])));
    }

    #[test]
    fn a_seventh_key_rolls_over_until_one_is_released() {
        let mut keyboard = Keyboard::new();
        keyboard.press(usage::LEFT_SHIFT);
        for key in 0x04..0x0A {
            keyboard.press(key);
        }
        assert_eq!(keyboard.press(0x0A), Some(report(0x02, &[ERROR_ROLL_OVER; 6])), "modifiers still count");
        assert!(keyboard.is_pressed(0x04) && keyboard.is_pressed(0x0A));
        assert_eq!(keyboard.press(0x0B), Some(report(0x02, &[ERROR_ROLL_OVER; 6])));
        keyboard.release(0x0B);
        assert_eq!(keyboard.release(0x04), Some(report(0x02, &[0x05, 0x06, 0x07, 0x08, 0x09, 0x0A])));
    }

    #[test]
    fn usage_zero_is_not_a_key() {
        let mut keyboard = Keyboard::new();
        assert_eq!(keyboard.press(0), None);
        assert_eq!(keyboard.release(0), None);
        assert!(!keyboard.is_pressed(0));
    }
}
