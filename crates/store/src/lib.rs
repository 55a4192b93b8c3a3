//! mailplane's storage.
//!
//! The data logic (what is read, which rule decides, what is written and audited, the
//! OAuth token lifecycle, provisioning) is written once, in `read`, `write`, `provision`,
//! `oauth::flow`, `audit` and `mail`, over the [`db::Db`] of either backend. A backend
//! gives only what truly differs: connecting, its SQL dialect where the dialects differ,
//! and its durability machinery: SQLite (one node) a single writer with group commit,
//! PostgreSQL (several nodes) pipelined transactions retried when they lose a race.
//! [`Store`] runs each operation on the one it holds; every write runs the whole
//! load → rule → persist → audit sequence in one transaction.

mod access;
mod audit;
pub mod console_reads;
pub mod console_sessions;
mod db;
mod demo;
mod mail;
mod model;
pub mod oauth;
mod postgres;
mod provision;
mod read;
mod relay_checks;
pub mod relay_key;
pub mod retention;
pub mod secrets;
mod send_as;
mod sqlite;
mod synthetic;
mod write;

use std::path::PathBuf;

use mailplane_domain::{
    Access, AccountCommand, AccountId, EmailAddress, Identity, Role, RuleError, ScopeRequest,
    ScopeSet, Zoid, Zuid,
};

pub use access::{Denied, Grant, GrantKind, Principal, UpdateTarget};
pub use console_sessions::{ConsoleSession, SessionLimits};
pub use model::{
    clip_event_path, AccountView, Applied, AuditEntry, AuditQuery, Bootstrapped, DemoTokens,
    NewUser, OrgView, Pruned, RelayPassword, RelayRoute, RequestMeta, SecurityEvent, UserRef,
    UsersPage, Via, MAX_EVENT_PATH_CHARS,
};
pub use oauth::OrgClient;
pub use postgres::{redact_url, PgOptions, PgStore};
pub use relay_checks::{RelayCheckJob, RelayOutcome, MAX_RELAY_ERROR_CHARS, RELAY_CHECK_MODE};
pub use relay_key::RelayKey;
pub use sqlite::{CommitStats, SqliteStore, FLUSH_BUCKETS};
pub use synthetic::{SyntheticAccount, SyntheticOrg};

/// The durability settings in force: what a benchmark reports beside its figures.
#[derive(Debug, Clone)]
pub struct Durability {
    /// Each setting and its value, as the database reports it.
    pub settings: Vec<(String, String)>,
    /// Whether an acknowledged change could be lost in a power cut with these settings.
    pub weaker_than_default: bool,
}

/// Failures of the storage itself. Their text is for logs, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("file error: {0}")]
    Io(std::io::Error),
    #[error("encryption error")]
    Crypto,
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    #[error("background task failed: {0}")]
    Task(String),
    #[error("PostgreSQL error: {0}")]
    Postgres(tokio_postgres::Error),
    /// The database cannot be reached (503 to clients): no connection within the
    /// configured time, or the connection was lost.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Too many writes are waiting already (503 with `Retry-After` to clients): the
    /// request was not queued and changed nothing.
    #[error("too many writes are waiting")]
    Busy,
}

/// Who asks for an account update: the bearer token and the grant it asks for. (No
/// `Debug`: the token is a secret.)
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub token: &'a str,
    pub kind: GrantKind,
}

/// Why a caller's token does not get it the grant it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The token is unknown, expired or revoked.
    #[error("the token is not valid")]
    InvalidToken,
    /// The token does not allow the grant asked for.
    #[error("the grant is denied: {0:?}")]
    Denied(Denied),
}

/// Why a read on behalf of a caller was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a write was not made.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The target does not exist or is out of the grant's reach (the two look alike).
    #[error("not found: {0}")]
    NotFound(String),
    /// A rule refused the change.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The caller's role does not allow this particular change (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The caller's token does not get it the grant.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<mailplane_domain::UserRuleError> for WriteError {
    fn from(e: mailplane_domain::UserRuleError) -> Self {
        match e {
            mailplane_domain::UserRuleError::Forbidden(m) => WriteError::Forbidden(m),
            mailplane_domain::UserRuleError::Rule(r) => WriteError::Rule(r),
        }
    }
}

/// Why `bootstrap` or `--demo` refused to run.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the data lives.
#[derive(Clone)]
pub enum Location {
    SqliteFile(PathBuf),
    Postgres(String),
}

// By hand, not derived: a PostgreSQL URL may carry a password.
impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::SqliteFile(path) => f.debug_tuple("SqliteFile").field(path).finish(),
            Location::Postgres(url) => f.debug_tuple("Postgres").field(&redact_url(url)).finish(),
        }
    }
}

/// What `{:?}` shows in place of a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// `Some("<redacted>")` for a secret that is there, `None` for one that is not: whether
/// there is one is worth knowing in a log, its value never.
pub(crate) fn redacted<T>(secret: &Option<T>) -> Option<&'static str> {
    secret.as_ref().map(|_| REDACTED)
}

impl Location {
    /// Parses `--db`: `sqlite:PATH` or `sqlite://PATH` (a file).
    pub fn parse_url(url: &str) -> Result<Self, StoreError> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(StoreError::Config(format!(
                    "{url}: the SQLite URL names no file"
                )));
            }
            return Ok(Location::SqliteFile(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        // The URL is not repeated: it may carry a password.
        Err(StoreError::Config(
            "expected a database URL such as sqlite:/path/to/mailplane.db or postgres://user@host/dbname".into(),
        ))
    }
}

/// The store: one variant per backend.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Settings that apply to a database server (PostgreSQL); SQLite needs none.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub pool_size: usize,
    /// The longest a request waits for the database before it is answered 503.
    pub timeout: std::time::Duration,
    /// Most writes waiting for SQLite's single writer (its queue is bounded: past it a
    /// write is refused with [`StoreError::Busy`] rather than growing memory).
    pub write_queue: usize,
}

/// The default of [`DbOptions::write_queue`]: about a quarter of a second of writes at
/// the rates this writer sustains, far beyond what a healthy server ever queues.
pub const DEFAULT_WRITE_QUEUE: usize = 4096;

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            timeout: std::time::Duration::from_secs(5),
            write_queue: DEFAULT_WRITE_QUEUE,
        }
    }
}

/// Runs `$body` as a read, with `$db` the backend's [`db::Db`]: on SQLite a pooled read
/// connection inside one read transaction (one snapshot), on PostgreSQL a pooled
/// connection (statements sent together are pipelined).
macro_rules! on_read {
    ($store:expr, |$db:ident| $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                s.read(|conn| {
                    let $db = &sqlite::SqliteDb::new(conn);
                    db::run_now(async { $body })
                })
                .await
            }
            Store::Postgres(p) => {
                p.bounded(async {
                    let $db = &postgres::PgTx::outside(p.client().await?);
                    $body
                })
                .await
            }
        }
    };
}

/// Runs `$body` in a write transaction, with `$db` the backend's [`db::Tx`] and `$key`
/// the relay key. On SQLite it runs on the writer thread (group commit), so what it uses
/// is moved there: owned values only. On PostgreSQL it runs again when the transaction
/// loses a serialization or deadlock race, so it must not consume what it uses.
macro_rules! on_write {
    ($store:expr, |$db:ident, $key:ident| $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                s.write(move |tx, $key| {
                    let $db = &sqlite::SqliteDb::new(tx);
                    db::run_now(async { $body })
                })
                .await
            }
            Store::Postgres(p) => {
                let mut attempt = 1;
                loop {
                    let out = p
                        .bounded(async {
                            let tx = p.begin().await?;
                            let ($db, $key) = (&tx, p.key());
                            let out = async { $body }.await;
                            tx.finish(out).await
                        })
                        .await;
                    match out {
                        Err(e) if p.lost_race(&e, &mut attempt) => continue,
                        other => break other,
                    }
                }
            }
        }
    };
}

impl Store {
    /// Opens (creating and migrating) the database.
    pub async fn open(
        location: Location,
        key: RelayKey,
        options: DbOptions,
    ) -> Result<Store, StoreError> {
        match location {
            Location::SqliteFile(path) => Ok(Store::Sqlite(
                SqliteStore::open(path, key, options.write_queue).await?,
            )),
            Location::Postgres(url) => {
                let opts = PgOptions {
                    url,
                    pool_size: options.pool_size,
                    timeout: options.timeout,
                };
                Ok(Store::Postgres(PgStore::open(opts, key).await?))
            }
        }
    }

    /// The principal behind a token; `None` for an unknown, expired or revoked token.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let digest = secrets::token_digest(token);
        on_read!(self, |db| provision::authenticate(db, &digest).await)
    }

    /// Applies an account update for `caller` to `target` (an account, or a user's
    /// hosted account). `zoid_in_url` is the organization of the admin URL, `body_zuid`
    /// the request's optional `zuid`.
    ///
    /// The caller's token is checked in the update's own transaction: on SQLite that is
    /// the writer's connection, whose pages stay cached, where a separate read would find
    /// its cache emptied by every commit since the last one; on PostgreSQL its query
    /// travels with the transaction's first statements.
    pub async fn apply(
        &self,
        caller: Caller<'_>,
        meta: &RequestMeta,
        zoid_in_url: Option<Zoid>,
        target: impl Into<UpdateTarget>,
        body_zuid: Option<Zuid>,
        cmd: AccountCommand,
    ) -> Result<Applied, WriteError> {
        // Hashed here, on the caller's task: SQLite's writer thread is the one that is scarce.
        let digest = secrets::token_digest(caller.token);
        let (kind, meta) = (caller.kind, meta.clone());
        let to = write::Addressing {
            target: target.into(),
            zoid_in_url,
            body_zuid,
        };
        on_write!(self, |db, key| {
            write::apply(db, key, (&digest, kind), &meta, to, cmd.clone()).await
        })
    }

    /// One account within the grant's reach.
    ///
    /// The caller's token is checked in the same read (one snapshot on SQLite, one round
    /// trip on PostgreSQL).
    pub async fn account(
        &self,
        caller: Caller<'_>,
        account: AccountId,
    ) -> Result<Option<AccountView>, ReadError> {
        let digest = secrets::token_digest(caller.token);
        let kind = caller.kind;
        on_read!(self, |db| {
            let (found, view) = tokio::try_join!(
                provision::authenticate(db, &digest),
                read::account_view(db, account)
            )?;
            let grant = Principal::grant_of(found, kind, Access::Read)?;
            Ok::<_, ReadError>(view.filter(|v| grant.reaches_account(v.zuid, v.zoid)))
        })
    }

    /// The accounts of the grant's own user, by sequence.
    pub async fn own_accounts(&self, grant: &Grant) -> Result<Vec<AccountView>, StoreError> {
        let zuid = grant.actor.zuid;
        on_read!(self, |db| read::user_account_views(db, zuid).await)
    }

    /// Every account of user `zuid` (hosted and external, by sequence), when the user is
    /// within the grant's reach: the grant's own user, or a user of the admin's
    /// organization. `None` otherwise, alike for a user who does not exist.
    pub async fn user_accounts(
        &self,
        grant: &Grant,
        zuid: Zuid,
    ) -> Result<Option<Vec<AccountView>>, StoreError> {
        let views = on_read!(self, |db| read::user_account_views(db, zuid).await)?;
        Ok(views
            .first()
            .filter(|v| grant.reaches_account(v.zuid, v.zoid))
            .is_some()
            .then_some(views))
    }

    /// The audit rows about user `zuid`'s accounts, newest first, when the user is within
    /// the grant's reach (see [`Store::user_accounts`]).
    pub async fn user_history(
        &self,
        grant: &Grant,
        zuid: Zuid,
        start: u32,
        limit: u32,
    ) -> Result<Option<Vec<AuditEntry>>, StoreError> {
        let Some(accounts) = self.user_accounts(grant, zuid).await? else {
            return Ok(None);
        };
        let zoid = accounts[0].zoid;
        on_read!(self, |db| audit::about_user(db, zoid, zuid, start, limit)
            .await
            .map(Some))
    }

    pub async fn organization(
        &self,
        grant: &Grant,
        zoid: Zoid,
    ) -> Result<Option<OrgView>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        on_read!(self, |db| read::org_view(db, zoid).await)
    }

    /// A page of the organization's hosted accounts, one per user, by zuid.
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
        on_read!(self, |db| read::org_account_views(db, zoid, start, limit)
            .await
            .map(Some))
    }

    /// The hosted account of one user of the organization.
    pub async fn org_user_account(
        &self,
        grant: &Grant,
        zoid: Zoid,
        user: UserRef,
    ) -> Result<Option<AccountView>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        on_read!(self, |db| {
            match read::resolve_user(db, zoid, &user).await? {
                Some(zuid) => read::hosted_account_of(db, zuid).await,
                None => Ok(None),
            }
        })
    }

    pub async fn create_user(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        zoid: Zoid,
        user: NewUser,
    ) -> Result<AccountView, WriteError> {
        let (grant, meta) = (grant.clone(), meta.clone());
        on_write!(self, |db, _key| {
            provision::create_user_via_api(db, &grant, &meta, zoid, &user).await
        })
    }

    /// Removes users and their accounts, all or nothing.
    pub async fn delete_users(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        zoid: Zoid,
        users: Vec<UserRef>,
    ) -> Result<(), WriteError> {
        let (grant, meta) = (grant.clone(), meta.clone());
        on_write!(self, |db, _key| {
            provision::delete_users(db, &grant, &meta, zoid, &users).await
        })
    }

    /// Gives each of `zuids` (users of the organization) `role`, all or none (`changeRole`).
    pub async fn change_roles(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        zoid: Zoid,
        zuids: Vec<Zuid>,
        role: Role,
    ) -> Result<(), WriteError> {
        let (grant, meta) = (grant.clone(), meta.clone());
        on_write!(self, |db, _key| {
            provision::change_roles(db, &grant, &meta, zoid, &zuids, role).await
        })
    }

    /// Creates an organization with its super admin and a token of all scopes.
    pub async fn bootstrap(
        &self,
        org_name: &str,
        domain: &str,
        admin_email: EmailAddress,
        admin_password_hash: Option<String>,
    ) -> Result<Bootstrapped, ProvisionError> {
        let (org_name, domain) = (org_name.to_string(), domain.to_string());
        on_write!(self, |db, _key| {
            let hash = admin_password_hash.clone();
            provision::bootstrap(db, &org_name, &domain, &admin_email, hash).await
        })
    }

    /// Seeds `orgs` organizations of `accounts_per_org` users each, for the benchmark. Each
    /// organization is bootstrapped as `bootstrap` does it (domain `benchN.example`).
    pub async fn seed_synthetic(
        &self,
        orgs: u32,
        accounts_per_org: u32,
    ) -> Result<Vec<SyntheticOrg>, ProvisionError> {
        let mut out = Vec::new();
        for n in 1..=orgs {
            let domain = format!("bench{n}.example");
            let admin = EmailAddress::parse(&format!("admin@{domain}"))
                .map_err(|e| ProvisionError::Refused(e.to_string()))?;
            let org = self
                .bootstrap(&format!("Bench {n}"), &domain, admin, None)
                .await?;
            let planned = synthetic::plan(&domain, accounts_per_org);
            let tokens: Vec<String> = planned.iter().map(|u| u.token.clone()).collect();
            let zoid = org.zoid;
            let ids = match self {
                Store::Sqlite(s) => s.insert_synthetic(zoid, planned).await?,
                Store::Postgres(p) => p.insert_synthetic(zoid, planned).await?,
            };
            out.push(SyntheticOrg {
                zoid,
                domain,
                admin_token: org.access_token,
                accounts: ids
                    .into_iter()
                    .zip(tokens)
                    .map(|((zuid, account_id), token)| SyntheticAccount {
                        zuid,
                        account_id,
                        token,
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// The durability settings in force.
    pub async fn durability(&self) -> Result<Durability, StoreError> {
        match self {
            Store::Sqlite(s) => s.durability().await,
            Store::Postgres(p) => p.durability().await,
        }
    }

    /// Creates the demo organization of the contract (§9) on an empty database, with a new
    /// random mailbox password for the admin and for Rebecca.
    pub async fn seed_demo(&self) -> Result<DemoTokens, ProvisionError> {
        let passwords = [secrets::new_password(), secrets::new_password()];
        // argon2 is slow: hashed once, before the write, not in the writer's retries.
        let hashes = tokio::task::spawn_blocking({
            let passwords = passwords.clone();
            move || passwords.map(|p| secrets::hash_password(&p))
        })
        .await
        .map_err(|e| ProvisionError::Store(StoreError::Task(e.to_string())))?;
        let [admin_hash, user_hash] = hashes;
        let (admin_hash, user_hash) = (admin_hash?, user_hash?);
        let mut tokens = on_write!(self, |db, _key| provision::seed_demo(
            db,
            admin_hash.clone(),
            user_hash.clone()
        )
        .await)?;
        [tokens.admin_password, tokens.user_password] = passwords;
        Ok(tokens)
    }

    /// Issues an access token for an existing user; `expires_in_secs` of `None` never expires.
    pub async fn issue_token(
        &self,
        zuid: Zuid,
        scopes: ScopeSet,
        expires_in_secs: Option<u64>,
    ) -> Result<String, ProvisionError> {
        on_write!(self, |db, _key| {
            provision::issue_token(db, zuid, &scopes, expires_in_secs).await
        })
    }

    /// Opens a console session for `zuid` (signed in with its password); the token for
    /// the session's cookie.
    pub async fn open_console_session(
        &self,
        zuid: Zuid,
        limits: SessionLimits,
    ) -> Result<String, StoreError> {
        on_write!(self, |db, _key| console_sessions::open(db, zuid, limits)
            .await)
    }

    /// The live console session behind a cookie's token; `None` when it is unknown,
    /// revoked, past either limit, or not a console session. Moves the idle limit
    /// forward, with a write at most once a minute per session.
    pub async fn console_session(&self, token: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let digest = secrets::token_digest(token);
        let session = on_read!(self, |db| {
            let (principal, idle) = tokio::try_join!(
                provision::authenticate(db, &digest),
                console_sessions::idle(db, &digest)
            )?;
            Ok::<_, StoreError>(console_sessions::live(principal, idle))
        })?;
        let now = now_ms();
        if session.as_ref().is_some_and(|s| s.due_for_touch(now)) {
            on_write!(self, |db, _key| console_sessions::touch(db, &digest, now)
                .await)?;
        }
        Ok(session)
    }

    /// Ends every console session of `zuid` (sign-out ends them all); how many were live.
    pub async fn end_console_sessions(&self, zuid: Zuid) -> Result<u64, StoreError> {
        on_write!(self, |db, _key| console_sessions::end_all(db, zuid).await)
    }

    /// Revokes a token; `false` when no such live token exists.
    pub async fn revoke_token(&self, token: &str) -> Result<bool, StoreError> {
        let digest = secrets::token_digest(token);
        on_write!(self, |db, _key| provision::revoke_token(db, &digest).await)
    }

    /// Registers an OAuth client; the secret is returned once and stored as a digest.
    pub async fn create_client(
        &self,
        name: &str,
        redirect_uri: Option<&str>,
    ) -> Result<oauth::ClientCredentials, StoreError> {
        let (name, redirect_uri) = (name.to_string(), redirect_uri.map(str::to_string));
        on_write!(self, |db, _key| {
            oauth::flow::create_client(db, &name, redirect_uri.as_deref()).await
        })
    }

    /// A registered OAuth client.
    pub async fn oauth_client(
        &self,
        client_id: &str,
    ) -> Result<Option<oauth::OAuthClient>, StoreError> {
        on_read!(self, |db| oauth::flow::client(db, client_id).await)
    }

    /// A refresh token for a user and client, without the browser flow.
    pub async fn oauth_grant(
        &self,
        client_id: &str,
        zuid: Zuid,
        scopes: ScopeRequest,
    ) -> Result<String, ProvisionError> {
        let client_id = client_id.to_string();
        on_write!(self, |db, _key| {
            oauth::flow::grant(db, &client_id, zuid, &scopes).await
        })
    }

    /// The user an address signs in as, with the password hash.
    pub async fn credentials(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<oauth::Credentials>, StoreError> {
        on_read!(self, |db| oauth::flow::credentials(db, email.as_str())
            .await)
    }

    /// An authorization code for a signed-in user, pending consent, bound to the
    /// request's PKCE challenge if it had one.
    pub async fn issue_code(
        &self,
        client_id: &str,
        zuid: Zuid,
        scopes: ScopeRequest,
        redirect_uri: &str,
        pkce: Option<oauth::CodeChallenge>,
    ) -> Result<String, StoreError> {
        let (client_id, redirect_uri) = (client_id.to_string(), redirect_uri.to_string());
        on_write!(self, |db, _key| {
            oauth::flow::issue_code(db, &client_id, zuid, &scopes, &redirect_uri, pkce.as_ref())
                .await
        })
    }

    /// A code awaiting consent (not expired, used or decided).
    pub async fn pending_code(&self, code: &str) -> Result<Option<oauth::PendingCode>, StoreError> {
        on_read!(self, |db| oauth::flow::pending_code(db, code).await)
    }

    /// Records consent or refusal; the redirect URI of a pending code.
    pub async fn decide_code(
        &self,
        code: &str,
        approve: bool,
    ) -> Result<Option<String>, StoreError> {
        let code = code.to_string();
        on_write!(self, |db, _key| oauth::flow::decide_code(
            db, &code, approve
        )
        .await)
    }

    /// `grant_type=authorization_code`: access and refresh tokens for an approved code.
    /// `code_verifier` must answer the code's PKCE challenge, and be absent when it has
    /// none; when it does not, the code is spent all the same (`invalid_code`).
    pub async fn exchange_code(
        &self,
        client_id: &str,
        secret: &str,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        ttl_secs: u64,
    ) -> Result<oauth::IssuedTokens, oauth::OAuthError> {
        let (client_id, secret, code) =
            (client_id.to_string(), secret.to_string(), code.to_string());
        let (redirect_uri, code_verifier) = (
            redirect_uri.map(str::to_string),
            code_verifier.map(str::to_string),
        );
        on_write!(self, |db, _key| {
            oauth::flow::exchange_code(
                db,
                &client_id,
                &secret,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
                ttl_secs,
            )
            .await
        })?
        .into_result()
    }

    /// `grant_type=refresh_token`: a new access token with the grant's scopes.
    pub async fn refresh_access(
        &self,
        client_id: &str,
        secret: &str,
        refresh_token: &str,
        ttl_secs: u64,
    ) -> Result<oauth::IssuedTokens, oauth::OAuthError> {
        let (client_id, secret, refresh_token) = (
            client_id.to_string(),
            secret.to_string(),
            refresh_token.to_string(),
        );
        on_write!(self, |db, _key| {
            oauth::flow::refresh(db, &client_id, &secret, &refresh_token, ttl_secs).await
        })
    }

    /// Revokes a refresh token (and its access tokens) or an access token.
    pub async fn revoke_oauth_token(&self, token: &str) -> Result<bool, StoreError> {
        let token = token.to_string();
        on_write!(self, |db, _key| oauth::flow::revoke(db, &token).await)
    }

    /// Whether the database answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_read!(self, |db| db::Db::exists(db, "SELECT 1", &[])
            .await
            .map(drop))
    }

    /// SQLite's group commits so far, the writes they kept and their flush times (`None`
    /// on PostgreSQL, which commits each request's transaction itself).
    pub fn commit_stats(&self) -> Option<CommitStats> {
        match self {
            Store::Sqlite(s) => Some(s.commit_stats()),
            Store::Postgres(_) => None,
        }
    }

    /// Connections of this node: (in use, idle, most).
    pub fn pool_state(&self) -> (usize, usize, usize) {
        match self {
            Store::Sqlite(s) => s.pool_state(),
            Store::Postgres(p) => p.pool_state(),
        }
    }

    /// The organization's audit trail, newest first; `None` when out of the grant's reach.
    pub async fn audit_log(
        &self,
        grant: &Grant,
        zoid: Zoid,
        query: AuditQuery,
    ) -> Result<Option<Vec<AuditEntry>>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        on_read!(self, |db| audit::entries(db, zoid, &query).await.map(Some))
    }

    /// Re-encrypts every stored relay password under the current key version, in one
    /// transaction; the number re-encrypted.
    pub async fn reencrypt_relay_passwords(&self) -> Result<usize, StoreError> {
        on_write!(self, |db, key| mail::reencrypt_relay_passwords(db, key)
            .await)
    }

    /// Decrypts every stored relay password: (how many do, how many do not).
    pub async fn check_relay_passwords(&self) -> Result<(usize, usize), StoreError> {
        let key = self.key();
        on_read!(self, |db| Ok(
            key.count_openable(&mail::relay_passwords(db).await?)
        ))
    }

    /// The hosted account an address belongs to, as the mail server sees it.
    pub async fn mail_account(
        &self,
        address: &EmailAddress,
    ) -> Result<Option<mailplane_domain::MailAccount>, StoreError> {
        on_read!(self, |db| mail::account_by_address(db, address).await)
    }

    /// Whether `domain` is one of an organization's domains.
    pub async fn hosts_domain(&self, domain: &str) -> Result<bool, StoreError> {
        on_read!(self, |db| mail::hosts_domain(db, domain).await)
    }

    /// The hosted account `address` (primary or alias) belongs to, and its primary address.
    pub async fn mailbox(
        &self,
        address: &EmailAddress,
    ) -> Result<Option<(AccountId, EmailAddress)>, StoreError> {
        on_read!(self, |db| mail::mailbox(db, address).await)
    }

    /// The targets of the account's forwards in effect, and whether its mailbox keeps a
    /// copy.
    pub async fn forwarding(
        &self,
        account: AccountId,
    ) -> Result<(Vec<EmailAddress>, bool), StoreError> {
        on_read!(self, |db| mail::forwarding(db, account).await)
    }

    /// The hosted account whose primary address is `login`, as a mail login sees it.
    pub async fn mail_login(
        &self,
        login: &EmailAddress,
    ) -> Result<Option<mailplane_domain::MailLogin>, StoreError> {
        on_read!(self, |db| mail::mail_login(db, login).await)
    }

    /// The logins that may use `address` as envelope sender.
    pub async fn sender_logins(
        &self,
        address: &EmailAddress,
    ) -> Result<Vec<EmailAddress>, StoreError> {
        on_read!(self, |db| mail::sender_logins(db, address).await)
    }

    /// The relay (with its password, decrypted) of the `extfrom` identity of `address`,
    /// once that identity is validated (owner confirmed, relay check passed).
    pub async fn relay_route(
        &self,
        address: &EmailAddress,
    ) -> Result<Option<RelayRoute>, StoreError> {
        let key = self.key();
        on_read!(self, |db| mail::relay_route(db, key, address).await)
    }

    /// Takes up to `limit` relay checks that are due, leased to `node` for `lease_ms`; a
    /// write only when a read found one.
    pub async fn take_relay_checks(
        &self,
        node: &str,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<RelayCheckJob>, StoreError> {
        if !on_read!(self, |db| relay_checks::any_due(db, now_ms()).await)? {
            return Ok(Vec::new());
        }
        let node = node.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_write!(self, |db, _key| relay_checks::take_due(
            db,
            &node,
            now_ms(),
            lease_ms,
            limit
        )
        .await)
    }

    /// Takes the check of identity `id` of `account` now, whatever its schedule; `None`
    /// when the account has no such `extfrom` identity.
    pub async fn take_relay_check(
        &self,
        node: &str,
        account: AccountId,
        id: mailplane_domain::SendMailId,
        lease_ms: i64,
    ) -> Result<Option<RelayCheckJob>, StoreError> {
        let node = node.to_string();
        on_write!(self, |db, _key| relay_checks::take_one(
            db, &node, account, id, lease_ms
        )
        .await)
    }

    /// Records a check's outcome (audited when the state changes), next made at
    /// `next_check_ms`; whether it was recorded (not when the identity changed meanwhile).
    pub async fn record_relay_check(
        &self,
        job: RelayCheckJob,
        outcome: RelayOutcome,
        next_check_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        on_write!(self, |db, _key| relay_checks::record(
            db,
            &job,
            &outcome,
            next_check_ms
        )
        .await)
    }

    /// The relay password of a check, opened for the check alone.
    pub fn relay_password(
        &self,
        job: &RelayCheckJob,
    ) -> Result<mailplane_domain::Secret, StoreError> {
        let binding = relay_key::binding(job.account_id.as_i64(), job.from_address.as_str());
        let plain = self.key().open(&job.sealed, &binding)?;
        Ok(mailplane_domain::Secret::new(plain.as_str().to_string()))
    }

    /// The account's identities, each with its state and verification.
    pub async fn identities(&self, account: AccountId) -> Result<Vec<Identity>, StoreError> {
        on_read!(self, |db| read::identities(db, account).await)
    }

    /// The distinct (server name, connection kind) of the validated relays on `port`.
    pub async fn relay_tls_names(
        &self,
        port: u16,
    ) -> Result<Vec<(String, mailplane_domain::SmtpConnection)>, StoreError> {
        on_read!(self, |db| mail::relay_tls_names(db, port).await)
    }

    /// Records security events in one transaction, each in the log of the organization it
    /// names if that organization exists (probing made-up ids writes nothing). Sample paths
    /// are cut to [`MAX_EVENT_PATH_CHARS`].
    pub async fn record_security_events(
        &self,
        mut events: Vec<SecurityEvent>,
    ) -> Result<(), StoreError> {
        for e in &mut events {
            if e.path.chars().count() > MAX_EVENT_PATH_CHARS {
                e.path = clip_event_path(&e.path);
            }
        }
        on_write!(self, |db, _key| audit::record_security_events(db, &events)
            .await)
    }

    /// Deletes up to `batch` rows of `table` older than `before_ms`, oldest first, in one
    /// short transaction; how many went. Retention calls it until fewer than `batch` go,
    /// so that no long transaction holds the writer.
    pub async fn prune(
        &self,
        table: Pruned,
        before_ms: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        on_write!(self, |db, _key| audit::prune(db, table, before_ms, batch)
            .await)
    }

    /// The organization's security events, newest first.
    pub async fn security_events(
        &self,
        grant: &Grant,
        zoid: Zoid,
        query: AuditQuery,
    ) -> Result<Option<Vec<SecurityEvent>>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        on_read!(self, |db| audit::security_events(db, zoid, &query)
            .await
            .map(Some))
    }

    /// A page of the organization's users (each by its hosted account, by zuid) and how
    /// many there are, for the console; `search` (trimmed), when not empty, keeps those
    /// whose name or any address holds it, case aside. At most
    /// [`console_reads::MAX_USERS_PAGE`] accounts a page. `None` out of the grant's reach.
    pub async fn users_page(
        &self,
        grant: &Grant,
        zoid: Zoid,
        search: &str,
        start: u32,
        limit: u32,
    ) -> Result<Option<UsersPage>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        on_read!(self, |db| console_reads::users_page(
            db, zoid, search, start, limit
        )
        .await
        .map(Some))
    }

    /// The OAuth clients the organization's admins registered in the console, newest
    /// first, at most [`oauth::MAX_LISTED_CLIENTS`] (200); `None` out of the grant's reach.
    pub async fn org_clients(
        &self,
        grant: &Grant,
        zoid: Zoid,
    ) -> Result<Option<Vec<OrgClient>>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        on_read!(self, |db| oauth::org_clients::list(db, zoid)
            .await
            .map(Some))
    }

    /// Registers an OAuth client of the organization, for an admin of it; the secret is
    /// returned once and stored as a digest. At most [`oauth::MAX_CLIENTS_PER_ORG`] (50)
    /// per organization.
    pub async fn register_org_client(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        zoid: Zoid,
        name: &str,
        redirect_uri: Option<&str>,
    ) -> Result<oauth::ClientCredentials, WriteError> {
        let (grant, meta) = (grant.clone(), meta.clone());
        let (name, redirect_uri) = (name.to_string(), redirect_uri.map(str::to_string));
        on_write!(self, |db, _key| {
            let client = (name.as_str(), redirect_uri.as_deref());
            oauth::org_clients::register(db, &grant, &meta, zoid, client).await
        })
    }

    /// Deletes a client of the organization with its tokens, for an admin of it; `false`
    /// when the organization has no such client.
    pub async fn delete_org_client(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        zoid: Zoid,
        client_id: &str,
    ) -> Result<bool, WriteError> {
        let (grant, meta, client_id) = (grant.clone(), meta.clone(), client_id.to_string());
        on_write!(self, |db, _key| {
            oauth::org_clients::delete(db, &grant, &meta, zoid, &client_id).await
        })
    }

    /// The distinct modes of the organization's audit rows, by name (at most 100): the
    /// choices of the console's filter. `None` out of the grant's reach.
    pub async fn audit_kinds(
        &self,
        grant: &Grant,
        zoid: Zoid,
    ) -> Result<Option<Vec<String>>, StoreError> {
        if !grant.reaches_org(zoid) {
            return Ok(None);
        }
        on_read!(self, |db| audit::kinds(db, zoid).await.map(Some))
    }

    fn key(&self) -> &RelayKey {
        match self {
            Store::Sqlite(s) => s.key(),
            Store::Postgres(p) => p.key(),
        }
    }
}

/// Now, in epoch milliseconds (the unit of every time the store keeps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use mailplane_domain::{AccountId, EmailAddress, Role, ScopeSet, Zoid, Zuid};

    use super::*;

    /// Every value that carries a secret, formatted with `{:?}` as a log line or a panic
    /// message would: the secret must not show, the rest should.
    #[test]
    fn debug_output_holds_no_secret() {
        const CANARY: &str = "canary-7f3a9c";
        let canary = || format!("{CANARY}-value");
        let url = format!("postgres://mailplane:{CANARY}@db.example:5432/mp?sslmode=require");
        let shown = [
            format!(
                "{:?}",
                oauth::ClientCredentials {
                    client_id: "1000.ABC".into(),
                    client_secret: canary(),
                }
            ),
            format!(
                "{:?}",
                oauth::IssuedTokens {
                    access_token: canary(),
                    refresh_token: Some(canary()),
                    scopes: ScopeSet::parse_list("ZohoMail.accounts.READ").unwrap(),
                    expires_in_secs: 3600,
                }
            ),
            format!(
                "{:?}",
                oauth::Credentials {
                    zuid: Zuid::new(11111111).unwrap(),
                    password_hash: Some(canary()),
                    expires_ms: None,
                }
            ),
            format!(
                "{:?}",
                Bootstrapped {
                    zoid: Zoid::new(12345678).unwrap(),
                    zuid: Zuid::new(11111111).unwrap(),
                    account_id: AccountId::new(2560636000000008002).unwrap(),
                    access_token: canary(),
                }
            ),
            format!(
                "{:?}",
                DemoTokens {
                    admin_token: canary(),
                    user_token: canary(),
                    admin_password: canary(),
                    user_password: canary(),
                }
            ),
            format!(
                "{:?}",
                NewUser {
                    password_hash: Some(canary()),
                    ..NewUser::minimal(EmailAddress::parse("a@b.example").unwrap(), Role::Member)
                }
            ),
            format!("{:?}", Location::parse_url(&url).unwrap()),
            format!(
                "{:?}",
                PgOptions {
                    url: url.clone(),
                    pool_size: 4,
                    timeout: std::time::Duration::from_secs(5),
                }
            ),
        ];
        for text in &shown {
            assert!(!text.contains(CANARY), "a secret in {text}");
            assert!(text.contains(REDACTED), "nothing redacted in {text}");
        }
        // What is not secret still shows.
        assert!(shown[0].contains("1000.ABC"), "{}", shown[0]);
        assert!(shown[6].contains("db.example:5432/mp"), "{}", shown[6]);
    }
}
