//! The virtual hardware lab (tests/lab/README.md): kvnc and the hardware paths it will drive, on
//! real kernel drivers in a QEMU guest. Each test boots its own guest (about 6 s under TCG).

use std::time::{Duration, Instant};

use kvnc::demo::BANNER;
use kvnc::hid::Role;
use kvnc_test_support::{lab, screen, viewers};
use lab::input::{EV_MSC, KEY_A, KEY_B, MSC_SCAN};
use lab::{GADGET, InputEvent, Lab, LabOptions, Root, key_presses_and_releases};
use viewers::{RgbImage, capture, vncdo_run};

/// Generous: the guest is emulated (TCG) and CI may run two lab guests at once.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Boot keyboard reports: [modifiers, reserved, key1..key6]; usage 0x04 is A, 0x05 is B.
const REPORT_A: [u8; 8] = [0, 0, 0x04, 0, 0, 0, 0, 0];
const REPORT_B: [u8; 8] = [0, 0, 0x05, 0, 0, 0, 0, 0];
const REPORT_NONE: [u8; 8] = [0; 8];

/// Captures through the lab's forwarded port until the console's first lines are `lines`.
fn capture_console(lab: &Lab, lines: &[&str]) -> RgbImage {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let image = capture(&lab.vnc_target(), None);
        let console = screen::read_console(&image.rgb, image.width, image.height);
        if console.iter().take(lines.len()).eq(lines.iter()) {
            return image;
        }
        if Instant::now() > deadline {
            let saved = image.save_artifact("lab-demo-console.png");
            panic!("console {console:?} does not start with {lines:?} (capture: {})", saved.display());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn kvnc_in_the_guest_serves_the_demo_target_through_the_forwarded_port() {
    let Some(lab) = Lab::start_or_skip(LabOptions::kvnc_serve(&["--source", "demo"])) else { return };
    lab.wait_listening(TIMEOUT);

    let image = capture_console(&lab, &[BANNER, ""]);
    assert_eq!((image.width, image.height), (1280, 720));

    let text = "Typed into the lab 42!";
    vncdo_run(&lab.vnc_target(), None, &["type", text, "key", "enter", "type", "ok"]);
    capture_console(&lab, &[BANNER, "", text, "ok"]);
    assert!(lab.kvnc_log().contains("listening on 0.0.0.0:5900"), "{}", lab.kvnc_log());
}

/// Output of a successful `kvnc ...` in the guest: stdout, and stderr (its log).
#[track_caller]
fn kvnc_ok(lab: &Lab, args: &str) -> (String, String) {
    let out = lab.kvnc_command(args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kvnc {args} failed:\n{stdout}{stderr}");
    (stdout.into_owned(), stderr.into_owned())
}

#[test]
fn kvnc_gadget_up_status_down_and_an_unplug_on_the_guests_usb_host() {
    let Some(lab) = Lab::start_or_skip(LabOptions::without_kvnc()) else { return };
    // What a new user runs first: vivid to capture from, dummy_hcd's UDC to plug into.
    let (probe, _) = kvnc_ok(&lab, "probe");
    for line in
        ["/dev/video0: vivid (vivid, platform:vivid-000)  <- --source auto", "dummy_udc.0: ", "configfs: mounted"]
    {
        assert!(probe.contains(line), "{line:?} missing from:\n{probe}");
    }
    assert!(probe.contains("kvnc would capture") && probe.contains("frames/s in a 2-second trial"), "{probe}");
    assert!(probe.contains("Ready: kvnc can run as a KVM here"), "{probe}");
    let (json, _) = kvnc_ok(&lab, "probe --json");
    assert!(json.contains("\"auto\": \"/dev/video0\"") && json.contains("\"name\": \"dummy_udc.0\""), "{json}");
    let (up, log) = kvnc_ok(&lab, "gadget up");
    for line in ["gadget: kvnc", "udc: dummy_udc.0", "keyboard: /dev/hidg0", "pointer: /dev/hidg1", "mouse: /dev/hidg2"]
    {
        assert!(up.contains(line), "{line:?} missing from:\n{up}");
    }
    assert!(log.contains("created gadget kvnc on dummy_udc.0"), "{log}");
    // Idempotent: a second `up` keeps the gadget (the target keeps its keyboard).
    let (again, log) = kvnc_ok(&lab, "gadget up");
    assert!(log.contains("already up"), "{log}");
    assert!(again.contains("keyboard: /dev/hidg0"), "{again}");

    // The guest's USB host sees what a target machine would: a boot keyboard on dummy_hcd.
    let keyboard = lab.wait_gadget_input(Role::Keyboard, TIMEOUT);
    lab.wait_gadget_input(Role::Mouse, TIMEOUT);
    assert!(lab.wait_until("[ \"$(cat /sys/class/udc/dummy_udc.0/state)\" = configured ]", TIMEOUT));
    assert!(kvnc_ok(&lab, "gadget status").0.contains("udc: dummy_udc.0 (configured)"));
    let recorder = lab.evdev_recorder(keyboard);
    lab.write_reports("/dev/hidg0", &[&REPORT_A, &REPORT_NONE]);
    let events = recorder.wait_for(|events| events.contains(&InputEvent::key(KEY_A, 0)), TIMEOUT);
    assert_eq!(key_presses_and_releases(&events), [InputEvent::key(KEY_A, 1), InputEvent::key(KEY_A, 0)]);
    // usbhid reports the HID usage (page 7, usage 4) with each key.
    assert!(events.contains(&InputEvent { event_type: EV_MSC, code: MSC_SCAN, value: 0x70004 }), "{events:?}");
    drop(recorder);

    // Unplug: the host loses the keyboard, the device side its /dev/hidg0.
    lab.udc_unbind(GADGET);
    lab.wait_gadget_input_gone(Role::Keyboard, TIMEOUT);
    assert!(!lab.run("[ -e /dev/hidg0 ]").status.success(), "/dev/hidg0 outlived the unbind");
    assert!(kvnc_ok(&lab, "gadget status").0.contains("udc: none (not bound)"));

    // `up` plugs the existing gadget back in, and reports flow again.
    let (_, log) = kvnc_ok(&lab, "gadget up");
    assert!(log.contains("bound the existing gadget kvnc to dummy_udc.0"), "{log}");
    let recorder = lab.evdev_recorder(lab.wait_gadget_input(Role::Keyboard, TIMEOUT));
    lab.write_reports("/dev/hidg0", &[&REPORT_B, &REPORT_NONE]);
    let events = recorder.wait_for(|events| events.contains(&InputEvent::key(KEY_B, 0)), TIMEOUT);
    assert_eq!(key_presses_and_releases(&events), [InputEvent::key(KEY_B, 1), InputEvent::key(KEY_B, 0)]);
    drop(recorder);

    // `down` unplugs and removes it; `status` then says there is none.
    assert_eq!(kvnc_ok(&lab, "gadget down").0, "removed gadget kvnc\n");
    lab.wait_gadget_input_gone(Role::Keyboard, TIMEOUT);
    assert!(!lab.run("[ -e /sys/kernel/config/usb_gadget/kvnc ]").status.success());
    assert!(!lab.kvnc_command("gadget status").status.success());
}

#[test]
fn vivid_hdmi_input_answers_dv_timings_and_its_module_reloads() {
    let Some(lab) = Lab::start_or_skip(LabOptions::without_kvnc()) else { return };
    let devices = lab.v4l2_ctl_ok(&["--list-devices"]);
    assert!(devices.contains("vivid"), "{devices}");
    let video = lab.vivid_capture_device();
    assert_eq!(lab.vivid_select_input(&video, "HDMI 0"), 3);
    assert_eq!(lab.query_dv_timings(&video), Ok((1280, 720)));

    // vivid's controls stand in for the HDMI source: no signal, then a chosen mode.
    lab.vivid_ctl(&video, "dv_timings_signal_mode", "1"); // No Signal
    let no_signal = lab.query_dv_timings(&video);
    assert!(no_signal.as_ref().is_err_and(|e| e.contains("Link has been severed")), "{no_signal:?}");
    lab.vivid_ctl(&video, "dv_timings_signal_mode", "4"); // Selected DV Timings
    lab.vivid_ctl(&video, "dv_timings", "16"); // 1920x1080p60
    assert_eq!(lab.query_dv_timings(&video), Ok((1920, 1080)));

    // The driver goes away and comes back (with modules.txt's parameters), in its initial state.
    lab.rmmod("vivid");
    assert!(!lab.module_loaded("vivid"));
    assert!(!lab.run(&format!("[ -e {video} ]")).status.success(), "{video} outlived rmmod");
    lab.modprobe("vivid");
    assert!(lab.module_loaded("vivid"));
    assert!(lab.wait_until(&format!("[ -e {video} ]"), TIMEOUT));
    let video = lab.vivid_capture_device();
    // node_types=0x1 applied again: one capture node (vivid's default makes several).
    assert_eq!(lab.run_ok("ls /sys/class/video4linux | grep -c video"), "1\n");
    lab.vivid_select_input(&video, "HDMI 0");
    assert_eq!(lab.query_dv_timings(&video), Ok((1280, 720)));
}

#[test]
fn lab_commands_report_status_output_and_timeouts() {
    let Some(lab) = Lab::start_or_skip(LabOptions::without_kvnc()) else { return };
    let out = lab.run("echo to-stdout; echo to-stderr >&2; exit 3");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"to-stdout\n");
    assert_eq!(out.stderr, b"to-stderr\n");
    // Binary output comes back byte for byte, from both roots.
    let bytes: Vec<u8> = (0..=255).collect();
    let printf: String = bytes.iter().map(|b| format!("\\{b:03o}")).collect();
    assert_eq!(lab.run(&format!("printf '{printf}'")).stdout, bytes);
    assert_eq!(lab.run_in(Root::Initramfs, &format!("printf '{printf}'"), TIMEOUT).stdout, bytes);
    // A hung command is killed at its timeout, and the channel stays usable.
    let started = Instant::now();
    let hung = lab.run_in(Root::Host, "sleep 60", Duration::from_secs(2));
    assert_eq!(hung.status.code(), Some(137));
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert_eq!(lab.run_ok("echo still here"), "still here\n");
    // The guest runs the guest's kernel, with the host's userland.
    assert_eq!(lab.run_ok("uname -r").trim(), lab.image().kernel_release);
    assert!(lab.run_ok("cat /etc/os-release").contains("Debian"));
}

#[test]
fn module_list_names_the_drivers_the_lab_relies_on() {
    let modules = lab::builder::module_list();
    for name in ["virtio_console", "virtio_net", "9p", "configfs", "dummy_hcd", "usb_f_hid", "usbhid", "evdev", "vivid"]
    {
        assert!(modules.iter().any(|m| m.name == name && m.load_at_boot), "{name} is not loaded at boot: {modules:?}");
    }
}

#[test]
fn the_guest_runs_the_kvnc_binary_cargo_built() {
    // The support library finds the binary beside the test executable (it gets no
    // CARGO_BIN_EXE_kvnc of its own): it must be the one cargo built for this test.
    let canonical = |path: &std::path::Path| std::fs::canonicalize(path).expect("the kvnc binary");
    assert_eq!(canonical(&LabOptions::default().kvnc_binary), canonical(env!("CARGO_BIN_EXE_kvnc").as_ref()));
}
