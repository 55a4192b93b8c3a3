//! Retention: rows of the audit trail and the security log older than their limit are
//! deleted in the background, a small batch per transaction, so that pruning never holds
//! the writer (SQLite's single writer, PostgreSQL's row locks) for long.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{now_ms, Pruned, Store};

/// Rows deleted per transaction.
pub const PRUNE_BATCH: u32 = 500;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How long rows are kept; `None` keeps them forever.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub audit_days: Option<u32>,
    pub security_event_days: Option<u32>,
    /// Time between two runs.
    pub every: Duration,
}

/// What retention has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct RetentionStats {
    pub runs: AtomicU64,
    pub failures: AtomicU64,
    pub audit_rows: AtomicU64,
    pub security_event_rows: AtomicU64,
}

impl Retention {
    /// One run: each table with a limit, batch after batch until a batch comes back short.
    pub async fn run_once(&self, store: &Store, stats: &RetentionStats) {
        for (table, days, counter) in [
            (Pruned::Audit, self.audit_days, &stats.audit_rows),
            (
                Pruned::SecurityEvents,
                self.security_event_days,
                &stats.security_event_rows,
            ),
        ] {
            let Some(days) = days else { continue };
            let before = now_ms() - i64::from(days) * DAY_MS;
            loop {
                match store.prune(table, before, PRUNE_BATCH).await {
                    Ok(n) => {
                        counter.fetch_add(n, Ordering::Relaxed);
                        if n < u64::from(PRUNE_BATCH) {
                            break;
                        }
                        // Room for the requests' writes between two batches.
                        tokio::task::yield_now().await;
                    }
                    Err(e) => {
                        stats.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(table = table.table(), cause = %e, "retention: pruning failed");
                        break;
                    }
                }
            }
        }
        stats.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs at start-up and then every [`Retention::every`], forever.
    pub fn spawn(self, store: Store, stats: Arc<RetentionStats>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.run_once(&store, &stats).await;
            }
        })
    }
}
