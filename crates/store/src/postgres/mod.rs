//! The PostgreSQL backend: for several stateless nodes on one database.
//!
//! Nothing here holds state another node needs: ids come from database sequences, every
//! read goes to the database (no cache), and the write path serializes changes of one
//! user's accounts with a row lock on the user (`SELECT … FOR UPDATE`), which every node
//! honours. A transaction that loses a serialization or deadlock race is retried; a
//! database that cannot be reached within the configured time is reported as
//! [`StoreError::Unavailable`] (503), never a hang.

mod conninfo;
mod db;
mod pipeline;
mod synthetic;
mod tls;

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use mailplane_domain::{AccountId, Zoid, Zuid};

pub(crate) use pipeline::Tx as PgTx;

use crate::oauth::OAuthError;
use crate::{ProvisionError, RelayKey, StoreError, WriteError};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_oauth.sql"),
    include_str!("../../migrations/postgres/0003_security_events.sql"),
    include_str!("../../migrations/postgres/0004_security_event_actor.sql"),
    include_str!("../../migrations/postgres/0005_identity_claims.sql"),
    include_str!("../../migrations/postgres/0006_pkce.sql"),
    include_str!("../../migrations/postgres/0007_security_event_counts.sql"),
    include_str!("../../migrations/postgres/0008_alias_ids_and_one_time_passwords.sql"),
    include_str!("../../migrations/postgres/0009_user_expiry_and_profile.sql"),
    include_str!("../../migrations/postgres/0010_mail_forwards.sql"),
    include_str!("../../migrations/postgres/0011_requested_scopes.sql"),
    include_str!("../../migrations/postgres/0012_identity_verification.sql"),
    include_str!("../../migrations/postgres/0013_console.sql"),
];
/// Any constant shared by all nodes: the advisory lock that makes one node migrate at a time.
const MIGRATION_LOCK: i64 = 0x6d61_696c_706c_616e;
/// How often a transaction that lost a serialization or deadlock race is tried again.
const MAX_ATTEMPTS: usize = 8;

pub use conninfo::redact_url;

/// Connection settings of the PostgreSQL backend.
#[derive(Clone)]
pub struct PgOptions {
    pub url: String,
    pub pool_size: usize,
    /// The longest a request waits for the database (a connection, then its statements).
    pub timeout: Duration,
}

// By hand, not derived: the URL may carry a password.
impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact_url(&self.url))
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    key: RelayKey,
    timeout: Duration,
}

/// Maps a driver error: a lost connection means the database is unavailable (503);
/// anything else is a database error (500).
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Postgres(e)
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        pg_error(e)
    }
}

impl HasStoreError for OAuthError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            OAuthError::Store(s) => Some(s),
            _ => None,
        }
    }
}

/// Whether a failed transaction may simply be run again.
fn is_retryable(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(e, StoreError::Postgres(pe) if pe.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        || pe.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED))
}

/// The store error inside a write path's error, if any.
pub(crate) trait HasStoreError {
    fn store_error(&self) -> Option<&StoreError>;
}

impl HasStoreError for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}
impl HasStoreError for WriteError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            WriteError::Store(s) => Some(s),
            _ => None,
        }
    }
}
impl HasStoreError for ProvisionError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            ProvisionError::Store(s) => Some(s),
            _ => None,
        }
    }
}

impl PgStore {
    pub async fn open(opts: PgOptions, key: RelayKey) -> Result<Self, StoreError> {
        // tokio-postgres refuses parameters it does not know (sslrootcert, the verify
        // modes): those are read, and taken out, here.
        let conninfo = conninfo::ConnInfo::parse(&opts.url)?;
        let tls = tls::TlsPolicy::new(conninfo.sslmode, conninfo.root_cert)?;
        let mut config: tokio_postgres::Config = conninfo
            .url
            .parse()
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(opts.timeout);
        }
        config.application_name("mailplane");
        config.ssl_mode(tls.driver_mode());
        // At debug: every command opens the store, and the operator's commands keep their
        // stderr for errors.
        tracing::debug!(
            url = %redact_url(&opts.url),
            sslmode = tls.mode().name(),
            "opening the PostgreSQL database"
        );
        let manager = Manager::from_config(
            config,
            tls.connector()?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .wait_timeout(Some(opts.timeout))
            .create_timeout(Some(opts.timeout))
            .recycle_timeout(Some(opts.timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(format!("PostgreSQL pool: {e}")))?;
        let store = PgStore {
            pool,
            key,
            timeout: opts.timeout,
        };
        // The first connection, made now: a TLS mistake (the wrong CA, a certificate for
        // another host) is said at start-up, in words, rather than as 503s later. The
        // pool's create timeout bounds it, so a server that never answers is no hang.
        let first = store.pool.get().await.map_err(|e| match tls.explain(&e) {
            Some(message) => StoreError::Config(message),
            None => StoreError::Unavailable(e.to_string()),
        })?;
        drop(first);
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        // "relation already exists, skipping" is expected on every start after the first.
        tx.batch_execute("SET LOCAL client_min_messages = warning")
            .await?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)")
            .await?;
        let current: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations",
                &[],
            )
            .await?
            .get("version");
        if current as usize > MIGRATIONS.len() {
            return Err(StoreError::Config(format!(
                "the database has schema version {current}, newer than this build knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tracing::info!(version = i + 1, "applying PostgreSQL migration");
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                &[&((i + 1) as i32), &crate::now_ms()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Bounds a database operation by the configured timeout.
    pub(crate) async fn bounded<T, E: From<StoreError>>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable("the database did not answer in time".into()).into())
            })
    }

    /// A transaction on a pooled connection; `BEGIN` goes out with its first statement.
    pub(crate) async fn begin(&self) -> Result<pipeline::Tx, StoreError> {
        Ok(pipeline::Tx::new(self.client().await?))
    }

    /// Whether a transaction that failed with `e` lost a race and may run again (up to
    /// [`MAX_ATTEMPTS`] in all); counts the attempt.
    pub(crate) fn lost_race<E: HasStoreError>(&self, e: &E, attempt: &mut usize) -> bool {
        if *attempt >= MAX_ATTEMPTS || !e.store_error().is_some_and(is_retryable) {
            return false;
        }
        *attempt += 1;
        tracing::debug!(
            attempt = *attempt,
            "retrying a transaction that lost a race"
        );
        true
    }

    pub(crate) fn key(&self) -> &RelayKey {
        &self.key
    }

    /// Bulk-loads the benchmark's synthetic users (see `crate::synthetic`): their ids,
    /// in order.
    pub(crate) async fn insert_synthetic(
        &self,
        zoid: Zoid,
        users: Vec<crate::synthetic::PlannedUser>,
    ) -> Result<Vec<(Zuid, AccountId)>, StoreError> {
        self.bounded(async {
            let tx = self.begin().await?;
            let out = synthetic::insert(&tx, zoid, &users).await;
            tx.finish(out).await
        })
        .await
    }

    /// The server's durability settings, as `SHOW` reports them.
    pub async fn durability(&self) -> Result<crate::Durability, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let mut settings = Vec::new();
            for name in ["synchronous_commit", "fsync", "full_page_writes"] {
                let row = client.query_one(&format!("SHOW {name}"), &[]).await?;
                settings.push((name.to_string(), row.try_get::<_, String>(name)?));
            }
            let weaker_than_default = settings.iter().any(|(n, v)| match n.as_str() {
                "synchronous_commit" => {
                    !matches!(v.as_str(), "on" | "remote_write" | "remote_apply")
                }
                _ => v != "on",
            });
            Ok(crate::Durability {
                settings,
                weaker_than_default,
            })
        })
        .await
    }

    pub fn pool_state(&self) -> (usize, usize, usize) {
        let s = self.pool.status();
        (s.size.saturating_sub(s.available), s.available, s.max_size)
    }
}
