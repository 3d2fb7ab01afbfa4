//! Local ports for the benches that start server processes.

use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

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
