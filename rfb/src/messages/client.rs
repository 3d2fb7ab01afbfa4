//! Client→server messages, parsed incrementally: a message split across reads is
//! "need more bytes", never an error.

use crate::error::ProtocolError;
use crate::frame::Rect;
use crate::pixel_format::PixelFormat;

pub const SET_PIXEL_FORMAT: u8 = 0;
pub const SET_ENCODINGS: u8 = 2;
pub const FRAMEBUFFER_UPDATE_REQUEST: u8 = 3;
pub const KEY_EVENT: u8 = 4;
pub const POINTER_EVENT: u8 = 5;
pub const CLIENT_CUT_TEXT: u8 = 6;
pub const ENABLE_CONTINUOUS_UPDATES: u8 = 150;
pub const CLIENT_FENCE: u8 = 248;
pub const SET_DESKTOP_SIZE: u8 = 251;
pub const QEMU: u8 = 255;
const QEMU_EXTENDED_KEY_EVENT: u8 = 0;
/// In the first byte of an extended PointerEvent: one more byte of buttons follows.
const POINTER_EXTENDED_MARKER: u8 = 0x80;

/// Longest fence payload the protocol allows.
pub const MAX_FENCE_PAYLOAD: usize = 64;

/// Default cap on legacy ClientCutText (as TigerVNC's `MaxCutText`).
pub const DEFAULT_MAX_CUT_TEXT: u32 = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    SetPixelFormat(PixelFormat),
    SetEncodings(Vec<i32>),
    FramebufferUpdateRequest {
        incremental: bool,
        rect: Rect,
    },
    KeyEvent {
        down: bool,
        keysym: u32,
    },
    /// `buttons` as in [`crate::Event::Pointer`].
    PointerEvent {
        buttons: u16,
        x: u16,
        y: u16,
    },
    /// Legacy clipboard text, decoded from Latin-1.
    ClientCutText(String),
    /// A cut text the parser will not keep: `len` bytes follow the header and must be skipped.
    /// `extended` is the Extended Clipboard form (negative length on the wire).
    ClientCutTextSkipped {
        len: u32,
        extended: bool,
    },
    QemuKeyEvent {
        down: bool,
        keysym: u32,
        keycode: u32,
    },
    EnableContinuousUpdates {
        enable: bool,
        rect: Rect,
    },
    ClientFence {
        flags: u32,
        payload: Vec<u8>,
    },
    /// The client asks for a new screen size (kvnc only ever answers "prohibited").
    SetDesktopSize {
        width: u16,
        height: u16,
        screens: u8,
    },
}

/// What the parser may accept, as negotiated so far.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    pub max_cut_text: u32,
    /// Message 255/0 is legal only after the server sent the QEMU extended key ack.
    pub qemu_key_events: bool,
    /// Messages 150 and 248 are legal only after the server confirmed those extensions.
    pub continuous_updates: bool,
    pub fences: bool,
    /// PointerEvent has the extended form only after the server sent the ExtendedMouseButtons ack.
    pub extended_mouse_buttons: bool,
    /// Message 251 is legal only for clients that listed ExtendedDesktopSize.
    pub set_desktop_size: bool,
}

/// Parses one message from the front of `buf`. `Ok(None)` = not enough bytes yet.
/// On success returns the message and the number of bytes it used. A skipped cut text uses
/// only its 8-byte header; the caller discards the `len` bytes of text that follow.
pub fn parse(buf: &[u8], ctx: &ParseContext) -> Result<Option<(ClientMessage, usize)>, ProtocolError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let fixed = |len: usize| buf.len() >= len;
    let u16_at = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
    let u32_at = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let message = match kind {
        SET_PIXEL_FORMAT => {
            if !fixed(20) {
                return Ok(None);
            }
            let mut pf = [0; 16];
            pf.copy_from_slice(&buf[4..20]);
            (ClientMessage::SetPixelFormat(PixelFormat::from_bytes(&pf)), 20)
        }
        SET_ENCODINGS => {
            if !fixed(4) {
                return Ok(None);
            }
            let len = 4 + 4 * usize::from(u16_at(2));
            if !fixed(len) {
                return Ok(None);
            }
            let list = buf[4..len].chunks_exact(4).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
            (ClientMessage::SetEncodings(list), len)
        }
        FRAMEBUFFER_UPDATE_REQUEST => {
            if !fixed(10) {
                return Ok(None);
            }
            let rect = Rect::new(u16_at(2), u16_at(4), u16_at(6), u16_at(8));
            (ClientMessage::FramebufferUpdateRequest { incremental: buf[1] != 0, rect }, 10)
        }
        KEY_EVENT => {
            if !fixed(8) {
                return Ok(None);
            }
            (ClientMessage::KeyEvent { down: buf[1] != 0, keysym: u32_at(4) }, 8)
        }
        POINTER_EVENT => {
            if !fixed(6) {
                return Ok(None);
            }
            let low = buf[1];
            let (buttons, len) = if ctx.extended_mouse_buttons && low & POINTER_EXTENDED_MARKER != 0 {
                if !fixed(7) {
                    return Ok(None);
                }
                // The marker bit's place goes to the extra byte, as TigerVNC decodes it: back
                // stays at bit 7 where the classic mask has it, forward lands at bit 8.
                ((u16::from(buf[6]) << 7) | u16::from(low & !POINTER_EXTENDED_MARKER), 7)
            } else {
                (u16::from(low), 6)
            };
            (ClientMessage::PointerEvent { buttons, x: u16_at(2), y: u16_at(4) }, len)
        }
        CLIENT_CUT_TEXT => {
            if !fixed(8) {
                return Ok(None);
            }
            let raw_len = u32_at(4);
            let signed = raw_len as i32;
            if signed < 0 {
                let len = signed.unsigned_abs();
                (ClientMessage::ClientCutTextSkipped { len, extended: true }, 8)
            } else if raw_len > ctx.max_cut_text {
                (ClientMessage::ClientCutTextSkipped { len: raw_len, extended: false }, 8)
            } else {
                let len = 8 + raw_len as usize;
                if !fixed(len) {
                    return Ok(None);
                }
                let text = buf[8..len].iter().map(|&b| char::from(b)).collect();
                (ClientMessage::ClientCutText(text), len)
            }
        }
        QEMU if ctx.qemu_key_events => {
            if !fixed(2) {
                return Ok(None);
            }
            if buf[1] != QEMU_EXTENDED_KEY_EVENT {
                return Err(ProtocolError::UnknownQemuSubtype(buf[1]));
            }
            if !fixed(12) {
                return Ok(None);
            }
            let message = ClientMessage::QemuKeyEvent { down: u16_at(2) != 0, keysym: u32_at(4), keycode: u32_at(8) };
            (message, 12)
        }
        QEMU => return Err(ProtocolError::QemuKeyEventNotAnnounced),
        ENABLE_CONTINUOUS_UPDATES if ctx.continuous_updates => {
            if !fixed(10) {
                return Ok(None);
            }
            let rect = Rect::new(u16_at(2), u16_at(4), u16_at(6), u16_at(8));
            (ClientMessage::EnableContinuousUpdates { enable: buf[1] != 0, rect }, 10)
        }
        CLIENT_FENCE if ctx.fences => {
            if !fixed(9) {
                return Ok(None);
            }
            let len = usize::from(buf[8]);
            if len > MAX_FENCE_PAYLOAD {
                return Err(ProtocolError::FencePayloadTooLong(len));
            }
            if !fixed(9 + len) {
                return Ok(None);
            }
            (ClientMessage::ClientFence { flags: u32_at(4), payload: buf[9..9 + len].to_vec() }, 9 + len)
        }
        SET_DESKTOP_SIZE if ctx.set_desktop_size => {
            if !fixed(8) {
                return Ok(None);
            }
            let screens = buf[6];
            let len = 8 + 16 * usize::from(screens);
            if !fixed(len) {
                return Ok(None);
            }
            (ClientMessage::SetDesktopSize { width: u16_at(2), height: u16_at(4), screens }, len)
        }
        other => return Err(ProtocolError::UnknownMessageType(other)),
    };
    Ok(Some(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: ParseContext = ParseContext {
        max_cut_text: 16,
        qemu_key_events: true,
        continuous_updates: true,
        fences: true,
        extended_mouse_buttons: true,
        set_desktop_size: true,
    };

    /// Every message type on the wire, with the message it must parse to.
    fn samples() -> Vec<(Vec<u8>, ClientMessage)> {
        let pf = PixelFormat::NATIVE;
        let mut set_pf = vec![SET_PIXEL_FORMAT, 0, 0, 0];
        set_pf.extend_from_slice(&pf.to_bytes());
        vec![
            (set_pf, ClientMessage::SetPixelFormat(pf)),
            (
                vec![2, 0, 0, 3, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0x21, 0, 0, 0, 0],
                ClientMessage::SetEncodings(vec![7, -223, 0]),
            ),
            (vec![2, 0, 0, 0], ClientMessage::SetEncodings(vec![])),
            (
                vec![3, 1, 0, 1, 0, 2, 0x05, 0x00, 0x02, 0xd0],
                ClientMessage::FramebufferUpdateRequest { incremental: true, rect: Rect::new(1, 2, 1280, 720) },
            ),
            (vec![4, 1, 0, 0, 0, 0, 0xff, 0x0d], ClientMessage::KeyEvent { down: true, keysym: 0xff0d }),
            (vec![5, 0x05, 0x01, 0x00, 0x00, 0x10], ClientMessage::PointerEvent { buttons: 5, x: 256, y: 16 }),
            // Extended form: marker plus left, then forward and back in the extra byte.
            (
                vec![5, 0x81, 0x01, 0x00, 0x00, 0x10, 0x03],
                ClientMessage::PointerEvent { buttons: 0x181, x: 256, y: 16 },
            ),
            (vec![6, 0, 0, 0, 0, 0, 0, 3, b'h', 0xe9, b'!'], ClientMessage::ClientCutText("hé!".into())),
            (vec![6, 0, 0, 0, 0, 0, 0, 17], ClientMessage::ClientCutTextSkipped { len: 17, extended: false }),
            (vec![6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfc], ClientMessage::ClientCutTextSkipped { len: 4, extended: true }),
            (
                vec![255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e],
                ClientMessage::QemuKeyEvent { down: true, keysym: 0x61, keycode: 0x1e },
            ),
            (
                vec![150, 1, 0, 0, 0, 0, 0x05, 0x00, 0x02, 0xd0],
                ClientMessage::EnableContinuousUpdates { enable: true, rect: Rect::new(0, 0, 1280, 720) },
            ),
            (
                vec![248, 0, 0, 0, 0x80, 0, 0, 0x03, 2, 0xab, 0xcd],
                ClientMessage::ClientFence { flags: 0x8000_0003, payload: vec![0xab, 0xcd] },
            ),
            (vec![248, 0, 0, 0, 0, 0, 0, 0, 0], ClientMessage::ClientFence { flags: 0, payload: vec![] }),
            (
                [vec![251, 0, 0x07, 0x80, 0x04, 0x38, 1, 0], vec![0; 16]].concat(),
                ClientMessage::SetDesktopSize { width: 1920, height: 1080, screens: 1 },
            ),
        ]
    }

    /// Every strict prefix of `wire` is "need more bytes"; the whole of it, followed by the
    /// start of another message, parses to `expected` and uses exactly `wire`.
    fn assert_parses_split_at_every_byte(wire: &[u8], expected: ClientMessage, ctx: &ParseContext) {
        for split in 0..wire.len() {
            assert_eq!(parse(&wire[..split], ctx).unwrap(), None, "{expected:?} cut at {split}");
        }
        let with_tail = [wire, &[4, 0]].concat();
        assert_eq!(parse(&with_tail, ctx).unwrap(), Some((expected, wire.len())));
    }

    #[test]
    fn every_message_split_at_every_byte_boundary() {
        for (wire, expected) in samples() {
            assert_parses_split_at_every_byte(&wire, expected, &CTX);
        }
    }

    #[test]
    fn extended_pointer_event_only_once_confirmed() {
        let ctx = ParseContext { extended_mouse_buttons: false, ..CTX };
        // Unconfirmed: bit 7 is back (the spec's classic table) and no extra byte follows.
        let classic = ClientMessage::PointerEvent { buttons: 0x81, x: 1, y: 2 };
        assert_parses_split_at_every_byte(&[5, 0x81, 0, 1, 0, 2], classic, &ctx);
        // Confirmed: the extra byte's bit 0 (back) lands at bit 7, bit 1 (forward) at bit 8.
        let back = ClientMessage::PointerEvent { buttons: 0x80, x: 1, y: 2 };
        assert_parses_split_at_every_byte(&[5, 0x80, 0, 1, 0, 2, 0x01], back, &CTX);
        let forward = ClientMessage::PointerEvent { buttons: 0x104, x: 1, y: 2 };
        assert_parses_split_at_every_byte(&[5, 0x84, 0, 1, 0, 2, 0x02], forward, &CTX);
        // Confirmed but without the marker: still the 6-byte form.
        let plain = ClientMessage::PointerEvent { buttons: 0x7f, x: 1, y: 2 };
        assert_parses_split_at_every_byte(&[5, 0x7f, 0, 1, 0, 2], plain, &CTX);
    }

    #[test]
    fn unknown_and_unannounced_types_are_errors() {
        assert!(matches!(parse(&[7], &CTX), Err(ProtocolError::UnknownMessageType(7))));
        assert!(matches!(parse(&[255, 1], &CTX), Err(ProtocolError::UnknownQemuSubtype(1))));
        let ctx = ParseContext { qemu_key_events: false, ..CTX };
        assert!(matches!(parse(&[255], &ctx), Err(ProtocolError::QemuKeyEventNotAnnounced)));
        let ctx = ParseContext { continuous_updates: false, fences: false, set_desktop_size: false, ..CTX };
        for kind in [150, 248, 251] {
            assert!(matches!(parse(&[kind], &ctx), Err(ProtocolError::UnknownMessageType(k)) if k == kind));
        }
        let mut long_fence = vec![248, 0, 0, 0, 0, 0, 0, 0, 65];
        long_fence.extend_from_slice(&[0; 65]);
        assert!(matches!(parse(&long_fence, &CTX), Err(ProtocolError::FencePayloadTooLong(65))));
    }
}
