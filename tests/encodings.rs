//! Every encoding against decoders written by other people: TigerVNC's vncviewer (forced to
//! Raw, ZRLE, Tight with and without JPEG, and 8-bit low colour), noVNC in Chromium (forced
//! encodings over WebSocket) and vncdotool, on the fixture screens replayed by kvnc.

use std::process::Command;
use std::time::Duration;

use kvnc_test_support::{novnc, viewers};
use novnc::{NoVncOptions, run_novnc};
use viewers::{KvncServer, RgbImage, TempDir, TigerViewer, load_png, run_with_timeout, vncdo};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");
/// Lowest acceptable PSNR for JPEG at the quality levels the viewers ask for by default.
const JPEG_MIN_PSNR: f64 = 30.0;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// kvnc replaying one fixture. Lossless refresh is off: these tests look at each encoding's own
/// output, JPEG artefacts included (`tigervnc_jpeg_turns_lossless_once_still` looks at the refresh).
fn replay(name: &str) -> (KvncServer, RgbImage) {
    let path = fixture(name);
    let server =
        KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{path}"), "--lossless-refresh-ms", "0"]);
    (server, load_png(&path))
}

/// How an image must compare with the source.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Exact,
    Psnr(f64),
    /// Each channel quantised to these maxima (8-bit low-colour formats), ±2 for rounding.
    Quantised([u16; 3]),
}

fn quantise(image: &RgbImage, maxes: [u16; 3]) -> RgbImage {
    let mut out = image.clone();
    for (i, v) in out.rgb.iter_mut().enumerate() {
        let max = u32::from(maxes[i % 3]);
        let level = (u32::from(*v) * max + 128) / 255;
        *v = ((level * 255 + max / 2) / max) as u8;
    }
    out
}

fn check(what: &str, shown: &RgbImage, source: &RgbImage, expect: Expect) -> Result<(), String> {
    if (shown.width, shown.height) != (source.width, source.height) {
        return Err(format!(
            "{what}: {}x{} shown, source {}x{}",
            shown.width, shown.height, source.width, source.height
        ));
    }
    match expect {
        Expect::Exact => match shown.diff_count(source, 0) {
            Some(0) => Ok(()),
            n => Err(format!("{what}: {n:?} pixels differ")),
        },
        Expect::Psnr(min) => {
            // A lossless picture here would mean the lossy path under test was never taken.
            let psnr = shown.psnr(source).unwrap_or(0.0);
            if psnr >= min && psnr.is_finite() {
                Ok(())
            } else {
                Err(format!("{what}: PSNR {psnr:.1} dB, wanted lossy and >= {min} dB"))
            }
        }
        Expect::Quantised(maxes) => match shown.diff_count(&quantise(source, maxes), 2) {
            Some(0) => Ok(()),
            n => Err(format!("{what}: {n:?} pixels differ from the quantised source")),
        },
    }
}

/// `encoding`: what kvnc must have chosen for the viewer (its log says "sending N").
fn tigervnc_shows(fixture_name: &str, args: &[&str], encoding: i32, expect: Expect) {
    let (server, source) = replay(fixture_name);
    let viewer = TigerViewer::start(&server.vnc_target(), args);
    let what = format!("TigerVNC {args:?} on {fixture_name}");
    let result = viewer.wait_until_fb(
        |fb| {
            check(&what, &fb.crop(0, 0, source.width.min(fb.width), source.height.min(fb.height)), &source, expect)
                .is_ok()
        },
        Duration::from_secs(20),
    );
    let shown = match result {
        Ok(fb) | Err(fb) => fb.crop(0, 0, source.width.min(fb.width), source.height.min(fb.height)),
    };
    if let Err(e) = check(&what, &shown, &source, expect) {
        let path = shown.save_artifact(&format!("tigervnc-{}.png", args.join("_").replace(['=', '-'], "")));
        panic!("{e} (window saved to {}); kvnc log:\n{}\nviewer log:\n{}", path.display(), server.log(), viewer.log());
    }
    assert!(server.log().contains(&format!("sending {encoding}")), "{what}: kvnc log:\n{}", server.log());
    let log = viewer.log();
    for bad in ["Protocol error", "rror: ", "nknown", "nexpected", "End of stream", "xception"] {
        assert!(!log.contains(bad), "{what}: viewer log mentions {bad:?}:\n{log}");
    }
}

#[test]
fn tigervnc_raw() {
    tigervnc_shows("desktop-1080p.png", &["-PreferredEncoding=Raw", "-AutoSelect=0"], 0, Expect::Exact);
}

#[test]
fn tigervnc_zrle() {
    tigervnc_shows("desktop-1080p.png", &["-PreferredEncoding=ZRLE", "-AutoSelect=0"], 16, Expect::Exact);
    tigervnc_shows("photo-1080p.png", &["-PreferredEncoding=ZRLE", "-AutoSelect=0"], 16, Expect::Exact);
}

#[test]
fn tigervnc_tight_lossless() {
    let args = ["-PreferredEncoding=Tight", "-AutoSelect=0", "-NoJPEG=1"];
    tigervnc_shows("desktop-1080p.png", &args, 7, Expect::Exact);
    tigervnc_shows("wide-2560x1080.png", &args, 7, Expect::Exact);
}

#[test]
fn tigervnc_tight_jpeg() {
    let args = ["-PreferredEncoding=Tight", "-AutoSelect=0", "-QualityLevel=8"];
    tigervnc_shows("photo-1080p.png", &args, 7, Expect::Psnr(JPEG_MIN_PSNR));
    tigervnc_shows("post-1080p.png", &args, 7, Expect::Exact);
}

#[test]
fn tigervnc_jpeg_turns_lossless_once_still() {
    let path = fixture("photo-1080p.png");
    let source = load_png(&path);
    let server = KvncServer::start(KVNC, &["serve", "--source", &format!("replay:{path}")]);
    let args = ["-PreferredEncoding=Tight", "-AutoSelect=0", "-QualityLevel=2"];
    let viewer = TigerViewer::start(&server.vnc_target(), &args);
    // The photo goes out as JPEG first; half a second of still screen later, losslessly.
    let exact = viewer.wait_until_fb(
        |fb| check("refreshed", &fb.crop(0, 0, source.width, source.height), &source, Expect::Exact).is_ok(),
        Duration::from_secs(20),
    );
    if let Err(last) = &exact {
        last.save_artifact("tigervnc-lossless-refresh.png");
    }
    assert!(exact.is_ok(), "never lossless; kvnc log:\n{}", server.log());
    assert!(server.log().contains("lossless refresh of"), "kvnc log:\n{}", server.log());
}

#[test]
fn tigervnc_8_bit_low_colour() {
    // LowColorLevel 2 = 8 bpp, R and G 3 bits, B 2 bits (max 7/7/3).
    let args = ["-AutoSelect=0", "-FullColor=0", "-LowColorLevel=2"];
    tigervnc_shows("desktop-1080p.png", &args, 7, Expect::Quantised([7, 7, 3]));
}

fn novnc_shows(fixture_name: &str, options: NoVncOptions, encoding: i32, expect: Expect) {
    let (server, source) = replay(fixture_name);
    let run = run_novnc(server.port(), &options);
    run.assert_ok();
    assert!(server.log().contains(&format!("sending {encoding}")), "noVNC on {fixture_name}: {}", server.log());
    if let Err(e) = check(&format!("noVNC on {fixture_name}"), &run.canvas, &source, expect) {
        panic!("{e}; artifacts in {}; kvnc log:\n{}", run.dir.display(), server.log());
    }
}

#[test]
fn novnc_raw_and_zrle() {
    novnc_shows("desktop-1080p.png", NoVncOptions::new().encodings(&[0]).name("raw"), 0, Expect::Exact);
    novnc_shows("desktop-1080p.png", NoVncOptions::new().encodings(&[16]).name("zrle"), 16, Expect::Exact);
}

#[test]
fn novnc_tight_lossless() {
    let options = NoVncOptions::new().encodings(&[7]).compression(2).name("tight");
    novnc_shows("desktop-1080p.png", options, 7, Expect::Exact);
    let options = NoVncOptions::new().encodings(&[7]).name("tight-wide");
    novnc_shows("wide-2560x1080.png", options, 7, Expect::Exact);
}

#[test]
fn novnc_tight_jpeg() {
    let options = NoVncOptions::new().encodings(&[7]).quality(6).name("tight-jpeg");
    novnc_shows("photo-1080p.png", options, 7, Expect::Psnr(JPEG_MIN_PSNR));
    // noVNC's own default encoding list (Tight first, quality 6).
    novnc_shows("post-1080p.png", NoVncOptions::new().name("default"), 7, Expect::Exact);
}

#[test]
fn vncdotool_raw_and_zrle() {
    let (server, source) = replay("desktop-1080p.png");
    let python = vncdo().with_file_name("python");
    let script = format!("{}/tests/support/vncdo_capture.py", env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new("kvnc-vncdo-encodings");
    for encoding in ["RAW", "ZRLE"] {
        let out = dir.path().join(format!("{encoding}.png"));
        let mut cmd = Command::new(&python);
        cmd.arg(&script).arg(server.vnc_target()).arg(encoding).arg(&out);
        let (output, timed_out) = run_with_timeout(&mut cmd, Duration::from_secs(60));
        assert!(
            output.status.success() && !timed_out,
            "vncdotool {encoding} capture failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        check(&format!("vncdotool {encoding}"), &load_png(&out), &source, Expect::Exact).unwrap();
    }
    assert!(server.log().contains("sending 16"), "kvnc chose ZRLE for vncdotool's ZRLE list: {}", server.log());
}
