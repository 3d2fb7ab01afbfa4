//! kvnc against TigerVNC's `Xvnc`, side by side, measured from outside by one RFB client
//! (`tests/support/bench/rfb_client.rs`) that decodes everything it receives with the rfb test
//! decoders and checks the result against the picture shown, so a wrong update fails the bench.
//!
//! Both servers show the same 1280x720 frames: kvnc with `--source replay:DIR`, Xvnc on its
//! root window, painted exactly with X11 PutImage requests (a Raw update is checked against
//! the PNG pixel for pixel). Per server and setting (Tight JPEG q8 c2, Tight c2 without JPEG,
//! ZRLE, Zlib, Hextile, Raw; each in 32-bit and bgr233; Xvnc has no Zlib encoder and answers a
//! client that lists only Zlib with Raw, so its Zlib rows are its Raw figures). Every list has
//! CopyRect in it, as every real viewer's does: Xvnc sends CopyRect for X's own copies
//! (`XCopyArea`), which frames painted with PutImage never are; kvnc finds moved areas in the
//! frames themselves (`rfb::moves`, during the damage step):
//!
//! - **first**: the first full update of a fresh server process (desktop screen), the median
//!   of 9 processes;
//! - **steady**: incremental updates while the screen alternates between two desktop frames
//!   (a window moved);
//! - **typed**: incremental updates while one character appears and disappears on the POST
//!   screen;
//! - **still**: 10 s of a still screen (the desktop, right after a full update of it) with an
//!   incremental request outstanding: what a lossless refresh sends.
//!
//! Figures: bytes, wall time (request → last byte, client decoding excluded) and the server's CPU
//! time (all threads, also those that exited: `tests/support/cpu.rs`); the wall time and CPU
//! per update of the 20 steady or typed updates are their mean without the two highest and
//! two lowest (bytes: the plain mean). Both servers change their
//! screen right before each request: Xvnc is painted (its CPU excludes the painting), kvnc's replay
//! is stepped with SIGUSR1 (`--fps 0`; frames decoded once, so a step costs what a capture device's
//! new frame costs: the damage compare, which kvnc needs and Xvnc gets from X). Every step is a new
//! frame generation, so kvnc's shared JPEG cache never answers. Results also go to
//! `benches/results/vs_tigervnc.csv`.
//!
//! `cargo bench --bench vs_tigervnc` (needs `apt-get install tigervnc-standalone-server`);
//! `cargo bench --bench vs_tigervnc -- "Raw, 32"` runs only the settings whose name contains
//! one of the given words (for profiling one setting; the CSV is then left alone);
//! `-- --profile` samples each measured request with `perf` (`apt-get install linux-perf`)
//! and adds which share of each server's CPU went to zlib and libjpeg-turbo, and the ratio
//! of the rest: the work each server does itself (`tests/support/bench/profile.rs`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cpu::cpu_time;
use image::RgbImage;
use kvnc_test_support::bench::{profile, rfb_client, servers};
use kvnc_test_support::cpu;
use profile::{Profiler, SharedLibraries};
use rfb::PixelFormat;
use rfb_client::{COPY_RECT, Client, HEXTILE, LAST_RECT, RAW, RGB888, RICH_CURSOR, TIGHT, Update, ZLIB, ZRLE};
use servers::{free_port, start_kvnc as start_kvnc_process, wait_for_port};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
/// Fresh processes whose first update is measured (the median is reported).
const FIRST_RUNS: usize = 9;
/// Updates measured per steady/typed run.
const UPDATES: usize = 20;
const STILL: Duration = Duration::from_secs(10);
/// How long each server is given to take a new picture in before the request: kvnc's replay
/// step needs about 1 ms; Xvnc holds painted damage back for its DeferUpdate time (1 ms) before
/// its connections see it, and a request that comes earlier is answered with whatever lossless
/// refresh is due instead (Tight JPEG's steady figures then mixed such tiny updates in).
const FRAME_ARRIVAL: Duration = Duration::from_millis(20);

struct Setting {
    name: &'static str,
    format: PixelFormat,
    encodings: Vec<i32>,
}

fn settings() -> Vec<Setting> {
    let mut all = Vec::new();
    for (fname, format) in [("32-bit", RGB888), ("bgr233", PixelFormat::BGR233)] {
        let list: [(&str, Vec<i32>); 6] = [
            ("Tight JPEG q8 c2", vec![TIGHT, COPY_RECT, -32 + 8, -256 + 2, LAST_RECT, RICH_CURSOR]),
            ("Tight c2 (no JPEG)", vec![TIGHT, COPY_RECT, -256 + 2, LAST_RECT, RICH_CURSOR]),
            ("ZRLE", vec![ZRLE, COPY_RECT, RICH_CURSOR]),
            ("Zlib", vec![ZLIB, COPY_RECT, RICH_CURSOR]),
            ("Hextile", vec![HEXTILE, COPY_RECT, RICH_CURSOR]),
            ("Raw", vec![RAW, COPY_RECT, RICH_CURSOR]),
        ];
        for (name, encodings) in list {
            let name: &'static str = Box::leak(format!("{name}, {fname}").into_boxed_str());
            all.push(Setting { name, format, encodings });
        }
    }
    all
}

fn fixture(path: &str) -> RgbImage {
    image::open(format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).expect("fixture").to_rgb8()
}

/// The POST screen with one more character: the first character cell of what changes between
/// the first two frames of `post-memtest` (the memory counter), copied from the second.
fn typed_character(before: &RgbImage, after: &RgbImage) -> RgbImage {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in before.enumerate_pixels() {
        if p != after.get_pixel(x, y) {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    assert!(x0 <= x1, "post-memtest frames 0 and 1 are identical");
    let cell = (y1 - y0 + 1).div_ceil(2);
    let mut typed = before.clone();
    for y in y0..=y1 {
        for x in x0..(x0 + cell).min(x1 + 1) {
            typed.put_pixel(x, y, *after.get_pixel(x, y));
        }
    }
    typed
}

/// Set by `--profile`: each measured request is sampled with perf, and the rows say which
/// share of each server's CPU went to zlib and libjpeg-turbo.
static PROFILE: std::sync::OnceLock<SharedLibraries> = std::sync::OnceLock::new();

/// A server process; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    display: Option<X11>,
    _dir: Option<TempDir>,
    /// With `--profile`: perf attached (at the first request after the last
    /// [`Self::shared_library_share`]), sampling only inside [`Self::request`].
    profiler: Option<Profiler>,
}

impl Server {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn new(child: Child, port: u16, display: Option<X11>, dir: Option<TempDir>) -> Server {
        Server { child, port, display, _dir: dir, profiler: None }
    }

    /// One measured update (a full one unless `incremental`).
    fn request(&mut self, client: &mut Client, incremental: bool) -> Update {
        let mut request = || client.request(incremental, None).expect("update").expect("an update");
        if PROFILE.get().is_none() {
            return request();
        }
        let pid = self.pid();
        self.profiler.get_or_insert_with(|| Profiler::attach(pid)).measure(request)
    }

    /// With `--profile`: the share of the CPU of the requests since the last call that went to
    /// zlib and libjpeg-turbo.
    fn shared_library_share(&mut self) -> Option<f64> {
        Some(self.profiler.take()?.finish(PROFILE.get()?))
    }

    /// Shows the next picture: Xvnc gets `picture` painted, kvnc steps its replay. Both have
    /// taken the new picture in before the request that follows, so the request measures the
    /// update alone; returns kvnc's CPU for taking the frame in (replay step and damage
    /// compare, which every captured frame costs; Xvnc's damage tracking is inside its
    /// painting, which is not measured).
    fn step(&mut self, picture: &RgbImage) -> Duration {
        match &mut self.display {
            Some(x11) => {
                x11.paint(picture);
                std::thread::sleep(FRAME_ARRIVAL);
                Duration::ZERO
            }
            None => {
                let before = cpu_time(self.pid());
                let stepped = Command::new("kill").args(["-USR1", &self.pid().to_string()]).status();
                assert!(stepped.is_ok_and(|s| s.success()), "cannot step kvnc's replay");
                std::thread::sleep(FRAME_ARRIVAL);
                cpu_time(self.pid()).saturating_sub(before)
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Xvnc removes its display lock and socket on SIGTERM (not on SIGKILL), so later runs
        // find free display numbers.
        if self.display.is_some() {
            let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        servers::stop(&mut self.child);
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(frames: &[&RgbImage]) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kvnc-vs-tigervnc-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (i, frame) in frames.iter().enumerate() {
            frame.save(dir.join(format!("{i:03}.png"))).expect("write frame");
        }
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// kvnc replaying `frames`, one further at each [`Server::step`].
fn start_kvnc(frames: &[&RgbImage]) -> Server {
    let dir = TempDir::new(frames);
    let port = free_port();
    let replay = format!("replay:{}", dir.0.display());
    let child = start_kvnc_process(&["--source", &replay, "--fps", "0"], port, &dir.0);
    // Let the first replayed frame arrive.
    std::thread::sleep(Duration::from_millis(300));
    Server::new(child, port, None, Some(dir))
}

/// Xvnc on a free display, its root window painted with `first`.
fn start_xvnc(xvnc: &Path, first: &RgbImage) -> Server {
    let display = (40..100)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number");
    let port = free_port();
    let mut child = Command::new(xvnc)
        .arg(format!(":{display}"))
        .args(["-geometry", &format!("{WIDTH}x{HEIGHT}"), "-depth", "24", "-SecurityTypes", "None"])
        .args(["-rfbport", &port.to_string(), "-localhost", "-AlwaysShared", "-nolisten", "tcp"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn Xvnc");
    cpu::account(child.id());
    wait_for_port(port, &mut child);
    let mut x11 = X11::connect(display);
    x11.paint(first);
    Server::new(child, port, Some(x11), None)
}

/// Just enough X11 to paint a picture on the root window: PutImage (ZPixmap, depth 24,
/// 32 bits per pixel, BGRX) in strips, then a round trip so the server has done it.
struct X11 {
    stream: UnixStream,
    root: u32,
    gc: u32,
}

impl X11 {
    fn connect(display: u32) -> X11 {
        let path = format!("/tmp/.X11-unix/X{display}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match UnixStream::connect(&path) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "X display {display}: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        stream.write_all(&[b'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0]).expect("X11 setup");
        let mut head = [0u8; 8];
        stream.read_exact(&mut head).expect("X11 setup reply");
        let len = usize::from(u16::from_le_bytes([head[6], head[7]])) * 4;
        let mut setup = vec![0u8; len];
        stream.read_exact(&mut setup).expect("X11 setup data");
        assert_eq!(head[0], 1, "X11 connection refused: {}", String::from_utf8_lossy(&setup));
        let le32 = |i: usize| u32::from_le_bytes([setup[i], setup[i + 1], setup[i + 2], setup[i + 3]]);
        let id_base = le32(4);
        let vendor_len = usize::from(u16::from_le_bytes([setup[16], setup[17]]));
        let formats = usize::from(setup[21]);
        let screen = 32 + vendor_len.div_ceil(4) * 4 + formats * 8;
        let root = le32(screen);
        assert_eq!(setup[screen + 38], 24, "root depth");
        let gc = id_base | 1;
        let mut create_gc = vec![55, 0, 4, 0];
        create_gc.extend(gc.to_le_bytes());
        create_gc.extend(root.to_le_bytes());
        create_gc.extend(0u32.to_le_bytes());
        stream.write_all(&create_gc).expect("CreateGC");
        let mut x11 = X11 { stream, root, gc };
        x11.sync();
        x11
    }

    /// GetInputFocus: its reply comes after everything sent before it was done.
    fn sync(&mut self) {
        self.stream.write_all(&[43, 0, 1, 0]).expect("GetInputFocus");
        let mut reply = [0u8; 32];
        self.stream.read_exact(&mut reply).expect("X11 reply");
        assert_eq!(reply[0], 1, "X11 error {reply:?}");
    }

    fn paint(&mut self, image: &RgbImage) {
        let width = image.width() as usize;
        let rows = 200_000 / (width * 4);
        for y0 in (0..image.height() as usize).step_by(rows) {
            let h = rows.min(image.height() as usize - y0);
            let data_len = width * h * 4;
            let words = (24 + data_len) / 4;
            let mut m = Vec::with_capacity(24 + data_len);
            m.extend([72, 2]);
            m.extend((words as u16).to_le_bytes());
            m.extend(self.root.to_le_bytes());
            m.extend(self.gc.to_le_bytes());
            m.extend((width as u16).to_le_bytes());
            m.extend((h as u16).to_le_bytes());
            m.extend(0u16.to_le_bytes());
            m.extend((y0 as u16).to_le_bytes());
            m.extend([0, 24, 0, 0]);
            for y in y0..y0 + h {
                for x in 0..width {
                    let p = image.get_pixel(x as u32, y as u32).0;
                    m.extend([p[2], p[1], p[0], 0]);
                }
            }
            self.stream.write_all(&m).expect("PutImage");
        }
        self.sync();
    }
}

/// Of 10 or more updates, the CPU and wall time per update leave this many highest and lowest
/// out: one scheduler hiccup of a shared VM (a typed character's 0.1 ms once read 0.8 ms
/// per update as a mean) would otherwise decide a row.
const TRIMMED: usize = 2;

#[derive(Default, Clone)]
struct Figures {
    updates: usize,
    bytes: usize,
    wall: Duration,
    cpu: Duration,
    /// Each update's (wall, CPU).
    samples: Vec<(Duration, Duration)>,
    /// kvnc's CPU for taking the frames in, before the requests.
    arrival: Duration,
    /// With `--profile`: the share of `cpu` spent in zlib and libjpeg-turbo.
    shared_libraries: Option<f64>,
}

impl Figures {
    fn add(&mut self, u: Update) {
        self.updates += 1;
        self.bytes += u.bytes;
        self.wall += u.wall;
        self.cpu += u.server_cpu;
        self.samples.push((u.wall, u.server_cpu));
    }

    /// Bytes (the mean), wall ms and CPU ms per update: the mean without the [`TRIMMED`]
    /// highest and lowest of 10 or more updates.
    fn per_update(&self) -> (f64, f64, f64) {
        let n = self.updates.max(1) as f64;
        let bytes = self.bytes as f64 / n;
        if self.samples.len() < 10 {
            return (bytes, self.wall.as_secs_f64() * 1000.0 / n, self.cpu.as_secs_f64() * 1000.0 / n);
        }
        let trimmed_ms = |mut times: Vec<Duration>| {
            times.sort();
            let kept = &times[TRIMMED..times.len() - TRIMMED];
            kept.iter().sum::<Duration>().as_secs_f64() * 1000.0 / kept.len() as f64
        };
        let walls = self.samples.iter().map(|&(wall, _)| wall).collect();
        let cpus = self.samples.iter().map(|&(_, cpu)| cpu).collect();
        (bytes, trimmed_ms(walls), trimmed_ms(cpus))
    }
}

/// Which of `frames` the client shows (within its format's precision, or 30 dB for JPEG).
fn shows(client: &Client, frames: &[&RgbImage], what: &str) -> f64 {
    let results: Vec<_> = frames.iter().map(|f| client.check(f)).collect();
    results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .reduce(f64::max)
        .unwrap_or_else(|| panic!("{what}: the decoded screen is none of the frames: {results:?}"))
}

fn connect(server: &Server, setting: &Setting) -> Client {
    Client::connect(&server.addr(), server.pid(), setting.format, &setting.encodings).expect("connect")
}

/// Incremental updates while the screen alternates between `a` and `b`; `paint` switches the
/// picture for Xvnc (kvnc's replay switches by itself).
fn alternate(client: &mut Client, server: &mut Server, a: &RgbImage, b: &RgbImage, what: &str) -> Figures {
    let mut figures = Figures::default();
    for i in 0..UPDATES {
        figures.arrival += server.step(if i % 2 == 0 { b } else { a });
        let update = server.request(client, true);
        shows(client, &[a, b], what);
        figures.add(update);
    }
    figures.shared_libraries = server.shared_library_share();
    figures
}

struct Row {
    server: &'static str,
    setting: &'static str,
    scenario: &'static str,
    figures: Figures,
    quality: f64,
}

fn main() {
    let Some(xvnc) = kvnc_test_support::which("Xvnc") else {
        println!("vs_tigervnc: TigerVNC's Xvnc is not installed; no figures.");
        println!(
            "Install it with `apt-get install tigervnc-standalone-server` and run `cargo bench --bench vs_tigervnc`."
        );
        return;
    };
    let desktop_a = fixture("sequences/desktop-moving-window/000.png");
    let desktop_b = fixture("sequences/desktop-moving-window/001.png");
    let post = fixture("sequences/post-memtest/000.png");
    let typed = typed_character(&post, &fixture("sequences/post-memtest/001.png"));
    assert_eq!(desktop_a.dimensions(), (WIDTH, HEIGHT));

    // Xvnc is painted exactly: a Raw update in 32-bit equals the PNG.
    {
        let server = start_xvnc(&xvnc, &desktop_a);
        let raw = Setting { name: "Raw", format: RGB888, encodings: vec![RAW, RICH_CURSOR] };
        let mut client = connect(&server, &raw);
        client.request(false, None).expect("update").expect("an update");
        let psnr = client.check(&desktop_a).expect("Xvnc shows the PNG");
        assert!(psnr.is_infinite(), "Xvnc's Raw picture differs from the PNG ({psnr:.1} dB)");
        println!("Xvnc's root window, read back as Raw 32-bit, equals the PNG pixel for pixel.");
    }

    // Words given after `--` choose settings by name (cargo passes `--bench` itself).
    let only: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    if std::env::args().any(|arg| arg == "--profile") {
        let _ = PROFILE.set(SharedLibraries::of_build(Path::new(env!("CARGO_BIN_EXE_kvnc"))));
    }
    let chosen = |setting: &Setting| only.is_empty() || only.iter().any(|word| setting.name.contains(word.as_str()));
    let mut rows = Vec::new();
    let mut still_runs: Vec<(&'static str, &'static str, Server, Client)> = Vec::new();
    // Setting by setting, both servers one after the other, so a shared machine's drift hits
    // both alike.
    for setting in settings().into_iter().filter(chosen) {
        for server_name in ["kvnc", "TigerVNC"] {
            eprintln!("{server_name}: {}", setting.name);
            let mut row = |scenario, figures, quality| {
                rows.push(Row { server: server_name, setting: setting.name, scenario, figures, quality });
            };
            // First update of a fresh process (the median of FIRST_RUNS processes: one sample
            // is mostly noise), then the moving window on the last one.
            let start = || {
                if server_name == "kvnc" {
                    start_kvnc(&[&desktop_a, &desktop_b])
                } else {
                    start_xvnc(&xvnc, &desktop_a)
                }
            };
            let mut firsts = Vec::new();
            let (mut server, mut client) = loop {
                let mut server = start();
                let mut client = connect(&server, &setting);
                let update = server.request(&mut client, false);
                firsts.push((update, server.shared_library_share()));
                if firsts.len() == FIRST_RUNS {
                    break (server, client);
                }
            };
            // The share of the libraries: the mean over the processes (each sampled briefly).
            let shares: Vec<f64> = firsts.iter().filter_map(|(_, share)| *share).collect();
            firsts.sort_by_key(|(update, _)| update.server_cpu);
            let mut first = Figures::default();
            first.add(firsts.swap_remove(FIRST_RUNS / 2).0);
            first.shared_libraries = (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64);
            let quality = shows(&client, &[&desktop_a, &desktop_b], "first update");
            row("first", first, quality);
            let steady = alternate(&mut client, &mut server, &desktop_a, &desktop_b, "steady");
            row("steady", steady, shows(&client, &[&desktop_a, &desktop_b], "steady"));
            // One typed character on the POST screen.
            let (mut server, mut client) = if server_name == "kvnc" {
                drop(client);
                drop(server);
                let server = start_kvnc(&[&post, &typed]);
                let mut client = connect(&server, &setting);
                client.request(false, None).expect("update").expect("an update");
                (server, client)
            } else {
                if let Some(x11) = &mut server.display {
                    x11.paint(&post);
                }
                client.request(true, None).expect("update").expect("an update");
                (server, client)
            };
            let typing = alternate(&mut client, &mut server, &post, &typed, "typed");
            row("typed", typing, shows(&client, &[&post, &typed], "typed"));
            // Still screen, later and all at once: the desktop, whose photo-like parts go as
            // JPEG with Tight JPEG, so the row shows what each server's lossless refresh sends.
            let (server, client) = if server_name == "kvnc" {
                drop(client);
                drop(server);
                let server = start_kvnc(&[&desktop_a]);
                let mut client = connect(&server, &setting);
                client.request(false, None).expect("update").expect("an update");
                (server, client)
            } else {
                if let Some(x11) = &mut server.display {
                    x11.paint(&desktop_a);
                }
                client.request(false, None).expect("update").expect("an update");
                (server, client)
            };
            still_runs.push((server_name, setting.name, server, client));
        }
    }

    eprintln!("still screen: {} s, all servers at once", STILL.as_secs());
    let handles: Vec<_> = still_runs
        .into_iter()
        .map(|(server_name, setting, server, mut client)| {
            std::thread::spawn(move || {
                let cpu0 = cpu_time(server.pid());
                let start = Instant::now();
                let mut figures = Figures::default();
                while start.elapsed() < STILL {
                    let wait = STILL.saturating_sub(start.elapsed()).max(Duration::from_millis(1));
                    match client.request(true, Some(wait)).expect("still update") {
                        Some(u) => figures.add(u),
                        None => break,
                    }
                }
                // The whole 10 s, idle time included, replace the requests' own figures.
                figures.cpu = cpu_time(server.pid()).saturating_sub(cpu0);
                figures.wall = start.elapsed();
                figures.samples.clear();
                drop(server);
                Row { server: server_name, setting, scenario: "still 10 s", figures, quality: f64::NAN }
            })
        })
        .collect();
    for handle in handles {
        rows.push(handle.join().expect("still run"));
    }

    report(&rows, only.is_empty());
}

/// kvnc's CPU per update for taking a stepped frame in (replay step and damage compare).
fn arrival_ms(f: &Figures) -> f64 {
    f.arrival.as_secs_f64() * 1000.0 / f.updates.max(1) as f64
}

/// Prints the table; writes the CSV too when `complete` (every setting was run).
fn report(rows: &[Row], complete: bool) {
    println!();
    println!(
        "1280x720, {UPDATES} updates per steady/typed run; per update: bytes, wall ms (request → last byte), server CPU ms (all threads)"
    );
    println!("still 10 s: totals over 10 s (updates, bytes, CPU ms)");
    println!(
        "frame-in: kvnc's CPU per stepped frame before the request (replay step and damage compare, paid for every captured frame; not in its CPU column, as Xvnc's painting is not in its)"
    );
    println!(
        "zlib+JPEG (with --profile): the share of each server's CPU spent in zlib and libjpeg-turbo; own CPU: kvnc/Tiger CPU without it"
    );
    println!();
    println!(
        "| setting | scenario | kvnc bytes | TigerVNC bytes | kvnc/Tiger bytes | kvnc ms | TigerVNC ms | kvnc CPU ms | TigerVNC CPU ms | kvnc/Tiger CPU | kvnc frame-in CPU ms | kvnc zlib+JPEG | TigerVNC zlib+JPEG | kvnc/Tiger own CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut csv = String::from(
        "server,setting,scenario,updates,bytes_per_update,wall_ms_per_update,server_cpu_ms_per_update,total_bytes,total_cpu_ms,psnr_db,frame_in_cpu_ms_per_update,shared_library_share\n",
    );
    for row in rows {
        let f = &row.figures;
        let (bytes, wall, cpu) = f.per_update();
        csv += &format!(
            "{},\"{}\",{},{},{:.0},{:.3},{:.3},{},{:.3},{},{:.3},{}\n",
            row.server,
            row.setting,
            row.scenario,
            f.updates,
            bytes,
            wall,
            cpu,
            f.bytes,
            f.cpu.as_secs_f64() * 1000.0,
            if row.quality.is_finite() { format!("{:.1}", row.quality) } else { String::new() },
            arrival_ms(f),
            f.shared_libraries.map_or(String::new(), |share| format!("{share:.3}")),
        );
        if row.server != "kvnc" {
            continue;
        }
        let Some(tiger) =
            rows.iter().find(|r| r.server == "TigerVNC" && r.setting == row.setting && r.scenario == row.scenario)
        else {
            continue;
        };
        let t = &tiger.figures;
        let still = row.scenario.starts_with("still");
        let (kb, kw, kc, tb, tw, tc) = if still {
            let total = |f: &Figures| (f.bytes as f64, f.updates as f64, f.cpu.as_secs_f64() * 1000.0);
            let (a, b, c) = total(f);
            let (d, e, g) = total(t);
            (a, b, c, d, e, g)
        } else {
            let (a, b, c) = f.per_update();
            let (d, e, g) = t.per_update();
            (a, b, c, d, e, g)
        };
        let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.2}", a / b) } else { "-".into() };
        let scenario = row.scenario;
        let (kw, tw) = if still {
            (format!("{kw:.0} upd"), format!("{tw:.0} upd"))
        } else {
            (format!("{kw:.1}"), format!("{tw:.1}"))
        };
        let percent = |share: Option<f64>| share.map_or("-".into(), |share| format!("{:.0}%", share * 100.0));
        let own = match (f.shared_libraries, t.shared_libraries) {
            (Some(k), Some(t)) => ratio(kc * (1.0 - k), tc * (1.0 - t)),
            _ => "-".into(),
        };
        println!(
            "| {} | {scenario} | {kb:.0} | {tb:.0} | {} | {kw} | {tw} | {kc:.1} | {tc:.1} | {} | {} | {} | {} | {own} |",
            row.setting,
            ratio(kb, tb),
            ratio(kc, tc),
            if f.arrival.is_zero() { "-".into() } else { format!("{:.2}", arrival_ms(f)) },
            percent(f.shared_libraries),
            percent(t.shared_libraries),
        );
    }
    if !complete {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    std::fs::create_dir_all(&dir).expect("results dir");
    let path = dir.join("vs_tigervnc.csv");
    std::fs::write(&path, csv).expect("write CSV");
    println!("CSV: {}", path.display());
}
