//! QEMU extended key event keycodes ("qnum") -> USB HID keyboard usages (page 7).
//!
//! A viewer that speaks the QEMU Extended Key Event sends the physical key as an XT scancode, so
//! the target gets the key the user pressed whatever the two keyboard layouts are. The usage of
//! each key comes from Chrome's keycode_converter table (the `keycode` crate), looked up through
//! its Windows scancode column; where QEMU numbers a key differently from Windows, QEMU's number
//! wins (see `QEMU_DIFFERENCES`), because QEMU defined the encoding and noVNC and TigerVNC send
//! what QEMU's keycodemapdb says.

use std::sync::LazyLock;

use keycode::{KeyMap, KeyMappingId};

/// USB HID usage page of keyboard keys; the boot keyboard carries nothing else.
const KEYBOARD_PAGE: u16 = 0x07;

/// Every qnum is below 0x100: XT make codes are 7-bit and the E0 prefix becomes bit 7.
const QNUM_COUNT: usize = 0x100;

/// Usage by qnum, 0 where no key.
static USAGES: LazyLock<[u8; QNUM_COUNT]> = LazyLock::new(build_table);

/// The USB HID keyboard usage (page 7) of the key a QEMU Extended Key Event names.
///
/// `qnum` is the event's keycode: the key's XT (scan code set 1) make code, with the `E0`
/// prefix of the extended keys folded into bit 7, so `xx` stays `xx` and `E0 xx` becomes
/// `0x80 | xx` (Right arrow `E0 4D` -> `0xCD`). Pause, whose `E1 1D 45` sequence fits no qnum,
/// is `0xC6` (`E0 46`, Ctrl+Break); PrintScreen is `0x54` (the SysRq code) or `0xB7` (`E0 37`).
///
/// None for 0 (TigerVNC's "no keycode"), for codes no key has, and for keys whose usage is not
/// on page 7 or is above 0xFF (media and browser keys on the consumer page, Sleep, ...), since
/// the boot keyboard report carries page-7 usages 0..=255 only.
pub fn usage_for_qnum(qnum: u32) -> Option<u8> {
    let index = usize::try_from(qnum).ok()?;
    USAGES.get(index).copied().filter(|&usage| usage != 0)
}

/// What QEMU's keycodemapdb puts at a qnum where Chrome's Windows scancode says otherwise.
#[derive(Debug, Clone, Copy)]
enum Qemu {
    /// A key Chrome knows, under another Windows scancode or none.
    Key(KeyMappingId),
    /// A key Chrome's table lacks; the usage is keycodemapdb's.
    Usage(u8),
    /// A code QEMU gives to no key, or to one without a standard page-7 usage.
    Nothing,
}

/// Where QEMU's qnum and Windows' scancodes (Chrome's "win" column) disagree, from keycodemapdb's
/// `data/keymaps.csv` ("AT set1 keycode" column, which noVNC's xtscancodes.js is generated from).
const QEMU_DIFFERENCES: &[(u8, Qemu)] = &[
    // Windows reports Pause as 45 (dropping its E1 1D prefix) and NumLock as E0 45. On a real
    // XT keyboard 45 is NumLock, and QEMU sends Pause as E0 46 (TigerVNC translates the same);
    // E0 45 is no key with a usage for QEMU.
    (0x45, Qemu::Key(KeyMappingId::NumLock)),
    (0xC5, Qemu::Nothing),
    (0xC6, Qemu::Key(KeyMappingId::Pause)),
    // 54 is what the PrintScreen key sends with Alt held (SysRq); QEMU prefers it for the key.
    // Chrome's E0 37 stays valid: QEMU accepts it too and TigerVNC on Windows sends it.
    (0x54, Qemu::Key(KeyMappingId::PrintScreen)),
    // F13-F24: Windows uses 64-6E and 76; keycodemapdb has its own codes for them, and gives
    // the Windows ones to other keys (or none). (TigerVNC on Windows passes Windows' codes
    // through, so its F13-F24 reach QEMU, and us, as those other keys.)
    (0x5D, Qemu::Key(KeyMappingId::F13)),
    (0x5E, Qemu::Key(KeyMappingId::F14)),
    (0x5F, Qemu::Key(KeyMappingId::F15)),
    (0x55, Qemu::Key(KeyMappingId::F16)),
    (0x83, Qemu::Key(KeyMappingId::F17)),
    (0xF7, Qemu::Key(KeyMappingId::F18)),
    (0x84, Qemu::Key(KeyMappingId::F19)),
    (0x5A, Qemu::Key(KeyMappingId::F20)),
    (0x74, Qemu::Key(KeyMappingId::F21)),
    (0xF9, Qemu::Key(KeyMappingId::F22)),
    (0x6D, Qemu::Key(KeyMappingId::F23)),
    (0x6F, Qemu::Key(KeyMappingId::F24)),
    (0x64, Qemu::Key(KeyMappingId::Open)),
    (0x65, Qemu::Key(KeyMappingId::Paste)),
    (0x76, Qemu::Key(KeyMappingId::Lang5)),
    (0x66, Qemu::Nothing),
    (0x67, Qemu::Nothing),
    (0x68, Qemu::Nothing),
    (0x69, Qemu::Nothing),
    (0x6A, Qemu::Nothing),
    (0x6B, Qemu::Nothing),
    (0x6C, Qemu::Nothing),
    (0x6E, Qemu::Nothing),
    // The Sun-style editing keys: keycodemapdb's codes, while Chrome's Windows codes for Undo,
    // Paste, Cut, Copy and Help are QEMU's Edit, Redo, Prog2, Rewind and Camera.
    (0x85, Qemu::Key(KeyMappingId::Again)),
    (0x86, Qemu::Key(KeyMappingId::Props)),
    (0x87, Qemu::Key(KeyMappingId::Undo)),
    (0x8C, Qemu::Key(KeyMappingId::Select)),
    (0xBC, Qemu::Key(KeyMappingId::Cut)),
    (0xC1, Qemu::Key(KeyMappingId::Find)),
    (0xF5, Qemu::Key(KeyMappingId::Help)),
    (0xF8, Qemu::Key(KeyMappingId::Copy)),
    (0x88, Qemu::Nothing),
    (0x8A, Qemu::Nothing),
    (0x97, Qemu::Nothing),
    (0x98, Qemu::Nothing),
    (0xBB, Qemu::Nothing),
    (0xF6, Qemu::Key(KeyMappingId::NumpadParenLeft)),
    (0xFB, Qemu::Key(KeyMappingId::NumpadParenRight)),
    // Chrome's table has International6 (the Japanese keypad comma) commented out and no
    // Keyboard Menu at all; both are standard page-7 usages.
    (0x5C, Qemu::Usage(0x8C)),
    (0x9E, Qemu::Usage(0x76)),
];

fn build_table() -> [u8; QNUM_COUNT] {
    let mut table = [0; QNUM_COUNT];
    // The bulk: every page-7 key for which Chrome knows a Windows scancode.
    for usage in 0..=u8::MAX {
        let Ok(key) = KeyMap::from_usb_code(KEYBOARD_PAGE, u16::from(usage)) else { continue };
        if let Some(qnum) = qnum_for_windows_scancode(key.win) {
            table[usize::from(qnum)] = usage;
        }
    }
    for &(qnum, qemu) in QEMU_DIFFERENCES {
        table[usize::from(qnum)] = match qemu {
            // The ids named above are all page-7 keys below 0x100 (the test table checks it).
            Qemu::Key(id) => u8::try_from(KeyMap::from(id).usb).unwrap_or(0),
            Qemu::Usage(usage) => usage,
            Qemu::Nothing => 0,
        };
    }
    table
}

/// Windows writes the extended keys as 0xE0xx; qnum folds the prefix into bit 7. Anything else
/// (0 = no scancode, 0xFC/0xFF = keyboard error codes) names no key.
fn qnum_for_windows_scancode(win: u16) -> Option<u8> {
    let [prefix, code] = win.to_be_bytes();
    match (prefix, code) {
        (0x00, 0x01..=0x7F) => Some(code),
        (0xE0, 0x01..=0x7F) => Some(0x80 | code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::str::FromStr;

    use keycode::{KeyMapping, KeyMappingCode};

    use super::*;

    /// Every mapped qnum and its usage, reviewed against the HID Usage Tables (page 7) and
    /// keycodemapdb. Every code not listed must map to None.
    const EXPECTED: &[(u32, u8)] = &[
        (0x01, 0x29), // Escape
        (0x02, 0x1E), // Digit1
        (0x03, 0x1F), // Digit2
        (0x04, 0x20), // Digit3
        (0x05, 0x21), // Digit4
        (0x06, 0x22), // Digit5
        (0x07, 0x23), // Digit6
        (0x08, 0x24), // Digit7
        (0x09, 0x25), // Digit8
        (0x0A, 0x26), // Digit9
        (0x0B, 0x27), // Digit0
        (0x0C, 0x2D), // Minus
        (0x0D, 0x2E), // Equal
        (0x0E, 0x2A), // Backspace
        (0x0F, 0x2B), // Tab
        (0x10, 0x14), // KeyQ
        (0x11, 0x1A), // KeyW
        (0x12, 0x08), // KeyE
        (0x13, 0x15), // KeyR
        (0x14, 0x17), // KeyT
        (0x15, 0x1C), // KeyY
        (0x16, 0x18), // KeyU
        (0x17, 0x0C), // KeyI
        (0x18, 0x12), // KeyO
        (0x19, 0x13), // KeyP
        (0x1A, 0x2F), // BracketLeft
        (0x1B, 0x30), // BracketRight
        (0x1C, 0x28), // Enter
        (0x1D, 0xE0), // ControlLeft
        (0x1E, 0x04), // KeyA
        (0x1F, 0x16), // KeyS
        (0x20, 0x07), // KeyD
        (0x21, 0x09), // KeyF
        (0x22, 0x0A), // KeyG
        (0x23, 0x0B), // KeyH
        (0x24, 0x0D), // KeyJ
        (0x25, 0x0E), // KeyK
        (0x26, 0x0F), // KeyL
        (0x27, 0x33), // Semicolon
        (0x28, 0x34), // Quote
        (0x29, 0x35), // Backquote
        (0x2A, 0xE1), // ShiftLeft
        (0x2B, 0x31), // Backslash
        (0x2C, 0x1D), // KeyZ
        (0x2D, 0x1B), // KeyX
        (0x2E, 0x06), // KeyC
        (0x2F, 0x19), // KeyV
        (0x30, 0x05), // KeyB
        (0x31, 0x11), // KeyN
        (0x32, 0x10), // KeyM
        (0x33, 0x36), // Comma
        (0x34, 0x37), // Period
        (0x35, 0x38), // Slash
        (0x36, 0xE5), // ShiftRight
        (0x37, 0x55), // NumpadMultiply
        (0x38, 0xE2), // AltLeft
        (0x39, 0x2C), // Space
        (0x3A, 0x39), // CapsLock
        (0x3B, 0x3A), // F1
        (0x3C, 0x3B), // F2
        (0x3D, 0x3C), // F3
        (0x3E, 0x3D), // F4
        (0x3F, 0x3E), // F5
        (0x40, 0x3F), // F6
        (0x41, 0x40), // F7
        (0x42, 0x41), // F8
        (0x43, 0x42), // F9
        (0x44, 0x43), // F10
        (0x45, 0x53), // NumLock
        (0x46, 0x47), // ScrollLock
        (0x47, 0x5F), // Numpad7
        (0x48, 0x60), // Numpad8
        (0x49, 0x61), // Numpad9
        (0x4A, 0x56), // NumpadSubtract
        (0x4B, 0x5C), // Numpad4
        (0x4C, 0x5D), // Numpad5
        (0x4D, 0x5E), // Numpad6
        (0x4E, 0x57), // NumpadAdd
        (0x4F, 0x59), // Numpad1
        (0x50, 0x5A), // Numpad2
        (0x51, 0x5B), // Numpad3
        (0x52, 0x62), // Numpad0
        (0x53, 0x63), // NumpadDecimal
        (0x54, 0x46), // PrintScreen (SysRq code)
        (0x55, 0x6B), // F16
        (0x56, 0x64), // IntlBackslash (the ISO key)
        (0x57, 0x44), // F11
        (0x58, 0x45), // F12
        (0x59, 0x67), // NumpadEqual
        (0x5A, 0x6F), // F20
        (0x5C, 0x8C), // International6 (Japanese keypad comma)
        (0x5D, 0x68), // F13
        (0x5E, 0x69), // F14
        (0x5F, 0x6A), // F15
        (0x64, 0x74), // Open (Execute)
        (0x65, 0x7D), // Paste
        (0x6D, 0x72), // F23
        (0x6F, 0x73), // F24
        (0x70, 0x88), // KanaMode (Katakana/Hiragana, International2)
        (0x71, 0x91), // Lang2 (Hanja)
        (0x72, 0x90), // Lang1 (Hangul)
        (0x73, 0x87), // IntlRo (International1)
        (0x74, 0x70), // F21
        (0x76, 0x94), // Lang5 (Zenkaku/Hankaku)
        (0x77, 0x93), // Lang4 (Hiragana)
        (0x78, 0x92), // Lang3 (Katakana)
        (0x79, 0x8A), // Convert (Henkan, International4)
        (0x7B, 0x8B), // NonConvert (Muhenkan, International5)
        (0x7D, 0x89), // IntlYen (International3)
        (0x7E, 0x85), // NumpadComma
        (0x83, 0x6C), // F17
        (0x84, 0x6E), // F19
        (0x85, 0x79), // Again
        (0x86, 0xA3), // Props (CrSel/Props)
        (0x87, 0x7A), // Undo
        (0x8C, 0x77), // Select (Linux KEY_FRONT)
        (0x9C, 0x58), // NumpadEnter
        (0x9D, 0xE4), // ControlRight
        (0x9E, 0x76), // Menu (Linux KEY_MENU)
        (0xA0, 0x7F), // AudioVolumeMute
        (0xAE, 0x81), // AudioVolumeDown
        (0xB0, 0x80), // AudioVolumeUp
        (0xB5, 0x54), // NumpadDivide
        (0xB7, 0x46), // PrintScreen (E0 37)
        (0xB8, 0xE6), // AltRight
        (0xBC, 0x7B), // Cut
        (0xC1, 0x7E), // Find
        (0xC6, 0x48), // Pause
        (0xC7, 0x4A), // Home
        (0xC8, 0x52), // ArrowUp
        (0xC9, 0x4B), // PageUp
        (0xCB, 0x50), // ArrowLeft
        (0xCD, 0x4F), // ArrowRight
        (0xCF, 0x4D), // End
        (0xD0, 0x51), // ArrowDown
        (0xD1, 0x4E), // PageDown
        (0xD2, 0x49), // Insert
        (0xD3, 0x4C), // Delete
        (0xDB, 0xE3), // MetaLeft
        (0xDC, 0xE7), // MetaRight
        (0xDD, 0x65), // ContextMenu (Application)
        (0xDE, 0x66), // Power
        (0xF5, 0x75), // Help
        (0xF6, 0xB6), // NumpadParenLeft
        (0xF7, 0x6D), // F18
        (0xF8, 0x7C), // Copy
        (0xF9, 0x71), // F22
        (0xFB, 0xB7), // NumpadParenRight
    ];

    #[test]
    fn every_xt_code_in_the_table_maps_to_its_usage() {
        for qnum in 0..0x200 {
            let expected = EXPECTED.iter().find(|&&(code, _)| code == qnum).map(|&(_, usage)| usage);
            assert_eq!(usage_for_qnum(qnum), expected, "qnum {qnum:#04x}");
        }
        assert_eq!(EXPECTED.len(), 148);
        // The unfolded form is not a qnum.
        assert_eq!(usage_for_qnum(0xE04D), None);
        assert_eq!(usage_for_qnum(u32::MAX), None);
    }

    #[test]
    fn qemu_numbering_wins_over_windows_scancodes() {
        // NumLock/Pause: Windows has them as E0 45 / 45.
        assert_eq!(usage_for_qnum(0x45), Some(0x53));
        assert_eq!(usage_for_qnum(0xC5), None);
        assert_eq!(usage_for_qnum(0xC6), Some(0x48));
        // Both PrintScreen codes.
        assert_eq!(usage_for_qnum(0x54), Some(0x46));
        assert_eq!(usage_for_qnum(0xB7), Some(0x46));
        // F13 is 5D for QEMU; Windows' F13 code 64 is QEMU's Open.
        assert_eq!(usage_for_qnum(0x5D), Some(0x68));
        assert_eq!(usage_for_qnum(0x64), Some(0x74));
        // Consumer-page keys have no boot-keyboard usage.
        assert_eq!(usage_for_qnum(0xA2), None, "MediaPlayPause");
        assert_eq!(usage_for_qnum(0xDF), None, "Sleep (generic desktop page)");
        assert_eq!(usage_for_qnum(0), None);
    }

    /// noVNC's generated DOM `code` -> XT table, installed by `npm ci --prefix tests/web`.
    const NOVNC_XTSCANCODES: &str = "tests/web/node_modules/@novnc/novnc/core/input/xtscancodes.js";

    /// Entries of xtscancodes.js: lines like `  "KeyA": 0x1e, /* ... */`.
    fn parse_xtscancodes(js: &str) -> Vec<(&str, u32)> {
        js.lines()
            .filter_map(|line| {
                let (name, rest) = line.trim().strip_prefix('"')?.split_once("\": 0x")?;
                let hex = rest.split(',').next()?;
                Some((name, u32::from_str_radix(hex, 16).ok()?))
            })
            .collect()
    }

    #[test]
    fn agrees_with_novnc_xtscancodes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(NOVNC_XTSCANCODES);
        let Ok(js) = std::fs::read_to_string(&path) else {
            let message = format!("{} is missing: run `npm ci --prefix tests/web`", path.display());
            if std::env::var_os("CI").is_some_and(|value| !value.is_empty()) {
                panic!("{message}");
            }
            eprintln!("SKIPPED: {message}");
            return;
        };
        let entries = parse_xtscancodes(&js);
        assert!(entries.len() > 150, "parsed only {} entries of {}", entries.len(), path.display());
        let mut checked = 0;
        for (code, xt) in entries {
            // noVNC also lists a few pre-standard names (Hiragana, Katakana) that Chrome does
            // not know; their standard names (Lang4, Lang3) are listed too.
            let Ok(dom_code) = KeyMappingCode::from_str(code) else { continue };
            let key = KeyMap::from_key_mapping(KeyMapping::Code(Some(dom_code)))
                .unwrap_or_else(|()| panic!("keycode knows the DOM code {code} but has no key for it"));
            let on_keyboard_page = KeyMap::from_usb_code(KEYBOARD_PAGE, key.usb).is_ok_and(|found| found.id == key.id);
            if !on_keyboard_page || key.usb > 0xFF {
                continue;
            }
            let qnum = if xt & 0xFF00 == 0xE000 { 0x80 | (xt & 0x7F) } else { xt };
            assert_eq!(usage_for_qnum(qnum), Some(key.usb as u8), "{code}: XT {xt:#06x}, qnum {qnum:#04x}");
            checked += 1;
        }
        assert!(checked > 130, "only {checked} page-7 keys checked");
    }
}
