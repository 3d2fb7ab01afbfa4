//! The target's keyboard layout: which key (a USB HID usage, i.e. a key *position*), with or
//! without Shift and AltGr, types a given X11 keysym.
//!
//! Viewers that send only keysyms (characters) leave it to us to find the key; the target's OS
//! then turns the position back into a character with *its* layout, so the table must be the
//! target's layout, not the viewer's. `us` is built in (from [`keymap`]'s tables); every other
//! layout is compiled from xkeyboard-config by libxkbcommon and reverse-mapped like QEMU's
//! qemu-keymap tool does it:
//!
//! - Every key of layout (group) 0 and each of its shift levels is a candidate for the keysym on
//!   that level. XKB keycode − 8 is the evdev code, and the `keycode` crate's page-7 table turns
//!   that into a USB usage; keys without a usage (virtual keys such as `<LVL3>`) are skipped.
//! - The modifiers a level needs come from the key type (`key_get_mods_for_level`). Only Shift
//!   and Mod5 (LevelThree, i.e. AltGr, sent as Right Alt 0xE6) may be pressed for it; levels that
//!   need anything else (Control, Alt, Lock, Mod3 ...) are skipped. Num Lock (Mod2) is never
//!   pressed or faked: it is the target's state, so a keypad level that needs it counts as plain
//!   and `KP_7` is simply the keypad 7 key (no fake Shift on keypad keys, as in TigerVNC).
//! - When several keys type the same keysym the best one wins, compared in this order:
//!   1. without AltGr before with AltGr (fewer and more portable modifiers);
//!   2. main-block keys before the "extra" keys that not every keyboard has or every OS agrees
//!      on (the ISO key 0x64, the JIS keys 0x87–0x8B, the LANG keys), before keypad keys (whose
//!      meaning depends on Num Lock). So `<` on `us` is Shift+comma, not the ISO key that
//!      xkeyboard-config's pc105 also gives it, and `|` on `gb` is Shift+ISO key (what Windows
//!      and Linux agree on), not AltGr+grave;
//!   3. the layout's own AltGr symbols before those it merely inherits from xkeyboard-config's
//!      generic `latin` symbols (AltGr+7 8 9 0 = { [ ] } ...), which the targets' own layouts
//!      (Windows, macOS) mostly lack: `[` on `it` is AltGr+è, `]` on `ch` AltGr+¨, `\` on `es`
//!      AltGr+º, as printed on those keyboards;
//!   4. without Shift before with Shift;
//!   5. keys other than the 26 letter keys, for the same reason (xkb's AltGr extras sit mostly
//!      on letters): `@` on `fr` is AltGr+à (0x27), not xkb's extra AltGr+Q;
//!   6. the lower usage.
//! - Keys that are not characters (Return, F1, arrows, keypad, modifiers, locks ...) are the same
//!   positions on every layout: the built-in table fills in those the compiled layout lacks.
//!   xkeyboard-config gives the F13–F24 keys XF86 keysyms and puts `Alt_R` nowhere on layouts
//!   with AltGr, yet viewers send `F13` and `Alt_R`.
//! - Dead keys are what the layout produces: on `de`, `^` is `dead_circumflex`, so the keysym
//!   `asciicircum` has no key there (use `de(nodeadkeys)`), while `dead_circumflex` has one.
//!
//! A character has a legacy keysym (`adiaeresis` = 0xE4) and a Unicode one (0x0100_00E4);
//! viewers send either, xkeyboard-config mostly uses the legacy ones, so keysyms that stand for
//! a character are also looked up by their code point.

use std::collections::{HashMap, HashSet};
use std::fmt;

use keycode::KeyMap;
use xkbcommon::xkb;

use crate::hid::keymap::{self, usage};

/// How to type one keysym on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStroke {
    /// The key, a HID usage on page 7.
    pub usage: u8,
    /// Shift must be held for it.
    pub shift: bool,
    /// AltGr (Right Alt, usage 0xE6) must be held for it.
    pub altgr: bool,
    /// Caps Lock on the target flips Shift for it, so the sender must flip [`Self::shift`] while
    /// the target's Caps Lock LED is on. True when, with Caps Lock locked, the key gives this
    /// keysym with Shift flipped and not without (letters, on the levels Caps Lock affects).
    pub caps_sensitive: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "invalid keyboard layout name {name:?}: expected an XKB layout, optionally with a variant, e.g. \"de\" or \"de(nodeadkeys)\""
    )]
    InvalidName { name: String },
    #[error(
        "no XKB keyboard data found (searched: {searched}); install xkb-data (and libxkbcommon0) to use keyboard layout {name:?}"
    )]
    NoXkbData { name: String, searched: String },
    #[error(
        "unknown keyboard layout {name:?}: libxkbcommon could not compile it from xkeyboard-config; is xkb-data installed and is it one of its layouts (see /usr/share/X11/xkb/rules/evdev.lst)?"
    )]
    UnknownLayout { name: String },
}

/// A target keyboard layout: keysym → [`KeyStroke`].
#[derive(Clone)]
pub struct Layout {
    name: String,
    by_keysym: HashMap<u32, KeyStroke>,
    /// Strokes of character keysyms by Unicode code point, for the other spelling of a keysym.
    by_char: HashMap<u32, KeyStroke>,
}

impl fmt::Debug for Layout {
    // The tables are hundreds of entries; a name is what a log line wants.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layout").field("name", &self.name).field("keysyms", &self.by_keysym.len()).finish()
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::us()
    }
}

/// Keysyms 0x0100_0000 + code point are the Unicode form of a character.
const UNICODE_KEYSYM_BASE: u32 = 0x0100_0000;
const UNICODE_KEYSYM_LAST: u32 = UNICODE_KEYSYM_BASE + 0x10_FFFF;
/// Function, keypad, modifier and dead keysyms live here; some of them map to a code point
/// (`KP_7` → '7', `Return` → CR) but they name keys, not characters.
const FUNCTION_KEYSYMS: std::ops::RangeInclusive<u32> = 0xFE00..=0xFFFF;

impl Layout {
    /// The US layout, built in: needs no libxkbcommon or xkb-data.
    pub fn us() -> Layout {
        let mut builder = Builder::default();
        for keysym in (0x20..=0x7E).chain(FUNCTION_KEYSYMS) {
            if let Some(stroke) = builtin_stroke(keysym) {
                // One key per keysym in the built-in table: the rank does not matter.
                builder.offer(keysym, stroke, Rank::of(stroke));
            }
        }
        builder.finish("us")
    }

    /// A layout by its XKB name, `layout` or `layout(variant)`: "us", "de", "de(nodeadkeys)",
    /// "fr", "gb", "us(dvorak)", "ru", "jp" ... "us" is the built-in one; the others are compiled
    /// by libxkbcommon from xkeyboard-config (the xkb-data package).
    pub fn load(name: &str) -> Result<Layout, LayoutError> {
        let name = name.trim();
        if name == "us" {
            return Ok(Self::us());
        }
        let (layout, variant) = parse_name(name).ok_or_else(|| LayoutError::InvalidName { name: name.to_owned() })?;
        Self::compile(name, layout, variant)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How to type `keysym`, or `None` if no key of this layout types it.
    pub fn stroke(&self, keysym: u32) -> Option<KeyStroke> {
        self.by_keysym.get(&keysym).or_else(|| self.by_char.get(&char_of(keysym)?)).copied()
    }

    fn compile(name: &str, layout: &str, variant: &str) -> Result<Layout, LayoutError> {
        // No RMLVO from XKB_DEFAULT_* variables: the layout is the one asked for, nothing else.
        let mut context = xkb::Context::new(xkb::CONTEXT_NO_ENVIRONMENT_NAMES);
        // libxkbcommon refuses to create a context when none of its include directories exist,
        // i.e. xkb-data is not installed; the crate then holds a null pointer we must not use.
        if context.get_raw_ptr().is_null() {
            return Err(LayoutError::NoXkbData {
                name: name.to_owned(),
                searched: "libxkbcommon's default paths, /usr/share/X11/xkb on Debian".to_owned(),
            });
        }
        // Its own messages would go to stderr around our logs; the error we return says it all.
        context.set_log_level(xkb::LogLevel::Critical);
        // Directories that exist but hold no rules would only give a misleading "unknown layout".
        if !context.include_paths().any(|path| path.join("rules").join("evdev").is_file()) {
            let searched: Vec<_> = context.include_paths().map(|path| path.display().to_string()).collect();
            return Err(LayoutError::NoXkbData { name: name.to_owned(), searched: searched.join(", ") });
        }
        // evdev rules: keycodes are evdev codes + 8. pc105: the ISO key exists. No options, so
        // no Caps Lock or AltGr remapping sneaks in.
        let keymap = xkb::Keymap::new_from_names(
            &context,
            "evdev",
            "pc105",
            layout,
            variant,
            Some(String::new()),
            xkb::KEYMAP_COMPILE_NO_FLAGS,
        )
        .ok_or_else(|| LayoutError::UnknownLayout { name: name.to_owned() })?;
        // What most layouts build on; without it (it always exists in xkb-data) only the
        // tie-break between equally good keys is lost.
        let latin = xkb::Keymap::new_from_names(
            &context,
            "evdev",
            "pc105",
            "latin",
            "",
            Some(String::new()),
            xkb::KEYMAP_COMPILE_NO_FLAGS,
        );
        let generic = latin.map(|latin| level_keysyms(&latin)).unwrap_or_default();
        Ok(reverse_map(&keymap, &generic, name))
    }
}

/// Splits "layout" or "layout(variant)"; XKB names are ASCII letters, digits, '_' and '-'.
fn parse_name(name: &str) -> Option<(&str, &str)> {
    let (layout, variant) = match name.strip_suffix(')') {
        Some(rest) => {
            let (layout, variant) = rest.split_once('(')?;
            (layout, Some(variant))
        }
        None => (name, None),
    };
    let is_xkb_name = |part: &str| {
        !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    };
    (is_xkb_name(layout) && variant.is_none_or(is_xkb_name)).then_some((layout, variant.unwrap_or("")))
}

/// The code point a keysym stands for, if it stands for a (printable) character.
fn char_of(keysym: u32) -> Option<u32> {
    let code_point = if (UNICODE_KEYSYM_BASE..=UNICODE_KEYSYM_LAST).contains(&keysym) {
        keysym - UNICODE_KEYSYM_BASE
    } else if FUNCTION_KEYSYMS.contains(&keysym) {
        return None;
    } else {
        xkb::keysym_to_utf32(keysym.into())
    };
    // Control characters are keys (Return, Tab ...), found by their keysyms, never by code point.
    char::from_u32(code_point).filter(|c| !c.is_control()).map(u32::from)
}

/// The built-in US table: [`keymap`].
fn builtin_stroke(keysym: u32) -> Option<KeyStroke> {
    let key = keymap::keysym_to_usage(keysym)?;
    // As the router has always treated them: Caps Lock flips the letters.
    let caps_sensitive = usage::is_letter(key.usage);
    Some(KeyStroke { usage: key.usage, shift: key.shift, altgr: false, caps_sensitive })
}

/// How good a key is for a keysym; smaller is better (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    altgr: bool,
    place: Place,
    /// An AltGr level that only repeats the generic `latin` symbols.
    generic: bool,
    shift: bool,
    letter_key: bool,
    usage: u8,
}

impl Rank {
    fn of(stroke: KeyStroke) -> Rank {
        Rank {
            altgr: stroke.altgr,
            place: Place::of(stroke.usage),
            generic: false,
            shift: stroke.shift,
            letter_key: usage::is_letter(stroke.usage),
            usage: stroke.usage,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Main,
    /// Keys only some keyboards have, or that OSes map differently.
    Extra,
    Keypad,
}

impl Place {
    fn of(usage: u8) -> Place {
        match usage {
            // Keypad / ... Keypad . (0x54–0x63), Keypad = (0x67), Keypad , and = (0x85, 0x86),
            // Keypad 00 ... Keypad Hexadecimal (0xB0–0xDD).
            0x54..=0x63 | 0x67 | 0x85 | 0x86 | 0xB0..=0xDD => Place::Keypad,
            // Non-US \ and | (the ISO key), International1–5 (JIS), LANG1–9.
            0x64 | 0x87..=0x8B | 0x90..=0x98 => Place::Extra,
            _ => Place::Main,
        }
    }
}

/// Collects candidate keys and keeps the best per keysym and per character.
#[derive(Default)]
struct Builder {
    by_keysym: HashMap<u32, (Rank, KeyStroke)>,
    by_char: HashMap<u32, (Rank, KeyStroke)>,
}

impl Builder {
    fn offer(&mut self, keysym: u32, stroke: KeyStroke, rank: Rank) {
        keep_best(&mut self.by_keysym, keysym, rank, stroke);
        if let Some(code_point) = char_of(keysym) {
            keep_best(&mut self.by_char, code_point, rank, stroke);
        }
    }

    fn finish(self, name: &str) -> Layout {
        let strip =
            |map: HashMap<u32, (Rank, KeyStroke)>| map.into_iter().map(|(k, (_, stroke))| (k, stroke)).collect();
        Layout { name: name.to_owned(), by_keysym: strip(self.by_keysym), by_char: strip(self.by_char) }
    }
}

fn keep_best(map: &mut HashMap<u32, (Rank, KeyStroke)>, key: u32, rank: Rank, stroke: KeyStroke) {
    let entry = map.entry(key).or_insert((rank, stroke));
    if rank < entry.0 {
        *entry = (rank, stroke);
    }
}

/// Evdev code → page-7 usage, from the `keycode` crate. Built from the usage side because its
/// evdev lookup does not say which usage page it found: evdev 119 (Pause) is both the keyboard
/// page's Pause and the consumer page's Pause.
fn evdev_usages() -> HashMap<u16, u8> {
    const KEYBOARD_PAGE: u16 = 0x07;
    (0..=u8::MAX)
        .filter_map(|usage| {
            let key = KeyMap::from_usb_code(KEYBOARD_PAGE, u16::from(usage)).ok()?;
            // Evdev 0 marks usages Linux has no key code for.
            (key.evdev != 0).then_some((key.evdev, usage))
        })
        .collect()
}

/// The real-modifier masks the reverse mapping cares about, by their fixed XKB names.
struct Mods {
    shift: xkb::ModMask,
    lock: xkb::ModMask,
    num_lock: xkb::ModMask,
    level3: xkb::ModMask,
}

impl Mods {
    fn of(keymap: &xkb::Keymap) -> Mods {
        let mask = |name| match keymap.mod_get_index(name) {
            xkb::MOD_INVALID => 0,
            index => 1u32.checked_shl(index).unwrap_or(0),
        };
        Mods {
            shift: mask(xkb::MOD_NAME_SHIFT),
            lock: mask(xkb::MOD_NAME_CAPS),
            num_lock: mask(xkb::MOD_NAME_NUM),
            level3: mask(xkb::MOD_NAME_ISO_LEVEL3_SHIFT),
        }
    }

    /// The Shift/AltGr combination to press for a level reachable by `mask`, or `None` if it
    /// needs another modifier. Num Lock is the target's business (see the module docs).
    fn pressable(&self, mask: xkb::ModMask) -> Option<(bool, bool)> {
        let mask = mask & !self.num_lock;
        (mask & !(self.shift | self.level3) == 0).then_some((mask & self.shift != 0, mask & self.level3 != 0))
    }

    fn mask(&self, shift: bool, altgr: bool) -> xkb::ModMask {
        (if shift { self.shift } else { 0 }) | (if altgr { self.level3 } else { 0 })
    }
}

const LAYOUT: xkb::LayoutIndex = 0;

/// Every (keycode, level, keysym) of a keymap's layout 0.
fn level_keysyms(keymap: &xkb::Keymap) -> HashSet<(u32, xkb::LevelIndex, u32)> {
    let mut keysyms = HashSet::new();
    keymap.key_for_each(|keymap, keycode| {
        for level in 0..keymap.num_levels_for_key(keycode, LAYOUT) {
            for keysym in keymap.key_get_syms_by_level(keycode, LAYOUT, level) {
                keysyms.insert((keycode.raw(), level, keysym.raw()));
            }
        }
    });
    keysyms
}

/// `keymap` turned around; `generic` holds the levels of the `latin` symbols (see [`Rank`]).
fn reverse_map(keymap: &xkb::Keymap, generic: &HashSet<(u32, xkb::LevelIndex, u32)>, name: &str) -> Layout {
    let usages = evdev_usages();
    let mods = Mods::of(keymap);
    // Only used to ask what a key types with Caps Lock locked.
    let mut state = xkb::State::new(keymap);
    let mut builder = Builder::default();
    let mut masks = [0; 32];
    keymap.key_for_each(|keymap, keycode| {
        let usage = u16::try_from(keycode.raw().wrapping_sub(8)).ok().and_then(|evdev| usages.get(&evdev).copied());
        let Some(usage) = usage else { return };
        if keymap.num_layouts_for_key(keycode) == 0 {
            return;
        }
        for level in 0..keymap.num_levels_for_key(keycode, LAYOUT) {
            // A level may carry several keysyms at once (rare); no single keysym names it then.
            let &[keysym] = keymap.key_get_syms_by_level(keycode, LAYOUT, level) else { continue };
            let keysym = keysym.raw();
            if keysym == 0 {
                continue;
            }
            let count = keymap.key_get_mods_for_level(keycode, LAYOUT, level, &mut masks);
            let Some((shift, altgr)) = masks
                .iter()
                .take(count)
                .filter_map(|&mask| mods.pressable(mask))
                .min_by_key(|&(shift, altgr)| (altgr, shift))
            else {
                continue;
            };
            let mask = mods.mask(shift, altgr);
            let mut types_with_caps_lock = |mask| {
                state.update_mask(mask, 0, mods.lock, 0, 0, 0);
                state.key_get_one_sym(keycode).raw() == keysym
            };
            let caps_sensitive = !types_with_caps_lock(mask) && types_with_caps_lock(mask ^ mods.shift);
            let stroke = KeyStroke { usage, shift, altgr, caps_sensitive };
            let generic = altgr && generic.contains(&(keycode.raw(), level, keysym));
            builder.offer(keysym, stroke, Rank { generic, ..Rank::of(stroke) });
        }
    });
    // Non-character keys sit at the same positions on every layout; fill in what xkb lacks.
    for keysym in FUNCTION_KEYSYMS {
        if !builder.by_keysym.contains_key(&keysym)
            && let Some(stroke) = builtin_stroke(keysym)
        {
            builder.offer(keysym, stroke, Rank::of(stroke));
        }
    }
    builder.finish(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn key(usage: u8, shift: bool, altgr: bool) -> Option<(u8, bool, bool)> {
        Some((usage, shift, altgr))
    }

    fn plain(usage: u8) -> Option<(u8, bool, bool)> {
        key(usage, false, false)
    }

    fn shifted(usage: u8) -> Option<(u8, bool, bool)> {
        key(usage, true, false)
    }

    fn altgr(usage: u8) -> Option<(u8, bool, bool)> {
        key(usage, false, true)
    }

    fn typed(layout: &Layout, keysym: u32) -> Option<(u8, bool, bool)> {
        layout.stroke(keysym).map(|stroke| (stroke.usage, stroke.shift, stroke.altgr))
    }

    fn load(name: &str) -> Layout {
        Layout::load(name).unwrap_or_else(|error| panic!("{error}"))
    }

    fn xkb_us() -> Layout {
        Layout::compile("us", "us", "").unwrap()
    }

    #[test]
    fn us_is_built_in() {
        let layout = load("us");
        assert_eq!(layout.name(), "us");
        assert_eq!(typed(&layout, u32::from(b'a')), plain(0x04));
        assert_eq!(typed(&Layout::default(), u32::from(b'A')), shifted(0x04));
    }

    #[test]
    fn built_in_us_matches_xkeyboard_config_for_printable_ascii() {
        let (builtin, compiled) = (Layout::us(), xkb_us());
        for keysym in 0x20..=0x7E {
            let stroke = builtin.stroke(keysym);
            assert!(stroke.is_some(), "{:?}", char::from_u32(keysym));
            assert_eq!(stroke, compiled.stroke(keysym), "{:?}", char::from_u32(keysym));
        }
    }

    /// Every printable ASCII character on plain `de`, reviewed against xkeyboard-config's
    /// symbols/de: Y and Z swapped, AltGr for @ [ ] { } \ | ~, the ISO key for < > |. `^`, `` ` ``
    /// (and ´) are dead keys there, so the keysyms `asciicircum` and `grave` have no key: the
    /// target would wait for a second key. `de(nodeadkeys)` has them.
    #[test]
    fn de_printable_ascii() {
        let layout = load("de");
        let symbols = [
            (' ', plain(0x2C)),
            ('!', shifted(0x1E)),
            ('"', shifted(0x1F)),
            ('#', plain(0x31)),
            ('$', shifted(0x21)),
            ('%', shifted(0x22)),
            ('&', shifted(0x23)),
            ('\'', shifted(0x31)),
            ('(', shifted(0x25)),
            (')', shifted(0x26)),
            ('*', shifted(0x30)),
            ('+', plain(0x30)),
            (',', plain(0x36)),
            ('-', plain(0x38)),
            ('.', plain(0x37)),
            ('/', shifted(0x24)),
            (':', shifted(0x37)),
            (';', shifted(0x36)),
            ('<', plain(0x64)),
            ('=', shifted(0x27)),
            ('>', shifted(0x64)),
            ('?', shifted(0x2D)),
            ('@', altgr(0x14)),
            ('[', altgr(0x25)),
            ('\\', altgr(0x2D)),
            (']', altgr(0x26)),
            ('^', None),
            ('_', shifted(0x38)),
            ('`', None),
            ('{', altgr(0x24)),
            ('|', altgr(0x64)),
            ('}', altgr(0x27)),
            ('~', altgr(0x30)),
        ];
        let mut expected: HashMap<char, Option<(u8, bool, bool)>> = symbols.into_iter().collect();
        for (index, digit) in ('1'..='9').enumerate() {
            expected.insert(digit, plain(0x1E + index as u8));
        }
        expected.insert('0', plain(0x27));
        for letter in 'a'..='z' {
            let us_usage = 0x04 + (letter as u8 - b'a');
            // QWERTZ: the Y and Z keys trade places.
            let usage = match letter {
                'y' => 0x1D,
                'z' => 0x1C,
                _ => us_usage,
            };
            expected.insert(letter, plain(usage));
            expected.insert(letter.to_ascii_uppercase(), shifted(usage));
        }
        assert_eq!(expected.len(), 95);
        for keysym in 0x20..=0x7Eu32 {
            let character = char::from_u32(keysym).unwrap();
            assert_eq!(typed(&layout, keysym), expected[&character], "{character:?}");
            let caps_sensitive = layout.stroke(keysym).is_some_and(|stroke| stroke.caps_sensitive);
            assert_eq!(caps_sensitive, character.is_ascii_alphabetic(), "{character:?}");
        }
    }

    #[test]
    fn de_dead_keys_and_nodeadkeys() {
        let dead = load("de");
        const DEAD_CIRCUMFLEX: u32 = 0xFE52;
        const DEAD_GRAVE: u32 = 0xFE50;
        assert_eq!(typed(&dead, DEAD_CIRCUMFLEX), plain(0x35));
        assert_eq!(typed(&dead, DEAD_GRAVE), shifted(0x2E));
        let nodead = load("de(nodeadkeys)");
        assert_eq!(nodead.name(), "de(nodeadkeys)");
        assert_eq!(typed(&nodead, u32::from(b'^')), plain(0x35));
        assert_eq!(typed(&nodead, u32::from(b'`')), shifted(0x2E));
        assert_eq!(typed(&nodead, u32::from(b'z')), plain(0x1C));
    }

    #[test]
    fn de_umlauts_euro_and_unicode_keysyms() {
        let layout = load("de");
        // udiaeresis / Udiaeresis, legacy and Unicode keysyms.
        assert_eq!(typed(&layout, 0xFC), plain(0x2F));
        assert_eq!(typed(&layout, 0x0100_00FC), plain(0x2F));
        assert_eq!(typed(&layout, 0x0100_00DC), shifted(0x2F));
        assert!(layout.stroke(0xFC).is_some_and(|stroke| stroke.caps_sensitive));
        // ssharp: Caps Lock gives ẞ there, Shift+Caps Lock '?': no Shift flip helps.
        assert_eq!(typed(&layout, 0xDF), plain(0x2D));
        assert!(layout.stroke(0xDF).is_some_and(|stroke| !stroke.caps_sensitive));
        // EuroSign is 0x20AC; U+20AC as a Unicode keysym must find it too.
        assert_eq!(typed(&layout, 0x20AC), altgr(0x08));
        assert_eq!(typed(&layout, 0x0100_20AC), altgr(0x08));
        assert_eq!(typed(&layout, 0x0100_0041), shifted(0x04));
        assert_eq!(typed(&layout, 0x0100_005A), shifted(0x1C));
        // AltGr levels of letter keys are not flipped by Caps Lock on xkb's semi-alphabetic keys.
        assert!(layout.stroke(u32::from(b'@')).is_some_and(|stroke| !stroke.caps_sensitive));
        assert_eq!(Layout::us().stroke(0x20AC), None);
        assert_eq!(xkb_us().stroke(0x0100_20AC), None);
    }

    #[test]
    fn fr_azerty() {
        let layout = load("fr");
        assert_eq!(typed(&layout, u32::from(b'a')), plain(0x14));
        assert_eq!(typed(&layout, u32::from(b'Q')), shifted(0x04));
        assert_eq!(typed(&layout, u32::from(b'z')), plain(0x1A));
        assert_eq!(typed(&layout, u32::from(b'w')), plain(0x1D));
        assert_eq!(typed(&layout, u32::from(b'm')), plain(0x33));
        assert_eq!(typed(&layout, u32::from(b'&')), plain(0x1E));
        assert_eq!(typed(&layout, u32::from(b'1')), shifted(0x1E));
        assert_eq!(typed(&layout, u32::from(b'@')), altgr(0x27));
        // eacute, legacy and Unicode.
        assert_eq!(typed(&layout, 0xE9), plain(0x1F));
        assert_eq!(typed(&layout, 0x0100_00E9), plain(0x1F));
        assert!(layout.stroke(u32::from(b'a')).is_some_and(|stroke| stroke.caps_sensitive));
        assert!(layout.stroke(u32::from(b'1')).is_some_and(|stroke| !stroke.caps_sensitive));
    }

    #[test]
    fn other_layouts() {
        let gb = load("gb");
        assert_eq!(typed(&gb, u32::from(b'"')), shifted(0x1F));
        assert_eq!(typed(&gb, u32::from(b'#')), plain(0x31));
        assert_eq!(typed(&gb, u32::from(b'\\')), plain(0x64));
        // Shift+ISO key, which Windows agrees with, rather than xkb's extra AltGr+grave.
        assert_eq!(typed(&gb, u32::from(b'|')), shifted(0x64));
        let dvorak = load("us(dvorak)");
        assert_eq!(typed(&dvorak, u32::from(b'a')), plain(0x04));
        assert_eq!(typed(&dvorak, u32::from(b'o')), plain(0x16));
        assert_eq!(typed(&dvorak, u32::from(b'\'')), plain(0x14));
        let ru = load("ru");
        // Cyrillic_a (legacy 0x6C1, U+0430) is on the US F key.
        assert_eq!(typed(&ru, 0x06C1), plain(0x09));
        assert_eq!(typed(&ru, 0x0100_0430), plain(0x09));
        assert_eq!(typed(&ru, 0x0100_0410), shifted(0x09));
        for name in ["es", "it", "jp"] {
            let layout = load(name);
            assert_eq!(layout.name(), name);
            assert_eq!(typed(&layout, u32::from(b'q')), plain(0x14), "{name}");
        }
        let es = load("es");
        assert_eq!(typed(&es, 0xF1), plain(0x33)); // ntilde
        // The layouts' own AltGr symbols, not the generic `latin` AltGr+8 / AltGr+'.
        assert_eq!(typed(&es, u32::from(b'[')), altgr(0x2F));
        assert_eq!(typed(&es, u32::from(b'\\')), altgr(0x35));
        let it = load("it");
        assert_eq!(typed(&it, u32::from(b'[')), altgr(0x2F));
        assert_eq!(typed(&it, u32::from(b'{')), key(0x2F, true, true));
        assert_eq!(typed(&load("ch"), u32::from(b'}')), altgr(0x31));
        // JIS: '_' is Shift+Ro (International1).
        assert_eq!(typed(&load("jp"), u32::from(b'_')), shifted(0x87));
    }

    /// Keys that are not characters work on every layout, including F13–F24 and the modifiers
    /// xkeyboard-config puts elsewhere or nowhere (Alt_R on AltGr layouts).
    #[test]
    fn non_character_keys_on_every_layout() {
        let keys = [
            (0xFF0D, plain(0x28)),   // Return
            (0xFF1B, plain(0x29)),   // Escape
            (0xFF08, plain(0x2A)),   // BackSpace
            (0xFF09, plain(0x2B)),   // Tab
            (0xFE20, shifted(0x2B)), // ISO_Left_Tab
            (0xFFFF, plain(0x4C)),   // Delete
            (0xFF63, plain(0x49)),   // Insert
            (0xFF50, plain(0x4A)),   // Home
            (0xFF57, plain(0x4D)),   // End
            (0xFF55, plain(0x4B)),   // Prior
            (0xFF56, plain(0x4E)),   // Next
            (0xFF51, plain(0x50)),   // Left
            (0xFF52, plain(0x52)),   // Up
            (0xFF53, plain(0x4F)),   // Right
            (0xFF54, plain(0x51)),   // Down
            (0xFF61, plain(0x46)),   // Print
            (0xFF13, plain(0x48)),   // Pause
            (0xFF14, plain(0x47)),   // Scroll_Lock
            (0xFFE5, plain(0x39)),   // Caps_Lock
            (0xFF7F, plain(0x53)),   // Num_Lock
            (0xFF67, plain(0x65)),   // Menu
            (0xFF8D, plain(0x58)),   // KP_Enter
            (0xFFAF, plain(0x54)),   // KP_Divide
            (0xFFAA, plain(0x55)),   // KP_Multiply
            (0xFFAD, plain(0x56)),   // KP_Subtract
            (0xFFAB, plain(0x57)),   // KP_Add
            (0xFFB1, plain(0x59)),   // KP_1
            (0xFFB7, plain(0x5F)),   // KP_7
            (0xFFB0, plain(0x62)),   // KP_0
            (0xFFE1, plain(0xE1)),   // Shift_L
            (0xFFE2, plain(0xE5)),   // Shift_R
            (0xFFE3, plain(0xE0)),   // Control_L
            (0xFFE4, plain(0xE4)),   // Control_R
            (0xFFE9, plain(0xE2)),   // Alt_L
            (0xFFEA, plain(0xE6)),   // Alt_R
            (0xFE03, plain(0xE6)),   // ISO_Level3_Shift
            (0xFFEB, plain(0xE3)),   // Super_L
            (0xFFEC, plain(0xE7)),   // Super_R
        ];
        let function_keys = (0..24).map(|n| {
            let usage = if n < 12 { 0x3A + n } else { 0x68 + (n - 12) };
            (0xFFBE + u32::from(n), plain(usage))
        });
        let keys: Vec<_> = keys.into_iter().chain(function_keys).collect();
        for layout in [Layout::us(), xkb_us(), load("de"), load("fr"), load("jp"), load("ru")] {
            for &(keysym, mut expected) in &keys {
                if layout.name() == "jp" && keysym == 0xFFE5 {
                    // The JIS Caps Lock key is Eisu_toggle; Shift+Eisu is Caps Lock (also on
                    // Windows).
                    expected = shifted(0x39);
                }
                assert_eq!(typed(&layout, keysym), expected, "{} {keysym:#x}", layout.name());
                assert!(layout.stroke(keysym).is_some_and(|stroke| !stroke.caps_sensitive));
            }
            // Unknown and unmapped keysyms.
            assert_eq!(layout.stroke(0), None);
            assert_eq!(layout.stroke(0xFFFF_FFFF), None);
            assert_eq!(layout.stroke(0x0100_000D), None);
        }
    }

    #[test]
    fn bad_names_are_clear_errors() {
        for name in ["", "de(", "de()", "(de)", "us,de", "de nodeadkeys", "de\0"] {
            assert!(matches!(Layout::load(name), Err(LayoutError::InvalidName { .. })), "{name:?}");
        }
        for name in ["xx", "de(nosuchvariant)"] {
            let error = Layout::load(name).unwrap_err();
            assert!(matches!(error, LayoutError::UnknownLayout { .. }), "{name}: {error}");
            let message = error.to_string();
            assert!(message.contains(name) && message.contains("xkb-data"), "{message}");
        }
    }
}
