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
    #[error("no security type for this client: {0}")]
    NoSecurityType(&'static str),
    #[error("client chose VeNCrypt subtype {0}, which was not offered")]
    SubtypeNotOffered(u32),
    #[error("unsupported VeNCrypt version {0}.{1}")]
    UnsupportedVeNCryptVersion(u8, u8),
    #[error("user name or password of {0} bytes (at most 1024 allowed)")]
    CredentialsTooLong(u32),
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
    #[error("RSA-AES: {0}")]
    RsaAes(#[from] crate::security::rsa_aes::Ra2Error),
    #[error("message received before the handshake finished")]
    NotReady,
    #[error("connection already closed")]
    Closed,
}
