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
    change_role_with_zohos_body_is_audited_and_takes_effect_at_once,
    only_a_super_admin_changes_admin_roles_and_is_recorded,
    the_last_super_admin_keeps_the_role,
    change_role_is_all_or_nothing_and_answers_404_for_anyone_out_of_reach,
    change_role_refuses_other_modes_and_malformed_bodies,
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

async fn change_role(client: &Client, body: &Value) -> Reply {
    client.change_role(ZOID, body).await.expect("request sent")
}

fn role_of(app: &TestApp, zuid: &str) -> String {
    app.query(&format!("SELECT role FROM users WHERE zuid = {zuid}"))[0].clone()
}

/// Zoho's body (zuids as strings, `"user"` for a member), by the super admin: the answer
/// names each user once, in order; each named user gets an audit row naming the actor.
/// Roles are read at each request, so Rebecca's token with organization scopes works on
/// the admin URL as soon as she is an admin and stops the moment she is not: nothing is
/// revoked, and nothing has to be.
async fn change_role_with_zohos_body_is_audited_and_takes_effect_at_once() {
    let app = TestApp::demo();
    let (boss_zuid, _) = super_admin(&app).await;
    let (erin_zuid, _, _) = new_user(&app, "erin@zylker.com", "member").await;
    let rebecca = app.client(Some(&app.token(REBECCA_ZUID, EVERY_SCOPE)));
    assert_eq!(rebecca.organization(ZOID).await.unwrap().status, 403);

    let body = json!({"mode": "changeRole", "userList": [REBECCA_ZUID, erin_zuid, REBECCA_ZUID], "role": "admin"});
    let r = change_role(&app.admin(), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"status": {"code": 200, "description": "success"},
               "data": [{REBECCA_ZUID: true}, {erin_zuid.clone(): true}]})
    );
    assert_eq!(
        (role_of(&app, REBECCA_ZUID), role_of(&app, &erin_zuid)),
        ("admin".into(), "admin".into())
    );
    let read = app.admin().org_account(ZOID, REBECCA_ZUID).await.unwrap();
    assert_eq!(read.data()["role"], "admin");
    assert_eq!(
        rebecca.organization(ZOID).await.unwrap().status,
        200,
        "the same token, now an admin's"
    );

    // Zoho's sample says "user"; a zuid may be a number too, or the list one string.
    for body in [
        json!({"mode": "changeRole", "userList": [11111111], "role": "user"}),
        json!({"mode": "changeRole", "userList": format!("{REBECCA_ZUID},{erin_zuid}"), "role": "member"}),
    ] {
        let r = change_role(&app.admin(), &body).await;
        assert_eq!(r.status, 200, "{body}: {}", r.body);
    }
    assert_eq!(
        (role_of(&app, REBECCA_ZUID), role_of(&app, &erin_zuid)),
        ("member".into(), "member".into())
    );
    assert_eq!(
        rebecca.organization(ZOID).await.unwrap().status,
        403,
        "a member again"
    );
    assert_eq!(
        rebecca.accounts().await.unwrap().status,
        200,
        "her token still works for her"
    );

    let rows = app.query_rows(&format!(
        "SELECT CAST(zuid AS TEXT), CAST(actor_zuid AS TEXT), before, after FROM audit WHERE mode = 'changeRole' AND zuid = {REBECCA_ZUID} ORDER BY id"
    ));
    let rows: Vec<(String, String, Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                r[0].clone(),
                r[1].clone(),
                serde_json::from_str(&r[2]).unwrap(),
                serde_json::from_str(&r[3]).unwrap(),
            )
        })
        .collect();
    let row = |before: &str, after: &str| {
        (
            REBECCA_ZUID.to_string(),
            boss_zuid.clone(),
            json!({"role": before}),
            json!({"role": after}),
        )
    };
    assert_eq!(
        rows,
        [
            row("member", "admin"),
            row("admin", "member"),
            row("member", "member")
        ]
    );
    let all: usize = app.query("SELECT COUNT(*) FROM audit WHERE mode = 'changeRole'")[0]
        .parse()
        .unwrap();
    assert_eq!(all, 5, "one row per user named, each request");
}

/// An admin may not make or unmake admins (or touch a super admin): 403, nothing changed,
/// each refusal a security event naming the admin. It may still set members to member.
async fn only_a_super_admin_changes_admin_roles_and_is_recorded() {
    let app = TestApp::demo();
    let (boss_zuid, _) = super_admin(&app).await;
    let (dana_zuid, _, dana) = new_user(&app, "dana@zylker.com", "admin").await;
    let (erin_zuid, _, _) = new_user(&app, "erin@zylker.com", "admin").await;
    let before = app.snapshot();
    let refused = [
        json!({"mode": "changeRole", "userList": [REBECCA_ZUID], "role": "admin"}),
        json!({"mode": "changeRole", "userList": [erin_zuid], "role": "member"}),
        json!({"mode": "changeRole", "userList": [boss_zuid], "role": "member"}),
        json!({"mode": "changeRole", "userList": [REBECCA_ZUID, boss_zuid], "role": "user"}),
    ];
    for body in &refused {
        let r = change_role(&dana, body).await;
        assert_eq!(
            (r.status, r.error_code()),
            (403, "NO_PERMISSION"),
            "{body}: {}",
            r.body
        );
        assert!(r.more_info().contains("only a super admin"), "{}", r.body);
    }
    assert_eq!(
        app.snapshot(),
        before,
        "a refused change changed the database"
    );
    let events = security_events(&app, refused.len()).await;
    let path = format!("/api/organization/{ZOID}/accounts");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["path"] == path
                && e["method"] == "PUT"
                && e["status"] == 403
                && id_text(&e["actor"]["zuid"]) == dana_zuid)
            .count(),
        refused.len(),
        "{events:?}"
    );
    let r = change_role(
        &dana,
        &json!({"mode": "changeRole", "userList": [REBECCA_ZUID], "role": "member"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The super admin can: an admin made a member, and back.
    for role in ["member", "admin"] {
        let r = change_role(
            &app.admin(),
            &json!({"mode": "changeRole", "userList": [erin_zuid], "role": role}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(role_of(&app, &erin_zuid), role);
    }
}

/// A super admin named in `userList` becomes what `role` says, unless the organization
/// would be left without one: then the whole request is a 400 naming `userList`.
async fn the_last_super_admin_keeps_the_role() {
    let app = TestApp::demo();
    let (boss_zuid, _) = super_admin(&app).await;
    let before = app.snapshot();
    for body in [
        json!({"mode": "changeRole", "userList": [boss_zuid], "role": "admin"}),
        json!({"mode": "changeRole", "userList": [REBECCA_ZUID, boss_zuid], "role": "member"}),
    ] {
        let r = change_role(&app.admin(), &body).await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "INVALID_VALUE"),
            "{body}: {}",
            r.body
        );
        assert_eq!(
            r.more_info(),
            "userList: the organization's last super admin keeps that role"
        );
    }
    assert_eq!(app.snapshot(), before);
    // With a second super admin, one of them may step down (even itself), not both.
    let (second_zuid, _, second) = new_user(&app, "second@zylker.com", "super_admin").await;
    let both = json!({"mode": "changeRole", "userList": [boss_zuid, second_zuid], "role": "admin"});
    assert_eq!(change_role(&app.admin(), &both).await.status, 400);
    let r = change_role(
        &second,
        &json!({"mode": "changeRole", "userList": [second_zuid], "role": "admin"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(role_of(&app, &second_zuid), "admin");
    assert_eq!(role_of(&app, &boss_zuid), "super_admin");
    // Now an admin, the former super admin can no longer change admin roles.
    let r = change_role(
        &second,
        &json!({"mode": "changeRole", "userList": [REBECCA_ZUID], "role": "admin"}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

/// A zuid of another organization's user answers exactly like one nobody has, and the
/// users named with it keep their roles. Another organization's URL is a 404 too.
async fn change_role_is_all_or_nothing_and_answers_404_for_anyone_out_of_reach() {
    let app = TestApp::demo();
    let b = app.bootstrap("Other", "other.example", "boss@other.example");
    let foreign = id_text(&b["zuid"]);
    let before = app.snapshot();
    let answer = |zuid: &str| {
        let zuid = zuid.to_string();
        let app = &app;
        async move {
            let body =
                json!({"mode": "changeRole", "userList": [REBECCA_ZUID, zuid], "role": "admin"});
            let r = change_role(&app.admin(), &body).await;
            assert_eq!((r.status, r.error_code()), (404, "NOT_FOUND"), "{}", r.body);
            r.body.to_string().replace(&zuid, "<zuid>")
        }
    };
    assert_eq!(answer(&foreign).await, answer("2999999999999999998").await);
    assert_eq!(app.snapshot(), before, "all or nothing");
    assert_eq!(role_of(&app, REBECCA_ZUID), "member");
    // The other organization's URL, with the other organization's user.
    let zoid_b = id_text(&b["zoid"]);
    let body = json!({"mode": "changeRole", "userList": [foreign], "role": "admin"});
    let r = app.admin().change_role(&zoid_b, &body).await.unwrap();
    assert_eq!((r.status, r.error_code()), (404, "NOT_FOUND"), "{}", r.body);
    assert_eq!(app.snapshot(), before);
}

/// Other modes on this URL are a 400 listing the one there is; the body's keys and
/// values are checked as everywhere.
async fn change_role_refuses_other_modes_and_malformed_bodies() {
    let app = TestApp::demo();
    let before = app.snapshot();
    for (body, status, code, says) in [
        (
            json!({"mode": "resetPassword", "userList": [REBECCA_ZUID]}),
            400,
            "INVALID_MODE",
            "supported modes: changeRole",
        ),
        (
            json!({"userList": [REBECCA_ZUID], "role": "admin"}),
            400,
            "LESS_THAN_MIN_OCCURANCE",
            "mode is mandatory",
        ),
        (
            json!({"mode": "changeRole", "role": "admin"}),
            400,
            "LESS_THAN_MIN_OCCURANCE",
            "userList is mandatory",
        ),
        (
            json!({"mode": "changeRole", "userList": [REBECCA_ZUID]}),
            400,
            "LESS_THAN_MIN_OCCURANCE",
            "role is mandatory",
        ),
        (
            json!({"mode": "changeRole", "userList": [], "role": "admin"}),
            400,
            "PATTERN_NOT_MATCHED",
            "userList must name 1 to 200 users",
        ),
        (
            json!({"mode": "changeRole", "userList": ["becky@zylker.com"], "role": "admin"}),
            400,
            "PATTERN_NOT_MATCHED",
            "userList must be a positive integer id",
        ),
        (
            json!({"mode": "changeRole", "userList": [REBECCA_ZUID], "role": "super_admin"}),
            400,
            "PATTERN_NOT_MATCHED",
            "role must be one of: admin, member",
        ),
        (
            json!({"mode": "changeRole", "userList": [REBECCA_ZUID], "role": "admin", "zuid": REBECCA_ZUID}),
            404,
            "EXTRA_KEY_FOUND_IN_JSON",
            "zuid",
        ),
    ] {
        let r = change_role(&app.admin(), &body).await;
        assert_eq!(
            (r.status, r.error_code()),
            (status, code),
            "{body}: {}",
            r.body
        );
        assert!(r.more_info().contains(says), "{body}: {}", r.body);
    }
    assert_eq!(app.snapshot(), before);
}
