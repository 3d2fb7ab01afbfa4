//! Key combinations named in words, for the control interface: `ctrl+alt+delete`,
//! `alt+sysrq+b`, `ctrl+alt+f2`. Each name is an alias below, an X11 keysym name
//! (`Prior`, `KP_Enter`, `F11`, any case), or a single character.

use xkbcommon::xkb;

use super::keymap::xk as keysym;

/// The most keys one combination may hold at once (a boot keyboard reports six plus modifiers).
const MAX_KEYS: usize = 8;

/// The keysyms to press in order (and release in reverse).
pub fn parse(spec: &str) -> Result<Vec<u32>, String> {
    let names: Vec<&str> = spec.split('+').map(str::trim).collect();
    if names.iter().any(|name| name.is_empty()) {
        return Err(format!("{spec:?} is not a key combination like ctrl+alt+delete"));
    }
    if names.len() > MAX_KEYS {
        return Err(format!("{spec:?} holds more than {MAX_KEYS} keys at once"));
    }
    names.iter().map(|name| named(name).ok_or_else(|| format!("no key is called {name:?} (in {spec:?})"))).collect()
}

fn named(name: &str) -> Option<u32> {
    let alias = match name.to_ascii_lowercase().as_str() {
        "ctrl" | "control" => Some(keysym::CONTROL_L),
        "alt" => Some(keysym::ALT_L),
        "shift" => Some(keysym::SHIFT_L),
        "altgr" => Some(keysym::ISO_LEVEL3_SHIFT),
        "super" | "win" | "meta" | "cmd" => Some(keysym::SUPER_L),
        "del" | "delete" => Some(keysym::DELETE),
        "esc" | "escape" => Some(keysym::ESCAPE),
        "enter" | "return" => Some(keysym::RETURN),
        "tab" => Some(keysym::TAB),
        "space" => Some(u32::from(b' ')),
        "backspace" => Some(keysym::BACKSPACE),
        // SysRq is the Print Screen key pressed with Alt: the target sees that key.
        "sysrq" | "print" | "printscreen" => Some(keysym::PRINT),
        "pgup" | "pageup" => Some(keysym::PAGE_UP),
        "pgdn" | "pagedown" => Some(keysym::PAGE_DOWN),
        "ins" | "insert" => Some(keysym::INSERT),
        _ => None,
    };
    alias.or_else(|| {
        let mut chars = name.chars();
        match (chars.next(), chars.next()) {
            // One character: its keysym, lower case for letters (ctrl+c, not ctrl+shift+c).
            (Some(c), None) if c.is_ascii() => Some(u32::from(c.to_ascii_lowercase())),
            _ => {
                let found = xkb::keysym_from_name(name, xkb::KEYSYM_CASE_INSENSITIVE).raw();
                (found != 0).then_some(found)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_and_keysym_names() {
        assert_eq!(parse("ctrl+alt+delete").unwrap(), [keysym::CONTROL_L, keysym::ALT_L, keysym::DELETE]);
        assert_eq!(parse("Alt + SysRq + B").unwrap(), [keysym::ALT_L, keysym::PRINT, u32::from(b'b')]);
        assert_eq!(parse("ctrl+alt+F2").unwrap()[2], 0xFFBF);
        assert_eq!(parse("KP_Enter").unwrap(), [keysym::KP_ENTER]);
        assert!(parse("ctrl+").is_err());
        assert!(parse("ctrl+nosuchkey").unwrap_err().contains("nosuchkey"));
        assert!(parse(&["a"; 9].join("+")).is_err());
    }
}
