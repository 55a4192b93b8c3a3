//! The SQLite backend: one file in WAL mode with `synchronous=FULL`.
//!
//! Writes go through one connection, owned by a writer thread that commits queued writes
//! together (group commit, one savepoint per write) in `BEGIN IMMEDIATE` transactions:
//! SQLite allows one writer at a time anyway, and holding the write lock from the first
//! read of a read-then-write means no two changes can interleave (no lost updates). Reads
//! use a small pool of other connections, which WAL lets run beside the writer.

mod checkpoint;
mod db;
mod group_commit;
mod synthetic;

pub(crate) use db::SqliteDb;
pub use group_commit::{CommitStats, FLUSH_BUCKETS};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailplane_domain::{AccountId, Zoid, Zuid};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::{RelayKey, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_oauth.sql"),
    include_str!("../../migrations/sqlite/0003_security_events.sql"),
    include_str!("../../migrations/sqlite/0004_security_event_actor.sql"),
    include_str!("../../migrations/sqlite/0005_identity_claims.sql"),
    include_str!("../../migrations/sqlite/0006_pkce.sql"),
    include_str!("../../migrations/sqlite/0007_security_event_counts.sql"),
    include_str!("../../migrations/sqlite/0008_alias_ids_and_one_time_passwords.sql"),
    include_str!("../../migrations/sqlite/0009_user_expiry_and_profile.sql"),
    include_str!("../../migrations/sqlite/0010_mail_forwards.sql"),
    include_str!("../../migrations/sqlite/0011_requested_scopes.sql"),
    include_str!("../../migrations/sqlite/0012_identity_verification.sql"),
    include_str!("../../migrations/sqlite/0013_console.sql"),
];
/// Read connections, and so reads at once. A read waits for a free connection rather than
/// opening one: opening (the file, WAL setup, the schema, the statements) costs more than
/// many reads, and under load a pool that opened more would spend its time opening.
const READERS: usize = 8;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: group_commit::Writer,
    _checkpointer: checkpoint::Checkpointer,
    readers: Mutex<Vec<Connection>>,
    reader_slots: tokio::sync::Semaphore,
    key: RelayKey,
}

/// The database file and the WAL and shared-memory files beside it.
fn database_files(path: &Path) -> [PathBuf; 3] {
    let with_suffix = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with_suffix("-wal"), with_suffix("-shm")]
}

/// Makes the database readable by its owner only: it holds password hashes, token digests
/// and sealed relay passwords. A missing file is created empty with mode 0600 before
/// SQLite opens it, and SQLite gives the `-wal` and `-shm` files it creates the database
/// file's mode, so those follow. Files a wider mode left behind (an older version, a
/// copy) are tightened, and the log says so.
#[cfg(unix)]
fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io_error = |file: &Path, e: std::io::Error| {
        StoreError::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", file.display()),
        ))
    };
    // No truncation: an existing database is opened as it is (several nodes may start on
    // one file at once).
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    for file in database_files(path) {
        let mode = match std::fs::metadata(&file) {
            Ok(meta) => meta.permissions().mode() & 0o777,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(&file, e)),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io_error(&file, e))?;
            tracing::info!(
                file = %file.display(),
                was = format!("{mode:04o}"),
                "tightened the mode of a database file to 0600: it holds password hashes and sealed relay passwords"
            );
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get("journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Config(format!(
            "{}: could not enable WAL mode (got {mode})",
            path.display()
        )));
    }
    // FULL: a commit is on disk before it returns, so an acknowledged change survives a
    // power cut, not just a crash of the process.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every statement of the store stays prepared on the connection, not just the 16 most
    // recent.
    conn.set_prepared_statement_cache_capacity(128);
    // Pages read through a shared memory map rather than a read() each: most requests
    // touch a handful of pages, and the copies and system calls were a visible share of a
    // read's cost. (Writes still go through the WAL; durability is unchanged.)
    conn.pragma_update(None, "mmap_size", 256 * 1024 * 1024)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get("user_version"))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::Config(format!(
            "the database has schema version {version}, newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tracing::info!(version = i + 1, "applying SQLite migration");
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

/// Whether SQLite refused because another connection (maybe another process) holds a lock.
fn is_busy(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(rusqlite::Error::SqliteFailure(f, _))
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Opens the write connection and migrates. Switching a new file to WAL needs an exclusive
/// lock that the busy timeout does not wait for, so when several processes start on one
/// new file at once, the losers wait and try again.
fn open_and_migrate(path: &Path) -> Result<Connection, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let attempt = open_connection(path).and_then(|mut c| migrate(&mut c).map(|()| c));
        match attempt {
            Err(e) if is_busy(&e) && started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Runs `f` in one read transaction, so that all its statements (an account and its
/// addresses and identities, a token and what it reaches) see one snapshot.
fn in_read_transaction<T, E: From<StoreError>>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    let run = |sql: &str| -> Result<(), StoreError> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    run("BEGIN")?;
    let out = f(conn);
    // A read changes nothing, so a failed COMMIT loses nothing; the caller drops the
    // connection it leaves inside the transaction.
    match run("COMMIT") {
        Err(e) if out.is_ok() => Err(e.into()),
        _ => out,
    }
}

impl SqliteStore {
    /// Opens (creating and migrating) the file; at most `write_queue` writes wait for the
    /// writer.
    pub async fn open(
        path: PathBuf,
        key: RelayKey,
        write_queue: usize,
    ) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || {
            make_private(&path)?;
            let conn = open_and_migrate(&path)?;
            conn.pragma_update(
                None,
                "wal_autocheckpoint",
                checkpoint::WRITER_AUTOCHECKPOINT_PAGES,
            )?;
            let writer = group_commit::Writer::start(conn, key.clone(), write_queue)?;
            let _checkpointer = checkpoint::Checkpointer::start(&path)?;
            Ok(SqliteStore {
                inner: Arc::new(Inner {
                    path,
                    writer,
                    _checkpointer,
                    readers: Mutex::new(Vec::new()),
                    reader_slots: tokio::sync::Semaphore::new(READERS),
                    key,
                }),
            })
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` on a read connection, on the calling task.
    ///
    /// Not on the blocking pool: a read is a few point lookups in pages already mapped, tens
    /// of microseconds, and the two thread hand-offs of `spawn_blocking` cost more than
    /// that (context switches were the largest item of a read's profile). In WAL mode a
    /// reader does not wait for the writer.
    pub(crate) async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Connection) -> Result<T, E> + Send,
    {
        let inner = &self.inner;
        let _slot = inner
            .reader_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Task("reader pool closed".into()))?;
        // Holding a slot, there is an idle connection or room to open one.
        let pooled = inner
            .readers
            .lock()
            .map_err(|_| StoreError::Task("reader pool poisoned".into()))?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&inner.path)?,
        };
        let out = in_read_transaction(&conn, f);
        // A connection left inside a transaction (its COMMIT failed) is not reused.
        if conn.is_autocommit() {
            if let Ok(mut idle) = inner.readers.lock() {
                idle.push(conn);
            }
        }
        out
    }

    /// Runs `f` in a transaction on the write connection (see [`group_commit`]): its
    /// changes are kept when it returns `Ok`, undone otherwise, and its result comes back
    /// only once they are committed.
    pub(crate) async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &RelayKey) -> Result<T, E> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    pub(crate) fn key(&self) -> &RelayKey {
        &self.inner.key
    }

    /// Bulk-loads the benchmark's synthetic users (see `crate::synthetic`): their ids,
    /// in order.
    pub(crate) async fn insert_synthetic(
        &self,
        zoid: Zoid,
        users: Vec<crate::synthetic::PlannedUser>,
    ) -> Result<Vec<(Zuid, AccountId)>, StoreError> {
        self.write(move |tx, _| synthetic::insert(tx, zoid, &users))
            .await
    }

    /// The durability settings of a connection opened like every connection of this store.
    pub async fn durability(&self) -> Result<crate::Durability, StoreError> {
        self.read(|c| {
            let journal: String =
                c.query_row("PRAGMA journal_mode", [], |r| r.get("journal_mode"))?;
            let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get("synchronous"))?;
            let sync_name = match sync {
                0 => "OFF",
                1 => "NORMAL",
                2 => "FULL",
                3 => "EXTRA",
                _ => "unknown",
            };
            Ok(crate::Durability {
                weaker_than_default: !journal.eq_ignore_ascii_case("wal") || sync < 2,
                settings: vec![
                    ("journal_mode".into(), journal),
                    ("synchronous".into(), sync_name.into()),
                ],
            })
        })
        .await
    }

    /// Group commits made so far, the writes they kept, and their flush times.
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.writer.commit_stats()
    }

    /// Connections (in use, idle, most): the writer and the readers.
    pub fn pool_state(&self) -> (usize, usize, usize) {
        let readers_in_use = READERS - self.inner.reader_slots.available_permits();
        let idle_readers = self
            .inner
            .readers
            .lock()
            .map(|r| r.len())
            .unwrap_or_default();
        let writer_busy = usize::from(self.inner.writer.is_busy());
        (
            writer_busy + readers_in_use,
            idle_readers + 1 - writer_busy,
            READERS + 1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database of version 7 holding addresses, migrated: each keeps its account and
    /// gets an id, oldest first from the seeded counter; the next one follows them, and
    /// an address is still unique.
    #[test]
    fn migration_8_gives_the_existing_addresses_ids() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        for sql in &MIGRATIONS[..7] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute_batch(
            "INSERT INTO orgs (zoid, name, created_ms) VALUES (1, 'Org', 0);
             INSERT INTO users (zuid, zoid, role, first_name, last_name, display_name, country, language, time_zone, created_ms)
                 VALUES (2, 1, 'member', '', '', 'U', 'us', 'en', 'UTC', 0);
             INSERT INTO accounts (account_id, zuid, kind, sequence, created_ms) VALUES (3, 2, 'ZOHO_ACCOUNT', 1, 0);
             INSERT INTO addresses (address, account_id, is_primary) VALUES ('b@x.example', 3, 1), ('a@x.example', 3, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows = |conn: &Connection| -> Vec<(i64, String, i64, bool)> {
            let mut stmt = conn
                .prepare("SELECT id, address, account_id, is_primary FROM addresses ORDER BY id")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        const BASE: i64 = 5_000_000_000_000_000_000;
        assert_eq!(
            rows(&conn),
            [
                (BASE + 1, "b@x.example".into(), 3, true),
                (BASE + 2, "a@x.example".into(), 3, false)
            ]
        );
        conn.execute_batch(
            "INSERT INTO addresses (address, account_id, is_primary) VALUES ('c@x.example', 3, 0)",
        )
        .unwrap();
        assert_eq!(rows(&conn)[2].0, BASE + 3);
        assert!(conn
            .execute_batch("INSERT INTO addresses (address, account_id, is_primary) VALUES ('a@x.example', 3, 0)")
            .is_err());
        let flag: bool = conn
            .query_row(
                "SELECT password_one_time FROM users WHERE zuid = 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!flag);
    }
}
