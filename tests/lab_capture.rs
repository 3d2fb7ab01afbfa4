//! V4L2 capture on real kernel drivers (tests/lab/README.md): kvnc in the lab guest captures
//! vivid's HDMI input, and viewers on the host see vivid's own picture, follow its timing
//! changes, and read the no-signal screens.

use std::time::{Duration, Instant};

use kvnc::source::status::{NoPicture, no_picture_frame};
use kvnc_test_support::{lab, viewers};
use lab::{Lab, LabOptions, Root};
use viewers::{RgbImage, TigerViewer, capture, parse_ppm};

/// Generous: the guest is emulated (TCG) and CI may run two lab guests at once.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The lab's only capture node (modules.txt: vivid n_devs=1 node_types=0x1).
const VIDEO: &str = "/dev/video0";
/// vivid's HDMI input.
const HDMI_INPUT: u32 = 3;

/// Selects vivid's HDMI input, turns its on-screen text (a frame counter) off so the picture
/// stays still, and grabs one frame of it as RGB24 into `reference` (the driver's own picture,
/// before kvnc holds the device).
fn prepare_vivid(reference: &str) -> String {
    format!(
        "v4l2-ctl -d {VIDEO} -i {HDMI_INPUT} && v4l2-ctl -d {VIDEO} -c osd_text_mode=2 && \
         v4l2-ctl -d {VIDEO} --set-fmt-video=pixelformat=RGB3 --stream-mmap --stream-count=1 --stream-to={reference}"
    )
}

/// vivid's picture as RGB from the raw RGB24 grab.
fn reference_image(lab: &Lab, path: &str, width: usize, height: usize) -> RgbImage {
    let header = format!("P6\n{width} {height}\n255\n");
    let rgb = lab.read_bytes(path);
    assert_eq!(rgb.len(), width * height * 3, "reference grab size");
    parse_ppm(&[header.as_bytes(), &rgb].concat()).expect("reference as PPM")
}

/// Captures until `done` holds for the image, or panics after [`TIMEOUT`] (saving it).
fn capture_until(lab: &Lab, what: &str, done: impl Fn(&RgbImage) -> bool) -> RgbImage {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let image = capture(&lab.vnc_target(), None);
        if done(&image) {
            return image;
        }
        if Instant::now() > deadline {
            let saved = image.save_artifact(&format!("lab-capture-{}.png", what.replace(' ', "-")));
            panic!("no capture showed {what} ({}x{}; saved {})", image.width, image.height, saved.display());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn status_screen(width: u16, height: u16, why: &NoPicture) -> RgbImage {
    RgbImage::from_frame(&no_picture_frame(width, height, why))
}

fn capture_lab(format: &str) -> Option<Lab> {
    let source = format!("v4l2:{VIDEO}");
    let args = ["--source", &source, "--capture-format", format, "--capture-idle-secs", "2"];
    let mut options = LabOptions::kvnc_serve(&args);
    options.before_kvnc.push(prepare_vivid("/run/lab/reference.rgb"));
    let lab = Lab::start_or_skip(options)?;
    lab.wait_listening(TIMEOUT);
    Some(lab)
}

#[test]
fn vivid_hdmi_in_yuyv_is_seen_resized_lost_and_recovered() {
    let Some(lab) = capture_lab("YUYV") else { return };
    let reference = reference_image(&lab, "/run/lab/reference.rgb", 1280, 720);
    // YUYV halves the colour resolution: colour bar edges soften, the rest matches vivid's RGB.
    let image = capture_until(&lab, "vivid's picture", |image| image.psnr(&reference).is_some_and(|db| db >= 30.0));
    assert_eq!((image.width, image.height), (1280, 720));
    assert!(lab.kvnc_log().contains("YUYV 1280x720"), "{}", lab.kvnc_log());

    // The source switches to 1080p: TigerVNC, connected throughout, follows without
    // reconnecting. (noVNC and libvncclient following live resizes are proven without the
    // emulated guest, where a second viewer made this test flaky under CI's load:
    // tests/pipeline.rs and tests/libvncclient.rs.)
    let tiger = TigerViewer::start(&lab.vnc_target(), &[]);
    assert!(tiger.wait_until_fb(|fb| fb.width > 0, TIMEOUT).is_ok(), "TigerVNC shows nothing:\n{}", tiger.log());
    lab.vivid_ctl(VIDEO, "dv_timings_signal_mode", "4"); // Selected DV Timings (its default: 640x480)
    lab.vivid_ctl(VIDEO, "dv_timings", "16"); // 1920x1080p60
    assert!(tiger.wait_for_log("to 1920x1080", TIMEOUT), "TigerVNC did not follow:\n{}", tiger.log());
    drop(tiger);
    capture_until(&lab, "1080p", |image| (image.width, image.height) == (1920, 1080));

    // vivid's "no signal" also drops the +5V it reports, so that reads as no cable; then no
    // lock, then timings out of range: each screen says so, in words, at the last size.
    for (mode, why) in [("1", NoPicture::NoCable), ("2", NoPicture::NoSync), ("3", NoPicture::OutOfRange)] {
        lab.vivid_ctl(VIDEO, "dv_timings_signal_mode", mode);
        let expected = status_screen(1920, 1080, &why);
        capture_until(&lab, why.headline(), |image| image.max_diff(&expected) == Some(0));
    }
    let no_sync = status_screen(1920, 1080, &NoPicture::OutOfRange);

    // The signal comes back: a picture again, without restarting kvnc.
    lab.vivid_ctl(VIDEO, "dv_timings_signal_mode", "4");
    capture_until(&lab, "the picture again", |image| {
        (image.width, image.height) == (1920, 1080) && image.max_diff(&no_sync) != Some(0)
    });

    // The device goes away (driver unbound) and comes back: picked up without a restart.
    let unbind = "echo vivid.0 > /sys/bus/platform/drivers/vivid/unbind";
    lab.run_ok(unbind);
    let gone = status_screen(1920, 1080, &NoPicture::NoDevice(VIDEO.into()));
    capture_until(&lab, "no device", |image| image.max_diff(&gone) == Some(0));
    lab.run_ok(&format!(
        "echo vivid.0 > /sys/bus/platform/drivers/vivid/bind && v4l2-ctl -d {VIDEO} -i {HDMI_INPUT} -c osd_text_mode=2"
    ));
    capture_until(&lab, "vivid after the rebind", |image| {
        (image.width, image.height) == (1280, 720) && image.psnr(&reference).is_some_and(|db| db >= 30.0)
    });
    assert!(lab.is_running(lab.kvnc_pid().expect("kvnc pid")), "{}", lab.kvnc_log());
}

#[test]
fn vivid_hdmi_in_nv12_matches_the_drivers_own_rgb() {
    let Some(lab) = capture_lab("NV12") else { return };
    let reference = reference_image(&lab, "/run/lab/reference.rgb", 1280, 720);
    // 4:2:0 halves colour resolution both ways.
    capture_until(&lab, "vivid's picture in NV12", |image| image.psnr(&reference).is_some_and(|db| db >= 28.0));
    assert!(lab.kvnc_log().contains("NV12 1280x720"), "{}", lab.kvnc_log());

    // Nobody watching for --capture-idle-secs: streaming stops; the next viewer starts it again.
    // Stopped now, not only once: under load the first capture above may itself have come
    // after an idle stop and restarted streaming.
    let stopped_now = "tac /run/lab/kvnc.log | grep -m1 -E 'capture stopped|capturing /dev/video0' \
                       | grep -q 'capture stopped until one connects'";
    assert!(lab.wait_until_in(Root::Host, stopped_now, TIMEOUT), "{}", lab.kvnc_log());
    let starts = |log: &str| log.matches("capturing /dev/video0").count();
    let before = starts(&lab.kvnc_log());
    capture_until(&lab, "vivid's picture after idling", |image| image.psnr(&reference).is_some_and(|db| db >= 28.0));
    let log = lab.kvnc_log();
    assert_eq!(starts(&log), before + 1, "{log}");
    // The figure README quotes: a viewer's arrival to the first frame shown (emulated guest,
    // so an upper bound).
    let first_frame = log.lines().rev().find(|line| line.contains("first frame")).unwrap_or_default();
    eprintln!("after idling: {}", first_frame.split("INFO ").nth(1).unwrap_or(first_frame));
}
