//! Real firmware takes the HID reports kvnc writes: ESC typed in a VNC viewer opens SeaBIOS's
//! boot menu and OVMF's (UEFI) setup front page, and pointer input reaches SeaBIOS's boot mouse
//! driver.
//!
//! The chain, every link the real one except the USB gadget itself:
//! vncdotool → kvnc (`--hid-device keyboard=FIFO,mouse=FIFO`, written as it writes /dev/hidgN)
//! → FIFO → usbredir peer (tests/support/usbredir.rs, presenting kvnc's own HID descriptors)
//! → QEMU `usb-redir` on `qemu-xhci` → the firmware's USB HID driver.
//!
//! What the firmware did is read through QMP, without OCR: SeaBIOS runs in VGA text mode, so
//! its screen is the text buffer at 0xb8000 (read with `pmemsave`); OVMF draws on a
//! framebuffer, read with `screendump` and classified by its colours.
//!
//! QEMU runs under TCG: KVM fails OVMF on the nested hosts CI uses (clients.md §3). Under CI
//! (`CI` set) a missing QEMU, SeaBIOS or OVMF fails the tests; elsewhere they print SKIPPED.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use kvnc::hid::descriptor::{HidFunction, MOUSE, Role};
use kvnc_test_support::{qmp, usbredir, viewers, which};
use qmp::Qmp;
use usbredir::{Event, KEYBOARD_AND_MOUSE, UsbRedirPeer};
use viewers::{KvncServer, RgbImage, TempDir, parse_ppm, poll_until, vncdo_run};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
const QEMU: &str = "qemu-system-x86_64";
/// QEMU's q35 default BIOS and the VGA option ROM it loads, both from Debian's `seabios`.
const SEABIOS_BIOS: &str = "/usr/share/seabios/bios-256k.bin";
const SEABIOS_VGA: &str = "/usr/share/seabios/vgabios-stdvga.bin";
/// Debian's `ovmf`: the code (read-only) and the variable store template (copied per run).
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Start-up: QEMU's sockets, the usbredir handshake, kvnc's `listening on`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// From power-on to the firmware polling the device: 0.2 s (SeaBIOS) and 4 s (OVMF) under TCG
/// alone; generous because CI runs other tests on the same two cores.
const ENUMERATION_TIMEOUT: Duration = Duration::from_secs(40);
/// For a report to pass through kvnc and the peer, or the firmware to reach or change a screen.
const REACTION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the firmware waits for a key before booting (QEMU `-boot splash-time`, ms; at most
/// 65535): longer than any wait here after the prompt, so only a key can open the menus.
const BOOT_MENU_WAIT_MS: u32 = 65_000;
/// How often a screen is read again while waiting for it to change.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// HID usage of Escape (keyboard page 0x07).
const USAGE_ESCAPE: u8 = 0x29;
/// OVMF's setup browser paints its forms on EFI_LIGHTGRAY (GraphicsConsoleDxe's palette); it
/// covers about 3/4 of the front page, and none of the black boot splash.
const EFI_LIGHTGRAY: [u8; 3] = [0x98, 0x98, 0x98];
/// The orange of "Core" in the TianoCore logo on OVMF's boot splash.
const TIANOCORE_ORANGE: [u8; 3] = [0xFF, 0x55, 0x00];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Firmware {
    SeaBios,
    Ovmf,
}

impl Firmware {
    fn name(self) -> &'static str {
        match self {
            Firmware::SeaBios => "seabios",
            Firmware::Ovmf => "ovmf",
        }
    }

    /// Files QEMU needs for this firmware, with their Debian package.
    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            // SeaBIOS writes its text screen through the VGA option ROM.
            Firmware::SeaBios => &[(SEABIOS_BIOS, "seabios"), (SEABIOS_VGA, "seabios")],
            Firmware::Ovmf => &[(OVMF_CODE, "ovmf"), (OVMF_VARS, "ovmf")],
        }
    }
}

/// None if QEMU and `firmware` are installed. Otherwise what is missing; under CI (which must
/// run these tests) it panics instead.
fn missing_prerequisites(firmware: Firmware) -> Option<String> {
    let mut missing: Vec<String> = Vec::new();
    if which(QEMU).is_none() {
        missing.push(format!("{QEMU} (Debian package qemu-system-x86)"));
    }
    for (file, package) in firmware.files() {
        if !Path::new(file).is_file() {
            missing.push(format!("{file} (Debian package {package})"));
        }
    }
    if missing.is_empty() {
        return None;
    }
    let missing = missing.join(", ");
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("missing {missing}: run scripts/test, which installs them");
    }
    Some(missing)
}

/// A QEMU virtual machine with one usbredir device, and kvnc writing into the device's FIFOs.
/// On a panic, kvnc's log, the peer's trace and QEMU's log are printed (in that order).
struct Machine {
    firmware: Firmware,
    kvnc: KvncServer,
    peer: UsbRedirPeer,
    qmp: Qmp,
    qemu: Qemu,
    dir: TempDir,
}

impl Machine {
    /// Boots `firmware` with a device of `functions` plugged in and kvnc writing to it; None
    /// (after printing SKIPPED) where QEMU or the firmware is missing outside CI.
    fn start_or_skip(firmware: Firmware, functions: &[&'static HidFunction]) -> Option<Machine> {
        if let Some(missing) = missing_prerequisites(firmware) {
            eprintln!("SKIPPED: {} firmware test: missing {missing}", firmware.name());
            return None;
        }
        let dir = TempDir::new(&format!("kvnc-firmware-{}", firmware.name()));
        let (qmp_socket, usbredir_socket) = (dir.path().join("qmp.sock"), dir.path().join("usbredir.sock"));
        let mut args: Vec<String> = [
            "-accel",
            "tcg",
            "-machine",
            "q35",
            "-m",
            "256",
            "-nic",
            "none",
            "-display",
            "none",
            "-device",
            "qemu-xhci,id=xhci",
            "-device",
            "usb-redir,chardev=usbredir,id=kvnc-hid,bus=xhci.0",
            // Paused until the usbredir peer is connected: SeaBIOS looks at the USB ports once.
            "-S",
        ]
        .map(String::from)
        .to_vec();
        args.extend([
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qmp_socket.display()),
            "-chardev".into(),
            format!("socket,id=usbredir,path={},server=on,wait=off", usbredir_socket.display()),
            "-boot".into(),
            format!("menu=on,splash-time={BOOT_MENU_WAIT_MS}"),
        ]);
        if firmware == Firmware::Ovmf {
            let vars = dir.path().join("OVMF_VARS.fd");
            fs::copy(OVMF_VARS, &vars).unwrap_or_else(|e| panic!("copying {OVMF_VARS}: {e}"));
            args.extend([
                "-drive".into(),
                format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
                "-drive".into(),
                format!("if=pflash,format=raw,file={}", vars.display()),
            ]);
        }
        let qemu = Qemu::spawn(&args, dir.path().join("qemu.log"));
        let mut qmp = Qmp::connect(&qmp_socket, START_TIMEOUT);
        let peer = UsbRedirPeer::connect(&usbredir_socket, functions, dir.path(), START_TIMEOUT, || {
            qmp.run("cont", "{}");
        });
        let hid_devices: Vec<String> =
            functions.iter().map(|f| format!("{}={}", f.role.name(), peer.fifo(f.role).display())).collect();
        let kvnc = KvncServer::start(
            KVNC,
            &["serve", "--source", "demo", "--mouse-mode", "relative", "--hid-device", &hid_devices.join(",")],
        );
        Some(Machine { firmware, kvnc, peer, qmp, qemu, dir })
    }

    /// Waits until the firmware's driver for `role` polls its endpoint: from then on input counts.
    fn wait_polled(&mut self, role: Role) {
        if !self.peer.wait_polling(role, ENUMERATION_TIMEOUT) {
            let qemu = match self.qemu.child.try_wait() {
                Ok(Some(status)) => format!("QEMU exited ({status})"),
                _ => "QEMU is running".to_string(),
            };
            panic!(
                "{} never polled the USB {} within {ENUMERATION_TIMEOUT:?}; {qemu}",
                self.firmware.name(),
                role.name()
            );
        }
    }

    /// Runs vncdo with `args` against kvnc, then waits until the reports of `role` that reached
    /// QEMU since then satisfy `done`; panics (naming `what`) if they never do.
    fn vnc_input(&self, args: &[&str], role: Role, what: &str, done: impl Fn(&[Vec<u8>]) -> bool) {
        let before = self.peer.delivered_reports(role).len();
        vncdo_run(&self.kvnc.vnc_target(), None, args);
        let reached = self.peer.wait_delivered(role, before, REACTION_TIMEOUT, done);
        assert!(reached, "vncdo `{}` did not reach the USB {} as {what}", args.join(" "), role.name());
    }

    /// Types `key` (a vncdo key name) in a VNC viewer and waits until the USB keyboard has handed
    /// QEMU a report holding `usage` and then one with every key up.
    fn tap_key_via_vnc(&self, key: &str, usage: u8) {
        let what = format!("a press and a release of usage {usage:#04x}");
        self.vnc_input(&["key", key], Role::Keyboard, &what, |reports| {
            let pressed = reports.iter().position(|r| r[2..].contains(&usage));
            pressed.is_some_and(|p| reports[p + 1..].iter().any(|r| r.iter().all(|&b| b == 0)))
        });
    }

    /// The VGA text screen, one line per row: 80x25 character and attribute bytes at 0xb8000.
    /// (`pmemsave` reads that window through QEMU's VGA device, as the CPU would.)
    fn text_screen(&mut self) -> String {
        let path = self.dir.path().join("vga-text.bin");
        self.qmp.pmemsave(0xb8000, 80 * 25 * 2, &path);
        let cells = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let chars: Vec<char> =
            cells.chunks_exact(2).map(|c| if c[0].is_ascii_graphic() { c[0] as char } else { ' ' }).collect();
        chars.chunks(80).map(|row| row.iter().collect::<String>().trim_end().to_string() + "\n").collect()
    }

    /// Polls the text screen until it contains `text`; Err(the last screen) after `timeout`.
    fn wait_text(&mut self, text: &str, timeout: Duration) -> Result<String, String> {
        poll_until(timeout, POLL_INTERVAL, || self.text_screen(), |screen| screen.contains(text))
    }

    /// The display as QEMU shows it.
    fn screenshot(&mut self) -> RgbImage {
        let path = self.dir.path().join("screen.ppm");
        self.qmp.screendump(&path);
        let data = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        parse_ppm(&data).unwrap_or_else(|e| panic!("decoding the screendump: {e}"))
    }

    /// Polls the display until `done` holds; Err(the last picture) after `timeout`.
    fn wait_screen(&mut self, timeout: Duration, done: impl Fn(&RgbImage) -> bool) -> Result<RgbImage, RgbImage> {
        poll_until(timeout, POLL_INTERVAL, || self.screenshot(), done)
    }

    /// The name under which `name` is saved in `<target>/test-artifacts`: `firmware-<firmware>-<name>`.
    fn artifact(&self, name: &str) -> String {
        format!("firmware-{}-{name}", self.firmware.name())
    }

    /// Saves `text` as [`Machine::artifact`] `name` and returns its path.
    fn save_text(&self, name: &str, text: &str) -> PathBuf {
        let path = kvnc_test_support::artifact_path(&self.artifact(name));
        fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

/// The QEMU process: killed on drop, its log printed if the test is panicking.
struct Qemu {
    child: Child,
    log: PathBuf,
}

impl Qemu {
    /// Starts QEMU with `args`, its output into `log`. Under `setpriv --pdeathsig KILL` where
    /// available, so that QEMU dies with the test even if the test process is killed outright.
    fn spawn(args: &[String], log: PathBuf) -> Qemu {
        let mut cmd = match which("setpriv") {
            Some(setpriv) => {
                let mut cmd = Command::new(setpriv);
                cmd.args(["--pdeathsig", "KILL", QEMU]);
                cmd
            }
            None => Command::new(QEMU),
        };
        let out = fs::File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = out.try_clone().expect("cloning the QEMU log file");
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {QEMU}: {e}"));
        Qemu { child, log }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- QEMU log ----\n{log}---- end of QEMU log ----");
        }
    }
}

/// Share of the picture's pixels that are exactly `color`.
fn share_of(image: &RgbImage, color: [u8; 3]) -> f64 {
    image.count_color(color, 0) as f64 / (image.width * image.height).max(1) as f64
}

/// OVMF's setup front page (or any setup form): mostly EFI_LIGHTGRAY.
fn is_setup_page(image: &RgbImage) -> bool {
    share_of(image, EFI_LIGHTGRAY) > 0.5
}

/// OVMF's boot splash, shown while it waits for a key: the TianoCore logo.
fn shows_tianocore_logo(image: &RgbImage) -> bool {
    image.count_color(TIANOCORE_ORANGE, 24) >= 100
}

#[test]
fn esc_from_a_vnc_viewer_opens_the_seabios_boot_menu() {
    let Some(mut machine) = Machine::start_or_skip(Firmware::SeaBios, KEYBOARD_AND_MOUSE) else { return };
    machine.wait_polled(Role::Keyboard);
    // SeaBIOS empties the keyboard buffer before it asks, so a key counts only once the prompt is up.
    let prompt = machine.wait_text("Press ESC for boot menu", REACTION_TIMEOUT).unwrap_or_else(|screen| {
        let path = machine.save_text("no-prompt.txt", &screen);
        panic!("SeaBIOS showed no boot menu prompt (saved as {}):\n{screen}", path.display())
    });
    assert!(!prompt.contains("Select boot device"), "the boot menu is open before any key:\n{prompt}");

    machine.tap_key_via_vnc("esc", USAGE_ESCAPE);
    if let Err(screen) = machine.wait_text("Select boot device", REACTION_TIMEOUT) {
        machine.save_text("before-esc.txt", &prompt);
        let path = machine.save_text("after-esc.txt", &screen);
        panic!("ESC did not open the SeaBIOS boot menu (screens saved next to {}):\n{screen}", path.display());
    }
}

#[test]
fn esc_from_a_vnc_viewer_opens_the_ovmf_setup_page() {
    let Some(mut machine) = Machine::start_or_skip(Firmware::Ovmf, KEYBOARD_AND_MOUSE) else { return };
    machine.wait_polled(Role::Keyboard);
    // The control: OVMF at its splash, waiting for a key, is not in setup.
    let splash = machine.wait_screen(REACTION_TIMEOUT, shows_tianocore_logo).unwrap_or_else(|screen| {
        let path = screen.save_artifact(&machine.artifact("no-splash.png"));
        panic!("OVMF showed no TianoCore splash (saved as {})", path.display())
    });
    assert!(!is_setup_page(&splash), "OVMF is in setup before any key");

    machine.tap_key_via_vnc("esc", USAGE_ESCAPE);
    if let Err(screen) = machine.wait_screen(REACTION_TIMEOUT, is_setup_page) {
        splash.save_artifact(&machine.artifact("before-esc.png"));
        let path = screen.save_artifact(&machine.artifact("after-esc.png"));
        let grey = share_of(&screen, EFI_LIGHTGRAY);
        panic!(
            "ESC did not open the OVMF setup page: {grey:.2} of the screen is setup grey (saved as {})",
            path.display()
        );
    }
}

/// Neither firmware here binds the mouse interface of the composite device: SeaBIOS drives only
/// the first boot interface of a device (the keyboard), and OVMF has no USB mouse driver at all
/// (its OvmfPkgX64.fdf lists UsbKbDxe only). So kvnc's boot mouse is plugged in on its own here,
/// where SeaBIOS binds it.
#[test]
fn pointer_input_from_a_vnc_viewer_reaches_the_seabios_boot_mouse_driver() {
    let Some(mut machine) = Machine::start_or_skip(Firmware::SeaBios, &[&MOUSE]) else { return };
    machine.wait_polled(Role::Mouse);
    let boot_protocol =
        Event::SetProtocol { interface: machine.peer.interface(Role::Mouse), protocol: usbredir::usb::PROTOCOL_BOOT };
    assert!(
        machine.peer.events().contains(&boot_protocol),
        "SeaBIOS polls the mouse without switching it to the boot protocol:\n{}",
        machine.peer.log()
    );

    // Right and down, then a left click: boot reports [buttons, dx, dy, wheel].
    let args = ["move", "100", "100", "move", "200", "150", "click", "1"];
    machine.vnc_input(&args, Role::Mouse, "a move right and down and a left click", |reports| {
        let moved = reports.iter().any(|r| (r[1] as i8) > 0 && (r[2] as i8) > 0);
        let pressed = reports.iter().position(|r| r[0] & 1 != 0);
        moved && pressed.is_some_and(|p| reports[p + 1..].iter().any(|r| r[0] & 1 == 0))
    });
}
