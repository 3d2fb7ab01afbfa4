//! Server→client message writers. Each appends one message (or part of a
//! FramebufferUpdate) to an output buffer.

use crate::frame::Rect;
use crate::pixel_format::PixelFormat;

pub const FRAMEBUFFER_UPDATE: u8 = 0;
pub const SET_COLOUR_MAP_ENTRIES: u8 = 1;
pub const BELL: u8 = 2;
pub const SERVER_CUT_TEXT: u8 = 3;
pub const END_OF_CONTINUOUS_UPDATES: u8 = 150;
pub const SERVER_FENCE: u8 = 248;

/// Fence flags.
pub mod fence {
    pub const BLOCK_BEFORE: u32 = 1 << 0;
    pub const BLOCK_AFTER: u32 = 1 << 1;
    pub const SYNC_NEXT: u32 = 1 << 2;
    pub const REQUEST: u32 = 1 << 31;
}

/// ExtendedDesktopSize reasons (rect x) and results (rect y).
pub mod desktop_size {
    pub const REASON_SERVER: u16 = 0;
    pub const REASON_THIS_CLIENT: u16 = 1;
    pub const RESULT_OK: u16 = 0;
    pub const RESULT_PROHIBITED: u16 = 1;
}

/// Keyboard LED bits, as both LED state pseudo-encodings carry them.
pub mod led {
    pub const SCROLL_LOCK: u8 = 1 << 0;
    pub const NUM_LOCK: u8 = 1 << 1;
    pub const CAPS_LOCK: u8 = 1 << 2;
    /// The bits with a meaning; the rest are reserved.
    pub const ALL: u8 = SCROLL_LOCK | NUM_LOCK | CAPS_LOCK;
}

pub fn write_server_init(out: &mut Vec<u8>, width: u16, height: u16, format: &PixelFormat, name: &str) {
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&format.to_bytes());
    out.extend_from_slice(&(name.len() as u32).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
}

/// FramebufferUpdate header; `rects` = 0xFFFF means "until a LastRect rect".
pub fn write_framebuffer_update_header(out: &mut Vec<u8>, rects: u16) {
    out.extend_from_slice(&[FRAMEBUFFER_UPDATE, 0]);
    out.extend_from_slice(&rects.to_be_bytes());
}

pub fn write_rect_header(out: &mut Vec<u8>, rect: &Rect, encoding: i32) {
    for v in [rect.x, rect.y, rect.width, rect.height] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&encoding.to_be_bytes());
}

/// `colours` as 16-bit r, g, b.
pub fn write_set_colour_map_entries(out: &mut Vec<u8>, first: u16, colours: &[[u16; 3]]) {
    out.extend_from_slice(&[SET_COLOUR_MAP_ENTRIES, 0]);
    out.extend_from_slice(&first.to_be_bytes());
    out.extend_from_slice(&(colours.len() as u16).to_be_bytes());
    for colour in colours {
        for c in colour {
            out.extend_from_slice(&c.to_be_bytes());
        }
    }
}

pub fn write_bell(out: &mut Vec<u8>) {
    out.push(BELL);
}

/// Legacy ServerCutText carries Latin-1; characters outside it become '?'.
pub fn write_server_cut_text(out: &mut Vec<u8>, text: &str) {
    let latin1: Vec<u8> = text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect();
    out.extend_from_slice(&[SERVER_CUT_TEXT, 0, 0, 0]);
    out.extend_from_slice(&(latin1.len() as u32).to_be_bytes());
    out.extend_from_slice(&latin1);
}

pub fn write_end_of_continuous_updates(out: &mut Vec<u8>) {
    out.push(END_OF_CONTINUOUS_UPDATES);
}

/// `payload` must be at most 64 bytes.
pub fn write_server_fence(out: &mut Vec<u8>, flags: u32, payload: &[u8]) {
    out.extend_from_slice(&[SERVER_FENCE, 0, 0, 0]);
    out.extend_from_slice(&flags.to_be_bytes());
    out.push(payload.len() as u8);
    out.extend_from_slice(payload);
}

/// The id of the one screen in every ExtendedDesktopSize layout we send. Any value is legal,
/// but libvncclient up to 0.9.15 (Remmina, KRDC; Debian 12 ships 0.9.14) ignores a layout whose
/// screen id is 0 and keeps its old framebuffer size; libvncserver's own server uses 1.
pub const SCREEN_ID: u32 = 1;

/// An ExtendedDesktopSize rect describing one screen of `width`×`height`.
pub fn write_extended_desktop_size(out: &mut Vec<u8>, reason: u16, result: u16, width: u16, height: u16) {
    write_rect_header(out, &Rect::new(reason, result, width, height), crate::encoding::EXTENDED_DESKTOP_SIZE);
    out.extend_from_slice(&[1, 0, 0, 0]);
    out.extend_from_slice(&SCREEN_ID.to_be_bytes());
    for v in [0, 0, width, height] {
        out.extend_from_slice(&u16::to_be_bytes(v));
    }
    out.extend_from_slice(&0u32.to_be_bytes());
}

/// A QEMU LED state pseudo-rect: the [`led`] bits as a U8.
pub fn write_qemu_led_state(out: &mut Vec<u8>, leds: u8) {
    write_rect_header(out, &Rect::default(), crate::encoding::QEMU_LED_STATE);
    out.push(leds);
}

/// A VMware LED state pseudo-rect: the same [`led`] bits as a U32.
pub fn write_vmware_led_state(out: &mut Vec<u8>, leds: u8) {
    write_rect_header(out, &Rect::default(), crate::encoding::VMWARE_LED_STATE);
    out.extend_from_slice(&u32::from(leds).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let mut out = Vec::new();
        write_rect_header(&mut out, &Rect::new(1, 2, 3, 4), -224);
        assert_eq!(out, [0, 1, 0, 2, 0, 3, 0, 4, 0xff, 0xff, 0xff, 0x20]);
        out.clear();
        write_server_cut_text(&mut out, "aé€");
        assert_eq!(out, [3, 0, 0, 0, 0, 0, 0, 3, b'a', 0xe9, b'?']);
        out.clear();
        write_set_colour_map_entries(&mut out, 0, &[[0xffff, 0, 0x1234]]);
        assert_eq!(out, [1, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0x12, 0x34]);
        out.clear();
        write_server_init(&mut out, 1280, 720, &PixelFormat::NATIVE, "kvnc");
        assert_eq!(&out[..4], &[0x05, 0x00, 0x02, 0xd0]);
        assert_eq!(&out[20..], &[0, 0, 0, 4, b'k', b'v', b'n', b'c']);
        out.clear();
        write_server_fence(&mut out, fence::REQUEST | fence::BLOCK_BEFORE, &[7]);
        assert_eq!(out, [248, 0, 0, 0, 0x80, 0, 0, 1, 1, 7]);
        out.clear();
        write_extended_desktop_size(&mut out, 1, 1, 640, 480);
        let expected = [
            vec![0, 1, 0, 1, 0x02, 0x80, 0x01, 0xe0, 0xff, 0xff, 0xfe, 0xcc],
            vec![1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x02, 0x80, 0x01, 0xe0, 0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(out, expected);
        out.clear();
        write_qemu_led_state(&mut out, led::CAPS_LOCK | led::SCROLL_LOCK);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xfe, 0xfb, 5]);
        out.clear();
        write_vmware_led_state(&mut out, led::NUM_LOCK);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 0, 0x57, 0x4d, 0x56, 0x68, 0, 0, 0, 2]);
    }
}
