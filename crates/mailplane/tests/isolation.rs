//! Nothing crosses organizations or users (contract §3): every attempt on an account, a
//! user or an organization out of the caller's reach answers 404, exactly like the same
//! request on one that does not exist (same status, same body apart from the id named in
//! `moreInfo`), and changes nothing in the database.

mod common;

use common::*;
use mailplane_client::{Client, Reply};
use reqwest::Method;
use serde_json::{json, Value};

backend_tests!(
    the_bodies_tried_across_organizations_succeed_for_their_owner,
    other_org_admin_updating_rebecca_through_its_own_zoid_is_404_like_an_absent_account,
    other_org_admin_updating_rebecca_through_the_demo_zoid_is_404_like_an_absent_one,
    admin_updating_its_own_account_under_a_foreign_zoid_is_404_like_an_absent_org,
    demo_admin_updating_the_other_orgs_account_is_404_like_an_absent_account,
    rebecca_updating_the_demo_admins_account_is_404_like_an_absent_account,
    rebecca_updating_the_other_orgs_account_is_404_like_an_absent_account,
    admins_on_the_user_url_reach_only_their_own_accounts,
    body_zuid_that_is_not_the_owner_is_400_naming_zuid,
    reading_another_users_account_is_404_like_an_absent_account,
    listing_own_accounts_shows_only_the_callers_accounts,
    reading_another_organization_is_404_like_an_absent_one,
    reading_another_organizations_user_is_404_like_an_absent_user,
    listing_an_organization_shows_only_its_own_users,
    creating_a_user_in_another_organization_is_404_like_an_absent_one,
    deleting_users_of_another_organization_is_404_like_absent_users,
    ids_and_addresses_in_the_body_that_belong_elsewhere_answer_like_absent_ones,
);

/// Ids that nothing has.
const ABSENT_ACCOUNT: &str = "2560636000000999999";
const ABSENT_ZOID: &str = "99999999";
const ABSENT_ZUID: &str = "99999998";

/// The second organization, made with `mailplane bootstrap`.
struct Other {
    zoid: String,
    zuid: String,
    account: String,
    admin: Client,
}

fn other_org(app: &TestApp) -> Other {
    let v = app.bootstrap("Other", "other.example", "boss@other.example");
    Other {
        zoid: id_text(&v["zoid"]),
        zuid: id_text(&v["zuid"]),
        account: id_text(&v["accountId"]),
        admin: app.client(Some(v["accessToken"].as_str().expect("token"))),
    }
}

/// The demo super admin's zuid and hosted account id.
async fn demo_admin(app: &TestApp) -> (String, String) {
    let r = app
        .admin()
        .org_account(ZOID, "admin@zylker.com")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    (id_text(&r.data()["zuid"]), id_text(&r.data()["accountId"]))
}

async fn send(client: &Client, method: Method, path: &str, body: Option<&Value>) -> Reply {
    let bytes = body.map(|b| b.to_string().into_bytes());
    client
        .send(method, path, bytes)
        .await
        .expect("request sent")
}

/// The answer with `id` replaced in `moreInfo`, for comparing two answers.
fn masked(r: &Reply, id: &str) -> Value {
    let mut body = r.body.clone();
    if let Some(more) = r.body["data"]["moreInfo"].as_str() {
        body["data"]["moreInfo"] = more.replace(id, "<id>").into();
    }
    body
}

/// One request of a comparison: the path, the body, and the id it names (masked when
/// the answers are compared).
type Probe<'a> = (&'a str, Option<&'a Value>, &'a str);

/// Sends `elsewhere` (names something that exists out of the caller's reach) and
/// `absent` (names something that does not exist) with the same method: the two answers
/// are equal once the ids are masked, and the database has not changed. Returns the
/// answer to `elsewhere`.
async fn compare(
    app: &TestApp,
    client: &Client,
    method: Method,
    elsewhere: Probe<'_>,
    absent: Probe<'_>,
) -> Reply {
    let ctx = format!(
        "{method} {} {}",
        elsewhere.0,
        elsewhere.1.map(Value::to_string).unwrap_or_default()
    );
    let before = app.snapshot();
    assert!(before.contains("accounts: "), "the snapshot sees no data");
    let e = send(client, method.clone(), elsewhere.0, elsewhere.1).await;
    let a = send(client, method, absent.0, absent.1).await;
    assert!(e.status >= 400, "{ctx}: {}", e.body);
    assert_eq!(e.body["status"]["code"], e.status, "{ctx}: {}", e.body);
    assert!(!e.error_code().is_empty(), "{ctx}: {}", e.body);
    assert_eq!(
        (a.status, masked(&a, absent.2)),
        (e.status, masked(&e, elsewhere.2)),
        "{ctx}: out of reach and absent answer differently"
    );
    assert_eq!(app.snapshot(), before, "{ctx}: the database changed");
    e
}

/// The same request to `elsewhere` and to `absent`, each given as (path, the id it
/// names): both are the same 404, and nothing changed.
async fn assert_alike(
    app: &TestApp,
    client: &Client,
    method: Method,
    body: Option<&Value>,
    elsewhere: (&str, &str),
    absent: (&str, &str),
) {
    let e = compare(
        app,
        client,
        method,
        (elsewhere.0, body, elsewhere.1),
        (absent.0, body, absent.1),
    )
    .await;
    assert_eq!(e.status, 404, "{}: {}", elsewhere.0, e.body);
}

/// [`assert_alike`] for a PUT of the account update endpoint.
async fn update_alike(
    app: &TestApp,
    client: &Client,
    body: &Value,
    elsewhere: (&str, &str),
    absent: (&str, &str),
) {
    assert_alike(app, client, Method::PUT, Some(body), elsewhere, absent).await;
}

/// A body of every mode, each one valid for Rebecca's account (see
/// `the_bodies_tried_across_organizations_succeed_for_their_owner`), in an order that
/// succeeds when applied one after another. `admin_url` adds the admin-only mode.
fn mode_bodies(admin_url: bool) -> Vec<Value> {
    let mut v = vec![
        json!({"mode": "addsendmaildetails", "sendMailDetails": [{
            "fromAddress": "rebecca@zylker.com", "displayName": "Rebecca", "mode": "extfrom",
            "serverPort": "465", "serverName": "mail.zoho.com", "userName": "rebecca@zylker.com",
            "password": "Smknel@88", "smtpConnection": "plain"}]}),
        json!({"mode": "deletesendmaildetails", "fromAddress": "rebecca@zylker.com"}),
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
        json!({"mode": "disableMailAccount"}),
        json!({"mode": "enableMailAccount"}),
        json!({"mode": "mailaccountorderupdate", "accList": format!("{POP},{IMAP}")}),
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": "true"}),
    ];
    if admin_url {
        v.push(json!({"mode": "updateIncomingStatus", "incomingBlocked": true}));
    }
    v
}

/// Every mode body, without a zuid and with `zuid` added.
fn mode_bodies_with_zuid(admin_url: bool, zuid: &str) -> Vec<Value> {
    let plain = mode_bodies(admin_url);
    let with: Vec<Value> = plain
        .iter()
        .map(|b| {
            let mut b = b.clone();
            b["zuid"] = json!(zuid);
            b
        })
        .collect();
    plain.into_iter().chain(with).collect()
}

// ---- the account update endpoint ----

async fn the_bodies_tried_across_organizations_succeed_for_their_owner() {
    for (admin_url, path) in [
        (true, format!("/api/organization/{ZOID}/accounts/{REBECCA}")),
        (false, format!("/api/accounts/{REBECCA}")),
    ] {
        let app = TestApp::demo();
        let client = if admin_url { app.admin() } else { app.user() };
        for body in mode_bodies(admin_url) {
            let r = send(&client, Method::PUT, &path, Some(&body)).await;
            assert_eq!(r.status, 200, "{path} {body}: {}", r.body);
        }
    }
}

async fn other_org_admin_updating_rebecca_through_its_own_zoid_is_404_like_an_absent_account() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let absent = format!("/api/organization/{}/accounts/{ABSENT_ACCOUNT}", other.zoid);
    for target in [REBECCA, POP, IMAP] {
        let elsewhere = format!("/api/organization/{}/accounts/{target}", other.zoid);
        for body in mode_bodies_with_zuid(true, REBECCA_ZUID) {
            update_alike(
                &app,
                &other.admin,
                &body,
                (&elsewhere, target),
                (&absent, ABSENT_ACCOUNT),
            )
            .await;
        }
    }
}

async fn other_org_admin_updating_rebecca_through_the_demo_zoid_is_404_like_an_absent_one() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let elsewhere = format!("/api/organization/{ZOID}/accounts/{REBECCA}");
    let absent_account = format!("/api/organization/{ZOID}/accounts/{ABSENT_ACCOUNT}");
    let absent_org = format!("/api/organization/{ABSENT_ZOID}/accounts/{REBECCA}");
    for body in mode_bodies_with_zuid(true, REBECCA_ZUID) {
        update_alike(
            &app,
            &other.admin,
            &body,
            (&elsewhere, REBECCA),
            (&absent_account, ABSENT_ACCOUNT),
        )
        .await;
        update_alike(
            &app,
            &other.admin,
            &body,
            (&elsewhere, REBECCA),
            (&absent_org, REBECCA),
        )
        .await;
    }
}

async fn admin_updating_its_own_account_under_a_foreign_zoid_is_404_like_an_absent_org() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let elsewhere = format!("/api/organization/{ZOID}/accounts/{}", other.account);
    let absent = format!("/api/organization/{ABSENT_ZOID}/accounts/{}", other.account);
    for body in mode_bodies(true) {
        update_alike(
            &app,
            &other.admin,
            &body,
            (&elsewhere, &other.account),
            (&absent, &other.account),
        )
        .await;
    }
}

async fn demo_admin_updating_the_other_orgs_account_is_404_like_an_absent_account() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let through_own = format!("/api/organization/{ZOID}/accounts/{}", other.account);
    let through_theirs = format!(
        "/api/organization/{}/accounts/{}",
        other.zoid, other.account
    );
    let absent = format!("/api/organization/{ZOID}/accounts/{ABSENT_ACCOUNT}");
    for body in mode_bodies_with_zuid(true, &other.zuid) {
        for elsewhere in [&through_own, &through_theirs] {
            update_alike(
                &app,
                &app.admin(),
                &body,
                (elsewhere, &other.account),
                (&absent, ABSENT_ACCOUNT),
            )
            .await;
        }
    }
}

async fn rebecca_updating_the_demo_admins_account_is_404_like_an_absent_account() {
    let app = TestApp::demo();
    let (admin_zuid, admin_account) = demo_admin(&app).await;
    let elsewhere = format!("/api/accounts/{admin_account}");
    let absent = format!("/api/accounts/{ABSENT_ACCOUNT}");
    for body in mode_bodies_with_zuid(false, &admin_zuid) {
        update_alike(
            &app,
            &app.user(),
            &body,
            (&elsewhere, &admin_account),
            (&absent, ABSENT_ACCOUNT),
        )
        .await;
    }
}

async fn rebecca_updating_the_other_orgs_account_is_404_like_an_absent_account() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let elsewhere = format!("/api/accounts/{}", other.account);
    let absent = format!("/api/accounts/{ABSENT_ACCOUNT}");
    for body in mode_bodies_with_zuid(false, &other.zuid) {
        update_alike(
            &app,
            &app.user(),
            &body,
            (&elsewhere, &other.account),
            (&absent, ABSENT_ACCOUNT),
        )
        .await;
    }
}

async fn admins_on_the_user_url_reach_only_their_own_accounts() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let absent = format!("/api/accounts/{ABSENT_ACCOUNT}");
    for target in [REBECCA, POP] {
        let elsewhere = format!("/api/accounts/{target}");
        for admin in [app.admin(), other.admin.clone()] {
            for body in mode_bodies(false) {
                update_alike(
                    &app,
                    &admin,
                    &body,
                    (&elsewhere, target),
                    (&absent, ABSENT_ACCOUNT),
                )
                .await;
            }
        }
    }
}

async fn body_zuid_that_is_not_the_owner_is_400_naming_zuid() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let (admin_zuid, _) = demo_admin(&app).await;
    let admin_url = format!("/api/organization/{ZOID}/accounts/{REBECCA}");
    let user_url = format!("/api/accounts/{REBECCA}");
    let cases = [
        (app.admin(), &admin_url, admin_zuid.as_str()),
        (app.admin(), &admin_url, other.zuid.as_str()),
        (app.admin(), &admin_url, ABSENT_ZUID),
        (app.user(), &user_url, admin_zuid.as_str()),
        (app.user(), &user_url, other.zuid.as_str()),
        (app.user(), &user_url, ABSENT_ZUID),
    ];
    for (client, path, zuid) in &cases {
        for mut body in mode_bodies(false) {
            body["zuid"] = json!(zuid);
            let before = app.snapshot();
            let r = send(client, Method::PUT, path, Some(&body)).await;
            assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
            assert_eq!(r.body["status"]["code"], 400);
            assert!(
                r.more_info().contains("zuid"),
                "{path} {body}: {}",
                r.more_info()
            );
            assert_eq!(
                app.snapshot(),
                before,
                "{path} {body}: the database changed"
            );
        }
    }
    // The owner's zuid is accepted on both URLs, as a number or as a string.
    for (client, path) in [(app.admin(), &admin_url), (app.user(), &user_url)] {
        for zuid in [json!(11111111), json!(REBECCA_ZUID)] {
            let body = json!({"zuid": zuid, "mode": "enableMailAccount"});
            let r = send(&client, Method::PUT, path, Some(&body)).await;
            assert_eq!(r.status, 200, "{path} {body}: {}", r.body);
        }
    }
}

// ---- reads ----

async fn reading_another_users_account_is_404_like_an_absent_account() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let (_, admin_account) = demo_admin(&app).await;
    let absent = format!("/api/accounts/{ABSENT_ACCOUNT}");
    let cases = [
        (app.user(), admin_account.clone()),
        (app.user(), other.account.clone()),
        (app.admin(), REBECCA.to_string()),
        (app.admin(), other.account.clone()),
        (other.admin.clone(), REBECCA.to_string()),
        (other.admin.clone(), POP.to_string()),
        (other.admin.clone(), admin_account.clone()),
    ];
    for (client, target) in &cases {
        let elsewhere = format!("/api/accounts/{target}");
        assert_alike(
            &app,
            client,
            Method::GET,
            None,
            (&elsewhere, target),
            (&absent, ABSENT_ACCOUNT),
        )
        .await;
    }
}

async fn listing_own_accounts_shows_only_the_callers_accounts() {
    let app = TestApp::demo();
    let other = other_org(&app);
    for (client, zuid) in [
        (app.user(), REBECCA_ZUID),
        (other.admin.clone(), other.zuid.as_str()),
    ] {
        let r = client.accounts().await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let accounts = r.data().as_array().expect("array");
        assert!(!accounts.is_empty());
        for a in accounts {
            assert_eq!(id_text(&a["zuid"]), *zuid, "{a}");
        }
    }
}

async fn reading_another_organization_is_404_like_an_absent_one() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let probes = [
        (other.admin.clone(), ZOID.to_string()),
        (app.admin(), other.zoid.clone()),
    ];
    for (client, zoid) in &probes {
        for suffix in ["", "/accounts", "/accounts?start=0&limit=10"] {
            assert_alike(
                &app,
                client,
                Method::GET,
                None,
                (&format!("/api/organization/{zoid}{suffix}"), zoid),
                (
                    &format!("/api/organization/{ABSENT_ZOID}{suffix}"),
                    ABSENT_ZOID,
                ),
            )
            .await;
        }
    }
}

async fn reading_another_organizations_user_is_404_like_an_absent_user() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let (admin_zuid, _) = demo_admin(&app).await;
    let oz = &other.zoid;
    // (caller, path out of reach, the id it names, path of nothing, the id it names)
    let cases = [
        // Through the caller's own organization: a user of the other one.
        (
            other.admin.clone(),
            format!("/api/organization/{oz}/accounts/{REBECCA_ZUID}"),
            REBECCA_ZUID.to_string(),
            format!("/api/organization/{oz}/accounts/{ABSENT_ZUID}"),
            ABSENT_ZUID.to_string(),
        ),
        (
            other.admin.clone(),
            format!("/api/organization/{oz}/accounts/{admin_zuid}"),
            admin_zuid.clone(),
            format!("/api/organization/{oz}/accounts/{ABSENT_ZUID}"),
            ABSENT_ZUID.to_string(),
        ),
        (
            other.admin.clone(),
            format!("/api/organization/{oz}/accounts/becky@zylker.com"),
            "becky@zylker.com".to_string(),
            format!("/api/organization/{oz}/accounts/nobody@other.example"),
            "nobody@other.example".to_string(),
        ),
        (
            app.admin(),
            format!("/api/organization/{ZOID}/accounts/{}", other.zuid),
            other.zuid.clone(),
            format!("/api/organization/{ZOID}/accounts/{ABSENT_ZUID}"),
            ABSENT_ZUID.to_string(),
        ),
        (
            app.admin(),
            format!("/api/organization/{ZOID}/accounts/boss@other.example"),
            "boss@other.example".to_string(),
            format!("/api/organization/{ZOID}/accounts/nobody@zylker.com"),
            "nobody@zylker.com".to_string(),
        ),
        // Through the other organization's zoid: a user who is really there.
        (
            other.admin.clone(),
            format!("/api/organization/{ZOID}/accounts/{REBECCA_ZUID}"),
            ZOID.to_string(),
            format!("/api/organization/{ABSENT_ZOID}/accounts/{REBECCA_ZUID}"),
            ABSENT_ZOID.to_string(),
        ),
        (
            other.admin.clone(),
            format!("/api/organization/{ZOID}/accounts/becky@zylker.com"),
            ZOID.to_string(),
            format!("/api/organization/{ABSENT_ZOID}/accounts/becky@zylker.com"),
            ABSENT_ZOID.to_string(),
        ),
    ];
    for (client, elsewhere, e_id, absent, a_id) in &cases {
        assert_alike(
            &app,
            client,
            Method::GET,
            None,
            (elsewhere, e_id),
            (absent, a_id),
        )
        .await;
    }
}

async fn listing_an_organization_shows_only_its_own_users() {
    let app = TestApp::demo();
    let other = other_org(&app);
    for (client, zoid, foreign) in [
        (app.admin(), ZOID, "boss@other.example"),
        (other.admin.clone(), other.zoid.as_str(), "becky@zylker.com"),
    ] {
        let r = client
            .org_accounts(zoid, "start=0&limit=200")
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let listed = r.data().to_string();
        assert!(
            !listed.contains(foreign),
            "{zoid} lists {foreign}: {listed}"
        );
    }
}

// ---- provisioning ----

async fn creating_a_user_in_another_organization_is_404_like_an_absent_one() {
    let app = TestApp::demo();
    let other = other_org(&app);
    for (client, zoid, address) in [
        (other.admin.clone(), ZOID.to_string(), "intruder@zylker.com"),
        (app.admin(), other.zoid.clone(), "intruder@other.example"),
    ] {
        let body = json!({"primaryEmailAddress": address, "password": "Correct-horse-9"});
        assert_alike(
            &app,
            &client,
            Method::POST,
            Some(&body),
            (&format!("/api/organization/{zoid}/accounts"), &zoid),
            (
                &format!("/api/organization/{ABSENT_ZOID}/accounts"),
                ABSENT_ZOID,
            ),
        )
        .await;
    }
}

async fn deleting_users_of_another_organization_is_404_like_absent_users() {
    let app = TestApp::demo();
    let other = other_org(&app);
    // A member of the other organization, to show a mixed list removes no one.
    let r = other
        .admin
        .create_user(
            &other.zoid,
            &json!({"primaryEmailAddress": "member@other.example", "password": "Correct-horse-9"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let member = id_text(&r.data()["zuid"]);
    let oz = other.zoid.clone();
    let own = format!("/api/organization/{oz}/accounts");
    let demo = format!("/api/organization/{ZOID}/accounts");
    let absent_org = format!("/api/organization/{ABSENT_ZOID}/accounts");
    // (caller, path, body out of reach, its id, path, body of nothing, its id)
    let cases = [
        // Through the demo zoid.
        (
            other.admin.clone(),
            &demo,
            json!({"accountList": [11111111]}),
            ZOID,
            &absent_org,
            json!({"accountList": [11111111]}),
            ABSENT_ZOID,
        ),
        // Through its own zoid, a user of the demo organization.
        (
            other.admin.clone(),
            &own,
            json!({"accountList": [REBECCA_ZUID]}),
            REBECCA_ZUID,
            &own,
            json!({"accountList": [ABSENT_ZUID]}),
            ABSENT_ZUID,
        ),
        (
            other.admin.clone(),
            &own,
            json!({"emailList": ["becky@zylker.com"]}),
            "becky@zylker.com",
            &own,
            json!({"emailList": ["nobody@other.example"]}),
            "nobody@other.example",
        ),
        (
            other.admin.clone(),
            &own,
            json!({"accountList": [member, REBECCA_ZUID]}),
            REBECCA_ZUID,
            &own,
            json!({"accountList": [member, ABSENT_ZUID]}),
            ABSENT_ZUID,
        ),
        (
            app.admin(),
            &demo,
            json!({"accountList": [other.zuid]}),
            other.zuid.as_str(),
            &demo,
            json!({"accountList": [ABSENT_ZUID]}),
            ABSENT_ZUID,
        ),
        (
            app.admin(),
            &demo,
            json!({"emailList": ["member@other.example"]}),
            "member@other.example",
            &demo,
            json!({"emailList": ["nobody@zylker.com"]}),
            "nobody@zylker.com",
        ),
    ];
    for (client, e_path, e_body, e_id, a_path, a_body, a_id) in &cases {
        let e = compare(
            &app,
            client,
            Method::DELETE,
            (e_path, Some(e_body), e_id),
            (a_path, Some(a_body), a_id),
        )
        .await;
        assert_eq!(e.status, 404, "{e_path} {e_body}: {}", e.body);
    }
}

async fn ids_and_addresses_in_the_body_that_belong_elsewhere_answer_like_absent_ones() {
    let app = TestApp::demo();
    let other = other_org(&app);
    let (_, admin_account) = demo_admin(&app).await;
    let admin_identity = app.admin().account(&admin_account).await.unwrap().data()
        ["sendMailDetails"][0]["sendMailId"]
        .as_str()
        .expect("sendMailId")
        .to_string();
    let order = |id: &str| json!({"mode": "mailaccountorderupdate", "accList": [POP, id]});
    let delete = |id: &str| json!({"mode": "deletesendmaildetails", "sendMailId": id});
    let extmailbox = |address: &str| {
        json!({"mode": "addsendmaildetails", "sendMailDetails": [
            {"fromAddress": address, "displayName": "X", "mode": "extmailbox"}]})
    };
    let rebecca = format!("/api/accounts/{REBECCA}");
    let boss = format!(
        "/api/organization/{}/accounts/{}",
        other.zoid, other.account
    );
    // (caller, path, body naming something elsewhere, its id, body naming nothing, its id)
    let cases = [
        (
            app.user(),
            &rebecca,
            order(&admin_account),
            admin_account.clone(),
            order(ABSENT_ACCOUNT),
            ABSENT_ACCOUNT,
        ),
        (
            app.user(),
            &rebecca,
            order(&other.account),
            other.account.clone(),
            order(ABSENT_ACCOUNT),
            ABSENT_ACCOUNT,
        ),
        (
            app.user(),
            &rebecca,
            delete(&admin_identity),
            admin_identity.clone(),
            delete("999999999"),
            "999999999",
        ),
        (
            other.admin.clone(),
            &boss,
            order(REBECCA),
            REBECCA.to_string(),
            order(ABSENT_ACCOUNT),
            ABSENT_ACCOUNT,
        ),
        (
            other.admin.clone(),
            &boss,
            delete(&admin_identity),
            admin_identity.clone(),
            delete("999999999"),
            "999999999",
        ),
        (
            other.admin.clone(),
            &boss,
            extmailbox("rebecca@pop.example.net"),
            "rebecca@pop.example.net".to_string(),
            extmailbox("nobody@pop.example.net"),
            "nobody@pop.example.net",
        ),
    ];
    for (client, path, e_body, e_id, a_body, a_id) in &cases {
        compare(
            &app,
            client,
            Method::PUT,
            (path, Some(e_body), e_id),
            (path, Some(a_body), a_id),
        )
        .await;
    }
}
