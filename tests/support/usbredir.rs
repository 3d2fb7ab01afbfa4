//! A usbredir peer that plugs kvnc's HID functions into a QEMU virtual machine as one USB
//! device, so that real firmware (SeaBIOS, OVMF) enumerates them and reads the reports kvnc
//! writes, byte for byte as a host reads them from the gadget.
//!
//! QEMU's `-device usb-redir` is the usbredir "guest" side: it forwards everything the virtual
//! host controller does with the device over a `-chardev socket` to a "host" side that normally
//! owns a real device (usbredirhost + libusb). This module is that host side with no device
//! behind it: it answers the control requests from the descriptors in [`kvnc::hid::descriptor`]
//! and turns reports read from FIFOs (which kvnc's `--hid-device` writer writes exactly as it
//! writes /dev/hidgN) into interrupt IN packets.
//!
//! The device has the HID functions it is given, in that order: interface N is the N-th, with
//! interrupt IN endpoint 0x81 + N (e.g. [`KEYBOARD_AND_MOUSE`], kvnc's gadget without the absolute
//! pointer, which no firmware binds). It connects at high speed, like the gadget on the board's
//! dwc2 controller.
//!
//! std only.
//!
//! Wire format: /usr/include/usbredirproto.h (Debian package libusbredirparser-dev 0.13; the
//! protocol's prose document is not packaged anywhere). All integers are little-endian, structs
//! are packed. Findings this module relies on (QEMU 7.2):
//! * QEMU sends its hello first, once the socket is connected and the VM runs;
//! * on `qemu-xhci`, QEMU rejects the device unless the host side announces the capabilities
//!   64-bit ids, 32-bit bulk length and ep_info max packet size;
//! * the hellos have 12-byte headers (32-bit id); every later packet, both ways, has a 16-byte
//!   header (64-bit id) once both sides announced 64-bit ids;
//! * QEMU handles SET_ADDRESS itself and sends SET_CONFIGURATION / SET_INTERFACE (and their GETs)
//!   as their own packet types; every other control transfer arrives as a control packet;
//! * QEMU asks for interrupt IN data with `start_interrupt_receiving` when the firmware first
//!   polls the endpoint, and drops interrupt packets for an endpoint it has not started.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use kvnc::hid::descriptor::{HidFunction, KEYBOARD, MOUSE, Role};

/// The boot keyboard and the boot mouse as one composite device, in kvnc's gadget order. The
/// keyboard must be first: SeaBIOS drives only the first boot interface of a device (usb.c
/// `configure_usb_device`).
pub const KEYBOARD_AND_MOUSE: &[&HidFunction] = &[&KEYBOARD, &MOUSE];

/// The packet types, structs and constants of usbredirproto.h that this peer uses.
mod proto {
    // enum { usb_redir_hello, ... }: the packet types.
    pub const HELLO: u32 = 0;
    pub const DEVICE_CONNECT: u32 = 1;
    pub const RESET: u32 = 3;
    pub const INTERFACE_INFO: u32 = 4;
    pub const EP_INFO: u32 = 5;
    pub const SET_CONFIGURATION: u32 = 6;
    pub const GET_CONFIGURATION: u32 = 7;
    pub const CONFIGURATION_STATUS: u32 = 8;
    pub const SET_ALT_SETTING: u32 = 9;
    pub const GET_ALT_SETTING: u32 = 10;
    pub const ALT_SETTING_STATUS: u32 = 11;
    pub const START_INTERRUPT_RECEIVING: u32 = 15;
    pub const STOP_INTERRUPT_RECEIVING: u32 = 16;
    pub const INTERRUPT_RECEIVING_STATUS: u32 = 17;
    pub const CANCEL_DATA_PACKET: u32 = 21;
    pub const CONTROL_PACKET: u32 = 100;
    pub const INTERRUPT_PACKET: u32 = 103;

    // enum { usb_redir_success, ... }: transfer and request status.
    pub const SUCCESS: u8 = 0;
    pub const INVAL: u8 = 2;
    pub const STALL: u8 = 4;

    // enum { usb_redir_type_control, ... }: endpoint types (the USB spec's values).
    pub const TYPE_CONTROL: u8 = 0;
    pub const TYPE_INTERRUPT: u8 = 3;
    pub const TYPE_INVALID: u8 = 255;

    // enum { usb_redir_speed_low, ... }
    pub const SPEED_HIGH: u8 = 2;

    // enum { usb_redir_cap_bulk_streams, ... }: capability bit numbers.
    /// device_connect carries device_version_bcd.
    pub const CAP_CONNECT_DEVICE_VERSION: u32 = 1;
    /// ep_info carries max_packet_size.
    pub const CAP_EP_INFO_MAX_PACKET_SIZE: u32 = 4;
    /// usb_redir_header.id is 64 bits.
    pub const CAP_64BITS_IDS: u32 = 5;
    /// usb_redir_bulk_packet_header has length_high (unused here, but QEMU wants it on xhci).
    pub const CAP_32BITS_BULK_LENGTH: u32 = 6;
    /// What this peer announces.
    pub const OUR_CAPS: u32 = 1 << CAP_CONNECT_DEVICE_VERSION
        | 1 << CAP_EP_INFO_MAX_PACKET_SIZE
        | 1 << CAP_64BITS_IDS
        | 1 << CAP_32BITS_BULK_LENGTH;

    /// struct usb_redir_header {u32 type; u32 length; u64 id}, with a u32 id until both hellos
    /// announced 64-bit ids. `length` counts the type-specific header plus the data after it.
    pub const HEADER_LEN_32BIT_ID: usize = 12;
    pub const HEADER_LEN_64BIT_ID: usize = 16;
    /// struct usb_redir_hello_header {char version[64]; u32 capabilities[]}.
    pub const HELLO_VERSION_LEN: usize = 64;
    /// struct usb_redir_control_packet_header {u8 endpoint, request, requesttype, status;
    /// u16 value, index, length}, followed by the data stage (OUT requests, or IN replies).
    pub const CONTROL_HEADER_LEN: usize = 10;
    /// struct usb_redir_interrupt_packet_header {u8 endpoint, status; u16 length}, then the data.
    pub const INTERRUPT_HEADER_LEN: usize = 4;

    /// The slot of endpoint address `ep` in the 32-entry arrays of ep_info (usbredirparser's
    /// `USB_EP2I`): OUT endpoints 0..15, IN endpoints 16..31.
    pub fn ep_index(ep: u8) -> usize {
        usize::from(((ep & 0x80) >> 3) | (ep & 0x0f))
    }

    /// struct usb_redir_interface_info_header: u32 interface_count, then u8 interface[32],
    /// interface_class[32], interface_subclass[32], interface_protocol[32].
    pub fn interface_info(interfaces: &[(u8, u8, u8)]) -> Vec<u8> {
        let mut arrays = [[0u8; 32]; 4];
        for (i, &(class, sub_class, protocol)) in interfaces.iter().enumerate() {
            arrays[0][i] = i as u8;
            arrays[1][i] = class;
            arrays[2][i] = sub_class;
            arrays[3][i] = protocol;
        }
        let mut out = (interfaces.len() as u32).to_le_bytes().to_vec();
        arrays.iter().for_each(|a| out.extend_from_slice(a));
        out
    }

    /// One endpoint for [`ep_info`].
    pub struct Endpoint {
        pub address: u8,
        pub kind: u8,
        pub interval: u8,
        pub interface: u8,
        pub max_packet_size: u16,
    }

    /// struct usb_redir_ep_info_header: u8 type[32], interval[32], interface[32], then (with
    /// CAP_EP_INFO_MAX_PACKET_SIZE) u16 max_packet_size[32]; u32 max_streams[32] would follow
    /// only with the bulk streams capability, which this peer does not announce.
    pub fn ep_info(endpoints: &[Endpoint]) -> Vec<u8> {
        let (mut kind, mut interval, mut interface, mut mps) = ([TYPE_INVALID; 32], [0u8; 32], [0u8; 32], [0u16; 32]);
        for ep in endpoints {
            let i = ep_index(ep.address);
            (kind[i], interval[i], interface[i], mps[i]) = (ep.kind, ep.interval, ep.interface, ep.max_packet_size);
        }
        let mut out = [kind, interval, interface].concat();
        mps.iter().for_each(|m| out.extend_from_slice(&m.to_le_bytes()));
        out
    }

    /// struct usb_redir_device_connect_header {u8 speed, device_class, device_subclass,
    /// device_protocol; u16 vendor_id, product_id, device_version_bcd}.
    pub fn device_connect(speed: u8, vendor: u16, product: u16, bcd: u16) -> Vec<u8> {
        let mut out = vec![speed, 0, 0, 0];
        [vendor, product, bcd].iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        out
    }
}

/// USB 2.0 chapter 9 and HID 1.11 values for the requests firmware sends.
pub mod usb {
    // bmRequestType: direction | type | recipient.
    pub const IN_STANDARD_DEVICE: u8 = 0x80;
    pub const IN_STANDARD_INTERFACE: u8 = 0x81;
    pub const IN_STANDARD_ENDPOINT: u8 = 0x82;
    pub const OUT_STANDARD_DEVICE: u8 = 0x00;
    pub const OUT_STANDARD_ENDPOINT: u8 = 0x02;
    pub const IN_CLASS_INTERFACE: u8 = 0xA1;
    pub const OUT_CLASS_INTERFACE: u8 = 0x21;

    // Standard requests.
    pub const GET_STATUS: u8 = 0;
    pub const CLEAR_FEATURE: u8 = 1;
    pub const SET_FEATURE: u8 = 3;
    pub const GET_DESCRIPTOR: u8 = 6;

    // HID class requests.
    pub const HID_GET_REPORT: u8 = 0x01;
    pub const HID_GET_IDLE: u8 = 0x02;
    pub const HID_GET_PROTOCOL: u8 = 0x03;
    pub const HID_SET_REPORT: u8 = 0x09;
    pub const HID_SET_IDLE: u8 = 0x0A;
    pub const HID_SET_PROTOCOL: u8 = 0x0B;
    /// SET_PROTOCOL / GET_PROTOCOL values.
    pub const PROTOCOL_BOOT: u8 = 0;
    pub const PROTOCOL_REPORT: u8 = 1;

    // Descriptor types.
    pub const DT_DEVICE: u8 = 1;
    pub const DT_CONFIG: u8 = 2;
    pub const DT_STRING: u8 = 3;
    pub const DT_INTERFACE: u8 = 4;
    pub const DT_ENDPOINT: u8 = 5;
    pub const DT_DEVICE_QUALIFIER: u8 = 6;
    pub const DT_HID: u8 = 0x21;
    pub const DT_HID_REPORT: u8 = 0x22;

    pub const CLASS_HID: u8 = 3;
}

/// Linux Foundation's "Multifunction Composite Gadget", what a configfs gadget such as kvnc's
/// presents by default.
const VENDOR_ID: u16 = 0x1d6b;
const PRODUCT_ID: u16 = 0x0104;
const DEVICE_BCD: u16 = 0x0100;
/// String descriptors 1, 2, 3: manufacturer, product, serial number.
const STRINGS: [&str; 3] = ["kvnc tests", "kvnc HID over usbredir", "0001"];
/// US English, the only language (string descriptor 0).
const LANGUAGE_ID: u16 = 0x0409;
/// High-speed EP0.
const MAX_PACKET_SIZE_0: u8 = 64;
/// High-speed interrupt interval 2^(4-1) x 125 µs = 1 ms, what Linux f_hid declares.
const INTERRUPT_INTERVAL: u8 = 4;

/// The interrupt IN endpoint address of interface `interface`.
fn endpoint_of(interface: u8) -> u8 {
    0x81 + interface
}

/// The interface number of the function with `role`; panics for a role the device lacks.
fn interface_of(functions: &[&HidFunction], role: Role) -> u8 {
    let index = functions.iter().position(|f| f.role == role);
    index.unwrap_or_else(|| panic!("the usbredir device has no {} interface", role.name())) as u8
}

fn device_descriptor() -> Vec<u8> {
    let mut d = vec![18, usb::DT_DEVICE, 0x00, 0x02, 0, 0, 0, MAX_PACKET_SIZE_0];
    [VENDOR_ID, PRODUCT_ID, DEVICE_BCD].iter().for_each(|v| d.extend_from_slice(&v.to_le_bytes()));
    d.extend_from_slice(&[1, 2, 3, 1]); // iManufacturer, iProduct, iSerialNumber, bNumConfigurations
    d
}

/// The device qualifier a high-speed device must have (same fields as at full speed).
fn device_qualifier() -> Vec<u8> {
    vec![10, usb::DT_DEVICE_QUALIFIER, 0x00, 0x02, 0, 0, 0, MAX_PACKET_SIZE_0, 1, 0]
}

/// The HID class descriptor of `function`: bcdHID 1.01, one report descriptor of its length.
fn hid_descriptor(function: &HidFunction) -> Vec<u8> {
    let len = (function.report_desc.len() as u16).to_le_bytes();
    vec![9, usb::DT_HID, 0x01, 0x01, 0, 1, usb::DT_HID_REPORT, len[0], len[1]]
}

/// Configuration 1: per function an interface, its HID descriptor and its interrupt IN endpoint.
fn config_descriptor(functions: &[&HidFunction]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, function) in functions.iter().enumerate() {
        let interface = i as u8;
        body.extend_from_slice(&[9, usb::DT_INTERFACE, interface, 0, 1, usb::CLASS_HID]);
        body.extend_from_slice(&[function.sub_class, function.protocol, 0]);
        body.extend(hid_descriptor(function));
        // The endpoint's max packet size is the report length, as f_hid sets it.
        let mps = (function.report_len as u16).to_le_bytes();
        let attributes = proto::TYPE_INTERRUPT;
        body.extend_from_slice(&[
            7,
            usb::DT_ENDPOINT,
            endpoint_of(interface),
            attributes,
            mps[0],
            mps[1],
            INTERRUPT_INTERVAL,
        ]);
    }
    let total = ((9 + body.len()) as u16).to_le_bytes();
    // 0x80: bus powered (bit 7 is reserved-one); 250 x 2 mA.
    let mut d = vec![9, usb::DT_CONFIG, total[0], total[1], functions.len() as u8, 1, 0, 0x80, 250];
    d.extend(body);
    d
}

fn string_descriptor(index: u8) -> Option<Vec<u8>> {
    let utf16: Vec<u16> = match index {
        0 => vec![LANGUAGE_ID],
        i => STRINGS.get(usize::from(i) - 1)?.encode_utf16().collect(),
    };
    let mut d = vec![(2 + 2 * utf16.len()) as u8, usb::DT_STRING];
    utf16.iter().for_each(|c| d.extend_from_slice(&c.to_le_bytes()));
    Some(d)
}

/// What the peer saw the firmware (through QEMU) do, and what it did with the reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A USB port reset.
    Reset,
    SetConfiguration(u8),
    /// HID SET_PROTOCOL: 0 = boot, 1 = report.
    SetProtocol {
        interface: u8,
        protocol: u8,
    },
    /// HID SET_REPORT (the keyboard's LED output report).
    SetReport {
        interface: u8,
        data: Vec<u8>,
    },
    /// The host started (`true`) or stopped polling an interrupt IN endpoint.
    Polling {
        endpoint: u8,
        on: bool,
    },
    /// A report read from the FIFO of `interface`: `delivered` if it went to QEMU, false if it
    /// was dropped because the host was not polling that endpoint.
    Report {
        interface: u8,
        data: Vec<u8>,
        delivered: bool,
    },
}

/// The peer's view of the device, shared by its threads.
#[derive(Default)]
struct State {
    events: Vec<Event>,
    /// Human-readable trace of every packet, for failure messages.
    log: String,
    /// The connection to QEMU is gone.
    closed: bool,
    configuration: u8,
    /// Per interface: HID protocol (boot or report), idle rate, endpoint being polled.
    protocol: Vec<u8>,
    idle: Vec<u8>,
    polling: Vec<bool>,
}

struct Shared {
    /// The device's interfaces.
    functions: Vec<&'static HidFunction>,
    /// Write side of the socket; also serialises whole packets.
    socket: Mutex<UnixStream>,
    state: Mutex<State>,
    changed: Condvar,
    started: Instant,
    stopping: AtomicBool,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a timestamped line to the trace (state lock held by the caller).
    fn trace(&self, state: &mut State, line: impl AsRef<str>) {
        let t = self.started.elapsed().as_secs_f64();
        let _ = writeln!(state.log, "[{t:8.3}] {}", line.as_ref());
    }

    fn record(&self, state: &mut State, event: Event) {
        state.events.push(event);
        self.changed.notify_all();
    }

    /// Sends one packet with a 64-bit id header. Lock order: state, then socket.
    fn send(&self, kind: u32, id: u64, header: &[u8], data: &[u8]) -> io::Result<()> {
        let mut packet = Vec::with_capacity(proto::HEADER_LEN_64BIT_ID + header.len() + data.len());
        packet.extend_from_slice(&kind.to_le_bytes());
        packet.extend_from_slice(&((header.len() + data.len()) as u32).to_le_bytes());
        packet.extend_from_slice(&id.to_le_bytes());
        packet.extend_from_slice(header);
        packet.extend_from_slice(data);
        self.socket.lock().unwrap_or_else(|e| e.into_inner()).write_all(&packet)
    }

    /// Hands a report from a FIFO to QEMU as an interrupt IN packet, if the host polls for it.
    fn forward_report(&self, interface: u8, report: &[u8]) {
        let mut state = self.lock();
        let delivered = state.polling[usize::from(interface)];
        if delivered {
            let endpoint = endpoint_of(interface);
            let header = [&[endpoint, proto::SUCCESS][..], &(report.len() as u16).to_le_bytes()].concat();
            debug_assert_eq!(header.len(), proto::INTERRUPT_HEADER_LEN);
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.send(proto::INTERRUPT_PACKET, id, &header, report) {
                self.trace(&mut state, format!("sending a report failed: {e}"));
                return;
            }
        }
        let what = if delivered { "sent" } else { "dropped (endpoint not polled)" };
        self.trace(&mut state, format!("report interface {interface}: {} {what}", hex(report)));
        self.record(&mut state, Event::Report { interface, data: report.to_vec(), delivered });
    }
}

/// One FIFO the peer reads reports from.
struct Fifo {
    path: PathBuf,
    /// The peer's own handle, to wake the reader thread at shutdown.
    handle: File,
}

/// The host side of one usbredir connection, presenting HID functions as one USB device.
/// Disconnects and stops its threads on drop; prints its trace if the test is panicking.
pub struct UsbRedirPeer {
    shared: Arc<Shared>,
    fifos: Vec<Fifo>,
    threads: Vec<JoinHandle<()>>,
}

impl UsbRedirPeer {
    /// Presents `functions` as one device (see the module documentation): creates one FIFO per
    /// function in `dir` (e.g. `keyboard.fifo`), connects to QEMU's
    /// usbredir chardev at `socket` (retrying until it accepts, within `timeout`), calls
    /// `connected`, then exchanges the hellos and plugs the device in. Panics on failure.
    ///
    /// QEMU neither reads nor writes the chardev while the VM is paused (usbredir.c,
    /// `usbredir_write` and `usbredir_chardev_can_read` check the run state), so a VM started
    /// with `-S` must be resumed in `connected`: then the device is there from the first moment.
    pub fn connect(
        socket: &Path,
        functions: &[&'static HidFunction],
        dir: &Path,
        timeout: Duration,
        connected: impl FnOnce(),
    ) -> UsbRedirPeer {
        let deadline = Instant::now() + timeout;
        let fifos = functions.iter().map(|f| make_fifo(&dir.join(format!("{}.fifo", f.role.name())))).collect();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => panic!("connecting to {}: {e}", socket.display()),
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        };
        let shared = Arc::new(Shared {
            socket: Mutex::new(stream.try_clone().expect("cloning the usbredir socket")),
            functions: functions.to_vec(),
            state: Mutex::new(State {
                protocol: vec![usb::PROTOCOL_REPORT; functions.len()],
                idle: vec![0; functions.len()],
                polling: vec![false; functions.len()],
                ..State::default()
            }),
            changed: Condvar::new(),
            started: Instant::now(),
            stopping: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        let mut peer = UsbRedirPeer { shared, fifos, threads: Vec::new() };
        connected();
        if let Err(e) = peer.handshake(stream, deadline) {
            panic!("usbredir handshake with {} failed: {e}\n{}", socket.display(), peer.log());
        }
        peer
    }

    /// The hellos, the device's interfaces and endpoints, device_connect; then starts the threads.
    fn handshake(&mut self, mut stream: UnixStream, deadline: Instant) -> io::Result<()> {
        // (A zero read timeout is an error, hence the 1 ms floor.)
        stream
            .set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))))?;
        let (kind, _, body) = read_packet(&mut stream, proto::HEADER_LEN_32BIT_ID)?;
        if kind != proto::HELLO || body.len() < proto::HELLO_VERSION_LEN + 4 {
            return Err(io::Error::other(format!("expected a hello, got packet type {kind} of {} bytes", body.len())));
        }
        let version = String::from_utf8_lossy(&body[..proto::HELLO_VERSION_LEN]).trim_end_matches('\0').to_string();
        let caps = u32::from_le_bytes(body[proto::HELLO_VERSION_LEN..][..4].try_into().expect("4 bytes"));
        {
            let mut state = self.shared.lock();
            self.shared.trace(&mut state, format!("QEMU hello: {version:?}, capabilities {caps:#x}"));
        }
        if caps & 1 << proto::CAP_64BITS_IDS == 0 {
            return Err(io::Error::other("QEMU does not announce 64-bit ids, which this peer assumes"));
        }
        // Our hello still has a 32-bit id header: QEMU does not know our capabilities yet.
        let mut hello = proto::HELLO.to_le_bytes().to_vec();
        hello.extend_from_slice(&((proto::HELLO_VERSION_LEN + 4) as u32).to_le_bytes());
        hello.extend_from_slice(&0u32.to_le_bytes());
        let mut version = b"kvnc tests/support/usbredir.rs".to_vec();
        version.resize(proto::HELLO_VERSION_LEN, 0);
        hello.extend(version);
        hello.extend_from_slice(&proto::OUR_CAPS.to_le_bytes());
        stream.write_all(&hello)?;

        let functions = &self.shared.functions;
        let interfaces: Vec<_> = functions.iter().map(|f| (usb::CLASS_HID, f.sub_class, f.protocol)).collect();
        self.shared.send(proto::INTERFACE_INFO, 0, &proto::interface_info(&interfaces), &[])?;
        let control = |address| proto::Endpoint {
            address,
            kind: proto::TYPE_CONTROL,
            interval: 0,
            interface: 0,
            max_packet_size: MAX_PACKET_SIZE_0.into(),
        };
        let mut endpoints = vec![control(0x00), control(0x80)];
        endpoints.extend(functions.iter().enumerate().map(|(i, f)| proto::Endpoint {
            address: endpoint_of(i as u8),
            kind: proto::TYPE_INTERRUPT,
            interval: INTERRUPT_INTERVAL,
            interface: i as u8,
            max_packet_size: f.report_len as u16,
        }));
        self.shared.send(proto::EP_INFO, 0, &proto::ep_info(&endpoints), &[])?;
        let connect = proto::device_connect(proto::SPEED_HIGH, VENDOR_ID, PRODUCT_ID, DEVICE_BCD);
        self.shared.send(proto::DEVICE_CONNECT, 0, &connect, &[])?;
        {
            let mut state = self.shared.lock();
            self.shared.trace(&mut state, "sent hello, interface_info, ep_info, device_connect (high speed)");
        }

        stream.set_read_timeout(None)?;
        let shared = self.shared.clone();
        self.threads.push(spawn("usbredir-rx", move || receive_loop(&shared, stream)));
        for (i, fifo) in self.fifos.iter().enumerate() {
            let (shared, reader) = (self.shared.clone(), fifo.handle.try_clone()?);
            self.threads.push(spawn("usbredir-fifo", move || fifo_loop(&shared, i as u8, reader)));
        }
        Ok(())
    }

    /// The FIFO whose reports the peer sends as the `role` interface's input reports.
    pub fn fifo(&self, role: Role) -> &Path {
        &self.fifos[usize::from(self.interface(role))].path
    }

    /// The interrupt IN endpoint of the `role` interface.
    fn endpoint(&self, role: Role) -> u8 {
        endpoint_of(self.interface(role))
    }

    /// The interface number of the `role` function.
    pub fn interface(&self, role: Role) -> u8 {
        interface_of(&self.shared.functions, role)
    }

    /// Waits until `done(events so far)` holds; false on timeout or once QEMU hung up without it.
    fn wait_for(&self, timeout: Duration, done: impl Fn(&[Event]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if done(&state.events) {
                return true;
            }
            let now = Instant::now();
            if state.closed || now >= deadline {
                return false;
            }
            state = self.shared.changed.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Waits until the host polls the `role` interface's endpoint (the firmware's driver for it runs).
    pub fn wait_polling(&self, role: Role, timeout: Duration) -> bool {
        let polling = Event::Polling { endpoint: self.endpoint(role), on: true };
        self.wait_for(timeout, |events| events.contains(&polling))
    }

    /// Everything the peer saw so far.
    pub fn events(&self) -> Vec<Event> {
        self.shared.lock().events.clone()
    }

    /// The reports of the `role` interface that reached QEMU so far.
    pub fn delivered_reports(&self, role: Role) -> Vec<Vec<u8>> {
        delivered(&self.shared.lock().events, self.interface(role))
    }

    /// Waits until the reports of the `role` interface that reached QEMU, less the first
    /// `skip`, satisfy `done`; false on timeout or once QEMU hung up without it.
    pub fn wait_delivered(
        &self,
        role: Role,
        skip: usize,
        timeout: Duration,
        done: impl Fn(&[Vec<u8>]) -> bool,
    ) -> bool {
        let interface = self.interface(role);
        self.wait_for(timeout, |events| done(delivered(events, interface).get(skip..).unwrap_or_default()))
    }

    /// Everything that happened, one timestamped line per packet.
    pub fn log(&self) -> String {
        self.shared.lock().log.clone()
    }
}

impl Drop for UsbRedirPeer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.shared.socket.lock().unwrap_or_else(|e| e.into_inner()).shutdown(Shutdown::Both);
        // A FIFO reader blocks until a whole report arrives: give it one, it then sees `stopping`.
        for (fifo, function) in self.fifos.iter_mut().zip(&self.shared.functions) {
            let _ = fifo.handle.write_all(&vec![0; function.report_len]);
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        if thread::panicking() {
            eprintln!("---- usbredir peer trace ----\n{}---- end of usbredir trace ----", self.log());
        }
    }
}

/// The data of the reports of `interface` among `events` that went to QEMU.
fn delivered(events: &[Event], interface: u8) -> Vec<Vec<u8>> {
    let reports = events.iter().filter_map(|e| match e {
        Event::Report { interface: i, data, delivered: true } if *i == interface => Some(data.clone()),
        _ => None,
    });
    reports.collect()
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    thread::Builder::new().name(name.into()).spawn(f).expect("spawning a usbredir thread")
}

/// Creates the FIFO `path` and opens it read-write: a FIFO held open for writing by its reader
/// never reports end-of-file when a writer (kvnc) closes it, and opening it does not wait for
/// a writer; a writer's non-blocking open succeeds as soon as this handle exists.
fn make_fifo(path: &Path) -> Fifo {
    let out = Command::new("mkfifo").arg("-m").arg("600").arg(path).output().expect("running mkfifo");
    assert!(out.status.success(), "mkfifo {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let handle = OpenOptions::new().read(true).write(true).open(path).expect("opening the FIFO");
    assert!(handle.metadata().expect("FIFO metadata").file_type().is_fifo());
    Fifo { path: path.to_path_buf(), handle }
}

/// Forwards each report_len-byte report written to the FIFO of `interface`.
fn fifo_loop(shared: &Shared, interface: u8, mut fifo: File) {
    let mut report = vec![0; shared.functions[usize::from(interface)].report_len];
    while fifo.read_exact(&mut report).is_ok() && !shared.stopping.load(Ordering::SeqCst) {
        shared.forward_report(interface, &report);
    }
}

/// Reads one packet: (type, id, type-specific header and data).
fn read_packet(stream: &mut UnixStream, header_len: usize) -> io::Result<(u32, u64, Vec<u8>)> {
    let mut header = vec![0; header_len];
    stream.read_exact(&mut header)?;
    let kind = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let id = match header_len {
        proto::HEADER_LEN_64BIT_ID => u64::from_le_bytes(header[8..16].try_into().expect("8 bytes")),
        _ => u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")).into(),
    };
    let mut body = vec![0; len as usize];
    stream.read_exact(&mut body)?;
    Ok((kind, id, body))
}

fn receive_loop(shared: &Shared, mut stream: UnixStream) {
    loop {
        let packet = read_packet(&mut stream, proto::HEADER_LEN_64BIT_ID);
        let mut state = shared.lock();
        let result = match packet {
            Ok((kind, id, body)) => handle_packet(shared, &mut state, kind, id, &body),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            if !shared.stopping.load(Ordering::SeqCst) {
                shared.trace(&mut state, format!("connection to QEMU ended: {e}"));
            }
            state.closed = true;
            shared.changed.notify_all();
            return;
        }
    }
}

/// Answers one packet from QEMU.
fn handle_packet(shared: &Shared, state: &mut State, kind: u32, id: u64, body: &[u8]) -> io::Result<()> {
    let byte = |i: usize| body.get(i).copied().unwrap_or(0);
    match kind {
        proto::RESET => {
            // A reset device is unconfigured and back in report protocol (HID 1.11 §7.2.6).
            state.configuration = 0;
            state.protocol.fill(usb::PROTOCOL_REPORT);
            shared.trace(state, "reset");
            shared.record(state, Event::Reset);
        }
        proto::SET_CONFIGURATION => {
            // struct usb_redir_set_configuration_header {u8 configuration}
            let configuration = byte(0);
            let status = if configuration <= 1 { proto::SUCCESS } else { proto::STALL };
            if status == proto::SUCCESS {
                state.configuration = configuration;
            }
            shared.trace(state, format!("set_configuration {configuration} -> status {status}"));
            shared.record(state, Event::SetConfiguration(configuration));
            // struct usb_redir_configuration_status_header {u8 status, configuration}
            shared.send(proto::CONFIGURATION_STATUS, id, &[status, state.configuration], &[])?;
        }
        proto::GET_CONFIGURATION => {
            shared.send(proto::CONFIGURATION_STATUS, id, &[proto::SUCCESS, state.configuration], &[])?;
        }
        proto::SET_ALT_SETTING | proto::GET_ALT_SETTING => {
            // struct usb_redir_set_alt_setting_header {u8 interface, alt} (get: just interface);
            // every interface has only alternate setting 0.
            let (interface, alt) = (byte(0), byte(1));
            let known = usize::from(interface) < shared.functions.len() && (kind == proto::GET_ALT_SETTING || alt == 0);
            let status = if known { proto::SUCCESS } else { proto::INVAL };
            shared
                .trace(state, format!("alt setting packet {kind}: interface {interface} alt {alt} -> status {status}"));
            // struct usb_redir_alt_setting_status_header {u8 status, interface, alt}
            shared.send(proto::ALT_SETTING_STATUS, id, &[status, interface, 0], &[])?;
        }
        proto::START_INTERRUPT_RECEIVING | proto::STOP_INTERRUPT_RECEIVING => {
            // struct usb_redir_{start,stop}_interrupt_receiving_header {u8 endpoint}
            let endpoint = byte(0);
            let on = kind == proto::START_INTERRUPT_RECEIVING;
            let interface = (0..shared.functions.len()).find(|&i| endpoint_of(i as u8) == endpoint);
            let status = match interface {
                Some(i) => {
                    state.polling[i] = on;
                    proto::SUCCESS
                }
                None => proto::INVAL,
            };
            shared.trace(
                state,
                format!(
                    "{} interrupt receiving on {endpoint:#04x} -> status {status}",
                    if on { "start" } else { "stop" }
                ),
            );
            shared.record(state, Event::Polling { endpoint, on });
            // struct usb_redir_interrupt_receiving_status_header {u8 status, endpoint}
            shared.send(proto::INTERRUPT_RECEIVING_STATUS, id, &[status, endpoint], &[])?;
        }
        proto::CONTROL_PACKET if body.len() >= proto::CONTROL_HEADER_LEN => {
            let (header, data) = body.split_at(proto::CONTROL_HEADER_LEN);
            let setup = Setup {
                endpoint: header[0],
                request: header[1],
                request_type: header[2],
                value: u16::from_le_bytes([header[4], header[5]]),
                index: u16::from_le_bytes([header[6], header[7]]),
                length: u16::from_le_bytes([header[8], header[9]]),
            };
            let (status, reply) = control(shared, state, &setup, data);
            // IN: the data read, at most wLength bytes; OUT: no data, length = bytes taken.
            let (reply, length) = match setup.request_type & 0x80 {
                0 => (Vec::new(), if status == proto::SUCCESS { data.len() } else { 0 }),
                _ => {
                    let reply = reply[..reply.len().min(usize::from(setup.length))].to_vec();
                    let length = reply.len();
                    (reply, length)
                }
            };
            shared.trace(
                state,
                format!(
                    "control type {:#04x} request {:#04x} value {:#06x} index {} length {}{} -> status {status}, {length} bytes",
                    setup.request_type,
                    setup.request,
                    setup.value,
                    setup.index,
                    setup.length,
                    if data.is_empty() { String::new() } else { format!(" data {}", hex(data)) },
                ),
            );
            let mut header = vec![setup.endpoint, setup.request, setup.request_type, status];
            for v in [setup.value, setup.index, length as u16] {
                header.extend_from_slice(&v.to_le_bytes());
            }
            shared.send(proto::CONTROL_PACKET, id, &header, &reply)?;
        }
        // Every request is answered at once, so there is never anything left to cancel.
        proto::CANCEL_DATA_PACKET => shared.trace(state, format!("cancel of packet {id} (already answered)")),
        // The device has no OUT endpoints; anything else is unexpected but harmless to log.
        _ => shared.trace(state, format!("ignored packet type {kind} ({} bytes): {}", body.len(), hex(body))),
    }
    Ok(())
}

/// A control request's setup stage, as usb_redir_control_packet_header carries it.
struct Setup {
    endpoint: u8,
    request: u8,
    request_type: u8,
    value: u16,
    index: u16,
    length: u16,
}

/// Answers a control request: (status, IN data before truncation to wLength).
fn control(shared: &Shared, state: &mut State, setup: &Setup, data: &[u8]) -> (u8, Vec<u8>) {
    let [value_low, value_high] = setup.value.to_le_bytes();
    let interface = usize::from(setup.index as u8);
    let function = shared.functions.get(interface).filter(|_| setup.index < 0x100);
    let ok = |reply: Vec<u8>| (proto::SUCCESS, reply);
    let stall = (proto::STALL, Vec::new());
    match (setup.request_type, setup.request, function) {
        (usb::IN_STANDARD_DEVICE, usb::GET_DESCRIPTOR, _) => match value_high {
            usb::DT_DEVICE => ok(device_descriptor()),
            usb::DT_CONFIG if value_low == 0 => ok(config_descriptor(&shared.functions)),
            usb::DT_DEVICE_QUALIFIER => ok(device_qualifier()),
            usb::DT_STRING => string_descriptor(value_low).map_or(stall, ok),
            _ => stall,
        },
        (usb::IN_STANDARD_INTERFACE, usb::GET_DESCRIPTOR, Some(f)) => match value_high {
            usb::DT_HID => ok(hid_descriptor(f)),
            usb::DT_HID_REPORT => ok(f.report_desc.to_vec()),
            _ => stall,
        },
        (usb::IN_STANDARD_DEVICE | usb::IN_STANDARD_ENDPOINT, usb::GET_STATUS, _)
        | (usb::IN_STANDARD_INTERFACE, usb::GET_STATUS, Some(_)) => ok(vec![0, 0]),
        // Remote wake-up (device) and endpoint halt: nothing to keep.
        (usb::OUT_STANDARD_DEVICE | usb::OUT_STANDARD_ENDPOINT, usb::CLEAR_FEATURE | usb::SET_FEATURE, _) => ok(vec![]),
        (usb::IN_CLASS_INTERFACE, usb::HID_GET_REPORT, Some(f)) => ok(vec![0; f.report_len]),
        (usb::IN_CLASS_INTERFACE, usb::HID_GET_IDLE, Some(_)) => ok(vec![state.idle[interface]]),
        (usb::IN_CLASS_INTERFACE, usb::HID_GET_PROTOCOL, Some(_)) => ok(vec![state.protocol[interface]]),
        (usb::OUT_CLASS_INTERFACE, usb::HID_SET_IDLE, Some(_)) => {
            state.idle[interface] = value_high;
            ok(vec![])
        }
        (usb::OUT_CLASS_INTERFACE, usb::HID_SET_PROTOCOL, Some(_)) if value_low <= usb::PROTOCOL_REPORT => {
            state.protocol[interface] = value_low;
            shared.record(state, Event::SetProtocol { interface: interface as u8, protocol: value_low });
            ok(vec![])
        }
        (usb::OUT_CLASS_INTERFACE, usb::HID_SET_REPORT, Some(_)) => {
            shared.record(state, Event::SetReport { interface: interface as u8, data: data.to_vec() });
            ok(vec![])
        }
        _ => stall,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}
