//! Warnings that can repeat fast (a broken device, an exhausted resource) logged at most once
//! per interval, with how often they happened, so they neither flood the log nor vanish.

use std::time::{Duration, Instant};

/// One kind of warning; [`RateLimited::warn`] on every occurrence.
#[derive(Debug, Default)]
pub struct RateLimited {
    count: u64,
    logged: Option<Instant>,
}

impl RateLimited {
    pub const INTERVAL: Duration = Duration::from_secs(10);

    /// Counts an occurrence; logs `message(count so far)` unless one was logged within
    /// [`Self::INTERVAL`]. Returns whether it logged.
    pub fn warn(&mut self, message: impl FnOnce(u64) -> String) -> bool {
        self.count += 1;
        let due = self.logged.is_none_or(|at| at.elapsed() >= Self::INTERVAL);
        if due {
            let text = message(self.count);
            tracing::warn!("{text}");
            self.logged = Some(Instant::now());
        }
        due
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_everything_logs_once_per_interval() {
        let mut warning = RateLimited::default();
        let logged: Vec<bool> = (0..5).map(|_| warning.warn(|count| format!("{count}"))).collect();
        assert_eq!(logged, [true, false, false, false, false]);
        assert_eq!(warning.count(), 5);
    }
}
