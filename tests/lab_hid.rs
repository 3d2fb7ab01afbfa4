//! kvnc's USB HID gadget on real kernel drivers (tests/lab/README.md): `kvnc serve --hid gadget`
//! sets the gadget up in the lab guest, viewers on the host type and point, and the guest's own
//! USB host (dummy_hcd → usbhid → evdev) shows what a target machine would receive.

use std::time::Duration;

use kvnc::hid::Role;
use kvnc_test_support::{lab, novnc, raw_client, viewers};
use lab::input::{ABS_X, ABS_Y, BTN_LEFT, BTN_RIGHT, EV_ABS, EV_KEY, EV_REL, KEY_X, REL_HWHEEL, REL_WHEEL};
use lab::{GADGET, InputEvent, Lab, LabOptions, key_presses_and_releases};
use raw_client::{QEMU_LED_STATE, RawClient};
use viewers::vncdo_run;
use xkbcommon::xkb;

/// Generous: the guest is emulated (TCG) and CI may run two lab guests at once.
const TIMEOUT: Duration = Duration::from_secs(30);
const LED_CAPSL: u16 = 0x01;

fn gadget_lab() -> Option<Lab> {
    let options = LabOptions::kvnc_serve(&["--source", "demo", "--hid", "gadget", "--udc", "dummy_udc.0"]);
    let lab = Lab::start_or_skip(options)?;
    lab.wait_listening(TIMEOUT);
    Some(lab)
}

/// What a US-layout host makes of key events: the text typed, as xkbcommon (the library the
/// guest's own desktop would use) interprets the evdev key codes with their Shift state.
fn typed_text(events: &[InputEvent]) -> String {
    typed_text_on(events, "us")
}

/// Like [`typed_text`] for a host using keyboard `layout`.
fn typed_text_on(events: &[InputEvent], layout: &str) -> String {
    let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    let keymap = xkb::Keymap::new_from_names(&context, "", "pc105", layout, "", None, xkb::COMPILE_NO_FLAGS)
        .expect("the keymap (xkb-data)");
    let mut state = xkb::State::new(&keymap);
    let mut text = String::new();
    for event in key_presses_and_releases(events) {
        let key = xkb::Keycode::new(u32::from(event.code) + 8);
        if event.value == 1 {
            text.push_str(&state.key_get_utf8(key));
            state.update_key(key, xkb::KeyDirection::Down);
        } else {
            state.update_key(key, xkb::KeyDirection::Up);
        }
    }
    text
}

/// The keys held down at the end of `events`.
fn keys_down(events: &[InputEvent]) -> Vec<u16> {
    let mut down = Vec::new();
    for event in key_presses_and_releases(events) {
        down.retain(|&code| code != event.code);
        if event.value == 1 {
            down.push(event.code);
        }
    }
    down
}

#[test]
fn keyboard_through_the_gadget_types_every_ascii_character_and_leaves_no_key_down() {
    let Some(lab) = gadget_lab() else { return };
    let keyboard = lab.wait_gadget_input(Role::Keyboard, TIMEOUT);
    let log = lab.kvnc_log();
    assert!(log.contains("created gadget kvnc on dummy_udc.0"), "{log}");
    assert_eq!(lab.read_file("/sys/kernel/config/usb_gadget/kvnc/UDC").trim(), "dummy_udc.0");

    // vncdotool sends keysyms only: kvnc must find the US key and fake Shift where needed.
    let printable: String = (0x20u8..=0x7E).map(char::from).collect();
    let recorder = lab.evdev_recorder(keyboard.clone());
    vncdo_run(&lab.vnc_target(), None, &["type", &printable]);
    let events = recorder.wait_for(|events| typed_text(events).len() >= printable.len(), TIMEOUT);
    assert_eq!(typed_text(&events), printable);
    assert!(keys_down(&events).is_empty(), "keys left down: {events:?}");
    drop(recorder);

    // The guest turns Caps Lock on: its LED reaches a viewer that asked for LED state.
    let mut viewer = RawClient::connect(&format!("127.0.0.1:{}", lab.host_port()));
    viewer.set_encodings(&[0, QEMU_LED_STATE]);
    let caps_on = format!(
        "python3 -c 'import os, struct; fd = os.open(\"{keyboard}\", os.O_WRONLY); \
         os.write(fd, struct.pack(\"llHHi\", 0, 0, 0x11, {LED_CAPSL}, 1) + struct.pack(\"llHHi\", 0, 0, 0, 0, 0))'"
    );
    lab.run_ok(&caps_on);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let leds = viewer.wait_for_pseudo_rect(QEMU_LED_STATE, 1);
        if leds[0] & 0b100 != 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Caps Lock never reached the viewer");
    }
    assert!(lab.kvnc_log().contains("the target set the keyboard LEDs: Caps Lock on"), "{}", lab.kvnc_log());

    // A viewer that goes away with a key down leaves nothing stuck on the target.
    let recorder = lab.evdev_recorder(keyboard.clone());
    viewer.key(u32::from(b'x'), true);
    // (Caps Lock is on now, so a lowercase x comes with Shift.)
    recorder.wait_for(|events| keys_down(events).contains(&KEY_X), TIMEOUT);
    drop(viewer);
    let events = recorder.wait_for(|events| keys_down(events).is_empty(), TIMEOUT);
    assert!(keys_down(&events).is_empty(), "keys left down: {events:?}");
    drop(recorder);

    // Unplugged while typing (the UDC unbinds, /dev/hidg0 goes away) and plugged back in: kvnc
    // keeps running and the keyboard works again without a restart.
    lab.udc_unbind(GADGET);
    vncdo_run(&lab.vnc_target(), None, &["type", "lost"]);
    lab.udc_bind(GADGET);
    let keyboard = lab.wait_gadget_input(Role::Keyboard, TIMEOUT);
    let recorder = lab.evdev_recorder(keyboard);
    vncdo_run(&lab.vnc_target(), None, &["type", "back"]);
    let events = recorder.wait_for(|events| typed_text(events).ends_with("back"), TIMEOUT);
    assert!(keys_down(&events).is_empty(), "keys left down: {events:?}");
    assert!(lab.is_running(lab.kvnc_pid().expect("kvnc pid")), "kvnc died: {}", lab.kvnc_log());
}

#[test]
fn scancodes_are_keys_as_pressed_and_keysyms_follow_the_targets_layout() {
    let options = LabOptions::kvnc_serve(&["--source", "demo", "--hid", "gadget", "--layout", "de"]);
    let Some(lab) = Lab::start_or_skip(options) else { return };
    lab.wait_listening(TIMEOUT);
    let keyboard = lab.wait_gadget_input(Role::Keyboard, TIMEOUT);

    // vncdotool sends characters: on a German target, z and y trade places and @ is AltGr+Q,
    // so kvnc presses those keys and the German host types exactly what was sent.
    let recorder = lab.evdev_recorder(keyboard.clone());
    vncdo_run(&lab.vnc_target(), None, &["type", "zy@"]);
    let events = recorder.wait_for(|events| typed_text_on(events, "de").len() >= 3, TIMEOUT);
    assert_eq!(typed_text_on(&events, "de"), "zy@");
    drop(recorder);

    // noVNC sends scancodes (QEMU extended key events) of a US keyboard: the same physical
    // keys reach the target whatever --layout says, as if that keyboard were plugged in.
    let recorder = lab.evdev_recorder(keyboard);
    novnc::run_novnc(lab.host_port(), &novnc::NoVncOptions::new().type_text("zy")).assert_ok();
    let events = recorder.wait_for(|events| typed_text(events).len() >= 2, TIMEOUT);
    assert_eq!(typed_text(&events), "zy", "US positions");
    assert_eq!(typed_text_on(&events, "de"), "yz", "what a German host makes of them");
    assert!(keys_down(&events).is_empty(), "keys left down: {events:?}");
    assert!(lab.kvnc_log().contains("target's de keyboard layout"), "{}", lab.kvnc_log());
}

#[test]
fn pointer_through_the_gadget_moves_clicks_and_scrolls() {
    let Some(lab) = gadget_lab() else { return };
    let pointer = lab.wait_gadget_input(Role::Pointer, TIMEOUT);
    let recorder = lab.evdev_recorder(pointer);
    let mut viewer = RawClient::connect(&format!("127.0.0.1:{}", lab.host_port()));
    let (width, height) = (viewer.width, viewer.height);
    viewer.pointer(0, width - 1, 0);
    viewer.pointer(1, width - 1, 0); // left down
    viewer.pointer(0, width - 1, 0);
    viewer.pointer(4, 0, height - 1); // right down at the bottom-left corner
    viewer.pointer(0, 0, height - 1);
    viewer.pointer(1 << 3, 0, height - 1); // a wheel click up
    viewer.pointer(0, 0, height - 1);
    viewer.pointer(1 << 6, 0, height - 1); // a wheel click right
    viewer.pointer(0, 0, height - 1);
    let has = |events: &[InputEvent], event_type, code, value| events.contains(&InputEvent { event_type, code, value });
    let events = recorder.wait_for(|events| has(events, EV_REL, REL_HWHEEL, 1), TIMEOUT);
    // (ABS_Y starts at 0, so evdev reports no change for the first position's y.)
    assert!(has(&events, EV_ABS, ABS_X, 32767), "{events:?}");
    assert!(has(&events, EV_KEY, BTN_LEFT, 1) && has(&events, EV_KEY, BTN_LEFT, 0), "{events:?}");
    assert!(has(&events, EV_KEY, BTN_RIGHT, 1) && has(&events, EV_KEY, BTN_RIGHT, 0), "{events:?}");
    assert!(has(&events, EV_ABS, ABS_X, 0) && has(&events, EV_ABS, ABS_Y, 32767), "{events:?}");
    assert!(has(&events, EV_REL, REL_WHEEL, 1), "{events:?}");
    // The click happened at the top-right corner: the move came before the button.
    let position = events.iter().position(|e| *e == InputEvent { event_type: EV_ABS, code: ABS_X, value: 32767 });
    let click = events.iter().position(|e| *e == InputEvent::key(BTN_LEFT, 1));
    assert!(position < click, "{events:?}");
}
