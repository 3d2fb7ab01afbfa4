//! The handshake up to ClientInit: version, the choice of security type, and each type's login
//! (None, VNC Authentication, VeNCrypt with TLS and Plain). Which types are offered is decided
//! in [`crate::security::offer`]; this file only runs the chosen one.

use rand_core::RngCore;

use super::{Access, Event, ServerConnection, State, VERSION_LEN};
use crate::error::ProtocolError;
use crate::security::rsa_aes::{CredentialKind, Ra2Handshake, Ra2Kind};
use crate::security::{self, Transport, offer, plain, vencrypt, vnc_auth};

const AUTH_FAILED_REASON: &str = "Authentication failed";

impl ServerConnection {
    pub(super) fn process_version(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if buf.len() < VERSION_LEN {
            return Ok(None);
        }
        let (major, minor) = parse_version(&buf[..VERSION_LEN])?;
        if major != 3 {
            return Err(ProtocolError::UnsupportedMajorVersion(major));
        }
        // TigerVNC's mapping of unofficial minors (e.g. Apple's 3.889 → 3.8, 3.5 → 3.3).
        self.minor = match minor {
            8.. => 8,
            7 => 7,
            _ => 3,
        };
        let credentials = &self.config.credentials;
        let methods = self.config.methods();
        if self.minor == 3 {
            // The server chooses for a 3.3 client.
            match offer::for_rfb_33(credentials, methods, self.transport) {
                Ok(kind) => {
                    self.output.extend_from_slice(&u32::from(kind).to_be_bytes());
                    self.begin_security(kind)?;
                }
                Err(reason) => return Err(self.refuse(reason)),
            }
        } else {
            let offered = offer::top_level(credentials, methods, self.transport);
            if offered.is_empty() {
                return Err(self.refuse(offer::NOTHING_ENCRYPTED));
            }
            self.output.push(offered.len() as u8);
            self.output.extend_from_slice(&offered);
            self.state = State::SecurityType;
        }
        Ok(Some(VERSION_LEN))
    }

    /// Fails the handshake before any login: the client gets `reason` (3.3: U32 0, 3.7+: an
    /// empty list; then the reason string).
    fn refuse(&mut self, reason: &'static str) -> ProtocolError {
        if self.minor == 3 {
            self.output.extend_from_slice(&0u32.to_be_bytes());
        } else {
            self.output.push(0);
        }
        write_reason(&mut self.output, reason);
        ProtocolError::NoSecurityType(reason)
    }

    pub(super) fn process_security_type(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some(&chosen) = buf.first() else {
            return Ok(None);
        };
        let offered = offer::top_level(&self.config.credentials, self.config.methods(), self.transport);
        if !offered.contains(&chosen) {
            return Err(ProtocolError::SecurityTypeNotOffered(chosen));
        }
        self.begin_security(chosen)?;
        Ok(Some(1))
    }

    fn begin_security(&mut self, kind: u8) -> Result<(), ProtocolError> {
        self.security_type = kind;
        if kind == security::VENCRYPT {
            self.output.extend_from_slice(&vencrypt::VERSION);
            self.state = State::VeNCryptVersion;
        } else if let Some(ra2) = Ra2Kind::from_type(kind) {
            // Offered only with a key (see offer.rs).
            let key = self.config.rsa_key.as_ref().ok_or(ProtocolError::SecurityTypeNotOffered(kind))?;
            let asked = if self.config.credentials.accounts {
                CredentialKind::UserAndPassword
            } else {
                CredentialKind::PasswordOnly
            };
            let handshake = Ra2Handshake::start(ra2, key.private(), asked, &mut self.output)?;
            self.rsa_aes = Some(Box::new(handshake));
            self.state = State::RsaAes;
        } else {
            self.begin_login(u32::from(kind));
        }
        Ok(())
    }

    pub(super) fn process_rsa_aes(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let handshake = self.rsa_aes.as_mut().ok_or(ProtocolError::NotReady)?;
        let kind = handshake.kind();
        let (used, done) = handshake.process(buf, &mut self.rng, &mut self.output)?;
        let Some((credentials, cipher)) = done else {
            return Ok((used > 0).then_some(used));
        };
        self.rsa_aes = None;
        // RA2 and RA2_256 seal the SecurityResult and all that follows; the "ne" kinds only
        // protected the login.
        if kind.encrypts_session() {
            self.start_cipher(cipher);
        }
        if self.config.credentials.accounts {
            let login = plain::Login { username: credentials.username, password: credentials.password };
            self.username = Some(login.username.clone());
            self.events.push_back(Event::Credentials(login));
            self.state = State::CheckingLogin;
        } else {
            match self.config.credentials.password_access(&credentials.password) {
                Some(access) => self.succeed(access),
                None => return Err(self.fail()),
            }
        }
        Ok(Some(used))
    }

    /// Starts the login proper: a top-level type, or what a VeNCrypt subtype runs (inside TLS).
    fn begin_login(&mut self, login: u32) {
        match login {
            vencrypt::PLAIN => self.state = State::PlainLogin,
            _ if login == u32::from(security::VNC_AUTH) => {
                self.rng.fill_bytes(&mut self.challenge);
                self.output.extend_from_slice(&self.challenge);
                self.state = State::VncAuthResponse;
            }
            _ => self.succeed(Access::Full),
        }
    }

    pub(super) fn process_vencrypt_version(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some(&[major, minor]) = buf.get(..2) else {
            return Ok(None);
        };
        if [major, minor] != vencrypt::VERSION {
            self.output.push(vencrypt::VERSION_REFUSED);
            return Err(ProtocolError::UnsupportedVeNCryptVersion(major, minor));
        }
        self.output.push(vencrypt::VERSION_ACCEPTED);
        self.vencrypt_offered =
            offer::vencrypt_subtypes(&self.config.credentials, self.config.methods(), self.transport);
        // At most a handful: the list below always fits its U8 count.
        self.output.push(self.vencrypt_offered.len() as u8);
        for subtype in &self.vencrypt_offered {
            self.output.extend_from_slice(&subtype.to_be_bytes());
        }
        self.state = State::VeNCryptSubtype;
        Ok(Some(2))
    }

    pub(super) fn process_vencrypt_subtype(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some(&[a, b, c, d]) = buf.get(..4) else {
            return Ok(None);
        };
        let subtype = u32::from_be_bytes([a, b, c, d]);
        if !self.vencrypt_offered.contains(&subtype) {
            return Err(ProtocolError::SubtypeNotOffered(subtype));
        }
        self.vencrypt_subtype = subtype;
        if vencrypt::starts_tls(subtype) {
            self.output.push(vencrypt::TLS_READY);
            self.state = State::TlsRequested;
        } else {
            self.begin_login(subtype);
        }
        Ok(Some(4))
    }

    /// Whether the client is about to start TLS: flush [`Self::pending_output`] as it is, then
    /// run the TLS handshake on the socket and call [`Self::start_tls`].
    pub fn tls_requested(&self) -> bool {
        self.state == State::TlsRequested
    }

    /// Says TLS is about to run: from now on every byte in and out is the plaintext inside TLS.
    /// Returns bytes already received that belong to the TLS handshake, for the caller's TLS.
    pub fn start_tls(&mut self) -> Result<Vec<u8>, ProtocolError> {
        if self.state != State::TlsRequested {
            return Err(ProtocolError::NotReady);
        }
        self.transport = Transport::Tls;
        self.begin_login(vencrypt::inner_login(self.vencrypt_subtype));
        Ok(std::mem::take(&mut self.input))
    }

    pub(super) fn process_vnc_auth(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some(response) = buf.get(..vnc_auth::CHALLENGE_LEN) else {
            return Ok(None);
        };
        let mut received = [0u8; vnc_auth::CHALLENGE_LEN];
        received.copy_from_slice(response);
        let credentials = &self.config.credentials;
        let matches = |password: &Option<Vec<u8>>| {
            password.as_deref().is_some_and(|p| vnc_auth::verify_response(p, &self.challenge, &received))
        };
        let access = if matches(&credentials.password) {
            Some(Access::Full)
        } else if matches(&credentials.view_only_password) {
            Some(Access::ViewOnly)
        } else {
            None
        };
        match access {
            Some(access) => self.succeed(access),
            None => return Err(self.fail()),
        }
        Ok(Some(vnc_auth::CHALLENGE_LEN))
    }

    pub(super) fn process_plain_login(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some((login, used)) = plain::parse(buf)? else {
            return Ok(None);
        };
        self.username = Some(login.username.clone());
        self.events.push_back(Event::Credentials(login));
        self.state = State::CheckingLogin;
        Ok(Some(used))
    }

    /// Answers [`Event::Credentials`]: `Some(access)` logs the client in, `None` fails the
    /// login (the failure result is queued; the connection is closed).
    pub fn login_checked(&mut self, access: Option<Access>) -> Result<(), ProtocolError> {
        if self.state != State::CheckingLogin {
            return Err(ProtocolError::NotReady);
        }
        match access {
            Some(access) => {
                self.succeed(access);
                // The client may already have sent ClientInit.
                self.read(&[])
            }
            None => {
                let error = self.fail();
                self.state = State::Closed;
                Err(error)
            }
        }
    }

    /// The login passed: SecurityResult OK where the version and type have one.
    fn succeed(&mut self, access: Access) {
        // 3.3 and 3.7 send no SecurityResult after None; every other login has one.
        if self.minor == 8 || self.security_type != security::NONE {
            self.output.extend_from_slice(&security::RESULT_OK.to_be_bytes());
        }
        self.access = access;
        self.security_name = self.login_name();
        self.state = State::ClientInit;
    }

    fn login_name(&self) -> &'static str {
        match self.security_type {
            security::VENCRYPT => vencrypt::name(self.vencrypt_subtype),
            security::VNC_AUTH => "VncAuth",
            security::RA2 => "RSA-AES (RA2)",
            security::RA2NE => "RSA-AES without session encryption (RA2ne)",
            security::RA2_256 => "RSA-AES-256 (RA2_256)",
            security::RA2NE_256 => "RSA-AES-256 without session encryption (RA2ne_256)",
            _ => "None",
        }
    }

    /// The login failed: SecurityResult failed (with a reason from 3.8 on).
    fn fail(&mut self) -> ProtocolError {
        self.output.extend_from_slice(&security::RESULT_FAILED.to_be_bytes());
        if self.minor == 8 {
            write_reason(&mut self.output, AUTH_FAILED_REASON);
        }
        ProtocolError::AuthenticationFailed
    }

    pub(super) fn process_client_init(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some(&shared) = buf.first() else {
            return Ok(None);
        };
        self.events.push_back(Event::ClientInit { shared: shared != 0, access: self.access });
        self.state = State::AwaitingAccept;
        Ok(Some(1))
    }
}

fn write_reason(output: &mut Vec<u8>, reason: &str) {
    output.extend_from_slice(&(reason.len() as u32).to_be_bytes());
    output.extend_from_slice(reason.as_bytes());
}

fn parse_version(msg: &[u8]) -> Result<(u32, u32), ProtocolError> {
    let bad = || ProtocolError::BadVersion(String::from_utf8_lossy(msg).into_owned());
    if &msg[..4] != b"RFB " || msg[7] != b'.' || msg[11] != b'\n' {
        return Err(bad());
    }
    let number = |digits: &[u8]| -> Result<u32, ProtocolError> {
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    Ok((number(&msg[4..7])?, number(&msg[8..11])?))
}
