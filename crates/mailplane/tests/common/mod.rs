//! `TestApp`: the real `mailplane` binary serving on port 0 with a fresh data directory
//! and a fresh database, and helpers to drive it and look at what it stored.
//!
//! Every test runs on a [`Backend`]: SQLite (the file in the data directory) or
//! PostgreSQL (a database of its own, created on the server at `MAILPLANE_TEST_PG_URL`,
//! or at [`DEFAULT_PG_URL`] when it is unset, and dropped afterwards). [`backend_tests!`]
//! runs a file's tests on both. The PostgreSQL tests are ignored when `build.rs` found no
//! server at build time, except under `CI=true`, where they run and fail.
#![allow(dead_code, unused_macros)]

pub mod concurrency;
pub mod console;
pub mod dict_client;
pub mod policy_client;
pub mod relay;
pub mod socketmap_client;
pub mod wire;

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mailplane_client::Client;
use serde_json::Value;
use tempfile::TempDir;

pub const ZOID: &str = "12345678";
pub const REBECCA_ZUID: &str = "11111111";
pub const REBECCA: &str = "2560636000000008002";
pub const POP: &str = "5111110000000008001";
pub const IMAP: &str = "5111110000000009001";

/// The admin URL of a PostgreSQL server the tests may create databases on, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`.
pub const PG_URL_VAR: &str = "MAILPLANE_TEST_PG_URL";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mailplane")
}

// ---- backends ----

/// The database a test runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// Each app gets a fresh database on the server at `admin_url`.
    Postgres {
        admin_url: String,
    },
}

tokio::task_local! {
    static BACKEND: Backend;
}

impl Backend {
    /// The backend of the running test: the one [`run_on`] set, SQLite outside it.
    pub fn current() -> Backend {
        BACKEND.try_with(Backend::clone).unwrap_or(Backend::Sqlite)
    }

    /// PostgreSQL at `MAILPLANE_TEST_PG_URL`, or at [`DEFAULT_PG_URL`] when it is unset.
    ///
    /// There is no skipping here: `build.rs` marks the PostgreSQL tests ignored when no
    /// server answered at build time (outside CI), so a test that gets this far must run,
    /// and fails when the server cannot be reached.
    pub fn postgres(test: &str) -> Backend {
        let admin_url = pg_admin_url();
        let host_port = PgDatabase::host_port_of(&admin_url);
        let reachable = std::net::ToSocketAddrs::to_socket_addrs(host_port.as_str())
            .map(|mut addrs| {
                addrs.any(|a| {
                    std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2))
                        .is_ok()
                })
            })
            .unwrap_or(false);
        assert!(
            reachable,
            "{test}: no PostgreSQL answers at {host_port}; this test is not ignored because \
             CI=true, or because PostgreSQL answered when the tests were built (touch \
             crates/mailplane/build.rs to look again)"
        );
        Backend::Postgres { admin_url }
    }
}

/// Where the PostgreSQL tests look when `MAILPLANE_TEST_PG_URL` is unset (the same default
/// as `build.rs`, which decides whether those tests are ignored).
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The admin URL of the PostgreSQL server the tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var(PG_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_string())
}

/// Runs `test` with `backend` as [`Backend::current`].
pub async fn run_on(backend: Backend, test: impl Future<Output = ()>) {
    BACKEND.scope(backend, test).await
}

/// Runs `test` on PostgreSQL (see [`Backend::postgres`]).
pub async fn run_on_postgres(name: &str, test: impl Future<Output = ()>) {
    run_on(Backend::postgres(name), test).await
}

/// For each `async fn name()` listed, a test `sqlite::name` and a test `postgres::name`
/// that run it on that backend. Attributes before a name (e.g. `#[ignore = "…"]`) go on
/// its tests. Optional sections list the tests of one backend only (a name may be in
/// both, to give each backend's test its own attributes):
///
/// ```ignore
/// backend_tests!(a, b; sqlite only: c; postgres only: d, #[ignore = "BUG: …"] c);
/// ```
macro_rules! backend_tests {
    (
        $($(#[$attr:meta])* $name:ident),* $(,)?
        $(; sqlite only: $($(#[$sattr:meta])* $sname:ident),+ $(,)?)?
        $(; postgres only: $($(#[$pattr:meta])* $pname:ident),+ $(,)?)?
    ) => {
        $crate::common::sqlite_tests!($($(#[$attr])* $name,)* $($($(#[$sattr])* $sname,)+)?);
        $crate::common::postgres_tests!($($(#[$attr])* $name,)* $($($(#[$pattr])* $pname,)+)?);
    };
}
#[allow(unused_imports)]
pub(crate) use backend_tests;

/// For each `async fn name()` listed, a test `sqlite::name` (see [`backend_tests!`]).
macro_rules! sqlite_tests {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                $(#[$attr])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::common::run_on($crate::common::Backend::Sqlite, super::$name()).await
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use sqlite_tests;

/// For each `async fn name()` listed, a test `postgres::name` that runs it on
/// PostgreSQL; ignored (so reported as skipped, never as passed) when `build.rs` found no
/// server (see [`Backend::postgres`]).
macro_rules! postgres_tests {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod postgres {
            $(
                $(#[$attr])*
                #[cfg_attr(no_postgres, ignore = "no PostgreSQL answered when this test was built (see crates/store/build.rs)")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::common::run_on_postgres(
                        concat!(module_path!(), "::", stringify!($name)),
                        super::$name(),
                    )
                    .await
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use postgres_tests;

/// Where an app's data lives: the SQLite file of its data directory, or a PostgreSQL
/// database shared by every node and command of the test (dropped with the last one).
#[derive(Clone)]
pub enum Db {
    Sqlite,
    Postgres(Arc<PgDatabase>),
}

impl Db {
    /// A fresh, empty database of the [current](Backend::current) backend.
    pub fn fresh() -> Db {
        match Backend::current() {
            Backend::Sqlite => Db::Sqlite,
            Backend::Postgres { admin_url } => {
                Db::Postgres(Arc::new(PgDatabase::create(&admin_url)))
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// `--db URL` for PostgreSQL; nothing for SQLite (the file in the data directory).
    pub fn args(&self) -> Vec<String> {
        match self {
            Db::Sqlite => Vec::new(),
            Db::Postgres(pg) => vec!["--db".into(), pg.url.clone()],
        }
    }

    /// Runs the `mailplane` command line on the data directory `dir` and this database.
    pub fn cli(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .args(self.args())
            .env_remove("MAILPLANE_RELAY_KEY")
            .env_remove("MAILPLANE_DB")
            .output()
            .expect("run mailplane")
    }
}

/// A PostgreSQL database with a random name, dropped (`WITH (FORCE)`) on drop.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    /// The URL of this database, for `--db`.
    pub url: String,
}

impl PgDatabase {
    pub fn create(admin_url: &str) -> PgDatabase {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let name = format!("mailplane_test_{random:016x}");
        psql(admin_url, &format!("CREATE DATABASE {name}"));
        PgDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        }
    }

    /// The URL of this database through another `host:port` (e.g. a forwarder).
    pub fn url_via(&self, host_port: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("a URL");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host_at = authority.rfind('@').map_or(0, |i| i + 1);
        format!("{scheme}://{}{host_port}{path}", &authority[..host_at])
    }

    /// The `host:port` of the server.
    pub fn host_port(&self) -> String {
        PgDatabase::host_port_of(&self.url)
    }

    /// The `host:port` of a server's URL (port 5432 when it names none).
    pub fn host_port_of(url: &str) -> String {
        let rest = url.split_once("://").expect("a URL").1;
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        let host_port = &authority[authority.rfind('@').map_or(0, |i| i + 1)..];
        if host_port.contains(':') {
            host_port.to_string()
        } else {
            format!("{host_port}:5432")
        }
    }

    /// The rows of one SQL statement on this database.
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        psql(&self.url, sql)
    }

    /// Every row of every table, one line each, as `table: (row as text)`, sorted;
    /// BYTEA values as `\x` hex. Sequences are left out: PostgreSQL never rolls them back.
    pub fn all_rows(&self) -> String {
        let tables: Vec<String> = self
            .rows("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        if tables.is_empty() {
            return String::new();
        }
        let union = tables
            .iter()
            .map(|t| format!("SELECT '{t}', x::text FROM \"{t}\" AS x"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        self.rows(&format!("{union} ORDER BY 1, 2"))
            .into_iter()
            .map(|r| format!("{}: {}\n", r[0], r[1]))
            .collect()
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let out = psql_command(&self.admin_url, &sql).output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("could not drop test database {}: {out:?}", self.name);
        }
    }
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (rest, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    format!("{scheme}://{authority}/{name}{query}")
}

fn psql_command(url: &str, sql: &str) -> Command {
    let mut cmd = Command::new("psql");
    // Unaligned, no headers, fields split by 0x1f and rows ended by NUL (never in text).
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-0"])
        .args(["-F", "\u{1f}", "-P", "null=NULL", "-d", url, "-c", sql]);
    cmd
}

/// Runs one statement with `psql`; its rows, each value as psql prints it (NULL as
/// `NULL`, booleans as `t`/`f`, BYTEA as `\x` hex).
pub fn psql(url: &str, sql: &str) -> Vec<Vec<String>> {
    let out = psql_command(url, sql).output().expect("run psql");
    assert!(
        out.status.success(),
        "psql failed on {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("psql prints UTF-8")
        .split_terminator('\0')
        .map(|row| row.split('\u{1f}').map(str::to_string).collect())
        .collect()
}

// ---- the app ----

pub struct TestApp {
    pub base: String,
    /// The data directory, shared with the app's other nodes.
    pub dir: Arc<TempDir>,
    pub db: Db,
    pub admin_token: String,
    pub user_token: String,
    /// Where the Postfix policy service listens, when `--policy-listen` was given.
    pub policy_addr: Option<String>,
    /// Where the Postfix socketmap listens, when `--socketmap-listen` was given.
    pub socketmap_addr: Option<String>,
    /// Where the Dovecot dict listens (`unix:PATH`), when `--dovecot-listen` was given.
    pub dict_addr: Option<String>,
    log_file: PathBuf,
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

/// The `serve` arguments that open the Postfix policy service and socketmap on free ports.
pub const POSTFIX_LISTENERS: [&str; 4] = [
    "--policy-listen",
    "127.0.0.1:0",
    "--socketmap-listen",
    "127.0.0.1:0",
];

/// Numbers the log files of nodes after the first.
static NODES: AtomicUsize = AtomicUsize::new(2);

impl TestApp {
    /// `mailplane serve --demo` on a fresh data directory, a fresh database of the
    /// current backend and a free port.
    pub fn demo() -> TestApp {
        TestApp::demo_on(Db::fresh(), &[])
    }

    /// [`TestApp::demo`] with the Postfix policy service and socketmap on free ports (see
    /// [`POSTFIX_LISTENERS`]), and more arguments for `serve`.
    pub fn demo_with_postfix_listeners(extra: &[&str]) -> TestApp {
        TestApp::demo_on(Db::fresh(), &[&POSTFIX_LISTENERS[..], extra].concat())
    }

    /// [`TestApp::demo`] on `db` with every mail server listener: the policy service and
    /// socketmap on free ports, the Dovecot dict on a socket in the data directory.
    pub fn demo_with_mail_listeners(db: Db, args: &[&str]) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let dict = format!("unix:{}/dict.sock", dir.path().display());
        let demo = ["--demo", "--dovecot-listen", dict.as_str()];
        let mut app = TestApp::serve_on(
            dir,
            db,
            &[&demo, &POSTFIX_LISTENERS[..], args].concat(),
            &[],
        );
        app.load_demo_tokens();
        app
    }

    /// [`TestApp::demo`] on `db`, with more arguments for `serve`.
    pub fn demo_on(db: Db, args: &[&str]) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut app = TestApp::serve_on(dir, db, &[&["--demo"], args].concat(), &[]);
        app.load_demo_tokens();
        app
    }

    /// `mailplane serve --listen 127.0.0.1:0 --data-dir DIR` plus `args` and `env`, on a
    /// fresh database of the current backend; the server's log goes to `DIR/server.log`
    /// (appended, so restarts keep the history).
    pub fn serve(dir: TempDir, args: &[&str], env: &[(&str, &str)]) -> TestApp {
        TestApp::serve_on(Arc::new(dir), Db::fresh(), args, env)
    }

    /// [`TestApp::serve`] on `db`; `--db` is added unless `args` or `env` name a database.
    pub fn serve_on(dir: Arc<TempDir>, db: Db, args: &[&str], env: &[(&str, &str)]) -> TestApp {
        TestApp::try_serve_logged(dir, db, args, env, "server.log")
            .unwrap_or_else(|log| panic!("mailplane exited before listening; log:\n{log}"))
    }

    /// [`TestApp::serve_on`] with the log in `DIR/log_name`; when the server exits before
    /// it listens, what it logged.
    pub fn try_serve_logged(
        dir: Arc<TempDir>,
        db: Db,
        args: &[&str],
        env: &[(&str, &str)],
        log_name: &str,
    ) -> Result<TestApp, String> {
        let log_file = dir.path().join(log_name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .expect("log file");
        let names_db = args.contains(&"--db") || env.iter().any(|(k, _)| *k == "MAILPLANE_DB");
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(if names_db { Vec::new() } else { db.args() })
            .args(args)
            .env("MAILPLANE_LOG", "debug")
            // Refusals are written every 100 ms rather than every 10 s: tests read them soon.
            .env("MAILPLANE_SECURITY_EVENT_WINDOW_MS", "100")
            // Tests of invalid tokens send many from one address; `hostile.rs` sets a limit.
            .env("MAILPLANE_BAD_TOKEN_LIMIT", "0")
            .env_remove("MAILPLANE_RELAY_KEY")
            .env_remove("MAILPLANE_DB")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start mailplane");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (mut policy_addr, mut socketmap_addr, mut dict_addr) = (None, None, None);
        let base = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).expect("read stdout") == 0 {
                let _ = child.wait();
                return Err(std::fs::read_to_string(&log_file).unwrap_or_default());
            }
            let line = line.trim();
            if let Some(addr) = line.strip_prefix("mailplane policy service listening on ") {
                policy_addr = Some(addr.to_string());
            }
            if let Some(addr) = line.strip_prefix("mailplane socketmap listening on ") {
                socketmap_addr = Some(addr.to_string());
            }
            if let Some(addr) = line.strip_prefix("mailplane Dovecot dict listening on ") {
                dict_addr = Some(addr.to_string());
            }
            if let Some(addr) = line.strip_prefix("mailplane listening on ") {
                break addr.to_string();
            }
        };
        Ok(TestApp {
            base,
            dir,
            db,
            admin_token: String::new(),
            user_token: String::new(),
            policy_addr,
            socketmap_addr,
            dict_addr,
            log_file,
            child,
            _stdout: stdout,
        })
    }

    /// Reads the tokens `serve --demo` wrote to `demo-tokens.json`.
    pub fn load_demo_tokens(&mut self) {
        let tokens: Value = serde_json::from_slice(
            &std::fs::read(self.dir.path().join("demo-tokens.json")).expect("demo tokens"),
        )
        .expect("json");
        self.admin_token = tokens["adminToken"].as_str().expect("admin token").into();
        self.user_token = tokens["userToken"].as_str().expect("user token").into();
    }

    /// Another `serve` process on the same database and data directory (so the same
    /// relay key), on another port, with the same tokens. Its log is its own file.
    pub fn second_node(&self) -> TestApp {
        self.second_node_with(&[])
    }

    /// [`TestApp::second_node`] with more arguments for `serve`.
    pub fn second_node_with(&self, args: &[&str]) -> TestApp {
        let n = NODES.fetch_add(1, Ordering::Relaxed);
        let log_name = format!("server-node{n}.log");
        let mut node =
            TestApp::try_serve_logged(self.dir.clone(), self.db.clone(), args, &[], &log_name)
                .unwrap_or_else(|log| panic!("the second node exited before listening:\n{log}"));
        node.admin_token = self.admin_token.clone();
        node.user_token = self.user_token.clone();
        node
    }

    /// Stops the server (SIGTERM) and starts it again on the same data.
    pub fn restart(mut self) -> TestApp {
        assert!(
            self.terminate(),
            "mailplane did not exit cleanly on SIGTERM"
        );
        let mut app = TestApp::serve_on(self.dir.clone(), self.db.clone(), &[], &[]);
        app.admin_token = std::mem::take(&mut self.admin_token);
        app.user_token = std::mem::take(&mut self.user_token);
        app
    }

    pub fn client(&self, token: Option<&str>) -> Client {
        Client::new(&self.base, token)
    }
    /// The demo super admin (all scopes).
    pub fn admin(&self) -> Client {
        self.client(Some(&self.admin_token))
    }
    /// Rebecca (user scopes).
    pub fn user(&self) -> Client {
        self.client(Some(&self.user_token))
    }
    pub fn anonymous(&self) -> Client {
        self.client(None)
    }

    /// Runs the `mailplane` command line against this app's data directory and database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.db.cli(self.dir.path(), args)
    }

    /// `mailplane bootstrap` of another organization; its JSON output.
    pub fn bootstrap(&self, org: &str, domain: &str, admin: &str) -> Value {
        let out = self.cli(&[
            "bootstrap",
            "--org-name",
            org,
            "--domain",
            domain,
            "--admin-email",
            admin,
        ]);
        assert!(
            out.status.success(),
            "bootstrap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("bootstrap prints JSON")
    }

    /// A token for a user, with the given scopes, through `mailplane token issue`.
    pub fn token(&self, zuid: &str, scopes: &str) -> String {
        let out = self.cli(&["token", "issue", "--zuid", zuid, "--scope", scopes]);
        assert!(
            out.status.success(),
            "token issue failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v["accessToken"].as_str().expect("token").to_string()
    }

    /// The SQLite file (only meaningful on SQLite).
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("mailplane.db")
    }

    /// Every row of every table, in a stable order: equal snapshots mean nothing changed.
    /// (The security log is left out: a refused request is recorded there by design.)
    pub fn snapshot(&self) -> String {
        let all = match &self.db {
            Db::Sqlite => sqlite_snapshot(&self.db_path()),
            Db::Postgres(pg) => pg.all_rows(),
        };
        all.lines()
            .filter(|l| {
                !l.starts_with("security_events:")
                    && !l.starts_with("sqlite_sequence: security_events")
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// [`TestApp::snapshot`] without the audit trail: equal when no data changed, even
    /// if a (no-op) change was audited.
    pub fn data_snapshot(&self) -> String {
        self.snapshot()
            .lines()
            .filter(|l| !l.starts_with("audit:") && !l.starts_with("sqlite_sequence: audit"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs one query (SQL both SQLite and PostgreSQL accept) and returns the first column
    /// as text.
    pub fn query(&self, sql: &str) -> Vec<String> {
        self.query_rows(sql)
            .into_iter()
            .map(|mut row| row.swap_remove(0))
            .collect()
    }

    /// Runs one query and returns every column as text: NULL as `NULL`; booleans are
    /// `1`/`0` on SQLite and `t`/`f` on PostgreSQL.
    pub fn query_rows(&self, sql: &str) -> Vec<Vec<String>> {
        match &self.db {
            Db::Sqlite => {
                let conn = rusqlite::Connection::open(self.db_path()).expect("open db");
                let mut stmt = conn.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| (0..n).map(|i| Ok(show(r.get_ref(i)?))).collect())
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Db::Postgres(pg) => pg.rows(sql),
        }
    }

    /// Runs one statement that changes data (test fixtures the API cannot make).
    pub fn execute(&self, sql: &str) {
        match &self.db {
            Db::Sqlite => {
                let conn = rusqlite::Connection::open(self.db_path()).expect("open db");
                conn.execute_batch(sql).unwrap();
            }
            Db::Postgres(pg) => {
                pg.rows(sql);
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the exit; true when the process exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every row of every table of the SQLite file, ordered by the first column.
fn sqlite_snapshot(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).expect("open db");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = String::new();
    for t in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{t}\" ORDER BY 1"))
            .unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut cols = Vec::new();
                for i in 0..n {
                    cols.push(show(r.get_ref(i)?));
                }
                Ok(cols.join("|"))
            })
            .unwrap();
        for row in rows {
            out.push_str(&format!("{t}: {}\n", row.unwrap()));
        }
    }
    out
}

/// A column value as plain text (blobs in hex).
fn show(v: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

// ---- Rebecca's account through the API ----

/// A PUT of Rebecca's account through her own URL; the answer's body.
pub async fn user_put(app: &TestApp, body: Value) -> Value {
    let r = app.user().update_account(REBECCA, &body).await.unwrap();
    assert_eq!(r.status, 200, "{body}: {}", r.body);
    r.body
}

/// A PUT of Rebecca's account through the admin URL; the answer's body.
pub async fn admin_put(app: &TestApp, body: Value) -> Value {
    let r = app
        .admin()
        .update_org_account(ZOID, REBECCA, &body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{body}: {}", r.body);
    r.body
}

/// Adds an identity (a `sendMailDetails` entry) to Rebecca's account.
pub async fn add_identity(app: &TestApp, detail: Value) {
    user_put(
        app,
        serde_json::json!({"mode": "addsendmaildetails", "sendMailDetails": [detail]}),
    )
    .await;
}

/// Gives the identities for `address` the state verification would lead to (`relay`:
/// `pending`, `validated` or `failed`; the owner confirmed or not), by writing it in the
/// database. A fixture for the tests of what the maps and the policy service do with an
/// identity in each state, for relays at public addresses no test can reach; how an
/// identity gets there through the API (the key, the relay check) is tested in
/// `relay_verification.rs` and, with Postfix, in `postfix_tls.rs`.
pub fn set_identity_state(app: &TestApp, address: &str, owner_confirmed: bool, relay: &str) {
    assert!(!address.contains('\'') && !relay.contains('\''));
    let confirmed = if owner_confirmed { "TRUE" } else { "FALSE" };
    app.execute(&format!(
        // A check under way records nothing over it (the version moves on), and none is
        // scheduled.
        "UPDATE identities SET owner_confirmed = {confirmed}, relay_state = '{relay}', \
         relay_version = relay_version + 1, next_check_ms = NULL, lease_until_ms = NULL \
         WHERE from_address = '{}'",
        address.to_lowercase()
    ));
}

/// [`set_identity_state`]: owner confirmed, relay check passed.
pub fn mark_verified(app: &TestApp, address: &str) {
    set_identity_state(app, address, true, "validated");
}

/// Adds an identity to Rebecca's account and gives it the verified state (see
/// [`set_identity_state`]).
pub async fn add_verified_identity(app: &TestApp, detail: Value) {
    let address = detail["fromAddress"]
        .as_str()
        .expect("a fromAddress")
        .to_string();
    add_identity(app, detail).await;
    mark_verified(app, &address);
}

/// The seconds of an answer's `Retry-After` header (which must be there).
pub fn retry_after_secs(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .expect("Retry-After is text")
        .parse()
        .expect("Retry-After is a number of seconds")
}

/// An id of a JSON answer as text, whether it came as a string or a number.
pub fn id_text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// The addresses of an account's identities, from a GET of the account.
pub fn identity_addresses(account: &Value) -> Vec<String> {
    let mut v: Vec<String> = account["sendMailDetails"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["fromAddress"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
