//! The command line: `serve` (flags and environment), `bootstrap`, `token issue|revoke`,
//! clean shutdown and restart on the same data.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("MAILPLANE_RELAY_KEY")
        .output()
        .unwrap()
}

fn stdout_json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

#[tokio::test]
async fn bootstrap_then_serve_then_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let b = stdout_json(&run(
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
    let again = run(
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
    stdout_json(&run(
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

    let app = TestApp::serve(dir, &[], &[]);
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

    // Bad input to token issue.
    for args in [
        vec![
            "token",
            "issue",
            "--zuid",
            "abc",
            "--scope",
            "ZohoMail.accounts.READ",
        ],
        vec![
            "token",
            "issue",
            "--zuid",
            "999",
            "--scope",
            "ZohoMail.accounts.READ",
        ],
        vec![
            "token",
            "issue",
            "--zuid",
            zuid.as_str(),
            "--scope",
            "ZohoMail.everything",
        ],
    ] {
        let out = app.cli(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error: "),
            "{args:?}"
        );
    }
}

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
async fn demo_refuses_a_data_directory_with_data() {
    let dir = tempfile::tempdir().unwrap();
    stdout_json(&run(
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
    let out = Command::new(bin())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--demo needs an empty data directory"));
}

#[tokio::test]
async fn db_url_and_listen_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("elsewhere.db");
    let url = format!("sqlite:{}", db.display());
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
    assert!(db.exists(), "the database is where --db points");
    assert!(!dir.path().join("mailplane.db").exists());
    let app = TestApp::serve(dir, &[], &[("MAILPLANE_DB", &url)]);
    let r = app
        .client(b["accessToken"].as_str())
        .own_organization()
        .await
        .unwrap();
    assert_eq!(r.data()["orgName"], "Env");
    // A URL of an unknown kind is refused with a message.
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

#[tokio::test]
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
