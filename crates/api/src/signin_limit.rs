//! Sign-in throttling, kept in each node's memory: it slows guessing down, it does not
//! guard the correctness of any data, so nodes need not share it.
//!
//! Two limits, both checked and reserved in one step *before* the password is verified, so
//! that attempts racing each other can never verify more than the limits allow (an attempt
//! in flight counts as a failure until it is answered):
//!
//! - **Per account** (all of its addresses: the key is the user's zuid, or the address
//!   itself when it names no user, so unknown users are throttled alike): the first
//!   `free_failures` failures cost nothing; after them, each attempt must wait
//!   `base_delay × 2^k` since the last failure (k = failures beyond the free ones), at most
//!   [`MAX_DELAY`], and only one attempt at a time. Sooner is answered 429 without
//!   verifying. The account is slowed, never locked: a correct password once the wait is
//!   over signs in and forgets the failures, which are forgotten anyway [`ACCOUNT_MEMORY`]
//!   after the last one.
//! - **Per client address** (an IPv6 address counts by its /64, which one host usually
//!   holds whole): at most `client_max_failures` failures within `window`, then 429 until
//!   the oldest leaves the window. A correct password does not reset it (one account of
//!   one's own must not buy more guesses at others).
//!
//! Memory is bounded: past [`MAX_KEYS`] records in a map, the least recently active tenth
//! (none with an attempt in flight) is dropped. That fails open for stale records rather
//! than refusing sign-ins to every newcomer, and a record under attack is never the least
//! recently active.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest wait an account's failures can impose.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// An account's failures are forgotten this long after the last one.
pub const ACCOUNT_MEMORY: Duration = Duration::from_secs(60 * 60);
/// Records per map (accounts, client addresses) beyond which the oldest are dropped.
pub const MAX_KEYS: usize = 50_000;
/// Expired records are swept when a map has grown to twice its size after the last sweep,
/// and never below this: sweeping is linear, so it must not run on every insert.
const SWEEP_FLOOR: usize = 1024;

/// The limits (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct SignInPolicy {
    pub free_failures: u32,
    pub base_delay: Duration,
    pub client_max_failures: u32,
    pub window: Duration,
}

/// An attempt refused without verifying: when to come back, and which limit refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub reason: &'static str,
}

#[derive(Default)]
struct AccountRecord {
    failures: u32,
    last_failure: Option<Instant>,
    in_flight: u32,
    touched: Option<Instant>,
}

#[derive(Default)]
struct ClientRecord {
    /// Failures within the window, oldest first; never more than the limit is kept.
    failures: VecDeque<Instant>,
    in_flight: u32,
    touched: Option<Instant>,
}

/// A map of records, bounded and swept (see the module documentation).
struct Bounded<R> {
    records: HashMap<String, R>,
    next_sweep: usize,
}

impl<R: Default> Bounded<R> {
    fn new() -> Self {
        Self {
            records: HashMap::new(),
            next_sweep: SWEEP_FLOOR,
        }
    }

    /// The record of `key`, made room for first when it is new.
    fn entry(
        &mut self,
        key: &str,
        expired: impl Fn(&R) -> bool,
        idle_since: impl Fn(&R) -> Option<Instant>,
    ) -> &mut R {
        if !self.records.contains_key(key) {
            if self.records.len() >= self.next_sweep {
                self.records.retain(|_, r| !expired(r));
                self.next_sweep = (self.records.len() * 2).max(SWEEP_FLOOR);
            }
            if self.records.len() >= MAX_KEYS {
                self.evict_oldest_tenth(&idle_since);
            }
        }
        self.records.entry(key.to_string()).or_default()
    }

    /// Drops the tenth of the records least recently active (`idle_since` is `None` for
    /// one with an attempt in flight, which stays).
    fn evict_oldest_tenth(&mut self, idle_since: &impl Fn(&R) -> Option<Instant>) {
        let mut idle: Vec<(Instant, String)> = self
            .records
            .iter()
            .filter_map(|(k, r)| Some((idle_since(r)?, k.clone())))
            .collect();
        let n = (MAX_KEYS / 10).min(idle.len());
        if n == 0 {
            return;
        }
        idle.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
        for (_, k) in &idle[..n] {
            self.records.remove(k);
        }
        tracing::warn!(
            dropped = n,
            "sign-in throttle at its bound: the least recently active records were dropped"
        );
    }
}

struct Maps {
    accounts: Bounded<AccountRecord>,
    clients: Bounded<ClientRecord>,
}

pub struct SignInLimiter {
    policy: SignInPolicy,
    maps: Mutex<Maps>,
}

/// A reserved attempt. Say how it went with [`Attempt::succeeded`] or [`Attempt::failed`];
/// dropped without either (a storage error, a request cut off), it is released uncounted.
pub struct Attempt<'a> {
    limiter: &'a SignInLimiter,
    account: String,
    client: String,
    done: bool,
}

impl Attempt<'_> {
    /// The right password: the account's failures are forgotten (the client's are not).
    pub fn succeeded(mut self) {
        self.finish(Some(false));
    }

    pub fn failed(mut self) {
        self.finish(Some(true));
    }

    fn finish(&mut self, failed: Option<bool>) {
        self.done = true;
        self.limiter
            .finish(&self.account, &self.client, failed, Instant::now());
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(None);
        }
    }
}

/// The wait after `beyond` failures past the free ones: `base × 2^beyond`, at most
/// [`MAX_DELAY`].
fn delay(base: Duration, beyond: u32) -> Duration {
    base.checked_mul(1u32.checked_shl(beyond).unwrap_or(u32::MAX))
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY)
}

/// The throttle's key for a client address: the address, or its /64 for IPv6.
pub fn client_key(addr: &str) -> String {
    match addr.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
        Ok(ip) => ip.to_string(),
        Err(_) => addr.to_string(),
    }
}

impl SignInLimiter {
    pub fn new(policy: SignInPolicy) -> Self {
        Self {
            policy: SignInPolicy {
                free_failures: policy.free_failures.max(1),
                client_max_failures: policy.client_max_failures.max(1),
                ..policy
            },
            maps: Mutex::new(Maps {
                accounts: Bounded::new(),
                clients: Bounded::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves an attempt at `account` from `client`, or says why not (and when to
    /// come back). Both limits are checked and reserved under one lock.
    pub fn begin(&self, account: &str, client: &str) -> Result<Attempt<'_>, Throttled> {
        self.begin_at(account, client, Instant::now())?;
        Ok(Attempt {
            limiter: self,
            account: account.to_string(),
            client: client.to_string(),
            done: false,
        })
    }

    fn begin_at(&self, account: &str, client: &str, now: Instant) -> Result<(), Throttled> {
        let p = self.policy;
        let mut maps = self.lock();
        let Maps { accounts, clients } = &mut *maps;
        let c = clients.entry(
            client,
            |r| r.in_flight == 0 && r.failures.back().is_none_or(|t| now - *t > p.window),
            |r| (r.in_flight == 0).then_some(r.touched).flatten(),
        );
        while c.failures.front().is_some_and(|t| now - *t > p.window) {
            c.failures.pop_front();
        }
        c.touched = Some(now);
        if c.failures.len() as u64 + u64::from(c.in_flight) >= u64::from(p.client_max_failures) {
            let retry_after = c
                .failures
                .front()
                .map_or(Duration::from_secs(1), |t| (*t + p.window) - now);
            return Err(Throttled {
                retry_after,
                reason: "client",
            });
        }
        let a = accounts.entry(
            account,
            |r| r.in_flight == 0 && r.last_failure.is_none_or(|t| now - t > ACCOUNT_MEMORY),
            |r| (r.in_flight == 0).then_some(r.touched).flatten(),
        );
        a.touched = Some(now);
        if a.last_failure.is_some_and(|t| now - t > ACCOUNT_MEMORY) {
            (a.failures, a.last_failure) = (0, None);
        }
        let free = a.failures + a.in_flight < p.free_failures;
        if !free {
            // Past the free failures: one attempt at a time, once the wait is over.
            let beyond = a.failures.saturating_sub(p.free_failures);
            let open_at = a.last_failure.map(|t| t + delay(p.base_delay, beyond));
            let waiting = open_at.filter(|t| *t > now);
            if a.in_flight > 0 || a.failures < p.free_failures || waiting.is_some() {
                let retry_after = waiting.map_or(Duration::from_secs(1), |t| t - now);
                return Err(Throttled {
                    retry_after,
                    reason: "account",
                });
            }
        }
        // Both reserved together, and only when neither refuses.
        a.in_flight += 1;
        c.in_flight += 1;
        Ok(())
    }

    /// Ends an attempt: `Some(true)` failed, `Some(false)` succeeded, `None` released
    /// uncounted. A record dropped meanwhile (at the bound) is recreated for a failure.
    fn finish(&self, account: &str, client: &str, failed: Option<bool>, now: Instant) {
        let limit = self.policy.client_max_failures as usize;
        let mut maps = self.lock();
        let Maps { accounts, clients } = &mut *maps;
        if let Some(a) = accounts.records.get_mut(account) {
            a.in_flight = a.in_flight.saturating_sub(1);
        }
        if let Some(c) = clients.records.get_mut(client) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        match failed {
            Some(true) => {
                let a = accounts.records.entry(account.to_string()).or_default();
                a.failures = a.failures.saturating_add(1);
                (a.last_failure, a.touched) = (Some(now), Some(now));
                let c = clients.records.entry(client.to_string()).or_default();
                c.failures.push_back(now);
                while c.failures.len() > limit {
                    c.failures.pop_front();
                }
                c.touched = Some(now);
            }
            Some(false) => {
                if accounts
                    .records
                    .get(account)
                    .is_some_and(|a| a.in_flight == 0)
                {
                    accounts.records.remove(account);
                } else if let Some(a) = accounts.records.get_mut(account) {
                    (a.failures, a.last_failure) = (0, None);
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn limiter(free: u32, client_max: u32) -> SignInLimiter {
        SignInLimiter::new(SignInPolicy {
            free_failures: free,
            base_delay: SEC,
            client_max_failures: client_max,
            window: Duration::from_secs(300),
        })
    }

    /// One attempt, begun and finished at `now`: `Ok(())` when it was verified.
    fn attempt(
        l: &SignInLimiter,
        account: &str,
        client: &str,
        now: Instant,
        ok: bool,
    ) -> Result<(), Throttled> {
        l.begin_at(account, client, now)?;
        l.finish(account, client, Some(!ok), now);
        Ok(())
    }

    #[test]
    fn reservations_count_before_the_verdict() {
        let l = limiter(3, 100);
        let now = Instant::now();
        for _ in 0..3 {
            l.begin_at("zuid:1", "ip", now).unwrap();
        }
        let refused = l.begin_at("zuid:1", "other-ip", now).unwrap_err();
        assert_eq!(refused.reason, "account");
        // Released uncounted (e.g. a storage error): the slot is free again.
        l.finish("zuid:1", "ip", None, now);
        l.begin_at("zuid:1", "ip", now).unwrap();
    }

    #[test]
    fn past_the_free_failures_each_attempt_waits_twice_as_long() {
        let l = limiter(2, 100);
        let t0 = Instant::now();
        attempt(&l, "a", "ip", t0, false).unwrap();
        attempt(&l, "a", "ip", t0, false).unwrap();
        let refused = attempt(&l, "a", "ip", t0, true).unwrap_err();
        assert_eq!(
            refused,
            Throttled {
                retry_after: SEC,
                reason: "account"
            }
        );
        // After 1 s one attempt; it fails, and the next wait is 2 s, then 4 s.
        attempt(&l, "a", "ip", t0 + SEC, false).unwrap();
        assert_eq!(
            attempt(&l, "a", "ip", t0 + 2 * SEC, true)
                .unwrap_err()
                .retry_after,
            SEC
        );
        attempt(&l, "a", "ip", t0 + 3 * SEC, false).unwrap();
        assert!(attempt(&l, "a", "ip", t0 + 6 * SEC, true).is_err());
        // The right password once the wait is over signs in and forgets the failures.
        attempt(&l, "a", "ip", t0 + 7 * SEC, true).unwrap();
        attempt(&l, "a", "ip", t0 + 7 * SEC, false).unwrap();
        attempt(&l, "a", "ip", t0 + 7 * SEC, false).unwrap();
        // Another account is not slowed by this one.
        attempt(&l, "b", "ip", t0 + 7 * SEC, true).unwrap();
    }

    #[test]
    fn the_wait_is_capped_and_failures_are_forgotten() {
        assert_eq!(delay(SEC, 3), 8 * SEC);
        assert_eq!(delay(SEC, 10), MAX_DELAY);
        assert_eq!(delay(SEC, 40), MAX_DELAY);
        let l = limiter(1, 100);
        let t0 = Instant::now();
        attempt(&l, "a", "ip", t0, false).unwrap();
        assert!(attempt(&l, "a", "ip", t0, false).is_err());
        let later = t0 + ACCOUNT_MEMORY + SEC;
        attempt(&l, "a", "ip", later, false).unwrap();
        assert!(
            attempt(&l, "a", "ip", later, false).is_err(),
            "a fresh count of one"
        );
    }

    #[test]
    fn the_client_limit_is_hard_within_the_window() {
        let l = limiter(100, 2);
        let t0 = Instant::now();
        attempt(&l, "a", "ip", t0, false).unwrap();
        attempt(&l, "b", "ip", t0 + SEC, true).unwrap();
        attempt(&l, "c", "ip", t0 + SEC, false).unwrap();
        let refused = attempt(&l, "d", "ip", t0 + 2 * SEC, true).unwrap_err();
        assert_eq!(
            refused,
            Throttled {
                retry_after: Duration::from_secs(298),
                reason: "client"
            }
        );
        attempt(&l, "d", "other-ip", t0 + 2 * SEC, true).unwrap();
        // The refused attempt reserved nothing on the account.
        assert_eq!(
            l.lock().accounts.records.get("d").map(|r| r.in_flight),
            None
        );
        attempt(&l, "d", "ip", t0 + Duration::from_secs(301), true).unwrap();
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(client_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(client_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(client_key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(client_key("192.0.2.1"), "192.0.2.1");
    }

    #[test]
    fn the_maps_stay_bounded() {
        let l = limiter(100, 1_000_000);
        let now = Instant::now();
        // One attempt stays in flight: its record is never dropped.
        l.begin_at("kept", "ip", now).unwrap();
        for i in 0..MAX_KEYS + 10 {
            attempt(
                &l,
                &format!("email:u{i}@x"),
                "ip",
                now + Duration::from_millis(i as u64),
                false,
            )
            .unwrap();
        }
        let maps = l.lock();
        assert!(maps.accounts.records.len() <= MAX_KEYS);
        assert!(maps.accounts.records.contains_key("kept"));
        assert!(
            !maps.accounts.records.contains_key("email:u0@x"),
            "the oldest went first"
        );
        assert!(maps
            .accounts
            .records
            .contains_key(&format!("email:u{}@x", MAX_KEYS + 9)));
    }
}
