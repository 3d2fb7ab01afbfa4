//! The screen viewers see when a capture source has no picture: what is wrong, in words, so a
//! user can tell an unplugged dongle from a target that is switched off.

use std::fmt;

use rfb::Frame;

use crate::canvas::{CELL, draw_text, fill};

/// The size shown when there has never been a picture to keep the size of.
pub const DEFAULT_SIZE: (u16, u16) = (1280, 720);

const BACKGROUND: u32 = 0x0010_1820;
const HEADLINE: u32 = 0x00FF_C040;
const DETAIL: u32 = 0x00D0_D0D0;

/// Why there is no picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPicture {
    /// Capture starts when the first viewer connects; this is shown until its first frame.
    Starting,
    /// The device node does not exist (yet): nothing plugged in, or it went away.
    NoDevice(String),
    /// It exists but cannot capture video (e.g. a UVC dongle's metadata node).
    NotCapture(String),
    /// The receiver sees no +5 V from the HDMI cable.
    NoCable,
    /// A cable, but no signal: the target is off, asleep or not sending to this output.
    NoSignal,
    /// A signal the receiver cannot lock onto.
    NoSync,
    /// Timings the receiver does not support.
    OutOfRange,
    /// The device answers but delivers no frames.
    NoFrames,
    /// Anything else the device said, with the mode when known.
    DeviceError(String),
}

impl NoPicture {
    pub fn headline(&self) -> &'static str {
        match self {
            NoPicture::Starting => "STARTING CAPTURE",
            NoPicture::NoDevice(_) => "NO CAPTURE DEVICE",
            NoPicture::NotCapture(_) => "NOT A CAPTURE DEVICE",
            NoPicture::NoCable => "NO CABLE",
            NoPicture::NoSignal => "NO SIGNAL",
            NoPicture::NoSync => "NO SYNC WITH SIGNAL",
            NoPicture::OutOfRange => "UNSUPPORTED SIGNAL TIMINGS",
            NoPicture::NoFrames => "NO FRAMES FROM THE DEVICE",
            NoPicture::DeviceError(_) => "CAPTURE ERROR",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            NoPicture::Starting => "waiting for the first frame from the capture device".into(),
            NoPicture::NoDevice(path) => format!("{path} is not there; plug the capture device in"),
            NoPicture::NotCapture(path) => format!("{path} cannot capture video"),
            NoPicture::NoCable => "connect the HDMI cable from the target".into(),
            NoPicture::NoSignal => "the target is off, asleep, or not sending to this output".into(),
            NoPicture::NoSync => "the signal is unstable; check the cable".into(),
            NoPicture::OutOfRange => "set the target to a resolution the capture device supports".into(),
            NoPicture::NoFrames => "the device gave no frame in time".into(),
            NoPicture::DeviceError(error) => error.clone(),
        }
    }
}

impl fmt::Display for NoPicture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.headline().to_lowercase(), self.detail())
    }
}

/// A `width`×`height` screen saying `why`, with a line saying that kvnc keeps retrying.
pub fn no_picture_frame(width: u16, height: u16, why: &NoPicture) -> Frame {
    let mut frame = Frame::new(width, height);
    let bounds = frame.bounds();
    fill(&mut frame, bounds, BACKGROUND);
    let lines = [
        (why.headline().to_string(), HEADLINE),
        (String::new(), DETAIL),
        (why.detail(), DETAIL),
        ("kvnc retries every second".to_string(), DETAIL),
    ];
    let top = (height / 2).saturating_sub(CELL * 2);
    for (row, (text, rgb)) in (0u16..).zip(lines) {
        let text_width = u16::try_from(text.chars().count()).unwrap_or(u16::MAX).saturating_mul(CELL);
        let x = width.saturating_sub(text_width) / 2;
        draw_text(&mut frame, x, top.saturating_add(row * CELL * 3 / 2), &text, rgb);
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_has_the_size_asked_for_and_is_not_blank() {
        let frame = no_picture_frame(640, 480, &NoPicture::NoSignal);
        assert_eq!((frame.width(), frame.height()), (640, 480));
        // The headline's row of cells holds text: some pixel differs from the background.
        let top = usize::from(480 / 2 - CELL * 2);
        let rows = &frame.pixels()[top * frame.stride()..(top + usize::from(CELL)) * frame.stride()];
        let background = BACKGROUND.to_le_bytes();
        assert!(rows.chunks_exact(4).any(|pixel| pixel[..3] != background[..3]), "no headline drawn");
        // Tiny sizes clip instead of failing.
        let tiny = no_picture_frame(8, 8, &NoPicture::DeviceError("x".repeat(500)));
        assert_eq!((tiny.width(), tiny.height()), (8, 8));
    }

    #[test]
    fn every_reason_reads_as_words() {
        let reasons = [
            NoPicture::Starting,
            NoPicture::NoDevice("/dev/video0".into()),
            NoPicture::NotCapture("/dev/video1".into()),
            NoPicture::NoCable,
            NoPicture::NoSignal,
            NoPicture::NoSync,
            NoPicture::OutOfRange,
            NoPicture::NoFrames,
            NoPicture::DeviceError("EIO".into()),
        ];
        for reason in reasons {
            assert!(reason.to_string().len() > 12, "{reason:?}");
        }
        assert_eq!(NoPicture::NoSignal.headline(), "NO SIGNAL");
    }
}
