//! RSA-AES security types, server side: RA2 (5), RA2ne (6), RA2_256 (129) and RA2ne_256 (130).
//!
//! Spec: rfbproto, "RSA-AES Security Type" and the sections after it. The byte-level details were
//! checked against TigerVNC (`common/rfb/SSecurityRSAAES.cxx` and `CSecurityRSAAES.cxx`,
//! `common/rdr/AESInStream.cxx`, `AESOutStream.cxx`) and noVNC (`core/ra2.js`, which does RA2ne
//! only), the clients that matter; noVNC's own test transcript is replayed in the tests below.
//!
//! The handshake as the server sees it (→ sent by the server, ← by the client):
//!
//! 1. → Public key: `u32` size in bits, then the modulus and the exponent, each big-endian in
//!    `ceil(bits / 8)` bytes (the exponent left-padded with zeros).
//! 2. ← The client's public key, laid out the same; its size is its own (noVNC: always 2048,
//!    TigerVNC: the same as the server's).
//! 3. → `u16` length, then a random of 16 bytes (32 for the `_256` kinds) encrypted to the
//!    client's key with PKCS#1 v1.5. The length is that of the client's modulus.
//! 4. ← The client's random, encrypted to ours, laid out the same.
//!    From the two randoms: client→server key = `H(server random ‖ client random)`,
//!    server→client key = `H(client random ‖ server random)`; H is SHA-1 cut to 16 bytes
//!    (AES-128) or SHA-256 (AES-256). Everything below goes through the AES-EAX record layer
//!    ([`SessionCipher`]).
//! 5. → `H(server key message ‖ client key message)`, ← `H(client key message ‖ server key
//!    message)`, where a key message is all of 1. or 2. Neither side waits for the other's:
//!    TigerVNC and noVNC both send theirs as soon as they have the session keys.
//! 6. → Subtype, one byte: 1 user name and password, 2 password only.
//! 7. ← Credentials: `u8` length and user name (empty for subtype 2), `u8` length and password.
//!
//! Then comes the SecurityResult: inside the record layer for RA2 and RA2_256, which keep it for
//! the rest of the connection (TigerVNC switches the connection's streams to it when the keys are
//! set and only switches back when the connection closes), in the clear for RA2ne and RA2ne_256.
//!
//! Sans-IO: bytes in, bytes out. Randomness comes from the caller's RNG.

use std::fmt;

use aes::{Aes128, Aes256};
use eax::Eax;
use eax::aead::generic_array::GenericArray;
use eax::aead::{AeadInPlace, KeyInit};
use eax::online::{Eax as EaxOnline, Encrypt};
use rand_core::CryptoRngCore;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Smallest RSA key, in bits, that we accept from a client. TigerVNC's server and client, noVNC
/// and UltraVNC all refuse keys below 1024 bits from the other side, so a server key must not be
/// smaller either.
pub const MIN_KEY_BITS: u32 = 1024;

/// Largest RSA key, in bits, that we accept from a client (TigerVNC's and UltraVNC's limit both
/// ways, noVNC's for the server key). Checked on the 4-byte size field before anything of the
/// key is buffered: that bounds a key message to 2 KiB + 4 and an RSA operation to 8192 bits.
pub const MAX_KEY_BITS: u32 = 8192;

/// The server key size to generate. TigerVNC ships with 2048, and its viewer generates its own
/// key of the same size as the server's for every connection, so a 4096-bit server key would
/// make each TigerVNC login wait for a 4096-bit key generation (seconds). noVNC always uses 2048.
pub const RECOMMENDED_SERVER_KEY_BITS: usize = 2048;

/// Most plaintext that [`SessionCipher::seal`] puts in one record: TigerVNC's `AESOutStream`
/// limit. Receivers take any `u16` length, but staying at what TigerVNC sends keeps us in the
/// range every implementation has been exercised with; the 18 bytes of framing are 0.2 % of it.
pub const MAX_RECORD_PAYLOAD: usize = 8192;

/// EAX tag length; the spec fixes it to a full AES block.
const TAG_LEN: usize = 16;

/// A record's length prefix plus its tag.
const RECORD_OVERHEAD: usize = 2 + TAG_LEN;

// Record lengths are written as `u16`.
const _: () = assert!(MAX_RECORD_PAYLOAD <= u16::MAX as usize);

/// Which of the four RSA-AES security types: hash and AES key size, and whether the record layer
/// outlives the handshake.
// The spec's own names (RA2ne_256) read better here than camel case would.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ra2Kind {
    /// Type 5: SHA-1, AES-128; the whole session is encrypted.
    Ra2,
    /// Type 6: SHA-1, AES-128; only the handshake is encrypted. The only kind noVNC implements.
    Ra2ne,
    /// Type 129: SHA-256, AES-256; the whole session is encrypted.
    Ra2_256,
    /// Type 130: SHA-256, AES-256; only the handshake is encrypted.
    Ra2ne_256,
}

impl Ra2Kind {
    /// All four, strongest first: the order a server would list them in.
    pub const ALL: [Ra2Kind; 4] = [Ra2Kind::Ra2_256, Ra2Kind::Ra2, Ra2Kind::Ra2ne_256, Ra2Kind::Ra2ne];

    /// The kind of a security-type number, or `None` for other types (RA2r, 13 and 133, is not
    /// implemented: no client we know of uses it).
    pub fn from_type(security_type: u8) -> Option<Self> {
        match security_type {
            5 => Some(Self::Ra2),
            6 => Some(Self::Ra2ne),
            129 => Some(Self::Ra2_256),
            130 => Some(Self::Ra2ne_256),
            _ => None,
        }
    }

    /// The security-type number sent in the security-types list.
    pub fn security_type(self) -> u8 {
        match self {
            Self::Ra2 => 5,
            Self::Ra2ne => 6,
            Self::Ra2_256 => 129,
            Self::Ra2ne_256 => 130,
        }
    }

    /// True for RA2 and RA2_256: the SecurityResult (and a failure reason) and every later byte
    /// both ways go through the [`SessionCipher`]. False for the "ne" kinds: the caller drops the
    /// cipher once the credentials are in and sends the SecurityResult in the clear.
    pub fn encrypts_session(self) -> bool {
        matches!(self, Self::Ra2 | Self::Ra2_256)
    }

    fn is_256(self) -> bool {
        matches!(self, Self::Ra2_256 | Self::Ra2ne_256)
    }

    /// Bytes of each side's random: the AES key size (TigerVNC's and UltraVNC's `keySize / 8`;
    /// the spec only says 16, in the RA2 section).
    fn random_len(self) -> usize {
        if self.is_256() { 32 } else { 16 }
    }

    /// The spec's H over `parts`, in full (20 or 32 bytes): session keys take a prefix of it, the
    /// key hashes all of it.
    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        if self.is_256() {
            let mut h = Sha256::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        } else {
            let mut h = Sha1::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        }
    }
}

/// What the server asks the client for (the subtype message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// Subtype 1: a user name and a password (user accounts).
    UserAndPassword,
    /// Subtype 2: a password only (the VNC password). The client sends an empty user name.
    PasswordOnly,
}

impl CredentialKind {
    /// The subtype byte on the wire.
    pub fn subtype(self) -> u8 {
        match self {
            Self::UserAndPassword => 1,
            Self::PasswordOnly => 2,
        }
    }
}

/// What the client logged in with. Checking it is the caller's business.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name, as sent: empty when only a password was asked for (TigerVNC and noVNC send
    /// an empty one then; anything else is passed on, not refused). The spec says UTF-8, but
    /// noVNC cuts the UTF-8 bytes at 255 and can split a character, so invalid sequences are
    /// replaced with U+FFFD rather than refused.
    pub username: String,
    /// The password's bytes, as sent (at most 255; UTF-8 by the spec, not checked).
    pub password: Vec<u8>,
}

/// Never prints the password, so a `{:?}` in a log line cannot leak it.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &format_args!("<{} bytes>", self.password.len()))
            .finish()
    }
}

/// Why an RSA-AES handshake or record failed. Each is fatal: close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ra2Error {
    /// Our own key is outside what clients accept; a configuration error, see [`check_server_key`].
    #[error("server RSA key has {bits} bits; RSA-AES clients accept {MIN_KEY_BITS} to {MAX_KEY_BITS}")]
    ServerKeySize { bits: usize },
    /// The client declared a key size we refuse; nothing of the key was read or buffered.
    #[error("client RSA key of {bits} bits refused; {MIN_KEY_BITS} to {MAX_KEY_BITS} accepted")]
    ClientKeySize { bits: u32 },
    /// The client's key is not a usable RSA public key (even modulus, exponent out of range, or a
    /// modulus shorter than its declared size).
    #[error("client RSA key is not a valid public key")]
    ClientKeyInvalid,
    /// The length of the client's encrypted random is not our modulus size.
    #[error("client's encrypted random is {got} bytes; our RSA modulus is {expected}")]
    RandomLength { got: u16, expected: usize },
    /// The client's hash of the two public keys differs from ours: a man in the middle swapped a
    /// key, or the client is broken.
    #[error("client's hash of the exchanged public keys does not match")]
    HashMismatch,
    /// A record's tag is wrong: tampering, or the client's keys differ from ours. A client random
    /// that does not decrypt properly also ends here, at the client's first record (see
    /// [`Ra2Handshake::process`]).
    #[error("encrypted record failed authentication")]
    RecordAuthentication,
    /// The record with the credentials carried more after them; the client must wait for the
    /// SecurityResult before it sends anything else.
    #[error("unexpected data after the credentials")]
    TrailingData,
    /// [`Ra2Handshake::process`] was called after it had finished or failed.
    #[error("RSA-AES handshake already finished or failed")]
    Finished,
}

/// Checks that `key` can be offered to clients (1024 to 8192 bits). Call it when loading the key,
/// so a bad one fails at start-up rather than at each login.
pub fn check_server_key(key: &impl PublicKeyParts) -> Result<(), Ra2Error> {
    let bits = key.size() * 8;
    if (MIN_KEY_BITS as usize..=MAX_KEY_BITS as usize).contains(&bits) {
        Ok(())
    } else {
        Err(Ra2Error::ServerKeySize { bits })
    }
}

/// The server's RSA key, checked once and shared by every connection. Its `Debug` shows only the
/// fingerprint: the key's own `Debug` prints the private parts.
#[derive(Clone)]
pub struct ServerKey(std::sync::Arc<RsaPrivateKey>);

impl ServerKey {
    pub fn new(key: RsaPrivateKey) -> Result<Self, Ra2Error> {
        check_server_key(&key)?;
        Ok(Self(std::sync::Arc::new(key)))
    }

    pub fn private(&self) -> &RsaPrivateKey {
        &self.0
    }

    /// See [`key_fingerprint`].
    pub fn fingerprint(&self) -> String {
        key_fingerprint(self.0.as_ref())
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerKey({})", self.fingerprint())
    }
}

/// The fingerprint TigerVNC's and UltraVNC's viewers show for a server key (RealVNC's format):
/// the first 8 bytes of SHA-1 over the key message, as `xx-xx-xx-xx-xx-xx-xx-xx`. Log it so users
/// can compare it with what their viewer shows on first connection.
pub fn key_fingerprint(key: &impl PublicKeyParts) -> String {
    let digest = Sha1::digest(key_message(key));
    let hex: Vec<String> = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    hex.join("-")
}

/// The key message of step 1: `u32` bits, modulus, exponent, each of the two in the modulus's
/// byte size. The size sent is the modulus's byte size times 8, as TigerVNC does, so that the
/// receiver's `ceil(bits / 8)` is exactly the byte size.
fn key_message(key: &impl PublicKeyParts) -> Vec<u8> {
    let size = key.size();
    let bits = u32::try_from(size * 8).unwrap_or(u32::MAX);
    let n = key.n().to_bytes_be();
    let e = key.e().to_bytes_be();
    let mut msg = Vec::with_capacity(4 + 2 * size);
    msg.extend_from_slice(&bits.to_be_bytes());
    msg.resize(msg.len() + size.saturating_sub(n.len()), 0);
    msg.extend_from_slice(&n);
    msg.resize(msg.len() + size.saturating_sub(e.len()), 0);
    msg.extend_from_slice(&e);
    msg
}

/// The client's public key from the two halves of its key message.
fn parse_client_key(n_bytes: &[u8], e: &[u8]) -> Result<RsaPublicKey, Ra2Error> {
    let n = BigUint::from_bytes_be(n_bytes);
    // A modulus with leading zero bytes is smaller than declared: its ciphertext would not be
    // the length the client expects for the server random.
    if n.bits().div_ceil(8) != n_bytes.len() {
        return Err(Ra2Error::ClientKeyInvalid);
    }
    let e = BigUint::from_bytes_be(e);
    // `new` stops at 4096 bits; the size was already bounded by MAX_KEY_BITS. This also refuses
    // even moduli and exponents that are even, below 3, above 2^33 - 1 or not below the modulus.
    RsaPublicKey::new_with_max_size(n, e, MAX_KEY_BITS as usize).map_err(|_| Ra2Error::ClientKeyInvalid)
}

fn random_bytes(rng: &mut impl CryptoRngCore, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

fn be_u16(buf: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(buf.get(..2)?.try_into().ok()?))
}

fn be_u32(buf: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(..4)?.try_into().ok()?))
}

/// The credentials message and its length, once `plain` holds all of it.
fn parse_credentials(plain: &[u8]) -> Option<(Credentials, usize)> {
    let (&user_len, rest) = plain.split_first()?;
    let (user, rest) = rest.split_at_checked(usize::from(user_len))?;
    let (&password_len, rest) = rest.split_first()?;
    let password = rest.get(..usize::from(password_len))?;
    let credentials = Credentials { username: String::from_utf8_lossy(user).into_owned(), password: password.to_vec() };
    Some((credentials, 2 + usize::from(user_len) + usize::from(password_len)))
}

/// Where the client random's plaintext comes from.
enum ServerSecret {
    /// Decrypted with our private key (cloned per connection; a few hundred bytes).
    Key(Box<RsaPrivateKey>),
    /// noVNC's test transcript was made against a server whose private key is unknown, but the
    /// client random's plaintext is: this stands in for the decryption, and only for it.
    #[cfg(test)]
    KnownClientRandom(Vec<u8>),
}

enum State {
    ClientKey,
    ClientRandom {
        client_key_msg: Vec<u8>,
        server_random: Vec<u8>,
    },
    ClientHash {
        cipher: SessionCipher,
        expected: Vec<u8>,
        plain: Vec<u8>,
    },
    Credentials {
        cipher: SessionCipher,
        plain: Vec<u8>,
    },
    /// Done, or failed: nothing more is accepted.
    Over,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::ClientKey => "ClientKey",
            Self::ClientRandom { .. } => "ClientRandom",
            Self::ClientHash { .. } => "ClientHash",
            Self::Credentials { .. } => "Credentials",
            Self::Over => "Over",
        }
    }
}

/// What one step of the handshake did with the input it was given.
enum Step {
    /// Not enough input for the rest of this step; `used` bytes (whole records) were taken.
    Wait { state: State, used: usize },
    /// The step is complete after `used` bytes; go on with `state`.
    Next { state: State, used: usize },
    /// The credentials are in.
    Done { used: usize, credentials: Credentials, cipher: SessionCipher },
}

/// The server side of an RSA-AES handshake, from the security type's selection to the
/// credentials. Feed it the client's bytes with [`process`](Self::process) until it returns them.
pub struct Ra2Handshake {
    kind: Ra2Kind,
    asked: CredentialKind,
    secret: ServerSecret,
    /// Our key message, which both key hashes cover.
    server_key_msg: Vec<u8>,
    /// Our modulus's size in bytes: the length of the client's encrypted random.
    modulus_len: usize,
    state: State,
}

/// Shows where the handshake is, never key material.
impl fmt::Debug for Ra2Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ra2Handshake")
            .field("kind", &self.kind)
            .field("asked", &self.asked)
            .field("state", &self.state.name())
            .finish()
    }
}

impl Ra2Handshake {
    /// Starts the handshake once the client has chosen `kind`: appends our public key message to
    /// `out`. `asked` is what the client will be asked for. Fails only if `server_key` is outside
    /// 1024..=8192 bits (see [`check_server_key`]).
    pub fn start(
        kind: Ra2Kind,
        server_key: &RsaPrivateKey,
        asked: CredentialKind,
        out: &mut Vec<u8>,
    ) -> Result<Self, Ra2Error> {
        Self::with_secret(kind, server_key, ServerSecret::Key(Box::new(server_key.clone())), asked, out)
    }

    fn with_secret(
        kind: Ra2Kind,
        public: &impl PublicKeyParts,
        secret: ServerSecret,
        asked: CredentialKind,
        out: &mut Vec<u8>,
    ) -> Result<Self, Ra2Error> {
        check_server_key(public)?;
        let server_key_msg = key_message(public);
        out.extend_from_slice(&server_key_msg);
        Ok(Self { kind, asked, secret, server_key_msg, modulus_len: public.size(), state: State::ClientKey })
    }

    /// The handshake's security type.
    pub fn kind(&self) -> Ra2Kind {
        self.kind
    }

    /// Takes the client's bytes at the front of `buf` and appends our answers to `out`. Returns
    /// how many bytes of `buf` were used (drop them; keep the rest for the next call) and, once
    /// the client's credentials are in, the credentials and the [`SessionCipher`]. The cipher's
    /// counters continue from the handshake's own records: for RA2 and RA2_256 use it for the
    /// SecurityResult and everything after; for the "ne" kinds drop it. Bytes after the
    /// credentials' record are left unused in `buf`.
    ///
    /// Bytes are used a whole message at a time before the keys are set, and a whole record at a
    /// time after (a message may span records and a record may hold several messages: the spec
    /// makes the record layer a byte stream). Anything incomplete just waits for more. Every
    /// length the client sends is bounded before anything is allocated or computed from it.
    ///
    /// A client random that fails to decrypt, or decrypts to the wrong length, is not reported:
    /// a random one is used in its place, so the keys differ from the client's and its hash record
    /// fails with [`Ra2Error::RecordAuthentication`], as if its random had decrypted but to
    /// something else. Failing right there would tell a client whether its ciphertext had valid
    /// PKCS#1 v1.5 padding: Bleichenbacher's oracle, which TigerVNC's server offers.
    ///
    /// After an error, or once the credentials were returned, every call fails with
    /// [`Ra2Error::Finished`].
    pub fn process<R: CryptoRngCore>(
        &mut self,
        buf: &[u8],
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<(Credentials, SessionCipher)>), Ra2Error> {
        let mut consumed = 0;
        loop {
            let rest = buf.get(consumed..).unwrap_or_default();
            // On an error the state stays `Over`.
            let state = std::mem::replace(&mut self.state, State::Over);
            match self.step(state, rest, rng, out)? {
                Step::Wait { state, used } => {
                    self.state = state;
                    return Ok((consumed + used, None));
                }
                Step::Next { state, used } => {
                    self.state = state;
                    consumed += used;
                }
                Step::Done { used, credentials, cipher } => {
                    return Ok((consumed + used, Some((credentials, cipher))));
                }
            }
        }
    }

    fn step<R: CryptoRngCore>(
        &self,
        state: State,
        buf: &[u8],
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<Step, Ra2Error> {
        match state {
            State::ClientKey => self.client_key(buf, rng, out),
            State::ClientRandom { client_key_msg, server_random } => {
                self.client_random(buf, client_key_msg, server_random, rng, out)
            }
            State::ClientHash { mut cipher, expected, mut plain } => {
                let used = cipher.open_until(buf, &mut plain, expected.len())?;
                let Some(received) = plain.get(..expected.len()) else {
                    return Ok(Step::Wait { state: State::ClientHash { cipher, expected, plain }, used });
                };
                if !bool::from(received.ct_eq(&expected)) {
                    return Err(Ra2Error::HashMismatch);
                }
                plain.drain(..expected.len());
                // Its own record: noVNC reads the subtype as a record of exactly one byte.
                cipher.seal(&[self.asked.subtype()], out);
                Ok(Step::Next { state: State::Credentials { cipher, plain }, used })
            }
            State::Credentials { mut cipher, mut plain } => {
                let mut used = 0;
                loop {
                    if let Some((credentials, len)) = parse_credentials(&plain) {
                        if plain.len() != len {
                            return Err(Ra2Error::TrailingData);
                        }
                        return Ok(Step::Done { used, credentials, cipher });
                    }
                    // One record at a time, so that nothing after the credentials is taken.
                    match cipher.open_record(buf.get(used..).unwrap_or_default(), &mut plain)? {
                        Some(n) => used += n,
                        None => return Ok(Step::Wait { state: State::Credentials { cipher, plain }, used }),
                    }
                }
            }
            State::Over => Err(Ra2Error::Finished),
        }
    }

    /// Step 2, and step 3 in answer.
    fn client_key<R: CryptoRngCore>(&self, buf: &[u8], rng: &mut R, out: &mut Vec<u8>) -> Result<Step, Ra2Error> {
        let Some(bits) = be_u32(buf) else {
            return Ok(Step::Wait { state: State::ClientKey, used: 0 });
        };
        // Before anything else: this is what makes the rest of the message bounded.
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
            return Err(Ra2Error::ClientKeySize { bits });
        }
        let size = bits.div_ceil(8) as usize;
        let len = 4 + 2 * size;
        let Some((n, e)) = buf.get(4..len).and_then(|key| key.split_at_checked(size)) else {
            return Ok(Step::Wait { state: State::ClientKey, used: 0 });
        };
        let client_key = parse_client_key(n, e)?;

        let server_random = random_bytes(rng, self.kind.random_len());
        let encrypted =
            client_key.encrypt(rng, Pkcs1v15Encrypt, &server_random).map_err(|_| Ra2Error::ClientKeyInvalid)?;
        // The ciphertext has the modulus's byte size, at most 1024 bytes.
        let encrypted_len = u16::try_from(encrypted.len()).map_err(|_| Ra2Error::ClientKeyInvalid)?;
        out.extend_from_slice(&encrypted_len.to_be_bytes());
        out.extend_from_slice(&encrypted);

        let client_key_msg = buf.get(..len).unwrap_or_default().to_vec();
        Ok(Step::Next { state: State::ClientRandom { client_key_msg, server_random }, used: len })
    }

    /// Step 4, and our hash (step 5) in answer.
    fn client_random<R: CryptoRngCore>(
        &self,
        buf: &[u8],
        client_key_msg: Vec<u8>,
        server_random: Vec<u8>,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<Step, Ra2Error> {
        let wait = |client_key_msg, server_random| {
            Ok(Step::Wait { state: State::ClientRandom { client_key_msg, server_random }, used: 0 })
        };
        let Some(len) = be_u16(buf) else {
            return wait(client_key_msg, server_random);
        };
        let expected = self.modulus_len;
        if usize::from(len) != expected {
            return Err(Ra2Error::RandomLength { got: len, expected });
        }
        let Some(encrypted) = buf.get(2..2 + expected) else {
            return wait(client_key_msg, server_random);
        };
        let client_random = self.decrypt_client_random(encrypted, rng);

        let kind = self.kind;
        let mut cipher = SessionCipher::new(kind, &server_random, &client_random);
        let server_hash = kind.hash(&[&self.server_key_msg, &client_key_msg]);
        let expected_hash = kind.hash(&[&client_key_msg, &self.server_key_msg]);
        // Its own record: noVNC reads the hash as a record of exactly the hash's length.
        cipher.seal(&server_hash, out);
        let state = State::ClientHash { cipher, expected: expected_hash, plain: Vec::new() };
        Ok(Step::Next { state, used: 2 + expected })
    }

    /// The client random, or a random stand-in if it does not decrypt to the right length (see
    /// [`process`](Self::process) for why this is not an error).
    fn decrypt_client_random<R: CryptoRngCore>(&self, encrypted: &[u8], rng: &mut R) -> Vec<u8> {
        let len = self.kind.random_len();
        match &self.secret {
            // Blinded: the decryption's timing then depends less on the ciphertext.
            ServerSecret::Key(key) => match key.decrypt_blinded(rng, Pkcs1v15Encrypt, encrypted) {
                Ok(random) if random.len() == len => random,
                _ => random_bytes(rng, len),
            },
            #[cfg(test)]
            ServerSecret::KnownClientRandom(random) => random.clone(),
        }
    }
}

/// An AES-EAX key of either size.
#[derive(Clone)]
enum RecordKey {
    Aes128(GenericArray<u8, <Aes128 as aes::cipher::KeySizeUser>::KeySize>),
    Aes256(GenericArray<u8, <Aes256 as aes::cipher::KeySizeUser>::KeySize>),
}

/// One direction of the record layer: its key and its record counter, which is the EAX nonce
/// (16 bytes, little-endian, from 0, one per record).
struct Direction {
    key: RecordKey,
    counter: [u8; 16],
}

impl Direction {
    /// The key from the spec's H output: its first 16 bytes (SHA-1's 20 cut, for AES-128) or all
    /// 32 (SHA-256, for AES-256).
    fn new(kind: Ra2Kind, digest: &[u8]) -> Self {
        let key = if kind.is_256() {
            let mut key = [0u8; 32];
            key.iter_mut().zip(digest).for_each(|(k, d)| *k = *d);
            RecordKey::Aes256(key.into())
        } else {
            let mut key = [0u8; 16];
            key.iter_mut().zip(digest).for_each(|(k, d)| *k = *d);
            RecordKey::Aes128(key.into())
        };
        Self { key, counter: [0; 16] }
    }

    /// Next record's nonce: the counter plus one, as a 128-bit little-endian integer.
    fn advance(&mut self) {
        for byte in &mut self.counter {
            *byte = byte.wrapping_add(1);
            if *byte != 0 {
                break;
            }
        }
    }
}

/// The RSA-AES record layer: AES-EAX records of a `u16` big-endian plaintext length (which is
/// also the EAX associated data), the ciphertext and a 16-byte tag, with a record counter per
/// direction as the nonce. The spec treats it as a byte stream under RFB, like TLS: a record is
/// not a message.
///
/// Not `Clone` on purpose: two copies would encrypt different records under the same nonce.
pub struct SessionCipher {
    /// Server to client.
    seal: Direction,
    /// Client to server.
    open: Direction,
}

/// Counters only, never keys.
impl fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCipher")
            .field("aes256", &matches!(self.seal.key, RecordKey::Aes256(_)))
            .field("sealed", &u128::from_le_bytes(self.seal.counter))
            .field("opened", &u128::from_le_bytes(self.open.counter))
            .finish()
    }
}

impl SessionCipher {
    /// Client→server key `H(server random ‖ client random)`, server→client key
    /// `H(client random ‖ server random)` (TigerVNC's `setCipher`: its `AESInStream` gets the
    /// first, its `AESOutStream` the second).
    fn new(kind: Ra2Kind, server_random: &[u8], client_random: &[u8]) -> Self {
        let client_to_server = kind.hash(&[server_random, client_random]);
        let server_to_client = kind.hash(&[client_random, server_random]);
        Self { seal: Direction::new(kind, &server_to_client), open: Direction::new(kind, &client_to_server) }
    }

    /// Appends `plaintext` to `out` as records of at most [`MAX_RECORD_PAYLOAD`] bytes each;
    /// nothing for an empty `plaintext`. Each record uses up one nonce.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        out.reserve(plaintext.len() + plaintext.len().div_ceil(MAX_RECORD_PAYLOAD) * RECORD_OVERHEAD);
        for chunk in plaintext.chunks(MAX_RECORD_PAYLOAD) {
            self.seal_record(chunk, out);
        }
    }

    fn seal_record(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        // `seal` cuts at MAX_RECORD_PAYLOAD, which fits.
        let header = (chunk.len() as u16).to_be_bytes();
        out.extend_from_slice(&header);
        let start = out.len();
        out.extend_from_slice(chunk);
        let body = &mut out[start..];
        let nonce = GenericArray::from(self.seal.counter);
        // The online API because its encryption cannot fail, where `AeadInPlace`'s returns an
        // error for inputs over 64 GiB, which would need handling that can never run.
        let tag = match &self.seal.key {
            RecordKey::Aes128(key) => {
                let mut eax = EaxOnline::<Aes128, Encrypt>::with_key_and_nonce(key, &nonce);
                eax.update_assoc(&header);
                eax.encrypt(body);
                eax.finish()
            }
            RecordKey::Aes256(key) => {
                let mut eax = EaxOnline::<Aes256, Encrypt>::with_key_and_nonce(key, &nonce);
                eax.update_assoc(&header);
                eax.encrypt(body);
                eax.finish()
            }
        };
        out.extend_from_slice(&tag);
        self.seal.advance();
    }

    /// Decrypts every complete record at the front of `wire`, appending their plaintext to
    /// `plaintext`, and returns the bytes of `wire` used; an incomplete record at the end is left
    /// for the next call. A record that fails authentication is an error, and then `plaintext` is
    /// as it was before the call: close the connection. The plaintext is never longer than the
    /// input, so callers bound it by how much they read.
    pub fn open(&mut self, wire: &[u8], plaintext: &mut Vec<u8>) -> Result<usize, Ra2Error> {
        let before = plaintext.len();
        let mut used = 0;
        loop {
            match self.open_record(wire.get(used..).unwrap_or_default(), plaintext) {
                Ok(Some(n)) => used += n,
                Ok(None) => return Ok(used),
                Err(e) => {
                    plaintext.truncate(before);
                    return Err(e);
                }
            }
        }
    }

    /// Opens records until `plaintext` holds at least `need` bytes or `wire` has no complete
    /// record left; returns the bytes of `wire` used. Never opens a record it does not need.
    fn open_until(&mut self, wire: &[u8], plaintext: &mut Vec<u8>, need: usize) -> Result<usize, Ra2Error> {
        let mut used = 0;
        while plaintext.len() < need {
            match self.open_record(wire.get(used..).unwrap_or_default(), plaintext)? {
                Some(n) => used += n,
                None => break,
            }
        }
        Ok(used)
    }

    /// Opens the record at the front of `wire` if it is complete: its length (any `u16`, as
    /// TigerVNC accepts), the plaintext appended to `plaintext`, `None` if incomplete. On a bad tag
    /// `plaintext` is left as it was and the counter does not move.
    fn open_record(&mut self, wire: &[u8], plaintext: &mut Vec<u8>) -> Result<Option<usize>, Ra2Error> {
        let Some(len) = be_u16(wire) else {
            return Ok(None);
        };
        let len = usize::from(len);
        let (Some(ciphertext), Some(tag)) = (wire.get(2..2 + len), wire.get(2 + len..2 + len + TAG_LEN)) else {
            return Ok(None);
        };
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Ra2Error::RecordAuthentication)?;
        let tag = GenericArray::from(tag);
        let header = wire.get(..2).unwrap_or_default();
        let nonce = GenericArray::from(self.open.counter);
        let start = plaintext.len();
        plaintext.extend_from_slice(ciphertext);
        let body = &mut plaintext[start..];
        // Checks the tag before it decrypts anything, in constant time.
        let result = match &self.open.key {
            RecordKey::Aes128(key) => Eax::<Aes128>::new(key).decrypt_in_place_detached(&nonce, header, body, &tag),
            RecordKey::Aes256(key) => Eax::<Aes256>::new(key).decrypt_in_place_detached(&nonce, header, body, &tag),
        };
        if result.is_err() {
            plaintext.truncate(start);
            return Err(Ra2Error::RecordAuthentication);
        }
        self.open.advance();
        Ok(Some(RECORD_OVERHEAD + len))
    }
}

/// Shared with the connection's tests, which run the login through `ServerConnection`.
#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use rand_core::{CryptoRng, RngCore};
    use rsa::traits::PrivateKeyParts;

    use super::*;

    const TEST_KEYS: &str = include_str!("rsa_aes/test_keys.txt");
    const NOVNC: &str = include_str!("rsa_aes/novnc_ra2ne.txt");

    /// A `process` result without the cipher, which cannot be compared.
    fn summary(
        result: Result<(usize, Option<(Credentials, SessionCipher)>), Ra2Error>,
    ) -> Result<(usize, bool), Ra2Error> {
        result.map(|(used, done)| (used, done.is_some()))
    }

    fn hex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2), "odd hex length");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    /// The item `name` of a test data file (lines of `name hex`).
    fn item(data: &str, name: &str) -> Vec<u8> {
        let line = data.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("{name}"));
        hex(line.split(' ').nth(1).expect("value"))
    }

    fn private_key(data: &str, name: &str) -> RsaPrivateKey {
        let part = |c: &str| BigUint::from_bytes_be(&item(data, &format!("{name}.{c}")));
        RsaPrivateKey::from_components(part("n"), part("e"), part("d"), vec![part("p"), part("q")]).expect("key")
    }

    /// Keys come from a file: generating them is slow in debug builds.
    pub(crate) fn server_2048() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| private_key(TEST_KEYS, "server2048"))
    }

    fn server_1024() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| private_key(TEST_KEYS, "server1024"))
    }

    pub(crate) fn client_1024() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| private_key(TEST_KEYS, "client1024"))
    }

    /// noVNC's client key from its RA2ne test (2048 bits).
    fn novnc_client_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| private_key(NOVNC, "clientKey"))
    }

    /// Deterministic "CSPRNG" for tests: the bytes of `script` first (to make the server pick a
    /// known random), then a seeded fastrand.
    pub(crate) struct TestRng {
        script: Vec<u8>,
        rng: fastrand::Rng,
    }

    impl TestRng {
        pub(crate) fn new(seed: u64) -> Self {
            Self { script: Vec::new(), rng: fastrand::Rng::with_seed(seed) }
        }

        fn scripted(seed: u64, script: &[u8]) -> Self {
            Self { script: script.to_vec(), ..Self::new(seed) }
        }
    }

    impl RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }

        fn next_u64(&mut self) -> u64 {
            let mut b = [0; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }

        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for d in dest {
                *d = if self.script.is_empty() { self.rng.u8(..) } else { self.script.remove(0) };
            }
        }

        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl CryptoRng for TestRng {}

    fn is_256(kind: Ra2Kind) -> bool {
        matches!(kind, Ra2Kind::Ra2_256 | Ra2Kind::Ra2ne_256)
    }

    /// The spec's H, written separately from the server's (one-shot over a concatenation).
    fn h(kind: Ra2Kind, data: &[u8]) -> Vec<u8> {
        if is_256(kind) { Sha256::digest(data).to_vec() } else { Sha1::digest(data).to_vec() }
    }

    /// One direction of the test client's record layer: a `u128` counter, the AEAD API.
    struct ClientDir {
        key: Vec<u8>,
        counter: u128,
    }

    impl ClientDir {
        pub(crate) fn seal(&mut self, data: &[u8]) -> Vec<u8> {
            assert!(data.len() <= 0xffff);
            let header = (data.len() as u16).to_be_bytes();
            let nonce = self.counter.to_le_bytes();
            let nonce = GenericArray::from_slice(&nonce);
            let mut body = data.to_vec();
            let tag = if self.key.len() == 16 {
                Eax::<Aes128>::new_from_slice(&self.key).unwrap().encrypt_in_place_detached(nonce, &header, &mut body)
            } else {
                Eax::<Aes256>::new_from_slice(&self.key).unwrap().encrypt_in_place_detached(nonce, &header, &mut body)
            }
            .unwrap();
            self.counter += 1;
            [&header[..], &body, &tag].concat()
        }

        /// The first record of `wire` if complete: its plaintext and length. Panics on a bad tag.
        fn open(&mut self, wire: &[u8]) -> Option<(Vec<u8>, usize)> {
            if wire.len() < 2 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([wire[0], wire[1]]));
            if wire.len() < 2 + len + 16 {
                return None;
            }
            let nonce = self.counter.to_le_bytes();
            let nonce = GenericArray::from_slice(&nonce);
            let tag = GenericArray::from_slice(&wire[2 + len..2 + len + 16]);
            let mut body = wire[2..2 + len].to_vec();
            if self.key.len() == 16 {
                Eax::<Aes128>::new_from_slice(&self.key).unwrap().decrypt_in_place_detached(
                    nonce,
                    &wire[..2],
                    &mut body,
                    tag,
                )
            } else {
                Eax::<Aes256>::new_from_slice(&self.key).unwrap().decrypt_in_place_detached(
                    nonce,
                    &wire[..2],
                    &mut body,
                    tag,
                )
            }
            .expect("server's record authenticates");
            self.counter += 1;
            Some((body, 2 + len + 16))
        }
    }

    /// An RSA-AES client written from the spec, sharing no code with the server above.
    pub(crate) struct Client {
        kind: Ra2Kind,
        key: RsaPrivateKey,
        server_msg: Vec<u8>,
        client_msg: Vec<u8>,
        random: Vec<u8>,
        /// Bytes from the server not yet read.
        pub(crate) inbox: Vec<u8>,
        /// Decrypted bytes from the server not yet read.
        plain: Vec<u8>,
        send: Option<ClientDir>,
        recv: Option<ClientDir>,
    }

    impl Client {
        /// Reads the server's key message; returns the client and its first flight (its key
        /// message and its encrypted random, sent together as TigerVNC and noVNC do).
        pub(crate) fn hello(
            kind: Ra2Kind,
            key: &RsaPrivateKey,
            server_msg: &[u8],
            rng: &mut TestRng,
        ) -> (Self, Vec<u8>) {
            let bits = u32::from_be_bytes(server_msg[..4].try_into().unwrap());
            assert!((1024..=8192).contains(&bits), "server key of {bits} bits");
            let size = bits.div_ceil(8) as usize;
            assert_eq!(server_msg.len(), 4 + 2 * size);
            let n = BigUint::from_bytes_be(&server_msg[4..4 + size]);
            let e = BigUint::from_bytes_be(&server_msg[4 + size..]);
            let server_key = RsaPublicKey::new_with_max_size(n, e, 8192).unwrap();

            let size = key.size();
            let mut client_msg = ((size * 8) as u32).to_be_bytes().to_vec();
            for part in [key.n(), key.e()] {
                let bytes = part.to_bytes_be();
                client_msg.extend(std::iter::repeat_n(0, size - bytes.len()));
                client_msg.extend(bytes);
            }
            let mut random = vec![0; if is_256(kind) { 32 } else { 16 }];
            rng.fill_bytes(&mut random);
            let encrypted = server_key.encrypt(rng, Pkcs1v15Encrypt, &random).unwrap();
            let mut flight = client_msg.clone();
            flight.extend((encrypted.len() as u16).to_be_bytes());
            flight.extend(encrypted);
            let client = Client {
                kind,
                key: key.clone(),
                server_msg: server_msg.to_vec(),
                client_msg,
                random,
                inbox: Vec::new(),
                plain: Vec::new(),
                send: None,
                recv: None,
            };
            (client, flight)
        }

        /// Reads the server's encrypted random, sets the keys; returns the client's hash record.
        pub(crate) fn read_server_random(&mut self) -> Vec<u8> {
            let len = usize::from(u16::from_be_bytes([self.inbox[0], self.inbox[1]]));
            assert_eq!(len, self.key.size(), "server random length");
            let encrypted: Vec<u8> = self.inbox.drain(..2 + len).skip(2).collect();
            let server_random = self.key.decrypt(Pkcs1v15Encrypt, &encrypted).unwrap();
            assert_eq!(server_random.len(), self.random.len());
            let key_len = if is_256(self.kind) { 32 } else { 16 };
            let to_server = h(self.kind, &[&server_random[..], &self.random].concat());
            let from_server = h(self.kind, &[&self.random[..], &server_random].concat());
            self.send = Some(ClientDir { key: to_server[..key_len].to_vec(), counter: 0 });
            self.recv = Some(ClientDir { key: from_server[..key_len].to_vec(), counter: 0 });
            self.seal(&self.hash())
        }

        /// H(ClientPublicKey ‖ ServerPublicKey).
        fn hash(&self) -> Vec<u8> {
            h(self.kind, &[&self.client_msg[..], &self.server_msg].concat())
        }

        pub(crate) fn seal(&mut self, data: &[u8]) -> Vec<u8> {
            self.send.as_mut().unwrap().seal(data)
        }

        pub(crate) fn read_plain(&mut self, n: usize) -> Vec<u8> {
            while self.plain.len() < n {
                let (plain, used) = self.recv.as_mut().unwrap().open(&self.inbox).expect("a complete record");
                self.inbox.drain(..used);
                self.plain.extend(plain);
            }
            self.plain.drain(..n).collect()
        }

        pub(crate) fn check_server_hash(&mut self) {
            let want = h(self.kind, &[&self.server_msg[..], &self.client_msg].concat());
            assert_eq!(self.read_plain(want.len()), want, "server hash");
        }

        pub(crate) fn read_subtype(&mut self) -> u8 {
            self.read_plain(1)[0]
        }

        pub(crate) fn credentials_plain(user: &[u8], password: &[u8]) -> Vec<u8> {
            let mut plain = vec![user.len() as u8];
            plain.extend(user);
            plain.push(password.len() as u8);
            plain.extend(password);
            plain
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Feed {
        All,
        Bytewise,
        Chunks(u64),
    }

    /// Gives `input` to the server as `how` says, checking at every call that it used no more
    /// than it had and that nothing was answered to an input it did not use. Returns what the
    /// server returned last and how many bytes of `input` it did not use.
    fn feed_some(
        server: &mut Ra2Handshake,
        input: &[u8],
        how: Feed,
        rng: &mut TestRng,
        out: &mut Vec<u8>,
    ) -> Result<(Option<(Credentials, SessionCipher)>, usize), Ra2Error> {
        let mut pending = Vec::new();
        let mut sizes = match how {
            Feed::Chunks(seed) => Some(fastrand::Rng::with_seed(seed)),
            _ => None,
        };
        let mut pos = 0;
        while pos < input.len() {
            let n = match how {
                Feed::All => input.len(),
                Feed::Bytewise => 1,
                Feed::Chunks(_) => sizes.as_mut().unwrap().usize(1..=97).min(input.len() - pos),
            };
            pending.extend_from_slice(&input[pos..pos + n]);
            pos += n;
            let out_before = out.len();
            let (used, done) = server.process(&pending, rng, out)?;
            assert!(used <= pending.len());
            if used == 0 {
                assert_eq!(out.len(), out_before, "answered without using input");
            }
            pending.drain(..used);
            if done.is_some() {
                return Ok((done, pending.len() + input.len() - pos));
            }
        }
        Ok((None, pending.len()))
    }

    /// [`feed_some`] for input that is whole messages: the server must use all of it.
    fn feed(
        server: &mut Ra2Handshake,
        input: &[u8],
        how: Feed,
        rng: &mut TestRng,
        out: &mut Vec<u8>,
    ) -> Result<Option<(Credentials, SessionCipher)>, Ra2Error> {
        let (done, left) = feed_some(server, input, how, rng, out)?;
        assert_eq!(left, 0, "input left unused");
        Ok(done)
    }

    struct Outcome {
        credentials: Credentials,
        cipher: SessionCipher,
        client: Client,
    }

    /// A whole handshake against the test client.
    fn handshake(
        kind: Ra2Kind,
        server_key: &RsaPrivateKey,
        asked: CredentialKind,
        how: Feed,
        user: &[u8],
        password: &[u8],
    ) -> Outcome {
        let mut rng = TestRng::new(1);
        let mut client_rng = TestRng::new(2);
        let mut out = Vec::new();
        let mut server = Ra2Handshake::start(kind, server_key, asked, &mut out).unwrap();
        assert_eq!(server.kind(), kind);
        let (mut client, flight) = Client::hello(kind, client_1024(), &out, &mut client_rng);
        out.clear();

        assert!(feed(&mut server, &flight, how, &mut rng, &mut out).unwrap().is_none());
        client.inbox.append(&mut out);
        let flight = client.read_server_random();
        // The server sent its hash without waiting for the client's.
        client.check_server_hash();
        assert!(client.inbox.is_empty());

        assert!(feed(&mut server, &flight, how, &mut rng, &mut out).unwrap().is_none());
        client.inbox.append(&mut out);
        assert_eq!(client.read_subtype(), asked.subtype());
        assert!(client.inbox.is_empty() && client.plain.is_empty());

        let user = if asked == CredentialKind::UserAndPassword { user } else { b"" };
        let flight = client.seal(&Client::credentials_plain(user, password));
        let (credentials, cipher) = feed(&mut server, &flight, how, &mut rng, &mut out).unwrap().expect("done");
        assert!(out.is_empty());
        assert!(matches!(server.process(&[], &mut rng, &mut out), Err(Ra2Error::Finished)));
        Outcome { credentials, cipher, client }
    }

    /// Records both ways on the session cipher the handshake returned.
    fn check_session(outcome: &mut Outcome) {
        let Outcome { cipher, client, .. } = outcome;
        // Server to client: the SecurityResult, then something that takes three records.
        let big: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut wire = Vec::new();
        cipher.seal(&0u32.to_be_bytes(), &mut wire);
        cipher.seal(&big, &mut wire);
        assert_eq!(wire.len(), 4 + big.len() + 4 * RECORD_OVERHEAD);
        client.inbox.extend(&wire);
        assert_eq!(client.read_plain(4), [0, 0, 0, 0]);
        assert_eq!(client.read_plain(big.len()), big);
        assert!(client.inbox.is_empty());

        // Client to server, given to `open` a byte at a time.
        let mut wire = client.seal(b"\x03\x01\x00\x00\x00\x00\x04\x00\x03\x00");
        wire.extend(client.seal(b""));
        wire.extend(client.seal(&big[..9000]));
        let mut plain = Vec::new();
        let mut pending = Vec::new();
        for &b in &wire {
            pending.push(b);
            let used = cipher.open(&pending, &mut plain).unwrap();
            pending.drain(..used);
        }
        assert!(pending.is_empty());
        assert_eq!(plain[..10], *b"\x03\x01\x00\x00\x00\x00\x04\x00\x03\x00");
        assert_eq!(plain[10..], big[..9000]);
        // And all at once.
        let wire = [client.seal(b"one"), client.seal(b"two")].concat();
        let mut plain = Vec::new();
        assert_eq!(cipher.open(&wire, &mut plain).unwrap(), wire.len());
        assert_eq!(plain, b"onetwo");
    }

    #[test]
    fn full_handshakes_every_kind_credential_kind_and_feeding() {
        for kind in Ra2Kind::ALL {
            for asked in [CredentialKind::UserAndPassword, CredentialKind::PasswordOnly] {
                for how in [Feed::All, Feed::Bytewise, Feed::Chunks(kind.security_type().into())] {
                    let user = "jürgen".as_bytes();
                    let password = b"correct horse";
                    let mut outcome = handshake(kind, server_2048(), asked, how, user, password);
                    let want_user = if asked == CredentialKind::UserAndPassword { "jürgen" } else { "" };
                    assert_eq!(outcome.credentials.username, want_user, "{kind:?} {asked:?} {how:?}");
                    assert_eq!(outcome.credentials.password, password);
                    check_session(&mut outcome);
                }
            }
        }
    }

    #[test]
    fn longest_credentials_and_smallest_server_key() {
        let user = vec![b'u'; 255];
        let password: Vec<u8> = (0..=254).collect();
        for kind in Ra2Kind::ALL {
            let outcome = handshake(kind, server_1024(), CredentialKind::UserAndPassword, Feed::All, &user, &password);
            assert_eq!(outcome.credentials.username.as_bytes(), &user[..]);
            assert_eq!(outcome.credentials.password, password);
        }
    }

    /// noVNC's own RA2ne test transcript (tests/test.rfb.js), replayed against the server. Its
    /// server's private key is not in the test, so the client random's plaintext stands in for
    /// its decryption (`KnownClientRandom`); everything else is the real code path. The server
    /// random is made the one of the transcript, which it recovers with noVNC's client key.
    #[test]
    fn novnc_transcript() {
        let fixture = |name| item(NOVNC, name);
        let server_msg = fixture("serverPublicKey");
        let server_key = RsaPublicKey::new(
            BigUint::from_bytes_be(&server_msg[4..260]),
            BigUint::from_bytes_be(&server_msg[260..516]),
        )
        .unwrap();
        let novnc_key = novnc_client_key();
        assert_eq!(novnc_key.n().to_bytes_be(), fixture("clientPublicKey")[4..260]);
        let server_random = novnc_key.decrypt(Pkcs1v15Encrypt, &fixture("serverRandom")[2..]).unwrap();
        assert_eq!(server_random.len(), 16);

        let mut rng = TestRng::scripted(3, &server_random);
        let mut out = Vec::new();
        let secret = ServerSecret::KnownClientRandom(fixture("clientRandomPlain"));
        let mut server =
            Ra2Handshake::with_secret(Ra2Kind::Ra2ne, &server_key, secret, CredentialKind::PasswordOnly, &mut out)
                .unwrap();
        // Our key message is noVNC's, byte for byte (exponent padded to the modulus's size).
        assert_eq!(out, server_msg);
        out.clear();

        // noVNC sends its key, its random and its hash without waiting for ours.
        let flight = [fixture("clientPublicKey"), fixture("clientRandom"), fixture("clientHash")].concat();
        let (used, done) = server.process(&flight, &mut rng, &mut out).unwrap();
        assert_eq!(used, flight.len());
        assert!(done.is_none());
        // Our random: its padding is ours, but noVNC's key decrypts it to the transcript's.
        assert_eq!(out[..2], [1, 0]);
        assert_eq!(novnc_key.decrypt(Pkcs1v15Encrypt, &out[2..258]).unwrap(), server_random);
        // Our hash record and subtype record are the transcript's, byte for byte: key derivation,
        // key hash, EAX, nonces and framing all agree with noVNC.
        assert_eq!(out[258..], [fixture("serverHash"), fixture("subType")].concat());

        out.clear();
        let credentials = fixture("credentialsData");
        let (used, done) = server.process(&credentials, &mut rng, &mut out).unwrap();
        assert_eq!(used, credentials.len());
        let (credentials, _) = done.expect("done");
        assert_eq!(credentials.username, "");
        assert_eq!(credentials.password, b"123456");
        assert!(out.is_empty());
    }

    /// Runs the handshake up to the client's hash record and returns everything needed to go on.
    fn up_to_client_hash(kind: Ra2Kind, server_key: &RsaPrivateKey) -> (Ra2Handshake, Client, TestRng, Vec<u8>) {
        let mut rng = TestRng::new(5);
        let mut out = Vec::new();
        let mut server = Ra2Handshake::start(kind, server_key, CredentialKind::PasswordOnly, &mut out).unwrap();
        let (mut client, flight) = Client::hello(kind, client_1024(), &out, &mut TestRng::new(6));
        out.clear();
        assert_eq!(summary(server.process(&flight, &mut rng, &mut out)).unwrap().0, flight.len());
        client.inbox.append(&mut out);
        (server, client, rng, Vec::new())
    }

    #[test]
    fn wrong_client_hash_is_refused() {
        for kind in Ra2Kind::ALL {
            let (mut server, mut client, mut rng, mut out) = up_to_client_hash(kind, server_1024());
            let _ = client.read_server_random();
            client.send.as_mut().unwrap().counter = 0;
            // A hash over the keys in the wrong order, as a client that mixed them up would send,
            // in a record that authenticates.
            let wrong = h(kind, &[&client.server_msg[..], &client.client_msg].concat());
            let record = client.seal(&wrong);
            assert_eq!(summary(server.process(&record, &mut rng, &mut out)), Err(Ra2Error::HashMismatch));
            assert!(out.is_empty(), "no subtype after a wrong hash");
            assert_eq!(summary(server.process(&record, &mut rng, &mut out)), Err(Ra2Error::Finished));
        }
    }

    #[test]
    fn tampered_client_record_is_refused() {
        let (_, mut client, _, _) = up_to_client_hash(Ra2Kind::Ra2, server_1024());
        let record = client.read_server_random();
        for i in 0..record.len() {
            for bit in [0x01, 0x80] {
                let (mut server, mut client, mut rng, mut out) = up_to_client_hash(Ra2Kind::Ra2, server_1024());
                assert_eq!(client.read_server_random(), record);
                let mut tampered = record.clone();
                tampered[i] ^= bit;
                let result = summary(server.process(&tampered, &mut rng, &mut out));
                if i < 2 && tampered[..2] > record[..2] {
                    // A longer length: the record is not complete yet.
                    assert_eq!(result, Ok((0, false)));
                } else {
                    assert_eq!(result, Err(Ra2Error::RecordAuthentication), "byte {i} bit {bit:#x}");
                }
                assert!(out.is_empty());
            }
        }
    }

    #[test]
    fn tampered_session_record_is_refused() {
        let mut outcome =
            handshake(Ra2Kind::Ra2_256, server_1024(), CredentialKind::PasswordOnly, Feed::All, b"", b"pw");
        let good = outcome.client.seal(b"first");
        let mut bad = outcome.client.seal(b"second");
        bad[4] ^= 0x10;
        let mut plain = b"kept".to_vec();
        let wire = [good, bad].concat();
        assert_eq!(outcome.cipher.open(&wire, &mut plain), Err(Ra2Error::RecordAuthentication));
        assert_eq!(plain, b"kept", "nothing of a failed call is kept");
    }

    /// A client random the server cannot decrypt (here: random bytes) is not reported; the server
    /// answers as usual and the client's first record fails instead.
    #[test]
    fn undecryptable_client_random_fails_at_the_client_hash() {
        let mut rng = TestRng::new(8);
        let mut out = Vec::new();
        let mut server =
            Ra2Handshake::start(Ra2Kind::Ra2ne, server_1024(), CredentialKind::PasswordOnly, &mut out).unwrap();
        let (mut client, mut flight) = Client::hello(Ra2Kind::Ra2ne, client_1024(), &out, &mut TestRng::new(9));
        let random_at = flight.len() - 128;
        for b in &mut flight[random_at + 1..] {
            *b = b.wrapping_mul(31).wrapping_add(7);
        }
        flight[random_at] = 0; // stay below the modulus
        out.clear();
        assert_eq!(summary(server.process(&flight, &mut rng, &mut out)).unwrap(), (flight.len(), false));
        // The random message and a hash record of the usual size.
        assert_eq!(out.len(), 2 + 128 + RECORD_OVERHEAD + 20);
        client.inbox.append(&mut out);
        let record = client.read_server_random();
        assert_eq!(summary(server.process(&record, &mut rng, &mut out)), Err(Ra2Error::RecordAuthentication));
    }

    #[test]
    fn client_key_size_is_checked_on_its_header_alone() {
        for bits in [0, 1, 512, 1023, 8193, 16384, 0x10000, u32::MAX] {
            let mut out = Vec::new();
            let mut server =
                Ra2Handshake::start(Ra2Kind::Ra2, server_1024(), CredentialKind::PasswordOnly, &mut out).unwrap();
            out.clear();
            let result = summary(server.process(&bits.to_be_bytes(), &mut TestRng::new(0), &mut out));
            assert_eq!(result, Err(Ra2Error::ClientKeySize { bits }));
            assert!(out.is_empty());
        }
        for bits in [1024u32, 2048, 8192, 1025] {
            let mut out = Vec::new();
            let mut server =
                Ra2Handshake::start(Ra2Kind::Ra2, server_1024(), CredentialKind::PasswordOnly, &mut out).unwrap();
            out.clear();
            let mut input = bits.to_be_bytes().to_vec();
            input.extend(vec![0xff; bits.div_ceil(8) as usize * 2 - 1]);
            // One byte short of the key message: it waits.
            assert_eq!(summary(server.process(&input, &mut TestRng::new(0), &mut out)), Ok((0, false)));
            assert!(out.is_empty());
        }
    }

    #[test]
    fn invalid_client_keys_are_refused() {
        let key = client_1024();
        let size = key.size();
        let message = |bits: u32, n: &BigUint, e: &BigUint| {
            let size = bits.div_ceil(8) as usize;
            let mut msg = bits.to_be_bytes().to_vec();
            for part in [n, e] {
                let bytes = part.to_bytes_be();
                msg.extend(std::iter::repeat_n(0, size - bytes.len()));
                msg.extend(bytes);
            }
            msg
        };
        let bits = (size * 8) as u32;
        let n = key.n();
        let even = n + BigUint::from(1u8);
        let cases = [
            message(bits, &even, key.e()),
            message(bits, n, &BigUint::from(1u8)),
            message(bits, n, &BigUint::from(65536u32)),
            message(bits, n, &(BigUint::from(1u64 << 33) + BigUint::from(1u8))),
            message(bits, n, n),
            message(bits, &BigUint::from(0u8), key.e()),
            // Declared 8 bits larger than the modulus: a leading zero byte.
            message(bits + 8, n, key.e()),
        ];
        for (i, case) in cases.iter().enumerate() {
            let mut out = Vec::new();
            let mut server =
                Ra2Handshake::start(Ra2Kind::Ra2, server_1024(), CredentialKind::PasswordOnly, &mut out).unwrap();
            out.clear();
            let result = summary(server.process(case, &mut TestRng::new(0), &mut out));
            assert_eq!(result, Err(Ra2Error::ClientKeyInvalid), "case {i}");
            assert!(out.is_empty());
        }
        // The private exponent is not needed to check a key; this one is fine.
        assert!(!key.d().to_bytes_be().is_empty());
        let mut out = Vec::new();
        let mut server =
            Ra2Handshake::start(Ra2Kind::Ra2, server_1024(), CredentialKind::PasswordOnly, &mut out).unwrap();
        let good = message(bits, n, key.e());
        assert_eq!(server.process(&good, &mut TestRng::new(0), &mut Vec::new()).unwrap().0, good.len());
    }

    #[test]
    fn random_length_is_checked_before_its_body() {
        for (server_key, expected) in [(server_1024(), 128), (server_2048(), 256)] {
            for got in [0u16, 1, expected as u16 - 1, expected as u16 + 1, u16::MAX] {
                let mut rng = TestRng::new(10);
                let mut out = Vec::new();
                let mut server =
                    Ra2Handshake::start(Ra2Kind::Ra2, server_key, CredentialKind::PasswordOnly, &mut out).unwrap();
                let (client, _) = Client::hello(Ra2Kind::Ra2, client_1024(), &out, &mut TestRng::new(11));
                let mut input = client.client_msg.clone();
                input.extend(got.to_be_bytes());
                let result = summary(server.process(&input, &mut rng, &mut out));
                assert_eq!(result, Err(Ra2Error::RandomLength { got, expected }));
            }
        }
    }

    /// Every proper prefix of the client's first flight is waited on with nothing used and
    /// nothing sent, from a fresh handshake each time. (Later flights are fed a byte at a time in
    /// `full_handshakes_every_kind_credential_kind_and_feeding`, which checks the same.)
    #[test]
    fn every_truncation_of_the_first_flight_waits() {
        let mut out = Vec::new();
        Ra2Handshake::start(Ra2Kind::Ra2, server_1024(), CredentialKind::PasswordOnly, &mut out).unwrap();
        let (_, flight) = Client::hello(Ra2Kind::Ra2, client_1024(), &out, &mut TestRng::new(12));
        let key_len = 4 + 2 * 128;
        for cut in 0..flight.len() {
            let mut out = Vec::new();
            let mut server =
                Ra2Handshake::start(Ra2Kind::Ra2, server_1024(), CredentialKind::PasswordOnly, &mut out).unwrap();
            out.clear();
            let (used, done) = server.process(&flight[..cut], &mut TestRng::new(13), &mut out).unwrap();
            assert!(done.is_none());
            if cut < key_len {
                assert_eq!(used, 0, "cut at {cut}");
                assert!(out.is_empty());
            } else {
                // The key message is complete and answered; the random waits.
                assert_eq!(used, key_len, "cut at {cut}");
                assert_eq!(out.len(), 2 + 128);
            }
        }
    }

    /// The record layer is a byte stream: the hash and the credentials in one record, or the
    /// credentials spread over several records, some empty (UltraVNC writes each field apart).
    #[test]
    fn messages_and_records_need_not_line_up() {
        for kind in [Ra2Kind::Ra2ne, Ra2Kind::Ra2_256] {
            let (mut server, mut client, mut rng, mut out) = up_to_client_hash(kind, server_1024());
            let _ = client.read_server_random();
            client.send.as_mut().unwrap().counter = 0;
            let plain = [client.hash(), Client::credentials_plain(b"", b"secret")].concat();
            let record = client.seal(&plain);
            let (used, done) = server.process(&record, &mut rng, &mut out).unwrap();
            assert_eq!(used, record.len());
            assert_eq!(done.expect("done").0.password, b"secret");
            // The subtype was still sent, in its own record.
            client.inbox.append(&mut out);
            client.check_server_hash();
            assert_eq!(client.read_subtype(), 2);

            let (mut server, mut client, mut rng, mut out) = up_to_client_hash(kind, server_1024());
            let mut flight = client.read_server_random();
            let credentials = Client::credentials_plain(b"al", b"pw");
            for part in [&[][..], &credentials[..1], &[], &credentials[1..3], &credentials[3..4], &credentials[4..]] {
                flight.extend(client.seal(part));
            }
            let (used, done) = server.process(&flight, &mut rng, &mut out).unwrap();
            assert_eq!(used, flight.len());
            let credentials = done.expect("done").0;
            // A user name where none was asked for is passed on, as sent.
            assert_eq!((credentials.username.as_str(), &credentials.password[..]), ("al", &b"pw"[..]));
        }
    }

    #[test]
    fn data_after_the_credentials_in_their_record_is_refused() {
        let (mut server, mut client, mut rng, mut out) = up_to_client_hash(Ra2Kind::Ra2, server_1024());
        let mut flight = client.read_server_random();
        let mut plain = Client::credentials_plain(b"", b"pw");
        plain.push(1); // a ClientInit sent too early
        flight.extend(client.seal(&plain));
        assert_eq!(summary(server.process(&flight, &mut rng, &mut out)), Err(Ra2Error::TrailingData));
    }

    #[test]
    fn records_after_the_credentials_record_are_left_unused() {
        let (mut server, mut client, mut rng, mut out) = up_to_client_hash(Ra2Kind::Ra2, server_1024());
        let mut flight = client.read_server_random();
        flight.extend(client.seal(&Client::credentials_plain(b"", b"pw")));
        let credentials_end = flight.len();
        let next = client.seal(b"\x01");
        flight.extend(&next);
        let (used, done) = server.process(&flight, &mut rng, &mut out).unwrap();
        assert_eq!(used, credentials_end);
        let (_, mut cipher) = done.expect("done");
        let mut plain = Vec::new();
        assert_eq!(cipher.open(&next, &mut plain).unwrap(), next.len());
        assert_eq!(plain, [1]);
    }

    #[test]
    fn invalid_utf8_user_name_is_replaced_not_refused() {
        let outcome = handshake(
            Ra2Kind::Ra2,
            server_1024(),
            CredentialKind::UserAndPassword,
            Feed::All,
            b"ab\xc3", // cut inside a character, as noVNC's 255-byte cut can
            b"pw",
        );
        assert_eq!(outcome.credentials.username, "ab\u{fffd}");
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let credentials = Credentials { username: "u".into(), password: b"hunter2".to_vec() };
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("hunter2") && shown.contains("7 bytes"), "{shown}");
    }

    #[test]
    fn server_key_sizes() {
        assert_eq!(check_server_key(server_1024()), Ok(()));
        assert_eq!(check_server_key(server_2048()), Ok(()));
        let small = RsaPublicKey::new_unchecked(BigUint::from(0xffff_fffbu32), BigUint::from(65537u32));
        assert_eq!(check_server_key(&small), Err(Ra2Error::ServerKeySize { bits: 32 }));
        let mut out = Vec::new();
        let secret = ServerSecret::KnownClientRandom(vec![0; 16]);
        let result = Ra2Handshake::with_secret(Ra2Kind::Ra2, &small, secret, CredentialKind::PasswordOnly, &mut out);
        assert!(matches!(result, Err(Ra2Error::ServerKeySize { bits: 32 })));
        assert!(out.is_empty());
    }

    #[test]
    fn fingerprint_is_sha1_of_the_key_message() {
        let server_msg = item(NOVNC, "serverPublicKey");
        let key = RsaPublicKey::new(
            BigUint::from_bytes_be(&server_msg[4..260]),
            BigUint::from_bytes_be(&server_msg[260..516]),
        )
        .unwrap();
        let digest = Sha1::digest(&server_msg);
        let want = digest[..8].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join("-");
        assert_eq!(key_fingerprint(&key), want);
        assert_eq!(want.len(), 23);
    }

    #[test]
    fn kinds() {
        for kind in Ra2Kind::ALL {
            assert_eq!(Ra2Kind::from_type(kind.security_type()), Some(kind));
        }
        let types: Vec<u8> = Ra2Kind::ALL.iter().map(|k| k.security_type()).collect();
        assert_eq!(types, [129, 5, 130, 6]);
        for t in (0..=255).filter(|t| ![5, 6, 129, 130].contains(t)) {
            assert_eq!(Ra2Kind::from_type(t), None);
        }
        assert!(Ra2Kind::Ra2.encrypts_session() && Ra2Kind::Ra2_256.encrypts_session());
        assert!(!Ra2Kind::Ra2ne.encrypts_session() && !Ra2Kind::Ra2ne_256.encrypts_session());
        assert_eq!(CredentialKind::UserAndPassword.subtype(), 1);
        assert_eq!(CredentialKind::PasswordOnly.subtype(), 2);
    }

    #[test]
    fn nonce_is_a_little_endian_counter() {
        let mut d = Direction::new(Ra2Kind::Ra2, &[0; 20]);
        d.advance();
        assert_eq!(d.counter, 1u128.to_le_bytes());
        d.counter = 0x1ff_ffffu128.to_le_bytes();
        d.advance();
        assert_eq!(d.counter, 0x200_0000u128.to_le_bytes());
        d.counter = u128::MAX.to_le_bytes();
        d.advance();
        assert_eq!(d.counter, [0; 16]);
    }

    #[test]
    fn seal_cuts_records_at_the_maximum() {
        let mut cipher = SessionCipher::new(Ra2Kind::Ra2, &[1; 16], &[2; 16]);
        let mut out = Vec::new();
        cipher.seal(&[], &mut out);
        assert!(out.is_empty());
        cipher.seal(&[0; MAX_RECORD_PAYLOAD], &mut out);
        assert_eq!(out.len(), MAX_RECORD_PAYLOAD + RECORD_OVERHEAD);
        assert_eq!(out[..2], (MAX_RECORD_PAYLOAD as u16).to_be_bytes());
        out.clear();
        cipher.seal(&[0; MAX_RECORD_PAYLOAD + 1], &mut out);
        assert_eq!(out.len(), MAX_RECORD_PAYLOAD + 1 + 2 * RECORD_OVERHEAD);
        assert_eq!(u128::from_le_bytes(cipher.seal.counter), 3);
    }

    /// A record of the largest length the wire allows opens, and waits until it is complete.
    #[test]
    fn open_takes_records_up_to_u16_max() {
        let mut client = ClientDir { key: vec![9; 32], counter: 0 };
        let mut cipher = SessionCipher::new(Ra2Kind::Ra2_256, &[0; 32], &[0; 32]);
        cipher.open = Direction::new(Ra2Kind::Ra2_256, &[9; 32]);
        let record = client.seal(&vec![0x5a; 0xffff]);
        let mut plain = Vec::new();
        assert_eq!(cipher.open(&record[..record.len() - 1], &mut plain), Ok(0));
        assert!(plain.is_empty());
        assert_eq!(cipher.open(&record, &mut plain), Ok(record.len()));
        assert_eq!(plain, vec![0x5a; 0xffff]);
    }

    /// Random mutations of a valid client transcript, and valid records around random plaintext,
    /// fed in random pieces: errors are fine, panics and over-use of the input are not.
    #[test]
    fn fuzzed_client_input_never_panics() {
        const SERVER_SEED: u64 = 20;
        let kind = Ra2Kind::Ra2;
        // A valid transcript for a server whose RNG starts from SERVER_SEED.
        let (transcript, mut client) = {
            let mut rng = TestRng::new(SERVER_SEED);
            let mut out = Vec::new();
            let mut server = Ra2Handshake::start(kind, server_1024(), CredentialKind::PasswordOnly, &mut out).unwrap();
            let (mut client, first) = Client::hello(kind, client_1024(), &out, &mut TestRng::new(21));
            out.clear();
            server.process(&first, &mut rng, &mut out).unwrap();
            client.inbox.append(&mut out);
            let second = client.read_server_random();
            let third = client.seal(&Client::credentials_plain(b"", b"pw"));
            let transcript = [first, second, third].concat();
            let mut check = Ra2Handshake::start(kind, server_1024(), CredentialKind::PasswordOnly, &mut out).unwrap();
            let done = feed(&mut check, &transcript, Feed::All, &mut TestRng::new(SERVER_SEED), &mut out).unwrap();
            assert!(done.is_some(), "the transcript is valid");
            (transcript, client)
        };
        let hash_at = transcript.len() - (RECORD_OVERHEAD + 20) - (RECORD_OVERHEAD + 4);

        let mut meta = fastrand::Rng::with_seed(22);
        let mut outcomes = [0usize; 3]; // errors, waiting, done
        for round in 0..600 {
            let input = if round % 3 == 2 {
                // Valid records from the hash on, around random plaintext.
                client.send.as_mut().unwrap().counter = 0;
                let mut input = transcript[..hash_at].to_vec();
                let mut plain = if meta.u8(..) < 200 { client.hash() } else { Vec::new() };
                if meta.bool() {
                    let user: Vec<u8> = (0..meta.usize(0..=255)).map(|_| meta.u8(..)).collect();
                    let password: Vec<u8> = (0..meta.usize(0..=255)).map(|_| meta.u8(..)).collect();
                    plain.extend(Client::credentials_plain(&user, &password));
                }
                if meta.bool() {
                    plain.extend((0..meta.usize(0..600)).map(|_| meta.u8(..)));
                }
                let mut rest = &plain[..];
                while !rest.is_empty() || meta.u8(..) < 20 {
                    let n = meta.usize(0..=rest.len().min(300));
                    input.extend(client.seal(&rest[..n]));
                    rest = &rest[n..];
                }
                input
            } else {
                let mut input = if meta.u8(..) < 10 {
                    (0..meta.usize(0..2000)).map(|_| meta.u8(..)).collect()
                } else {
                    transcript.clone()
                };
                for _ in 0..meta.usize(1..=4) {
                    if input.is_empty() {
                        break;
                    }
                    let at = meta.usize(..input.len());
                    match meta.u8(..6) {
                        0 => input[at] ^= 1 << meta.u8(..8),
                        1 => input[at] = meta.u8(..),
                        2 => input.truncate(at),
                        3 => {
                            let end = (at + meta.usize(1..64)).min(input.len());
                            input.drain(at..end);
                        }
                        4 => {
                            let junk: Vec<u8> = (0..meta.usize(1..64)).map(|_| meta.u8(..)).collect();
                            input.splice(at..at, junk);
                        }
                        _ => {
                            let end = (at + meta.usize(1..64)).min(input.len());
                            let copy = input[at..end].to_vec();
                            input.splice(end..end, copy);
                        }
                    }
                }
                input
            };

            let mut out = Vec::new();
            let asked = if meta.bool() { CredentialKind::PasswordOnly } else { CredentialKind::UserAndPassword };
            let mut server = Ra2Handshake::start(kind, server_1024(), asked, &mut out).unwrap();
            let mut rng = TestRng::new(SERVER_SEED);
            match feed_some(&mut server, &input, Feed::Chunks(meta.u64(..)), &mut rng, &mut out) {
                Err(_) => {
                    outcomes[0] += 1;
                    assert_eq!(summary(server.process(&input, &mut rng, &mut out)), Err(Ra2Error::Finished));
                }
                Ok((None, _)) => outcomes[1] += 1,
                Ok((Some(_), _)) => outcomes[2] += 1,
            }
        }
        // The loop reached every outcome, so it did go past the first messages.
        assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
    }
}
