//! Brute-force protection per source address, as TigerVNC does it: after `threshold` failed
//! logins in a row an address is refused for a while, twice as long each time it fails again
//! after that. Every failure result is also delayed (in `viewer.rs`), so guessing costs time
//! even below the threshold.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The longest an address is refused at a time.
const MAX_BLOCK: Duration = Duration::from_secs(3600);
/// Above this many tracked addresses, expired entries are dropped (a spray of addresses must
/// not grow the map without bound).
const PRUNE_ABOVE: usize = 4096;

pub struct Blacklist {
    threshold: u32,
    first_block: Duration,
    addresses: Mutex<HashMap<IpAddr, Entry>>,
}

struct Entry {
    failures: u32,
    blocked_until: Option<Instant>,
    /// How long the next block lasts.
    next_block: Duration,
}

impl Blacklist {
    pub fn new(threshold: u32, first_block: Duration) -> Self {
        Self { threshold: threshold.max(1), first_block, addresses: Mutex::default() }
    }

    /// How much longer `address` is refused, if it is.
    pub fn blocked_for(&self, address: IpAddr) -> Option<Duration> {
        let until = self.lock().get(&address)?.blocked_until?;
        until.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
    }

    /// A failed login from `address`.
    pub fn failed(&self, address: IpAddr) {
        let now = Instant::now();
        let mut addresses = self.lock();
        if addresses.len() > PRUNE_ABOVE {
            addresses.retain(|_, entry| entry.blocked_until.is_some_and(|until| until > now));
        }
        let first_block = self.first_block;
        let entry =
            addresses.entry(address).or_insert(Entry { failures: 0, blocked_until: None, next_block: first_block });
        entry.failures += 1;
        // Once blocked, every further failure blocks again (for longer); before that it takes
        // `threshold` failures.
        if entry.failures >= self.threshold || entry.blocked_until.is_some() {
            let block = entry.next_block;
            entry.blocked_until = Some(now + block);
            entry.next_block = (block * 2).min(MAX_BLOCK);
            entry.failures = 0;
            tracing::warn!(%address, "too many failed logins: refusing this address for {}s", block.as_secs());
        }
    }

    /// A successful login from `address`: its record is cleared.
    pub fn succeeded(&self, address: IpAddr) {
        self.lock().remove(&address);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.addresses.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn the_threshold_blocks_then_each_failure_doubles_the_block() {
        let blacklist = Blacklist::new(5, Duration::from_secs(10));
        for _ in 0..4 {
            blacklist.failed(A);
        }
        assert_eq!(blacklist.blocked_for(A), None, "four failures are allowed");
        blacklist.failed(A);
        let first = blacklist.blocked_for(A).expect("blocked after five");
        assert!(first <= Duration::from_secs(10) && first > Duration::from_secs(9), "{first:?}");
        assert_eq!(blacklist.blocked_for(B), None, "other addresses are not affected");
        blacklist.failed(A);
        assert!(blacklist.blocked_for(A).expect("still blocked") > Duration::from_secs(19), "doubled");
        blacklist.succeeded(A);
        assert_eq!(blacklist.blocked_for(A), None);
    }

    #[test]
    fn blocks_are_capped_and_the_map_is_pruned() {
        let blacklist = Blacklist::new(1, Duration::from_secs(3000));
        blacklist.failed(A);
        blacklist.failed(A);
        assert!(blacklist.blocked_for(A).expect("blocked") <= MAX_BLOCK);
        let expired = Blacklist::new(1, Duration::ZERO);
        for n in 0..=u32::try_from(PRUNE_ABOVE).unwrap() + 1 {
            expired.failed(IpAddr::V4(n.into()));
        }
        assert!(expired.lock().len() <= PRUNE_ABOVE + 1, "expired entries were dropped");
    }
}
