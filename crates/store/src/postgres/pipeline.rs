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

pub(crate) struct Tx {
    conn: Option<Object>,
    /// `BEGIN` was sent: the connection may be inside a transaction.
    begun: AtomicBool,
    /// The transaction's `COMMIT` or `ROLLBACK` was answered.
    ended: AtomicBool,
}

impl Tx {
    pub(crate) fn new(conn: Object) -> Self {
        Tx {
            conn: Some(conn),
            begun: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        }
    }

    /// The connection outside any transaction, for reads: each statement reads its own
    /// snapshot, and none opens or ends a transaction (as if one had begun and ended).
    pub(crate) fn outside(conn: Object) -> Self {
        Tx {
            conn: Some(conn),
            begun: AtomicBool::new(true),
            ended: AtomicBool::new(true),
        }
    }

    pub(crate) fn client(&self) -> &Object {
        self.conn
            .as_ref()
            .expect("the connection is only taken when the transaction is dropped")
    }

    /// Runs `statement`, sending `BEGIN` just ahead of it when it is the transaction's
    /// first: the transaction opens without a round trip of its own.
    pub(crate) async fn send<T>(
        &self,
        statement: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if self.begun.swap(true, Ordering::AcqRel) {
            return statement.await;
        }
        let (begun, out) = tokio::join!(self.client().batch_execute("BEGIN"), statement);
        begun?;
        out
    }

    /// Sends the statements of `last`, then `COMMIT`. `last` must send every statement on
    /// its first poll and fail only by the server's answer (see the module's description).
    pub(crate) async fn commit_with<T, E: From<StoreError>>(
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

    /// Ends what the work left open: `COMMIT` after work that succeeded, `ROLLBACK`
    /// after work that failed.
    pub(crate) async fn finish<T, E: From<StoreError>>(&self, out: Result<T, E>) -> Result<T, E> {
        if !self.begun.load(Ordering::Acquire) || self.ended.load(Ordering::Acquire) {
            return out;
        }
        let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self.client().batch_execute(end).await;
        // If it failed, `ended` stays false and the drop closes the connection.
        if ended.is_ok() {
            self.ended.store(true, Ordering::Release);
        }
        let value = out?;
        ended.map_err(StoreError::from)?;
        Ok(value)
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
