//! Two `serve` processes on one database and one data directory (so one relay key),
//! as behind a load balancer: what one node changes, the other sees on the next request;
//! a revoked token is refused by both at once; a refused change holds no lock
//! after its answer; nodes started at the same moment on an
//! empty database all come up; and concurrent clients spread over the two nodes lose no
//! update (the scenarios of `common/concurrency.rs`).

mod common;

use std::sync::Arc;

use common::concurrency::*;
use common::*;
use mailplane_client::Client;
use serde_json::{json, Value};
use tempfile::TempDir;

backend_tests!(
    a_change_through_one_node_is_seen_by_the_other_on_the_next_request,
    a_relay_identity_added_on_one_node_is_managed_on_the_other,
    users_added_and_removed_on_one_node_are_seen_by_the_other,
    a_revoked_token_is_refused_by_both_nodes_on_the_next_request,
    refused_changes_on_one_node_leave_the_account_free_for_the_other,
    nodes_started_together_on_a_fresh_data_directory_all_serve,
    concurrent_identity_additions_over_two_nodes_are_all_kept,
    concurrent_changes_of_different_fields_over_two_nodes_all_land,
    concurrent_reorders_over_two_nodes_end_in_one_submitted_permutation,
    concurrent_claims_over_two_nodes_of_one_address_have_one_winner,
    nodes_started_together_on_an_empty_database_migrate_it_once_and_all_serve,
);

/// The demo on node A, and node B beside it.
fn two_nodes() -> (TestApp, TestApp) {
    let a = TestApp::demo();
    let b = a.second_node();
    assert_ne!(a.base, b.base);
    (a, b)
}

async fn put(client: &Client, body: Value) {
    let r = client.update_account(REBECCA, &body).await.unwrap();
    assert_eq!(r.status, 200, "{body}: {}", r.body);
}

async fn rebecca(client: &Client) -> Value {
    let r = client.account(REBECCA).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.data().clone()
}

async fn order(client: &Client) -> Vec<String> {
    let r = client.accounts().await.unwrap();
    r.data()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["accountId"].as_str().unwrap().to_string())
        .collect()
}

async fn a_change_through_one_node_is_seen_by_the_other_on_the_next_request() {
    let (a, b) = two_nodes();
    // Alternate the writer, and read on the other node right after each answer.
    for round in 0..6 {
        let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let blocked = round % 4 < 2;
        put(
            &writer.user(),
            json!({"mode": "updateOutgoingStatus", "outgoingBlocked": blocked}),
        )
        .await;
        assert_eq!(rebecca(&reader.user()).await["outgoingBlocked"], blocked);
        let mode = if blocked {
            "disableMailAccount"
        } else {
            "enableMailAccount"
        };
        put(&writer.user(), json!({ "mode": mode })).await;
        assert_eq!(rebecca(&reader.user()).await["enabled"], !blocked);
    }
    put(
        &a.user(),
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    assert_eq!(
        rebecca(&b.user()).await["primaryEmailAddress"],
        "rebecca@zylker.com"
    );
    put(
        &b.user(),
        json!({"mode": "mailaccountorderupdate", "accList": [IMAP, POP]}),
    )
    .await;
    assert_eq!(order(&a.user()).await, vec![IMAP, POP, REBECCA]);
    // The change node B refuses depends on the address node A just gave away.
    let r = b
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "rebecca@zylker.com", "password": "long enough"}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (409, "ALREADY_EXISTS"));
}

async fn a_relay_identity_added_on_one_node_is_managed_on_the_other() {
    let (a, b) = two_nodes();
    let extfrom = json!({"fromAddress": "relay@example.net", "displayName": "R", "mode": "extfrom",
        "serverName": "smtp.example.net", "serverPort": 587, "userName": "relay@example.net",
        "password": "relay-secret", "smtpConnection": "tls"});
    let r = a
        .user()
        .update_account(
            REBECCA,
            &json!({"mode": "addsendmaildetails", "sendMailDetails": extfrom}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let on_b = rebecca(&b.user()).await;
    assert_eq!(
        identity_addresses(&on_b),
        vec!["becky@zylker.com", "relay@example.net"]
    );
    let id = on_b["sendMailDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fromAddress"] == "relay@example.net")
        .unwrap()["sendMailId"]
        .clone();
    // Node B replaces it (re-encrypting the password with the shared key), keeping its id.
    let r = b
        .admin()
        .update_org_account(
            ZOID,
            REBECCA,
            &json!({"mode": "addsendmaildetails", "sendMailDetails": extfrom}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let on_a = rebecca(&a.user()).await;
    assert_eq!(on_a["sendMailDetails"].as_array().unwrap().len(), 2);
    assert!(on_a["sendMailDetails"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["sendMailId"] == id));
    put(
        &b.user(),
        json!({"mode": "deletesendmaildetails", "sendMailId": id}),
    )
    .await;
    assert_eq!(
        identity_addresses(&rebecca(&a.user()).await),
        vec!["becky@zylker.com"]
    );
}

async fn users_added_and_removed_on_one_node_are_seen_by_the_other() {
    let (a, b) = two_nodes();
    let r = a
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "paula@zylker.com", "password": "long enough"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let zuid = r.data()["zuid"].to_string();
    let on_b = b
        .admin()
        .org_account(ZOID, "paula@zylker.com")
        .await
        .unwrap();
    assert_eq!(on_b.status, 200);
    assert_eq!(on_b.data()["accountId"], r.data()["accountId"]);
    assert_eq!(
        b.admin().own_organization().await.unwrap().data()["usersCount"],
        3
    );
    // Her token, issued on the command line, works on both nodes until B removes her.
    let paula = a.token(&zuid, "ZohoMail.accounts.ALL");
    for node in [&a, &b] {
        assert_eq!(
            node.client(Some(&paula)).accounts().await.unwrap().status,
            200
        );
    }
    let r = b
        .admin()
        .delete_users(ZOID, &json!({"accountList": [zuid]}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        a.admin()
            .org_account(ZOID, "paula@zylker.com")
            .await
            .unwrap()
            .status,
        404
    );
    for node in [&a, &b] {
        let r = node.client(Some(&paula)).accounts().await.unwrap();
        assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHTOKEN"));
    }
}

async fn a_revoked_token_is_refused_by_both_nodes_on_the_next_request() {
    let (a, b) = two_nodes();
    // Issued after both nodes started: both take it at once.
    let token = a.token(REBECCA_ZUID, "ZohoMail.accounts.ALL");
    for node in [&a, &b, &a, &b] {
        let r = node.client(Some(&token)).account(REBECCA).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let out = b.cli(&["token", "revoke", "--token", &token]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for node in [&a, &b] {
        let c = node.client(Some(&token));
        let r = c.account(REBECCA).await.unwrap();
        assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHTOKEN"));
        let r = c
            .update_account(REBECCA, &json!({"mode": "disableMailAccount"}))
            .await
            .unwrap();
        assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHTOKEN"));
    }
    assert_eq!(rebecca(&a.user()).await["enabled"], true);
    // The demo tokens are untouched.
    assert_eq!(b.user().account(REBECCA).await.unwrap().status, 200);
}

async fn refused_changes_on_one_node_leave_the_account_free_for_the_other() {
    // One connection on node A, so every refusal runs on the connection the next change
    // gets; a short timeout on B, so a lock left behind shows as a 503, not a long wait.
    let a = TestApp::demo_on(Db::fresh(), &["--db-pool-size", "1"]);
    let b = a.second_node_with(&["--db-timeout-ms", "2000"]);
    // The PostgreSQL write path locks the owner before the token's verdict is in.
    let refused = a.client(Some("not-a-token-of-this-server"));
    for _ in 0..3 {
        let r = refused
            .update_account(REBECCA, &json!({"mode": "disableMailAccount"}))
            .await
            .unwrap();
        assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHTOKEN"));
    }
    put(&b.user(), json!({"mode": "disableMailAccount"})).await;
    assert_eq!(rebecca(&a.user()).await["enabled"], false);
    put(&a.user(), json!({"mode": "enableMailAccount"})).await;
    assert_eq!(rebecca(&b.user()).await["enabled"], true);
}

/// How many nodes start at the same moment, and how many times (the races are short).
const STARTING_TOGETHER: usize = 8;
const STARTS: usize = 5;

/// [`STARTING_TOGETHER`] nodes started at the same moment on `dir` and `db` (none with
/// `--demo`), each logging to its own file; all of them must come up.
fn start_together(dir: &Arc<TempDir>, db: &Db) -> Vec<TestApp> {
    let started: Vec<Result<TestApp, String>> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..STARTING_TOGETHER)
            .map(|i| {
                s.spawn(move || {
                    let log = format!("server-start{i}.log");
                    TestApp::try_serve_logged(dir.clone(), db.clone(), &[], &[], &log)
                })
            })
            .collect();
        starting.into_iter().map(|n| n.join().unwrap()).collect()
    });
    let failed: Vec<&String> = started.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {STARTING_TOGETHER} nodes started together exited; their logs:\n{}",
        failed.len(),
        failed
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    started.into_iter().map(Result::unwrap).collect()
}

/// Every node serves the organization `bootstrap` makes after they started.
async fn assert_all_serve_a_new_organization(nodes: &[TestApp]) {
    let b = nodes[0].bootstrap("Later", "later.example", "root@later.example");
    let admin = b["accessToken"].as_str().unwrap();
    for node in nodes {
        let r = node.client(Some(admin)).own_organization().await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.data()["orgName"], "Later");
    }
}

/// A data directory that already holds a relay key.
fn data_dir_with_a_relay_key() -> Arc<TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("relay.key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    Arc::new(dir)
}

async fn nodes_started_together_on_an_empty_database_migrate_it_once_and_all_serve() {
    eprintln!("{STARTS} times {STARTING_TOGETHER} nodes started together on an empty database");
    for _ in 0..STARTS {
        let db = Db::fresh();
        let nodes = start_together(&data_dir_with_a_relay_key(), &db);
        if db.is_postgres() {
            let applied = nodes[0].query("SELECT version FROM schema_migrations ORDER BY 1");
            let once: Vec<String> = (1..=applied.len()).map(|v| v.to_string()).collect();
            assert_eq!(applied, once, "each migration applied once, in order");
        }
        assert_all_serve_a_new_organization(&nodes).await;
    }
}

async fn nodes_started_together_on_a_fresh_data_directory_all_serve() {
    eprintln!(
        "{STARTS} times {STARTING_TOGETHER} nodes started together on a fresh data directory"
    );
    for _ in 0..STARTS {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let nodes = start_together(&dir, &Db::fresh());
        let key = std::fs::read_to_string(dir.path().join("relay.key")).unwrap();
        let hex = key.trim().strip_prefix("1:").expect("a version-1 key");
        assert!(
            hex.len() == 64 && key.lines().count() == 1,
            "one whole relay key"
        );
        assert_all_serve_a_new_organization(&nodes).await;
    }
}

async fn concurrent_identity_additions_over_two_nodes_are_all_kept() {
    let (a, b) = two_nodes();
    identity_additions_are_all_kept(&[&a, &b], 40).await;
}

async fn concurrent_changes_of_different_fields_over_two_nodes_all_land() {
    let (a, b) = two_nodes();
    changes_of_different_fields_all_land(&[&a, &b], 10).await;
}

async fn concurrent_reorders_over_two_nodes_end_in_one_submitted_permutation() {
    let (a, b) = two_nodes();
    reorders_end_in_one_submitted_permutation(&[&a, &b], 28).await;
}

async fn concurrent_claims_over_two_nodes_of_one_address_have_one_winner() {
    let (a, b) = two_nodes();
    claims_of_one_address_have_one_winner(&[&a, &b], 8, 12).await;
}
