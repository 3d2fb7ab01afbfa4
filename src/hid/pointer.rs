//! RFB pointer events -> absolute-pointer HID reports.
//!
//! RFB sends a button mask and a framebuffer position; the HID pointer wants HID button bits, a
//! position in 0..=[`POINTER_MAX`] and relative wheel steps. [`Pointer`] remembers what the target
//! was last told so that only changes are sent.

use super::{POINTER_MAX, PointerReport};

/// Bits of an RFB PointerEvent button mask.
///
/// The mask is 16 bits wide because ExtendedMouseButtons (-316) adds back and forward above
/// the classic eight bits (`rfb::Event::Pointer`).
pub mod rfb_button {
    pub const LEFT: u16 = 1 << 0;
    pub const MIDDLE: u16 = 1 << 1;
    pub const RIGHT: u16 = 1 << 2;
    pub const WHEEL_UP: u16 = 1 << 3;
    pub const WHEEL_DOWN: u16 = 1 << 4;
    pub const WHEEL_LEFT: u16 = 1 << 5;
    pub const WHEEL_RIGHT: u16 = 1 << 6;
    pub const BACK: u16 = 1 << 7;
    pub const FORWARD: u16 = 1 << 8;
}

/// Bits of [`PointerReport::buttons`]; note that middle and right are swapped relative to RFB.
pub mod hid_button {
    pub const LEFT: u8 = 1 << 0;
    pub const RIGHT: u8 = 1 << 1;
    pub const MIDDLE: u8 = 1 << 2;
    pub const BACK: u8 = 1 << 3;
    pub const FORWARD: u8 = 1 << 4;
}

/// The HID buttons held in an RFB button mask (wheel bits are not buttons: see [`WheelClicks`]).
pub fn hid_buttons(rfb_mask: u16) -> u8 {
    let mut buttons = 0;
    for (rfb, hid) in [
        (rfb_button::LEFT, hid_button::LEFT),
        (rfb_button::MIDDLE, hid_button::MIDDLE),
        (rfb_button::RIGHT, hid_button::RIGHT),
        (rfb_button::BACK, hid_button::BACK),
        (rfb_button::FORWARD, hid_button::FORWARD),
    ] {
        if rfb_mask & rfb != 0 {
            buttons |= hid;
        }
    }
    buttons
}

/// Scales a framebuffer coordinate in `0..size` to the HID range, so that the first pixel maps to
/// 0 and the last to [`POINTER_MAX`]. Out-of-range coordinates are clamped to the last pixel.
pub fn to_hid_coordinate(coordinate: u16, size: u16) -> u16 {
    let last = u32::from(size.saturating_sub(1));
    if last == 0 {
        return 0;
    }
    let scaled = u32::from(coordinate).min(last) * u32::from(POINTER_MAX) / last;
    // scaled <= POINTER_MAX because coordinate <= last.
    scaled as u16
}

/// Wheel clicks in one RFB event. A click is a press of the wheel bit (viewers send press and
/// release back to back); the release carries no movement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WheelClicks {
    pub up: bool,
    pub down: bool,
    pub left: bool,
    pub right: bool,
}

impl WheelClicks {
    /// The clicks in going from one viewer's `previous_mask` to its new `mask`.
    pub fn between(previous_mask: u16, mask: u16) -> Self {
        let pressed = mask & !previous_mask;
        Self {
            up: pressed & rfb_button::WHEEL_UP != 0,
            down: pressed & rfb_button::WHEEL_DOWN != 0,
            left: pressed & rfb_button::WHEEL_LEFT != 0,
            right: pressed & rfb_button::WHEEL_RIGHT != 0,
        }
    }
}

/// The absolute pointer as the target was last told about it.
#[derive(Debug, Clone, Default)]
pub struct Pointer {
    /// None until the first report: then even a report equal to the default must go out.
    last: Option<PointerReport>,
}

impl Pointer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves to (`x`, `y`) (HID coordinates) with HID `buttons` held, then turns the wheel.
    /// Returns the reports to send: one if buttons or position changed, plus one per wheel click.
    pub fn update(&mut self, buttons: u8, x: u16, y: u16, wheel: WheelClicks) -> PointerReports {
        let mut reports = PointerReports::default();
        let report = PointerReport { buttons, x, y, wheel: 0, hwheel: 0 };
        if self.last != Some(report) {
            reports.push(report);
            self.last = Some(report);
        }
        let steps = [
            (wheel.up, PointerReport { wheel: 1, ..report }),
            (wheel.down, PointerReport { wheel: -1, ..report }),
            (wheel.left, PointerReport { hwheel: -1, ..report }),
            (wheel.right, PointerReport { hwheel: 1, ..report }),
        ];
        for (clicked, step) in steps {
            if clicked {
                reports.push(step);
            }
        }
        reports
    }

    /// Changes only the held buttons (e.g. when a viewer holding one goes away); returns the
    /// report to send if they changed.
    pub fn set_buttons(&mut self, buttons: u8) -> Option<PointerReport> {
        let last = self.last.as_mut()?;
        if last.buttons == buttons {
            return None;
        }
        last.buttons = buttons;
        Some(*last)
    }
}

/// The at most five reports one update produces (move, then a step per wheel direction),
/// without allocating.
#[derive(Debug, Clone, Default)]
pub struct PointerReports {
    reports: [PointerReport; 5],
    len: usize,
}

impl PointerReports {
    fn push(&mut self, report: PointerReport) {
        if let Some(slot) = self.reports.get_mut(self.len) {
            *slot = report;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[PointerReport] {
        &self.reports[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn middle_and_right_swap() {
        assert_eq!(hid_buttons(rfb_button::LEFT), hid_button::LEFT);
        assert_eq!(hid_buttons(rfb_button::MIDDLE), hid_button::MIDDLE);
        assert_eq!(hid_buttons(rfb_button::RIGHT), hid_button::RIGHT);
        assert_eq!(hid_buttons(0b0000_0010), 0b0000_0100);
        assert_eq!(hid_buttons(0b0000_0100), 0b0000_0010);
        assert_eq!(hid_buttons(0x7F), 0b0000_0111, "wheel bits are not buttons");
        assert_eq!(hid_buttons(rfb_button::BACK | rfb_button::FORWARD), hid_button::BACK | hid_button::FORWARD);
    }

    #[test]
    fn coordinates_span_the_hid_range() {
        assert_eq!(to_hid_coordinate(0, 1280), 0);
        assert_eq!(to_hid_coordinate(1279, 1280), POINTER_MAX);
        assert_eq!(to_hid_coordinate(5000, 1280), POINTER_MAX, "clamped");
        assert_eq!(to_hid_coordinate(1, 3), 16383);
        assert_eq!(to_hid_coordinate(0, 1), 0);
        assert_eq!(to_hid_coordinate(7, 1), 0);
        assert_eq!(to_hid_coordinate(7, 0), 0);
        assert_eq!(to_hid_coordinate(u16::MAX, u16::MAX), POINTER_MAX);
    }

    #[test]
    fn wheel_clicks_are_press_edges() {
        assert_eq!(WheelClicks::between(0, rfb_button::WHEEL_UP), WheelClicks { up: true, ..Default::default() });
        assert_eq!(WheelClicks::between(rfb_button::WHEEL_UP, rfb_button::WHEEL_UP), WheelClicks::default());
        assert_eq!(WheelClicks::between(rfb_button::WHEEL_UP, 0), WheelClicks::default());
        assert_eq!(WheelClicks::between(0, rfb_button::WHEEL_DOWN), WheelClicks { down: true, ..Default::default() });
    }

    #[test]
    fn reports_only_changes() {
        let mut pointer = Pointer::new();
        let first = pointer.update(0, 0, 0, WheelClicks::default());
        assert_eq!(first.as_slice(), &[PointerReport::default()], "the first report always goes out");
        assert!(pointer.update(0, 0, 0, WheelClicks::default()).as_slice().is_empty());
        let moved = pointer.update(hid_button::LEFT, 100, 200, WheelClicks::default());
        assert_eq!(moved.as_slice(), &[PointerReport { buttons: 1, x: 100, y: 200, wheel: 0, hwheel: 0 }]);
    }

    #[test]
    fn wheel_clicks_add_reports_at_the_current_position() {
        let mut pointer = Pointer::new();
        pointer.update(0, 10, 20, WheelClicks::default());
        let both = pointer.update(0, 10, 20, WheelClicks { up: true, down: true, ..Default::default() });
        let at = PointerReport { buttons: 0, x: 10, y: 20, wheel: 0, hwheel: 0 };
        assert_eq!(both.as_slice(), &[PointerReport { wheel: 1, ..at }, PointerReport { wheel: -1, ..at }]);
        let moved_and_scrolled = pointer.update(0, 11, 20, WheelClicks { down: true, ..Default::default() });
        let at = PointerReport { x: 11, ..at };
        assert_eq!(moved_and_scrolled.as_slice(), &[at, PointerReport { wheel: -1, ..at }]);
    }

    #[test]
    fn set_buttons_keeps_the_position() {
        let mut pointer = Pointer::new();
        assert_eq!(pointer.set_buttons(0), None, "nothing was ever sent");
        pointer.update(hid_button::RIGHT, 5, 6, WheelClicks::default());
        assert_eq!(pointer.set_buttons(0), Some(PointerReport { buttons: 0, x: 5, y: 6, wheel: 0, hwheel: 0 }));
        assert_eq!(pointer.set_buttons(0), None);
    }
}
