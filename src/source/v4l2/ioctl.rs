//! The V4L2 ioctls the `v4l` crate lacks: DV timings (what an HDMI receiver locked on to, and
//! why there is no picture), source-change events, and the receiver's cable detection.
//!
//! This is the one module of kvnc allowed to contain `unsafe`: every ioctl goes through
//! [`rustix::ioctl`], whose opcodes are computed from the bindgen structs' sizes at compile time
//! (so they are right for any architecture: `VIDIOC_DQEVENT` differs on 32-bit ARM because
//! `v4l2_event` embeds a `timespec`), and the wrappers below are safe.
//!
//! Errors follow ustreamer's reading of `VIDIOC_QUERY_DV_TIMINGS` (hardware.md §7).
#![allow(unsafe_code)] // The project's one exception; see the module documentation.

use std::ffi::c_int;
use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};

use rustix::io::Errno;
use rustix::ioctl::{Getter, Opcode, Setter, Updater, ioctl, opcode};
use v4l::v4l_sys::{
    V4L2_CID_DV_RX_POWER_PRESENT, V4L2_DV_BT_656_1120, V4L2_DV_FL_CAN_DETECT_REDUCED_FPS, V4L2_DV_FL_REDUCED_FPS,
    V4L2_EVENT_SOURCE_CHANGE, V4L2_EVENT_SRC_CH_RESOLUTION, v4l2_bt_timings, v4l2_control, v4l2_dv_timings,
    v4l2_dv_timings__bindgen_ty_1, v4l2_event, v4l2_event_subscription,
};

// The request codes, as `<linux/videodev2.h>` defines them (`_IOWR('V', 87, struct …)` etc.).
const VIDIOC_G_CTRL: Opcode = opcode::read_write::<v4l2_control>(b'V', 27);
const VIDIOC_G_INPUT: Opcode = opcode::read::<c_int>(b'V', 38);
const VIDIOC_S_DV_TIMINGS: Opcode = opcode::read_write::<v4l2_dv_timings>(b'V', 87);
const VIDIOC_G_DV_TIMINGS: Opcode = opcode::read_write::<v4l2_dv_timings>(b'V', 88);
const VIDIOC_DQEVENT: Opcode = opcode::read::<v4l2_event>(b'V', 89);
const VIDIOC_SUBSCRIBE_EVENT: Opcode = opcode::write::<v4l2_event_subscription>(b'V', 90);
const VIDIOC_QUERY_DV_TIMINGS: Opcode = opcode::read::<v4l2_dv_timings>(b'V', 99);

// The zeroed `v4l2_dv_timings` below fills the union through `reserved`: that only initialises
// every byte if `reserved` is the union's largest member.
const _: () = assert!(
    std::mem::size_of::<v4l2_bt_timings>() <= std::mem::size_of::<v4l2_dv_timings__bindgen_ty_1>()
        && std::mem::size_of::<[u32; 32]>() == std::mem::size_of::<v4l2_dv_timings__bindgen_ty_1>()
);

/// The device's file descriptor, borrowed for as long as the `v4l` handle lives.
///
/// The `v4l` crate hands out only a raw fd; this is the one place that turns it into a
/// [`BorrowedFd`] (for these ioctls and for `rustix::event::poll`), so no other module needs
/// `unsafe` for it.
pub fn device_fd(handle: &v4l::device::Handle) -> BorrowedFd<'_> {
    let raw: RawFd = handle.fd();
    // SAFETY: `Handle` owns `raw`: it opened it and closes it only in its `Drop`. The returned
    // borrow cannot outlive `handle`, so the fd stays open (and is not reused) while it is used.
    unsafe { BorrowedFd::borrow_raw(raw) }
}

/// The source's video timings as the receiver sees them.
///
/// The public fields are a reading of the timings; [`set_dv_timings`] sets back the timings as
/// they were queried (all of them: porches, pixel clock, flags), not these fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DvTimings {
    /// Active pixels per line.
    pub width: u32,
    /// Active lines per frame (both fields for interlaced video, e.g. 1080 for 1080i).
    pub height: u32,
    pub interlaced: bool,
    /// Frames (not fields) per second ×1000, from pixelclock / (total width × total height),
    /// as the kernel's `v4l2_calc_timeperframe` computes it (59940 for a 59.94 Hz source that
    /// says so). 0 if the device reports no blanking at all.
    pub millihertz: u32,
    raw: RawTimings,
}

impl DvTimings {
    /// Reads timings the kernel returned; only BT.656/1120 timings exist in the UAPI so far.
    fn from_raw(raw: v4l2_dv_timings) -> Result<Self, DvError> {
        let kind = raw.type_;
        if kind != V4L2_DV_BT_656_1120 {
            return Err(DvError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown DV timings type {kind}"),
            )));
        }
        let raw = RawTimings(raw);
        let bt = raw.bt();
        Ok(Self {
            width: bt.width,
            height: bt.height,
            interlaced: bt.interlaced != 0,
            millihertz: millihertz(&bt),
            raw,
        })
    }

    /// Frames per second, for logs (`59.94`).
    pub fn fps(&self) -> f64 {
        f64::from(self.millihertz) / 1000.0
    }
}

impl fmt::Display for DvTimings {
    /// `1920x1080p60.00`, the way the video world names modes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scan = if self.interlaced { 'i' } else { 'p' };
        write!(f, "{}x{}{scan}{:.2}", self.width, self.height, self.fps())
    }
}

/// Frames per second ×1000, rounded; mirrors `v4l2_calc_timeperframe` (v4l2-dv-timings.c).
fn millihertz(bt: &v4l2_bt_timings) -> u32 {
    // Copies: the struct is packed, so its fields cannot be borrowed.
    let (width, height) = (u64::from(bt.width), u64::from(bt.height));
    let htotal = width + u64::from(bt.hfrontporch) + u64::from(bt.hsync) + u64::from(bt.hbackporch);
    let mut vtotal = height + u64::from(bt.vfrontporch) + u64::from(bt.vsync) + u64::from(bt.vbackporch);
    if bt.interlaced != 0 {
        // The second field's blanking: the totals then describe a whole frame.
        vtotal += u64::from(bt.il_vfrontporch) + u64::from(bt.il_vsync) + u64::from(bt.il_vbackporch);
    }
    let mut pixelclock = bt.pixelclock;
    let flags = bt.flags;
    // A receiver that can tell 60 from 59.94 reports the nominal clock and this flag pair.
    if flags & V4L2_DV_FL_CAN_DETECT_REDUCED_FPS != 0 && flags & V4L2_DV_FL_REDUCED_FPS != 0 {
        pixelclock = pixelclock.saturating_mul(1000) / 1001;
    }
    let total = htotal.saturating_mul(vtotal);
    if total == 0 {
        return 0;
    }
    let value = pixelclock.saturating_mul(1000).saturating_add(total / 2) / total;
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// All of [`RawTimings`]' fields (tuples compare up to 12 elements, hence two).
type TimingsKey = (
    (u32, u32, u32, u32, u64, u32, u32, u32, u32, u32, u32),
    (u32, u32, u32, u32, u32, u32, u32, u32, u8, u8, [u8; 46]),
);

/// The kernel's timings, kept whole so that [`set_dv_timings`] gives back exactly what was
/// queried. Always fully initialised (zeroed, then written by the kernel).
#[derive(Clone, Copy)]
struct RawTimings(v4l2_dv_timings);

impl RawTimings {
    fn bt(&self) -> v4l2_bt_timings {
        // SAFETY: reading a union member: every `RawTimings` is fully initialised (see the type)
        // and `v4l2_bt_timings` is plain integers, valid for any bit pattern. `from_raw` checked
        // that `bt` is the member in use. A copy, not a reference: the struct is packed.
        unsafe { self.0.__bindgen_anon_1.bt }
    }

    /// Every field, for equality: the bindings derive no `PartialEq` (there is a union).
    fn key(&self) -> TimingsKey {
        let bt = self.bt();
        let aspect = bt.picture_aspect;
        (
            (
                bt.width,
                bt.height,
                bt.interlaced,
                bt.polarities,
                bt.pixelclock,
                bt.hfrontporch,
                bt.hsync,
                bt.hbackporch,
                bt.vfrontporch,
                bt.vsync,
                bt.vbackporch,
            ),
            (
                bt.il_vfrontporch,
                bt.il_vsync,
                bt.il_vbackporch,
                bt.standards,
                bt.flags,
                aspect.numerator,
                aspect.denominator,
                self.0.type_,
                bt.cea861_vic,
                bt.hdmi_vic,
                bt.reserved,
            ),
        )
    }
}

impl PartialEq for RawTimings {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for RawTimings {}

impl fmt::Debug for RawTimings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bt = self.bt();
        let (pixelclock, flags) = (bt.pixelclock, bt.flags);
        f.debug_struct("RawTimings").field("pixelclock", &pixelclock).field("flags", &flags).finish_non_exhaustive()
    }
}

/// A `v4l2_dv_timings` with every byte zero (what the kernel expects around what it reads).
fn zeroed_timings() -> v4l2_dv_timings {
    // `reserved` spans the whole union (asserted at the top), so this initialises every byte.
    v4l2_dv_timings { type_: 0, __bindgen_anon_1: v4l2_dv_timings__bindgen_ty_1 { reserved: [0; 32] } }
}

/// Why there is no picture, from the errno of `VIDIOC_QUERY_DV_TIMINGS` (ustreamer's mapping).
#[derive(Debug, thiserror::Error)]
pub enum DvError {
    /// `ENOLINK`: nothing on the wire (source off, asleep, or no cable).
    #[error("no signal")]
    NoSignal,
    /// `ENOLCK`: a signal, but the receiver cannot lock on to it (unstable, mode switch under way).
    #[error("no sync with the signal")]
    NoSync,
    /// `ERANGE`: timings were found but the receiver cannot capture them.
    #[error("unsupported signal timings (out of range)")]
    OutOfRange,
    /// `ENODATA`, `ENOTTY`, `EINVAL`: the device (or its current input) has no DV timings, e.g. a
    /// USB dongle that scales whatever comes in. Not an error for capture: use its formats.
    #[error("the device has no DV timings")]
    NotSupported,
    #[error(transparent)]
    Io(io::Error),
}

impl From<io::Error> for DvError {
    fn from(error: io::Error) -> Self {
        match error.raw_os_error().map(Errno::from_raw_os_error) {
            Some(Errno::NOLINK) => Self::NoSignal,
            Some(Errno::NOLCK) => Self::NoSync,
            Some(Errno::RANGE) => Self::OutOfRange,
            Some(Errno::NODATA | Errno::NOTTY | Errno::INVAL) => Self::NotSupported,
            _ => Self::Io(error),
        }
    }
}

impl From<Errno> for DvError {
    fn from(errno: Errno) -> Self {
        io::Error::from(errno).into()
    }
}

/// `VIDIOC_QUERY_DV_TIMINGS`: the timings the receiver detects on its input now (which may
/// differ from the ones it is set to capture).
pub fn query_dv_timings(fd: BorrowedFd<'_>) -> Result<DvTimings, DvError> {
    let mut raw = zeroed_timings();
    // SAFETY: the opcode is `_IOR('V', 99, struct v4l2_dv_timings)` computed from the bindgen
    // struct's size, and `raw` is that struct, exclusively borrowed for the call; the kernel
    // writes at most `size_of::<v4l2_dv_timings>()` bytes into it, all valid for its integers.
    unsafe { ioctl(fd, Updater::<VIDIOC_QUERY_DV_TIMINGS, v4l2_dv_timings>::new(&mut raw)) }?;
    DvTimings::from_raw(raw)
}

/// `VIDIOC_G_DV_TIMINGS`: the timings the receiver is set to capture.
pub fn get_dv_timings(fd: BorrowedFd<'_>) -> Result<DvTimings, DvError> {
    let mut raw = zeroed_timings();
    // SAFETY: as in `query_dv_timings`, with `_IOWR('V', 88, struct v4l2_dv_timings)`.
    unsafe { ioctl(fd, Updater::<VIDIOC_G_DV_TIMINGS, v4l2_dv_timings>::new(&mut raw)) }?;
    DvTimings::from_raw(raw)
}

/// `VIDIOC_S_DV_TIMINGS`: makes the receiver capture `timings` (as queried). Fails with `EBUSY`
/// ([`DvError::Io`]) while buffers are allocated: set the timings before streaming.
pub fn set_dv_timings(fd: BorrowedFd<'_>, timings: &DvTimings) -> Result<(), DvError> {
    // A copy: the kernel writes back the timings it applied, and `timings` stays as queried.
    let mut raw = timings.raw.0;
    // SAFETY: the opcode is `_IOWR('V', 87, struct v4l2_dv_timings)` computed from the bindgen
    // struct's size; `raw` is that struct, fully initialised (it came from the kernel),
    // exclusively borrowed for the call, and any bytes written back are valid for it.
    unsafe { ioctl(fd, Updater::<VIDIOC_S_DV_TIMINGS, v4l2_dv_timings>::new(&mut raw)) }?;
    Ok(())
}

/// `VIDIOC_G_INPUT`: the index of the input the device captures from. Devices without inputs
/// to choose from (`ENOTTY`) count as input 0.
pub fn current_input(fd: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: the opcode is `_IOR('V', 38, int)` computed from `c_int`'s size, and `Getter`
    // provides exactly a `c_int`; on success the kernel has written all of it.
    match unsafe { ioctl(fd, Getter::<VIDIOC_G_INPUT, c_int>::new()) } {
        Ok(index) => u32::try_from(index).map_err(|_| io::Error::other(format!("negative input index {index}"))),
        Err(Errno::NOTTY) => Ok(0),
        Err(errno) => Err(errno.into()),
    }
}

/// `VIDIOC_SUBSCRIBE_EVENT` for `V4L2_EVENT_SOURCE_CHANGE` of the current input. Events then
/// raise `POLLPRI` on the fd; read them with [`dequeue_event`]. The subscription ends with the
/// fd (reopen, or subscribe again, after selecting another input).
///
/// The event's `id` is the input index: drivers queue it for the input whose signal changed
/// (vivid's "HDMI 0" is input 3), and a subscription only sees events of its own `id`; with
/// `id` 0, as ustreamer subscribes, only single-input receivers (TC358743) would report.
///
/// Wait for events with `POLLPRI` alone until buffers are set up: `POLLIN` on an idle vb2
/// capture queue starts its `read()` emulation, which allocates buffers, and from then on
/// `VIDIOC_S_DV_TIMINGS`, `S_INPUT` (and `S_FMT`) fail with `EBUSY` (seen on vivid).
pub fn subscribe_source_change(fd: BorrowedFd<'_>) -> io::Result<()> {
    let input = current_input(fd)?;
    let subscription =
        v4l2_event_subscription { type_: V4L2_EVENT_SOURCE_CHANGE, id: input, flags: 0, reserved: [0; 5] };
    // SAFETY: the opcode is `_IOW('V', 90, struct v4l2_event_subscription)` computed from the
    // bindgen struct's size; the kernel only reads the struct, which `Setter` owns for the call.
    unsafe { ioctl(fd, Setter::<VIDIOC_SUBSCRIBE_EVENT, v4l2_event_subscription>::new(subscription)) }?;
    Ok(())
}

/// An event [`dequeue_event`] took off the device's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// `V4L2_EVENT_SOURCE_CHANGE`: the input's signal changed (`resolution`: its timings did, or
    /// it came or went); query the timings again and reconfigure.
    SourceChange { resolution: bool },
    /// Any other event type (`V4L2_EVENT_*`), e.g. `V4L2_EVENT_EOS` (2).
    Other(u32),
}

/// `VIDIOC_DQEVENT`: takes the next pending event, `None` when there is none (`ENOENT`). Call it
/// until `None` after `POLLPRI`; on a blocking fd it would wait for an event instead.
pub fn dequeue_event(fd: BorrowedFd<'_>) -> io::Result<Option<DeviceEvent>> {
    // SAFETY: the opcode is `_IOR('V', 89, struct v4l2_event)` computed from the bindgen
    // struct's size (so the 32-bit `timespec` layouts get their own opcode), and `Getter`
    // provides exactly that struct. On success the kernel has copied the whole struct out
    // (`video_usercopy` copies `_IOC_SIZE` bytes of its zeroed buffer), so it is initialised.
    let event = match unsafe { ioctl(fd, Getter::<VIDIOC_DQEVENT, v4l2_event>::new()) } {
        Ok(event) => event,
        Err(Errno::NOENT) => return Ok(None),
        Err(errno) => return Err(errno.into()),
    };
    if event.type_ == V4L2_EVENT_SOURCE_CHANGE {
        // SAFETY: reading a union member the kernel filled (the type says which); `changes` is
        // a plain `u32`, valid for any bit pattern.
        let changes = unsafe { event.u.src_change.changes };
        Ok(Some(DeviceEvent::SourceChange { resolution: changes & V4L2_EVENT_SRC_CH_RESOLUTION != 0 }))
    } else {
        Ok(Some(DeviceEvent::Other(event.type_)))
    }
}

/// `V4L2_CID_DV_RX_POWER_PRESENT` (`VIDIOC_G_CTRL`): whether the receiver sees +5V from a source
/// on one of its inputs, i.e. a cable with a powered source. `None` if there is no such control
/// (`EINVAL`; `ENOTTY`: no controls at all), as on USB dongles.
pub fn rx_power_present(fd: BorrowedFd<'_>) -> io::Result<Option<bool>> {
    let mut control = v4l2_control { id: V4L2_CID_DV_RX_POWER_PRESENT, value: 0 };
    // SAFETY: the opcode is `_IOWR('V', 27, struct v4l2_control)` computed from the bindgen
    // struct's size; `control` is that struct, exclusively borrowed for the call.
    match unsafe { ioctl(fd, Updater::<VIDIOC_G_CTRL, v4l2_control>::new(&mut control)) } {
        // A bitmask, one bit per input: any powered input counts.
        Ok(()) => Ok(Some(control.value != 0)),
        Err(Errno::INVAL | Errno::NOTTY) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::os::fd::AsFd;

    use v4l::v4l_sys::{
        V4L2_DV_BT_STD_CEA861, V4L2_DV_BT_STD_DMT, V4L2_DV_FL_CAN_REDUCE_FPS, V4L2_DV_FL_HAS_CEA861_VIC,
        V4L2_DV_FL_IS_CE_VIDEO, V4L2_DV_HSYNC_POS_POL, V4L2_DV_VSYNC_POS_POL, v4l2_fract,
    };

    use super::*;

    // The numbers hardware.md §2 verified against the C header on x86_64/aarch64. A free constant
    // is evaluated even by `cargo check`/`clippy`, so a check of the tests for the board (aarch64)
    // checks them there too; the test below only names the check in the test list.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // rustix's `Opcode` is `u32`, or `c_ulong` with its libc backend.
    #[allow(clippy::unnecessary_cast)]
    const OPCODES_ARE_THE_KERNELS: () = {
        assert!(VIDIOC_S_DV_TIMINGS as u64 == 0xC084_5657);
        assert!(VIDIOC_G_DV_TIMINGS as u64 == 0xC084_5658);
        assert!(VIDIOC_DQEVENT as u64 == 0x8088_5659);
        assert!(VIDIOC_SUBSCRIBE_EVENT as u64 == 0x4020_565A);
        assert!(VIDIOC_QUERY_DV_TIMINGS as u64 == 0x8084_5663);
    };

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn opcodes_are_the_kernels_on_64_bit() {
        OPCODES_ARE_THE_KERNELS
    }

    #[test]
    // Both types vary by platform: v4l's is `c_ulong` (glibc) or `c_int` (musl).
    #[allow(clippy::unnecessary_cast)]
    fn opcodes_the_v4l_crate_also_has_match_its() {
        assert_eq!(VIDIOC_G_CTRL as u64, v4l::v4l2::vidioc::VIDIOC_G_CTRL as u64);
        assert_eq!(VIDIOC_G_INPUT as u64, v4l::v4l2::vidioc::VIDIOC_G_INPUT as u64);
    }

    /// `V4L2_DV_BT_CEA_1920X1080P60` from `<linux/v4l2-dv-timings.h>`.
    fn cea_1080p60() -> v4l2_bt_timings {
        v4l2_bt_timings {
            width: 1920,
            height: 1080,
            interlaced: 0,
            polarities: V4L2_DV_HSYNC_POS_POL | V4L2_DV_VSYNC_POS_POL,
            pixelclock: 148_500_000,
            hfrontporch: 88,
            hsync: 44,
            hbackporch: 148,
            vfrontporch: 4,
            vsync: 5,
            vbackporch: 36,
            il_vfrontporch: 0,
            il_vsync: 0,
            il_vbackporch: 0,
            standards: V4L2_DV_BT_STD_DMT | V4L2_DV_BT_STD_CEA861,
            flags: V4L2_DV_FL_CAN_REDUCE_FPS | V4L2_DV_FL_IS_CE_VIDEO | V4L2_DV_FL_HAS_CEA861_VIC,
            picture_aspect: v4l2_fract { numerator: 0, denominator: 0 },
            cea861_vic: 16,
            hdmi_vic: 0,
            reserved: [0; 46],
        }
    }

    fn timings(bt: v4l2_bt_timings) -> DvTimings {
        let mut raw = zeroed_timings();
        raw.type_ = V4L2_DV_BT_656_1120;
        raw.__bindgen_anon_1.bt = bt;
        DvTimings::from_raw(raw).expect("BT.656/1120 timings")
    }

    #[test]
    fn cea_1080p60_reads_as_1920x1080_at_60_hz() {
        let t = timings(cea_1080p60());
        assert_eq!((t.width, t.height, t.interlaced, t.millihertz), (1920, 1080, false, 60_000));
        assert_eq!(t.to_string(), "1920x1080p60.00");
    }

    #[test]
    fn reduced_fps_counts_only_when_the_receiver_can_detect_it() {
        let mut bt = cea_1080p60();
        bt.flags |= V4L2_DV_FL_REDUCED_FPS;
        assert_eq!(timings(bt).millihertz, 60_000, "the flag alone means nothing for a receiver");
        bt.flags |= V4L2_DV_FL_CAN_DETECT_REDUCED_FPS;
        assert_eq!(timings(bt).millihertz, 59_940);
        assert_eq!(timings(bt).to_string(), "1920x1080p59.94");
    }

    #[test]
    fn interlaced_rates_are_whole_frames() {
        // V4L2_DV_BT_CEA_1920X1080I60: 60 fields, 30 frames per second.
        let mut bt = cea_1080p60();
        (bt.interlaced, bt.pixelclock, bt.vfrontporch, bt.vbackporch) = (1, 74_250_000, 2, 15);
        (bt.il_vfrontporch, bt.il_vsync, bt.il_vbackporch) = (2, 5, 16);
        let t = timings(bt);
        assert_eq!((t.height, t.interlaced, t.millihertz), (1080, true, 30_000));
        assert_eq!(t.to_string(), "1920x1080i30.00");
    }

    #[test]
    fn no_blanking_gives_zero_rate_rather_than_a_division_by_zero() {
        let mut bt = cea_1080p60();
        (bt.width, bt.height, bt.hfrontporch, bt.hsync, bt.hbackporch) = (0, 0, 0, 0, 0);
        assert_eq!(timings(bt).millihertz, 0);
    }

    #[test]
    fn equality_covers_the_raw_timings() {
        let a = timings(cea_1080p60());
        assert_eq!(a, timings(cea_1080p60()));
        let mut bt = cea_1080p60();
        bt.hsync += 1; // same size and (nearly) rate, other timings: must reconfigure
        assert_ne!(a, timings(bt));
    }

    #[test]
    fn unknown_timings_type_is_an_io_error() {
        let mut raw = zeroed_timings();
        raw.type_ = 7;
        assert!(matches!(DvTimings::from_raw(raw), Err(DvError::Io(e)) if e.kind() == io::ErrorKind::InvalidData));
    }

    #[test]
    fn errno_maps_like_ustreamer() {
        let map = |errno: Errno| DvError::from(io::Error::from(errno));
        assert!(matches!(map(Errno::NOLINK), DvError::NoSignal));
        assert!(matches!(map(Errno::NOLCK), DvError::NoSync));
        assert!(matches!(map(Errno::RANGE), DvError::OutOfRange));
        for errno in [Errno::NODATA, Errno::NOTTY, Errno::INVAL] {
            assert!(matches!(map(errno), DvError::NotSupported), "{errno:?}");
        }
        assert!(matches!(map(Errno::BUSY), DvError::Io(e) if e.raw_os_error() == Some(Errno::BUSY.raw_os_error())));
        let other = DvError::from(io::Error::other("not an errno"));
        assert!(matches!(other, DvError::Io(_)));
    }

    #[test]
    fn a_file_that_is_not_a_v4l2_device_answers_not_supported() {
        let null = File::options().read(true).write(true).open("/dev/null").expect("/dev/null");
        let fd = null.as_fd();
        assert!(matches!(query_dv_timings(fd), Err(DvError::NotSupported)));
        assert!(matches!(get_dv_timings(fd), Err(DvError::NotSupported)));
        assert!(matches!(set_dv_timings(fd, &timings(cea_1080p60())), Err(DvError::NotSupported)));
        assert_eq!(current_input(fd).map_err(|e| e.to_string()), Ok(0));
        assert_eq!(subscribe_source_change(fd).map_err(|e| e.raw_os_error()), Err(Some(Errno::NOTTY.raw_os_error())));
        assert_eq!(dequeue_event(fd).map_err(|e| e.raw_os_error()), Err(Some(Errno::NOTTY.raw_os_error())));
        assert_eq!(rx_power_present(fd).map_err(|e| e.to_string()), Ok(None));
    }
}
