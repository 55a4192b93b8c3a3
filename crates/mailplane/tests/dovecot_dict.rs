//! mailplane's Dovecot dict listener over its real UNIX socket, on a real database: what
//! each key answers (logins, their refusals, password hashes, mailboxes), that an API
//! change applies to the next lookup, that anything but the protocol closes the
//! connection, and that the listener refuses to be anything but a UNIX socket. Dovecot
//! itself is in `mail_server.rs`.

mod common;

use common::dict_client::Dict;
use common::*;
use serde_json::json;

backend_tests!(
    logins_passwords_and_mailboxes_by_key,
    api_changes_apply_to_the_next_lookup,
    anything_but_the_protocol_closes_the_connection,
    the_listener_is_a_unix_socket_of_its_owner_and_group_only,
    an_expired_user_cannot_log_in;
    // The limit is the listeners' shared accept loop's, whatever the database.
    sqlite only: at_the_connection_limit_the_oldest_silent_connection_makes_room
);

/// The demo with the dict on a socket in its data directory, in group `mail`.
fn app() -> TestApp {
    TestApp::demo_with_mail_listeners(Db::fresh(), &["--dovecot-socket-group", "mail"])
}

/// Rebecca's mailbox password, as `serve --demo` wrote it.
fn user_password(app: &TestApp) -> String {
    let tokens: serde_json::Value = serde_json::from_slice(
        &std::fs::read(app.dir.path().join("demo-tokens.json")).expect("demo tokens"),
    )
    .unwrap();
    tokens["userPassword"]
        .as_str()
        .expect("userPassword")
        .into()
}

async fn logins_passwords_and_mailboxes_by_key() {
    let app = app();
    let mut dict = Dict::connect(&app).await;
    // The password: an argon2id hash in Dovecot's form, never the password itself.
    let found = dict.found("passdb/imap/becky@zylker.com").await;
    let hash = found["password"].as_str().expect("a password field");
    assert!(hash.starts_with("{ARGON2ID}$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains(&user_password(&app)));
    assert_eq!(found["user"], "becky@zylker.com");
    // Lower-cased keys only reach mailplane (Dovecot's %Lu), but any case is the same.
    assert_eq!(
        dict.found("passdb/pop3/Becky@Zylker.COM").await["password"],
        hash
    );
    // An alias is an address, not a login; unknown names and keys are not found.
    for key in [
        "passdb/imap/rebecca.alias@zylker.com",
        "passdb/imap/nobody@zylker.com",
        "passdb/imap/not an address",
        "deny/imap/becky@zylker.com",
        "deny/imap/nobody@zylker.com",
        "quota/becky@zylker.com",
        "passdb/becky@zylker.com",
    ] {
        assert_eq!(dict.lookup(key).await, "N", "{key}");
    }
    // Every address of a hosted account has the account's mailbox: its id.
    let account = app.user().account(REBECCA).await.unwrap();
    for address in account.data()["emailAddress"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| a["mailId"].as_str().expect("mailId").to_string())
    {
        let found = dict.found(&format!("userdb/{address}")).await;
        assert_eq!(found["mailbox"], REBECCA, "{address}");
    }
    assert_eq!(dict.lookup("userdb/nobody@zylker.com").await, "N");
    // External accounts have no mailbox here.
    assert_eq!(dict.lookup("userdb/rebecca@pop.example.net").await, "N");
}

async fn api_changes_apply_to_the_next_lookup() {
    let app = app();
    let mut dict = Dict::connect(&app).await;
    let admin = |mode: serde_json::Value| {
        let mut body = mode;
        body["zuid"] = json!(REBECCA_ZUID);
        body
    };
    admin_put(&app, admin(json!({"mode": "disableMailAccount"}))).await;
    for service in ["imap", "pop3", "smtp"] {
        let refusal = dict
            .found(&format!("deny/{service}/becky@zylker.com"))
            .await;
        assert_eq!(refusal, json!({"reason": "Account disabled"}), "{service}");
        // Without the deny passdb, the password is not handed out either.
        assert_eq!(
            dict.lookup(&format!("passdb/{service}/becky@zylker.com"))
                .await,
            "N"
        );
    }
    admin_put(&app, admin(json!({"mode": "enableMailAccount"}))).await;
    admin_put(
        &app,
        admin(json!({"mode": "updateIMAPStatus", "imapAccessEnabled": false})),
    )
    .await;
    let refusal = dict.found("deny/imap/becky@zylker.com").await;
    assert_eq!(
        refusal["reason"],
        "IMAP access is disabled for this account"
    );
    assert_eq!(dict.lookup("deny/pop3/becky@zylker.com").await, "N");
    assert_eq!(dict.lookup("deny/smtp/becky@zylker.com").await, "N");
    assert!(dict
        .lookup("passdb/pop3/becky@zylker.com")
        .await
        .starts_with('O'));
    // A new primary address is the login from the next lookup on.
    user_put(
        &app,
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    assert_eq!(dict.lookup("passdb/pop3/becky@zylker.com").await, "N");
    assert!(dict
        .lookup("passdb/pop3/rebecca@zylker.com")
        .await
        .starts_with('O'));
    assert_eq!(
        dict.found("userdb/becky@zylker.com").await["mailbox"],
        REBECCA,
        "the old address still leads to the same mailbox"
    );
}

/// A user added with Zoho's `userExpiry` (days, as a string) logs in until the expiry and
/// is refused from then on, for every service; the expiry is moved into the past in the
/// database, as a day of waiting would.
async fn an_expired_user_cannot_log_in() {
    let app = app();
    let body = json!({
        "primaryEmailAddress": "temp@zylker.com", "password": "Temporary-pass-1",
        "userExpiry": "2", "oneTimePassword": "false"
    });
    let r = app.admin().create_user(ZOID, &body).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let zuid = r.data()["zuid"].to_string();
    let mut dict = Dict::connect(&app).await;
    assert_eq!(dict.lookup("deny/imap/temp@zylker.com").await, "N");
    assert!(dict
        .lookup("passdb/imap/temp@zylker.com")
        .await
        .starts_with('O'));
    app.execute(&format!(
        "UPDATE users SET expires_ms = 1000 WHERE zuid = {zuid}"
    ));
    for service in ["imap", "pop3", "smtp"] {
        assert_eq!(
            dict.found(&format!("deny/{service}/temp@zylker.com")).await,
            json!({"reason": "Account expired"}),
            "{service}"
        );
        assert_eq!(
            dict.lookup(&format!("passdb/{service}/temp@zylker.com"))
                .await,
            "N"
        );
    }
    // Nobody else is touched.
    assert_eq!(dict.lookup("deny/imap/becky@zylker.com").await, "N");
}

async fn anything_but_the_protocol_closes_the_connection() {
    let app = app();
    let addr = app.dict_addr.clone().expect("the dict address");
    let too_long = format!("Lshared/userdb/{}\t\n", "a".repeat(5000));
    for bad in [
        &b"X\n"[..],
        b"\n",
        b"Lshared/userdb/a@b.example\x01x\t\n",
        b"L\xff\xfe\n",
        too_long.as_bytes(),
        b"H9\t0\t0\t\tmailplane\n",
    ] {
        let mut wire = wire::Wire::connect(&addr, "the Dovecot dict").await;
        wire.send_regardless(bad).await;
        wire.assert_closed(&format!("{:?}", String::from_utf8_lossy(bad)))
            .await;
    }
    // The connection after them is served as ever.
    let mut dict = Dict::connect(&app).await;
    assert!(dict
        .lookup("userdb/becky@zylker.com")
        .await
        .starts_with('O'));
}

async fn the_listener_is_a_unix_socket_of_its_owner_and_group_only() {
    use std::os::unix::fs::MetadataExt;
    let app = app();
    let addr = app.dict_addr.clone().expect("the dict address");
    let meta = std::fs::metadata(addr.strip_prefix("unix:").unwrap()).expect("the socket");
    assert_eq!(meta.mode() & 0o777, 0o660, "owner and group only");
    assert_eq!(meta.gid(), 8, "the group of --dovecot-socket-group (mail)");
    // It hands out password hashes: a TCP address is refused at start, loopback or not.
    for addr in ["127.0.0.1:0", "0.0.0.0:0"] {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
        let refused = TestApp::try_serve_logged(
            dir,
            Db::fresh(),
            &["--dovecot-listen", addr],
            &[],
            "server.log",
        );
        let log = refused.err().expect("serve refuses a TCP dict listener");
        assert!(log.contains("UNIX socket only"), "{log}");
    }
}

async fn at_the_connection_limit_the_oldest_silent_connection_makes_room() {
    let app = TestApp::demo_with_mail_listeners(Db::fresh(), &["--postfix-max-connections", "2"]);
    let addr = app.dict_addr.clone().expect("the dict address");
    // Two connections that never say a word hold both places.
    let mut oldest = wire::Wire::connect(&addr, "the Dovecot dict").await;
    let _second = wire::Wire::connect(&addr, "the Dovecot dict").await;
    // A third (Dovecot's, say) is served: the oldest silent one is closed for it.
    let mut dict = Dict::connect(&app).await;
    assert!(dict
        .lookup("userdb/becky@zylker.com")
        .await
        .starts_with('O'));
    oldest.assert_closed("the oldest silent connection").await;
}
