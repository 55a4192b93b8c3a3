//! A transaction whose `BEGIN` and `COMMIT` travel with its statements.
//!
//! tokio-postgres sends a request when its future is first polled and answers requests in
//! the order they were sent, and PostgreSQL runs them in that order. So `BEGIN` polled just
//! ahead of the first statements reaches the server ahead of them without a round trip of
//! its own, and `COMMIT` polled just behind the last ones the same. A flag change is two
//! round trips this way, where `Client::transaction` and `commit` make it four.
//!
//! What makes this safe:
//! - A statement sent behind `COMMIT` would run outside the transaction, so [`Tx::commit_with`]
//!   takes only statements that are sent on their first poll (already prepared) and whose
//!   only failure is the server's answer. When one of them fails, the transaction is aborted
//!   and PostgreSQL turns the `COMMIT` into a rollback: nothing of it is kept.
//! - A connection must never go back to the pool inside a transaction. When the work fails
//!   [`Tx::finish`] rolls back; when it is dropped half-way (a timeout, a client that went
//!   away) the connection is closed instead of pooled, and the server rolls back.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::Object;

use crate::StoreError;

pub(super) struct Tx {
    conn: Option<Object>,
    /// `BEGIN` was sent: the connection may be inside a transaction.
    begun: AtomicBool,
    /// The transaction's `COMMIT` or `ROLLBACK` was answered.
    ended: AtomicBool,
}

impl Tx {
    pub(super) fn new(conn: Object) -> Self {
        Tx {
            conn: Some(conn),
            begun: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        }
    }

    pub(super) fn client(&self) -> &Object {
        self.conn
            .as_ref()
            .expect("the connection is only taken when the transaction is dropped")
    }

    /// Sends `BEGIN`, then the statements of `first`, and answers `first`'s result once
    /// both are in.
    pub(super) async fn begin_with<T, E: From<StoreError>>(
        &self,
        first: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.begun.store(true, Ordering::Release);
        let (begun, out) = tokio::join!(self.client().batch_execute("BEGIN"), first);
        begun.map_err(StoreError::from)?;
        out
    }

    /// Sends the statements of `last`, then `COMMIT`. `last` must send every statement on
    /// its first poll and fail only by the server's answer (see the module's description).
    pub(super) async fn commit_with<T, E: From<StoreError>>(
        &self,
        last: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let (out, committed) = tokio::join!(last, self.client().batch_execute("COMMIT"));
        // Either way the transaction is over: a COMMIT behind a failed statement rolls back.
        self.ended.store(true, Ordering::Release);
        let value = out?;
        committed.map_err(StoreError::from)?;
        Ok(value)
    }

    /// `COMMIT` on its own, for work whose last step reads what it wrote.
    pub(super) async fn commit(&self) -> Result<(), StoreError> {
        let committed = self.client().batch_execute("COMMIT").await;
        self.ended.store(true, Ordering::Release);
        Ok(committed?)
    }

    /// Ends what the work left open. Work that neither committed nor failed is a bug of
    /// ours; it is rolled back and reported, never taken as done.
    pub(super) async fn finish<T, E: From<StoreError>>(&self, out: Result<T, E>) -> Result<T, E> {
        if !self.begun.load(Ordering::Acquire) || self.ended.load(Ordering::Acquire) {
            return out;
        }
        let rolled_back = self.client().batch_execute("ROLLBACK").await;
        // If the ROLLBACK failed, `ended` stays false and the drop closes the connection.
        if rolled_back.is_ok() {
            self.ended.store(true, Ordering::Release);
        }
        match (out, rolled_back) {
            (Err(failed), _) => Err(failed),
            (Ok(_), Err(e)) => Err(StoreError::from(e).into()),
            (Ok(_), Ok(())) => {
                Err(StoreError::Task("a transaction ended without its COMMIT".into()).into())
            }
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let open = self.begun.load(Ordering::Acquire) && !self.ended.load(Ordering::Acquire);
        if let Some(conn) = self.conn.take() {
            if open {
                // Taken out of the pool and dropped: the connection closes.
                drop(Object::take(conn));
            }
        }
    }
}
