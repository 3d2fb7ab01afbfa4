//! X11 keysym -> USB HID keyboard usage (page 7) for a target using the US layout.
//!
//! A keysym names a character, a HID usage names a key position; the target's own layout turns
//! the position back into a character. So for a keysym-only viewer (one without QEMU extended key
//! events) we must know which US key, with or without Shift, produces the character.

/// The key (HID usage, page 7) that produces a keysym, and whether Shift must be held for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage {
    pub usage: u8,
    pub shift: bool,
}

/// Named usages the rest of the crate reasons about.
pub mod usage {
    pub const A: u8 = 0x04;
    pub const Z: u8 = 0x1D;
    pub const ENTER: u8 = 0x28;
    pub const BACKSPACE: u8 = 0x2A;
    pub const TAB: u8 = 0x2B;
    pub const CAPS_LOCK: u8 = 0x39;
    pub const SCROLL_LOCK: u8 = 0x47;
    pub const NUM_LOCK: u8 = 0x53;
    pub const KEYPAD_ENTER: u8 = 0x58;
    pub const LEFT_CTRL: u8 = 0xE0;
    pub const LEFT_SHIFT: u8 = 0xE1;
    pub const RIGHT_SHIFT: u8 = 0xE5;
    pub const RIGHT_GUI: u8 = 0xE7;

    /// Usages 0xE0..=0xE7 are modifiers: they live in the report's modifier byte, not in a slot.
    pub const fn is_modifier(usage: u8) -> bool {
        usage >= LEFT_CTRL && usage <= RIGHT_GUI
    }

    /// The modifier-byte bit of a modifier usage (0 for any other usage).
    pub const fn modifier_bit(usage: u8) -> u8 {
        if is_modifier(usage) { 1 << (usage - LEFT_CTRL) } else { 0 }
    }

    /// Letters are the keys whose case Caps Lock flips.
    pub fn is_letter(usage: u8) -> bool {
        (A..=Z).contains(&usage)
    }
}

/// Keysyms 0x0100_0000 + code point are the Unicode form; some viewers use it even for ASCII.
const UNICODE_KEYSYM_BASE: u32 = 0x0100_0000;

pub fn keysym_to_usage(keysym: u32) -> Option<KeyUsage> {
    let latin = if keysym >= UNICODE_KEYSYM_BASE { keysym - UNICODE_KEYSYM_BASE } else { keysym };
    if let Some(key) = u8::try_from(latin).ok().and_then(ascii_to_usage) {
        return Some(key);
    }
    // Shift+Tab arrives as its own keysym.
    function_key_to_usage(keysym).map(|usage| KeyUsage { usage, shift: keysym == xk::ISO_LEFT_TAB })
}

fn ascii_to_usage(byte: u8) -> Option<KeyUsage> {
    let plain = |usage| Some(KeyUsage { usage, shift: false });
    let shifted = |usage| Some(KeyUsage { usage, shift: true });
    match byte {
        b'a'..=b'z' => plain(usage::A + (byte - b'a')),
        b'A'..=b'Z' => shifted(usage::A + (byte - b'A')),
        b'1'..=b'9' => plain(0x1E + (byte - b'1')),
        b'0' => plain(0x27),
        b'!' => shifted(0x1E),
        b'@' => shifted(0x1F),
        b'#' => shifted(0x20),
        b'$' => shifted(0x21),
        b'%' => shifted(0x22),
        b'^' => shifted(0x23),
        b'&' => shifted(0x24),
        b'*' => shifted(0x25),
        b'(' => shifted(0x26),
        b')' => shifted(0x27),
        b' ' => plain(0x2C),
        b'-' => plain(0x2D),
        b'_' => shifted(0x2D),
        b'=' => plain(0x2E),
        b'+' => shifted(0x2E),
        b'[' => plain(0x2F),
        b'{' => shifted(0x2F),
        b']' => plain(0x30),
        b'}' => shifted(0x30),
        b'\\' => plain(0x31),
        b'|' => shifted(0x31),
        b';' => plain(0x33),
        b':' => shifted(0x33),
        b'\'' => plain(0x34),
        b'"' => shifted(0x34),
        b'`' => plain(0x35),
        b'~' => shifted(0x35),
        b',' => plain(0x36),
        b'<' => shifted(0x36),
        b'.' => plain(0x37),
        b'>' => shifted(0x37),
        b'/' => plain(0x38),
        b'?' => shifted(0x38),
        _ => None,
    }
}

/// X11 keysyms of keys that are not characters (from X11/keysymdef.h).
pub mod xk {
    pub const ISO_LEFT_TAB: u32 = 0xFE20;
    pub const ISO_LEVEL3_SHIFT: u32 = 0xFE03;
    pub const BACKSPACE: u32 = 0xFF08;
    pub const TAB: u32 = 0xFF09;
    pub const RETURN: u32 = 0xFF0D;
    pub const PAUSE: u32 = 0xFF13;
    pub const SCROLL_LOCK: u32 = 0xFF14;
    pub const ESCAPE: u32 = 0xFF1B;
    pub const HOME: u32 = 0xFF50;
    pub const LEFT: u32 = 0xFF51;
    pub const UP: u32 = 0xFF52;
    pub const RIGHT: u32 = 0xFF53;
    pub const DOWN: u32 = 0xFF54;
    pub const PAGE_UP: u32 = 0xFF55;
    pub const PAGE_DOWN: u32 = 0xFF56;
    pub const END: u32 = 0xFF57;
    pub const PRINT: u32 = 0xFF61;
    pub const INSERT: u32 = 0xFF63;
    pub const MENU: u32 = 0xFF67;
    pub const NUM_LOCK: u32 = 0xFF7F;
    pub const KP_ENTER: u32 = 0xFF8D;
    pub const KP_MULTIPLY: u32 = 0xFFAA;
    pub const KP_ADD: u32 = 0xFFAB;
    pub const KP_SUBTRACT: u32 = 0xFFAD;
    pub const KP_DECIMAL: u32 = 0xFFAE;
    pub const KP_DIVIDE: u32 = 0xFFAF;
    pub const KP_0: u32 = 0xFFB0;
    pub const KP_1: u32 = 0xFFB1;
    pub const KP_9: u32 = 0xFFB9;
    pub const F1: u32 = 0xFFBE;
    pub const F12: u32 = 0xFFC9;
    pub const F13: u32 = 0xFFCA;
    pub const F24: u32 = 0xFFD5;
    pub const SHIFT_L: u32 = 0xFFE1;
    pub const SHIFT_R: u32 = 0xFFE2;
    pub const CONTROL_L: u32 = 0xFFE3;
    pub const CONTROL_R: u32 = 0xFFE4;
    pub const CAPS_LOCK: u32 = 0xFFE5;
    pub const META_L: u32 = 0xFFE7;
    pub const META_R: u32 = 0xFFE8;
    pub const ALT_L: u32 = 0xFFE9;
    pub const ALT_R: u32 = 0xFFEA;
    pub const SUPER_L: u32 = 0xFFEB;
    pub const SUPER_R: u32 = 0xFFEC;
    pub const DELETE: u32 = 0xFFFF;
}

/// Editing, navigation, function, lock, keypad and modifier keys.
fn function_key_to_usage(keysym: u32) -> Option<u8> {
    use xk::*;
    let usage = match keysym {
        RETURN => usage::ENTER,
        KP_ENTER => usage::KEYPAD_ENTER,
        BACKSPACE => usage::BACKSPACE,
        TAB | ISO_LEFT_TAB => usage::TAB,
        ESCAPE => 0x29,
        DELETE => 0x4C,
        INSERT => 0x49,
        HOME => 0x4A,
        END => 0x4D,
        PAGE_UP => 0x4B,
        PAGE_DOWN => 0x4E,
        RIGHT => 0x4F,
        LEFT => 0x50,
        DOWN => 0x51,
        UP => 0x52,
        F1..=F12 => 0x3A + (keysym - F1) as u8,
        // The boot keyboard's usages go to 255 (descriptor.rs), so F13–F24 (0x68..=0x73) exist.
        F13..=F24 => 0x68 + (keysym - F13) as u8,
        PRINT => 0x46,
        SCROLL_LOCK => usage::SCROLL_LOCK,
        PAUSE => 0x48,
        CAPS_LOCK => usage::CAPS_LOCK,
        NUM_LOCK => usage::NUM_LOCK,
        // The "Application" key, next to the right Windows key.
        MENU => 0x65,
        KP_DIVIDE => 0x54,
        KP_MULTIPLY => 0x55,
        KP_SUBTRACT => 0x56,
        KP_ADD => 0x57,
        KP_1..=KP_9 => 0x59 + (keysym - KP_1) as u8,
        KP_0 => 0x62,
        KP_DECIMAL => 0x63,
        SHIFT_L => usage::LEFT_SHIFT,
        SHIFT_R => usage::RIGHT_SHIFT,
        CONTROL_L => usage::LEFT_CTRL,
        CONTROL_R => 0xE4,
        ALT_L => 0xE2,
        // AltGr on layouts that have it; the target's layout decides what it does.
        ALT_R | ISO_LEVEL3_SHIFT => 0xE6,
        // X servers put the "Windows" keys on Super or Meta depending on configuration.
        META_L | SUPER_L => 0xE3,
        META_R | SUPER_R => usage::RIGHT_GUI,
        _ => return None,
    };
    Some(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(usage: u8, shift: bool) -> Option<KeyUsage> {
        Some(KeyUsage { usage, shift })
    }

    #[test]
    fn letters_carry_their_case_as_shift() {
        assert_eq!(keysym_to_usage(u32::from(b'a')), key(0x04, false));
        assert_eq!(keysym_to_usage(u32::from(b'z')), key(0x1D, false));
        assert_eq!(keysym_to_usage(u32::from(b'A')), key(0x04, true));
        assert_eq!(keysym_to_usage(u32::from(b'Q')), key(0x14, true));
    }

    #[test]
    fn digits_and_their_shifted_symbols_share_keys() {
        let row = [(b'1', b'!'), (b'2', b'@'), (b'3', b'#'), (b'4', b'$'), (b'5', b'%')];
        let row = row.into_iter().chain([(b'6', b'^'), (b'7', b'&'), (b'8', b'*'), (b'9', b'('), (b'0', b')')]);
        for (index, (digit, symbol)) in row.enumerate() {
            let usage = 0x1E + index as u8;
            assert_eq!(keysym_to_usage(u32::from(digit)), key(usage, false), "{}", digit as char);
            assert_eq!(keysym_to_usage(u32::from(symbol)), key(usage, true), "{}", symbol as char);
        }
    }

    #[test]
    fn punctuation() {
        assert_eq!(keysym_to_usage(u32::from(b' ')), key(0x2C, false));
        assert_eq!(keysym_to_usage(u32::from(b'_')), key(0x2D, true));
        assert_eq!(keysym_to_usage(u32::from(b'+')), key(0x2E, true));
        assert_eq!(keysym_to_usage(u32::from(b'{')), key(0x2F, true));
        assert_eq!(keysym_to_usage(u32::from(b'|')), key(0x31, true));
        assert_eq!(keysym_to_usage(u32::from(b':')), key(0x33, true));
        assert_eq!(keysym_to_usage(u32::from(b'"')), key(0x34, true));
        assert_eq!(keysym_to_usage(u32::from(b'~')), key(0x35, true));
        assert_eq!(keysym_to_usage(u32::from(b'<')), key(0x36, true));
        assert_eq!(keysym_to_usage(u32::from(b'>')), key(0x37, true));
        assert_eq!(keysym_to_usage(u32::from(b'?')), key(0x38, true));
        assert_eq!(keysym_to_usage(u32::from(b'/')), key(0x38, false));
    }

    #[test]
    fn every_printable_ascii_character_has_a_key() {
        for byte in 0x20..=0x7Eu32 {
            assert!(keysym_to_usage(byte).is_some(), "{:?}", char::from_u32(byte));
        }
        assert_eq!(keysym_to_usage(0x7F), None);
        assert_eq!(keysym_to_usage(0x1F), None);
    }

    #[test]
    fn unicode_keysyms_for_ascii() {
        assert_eq!(keysym_to_usage(0x0100_0041), key(0x04, true));
        assert_eq!(keysym_to_usage(0x0100_20AC), None); // the euro sign has no US key
    }

    #[test]
    fn special_keys() {
        assert_eq!(keysym_to_usage(0xFF0D), key(0x28, false));
        assert_eq!(keysym_to_usage(0xFF8D), key(0x58, false));
        assert_eq!(keysym_to_usage(0xFF08), key(0x2A, false));
        assert_eq!(keysym_to_usage(0xFF09), key(0x2B, false));
        assert_eq!(keysym_to_usage(0xFE20), key(0x2B, true));
        assert_eq!(keysym_to_usage(0xFF1B), key(0x29, false));
        assert_eq!(keysym_to_usage(0xFFFF), key(0x4C, false));
        assert_eq!(keysym_to_usage(0xFF51), key(0x50, false));
        assert_eq!(keysym_to_usage(0xFF54), key(0x51, false));
        assert_eq!(keysym_to_usage(0xFFBE), key(0x3A, false));
        assert_eq!(keysym_to_usage(0xFFC9), key(0x45, false));
        assert_eq!(keysym_to_usage(0xFFCA), key(0x68, false)); // F13
        assert_eq!(keysym_to_usage(0xFFD5), key(0x73, false)); // F24
        assert_eq!(keysym_to_usage(0xFFD6), None); // F25: no HID usage
        assert_eq!(keysym_to_usage(0xFFE5), key(0x39, false));
        assert_eq!(keysym_to_usage(0xFFB0), key(0x62, false));
        assert_eq!(keysym_to_usage(0xFFB9), key(0x61, false));
    }

    #[test]
    fn modifiers() {
        assert_eq!(keysym_to_usage(0xFFE1), key(0xE1, false));
        assert_eq!(keysym_to_usage(0xFFE2), key(0xE5, false));
        assert_eq!(keysym_to_usage(0xFFE3), key(0xE0, false));
        assert_eq!(keysym_to_usage(0xFFEA), key(0xE6, false));
        assert_eq!(keysym_to_usage(0xFE03), key(0xE6, false));
        assert_eq!(keysym_to_usage(0xFFEB), key(0xE3, false));
        assert_eq!(keysym_to_usage(0xFFEC), key(0xE7, false));
        assert!(usage::is_modifier(0xE0) && usage::is_modifier(0xE7) && !usage::is_modifier(0x39));
        assert_eq!(usage::modifier_bit(usage::LEFT_SHIFT), 0x02);
        assert_eq!(usage::modifier_bit(usage::RIGHT_SHIFT), 0x20);
        assert_eq!(usage::modifier_bit(0x04), 0);
    }
}
