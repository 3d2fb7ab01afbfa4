//! The tokio shell: accepts viewers and runs one task per connection. The protocol itself is
//! in `rfb::ServerConnection`; these tasks only move bytes and wake things up.

mod admission;
mod arrival;
mod blacklist;
pub mod encode_pool;
pub(crate) mod http;
pub mod passthrough;
pub mod rsa_key;
pub mod screen;
pub mod state;
pub mod tls;
mod transport;
mod update;
mod viewer;
pub mod viewers;
mod websocket;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::ValueEnum;
use tokio::net::TcpListener;
use tracing::Instrument;

use self::admission::{Admission, MAX_WAITING_PER_ADDRESS};
pub use self::update::MAX_PENDING_RECTS;
use self::viewers::{Registry, Viewer};
use crate::accounts::Accounts;
use crate::control::ControlConfig;
use crate::hid::paste::{PasteConfig, Paster};
use crate::hid::router::{InputRouter, ViewerId};
use crate::source::FrameSource;

/// What to do with the ClientInit "shared" flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SharedPolicy {
    /// Every viewer shares the target, whatever it asks (a web console and a native viewer
    /// side by side is the normal KVM case).
    Always,
    /// A viewer asking for exclusive access disconnects all the others (TigerVNC's default).
    Honour,
}

/// What a connection may take before it counts as hostile.
#[derive(Debug, Clone)]
pub struct Limits {
    /// From connecting to logging in (TigerVNC: 30 s); then the connection is closed.
    pub handshake_timeout: Duration,
    /// Web pages of other sites allowed to open a WebSocket (`scheme://host[:port]`); pages of
    /// kvnc's own host always may.
    pub allowed_origins: Vec<String>,
}

/// What logins need beyond `rfb::ServerConfig`: the certificate and the user accounts.
#[derive(Default)]
pub struct Security {
    pub tls: Option<tls::TlsIdentity>,
    pub accounts: Option<Arc<Accounts>>,
}

impl Default for Limits {
    fn default() -> Self {
        Self { handshake_timeout: Duration::from_secs(30), allowed_origins: Vec::new() }
    }
}

/// Failed logins in a row before an address is refused, and for how long at first (TigerVNC's
/// defaults).
const BLACKLIST_THRESHOLD: u32 = 5;
const BLACKLIST_FIRST_BLOCK: Duration = Duration::from_secs(10);
/// TCP keepalive: a viewer whose network vanished is dropped (and its held keys released)
/// within about this long, instead of after the kernel's two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_PROBES: u32 = 3;
/// Unacknowledged data is given up on after this long (TCP_USER_TIMEOUT).
const USER_TIMEOUT: Duration = Duration::from_secs(25);

/// State every viewer task shares.
pub(crate) struct Shared {
    pub config: Arc<rfb::ServerConfig>,
    pub screen: screen::Screen,
    /// Stateless rects (JPEG) encoded once for all viewers with equal settings.
    pub shared_rects: Arc<rfb::encoders::shared::SharedRects>,
    /// The threads that encode every viewer's updates.
    pub encode_pool: Arc<encode_pool::EncodePool>,
    pub input: Arc<InputRouter>,
    /// Clipboard text typed as keys, and the key chords.
    pub paste: Paster,
    pub policy: SharedPolicy,
    /// Told whether anyone watches, so capture can idle.
    source: Arc<dyn FrameSource>,
    pub limits: Limits,
    pub blacklist: blacklist::Blacklist,
    /// Live viewers and the signal that asks each to close.
    pub viewers: Registry,
    /// Connections that have not logged in yet.
    pub admission: Admission,
    pub tls: Option<tls::TlsIdentity>,
    accounts: Option<Arc<Accounts>>,
    /// Password hash checks running at once, at most one per core.
    login_checks: tokio::sync::Semaphore,
    /// What the control interface reaches beyond the server itself.
    pub control: ControlConfig,
    pub lossless_refresh: Option<Duration>,
}

impl Shared {
    /// What the screen comes from and whether a picture is coming.
    pub fn source_status(&self) -> crate::source::SourceStatus {
        self.source.status()
    }

    /// Checks a user name and password against the accounts, off the async threads (a password
    /// hash costs tens of milliseconds on purpose).
    pub async fn check_login(&self, login: rfb::security::plain::Login) -> Option<rfb::Access> {
        let accounts = self.accounts.clone()?;
        // Each check holds 19 MiB: a flood of logins waits here rather than filling the memory.
        let _permit = self.login_checks.acquire().await.ok()?;
        let check = move || accounts.verify(&login.username, &login.password);
        tokio::task::spawn_blocking(check).await.ok().flatten()
    }

    /// Asks every viewer but `keep` to close (an exclusive viewer was admitted).
    pub fn disconnect_others(&self, keep: ViewerId) {
        self.viewers.close_others(keep, "another viewer took exclusive access");
    }

    fn register(&self, id: ViewerId, peer: std::net::SocketAddr) -> Arc<Viewer> {
        let (viewer, first) = self.viewers.add(id, peer);
        if first {
            self.source.set_watched(true);
        }
        viewer
    }

    fn unregister(&self, id: ViewerId) {
        self.admission.done(id);
        if self.viewers.remove(id) {
            self.source.set_watched(false);
        }
    }
}

pub struct Server {
    shared: Arc<Shared>,
    next_id: AtomicU64,
}

/// How the server behaves, beyond the protocol's own configuration.
pub struct Options {
    pub paste: PasteConfig,
    pub policy: SharedPolicy,
    pub limits: Limits,
    pub security: Security,
    pub control: ControlConfig,
    /// How long a screen must be still before JPEG areas are sent again losslessly (None: never).
    pub lossless_refresh: Option<Duration>,
    /// Threads that encode updates.
    pub encode_workers: usize,
}

impl Server {
    pub fn new(
        config: rfb::ServerConfig,
        source: Arc<dyn FrameSource>,
        input: Arc<InputRouter>,
        options: Options,
    ) -> anyhow::Result<Self> {
        let Options { paste, policy, limits, security, control, lossless_refresh, encode_workers } = options;
        let screen = screen::Screen::start(source.clone());
        let shared = Shared {
            config: Arc::new(config),
            screen,
            shared_rects: Arc::default(),
            encode_pool: encode_pool::EncodePool::new(encode_workers)?,
            paste: Paster::new(input.clone(), paste),
            input,
            policy,
            source,
            limits,
            blacklist: blacklist::Blacklist::new(BLACKLIST_THRESHOLD, BLACKLIST_FIRST_BLOCK),
            admission: Admission::new(),
            viewers: Registry::default(),
            tls: security.tls,
            accounts: security.accounts,
            login_checks: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
            control,
            lossless_refresh,
        };
        Ok(Self { shared: Arc::new(shared), next_id: AtomicU64::new(1) })
    }

    /// Tells every viewer the server is stopping and waits (a second at most) for their tasks to
    /// end, which releases the keys and buttons they hold on the target. The gadget and any
    /// attached media stay as they are: the target keeps its keyboard and its disk.
    pub async fn shut_down(&self) {
        self.shared.viewers.close_all("the server is shutting down");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        while self.shared.viewers.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Accepts viewers until the listener fails. Must be called inside a tokio runtime.
    pub async fn run(&self, listener: TcpListener) -> anyhow::Result<()> {
        tracing::info!("listening on {}", listener.local_addr()?);
        if let Some(path) = &self.shared.control.socket {
            // Scripts lose `kvnc ctl` without it, viewers lose nothing: serve on.
            match crate::control::socket::bind(path) {
                Ok(socket) => {
                    tracing::info!("control socket {}", path.display());
                    tokio::spawn(crate::control::socket::serve(socket, self.shared.clone()));
                }
                Err(e) => tracing::warn!("no control socket: {e:#}"),
            }
        }
        let mut accept_failures = crate::rate_limit::RateLimited::default();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Running out of file descriptors must not end the server, nor flood the log.
                    accept_failures.warn(|count| format!("accept failed ({count} times): {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            if let Some(left) = self.shared.blacklist.blocked_for(peer.ip()) {
                // Logged when the block began; closing costs the attacker a round trip, us nothing.
                tracing::debug!(%peer, "refused: blocked for another {}s after failed logins", left.as_secs());
                continue;
            }
            let _ = stream.set_nodelay(true);
            configure_keepalive(&stream, peer);
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let shared = self.shared.clone();
            let viewer = shared.register(id, peer);
            if !shared.admission.admit(id, peer.ip(), viewer.kick.clone()) {
                tracing::debug!(%peer, "refused: {MAX_WAITING_PER_ADDRESS} connections from this address are already waiting to log in");
                shared.unregister(id);
                continue;
            }
            let span = tracing::info_span!("viewer", %peer, id);
            tokio::spawn(
                async move {
                    match arrival::serve(stream, peer.ip(), id, &shared, &viewer).await {
                        Ok(reason) => tracing::info!("disconnected: {reason}"),
                        Err(e) => tracing::warn!("closed: {e:#}"),
                    }
                    shared.input.release_viewer(id);
                    shared.unregister(id);
                }
                .instrument(span),
            );
        }
    }
}

/// Keepalive probes and a user timeout on a viewer's socket (see [`KEEPALIVE_IDLE`]).
fn configure_keepalive(stream: &tokio::net::TcpStream, peer: std::net::SocketAddr) {
    let socket = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    if let Err(e) = socket.set_tcp_keepalive(&keepalive).and_then(|()| socket.set_tcp_user_timeout(Some(USER_TIMEOUT)))
    {
        tracing::debug!(%peer, "no TCP keepalive on this connection: {e}");
    }
}
