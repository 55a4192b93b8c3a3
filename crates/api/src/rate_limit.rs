//! Per-token rate limiting: a token bucket per access token, refilled at a configured
//! rate. In each node's memory (a node's share of the load is what it protects); off by
//! default.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// Keyed by a keyed hash of the token: the map never holds a token itself.
    buckets: Mutex<HashMap<u64, Bucket>>,
    hasher: RandomState,
}

/// Past this many buckets, full (idle) ones are dropped before adding another.
const SWEEP_ABOVE: usize = 100_000;

impl RateLimiter {
    /// `per_second` requests per second, with bursts of up to `burst`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
        }
    }

    /// Takes one request's worth; on refusal, how long until the next one is allowed.
    pub fn take(&self, token: &str) -> Result<(), Duration> {
        let key = self.hasher.hash_one(token);
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_ABOVE {
            let (rate, burst) = (self.per_second, self.burst);
            map.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let b = map.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.updated).as_secs_f64() * self.per_second)
            .min(self.burst);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_waits_per_token() {
        let l = RateLimiter::new(1.0, 2.0);
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_ok());
        let wait = l.take("a").unwrap_err();
        assert!(
            wait > Duration::from_millis(500) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(l.take("b").is_ok(), "another token has its own bucket");
    }
}
