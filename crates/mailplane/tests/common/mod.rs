//! `TestApp`: the real `mailplane` binary serving on port 0 with a fresh data directory,
//! and helpers to drive it and look at what it stored.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use mailplane_client::Client;
use serde_json::Value;
use tempfile::TempDir;

pub const ZOID: &str = "12345678";
pub const REBECCA_ZUID: &str = "11111111";
pub const REBECCA: &str = "2560636000000008002";
pub const POP: &str = "5111110000000008001";
pub const IMAP: &str = "5111110000000009001";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mailplane")
}

pub struct TestApp {
    pub base: String,
    pub dir: TempDir,
    pub admin_token: String,
    pub user_token: String,
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl TestApp {
    /// `mailplane serve --demo` on a fresh data directory and a free port.
    pub fn demo() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut app = TestApp::serve(dir, &["--demo"], &[]);
        let tokens: Value = serde_json::from_slice(
            &std::fs::read(app.dir.path().join("demo-tokens.json")).expect("demo tokens"),
        )
        .expect("json");
        app.admin_token = tokens["adminToken"]
            .as_str()
            .expect("admin token")
            .to_string();
        app.user_token = tokens["userToken"]
            .as_str()
            .expect("user token")
            .to_string();
        app
    }

    /// `mailplane serve --listen 127.0.0.1:0 --data-dir DIR` plus `args` and `env`; the
    /// server's log goes to `DIR/server.log` (appended, so restarts keep the history).
    pub fn serve(dir: TempDir, args: &[&str], env: &[(&str, &str)]) -> TestApp {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))
            .expect("log file");
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .env("MAILPLANE_LOG", "debug")
            .env_remove("MAILPLANE_RELAY_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start mailplane");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let base = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).expect("read stdout") == 0 {
                let _ = child.wait();
                panic!(
                    "mailplane exited before listening; log:\n{}",
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
                );
            }
            if let Some(addr) = line.trim().strip_prefix("mailplane listening on ") {
                break addr.to_string();
            }
        };
        TestApp {
            base,
            dir,
            admin_token: String::new(),
            user_token: String::new(),
            child,
            _stdout: stdout,
        }
    }

    /// Stops the server (SIGTERM) and starts it again on the same data directory.
    pub fn restart(mut self) -> TestApp {
        assert!(
            self.terminate(),
            "mailplane did not exit cleanly on SIGTERM"
        );
        let (admin_token, user_token) = (
            std::mem::take(&mut self.admin_token),
            std::mem::take(&mut self.user_token),
        );
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        drop(self);
        let mut app = TestApp::serve(dir, &[], &[]);
        app.admin_token = admin_token;
        app.user_token = user_token;
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

    /// Runs the `mailplane` command line against this app's data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .env_remove("MAILPLANE_RELAY_KEY")
            .output()
            .expect("run mailplane")
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

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("mailplane.db")
    }

    /// Every row of every table, in a stable order: equal snapshots mean nothing changed.
    pub fn snapshot(&self) -> String {
        let conn = rusqlite::Connection::open(self.db_path()).expect("open db");
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

    /// Runs one query against the database file and returns the first column as text.
    pub fn query(&self, sql: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.db_path()).expect("open db");
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| Ok(show(r.get_ref(0)?)))
            .unwrap()
            .map(Result::unwrap)
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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
