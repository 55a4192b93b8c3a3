//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, on the
//! writer thread, so every thousand pages one batch of writers waits for the WAL to be
//! copied into the database file and flushed. Here a second connection copies it every
//! [`INTERVAL`] instead (a passive checkpoint, which never blocks the writer or a reader),
//! and the writer's own automatic checkpoint stays on, at a much higher threshold, only as
//! a bound on the WAL's size should this thread fall behind.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

use super::open_connection;
use crate::StoreError;

const INTERVAL: Duration = Duration::from_millis(50);

/// WAL pages at which the writer checkpoints itself (SQLite's default is 1,000).
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: i64 = 20_000;

/// Keeps the checkpoint thread running; it stops when this is dropped.
pub(super) struct Checkpointer {
    _stop: Sender<()>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = open_connection(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || loop {
                match stopped.recv_timeout(INTERVAL) {
                    Err(RecvTimeoutError::Timeout) => {
                        // Busy means another checkpoint is running: the next round retries.
                        if let Err(e) =
                            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        {
                            tracing::debug!(error = %e, "checkpoint skipped");
                        }
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            })
            .map_err(StoreError::Io)?;
        Ok(Checkpointer { _stop: stop })
    }
}
