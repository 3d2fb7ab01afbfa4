//! What a host with the US layout types for a key: the target side of the keyboard path, written
//! independently of `hid::keymap` so that a mistake in either shows up as wrong text.

/// The character a key types, or None for keys that type nothing (or not a character).
pub fn character(usage: u8, shift: bool, caps_lock: bool, num_lock: bool) -> Option<char> {
    const DIGIT_ROW: (&[u8; 10], &[u8; 10]) = (b"1234567890", b"!@#$%^&*()");
    let byte = match usage {
        0x04..=0x1D => {
            let letter = b'a' + (usage - 0x04);
            if shift != caps_lock { letter.to_ascii_uppercase() } else { letter }
        }
        0x1E..=0x27 => {
            let index = usize::from(usage - 0x1E);
            if shift { DIGIT_ROW.1[index] } else { DIGIT_ROW.0[index] }
        }
        0x2C => b' ',
        0x2D..=0x38 => punctuation(usage, shift)?,
        0x54 => b'/',
        0x55 => b'*',
        0x56 => b'-',
        0x57 => b'+',
        // Without Num Lock the keypad's digits are navigation keys.
        0x59..=0x61 if num_lock => b'1' + (usage - 0x59),
        0x62 if num_lock => b'0',
        0x63 if num_lock => b'.',
        _ => return None,
    };
    Some(char::from(byte))
}

fn punctuation(usage: u8, shift: bool) -> Option<u8> {
    let (plain, shifted) = match usage {
        0x2D => (b'-', b'_'),
        0x2E => (b'=', b'+'),
        0x2F => (b'[', b'{'),
        0x30 => (b']', b'}'),
        0x31 => (b'\\', b'|'),
        0x33 => (b';', b':'),
        0x34 => (b'\'', b'"'),
        0x35 => (b'`', b'~'),
        0x36 => (b',', b'<'),
        0x37 => (b'.', b'>'),
        0x38 => (b'/', b'?'),
        // 0x32 is the non-US '#' key, which a US keyboard does not have.
        _ => return None,
    };
    Some(if shift { shifted } else { plain })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hid::keymap::keysym_to_usage;

    #[test]
    fn agrees_with_the_keymap_on_all_of_printable_ascii() {
        for byte in 0x20..=0x7Eu8 {
            let key = keysym_to_usage(u32::from(byte)).expect("every printable character has a key");
            assert_eq!(character(key.usage, key.shift, false, false), Some(char::from(byte)));
        }
    }

    #[test]
    fn caps_lock_flips_letters_only() {
        assert_eq!(character(0x04, false, true, false), Some('A'));
        assert_eq!(character(0x04, true, true, false), Some('a'));
        assert_eq!(character(0x1E, false, true, false), Some('1'));
    }

    #[test]
    fn keypad_digits_need_num_lock() {
        assert_eq!(character(0x59, false, false, true), Some('1'));
        assert_eq!(character(0x62, false, false, true), Some('0'));
        assert_eq!(character(0x59, false, false, false), None);
        assert_eq!(character(0x57, false, false, false), Some('+'));
    }

    #[test]
    fn non_characters() {
        for usage in [0x00, 0x01, 0x28, 0x2A, 0x2B, 0x32, 0x39, 0x3A, 0xE1, 0xFF] {
            assert_eq!(character(usage, false, false, true), None, "{usage:#x}");
        }
    }
}
