//! Crash safety on SQLite and PostgreSQL (issue "Proven under faults and hostile input").
//!
//! The harness starts the real binary (`serve --demo` on a fresh data directory and a
//! fresh database of the backend: the SQLite file of the data directory, or a PostgreSQL
//! database of its own on the server at `MAILPLANE_TEST_PG_URL`), puts
//! load on it from several concurrent clients (identities added and deleted and
//! `outgoingBlocked` flipped on Rebecca's account, new primary addresses on the super
//! admin's account; each client alternates the user URL and the admin URL), `kill -9`s
//! the server after a random delay, restarts it on the same data directory and database
//! and checks, for every request of the cycle:
//!
//! - a change that got a 200 is there after the restart: an added identity is in the
//!   account's `sendMailDetails`, a deleted one is not, the `outgoingBlocked` value and
//!   the primary address are the last acknowledged ones (or the one of the request that
//!   was in flight at the kill), and every address ever made primary is still one of the
//!   account's addresses;
//! - it has exactly one audit row (found by the `x-request-id` the answer carried, with
//!   the request's mode and content);
//! - a request without an answer has at most one audit row (found by its content: every
//!   identity and primary address is used once), and its row is there exactly when its
//!   change is: no change without its audit row, no row without its change;
//! - no other audit row, identity or address appeared;
//! - the data is consistent: on SQLite, `PRAGMA integrity_check` answers `ok` (and
//!   `PRAGMA foreign_key_check` nothing); on both backends, every hosted account has
//!   exactly one primary address and a `mailbox` identity, every user one hosted account
//!   and distinct account positions, and no row points to a row that is not there
//!   ([`CONSISTENCY`]).
//!
//! On PostgreSQL only the node is killed; PostgreSQL stays up. The sessions of the
//! killed node end on the database's side only when their backends notice the closed
//! socket, and a `COMMIT` the node sent just before it died may still be carried out
//! before that: the harness waits until no session of the killed node is left before it
//! restarts the node and checks, so that nothing lands after the checks (a session still
//! there 10 s after the kill is a violation).
//!
//! `backend_tests!` runs `acknowledged_changes_survive_kill_9` on both backends (the
//! PostgreSQL variant is ignored when no server answered at build time, and fails in CI).
//! `MAILPLANE_CRASH_CYCLES` sets the number of kill cycles of each (20 by default; 200 is
//! the long mode, run by hand), `MAILPLANE_CRASH_SEED` replays the random choices of a run.
//!
//! `ack_before_commit_build_is_caught` builds the binary with the feature
//! `ack-before-commit` (a write path that answers 50 ms before it commits) into
//! `target/crash-broken` and checks that the same harness reports lost acknowledged
//! changes: the check can fail. (The feature breaks the SQLite write path only, so that
//! test runs on SQLite.)

mod common;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{backend_tests, bin, Db, REBECCA, REBECCA_ZUID, ZOID};
use serde_json::{json, Value};

/// Concurrent clients adding and deleting identities.
const IDENTITY_CLIENTS: usize = 3;
/// Identities each identity client keeps at most (the account takes 50 in all).
const WINDOW: usize = 12;
/// The identity client's addresses end with this; nothing else uses the domain.
const IDENTITY_DOMAIN: &str = "@crash.example.net";
/// The primary addresses the email client moves between. An account holds at most 50
/// addresses and the old primary stays as an alias, so the new primaries come from a
/// set this size: once each has been one, an update makes one of the account's aliases
/// the primary again.
const EMAIL_ADDRESSES: usize = 40;
/// Kill delays, in milliseconds after the load started.
const KILL_DELAY_MS: std::ops::RangeInclusive<u64> = 10..=600;

/// How long the sessions of a killed node may stay on PostgreSQL.
const SESSIONS_END_WITHIN: Duration = Duration::from_secs(10);

backend_tests!(acknowledged_changes_survive_kill_9);

async fn acknowledged_changes_survive_kill_9() {
    let cycles = std::env::var("MAILPLANE_CRASH_CYCLES")
        .ok()
        .map(|v| {
            v.parse::<usize>()
                .expect("MAILPLANE_CRASH_CYCLES is a number")
        })
        .unwrap_or(20);
    let started = Instant::now();
    let mut report = run_harness(Path::new(bin()), cycles, "normal build").await;
    eprintln!(
        "crash harness, normal build on {}: {} kill cycles, {} acknowledged changes checked ({} requests without an answer, {} of them applied), {} violations, {:.1} s",
        report.backend,
        report.cycles,
        report.acked_checked,
        report.unanswered,
        report.unanswered_applied,
        report.violations.len(),
        started.elapsed().as_secs_f64()
    );
    if !report.violations.is_empty() {
        let kept = report.keep_dir();
        panic!(
            "the crash harness found {} violations on {} (seed {}; data directory and server log kept in {}):\n{}",
            report.violations.len(),
            report.backend,
            report.seed,
            kept.display(),
            report.summary(40)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ack_before_commit_build_is_caught() {
    let started = Instant::now();
    let broken = build_broken_binary();
    let built = started.elapsed();
    let report = run_harness(&broken, 5, "ack-before-commit build").await;
    let lost = report
        .violations
        .iter()
        .filter(|v| v.kind == Kind::Lost)
        .count();
    eprintln!(
        "crash harness, ack-before-commit build: {} kill cycles, {} acknowledged changes checked ({} requests without an answer), {} violations of which {} lost acknowledged changes; build {:.1} s, harness {:.1} s",
        report.cycles,
        report.acked_checked,
        report.unanswered,
        report.violations.len(),
        lost,
        built.as_secs_f64(),
        (started.elapsed() - built).as_secs_f64()
    );
    eprintln!("what it reported:\n{}", report.summary(10));
    assert!(
        lost > 0,
        "the harness did not detect the losses of the ack-before-commit build (seed {}); violations:\n{}",
        report.seed,
        report.summary(40)
    );
}

/// `cargo build -p mailplane --features ack-before-commit` into `target/crash-broken`
/// (beside the target directory of this build, so the normal build is not disturbed).
fn build_broken_binary() -> PathBuf {
    let target = Path::new(bin())
        .parent()
        .and_then(Path::parent)
        .expect("the binary is in <target>/<profile>/")
        .join("crash-broken");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "building mailplane with --features ack-before-commit into {}",
        target.display()
    );
    let out = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "-p",
            "mailplane",
            "--features",
            "ack-before-commit",
        ])
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the ack-before-commit binary failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = target.join("debug").join("mailplane");
    assert!(exe.exists(), "{} was not built", exe.display());
    exe
}

// ---- the server ----

/// One `serve` process of `bin` on the data directory and `db`; its log is appended to
/// `DIR/server.log`.
struct Server {
    child: Child,
    base: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(bin: &Path, dir: &Path, db: &Db, demo: bool) -> Server {
        let log_file = dir.join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .expect("log file");
        let mut cmd = Command::new(bin);
        // Only the defaults: no database URL, relay key, rate limit… from the environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MAILPLANE_") {
                cmd.env_remove(name);
            }
        }
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(db.args())
            .env("MAILPLANE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log);
        if demo {
            cmd.arg("--demo");
        }
        let mut child = cmd.spawn().expect("start mailplane");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let base = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).expect("read stdout") == 0 {
                let _ = child.wait();
                panic!(
                    "mailplane exited before listening; log:\n{}",
                    std::fs::read_to_string(&log_file).unwrap_or_default()
                );
            }
            if let Some(addr) = line.trim().strip_prefix("mailplane listening on ") {
                break addr.to_string();
            }
        };
        Server {
            child,
            base,
            _stdout: stdout,
        }
    }

    /// `kill -9` (`Child::kill` sends SIGKILL) and reap.
    fn kill_9(mut self) {
        self.child.kill().expect("kill -9 mailplane");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- requests ----

#[derive(Clone, Debug)]
enum Op {
    AddIdentity(String),
    DeleteIdentity(String),
    SetOutgoing(bool),
    EmailUpdate(String),
}

impl Op {
    fn mode(&self) -> &'static str {
        match self {
            Op::AddIdentity(_) => "addsendmaildetails",
            Op::DeleteIdentity(_) => "deletesendmaildetails",
            Op::SetOutgoing(_) => "updateOutgoingStatus",
            Op::EmailUpdate(_) => "emailupdate",
        }
    }

    fn body(&self) -> Value {
        match self {
            Op::AddIdentity(a) => json!({"mode": self.mode(), "sendMailDetails": [
                {"fromAddress": a, "displayName": format!("crash {a}"), "mode": "backupacc"}]}),
            Op::DeleteIdentity(a) => json!({"mode": self.mode(), "fromAddress": a}),
            Op::SetOutgoing(v) => json!({"mode": self.mode(), "outgoingBlocked": v}),
            Op::EmailUpdate(a) => json!({"mode": self.mode(), "emailAddress": a}),
        }
    }

    /// The account the request changes, its owner's zuid and the owner's token.
    fn target<'a>(&self, demo: &'a Demo) -> (&'a str, &'a str, &'a str) {
        match self {
            Op::EmailUpdate(_) => (&demo.admin_account, &demo.admin_zuid, &demo.admin_token),
            _ => (REBECCA, REBECCA_ZUID, &demo.user_token),
        }
    }

    /// Whether an audit row (its mode, account, `before` and `after`) records this request.
    fn matches(&self, row: &AuditRow, demo: &Demo) -> bool {
        let first = |v: &Value| v["sendMailDetails"][0]["fromAddress"].clone();
        row.mode == self.mode()
            && row.account_id == self.target(demo).0
            && match self {
                Op::AddIdentity(a) => first(&row.after) == json!(a),
                Op::DeleteIdentity(a) => first(&row.before) == json!(a),
                Op::SetOutgoing(v) => row.after["outgoingBlocked"] == json!(v),
                Op::EmailUpdate(a) => row.after["primaryEmailAddress"] == json!(a),
            }
    }

    /// Whether the change is visible in the accounts as read after the restart. (Each
    /// request changes something: a new identity, the deletion of a present one, the
    /// other `outgoingBlocked` value, a new primary address.)
    fn visible_in(&self, seen: &Seen) -> bool {
        match self {
            Op::AddIdentity(a) => seen.rebecca.identities.contains(a),
            Op::DeleteIdentity(a) => !seen.rebecca.identities.contains(a),
            Op::SetOutgoing(v) => seen.rebecca.outgoing_blocked == *v,
            Op::EmailUpdate(a) => seen.admin.primary == *a,
        }
    }
}

#[derive(Clone, Debug)]
enum Outcome {
    /// A 200, with the answer's `x-request-id`.
    Acked(String),
    /// No answer (the connection died with the server).
    NoAnswer,
    /// Another status: never expected, these requests are all valid.
    Refused(u16, String),
}

#[derive(Clone, Debug)]
struct Sent {
    client: usize,
    op: Op,
    outcome: Outcome,
}

/// PUT of `op` on its account, through the admin URL or the owner's.
async fn send(
    http: &reqwest::Client,
    base: &str,
    demo: &Demo,
    admin_url: bool,
    op: &Op,
) -> Outcome {
    let mut body = op.body();
    let (account, zuid, own_token) = op.target(demo);
    let (url, token) = if admin_url {
        body["zuid"] = json!(zuid);
        (
            format!("{base}/api/organization/{ZOID}/accounts/{account}"),
            demo.admin_token.as_str(),
        )
    } else {
        (format!("{base}/api/accounts/{account}"), own_token)
    };
    let resp = http
        .put(url)
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .json(&body)
        .send()
        .await;
    let Ok(resp) = resp else {
        return Outcome::NoAnswer;
    };
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // The status line is the acknowledgement, even if the body is cut by the kill.
    let text = resp.text().await.unwrap_or_default();
    if status == 200 {
        Outcome::Acked(request_id)
    } else {
        Outcome::Refused(status, text)
    }
}

/// The demo's tokens and the super admin's own account.
#[derive(Clone)]
struct Demo {
    admin_token: String,
    user_token: String,
    admin_account: String,
    admin_zuid: String,
}

/// What one client does in one cycle: requests one after the other until one gets no
/// answer (the server is dead) or an unexpected status.
#[derive(Clone)]
enum Role {
    /// Adds new identities and, with `WINDOW` of them, deletes its oldest one.
    Identities { live: VecDeque<String> },
    /// Flips `outgoingBlocked`.
    Outgoing { value: bool },
    /// Makes another address the primary one of the super admin's account.
    Email { primary: String },
}

async fn run_client(
    http: reqwest::Client,
    base: String,
    demo: Demo,
    client: usize,
    cycle: usize,
    mut role: Role,
) -> Vec<Sent> {
    let mut log = Vec::new();
    for n in 0.. {
        let op = match &mut role {
            Role::Identities { live } if live.len() >= WINDOW => {
                Op::DeleteIdentity(live.front().expect("a live identity").clone())
            }
            Role::Identities { .. } => {
                Op::AddIdentity(format!("k{cycle}-c{client}-n{n}{IDENTITY_DOMAIN}"))
            }
            Role::Outgoing { value } => Op::SetOutgoing(!*value),
            Role::Email { primary } => {
                // Never the primary it has: that update would change nothing, and one in
                // flight at the kill could not be told applied from not.
                let address = |i: usize| format!("c{client}-n{}@zylker.com", i % EMAIL_ADDRESSES);
                let next = address(n);
                Op::EmailUpdate(if next == *primary {
                    address(n + 1)
                } else {
                    next
                })
            }
        };
        // Both URL forms, in turn.
        let outcome = send(&http, &base, &demo, (client + n) % 2 == 1, &op).await;
        let acked = matches!(outcome, Outcome::Acked(_));
        if acked {
            match (&mut role, &op) {
                (Role::Identities { live }, Op::AddIdentity(a)) => live.push_back(a.clone()),
                (Role::Identities { live }, Op::DeleteIdentity(_)) => {
                    live.pop_front();
                }
                (Role::Outgoing { value }, Op::SetOutgoing(v)) => *value = *v,
                (Role::Email { primary }, Op::EmailUpdate(a)) => *primary = a.clone(),
                _ => {}
            }
        }
        log.push(Sent {
            client,
            op,
            outcome,
        });
        if !acked {
            break;
        }
    }
    log
}

// ---- what is checked ----

/// An account as `GET /api/accounts/{id}` shows it.
struct Account {
    identities: BTreeSet<String>,
    addresses: BTreeSet<String>,
    primary: String,
    outgoing_blocked: bool,
}

impl Account {
    fn from_json(v: &Value) -> Account {
        let list = |key: &str, field: &str| -> BTreeSet<String> {
            v[key]
                .as_array()
                .unwrap_or_else(|| panic!("{key} in {v}"))
                .iter()
                .map(|x| x[field].as_str().expect("an address").to_string())
                .collect()
        };
        Account {
            identities: list("sendMailDetails", "fromAddress"),
            addresses: list("emailAddress", "mailId"),
            primary: v["primaryEmailAddress"]
                .as_str()
                .expect("primaryEmailAddress")
                .to_string(),
            outgoing_blocked: v["outgoingBlocked"].as_bool().expect("outgoingBlocked"),
        }
    }

    /// The identities that are not the harness's.
    fn other_identities(&self) -> BTreeSet<String> {
        self.identities
            .iter()
            .filter(|a| !a.ends_with(IDENTITY_DOMAIN))
            .cloned()
            .collect()
    }
}

/// The two accounts the load goes to, as read after a restart.
struct Seen {
    rebecca: Account,
    admin: Account,
}

struct AuditRow {
    id: i64,
    request_id: String,
    mode: String,
    account_id: String,
    before: Value,
    after: Value,
}

impl std::fmt::Display for AuditRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "audit row {} (request {}, {} on {}: {} -> {})",
            self.id, self.request_id, self.mode, self.account_id, self.before, self.after
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An acknowledged change, or its audit row, is missing after the restart.
    Lost,
    /// More than one audit row for one request.
    Duplicate,
    /// An audit row, identity or address that no request explains.
    Phantom,
    /// A change without its audit row, or a row without its change.
    Torn,
    /// `integrity_check` or `foreign_key_check` complained, or a [`CONSISTENCY`] check.
    Corrupt,
    /// An answer other than 200 or none.
    Status,
    /// A session of the killed node was still open on PostgreSQL
    /// [`SESSIONS_END_WITHIN`] after the kill.
    Lingering,
}

struct Violation {
    cycle: usize,
    kind: Kind,
    what: String,
}

struct Report {
    seed: u64,
    /// "SQLite" or "PostgreSQL".
    backend: &'static str,
    dir: Option<tempfile::TempDir>,
    /// The database (on PostgreSQL, dropped with the report).
    db: Db,
    cycles: usize,
    acked_checked: usize,
    unanswered: usize,
    /// Requests without an answer whose change (and audit row) was there after the restart.
    unanswered_applied: usize,
    violations: Vec<Violation>,
}

impl Report {
    fn violation(&mut self, cycle: usize, kind: Kind, what: String) {
        self.violations.push(Violation { cycle, kind, what });
    }

    fn summary(&self, most: usize) -> String {
        let mut s: String = self
            .violations
            .iter()
            .take(most)
            .map(|v| format!("  cycle {}: {:?}: {}\n", v.cycle, v.kind, v.what))
            .collect();
        if self.violations.len() > most {
            s.push_str(&format!("  … and {} more\n", self.violations.len() - most));
        }
        s
    }

    /// Keeps the data directory (the database and the server log) for a post-mortem. A
    /// PostgreSQL database is dropped with the report: its rows are written to
    /// `DIR/database.txt` first.
    fn keep_dir(&mut self) -> PathBuf {
        let kept = self.dir.take().map(|d| d.keep()).unwrap_or_default();
        if let Db::Postgres(pg) = &self.db {
            let dump = kept.join("database.txt");
            if let Err(e) = std::fs::write(&dump, pg.all_rows()) {
                eprintln!("could not write {}: {e}", dump.display());
            }
        }
        kept
    }
}

/// What the harness believes about the account between cycles (resynchronised from what
/// is read after each restart, once it has been checked).
struct Model {
    /// Per identity client, Rebecca's identities it added and did not delete, oldest first.
    live: Vec<VecDeque<String>>,
    /// Rebecca's `outgoingBlocked`.
    outgoing_blocked: bool,
    /// The primary address of the super admin's account.
    primary: String,
    /// The super admin's addresses at the start and every address made primary since: the
    /// account must keep them all.
    kept_addresses: BTreeSet<String>,
    /// What the load does not change: Rebecca's addresses and the identities that are not
    /// the harness's (her mailbox identity), the super admin's identities.
    rebecca_addresses: BTreeSet<String>,
    rebecca_other_identities: BTreeSet<String>,
    admin_identities: BTreeSet<String>,
    /// The largest audit id checked so far.
    last_audit_id: i64,
}

/// A small xorshift generator: the test crate has no `rand`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn in_range(&mut self, r: &std::ops::RangeInclusive<u64>) -> u64 {
        r.start() + self.next() % (r.end() - r.start() + 1)
    }
}

fn seed() -> u64 {
    match std::env::var("MAILPLANE_CRASH_SEED") {
        Ok(s) => s.parse().expect("MAILPLANE_CRASH_SEED is a number"),
        Err(_) => {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                | 1
        }
    }
}

/// `data` of a GET on the user URL `path` with `token`, once the server answers it with
/// a 200 (it has just started).
async fn get(http: &reqwest::Client, base: &str, path: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = http
            .get(format!("{base}{path}"))
            .header("Authorization", format!("Zoho-oauthtoken {token}"))
            .send()
            .await;
        if let Ok(resp) = resp {
            if resp.status().as_u16() == 200 {
                let mut v: Value = resp.json().await.expect("json");
                return v["data"].take();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server did not answer GET {path} with a 200"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn read_accounts(base: &str, demo: &Demo) -> Seen {
    let http = http_client();
    let rebecca_path = format!("/api/accounts/{REBECCA}");
    let admin_path = format!("/api/accounts/{}", demo.admin_account);
    let rebecca = get(&http, base, &rebecca_path, &demo.user_token).await;
    let admin = get(&http, base, &admin_path, &demo.admin_token).await;
    Seen {
        rebecca: Account::from_json(&rebecca),
        admin: Account::from_json(&admin),
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        // Under the server's 10 s idle limit, so a pooled connection is not reused as the
        // server closes it.
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

/// Consistency of the data, in SQL both backends take: each row returned describes a
/// problem. (The load changes the primary address of an account, adds and deletes
/// identities; the other rules are there to catch a torn or stray write.)
const CONSISTENCY: &str = "\
    SELECT 'hosted account ' || CAST(a.account_id AS TEXT) || ' has ' \
        || CAST(COUNT(d.address) AS TEXT) || ' primary addresses' \
      FROM accounts a LEFT JOIN addresses d ON d.account_id = a.account_id AND d.is_primary \
      WHERE a.kind = 'ZOHO_ACCOUNT' GROUP BY a.account_id HAVING COUNT(d.address) <> 1 \
    UNION ALL SELECT 'hosted account ' || CAST(a.account_id AS TEXT) || ' has no mailbox identity' \
      FROM accounts a WHERE a.kind = 'ZOHO_ACCOUNT' AND NOT EXISTS \
        (SELECT 1 FROM identities i WHERE i.account_id = a.account_id AND i.mode = 'mailbox') \
    UNION ALL SELECT 'identity ' || CAST(i.send_mail_id AS TEXT) || ' (' || i.mode || ' ' \
        || i.from_address || ') is not an address of its account ' || CAST(i.account_id AS TEXT) \
      FROM identities i WHERE i.mode IN ('mailbox', 'alias') AND NOT EXISTS \
        (SELECT 1 FROM addresses d WHERE d.address = i.from_address AND d.account_id = i.account_id) \
    UNION ALL SELECT 'user ' || CAST(u.zuid AS TEXT) || ' has ' \
        || CAST((SELECT COUNT(*) FROM accounts a WHERE a.zuid = u.zuid AND a.kind = 'ZOHO_ACCOUNT') AS TEXT) \
        || ' hosted accounts' \
      FROM users u WHERE (SELECT COUNT(*) FROM accounts a WHERE a.zuid = u.zuid AND a.kind = 'ZOHO_ACCOUNT') <> 1 \
    UNION ALL SELECT 'user ' || CAST(zuid AS TEXT) || ' has ' || CAST(COUNT(*) AS TEXT) \
        || ' accounts at position ' || CAST(sequence AS TEXT) \
      FROM accounts GROUP BY zuid, sequence HAVING COUNT(*) > 1 \
    UNION ALL SELECT 'address ' || d.address || ' belongs to ' || CAST(d.account_id AS TEXT) \
        || ', which is not a hosted account' \
      FROM addresses d WHERE NOT EXISTS \
        (SELECT 1 FROM accounts a WHERE a.account_id = d.account_id AND a.kind = 'ZOHO_ACCOUNT') \
    UNION ALL SELECT 'identity ' || CAST(i.send_mail_id AS TEXT) || ' of the missing account ' \
        || CAST(i.account_id AS TEXT) \
      FROM identities i WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = i.account_id) \
    UNION ALL SELECT 'account ' || CAST(a.account_id AS TEXT) || ' of the missing user ' || CAST(a.zuid AS TEXT) \
      FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.zuid = a.zuid) \
    UNION ALL SELECT 'user ' || CAST(u.zuid AS TEXT) || ' of the missing organization ' || CAST(u.zoid AS TEXT) \
      FROM users u WHERE NOT EXISTS (SELECT 1 FROM orgs o WHERE o.zoid = u.zoid) \
    UNION ALL SELECT 'domain ' || d.name || ' of the missing organization ' || CAST(d.zoid AS TEXT) \
      FROM domains d WHERE NOT EXISTS (SELECT 1 FROM orgs o WHERE o.zoid = d.zoid) \
    UNION ALL SELECT 'token ' || CAST(t.token_id AS TEXT) || ' of the missing user ' || CAST(t.zuid AS TEXT) \
      FROM tokens t WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.zuid = t.zuid)";

/// Where the server keeps its data (the data directory and the database), as the harness
/// looks at it between cycles, while no node is writing.
struct Stored {
    dir: PathBuf,
    db: Db,
}

/// The sessions of a killed node found on PostgreSQL right after the kill, and how long
/// they took to end.
struct SessionsEnded {
    found: Vec<String>,
    took: Duration,
}

impl Stored {
    fn sqlite(&self) -> rusqlite::Connection {
        let conn =
            rusqlite::Connection::open(self.dir.join("mailplane.db")).expect("open the database");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn
    }

    /// Rows of one query, every value as text (`NULL` as the empty string on SQLite).
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        match &self.db {
            Db::Sqlite => {
                let conn = self.sqlite();
                let mut stmt = conn.prepare(sql).expect("prepare");
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                                rusqlite::types::ValueRef::Text(t) => {
                                    String::from_utf8_lossy(t).into_owned()
                                }
                                _ => String::new(),
                            })
                        })
                        .collect()
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
            }
            Db::Postgres(pg) => pg.rows(sql),
        }
    }

    fn max_audit_id(&self) -> i64 {
        self.rows("SELECT COALESCE(MAX(id), 0) FROM audit")[0][0]
            .parse()
            .expect("an audit id")
    }

    /// The audit rows above `id`. (On PostgreSQL the ids come from a sequence, which a
    /// transaction that rolls back leaves with a gap and which concurrent transactions
    /// may commit out of order; but every id taken in a cycle is above every id taken
    /// before it, since no node writes between cycles.)
    fn audit_rows_after(&self, id: i64) -> Vec<AuditRow> {
        let sql = format!(
            "SELECT id, COALESCE(request_id, ''), mode, COALESCE(account_id, 0), before, after \
             FROM audit WHERE id > {id} ORDER BY id"
        );
        let json = |s: &str| serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.into()));
        self.rows(&sql)
            .into_iter()
            .map(|r| AuditRow {
                id: r[0].parse().expect("an audit id"),
                request_id: r[1].clone(),
                mode: r[2].clone(),
                account_id: r[3].clone(),
                before: json(&r[4]),
                after: json(&r[5]),
            })
            .collect()
    }

    /// What is wrong with the data: on SQLite, `PRAGMA integrity_check` and
    /// `PRAGMA foreign_key_check` first; then [`CONSISTENCY`].
    fn problems(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Db::Sqlite = self.db {
            let conn = self.sqlite();
            let integrity: Vec<String> = conn
                .prepare("PRAGMA integrity_check")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .expect("integrity_check");
            if integrity != ["ok"] {
                found.push(format!("PRAGMA integrity_check: {integrity:?}"));
            }
            let fk = {
                let mut stmt = conn
                    .prepare("PRAGMA foreign_key_check")
                    .expect("foreign_key_check");
                let rows = stmt.query_map([], |_| Ok(())).expect("foreign_key_check");
                rows.count()
            };
            if fk != 0 {
                found.push(format!("PRAGMA foreign_key_check: {fk} rows"));
            }
        }
        found.extend(
            self.rows(CONSISTENCY)
                .into_iter()
                .map(|mut r| r.swap_remove(0)),
        );
        found
    }

    /// On PostgreSQL, waits until the node killed at `killed` has no session left on the
    /// database (see the module's documentation): `Err` with what is left
    /// [`SESSIONS_END_WITHIN`] after the kill. Nothing to wait for on SQLite.
    fn wait_for_killed_sessions(
        &self,
        killed: Instant,
    ) -> Result<Option<SessionsEnded>, Vec<String>> {
        let Db::Postgres(pg) = &self.db else {
            return Ok(None);
        };
        let sessions = || -> Vec<String> {
            pg.rows(
                "SELECT COALESCE(state, '?') || COALESCE(' waiting on ' || wait_event_type, '') \
                 || ': ' || COALESCE(left(query, 60), '') FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND backend_type = 'client backend'",
            )
            .into_iter()
            .map(|mut r| r.swap_remove(0))
            .collect()
        };
        let found = sessions();
        let mut left = found.clone();
        while !left.is_empty() {
            if killed.elapsed() > SESSIONS_END_WITHIN {
                return Err(left);
            }
            std::thread::sleep(Duration::from_millis(5));
            left = sessions();
        }
        Ok(Some(SessionsEnded {
            found,
            took: killed.elapsed(),
        }))
    }
}

/// Runs `cycles` kill cycles against `bin` and reports what the checks found.
async fn run_harness(bin: &Path, cycles: usize, label: &str) -> Report {
    let seed = seed();
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let stored = Stored {
        dir: dir.path().to_path_buf(),
        db: Db::fresh(),
    };
    let data = &stored.dir;
    let backend = match &stored.db {
        Db::Sqlite => "SQLite",
        Db::Postgres(_) => "PostgreSQL",
    };
    let database = match &stored.db {
        Db::Sqlite => String::new(),
        Db::Postgres(pg) => format!(", database {}", pg.name),
    };
    eprintln!(
        "crash harness ({label}) on {backend}: {cycles} kill cycles, {} concurrent clients, seed {seed}, data in {}{database}",
        IDENTITY_CLIENTS + 2,
        data.display()
    );
    let mut report = Report {
        seed,
        backend,
        dir: Some(dir),
        db: stored.db.clone(),
        cycles: 0,
        acked_checked: 0,
        unanswered: 0,
        unanswered_applied: 0,
        violations: Vec::new(),
    };

    let mut server = Server::start(bin, data, &stored.db, true);
    let tokens: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-tokens.json")).expect("demo tokens"))
            .expect("json");
    let admin_token = tokens["adminToken"].as_str().expect("admin token");
    let own = get(&http_client(), &server.base, "/api/accounts", admin_token).await;
    let own = own
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "ZOHO_ACCOUNT"))
        .unwrap_or_else(|| panic!("the super admin's hosted account in {own}"));
    let demo = Demo {
        admin_token: admin_token.into(),
        user_token: tokens["userToken"].as_str().expect("user token").into(),
        admin_account: own["accountId"].as_str().expect("accountId").into(),
        admin_zuid: own["zuid"].to_string(),
    };
    let first = read_accounts(&server.base, &demo).await;
    let mut model = Model {
        live: vec![VecDeque::new(); IDENTITY_CLIENTS],
        outgoing_blocked: first.rebecca.outgoing_blocked,
        primary: first.admin.primary.clone(),
        kept_addresses: first.admin.addresses.clone(),
        rebecca_addresses: first.rebecca.addresses.clone(),
        rebecca_other_identities: first.rebecca.other_identities(),
        admin_identities: first.admin.identities.clone(),
        last_audit_id: stored.max_audit_id(),
    };

    for cycle in 0..cycles {
        // The load: every client on its own connection pool, all at once.
        let mut clients = Vec::new();
        for c in 0..IDENTITY_CLIENTS + 2 {
            let role = if c < IDENTITY_CLIENTS {
                Role::Identities {
                    live: model.live[c].clone(),
                }
            } else if c == IDENTITY_CLIENTS {
                Role::Outgoing {
                    value: model.outgoing_blocked,
                }
            } else {
                Role::Email {
                    primary: model.primary.clone(),
                }
            };
            clients.push(tokio::spawn(run_client(
                http_client(),
                server.base.clone(),
                demo.clone(),
                c,
                cycle,
                role,
            )));
        }
        let delay = rng.in_range(&KILL_DELAY_MS);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill_9();
        let killed = Instant::now();
        let mut sent = Vec::new();
        for c in clients {
            sent.extend(c.await.expect("client task"));
        }
        // Nothing of the killed node may land after the checks.
        let sessions = match stored.wait_for_killed_sessions(killed) {
            Ok(None) => String::new(),
            Ok(Some(ended)) if ended.found.is_empty() => format!(
                "; no session of the killed node left on PostgreSQL {} ms after the kill",
                ended.took.as_millis()
            ),
            Ok(Some(ended)) => format!(
                "; {} sessions of the killed node still open on PostgreSQL ({}), gone {} ms after the kill",
                ended.found.len(),
                ended.found.join("; "),
                ended.took.as_millis()
            ),
            Err(left) => {
                report.violation(
                    cycle,
                    Kind::Lingering,
                    format!(
                        "{} sessions of the killed node still open on PostgreSQL {} s after the kill: {}",
                        left.len(),
                        SESSIONS_END_WITHIN.as_secs(),
                        left.join("; ")
                    ),
                );
                String::new()
            }
        };

        server = Server::start(bin, data, &stored.db, false);
        let seen = read_accounts(&server.base, &demo).await;
        let acked = check_cycle(cycle, &sent, &seen, &demo, &stored, &mut model, &mut report);
        let unanswered = sent
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::NoAnswer))
            .count();
        report.cycles += 1;
        report.acked_checked += acked;
        report.unanswered += unanswered;
        eprintln!(
            "cycle {cycle}: kill -9 after {delay} ms; {acked} acknowledged, {unanswered} without an answer{sessions}; {} violations so far",
            report.violations.len()
        );
    }
    drop(server);
    report
}

/// Checks one cycle (see the module's documentation); returns the number of acknowledged
/// changes checked, and resynchronises `model` with what the server holds.
fn check_cycle(
    cycle: usize,
    sent: &[Sent],
    seen: &Seen,
    demo: &Demo,
    stored: &Stored,
    model: &mut Model,
    report: &mut Report,
) -> usize {
    let mut fail = |kind: Kind, what: String| report.violation(cycle, kind, what);

    // The file (SQLite) and the consistency of the data (both backends).
    for problem in stored.problems() {
        fail(Kind::Corrupt, problem);
    }

    for s in sent {
        if let Outcome::Refused(status, body) = &s.outcome {
            fail(
                Kind::Status,
                format!("{:?} answered {status}: {body}", s.op),
            );
        }
    }

    // The effects of acknowledged changes, client by client (each client's requests
    // are sequential; only its last one can be without an answer).
    let mut acked_count = 0;
    let mut explained: BTreeSet<String> = BTreeSet::new();
    let mut expected_outgoing = model.outgoing_blocked;
    let mut expected_primary = model.primary.clone();
    let mut in_flight_outgoing = None;
    let mut in_flight_primary = None;
    let mut new_live = Vec::new();
    let acc = &seen.rebecca;
    for c in 0..IDENTITY_CLIENTS + 2 {
        let mine = sent.iter().filter(|s| s.client == c);
        let mut live = model.live.get(c).cloned().unwrap_or_default();
        let mut deleted = Vec::new();
        let mut in_flight = None;
        for s in mine {
            match (&s.outcome, &s.op) {
                (Outcome::Acked(_), op) => {
                    acked_count += 1;
                    match op {
                        Op::AddIdentity(a) => live.push_back(a.clone()),
                        Op::DeleteIdentity(a) => {
                            live.retain(|x| x != a);
                            deleted.push(a.clone());
                        }
                        Op::SetOutgoing(v) => expected_outgoing = *v,
                        Op::EmailUpdate(a) => {
                            expected_primary = a.clone();
                            model.kept_addresses.insert(a.clone());
                        }
                    }
                }
                (Outcome::NoAnswer, op) => in_flight = Some(op.clone()),
                (Outcome::Refused(..), _) => {}
            }
        }
        // The deletion in flight at the kill may or may not have happened.
        let maybe_deleted = match &in_flight {
            Some(Op::DeleteIdentity(a)) => Some(a),
            _ => None,
        };
        for a in &live {
            if !acc.identities.contains(a) && maybe_deleted != Some(a) {
                fail(
                    Kind::Lost,
                    format!("acknowledged addsendmaildetails of {a} is not in sendMailDetails"),
                );
            }
        }
        for a in &deleted {
            if acc.identities.contains(a) {
                fail(
                    Kind::Lost,
                    format!(
                        "acknowledged deletesendmaildetails of {a}: the identity is still there"
                    ),
                );
            }
        }
        explained.extend(live.iter().cloned());
        match &in_flight {
            Some(Op::AddIdentity(a)) => {
                explained.insert(a.clone());
                live.push_back(a.clone());
            }
            Some(Op::DeleteIdentity(a)) => {
                explained.insert(a.clone());
            }
            Some(Op::SetOutgoing(v)) => in_flight_outgoing = Some(*v),
            Some(Op::EmailUpdate(a)) => in_flight_primary = Some(a.clone()),
            None => {}
        }
        if c < IDENTITY_CLIENTS {
            live.retain(|a| acc.identities.contains(a));
            new_live.push(live);
        }
    }
    for a in &acc.identities {
        if a.ends_with(IDENTITY_DOMAIN) && !explained.contains(a) {
            fail(
                Kind::Phantom,
                format!("identity {a} is there, but no request explains it"),
            );
        }
    }
    let unchanged = [
        (
            "Rebecca's other identities",
            &model.rebecca_other_identities,
            acc.other_identities(),
        ),
        (
            "Rebecca's addresses",
            &model.rebecca_addresses,
            acc.addresses.clone(),
        ),
        (
            "the super admin's identities",
            &model.admin_identities,
            seen.admin.identities.clone(),
        ),
    ];
    for (what, before, now) in unchanged {
        if *before != now {
            fail(
                Kind::Phantom,
                format!("{what} changed: {before:?} -> {now:?}"),
            );
        }
    }
    if acc.outgoing_blocked != expected_outgoing && in_flight_outgoing != Some(acc.outgoing_blocked)
    {
        fail(
            Kind::Lost,
            format!(
                "outgoingBlocked is {}, the last acknowledged updateOutgoingStatus set {expected_outgoing}",
                acc.outgoing_blocked
            ),
        );
    }
    let acc = &seen.admin;
    if acc.primary != expected_primary && in_flight_primary.as_ref() != Some(&acc.primary) {
        fail(
            Kind::Lost,
            format!(
                "the super admin's primary address is {}, the last acknowledged emailupdate set {expected_primary}",
                acc.primary
            ),
        );
    }
    for a in &model.kept_addresses {
        if !acc.addresses.contains(a) {
            fail(
                Kind::Lost,
                format!("{a} (there from the start or made primary with a 200) is no longer an address of the super admin's account"),
            );
        }
    }
    for a in &acc.addresses {
        let explained = model.kept_addresses.contains(a) || in_flight_primary.as_ref() == Some(a);
        if !explained {
            fail(
                Kind::Phantom,
                format!("address {a} is there, but no request explains it"),
            );
        }
    }

    // The audit rows of the cycle: one per acknowledged change (by its request id), at
    // most one per request without an answer (by its content), nothing else.
    let rows = stored.audit_rows_after(model.last_audit_id);
    let by_request: HashMap<&str, usize> = sent
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.outcome {
            Outcome::Acked(rid) => Some((rid.as_str(), i)),
            _ => None,
        })
        .collect();
    let mut rows_of = vec![0usize; sent.len()];
    for row in &rows {
        if let Some(&i) = by_request.get(row.request_id.as_str()) {
            rows_of[i] += 1;
            if !sent[i].op.matches(row, demo) {
                fail(
                    Kind::Phantom,
                    format!("{row} does not record its request {:?}", sent[i].op),
                );
            }
            continue;
        }
        let unanswered = sent
            .iter()
            .position(|s| matches!(s.outcome, Outcome::NoAnswer) && s.op.matches(row, demo));
        match unanswered {
            Some(i) => rows_of[i] += 1,
            None => fail(
                Kind::Phantom,
                format!("{row} records no request of this cycle"),
            ),
        }
    }
    report.unanswered_applied += sent
        .iter()
        .zip(&rows_of)
        .filter(|(s, &n)| matches!(s.outcome, Outcome::NoAnswer) && n == 1)
        .count();
    // A client whose acknowledged change lost its row: the effect of its request in
    // flight cannot be told from that of the lost change (a flip of `outgoingBlocked`).
    let lost_clients: BTreeSet<usize> = sent
        .iter()
        .zip(&rows_of)
        .filter(|(s, &n)| matches!(s.outcome, Outcome::Acked(_)) && n == 0)
        .map(|(s, _)| s.client)
        .collect();
    let mut fail = |kind: Kind, what: String| report.violation(cycle, kind, what);
    for (s, &n) in sent.iter().zip(&rows_of) {
        match &s.outcome {
            Outcome::Acked(rid) if n != 1 => fail(
                if n == 0 { Kind::Lost } else { Kind::Duplicate },
                format!("acknowledged {:?} (request {rid}) has {n} audit rows", s.op),
            ),
            Outcome::NoAnswer if n > 1 => fail(
                Kind::Duplicate,
                format!("{:?} without an answer has {n} audit rows", s.op),
            ),
            Outcome::NoAnswer
                if (n == 1) != s.op.visible_in(seen) && !lost_clients.contains(&s.client) =>
            {
                fail(
                    Kind::Torn,
                    format!(
                        "{:?} without an answer: {} audit row, but its change is {}",
                        s.op,
                        n,
                        if s.op.visible_in(seen) {
                            "there"
                        } else {
                            "not there"
                        }
                    ),
                )
            }
            Outcome::Refused(..) if n != 0 => fail(
                Kind::Phantom,
                format!("refused {:?} has {n} audit rows", s.op),
            ),
            _ => {}
        }
    }

    // Start the next cycle from what the server holds.
    model.live = new_live;
    model.outgoing_blocked = seen.rebecca.outgoing_blocked;
    model.primary = seen.admin.primary.clone();
    model.kept_addresses.extend(in_flight_primary);
    model
        .kept_addresses
        .retain(|a| seen.admin.addresses.contains(a));
    model.last_audit_id = rows.last().map_or(model.last_audit_id, |r| r.id);
    acked_count
}
