//! Server processes for the benches: free local ports, and kvnc started from this build.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `kvnc serve ARGS --listen 127.0.0.1:PORT` of this build, quiet, its state kept in `state`,
/// its CPU time accounted (`cpu::account`); returns once it listens. [`stop`] ends it.
pub fn start_kvnc(args: &[&str], port: u16, state: &Path) -> Child {
    let mut child = Command::new(crate::kvnc_binary())
        .arg("serve")
        .args(args)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .env("XDG_STATE_HOME", state)
        .env("HOME", state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kvnc");
    crate::cpu::account(child.id());
    wait_for_port(port, &mut child);
    child
}

/// Kills a server and removes its CPU account.
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
    crate::cpu::release(child.id());
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Waits until `child` listens on `port`; panics if it exits first or takes over 20 s.
pub fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().expect("wait").is_none(), "server exited before listening");
        assert!(Instant::now() < deadline, "server did not listen on {port} within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}
