//! kvnc's HID report descriptors and reports, read by a parser we did not write: hid-tools
//! (Python, installed in tests/.venv by scripts/test). What it decodes from kvnc's own report
//! bytes is what a USB host makes of them.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use kvnc::hid::descriptor::{HidFunction, KEYBOARD, MOUSE, POINTER};
use kvnc::hid::keyboard::{ERROR_ROLL_OVER, Keyboard};
use kvnc::hid::keymap::usage;
use kvnc::hid::pointer::hid_button;
use kvnc::hid::{HidReport, MouseReport, POINTER_MAX, PointerReport};
use kvnc_test_support::viewers;

/// hid-tools' view of one function: its report sizes, and each report's fields by usage name.
struct Decoded {
    input_size: usize,
    output_size: usize,
    reports: Vec<HashMap<String, Vec<i64>>>,
}

fn decode(items: &[(&HidFunction, Vec<HidReport>)]) -> Vec<Decoded> {
    let python = viewers::vncdo().with_file_name("python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/hid_decode.py");
    let json_bytes = |bytes: &[u8]| format!("{bytes:?}");
    let input: Vec<String> = items
        .iter()
        .map(|(function, reports)| {
            let reports: Vec<String> = reports.iter().map(|report| json_bytes(&report.to_bytes())).collect();
            format!(r#"{{"descriptor": {}, "reports": [{}]}}"#, json_bytes(function.report_desc), reports.join(", "))
        })
        .collect();
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/test to install hid-tools)", python.display()));
    child.stdin.take().unwrap().write_all(format!("[{}]", input.join(", ")).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "hid-tools failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut decoded: Vec<Decoded> = items
        .iter()
        .map(|(_, reports)| Decoded { input_size: 0, output_size: 0, reports: vec![HashMap::new(); reports.len()] })
        .collect();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        let number = |i: usize| parts[i].parse::<usize>().unwrap();
        match parts[0] {
            "size" => {
                decoded[number(1)].input_size = number(2);
                decoded[number(1)].output_size = number(3);
            }
            "field" => {
                let values = parts[4].split(',').map(|v| v.parse().unwrap()).collect();
                decoded[number(1)].reports[number(2)].insert(parts[3].to_string(), values);
            }
            other => panic!("unexpected line {other:?} in {line:?}"),
        }
    }
    decoded
}

fn field<'a>(report: &'a HashMap<String, Vec<i64>>, name: &str) -> &'a [i64] {
    report.get(name).unwrap_or_else(|| panic!("no field {name:?} in {report:?}"))
}

#[test]
fn hid_tools_reads_kvncs_descriptors_and_reports_as_kvnc_means_them() {
    // Ctrl+Alt+Del as the keyboard state builds it, then seven keys down (ErrorRollOver).
    let mut keyboard = Keyboard::new();
    for key in [usage::LEFT_CTRL, 0xE2, 0x4C] {
        keyboard.press(key);
    }
    let ctrl_alt_del = HidReport::Keyboard(keyboard.report());
    for key in 0x04..0x0B {
        keyboard.press(key);
    }
    let rolled_over = HidReport::Keyboard(keyboard.report());
    let pointer = HidReport::Pointer(PointerReport {
        buttons: hid_button::RIGHT | hid_button::BACK,
        x: POINTER_MAX,
        y: 1234,
        wheel: -1,
        hwheel: 1,
    });
    let mouse = HidReport::Mouse(MouseReport { buttons: hid_button::LEFT, dx: -5, dy: 127, wheel: 1 });
    let decoded =
        decode(&[(&KEYBOARD, vec![ctrl_alt_del, rolled_over]), (&POINTER, vec![pointer]), (&MOUSE, vec![mouse])]);

    // Report sizes: what kvnc writes is what the descriptor announces; the keyboard takes a
    // one-byte LED output report.
    for (decoded, function) in decoded.iter().zip([&KEYBOARD, &POINTER, &MOUSE]) {
        assert_eq!(decoded.input_size, function.report_len, "{:?}", function.role);
    }
    assert_eq!((decoded[0].output_size, decoded[1].output_size, decoded[2].output_size), (1, 0, 0));

    let keys = &decoded[0].reports;
    assert_eq!(field(&keys[0], "LeftControl"), [1]);
    assert_eq!(field(&keys[0], "LeftAlt"), [1]);
    assert_eq!(field(&keys[0], "LeftShift"), [0]);
    assert_eq!(field(&keys[0], "Keyboard"), [0x4C, 0, 0, 0, 0, 0]);
    assert_eq!(field(&keys[1], "Keyboard"), [i64::from(ERROR_ROLL_OVER); 6]);

    let pointer = &decoded[1].reports[0];
    assert_eq!(field(pointer, "X"), [32767]);
    assert_eq!(field(pointer, "Y"), [1234]);
    assert_eq!(field(pointer, "Wheel"), [-1]);
    assert_eq!(field(pointer, "AC Pan"), [1]);
    let buttons: Vec<i64> = (1..=8).map(|n| field(pointer, &format!("B{n}"))[0]).collect();
    assert_eq!(buttons, [0, 1, 0, 1, 0, 0, 0, 0], "right (button 2) and back (button 4)");

    let mouse = &decoded[2].reports[0];
    assert_eq!((field(mouse, "X"), field(mouse, "Y"), field(mouse, "Wheel")), (&[-5][..], &[127][..], &[1][..]));
    assert_eq!(field(mouse, "B1"), [1]);
}
