//! Real VNC clients for kvnc's integration tests: a kvnc process wrapper, vncdotool (`vncdo`)
//! and TigerVNC's `vncviewer` running under its own Xvfb display.
//!
//! Only std and the `png` crate are used. Every external tool that is missing makes
//! the test panic (fail, never skip) with a hint to run `scripts/test`, which installs them.
//!
//! Findings this module relies on (TigerVNC 1.12 under bare Xvfb, no window manager):
//! * the viewer window is NOT at +0+0: FLTK offsets it to about +1+20, so always use
//!   the window's geometry (read with `xwininfo`) to locate the remote framebuffer;
//! * `-Log *:stderr:100` turns on a throughput graph drawn over the bottom-right corner of the
//!   framebuffer, and the default MenuKey draws a "Press F8" banner for the first seconds; we
//!   therefore pass `-Log *:stderr:100,DesktopWindow:stderr:99 -MenuKey=` (F8 then reaches the
//!   server like any other key);
//! * keys only reach the viewer through XTEST while its window has the X input focus
//!   (`xdotool key --window W` on an unfocused window uses XSendEvent, which TigerVNC ignores),
//!   so [`TigerViewer::type_text`] focuses the window first; the pointer is never moved for that;
//! * the Xvfb pointer starts at the screen centre, inside the window, so the viewer would send
//!   that position at connect: we park it at the bottom-right corner first;
//! * TigerVNC ignores an absolute XTEST pointer move until some relative motion has happened: a
//!   pointer move (no test makes one now) must end with a one-pixel `mousemove_relative` step;
//! * `vncviewer` exits with status 0 even on authentication failure or end of stream: read its log;
//! * vncdotool 1.4.2 pastes the first rectangle of a connection at (0,0) whatever its position,
//!   and sizes its image to the rectangles received: [`capture`] checks that the first one is at (0,0).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::which;

/// How long [`KvncServer::start`] waits for the `listening on` log line.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one `vncdo` invocation may run before it is killed.
const VNCDO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`TigerViewer::start`] waits for the viewer window to appear.
const VIEWER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// Screen size of the Xvfb display that hosts a [`TigerViewer`].
const XVFB_SCREEN: (usize, usize) = (2600, 1200);

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// Calls `read` every `interval` until `done` holds for what it returns; Err(the last value)
/// once `timeout` has passed.
pub fn poll_until<T>(
    timeout: Duration,
    interval: Duration,
    mut read: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> Result<T, T> {
    let deadline = Instant::now() + timeout;
    loop {
        let value = read();
        if done(&value) {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(value);
        }
        thread::sleep(interval);
    }
}

/// Returns the path of tool `name` (from Debian package `package`) or panics telling to run scripts/test.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    which(name).unwrap_or_else(|| {
        panic!("`{name}` not installed (Debian package {package}): run scripts/test to install the test prerequisites")
    })
}

/// Name that is unique within this machine for this run: `<prefix>-<pid>-<counter>-<nanos>`.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// A temporary directory removed (with its contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh directory under the system temp dir, named after `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(prefix));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Runs `cmd` (stdin null, stdout/stderr captured); kills it after `timeout`. Returns (output, timed_out).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> (Output, bool) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let out_reader = spawn_reader(child.stdout.take().expect("piped stdout"));
    let err_reader = spawn_reader(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("waiting for killed child");
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    (Output { status, stdout, stderr }, timed_out)
}

/// Reads a pipe to its end in a thread.
fn spawn_reader<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs a helper command with a 20 s timeout and panics (showing its output) unless it succeeds.
fn run_ok(cmd: &mut Command) -> Output {
    let (out, timed_out) = run_with_timeout(cmd, Duration::from_secs(20));
    if timed_out || !out.status.success() {
        panic!(
            "{cmd:?} failed ({}{}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            if timed_out { ", timed out" } else { "" },
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Sends signal `sig` (e.g. "TERM") to process `pid` via the shell's `kill` builtin.
fn send_signal(pid: u32, sig: &str) {
    let _ = Command::new("sh").arg("-c").arg(format!("kill -{sig} {pid} 2>/dev/null")).stdin(Stdio::null()).status();
}

/// Waits up to `timeout` for `child` to exit; None if it is still running.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
}

/// SIGTERM, then SIGKILL after `grace`; always reaps the child.
fn stop_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    send_signal(child.id(), "TERM");
    if let Some(status) = wait_child(child, grace) {
        return Some(status);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Removes ANSI colour escape sequences (ESC [ ... letter) from `s`.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Converts "host:port" to the "host::port" form that vncdo and vncviewer want ("host::port" is kept).
fn vnc_target(server: &str) -> String {
    if server.contains("::") {
        return server.to_string();
    }
    match server.rsplit_once(':') {
        Some((host, port)) => format!("{host}::{port}"),
        None => server.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

/// An 8-bit RGB image, rows top to bottom, 3 bytes per pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

/// True if every channel of `a` and `b` differs by at most `tol`.
fn color_close(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| x.abs_diff(*y) <= tol)
}

impl RgbImage {
    /// A `width` x `height` image filled with `color`.
    /// kvnc's own picture of a frame (native BGRX), as a viewer would show it.
    pub fn from_frame(frame: &rfb::Frame) -> RgbImage {
        let (width, height) = (usize::from(frame.width()), usize::from(frame.height()));
        let mut image = RgbImage::filled(width, height, [0, 0, 0]);
        for y in 0..frame.height() {
            for x in 0..frame.width() {
                let [b, g, r, _] = frame.pixel(x, y).to_le_bytes();
                image.set_pixel(usize::from(x), usize::from(y), [r, g, b]);
            }
        }
        image
    }

    pub fn filled(width: usize, height: usize, color: [u8; 3]) -> RgbImage {
        RgbImage { width, height, rgb: color.repeat(width * height) }
    }

    /// The colour at (x, y); panics when out of bounds.
    pub(crate) fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        assert!(x < self.width && y < self.height, "pixel ({x},{y}) outside {self:?}");
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Sets the colour at (x, y); panics when out of bounds.
    pub fn set_pixel(&mut self, x: usize, y: usize, color: [u8; 3]) {
        assert!(x < self.width && y < self.height, "pixel ({x},{y}) outside {self:?}");
        let i = (y * self.width + x) * 3;
        self.rgb[i..i + 3].copy_from_slice(&color);
    }

    /// The sub-image at (x, y) of size w x h; panics when it does not fit.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> RgbImage {
        assert!(x + w <= self.width && y + h <= self.height, "crop {w}x{h}+{x}+{y} outside {self:?}");
        let mut rgb = Vec::with_capacity(w * h * 3);
        for row in y..y + h {
            let start = (row * self.width + x) * 3;
            rgb.extend_from_slice(&self.rgb[start..start + w * 3]);
        }
        RgbImage { width: w, height: h, rgb }
    }

    /// Number of pixels for which `pred(color)` holds.
    fn count_where(&self, pred: impl Fn([u8; 3]) -> bool) -> usize {
        self.rgb.chunks_exact(3).filter(|p| pred([p[0], p[1], p[2]])).count()
    }

    /// Number of pixels within `tol` (per channel) of `color`.
    pub fn count_color(&self, color: [u8; 3], tol: u8) -> usize {
        self.count_where(|c| color_close(c, color, tol))
    }

    /// Largest per-channel difference to `other`; None if the sizes differ.
    pub fn max_diff(&self, other: &RgbImage) -> Option<u8> {
        if self.width != other.width || self.height != other.height {
            return None;
        }
        Some(self.rgb.iter().zip(&other.rgb).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0))
    }

    /// Peak signal-to-noise ratio to `other` in dB over all channels (infinite when equal);
    /// None if the sizes differ.
    pub fn psnr(&self, other: &RgbImage) -> Option<f64> {
        if self.width != other.width || self.height != other.height {
            return None;
        }
        let squared: f64 = self.rgb.iter().zip(&other.rgb).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum();
        let mse = squared / self.rgb.len().max(1) as f64;
        Some(if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() })
    }

    /// Number of pixels whose colour differs from `other`'s by more than `tol`; None if sizes differ.
    pub fn diff_count(&self, other: &RgbImage, tol: u8) -> Option<usize> {
        if self.width != other.width || self.height != other.height {
            return None;
        }
        Some(
            self.rgb
                .chunks_exact(3)
                .zip(other.rgb.chunks_exact(3))
                .filter(|(a, b)| !color_close([a[0], a[1], a[2]], [b[0], b[1], b[2]], tol))
                .count(),
        )
    }

    /// Saves the image as `<target>/test-artifacts/<name>` and returns that path.
    pub fn save_artifact(&self, name: &str) -> PathBuf {
        let path = crate::artifact_path(name);
        save_png(self, &path);
        path
    }
}

/// Loads an 8-bit (or any normalisable) grey/RGB/RGBA/palette PNG into an [`RgbImage`]; panics on error.
pub fn load_png(path: impl AsRef<Path>) -> RgbImage {
    let path = path.as_ref();
    try_load_png(path).unwrap_or_else(|e| panic!("loading PNG {}: {e}", path.display()))
}

/// Like [`load_png`] but returns the error as text.
fn try_load_png(path: &Path) -> Result<RgbImage, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("PNG too large")?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    if info.bit_depth != png::BitDepth::Eight {
        return Err(format!("unsupported bit depth {:?}", info.bit_depth));
    }
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => return Err(format!("unsupported colour type {other:?}")),
    };
    let (width, height) = (info.width as usize, info.height as usize);
    let mut rgb = Vec::with_capacity(width * height * 3);
    for row in buf[..info.buffer_size()].chunks_exact(info.line_size).take(height) {
        for px in row[..width * channels].chunks_exact(channels) {
            match channels {
                1 | 2 => rgb.extend_from_slice(&[px[0], px[0], px[0]]),
                _ => rgb.extend_from_slice(&px[..3]),
            }
        }
    }
    Ok(RgbImage { width, height, rgb })
}

/// Decodes a binary PPM (P6, maxval 255 or 65535) into an [`RgbImage`].
pub fn parse_ppm(data: &[u8]) -> Result<RgbImage, String> {
    // Header: "P6" then width, height, maxval as whitespace-separated decimals ('#' comments allowed),
    // then exactly one whitespace byte before the pixels.
    let mut pos = 0;
    let mut fields = Vec::new();
    while fields.len() < 4 {
        while pos < data.len() && (data[pos].is_ascii_whitespace() || data[pos] == b'#') {
            if data[pos] == b'#' {
                while pos < data.len() && data[pos] != b'\n' {
                    pos += 1;
                }
            } else {
                pos += 1;
            }
        }
        let start = pos;
        while pos < data.len() && !data[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if start == pos {
            return Err("truncated PPM header".into());
        }
        fields.push(String::from_utf8_lossy(&data[start..pos]).into_owned());
    }
    pos += 1;
    if fields[0] != "P6" {
        return Err(format!("not a binary PPM (magic {:?})", fields[0]));
    }
    let num = |s: &str| s.parse::<usize>().map_err(|e| format!("bad PPM header field {s:?}: {e}"));
    let (width, height, maxval) = (num(&fields[1])?, num(&fields[2])?, num(&fields[3])?);
    let bytes_per_sample = if maxval < 256 { 1 } else { 2 };
    let need = width * height * 3 * bytes_per_sample;
    let body = data.get(pos..pos + need).ok_or("truncated PPM data")?;
    let rgb = if bytes_per_sample == 1 { body.to_vec() } else { body.chunks_exact(2).map(|s| s[0]).collect() };
    Ok(RgbImage { width, height, rgb })
}

/// Writes `img` as an 8-bit RGB PNG, creating parent directories; panics on error.
pub(crate) fn save_png(img: &RgbImage, path: impl AsRef<Path>) {
    let path = path.as_ref();
    try_save_png(img, path).unwrap_or_else(|e| panic!("saving PNG {}: {e}", path.display()));
}

/// Like [`save_png`] but returns the error as text.
fn try_save_png(img: &RgbImage, path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let file = File::create(path).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), img.width as u32, img.height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&img.rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// kvnc server process
// ---------------------------------------------------------------------------------------------

/// Text logged by a child process so far, plus how many of its output streams are still open.
struct LogBuf {
    state: Mutex<(String, usize)>,
    changed: Condvar,
}

impl LogBuf {
    /// Waits until `done(text)` holds; false on timeout or once all streams are closed without it.
    fn wait(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if done(&guard.0) {
                return true;
            }
            let now = Instant::now();
            if guard.1 == 0 || now >= deadline {
                return false;
            }
            guard = self.changed.wait_timeout(guard, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// A copy of everything logged so far.
    fn text(&self) -> String {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }
}

/// Spawns a thread that appends each line of `r` (ANSI stripped) to `log`.
fn spawn_line_reader<R: Read + Send + 'static>(r: R, log: Arc<LogBuf>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(r);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let mut text = strip_ansi(&String::from_utf8_lossy(&line));
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    log.state.lock().unwrap_or_else(|e| e.into_inner()).0.push_str(&text);
                    log.changed.notify_all();
                }
            }
        }
        log.state.lock().unwrap_or_else(|e| e.into_inner()).1 -= 1;
        log.changed.notify_all();
    })
}

/// Finds the first `listening on 127.0.0.1:PORT` (PORT != 0) in `log`.
fn parse_listen_port(log: &str) -> Option<u16> {
    log.lines().find_map(|line| {
        let rest = &line[line.find("listening on ")? + "listening on ".len()..];
        let token: String = rest
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
            .collect();
        let addr: SocketAddr = token.trim_end_matches([':', '.']).parse().ok()?;
        (addr.ip().to_string() == "127.0.0.1" && addr.port() != 0).then_some(addr.port())
    })
}

/// A running kvnc server on 127.0.0.1 (ephemeral port); killed and reaped on drop.
pub struct KvncServer {
    child: Child,
    port: u16,
    log: Arc<LogBuf>,
    readers: Vec<JoinHandle<()>>,
}

impl KvncServer {
    /// Starts `bin args.. --listen 127.0.0.1:0` and waits (20 s) for its `listening on` line; panics on failure.
    pub fn start(bin: impl AsRef<Path>, args: &[&str]) -> KvncServer {
        Self::try_start(bin, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`KvncServer::start`], returning an error (with the log) instead of panicking.
    fn try_start(bin: impl AsRef<Path>, args: &[&str]) -> Result<KvncServer, String> {
        let bin = bin.as_ref();
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info,kvnc=trace")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("spawning {cmd:?}: {e}"))?;
        // stdout is captured too, in case the tracing subscriber writes there.
        let log = Arc::new(LogBuf { state: Mutex::new((String::new(), 2)), changed: Condvar::new() });
        let readers = vec![
            spawn_line_reader(child.stderr.take().expect("piped stderr"), log.clone()),
            spawn_line_reader(child.stdout.take().expect("piped stdout"), log.clone()),
        ];
        let found = log.wait(SERVER_START_TIMEOUT, |text| parse_listen_port(text).is_some());
        let port = parse_listen_port(&log.text());
        let mut server = KvncServer { child, port: port.unwrap_or(0), log, readers };
        if found && port.is_some() {
            return Ok(server);
        }
        let status = server.wait_exit(Duration::from_millis(200));
        let why = match status {
            Some(status) => format!("exited with {status}"),
            None => format!("logged no `listening on 127.0.0.1:PORT` within {SERVER_START_TIMEOUT:?}"),
        };
        Err(format!("kvnc server {cmd:?} {why}; its log:\n{}", server.log()))
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// "127.0.0.1::PORT", the form vncdo and vncviewer take.
    pub fn vnc_target(&self) -> String {
        format!("127.0.0.1::{}", self.port)
    }

    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("kvnc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The CPU time the server's live threads have used so far (their schedstat).
    pub fn cpu_time(&self) -> Duration {
        crate::cpu::live_threads_cpu_time(self.pid()).expect("kvnc threads")
    }

    /// Everything the server logged so far (stderr and stdout, ANSI colours stripped).
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Waits until the log contains `substr`; false on timeout or if the server closed its output.
    pub fn wait_for_log(&self, substr: &str, timeout: Duration) -> bool {
        self.log.wait(timeout, |text| text.contains(substr))
    }

    /// Waits until the log contains `substr` at least `count` times.
    pub fn wait_for_log_count(&self, substr: &str, count: usize, timeout: Duration) -> bool {
        self.log.wait(timeout, |text| text.matches(substr).count() >= count)
    }

    /// Waits up to `timeout` for the server to exit by itself; None if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Sends SIGTERM and waits up to `timeout` for a graceful exit; None if still running.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        send_signal(self.child.id(), "TERM");
        self.wait_exit(timeout)
    }
}

impl Drop for KvncServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        if thread::panicking() {
            eprintln!("---- kvnc server log (port {}) ----\n{}---- end of kvnc log ----", self.port, self.log());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// vncdotool
// ---------------------------------------------------------------------------------------------

/// Path of `vncdo`: $KVNC_VNCDO, else tests/.venv/bin/vncdo; panics if it does not exist.
pub fn vncdo() -> PathBuf {
    let path = match std::env::var_os("KVNC_VNCDO") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::repo_root().join("tests/.venv/bin/vncdo"),
    };
    if !path.is_file() {
        panic!("vncdotool not installed: run scripts/test (looked for {})", path.display());
    }
    path
}

/// Runs `vncdo -s SERVER [-p PASSWORD] ARGS..` with a timeout, without a controlling terminal.
/// Never panics on failure: a timed-out run is killed and its stderr ends with a note.
pub fn vncdo_try(server: &str, password: Option<&str>, args: &[&str], timeout: Duration) -> Output {
    let vncdo = vncdo();
    // Without a controlling terminal, vncdo cannot block on a password prompt on /dev/tty
    // (when the server wants a password that was not given it fails at once instead).
    let mut cmd = match which("setsid") {
        Some(setsid) => {
            let mut c = Command::new(setsid);
            c.arg(&vncdo);
            c
        }
        None => Command::new(&vncdo),
    };
    cmd.arg("-s").arg(vnc_target(server));
    if let Some(pw) = password {
        cmd.arg("-p").arg(pw);
    }
    cmd.args(args).env("PYTHONWARNINGS", "ignore");
    let (mut out, timed_out) = run_with_timeout(&mut cmd, timeout);
    if timed_out {
        out.stderr
            .extend_from_slice(format!("\n[viewers.rs] vncdo timed out after {timeout:?} and was killed\n").as_bytes());
    }
    out
}

/// Runs vncdo (30 s timeout) and panics with its stdout/stderr unless it succeeds.
pub fn vncdo_run(server: &str, password: Option<&str>, args: &[&str]) -> Output {
    let out = vncdo_try(server, password, args, VNCDO_TIMEOUT);
    if !out.status.success() {
        panic!(
            "vncdo -s {} {} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            vnc_target(server),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Captures the server's whole framebuffer with `vncdo capture` and returns it.
/// Panics if the server's first rectangle is not at (0,0): vncdotool 1.4.2 would misplace it.
pub fn capture(server: &str, password: Option<&str>) -> RgbImage {
    let dir = TempDir::new("kvnc-capture");
    capture_to(server, password, dir.path().join("capture.png"))
}

/// Captures the framebuffer into the PNG file `path` (kept) and returns it.
fn capture_to(server: &str, password: Option<&str>, path: impl AsRef<Path>) -> RgbImage {
    let path = path.as_ref();
    if let Some(parent) = path.parent() {
        let _ = fs::create_dir_all(parent);
    }
    let path_str = path.to_str().expect("UTF-8 capture path");
    // -v makes vncdo log every rectangle, so that its first-rectangle bug can be detected.
    let out = vncdo_run(server, password, &["-v", "capture", path_str]);
    let log = String::from_utf8_lossy(&out.stderr);
    if let Some((x, y, w, h)) = first_pixel_rect(&log) {
        assert!(
            (x, y) == (0, 0),
            "vncdotool 1.4.2 pastes the first rectangle it receives at (0,0) whatever its position \
             (client.py updateRectangle: `if not self.screen: self.screen = update`), so this \
             capture is shifted: the server's first rectangle was {w}x{h} at ({x},{y}). \
             Rectangles received:\n{}",
            log.lines().filter(|l| l.contains(" w=")).collect::<Vec<_>>().join("\n")
        );
    }
    load_png(path)
}

/// The first non-empty, non-pseudo-encoding rectangle (x, y, w, h) in `vncdo -v` output.
fn first_pixel_rect(log: &str) -> Option<(u32, u32, u32, u32)> {
    log.lines().find_map(|line| {
        let rest = &line[line.find("x=")?..];
        if rest.contains("PSEUDO") {
            return None;
        }
        let mut nums = rest.split_whitespace().take(4).map(|kv| kv.split_once('=')?.1.parse::<u32>().ok());
        let (x, y, w, h) = (nums.next()??, nums.next()??, nums.next()??, nums.next()??);
        (w > 0 && h > 0).then_some((x, y, w, h))
    })
}

// ---------------------------------------------------------------------------------------------
// TigerVNC viewer under Xvfb
// ---------------------------------------------------------------------------------------------

/// Arguments always given to vncviewer, before the caller's extra arguments (which win).
const TIGER_BASE_ARGS: &[&str] = &[
    // Level 100 everywhere except DesktopWindow: at debug level it draws a throughput graph
    // over the framebuffer.
    "-Log",
    "*:stderr:100,DesktopWindow:stderr:99",
    // No menu key: no "Press F8" banner over the framebuffer, and F8 goes to the server.
    "-MenuKey=",
    "-SecurityTypes",
    "None",
    "-AlertOnFatalError=0",
    "-ReconnectOnError=0",
    "-RemoteResize=0",
    "-Shared=1",
    "-geometry",
    "+0+0",
];

/// A private Xvfb display.
struct Xvfb {
    child: Child,
    display: u32,
}

impl Xvfb {
    /// Starts `Xvfb :N -screen 0 WxHx24 -nolisten tcp -noreset` ([`XVFB_SCREEN`]) on a free display and waits until it accepts connections.
    fn start(log_path: &Path) -> Xvfb {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let xvfb = require_tool("Xvfb", "xvfb");
        let base = 100 + (std::process::id() % 200) * 4;
        let mut last_error = String::new();
        for _ in 0..40 {
            let display = 100 + (base - 100 + NEXT.fetch_add(1, Ordering::Relaxed)) % 900;
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
            let lock = PathBuf::from(format!("/tmp/.X{display}-lock"));
            if socket.exists() || lock.exists() {
                continue;
            }
            let log = File::create(log_path).expect("creating Xvfb log");
            let mut child = Command::new(&xvfb)
                .arg(format!(":{display}"))
                .args(["-screen", "0", &format!("{}x{}x24", XVFB_SCREEN.0, XVFB_SCREEN.1)])
                .args(["-nolisten", "tcp"])
                // Without -noreset the server resets when its last client disconnects (e.g. our
                // xdotool call), and a client connecting during the reset gets "Can't open display".
                .arg("-noreset")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawning Xvfb: {e}"));
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    // Most likely another test grabbed the same display first: try the next one.
                    last_error = format!("Xvfb :{display} exited with {status}: {}", read_lossy(log_path));
                    break;
                }
                // The socket file appears at bind(), before listen(): only a successful connect
                // means clients can use the display.
                if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                    return Xvfb { child, display };
                }
                if Instant::now() >= deadline {
                    stop_child(&mut child, Duration::from_secs(2));
                    last_error = format!("Xvfb :{display} created no socket in 15 s: {}", read_lossy(log_path));
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("could not start Xvfb on a free display; last error: {last_error}");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let pid = self.child.id();
        stop_child(&mut self.child, Duration::from_secs(3));
        // A killed Xvfb leaves its lock file and socket behind; remove them if they are ours.
        let lock = format!("/tmp/.X{}-lock", self.display);
        if fs::read_to_string(&lock).is_ok_and(|s| s.trim() == pid.to_string()) {
            let _ = fs::remove_file(&lock);
            let _ = fs::remove_file(format!("/tmp/.X11-unix/X{}", self.display));
        }
    }
}

/// Reads a file as text, empty if unreadable.
fn read_lossy(path: &Path) -> String {
    fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// TigerVNC's vncviewer connected to a server, shown on its own Xvfb display; both die on drop.
pub struct TigerViewer {
    viewer: Child,
    // Dropped after `viewer` is stopped (see Drop), then the temp dir.
    xvfb: Option<Xvfb>,
    // Only held: the viewer's and Xvfb's logs are in it until the viewer is dropped.
    _dir: TempDir,
    log_path: PathBuf,
    window: Mutex<Option<u64>>,
}

impl TigerViewer {
    /// Starts Xvfb and `vncviewer <base args> <extra_args> SERVER`; waits (20 s) for its window or panics.
    pub fn start(server: &str, extra_args: &[&str]) -> TigerViewer {
        Self::start_inner(server, None, extra_args)
    }

    /// Like [`TigerViewer::start`] with VNC authentication (password via $VNC_PASSWORD, `-SecurityTypes VncAuth`).
    pub fn start_with_password(server: &str, password: &str, extra_args: &[&str]) -> TigerViewer {
        Self::start_inner(server, Some(password), extra_args)
    }

    /// Like [`TigerViewer::start`] with extra environment (e.g. `VNC_USERNAME` and
    /// `VNC_PASSWORD` for a Plain login).
    pub fn start_with_env(server: &str, env: &[(&str, &str)], extra_args: &[&str]) -> TigerViewer {
        let viewer = Self::spawn_with_env(server, env, extra_args);
        viewer.wait_started();
        viewer
    }

    fn start_inner(server: &str, password: Option<&str>, extra_args: &[&str]) -> TigerViewer {
        let viewer = Self::spawn(server, password, extra_args);
        viewer.wait_started();
        viewer
    }

    fn wait_started(&self) {
        let viewer = self;
        if !viewer.wait_connected(VIEWER_START_TIMEOUT) {
            panic!(
                "TigerVNC viewer did not show its window within {VIEWER_START_TIMEOUT:?}; its log:\n{}",
                viewer.log()
            );
        }
    }

    /// Starts Xvfb and the viewer without waiting for a connection (for tests where it should fail).
    pub fn spawn(server: &str, password: Option<&str>, extra_args: &[&str]) -> TigerViewer {
        match password {
            Some(password) => {
                let args = [&["-SecurityTypes", "VncAuth"][..], extra_args].concat();
                Self::spawn_with_env(server, &[("VNC_PASSWORD", password)], &args)
            }
            None => Self::spawn_with_env(server, &[], extra_args),
        }
    }

    fn spawn_with_env(server: &str, env: &[(&str, &str)], extra_args: &[&str]) -> TigerViewer {
        let vncviewer = require_tool("vncviewer", "tigervnc-viewer");
        for (tool, package) in [("xdotool", "xdotool"), ("import", "imagemagick"), ("xwininfo", "x11-utils")] {
            require_tool(tool, package);
        }
        let dir = TempDir::new("kvnc-tigervnc");
        let xvfb = Xvfb::start(&dir.path().join("xvfb.log"));
        // Park the pointer in the bottom-right corner, outside the viewer window, so that the viewer
        // sends no pointer event of its own when its window appears.
        run_ok(Command::new("xdotool").env("DISPLAY", format!(":{}", xvfb.display)).args([
            "mousemove",
            &(XVFB_SCREEN.0 - 1).to_string(),
            &(XVFB_SCREEN.1 - 1).to_string(),
        ]));
        let log_path = dir.path().join("vncviewer.log");
        let log = File::create(&log_path).expect("creating viewer log");
        let mut cmd = Command::new(vncviewer);
        cmd.args(TIGER_BASE_ARGS).envs(env.iter().copied());
        cmd.args(extra_args)
            .arg(vnc_target(server))
            .env("DISPLAY", format!(":{}", xvfb.display))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning log"))
            .stderr(log);
        let viewer = cmd.spawn().unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        TigerViewer { viewer, xvfb: Some(xvfb), _dir: dir, log_path, window: Mutex::new(None) }
    }

    /// The X display the viewer runs on, e.g. ":123".
    fn display(&self) -> String {
        format!(":{}", self.xvfb.as_ref().expect("xvfb").display)
    }

    /// Everything vncviewer printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// Waits until the viewer's log contains `substr`.
    pub fn wait_for_log(&self, substr: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(substr) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the viewer's window is visible (it appears after ServerInit); false on timeout or exit.
    fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.find_window().is_some() {
                return true;
            }
            if Instant::now() >= deadline || self.has_exited() {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// True once vncviewer has exited (it exits 0 even on errors: read [`TigerViewer::log`]).
    fn has_exited(&self) -> bool {
        // Child::try_wait needs &mut; look at /proc instead (a zombie counts as exited).
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.viewer.id())).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
        !matches!(state, Some(s) if s != 'Z' && s != 'X')
    }

    /// Waits up to `timeout` for vncviewer to exit (e.g. after the server closed); None if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.viewer, timeout)
    }

    /// A Command for `program` with DISPLAY set to the viewer's display.
    fn x_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", self.display());
        cmd
    }

    /// Runs `xdotool ARGS..` on the viewer's display and panics unless it succeeds.
    fn xdotool(&self, args: &[&str]) -> Output {
        run_ok(self.x_command("xdotool").args(args))
    }

    /// Searches for the viewer's visible top-level window ("<name> - TigerVNC").
    fn find_window(&self) -> Option<u64> {
        let mut cached = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if cached.is_none() {
            let (out, _) = run_with_timeout(
                self.x_command("xdotool").args(["search", "--onlyvisible", "--name", "TigerVNC"]),
                Duration::from_secs(10),
            );
            *cached = String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.trim().parse().ok());
        }
        *cached
    }

    /// X id of the viewer's window; panics if there is none.
    fn window_id(&self) -> u64 {
        self.find_window()
            .unwrap_or_else(|| panic!("no TigerVNC window on {}; viewer log:\n{}", self.display(), self.log()))
    }

    /// The window's (x, y, width, height) on the Xvfb screen, from `xwininfo` (absolute position).
    fn window_geometry(&self) -> (usize, usize, usize, usize) {
        let out = run_ok(self.x_command("xwininfo").args(["-id", &self.window_id().to_string()]));
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> usize {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().parse::<i64>()))
                .and_then(Result::ok)
                .unwrap_or_else(|| panic!("no `{name}` in xwininfo output:\n{text}"))
                .max(0) as usize
        };
        (field("Absolute upper-left X:"), field("Absolute upper-left Y:"), field("Width:"), field("Height:"))
    }

    /// Screenshot of the whole Xvfb screen ([`XVFB_SCREEN`]) via ImageMagick's `import -window root` (as PPM).
    fn screenshot(&self) -> RgbImage {
        self.try_screenshot().unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_screenshot(&self) -> Result<RgbImage, String> {
        // PPM through a pipe: about 3x faster than PNG for import, and trivial to decode.
        let (out, timed_out) = run_with_timeout(
            Command::new("import").args(["-display", &self.display(), "-window", "root", "-depth", "8", "ppm:-"]),
            Duration::from_secs(20),
        );
        if timed_out || !out.status.success() {
            return Err(format!("import failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
        }
        parse_ppm(&out.stdout)
    }

    /// Polls the viewer window's contents, cut from screenshots (the remote framebuffer when it
    /// fits), until `pred` holds: Ok(matching image), or Err(the last one) after `timeout`.
    pub fn wait_until_fb(&self, pred: impl Fn(&RgbImage) -> bool, timeout: Duration) -> Result<RgbImage, RgbImage> {
        let (x, y, w, h) = self.window_geometry();
        self.poll(
            || {
                let shot = self.screenshot();
                shot.crop(x, y, w.min(shot.width - x), h.min(shot.height - y))
            },
            pred,
            timeout,
        )
    }

    fn poll(
        &self,
        grab: impl Fn() -> RgbImage,
        pred: impl Fn(&RgbImage) -> bool,
        timeout: Duration,
    ) -> Result<RgbImage, RgbImage> {
        poll_until(timeout, Duration::from_millis(50), grab, pred)
    }

    /// Gives the viewer window the X input focus (needed for keys to reach it); the pointer is not moved.
    fn focus(&self) {
        self.xdotool(&["windowfocus", "--sync", &self.window_id().to_string()]);
    }

    /// Focuses the viewer and types `text` character by character (xdotool `type`, 30 ms apart).
    pub fn type_text(&self, text: &str) {
        self.focus();
        self.xdotool(&["type", "--delay", "30", "--", text]);
    }
}

impl Drop for TigerViewer {
    fn drop(&mut self) {
        if thread::panicking() {
            if let Ok(shot) = self.try_screenshot() {
                let path = crate::artifacts_dir_path().join(unique_name("tigervnc-at-panic") + ".png");
                if try_save_png(&shot, &path).is_ok() {
                    eprintln!("TigerVNC screen at panic saved to {}", path.display());
                }
            }
            eprintln!("---- vncviewer log ({}) ----\n{}---- end of vncviewer log ----", self.display(), self.log());
        }
        stop_child(&mut self.viewer, Duration::from_secs(2));
        self.xvfb.take();
    }
}
