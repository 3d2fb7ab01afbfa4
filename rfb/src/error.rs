//! Typed protocol errors: each one closes the connection it happened on, and says why.

use crate::pixel_format::InvalidPixelFormat;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("not an RFB protocol version message: {0:?}")]
    BadVersion(String),
    #[error("unsupported RFB major version {0}")]
    UnsupportedMajorVersion(u32),
    #[error("client chose security type {0}, which was not offered")]
    SecurityTypeNotOffered(u8),
    #[error("authentication failed")]
    AuthenticationFailed,
    #[error("no security type is available for an RFB 3.3 client")]
    NoSecurityFor33,
    #[error("unknown client message type {0}")]
    UnknownMessageType(u8),
    #[error("unknown QEMU client message subtype {0}")]
    UnknownQemuSubtype(u8),
    #[error("QEMU extended key event before the server announced it")]
    QemuKeyEventNotAnnounced,
    #[error("fence payload of {0} bytes (at most 64 allowed)")]
    FencePayloadTooLong(usize),
    #[error("invalid pixel format: {0}")]
    InvalidPixelFormat(#[from] InvalidPixelFormat),
    #[error("message received before the handshake finished")]
    NotReady,
    #[error("connection already closed")]
    Closed,
}
