//! V4L2 capture (`--source v4l2:/dev/videoN`): an HDMI dongle's MJPEG or raw frames, or an HDMI
//! bridge's raw frames with DV timings, as the screen viewers see.
//!
//! One thread owns the device, because every V4L2 call blocks. It opens the device, applies
//! the source's DV timings (bridges) and the mode [`mode::choose`] picks, streams through a few
//! mmap buffers, and publishes each frame: MJPEG goes to the JPEG path as it is (Huffman tables
//! inserted), raw frames are converted ([`convert`]). Whatever goes wrong (no device, no cable,
//! no signal, no sync, timings out of range, the device gone, no frames) becomes a screen
//! saying so ([`crate::source::status`]) at the last size, and the thread tries again every
//! second; a source change (new timings) restarts streaming at the new size, and viewers
//! follow through the update pipeline's resize.
//!
//! Idle when unwatched: without viewers frames are dequeued but neither converted nor
//! published (so not compared either), and after `idle_after` streaming stops altogether until
//! a viewer connects.

pub mod convert;
pub mod ioctl;
pub mod mode;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use v4l::buffer::Type;
use v4l::capability::Flags as CapabilityFlags;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::video::capture::Parameters;
use v4l::{Device, Format, FourCC};

use self::convert::{RawFormat, YuvParams};
use self::ioctl::{DeviceEvent, DvError};
use self::mode::{FormatOffer, MJPEG, ModeRequest, SizeOffer};
use super::status::{DEFAULT_SIZE, NoPicture, no_picture_frame};
use super::{FramePublisher, FrameSource, JpegPicture, Picture, SourceFrame, SourceStatus};
use crate::rate_limit::RateLimited;

/// How often a device with no picture is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// A device that delivers nothing for this long is reopened (and its timings queried again).
const FRAME_TIMEOUT: Duration = Duration::from_secs(1);
/// mmap buffers: few, so a frame waits little in the queue (the newest frame is what counts).
const BUFFERS: u32 = 3;

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub device: PathBuf,
    pub request: ModeRequest,
    /// Streaming stops after this long without viewers.
    pub idle_after: Duration,
}

pub struct V4l2Source {
    publisher: FramePublisher,
    watched: Watched,
    /// What the capture thread last reported, for the control interface.
    status: Mutex<SourceStatus>,
}

/// Whether any viewer is connected, and since when nobody is.
struct Watched {
    state: Mutex<(bool, Instant)>,
    changed: Condvar,
}

impl Watched {
    fn lock(&self) -> MutexGuard<'_, (bool, Instant)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_watched(&self) -> bool {
        self.lock().0
    }

    /// How long nobody has watched (zero while someone does).
    fn unwatched_for(&self) -> Duration {
        let (watched, since) = *self.lock();
        if watched { Duration::ZERO } else { since.elapsed() }
    }

    fn wait_until_watched(&self) {
        let mut state = self.lock();
        while !state.0 {
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl V4l2Source {
    /// Starts the capture thread for `config.device`; it opens the device when the first viewer
    /// connects (see [`FrameSource::set_watched`]), showing "starting" until the first frame. A
    /// missing device is not an error: it is waited for.
    pub fn start(config: CaptureConfig) -> anyhow::Result<Arc<Self>> {
        let (width, height) = DEFAULT_SIZE;
        let waiting = NoPicture::Starting;
        let source = Arc::new(Self {
            publisher: FramePublisher::new(Picture::Pixels(no_picture_frame(width, height, &waiting))),
            watched: Watched { state: Mutex::new((false, Instant::now())), changed: Condvar::new() },
            status: Mutex::new(SourceStatus {
                source: format!("v4l2:{}", config.device.display()),
                signal: false,
                mode: None,
                problem: Some(waiting.to_string()),
            }),
        });
        let weak = Arc::downgrade(&source);
        std::thread::Builder::new().name("capture".into()).spawn(move || run(&weak, &config))?;
        Ok(source)
    }
}

impl V4l2Source {
    fn report(&self, update: impl FnOnce(&mut SourceStatus)) {
        update(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl FrameSource for V4l2Source {
    fn status(&self) -> SourceStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn frames(&self) -> tokio::sync::watch::Receiver<Arc<SourceFrame>> {
        self.publisher.subscribe()
    }

    fn set_watched(&self, watched: bool) {
        let mut state = self.watched.lock();
        if state.0 != watched {
            *state = (watched, Instant::now());
            self.watched.changed.notify_all();
        }
    }
}

/// The first capture device among /dev/video*, in number order (a dongle's metadata node is
/// skipped: it cannot capture video).
pub fn find_capture_device() -> Option<PathBuf> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let number = name.strip_prefix("video")?.parse().ok()?;
            Some((number, entry.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, path)| path).find(|path| is_capture_device(path))
}

fn is_capture_device(path: &Path) -> bool {
    Device::with_path(path)
        .and_then(|device| device.query_caps())
        .is_ok_and(|caps| caps.capabilities.contains(CapabilityFlags::VIDEO_CAPTURE))
}

/// The capture thread: capture until something goes wrong, show why, retry.
fn run(source: &Weak<V4l2Source>, config: &CaptureConfig) {
    let mut shown: Option<NoPicture> = None;
    let mut size = DEFAULT_SIZE;
    let mut known = KnownOffers::default();
    loop {
        let Some(strong) = source.upgrade() else { return };
        match capture(&strong, config, &mut size, &mut known) {
            Ok(()) => shown = None,
            Err(why) => {
                if shown.as_ref() != Some(&why) {
                    tracing::warn!("capture from {}: {why}", config.device.display());
                    strong.report(|status| {
                        status.signal = false;
                        status.problem = Some(why.to_string());
                    });
                    strong.publisher.publish(Picture::Pixels(no_picture_frame(size.0, size.1, &why)));
                    shown = Some(why);
                }
                drop(strong);
                std::thread::sleep(RETRY);
            }
        }
    }
}

/// What a frame from the device is. Public with [`picture`], for the capture benchmark.
#[derive(Debug, Clone, Copy)]
pub enum FrameKind {
    Jpeg,
    Raw(RawFormat, YuvParams),
}

/// The offers of the device last opened, by its identity: enumerating every format, size and
/// rate is dozens of ioctls, too slow to repeat each time streaming restarts for a viewer.
#[derive(Default)]
struct KnownOffers {
    device: Option<(String, String, String)>,
    offers: Vec<FormatOffer>,
}

impl KnownOffers {
    fn of(&mut self, device: &Device, caps: &v4l::capability::Capabilities) -> &[FormatOffer] {
        let identity = (caps.driver.clone(), caps.card.clone(), caps.bus.clone());
        if self.device.as_ref() != Some(&identity) {
            self.offers = offers(device);
            self.device = Some(identity);
        }
        &self.offers
    }
}

/// One streaming session. Ok when it should simply start over (new timings, idle), Err with
/// the reason there is no picture.
fn capture(
    source: &V4l2Source,
    config: &CaptureConfig,
    size: &mut (u16, u16),
    known: &mut KnownOffers,
) -> Result<(), NoPicture> {
    source.watched.wait_until_watched();
    let asked = Instant::now();
    let path = &config.device;
    let device = Device::with_path(path).map_err(|e| open_error(path, &e))?;
    let caps = device.query_caps().map_err(|e| device_error(path, &e))?;
    if !caps.capabilities.contains(CapabilityFlags::VIDEO_CAPTURE) {
        return Err(NoPicture::NotCapture(path.display().to_string()));
    }
    let handle = device.handle();
    let fd = ioctl::device_fd(&handle);
    if let Ok(Some(false)) = ioctl::rx_power_present(fd) {
        return Err(NoPicture::NoCable);
    }
    let timings = match ioctl::query_dv_timings(fd) {
        Ok(timings) => {
            ioctl::set_dv_timings(fd, &timings).map_err(dv_no_picture)?;
            if let Err(e) = ioctl::subscribe_source_change(fd) {
                tracing::debug!("no source-change events ({e}); timings are checked on timeouts");
            }
            Some(timings)
        }
        Err(DvError::NotSupported) => None,
        Err(e) => return Err(dv_no_picture(e)),
    };
    let offers = known.of(&device, &caps);
    let mode = mode::choose(offers, &config.request, timings.map(|t| (t.width, t.height)))
        .map_err(|e| NoPicture::DeviceError(e.to_string()))?;
    let format = device
        .set_format(&Format::new(mode.width, mode.height, FourCC::new(&mode.fourcc)))
        .map_err(|e| device_error(path, &e))?;
    if let Some(fps) = mode.fps
        && let Err(e) = device.set_params(&Parameters::with_fps(fps))
    {
        tracing::debug!("the device keeps its own frame rate ({e})");
    }
    let (width, height) = match (u16::try_from(format.width), u16::try_from(format.height)) {
        (Ok(width), Ok(height)) if width > 0 && height > 0 => (width, height),
        _ => return Err(NoPicture::DeviceError(format!("unusable frame size {}x{}", format.width, format.height))),
    };
    let kind = if format.fourcc.repr == MJPEG {
        FrameKind::Jpeg
    } else {
        let raw = RawFormat::from_fourcc(format.fourcc.repr)
            .ok_or_else(|| NoPicture::DeviceError(format!("the device switched to {}", format.fourcc)))?;
        // The crate's Format carries no ycbcr_enc: 0 is V4L2's DEFAULT, derived from the colorspace.
        FrameKind::Raw(
            raw,
            YuvParams::from_v4l2(format.height, format.colorspace as u32, 0, format.quantization as u32),
        )
    };
    tracing::info!(
        "capturing {path} ({}, {}): {} {width}x{height}{} ({}); stride {}",
        caps.card,
        caps.driver,
        format.fourcc,
        mode.fps.map(|fps| format!("@{fps}")).unwrap_or_default(),
        mode.reason,
        format.stride,
        path = path.display(),
    );
    source.report(|status| {
        status.signal = true;
        status.problem = None;
        status.mode = Some(format!(
            "{} {width}x{height}{}",
            format.fourcc,
            mode.fps.map(|fps| format!("@{fps}")).unwrap_or_default()
        ));
    });
    let mut stream = Stream::with_buffers(&device, Type::VideoCapture, BUFFERS).map_err(|e| device_error(path, &e))?;
    stream.set_timeout(FRAME_TIMEOUT);
    let mut dropped = RateLimited::default();
    let mut first_frame = true;
    loop {
        if source.watched.unwatched_for() > config.idle_after {
            tracing::info!("no viewers for {:?}: capture stopped until one connects", config.idle_after);
            return Ok(());
        }
        if timings.is_some() && handle.poll(POLLPRI, 0).is_ok_and(|ready| ready > 0) {
            while let Ok(Some(event)) = ioctl::dequeue_event(fd) {
                if let DeviceEvent::SourceChange { .. } = event {
                    tracing::info!("the source changed: restarting capture");
                    return Ok(());
                }
            }
        }
        match stream.next() {
            Ok((buffer, meta)) => {
                if std::mem::take(&mut first_frame) {
                    tracing::info!(
                        "first frame from the device {} ms after a viewer asked",
                        asked.elapsed().as_millis()
                    );
                }
                // A newer frame is already waiting: this one is stale, show that one instead
                // (the buffers fill in order, so a slow conversion would otherwise lag behind).
                let newer_waiting = handle.poll(POLLIN, 0).is_ok_and(|ready| ready > 0);
                if newer_waiting || !source.watched.is_watched() {
                    continue;
                }
                let used = usize::try_from(meta.bytesused).unwrap_or(usize::MAX).min(buffer.len());
                match picture(kind, &buffer[..used], width, height, format.stride) {
                    Ok(picture) => {
                        *size = (width, height);
                        source.publisher.publish(picture);
                    }
                    Err(e) => {
                        dropped.warn(|count| format!("dropped a broken frame ({count} so far): {e:#}"));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                // A bridge says why frames stopped (or that the timings changed); a dongle
                // just stops: reopen it.
                return match timings.map(|before| (before, ioctl::query_dv_timings(fd))) {
                    Some((before, Ok(now))) if now != before => Ok(()),
                    Some((_, Err(e))) => Err(dv_no_picture(e)),
                    _ => Err(NoPicture::NoFrames),
                };
            }
            Err(e) => return Err(open_error(path, &e)),
        }
    }
}

// The v4l crate's poll takes the raw bits; rustix has the platform's values. POLLPRI is how
// V4L2 reports pending events, POLLIN a filled buffer (only asked once streaming: polling for
// it on an idle device starts the kernel's read() emulation, which then holds the device).
const POLLPRI: i16 = rustix::event::PollFlags::PRI.bits() as i16;
const POLLIN: i16 = rustix::event::PollFlags::IN.bits() as i16;

/// A captured buffer as a picture: the JPEG path for MJPEG, a conversion for raw frames.
/// Public so that `benches/capture.rs` measures this very step rather than a copy of it.
pub fn picture(kind: FrameKind, data: &[u8], width: u16, height: u16, stride: u32) -> anyhow::Result<Picture> {
    Ok(match kind {
        FrameKind::Jpeg => Picture::Jpeg(JpegPicture::from_capture(data)?),
        FrameKind::Raw(format, params) => {
            let mut frame = rfb::Frame::new(width, height);
            convert::convert(format, params, width, height, stride, data, &mut frame)?;
            Picture::Pixels(frame)
        }
    })
}

/// Every usable format the device offers, with its sizes and rates (what the mode rule picks
/// from). Enumeration errors leave a format without sizes rather than fail: some bridges
/// enumerate no sizes at all.
pub fn offers(device: &Device) -> Vec<FormatOffer> {
    let formats = device.enum_formats().unwrap_or_default();
    formats
        .into_iter()
        .filter(|format| mode::is_usable(format.fourcc.repr))
        .map(|format| {
            let sizes = device.enum_framesizes(format.fourcc).unwrap_or_default();
            let sizes = sizes
                .into_iter()
                .flat_map(|size| discrete_sizes(size.size))
                .map(|size| SizeOffer {
                    width: size.width,
                    height: size.height,
                    fps: frame_rates(device, format.fourcc, size.width, size.height),
                })
                .collect();
            FormatOffer { fourcc: format.fourcc.repr, sizes }
        })
        .collect()
}

/// Common screen sizes, offered from a stepwise range (listing every step would be millions).
const COMMON_SIZES: [(u32, u32); 8] =
    [(640, 480), (800, 600), (1024, 768), (1280, 720), (1280, 1024), (1600, 900), (1680, 1050), (1920, 1080)];

/// A device's sizes as a list: discrete ones as they are, a stepwise range as the common sizes
/// in it plus its largest.
fn discrete_sizes(size: v4l::framesize::FrameSizeEnum) -> Vec<v4l::framesize::Discrete> {
    use v4l::framesize::{Discrete, FrameSizeEnum};
    match size {
        FrameSizeEnum::Discrete(discrete) => vec![discrete],
        FrameSizeEnum::Stepwise(range) => {
            let fits = |value: u32, min: u32, max: u32, step: u32| {
                (min..=max).contains(&value) && (value - min).is_multiple_of(step.max(1))
            };
            let mut sizes: Vec<Discrete> = COMMON_SIZES
                .iter()
                .filter(|(w, h)| {
                    fits(*w, range.min_width, range.max_width, range.step_width)
                        && fits(*h, range.min_height, range.max_height, range.step_height)
                })
                .map(|&(width, height)| Discrete { width, height })
                .collect();
            sizes.push(Discrete { width: range.max_width, height: range.max_height });
            sizes
        }
    }
}

fn frame_rates(device: &Device, fourcc: FourCC, width: u32, height: u32) -> Vec<u32> {
    let intervals = device.enum_frameintervals(fourcc, width, height).unwrap_or_default();
    intervals
        .into_iter()
        .filter_map(|interval| match interval.interval {
            v4l::frameinterval::FrameIntervalEnum::Discrete(fraction) if fraction.numerator > 0 => {
                Some(fraction.denominator / fraction.numerator)
            }
            _ => None,
        })
        .collect()
}

fn open_error(path: &Path, error: &std::io::Error) -> NoPicture {
    match error.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
        Some(rustix::io::Errno::NOENT | rustix::io::Errno::NODEV | rustix::io::Errno::NXIO) => {
            NoPicture::NoDevice(path.display().to_string())
        }
        _ => device_error(path, error),
    }
}

fn device_error(path: &Path, error: &std::io::Error) -> NoPicture {
    NoPicture::DeviceError(format!("{}: {error}", path.display()))
}

fn dv_no_picture(error: DvError) -> NoPicture {
    match error {
        DvError::NoSignal => NoPicture::NoSignal,
        DvError::NoSync => NoPicture::NoSync,
        DvError::OutOfRange => NoPicture::OutOfRange,
        other => NoPicture::DeviceError(other.to_string()),
    }
}
