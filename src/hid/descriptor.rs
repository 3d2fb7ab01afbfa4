//! The USB HID functions kvnc presents to the target: report descriptors and interface
//! classes. This is the device contract; the gadget set-up, the report writers, the demo target
//! and the tests (lab and firmware) all take it from here.
//!
//! Every report is boot-protocol compatible and has no report ID: f_hid takes SET_PROTOCOL(BOOT)
//! from firmware without telling userspace, so the same bytes must be right in both protocols
//! (hardware.md §4). Descriptors after PiKVM's kvmd (keyboard.py, mouse.py).

/// One HID function of the gadget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HidFunction {
    /// Which device this is: also its `--hid-device` key and its configfs instance name.
    pub role: Role,
    /// bInterfaceSubClass: 1 = boot interface (firmware binds only those).
    pub sub_class: u8,
    /// bInterfaceProtocol: 1 = keyboard, 2 = mouse (only meaningful with subclass 1).
    pub protocol: u8,
    /// Bytes of one input report.
    pub report_len: usize,
    pub report_desc: &'static [u8],
}

/// The three HID devices, in gadget order (so /dev/hidg0, 1, 2 on a fresh gadget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Keyboard,
    /// The absolute pointer: what operating systems use (no acceleration, exact positions).
    Pointer,
    /// The relative boot mouse, for firmware that binds only boot mice.
    Mouse,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Keyboard, Role::Pointer, Role::Mouse];

    pub fn name(self) -> &'static str {
        match self {
            Role::Keyboard => "keyboard",
            Role::Pointer => "pointer",
            Role::Mouse => "mouse",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }

    /// The USB interface number of this function in kvnc's gadget, which adds them in
    /// [`Role::ALL`] order.
    pub fn interface(self) -> usize {
        Role::ALL.iter().position(|role| *role == self).unwrap_or_default()
    }

    pub fn function(self) -> &'static HidFunction {
        match self {
            Role::Keyboard => &KEYBOARD,
            Role::Pointer => &POINTER,
            Role::Mouse => &MOUSE,
        }
    }
}

/// Boot keyboard: input `[modifiers, 0, k1..k6]`, output (LEDs) one byte, key usages 0..=255
/// (the kernel's example stops at 101, which loses F13–F24 and the international keys).
pub const KEYBOARD: HidFunction = HidFunction {
    role: Role::Keyboard,
    sub_class: 1,
    protocol: 1,
    report_len: 8,
    report_desc: &[
        0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, // Generic Desktop / Keyboard / Application
        0x05, 0x07, 0x19, 0xE0, 0x29, 0xE7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81,
        0x02, // 8 modifier bits
        0x95, 0x01, 0x75, 0x08, 0x81, 0x01, // reserved byte (constant)
        0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, // 5 LEDs (output)
        0x95, 0x01, 0x75, 0x03, 0x91, 0x01, // 3 bits LED padding
        0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x26, 0xFF, 0x00, 0x05, 0x07, 0x19, 0x00, 0x2A, 0xFF, 0x00, 0x81,
        0x00, // 6 key slots, usages 0..=255
        0xC0,
    ],
};

/// Absolute pointer: `[buttons, x lo, x hi, y lo, y hi, wheel, hwheel]`, x/y in 0..=32767
/// (Windows rejects negative or 0..65535 ranges), 8 buttons, vertical and horizontal wheel.
pub const POINTER: HidFunction = HidFunction {
    role: Role::Pointer,
    sub_class: 0,
    protocol: 0,
    report_len: 7,
    report_desc: &[
        0x05, 0x01, 0x09, 0x02, 0xA1, 0x01, // Generic Desktop / Mouse / Application
        0x09, 0x01, 0xA1, 0x00, // Pointer / Physical (macOS recovery wants it)
        0x05, 0x09, 0x19, 0x01, 0x29, 0x08, 0x15, 0x00, 0x25, 0x01, 0x95, 0x08, 0x75, 0x01, 0x81,
        0x02, // 8 buttons
        0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x16, 0x00, 0x00, 0x26, 0xFF, 0x7F, 0x75, 0x10, 0x95, 0x02, 0x81,
        0x02, // X, Y absolute 0..=32767
        0x09, 0x38, 0x15, 0x81, 0x25, 0x7F, 0x75, 0x08, 0x95, 0x01, 0x81, 0x06, // wheel, relative
        0x05, 0x0C, 0x0A, 0x38, 0x02, 0x15, 0x81, 0x25, 0x7F, 0x75, 0x08, 0x95, 0x01, 0x81,
        0x06, // AC Pan (horizontal wheel), relative
        0xC0, 0xC0,
    ],
};

/// Relative boot mouse: `[buttons, dx, dy, wheel]`; the first three bytes are the boot format
/// that BIOS and UEFI read. No horizontal wheel: some firmware then fails to bind it (PiKVM).
pub const MOUSE: HidFunction = HidFunction {
    role: Role::Mouse,
    sub_class: 1,
    protocol: 2,
    report_len: 4,
    report_desc: &[
        0x05, 0x01, 0x09, 0x02, 0xA1, 0x01, // Generic Desktop / Mouse / Application
        0x09, 0x01, 0xA1, 0x00, // Pointer / Physical
        0x05, 0x09, 0x19, 0x01, 0x29, 0x08, 0x15, 0x00, 0x25, 0x01, 0x95, 0x08, 0x75, 0x01, 0x81,
        0x02, // 8 buttons
        0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x09, 0x38, 0x15, 0x81, 0x25, 0x7F, 0x75, 0x08, 0x95, 0x03, 0x81,
        0x06, // dx, dy, wheel: relative -127..=127
        0xC0, 0xC0,
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_by_name_in_gadget_order() {
        for (index, role) in Role::ALL.into_iter().enumerate() {
            assert_eq!(Role::from_name(role.name()), Some(role));
            assert_eq!(role.function().role, role, "{index}");
        }
        assert_eq!(Role::from_name("joystick"), None);
    }

    #[test]
    fn boot_interfaces_are_keyboard_and_mouse() {
        assert_eq!((KEYBOARD.sub_class, KEYBOARD.protocol, KEYBOARD.report_len), (1, 1, 8));
        assert_eq!((MOUSE.sub_class, MOUSE.protocol), (1, 2));
        assert_eq!(POINTER.sub_class, 0, "an absolute pointer cannot be a boot device");
    }
}
