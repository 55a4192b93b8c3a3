//! The PostgreSQL backend: for several stateless nodes on one database.
//!
//! Nothing here holds state another node needs: ids come from database sequences, every
//! read goes to the database (no cache), and the write path serializes changes of one
//! user's accounts with a row lock on the user (`SELECT … FOR UPDATE`), which every node
//! honours. A transaction that loses a serialization or deadlock race is retried; a
//! database that cannot be reached within the configured time is reported as
//! [`StoreError::Unavailable`] (503), never a hang.

mod audit;
mod conninfo;
mod mail;
mod oauth;
mod pipeline;
mod provision;
mod read;
mod tls;
mod write;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction,
};
use mailplane_domain::{Access, AccountCommand, AccountId, EmailAddress, ScopeSet, Zoid, Zuid};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

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
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_oauth.sql"),
    include_str!("../../migrations/postgres/0003_security_events.sql"),
    include_str!("../../migrations/postgres/0004_security_event_actor.sql"),
    include_str!("../../migrations/postgres/0005_identity_claims.sql"),
    include_str!("../../migrations/postgres/0006_pkce.sql"),
    include_str!("../../migrations/postgres/0007_security_event_counts.sql"),
];
/// Any constant shared by all nodes: the advisory lock that makes one node migrate at a time.
const MIGRATION_LOCK: i64 = 0x6d61_696c_706c_616e;
/// How often a transaction that lost a serialization or deadlock race is tried again.
const MAX_ATTEMPTS: usize = 8;

/// The future of one unit of work on a connection or transaction. Boxed with an explicit
/// `Send`, so the handlers that await it stay `Send` (closures returning plain async
/// blocks over borrowed transactions do not prove that to the compiler).
type DbFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

impl From<tokio_postgres::Error> for WriteError {
    fn from(e: tokio_postgres::Error) -> Self {
        WriteError::Store(pg_error(e))
    }
}

impl From<tokio_postgres::Error> for OAuthError {
    fn from(e: tokio_postgres::Error) -> Self {
        OAuthError::Store(pg_error(e))
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

impl From<tokio_postgres::Error> for ProvisionError {
    fn from(e: tokio_postgres::Error) -> Self {
        ProvisionError::Store(pg_error(e))
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

/// Prepared (and cached per connection) statements: one round trip per query after the
/// first use on a connection.
pub(crate) async fn rows<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.query(&stmt, params).await
}

pub(crate) async fn row_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.query_opt(&stmt, params).await
}

pub(crate) async fn one<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.query_one(&stmt, params).await
}

pub(crate) async fn exec<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.execute(&stmt, params).await
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
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await?
            .get(0);
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

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Bounds a database operation by the configured timeout.
    async fn bounded<T, E: From<StoreError>>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable("the database did not answer in time".into()).into())
            })
    }

    /// Runs `f` in a transaction and commits it, trying again when PostgreSQL reports a
    /// serialization failure or a deadlock (a lost race, not an error of the request).
    async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError> + HasStoreError,
        F: for<'a, 'b> Fn(&'a Transaction<'b>, &'a RelayKey) -> DbFuture<'a, Result<T, E>>,
    {
        let f = &f;
        self.retrying(|| async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(StoreError::from)?;
            let value = f(&tx, &self.key).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok::<T, E>(value)
        })
        .await
    }

    /// Like [`write`](Self::write), but `f` sends `BEGIN` and `COMMIT` along with its own
    /// statements (see [`pipeline`]) instead of each in a round trip of its own.
    async fn write_pipelined<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError> + HasStoreError,
        F: for<'a> Fn(&'a pipeline::Tx, &'a RelayKey) -> DbFuture<'a, Result<T, E>>,
    {
        let f = &f;
        self.retrying(|| async move {
            let tx = pipeline::Tx::new(self.client().await?);
            let out = f(&tx, &self.key).await;
            tx.finish(out).await
        })
        .await
    }

    /// Runs `attempt` within the timeout, again (up to [`MAX_ATTEMPTS`] in all) while it
    /// fails with a lost race.
    async fn retrying<T, E, Fut>(&self, attempt: impl Fn() -> Fut) -> Result<T, E>
    where
        E: From<StoreError> + HasStoreError,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut tried = 1;
        loop {
            match self.bounded(attempt()).await {
                Err(e) if tried < MAX_ATTEMPTS && e.store_error().is_some_and(is_retryable) => {
                    tried += 1;
                    tracing::debug!(attempt = tried, "retrying a transaction that lost a race");
                }
                other => return other,
            }
        }
    }

    async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: for<'a> FnOnce(&'a deadpool_postgres::Object) -> DbFuture<'a, Result<T, E>>,
    {
        self.bounded(async {
            let client = self.client().await?;
            f(&client).await
        })
        .await
    }

    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let digest = crate::secrets::token_digest(token);
        self.read(move |c| Box::pin(async move { provision::authenticate(c, &digest).await }))
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
        let digest = crate::secrets::token_digest(caller.token);
        let kind = caller.kind;
        // The token is read in the change's transaction: one connection, and its query
        // travels with the transaction's first statements (see `write::apply`).
        self.write_pipelined(|tx, key| {
            let (digest, meta, cmd) = (digest.clone(), meta.clone(), cmd.clone());
            Box::pin(async move {
                let target = write::Addressing {
                    account,
                    zoid_in_url,
                    body_zuid,
                };
                write::apply(tx, key, (&digest, kind), &meta, target, cmd).await
            })
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
        // The token and the account are read together on one connection: the two are
        // pipelined, one round trip. The account is only answered if the token reaches it.
        self.read(move |c| {
            Box::pin(async move {
                let (principal, view) = tokio::try_join!(
                    provision::authenticate(c, &digest),
                    read::account_view(c, account)
                )?;
                let grant = Principal::grant_of(principal, kind, Access::Read)?;
                Ok::<_, ReadError>(view.filter(|v| grant.reaches_account(v.zuid, v.zoid)))
            })
        })
        .await
    }

    pub async fn own_accounts(&self, grant: &Grant) -> Result<Vec<AccountView>, StoreError> {
        let zuid = grant.actor.zuid;
        self.read(move |c| Box::pin(read::user_account_views(c, zuid)))
            .await
    }

    pub async fn organization(
        &self,
        grant: &Grant,
        zoid: Zoid,
    ) -> Result<Option<OrgView>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        self.read(move |c| Box::pin(read::org_view(c, zoid))).await
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
        self.read(move |c| {
            Box::pin(async move {
                read::org_account_views(c, zoid, start, limit)
                    .await
                    .map(Some)
            })
        })
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
            Box::pin(async move {
                let Some(zuid) = read::resolve_user(c, zoid, &user).await? else {
                    return Ok(None);
                };
                read::hosted_account_of(c, zuid).await
            })
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
        self.write(|tx, _| {
            let (grant, meta, user) = (grant.clone(), meta.clone(), user.clone());
            Box::pin(
                async move { provision::create_user_via_api(tx, &grant, &meta, zoid, &user).await },
            )
        })
        .await
    }

    pub async fn delete_users(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        zoid: Zoid,
        users: Vec<UserRef>,
    ) -> Result<(), WriteError> {
        self.write(|tx, _| {
            let (grant, meta, users) = (grant.clone(), meta.clone(), users.clone());
            Box::pin(async move { provision::delete_users(tx, &grant, &meta, zoid, &users).await })
        })
        .await
    }

    pub async fn bootstrap(
        &self,
        org_name: &str,
        domain: &str,
        admin_email: EmailAddress,
        admin_password_hash: Option<String>,
    ) -> Result<Bootstrapped, ProvisionError> {
        self.write(|tx, _| {
            let (org_name, domain) = (org_name.to_string(), domain.to_string());
            let (admin, hash) = (admin_email.clone(), admin_password_hash.clone());
            Box::pin(
                async move { provision::bootstrap(tx, &org_name, &domain, &admin, hash).await },
            )
        })
        .await
    }

    pub(crate) async fn insert_synthetic(
        &self,
        zoid: Zoid,
        users: Vec<crate::synthetic::PlannedUser>,
    ) -> Result<Vec<(Zuid, AccountId)>, StoreError> {
        let users = std::sync::Arc::new(users);
        self.write(|tx, _| {
            let users = users.clone();
            Box::pin(async move { provision::insert_synthetic(tx, zoid, &users).await })
        })
        .await
    }

    /// The server's durability settings, as `SHOW` reports them.
    pub async fn durability(&self) -> Result<crate::Durability, StoreError> {
        self.read(|c| {
            Box::pin(async move {
                let mut settings = Vec::new();
                for name in ["synchronous_commit", "fsync", "full_page_writes"] {
                    let row = one(c, &format!("SHOW {name}"), &[]).await?;
                    settings.push((name.to_string(), row.try_get::<_, String>(0)?));
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
        })
        .await
    }

    pub async fn seed_demo(&self) -> Result<DemoTokens, ProvisionError> {
        self.write(|tx, _| Box::pin(provision::seed_demo(tx))).await
    }

    pub async fn issue_token(
        &self,
        zuid: Zuid,
        scopes: ScopeSet,
        expires_in_secs: Option<u64>,
    ) -> Result<String, ProvisionError> {
        self.write(|tx, _| {
            let scopes = scopes.clone();
            Box::pin(
                async move { provision::issue_token(tx, zuid, &scopes, expires_in_secs).await },
            )
        })
        .await
    }

    pub async fn revoke_token(&self, token: &str) -> Result<bool, StoreError> {
        let digest = crate::secrets::token_digest(token);
        self.write(|tx, _| {
            let digest = digest.clone();
            Box::pin(async move { provision::revoke_token(tx, &digest).await })
        })
        .await
    }

    pub async fn create_client(
        &self,
        name: &str,
        redirect_uri: Option<&str>,
    ) -> Result<ClientCredentials, StoreError> {
        self.write(|tx, _| {
            let (name, redirect_uri) = (name.to_string(), redirect_uri.map(str::to_string));
            Box::pin(async move { oauth::create_client(tx, &name, redirect_uri.as_deref()).await })
        })
        .await
    }

    pub async fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        let client_id = client_id.to_string();
        self.read(move |c| Box::pin(async move { oauth::client(c, &client_id).await }))
            .await
    }

    pub async fn oauth_grant(
        &self,
        client_id: &str,
        zuid: Zuid,
        scopes: ScopeSet,
    ) -> Result<String, ProvisionError> {
        self.write(|tx, _| {
            let (client_id, scopes) = (client_id.to_string(), scopes.clone());
            Box::pin(async move { oauth::grant(tx, &client_id, zuid, &scopes).await })
        })
        .await
    }

    pub async fn credentials(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Credentials>, StoreError> {
        let email = email.clone();
        self.read(move |c| Box::pin(async move { oauth::credentials(c, email.as_str()).await }))
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
        self.write(|tx, _| {
            let (client_id, scopes, redirect_uri, pkce) = (
                client_id.to_string(),
                scopes.clone(),
                redirect_uri.to_string(),
                pkce.clone(),
            );
            Box::pin(async move {
                oauth::issue_code(tx, &client_id, zuid, &scopes, &redirect_uri, pkce.as_ref()).await
            })
        })
        .await
    }

    pub async fn pending_code(&self, code: &str) -> Result<Option<PendingCode>, StoreError> {
        let code = code.to_string();
        self.read(move |c| Box::pin(async move { oauth::pending_code(c, &code).await }))
            .await
    }

    pub async fn decide_code(
        &self,
        code: &str,
        approve: bool,
    ) -> Result<Option<String>, StoreError> {
        self.write(|tx, _| {
            let code = code.to_string();
            Box::pin(async move { oauth::decide_code(tx, &code, approve).await })
        })
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
        self.write(|tx, _| {
            let (client_id, secret, code) =
                (client_id.to_string(), secret.to_string(), code.to_string());
            let redirect_uri = redirect_uri.map(str::to_string);
            let code_verifier = code_verifier.map(str::to_string);
            Box::pin(async move {
                oauth::exchange_code(
                    tx,
                    &client_id,
                    &secret,
                    &code,
                    redirect_uri.as_deref(),
                    code_verifier.as_deref(),
                    ttl_secs,
                )
                .await
            })
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
        self.write(|tx, _| {
            let (client_id, secret, refresh_token) = (
                client_id.to_string(),
                secret.to_string(),
                refresh_token.to_string(),
            );
            Box::pin(async move {
                oauth::refresh(tx, &client_id, &secret, &refresh_token, ttl_secs).await
            })
        })
        .await
    }

    pub async fn revoke_oauth_token(&self, token: &str) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let token = token.to_string();
            Box::pin(async move { oauth::revoke(tx, &token).await })
        })
        .await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Box::pin(async move { Ok(c.simple_query("SELECT 1").await.map(|_| ())?) }))
            .await
    }

    pub fn pool_state(&self) -> (usize, usize, usize) {
        let s = self.pool.status();
        (s.size.saturating_sub(s.available), s.available, s.max_size)
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
        self.read(move |c| Box::pin(async move { audit::entries(c, zoid, &query).await.map(Some) }))
            .await
    }

    pub async fn reencrypt_relay_passwords(&self) -> Result<usize, StoreError> {
        self.write(|tx, key| {
            Box::pin(async move {
                let sealed = relay_passwords(tx).await?;
                for (id, binding, ct) in &sealed {
                    exec(
                        tx,
                        "UPDATE identities SET password_enc = $1 WHERE send_mail_id = $2",
                        &[&key.reseal(ct, binding)?, id],
                    )
                    .await?;
                }
                Ok(sealed.len())
            })
        })
        .await
    }

    pub async fn check_relay_passwords(&self) -> Result<(usize, usize), StoreError> {
        let key = self.key.clone();
        self.read(move |c| {
            Box::pin(async move { Ok(key.count_openable(&relay_passwords(c).await?)) })
        })
        .await
    }

    pub async fn mail_account(
        &self,
        address: &EmailAddress,
    ) -> Result<Option<mailplane_domain::MailAccount>, StoreError> {
        let address = address.clone();
        self.read(move |c| Box::pin(async move { mail::account_by_address(c, &address).await }))
            .await
    }

    pub async fn sender_logins(
        &self,
        address: &EmailAddress,
    ) -> Result<Vec<EmailAddress>, StoreError> {
        let address = address.clone();
        self.read(move |c| Box::pin(async move { mail::sender_logins(c, &address).await }))
            .await
    }

    pub async fn relay_route(
        &self,
        address: &EmailAddress,
    ) -> Result<Option<crate::RelayRoute>, StoreError> {
        let (address, key) = (address.clone(), self.key.clone());
        self.read(move |c| Box::pin(async move { mail::relay_route(c, &key, &address).await }))
            .await
    }

    pub async fn record_security_events(
        &self,
        events: Vec<SecurityEvent>,
    ) -> Result<(), StoreError> {
        self.write(|tx, _| {
            let events = events.clone();
            Box::pin(async move { audit::record_security_events(tx, &events).await })
        })
        .await
    }

    pub async fn prune(
        &self,
        table: crate::Pruned,
        before_ms: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        self.write(|tx, _| Box::pin(async move { audit::prune(tx, table, before_ms, batch).await }))
            .await
    }

    pub async fn security_events(
        &self,
        zoid: Zoid,
        query: AuditQuery,
    ) -> Result<Vec<SecurityEvent>, StoreError> {
        self.read(move |c| Box::pin(async move { audit::security_events(c, zoid, &query).await }))
            .await
    }
}

/// Every stored relay password: (identity id, binding, ciphertext).
async fn relay_passwords<C: GenericClient>(
    c: &C,
) -> Result<Vec<(i64, String, Vec<u8>)>, StoreError> {
    let found = rows(
        c,
        "SELECT send_mail_id, account_id, from_address, password_enc FROM identities WHERE password_enc IS NOT NULL FOR UPDATE",
        &[],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                crate::relay_key::binding(r.try_get(1)?, r.try_get(2)?),
                r.try_get(3)?,
            ))
        })
        .collect()
}
