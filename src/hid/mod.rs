//! The seam where input goes out: USB HID reports, byte for byte what a boot keyboard and an
//! absolute pointer send to the target. The demo target consumes them now; /dev/hidgN later.

pub mod discard;
pub mod keyboard;
pub mod keymap;
pub mod pointer;

/// A boot-protocol keyboard input report: `[modifiers, 0, k1..k6]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyboardReport {
    /// Bit n = usage 0xE0 + n (LeftCtrl, LeftShift, LeftAlt, LeftGUI, RightCtrl, ...).
    pub modifiers: u8,
    /// Pressed non-modifier usages (page 7), zero = empty slot.
    pub keys: [u8; 6],
}

impl KeyboardReport {
    pub fn to_bytes(&self) -> [u8; 8] {
        let k = self.keys;
        [self.modifiers, 0, k[0], k[1], k[2], k[3], k[4], k[5]]
    }

    pub fn from_bytes(bytes: &[u8; 8]) -> Self {
        let mut keys = [0; 6];
        keys.copy_from_slice(&bytes[2..8]);
        Self { modifiers: bytes[0], keys }
    }
}

/// An absolute pointer report: `[buttons, x lo, x hi, y lo, y hi, wheel]`, x/y in 0..=32767.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PointerReport {
    /// HID button order: bit 0 left, bit 1 right, bit 2 middle.
    pub buttons: u8,
    pub x: u16,
    pub y: u16,
    /// Relative wheel movement: positive = up (away from the user).
    pub wheel: i8,
}

/// Largest absolute coordinate in a [`PointerReport`].
pub const POINTER_MAX: u16 = 32767;

impl PointerReport {
    pub fn to_bytes(&self) -> [u8; 6] {
        let x = self.x.to_le_bytes();
        let y = self.y.to_le_bytes();
        [self.buttons, x[0], x[1], y[0], y[1], self.wheel as u8]
    }

    pub fn from_bytes(bytes: &[u8; 6]) -> Self {
        Self {
            buttons: bytes[0],
            x: u16::from_le_bytes([bytes[1], bytes[2]]),
            y: u16::from_le_bytes([bytes[3], bytes[4]]),
            wheel: bytes[5] as i8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HidReport {
    Keyboard(KeyboardReport),
    Pointer(PointerReport),
}

/// Keyboard LED output report bits, as the USB host sets them.
pub mod led {
    pub const NUM_LOCK: u8 = 1 << 0;
    pub const CAPS_LOCK: u8 = 1 << 1;
    pub const SCROLL_LOCK: u8 = 1 << 2;
}

pub trait InputSink: Send + Sync + 'static {
    /// Delivers one report to the target. Errors are the device's (unplugged host, ...).
    fn send_report(&self, report: &HidReport) -> anyhow::Result<()>;

    /// The LED state (see [`led`]) the target's host last set; 0 if unknown.
    fn led_state(&self) -> u8;
}
