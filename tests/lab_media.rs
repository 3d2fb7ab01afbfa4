//! kvnc's virtual media on real kernel drivers (tests/lab/README.md): `kvnc gadget up` gives the
//! gadget its two drives, `kvnc media` puts images into them, and the lab guest's own USB host
//! (dummy_hcd → usb-storage → sr/sd) reads and writes them as a target machine would. One guest
//! boot for everything: the checks share the gadget and the images.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kvnc::hid::Role;
use kvnc::hid::gadget::MediaLun;
use kvnc_test_support::lab;
use lab::input::{KEY_A, KEY_B};
use lab::{InputEvent, Lab, LabOptions, Root, key_presses_and_releases, quote};

/// Generous: the guest is emulated (TCG) and CI may run two lab guests at once.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The media directory in the guest: its /run is a writable tmpfs (the host's root is read-only).
const MEDIA_DIR: &str = "/run/lab/media";
const MOUNT_POINT: &str = "/run/lab/mnt";
/// The read-write image: sparse, bigger than 4 GiB, so offsets past 32 bits are exercised.
const DISK_SIZE: u64 = 5 << 30;
/// Where the pattern goes in it: 4.5 GiB, in 1 MiB blocks.
const PATTERN_BLOCK: u64 = 4608;
const PATTERN_LEN: usize = 1 << 20;

/// The fixture files the ISO is made of (what the guest must read back byte for byte).
fn fixture_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("fixtures/")
        .map(|entry| entry.expect("fixtures/ entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "png"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "fixtures/*.png: {files:?}");
    files
}

/// A host directory with the ISO (made with xorriso from the fixtures) and a 1 MiB pattern; the
/// guest reads both through the host's root.
struct HostFiles {
    dir: PathBuf,
    iso: PathBuf,
    pattern: PathBuf,
}

impl HostFiles {
    fn make() -> Self {
        // One directory per test: the tests of this file run at once.
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kvnc-lab-media-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        let iso = dir.join("fixtures.iso");
        let out = Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-V", "KVNC_LAB", "-J", "-r", "-o"])
            .arg(&iso)
            .args(fixture_files())
            .output()
            .unwrap_or_else(|e| panic!("xorriso (Debian package xorriso; scripts/test installs it): {e}"));
        assert!(out.status.success(), "xorriso failed: {}", String::from_utf8_lossy(&out.stderr));
        // xorshift: bytes no filesystem or zero page would produce by accident.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let pattern: Vec<u8> = (0..PATTERN_LEN)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let pattern_path = dir.join("pattern.bin");
        fs::write(&pattern_path, pattern).expect("pattern");
        Self { dir, iso, pattern: pattern_path }
    }
}

impl Drop for HostFiles {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `kvnc media ARGS --media-dir MEDIA_DIR` in the guest; panics unless it succeeds. Returns
/// stdout and stderr (kvnc's log).
#[track_caller]
fn kvnc_media(lab: &Lab, args: &str) -> (String, String) {
    let out = lab.kvnc_command(&format!("media {args} --media-dir {MEDIA_DIR}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kvnc media {args} failed:\n{stdout}{stderr}");
    (stdout.into_owned(), stderr.into_owned())
}

/// The guest's block device of the gadget's drive `lun` (its SCSI LUN, under dummy_hcd).
#[track_caller]
fn wait_block_device(lab: &Lab, lun: MediaLun) -> String {
    let script = format!(
        "for b in /sys/block/*; do\n  \
         case \"$(readlink -f $b/device)\" in *dummy_hcd*:{}) echo /dev/${{b##*/}};; esac\n\
         done; true",
        lun.index()
    );
    if !lab.wait_until(&format!("[ -n \"$({script})\" ]"), TIMEOUT) {
        panic!(
            "no block device for the {lun:?} drive; the guest has:\n{}",
            lab.run_ok("ls -l /sys/block; dmesg | tail -20")
        );
    }
    lab.run_ok_in(Root::Initramfs, &script).trim().to_string()
}

/// What reading a drive's first sector says (host root's dd, so its messages are coreutils').
fn read_first_sector(lab: &Lab, device: &str) -> (bool, String) {
    let out = lab.run(&format!("dd if={device} of=/dev/null bs=2048 count=1 status=none"));
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn images_attach_as_cdrom_and_disk_eject_and_keep_their_data_while_the_keyboard_types() {
    let files = HostFiles::make();
    let Some(lab) = Lab::start_or_skip(LabOptions::without_kvnc()) else { return };
    let started = Instant::now();
    let iso = quote(&files.iso.to_string_lossy());
    lab.run_ok(&format!(
        "set -e\nmkdir -p {MEDIA_DIR} {MOUNT_POINT}\ncp {iso} {MEDIA_DIR}/fixtures.iso\n\
         truncate -s {DISK_SIZE} {MEDIA_DIR}/disk.img"
    ));

    // The gadget: keyboard, pointers and two empty drives.
    let out = lab.kvnc_command("gadget up");
    let up = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && up.contains("mass storage: "), "{up}{}", String::from_utf8_lossy(&out.stderr));
    let keyboard = lab.wait_gadget_input(Role::Keyboard, TIMEOUT);
    let cdrom = wait_block_device(&lab, MediaLun::Cdrom);
    let disk = wait_block_device(&lab, MediaLun::Disk);
    assert!(cdrom.starts_with("/dev/sr") && disk.starts_with("/dev/sd"), "{cdrom} {disk}");
    // The target lists them by the gadget's inquiry strings (vendor 8 characters, model 16).
    for (lun, device) in [(MediaLun::Cdrom, &cdrom), (MediaLun::Disk, &disk)] {
        let name = device.trim_start_matches("/dev/");
        let vendor = lab.read_file(&format!("/sys/block/{name}/device/vendor"));
        let model = lab.read_file(&format!("/sys/block/{name}/device/model"));
        let inquiry = lun.inquiry_string();
        assert_eq!((vendor.trim(), model.trim()), (inquiry[..8].trim(), inquiry[8..24].trim()), "{device}");
    }
    let (status, _) = kvnc_media(&lab, "status");
    assert!(status.starts_with("image: none") && status.contains("target: connected"), "{status}");
    let (list, _) = kvnc_media(&lab, "list");
    assert!(list.contains("disk.img      5.0 GiB\n") && list.contains("fixtures.iso"), "{list}");

    // An ISO as a CD-ROM: mounted in the guest, every file reads back as it was made.
    let (attached, _) = kvnc_media(&lab, "attach fixtures.iso");
    assert!(attached.starts_with("image: fixtures.iso\nmode: cdrom"), "{attached}");
    let mount = format!("mount -t iso9660 -o ro {cdrom} {MOUNT_POINT} 2>/dev/null");
    assert!(lab.wait_until_in(Root::Host, &mount, TIMEOUT), "{cdrom} never mounted: {}", lab.dmesg());
    for fixture in fixture_files() {
        let name = fixture.file_name().expect("name").to_string_lossy().into_owned();
        lab.run_ok(&format!("cmp {MOUNT_POINT}/{name} {}", quote(&fixture.to_string_lossy())));
    }
    // Ejected while mounted there: the target holds it locked, so it is forced out.
    let (ejected, log) = kvnc_media(&lab, "eject");
    assert!(ejected.starts_with("image: none"), "{ejected}");
    assert!(log.contains("locked") && log.contains("forcing"), "{log}");
    lab.run_ok(&format!("umount {MOUNT_POINT} || umount -l {MOUNT_POINT}"));
    let (readable, error) = read_first_sector(&lab, &cdrom);
    assert!(!readable && error.contains("No medium found"), "{error}");

    // A multi-GB disk image, read-write: the guest writes past 4 GiB, and after an eject and a
    // re-attach reads back what it wrote; the board's file holds it too.
    let pattern = quote(&files.pattern.to_string_lossy());
    let (attached, _) = kvnc_media(&lab, "attach disk.img --mode read-write");
    assert!(attached.starts_with("image: disk.img\nmode: read-write"), "{attached}");
    let size = format!("[ \"$(blockdev --getsize64 {disk} 2>/dev/null)\" = {DISK_SIZE} ]");
    assert!(lab.wait_until_in(Root::Host, &size, TIMEOUT), "{disk} never showed {DISK_SIZE} bytes");
    lab.run_ok(&format!(
        "dd if={pattern} of={disk} bs=1M seek={PATTERN_BLOCK} count=1 oflag=direct conv=fsync status=none"
    ));
    kvnc_media(&lab, "eject");
    let (readable, error) = read_first_sector(&lab, &disk);
    assert!(!readable && error.contains("No medium found"), "{error}");
    let offset = PATTERN_BLOCK << 20;
    lab.run_ok(&format!("cmp -n {PATTERN_LEN} -i {offset}:0 {MEDIA_DIR}/disk.img {pattern}"));
    kvnc_media(&lab, "attach disk.img --mode read-write");
    assert!(lab.wait_until_in(Root::Host, &size, TIMEOUT), "{disk} never came back");
    lab.run_ok(&format!("dd if={disk} bs=1M skip={PATTERN_BLOCK} count=1 iflag=direct status=none | cmp - {pattern}"));
    // The same image read-only: the guest's disk turns write-protected, without a re-plug.
    let (attached, _) = kvnc_media(&lab, "attach disk.img --mode read-only");
    assert!(attached.contains("mode: read-only"), "{attached}");
    assert!(lab.wait_until_in(Root::Host, &format!("[ \"$(blockdev --getro {disk})\" = 1 ]"), TIMEOUT));
    let (json, _) = kvnc_media(&lab, "status --json");
    assert!(json.contains("\"mode\": \"read-only\"") && json.contains("\"host_configured\": true"), "{json}");

    // Media changes while the keyboard types: every key pressed arrives, in order. The typer
    // pauses 10 ms a pair: typed flat out, it can outrun the guest's evdev reader on a loaded
    // host, and the kernel then drops events (SYN_DROPPED) between the device and the test.
    let recorder = lab.evdev_recorder(keyboard.clone());
    let typer = lab.spawn_in(
        Root::Initramfs,
        "typer",
        "n=0\nwhile [ ! -e /run/lab/stop-typing ]; do\n  \
         printf '\\000\\000\\004\\000\\000\\000\\000\\000' > /dev/hidg0\n  \
         printf '\\000\\000\\000\\000\\000\\000\\000\\000' > /dev/hidg0\n  \
         printf '\\000\\000\\005\\000\\000\\000\\000\\000' > /dev/hidg0\n  \
         printf '\\000\\000\\000\\000\\000\\000\\000\\000' > /dev/hidg0\n  \
         n=$((n+1))\n  sleep 0.01\ndone\necho $n > /run/lab/typed",
    );
    recorder.wait_for(|events| events.contains(&InputEvent::key(KEY_B, 0)), TIMEOUT);
    for args in ["attach fixtures.iso", "attach disk.img --mode read-write", "eject", "attach fixtures.iso", "eject"] {
        kvnc_media(&lab, args);
    }
    // Still typing after the last change: the typing spanned all of them.
    assert!(lab.is_running(typer), "the typer stopped early: {}", lab.log("typer"));
    lab.run_ok_in(Root::Initramfs, "touch /run/lab/stop-typing");
    assert!(lab.wait_until("[ -s /run/lab/typed ]", TIMEOUT), "the typer did not stop: {}", lab.log("typer"));
    let typed: usize = lab.read_file("/run/lab/typed").trim().parse().expect("typed count");
    let expected: Vec<InputEvent> = (0..typed)
        .flat_map(|_| {
            [InputEvent::key(KEY_A, 1), InputEvent::key(KEY_A, 0), InputEvent::key(KEY_B, 1), InputEvent::key(KEY_B, 0)]
        })
        .collect();
    let events = recorder.wait_for(|events| key_presses_and_releases(events).len() >= expected.len(), TIMEOUT);
    assert_eq!(key_presses_and_releases(&events), expected, "{typed} pairs typed");
    drop(recorder);
    eprintln!("lab media: {typed} key pairs typed across 5 media changes");

    // `gadget up` again keeps the gadget (drives and all): the keyboard is not re-plugged.
    let out = lab.kvnc_command("gadget up");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already up"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lab.wait_gadget_input(Role::Keyboard, TIMEOUT), keyboard);
    eprintln!("lab media: checks took {:.1?} after boot", started.elapsed());
}

/// An HTTP request from the host to kvnc's port in the guest; (status, body), None if refused.
fn http(lab: &Lab, request: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", lab.host_port())).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()))
}

fn post(path: &str, authorization: Option<&str>, body: &str) -> String {
    let auth = authorization.map(|value| format!("Authorization: Basic {value}\r\n")).unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn kvnc_ctl_and_the_http_api_attach_media_to_the_gadget_of_a_running_server() {
    use base64::Engine;
    let files = HostFiles::make();
    let password = files.dir.join("password");
    fs::write(&password, "lab-secret\n").expect("password file");
    let socket = "/run/lab/control.sock";
    let listen = format!("0.0.0.0:{}", lab::GUEST_KVNC_PORT);
    let mut options = LabOptions::kvnc(&[
        "serve",
        "--listen",
        &listen,
        "--hid",
        "gadget",
        "--media-dir",
        MEDIA_DIR,
        "--control-socket",
        socket,
        "--password-file",
        &password.to_string_lossy(),
        "--no-rsa-aes",
        "--no-tls",
    ]);
    options
        .before_kvnc
        .push(format!("mkdir -p {MEDIA_DIR} && cp {} {MEDIA_DIR}/", quote(&files.iso.to_string_lossy())));
    let Some(lab) = Lab::start_or_skip(options) else { return };
    lab.wait_listening(TIMEOUT);
    let ctl = |args: &str| lab.kvnc_command(&format!("ctl --socket {socket} {args}"));

    // kvnc ctl, through the local socket: attach, and the target's CD-ROM has the ISO.
    let out = ctl("media attach fixtures.iso");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let cdrom = wait_block_device(&lab, MediaLun::Cdrom);
    assert!(lab.wait_until(&format!("dd if={cdrom} of=/dev/null bs=2048 count=1 2>/dev/null"), TIMEOUT), "no medium");
    let status = String::from_utf8_lossy(&ctl("status").stdout).into_owned();
    assert!(status.contains("\"state\": \"configured\""), "the target's USB host configured the gadget: {status}");
    let listed = String::from_utf8_lossy(&ctl("media list").stdout).into_owned();
    assert!(listed.contains("\"image\": \"fixtures.iso\"") && listed.contains("\"host_configured\": true"), "{listed}");

    // The same through the HTTP API on kvnc's port: a login is needed, wrong ones are refused.
    assert_eq!(http(&lab, &post("/api/media/eject", None, "")).map(|(status, _)| status), Some(401));
    let wrong = base64::engine::general_purpose::STANDARD.encode(":guess");
    assert_eq!(http(&lab, &post("/api/media/eject", Some(&wrong), "")).map(|(status, _)| status), Some(401));
    assert!(lab.kvnc_log().contains("control request with a wrong login"), "{}", lab.kvnc_log());
    let right = base64::engine::general_purpose::STANDARD.encode(":lab-secret");
    let (status, body) = http(&lab, &post("/api/media/eject", Some(&right), "")).expect("an answer");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"image\":null"), "{body}");
    assert!(
        lab.wait_until(&format!("! dd if={cdrom} of=/dev/null bs=2048 count=1 2>/dev/null"), TIMEOUT),
        "the CD-ROM is empty after the eject"
    );
    let (status, body) = http(&lab, &post("/api/media/attach", Some(&right), r#"{"name":"../etc/passwd"}"#)).unwrap();
    assert!(status >= 400 && body.contains("passwd"), "escapes refused: {status} {body}");
}
