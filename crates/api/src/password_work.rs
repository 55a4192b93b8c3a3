//! The argon2 work of the server (a sign-in's verification, a new user's hash), through
//! one pool of slots.
//!
//! argon2 is slow on purpose: each run holds a core and about 19 MiB for tens of
//! milliseconds. Run unbounded, a burst of sign-ins from anonymous clients would queue as
//! many blocking threads (tokio allows 512) and as much memory, and every other request
//! would wait behind them. So at most [`PasswordWork::new`]'s `slots` runs at once (by
//! default one per core: more would only share the cores); a request that finds no slot
//! free within `wait` is answered 503 `SERVER_BUSY` with `Retry-After` rather than queued.
//! Waiting requests are bounded too: by the HTTP connection limit, and each by `wait`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// What `Retry-After` says to a request refused for want of a slot, in seconds.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// The pool of argon2 slots (see the module documentation).
pub struct PasswordWork {
    slots: Arc<Semaphore>,
    wait: Duration,
}

/// Why the work did not run to its end.
#[derive(Debug)]
pub enum PasswordWorkError {
    /// No slot came free within the wait: nothing was run.
    Busy,
    /// The work panicked.
    Failed(String),
}

impl PasswordWork {
    /// `slots` runs at once (at least one); a request waits `wait` at most for a slot.
    pub fn new(slots: usize, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            wait,
        }
    }

    /// One slot per core, as the operating system reports them (1 if it cannot say).
    pub fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Runs `work` on a blocking thread once a slot is free, or answers
    /// [`PasswordWorkError::Busy`] after the wait.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordWorkError> {
        let slot = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordWorkError::Busy)?
            .expect("the semaphore is never closed");
        // The slot goes with the work, not with the request: a request cut off (by its
        // time limit, or a client that leaves) does not stop a blocking thread, and the
        // slot must stay taken until the core is free again.
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(slot);
            out
        })
        .await
        .map_err(|e| PasswordWorkError::Failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_slots_a_request_waits_then_is_busy() {
        let work = Arc::new(PasswordWork::new(1, Duration::from_millis(50)));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let holder = {
            let work = work.clone();
            tokio::spawn(async move {
                work.run(move || {
                    started_tx.send(()).unwrap();
                    held.recv().unwrap();
                    1
                })
                .await
            })
        };
        started.await.unwrap();
        assert!(matches!(work.run(|| 2).await, Err(PasswordWorkError::Busy)));
        release.send(()).unwrap();
        assert_eq!(holder.await.unwrap().unwrap(), 1);
        assert_eq!(work.run(|| 3).await.unwrap(), 3, "the slot is free again");
    }

    #[tokio::test]
    async fn a_request_cut_off_leaves_its_slot_taken_until_the_work_ends() {
        let work = Arc::new(PasswordWork::new(1, Duration::from_millis(50)));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let request = {
            let work = work.clone();
            tokio::spawn(async move {
                work.run(move || {
                    started_tx.send(()).unwrap();
                    held.recv().unwrap();
                })
                .await
            })
        };
        started.await.unwrap();
        request.abort();
        let _ = request.await;
        assert!(
            matches!(work.run(|| ()).await, Err(PasswordWorkError::Busy)),
            "the blocking work still runs: its slot is still taken"
        );
        release.send(()).unwrap();
        let mut tries = 0;
        while work.run(|| ()).await.is_err() {
            tries += 1;
            assert!(tries < 100, "the slot never came back");
        }
    }

    #[tokio::test]
    async fn a_panic_is_a_failure_and_gives_the_slot_back() {
        let work = PasswordWork::new(1, Duration::from_millis(50));
        assert!(matches!(
            work.run(|| panic!("boom")).await,
            Err(PasswordWorkError::Failed(_))
        ));
        assert_eq!(work.run(|| 1).await.unwrap(), 1);
    }
}
