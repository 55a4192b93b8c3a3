//! Sign-in throttling: at most N failed sign-ins per account and per client address
//! within a window. Kept in each node's memory: it slows guessing down, it does not guard
//! the correctness of any data, so nodes need not share it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct SignInLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Past this many keys, expired entries are swept before adding another.
const SWEEP_ABOVE: usize = 10_000;

impl SignInLimiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn recent(entries: &mut VecDeque<Instant>, window: Duration, now: Instant) -> usize {
        while entries
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            entries.pop_front();
        }
        entries.len()
    }

    /// Whether any of `keys` has used up its failures.
    pub fn is_blocked(&self, keys: &[&str]) -> bool {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().any(|k| {
            map.get_mut(*k)
                .is_some_and(|e| Self::recent(e, self.window, now) >= self.max_failures)
        })
    }

    pub fn record_failure(&self, keys: &[&str]) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_ABOVE {
            let window = self.window;
            map.retain(|_, e| Self::recent(e, window, now) > 0);
        }
        for k in keys {
            map.entry((*k).to_string()).or_default().push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_per_key() {
        let l = SignInLimiter::new(2, Duration::from_secs(60));
        assert!(!l.is_blocked(&["a", "ip"]));
        l.record_failure(&["a", "ip"]);
        l.record_failure(&["a", "ip"]);
        assert!(l.is_blocked(&["a"]));
        assert!(
            l.is_blocked(&["b", "ip"]),
            "the address is blocked whatever the account"
        );
        assert!(!l.is_blocked(&["b", "other-ip"]));
    }

    #[test]
    fn failures_expire() {
        let l = SignInLimiter::new(1, Duration::from_millis(1));
        l.record_failure(&["a"]);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!l.is_blocked(&["a"]));
    }
}
