//! `rfb`: the RFB (VNC) server protocol without I/O.
//!
//! Bytes from the client go into [`ServerConnection::read`]; parsed events come out of
//! [`ServerConnection::poll_event`]; bytes for the client accumulate in
//! [`ServerConnection::output`]. The caller owns sockets, timers and threads (like rustls'
//! `read_tls` / `process_new_packets` / `write_tls`).

pub mod damage;
pub mod encoders;
pub mod encoding;
pub mod error;
pub mod frame;
pub mod messages;
pub mod moves;
pub mod pixel_format;
pub mod region;
pub mod security;

mod connection;

pub use connection::{Access, EncodedUpdate, Event, ServerConfig, ServerConnection, UpdateJob};
pub use error::ProtocolError;
pub use frame::{Frame, Rect};
pub use pixel_format::{PixelConverter, PixelFormat};
