//! Secrets never leave: a unique canary relay password and user password are written
//! through the API, then searched for in what the database stores (the SQLite file and
//! its WAL, or every row of every PostgreSQL table), every response and the server's log.
//! Tokens are searched for too.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

backend_tests!(
    canary_passwords_and_tokens_appear_nowhere,
    relay_key_file_is_private_and_outside_the_database,
    relay_key_rotation_reencrypts_and_retires_the_old_version;
    sqlite only: database_files_are_private_and_tightened,
);

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// `secret` as it is, or hex-encoded (as PostgreSQL prints BYTEA).
fn holds(haystack: &[u8], secret: &str) -> bool {
    contains(haystack, secret) || contains(haystack, &hex(secret))
}

/// What the database stores, as (where, bytes): the SQLite file and its WAL, or every row
/// of every PostgreSQL table as text (BYTEA in hex).
fn stored(app: &TestApp) -> Vec<(&'static str, Vec<u8>)> {
    match &app.db {
        Db::Sqlite => vec![
            ("the database file", std::fs::read(app.db_path()).unwrap()),
            (
                "the WAL",
                std::fs::read(app.dir.path().join("mailplane.db-wal")).unwrap_or_default(),
            ),
        ],
        Db::Postgres(pg) => {
            let rows = pg.all_rows();
            assert!(rows.contains("identities: "), "the dump sees no data");
            vec![("the PostgreSQL tables", rows.into_bytes())]
        }
    }
}

async fn canary_passwords_and_tokens_appear_nowhere() {
    let app = TestApp::demo();
    let nonce = format!(
        "{:x}",
        std::process::id() as u64 * 7919 + app.base.len() as u64
    );
    let relay_canary = format!("RelayCanary-{nonce}-Zq8");
    let user_canary = format!("UserCanary-{nonce}-Xk2");
    let reset_canary = format!("ResetCanary-{nonce}-Wq5");
    let mut responses: Vec<String> = Vec::new();

    let detail = |from: &str| {
        json!({ "fromAddress": from, "displayName": "Canary", "mode": "extfrom", "serverName": "smtp.example.net",
                "serverPort": "465", "userName": from, "password": relay_canary, "smtpConnection": "ssl" })
    };
    // Accepted writes, under both URLs, and a replace of the same identity.
    for r in [
        app.user().update_account(REBECCA, &json!({"mode": "addsendmaildetails", "sendMailDetails": [detail("c1@example.net")]})).await.unwrap(),
        app.admin().update_org_account(ZOID, REBECCA, &json!({"mode": "addsendmaildetails", "sendMailDetails": detail("c2@example.net")})).await.unwrap(),
        app.user().update_account(REBECCA, &json!({"mode": "addsendmaildetails", "sendMailDetails": [detail("c1@example.net")]})).await.unwrap(),
    ] {
        assert_eq!(r.status, 200, "{:?}", r.body);
        responses.push(r.body.to_string());
    }
    // Refused writes that carry the canary: a rule error, a shape error, a conflict.
    let mut no_user = detail("c3@example.net");
    no_user.as_object_mut().unwrap().remove("userName");
    let mut bad_port = detail("c4@example.net");
    bad_port["serverPort"] = json!("99999");
    for body in [
        json!({"mode": "addsendmaildetails", "sendMailDetails": [no_user]}),
        json!({"mode": "addsendmaildetails", "sendMailDetails": [bad_port]}),
        json!({"mode": "addsendmaildetails", "sendMailDetails": [detail("admin@zylker.com")]}),
        json!({"mode": "addsendmaildetails", "sendMailDetails": [detail("c5@example.net")], "extra": relay_canary}),
    ] {
        let r = app.user().update_account(REBECCA, &body).await.unwrap();
        assert!(r.status >= 400 && r.status < 500, "{:?}", r.body);
        responses.push(r.body.to_string());
    }
    let broken = format!(
        "{{\"mode\":\"addsendmaildetails\",\"sendMailDetails\":[{{\"password\":\"{relay_canary}\""
    );
    let r = app
        .user()
        .send(
            Method::PUT,
            &format!("/api/accounts/{REBECCA}"),
            Some(broken.into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    responses.push(r.body.to_string());

    // A user with the canary as mailbox password.
    let r = app.admin().create_user(ZOID, &json!({"primaryEmailAddress": "canary@zylker.com", "password": user_canary, "firstName": "Can"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    responses.push(r.body.to_string());
    let r = app
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "canary@zylker.com", "password": user_canary}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 409);
    responses.push(r.body.to_string());

    // The canary user's password reset by an admin (resetPassword, by zuid), accepted
    // with and without revoking tokens, and refused: a body shape error, an unknown user
    // (hashed, then not found), her own URL.
    let canary_zuid = id_text(
        &app.admin()
            .org_account(ZOID, "canary@zylker.com")
            .await
            .unwrap()
            .data()["zuid"],
    );
    let reset = |extra: Value| {
        let mut body = json!({"mode": "resetPassword", "password": reset_canary});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (id, extra, status) in [
        (canary_zuid.as_str(), json!({"resetAuthToken": false}), 200),
        (canary_zuid.as_str(), json!({"oneTimePassword": true}), 200),
        (
            canary_zuid.as_str(),
            json!({"resetAuthToken": true, "resetAuthtoken": true}),
            400,
        ),
        (canary_zuid.as_str(), json!({"extra": reset_canary}), 404),
        ("70009999", json!({}), 404),
    ] {
        let r = app
            .admin()
            .update_org_account(ZOID, id, &reset(extra.clone()))
            .await
            .unwrap();
        assert_eq!(r.status, status, "{extra}: {:?}", r.body);
        responses.push(r.body.to_string());
    }
    let r = app
        .user()
        .update_account(REBECCA, &reset(json!({})))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    responses.push(r.body.to_string());

    // Every read the API offers.
    for r in [
        app.user().accounts().await.unwrap(),
        app.user().account(REBECCA).await.unwrap(),
        app.admin().org_accounts(ZOID, "limit=200").await.unwrap(),
        app.admin()
            .org_account(ZOID, "canary@zylker.com")
            .await
            .unwrap(),
        app.admin().own_organization().await.unwrap(),
    ] {
        assert_eq!(r.status, 200);
        responses.push(r.body.to_string());
    }

    let stored = stored(&app);
    if !app.db.is_postgres() {
        assert!(
            !stored[1].1.is_empty(),
            "the WAL should hold the recent writes"
        );
    }
    let log = app.log();
    assert!(log.contains("PUT"), "the log records requests");
    for canary in [&relay_canary, &user_canary, &reset_canary] {
        for (place, bytes) in &stored {
            assert!(!holds(bytes, canary), "{canary} in {place}");
        }
        assert!(!log.contains(canary.as_str()), "{canary} in the log");
        for body in &responses {
            assert!(
                !body.contains(canary.as_str()),
                "{canary} in a response: {body}"
            );
        }
    }
    for token in [&app.admin_token, &app.user_token] {
        for (place, bytes) in &stored {
            assert!(
                !holds(bytes, token),
                "a token is stored in clear in {place}"
            );
        }
        assert!(!log.contains(token.as_str()), "a token is in the log");
    }

    // The relay passwords are stored, encrypted, one per extfrom identity.
    let lengths = app.query(
        "SELECT length(password_enc) FROM identities WHERE mode = 'extfrom' ORDER BY from_address",
    );
    assert_eq!(lengths.len(), 2);
    assert!(
        lengths
            .iter()
            .all(|n| n.parse::<usize>().unwrap() > 1 + 24 + 16),
        "{lengths:?}"
    );
    let hash = app.query("SELECT u.password_hash FROM users u JOIN accounts a ON a.zuid = u.zuid JOIN addresses d ON d.account_id = a.account_id WHERE d.address = 'canary@zylker.com'");
    assert!(hash[0].starts_with("$argon2id$"), "{hash:?}");
    let audit = app
        .query("SELECT CAST(before AS TEXT) || CAST(after AS TEXT) FROM audit")
        .join("\n");
    assert!(
        !audit.contains(&relay_canary)
            && !audit.contains(&user_canary)
            && !audit.contains(&reset_canary)
    );
    // A reset's audit row says what it did, and holds no hash either.
    assert!(audit.contains(r#""password":"changed""#), "{audit}");
    assert!(!audit.contains("$argon2"), "{audit}");
    assert!(
        audit.contains("c1@example.net"),
        "the audit rows describe the change"
    );
}

async fn relay_key_file_is_private_and_outside_the_database() {
    let app = TestApp::demo();
    let key = app.dir.path().join("relay.key");
    let text = std::fs::read_to_string(&key).unwrap();
    // One version of the key: `1:` and 64 hexadecimal digits.
    let text = text
        .trim()
        .strip_prefix("1:")
        .expect("a version-1 key")
        .to_string();
    assert_eq!(text.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    for (place, bytes) in stored(&app) {
        assert!(!holds(&bytes, text.trim()), "the relay key is in {place}");
    }
}

async fn relay_key_rotation_reencrypts_and_retires_the_old_version() {
    let mut app = TestApp::demo();
    for from in ["k1@example.net", "k2@example.net"] {
        let d = json!({"fromAddress": from, "displayName": "K", "mode": "extfrom", "serverName": "smtp.example.net",
                       "serverPort": 465, "userName": from, "password": format!("pw-{from}"), "smtpConnection": "ssl"});
        let r = app
            .user()
            .update_account(
                REBECCA,
                &json!({"mode": "addsendmaildetails", "sendMailDetails": [d]}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    let ciphertexts = |app: &TestApp| {
        app.query("SELECT password_enc FROM identities WHERE password_enc IS NOT NULL ORDER BY from_address")
    };
    let before = ciphertexts(&app);
    let key_file = app.dir.path().join("relay.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    // The nodes hold the key in memory: rotate with the server stopped.
    assert!(app.terminate());
    let out = app.cli(&["keys", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            report["keyVersion"].clone(),
            report["reencrypted"].clone(),
            report["retired"].clone()
        ),
        (json!(2), json!(2), json!([1]))
    );
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        new_key.starts_with("2:") && new_key.lines().count() == 1,
        "only the new version is kept"
    );
    assert!(
        !new_key.contains(old_key.trim().trim_start_matches("1:")),
        "the old key is gone from the file"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let after = ciphertexts(&app);
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().zip(&before).all(|(a, b)| a != b),
        "every ciphertext was re-encrypted"
    );
    let check = app.cli(&["keys", "check"]);
    assert!(check.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&check.stdout).unwrap(),
        json!({"decrypted": 2, "failed": 0})
    );
    // A ciphertext moved to another row does not decrypt there.
    app.execute(
        "UPDATE identities SET password_enc = (SELECT password_enc FROM identities WHERE from_address = 'k1@example.net') \
         WHERE from_address = 'k2@example.net'",
    );
    let check = app.cli(&["keys", "check"]);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(
        serde_json::from_slice::<Value>(&check.stdout).unwrap(),
        json!({"decrypted": 1, "failed": 1})
    );
}

/// The modes of the SQLite file and its `-wal` and `-shm` files (each must exist).
fn database_file_modes(app: &TestApp) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let name = format!("mailplane.db{suffix}");
            let meta = std::fs::metadata(app.dir.path().join(&name))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, meta.permissions().mode() & 0o777)
        })
        .collect()
}

/// The database holds password hashes and sealed relay passwords: the file and its WAL
/// and shared-memory files are the owner's only, from the start, and files an older
/// version left wider are tightened at start-up.
async fn database_files_are_private_and_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::demo();
    admin_put(
        &app,
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
    )
    .await;
    for (name, mode) in database_file_modes(&app) {
        assert_eq!(mode, 0o600, "{name} is {mode:04o}");
    }

    // Killed (the drop), so the -wal and -shm stay; then widened, as an older version or
    // a careless copy would leave them.
    let dir = app.dir.clone();
    drop(app);
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("mailplane.db{suffix}"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let app = TestApp::serve_on(dir, Db::Sqlite, &[], &[]);
    for (name, mode) in database_file_modes(&app) {
        assert_eq!(mode, 0o600, "{name} is {mode:04o} after a restart");
    }
    let log = app.log();
    assert!(
        log.contains("tightened the mode of a database file to 0600"),
        "the log says nothing of the tightened files:\n{log}"
    );
    assert!(log.contains("mailplane.db-wal"), "{log}");
}
