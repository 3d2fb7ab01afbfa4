//! The boot keyboard's pressed-key state, from which every keyboard report is built.

use super::KeyboardReport;
use super::keymap::usage;

/// Modifier bits plus up to six pressed usages, oldest press first.
///
/// A seventh simultaneous key lets go of the oldest one (as if it had been released) so that the
/// newest press always reaches the target; a later release of the dropped key changes nothing.
/// (The HID alternative, ErrorRollOver in every slot, would swallow the new key instead.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyboard {
    report: KeyboardReport,
}

impl Keyboard {
    pub fn new() -> Self {
        Self::default()
    }

    /// The report describing the current state.
    pub fn report(&self) -> KeyboardReport {
        self.report
    }

    pub fn modifiers(&self) -> u8 {
        self.report.modifiers
    }

    pub fn is_pressed(&self, usage: u8) -> bool {
        if usage::is_modifier(usage) {
            self.report.modifiers & usage::modifier_bit(usage) != 0
        } else {
            usage != 0 && self.report.keys.contains(&usage)
        }
    }

    /// Presses `usage`; returns the report to send if the state changed.
    pub fn press(&mut self, usage: u8) -> Option<KeyboardReport> {
        if usage == 0 || self.is_pressed(usage) {
            return None;
        }
        if usage::is_modifier(usage) {
            self.report.modifiers |= usage::modifier_bit(usage);
        } else {
            let keys = &mut self.report.keys;
            let free = keys.iter().position(|&key| key == 0).unwrap_or_else(|| {
                keys.rotate_left(1);
                keys.len() - 1
            });
            keys[free] = usage;
        }
        Some(self.report)
    }

    /// Releases `usage`; returns the report to send if the state changed.
    pub fn release(&mut self, usage: u8) -> Option<KeyboardReport> {
        if usage == 0 || !self.is_pressed(usage) {
            return None;
        }
        if usage::is_modifier(usage) {
            self.report.modifiers &= !usage::modifier_bit(usage);
        } else {
            let keys = &mut self.report.keys;
            if let Some(slot) = keys.iter().position(|&key| key == usage) {
                // Keep the remaining keys in press order with the empty slots at the end.
                keys[slot..].rotate_left(1);
                keys[keys.len() - 1] = 0;
            }
        }
        Some(self.report)
    }

    /// Replaces the whole modifier byte; returns the report to send if it changed.
    pub fn set_modifiers(&mut self, modifiers: u8) -> Option<KeyboardReport> {
        if self.report.modifiers == modifiers {
            return None;
        }
        self.report.modifiers = modifiers;
        Some(self.report)
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
    fn a_seventh_key_pushes_out_the_oldest() {
        let mut keyboard = Keyboard::new();
        for key in 0x04..0x0A {
            keyboard.press(key);
        }
        assert_eq!(keyboard.press(0x0A), Some(report(0, &[0x05, 0x06, 0x07, 0x08, 0x09, 0x0A])));
        assert!(!keyboard.is_pressed(0x04));
        assert_eq!(keyboard.release(0x04), None);
        assert_eq!(keyboard.release(0x07), Some(report(0, &[0x05, 0x06, 0x08, 0x09, 0x0A])));
    }

    #[test]
    fn usage_zero_is_not_a_key() {
        let mut keyboard = Keyboard::new();
        assert_eq!(keyboard.press(0), None);
        assert_eq!(keyboard.release(0), None);
        assert!(!keyboard.is_pressed(0));
    }
}
