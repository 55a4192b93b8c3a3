//! Admins and super admins (security review, item 5): only a super admin may create or
//! remove admins, so an ordinary admin may not change a super admin's accounts either.
//! On the admin URL an admin's update of a super admin's account is a 403 that changes
//! nothing and is kept as a security event naming the admin; the super admin may change
//! its own account; an admin still changes its own account and members' accounts. An
//! admin cannot remove a super admin (or another admin).
//!
//! The authorization matrix (`authz_matrix.rs`) runs every mode of this rule; this file
//! checks what it does not: the security log, and the removals.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mailplane_client::{Client, Reply};
use reqwest::Method;
use serde_json::{json, Value};

backend_tests!(
    an_admin_cannot_change_a_super_admins_account_and_is_recorded,
    an_admin_cannot_remove_a_super_admin_or_an_admin,
);

const EVERY_SCOPE: &str = "ZohoMail.organization.accounts.ALL,ZohoMail.accounts.ALL";

fn id_text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// A new user of the demo organization with `role`, made by the demo super admin; its
/// zuid, its hosted account id and a client with every scope.
async fn new_user(app: &TestApp, address: &str, role: &str) -> (String, String, Client) {
    let body = json!({"primaryEmailAddress": address, "password": "Correct-horse-9", "role": role});
    let r = app.admin().create_user(ZOID, &body).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let zuid = id_text(&r.data()["zuid"]);
    let account = id_text(&r.data()["accountId"]);
    let client = app.client(Some(&app.token(&zuid, EVERY_SCOPE)));
    (zuid, account, client)
}

/// The demo super admin's zuid and hosted account id.
async fn super_admin(app: &TestApp) -> (String, String) {
    let r = app
        .admin()
        .org_account(ZOID, "admin@zylker.com")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    (id_text(&r.data()["zuid"]), id_text(&r.data()["accountId"]))
}

/// The three changes the review found an admin could make to a super admin's account.
fn changes(new_address: &str) -> [Value; 3] {
    [
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
        json!({"mode": "emailupdate", "emailAddress": new_address}),
        json!({"mode": "disableMailAccount"}),
    ]
}

async fn put(client: &Client, account: &str, body: &Value) -> Reply {
    client
        .update_org_account(ZOID, account, body)
        .await
        .expect("request sent")
}

/// The organization's security events once there are at least `n` (they are written
/// off the request's path).
async fn security_events(app: &TestApp, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .admin()
            .send(
                Method::GET,
                &format!("/api/organization/{ZOID}/auditlog?type=security&limit=200"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let events = r.data().as_array().cloned().unwrap_or_default();
        if events.len() >= n || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn an_admin_cannot_change_a_super_admins_account_and_is_recorded() {
    let app = TestApp::demo();
    let (_, boss_account) = super_admin(&app).await;
    let (dana_zuid, dana_account, dana) = new_user(&app, "dana@zylker.com", "admin").await;

    let before = app.snapshot();
    for body in changes("taken.over@zylker.com") {
        let r = put(&dana, &boss_account, &body).await;
        assert_eq!(
            (r.status, r.error_code()),
            (403, "NO_PERMISSION"),
            "{body}: {}",
            r.body
        );
        assert_eq!(r.body["status"]["code"], 403);
        // Also with the owner's zuid in the body, and with the account's address.
        let mut with_zuid = body.clone();
        with_zuid["zuid"] = json!(super_admin(&app).await.0);
        assert_eq!(put(&dana, &boss_account, &with_zuid).await.status, 403);
    }
    assert_eq!(
        app.snapshot(),
        before,
        "a refused change changed the database"
    );

    let events = security_events(&app, 6).await;
    let path = format!("/api/organization/{ZOID}/accounts/{boss_account}");
    let refused: Vec<&Value> = events.iter().filter(|e| e["path"] == path).collect();
    assert_eq!(refused.len(), 6, "{events:?}");
    for e in refused {
        assert_eq!(
            (
                e["status"].clone(),
                e["errorCode"].clone(),
                e["method"].clone()
            ),
            (json!(403), json!("NO_PERMISSION"), json!("PUT"))
        );
        assert_eq!(id_text(&e["actor"]["zuid"]), dana_zuid, "names the admin");
    }

    // The super admin changes its own account; the admin its own and a member's.
    for (who, account, address) in [
        (&app.admin(), &boss_account, "boss@zylker.com"),
        (&dana, &dana_account, "dana.new@zylker.com"),
        (&dana, &REBECCA.to_string(), "rebecca.new@zylker.com"),
    ] {
        for body in changes(address) {
            let r = put(who, account, &body).await;
            assert_eq!(r.status, 200, "{account} {body}: {}", r.body);
        }
        let r = app
            .admin()
            .send(
                Method::GET,
                &format!("/api/organization/{ZOID}/accounts/{address}"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let d = r.data();
        assert_eq!(
            (
                id_text(&d["accountId"]),
                d["outgoingBlocked"].clone(),
                d["enabled"].clone()
            ),
            (account.clone(), json!(true), json!(false)),
            "{}",
            r.body
        );
    }
}

async fn an_admin_cannot_remove_a_super_admin_or_an_admin() {
    let app = TestApp::demo();
    let (boss_zuid, _) = super_admin(&app).await;
    let (dana_zuid, _, dana) = new_user(&app, "dana@zylker.com", "admin").await;
    let (erin_zuid, _, _) = new_user(&app, "erin@zylker.com", "admin").await;
    // A second super admin, so that "the last super admin stays" is not what refuses.
    new_user(&app, "second@zylker.com", "super_admin").await;

    let before = app.snapshot();
    for body in [
        json!({"accountList": [boss_zuid]}),
        json!({"emailList": ["admin@zylker.com"]}),
        json!({"accountList": [erin_zuid]}),
        json!({"accountList": [REBECCA_ZUID, boss_zuid]}),
    ] {
        let r = dana.delete_users(ZOID, &body).await.unwrap();
        assert_eq!(
            (r.status, r.error_code()),
            (403, "NO_PERMISSION"),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(app.snapshot(), before, "a refused removal removed someone");
    let events = security_events(&app, 4).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["method"] == "DELETE"
                && e["status"] == 403
                && id_text(&e["actor"]["zuid"]) == dana_zuid)
            .count(),
        4,
        "{events:?}"
    );

    // A member, yes; and the super admin removes admins.
    let r = dana
        .delete_users(ZOID, &json!({"accountList": [REBECCA_ZUID]}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .admin()
        .delete_users(ZOID, &json!({"accountList": [erin_zuid]}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}
