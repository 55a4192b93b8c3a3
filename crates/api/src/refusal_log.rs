//! Requests refused on the admin URLs, counted in memory and written a few rows at a time.
//!
//! Every refused request used to be written as a row of its own, so anybody who could reach
//! the port could grow the database at the rate they sent made-up tokens. Now:
//!
//! - a refusal without a valid token costs no write of its own: refusals alike
//!   (organization, client address, method, status, error code) are counted over a window
//!   and written as one row with the count, the first and last time and one sample;
//! - a refusal of a *valid* token (a user reaching for another organization, a member on an
//!   admin URL) is evidence about a known account and is written as its own event, naming
//!   the user, up to a number per user per window (`--security-events-per-user`); past that it is counted
//!   like the others, so a stolen token cannot be turned into the same attack.
//!
//! Everything here is bounded: at most [`MAX_GROUPS`] groups and [`MAX_SINGLES`] single
//! events wait for a window's write; what does not fit is counted in `/metrics`
//! (`mailplane_security_events_dropped_total`) and not kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailplane_domain::{Zoid, Zuid};
use mailplane_store::{clip_event_path, SecurityEvent, Store};

/// Groups waiting for a window's write, at most.
pub const MAX_GROUPS: usize = 10_000;
/// Single events (valid tokens) waiting for a window's write, at most.
pub const MAX_SINGLES: usize = 1_000;

/// What makes refusals alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    zoid: Zoid,
    client_addr: Option<String>,
    method: String,
    status: u16,
    error_code: String,
    actor: Option<Zuid>,
}

#[derive(Default)]
struct Pending {
    groups: HashMap<Key, SecurityEvent>,
    singles: Vec<SecurityEvent>,
    singles_per_user: HashMap<Zuid, u32>,
}

pub struct RefusalLog {
    window: Duration,
    per_user: u32,
    pending: Mutex<Pending>,
    dropped: AtomicU64,
    written: AtomicU64,
}

impl RefusalLog {
    /// Refusals are written every `window`; a user's first `per_user` refusals of each
    /// window are written one by one.
    pub fn new(window: Duration, per_user: u32) -> Self {
        RefusalLog {
            window,
            per_user,
            pending: Mutex::new(Pending::default()),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }

    /// Refusals not kept because the window's groups were full, so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Rows handed to the store so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Notes one refused request (`event.count` is 1).
    pub fn note(&self, mut event: SecurityEvent) {
        event.path = clip_event_path(&event.path);
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(user) = event.actor_zuid {
            let room = p.singles.len() < MAX_SINGLES;
            let n = p.singles_per_user.entry(user).or_default();
            if *n < self.per_user && room {
                *n += 1;
                p.singles.push(event);
                return;
            }
        }
        let key = Key {
            zoid: event.zoid,
            client_addr: event.client_addr.clone(),
            method: event.method.clone(),
            status: event.status,
            error_code: event.error_code.clone(),
            actor: event.actor_zuid,
        };
        if let Some(group) = p.groups.get_mut(&key) {
            group.count += 1;
            group.at_ms = group.at_ms.max(event.at_ms);
            return;
        }
        if p.groups.len() >= MAX_GROUPS {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        p.groups.insert(key, event);
    }

    /// Everything noted since the last drain, single events first.
    pub fn drain(&self) -> Vec<SecurityEvent> {
        let p = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out = p.singles;
        let mut groups: Vec<SecurityEvent> = p.groups.into_values().collect();
        groups.sort_by_key(|e| e.first_ms);
        out.extend(groups);
        out
    }

    /// Writes what was noted: one transaction, at most [`MAX_SINGLES`] + [`MAX_GROUPS`]
    /// rows. A failed write is logged and its rows are lost (they are evidence, not data
    /// anybody was promised).
    pub async fn flush(&self, store: &Store) {
        let events = self.drain();
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        match store.record_security_events(events).await {
            Ok(()) => {
                self.written.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(cause = %e, rows = n, "could not record security events"),
        }
    }

    /// Flushes every window, forever: the one task that writes refusals.
    pub fn spawn_flusher(self: &Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        let log = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(log.window);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                log.flush(&store).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(zoid: u64, client: &str, status: u16, actor: Option<u64>, at: i64) -> SecurityEvent {
        SecurityEvent {
            at_ms: at,
            first_ms: at,
            count: 1,
            request_id: Some(format!("r{at}")),
            client_addr: Some(client.into()),
            zoid: Zoid::new(zoid).unwrap(),
            method: "GET".into(),
            path: format!("/api/organization/{zoid}/accounts/{}", "x".repeat(20_000)),
            status,
            error_code: "INVALID_OAUTHTOKEN".into(),
            actor_zuid: actor.map(|z| Zuid::new(z).unwrap()),
        }
    }

    #[test]
    fn refusals_alike_become_one_row_with_their_count() {
        let log = RefusalLog::new(Duration::from_secs(10), 3);
        for i in 0..2000 {
            log.note(event(1, "192.0.2.1", 401, None, i));
        }
        log.note(event(1, "192.0.2.2", 401, None, 5));
        let rows = log.drain();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 2001);
        let big = rows.iter().find(|r| r.count == 2000).unwrap();
        assert_eq!((big.first_ms, big.at_ms), (0, 1999));
        assert!(big.path.chars().count() <= mailplane_store::MAX_EVENT_PATH_CHARS + 1);
        assert!(log.drain().is_empty(), "drained");
    }

    #[test]
    fn a_users_first_refusals_are_single_then_counted() {
        let log = RefusalLog::new(Duration::from_secs(10), 3);
        for i in 0..10 {
            log.note(event(1, "192.0.2.1", 404, Some(77), i));
        }
        let rows = log.drain();
        assert_eq!(rows.iter().filter(|r| r.count == 1).count(), 3);
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 10);
        assert!(rows.iter().all(|r| r.actor_zuid.is_some()));
        // A new window: the user's singles start again.
        log.note(event(1, "192.0.2.1", 404, Some(77), 20));
        assert_eq!(log.drain()[0].count, 1);
    }

    #[test]
    fn groups_are_bounded_and_the_rest_is_counted_as_dropped() {
        let log = RefusalLog::new(Duration::from_secs(10), 0);
        for i in 0..(MAX_GROUPS as u64 + 5) {
            log.note(event(1 + i, "192.0.2.1", 401, None, 0));
        }
        assert_eq!(log.dropped(), 5);
        assert_eq!(log.drain().len(), MAX_GROUPS);
    }
}
