//! The virtual hardware lab: kvnc on real kernel drivers (USB gadget on dummy_hcd, the same
//! kernel's USB host and evdev, vivid's V4L2 HDMI input) inside a QEMU guest running Debian's kernel.
//!
//! Tests use it as `kvnc_test_support::lab` (see tests/lab.rs and tests/lab/README.md). The guest
//! is built and cached by [`builder`]; [`Lab::start_or_skip`] boots it:
//! * the host's root is the guest's `/host` (9p, read only) and [`Lab::run`] runs scripts with
//!   `chroot /host`, so the host-built kvnc and host tools (v4l2-ctl, python3, ...) run on the guest's
//!   kernel; the guest's /proc, /sys (with configfs), /dev and a writable tmpfs /run are bound in;
//!   the host's /tmp stays read-only (kvnc built under a /tmp CARGO_TARGET_DIR still runs);
//! * the host's 127.0.0.1:[`Lab::host_port`] is forwarded to the guest's port [`GUEST_KVNC_PORT`],
//!   where `LabOptions::kvnc_args` starts kvnc at boot (its log: [`Lab::kvnc_log`]);
//! * commands travel over a virtio-serial port, one framed request and reply each (tests/lab/init.sh):
//!   no sleeps, exit status and output come back exactly;
//! * QEMU is tracked by PID: a watchdog process kills it if this test process dies, [`Drop`] powers
//!   the guest off (then kills QEMU) and, when the test panics, prints and saves the console, dmesg,
//!   kvnc's log and the command history under `<target>/test-artifacts/lab-<test name>/`.

#[path = "builder.rs"]
pub mod builder;

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use builder::GuestImage;
use kvnc::hid::Role;

use crate::which;

/// The guest port that the host's [`Lab::host_port`] reaches.
pub const GUEST_KVNC_PORT: u16 = 5900;
/// How long one [`Lab::run`] may take unless the caller says otherwise.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Slack on top of a command's own timeout before the host gives up on the guest (TCG is slow).
const CHANNEL_SLACK: Duration = Duration::from_secs(15);
/// The QEMU binary; the lab needs nothing else from the `qemu-system-x86` package.
const QEMU: &str = "qemu-system-x86_64";

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// How to boot a [`Lab`].
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// kvnc's arguments, started in the guest once it is up (e.g. `serve --listen 0.0.0.0:5900
    /// --no-auth`); None boots without kvnc.
    kvnc_args: Option<Vec<String>>,
    /// The kvnc binary (a host path, run through the chroot).
    pub kvnc_binary: PathBuf,
    /// Extra environment for kvnc, e.g. `("RUST_LOG", "debug")`.
    kvnc_env: Vec<(String, String)>,
    memory_mib: u32,
    /// vCPUs: under TCG one boots fastest (measured: 6 s against 7.5 s for two).
    cpus: u32,
    /// From QEMU's start to the guest's "ready" (about 6 s alone; CI may run two lab guests at once).
    boot_timeout: Duration,
    /// Appended to the kernel command line.
    kernel_args: String,
    /// Appended to QEMU's command line (e.g. extra devices).
    qemu_args: Vec<String>,
    /// Shell commands run in the guest (host root) once it is up, before kvnc starts (e.g.
    /// selecting vivid's HDMI input); each must succeed.
    pub before_kvnc: Vec<String>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            kvnc_args: None,
            kvnc_binary: crate::kvnc_binary(),
            kvnc_env: Vec::new(),
            memory_mib: 1024,
            cpus: 1,
            boot_timeout: Duration::from_secs(120),
            kernel_args: String::new(),
            qemu_args: Vec::new(),
            before_kvnc: Vec::new(),
        }
    }
}

impl LabOptions {
    /// A guest running `kvnc ARGS`.
    pub fn kvnc(args: &[&str]) -> Self {
        LabOptions { kvnc_args: Some(args.iter().map(|a| a.to_string()).collect()), ..Default::default() }
    }

    /// A guest running `kvnc serve --listen 0.0.0.0:5900 --no-auth EXTRA..` (the demo target unless
    /// EXTRA says `--source`).
    pub fn kvnc_serve(extra: &[&str]) -> Self {
        let listen = format!("0.0.0.0:{GUEST_KVNC_PORT}");
        let mut args = vec!["serve", "--listen", &listen, "--no-auth"];
        args.extend_from_slice(extra);
        Self::kvnc(&args)
    }

    /// A guest without kvnc.
    pub fn without_kvnc() -> Self {
        Self::default()
    }
}

/// Where a script runs in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `chroot /host`: the host's Debian userland on the guest's kernel, /proc /sys /dev /run bound in.
    Host,
    /// The initramfs's busybox (its `modprobe`/`rmmod` know the guest's modules; the host's kmod
    /// looks for them under the host's /lib/modules, which has none for this kernel).
    Initramfs,
}

impl Root {
    fn wire_name(self) -> &'static str {
        match self {
            Root::Host => "host",
            Root::Initramfs => "guest",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// evdev
// ---------------------------------------------------------------------------------------------

/// Event types and codes of linux/input-event-codes.h that the lab tests use.
pub mod input {
    pub const EV_KEY: u16 = 0x01;
    pub const EV_REL: u16 = 0x02;
    pub const EV_ABS: u16 = 0x03;
    pub const EV_MSC: u16 = 0x04;
    pub const MSC_SCAN: u16 = 0x04;
    pub const KEY_A: u16 = 30;
    pub const KEY_B: u16 = 48;
    pub const KEY_X: u16 = 45;
    pub const BTN_LEFT: u16 = 0x110;
    pub const BTN_RIGHT: u16 = 0x111;
    pub const REL_HWHEEL: u16 = 0x06;
    pub const REL_WHEEL: u16 = 0x08;
    pub const ABS_X: u16 = 0x00;
    pub const ABS_Y: u16 = 0x01;
}

/// One `struct input_event` read from the guest's /dev/input/eventN (time left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    pub event_type: u16,
    pub code: u16,
    pub value: i32,
}

impl InputEvent {
    /// Size of `struct input_event` on x86_64: a 16-byte timeval, u16 type, u16 code, i32 value.
    const SIZE: usize = 24;

    pub fn key(code: u16, value: i32) -> Self {
        InputEvent { event_type: input::EV_KEY, code, value }
    }

    /// Parses the raw bytes read from an event device (whole events only).
    fn parse_all(raw: &[u8]) -> Vec<InputEvent> {
        raw.chunks_exact(Self::SIZE)
            .map(|event| InputEvent {
                event_type: u16::from_le_bytes([event[16], event[17]]),
                code: u16::from_le_bytes([event[18], event[19]]),
                value: i32::from_le_bytes([event[20], event[21], event[22], event[23]]),
            })
            .collect()
    }
}

/// Keeps only key presses (value 1) and releases (0). The guest's input layer adds autorepeats
/// (value 2) of its own while a key stays down longer than 250 ms, which under TCG can happen
/// between two reports; they say nothing about the device.
pub fn key_presses_and_releases(events: &[InputEvent]) -> Vec<InputEvent> {
    events.iter().copied().filter(|e| e.event_type == input::EV_KEY && e.value != 2).collect()
}

/// Records an input device's events in the guest from its creation until it is dropped
/// (a `cat` of /dev/input/eventN into /run/lab; it ends by itself when the device goes away).
pub struct EvdevRecorder<'a> {
    lab: &'a Lab,
    device: String,
    file: String,
    pid: u32,
}

impl EvdevRecorder<'_> {
    /// Everything recorded so far.
    #[track_caller]
    fn events(&self) -> Vec<InputEvent> {
        let out = self.lab.run_ok_in(Root::Initramfs, &format!("base64 {}", self.file));
        InputEvent::parse_all(&base64_decode(&out))
    }

    /// Polls until `done(events so far)` holds and returns the events; panics after `timeout`.
    #[track_caller]
    pub fn wait_for(&self, done: impl Fn(&[InputEvent]) -> bool, timeout: Duration) -> Vec<InputEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events();
            if done(&events) {
                return events;
            }
            if Instant::now() >= deadline {
                panic!("events on {} after {timeout:?} did not match: {events:?}", self.device);
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for EvdevRecorder<'_> {
    fn drop(&mut self) {
        let _ = self.lab.try_run(
            Root::Initramfs,
            &format!("kill {} 2>/dev/null; rm -f {}", self.pid, self.file),
            COMMAND_TIMEOUT,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// USB gadgets: kvnc makes them (`kvnc gadget up`, `kvnc serve --hid gadget`); the lab plugs,
// unplugs and looks at what the guest's USB host sees.
// ---------------------------------------------------------------------------------------------

/// The configfs name kvnc gives its gadget unless told otherwise.
pub const GADGET: &str = "kvnc";
/// The guest's only UDC (dummy_hcd's device side).
const UDC: &str = "dummy_udc.0";

/// The guest's USB host names every interface of kvnc's gadget "<manufacturer> <product>"; the
/// physical path, which ends in the interface number, tells them apart.
fn gadget_input_phys(role: Role) -> String {
    format!("usb-dummy_hcd.0-1/input{}", role.interface())
}

// ---------------------------------------------------------------------------------------------
// The lab
// ---------------------------------------------------------------------------------------------

/// A booted lab guest; powered off (and QEMU reaped) on drop.
pub struct Lab {
    qemu: Child,
    /// Kills QEMU when its stdin (our pipe) closes, i.e. when this test process dies unexpectedly.
    watchdog: Child,
    watchdog_pipe: Option<ChildStdin>,
    channel: Mutex<Channel>,
    host_port: u16,
    work_dir: PathBuf,
    test_name: String,
    image: GuestImage,
    kvnc_pid: Option<u32>,
}

/// The command channel: our end of the virtio-serial port.
struct Channel {
    writer: UnixStream,
    lines: Receiver<String>,
    next_id: u64,
    /// Set when a reply did not come: the channel is out of step and every later command fails.
    broken: Option<String>,
    /// Every command and its exit status, for the failure report.
    history: Vec<String>,
}

/// Why a QEMU start did not give a lab.
enum StartError {
    /// The forwarded host port was taken between choosing it and QEMU binding it: try another.
    PortTaken,
    Failed(String),
}

impl Lab {
    /// Boots a lab, or returns None (after printing why) only when QEMU cannot run on this machine
    /// at all: no qemu-system-x86_64 and no apt to install it. Anywhere that could run QEMU, and
    /// always under CI (`CI` set), a missing prerequisite or any failure panics instead.
    pub fn start_or_skip(options: LabOptions) -> Option<Lab> {
        if let Some(reason) = qemu_unavailable() {
            eprintln!("SKIPPED: the virtual hardware lab cannot run here: {reason}");
            return None;
        }
        Some(Lab::start(options))
    }

    /// Boots a lab; panics when it cannot.
    fn start(options: LabOptions) -> Lab {
        if which(QEMU).is_none() {
            panic!("{QEMU} not installed (Debian package qemu-system-x86): run scripts/test to install it");
        }
        let image = builder::guest_image();
        let mut last_error = String::new();
        for _ in 0..3 {
            match Lab::boot(&options, &image) {
                Ok(lab) => return lab,
                Err(StartError::PortTaken) => last_error = "the forwarded port was taken, three times".into(),
                Err(StartError::Failed(e)) => panic!("{e}"),
            }
        }
        panic!("starting the lab: {last_error}");
    }

    fn boot(options: &LabOptions, image: &GuestImage) -> Result<Lab, StartError> {
        let started = Instant::now();
        let test_name = current_test_name();
        let work_dir = std::env::temp_dir().join(unique_name("kvnc-lab"));
        fs::create_dir_all(&work_dir).map_err(|e| StartError::Failed(format!("creating work dir: {e}")))?;
        let socket_path = work_dir.join("cmd.sock");
        let listener = UnixListener::bind(&socket_path)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| StartError::Failed(format!("binding {}: {e}", socket_path.display())))?;
        let host_port = free_loopback_port();
        let qemu_log = work_dir.join("qemu.log");

        let mut command = Command::new(QEMU);
        command
            .args(["-accel", &std::env::var("KVNC_LAB_ACCEL").unwrap_or_else(|_| "tcg".into())])
            .args(["-m", &options.memory_mib.to_string(), "-smp", &options.cpus.to_string()])
            .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", work_dir.join("console.log").display()))
            .arg("-kernel")
            .arg(&image.kernel)
            .arg("-initrd")
            .arg(&image.initramfs)
            .args(["-append", &format!("console=ttyS0 panic=-1 quiet {}", options.kernel_args)])
            .args(["-device", "virtio-serial-pci"])
            .arg("-chardev")
            .arg(format!("socket,id=labcmd,path={}", socket_path.display()))
            .args(["-device", "virtserialport,chardev=labcmd,name=lab.cmd"])
            .arg("-netdev")
            .arg(format!("user,id=net0,hostfwd=tcp:127.0.0.1:{host_port}-:{GUEST_KVNC_PORT}"))
            // romfile= : no PXE option ROM, which the guest never uses (and which may not be installed).
            .args(["-device", "virtio-net-pci,netdev=net0,romfile="])
            .args(["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"])
            .args(&options.qemu_args)
            .stdin(Stdio::null());
        let log_file = fs::File::create(&qemu_log).map_err(|e| StartError::Failed(format!("qemu.log: {e}")))?;
        let log_file_2 = log_file.try_clone().map_err(|e| StartError::Failed(format!("qemu.log: {e}")))?;
        command.stdout(log_file).stderr(log_file_2);
        let mut qemu = command.spawn().map_err(|e| StartError::Failed(format!("spawning {QEMU}: {e}")))?;
        let mut watchdog = match spawn_watchdog(qemu.id()) {
            Ok(watchdog) => watchdog,
            Err(e) => {
                let _ = qemu.kill();
                let _ = qemu.wait();
                return Err(StartError::Failed(e));
            }
        };
        let watchdog_pipe = watchdog.stdin.take();

        let connection = accept_until(&listener, &mut qemu, Duration::from_secs(30))
            .and_then(|stream| stream.try_clone().map(|reader| (stream, reader)).map_err(|e| e.to_string()));
        let (stream, reader) = match connection {
            Ok(pair) => pair,
            Err(e) => {
                stop_process(&mut qemu);
                stop_process(&mut watchdog);
                let log = fs::read_to_string(&qemu_log).unwrap_or_default();
                let _ = fs::remove_dir_all(&work_dir);
                // QEMU 7.2: "Could not set up host forwarding rule 'tcp:127.0.0.1:PORT-:5900'".
                if log.contains("host forwarding") {
                    return Err(StartError::PortTaken);
                }
                return Err(StartError::Failed(format!("QEMU did not connect its command port: {e}\n{log}")));
            }
        };
        let lines = spawn_line_reader(reader);
        let channel = Channel { writer: stream, lines, next_id: 1, broken: None, history: Vec::new() };
        let mut lab = Lab {
            qemu,
            watchdog,
            watchdog_pipe,
            channel: Mutex::new(channel),
            host_port,
            work_dir,
            test_name,
            image: image.clone(),
            kvnc_pid: None,
        };
        // From here on, a failure (a panic) tears QEMU down and reports through Lab's Drop.
        lab.wait_ready(started, options.boot_timeout);
        eprintln!(
            "lab: guest ready in {:.1?} (kernel {}), host port {host_port}",
            started.elapsed(),
            image.kernel_release
        );
        for script in &options.before_kvnc {
            lab.run_ok(script);
        }
        if let Some(args) = &options.kvnc_args {
            lab.kvnc_pid = Some(lab.spawn_kvnc(options, args));
        }
        Ok(lab)
    }

    /// Waits for the guest's "@@ready"; panics (Drop then collects the logs) on timeout or death.
    fn wait_ready(&mut self, started: Instant, timeout: Duration) {
        let deadline = started + timeout;
        loop {
            let received = self.channel().lines.recv_timeout(Duration::from_millis(200));
            match received {
                Ok(line) if line.starts_with("@@ready") => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.channel().broken = Some("the guest closed its command port while booting".into());
                    panic!("the lab guest died while booting (see its console below)");
                }
            }
            if Instant::now() >= deadline {
                self.channel().broken = Some("the guest never became ready".into());
                panic!("the lab guest was not ready after {timeout:?} (see its console below)");
            }
        }
    }

    fn spawn_kvnc(&self, options: &LabOptions, args: &[String]) -> u32 {
        let env: String = options.kvnc_env.iter().map(|(k, v)| format!("{k}={} ", quote(v))).collect();
        let command = format!(
            "{env}exec {} {}",
            quote(&options.kvnc_binary.to_string_lossy()),
            args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
        );
        self.spawn("kvnc", &command)
    }

    // ---- commands ---------------------------------------------------------------------------

    /// Runs `script` with `sh` in the host's root on the guest (see [`Root::Host`]), with
    /// `COMMAND_TIMEOUT`; returns its exit status and output. Panics only if the guest is gone.
    #[track_caller]
    pub fn run(&self, script: &str) -> Output {
        self.run_in(Root::Host, script, COMMAND_TIMEOUT)
    }

    /// [`Lab::run`] with a root and timeout of its own; the script is killed after `timeout`
    /// (status 137).
    #[track_caller]
    pub fn run_in(&self, root: Root, script: &str, timeout: Duration) -> Output {
        match self.try_run(root, script, timeout) {
            Ok(output) => output,
            Err(e) => panic!("lab command {script:?}: {e}"),
        }
    }

    /// Runs `script` like [`Lab::run`] and returns its stdout; panics (with its output) unless it exits 0.
    #[track_caller]
    pub fn run_ok(&self, script: &str) -> String {
        self.run_ok_in(Root::Host, script)
    }

    #[track_caller]
    pub fn run_ok_in(&self, root: Root, script: &str) -> String {
        let out = self.run_in(root, script, COMMAND_TIMEOUT);
        if !out.status.success() {
            panic!(
                "lab command failed ({}): {script}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends one request and reads its framed reply (tests/lab/init.sh describes the protocol).
    fn try_run(&self, root: Root, script: &str, timeout: Duration) -> Result<Output, String> {
        let mut channel = self.channel();
        if let Some(reason) = &channel.broken {
            return Err(format!("the lab's command channel is unusable: {reason}"));
        }
        let id = channel.next_id;
        channel.next_id += 1;
        let seconds = timeout.as_secs().max(1);
        let request = format!("run {id} {seconds} {} {}\n", root.wire_name(), base64_encode(script.as_bytes()));
        if let Err(e) = channel.writer.write_all(request.as_bytes()) {
            channel.broken = Some(format!("writing to the guest: {e}"));
            return Err(format!("writing to the guest: {e}"));
        }
        let deadline = Instant::now() + Duration::from_secs(seconds) + CHANNEL_SLACK;
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let mut section = 0; // 0 before @@out, 1 in stdout, 2 in stderr
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = match channel.lines.recv_timeout(wait) {
                Ok(line) => line,
                Err(e) => {
                    let reason = match e {
                        RecvTimeoutError::Timeout => format!("no reply within {seconds} s + slack"),
                        RecvTimeoutError::Disconnected => "the guest closed the command port".to_string(),
                    };
                    channel.history.push(format!("[{root:?}] {script}\n  => {reason}"));
                    channel.broken = Some(reason.clone());
                    return Err(reason);
                }
            };
            if line == format!("@@out {id}") {
                section = 1;
            } else if line == format!("@@err {id}") {
                section = 2;
            } else if let Some(status) = line.strip_prefix(&format!("@@end {id} ")) {
                let code: i32 = status.trim().parse().unwrap_or(255);
                channel.history.push(format!("[{root:?}] {script}\n  => exit {code}"));
                return Ok(Output {
                    status: ExitStatus::from_raw((code & 0xff) << 8),
                    stdout: base64_decode(&stdout),
                    stderr: base64_decode(&stderr),
                });
            } else if section == 1 {
                stdout.push_str(&line);
            } else if section == 2 {
                stderr.push_str(&line);
            }
        }
    }

    fn channel(&self) -> MutexGuard<'_, Channel> {
        self.channel.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `script` in the background in the host root, output to /run/lab/NAME.log ([`Lab::log`]);
    /// returns its guest PID (that of `script` itself when it `exec`s a program).
    #[track_caller]
    fn spawn(&self, name: &str, script: &str) -> u32 {
        self.spawn_in(Root::Host, name, script)
    }

    #[track_caller]
    pub fn spawn_in(&self, root: Root, name: &str, script: &str) -> u32 {
        let out = self.run_ok_in(root, &format!("( {script} ) >/run/lab/{name}.log 2>&1 </dev/null &\necho $!"));
        out.trim().parse().unwrap_or_else(|_| panic!("spawning {name}: no PID in {out:?}"))
    }

    /// The log of a process started with [`Lab::spawn_in`] (empty if none).
    pub fn log(&self, name: &str) -> String {
        let out = self.run_in(Root::Initramfs, &format!("cat /run/lab/{name}.log 2>/dev/null"), COMMAND_TIMEOUT);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether guest process `pid` is still running.
    pub fn is_running(&self, pid: u32) -> bool {
        self.run_in(Root::Initramfs, &format!("kill -0 {pid} 2>/dev/null"), COMMAND_TIMEOUT).status.success()
    }

    /// Polls the shell condition `condition` with busybox in the guest (10 times a second, all in
    /// one command) until it holds; false after `timeout`.
    pub fn wait_until(&self, condition: &str, timeout: Duration) -> bool {
        self.wait_until_in(Root::Initramfs, condition, timeout)
    }

    /// [`Lab::wait_until`] in a root of choice ([`Root::Host`] for conditions that use host tools).
    pub fn wait_until_in(&self, root: Root, condition: &str, timeout: Duration) -> bool {
        let tries = (timeout.as_millis() / 100).max(1);
        let script = format!("i=0\nuntil {condition}\ndo\n  i=$((i+1)); [ $i -ge {tries} ] && exit 1; sleep 0.1\ndone");
        self.run_in(root, &script, timeout + Duration::from_secs(10)).status.success()
    }

    /// The guest's kernel log.
    #[track_caller]
    pub fn dmesg(&self) -> String {
        self.run_ok_in(Root::Initramfs, "dmesg")
    }

    pub fn image(&self) -> &GuestImage {
        &self.image
    }

    // ---- kvnc and the forwarded port --------------------------------------------------------

    /// The host's loopback port forwarded to the guest's [`GUEST_KVNC_PORT`].
    pub fn host_port(&self) -> u16 {
        self.host_port
    }

    /// The forwarded port in vncdo/vncviewer form, "127.0.0.1::PORT".
    pub fn vnc_target(&self) -> String {
        format!("127.0.0.1::{}", self.host_port)
    }

    /// kvnc's guest PID (when `LabOptions::kvnc_args` started it).
    pub fn kvnc_pid(&self) -> Option<u32> {
        self.kvnc_pid
    }

    /// kvnc's output so far.
    pub fn kvnc_log(&self) -> String {
        self.log("kvnc")
    }

    /// Waits until kvnc logs "listening on" in the guest and then answers an RFB greeting through
    /// the forwarded host port; panics with kvnc's log otherwise (e.g. if it exited).
    #[track_caller]
    pub fn wait_listening(&self, timeout: Duration) {
        let pid = self.kvnc_pid.expect("wait_listening: this lab started no kvnc (LabOptions::kvnc_args)");
        let deadline = Instant::now() + timeout;
        let listening = self
            .wait_until(&format!("grep -q 'listening on' /run/lab/kvnc.log || ! kill -0 {pid} 2>/dev/null"), timeout);
        if !listening || !self.is_running(pid) {
            panic!(
                "kvnc is not listening in the guest (running: {}); its log:\n{}",
                self.is_running(pid),
                self.kvnc_log()
            );
        }
        loop {
            match rfb_greeting(self.host_port) {
                Ok(greeting) if greeting.starts_with(b"RFB ") => return,
                result if Instant::now() >= deadline => {
                    panic!(
                        "no RFB greeting through 127.0.0.1:{} ({result:?}); kvnc's log:\n{}",
                        self.host_port,
                        self.kvnc_log()
                    )
                }
                _ => thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    // ---- files ------------------------------------------------------------------------------

    /// Writes each of `reports` to `path` with a write of its own, all in one guest command (so
    /// they follow each other within milliseconds, as a real keyboard's would).
    #[track_caller]
    pub fn write_reports(&self, path: &str, reports: &[&[u8]]) {
        let script: String = reports
            .iter()
            .map(|report| {
                let escaped: String = report.iter().map(|b| format!("\\{b:03o}")).collect();
                format!("printf '{escaped}' > {}\n", quote(path))
            })
            .collect();
        self.run_ok_in(Root::Initramfs, &script);
    }

    /// A guest file's bytes (binary-safe, through base64).
    #[track_caller]
    pub fn read_bytes(&self, path: &str) -> Vec<u8> {
        let out = self.run_ok_in(Root::Initramfs, &format!("base64 {}", quote(path)));
        base64_decode(&out)
    }

    /// A guest file's text.
    #[track_caller]
    pub fn read_file(&self, path: &str) -> String {
        self.run_ok_in(Root::Initramfs, &format!("cat {}", quote(path)))
    }

    // ---- input devices ----------------------------------------------------------------------

    /// Waits for the input device of kvnc's gadget function `role` to appear on the guest's USB
    /// host; returns its /dev/input/eventN.
    #[track_caller]
    pub fn wait_gadget_input(&self, role: Role, timeout: Duration) -> String {
        let script = find_input_by_phys_script(&gadget_input_phys(role));
        if !self.wait_until(&format!("[ -n \"$({script})\" ]"), timeout) {
            panic!("no input device for the {role:?}; the guest has:\n{}", self.read_file("/proc/bus/input/devices"));
        }
        self.run_ok_in(Root::Initramfs, &script).trim().to_string()
    }

    /// Waits for the input device of gadget function `role` to go away; panics after `timeout`.
    #[track_caller]
    pub fn wait_gadget_input_gone(&self, role: Role, timeout: Duration) {
        let script = find_input_by_phys_script(&gadget_input_phys(role));
        if !self.wait_until(&format!("[ -z \"$({script})\" ]"), timeout) {
            panic!("the {role:?}'s input device is still there after {timeout:?}");
        }
    }

    /// Starts recording the events of /dev/input/eventN `device`.
    #[track_caller]
    pub fn evdev_recorder(&self, device: String) -> EvdevRecorder<'_> {
        let file = format!("/run/lab/evdev-{}.bin", unique_name("rec"));
        // Return only once cat holds the device open: events before that would be lost.
        let script = format!(
            "cat {device} > {file} 2>/dev/null </dev/null &\npid=$!\n\
             until ls -l /proc/$pid/fd 2>/dev/null | grep -q {device}; do\n  \
             kill -0 $pid 2>/dev/null || exit 1; sleep 0.02\ndone\necho $pid"
        );
        let out = self.run_ok_in(Root::Initramfs, &script);
        let pid = out.trim().parse().unwrap_or_else(|_| panic!("recording {device}: no PID in {out:?}"));
        EvdevRecorder { lab: self, device, file, pid }
    }

    // ---- USB gadgets ------------------------------------------------------------------------

    /// Runs the kvnc binary with `args` in the guest (host root); returns its output.
    #[track_caller]
    pub fn kvnc_command(&self, args: &str) -> Output {
        self.run(&format!("{} {args}", quote(&crate::kvnc_binary().to_string_lossy())))
    }

    /// Unbinds `gadget` from its UDC: the guest's USB host sees the device unplugged.
    #[track_caller]
    pub fn udc_unbind(&self, gadget: &str) {
        self.run_ok_in(Root::Initramfs, &format!("echo '' > /sys/kernel/config/usb_gadget/{gadget}/UDC"));
    }

    /// Binds `gadget` to the guest's UDC again: plugged back in.
    #[track_caller]
    pub fn udc_bind(&self, gadget: &str) {
        self.run_ok_in(Root::Initramfs, &format!("echo {UDC} > /sys/kernel/config/usb_gadget/{gadget}/UDC"));
    }

    // ---- kernel modules ---------------------------------------------------------------------

    /// Loads module `name` (and what it needs) with the initramfs's modprobe; parameters from
    /// tests/lab/modules.txt apply.
    #[track_caller]
    pub fn modprobe(&self, name: &str) {
        self.run_ok_in(Root::Initramfs, &format!("modprobe {}", quote(name)));
    }

    /// Unloads module `name`; panics if the kernel refuses (e.g. while in use).
    #[track_caller]
    pub fn rmmod(&self, name: &str) {
        self.run_ok_in(Root::Initramfs, &format!("rmmod {}", quote(name)));
    }

    pub fn module_loaded(&self, name: &str) -> bool {
        let script = format!("[ -d /sys/module/{} ]", name.replace('-', "_"));
        self.run_in(Root::Initramfs, &script, COMMAND_TIMEOUT).status.success()
    }

    // ---- V4L2 / vivid -----------------------------------------------------------------------

    /// Runs the host's `v4l2-ctl ARGS` (Debian package v4l-utils) in the guest.
    fn v4l2_ctl(&self, args: &[&str]) -> Output {
        self.run(&format!("v4l2-ctl {}", args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")))
    }

    /// Like `Lab::v4l2_ctl` but returns stdout and panics unless it succeeds.
    #[track_caller]
    pub fn v4l2_ctl_ok(&self, args: &[&str]) -> String {
        self.run_ok(&format!("v4l2-ctl {}", args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")))
    }

    /// The /dev/videoN of vivid's (first) video capture node.
    #[track_caller]
    pub fn vivid_capture_device(&self) -> String {
        let script = "for d in /sys/class/video4linux/video*; do\n  \
                      [ \"$(cat $d/name)\" = vivid-000-vid-cap ] && echo /dev/${d##*/}\ndone; true";
        let out = self.run_ok_in(Root::Initramfs, script);
        out.lines().next().map(str::to_string).unwrap_or_else(|| panic!("no vivid capture node in the guest"))
    }

    /// Sets vivid control `control` (v4l2-ctl's name, e.g. "dv_timings_signal_mode") to `value`.
    #[track_caller]
    pub fn vivid_ctl(&self, device: &str, control: &str, value: &str) {
        self.v4l2_ctl_ok(&["-d", device, "-c", &format!("{control}={value}")]);
    }

    /// Selects the input whose name is `input` (e.g. "HDMI 0"); returns its index.
    #[track_caller]
    pub fn vivid_select_input(&self, device: &str, input: &str) -> u32 {
        let inputs = self.v4l2_ctl_ok(&["-d", device, "--list-inputs"]);
        let index =
            parse_input_index(&inputs, input).unwrap_or_else(|| panic!("no input {input:?} on {device}:\n{inputs}"));
        self.v4l2_ctl_ok(&["-d", device, "-i", &index.to_string()]);
        index
    }

    /// VIDIOC_QUERY_DV_TIMINGS through v4l2-ctl: Ok((width, height)), or Err(v4l2-ctl's output).
    pub fn query_dv_timings(&self, device: &str) -> Result<(u32, u32), String> {
        let out = self.v4l2_ctl(&["-d", device, "--query-dv-timings"]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        match (out.status.success(), parse_active_size(&text)) {
            (true, Some(size)) => Ok(size),
            _ => Err(text),
        }
    }

    // ---- shutdown and failure reports -------------------------------------------------------

    fn stop(&mut self) {
        let poweroff_sent = {
            let mut channel = self.channel();
            channel.broken.is_none() && channel.writer.write_all(b"poweroff\n").is_ok()
        };
        if poweroff_sent {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(self.qemu.try_wait(), Ok(None)) {
                thread::sleep(Duration::from_millis(20));
            }
        }
        stop_process(&mut self.qemu);
        // The watchdog dies before its pipe closes, so it never signals a reaped (reusable) PID.
        stop_process(&mut self.watchdog);
        self.watchdog_pipe.take();
        let _ = fs::remove_dir_all(&self.work_dir);
    }

    /// Prints and saves what explains a failure: console, dmesg, kvnc's log, the command history.
    fn report_failure(&mut self) {
        let dir = crate::artifacts_dir_path().join(format!("lab-{}", sanitize(&self.test_name)));
        let _ = fs::create_dir_all(&dir);
        let mut sections: Vec<(&str, String)> = Vec::new();
        let alive = self.channel().broken.is_none();
        if alive {
            let fetch = |script: &str| match self.try_run(Root::Initramfs, script, Duration::from_secs(10)) {
                Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
                Err(e) => format!("(unavailable: {e})"),
            };
            sections.push(("dmesg.txt", fetch("dmesg")));
            sections.push(("kvnc.log", fetch("cat /run/lab/kvnc.log 2>/dev/null")));
            sections.push(("processes.txt", fetch("ps")));
        }
        sections.push(("console.log", fs::read_to_string(self.work_dir.join("console.log")).unwrap_or_default()));
        sections.push(("qemu.log", fs::read_to_string(self.work_dir.join("qemu.log")).unwrap_or_default()));
        let history = {
            let channel = self.channel();
            let mut text = channel.history.join("\n");
            if let Some(reason) = &channel.broken {
                let _ = write!(text, "\nchannel broken: {reason}");
            }
            text
        };
        sections.push(("commands.txt", history));
        eprintln!("==== lab failure report ({}), saved in {} ====", self.test_name, dir.display());
        for (name, text) in &sections {
            let _ = fs::write(dir.join(name), text);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("---- {name} (last {} of {} lines) ----\n{}", tail.len(), lines.len(), tail.join("\n"));
        }
        eprintln!("==== end of lab failure report ====");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if thread::panicking() {
            self.report_failure();
        }
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Why QEMU cannot run here at all, or None if it can (or could, once installed: then the lab
/// must not be skipped). Under CI this is always None: CI must run the lab.
fn qemu_unavailable() -> Option<String> {
    if which(QEMU).is_some() || std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let installable =
        Command::new("apt-cache").args(["policy", "qemu-system-x86"]).stdin(Stdio::null()).output().is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout).lines().any(|l| {
                l.trim().strip_prefix("Candidate:").is_some_and(|v| !v.trim().is_empty() && v.trim() != "(none)")
            })
        });
    (!installable).then(|| format!("no {QEMU}, and apt offers no qemu-system-x86 to install"))
}

/// The shell pipeline printing /dev/input/eventN of the device whose physical path is `phys`.
fn find_input_by_phys_script(phys: &str) -> String {
    format!(
        "for e in /sys/class/input/event*; do [ \"$(cat $e/device/phys 2>/dev/null)\" = {} ] && echo /dev/input/${{e##*/}}; done; true",
        quote(phys)
    )
}

/// "Input 3\t: HDMI 0" lines of `v4l2-ctl --list-inputs`: the index of `name`.
fn parse_input_index(list: &str, name: &str) -> Option<u32> {
    let mut index = None;
    for line in list.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        match key.trim() {
            "Input" => index = value.trim().parse().ok(),
            "Name" if value.trim() == name => return index,
            _ => {}
        }
    }
    None
}

/// "Active width: 1280" and "Active height: 720" in v4l2-ctl's DV timings output.
fn parse_active_size(text: &str) -> Option<(u32, u32)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).and_then(|v| v.trim_start_matches(':').trim().parse().ok()))
    };
    Some((field("Active width")?, field("Active height")?))
}

/// Reads the 12-byte RFB greeting from 127.0.0.1:`port`.
fn rfb_greeting(port: u16) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut greeting = vec![0; 12];
    stream.read_exact(&mut greeting)?;
    Ok(greeting)
}

/// A loopback port free right now (QEMU binds it moments later; a lost race is retried).
fn free_loopback_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("finding a free port: {e}"))
}

/// A shell that kills QEMU (SIGKILL) once its stdin, a pipe only this process writes, reaches end
/// of file: that is, when this test process exits or dies without dropping the lab.
fn spawn_watchdog(qemu_pid: u32) -> Result<Child, String> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("trap '' INT TERM; read _ignored; kill -KILL {qemu_pid} 2>/dev/null"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawning the QEMU watchdog: {e}"))
}

/// Accepts QEMU's connection to the command socket; fails early if QEMU exits.
fn accept_until(listener: &UnixListener, qemu: &mut Child, timeout: Duration) -> Result<UnixStream, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.to_string()),
        }
        if let Ok(Some(status)) = qemu.try_wait() {
            return Err(format!("QEMU exited ({status})"));
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the command port line by line in a thread; the channel closes when the guest goes away.
fn spawn_line_reader(stream: UnixStream) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_string();
                    if sender.send(text).is_err() {
                        return;
                    }
                }
            }
        }
    });
    receiver
}

/// SIGKILL unless already exited; always reaps.
fn stop_process(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Single-quotes `text` for sh.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The running test's name (libtest names each test's thread after it).
fn current_test_name() -> String {
    thread::current().name().unwrap_or("lab").to_string()
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bytes = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let bits = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64_ALPHABET[(bits >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64, ignoring whitespace and padding.
fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for c in text.bytes() {
        let Some(value) = BASE64_ALPHABET.iter().position(|&a| a == c) else { continue };
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}
