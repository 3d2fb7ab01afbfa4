//! kvnc: a VNC server that turns a small Linux board into a KVM over IP.
//!
//! The protocol lives in the `rfb` crate (no I/O); this crate is the shell around it: the
//! tokio server, the frame sources (the demo target now; V4L2 capture later), the input path
//! (keysyms → USB HID reports) and the command line.

pub mod accounts;
pub mod canvas;
pub mod cli;
pub mod config;
pub mod console;
pub mod control;
pub mod demo;
pub mod hid;
pub mod jpeg;
pub mod login;
pub mod media;
pub mod passwd;
pub mod private_file;
pub mod probe;
pub mod rate_limit;
pub mod server;
pub mod source;
