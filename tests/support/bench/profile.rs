//! Where a server's CPU goes, sampled with `perf`: the share spent inside the compression
//! libraries both servers use (zlib and libjpeg-turbo), so the rest — the work each server does
//! itself — can be compared on its own.
//!
//! A [`Profiler`] attaches `perf record` to a server process with its events disabled and
//! enables them only while [`Profiler::measure`] runs (perf's control FIFO, acknowledged), so
//! the samples cover exactly the measured requests. [`Profiler::finish`] stops perf and
//! classifies the samples: Xvnc links `libz.so` and `libjpeg.so`; kvnc links zlib-rs (Rust,
//! `zlib_rs::` symbols) and libjpeg-turbo statically (its C symbols, read from the
//! `libturbojpeg.a` this build made).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Samples per second of CPU time: a 1 ms update gets about 20. Each sample costs the sampled
/// server some CPU too, so CPU figures of a profiled run are higher than a plain run's.
const FREQUENCY: &str = "20000";

/// The compression libraries' symbols inside kvnc's binary.
pub struct SharedLibraries {
    jpeg_symbols: HashSet<String>,
}

impl SharedLibraries {
    /// Reads libjpeg-turbo's symbols from the static library this build linked into `kvnc`
    /// (`target/<profile>/build/turbojpeg-sys-*/out/lib/libturbojpeg.a`, next to the binary).
    pub fn of_build(kvnc: &Path) -> SharedLibraries {
        let build = kvnc.parent().expect("binary directory").join("build");
        let mut jpeg_symbols = HashSet::new();
        for dir in std::fs::read_dir(&build).expect("build directory").flatten() {
            let archive = dir.path().join("out/lib/libturbojpeg.a");
            if !dir.file_name().to_string_lossy().starts_with("turbojpeg-sys-") || !archive.is_file() {
                continue;
            }
            let nm = Command::new("nm").arg("--defined-only").arg(&archive).output().expect("run nm");
            for line in String::from_utf8_lossy(&nm.stdout).lines() {
                if let [_, kind, name] = line.split_whitespace().collect::<Vec<_>>()[..]
                    && kind.eq_ignore_ascii_case("t")
                {
                    jpeg_symbols.insert(name.to_string());
                }
            }
        }
        assert!(!jpeg_symbols.is_empty(), "no libturbojpeg.a under {}", build.display());
        SharedLibraries { jpeg_symbols }
    }

    /// Whether a sample in `symbol` of `dso` is zlib's or libjpeg-turbo's work.
    fn contains(&self, dso: &str, symbol: &str) -> bool {
        // Local labels and clones come as `name.ERLOOP`, `name.constprop.0`.
        let base = symbol.split('.').next().unwrap_or(symbol);
        ["libz.so", "libjpeg.so", "libturbojpeg.so"].iter().any(|lib| dso.starts_with(lib))
            || symbol.contains("zlib_rs::")
            || (dso == "kvnc" && self.jpeg_symbols.contains(base))
    }
}

/// `perf record` attached to one process, its events off except inside [`Self::measure`].
pub struct Profiler {
    perf: Child,
    control: File,
    ack: BufReader<File>,
    dir: PathBuf,
}

impl Profiler {
    /// Attaches to `pid` (all its threads); panics when perf cannot be run.
    pub fn attach(pid: u32) -> Profiler {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kvnc-profile-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("profile dir");
        let (control, ack) = (dir.join("control"), dir.join("ack"));
        for fifo in [&control, &ack] {
            let made = Command::new("mkfifo").arg(fifo).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
        }
        let perf = Command::new("perf")
            .args(["record", "-q", "-F", FREQUENCY, "-D", "-1", "-p", &pid.to_string(), "-o"])
            .arg(dir.join("perf.data"))
            .arg(format!("--control=fifo:{},{}", control.display(), ack.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run perf (apt-get install linux-perf)");
        // perf holds the control FIFO open read-write, then opens the ack FIFO for writing,
        // which waits for this reader.
        let control = OpenOptions::new().write(true).open(&control).expect("perf control FIFO");
        let ack = BufReader::new(File::open(&ack).expect("perf ack FIFO"));
        Profiler { perf, control, ack, dir }
    }

    /// Runs `work` with sampling on.
    pub fn measure<T>(&mut self, work: impl FnOnce() -> T) -> T {
        self.command("enable");
        let result = work();
        self.command("disable");
        result
    }

    fn command(&mut self, command: &str) {
        writeln!(self.control, "{command}").expect("perf control");
        let mut reply = String::new();
        self.ack.read_line(&mut reply).expect("perf ack");
        // perf writes "ack\n" with its terminating NUL, which starts the next line read.
        let reply = reply.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        assert_eq!(reply, "ack", "perf answered {command} with {reply:?}");
    }

    /// Stops perf and returns the share of the sampled CPU time spent in `libraries`.
    pub fn finish(mut self, libraries: &SharedLibraries) -> f64 {
        let _ = Command::new("kill").args(["-INT", &self.perf.id().to_string()]).status();
        let _ = self.perf.wait();
        let report = Command::new("perf")
            .args(["report", "-q", "--stdio", "--no-children", "-g", "none", "--percent-limit", "0"])
            .args(["--sort", "dso,sym", "-i"])
            .arg(self.dir.join("perf.data"))
            .output()
            .expect("run perf report");
        let (mut total, mut shared) = (0.0, 0.0);
        for line in String::from_utf8_lossy(&report.stdout).lines() {
            // "  12.34%  dso  [.] symbol"
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(percent) = fields.first().and_then(|p| p.strip_suffix('%')?.parse::<f64>().ok()) else {
                continue;
            };
            let (dso, symbol) = (fields.get(1).copied().unwrap_or(""), fields.get(3..).unwrap_or(&[]).join(" "));
            total += percent;
            if libraries.contains(dso, &symbol) {
                shared += percent;
            }
        }
        if total > 0.0 { shared / total } else { 0.0 }
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        let _ = self.perf.kill();
        let _ = self.perf.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
