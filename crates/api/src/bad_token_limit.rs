//! Clients that keep presenting tokens that do not exist are refused before any database
//! lookup: past a number of answers (`--bad-token-limit`) `401 INVALID_OAUTHTOKEN` to one client
//! address within a window, every request of that address that carries a token is answered
//! 429 with `Retry-After` until the window ends. A guessing flood then costs a map lookup per
//! request, not a database read (nor, for a write, a place in SQLite's writer queue).
//!
//! Behind a NAT or a proxy not named by `--trusted-proxy`, clients share an address: one of
//! them flooding slows the others down for the rest of the window. Kept in each node's
//! memory, like the sign-in throttle.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Client addresses tracked at most; past it, expired ones are swept, and an address that
/// still finds no room is not tracked (a flood spread that wide is below the limit per
/// address anyway).
pub const MAX_CLIENTS: usize = 100_000;

pub struct BadTokenLimit {
    max: u32,
    window: Duration,
    /// Per client address: when its window started, and its invalid tokens in it.
    clients: Mutex<HashMap<String, (Instant, u32)>>,
}

impl BadTokenLimit {
    /// At most `max` invalid tokens per client address per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        BadTokenLimit {
            max,
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// How long `client` must wait, if it has used up its invalid tokens.
    pub fn retry_after(&self, client: &str) -> Option<Duration> {
        let now = Instant::now();
        let map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let (start, n) = map.get(client)?;
        let elapsed = now.duration_since(*start);
        (elapsed < self.window && *n >= self.max).then(|| self.window - elapsed)
    }

    /// Counts one `401 INVALID_OAUTHTOKEN` answer to `client`.
    pub fn note_invalid(&self, client: &str) {
        let now = Instant::now();
        let window = self.window;
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(client) && map.len() >= MAX_CLIENTS {
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= MAX_CLIENTS {
                return;
            }
        }
        let entry = map.entry(client.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_past_the_limit_until_its_window_ends() {
        let l = BadTokenLimit::new(3, Duration::from_millis(50));
        for _ in 0..3 {
            assert!(l.retry_after("192.0.2.1").is_none());
            l.note_invalid("192.0.2.1");
        }
        let wait = l.retry_after("192.0.2.1").expect("refused");
        assert!(wait <= Duration::from_millis(50));
        assert!(l.retry_after("192.0.2.2").is_none(), "per address");
        std::thread::sleep(Duration::from_millis(60));
        assert!(l.retry_after("192.0.2.1").is_none(), "a new window");
        l.note_invalid("192.0.2.1");
        assert!(l.retry_after("192.0.2.1").is_none());
    }

    #[test]
    fn the_map_is_bounded() {
        let l = BadTokenLimit::new(1, Duration::from_secs(60));
        for i in 0..MAX_CLIENTS + 10 {
            l.note_invalid(&format!("c{i}"));
        }
        assert_eq!(l.clients.lock().unwrap().len(), MAX_CLIENTS);
        assert!(l.retry_after(&format!("c{}", MAX_CLIENTS + 5)).is_none());
    }
}
