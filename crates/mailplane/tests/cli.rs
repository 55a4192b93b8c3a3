//! The command line: `serve` (flags and environment), `bootstrap`, `token issue|revoke`,
//! `migrate`, clean shutdown and restart on the same data; on SQLite and on PostgreSQL
//! (`--db`), apart from what is about SQLite files.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

backend_tests!(
    bootstrap_then_serve_then_tokens,
    tokens_expire,
    public_url_from_flag_or_environment,
    sigterm_stops_cleanly_and_changes_survive_a_restart,
    demo_refuses_a_database_with_data,
    db_url_from_the_environment,
    token_issue_refuses_bad_input_with_an_error_message,
    ; sqlite only:
    default_data_directory_is_created_in_the_working_directory,
    ; postgres only:
    migrate_creates_the_sqlite_tables_and_columns_alone,
    pool_size_and_timeout_from_flags_or_environment,
);

fn stdout_json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

async fn bootstrap_then_serve_then_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::fresh();
    let b = stdout_json(&db.cli(
        dir.path(),
        &[
            "bootstrap",
            "--org-name",
            "Acme",
            "--domain",
            "acme.example",
            "--admin-email",
            "root@acme.example",
        ],
    ));
    assert!(
        b["zoid"].is_u64() && b["zuid"].is_u64() && b["accountId"].is_string(),
        "{b}"
    );
    let token = b["accessToken"].as_str().unwrap().to_string();
    assert!(token.starts_with("mpat_"));

    // The same domain again: refused, exit status 1, a clear message.
    let again = db.cli(
        dir.path(),
        &[
            "bootstrap",
            "--org-name",
            "Acme 2",
            "--domain",
            "acme.example",
            "--admin-email",
            "x@acme.example",
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("acme.example already belongs"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(again.stdout.is_empty());
    // Another organization on the same database is fine.
    stdout_json(&db.cli(
        dir.path(),
        &[
            "bootstrap",
            "--org-name",
            "Beta",
            "--domain",
            "beta.example",
            "--admin-email",
            "boss@beta.example",
        ],
    ));

    let app = TestApp::serve_on(Arc::new(dir), db, &[], &[]);
    let admin = app.client(Some(&token));
    let org = admin.own_organization().await.unwrap();
    assert_eq!(org.status, 200);
    assert_eq!(org.data()["zoid"], b["zoid"]);
    assert_eq!(org.data()["superAdmin"], "root@acme.example");
    let me = admin
        .org_account(&b["zoid"].to_string(), &b["zuid"].to_string())
        .await
        .unwrap();
    assert_eq!(me.data()["accountId"], b["accountId"]);
    assert_eq!(me.data()["role"], "super_admin");

    // token issue: a read-only user token.
    let zuid = b["zuid"].to_string();
    let t = stdout_json(&app.cli(&[
        "token",
        "issue",
        "--zuid",
        &zuid,
        "--scope",
        "ZohoMail.accounts.READ",
    ]));
    assert_eq!(
        (t["scope"].clone(), t["expiresIn"].clone()),
        (json!("ZohoMail.accounts.READ"), json!(3600))
    );
    let reader = app.client(t["accessToken"].as_str());
    let account = b["accountId"].as_str().unwrap();
    assert_eq!(reader.account(account).await.unwrap().status, 200);
    let r = reader
        .update_account(account, &json!({"mode": "disableMailAccount"}))
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHSCOPE"));

    // token revoke: refused on the next request.
    let out = app.cli(&[
        "token",
        "revoke",
        "--token",
        t["accessToken"].as_str().unwrap(),
    ]);
    assert!(out.status.success());
    let r = reader.account(account).await.unwrap();
    assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHTOKEN"));
    assert_eq!(
        app.cli(&["token", "revoke", "--token", "mpat_nope"])
            .status
            .code(),
        Some(1)
    );
}

/// `token issue` with a zuid that is not a number, a zuid nobody has, or an unknown scope:
/// exit status 1 and a message that starts with `error: ` (nothing logged before it).
async fn token_issue_refuses_bad_input_with_an_error_message() {
    let app = TestApp::demo();
    for (zuid, scope) in [
        ("abc", "ZohoMail.accounts.READ"),
        ("999", "ZohoMail.accounts.READ"),
        (REBECCA_ZUID, "ZohoMail.everything"),
    ] {
        let out = app.cli(&["token", "issue", "--zuid", zuid, "--scope", scope]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{zuid} {scope}: {stderr}");
        assert!(stderr.starts_with("error: "), "{zuid} {scope}: {stderr}");
    }
}

async fn tokens_expire() {
    let app = TestApp::demo();
    let t = stdout_json(&app.cli(&[
        "token",
        "issue",
        "--zuid",
        REBECCA_ZUID,
        "--scope",
        "ZohoMail.accounts.ALL",
        "--expires-in",
        "1",
    ]));
    let c = app.client(t["accessToken"].as_str());
    assert_eq!(c.account(REBECCA).await.unwrap().status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let r = c.account(REBECCA).await.unwrap();
    assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHTOKEN"));
    // --expires-in 0 never expires.
    let t = stdout_json(&app.cli(&[
        "token",
        "issue",
        "--zuid",
        REBECCA_ZUID,
        "--scope",
        "ZohoMail.accounts.ALL",
        "--expires-in",
        "0",
    ]));
    assert_eq!(
        app.query("SELECT COUNT(*) FROM tokens WHERE expires_ms IS NULL")[0],
        "3"
    );
    assert_eq!(
        app.client(t["accessToken"].as_str())
            .account(REBECCA)
            .await
            .unwrap()
            .status,
        200
    );
}

async fn public_url_from_flag_or_environment() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::serve(
        dir,
        &["--demo", "--public-url", "https://mail.example.org/"],
        &[],
    );
    let tokens: Value =
        serde_json::from_slice(&std::fs::read(app.dir.path().join("demo-tokens.json")).unwrap())
            .unwrap();
    let r = app
        .client(tokens["userToken"].as_str())
        .account(REBECCA)
        .await
        .unwrap();
    assert_eq!(
        r.data()["URI"],
        format!("https://mail.example.org/api/accounts/{REBECCA}")
    );

    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::serve(
        dir,
        &["--demo"],
        &[("MAILPLANE_PUBLIC_URL", "http://env.example")],
    );
    let tokens: Value =
        serde_json::from_slice(&std::fs::read(app.dir.path().join("demo-tokens.json")).unwrap())
            .unwrap();
    let r = app
        .client(tokens["adminToken"].as_str())
        .own_organization()
        .await
        .unwrap();
    assert_eq!(
        r.data()["URI"],
        format!("http://env.example/api/organization/{ZOID}")
    );
    // Without either, the listen address.
    let app = TestApp::demo();
    let r = app.user().account(REBECCA).await.unwrap();
    assert_eq!(
        r.data()["URI"],
        format!("{}/api/accounts/{REBECCA}", app.base)
    );
}

async fn sigterm_stops_cleanly_and_changes_survive_a_restart() {
    let app = TestApp::demo();
    let r = app
        .user()
        .update_account(
            REBECCA,
            &json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let app = app.restart();
    let r = app.user().account(REBECCA).await.unwrap();
    assert_eq!(r.status, 200, "tokens survive a restart");
    assert_eq!(r.data()["outgoingBlocked"], true);
    assert!(
        app.log().contains("stopped"),
        "the server logs its clean stop"
    );
}

/// `serve --demo` needs an empty database: on SQLite the data directory holds it; on
/// PostgreSQL the refusal comes from the database, the data directory being fresh.
async fn demo_refuses_a_database_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::fresh();
    stdout_json(&db.cli(
        dir.path(),
        &[
            "bootstrap",
            "--org-name",
            "Acme",
            "--domain",
            "acme.example",
            "--admin-email",
            "root@acme.example",
        ],
    ));
    let fresh = tempfile::tempdir().unwrap();
    let data_dir = if db.is_postgres() { &fresh } else { &dir };
    let out = Command::new(bin())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .args(db.args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--demo needs an empty"), "{stderr}");
}

/// `MAILPLANE_DB` names the database for every command: a SQLite file elsewhere than the
/// data directory, or the PostgreSQL database. A URL of an unknown kind is refused.
async fn db_url_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::fresh();
    let elsewhere = dir.path().join("elsewhere.db");
    let url = match &db {
        Db::Sqlite => format!("sqlite:{}", elsewhere.display()),
        Db::Postgres(pg) => pg.url.clone(),
    };
    let out = Command::new(bin())
        .args([
            "bootstrap",
            "--org-name",
            "Env",
            "--domain",
            "env.example",
            "--admin-email",
            "a@env.example",
        ])
        .env("MAILPLANE_DB", &url)
        .env("MAILPLANE_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let b = stdout_json(&out);
    assert_eq!(
        elsewhere.exists(),
        !db.is_postgres(),
        "the SQLite database is where MAILPLANE_DB points"
    );
    assert!(!dir.path().join("mailplane.db").exists());
    assert!(
        dir.path().join("relay.key").exists(),
        "the data directory holds the relay key"
    );
    let app = TestApp::serve_on(Arc::new(dir), db, &[], &[("MAILPLANE_DB", &url)]);
    let r = app
        .client(b["accessToken"].as_str())
        .own_organization()
        .await
        .unwrap();
    assert_eq!(r.data()["orgName"], "Env");
    if app.db.is_postgres() {
        assert_eq!(app.query("SELECT name FROM orgs"), vec!["Env"]);
    }
    // A URL of an unknown kind is refused.
    let out = Command::new(bin())
        .args([
            "bootstrap",
            "--org-name",
            "X",
            "--domain",
            "x.example",
            "--admin-email",
            "a@x.example",
            "--db",
            "mysql://x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

async fn default_data_directory_is_created_in_the_working_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .current_dir(cwd.path())
        .env_remove("MAILPLANE_DATA_DIR")
        .env_remove("MAILPLANE_DB")
        .args([
            "bootstrap",
            "--org-name",
            "Here",
            "--domain",
            "here.example",
            "--admin-email",
            "a@here.example",
        ])
        .output()
        .unwrap();
    stdout_json(&out);
    assert!(cwd.path().join("mailplane-data/mailplane.db").exists());
    assert!(cwd.path().join("mailplane-data/relay.key").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cwd.path().join("mailplane-data"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the data directory is private");
    }
}

/// One column of a schema: table, column, declared type.
type Column = (String, String, String);

/// The columns of the SQLite database `mailplane bootstrap` makes, sorted.
fn sqlite_columns() -> Vec<Column> {
    let dir = tempfile::tempdir().unwrap();
    stdout_json(&Db::Sqlite.cli(
        dir.path(),
        &[
            "bootstrap",
            "--org-name",
            "S",
            "--domain",
            "s.example",
            "--admin-email",
            "a@s.example",
        ],
    ));
    let conn = rusqlite::Connection::open(dir.path().join("mailplane.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name <> 'sqlite_sequence' ORDER BY 1, 2",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// The columns of the PostgreSQL database, sorted, without `schema_migrations`.
fn postgres_columns(pg: &PgDatabase) -> Vec<Column> {
    pg.rows(
        "SELECT table_name, column_name, data_type FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name <> 'schema_migrations' \
         ORDER BY 1, 2",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
    .collect()
}

/// The PostgreSQL types a column of SQLite type `sqlite` may have.
fn postgres_types_for(sqlite: &str) -> &'static [&'static str] {
    match sqlite {
        "INTEGER" => &["bigint", "integer", "smallint", "boolean"],
        "TEXT" => &["text"],
        "BLOB" => &["bytea"],
        other => panic!("a SQLite type the schema does not use: {other}"),
    }
}

/// The flags of the first schema, which PostgreSQL must keep as BOOLEAN.
const BOOLEANS: &[&str] = &[
    "accounts.activesync_enabled",
    "accounts.enabled",
    "accounts.imap_enabled",
    "accounts.incoming_blocked",
    "accounts.outgoing_blocked",
    "accounts.pop_enabled",
    "addresses.is_primary",
    "domains.is_primary",
    "users.password_one_time",
];

/// `mailplane migrate --db URL` alone creates the schema: the SQLite schema's tables and
/// columns plus `schema_migrations`, each of a matching type (flags as BOOLEAN, blobs
/// such as the relay passwords as BYTEA). Running it again changes nothing, and the other
/// commands work on the result.
async fn migrate_creates_the_sqlite_tables_and_columns_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::fresh();
    let Db::Postgres(pg) = &db else {
        unreachable!("a PostgreSQL test")
    };
    for _ in 0..2 {
        let out = db.cli(dir.path(), &["migrate"]);
        assert!(
            out.status.success(),
            "migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (sqlite, postgres) = (sqlite_columns(), postgres_columns(pg));
    let names = |cols: &[Column]| -> Vec<String> {
        cols.iter().map(|(t, c, _)| format!("{t}.{c}")).collect()
    };
    assert_eq!(names(&postgres), names(&sqlite));
    for ((table, column, lite), (_, _, pg_type)) in sqlite.iter().zip(&postgres) {
        let name = format!("{table}.{column}");
        assert!(
            postgres_types_for(lite).contains(&pg_type.as_str()),
            "{name}: {pg_type} on PostgreSQL, {lite} on SQLite"
        );
        let boolean = BOOLEANS.contains(&name.as_str());
        assert!(
            !boolean || pg_type == "boolean",
            "{name} is {pg_type}, not boolean"
        );
    }
    assert!(names(&postgres).contains(&"identities.password_enc".to_string()));
    let migrations = pg.rows("SELECT COUNT(*) FROM schema_migrations");
    assert_ne!(
        migrations,
        [["0"]],
        "schema_migrations records the migrations"
    );
    assert_eq!(pg.rows("SELECT COUNT(*) FROM orgs"), [["0"]]);
    // The migrated database takes bootstrap, then serve.
    let b = stdout_json(&db.cli(
        dir.path(),
        &[
            "bootstrap",
            "--org-name",
            "Migrated",
            "--domain",
            "m.example",
            "--admin-email",
            "a@m.example",
        ],
    ));
    let app = TestApp::serve_on(Arc::new(dir), db, &[], &[]);
    let r = app
        .client(b["accessToken"].as_str())
        .own_organization()
        .await
        .unwrap();
    assert_eq!(r.data()["orgName"], "Migrated");
}

/// `--db-pool-size` and `--db-timeout-ms`, or their environment forms, are taken; a pool
/// of two connections serves many concurrent requests.
async fn pool_size_and_timeout_from_flags_or_environment() {
    let by_flags = TestApp::demo_on(
        Db::fresh(),
        &["--db-pool-size", "2", "--db-timeout-ms", "3000"],
    );
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut by_env = TestApp::serve_on(
        dir,
        Db::fresh(),
        &["--demo"],
        &[
            ("MAILPLANE_DB_POOL_SIZE", "2"),
            ("MAILPLANE_DB_TIMEOUT_MS", "3000"),
        ],
    );
    by_env.load_demo_tokens();
    for app in [&by_flags, &by_env] {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let c = app.user();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        c.account(REBECCA).await.unwrap().status
                    } else {
                        let body =
                            json!({"mode": "updateOutgoingStatus", "outgoingBlocked": i % 4 == 1});
                        c.update_account(REBECCA, &body).await.unwrap().status
                    }
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
    }
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--db-pool-size", "zero"])
        .args(by_flags.db.args())
        .arg("--data-dir")
        .arg(by_flags.dir.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "a bad pool size is refused");
}
