//! VeNCrypt (security type 19): a version exchange, a list of subtypes, and for the X509
//! subtypes a TLS handshake after which the inner login runs inside TLS.
//!
//! The TLS itself belongs to the caller (rfb does no I/O); the connection stops at the point
//! where TLS must begin ([`crate::ServerConnection::tls_requested`]).

/// VeNCrypt version 0.2, the only one clients still speak.
pub const VERSION: [u8; 2] = [0, 2];
/// Answer to a version we do not speak; the connection is then closed.
pub const VERSION_REFUSED: u8 = 0xFF;
pub const VERSION_ACCEPTED: u8 = 0;
/// Sent after an X509 subtype was chosen: the client starts TLS now.
pub const TLS_READY: u8 = 1;

/// A user name and password in the clear (only inside TLS is it sent by kvnc's lists).
pub const PLAIN: u32 = 256;
/// Certificate TLS, then no login.
pub const X509_NONE: u32 = 260;
/// Certificate TLS, then VNC Authentication.
pub const X509_VNC: u32 = 261;
/// Certificate TLS, then a user name and password.
pub const X509_PLAIN: u32 = 262;

/// Whether the subtype starts with TLS. (TLS* 257–259 are anonymous TLS, which rustls does not
/// do and mobile clients cannot use; they are never offered.)
pub fn starts_tls(subtype: u32) -> bool {
    matches!(subtype, X509_NONE | X509_VNC | X509_PLAIN)
}

/// The login that follows the (optional) TLS handshake, as a top-level type number or
/// [`PLAIN`].
pub fn inner_login(subtype: u32) -> u32 {
    match subtype {
        X509_NONE => u32::from(super::NONE),
        X509_VNC => u32::from(super::VNC_AUTH),
        X509_PLAIN => PLAIN,
        other => other,
    }
}

/// A name for logs.
pub fn name(subtype: u32) -> &'static str {
    match subtype {
        X509_NONE => "VeNCrypt X509None",
        X509_VNC => "VeNCrypt X509Vnc",
        X509_PLAIN => "VeNCrypt X509Plain",
        PLAIN => "VeNCrypt Plain",
        1 => "VeNCrypt None",
        2 => "VeNCrypt VncAuth",
        _ => "VeNCrypt",
    }
}
