//! `kvnc probe`: what a new user runs first on a board. It reports the capture devices (formats,
//! sizes, rates, the mode kvnc would pick and whether it delivers frames, DV timings and signal),
//! the USB device controllers and gadgets, and what is missing with the fix; the exit status
//! says whether kvnc can run as a KVM here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use v4l::Device;
use v4l::buffer::Type;
use v4l::capability::Flags as CapabilityFlags;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Format, FourCC};

use crate::hid::gadget;
use crate::source::v4l2::mode::{self, FormatOffer, ModeRequest};
use crate::source::v4l2::{self, ioctl};

/// How long the chosen mode is tried for frames.
const TRIAL: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
pub struct Report {
    pub capture_devices: Vec<CaptureDevice>,
    /// The device `--source auto` would use.
    pub auto: Option<PathBuf>,
    pub configfs_mounted: bool,
    pub udcs: Vec<UdcReport>,
    pub gadgets: Vec<String>,
    /// What stands between this machine and a working KVM, each with its fix.
    pub problems: Vec<String>,
}

impl Report {
    /// Capture and a UDC: the screen in and the keyboard out.
    pub fn can_run_as_kvm(&self) -> bool {
        self.auto.is_some() && !self.udcs.is_empty() && self.configfs_mounted
    }
}

#[derive(Debug, Serialize)]
pub struct CaptureDevice {
    pub path: PathBuf,
    pub driver: String,
    pub card: String,
    pub bus: String,
    pub can_capture: bool,
    pub formats: Vec<FormatReport>,
    /// "1920x1080p60.00", or why there are none (no signal, not supported).
    pub dv_timings: String,
    /// +5 V from the HDMI cable, when the device can tell.
    pub cable: Option<bool>,
    /// The mode `--source v4l2:PATH` would capture, and why.
    pub chosen_mode: Option<String>,
    pub chosen_because: Option<String>,
    /// Frames the chosen mode delivered in the trial, as frames per second.
    pub measured_fps: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FormatReport {
    pub fourcc: String,
    /// "1920x1080 (60, 30 fps)".
    pub sizes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct UdcReport {
    pub name: String,
    pub state: String,
}

/// Looks at the machine (opens capture devices briefly; needs no root except for gadgets).
pub fn probe() -> Report {
    let capture_devices: Vec<CaptureDevice> = video_nodes().iter().map(|path| capture_device(path)).collect();
    let auto = v4l2::find_capture_device();
    let configfs_mounted = std::fs::read_to_string("/proc/mounts").is_ok_and(|mounts| mounts.contains(" configfs "));
    let udcs: Vec<UdcReport> = usb_gadget::udcs()
        .unwrap_or_default()
        .into_iter()
        .map(|udc| {
            let name = udc.name().to_string_lossy().into_owned();
            UdcReport { state: gadget::udc_state(&name), name }
        })
        .collect();
    let gadgets = if configfs_mounted {
        usb_gadget::registered()
            .map(|gadgets| gadgets.iter().map(|g| g.name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut problems = Vec::new();
    if auto.is_none() {
        problems.push(
            "no capture device: plug in an HDMI-to-USB dongle (or enable the CSI bridge's overlay); \
             kvnc serves the demo target until there is one"
                .to_string(),
        );
    }
    if udcs.is_empty() {
        problems.push(
            "no USB device controller: on a Raspberry Pi 4 add `dtoverlay=dwc2,dr_mode=peripheral` to \
             /boot/firmware/config.txt, add `dwc2` and `libcomposite` to /etc/modules, and reboot"
                .to_string(),
        );
    }
    if !configfs_mounted {
        problems.push("configfs is not mounted: `mount -t configfs none /sys/kernel/config`".to_string());
    }
    Report { capture_devices, auto, configfs_mounted, udcs, gadgets, problems }
}

fn video_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let number = entry.file_name().to_string_lossy().strip_prefix("video")?.parse().ok()?;
                    Some((number, entry.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes.into_iter().map(|(_, path)| path).collect()
}

fn capture_device(path: &Path) -> CaptureDevice {
    let mut report = CaptureDevice {
        path: path.to_path_buf(),
        driver: String::new(),
        card: String::new(),
        bus: String::new(),
        can_capture: false,
        formats: Vec::new(),
        dv_timings: String::new(),
        cable: None,
        chosen_mode: None,
        chosen_because: None,
        measured_fps: None,
        error: None,
    };
    let device = match Device::with_path(path).and_then(|device| Ok((device.query_caps()?, device))) {
        Ok((caps, device)) => {
            report.driver = caps.driver;
            report.card = caps.card;
            report.bus = caps.bus;
            report.can_capture = caps.capabilities.contains(CapabilityFlags::VIDEO_CAPTURE);
            device
        }
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    if !report.can_capture {
        return report;
    }
    let offers = v4l2::offers(&device);
    report.formats = offers.iter().map(format_report).collect();
    let handle = device.handle();
    let fd = ioctl::device_fd(&handle);
    report.cable = ioctl::rx_power_present(fd).ok().flatten();
    let timings = match ioctl::query_dv_timings(fd) {
        Ok(timings) => {
            report.dv_timings = timings.to_string();
            Some((timings.width, timings.height))
        }
        Err(e) => {
            report.dv_timings = e.to_string();
            None
        }
    };
    match mode::choose(&offers, &ModeRequest::default(), timings) {
        Ok(mode) => {
            report.chosen_mode = Some(mode.to_string());
            report.chosen_because = Some(mode.reason.to_string());
            match trial(&device, &mode) {
                Ok(fps) => report.measured_fps = Some(fps),
                Err(e) => report.error = Some(format!("the chosen mode delivers no frames: {e}")),
            }
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

fn format_report(offer: &FormatOffer) -> FormatReport {
    let sizes = offer
        .sizes
        .iter()
        .map(|size| {
            let fps: Vec<String> = size.fps.iter().map(u32::to_string).collect();
            if fps.is_empty() {
                format!("{}x{}", size.width, size.height)
            } else {
                format!("{}x{} ({} fps)", size.width, size.height, fps.join(", "))
            }
        })
        .collect();
    FormatReport { fourcc: String::from_utf8_lossy(&offer.fourcc).into_owned(), sizes }
}

/// Streams `mode` for [`TRIAL`] and measures the frame rate: dongles list modes they do not
/// deliver.
fn trial(device: &Device, mode: &mode::Mode) -> std::io::Result<f64> {
    device.set_format(&Format::new(mode.width, mode.height, FourCC::new(&mode.fourcc)))?;
    let mut stream = Stream::with_buffers(device, Type::VideoCapture, 3)?;
    stream.set_timeout(TRIAL);
    let started = Instant::now();
    let mut frames = 0u32;
    let mut first = None;
    while started.elapsed() < TRIAL {
        stream.next()?;
        frames += 1;
        first.get_or_insert_with(Instant::now);
    }
    // Counted from the first frame: starting the stream takes a while on some devices.
    let elapsed = first.map_or(Duration::ZERO, |first| first.elapsed());
    Ok(if frames > 1 && !elapsed.is_zero() { f64::from(frames - 1) / elapsed.as_secs_f64() } else { 0.0 })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Capture devices:")?;
        if self.capture_devices.is_empty() {
            writeln!(f, "  none (no /dev/video*)")?;
        }
        for device in &self.capture_devices {
            let auto = if self.auto.as_ref() == Some(&device.path) { "  <- --source auto" } else { "" };
            writeln!(f, "  {}: {} ({}, {}){auto}", device.path.display(), device.card, device.driver, device.bus)?;
            if !device.can_capture {
                writeln!(f, "    not a video capture node")?;
                continue;
            }
            for format in &device.formats {
                writeln!(f, "    {}: {}", format.fourcc, format.sizes.join(", "))?;
            }
            writeln!(f, "    DV timings: {}", device.dv_timings)?;
            if let Some(cable) = device.cable {
                writeln!(f, "    HDMI +5V: {}", if cable { "present" } else { "absent" })?;
            }
            if let (Some(mode), Some(because)) = (&device.chosen_mode, &device.chosen_because) {
                writeln!(f, "    kvnc would capture {mode} ({because})")?;
            }
            if let Some(fps) = device.measured_fps {
                writeln!(f, "    delivered {fps:.1} frames/s in a {}-second trial", TRIAL.as_secs())?;
            }
            if let Some(error) = &device.error {
                writeln!(f, "    problem: {error}")?;
            }
        }
        writeln!(f, "USB device controllers:")?;
        if self.udcs.is_empty() {
            writeln!(f, "  none")?;
        }
        for udc in &self.udcs {
            writeln!(f, "  {}: {}", udc.name, udc.state)?;
        }
        writeln!(f, "configfs: {}", if self.configfs_mounted { "mounted" } else { "not mounted" })?;
        writeln!(
            f,
            "USB gadgets: {}",
            if self.gadgets.is_empty() { "none".to_string() } else { self.gadgets.join(", ") }
        )?;
        if self.problems.is_empty() {
            writeln!(f, "Ready: kvnc can run as a KVM here (`kvnc serve --source auto --hid gadget`).")
        } else {
            writeln!(f, "Missing:")?;
            for problem in &self.problems {
                writeln!(f, "  - {problem}")?;
            }
            Ok(())
        }
    }
}
