//! One viewer connection: reader → `rfb::ServerConnection` → writer, in a single task.
//!
//! Reading, writing and waiting for a new frame happen in one `select!`, so input keeps
//! flowing while a large update drains, and the next update is encoded only when the previous
//! one has been written: a slow viewer gets fewer, newer updates and never a growing queue.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use rfb::messages::server::desktop_size;
use rfb::{Event, ServerConnection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::admission::Kick;
use super::update::{Plan, UpdateScheduler};
use super::{Shared, SharedPolicy};
use crate::hid::router::ViewerId;
use crate::source::SourceFrame;

const READ_CHUNK: usize = 64 * 1024;
/// How long a failed login waits before hearing so (TigerVNC: 100 ms).
const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(100);
/// How long a closing connection may take to deliver its last words (e.g. an auth failure).
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one viewer until it leaves; returns why the connection ended.
pub(crate) async fn serve<S>(
    stream: S,
    peer: IpAddr,
    id: ViewerId,
    shared: &Shared,
    kick: &Kick,
) -> anyhow::Result<String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut challenge = [0u8; 16];
    getrandom::fill(&mut challenge).map_err(|e| anyhow!("no randomness for the auth challenge: {e}"))?;
    let mut conn = ServerConnection::new(shared.config.clone(), challenge);
    let mut frames = shared.screen.frames();
    let mut leds = shared.input.leds();
    let mut leds_reported = true;
    let mut scheduler = UpdateScheduler::default();
    let mut buf = vec![0u8; READ_CHUNK];
    let handshake_deadline = tokio::time::Instant::now() + shared.limits.handshake_timeout;
    let mut logged_in = false;

    loop {
        let writing = !conn.pending_output().is_empty();
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = read.context("read failed")?;
                if n == 0 {
                    return Ok("viewer closed the connection".into());
                }
                if let Err(e) = conn.read(&buf[..n]) {
                    if matches!(e, rfb::ProtocolError::AuthenticationFailed) {
                        // Every failure costs the guesser time; enough of them block the address.
                        shared.blacklist.failed(peer);
                        tokio::time::sleep(AUTH_FAILURE_DELAY).await;
                    }
                    farewell(&mut writer, conn.pending_output().to_vec()).await;
                    return Err(anyhow!("protocol error: {e}"));
                }
            }
            written = writer.write(conn.pending_output()), if writing => {
                let n = written.context("write failed")?;
                conn.advance_output(n);
            }
            changed = frames.changed() => {
                changed.map_err(|_| anyhow!("the frame source stopped"))?;
            }
            changed = leds.changed(), if leds_reported => {
                // A sink that stops reporting LEDs leaves the last state standing.
                leds_reported = changed.is_ok();
            }
            () = tokio::time::sleep_until(handshake_deadline), if !logged_in => {
                let seconds = shared.limits.handshake_timeout.as_secs();
                return Err(anyhow!("no login within {seconds}s: closed"));
            }
            reason = kick.closed() => return Ok(reason.into()),
        }
        while let Some(event) = conn.poll_event() {
            handle_event(event, id, shared, &mut conn, &mut scheduler)?;
        }
        if !logged_in && conn.is_ready() {
            logged_in = true;
            shared.blacklist.succeeded(peer);
            shared.admission.done(id);
        }
        if conn.is_ready() {
            // Only changes go out, to viewers that asked for LED state (rfb decides).
            if let Some(state) = *leds.borrow_and_update() {
                conn.set_led_state(crate::hid::led::to_rfb(state));
            }
            let current = frames.borrow_and_update().clone();
            absorb_damage(&conn, &current, shared, &mut scheduler);
            if conn.pending_output().is_empty() {
                send_update(&mut conn, &current, shared, &mut scheduler)?;
            }
        }
    }
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
            let (major, minor) = conn.version();
            tracing::info!(
                "authenticated: RFB {major}.{minor}, {access:?} access, asked for {} access",
                if wants_shared { "shared" } else { "exclusive" }
            );
            if !wants_shared && shared.policy == SharedPolicy::Honour {
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
        scheduler.absorb_damage(current.generation, current.bounds(), |since| shared.screen.damage_since(since));
    }
}

/// Writes the next update if one is due; a size change goes first, in an update of its own.
fn send_update(
    conn: &mut ServerConnection,
    current: &SourceFrame,
    shared: &Shared,
    scheduler: &mut UpdateScheduler,
) -> anyhow::Result<()> {
    if !scheduler.may_send() || scheduler.is_postponed(current.generation) {
        return Ok(());
    }
    let (width, height) = (current.width(), current.height());
    if (width, height) != conn.framebuffer_size() {
        if !conn.write_resize(width, height) {
            return Err(anyhow!("the screen changed to {width}x{height} and this viewer cannot follow a resize"));
        }
        tracing::info!("screen resized to {width}x{height}");
        scheduler.resized(current.bounds());
        return Ok(());
    }
    match scheduler.take(conn.has_pending_pseudo_rects()) {
        None => {}
        Some(Plan::Layout { reason, result }) => {
            tracing::trace!("screen layout update (reason {reason}, result {result})");
            conn.write_screen_layout(reason, result);
        }
        Some(Plan::Pixels(region)) => {
            tracing::trace!("update of {} rects, {} pixels", region.rects().len(), region.area());
            if !super::passthrough::pass_jpeg_through(conn, current, &region) {
                match current.pixels() {
                    Ok(frame) => conn.write_update_shared(
                        frame,
                        region.rects(),
                        Some((current.generation, &shared.shared_rects)),
                    ),
                    Err(e) => {
                        tracing::warn!("cannot send frame {}, waiting for the next: {e}", current.generation);
                        scheduler.postpone(&region, current.generation);
                        return Ok(());
                    }
                }
            }
            // Pushed updates are paced: the next waits until the viewer has processed this one.
            if scheduler.is_continuous() && conn.write_fence_request(&[]) {
                scheduler.fence_sent();
            }
        }
    }
    Ok(())
}

/// Best effort: deliver what the protocol queued before closing (e.g. the reason for a failure).
async fn farewell<W: AsyncWrite + Unpin>(writer: &mut W, last_words: Vec<u8>) {
    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, writer.write_all(&last_words)).await;
    let _ = writer.shutdown().await;
}
