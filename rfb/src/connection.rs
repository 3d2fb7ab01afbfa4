//! One client connection as a state machine (TigerVNC's `SConnection`, without the socket):
//! ProtocolVersion → security handshake (`handshake.rs`) → ClientInit → (caller accepts) →
//! Normal.

use std::collections::VecDeque;

use crate::encoders::tight::passthrough::{self, PassthroughError};
use crate::encoders::{Encoders, jpeg, tight};
use crate::encoding::{self, ClientEncodings};
use crate::error::ProtocolError;
use crate::frame::{Frame, Rect};
use crate::messages::client::{self, ClientMessage, ParseContext};
use crate::messages::server::{self, desktop_size, fence};
use crate::pixel_format::{PixelConverter, PixelFormat};
use crate::security::offer::Methods;
use crate::security::plain::Login;
use crate::security::rsa_aes::{self, Ra2Handshake, SessionCipher};
use crate::security::{self, Transport, vnc_auth};

mod handshake;
mod update_job;

pub use update_job::{EncodedUpdate, UpdateJob};

const VERSION_LEN: usize = 12;
/// Replies (colour maps, fence answers, …) a client may have waiting unread before its further
/// messages that would add to them are held back. A client that sends but never reads then
/// costs a bounded amount of memory instead of 77 bytes of colour map per 20-byte message.
const MAX_UNSENT_REPLIES: usize = 64 * 1024;
/// Received bytes kept while messages are held back; past this the caller should stop reading.
const MAX_HELD_INPUT: usize = 64 * 1024;
const SERVER_VERSION: &[u8; VERSION_LEN] = b"RFB 003.008\n";

/// What every connection of one server shares.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Desktop name sent in ServerInit.
    pub name: String,
    /// Who may log in. With no credentials at all the server offers security type None.
    pub credentials: security::Credentials,
    /// The caller can do TLS (VeNCrypt X509 subtypes) on request; see
    /// [`ServerConnection::tls_requested`].
    pub tls: bool,
    /// Offer plain connections only logins that encrypt the session.
    pub require_encryption: bool,
    /// The key for RSA-AES logins; without one they are not offered.
    pub rsa_key: Option<rsa_aes::ServerKey>,
    /// Longer legacy ClientCutText is skipped, never buffered.
    pub max_cut_text: u32,
}

impl ServerConfig {
    fn methods(&self) -> Methods {
        Methods { tls: self.tls, rsa_aes: self.rsa_key.is_some(), require_encryption: self.require_encryption }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            name: "kvnc".into(),
            credentials: security::Credentials::default(),
            tls: false,
            require_encryption: false,
            rsa_key: None,
            max_cut_text: crate::messages::client::DEFAULT_MAX_CUT_TEXT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Full,
    ViewOnly,
}

/// What the caller must act on. Input events of view-only connections never appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Security passed. Call [`ServerConnection::accept`] to send ServerInit, or drop the
    /// connection (e.g. an exclusive client under a policy that forbids it).
    ClientInit {
        shared: bool,
        access: Access,
    },
    /// A user name and password to check against the accounts; answer with
    /// [`ServerConnection::login_checked`]. Nothing else happens until then.
    Credentials(Login),
    /// Cropped to the framebuffer; may be empty.
    UpdateRequest {
        incremental: bool,
        rect: Rect,
    },
    /// The client's pixel format changed: whatever it has on screen must be sent again.
    PixelFormatChanged(PixelFormat),
    EncodingsChanged,
    Key {
        down: bool,
        keysym: u32,
    },
    /// `keycode` is an XT scancode ("qnum"); `keysym` may be 0.
    QemuKey {
        down: bool,
        keysym: u32,
        keycode: u32,
    },
    Pointer {
        /// Bit 0 left, 1 middle, 2 right, 3/4 wheel up/down, 5/6 wheel left/right (one step =
        /// press and release), 7 back, 8 forward. Forward exists only once the client uses
        /// ExtendedMouseButtons; back is bit 7 in both forms.
        buttons: u16,
        x: u16,
        y: u16,
    },
    CutText(String),
    CutTextSkipped {
        len: u32,
        extended: bool,
    },
    /// Push updates for `rect` without waiting for requests (enable), or stop (the
    /// EndOfContinuousUpdates answer has already been written).
    ContinuousUpdates {
        enable: bool,
        rect: Rect,
    },
    /// The client answered one of our fence requests.
    FenceResponse {
        payload: Vec<u8>,
    },
    /// The client asked to resize the screen. The target decides its resolution, so answer
    /// with [`ServerConnection::write_screen_layout`] and a "prohibited" result.
    SetDesktopSize {
        width: u16,
        height: u16,
    },
}

/// An empty pseudo-rect that tells the client it may now use an extension, sent once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirmation {
    /// The client has never listed the extension.
    NotOwed,
    /// Listed: goes out with the next update.
    Owed,
    /// Sent: the client may use the extension from now on.
    Sent,
}

impl Confirmation {
    /// Called on every SetEncodings; only the first listing makes it owed.
    fn listed(&mut self, listed: bool) {
        if listed && *self == Self::NotOwed {
            *self = Self::Owed;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Version,
    /// 3.7 and later: waiting for the client's choice from our list.
    SecurityType,
    VeNCryptVersion,
    VeNCryptSubtype,
    /// Waiting for the caller to start TLS ([`ServerConnection::start_tls`]).
    TlsRequested,
    VncAuthResponse,
    PlainLogin,
    RsaAes,
    /// Waiting for [`ServerConnection::login_checked`].
    CheckingLogin,
    ClientInit,
    AwaitingAccept,
    Normal,
    Closed,
}

pub struct ServerConnection {
    config: std::sync::Arc<ServerConfig>,
    state: State,
    /// Negotiated minor version: 3, 7 or 8.
    minor: u8,
    transport: Transport,
    /// Challenges and keys; seeded by the caller, since rfb has no randomness of its own.
    rng: rand_chacha::ChaCha20Rng,
    challenge: [u8; vnc_auth::CHALLENGE_LEN],
    /// The top-level security type chosen, and its name for logs once the login is done.
    security_type: u8,
    security_name: &'static str,
    /// The VeNCrypt subtypes offered to this client, and the one it chose.
    vencrypt_offered: Vec<u32>,
    vencrypt_subtype: u32,
    username: Option<String>,
    /// An RSA-AES login under way.
    rsa_aes: Option<Box<Ra2Handshake>>,
    /// After an RSA-AES login that encrypts the session: every byte both ways goes through it.
    /// `output` then holds plaintext and `sealed` the records for the wire; `wire_input` holds
    /// received bytes short of a whole record.
    cipher: Option<SessionCipher>,
    sealed: Vec<u8>,
    wire_input: Vec<u8>,
    /// Set when the cipher starts in the middle of received bytes: the rest are records.
    input_now_sealed: bool,
    /// Reply bytes in the output not yet taken by the caller (an upper bound).
    unsent_replies: usize,
    access: Access,
    input: Vec<u8>,
    /// Bytes of a skipped cut text still to discard as they arrive.
    skip: u64,
    output: Vec<u8>,
    output_sent: usize,
    /// A buffer lent to the next update job (see `update_job.rs`).
    spare_output: Vec<u8>,
    events: VecDeque<Event>,
    width: u16,
    height: u16,
    /// Shared with an update job that is out (see `update_job.rs`).
    converter: std::sync::Arc<PixelConverter>,
    encodings: ClientEncodings,
    /// None while lent to an update job.
    encoders: Option<Encoders>,
    qemu_key_events: Confirmation,
    extended_mouse_buttons: Confirmation,
    /// The target's keyboard LEDs ([`server::led`] bits); None until the caller first says.
    led_state: Option<u8>,
    /// The LED state this client last got; None until it got one.
    led_state_sent: Option<u8>,
    /// EndOfContinuousUpdates went out once: the client may now use EnableContinuousUpdates.
    continuous_updates_confirmed: bool,
    /// Our first fence went out: the client may now send fences.
    fences_announced: bool,
    /// A client fence with SyncNext, answered once the message after it has been handled.
    sync_next_fence: Option<(u32, Vec<u8>)>,
}

impl ServerConnection {
    /// A connection that arrived over `transport`. `seed` must be fresh random bytes: every
    /// challenge and key of this connection comes from it.
    pub fn new(config: std::sync::Arc<ServerConfig>, transport: Transport, seed: [u8; 32]) -> Self {
        use rand_core::SeedableRng;
        Self {
            config,
            state: State::Version,
            minor: 8,
            transport,
            rng: rand_chacha::ChaCha20Rng::from_seed(seed),
            challenge: [0; vnc_auth::CHALLENGE_LEN],
            security_type: security::INVALID,
            security_name: "none",
            vencrypt_offered: Vec::new(),
            vencrypt_subtype: 0,
            username: None,
            rsa_aes: None,
            cipher: None,
            sealed: Vec::new(),
            wire_input: Vec::new(),
            input_now_sealed: false,
            unsent_replies: 0,
            access: Access::Full,
            input: Vec::new(),
            skip: 0,
            output: SERVER_VERSION.to_vec(),
            output_sent: 0,
            spare_output: Vec::new(),
            events: VecDeque::new(),
            width: 0,
            height: 0,
            converter: std::sync::Arc::new(PixelConverter::new(PixelFormat::NATIVE)),
            encodings: ClientEncodings::default(),
            encoders: Some(Encoders::default()),
            qemu_key_events: Confirmation::NotOwed,
            extended_mouse_buttons: Confirmation::NotOwed,
            led_state: None,
            led_state_sent: None,
            continuous_updates_confirmed: false,
            fences_announced: false,
            sync_next_fence: None,
        }
    }

    /// Feeds bytes received from the client. On `Err` the connection is closed; bytes still
    /// in [`Self::pending_output`] (e.g. an authentication failure reason) should be flushed
    /// before closing the socket.
    pub fn read(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if self.state == State::Closed {
            return Err(ProtocolError::Closed);
        }
        let result = match self.open_records(data) {
            Ok(Some(plaintext)) => {
                self.take_plaintext(&plaintext);
                self.process()
            }
            Ok(None) => {
                self.take_plaintext(data);
                self.process()
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.state = State::Closed;
            self.input = Vec::new();
        }
        result
    }

    /// With a session cipher: decrypts the whole records among the bytes received so far
    /// (`None` without a cipher: `data` is plaintext).
    fn open_records(&mut self, data: &[u8]) -> Result<Option<Vec<u8>>, ProtocolError> {
        let Some(cipher) = self.cipher.as_mut() else {
            return Ok(None);
        };
        self.wire_input.extend_from_slice(data);
        let mut plaintext = Vec::new();
        let used = cipher.open(&self.wire_input, &mut plaintext)?;
        self.wire_input.drain(..used);
        Ok(Some(plaintext))
    }

    /// Received plaintext, minus what is left of a skipped cut text.
    fn take_plaintext(&mut self, mut data: &[u8]) {
        let skipped = self.skip.min(data.len() as u64) as usize;
        self.skip -= skipped as u64;
        data = &data[skipped..];
        self.input.extend_from_slice(data);
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes waiting to go to the client (sealed into records first when the session is
    /// encrypted).
    pub fn pending_output(&mut self) -> &[u8] {
        match self.cipher.as_mut() {
            Some(cipher) => {
                if !self.output.is_empty() {
                    cipher.seal(&self.output, &mut self.sealed);
                    self.output.clear();
                }
                &self.sealed[self.output_sent..]
            }
            None => &self.output[self.output_sent..],
        }
    }

    /// Marks `n` bytes of [`Self::pending_output`] as written to the socket.
    pub fn advance_output(&mut self, n: usize) {
        let wire = if self.cipher.is_some() { &mut self.sealed } else { &mut self.output };
        self.output_sent = (self.output_sent + n).min(wire.len());
        if self.output_sent == wire.len() {
            wire.clear();
            self.output_sent = 0;
        }
        let unsent = self.sealed.len() + self.output.len() - self.output_sent;
        self.unsent_replies = self.unsent_replies.min(unsent);
    }

    /// Whether the caller should read more from the client. False while the client leaves
    /// replies unread and enough of its messages are held back: stop reading, and TCP makes it
    /// wait. Once output has drained, [`Self::resume`] lets the held messages go on.
    pub fn wants_input(&self) -> bool {
        self.unsent_replies <= MAX_UNSENT_REPLIES || self.input.len() < MAX_HELD_INPUT
    }

    /// Handles messages held back while replies were unread (see [`Self::wants_input`]); call
    /// it after output was taken. Errors as [`Self::read`].
    pub fn resume(&mut self) -> Result<(), ProtocolError> {
        if self.state == State::Normal && !self.input.is_empty() && self.unsent_replies <= MAX_UNSENT_REPLIES {
            return self.read(&[]);
        }
        Ok(())
    }

    /// From now on every byte is sealed: what is already queued went out as the handshake
    /// wrote it, and received bytes after this point are records.
    fn start_cipher(&mut self, cipher: SessionCipher) {
        self.sealed = std::mem::take(&mut self.output);
        self.cipher = Some(cipher);
        self.input_now_sealed = true;
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the handshake is over and updates may be written.
    pub fn is_ready(&self) -> bool {
        self.state == State::Normal
    }

    /// The negotiated protocol version as (3, minor).
    pub fn version(&self) -> (u8, u8) {
        (3, self.minor)
    }

    pub fn access(&self) -> Access {
        self.access
    }

    /// The login method, for logs: e.g. "VeNCrypt X509Vnc", "VncAuth", "None".
    pub fn security(&self) -> &'static str {
        self.security_name
    }

    /// The user name of an account login.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    pub fn pixel_format(&self) -> &PixelFormat {
        self.converter.client_format()
    }

    pub fn encodings(&self) -> &ClientEncodings {
        &self.encodings
    }

    pub fn framebuffer_size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// Answers [`Event::ClientInit`]: sends ServerInit for a framebuffer of this size.
    pub fn accept(&mut self, width: u16, height: u16) -> Result<(), ProtocolError> {
        if self.state != State::AwaitingAccept {
            return Err(ProtocolError::NotReady);
        }
        self.width = width;
        self.height = height;
        server::write_server_init(&mut self.output, width, height, &PixelFormat::NATIVE, &self.config.name);
        self.state = State::Normal;
        // The client may already have sent messages after ClientInit.
        self.read(&[])
    }

    /// Whether an update must go out even with no pixels (a pending pseudo-rect).
    pub fn has_pending_pseudo_rects(&self) -> bool {
        self.qemu_key_events == Confirmation::Owed
            || self.extended_mouse_buttons == Confirmation::Owed
            || self.led_state_owed().is_some()
    }

    /// Tells the connection the target's keyboard LEDs: bit 0 Scroll Lock, bit 1 Num Lock,
    /// bit 2 Caps Lock ([`server::led`]; RFB's order, which is not HID's). Call it whenever
    /// they may have changed; repeating a value is harmless. A client that listed an LED
    /// state pseudo-encoding gets the state in its next update when it differs from what it
    /// last got (see [`Self::has_pending_pseudo_rects`]).
    pub fn set_led_state(&mut self, leds: u8) {
        // Reserved bits would only cost updates that change nothing the client shows.
        self.led_state = Some(leds & server::led::ALL);
    }

    /// The LED state the next update must carry, if any.
    fn led_state_owed(&self) -> Option<u8> {
        let listed = self.encodings.qemu_led_state || self.encodings.vmware_led_state;
        self.led_state.filter(|_| listed && self.led_state != self.led_state_sent)
    }

    /// Writes one FramebufferUpdate with `rects` of `frame` (cropped to it) plus any pending
    /// pseudo-rects, in the client's pixel format and preferred encoding.
    pub fn write_update(&mut self, frame: &Frame, rects: &[Rect]) {
        self.write_update_shared(frame, rects, None);
    }

    /// Like [`Self::write_update`], sharing stateless rects with other connections: `shared`
    /// is the frame's generation and the server's cache.
    pub fn write_update_shared(
        &mut self,
        frame: &Frame,
        rects: &[Rect],
        shared: Option<(u64, &dyn crate::encoders::shared::SharedEncodings)>,
    ) {
        if let Some(job) = self.start_update(frame.bounds(), rects, false) {
            let done = job.encode(frame, shared, &crate::encoders::workers::Serial);
            self.complete_update(done);
        }
    }

    /// Like [`Self::write_update`], with no lossy encoding: the lossless refresh of areas that
    /// went out as JPEG and have been still since. Tight goes without JPEG; a client that
    /// prefers JPEG (21) gets its first listed lossless encoding, or Raw.
    pub fn write_update_lossless(&mut self, frame: &Frame, rects: &[Rect]) {
        if let Some(job) = self.start_update(frame.bounds(), rects, true) {
            let done = job.encode(frame, None, &crate::encoders::workers::Serial);
            self.complete_update(done);
        }
    }

    /// How a JPEG `width` pixels wide can go to this client as it is (MJPEG pass-through), if
    /// at all; it must have 16 or 32 bpp. Tight (7) when it prefers Tight, sent a quality level
    /// and the JPEG fits a Tight rect (2048 wide); else JPEG (21) when it listed that, at any
    /// width, and the JPEG is `baseline` (SOF0: noVNC's JPEG (21) decoder knows no other frame
    /// header; Tight JPEG goes to the browser's decoder whole, which takes any). Listing 21 is
    /// enough, even behind a lossless encoding: the source's JPEG is what such a viewer would
    /// otherwise get decoded, so it loses nothing.
    pub fn jpeg_passthrough(&self, width: u16, baseline: bool) -> Option<i32> {
        if self.state != State::Normal || !jpeg::takes_jpeg(self.converter.client_format()) {
            return None;
        }
        if self.encodings.preferred == encoding::TIGHT
            && self.encodings.quality_level.is_some()
            && width <= tight::MAX_RECT_WIDTH
        {
            Some(encoding::TIGHT)
        } else if baseline && self.encodings.list.contains(&encoding::JPEG) {
            Some(encoding::JPEG)
        } else {
            None
        }
    }

    /// Writes one update whose pixels are JPEGs (all `baseline` or not) sent unchanged (MJPEG
    /// pass-through), each covering its rect, as Tight or JPEG (21) rects (see
    /// [`Self::jpeg_passthrough`]), plus pending pseudo-rects. Nothing is written on error.
    pub fn write_jpeg_update(&mut self, jpegs: &[(Rect, &[u8])], baseline: bool) -> Result<(), PassthroughError> {
        let mut rect_bytes = Vec::with_capacity(jpegs.iter().map(|(_, jpeg)| jpeg.len() + 20).sum());
        for (rect, jpeg) in jpegs {
            match self.jpeg_passthrough(rect.width, baseline) {
                Some(encoding::TIGHT) => passthrough::write_jpeg_rect(&mut rect_bytes, rect, jpeg)?,
                Some(_) => jpeg::write_jpeg_rect(&mut rect_bytes, rect, jpeg)?,
                None => return Err(PassthroughError::NotTaken(rect.width)),
            }
        }
        let (header_at, count) = self.begin_update();
        self.output.extend_from_slice(&rect_bytes);
        self.finish_update(header_at, count + jpegs.len());
        Ok(())
    }

    /// Starts a FramebufferUpdate with the pending pseudo-rects; returns where its header is and
    /// how many rects it holds so far.
    fn begin_update(&mut self) -> (usize, usize) {
        let header_at = self.output.len();
        server::write_framebuffer_update_header(&mut self.output, u16::MAX);
        let mut count = 0;
        for (confirmation, encoding) in [
            (&mut self.qemu_key_events, encoding::QEMU_EXTENDED_KEY_EVENT),
            (&mut self.extended_mouse_buttons, encoding::EXTENDED_MOUSE_BUTTONS),
        ] {
            if *confirmation == Confirmation::Owed {
                server::write_rect_header(&mut self.output, &Rect::default(), encoding);
                *confirmation = Confirmation::Sent;
                count += 1;
            }
        }
        if let Some(leds) = self.led_state_owed() {
            // QEMU's form when listed, as TigerVNC prefers it; VMware's otherwise.
            if self.encodings.qemu_led_state {
                server::write_qemu_led_state(&mut self.output, leds);
            } else {
                server::write_vmware_led_state(&mut self.output, leds);
            }
            self.led_state_sent = Some(leds);
            count += 1;
        }
        (header_at, count)
    }

    fn finish_update(&mut self, header_at: usize, count: usize) {
        if self.encodings.last_rect {
            server::write_rect_header(&mut self.output, &Rect::default(), encoding::LAST_RECT);
        } else {
            // Without LastRect the header must carry the exact count, known only now.
            let count = u16::try_from(count).unwrap_or(u16::MAX);
            self.output[header_at + 2..header_at + 4].copy_from_slice(&count.to_be_bytes());
        }
    }

    /// Tells the client the framebuffer is now `width`×`height`, in an update with no pixels
    /// (ExtendedDesktopSize when listed, else DesktopSize). Returns false when the client
    /// cannot follow a resize (it must then be disconnected).
    pub fn write_resize(&mut self, width: u16, height: u16) -> bool {
        if self.state != State::Normal {
            return false;
        }
        self.width = width;
        self.height = height;
        if self.encodings.extended_desktop_size {
            return self.write_screen_layout(desktop_size::REASON_SERVER, desktop_size::RESULT_OK);
        }
        if !self.encodings.desktop_size {
            return false;
        }
        server::write_framebuffer_update_header(&mut self.output, 1);
        server::write_rect_header(&mut self.output, &Rect::new(0, 0, width, height), encoding::DESKTOP_SIZE);
        true
    }

    /// Sends the screen layout in an ExtendedDesktopSize update with no pixels: `reason`
    /// and `result` from [`server::desktop_size`]. False when the client did not list it.
    pub fn write_screen_layout(&mut self, reason: u16, result: u16) -> bool {
        if self.state != State::Normal || !self.encodings.extended_desktop_size {
            return false;
        }
        server::write_framebuffer_update_header(&mut self.output, 1);
        server::write_extended_desktop_size(&mut self.output, reason, result, self.width, self.height);
        true
    }

    /// A fence request to the client (its answer arrives as [`Event::FenceResponse`]).
    /// False when the client does not do fences.
    pub fn write_fence_request(&mut self, payload: &[u8]) -> bool {
        if self.state != State::Normal || !self.fences_announced {
            return false;
        }
        server::write_server_fence(&mut self.output, fence::REQUEST | fence::BLOCK_BEFORE, payload);
        true
    }

    pub fn write_bell(&mut self) {
        if self.state == State::Normal {
            server::write_bell(&mut self.output);
        }
    }

    pub fn write_cut_text(&mut self, text: &str) {
        if self.state == State::Normal {
            server::write_server_cut_text(&mut self.output, text);
        }
    }

    fn process(&mut self) -> Result<(), ProtocolError> {
        let mut input = std::mem::take(&mut self.input);
        let mut consumed = 0;
        let result = loop {
            let buf = &input[consumed..];
            let step = match self.state {
                State::Version => self.process_version(buf),
                State::SecurityType => self.process_security_type(buf),
                State::VeNCryptVersion => self.process_vencrypt_version(buf),
                State::VeNCryptSubtype => self.process_vencrypt_subtype(buf),
                State::VncAuthResponse => self.process_vnc_auth(buf),
                State::PlainLogin => self.process_plain_login(buf),
                State::RsaAes => self.process_rsa_aes(buf),
                State::ClientInit => self.process_client_init(buf),
                // Input waits: for TLS (whose bytes the caller takes), a login check, or accept.
                State::TlsRequested | State::CheckingLogin | State::AwaitingAccept | State::Closed => Ok(None),
                State::Normal => self.process_message(buf),
            };
            match step {
                Ok(Some(n)) => {
                    consumed += n;
                    if std::mem::take(&mut self.input_now_sealed) {
                        // What follows the login in this read is records: open them first.
                        let rest = input.split_off(consumed);
                        match self.open_records(&rest) {
                            Ok(plaintext) => input.extend(plaintext.unwrap_or_default()),
                            Err(e) => break Err(e),
                        }
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        input.drain(..consumed);
        self.input = input;
        result
    }

    /// Handles the next message, unless it would add to replies the client leaves unread.
    fn process_message(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let replies = matches!(
            buf.first(),
            Some(
                &(client::SET_PIXEL_FORMAT
                    | client::SET_ENCODINGS
                    | client::ENABLE_CONTINUOUS_UPDATES
                    | client::CLIENT_FENCE)
            )
        );
        if replies && self.unsent_replies > MAX_UNSENT_REPLIES {
            return Ok(None);
        }
        let output_before = self.output.len();
        let handled = self.handle_message(buf);
        self.unsent_replies += self.output.len().saturating_sub(output_before);
        handled
    }

    /// Parses and handles one normal message from the front of `buf`.
    fn handle_message(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let ctx = ParseContext {
            max_cut_text: self.config.max_cut_text,
            qemu_key_events: self.qemu_key_events == Confirmation::Sent,
            continuous_updates: self.continuous_updates_confirmed,
            fences: self.fences_announced,
            extended_mouse_buttons: self.extended_mouse_buttons == Confirmation::Sent,
            set_desktop_size: self.encodings.extended_desktop_size,
        };
        let Some((message, mut used)) = client::parse(buf, &ctx)? else {
            return Ok(None);
        };
        let input_allowed = self.access == Access::Full;
        // A SyncNext fence is answered after the message that follows it.
        let sync_next = self.sync_next_fence.take();
        match message {
            ClientMessage::SetPixelFormat(format) => self.set_pixel_format(format)?,
            ClientMessage::SetEncodings(list) => {
                self.encodings = ClientEncodings::from_list(list);
                if let Some(encoders) = &mut self.encoders {
                    encoders.prepare(&self.encodings);
                }
                self.qemu_key_events.listed(self.encodings.qemu_key_events);
                self.extended_mouse_buttons.listed(self.encodings.extended_mouse_buttons);
                // Confirm fences and continuous updates the first time the client lists them.
                if self.encodings.fence && !self.fences_announced {
                    server::write_server_fence(&mut self.output, fence::REQUEST, &[0]);
                    self.fences_announced = true;
                }
                if self.encodings.continuous_updates && !self.continuous_updates_confirmed {
                    server::write_end_of_continuous_updates(&mut self.output);
                    self.continuous_updates_confirmed = true;
                }
                self.events.push_back(Event::EncodingsChanged);
            }
            ClientMessage::FramebufferUpdateRequest { incremental, rect } => {
                let rect = rect.intersect(&Rect::new(0, 0, self.width, self.height));
                self.events.push_back(Event::UpdateRequest { incremental, rect });
            }
            ClientMessage::KeyEvent { down, keysym } if input_allowed => {
                self.events.push_back(Event::Key { down, keysym });
            }
            ClientMessage::QemuKeyEvent { down, keysym, keycode } if input_allowed => {
                self.events.push_back(Event::QemuKey { down, keysym, keycode });
            }
            ClientMessage::PointerEvent { buttons, x, y } if input_allowed => {
                self.events.push_back(Event::Pointer { buttons, x, y });
            }
            ClientMessage::ClientCutText(text) if input_allowed => self.events.push_back(Event::CutText(text)),
            ClientMessage::ClientCutTextSkipped { len, extended } => {
                // Discard what has already arrived; the rest is dropped in `read` as it comes.
                let available = buf.len() - used;
                let now = available.min(len as usize);
                used += now;
                self.skip = u64::from(len) - now as u64;
                self.events.push_back(Event::CutTextSkipped { len, extended });
            }
            ClientMessage::KeyEvent { .. }
            | ClientMessage::QemuKeyEvent { .. }
            | ClientMessage::PointerEvent { .. }
            | ClientMessage::ClientCutText(_) => {}
            ClientMessage::EnableContinuousUpdates { enable, rect } => {
                if !enable {
                    // Sent on every disable, even a redundant one: the client waits for it.
                    server::write_end_of_continuous_updates(&mut self.output);
                }
                let rect = rect.intersect(&Rect::new(0, 0, self.width, self.height));
                self.events.push_back(Event::ContinuousUpdates { enable, rect });
            }
            ClientMessage::ClientFence { flags, payload } => {
                if flags & fence::REQUEST == 0 {
                    self.events.push_back(Event::FenceResponse { payload });
                } else {
                    let reply = flags & (fence::BLOCK_BEFORE | fence::BLOCK_AFTER);
                    if flags & fence::SYNC_NEXT != 0 {
                        self.sync_next_fence = Some((reply, payload));
                        return Ok(Some(used));
                    }
                    server::write_server_fence(&mut self.output, reply, &payload);
                }
            }
            ClientMessage::SetDesktopSize { width, height, .. } => {
                self.events.push_back(Event::SetDesktopSize { width, height });
            }
        }
        if let Some((flags, payload)) = sync_next {
            server::write_server_fence(&mut self.output, flags, &payload);
        }
        Ok(Some(used))
    }

    fn set_pixel_format(&mut self, format: PixelFormat) -> Result<(), ProtocolError> {
        format.validate()?;
        let format = if format.true_colour {
            format
        } else {
            // Colour maps: serve BGR233 through a fixed map, as TigerVNC does.
            server::write_set_colour_map_entries(&mut self.output, 0, &PixelFormat::bgr233_colour_map());
            PixelFormat::BGR233
        };
        self.converter = std::sync::Arc::new(PixelConverter::new(format));
        self.events.push_back(Event::PixelFormatChanged(format));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
