//! The viewers connected right now: the handle that asks one to close, and what the control
//! interface reports about each (address, how it logged in, what it is sent).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde::Serialize;

use super::admission::Kick;
use crate::hid::router::ViewerId;

/// One connection, from accept to close.
pub struct Viewer {
    pub kick: Arc<Kick>,
    pub peer: SocketAddr,
    since: Instant,
    login: Mutex<Option<Login>>,
    /// The encoding it is sent (RFB number), once it said what it takes.
    encoding: AtomicI32,
    bytes_sent: AtomicU64,
}

/// How a viewer logged in.
#[derive(Debug, Clone)]
pub struct Login {
    pub view_only: bool,
    pub method: &'static str,
    pub user: Option<String>,
}

impl Viewer {
    pub fn logged_in(&self, login: Login) {
        *self.lock_login() = Some(login);
    }

    pub fn set_encoding(&self, encoding: i32) {
        self.encoding.store(encoding, Ordering::Relaxed);
    }

    pub fn sent(&self, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn lock_login(&self) -> MutexGuard<'_, Option<Login>> {
        self.login.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A viewer as the control interface shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewerReport {
    pub id: ViewerId,
    pub address: String,
    pub logged_in: bool,
    pub view_only: bool,
    /// The login method ("VeNCrypt X509Plain", "VncAuth", ...).
    pub login: Option<String>,
    pub user: Option<String>,
    pub encoding: Option<String>,
    pub bytes_sent: u64,
    pub connected_seconds: u64,
}

/// Encoding numbers never sent as a viewer's main encoding.
const NO_ENCODING_YET: i32 = i32::MIN;

#[derive(Default)]
pub struct Registry {
    viewers: Mutex<HashMap<ViewerId, Arc<Viewer>>>,
}

impl Registry {
    /// Adds a new connection; also returns whether it is the first one.
    pub fn add(&self, id: ViewerId, peer: SocketAddr) -> (Arc<Viewer>, bool) {
        let viewer = Arc::new(Viewer {
            kick: Arc::new(Kick::default()),
            peer,
            since: Instant::now(),
            login: Mutex::new(None),
            encoding: AtomicI32::new(NO_ENCODING_YET),
            bytes_sent: AtomicU64::new(0),
        });
        let mut viewers = self.lock();
        viewers.insert(id, viewer.clone());
        (viewer, viewers.len() == 1)
    }

    /// Removes a connection; returns whether none is left.
    pub fn remove(&self, id: ViewerId) -> bool {
        let mut viewers = self.lock();
        viewers.remove(&id);
        viewers.is_empty()
    }

    /// Asks one viewer to close; false if there is no such viewer.
    pub fn close(&self, id: ViewerId, reason: &'static str) -> bool {
        let viewer = self.lock().get(&id).cloned();
        viewer.map(|viewer| viewer.kick.close(reason)).is_some()
    }

    /// Asks every viewer but `keep` to close.
    pub fn close_others(&self, keep: ViewerId, reason: &'static str) {
        for (_, viewer) in self.lock().iter().filter(|(id, _)| **id != keep) {
            viewer.kick.close(reason);
        }
    }

    /// Asks every viewer to close.
    pub fn close_all(&self, reason: &'static str) {
        for viewer in self.lock().values() {
            viewer.kick.close(reason);
        }
    }

    /// How many are connected.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Everyone connected, oldest first.
    pub fn report(&self) -> Vec<ViewerReport> {
        let mut reports: Vec<ViewerReport> = self
            .lock()
            .iter()
            .map(|(id, viewer)| {
                let login = viewer.lock_login().clone();
                let encoding = viewer.encoding.load(Ordering::Relaxed);
                ViewerReport {
                    id: *id,
                    address: viewer.peer.to_string(),
                    logged_in: login.is_some(),
                    view_only: login.as_ref().is_some_and(|login| login.view_only),
                    login: login.as_ref().map(|login| login.method.to_string()),
                    user: login.and_then(|login| login.user),
                    encoding: (encoding != NO_ENCODING_YET).then(|| rfb::encoding::name(encoding).to_string()),
                    bytes_sent: viewer.bytes_sent.load(Ordering::Relaxed),
                    connected_seconds: viewer.since.elapsed().as_secs(),
                }
            })
            .collect();
        reports.sort_by_key(|report| report.id);
        reports
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ViewerId, Arc<Viewer>>> {
        self.viewers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_what_each_viewer_did_and_closes_on_request() {
        let registry = Registry::default();
        let (first, is_first) = registry.add(1, "192.0.2.1:5000".parse().unwrap());
        let (_, again) = registry.add(2, "192.0.2.2:5000".parse().unwrap());
        assert!(is_first && !again);
        first.logged_in(Login { view_only: true, method: "VncAuth", user: None });
        first.set_encoding(16);
        first.sent(1000);
        let reports = registry.report();
        assert_eq!(reports.len(), 2);
        assert_eq!(
            (reports[0].view_only, reports[0].login.as_deref(), reports[0].encoding.as_deref(), reports[0].bytes_sent),
            (true, Some("VncAuth"), Some("ZRLE"), 1000)
        );
        assert!(!reports[1].logged_in && reports[1].encoding.is_none());
        assert!(registry.close(2, "test") && !registry.close(3, "test"));
        assert!(!registry.remove(1) && registry.remove(2));
    }
}
