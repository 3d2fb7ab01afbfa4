//! The tokio shell: accepts viewers and runs one task per connection. The protocol itself is
//! in `rfb::ServerConnection`; these tasks only move bytes and wake things up.

mod screen;
mod update;
mod viewer;
mod websocket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::ValueEnum;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::Instrument;

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

/// State every viewer task shares.
pub(crate) struct Shared {
    pub config: Arc<rfb::ServerConfig>,
    pub screen: screen::Screen,
    /// Stateless rects (JPEG) encoded once for all viewers with equal settings.
    pub shared_rects: rfb::encoders::shared::SharedRects,
    pub input: Arc<InputRouter>,
    /// Clipboard text typed as keys, and the key chords.
    pub paste: Paster,
    pub policy: SharedPolicy,
    /// Told whether anyone watches, so capture can idle.
    source: Arc<dyn FrameSource>,
    /// Live viewers and the signal that asks each to close.
    viewers: Mutex<HashMap<ViewerId, Arc<Notify>>>,
}

impl Shared {
    /// Asks every viewer but `keep` to close (an exclusive viewer was admitted).
    pub fn disconnect_others(&self, keep: ViewerId) {
        let viewers = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        for (_, kick) in viewers.iter().filter(|(id, _)| **id != keep) {
            kick.notify_one();
        }
    }

    fn register(&self, id: ViewerId) -> Arc<Notify> {
        let kick = Arc::new(Notify::new());
        let mut viewers = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        viewers.insert(id, kick.clone());
        if viewers.len() == 1 {
            self.source.set_watched(true);
        }
        kick
    }

    fn unregister(&self, id: ViewerId) {
        let mut viewers = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        viewers.remove(&id);
        if viewers.is_empty() {
            self.source.set_watched(false);
        }
    }
}

pub struct Server {
    shared: Arc<Shared>,
    next_id: AtomicU64,
}

impl Server {
    pub fn new(
        config: rfb::ServerConfig,
        source: Arc<dyn FrameSource>,
        input: Arc<InputRouter>,
        paste: PasteConfig,
        policy: SharedPolicy,
    ) -> Self {
        let screen = screen::Screen::start(source.clone());
        let shared = Shared {
            config: Arc::new(config),
            screen,
            shared_rects: rfb::encoders::shared::SharedRects::default(),
            paste: Paster::new(input.clone(), paste),
            input,
            policy,
            source,
            viewers: Mutex::default(),
        };
        Self { shared: Arc::new(shared), next_id: AtomicU64::new(1) }
    }

    /// Accepts viewers until the listener fails. Must be called inside a tokio runtime.
    pub async fn run(&self, listener: TcpListener) -> anyhow::Result<()> {
        tracing::info!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Running out of file descriptors must not end the server.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let shared = self.shared.clone();
            let kick = shared.register(id);
            let span = tracing::info_span!("viewer", %peer, id);
            tokio::spawn(
                async move {
                    let result = if websocket::is_websocket(&stream).await {
                        tracing::info!("connected (WebSocket)");
                        match websocket::accept(stream).await {
                            Ok(pipe) => viewer::serve(pipe, id, &shared, &kick).await,
                            Err(e) => Err(e.context("WebSocket handshake failed")),
                        }
                    } else {
                        tracing::info!("connected");
                        viewer::serve(stream, id, &shared, &kick).await
                    };
                    match result {
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
