//! The seam where input goes out: USB HID reports, byte for byte what a boot keyboard, an
//! absolute pointer and a boot mouse send to the target. The sinks: /dev/hidgN ([`hidg`]), the
//! demo target, or nothing.

pub mod combo;
pub mod descriptor;
pub mod discard;
pub mod gadget;
pub mod hidg;
pub mod keyboard;
pub mod keymap;
pub mod layout;
pub mod paste;
pub mod pointer;
pub mod router;
pub mod scancode;

use tokio::sync::watch;

pub use descriptor::Role;

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

/// An absolute pointer report ([`descriptor::POINTER`]):
/// `[buttons, x lo, x hi, y lo, y hi, wheel, hwheel]`, x/y in 0..=32767.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PointerReport {
    /// HID button order: bit 0 left, bit 1 right, bit 2 middle, bit 3 back, bit 4 forward.
    pub buttons: u8,
    pub x: u16,
    pub y: u16,
    /// Relative wheel movement: positive = up (away from the user).
    pub wheel: i8,
    /// Relative horizontal wheel movement: positive = right.
    pub hwheel: i8,
}

/// Largest absolute coordinate in a [`PointerReport`].
pub const POINTER_MAX: u16 = 32767;

impl PointerReport {
    pub fn to_bytes(&self) -> [u8; 7] {
        let x = self.x.to_le_bytes();
        let y = self.y.to_le_bytes();
        [self.buttons, x[0], x[1], y[0], y[1], self.wheel as u8, self.hwheel as u8]
    }

    pub fn from_bytes(bytes: &[u8; 7]) -> Self {
        Self {
            buttons: bytes[0],
            x: u16::from_le_bytes([bytes[1], bytes[2]]),
            y: u16::from_le_bytes([bytes[3], bytes[4]]),
            wheel: bytes[5] as i8,
            hwheel: bytes[6] as i8,
        }
    }
}

/// A relative boot mouse report ([`descriptor::MOUSE`]): `[buttons, dx, dy, wheel]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MouseReport {
    /// Same bits as [`PointerReport::buttons`].
    pub buttons: u8,
    /// Movement since the last report, positive = right.
    pub dx: i8,
    /// Movement since the last report, positive = down.
    pub dy: i8,
    pub wheel: i8,
}

impl MouseReport {
    pub fn to_bytes(&self) -> [u8; 4] {
        [self.buttons, self.dx as u8, self.dy as u8, self.wheel as u8]
    }

    pub fn from_bytes(bytes: &[u8; 4]) -> Self {
        Self { buttons: bytes[0], dx: bytes[1] as i8, dy: bytes[2] as i8, wheel: bytes[3] as i8 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HidReport {
    Keyboard(KeyboardReport),
    Pointer(PointerReport),
    Mouse(MouseReport),
}

impl HidReport {
    /// The device this report goes to.
    pub fn role(&self) -> Role {
        match self {
            HidReport::Keyboard(_) => Role::Keyboard,
            HidReport::Pointer(_) => Role::Pointer,
            HidReport::Mouse(_) => Role::Mouse,
        }
    }

    /// The report's bytes as the device sends them; their length is the role's report length.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            HidReport::Keyboard(report) => report.to_bytes().to_vec(),
            HidReport::Pointer(report) => report.to_bytes().to_vec(),
            HidReport::Mouse(report) => report.to_bytes().to_vec(),
        }
    }

    /// The same report without its relative parts (wheel turns, mouse movement): what may be
    /// sent again, or in place of older reports, without moving anything twice.
    pub fn as_state(&self) -> HidReport {
        match *self {
            HidReport::Keyboard(report) => HidReport::Keyboard(report),
            HidReport::Pointer(report) => HidReport::Pointer(PointerReport { wheel: 0, hwheel: 0, ..report }),
            HidReport::Mouse(report) => HidReport::Mouse(MouseReport { buttons: report.buttons, ..Default::default() }),
        }
    }
}

/// Keyboard LED output report bits, as the USB host sets them.
pub mod led {
    pub const NUM_LOCK: u8 = 1 << 0;
    pub const CAPS_LOCK: u8 = 1 << 1;
    pub const SCROLL_LOCK: u8 = 1 << 2;

    /// The same LEDs in RFB's order (QEMU LED state pseudo-encoding): bit 0 Scroll Lock,
    /// bit 1 Num Lock, bit 2 Caps Lock.
    pub fn to_rfb(leds: u8) -> u8 {
        let mut rfb = 0;
        for (hid, bit) in [(SCROLL_LOCK, 1 << 0), (NUM_LOCK, 1 << 1), (CAPS_LOCK, 1 << 2)] {
            if leds & hid != 0 {
                rfb |= bit;
            }
        }
        rfb
    }
}

/// Where reports go: the target's USB host (`/dev/hidgN`), the demo target, or nowhere.
///
/// The contract every sink keeps, because the router calls it with its lock held and from the
/// async runtime:
/// - [`InputSink::send_report`] never blocks. A sink that cannot deliver right now (the host is
///   asleep, unplugged or powered off) keeps the newest state per device and delivers it when
///   the host comes back; it never queues without bound.
/// - An `Err` means the report was not accepted at all (e.g. the sink has no such device); it
///   is logged by the caller and the router carries on. Delivery failures are not errors: the
///   sink logs host state changes itself, once each.
/// - Reports of one device reach the target in the order they were sent, except that reports
///   superseded while the host was not listening are dropped.
pub trait InputSink: Send + Sync + 'static {
    /// Hands one report to the target.
    fn send_report(&self, report: &HidReport) -> anyhow::Result<()>;

    /// The keyboard LEDs (see [`led`]) the target's host last set, None until it sets any;
    /// the receiver sees every later change.
    fn leds(&self) -> watch::Receiver<Option<u8>>;

    /// The current LED state (see [`led`]), all off while unknown.
    fn led_state(&self) -> u8 {
        self.leds().borrow().unwrap_or(0)
    }
}
