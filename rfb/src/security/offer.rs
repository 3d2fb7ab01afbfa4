//! Which security types a connection is offered, and in which order.
//!
//! Clients do not choose alike: TigerVNC and noVNC take the first type in the server's list they
//! support, vncdotool the highest of None/VncAuth, RFB 3.3 clients (macOS Screen Sharing) get
//! one type chosen for them. So the order is the policy:
//! - native viewers over TCP: VeNCrypt first (TigerVNC logs in over TLS), then RSA-AES that
//!   encrypts the whole session (TigerVNC ≥ 1.13, RealVNC), then what older clients speak;
//! - noVNC over `ws://`: RSA-AES "ne" first, so at least the login is encrypted (when the page
//!   can do it);
//! - anything over `wss://`: plain logins inside the TLS that is already there.
//!
//! Under "require encryption" a connection is offered only types that encrypt the session.

use super::vencrypt::{PLAIN, X509_NONE, X509_PLAIN, X509_VNC};
use super::{Credentials, NONE, RA2, RA2_256, RA2NE, RA2NE_256, Transport, VENCRYPT, VNC_AUTH};

/// What the server can do beyond plain logins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Methods {
    /// A certificate is loaded: VeNCrypt's X509 subtypes work.
    pub tls: bool,
    /// An RSA key is loaded: RSA-AES works.
    pub rsa_aes: bool,
    /// Refuse logins that leave the session readable on the network.
    pub require_encryption: bool,
}

/// Why a connection has nothing to be offered: sent to the client as the failure reason.
pub const NOTHING_ENCRYPTED: &str =
    "this server accepts only encrypted connections: use a viewer with VeNCrypt (TLS) or RSA-AES, or wss://";
pub const NO_PASSWORD_FOR_33: &str =
    "this viewer (RFB 3.3) can only log in with a VNC password, and the server has none";

/// The list sent to RFB 3.7 and later clients, most preferred first; empty when nothing fits.
pub fn top_level(credentials: &Credentials, methods: Methods, transport: Transport) -> Vec<u8> {
    let mut types = Vec::new();
    let rsa_aes = methods.rsa_aes && credentials.required();
    let plain_allowed = !methods.require_encryption || transport == Transport::Tls;
    match transport {
        Transport::Tcp => {
            if methods.tls {
                types.push(VENCRYPT);
            }
            if rsa_aes {
                types.extend([RA2, RA2_256]);
                if plain_allowed {
                    types.extend([RA2NE, RA2NE_256]);
                }
            }
        }
        Transport::WebSocket { web_crypto } => {
            // Without WebCrypto noVNC would pick RA2ne and fail; it then gets VNC Authentication.
            if rsa_aes && plain_allowed && web_crypto {
                types.push(RA2NE);
            }
        }
        // Only VeNCrypt carries a user name and password without RSA.
        Transport::Tls => {
            if credentials.accounts {
                types.push(VENCRYPT);
            }
        }
    }
    if plain_allowed {
        if credentials.has_password() {
            types.push(VNC_AUTH);
        }
        if !credentials.required() {
            types.push(NONE);
        }
    }
    types
}

/// The subtypes listed once a client chose VeNCrypt.
pub fn vencrypt_subtypes(credentials: &Credentials, methods: Methods, transport: Transport) -> Vec<u32> {
    let mut subtypes = Vec::new();
    match transport {
        Transport::Tls => {
            if credentials.accounts {
                subtypes.push(PLAIN);
            }
        }
        Transport::Tcp | Transport::WebSocket { .. } => {
            if methods.tls {
                if credentials.accounts {
                    subtypes.push(X509_PLAIN);
                }
                if credentials.has_password() {
                    subtypes.push(X509_VNC);
                }
                if !credentials.required() {
                    subtypes.push(X509_NONE);
                }
            }
        }
    }
    // Like TigerVNC, the plain logins too, for clients that chose VeNCrypt without TLS.
    if !methods.require_encryption || transport == Transport::Tls {
        if credentials.has_password() {
            subtypes.push(u32::from(VNC_AUTH));
        }
        if !credentials.required() {
            subtypes.push(u32::from(NONE));
        }
    }
    subtypes
}

/// The one type an RFB 3.3 client gets (it cannot choose), or the reason it gets none.
pub fn for_rfb_33(credentials: &Credentials, methods: Methods, transport: Transport) -> Result<u8, &'static str> {
    if methods.require_encryption && transport != Transport::Tls {
        Err(NOTHING_ENCRYPTED)
    } else if credentials.has_password() {
        Ok(VNC_AUTH)
    } else if !credentials.required() {
        Ok(NONE)
    } else {
        Err(NO_PASSWORD_FOR_33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(password: bool, accounts: bool) -> Credentials {
        Credentials { password: password.then(|| b"pw".to_vec()), view_only_password: None, accounts }
    }

    const ALL: Methods = Methods { tls: true, rsa_aes: true, require_encryption: false };
    const STRICT: Methods = Methods { require_encryption: true, ..ALL };

    #[test]
    fn native_viewers_see_tls_first_and_old_types_last() {
        let list = top_level(&credentials(true, true), ALL, Transport::Tcp);
        assert_eq!(list, [VENCRYPT, RA2, RA2_256, RA2NE, RA2NE_256, VNC_AUTH]);
        assert_eq!(vencrypt_subtypes(&credentials(true, true), ALL, Transport::Tcp), [X509_PLAIN, X509_VNC, 2]);
        // No login at all: TLS still first, None inside and outside.
        assert_eq!(top_level(&credentials(false, false), ALL, Transport::Tcp), [VENCRYPT, NONE]);
        assert_eq!(vencrypt_subtypes(&credentials(false, false), ALL, Transport::Tcp), [X509_NONE, 1]);
    }

    #[test]
    fn novnc_gets_rsa_aes_on_ws_and_plain_logins_on_wss() {
        let ws = |web_crypto| Transport::WebSocket { web_crypto };
        assert_eq!(top_level(&credentials(true, false), ALL, ws(true)), [RA2NE, VNC_AUTH]);
        assert_eq!(top_level(&credentials(true, false), ALL, ws(false)), [VNC_AUTH], "a page without WebCrypto");
        assert_eq!(top_level(&credentials(true, true), ALL, Transport::Tls), [VENCRYPT, VNC_AUTH]);
        assert_eq!(vencrypt_subtypes(&credentials(true, true), ALL, Transport::Tls), [PLAIN, 2]);
        assert_eq!(top_level(&credentials(false, false), ALL, Transport::Tls), [NONE]);
    }

    #[test]
    fn requiring_encryption_leaves_only_encrypting_types() {
        assert_eq!(top_level(&credentials(true, true), STRICT, Transport::Tcp), [VENCRYPT, RA2, RA2_256]);
        assert_eq!(vencrypt_subtypes(&credentials(true, true), STRICT, Transport::Tcp), [X509_PLAIN, X509_VNC]);
        assert!(top_level(&credentials(true, true), STRICT, Transport::WebSocket { web_crypto: true }).is_empty());
        assert_eq!(top_level(&credentials(true, false), STRICT, Transport::Tls), [VNC_AUTH]);
        assert_eq!(for_rfb_33(&credentials(true, false), STRICT, Transport::Tcp), Err(NOTHING_ENCRYPTED));
        // Without TLS or RSA there is nothing left for a plain connection.
        let bare = Methods { require_encryption: true, ..Methods::default() };
        assert!(top_level(&credentials(true, false), bare, Transport::Tcp).is_empty());
    }

    #[test]
    fn rfb_33_gets_vnc_auth_or_none() {
        assert_eq!(for_rfb_33(&credentials(true, true), ALL, Transport::Tcp), Ok(VNC_AUTH));
        assert_eq!(for_rfb_33(&credentials(false, false), ALL, Transport::Tcp), Ok(NONE));
        assert_eq!(for_rfb_33(&credentials(false, true), ALL, Transport::Tcp), Err(NO_PASSWORD_FOR_33));
    }
}
