//! The command line. Every flag can also come from a `MAILPLANE_*` environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mailplane",
    version,
    about = "A self-hosted control plane for mail accounts, wire-compatible with the Zoho Mail Accounts API"
)]
pub struct Cli {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the data lives.
#[derive(Args, Clone)]
pub struct StorageArgs {
    /// Directory holding the SQLite file, the relay-password key file and demo-tokens.json
    /// [default: ./mailplane-data]
    #[arg(long, global = true, env = "MAILPLANE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL instead of the SQLite file in the data directory: sqlite:PATH or
    /// postgres://USER@HOST[:PORT]/DBNAME
    #[arg(long, global = true, env = "MAILPLANE_DB", hide_env_values = true)]
    pub db: Option<String>,
    /// Most connections to a database server (PostgreSQL) per node
    #[arg(
        long,
        global = true,
        env = "MAILPLANE_DB_POOL_SIZE",
        default_value_t = 16
    )]
    pub db_pool_size: usize,
    /// Longest wait for a database server, in milliseconds, before a request is answered 503
    #[arg(
        long,
        global = true,
        env = "MAILPLANE_DB_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub db_timeout_ms: u64,
    /// Most writes waiting for SQLite's writer; past it a write is answered 503 SERVER_BUSY
    #[arg(
        long,
        global = true,
        env = "MAILPLANE_WRITE_QUEUE",
        default_value_t = mailplane_store::DEFAULT_WRITE_QUEUE
    )]
    pub write_queue: usize,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the API server
    Serve(Box<ServeArgs>),
    /// Create an organization with its super admin and print an access token
    Bootstrap(BootstrapArgs),
    /// Issue or revoke access tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Create or migrate the database schema, then exit
    Migrate,
    /// Print the OpenAPI 3.1 description of the API
    Openapi,
    /// The key that encrypts relay passwords
    #[command(subcommand)]
    Keys(KeysCommand),
    /// OAuth clients and grants (mailplane as Zoho's accounts server)
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// Wiring a Postfix server to mailplane
    #[command(subcommand)]
    Postfix(PostfixCommand),
    /// Wiring a Dovecot server to mailplane
    #[command(subcommand)]
    Dovecot(DovecotCommand),
    /// Measure durable updates and reads per second on a fresh seeded database, beside
    /// this machine's ceilings (bare SQLite loops, an HTTP echo server, pgbench). It works
    /// in a temporary directory under --data-dir (default: the system's); with --db
    /// postgres://…, in scratch databases it creates on that server and drops at the end
    Bench(BenchArgs),
    /// The benchmark's HTTP echo server (started by `bench`)
    #[command(hide = true)]
    BenchEcho(BenchEchoArgs),
}

#[derive(Args)]
pub struct BenchArgs {
    /// Organizations to seed
    #[arg(long, env = "MAILPLANE_BENCH_ORGS", default_value_t = 10)]
    pub orgs: u32,
    /// Users per organization, each with one hosted account and a token
    #[arg(long, env = "MAILPLANE_BENCH_ACCOUNTS", default_value_t = 10_000)]
    pub accounts: u32,
    /// Seconds measured at each rate, after the warmup
    #[arg(long, env = "MAILPLANE_BENCH_STEP_SECS", default_value_t = 5.0)]
    pub step_secs: f64,
    /// Seconds at each rate before measuring [default: a fifth of --step-secs, at most 1]
    #[arg(long, env = "MAILPLANE_BENCH_WARMUP_SECS")]
    pub warmup_secs: Option<f64>,
    /// The first rate, in requests per second
    #[arg(long, env = "MAILPLANE_BENCH_START_RATE", default_value_t = 200.0)]
    pub start_rate: f64,
    /// Each rate is the previous one times this
    #[arg(long, env = "MAILPLANE_BENCH_STEP_FACTOR", default_value_t = 1.5)]
    pub step_factor: f64,
    /// After the first miss, bisection steps between the last passing rate and it (each
    /// halves the gap, geometrically; none once the two are within 5%)
    #[arg(long, env = "MAILPLANE_BENCH_REFINE", default_value_t = 3)]
    pub refine: u32,
    /// The highest rate tried, in requests per second [default: no limit]
    #[arg(long, env = "MAILPLANE_BENCH_MAX_RATE")]
    pub max_rate: Option<f64>,
    /// A rate passes when its p99 latency is at most this (and errors at most 1%)
    #[arg(long, env = "MAILPLANE_BENCH_MAX_P99_MS", default_value_t = 20.0)]
    pub max_p99_ms: f64,
    /// Server processes on the database [default: 1 on SQLite, 2 on PostgreSQL]
    #[arg(long, env = "MAILPLANE_BENCH_NODES")]
    pub nodes: Option<usize>,
    /// Seconds for each ceiling loop (the bare SQLite loops, pgbench)
    #[arg(long, env = "MAILPLANE_BENCH_CEILING_SECS", default_value_t = 5.0)]
    pub ceiling_secs: f64,
    /// Most requests outstanding; one due beyond it is not sent and counts as an error
    #[arg(long, env = "MAILPLANE_BENCH_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,
    /// Keep-alive connections the load generator keeps to each server, fixed for a step
    #[arg(long, env = "MAILPLANE_BENCH_CONNECTIONS", default_value_t = 128)]
    pub connections: usize,
    /// Instead of the ramps: authenticated updates at --update-rate, alone, then beside a
    /// flood of invalid-token requests from another address at --flood-rate, then beside
    /// one as fast as it goes; update latency and database growth of each
    #[arg(long)]
    pub hostile: bool,
    /// --hostile: authenticated updates per second
    #[arg(long, default_value_t = 1000.0)]
    pub update_rate: f64,
    /// --hostile: invalid-token requests per second of the fixed-rate flood
    #[arg(long, default_value_t = 5000.0)]
    pub flood_rate: f64,
    /// Instead of the ramps: the web console's users table in one organization of
    /// --accounts users, at --console-rate requests per second, one step after the other:
    /// the API's listing of the organization's accounts (the baseline), the table's first
    /// page, random pages, and searches that find one user, many, and none
    #[arg(long, conflicts_with = "hostile")]
    pub console: bool,
    /// --console: requests per second of each step
    #[arg(long, default_value_t = 200.0)]
    pub console_rate: f64,
    /// Where the JSON report is written
    #[arg(
        long,
        env = "MAILPLANE_BENCH_JSON",
        default_value = "mailplane-bench.json"
    )]
    pub json: PathBuf,
}

#[derive(Args)]
pub struct BenchEchoArgs {
    /// Address and port to listen on (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Size of the answer to a GET, in bytes
    #[arg(long, default_value_t = 1000)]
    pub get_bytes: usize,
}

#[derive(Subcommand)]
pub enum PostfixCommand {
    /// Print the main.cf lines that make Postfix ask mailplane's policy service and
    /// socketmap, and hand mail and SMTP logins to Dovecot (with --master-cf: the
    /// master.cf lines of the relay transports)
    Config(PostfixConfigArgs),
}

#[derive(Args)]
pub struct PostfixConfigArgs {
    /// Where mailplane's policy service listens (serve --policy-listen): host:port or
    /// unix:PATH
    #[arg(
        long,
        env = "MAILPLANE_POLICY_LISTEN",
        default_value = "127.0.0.1:10040"
    )]
    pub policy: String,
    /// Where mailplane's socketmap listens (serve --socketmap-listen): host:port or
    /// unix:PATH
    #[arg(
        long,
        env = "MAILPLANE_SOCKETMAP_LISTEN",
        default_value = "127.0.0.1:10041"
    )]
    pub socketmap: String,
    /// Where Dovecot's LMTP service listens for Postfix: unix:PATH (a relative path is
    /// under Postfix's queue directory) or host:port
    #[arg(long, default_value = "unix:private/dovecot-lmtp")]
    pub lmtp: String,
    /// Where Dovecot's auth service listens for Postfix's SASL: unix:PATH (relative to
    /// Postfix's queue directory) or host:port
    #[arg(long, default_value = "unix:private/auth")]
    pub sasl: String,
    /// The characters that start an address extension (user+ext@domain), as Postfix's
    /// recipient_delimiter; empty for none (the same in serve, postfix config and dovecot
    /// config)
    #[arg(long, env = "MAILPLANE_RECIPIENT_DELIMITER", default_value = "+")]
    pub recipient_delimiter: String,
    /// Print the master.cf lines instead: the transports that relay an extfrom
    /// identity's mail the way its smtpConnection says (plain, STARTTLS, implicit TLS)
    #[arg(long)]
    pub master_cf: bool,
}

#[derive(Subcommand)]
pub enum DovecotCommand {
    /// Print (or, with --write, write) the Dovecot configuration that makes Dovecot take
    /// its logins and mailboxes from mailplane's dict listener
    Config(DovecotConfigArgs),
}

#[derive(Args)]
pub struct DovecotConfigArgs {
    /// Where mailplane's dict listener is (serve --dovecot-listen): unix:PATH
    #[arg(
        long,
        env = "MAILPLANE_DOVECOT_LISTEN",
        default_value = "unix:/run/mailplane/dovecot"
    )]
    pub dict: String,
    /// Dovecot's configuration directory: the fragment is conf.d/99-mailplane.conf in it,
    /// the dict files sit beside dovecot.conf
    #[arg(long, default_value = "/etc/dovecot")]
    pub conf_dir: PathBuf,
    /// The directory of the mailboxes, one directory per account id (owned by --mail-user)
    #[arg(long, default_value = "/var/vmail")]
    pub mail_root: PathBuf,
    /// The system user and group that own the mail
    #[arg(long, default_value = "mail")]
    pub mail_user: String,
    /// Where Dovecot's LMTP service listens for Postfix: unix:PATH or host:port
    #[arg(long, default_value = "unix:/var/spool/postfix/private/dovecot-lmtp")]
    pub lmtp: String,
    /// Where Dovecot's auth service listens for Postfix's SASL: unix:PATH or host:port
    #[arg(long, default_value = "unix:/var/spool/postfix/private/auth")]
    pub sasl: String,
    /// Write the files into --conf-dir (replacing earlier ones) instead of printing them
    #[arg(long)]
    pub write: bool,
    /// The characters that start an address extension (user+ext@domain), as Postfix's
    /// recipient_delimiter; empty for none (the same in serve, postfix config and dovecot
    /// config)
    #[arg(long, env = "MAILPLANE_RECIPIENT_DELIMITER", default_value = "+")]
    pub recipient_delimiter: String,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a new key version, re-encrypt every stored relay password under it, retire the
    /// old version (stop the nodes first: they hold the key in memory)
    Rotate,
    /// Decrypt every stored relay password with the current key file; exit 1 on a failure
    Check,
}

#[derive(Subcommand)]
pub enum OauthCommand {
    /// Manage OAuth clients
    #[command(subcommand)]
    Client(OauthClientCommand),
    /// Issue a refresh token for a user without the browser flow (for scripts)
    Grant(GrantArgs),
}

#[derive(Subcommand)]
pub enum OauthClientCommand {
    /// Register a client; prints its id and its secret (shown once)
    Create(ClientCreateArgs),
}

#[derive(Args)]
pub struct ClientCreateArgs {
    #[arg(long, env = "MAILPLANE_CLIENT_NAME")]
    pub name: String,
    /// Where the browser flow sends the user back with the code
    #[arg(long, env = "MAILPLANE_REDIRECT_URI")]
    pub redirect_uri: Option<String>,
}

#[derive(Args)]
pub struct GrantArgs {
    #[arg(long, env = "MAILPLANE_CLIENT_ID")]
    pub client_id: String,
    #[arg(long, env = "MAILPLANE_ZUID")]
    pub zuid: String,
    /// Comma-separated scopes, e.g. ZohoMail.accounts.ALL. Zoho's other scopes are
    /// accepted and recorded, but only ZohoMail.accounts.* and
    /// ZohoMail.organization.accounts.* give access
    #[arg(long, env = "MAILPLANE_SCOPE")]
    pub scope: String,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one)
    #[arg(long, env = "MAILPLANE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Base of the URI fields in responses [default: http://<listen address>]
    #[arg(long, env = "MAILPLANE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Start with the demo organization of the seed samples, on a fresh data directory
    #[arg(long, env = "MAILPLANE_DEMO")]
    pub demo: bool,
    /// Lifetime in seconds of access tokens from the OAuth token endpoint
    #[arg(long, env = "MAILPLANE_ACCESS_TOKEN_TTL", default_value_t = 3600)]
    pub access_token_ttl: u64,
    /// Failed sign-ins an account may have (all its addresses together) before each
    /// further attempt must wait, 1 s after the last failure and twice as long after each
    /// further one, at most 15 minutes (sooner: 429 without checking the password)
    #[arg(long, env = "MAILPLANE_SIGNIN_MAX_FAILURES", default_value_t = 5)]
    pub signin_max_failures: u32,
    /// Failed sign-ins allowed per client address within --signin-window; beyond, 429
    #[arg(
        long,
        env = "MAILPLANE_SIGNIN_CLIENT_MAX_FAILURES",
        default_value_t = 20
    )]
    pub signin_client_max_failures: u32,
    /// The first wait of a slowed account, in milliseconds (tests shorten it)
    #[arg(
        long,
        env = "MAILPLANE_SIGNIN_DELAY_MS",
        default_value_t = 1000,
        hide = true
    )]
    pub signin_delay_ms: u64,
    /// Password hashes and checks (argon2) run at once; a sign-in or user creation that
    /// finds none free within 2 s is answered 503 SERVER_BUSY [default: the number of cores]
    #[arg(
        long,
        env = "MAILPLANE_ARGON2_SLOTS",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub argon2_slots: Option<u32>,
    /// The longest wait for an argon2 slot, in milliseconds (tests shorten it)
    #[arg(
        long,
        env = "MAILPLANE_ARGON2_WAIT_MS",
        default_value_t = 2000,
        hide = true
    )]
    pub argon2_wait_ms: u64,
    /// Requests per second allowed per access token (0: no limit)
    #[arg(long, env = "MAILPLANE_RATE_LIMIT", default_value_t = 0.0)]
    pub rate_limit: f64,
    /// Burst allowed above the rate, in requests [default: the rate]
    #[arg(long, env = "MAILPLANE_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<f64>,
    /// Longest time a request may take, in milliseconds, before it is answered 503
    #[arg(long, env = "MAILPLANE_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Longest wait for a client's request headers, in milliseconds, before disconnecting
    #[arg(
        long,
        env = "MAILPLANE_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,
    /// Most HTTP connections served at once; past it, new connections wait in the kernel's
    /// backlog until one closes
    #[arg(
        long,
        env = "MAILPLANE_MAX_CONNECTIONS",
        default_value_t = 4096,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections: u32,
    /// Allow relay servers (extfrom) at loopback, private or link-local addresses
    #[arg(long, env = "MAILPLANE_ALLOW_INTERNAL_RELAYS")]
    pub allow_internal_relays: bool,
    /// Serve Postfix's SMTP access policy protocol on HOST:PORT or on a UNIX socket,
    /// unix:PATH (off unless given)
    #[arg(long, env = "MAILPLANE_POLICY_LISTEN")]
    pub policy_listen: Option<String>,
    /// Serve Postfix's socketmap lookups on a UNIX socket, unix:PATH (preferred: it hands
    /// out relay passwords, and only the socket's owner and group may connect), or on a
    /// loopback HOST:PORT (off unless given)
    #[arg(long, env = "MAILPLANE_SOCKETMAP_LISTEN")]
    pub socketmap_listen: Option<String>,
    /// Serve Dovecot's dict lookups (logins, password hashes, mailboxes) on a UNIX socket,
    /// unix:PATH (off unless given; nothing else is accepted: it hands out password hashes)
    #[arg(long, env = "MAILPLANE_DOVECOT_LISTEN")]
    pub dovecot_listen: Option<String>,
    /// The group of the --dovecot-listen socket (a name or a number), whose processes may
    /// connect: Dovecot's auth process runs in group dovecot on Debian
    #[arg(long, env = "MAILPLANE_DOVECOT_SOCKET_GROUP")]
    pub dovecot_socket_group: Option<String>,
    /// HOST:PORT of the SMTP server mailplane hands its own messages to (the keys that
    /// confirm a forward or a send-as address), normally the local Postfix: plain SMTP, no login, the null
    /// sender. Unset: the modes that must mail a key are refused
    #[arg(long, env = "MAILPLANE_MAIL_SUBMIT")]
    pub mail_submit: Option<String>,
    /// The From address of mailplane's messages [default: postmaster@ the domain of the
    /// account a message is about]
    #[arg(long, env = "MAILPLANE_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// The longest one step of handing a message over may take (connecting, each reply),
    /// and all the messages of one request together, in milliseconds
    #[arg(
        long,
        env = "MAILPLANE_MAIL_SUBMIT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub mail_submit_timeout_ms: u64,
    /// Messages handed over at once; a request that would mail one more is answered 503
    /// SERVER_BUSY with Retry-After
    #[arg(
        long,
        env = "MAILPLANE_MAIL_SUBMIT_SLOTS",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub mail_submit_slots: u32,
    /// How often, in hours, the relay of an extfrom identity that passed its check is
    /// checked again (each time ±10 %, so identities added together spread out);
    /// fractions allowed
    #[arg(
        long,
        env = "MAILPLANE_RELAY_RECHECK_HOURS",
        default_value_t = 24.0,
        value_parser = positive_hours
    )]
    pub relay_recheck_hours: f64,
    /// The longest one check of a relay may take, connect to QUIT, in seconds
    #[arg(
        long,
        env = "MAILPLANE_RELAY_PROBE_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=300)
    )]
    pub relay_probe_timeout_secs: u64,
    /// Relay checks made at once by this node, scheduled and asked for together; a
    /// verifysendmaildetails that finds none free is answered 503 SERVER_BUSY
    #[arg(
        long,
        env = "MAILPLANE_RELAY_CHECK_SLOTS",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=256)
    )]
    pub relay_check_slots: u32,
    /// A console session ends after this many minutes without a request
    #[arg(
        long,
        env = "MAILPLANE_CONSOLE_IDLE_MINUTES",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=10_080)
    )]
    pub console_idle_minutes: u64,
    /// A console session ends this many hours after sign-in, used or not
    #[arg(
        long,
        env = "MAILPLANE_CONSOLE_SESSION_HOURS",
        default_value_t = 12,
        value_parser = clap::value_parser!(u64).range(1..=720)
    )]
    pub console_session_hours: u64,
    /// A PEM file of certificate authorities that relay checks trust besides the
    /// system's (give Postfix the same in smtp_tls_CAfile)
    #[arg(long, env = "MAILPLANE_RELAY_CA_FILE")]
    pub relay_ca_file: Option<PathBuf>,
    /// The characters that start an address extension (user+ext@domain), as Postfix's
    /// recipient_delimiter; empty for none (the same in serve, postfix config and dovecot
    /// config)
    #[arg(long, env = "MAILPLANE_RECIPIENT_DELIMITER", default_value = "+")]
    pub recipient_delimiter: String,
    /// Most connections each Postfix listener serves at once; past it, the oldest
    /// connection that has not sent a request (else the longest idle) is closed for a
    /// newcomer
    #[arg(
        long,
        env = "MAILPLANE_POSTFIX_MAX_CONNECTIONS",
        default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub postfix_max_connections: u32,
    /// Most connections per client address that have not completed a request yet, on each
    /// Postfix listener (tests shrink it)
    #[arg(
        long,
        env = "MAILPLANE_POSTFIX_MAX_NEW_PER_CLIENT",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..),
        hide = true
    )]
    pub postfix_max_new_per_client: u32,
    /// How long a new connection to a Postfix listener has to complete its first request,
    /// in milliseconds (tests change it)
    #[arg(
        long,
        env = "MAILPLANE_POSTFIX_FIRST_REQUEST_MS",
        default_value_t = 10_000,
        hide = true
    )]
    pub postfix_first_request_ms: u64,
    /// How long a connection to a Postfix listener that has spoken may stay silent
    /// between requests, in milliseconds (tests shorten it)
    #[arg(
        long,
        env = "MAILPLANE_POSTFIX_IDLE_MS",
        default_value_t = 300_000,
        hide = true
    )]
    pub postfix_idle_ms: u64,
    /// The window of --signin-client-max-failures, in seconds
    #[arg(long, env = "MAILPLANE_SIGNIN_WINDOW", default_value_t = 300)]
    pub signin_window: u64,
    /// A reverse proxy (an IP address or a CIDR block; repeatable, or comma-separated in
    /// the variable) whose X-Forwarded-For names the client. From any other peer the header
    /// is ignored and the peer's address is the client's
    #[arg(
        long,
        env = "MAILPLANE_TRUSTED_PROXY",
        value_name = "IP or CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<mailplane_api::IpNet>,
    /// Days an audit row is kept (0: forever, the audit trail is evidence)
    #[arg(long, env = "MAILPLANE_AUDIT_RETENTION_DAYS", default_value_t = 0)]
    pub audit_retention_days: u32,
    /// Days a security event is kept (0: forever)
    #[arg(
        long,
        env = "MAILPLANE_SECURITY_EVENT_RETENTION_DAYS",
        default_value_t = 90
    )]
    pub security_event_retention_days: u32,
    /// How often retention runs, in milliseconds
    #[arg(long, default_value_t = 3_600_000, hide = true)]
    pub retention_interval_ms: u64,
    /// How long refusals are counted before they are written, in milliseconds
    #[arg(
        long,
        env = "MAILPLANE_SECURITY_EVENT_WINDOW_MS",
        default_value_t = 10_000,
        hide = true
    )]
    pub security_event_window_ms: u64,
    /// Invalid tokens one client address may present per 10 s before its requests with a
    /// token are answered 429 without a database lookup (0: no limit)
    #[arg(long, env = "MAILPLANE_BAD_TOKEN_LIMIT", default_value_t = 100)]
    pub bad_token_limit: u32,
    /// Refusals of one user's valid token written one by one per window; the rest are counted
    #[arg(long, default_value_t = 20, hide = true)]
    pub security_events_per_user: u32,
}

#[derive(Args)]
pub struct BootstrapArgs {
    #[arg(long, env = "MAILPLANE_ORG_NAME")]
    pub org_name: String,
    #[arg(long, env = "MAILPLANE_DOMAIN")]
    pub domain: String,
    #[arg(long, env = "MAILPLANE_ADMIN_EMAIL")]
    pub admin_email: String,
    /// The super admin's mailbox password (optional; without it the admin has no login)
    #[arg(long, env = "MAILPLANE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue an access token for a user
    Issue(IssueArgs),
    /// Revoke an access token
    Revoke(RevokeArgs),
}

#[derive(Args)]
pub struct IssueArgs {
    #[arg(long, env = "MAILPLANE_ZUID")]
    pub zuid: String,
    /// Comma-separated scopes, e.g. ZohoMail.accounts.READ,ZohoMail.accounts.UPDATE. Zoho's
    /// other scopes are accepted, but only ZohoMail.accounts.* and
    /// ZohoMail.organization.accounts.* give access
    #[arg(long, env = "MAILPLANE_SCOPE")]
    pub scope: String,
    /// Lifetime in seconds; 0 for a token that never expires
    #[arg(long, env = "MAILPLANE_EXPIRES_IN", default_value_t = 3600)]
    pub expires_in: u64,
}

#[derive(Args)]
pub struct RevokeArgs {
    #[arg(long, env = "MAILPLANE_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// `--relay-recheck-hours`: a positive number of hours, at most ten years.
fn positive_hours(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(h) if h.is_finite() && h > 0.0 && h <= 87_600.0 => Ok(h),
        _ => Err(format!(
            "{s:?} is not a number of hours above 0 (at most 87600)"
        )),
    }
}
