//! What the store hands back and takes in, besides the domain's own types.

use crate::{redacted, REDACTED};
use mailplane_domain::{
    AccountAddress, AccountId, AccountKind, AliasId, EmailAddress, Identity, MailForward, Role,
    Secret, UserProfile, Zoid, Zuid,
};

/// What a successful account update answers with (the mode's `Answer`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The account's identities after the change, for the modes that answer with them
    /// (`Mode::answers_with_identities`); `None` for the others, for which nothing is
    /// read back.
    pub identities: Option<Vec<Identity>>,
    /// The addresses the change added, each with its new id, in the order given
    /// (`Answer::AddedAddresses`).
    pub added_addresses: Option<Vec<(EmailAddress, AliasId)>>,
    /// The account's forwards after the change (`Answer::Forwards`).
    pub forwards: Option<Vec<MailForward>>,
    /// The account's primary address, with the forwards and the identities (the
    /// confirmation mail names it).
    pub account_address: Option<EmailAddress>,
    /// The addresses of identities given a new key, to mail it to once the change
    /// commits.
    pub keyed: Vec<EmailAddress>,
}

/// An account with everything the account object of the API shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    pub account_id: AccountId,
    pub zuid: Zuid,
    pub zoid: Zoid,
    pub role: Role,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub kind: AccountKind,
    pub sequence: u32,
    pub external_address: Option<EmailAddress>,
    pub enabled: bool,
    pub outgoing_blocked: bool,
    pub incoming_blocked: bool,
    pub imap_enabled: bool,
    pub pop_enabled: bool,
    pub activesync_enabled: bool,
    pub created_ms: i64,
    pub last_login_ms: i64,
    pub time_zone: String,
    pub language: String,
    pub country: String,
    /// Whether the user's password was set as one-time (`resetPassword`, or on creation).
    pub one_time_password: bool,
    /// `deleteZohoMailCopy`: no copy stays in the mailbox while a forward is in effect.
    pub forward_delete_copy: bool,
    /// When the user expires (`userExpiry`), in epoch milliseconds; `None` for never.
    pub expires_ms: Option<i64>,
    pub profile: UserProfile,
    /// Hosted accounts: the primary address first, then aliases by name.
    pub addresses: Vec<AccountAddress>,
    pub identities: Vec<Identity>,
    /// Hosted accounts: the forwards, by target address.
    pub forwards: Vec<MailForward>,
}

impl AccountView {
    pub fn primary_address(&self) -> Option<&EmailAddress> {
        self.addresses
            .iter()
            .find(|a| a.is_primary)
            .map(|a| &a.address)
            .or(self.external_address.as_ref())
    }
}

/// A page of an organization's users (their hosted accounts), and how many users the
/// whole listing has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersPage {
    /// Users that match, on every page together.
    pub total: u64,
    /// This page's hosted accounts, by zuid.
    pub accounts: Vec<AccountView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgView {
    pub zoid: Zoid,
    pub name: String,
    pub primary_domain: String,
    pub domains: Vec<String>,
    pub users_count: u64,
    pub mailbox_count: u64,
    pub super_admin: Option<EmailAddress>,
    pub created_ms: i64,
}

/// A user to create, with its hosted account.
#[derive(Clone)]
pub struct NewUser {
    pub primary_email: EmailAddress,
    /// Already hashed (argon2id): hashing is slow and happens before the write path.
    pub password_hash: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub country: String,
    pub language: String,
    pub time_zone: String,
    /// `oneTimePassword`: stored and shown, as `resetPassword` sets it.
    pub one_time_password: bool,
    /// When the user expires (from `userExpiry`), in epoch milliseconds.
    pub expires_ms: Option<i64>,
    pub profile: UserProfile,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("primary_email", &self.primary_email)
            .field("password_hash", &redacted(&self.password_hash))
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("country", &self.country)
            .field("language", &self.language)
            .field("time_zone", &self.time_zone)
            .field("one_time_password", &self.one_time_password)
            .field("expires_ms", &self.expires_ms)
            .field("profile", &self.profile)
            .finish()
    }
}

impl NewUser {
    /// A user with defaults for everything but the address and role.
    pub fn minimal(primary_email: EmailAddress, role: Role) -> Self {
        Self {
            primary_email,
            password_hash: None,
            first_name: String::new(),
            last_name: String::new(),
            display_name: None,
            role,
            country: "us".into(),
            language: "en".into(),
            time_zone: "UTC".into(),
            one_time_password: false,
            expires_ms: None,
            profile: UserProfile::default(),
        }
    }
}

/// A user named by id or by address (`DELETE …/accounts` takes either list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Zuid(Zuid),
    Email(EmailAddress),
}

/// Where a change came from, as its audit row says: a token of the API, or a session of
/// the web console (which is a token of its own kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Api,
    Console,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Console => "console",
        }
    }

    pub(crate) fn of_kind(kind: &str) -> Via {
        if kind == "console" {
            Via::Console
        } else {
            Via::Api
        }
    }
}

/// Facts about a request that go into the audit row.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_addr: String,
}

/// What `bootstrap` created.
#[derive(Clone)]
pub struct Bootstrapped {
    pub zoid: Zoid,
    pub zuid: Zuid,
    pub account_id: AccountId,
    pub access_token: String,
}

// By hand, not derived: `{:?}` in a log line or a panic message must not carry a token.
impl std::fmt::Debug for Bootstrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrapped")
            .field("zoid", &self.zoid)
            .field("zuid", &self.zuid)
            .field("account_id", &self.account_id)
            .field("access_token", &REDACTED)
            .finish()
    }
}

/// The tokens and mailbox passwords of the demo organization.
#[derive(Clone)]
pub struct DemoTokens {
    pub admin_token: String,
    pub user_token: String,
    pub admin_password: String,
    pub user_password: String,
}

impl std::fmt::Debug for DemoTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoTokens")
            .field("admin_token", &REDACTED)
            .field("user_token", &REDACTED)
            .field("admin_password", &REDACTED)
            .field("user_password", &REDACTED)
            .finish()
    }
}

/// A relay password for the store to encrypt, carried as a domain secret.
pub type RelayPassword = Secret;

/// Which audit rows (or security events) to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub start: u32,
    pub limit: u32,
    pub account: Option<mailplane_domain::AccountId>,
    /// Only rows at or after this time (epoch milliseconds).
    pub since_ms: Option<i64>,
    /// Only audit rows of this mode; only security events of this error code.
    pub kind: Option<String>,
    /// Only audit rows this user made or that changed this user; only security events of
    /// this user's token.
    pub actor: Option<Zuid>,
}

/// One audit row: a change, or a denied attempt (`mode` = `denied`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub request_id: Option<String>,
    pub actor_zuid: Option<i64>,
    pub actor_token_id: Option<i64>,
    pub client_addr: Option<String>,
    pub zuid: Option<i64>,
    pub account_id: Option<i64>,
    pub mode: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    /// `api` or `console`; `None` for the system's rows and rows from before it was kept.
    pub via: Option<String>,
}

/// Requests refused on an admin URL (401, 403, 404, 429), kept as a security event of the
/// organization the URL names: one request, or `count` alike (see the API's refusal log)
/// between `first_ms` and `at_ms`, with one of them as the sample (`request_id`, `path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// When the (last) refusal happened.
    pub at_ms: i64,
    /// When the first of them happened (`at_ms` for a single one).
    pub first_ms: i64,
    pub count: u64,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub zoid: Zoid,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub error_code: String,
    /// The user behind the token that was refused; `None` without a valid token.
    pub actor_zuid: Option<Zuid>,
}

/// The longest sample path kept with a security event, in characters: a refused request
/// must not be able to store what it likes.
pub const MAX_EVENT_PATH_CHARS: usize = 256;

/// `path`, cut to [`MAX_EVENT_PATH_CHARS`] (with `…` when cut).
pub fn clip_event_path(path: &str) -> String {
    match path.char_indices().nth(MAX_EVENT_PATH_CHARS) {
        None => path.to_string(),
        Some((at, _)) => format!("{}…", &path[..at]),
    }
}

/// The tables that retention prunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruned {
    Audit,
    SecurityEvents,
}

impl Pruned {
    pub fn table(self) -> &'static str {
        match self {
            Pruned::Audit => "audit",
            Pruned::SecurityEvents => "security_events",
        }
    }
}

/// The relay of an `extfrom` identity as the mail server uses it, with the password
/// decrypted. No `Debug`: the password must not reach a log line by accident.
pub struct RelayRoute {
    pub server_name: String,
    pub server_port: u16,
    pub user_name: String,
    pub password: Option<zeroize::Zeroizing<String>>,
    /// How Postfix must connect: the transport and TLS policy it is handed follow this.
    pub smtp_connection: mailplane_domain::SmtpConnection,
}

/// An `smtp_connection` column of a relay. A relay row always has one (the API fills in
/// `plain` when it is not given); a missing or unknown one is corruption, never a guess.
pub(crate) fn smtp_connection(
    column: Option<String>,
) -> Result<mailplane_domain::SmtpConnection, crate::StoreError> {
    column
        .as_deref()
        .and_then(mailplane_domain::SmtpConnection::parse)
        .ok_or_else(|| crate::StoreError::Corrupt(format!("smtp connection {column:?}")))
}

impl RelayRoute {
    /// The route from the columns of its identity row (`server_name`, `server_port`,
    /// `user_name`, `smtp_connection`), without its password yet; and the sealed password
    /// (`password_enc`).
    pub(crate) fn from_row(
        r: &crate::db::Row<'_>,
    ) -> Result<(RelayRoute, Option<Vec<u8>>), crate::StoreError> {
        let port = r.get::<Option<i32>>("server_port")?;
        let server_port = port
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| crate::StoreError::Corrupt(format!("relay port {port:?}")))?;
        let route = RelayRoute {
            server_name: r.get("server_name")?,
            server_port,
            user_name: r.get::<Option<String>>("user_name")?.unwrap_or_default(),
            password: None,
            smtp_connection: smtp_connection(r.get("smtp_connection")?)?,
        };
        Ok((route, r.get("password_enc")?))
    }

    /// The route with its password opened with `key` (it is bound to the row's account
    /// and address).
    pub(crate) fn unseal(
        mut self,
        key: &crate::RelayKey,
        account_id: i64,
        from_address: &str,
        sealed: Option<Vec<u8>>,
    ) -> Result<RelayRoute, crate::StoreError> {
        self.password = sealed
            .map(|ct| key.open(&ct, &crate::relay_key::binding(account_id, from_address)))
            .transpose()?;
        Ok(self)
    }
}
