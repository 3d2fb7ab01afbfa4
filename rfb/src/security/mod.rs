//! Security types: their numbers, which ones a connection is offered, and the crypto of each
//! (one file per type). The handshake steps that use them are in the connection state machine.

pub mod offer;
pub mod plain;
pub mod rsa_aes;
pub mod vencrypt;
pub mod vnc_auth;

pub const INVALID: u8 = 0;
pub const NONE: u8 = 1;
pub const VNC_AUTH: u8 = 2;
/// RSA-AES with AES-128 and SHA-1; the whole session stays encrypted.
pub const RA2: u8 = 5;
/// RSA-AES that protects only the login ("no encryption" afterwards); noVNC's type.
pub const RA2NE: u8 = 6;
pub const VENCRYPT: u8 = 19;
/// RSA-AES with AES-256 and SHA-256.
pub const RA2_256: u8 = 129;
pub const RA2NE_256: u8 = 130;

/// SecurityResult values.
pub const RESULT_OK: u32 = 0;
pub const RESULT_FAILED: u32 = 1;

/// How a connection reaches the server; it decides which security types make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP: native viewers. TLS (VeNCrypt) or RSA-AES must come from inside RFB.
    Tcp,
    /// A WebSocket without TLS (`ws://`): noVNC, which has no TLS inside RFB. It does RSA-AES
    /// (RA2ne) with the browser's WebCrypto, which pages get only in a secure context (https, or
    /// a page from localhost): `web_crypto` says whether the page is one.
    WebSocket { web_crypto: bool },
    /// Already encrypted by the caller (`wss://`): plain logins are safe inside it.
    Tls,
}

/// Who may log in, and how; the same for every connection of a server.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The VNC password (VNC Authentication; only its first 8 bytes count there).
    pub password: Option<Vec<u8>>,
    /// A second password that gives a connection that may watch but not type or point.
    pub view_only_password: Option<Vec<u8>>,
    /// User accounts exist; the caller checks user names and passwords
    /// ([`crate::Event::Credentials`]).
    pub accounts: bool,
}

impl Credentials {
    pub fn required(&self) -> bool {
        self.has_password() || self.accounts
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some() || self.view_only_password.is_some()
    }

    /// Which VNC password `password` is, compared whole (unlike VNC Authentication, which sees
    /// only 8 bytes) and in constant time for equal lengths; for logins that carry the password
    /// itself (RSA-AES, HTTP).
    pub fn password_access(&self, password: &[u8]) -> Option<crate::Access> {
        use subtle::ConstantTimeEq;
        let is = |expected: &Option<Vec<u8>>| expected.as_deref().is_some_and(|p| bool::from(p.ct_eq(password)));
        if is(&self.password) {
            Some(crate::Access::Full)
        } else if is(&self.view_only_password) {
            Some(crate::Access::ViewOnly)
        } else {
            None
        }
    }
}
