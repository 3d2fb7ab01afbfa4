//! Connections that have not logged in yet are capped, per source address and in total, so a
//! flood of silent sockets cannot use up the server's file descriptors and lock real viewers
//! out: past the per-address cap a new connection is closed at once; at the total cap the
//! oldest waiting connection is shed to make room (a real viewer logs in within a second, a
//! flood's sockets just sit there, so the oldest is almost always the flood's).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::sync::Notify;

use crate::hid::router::ViewerId;

/// Connections one address may have waiting to log in.
pub const MAX_WAITING_PER_ADDRESS: usize = 8;
/// Connections waiting to log in, from all addresses together.
pub const MAX_WAITING: usize = 128;

/// Asks one connection's task to close, saying why.
#[derive(Default)]
pub struct Kick {
    notify: Notify,
    reason: OnceLock<&'static str>,
}

impl Kick {
    pub fn close(&self, reason: &'static str) {
        let _ = self.reason.set(reason);
        self.notify.notify_one();
    }

    /// Resolves once [`Kick::close`] was called, with its reason.
    pub async fn closed(&self) -> &'static str {
        self.notify.notified().await;
        self.reason.get().copied().unwrap_or("closed by the server")
    }
}

pub struct Admission {
    /// Oldest first.
    waiting: Mutex<VecDeque<(ViewerId, IpAddr, Arc<Kick>)>>,
}

impl Admission {
    pub fn new() -> Self {
        Self { waiting: Mutex::default() }
    }

    /// A new connection from `address`: false if that address already has too many waiting
    /// (the caller closes it); otherwise it waits, and the oldest waiting one is shed if the
    /// total was reached.
    pub fn admit(&self, id: ViewerId, address: IpAddr, kick: Arc<Kick>) -> bool {
        let mut waiting = self.lock();
        if waiting.iter().filter(|(_, from, _)| *from == address).count() >= MAX_WAITING_PER_ADDRESS {
            return false;
        }
        if waiting.len() >= MAX_WAITING
            && let Some((_, _, oldest)) = waiting.pop_front()
        {
            oldest.close("shed: too many connections waiting to log in");
        }
        waiting.push_back((id, address, kick));
        true
    }

    /// The connection logged in, or went away: it no longer counts.
    pub fn done(&self, id: ViewerId) {
        self.lock().retain(|(waiting, _, _)| *waiting != id);
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(ViewerId, IpAddr, Arc<Kick>)>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Admission {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(n: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, n))
    }

    #[test]
    fn per_address_cap_then_total_cap_sheds_the_oldest() {
        let admission = Admission::new();
        let kicks: Vec<Arc<Kick>> = (0..=MAX_WAITING).map(|_| Arc::new(Kick::default())).collect();
        for (id, kick) in kicks.iter().enumerate().take(MAX_WAITING_PER_ADDRESS) {
            assert!(admission.admit(id as u64, address(1), kick.clone()));
        }
        assert!(!admission.admit(99, address(1), Arc::new(Kick::default())), "ninth from one address");
        admission.done(0);
        assert!(admission.admit(0, address(1), kicks[0].clone()), "room again after a login");
        for (id, kick) in kicks.iter().enumerate().take(MAX_WAITING).skip(MAX_WAITING_PER_ADDRESS) {
            let from = address(2 + (id / MAX_WAITING_PER_ADDRESS) as u8);
            assert!(admission.admit(id as u64, from, kick.clone()));
        }
        assert!(kicks[1].reason.get().is_none());
        assert!(admission.admit(MAX_WAITING as u64, address(250), kicks[MAX_WAITING].clone()));
        assert_eq!(kicks[1].reason.get().copied(), Some("shed: too many connections waiting to log in"), "the oldest");
        assert_eq!(admission.lock().len(), MAX_WAITING);
    }
}
