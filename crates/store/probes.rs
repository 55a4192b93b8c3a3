// Decides, once per build, whether the PostgreSQL variants of the tests (and the end-to-end
// mail server tests, [`probe_mail_server`]) can run here.
//
// The tests use the server at `MAILPLANE_TEST_PG_URL`, or at [`DEFAULT_URL`] when the
// variable is unset. When nothing accepts a TCP connection at that URL's host and port,
// and `CI` is not `true`, this sets `cfg(no_postgres)`, under which those tests are
// marked `#[ignore]`: the test runner then counts them as skipped rather than letting
// them pass without running. In CI they are never ignored, so a missing server fails
// them.
//
// The answer is fixed at build time: a server started (or stopped) after the build is
// seen once this script runs again, which happens when `MAILPLANE_TEST_PG_URL` or `CI`
// changes, or when this file is touched. (`crates/store/build.rs` and
// `crates/mailplane/build.rs` include this file, so both crates decide alike; hence `//`
// comments here, since `include!` refuses `//!`.)

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const URL_VAR: &str = "MAILPLANE_TEST_PG_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Sets `cfg(no_postgres)` when no PostgreSQL answers (see the top of this file).
fn probe_postgres() {
    println!("cargo::rustc-check-cfg=cfg(no_postgres)");
    println!("cargo::rerun-if-env-changed={URL_VAR}");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../store/probes.rs");
    let url = std::env::var(URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let in_ci = std::env::var("CI").as_deref() == Ok("true");
    // Release builds (the server people run) probe nothing: the tests run in debug builds,
    // and a release test run without a server fails rather than passes.
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        return;
    }
    // A URL whose host and port cannot be read here (a Unix socket, say) is not
    // ignored: its tests run and fail loudly if there is no server.
    let Some(host_port) = host_port(&url) else {
        return;
    };
    if !in_ci && !answers(&host_port) {
        println!("cargo::rustc-cfg=no_postgres");
        println!(
            "cargo::warning=no PostgreSQL answers at {host_port}: the PostgreSQL tests are \
             marked ignored (set {URL_VAR}, or start PostgreSQL and touch build.rs)"
        );
    }
}

/// `host:port` of a `postgres://` URL (port 5432 when none is given); the user, password,
/// database and parameters are dropped, so nothing secret reaches the build's output.
fn host_port(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = &authority[authority.rfind('@').map_or(0, |i| i + 1)..];
    if host_port.is_empty() || host_port.starts_with(':') {
        return None;
    }
    // A bracketed IPv6 address ends with `]` when no port follows it.
    let has_port = match host_port.rfind(':') {
        Some(i) => !host_port[i..].contains(']'),
        None => false,
    };
    Some(if has_port {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    })
}

/// Whether anything accepts a TCP connection there within a short time.
fn answers(host_port: &str) -> bool {
    let Ok(addrs) = host_port.to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// Sets `cfg(no_mail_server)` when this machine cannot start a private Postfix and
/// Dovecot (their commands are missing, or the build does not run as root, and only root
/// may start them), and `CI` is not `true`: the mail server tests are then marked ignored,
/// so the runner counts them as skipped. The same limit as for PostgreSQL: a package
/// installed after the build is seen once this script runs again (touch
/// `crates/mailplane/build.rs`).
// The store's own tests need only the PostgreSQL probe.
#[allow(dead_code)]
fn probe_mail_server() {
    println!("cargo::rustc-check-cfg=cfg(no_mail_server)");
    if std::env::var("PROFILE").as_deref() == Ok("release")
        || std::env::var("CI").as_deref() == Ok("true")
    {
        return;
    }
    let sbin = ["/usr/sbin", "/usr/local/sbin", "/sbin"];
    let missing: Vec<&str> = ["postfix", "postconf", "postqueue", "dovecot", "doveconf"]
        .into_iter()
        .filter(|c| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            !std::env::split_paths(&path)
                .chain(sbin.iter().map(std::path::PathBuf::from))
                .any(|dir| dir.join(c).is_file())
        })
        .collect();
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !(missing.is_empty() && root) {
        println!("cargo::rustc-cfg=no_mail_server");
        println!(
            "cargo::warning=the mail server tests are marked ignored: {}",
            if missing.is_empty() {
                "the build does not run as root".to_string()
            } else {
                format!(
                    "{} not found (apt-get install postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd)",
                    missing.join(", ")
                )
            }
        );
    }
}

/// The console's browser tests need Chromium and its WebDriver (Debian's `chromium` and
/// `chromium-driver`); without them they are marked ignored, except under `CI=true`.
#[allow(dead_code)]
fn probe_browser() {
    println!("cargo::rustc-check-cfg=cfg(no_browser)");
    if std::env::var("PROFILE").as_deref() == Ok("release")
        || std::env::var("CI").as_deref() == Ok("true")
    {
        return;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = |names: &[&str]| {
        std::env::split_paths(&path)
            .chain(["/usr/bin", "/usr/lib/chromium"].map(std::path::PathBuf::from))
            .any(|dir| names.iter().any(|n| dir.join(n).is_file()))
    };
    if !(found(&["chromium", "chromium-browser"]) && found(&["chromedriver"])) {
        println!("cargo::rustc-cfg=no_browser");
        println!(
            "cargo::warning=the console's browser tests are marked ignored: Chromium not found (apt-get install chromium chromium-driver)"
        );
    }
}
