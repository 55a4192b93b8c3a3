//! The SQLite backend: one file in WAL mode with `synchronous=FULL`.
//!
//! Writes go through one connection, owned by a writer thread that commits queued writes
//! together (group commit, one savepoint per write) in `BEGIN IMMEDIATE` transactions:
//! SQLite allows one writer at a time anyway, and holding the write lock from the first
//! read of a read-then-write means no two changes can interleave (no lost updates). Reads
//! use a small pool of other connections, which WAL lets run beside the writer.

mod audit;
mod checkpoint;
mod group_commit;
mod mail;
mod oauth;
mod provision;
mod read;
mod write;

pub use group_commit::{CommitStats, FLUSH_BUCKETS};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailplane_domain::{Access, AccountCommand, AccountId, EmailAddress, ScopeSet, Zoid, Zuid};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::oauth::{
    ClientCredentials, CodeChallenge, Credentials, IssuedTokens, OAuthClient, OAuthError,
    PendingCode,
};
use crate::{
    AccountView, Applied, AuditEntry, AuditQuery, Bootstrapped, Caller, DemoTokens, Grant, NewUser,
    OrgView, Principal, ProvisionError, ReadError, RelayKey, RequestMeta, SecurityEvent,
    StoreError, UserRef, WriteError,
};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_oauth.sql"),
    include_str!("../../migrations/sqlite/0003_security_events.sql"),
    include_str!("../../migrations/sqlite/0004_security_event_actor.sql"),
    include_str!("../../migrations/sqlite/0005_identity_claims.sql"),
    include_str!("../../migrations/sqlite/0006_pkce.sql"),
    include_str!("../../migrations/sqlite/0007_security_event_counts.sql"),
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
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
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
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
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
    async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError>,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
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
    async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &RelayKey) -> Result<T, E> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let digest = crate::secrets::token_digest(token);
        self.read(move |c| provision::authenticate(c, &digest))
            .await
    }

    pub async fn apply(
        &self,
        caller: Caller<'_>,
        meta: &RequestMeta,
        zoid_in_url: Option<Zoid>,
        account: AccountId,
        body_zuid: Option<Zuid>,
        cmd: AccountCommand,
    ) -> Result<Applied, WriteError> {
        // Hashed here, on the caller's task: the writer thread is the one that is scarce.
        let digest = crate::secrets::token_digest(caller.token);
        let (kind, meta) = (caller.kind, meta.clone());
        self.write(move |tx, key| {
            let found = provision::authenticate(tx, &digest)?;
            let grant = Principal::grant_of(found, kind, Access::Update)?;
            write::apply(tx, key, &grant, &meta, zoid_in_url, account, body_zuid, cmd)
        })
        .await
    }

    pub async fn account(
        &self,
        caller: Caller<'_>,
        account: AccountId,
    ) -> Result<Option<AccountView>, ReadError> {
        let digest = crate::secrets::token_digest(caller.token);
        let kind = caller.kind;
        self.read(move |c| {
            let found = provision::authenticate(c, &digest)?;
            let grant = Principal::grant_of(found, kind, Access::Read)?;
            let view = read::account_view(c, account)?;
            Ok::<_, ReadError>(view.filter(|v| grant.reaches_account(v.zuid, v.zoid)))
        })
        .await
    }

    pub async fn own_accounts(&self, grant: &Grant) -> Result<Vec<AccountView>, StoreError> {
        let zuid = grant.actor.zuid;
        self.read(move |c| read::user_account_views(c, zuid)).await
    }

    pub async fn organization(
        &self,
        grant: &Grant,
        zoid: Zoid,
    ) -> Result<Option<OrgView>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        self.read(move |c| read::org_view(c, zoid)).await
    }

    pub async fn org_accounts(
        &self,
        grant: &Grant,
        zoid: Zoid,
        start: u32,
        limit: u32,
    ) -> Result<Option<Vec<AccountView>>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        self.read(move |c| read::org_account_views(c, zoid, start, limit).map(Some))
            .await
    }

    pub async fn org_user_account(
        &self,
        grant: &Grant,
        zoid: Zoid,
        user: UserRef,
    ) -> Result<Option<AccountView>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        self.read(move |c| {
            let Some(zuid) = read::resolve_user(c, zoid, &user)? else {
                return Ok(None);
            };
            read::hosted_account_of(c, zuid)
        })
        .await
    }

    pub async fn create_user(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        zoid: Zoid,
        user: NewUser,
    ) -> Result<AccountView, WriteError> {
        let (grant, meta) = (grant.clone(), meta.clone());
        self.write(move |tx, _| provision::create_user_via_api(tx, &grant, &meta, zoid, user))
            .await
    }

    pub async fn delete_users(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        zoid: Zoid,
        users: Vec<UserRef>,
    ) -> Result<(), WriteError> {
        let (grant, meta) = (grant.clone(), meta.clone());
        self.write(move |tx, _| provision::delete_users(tx, &grant, &meta, zoid, users))
            .await
    }

    pub async fn bootstrap(
        &self,
        org_name: &str,
        domain: &str,
        admin_email: EmailAddress,
        admin_password_hash: Option<String>,
    ) -> Result<Bootstrapped, ProvisionError> {
        let (org_name, domain) = (org_name.to_string(), domain.to_string());
        self.write(move |tx, _| {
            provision::bootstrap(tx, &org_name, &domain, admin_email, admin_password_hash)
        })
        .await
    }

    pub(crate) async fn insert_synthetic(
        &self,
        zoid: Zoid,
        users: Vec<crate::synthetic::PlannedUser>,
    ) -> Result<Vec<(Zuid, AccountId)>, StoreError> {
        self.write(move |tx, _| provision::insert_synthetic(tx, zoid, &users))
            .await
    }

    /// The durability settings of a connection opened like every connection of this store.
    pub async fn durability(&self) -> Result<crate::Durability, StoreError> {
        self.read(|c| {
            let journal: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
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

    pub async fn seed_demo(&self) -> Result<DemoTokens, ProvisionError> {
        self.write(|tx, _| provision::seed_demo(tx)).await
    }

    pub async fn issue_token(
        &self,
        zuid: Zuid,
        scopes: ScopeSet,
        expires_in_secs: Option<u64>,
    ) -> Result<String, ProvisionError> {
        self.write(move |tx, _| provision::issue_token(tx, zuid, &scopes, expires_in_secs))
            .await
    }

    pub async fn revoke_token(&self, token: &str) -> Result<bool, StoreError> {
        let digest = crate::secrets::token_digest(token);
        self.write(move |tx, _| provision::revoke_token(tx, &digest))
            .await
    }

    pub async fn create_client(
        &self,
        name: &str,
        redirect_uri: Option<&str>,
    ) -> Result<ClientCredentials, StoreError> {
        let (name, redirect_uri) = (name.to_string(), redirect_uri.map(str::to_string));
        self.write(move |tx, _| oauth::create_client(tx, &name, redirect_uri.as_deref()))
            .await
    }

    pub async fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        let client_id = client_id.to_string();
        self.read(move |c| oauth::client(c, &client_id)).await
    }

    pub async fn oauth_grant(
        &self,
        client_id: &str,
        zuid: Zuid,
        scopes: ScopeSet,
    ) -> Result<String, ProvisionError> {
        let client_id = client_id.to_string();
        self.write(move |tx, _| oauth::grant(tx, &client_id, zuid, &scopes))
            .await
    }

    pub async fn credentials(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Credentials>, StoreError> {
        let email = email.clone();
        self.read(move |c| oauth::credentials(c, email.as_str()))
            .await
    }

    pub async fn issue_code(
        &self,
        client_id: &str,
        zuid: Zuid,
        scopes: ScopeSet,
        redirect_uri: &str,
        pkce: Option<CodeChallenge>,
    ) -> Result<String, StoreError> {
        let (client_id, redirect_uri) = (client_id.to_string(), redirect_uri.to_string());
        self.write(move |tx, _| {
            oauth::issue_code(tx, &client_id, zuid, &scopes, &redirect_uri, pkce.as_ref())
        })
        .await
    }

    pub async fn pending_code(&self, code: &str) -> Result<Option<PendingCode>, StoreError> {
        let code = code.to_string();
        self.read(move |c| oauth::pending_code(c, &code)).await
    }

    pub async fn decide_code(
        &self,
        code: &str,
        approve: bool,
    ) -> Result<Option<String>, StoreError> {
        let code = code.to_string();
        self.write(move |tx, _| oauth::decide_code(tx, &code, approve))
            .await
    }

    pub async fn exchange_code(
        &self,
        client_id: &str,
        secret: &str,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        ttl_secs: u64,
    ) -> Result<IssuedTokens, OAuthError> {
        let (client_id, secret, code) =
            (client_id.to_string(), secret.to_string(), code.to_string());
        let redirect_uri = redirect_uri.map(str::to_string);
        let code_verifier = code_verifier.map(str::to_string);
        self.write(move |tx, _| {
            oauth::exchange_code(
                tx,
                &client_id,
                &secret,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
                ttl_secs,
            )
        })
        .await?
        .into_result()
    }

    pub async fn refresh_access(
        &self,
        client_id: &str,
        secret: &str,
        refresh_token: &str,
        ttl_secs: u64,
    ) -> Result<IssuedTokens, OAuthError> {
        let (client_id, secret, refresh_token) = (
            client_id.to_string(),
            secret.to_string(),
            refresh_token.to_string(),
        );
        self.write(move |tx, _| oauth::refresh(tx, &client_id, &secret, &refresh_token, ttl_secs))
            .await
    }

    pub async fn revoke_oauth_token(&self, token: &str) -> Result<bool, StoreError> {
        let token = token.to_string();
        self.write(move |tx, _| oauth::revoke(tx, &token)).await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
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

    pub async fn audit_log(
        &self,
        grant: &Grant,
        zoid: Zoid,
        query: AuditQuery,
    ) -> Result<Option<Vec<AuditEntry>>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        self.read(move |c| audit::entries(c, zoid, &query).map(Some))
            .await
    }

    pub async fn reencrypt_relay_passwords(&self) -> Result<usize, StoreError> {
        self.write(|tx, key| {
            let sealed = relay_passwords(tx)?;
            let mut stmt = tx.prepare_cached(
                "UPDATE identities SET password_enc = ?1 WHERE send_mail_id = ?2",
            )?;
            for (id, binding, ct) in &sealed {
                stmt.execute(rusqlite::params![key.reseal(ct, binding)?, id])?;
            }
            Ok(sealed.len())
        })
        .await
    }

    pub async fn check_relay_passwords(&self) -> Result<(usize, usize), StoreError> {
        let key = self.inner.key.clone();
        self.read(move |c| Ok(key.count_openable(&relay_passwords(c)?)))
            .await
    }

    pub async fn mail_account(
        &self,
        address: &EmailAddress,
    ) -> Result<Option<mailplane_domain::MailAccount>, StoreError> {
        let address = address.clone();
        self.read(move |c| mail::account_by_address(c, &address))
            .await
    }

    pub async fn sender_logins(
        &self,
        address: &EmailAddress,
    ) -> Result<Vec<EmailAddress>, StoreError> {
        let address = address.clone();
        self.read(move |c| mail::sender_logins(c, &address)).await
    }

    pub async fn relay_route(
        &self,
        address: &EmailAddress,
    ) -> Result<Option<crate::RelayRoute>, StoreError> {
        let (address, key) = (address.clone(), self.inner.key.clone());
        self.read(move |c| mail::relay_route(c, &key, &address))
            .await
    }

    pub async fn record_security_events(
        &self,
        events: Vec<SecurityEvent>,
    ) -> Result<(), StoreError> {
        self.write(move |tx, _| audit::record_security_events(tx, &events))
            .await
    }

    pub async fn prune(
        &self,
        table: crate::Pruned,
        before_ms: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        self.write(move |tx, _| audit::prune(tx, table, before_ms, batch))
            .await
    }

    pub async fn security_events(
        &self,
        zoid: Zoid,
        query: AuditQuery,
    ) -> Result<Vec<SecurityEvent>, StoreError> {
        self.read(move |c| audit::security_events(c, zoid, &query))
            .await
    }
}

/// Every stored relay password: (identity id, binding, ciphertext).
fn relay_passwords(c: &Connection) -> Result<Vec<(i64, String, Vec<u8>)>, StoreError> {
    let mut stmt = c.prepare("SELECT send_mail_id, account_id, from_address, password_enc FROM identities WHERE password_enc IS NOT NULL")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                crate::relay_key::binding(r.get(1)?, &r.get::<_, String>(2)?),
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
