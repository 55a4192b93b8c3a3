//! PostgreSQL over TLS: libpq's `sslmode` and `sslrootcert` in `--db`, against the local
//! server turned to a certificate made here.
//!
//! The test makes a CA and a server certificate (for `localhost` and 127.0.0.1), points
//! the server's `ssl_cert_file` and `ssl_key_file` at them (`ALTER SYSTEM`, then a reload)
//! and puts the server's settings back when it ends, panic or not. Other tests keep
//! running against the server meanwhile: `ssl = on` leaves plain connections as they were,
//! and the modes that do not check certificates (`prefer`, the default) accept any.
//! `pg_hba.conf` is left alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

#[cfg_attr(
    no_postgres,
    ignore = "no PostgreSQL answered when this test was built (see crates/store/build.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sslmode_and_sslrootcert_are_honoured() {
    run_on_postgres("pg_tls::sslmode_and_sslrootcert_are_honoured", tls_modes()).await
}

/// A CA's certificate and key.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn make_ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

/// The files of the test: the server's certificate and key, the CA that signed it and
/// another CA, in a directory the `postgres` user owns (the server reads the key only if
/// it is its own and private).
struct Files {
    dir: tempfile::TempDir,
    ca: PathBuf,
    wrong_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

fn make_files() -> Files {
    let ca = make_ca("mailplane test CA");
    let wrong = make_ca("another CA");
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&key, &ca.cert, &ca.key).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String, mode: u32| -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let files = Files {
        ca: write("ca.pem", ca.cert.pem(), 0o644),
        wrong_ca: write("wrong-ca.pem", wrong.cert.pem(), 0o644),
        server_cert: write("server.pem", server.pem(), 0o644),
        server_key: write("server.key", key.serialize_pem(), 0o600),
        dir,
    };
    let out = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(files.dir.path())
        .output()
        .expect("run chown");
    assert!(
        out.status.success(),
        "chown to the postgres user (this test runs as root, as CI does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    files
}

/// The server's TLS settings, put back (`ALTER SYSTEM RESET` and a reload) when dropped,
/// also when the test panics. Held under a lock file: two runs of this test at once (two
/// checkouts on one machine share its server) would swap each other's certificates.
struct ServerTls {
    admin_url: String,
    _lock: std::fs::File,
}

const SETTINGS: [&str; 3] = ["ssl", "ssl_cert_file", "ssl_key_file"];

impl ServerTls {
    fn reset(admin_url: &str) {
        // One statement per psql run: ALTER SYSTEM refuses to run in a transaction block.
        for name in SETTINGS {
            psql(admin_url, &format!("ALTER SYSTEM RESET {name}"));
        }
        psql(admin_url, "SELECT pg_reload_conf()");
    }

    fn set(admin_url: &str, files: &Files) -> ServerTls {
        let lock = std::fs::File::create(std::env::temp_dir().join("mailplane-pg-tls-test.lock"))
            .expect("lock file");
        lock.lock().expect("lock the server's TLS settings");
        // A run killed before its guard could drop left its settings: start from none.
        ServerTls::reset(admin_url);
        let guard = ServerTls {
            admin_url: admin_url.to_string(),
            _lock: lock,
        };
        let quoted = |p: &Path| p.display().to_string().replace('\'', "''");
        psql(admin_url, "ALTER SYSTEM SET ssl = on");
        psql(
            admin_url,
            &format!(
                "ALTER SYSTEM SET ssl_cert_file = '{}'",
                quoted(&files.server_cert)
            ),
        );
        psql(
            admin_url,
            &format!(
                "ALTER SYSTEM SET ssl_key_file = '{}'",
                quoted(&files.server_key)
            ),
        );
        psql(admin_url, "SELECT pg_reload_conf()");
        guard
    }
}

impl Drop for ServerTls {
    fn drop(&mut self) {
        ServerTls::reset(&self.admin_url);
    }
}

/// The parts of a PostgreSQL URL: user info, host, port.
fn url_parts(url: &str) -> (String, String, String) {
    let rest = url.split_once("://").expect("a URL").1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (u.to_string(), h),
        None => (String::new(), authority),
    };
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
    (userinfo, host.to_string(), port.to_string())
}

/// A password for the URLs: the admin URL's, or a canary the server never asks for (the
/// local server trusts connections from the loopback). Either must never be printed.
const CANARY_PASSWORD: &str = "tls-canary-9d41e7";

/// The URL of `db` through `host`, with a password and the query `params`.
fn url(db: &PgDatabase, host: &str, params: &str) -> (String, String) {
    let (userinfo, _, port) = url_parts(&db.url);
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user.to_string(), password.to_string()),
        None if userinfo.is_empty() => ("postgres".into(), CANARY_PASSWORD.into()),
        None => (userinfo, CANARY_PASSWORD.into()),
    };
    (
        format!(
            "postgres://{user}:{password}@{host}:{port}/{}?{params}",
            db.name
        ),
        password,
    )
}

/// Waits (a bounded number of tries) until the server presents the certificate the CA
/// signed: the reload is asynchronous. psql's libpq checks it, host name included.
fn wait_for_certificate(db: &PgDatabase, ca: &Path) {
    let (conn, _) = url(
        db,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let mut last = String::new();
    for _ in 0..100 {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-d", &conn, "-c", "SELECT 1"])
            .output()
            .expect("run psql");
        if out.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the server never presented the test's certificate: {last}");
}

/// Whether each connection of mailplane's to `db` is encrypted, as the server sees it.
fn ssl_of_connections(db: &PgDatabase) -> Vec<String> {
    db.rows(&format!(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = '{}' AND a.application_name = 'mailplane'",
        db.name
    ))
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

/// `serve --demo` on a fresh database through `host`, with the query `params`; its log
/// when it exits before listening. Also the database, and the password of the URL.
fn serve(host: &str, params: &str) -> (Result<TestApp, String>, Arc<PgDatabase>, String) {
    let db = Db::fresh();
    let Db::Postgres(pg) = &db else {
        unreachable!("run on PostgreSQL")
    };
    let pg = pg.clone();
    let (conn, password) = url(&pg, host, params);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::try_serve_logged(dir, db, &["--demo", "--db", &conn], &[], "server.log")
        .map(|mut app| {
            app.load_demo_tokens();
            app
        });
    (app, pg, password)
}

async fn tls_modes() {
    let Backend::Postgres { admin_url } = Backend::current() else {
        unreachable!("run on PostgreSQL")
    };
    let files = make_files();
    let _server = ServerTls::set(&admin_url, &files);
    let probe = PgDatabase::create(&admin_url);
    wait_for_certificate(&probe, &files.ca);

    // Verified, through either name of the certificate: the server answers, and every
    // connection the server sees from mailplane is encrypted.
    let verify_full = format!("sslmode=verify-full&sslrootcert={}", files.ca.display());
    for host in ["localhost", "127.0.0.1"] {
        let (app, pg, password) = serve(host, &verify_full);
        let app =
            app.unwrap_or_else(|log| panic!("verify-full through {host} did not start:\n{log}"));
        let r = app.user().account(REBECCA).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let ssl = ssl_of_connections(&pg);
        assert!(
            !ssl.is_empty() && ssl.iter().all(|s| s == "t"),
            "mailplane's connections through {host}, encrypted or not: {ssl:?}"
        );
        let log = app.log();
        assert!(log.contains("sslmode=\"verify-full\""), "{log}");
        assert!(
            !log.contains(&password),
            "the URL's password is in the log:\n{log}"
        );
    }

    // verify-ca and require (no certificate check, nothing to give) start too; so does the
    // default, prefer, which takes TLS when the server offers it.
    for params in [
        format!("sslmode=verify-ca&sslrootcert={}", files.ca.display()),
        "sslmode=require".to_string(),
        "connect_timeout=10".to_string(),
    ] {
        let (app, pg, _) = serve("127.0.0.1", &params);
        let app = app.unwrap_or_else(|log| panic!("{params}:\n{log}"));
        let r = app.user().account(REBECCA).await.unwrap();
        assert_eq!(r.status, 200, "{params}: {}", r.body);
        let ssl = ssl_of_connections(&pg);
        assert!(
            !ssl.is_empty() && ssl.iter().all(|s| s == "t"),
            "{params}: {ssl:?}"
        );
    }

    // disable: plain text, as the server sees it (so the checks above mean something).
    let (app, pg, _) = serve("127.0.0.1", "sslmode=disable");
    let _app = app.unwrap_or_else(|log| panic!("sslmode=disable:\n{log}"));
    let ssl = ssl_of_connections(&pg);
    assert!(
        !ssl.is_empty() && ssl.iter().all(|s| s == "f"),
        "disable: {ssl:?}"
    );

    // Another CA: refused at start-up, in words, with the exit code of a failure.
    let wrong_ca = format!(
        "sslmode=verify-full&sslrootcert={}",
        files.wrong_ca.display()
    );
    let expected = format!(
        "PostgreSQL TLS: the server certificate is not signed by the CA in sslrootcert={}",
        files.wrong_ca.display()
    );
    let (app, pg, password) = serve("localhost", &wrong_ca);
    match app {
        Ok(_) => panic!("serve started with a CA that did not sign the server's certificate"),
        Err(log) => {
            assert!(log.contains(&expected), "{log}");
            assert!(!log.contains(&password), "the URL's password is in:\n{log}");
        }
    }
    let (conn, _) = url(&pg, "localhost", &wrong_ca);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .args(["--db", &conn])
        .env_remove("MAILPLANE_DB")
        .output()
        .expect("run mailplane");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "migrate succeeded: {stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains(&password), "{stderr}");
}
