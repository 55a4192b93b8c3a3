//! When relays are checked: as soon as an `extfrom` identity is added or changed, again
//! on a schedule once it passed (`--relay-recheck-hours`, spread with jitter so that
//! identities added together are not checked together), and when a user asks
//! (`verifysendmaildetails`). Checks run in a bounded number of slots shared by the
//! schedule and the users' requests; the database says which node takes which check
//! (a lease), so with several nodes each check is made once.
//!
//! A relay that failed is not checked again on its own: a wrong password stays wrong, and
//! the user who fixes it adds the identity again or asks for a check.

use std::sync::Arc;
use std::time::Duration;

use mailplane_domain::{AccountId, SendMailId};
use mailplane_store::{RelayCheckJob, RelayOutcome, Store, StoreError};
use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::guard::RelayGuard;
use crate::{Checker, Target};

/// How the schedule runs.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// How long after a check that passed the relay is checked again (before jitter).
    pub recheck: Duration,
    /// Checks made at once, by the schedule and for requests together.
    pub slots: usize,
    /// How often the schedule looks for due checks besides being woken.
    pub poll: Duration,
    /// This node's name in the leases it takes.
    pub node: String,
    /// The longest a check takes (the checker's timeout): a lease lasts longer.
    pub check_timeout: Duration,
}

/// The relay checks of this node; cheap to clone.
#[derive(Clone)]
pub struct RelayChecks {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    guard: RelayGuard,
    checker: Checker,
    slots: Arc<Semaphore>,
    wake: Notify,
    cfg: ScheduleConfig,
}

/// A slot to make one check in, taken before the request changes anything; the check
/// holds it until it is recorded.
pub struct CheckSlot {
    _permit: OwnedSemaphorePermit,
}

impl RelayChecks {
    pub fn new(store: Store, guard: RelayGuard, checker: Checker, cfg: ScheduleConfig) -> Self {
        RelayChecks {
            inner: Arc::new(Inner {
                store,
                guard,
                checker,
                slots: Arc::new(Semaphore::new(cfg.slots.max(1))),
                wake: Notify::new(),
                cfg,
            }),
        }
    }

    /// Tells the schedule that a check may be due now (an identity was added).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// A free slot, if any: a request that finds none is answered busy.
    pub fn slot(&self) -> Option<CheckSlot> {
        self.inner
            .slots
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| CheckSlot { _permit: permit })
    }

    /// Checks identity `id` of `account` now, in `slot`, and records the outcome. `false`:
    /// the account has no such `extfrom` identity.
    pub async fn check_now(
        &self,
        slot: CheckSlot,
        account: AccountId,
        id: SendMailId,
    ) -> Result<bool, StoreError> {
        let lease = self.lease_ms();
        let Some(job) = self
            .inner
            .store
            .take_relay_check(&self.inner.cfg.node, account, id, lease)
            .await?
        else {
            return Ok(false);
        };
        self.run(job).await?;
        drop(slot);
        Ok(true)
    }

    /// Runs the schedule, forever.
    pub async fn serve(self) {
        let poll = self.inner.cfg.poll;
        loop {
            let free = self.inner.slots.available_permits();
            let taken = if free == 0 {
                Ok(0)
            } else {
                self.take_and_start(free).await
            };
            match taken {
                // Perhaps more are due: look again at once.
                Ok(n) if n > 0 && n == free => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "relay checks: cannot read what is due"),
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Takes up to `free` due checks and starts each in a slot of its own; how many.
    async fn take_and_start(&self, free: usize) -> Result<usize, StoreError> {
        let jobs = self
            .inner
            .store
            .take_relay_checks(&self.inner.cfg.node, self.lease_ms(), free)
            .await?;
        let n = jobs.len();
        for job in jobs {
            // Waits only if a request took the slot meanwhile: the check is leased anyway.
            let Ok(permit) = self.inner.slots.clone().acquire_owned().await else {
                return Ok(n);
            };
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.run(job).await {
                    tracing::warn!(error = %e, "relay check not recorded");
                }
                drop(permit);
            });
        }
        Ok(n)
    }

    /// Makes one check and records it, with the next one scheduled when it passed.
    async fn run(&self, job: RelayCheckJob) -> Result<(), StoreError> {
        let outcome = self.outcome(&job).await;
        match &outcome {
            Ok(()) => {
                tracing::info!(send_mail_id = %job.send_mail_id, from = %job.from_address, "relay check passed")
            }
            Err(e) => {
                tracing::info!(send_mail_id = %job.send_mail_id, from = %job.from_address, error = %e, "relay check failed")
            }
        }
        let next = outcome.is_ok().then(|| self.next_check_ms());
        self.inner
            .store
            .record_relay_check(job, outcome, next)
            .await?;
        Ok(())
    }

    /// The check itself: the guard picks the address, the password is opened for it.
    async fn outcome(&self, job: &RelayCheckJob) -> RelayOutcome {
        let addr = self
            .inner
            .guard
            .resolve(&job.server_name, job.server_port)
            .await
            .map_err(|refusal| refusal.to_string())?;
        let password = self.inner.store.relay_password(job).map_err(|_| {
            "the stored relay password cannot be opened with the current key".to_string()
        })?;
        let target = Target {
            addr,
            server_name: &job.server_name,
            connection: job.connection,
            user_name: &job.user_name,
            password: &password,
        };
        self.inner
            .checker
            .check(&target)
            .await
            .map_err(|failure| failure.to_string())
    }

    /// Long enough for a check and its recording; a node that dies leaves it to another.
    fn lease_ms(&self) -> i64 {
        let check = self.inner.cfg.check_timeout + Duration::from_secs(30);
        i64::try_from(check.as_millis()).unwrap_or(i64::MAX)
    }

    /// When a relay that passed is checked again: the interval, ±10 %.
    fn next_check_ms(&self) -> i64 {
        let base = self.inner.cfg.recheck.as_millis() as f64;
        let jitter = rand::thread_rng().gen_range(0.9..1.1);
        mailplane_store::now_ms() + (base * jitter) as i64
    }
}
