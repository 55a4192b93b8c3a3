//! Concurrent changes through the HTTP API: none is lost, none is half-applied.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::json;

const CLIENTS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identity_additions_are_all_kept() {
    let app = TestApp::demo();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let (user, admin) = (app.user(), app.admin());
        tasks.push(tokio::spawn(async move {
            let detail = json!({"fromAddress": format!("c{i}@example.net"), "displayName": "C", "mode": "backupacc"});
            let body = json!({"mode": "addsendmaildetails", "sendMailDetails": [detail]});
            // Alternate the two URL forms.
            if i % 2 == 0 { user.update_account(REBECCA, &body).await } else { admin.update_org_account(ZOID, REBECCA, &body).await }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status, 200);
    }
    let got = identity_addresses(app.user().account(REBECCA).await.unwrap().data());
    assert_eq!(got.len(), CLIENTS + 1, "{got:?}");
    assert_eq!(
        app.query("SELECT COUNT(*) FROM audit")[0],
        CLIENTS.to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_of_different_fields_both_land() {
    let app = TestApp::demo();
    for round in 0..10 {
        let blocked = round % 2 == 0;
        let (a, b, c) = (app.user(), app.admin(), app.user());
        let flag =
            json!({"mode": if blocked { "disableMailAccount" } else { "enableMailAccount" }});
        let outgoing = json!({"mode": "updateOutgoingStatus", "outgoingBlocked": blocked});
        let identity = json!({"mode": "addsendmaildetails", "sendMailDetails": {"fromAddress": format!("r{round}@example.net"), "displayName": "R", "mode": "backupacc"}});
        let (r1, r2, r3) = tokio::join!(
            a.update_account(REBECCA, &flag),
            b.update_org_account(ZOID, REBECCA, &outgoing),
            c.update_account(REBECCA, &identity),
        );
        for r in [r1, r2, r3] {
            assert_eq!(r.unwrap().status, 200);
        }
        let acc = app.user().account(REBECCA).await.unwrap().data().clone();
        assert_eq!(acc["enabled"], !blocked, "round {round}");
        assert_eq!(acc["outgoingBlocked"], blocked, "round {round}");
        assert_eq!(identity_addresses(&acc).len(), round + 2, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reorders_end_in_one_submitted_permutation() {
    let app = TestApp::demo();
    let perms: Vec<Vec<&str>> = vec![
        vec![REBECCA, POP, IMAP],
        vec![REBECCA, IMAP, POP],
        vec![POP, REBECCA, IMAP],
        vec![POP, IMAP, REBECCA],
        vec![IMAP, REBECCA, POP],
        vec![IMAP, POP, REBECCA],
    ];
    for round in 0..20 {
        let n = 2 + round % 5;
        let submitted: Vec<Vec<&str>> = (0..n)
            .map(|i| perms[(round + i) % perms.len()].clone())
            .collect();
        let mut tasks = Vec::new();
        for p in submitted.clone() {
            let c = app.user();
            let list = p.join(",");
            tasks.push(tokio::spawn(async move {
                c.update_account(
                    REBECCA,
                    &json!({"mode": "mailaccountorderupdate", "accList": list}),
                )
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().status, 200);
        }
        let r = app.user().accounts().await.unwrap();
        let accounts = r.data().as_array().unwrap();
        let order: Vec<&str> = accounts
            .iter()
            .map(|a| a["accountId"].as_str().unwrap())
            .collect();
        let seqs: Vec<u64> = accounts
            .iter()
            .map(|a| a["sequence"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, vec![1, 2, 3], "round {round}");
        assert!(
            submitted.contains(&order),
            "round {round}: {order:?} is none of {submitted:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_of_one_address_have_one_winner() {
    let app = TestApp::demo();
    let mut accounts = Vec::new();
    for i in 0..6 {
        let r = app.admin().create_user(ZOID, &json!({"primaryEmailAddress": format!("u{i}@zylker.com"), "password": "long enough"})).await.unwrap();
        assert_eq!(r.status, 201);
        accounts.push(r.data()["accountId"].as_str().unwrap().to_string());
    }
    for round in 0..10 {
        let target = format!("prize{round}@zylker.com");
        let mut tasks = Vec::new();
        for a in accounts.clone() {
            let c = app.admin();
            let body = json!({"mode": "emailupdate", "emailAddress": target});
            tasks.push(tokio::spawn(async move {
                c.update_org_account(ZOID, &a, &body).await
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap().unwrap().status);
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 409),
            "round {round}: {statuses:?}"
        );
        let owners = app.query(&format!(
            "SELECT COUNT(*) FROM addresses WHERE address = '{target}'"
        ));
        assert_eq!(owners[0], "1");
    }
    let primaries: BTreeSet<String> = app.query("SELECT account_id FROM addresses WHERE is_primary = 1 GROUP BY account_id HAVING COUNT(*) = 1").into_iter().collect();
    assert_eq!(
        primaries.len(),
        8,
        "every hosted account still has exactly one primary"
    );
}
