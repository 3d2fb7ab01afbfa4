//! A minimal QMP (QEMU Machine Protocol) client for QEMU started with
//! `-qmp unix:PATH,server=on,wait=off`. std only.
//!
//! QMP speaks one JSON object per line. This client does not parse JSON: it tags each command
//! with an `id`, skips everything else (the greeting, asynchronous events) until the line
//! carrying that id, and hands back that line; the callers only need "did it work" and files.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// How long one command may take to answer (a screendump under TCG on a busy machine is slow).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Qmp {
    /// Connects to the QMP socket at `path`, retrying until QEMU listens (within `timeout`), and
    /// leaves capabilities negotiation mode. Panics on failure.
    pub fn connect(path: &Path, timeout: Duration) -> Qmp {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => panic!("connecting to QMP at {}: {e}", path.display()),
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        };
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).expect("setting the QMP read timeout");
        let writer = stream.try_clone().expect("cloning the QMP socket");
        let mut qmp = Qmp { reader: BufReader::new(stream), writer, next_id: 1 };
        qmp.execute("qmp_capabilities", "{}").unwrap_or_else(|e| panic!("QMP negotiation failed: {e}"));
        qmp
    }

    /// Runs `command` with `arguments` (a JSON object) and returns QEMU's reply line; Err(line or
    /// I/O error) if QEMU answered with an error or did not answer.
    fn execute(&mut self, command: &str, arguments: &str) -> Result<String, String> {
        let id = format!("kvnc-{}", self.next_id);
        self.next_id += 1;
        let line = format!("{{\"execute\": {}, \"arguments\": {arguments}, \"id\": {}}}\n", json(command), json(&id));
        self.writer.write_all(line.as_bytes()).map_err(|e| format!("sending {command}: {e}"))?;
        let tag = format!("\"id\": {}", json(&id));
        loop {
            let mut reply = String::new();
            match self.reader.read_line(&mut reply) {
                Ok(0) => return Err(format!("QEMU closed QMP while running {command}")),
                Ok(_) if !reply.contains(&tag) => continue,
                Ok(_) if reply.starts_with("{\"return\"") => return Ok(reply),
                Ok(_) => return Err(format!("{command}: {}", reply.trim_end())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
                    return Err(format!("{command}: no reply within {REPLY_TIMEOUT:?}"));
                }
                Err(e) => return Err(format!("reading the reply to {command}: {e}")),
            }
        }
    }

    /// Like `Qmp::execute` but panics on error.
    pub fn run(&mut self, command: &str, arguments: &str) -> String {
        self.execute(command, arguments).unwrap_or_else(|e| panic!("QMP {e}"))
    }

    /// Writes the display's current picture to `path` as a binary PPM (QEMU's default format).
    pub fn screendump(&mut self, path: &Path) {
        self.run("screendump", &format!("{{\"filename\": {}}}", json(&path.to_string_lossy())));
    }

    /// Writes `size` bytes of guest physical memory from `address` to `path`.
    pub fn pmemsave(&mut self, address: u64, size: u64, path: &Path) {
        let arguments =
            format!("{{\"val\": {address}, \"size\": {size}, \"filename\": {}}}", json(&path.to_string_lossy()));
        self.run("pmemsave", &arguments);
    }
}

/// `s` as a JSON string literal.
fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
