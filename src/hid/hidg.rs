//! The sink that writes reports to the target's USB host: one `/dev/hidgN` per HID function
//! (or any path standing in for one, e.g. a FIFO a test reads).
//!
//! Each device has its own thread, so nothing on the async runtime ever waits for the host. f_hid
//! accepts one report at a time and answers EAGAIN until the host has collected it, and
//! ESHUTDOWN while the host has not configured the device (asleep, unplugged, powered off); the
//! node vanishes while the gadget is unbound. So a device thread:
//! - writes its reports in order while the host collects them;
//! - once the host stops listening, keeps only the newest state (without relative movement) and
//!   retries it until the host is back, then carries on with whatever came next;
//! - reopens the node when it went away, and logs each change of host state once;
//! - for the keyboard, reads the LED output reports the host sets (Num, Caps, Scroll Lock).

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use tokio::sync::watch;

use super::{HidReport, InputSink, Role};

/// At most this many reports wait for a host that is collecting them; beyond that the oldest
/// give way (a host polling every 1–10 ms drains far faster than anyone types or points).
const MAX_QUEUED: usize = 256;
/// How long a report may wait for the host to collect the previous one before the host counts
/// as not listening.
const COLLECT_TIMEOUT: Duration = Duration::from_millis(200);
/// How often a device that is gone or a host that is not listening is tried again.
const RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// Writes to one node per [`Role`]; roles without a node are refused.
pub struct HidgSink {
    devices: HashMap<Role, Arc<Device>>,
    leds: watch::Receiver<Option<u8>>,
}

impl HidgSink {
    /// Starts a writer thread for each `(role, path)`. The paths need not exist yet.
    pub fn start(paths: &[(Role, PathBuf)]) -> anyhow::Result<Arc<Self>> {
        let (led_sender, leds) = watch::channel(None);
        let led_sender = Arc::new(led_sender);
        let mut devices = HashMap::new();
        for (role, path) in paths {
            let device = Arc::new(Device {
                role: *role,
                path: path.clone(),
                queue: Mutex::new(Queue::default()),
                wake: rustix::event::eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)
                    .context("cannot create an eventfd")?,
            });
            let thread_device = device.clone();
            let leds = (*role == Role::Keyboard).then(|| led_sender.clone());
            std::thread::Builder::new()
                .name(format!("hid-{}", role.name()))
                .spawn(move || thread_device.run(leds.as_deref()))
                .with_context(|| format!("cannot start the {} writer", role.name()))?;
            if devices.insert(*role, device).is_some() {
                anyhow::bail!("two paths for the {}", role.name());
            }
        }
        Ok(Arc::new(Self { devices, leds }))
    }
}

impl InputSink for HidgSink {
    fn send_report(&self, report: &HidReport) -> anyhow::Result<()> {
        let role = report.role();
        let device = self.devices.get(&role).ok_or_else(|| anyhow!("no {} device configured", role.name()))?;
        device.push(*report);
        Ok(())
    }

    fn leds(&self) -> watch::Receiver<Option<u8>> {
        self.leds.clone()
    }
}

#[derive(Default)]
struct Queue {
    reports: VecDeque<HidReport>,
    /// The host stopped collecting: only the newest state is kept, and retried.
    host_away: bool,
}

struct Device {
    role: Role,
    path: PathBuf,
    queue: Mutex<Queue>,
    /// Written to wake the thread when a report arrives while it waits on the device.
    wake: OwnedFd,
}

/// Why a device thread is not delivering, logged once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostState {
    Listening,
    /// Reports are not collected (EAGAIN past the timeout): asleep, or a host without a driver.
    NotCollecting,
    /// ESHUTDOWN: the host has not configured the device (unplugged, powered off, rebooting).
    NotConfigured,
    /// The node does not exist or cannot be opened (gadget unbound; a FIFO without a reader).
    NoDevice,
}

impl Device {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, report: HidReport) {
        {
            let mut queue = self.lock();
            if queue.host_away {
                // Nobody is listening: the newest state replaces whatever waited.
                queue.reports.clear();
                queue.reports.push_back(report.as_state());
            } else {
                if queue.reports.len() >= MAX_QUEUED {
                    queue.reports.pop_front();
                }
                queue.reports.push_back(report);
            }
        }
        // A full counter only means a wake-up is already pending.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    fn front(&self) -> Option<HidReport> {
        self.lock().reports.front().copied()
    }

    fn delivered(&self) {
        let mut queue = self.lock();
        queue.reports.pop_front();
        queue.host_away = false;
    }

    /// The host stopped listening: keep only the newest state, to be retried.
    fn host_away(&self) {
        let mut queue = self.lock();
        queue.host_away = true;
        if let Some(newest) = queue.reports.back().map(HidReport::as_state) {
            queue.reports.clear();
            queue.reports.push_back(newest);
        }
    }

    fn run(&self, leds: Option<&watch::Sender<Option<u8>>>) {
        let mut state = HostState::Listening;
        let mut file: Option<File> = None;
        let mut set_state = |new: HostState, error: Option<&io::Error>| {
            if new != state {
                log_state_change(self.role, &self.path, new, error);
                state = new;
            }
        };
        loop {
            let Some(open) = file.as_mut() else {
                match open_device(&self.path, leds.is_some()) {
                    Ok(opened) => {
                        tracing::debug!("{}: opened {}", self.role.name(), self.path.display());
                        file = Some(opened);
                    }
                    Err(error) => {
                        set_state(HostState::NoDevice, Some(&error));
                        self.host_away();
                        self.sleep_unless_woken(RETRY_INTERVAL);
                    }
                }
                continue;
            };
            let Some(report) = self.front() else {
                // Nothing to send: wait for a report, or an LED change from the host.
                if let Err(error) = self.wait(open, leds, None) {
                    set_state(HostState::NoDevice, Some(&error));
                    file = None;
                }
                continue;
            };
            match self.write(open, leds, &report) {
                Ok(()) => {
                    set_state(HostState::Listening, None);
                    self.delivered();
                }
                Err(WriteError::NotCollected) => {
                    set_state(HostState::NotCollecting, None);
                    self.host_away();
                }
                Err(WriteError::Io(error)) => {
                    match error.raw_os_error().map(Errno::from_raw_os_error) {
                        Some(Errno::SHUTDOWN) => set_state(HostState::NotConfigured, Some(&error)),
                        Some(Errno::NODEV | Errno::NOENT | Errno::PIPE | Errno::NXIO | Errno::BADF) => {
                            set_state(HostState::NoDevice, Some(&error));
                            file = None;
                        }
                        _ => {
                            tracing::warn!("{}: writing to {} failed: {error}", self.role.name(), self.path.display());
                            self.delivered();
                            continue;
                        }
                    }
                    self.host_away();
                    self.sleep_unless_woken(RETRY_INTERVAL);
                }
            }
        }
    }

    /// Writes one report once the device takes it, reading LED reports meanwhile.
    fn write(
        &self,
        file: &mut File,
        leds: Option<&watch::Sender<Option<u8>>>,
        report: &HidReport,
    ) -> Result<(), WriteError> {
        let deadline = Instant::now() + COLLECT_TIMEOUT;
        let bytes = report.to_bytes();
        loop {
            match file.write(&bytes) {
                Ok(n) if n == bytes.len() => return Ok(()),
                Ok(n) => return Err(WriteError::Io(io::Error::other(format!("short write of {n} bytes")))),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(WriteError::Io(error)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WriteError::NotCollected);
            }
            self.wait(file, leds, Some(left)).map_err(WriteError::Io)?;
        }
    }

    /// Waits until the device is writable (when `writable` is given, at most that long), a
    /// report arrives, or the host sets the LEDs (which are read here).
    fn wait(
        &self,
        file: &mut File,
        leds: Option<&watch::Sender<Option<u8>>>,
        writable: Option<Duration>,
    ) -> io::Result<()> {
        let mut flags = PollFlags::empty();
        if leds.is_some() {
            flags |= PollFlags::IN;
        }
        if writable.is_some() {
            flags |= PollFlags::OUT;
        }
        let (device_ready, _) = self.poll_with_wake(Some((file.as_fd(), flags)), writable)?;
        if device_ready.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL) && !flags.contains(PollFlags::OUT)
        {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        }
        if let Some(leds) = leds
            && device_ready.contains(PollFlags::IN)
        {
            read_leds(file, leds)?;
        }
        Ok(())
    }

    /// Sleeps before the next retry; a new report cuts it short.
    fn sleep_unless_woken(&self, timeout: Duration) {
        let _ = self.poll_with_wake(None, Some(timeout));
    }

    /// Polls the device (if any) and the wake-up eventfd; returns the device's readiness and
    /// whether a wake-up came (which is consumed).
    fn poll_with_wake(
        &self,
        device: Option<(std::os::fd::BorrowedFd<'_>, PollFlags)>,
        timeout: Option<Duration>,
    ) -> io::Result<(PollFlags, bool)> {
        let timeout = timeout.map(|timeout| Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        });
        // Two slots on the stack (this runs for every report); the second only with a device.
        let mut fds = [PollFd::new(&self.wake, PollFlags::IN), PollFd::new(&self.wake, PollFlags::empty())];
        if let Some((fd, flags)) = device {
            fds[1] = PollFd::from_borrowed_fd(fd, flags);
        }
        let fds = &mut fds[..1 + usize::from(device.is_some())];
        match rustix::event::poll(fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
        let woken = fds[0].revents().contains(PollFlags::IN);
        let device_ready = fds.get(1).map(PollFd::revents).unwrap_or(PollFlags::empty());
        if woken {
            let mut counter = [0u8; 8];
            let _ = rustix::io::read(&self.wake, &mut counter);
        }
        Ok((device_ready, woken))
    }
}

enum WriteError {
    NotCollected,
    Io(io::Error),
}

/// Opens a device node (or a stand-in) without blocking. The keyboard's character device is
/// opened for reading too, for its LED reports; a FIFO or file never is (it would read back
/// what we wrote).
fn open_device(path: &Path, wants_leds: bool) -> io::Result<File> {
    let is_char_device = std::fs::metadata(path)?.file_type().is_char_device();
    OpenOptions::new()
        .read(wants_leds && is_char_device)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

/// Reads every pending LED output report (1 byte each: Num, Caps, Scroll, Compose, Kana);
/// f_hid without an OUT endpoint keeps only the latest.
fn read_leds(file: &mut File, leds: &watch::Sender<Option<u8>>) -> io::Result<()> {
    let mut buf = [0u8; 8];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                let value = buf[n - 1];
                leds.send_if_modified(|current| {
                    let changed = current.replace(value) != Some(value);
                    if changed {
                        tracing::info!("the target set the keyboard LEDs: {}", describe_leds(value));
                    }
                    changed
                });
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

fn describe_leds(leds: u8) -> String {
    let names = [(super::led::NUM_LOCK, "Num"), (super::led::CAPS_LOCK, "Caps"), (super::led::SCROLL_LOCK, "Scroll")];
    let on: Vec<&str> = names.iter().filter(|(bit, _)| leds & bit != 0).map(|(_, name)| *name).collect();
    if on.is_empty() { "all off".into() } else { format!("{} Lock on", on.join("+")) }
}

fn log_state_change(role: Role, path: &Path, state: HostState, error: Option<&io::Error>) {
    let (role, path) = (role.name(), path.display());
    let why = error.map(|error| format!(" ({error})")).unwrap_or_default();
    match state {
        HostState::Listening => tracing::info!("{role}: the target's host is collecting reports from {path} again"),
        HostState::NotCollecting => {
            tracing::warn!(
                "{role}: the target's host does not collect reports from {path} (asleep, or no driver); keeping the latest state"
            )
        }
        HostState::NotConfigured => {
            tracing::warn!(
                "{role}: the target's host has not configured {path} (unplugged or off){why}; keeping the latest state"
            )
        }
        HostState::NoDevice => tracing::warn!("{role}: cannot open {path}{why}; retrying"),
    }
}
