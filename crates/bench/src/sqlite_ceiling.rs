//! The SQLite ceiling: a bare loop of single-row updates in the store's durability
//! settings (WAL, `synchronous=FULL`), with no HTTP, no authorization and no audit.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;
use rusqlite::{params, Connection};
use serde::Serialize;

use crate::loadgen::Percentiles;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteCeiling {
    pub updates_per_tx: u32,
    pub updates_per_sec: f64,
    pub transactions: u64,
    pub updates: u64,
    pub secs: f64,
    pub rows: u32,
    /// Read back from the connection that ran the loop.
    pub journal_mode: String,
    pub synchronous: String,
    /// How long each `COMMIT` (the flush) took: the disk's own latency, tail included.
    /// A server that commits on this disk cannot answer faster than its slowest flushes.
    pub commit_ms: Percentiles,
}

/// Runs `BEGIN IMMEDIATE; UPDATE one random row (× per_tx); COMMIT` for `duration` on a
/// fresh table of `rows` rows in the file at `path`.
pub fn run(
    path: &Path,
    rows: u32,
    per_tx: u32,
    duration: Duration,
) -> rusqlite::Result<SqliteCeiling> {
    let rows = rows.max(1);
    let per_tx = per_tx.max(1);
    let conn = Connection::open(path)?;
    let journal_mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    conn.execute_batch(
        "DROP TABLE IF EXISTS accounts;
         CREATE TABLE accounts (id INTEGER PRIMARY KEY, outgoing_blocked INTEGER NOT NULL,
                                changed_ms INTEGER NOT NULL)",
    )?;
    {
        let tx = conn.unchecked_transaction()?;
        let mut insert = tx.prepare("INSERT INTO accounts VALUES (?1, 0, 0)")?;
        for id in 1..=rows {
            insert.execute([id])?;
        }
        drop(insert);
        tx.commit()?;
    }
    let mut rng = rand::thread_rng();
    let mut update =
        conn.prepare("UPDATE accounts SET outgoing_blocked = ?2, changed_ms = ?3 WHERE id = ?1")?;
    let (mut transactions, mut updates) = (0u64, 0u64);
    let mut commit_us: Vec<u64> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for _ in 0..per_tx {
            let id = rng.gen_range(1..=rows);
            update.execute(params![id, rng.gen::<bool>(), updates as i64])?;
            updates += 1;
        }
        let flush = Instant::now();
        conn.execute_batch("COMMIT")?;
        commit_us.push(flush.elapsed().as_micros() as u64);
        transactions += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    commit_us.sort_unstable();
    Ok(SqliteCeiling {
        updates_per_tx: per_tx,
        updates_per_sec: updates as f64 / secs,
        transactions,
        updates,
        secs,
        rows,
        journal_mode: journal_mode.to_lowercase(),
        synchronous: synchronous_name(synchronous).to_string(),
        commit_ms: Percentiles::of_sorted_micros(&commit_us),
    })
}

/// `PRAGMA synchronous` as a name.
pub fn synchronous_name(level: i64) -> &'static str {
    match level {
        0 => "off",
        1 => "normal",
        2 => "full",
        3 => "extra",
        _ => "unknown",
    }
}

/// The size of the SQLite database at `path` as of its last commit, in bytes: its pages,
/// the WAL included however much of it is checkpointed (the file's length is not: a
/// checkpoint grows the file without the database growing).
pub fn database_bytes(path: &std::path::Path) -> Result<u64, String> {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let pages: u64 = c
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let size: u64 = c
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    Ok(pages * size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_updates_in_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ceiling.db");
        let r = run(&path, 50, 10, Duration::from_millis(50)).unwrap();
        assert_eq!(
            (r.journal_mode.as_str(), r.synchronous.as_str()),
            ("wal", "full")
        );
        assert!(r.transactions >= 1);
        assert_eq!(r.updates, r.transactions * 10);
        let (p50, max) = (r.commit_ms.p50.unwrap(), r.commit_ms.max.unwrap());
        assert!(p50 > 0.0 && p50 <= max, "commit p50 {p50} ms, max {max} ms");
        let conn = Connection::open(&path).unwrap();
        let changed: i64 = conn
            .query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(changed, 50);
    }
}
