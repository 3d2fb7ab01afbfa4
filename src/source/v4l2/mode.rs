//! Which capture mode (pixel format, size, rate) to ask a device for: a pure function of what
//! the device offers, what the user asked for and the source's own timings, so it is tested
//! without hardware and `kvnc probe` can show the same choice.
//!
//! The rule, in order:
//! 1. A source with DV timings (an HDMI bridge such as the TC358743) is captured at exactly its
//!    timings' size; anything else would be scaled or rejected.
//! 2. Otherwise the size asked for (`--capture-size`), else the largest offered size up to
//!    1920×1080: cheap dongles list 4K modes they only deliver as a few frames a second.
//! 3. The format asked for (`--capture-format`), else MJPEG at 1280×720 and up when offered
//!    (a USB 2.0 dongle cannot move raw 720p60 or 1080p: YUYV 1080p is 4 MB a frame), else the
//!    first raw format in [`RAW_PREFERENCE`] offered at that size, else MJPEG.
//! 4. The rate asked for (`--capture-fps`), else the highest offered up to 60.

use std::fmt;

use super::convert::RawFormat;

/// V4L2's fourcc for Motion-JPEG.
pub const MJPEG: [u8; 4] = *b"MJPG";
/// Raw formats by preference: cheapest to convert and most widely offered first.
pub const RAW_PREFERENCE: [RawFormat; 7] = [
    RawFormat::Yuyv,
    RawFormat::Uyvy,
    RawFormat::Nv12,
    RawFormat::Nv16,
    // XR24 is the native layout: a copy.
    RawFormat::Xbgr32,
    RawFormat::Bgr24,
    RawFormat::Rgb24,
];
/// The largest size chosen unless asked for, or given by DV timings.
const MAX_DEFAULT: (u32, u32) = (1920, 1080);
/// From this size up a USB dongle's raw formats are too big for USB 2.0.
const MJPEG_FROM: (u32, u32) = (1280, 720);
const MAX_DEFAULT_FPS: u32 = 60;

/// One format a device offers, with its sizes and, per size, its frame rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatOffer {
    pub fourcc: [u8; 4],
    pub sizes: Vec<SizeOffer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeOffer {
    pub width: u32,
    pub height: u32,
    /// Whole frames per second offered (empty: the driver does not say).
    pub fps: Vec<u32>,
}

/// What the user asked for; None leaves it to the rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModeRequest {
    pub fourcc: Option<[u8; 4]>,
    pub size: Option<(u32, u32)>,
    pub fps: Option<u32>,
}

/// The mode to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub fourcc: [u8; 4],
    pub width: u32,
    pub height: u32,
    /// None: leave the device's rate alone.
    pub fps: Option<u32>,
    /// Why this mode, for the log and `kvnc probe`.
    pub reason: &'static str,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}x{}", String::from_utf8_lossy(&self.fourcc), self.width, self.height)?;
        if let Some(fps) = self.fps {
            write!(f, "@{fps}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    #[error("the device offers no format kvnc can use (MJPG, YUYV, UYVY, NV12, NV16, RGB3, BGR3, XR24)")]
    NoUsableFormat,
    #[error("the device does not offer {0}")]
    FormatNotOffered(String),
}

/// Whether kvnc can take frames in `fourcc`.
pub fn is_usable(fourcc: [u8; 4]) -> bool {
    fourcc == MJPEG || RawFormat::from_fourcc(fourcc).is_some()
}

/// Chooses the mode for a device offering `offers` (see the module documentation); `timings`
/// is the size of the source's DV timings, when it has them.
pub fn choose(offers: &[FormatOffer], request: &ModeRequest, timings: Option<(u32, u32)>) -> Result<Mode, ModeError> {
    let usable: Vec<&FormatOffer> = offers.iter().filter(|offer| is_usable(offer.fourcc)).collect();
    if usable.is_empty() {
        return Err(ModeError::NoUsableFormat);
    }
    if let Some(fourcc) = request.fourcc
        && !usable.iter().any(|offer| offer.fourcc == fourcc)
    {
        return Err(ModeError::FormatNotOffered(String::from_utf8_lossy(&fourcc).into_owned()));
    }
    let candidates: Vec<&FormatOffer> =
        usable.iter().copied().filter(|offer| request.fourcc.is_none_or(|fourcc| offer.fourcc == fourcc)).collect();
    let (size, size_reason) = match (timings, request.size) {
        (Some(size), _) => (size, "the source's DV timings"),
        (None, Some(size)) => (size, "--capture-size"),
        (None, None) => (largest_size(&candidates), "the largest offered size up to 1920x1080"),
    };
    let offers_size =
        |offer: &&FormatOffer| offer.sizes.is_empty() || offer.sizes.iter().any(|s| (s.width, s.height) == size);
    let (fourcc, reason) = if let Some(fourcc) = request.fourcc {
        (fourcc, "--capture-format")
    } else {
        let big = size.0 * size.1 >= MJPEG_FROM.0 * MJPEG_FROM.1;
        let mjpeg = candidates.iter().find(|offer| offer.fourcc == MJPEG && offers_size(offer));
        let raw = RAW_PREFERENCE
            .iter()
            .find_map(|raw| candidates.iter().find(|offer| offer.fourcc == raw.fourcc() && offers_size(offer)));
        match (big, mjpeg, raw) {
            (true, Some(offer), _) => (offer.fourcc, "MJPEG: raw frames of this size do not fit USB 2.0"),
            (_, _, Some(offer)) => (offer.fourcc, "the preferred raw format offered at this size"),
            (_, Some(offer), None) => (offer.fourcc, "MJPEG, the only usable format at this size"),
            // Nothing lists this size (a DV-timings bridge may not enumerate sizes): take the
            // first usable format and let the driver say.
            (_, None, None) => (candidates[0].fourcc, "the first usable format"),
        }
    };
    let offered_fps = candidates
        .iter()
        .filter(|offer| offer.fourcc == fourcc)
        .flat_map(|offer| offer.sizes.iter())
        .filter(|s| (s.width, s.height) == size)
        .flat_map(|s| s.fps.iter().copied())
        .filter(|fps| *fps <= MAX_DEFAULT_FPS)
        .max();
    let fps = request.fps.or(offered_fps);
    let reason = if timings.is_some() || request.size.is_some() { size_reason } else { reason };
    Ok(Mode { fourcc, width: size.0, height: size.1, fps, reason })
}

/// The largest offered size (by area) within [`MAX_DEFAULT`]; the smallest offered if all
/// are larger; 1920×1080 if no size is listed at all.
fn largest_size(offers: &[&FormatOffer]) -> (u32, u32) {
    let sizes = || offers.iter().flat_map(|offer| offer.sizes.iter()).map(|s| (s.width, s.height));
    let within = |(w, h): &(u32, u32)| *w <= MAX_DEFAULT.0 && *h <= MAX_DEFAULT.1;
    sizes()
        .filter(within)
        .max_by_key(|(w, h)| w * h)
        .or_else(|| sizes().min_by_key(|(w, h)| w * h))
        .unwrap_or(MAX_DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(fourcc: &[u8; 4], sizes: &[(u32, u32, &[u32])]) -> FormatOffer {
        let sizes =
            sizes.iter().map(|(width, height, fps)| SizeOffer { width: *width, height: *height, fps: fps.to_vec() });
        FormatOffer { fourcc: *fourcc, sizes: sizes.collect() }
    }

    /// A typical MS2109 dongle: MJPEG up to 1080p (and a fake 4K), YUYV only small or slow.
    fn dongle() -> Vec<FormatOffer> {
        vec![
            offer(b"YUYV", &[(640, 480, &[30, 60]), (1280, 720, &[10]), (1920, 1080, &[5])]),
            offer(b"MJPG", &[(640, 480, &[60]), (1280, 720, &[60]), (1920, 1080, &[30, 60]), (3840, 2160, &[5])]),
        ]
    }

    fn mode(fourcc: &[u8; 4], size: (u32, u32), fps: Option<u32>) -> (String, (u32, u32), Option<u32>) {
        (String::from_utf8_lossy(fourcc).into_owned(), size, fps)
    }

    fn chosen(result: Result<Mode, ModeError>) -> (String, (u32, u32), Option<u32>) {
        let mode = result.expect("a mode");
        (String::from_utf8_lossy(&mode.fourcc).into_owned(), (mode.width, mode.height), mode.fps)
    }

    #[test]
    fn a_dongle_gets_mjpeg_1080p60_not_its_fake_4k() {
        assert_eq!(chosen(choose(&dongle(), &ModeRequest::default(), None)), mode(b"MJPG", (1920, 1080), Some(60)));
    }

    #[test]
    fn small_sizes_take_raw_frames() {
        let request = ModeRequest { size: Some((640, 480)), ..Default::default() };
        assert_eq!(chosen(choose(&dongle(), &request, None)), mode(b"YUYV", (640, 480), Some(60)));
    }

    #[test]
    fn dv_timings_decide_the_size_and_raw_bridges_get_their_raw_format() {
        // A TC358743-like bridge: UYVY and RGB only, sizes not enumerated.
        let bridge = vec![offer(b"RGB3", &[]), offer(b"UYVY", &[])];
        let mode = choose(&bridge, &ModeRequest::default(), Some((1280, 720))).unwrap();
        assert_eq!((mode.fourcc, mode.width, mode.height, mode.fps), (*b"UYVY", 1280, 720, None));
        assert_eq!(mode.reason, "the source's DV timings");
        // Timings win over a requested size.
        let request = ModeRequest { size: Some((640, 480)), ..Default::default() };
        assert_eq!(choose(&bridge, &request, Some((1920, 1080))).unwrap().width, 1920);
    }

    #[test]
    fn requests_are_honoured_or_refused() {
        let request = ModeRequest { fourcc: Some(*b"YUYV"), size: Some((1920, 1080)), fps: Some(5) };
        assert_eq!(chosen(choose(&dongle(), &request, None)), mode(b"YUYV", (1920, 1080), Some(5)));
        let request = ModeRequest { fourcc: Some(*b"NV12"), ..Default::default() };
        assert_eq!(choose(&dongle(), &request, None), Err(ModeError::FormatNotOffered("NV12".into())));
    }

    #[test]
    fn unusable_formats_are_ignored() {
        let odd = vec![offer(b"H264", &[(1920, 1080, &[60])]), offer(b"NV12", &[(1920, 1080, &[30])])];
        assert_eq!(chosen(choose(&odd, &ModeRequest::default(), None)), mode(b"NV12", (1920, 1080), Some(30)));
        let useless = vec![offer(b"H264", &[(1920, 1080, &[60])])];
        assert_eq!(choose(&useless, &ModeRequest::default(), None), Err(ModeError::NoUsableFormat));
    }

    #[test]
    fn preference_among_raw_formats() {
        let raw = vec![offer(b"RGB3", &[(800, 600, &[])]), offer(b"UYVY", &[(800, 600, &[])])];
        assert_eq!(chosen(choose(&raw, &ModeRequest::default(), None)), mode(b"UYVY", (800, 600), None));
        // Only huge sizes: the smallest is taken rather than nothing.
        let huge = vec![offer(b"YUYV", &[(3840, 2160, &[30]), (2560, 1440, &[30])])];
        assert_eq!(chosen(choose(&huge, &ModeRequest::default(), None)), mode(b"YUYV", (2560, 1440), Some(30)));
    }
}
