//! One viewer connection: reader → `rfb::ServerConnection` → writer, in a single task.
//!
//! Reading, writing, waiting for a new frame and waiting for the update being encoded (on the
//! encode pool, `encode_pool.rs`) happen in one `select!`, so input keeps flowing while a large
//! update is compressed or drains, and the next update is encoded only when the previous one
//! has been written: a slow viewer gets fewer, newer updates and never a growing queue.
//!
//! VeNCrypt starts TLS in the middle of the handshake: the loop then hands the socket back, TLS
//! is set up on it, and the same connection state carries on over the TLS stream.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use rfb::messages::server::desktop_size;
use rfb::moves::Move;
use rfb::security::Transport;
use rfb::{Event, ServerConnection};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::encode_pool::Encoded;
use super::transport::{BoxedStream, Prefixed};
use super::update::{Plan, UpdateScheduler};
use super::viewers::{Login, Viewer};
use super::{Shared, SharedPolicy};
use crate::hid::router::ViewerId;
use crate::source::SourceFrame;

const READ_CHUNK: usize = 64 * 1024;
/// How long a failed login waits before hearing so (TigerVNC: 100 ms).
const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(100);
/// How long a closing connection may take to deliver its last words (e.g. an auth failure).
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one viewer until it leaves; returns why the connection ended. `deadline` is when it
/// must have logged in.
pub(crate) async fn serve(
    stream: BoxedStream,
    transport: Transport,
    deadline: Instant,
    peer: IpAddr,
    id: ViewerId,
    shared: &Shared,
    viewer: &Viewer,
) -> anyhow::Result<String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow!("no randomness for the login: {e}"))?;
    let mut session = Session {
        conn: ServerConnection::new(shared.config.clone(), transport, seed),
        deadline,
        peer,
        id,
        tls_version: None,
    };
    let mut stream = stream;
    loop {
        match run(stream, &mut session, shared, viewer).await? {
            Outcome::Ended(reason) => return Ok(reason),
            Outcome::StartTls(raw) => stream = start_tls(raw, &mut session, shared).await?,
        }
    }
}

/// One connection's state across transports.
struct Session {
    conn: ServerConnection,
    deadline: Instant,
    peer: IpAddr,
    id: ViewerId,
    /// Set once VeNCrypt started TLS, for the login's log line.
    tls_version: Option<String>,
}

enum Outcome {
    Ended(String),
    /// The viewer chose a VeNCrypt TLS login: here is the socket, with our last plain bytes
    /// delivered.
    StartTls(BoxedStream),
}

async fn start_tls(raw: BoxedStream, session: &mut Session, shared: &Shared) -> anyhow::Result<BoxedStream> {
    let identity = shared.tls.as_ref().ok_or_else(|| anyhow!("TLS requested but no certificate is loaded"))?;
    let early = session.conn.start_tls().map_err(|e| anyhow!("protocol error: {e}"))?;
    let handshake = identity.acceptor.accept(Prefixed::new(early, raw));
    let stream = tokio::time::timeout_at(session.deadline, handshake)
        .await
        .map_err(|_| anyhow!("no TLS handshake before the login deadline"))?
        .context("TLS handshake failed")?;
    let version = stream.get_ref().1.protocol_version().map_or("TLS".into(), |v| format!("{v:?}"));
    session.tls_version = Some(version);
    Ok(Box::new(stream))
}

/// Serves the connection over one stream until it ends or must switch to TLS.
async fn run(stream: BoxedStream, session: &mut Session, shared: &Shared, viewer: &Viewer) -> anyhow::Result<Outcome> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let conn = &mut session.conn;
    let mut frames = shared.screen.frames();
    let mut leds = shared.input.leds();
    let mut leds_reported = true;
    let mut scheduler = UpdateScheduler::default();
    scheduler.set_lossless_refresh(shared.lossless_refresh);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut logged_in = conn.is_ready();
    let mut in_flight: Option<InFlight> = None;

    loop {
        let writing = !conn.pending_output().is_empty();
        // Wakes the loop when lossy areas are due for their lossless refresh; not while an
        // update is being written or encoded (its end wakes the loop), since a due timer that
        // cannot start an update would wake it again and again.
        let refresh_at = if writing || in_flight.is_some() { None } else { scheduler.refresh_at() };
        if !writing && conn.tls_requested() {
            return Ok(Outcome::StartTls(reader.unsplit(writer)));
        }
        tokio::select! {
            // A viewer that sends but does not read is not read from either (rfb holds back its
            // messages once their replies pile up).
            read = reader.read(&mut buf), if !conn.tls_requested() && conn.wants_input() => {
                let n = read.context("read failed")?;
                if n == 0 {
                    return Ok(Outcome::Ended("viewer closed the connection".into()));
                }
                if let Err(e) = conn.read(&buf[..n]) {
                    return Err(refuse(e, &mut writer, conn.pending_output().to_vec(), session.peer, shared).await);
                }
            }
            written = writer.write(conn.pending_output()), if writing => {
                let n = written.context("write failed")?;
                conn.advance_output(n);
                viewer.sent(n);
                if conn.pending_output().is_empty() {
                    // TLS holds back what does not fill a record until flushed.
                    writer.flush().await.context("write failed")?;
                }
                if let Err(e) = conn.resume() {
                    return Err(refuse(e, &mut writer, conn.pending_output().to_vec(), session.peer, shared).await);
                }
            }
            changed = frames.changed() => {
                changed.map_err(|_| anyhow!("the frame source stopped"))?;
            }
            changed = leds.changed(), if leds_reported => {
                // A sink that stops reporting LEDs leaves the last state standing.
                leds_reported = changed.is_ok();
            }
            () = tokio::time::sleep_until(session.deadline), if !logged_in => {
                let seconds = shared.limits.handshake_timeout.as_secs();
                return Err(anyhow!("no login within {seconds}s: closed"));
            }
            reason = viewer.kick.closed() => return Ok(Outcome::Ended(reason.into())),
            () = tokio::time::sleep_until(refresh_at.map_or_else(Instant::now, Into::into)), if refresh_at.is_some() => {}
            encoded = encoded(in_flight.as_mut()), if in_flight.is_some() => {
                if let Some(update) = in_flight.take() {
                    update.complete(encoded, conn, &mut scheduler)?;
                }
            }
        }
        while let Some(event) = conn.poll_event() {
            if let Event::Credentials(login) = event {
                let access = shared.check_login(login).await;
                if let Err(e) = conn.login_checked(access) {
                    return Err(refuse(e, &mut writer, conn.pending_output().to_vec(), session.peer, shared).await);
                }
                continue;
            }
            match &event {
                Event::ClientInit { access, .. } => {
                    log_login(conn, *access, session.tls_version.as_deref());
                    let view_only = *access == rfb::Access::ViewOnly;
                    viewer.logged_in(Login {
                        view_only,
                        method: conn.security(),
                        user: conn.username().map(Into::into),
                    });
                }
                Event::EncodingsChanged => viewer.set_encoding(conn.encodings().preferred),
                _ => {}
            }
            handle_event(event, session.id, shared, conn, &mut scheduler)?;
        }
        if !logged_in && conn.is_ready() {
            logged_in = true;
            shared.blacklist.succeeded(session.peer);
            shared.admission.done(session.id);
        }
        if conn.is_ready() {
            // Only changes go out, to viewers that asked for LED state (rfb decides).
            if let Some(state) = *leds.borrow_and_update() {
                conn.set_led_state(crate::hid::led::to_rfb(state));
            }
            let current = frames.borrow_and_update().clone();
            absorb_damage(conn, &current, shared, &mut scheduler);
            if conn.pending_output().is_empty() && in_flight.is_none() {
                in_flight = send_update(conn, &current, shared, &mut scheduler)?;
            }
        }
    }
}

/// Ends a connection on a protocol error; a failed login costs the guesser time, and enough of
/// them block the address.
async fn refuse(
    error: rfb::ProtocolError,
    writer: &mut WriteHalf<BoxedStream>,
    last_words: Vec<u8>,
    peer: IpAddr,
    shared: &Shared,
) -> anyhow::Error {
    if matches!(error, rfb::ProtocolError::AuthenticationFailed) {
        shared.blacklist.failed(peer);
        tokio::time::sleep(AUTH_FAILURE_DELAY).await;
    }
    farewell(writer, last_words).await;
    anyhow!("protocol error: {error}")
}

fn log_login(conn: &ServerConnection, access: rfb::Access, tls_version: Option<&str>) {
    let (major, minor) = conn.version();
    let security = conn.security();
    let user = conn.username().map(|name| format!(", user {name:?}")).unwrap_or_default();
    let tls = tls_version.map(|version| format!(" over {version}")).unwrap_or_default();
    tracing::info!("authenticated: RFB {major}.{minor}, {security}{tls}{user}, {access:?} access");
}

fn handle_event(
    event: Event,
    id: ViewerId,
    shared: &Shared,
    conn: &mut ServerConnection,
    scheduler: &mut UpdateScheduler,
) -> anyhow::Result<()> {
    match event {
        Event::ClientInit { shared: wants_shared, access } => {
            let (width, height) = {
                let current = shared.screen.frames();
                let frame = current.borrow();
                (frame.width(), frame.height())
            };
            conn.accept(width, height).map_err(|e| anyhow!("protocol error: {e}"))?;
            // A viewer that may only watch cannot push out those that may type.
            let exclusive = !wants_shared && access == rfb::Access::Full;
            if exclusive && shared.policy == SharedPolicy::Honour {
                tracing::info!("asked for exclusive access: disconnecting the other viewers");
                shared.disconnect_others(id);
            }
        }
        Event::UpdateRequest { incremental, rect } => {
            // Under continuous updates only non-incremental requests mean something.
            if !(incremental && scheduler.is_continuous()) {
                scheduler.request(incremental, rect);
            }
            // The spec wants the screen layout with every non-incremental request.
            if !incremental && conn.encodings().extended_desktop_size {
                scheduler.owe_layout(desktop_size::REASON_SERVER, desktop_size::RESULT_OK);
            }
        }
        Event::PixelFormatChanged(format) => {
            tracing::debug!("pixel format {format:?}");
            let (width, height) = conn.framebuffer_size();
            scheduler.refresh(rfb::Rect::new(0, 0, width, height));
        }
        Event::ContinuousUpdates { enable, rect } => {
            tracing::debug!("continuous updates {}", if enable { "on" } else { "off" });
            scheduler.set_continuous(enable.then_some(rect));
        }
        Event::FenceResponse { .. } => scheduler.fence_answered(),
        Event::SetDesktopSize { width, height } => {
            tracing::info!("refused a resize to {width}x{height}: the target decides its resolution");
            scheduler.owe_layout(desktop_size::REASON_THIS_CLIENT, desktop_size::RESULT_PROHIBITED);
        }
        Event::EncodingsChanged => {
            let encodings = conn.encodings();
            tracing::debug!("encodings {:?}, sending {}", encodings.list, encodings.preferred);
        }
        Event::Key { down, keysym } => {
            if let Some(chord) = shared.input.key(id, keysym, down) {
                shared.paste.chord(chord);
            }
        }
        Event::QemuKey { down, keysym, keycode } => {
            if let Some(chord) = shared.input.scancode_key(id, keycode, keysym, down) {
                shared.paste.chord(chord);
            }
        }
        Event::Pointer { buttons, x, y } => {
            let (width, height) = conn.framebuffer_size();
            shared.input.pointer(id, buttons, x, y, width, height);
        }
        Event::CutText(text) => shared.paste.clipboard(text),
        // Answered in the connection loop, which can wait for the check.
        Event::Credentials(_) => {}
        Event::CutTextSkipped { len, extended } => {
            let kind = if extended { "extended clipboard message" } else { "clipboard text over the size limit" };
            tracing::info!("skipped {kind} of {len} bytes");
        }
    }
    Ok(())
}

/// Takes the damage of every frame up to `current` into the viewer's pending damage, so a
/// viewer that cannot send right now still knows what it owes.
fn absorb_damage(conn: &ServerConnection, current: &SourceFrame, shared: &Shared, scheduler: &mut UpdateScheduler) {
    if (current.width(), current.height()) == conn.framebuffer_size() {
        scheduler.absorb_damage(current.generation, current.bounds(), |since| shared.screen.changes_since(since));
    }
}

/// An update being encoded on the pool; the viewer's task reads its input meanwhile.
struct InFlight {
    result: oneshot::Receiver<Encoded>,
    region: rfb::region::Region,
    /// The move sent as CopyRect ahead of `region`.
    copy: Option<Move>,
    generation: u64,
    /// Whether its JPEG rects are owed a lossless refresh once still: from a pixel source, not
    /// from a JPEG source, whose pixels are lossy already.
    refreshable: bool,
}

/// Waits for the update in flight; never completes without one.
async fn encoded(in_flight: Option<&mut InFlight>) -> Result<Encoded, oneshot::error::RecvError> {
    match in_flight {
        Some(update) => (&mut update.result).await,
        None => std::future::pending().await,
    }
}

impl InFlight {
    fn start(
        conn: &mut ServerConnection,
        current: &Arc<SourceFrame>,
        (region, copy): (rfb::region::Region, Option<Move>),
        lossless: bool,
        shared: &Shared,
    ) -> Option<InFlight> {
        let refreshable = current.jpeg().is_none();
        let job = conn.start_update_with_copy(current.bounds(), copy, region.rects(), lossless)?;
        let result = shared.encode_pool.encode(job, current.clone(), shared.shared_rects.clone());
        Some(InFlight { result, region, copy, generation: current.generation, refreshable })
    }

    /// Queues the encoded update; a frame whose pixels could not be had leaves the area owed
    /// until a newer frame comes.
    fn complete(
        self,
        encoded: Result<Encoded, oneshot::error::RecvError>,
        conn: &mut ServerConnection,
        scheduler: &mut UpdateScheduler,
    ) -> anyhow::Result<()> {
        match encoded.map_err(|_| anyhow!("encoding an update failed"))? {
            Ok(update) => {
                // The encoders list what went as JPEG; a lossless update lists nothing.
                let lossy = if self.refreshable {
                    rfb::region::Region::from_rects(update.lossy())
                } else {
                    rfb::region::Region::new()
                };
                conn.complete_update(update);
                scheduler.sent(&self.region, &lossy);
                // Pushed updates are paced: the next waits until the viewer has processed this one.
                if scheduler.is_continuous() && conn.write_fence_request(&[]) {
                    scheduler.fence_sent();
                }
            }
            Err((cancelled, reason)) => {
                conn.complete_update(cancelled);
                tracing::warn!("cannot send frame {}, waiting for the next: {reason}", self.generation);
                // Nothing went out, the copy neither: its destination is owed as pixels.
                let mut owed = self.region;
                if let Some(copy) = self.copy {
                    owed.union_rect(copy.dst);
                }
                scheduler.postpone(&owed, self.generation);
            }
        }
        Ok(())
    }
}

/// Starts the next update if one is due: a size change goes first, in an update of its own;
/// pixels are encoded on the pool and come back as the returned update in flight.
fn send_update(
    conn: &mut ServerConnection,
    current: &Arc<SourceFrame>,
    shared: &Shared,
    scheduler: &mut UpdateScheduler,
) -> anyhow::Result<Option<InFlight>> {
    if !scheduler.may_send() || scheduler.is_postponed(current.generation) {
        return Ok(None);
    }
    let (width, height) = (current.width(), current.height());
    if (width, height) != conn.framebuffer_size() {
        if !conn.write_resize(width, height) {
            return Err(anyhow!("the screen changed to {width}x{height} and this viewer cannot follow a resize"));
        }
        tracing::info!("screen resized to {width}x{height}");
        scheduler.resized(current.bounds());
        return Ok(None);
    }
    match scheduler.take(conn.has_pending_pseudo_rects()) {
        None => {
            // Still screen: areas sent as JPEG go again losslessly (not for a JPEG source, whose
            // pixels are lossy already).
            if current.jpeg().is_some() {
                scheduler.forget_lossy();
            } else if let Some(region) = scheduler.take_refresh(std::time::Instant::now()) {
                tracing::trace!("lossless refresh of {} pixels", region.area());
                return Ok(InFlight::start(conn, current, (region, None), true, shared));
            }
        }
        Some(Plan::Layout { reason, result }) => {
            tracing::trace!("screen layout update (reason {reason}, result {result})");
            conn.write_screen_layout(reason, result);
        }
        Some(Plan::Pixels(region, copy)) => {
            tracing::trace!("update of {} rects, {} pixels, copy {copy:?}", region.rects().len(), region.area());
            // Moves are found in pixel frames only, which are never passed through.
            if copy.is_some() || !super::passthrough::pass_jpeg_through(conn, current, &region) {
                return Ok(InFlight::start(conn, current, (region, copy), false, shared));
            }
            if scheduler.is_continuous() && conn.write_fence_request(&[]) {
                scheduler.fence_sent();
            }
        }
    }
    Ok(None)
}

/// Best effort: deliver what the protocol queued before closing (e.g. the reason for a failure).
async fn farewell<W: AsyncWrite + Unpin>(writer: &mut W, last_words: Vec<u8>) {
    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, writer.write_all(&last_words)).await;
    let _ = writer.shutdown().await;
}
