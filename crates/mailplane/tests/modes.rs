//! The rules of every mode, through the HTTP API, under both URL forms.

mod common;

use common::*;
use mailplane_client::{Client, Reply};
use serde_json::{json, Value};

backend_tests!(
    send_mail_details_as_object_or_array_under_both_urls,
    several_identities_are_all_or_nothing,
    identity_modes_follow_their_rules,
    at_most_fifty_identities,
    delete_send_mail_details_by_id_or_address,
    email_update_rules,
    enable_disable_and_outgoing_are_independent_and_idempotent,
    incoming_status_is_for_admins,
    protocol_access_is_for_admins_and_audited,
    account_order_rules,
    external_accounts_take_only_the_order_mode,
    every_success_writes_one_audit_row_and_failures_none,
    relays_at_internal_addresses_are_refused_unless_allowed,
    email_aliases_are_added_through_the_users_zuid,
    email_alias_refusals_name_the_field,
    at_most_fifty_addresses_through_either_mode,
    email_aliases_are_deleted_through_the_users_zuid,
    reset_password_through_the_users_zuid_and_its_refusals,
    personal_info_under_both_urls_and_its_refusals,
    display_name_email_update_names_a_mailbox_identity,
    a_member_reaches_no_one_elses_names_or_roles,
);

/// The two ways to reach Rebecca's account: the admin URL and her own.
enum Url {
    Admin,
    User,
}

async fn put(app: &TestApp, url: &Url, account: &str, body: Value) -> Reply {
    match url {
        Url::Admin => app
            .admin()
            .update_org_account(ZOID, account, &body)
            .await
            .unwrap(),
        Url::User => app.user().update_account(account, &body).await.unwrap(),
    }
}

async fn account(app: &TestApp, id: &str) -> Value {
    let r = app.admin().org_accounts(ZOID, "limit=200").await.unwrap();
    if let Some(a) = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["accountId"] == id)
    {
        return a.clone();
    }
    app.user().account(id).await.unwrap().data().clone()
}

fn extfrom(from: &str) -> Value {
    json!({ "fromAddress": from, "displayName": "R", "mode": "extfrom", "serverName": "smtp.example.net",
            "serverPort": 587, "userName": from, "password": "pw-secret", "smtpConnection": "tls" })
}

/// The audit rows of requests (not those of the system's relay checks, which come in the
/// background).
fn audit_count(app: &TestApp) -> usize {
    app.query("SELECT COUNT(*) FROM audit WHERE mode <> 'relaycheck'")[0]
        .parse()
        .unwrap()
}

async fn send_mail_details_as_object_or_array_under_both_urls() {
    for url in [Url::Admin, Url::User] {
        let app = TestApp::demo();
        let r = put(
            &app,
            &url,
            REBECCA,
            json!({"mode": "addsendmaildetails", "sendMailDetails": extfrom("one@example.net")}),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let r = put(&app, &url, REBECCA, json!({"mode": "addsendmaildetails", "sendMailDetails": [extfrom("two@example.net"), extfrom("three@example.net")]})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(
            identity_addresses(&account(&app, REBECCA).await),
            vec![
                "becky@zylker.com",
                "one@example.net",
                "three@example.net",
                "two@example.net"
            ]
        );
        let ext = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["fromAddress"] == "two@example.net")
            .unwrap()
            .clone();
        assert_eq!(
            (ext["serverPort"].clone(), ext["smtpConnection"].clone()),
            (json!(587), json!("tls"))
        );
    }
}

async fn several_identities_are_all_or_nothing() {
    let app = TestApp::demo();
    let before = app.snapshot();
    let mut bad = extfrom("bad@example.net");
    bad.as_object_mut().unwrap().remove("password");
    let r = put(&app, &Url::User, REBECCA, json!({"mode": "addsendmaildetails", "sendMailDetails": [extfrom("good@example.net"), bad]})).await;
    assert_eq!((r.status, r.error_code()), (400, "LESS_THAN_MIN_OCCURANCE"));
    assert!(
        r.more_info().contains("sendMailDetails[1].password"),
        "{}",
        r.more_info()
    );
    assert_eq!(app.snapshot(), before);
    let r = put(&app, &Url::User, REBECCA, json!({"mode": "addsendmaildetails", "sendMailDetails": [extfrom("a@example.net"), extfrom("A@EXAMPLE.net")]})).await;
    assert_eq!(r.status, 400, "the same address twice in one request");
    assert_eq!(app.snapshot(), before);
}

async fn identity_modes_follow_their_rules() {
    let app = TestApp::demo();
    let add = |d: Value| {
        put(
            &app,
            &Url::Admin,
            REBECCA,
            json!({"mode": "addsendmaildetails", "sendMailDetails": [d]}),
        )
    };
    // mailbox without fromAddress is the primary address; re-adding replaces it.
    let r = add(json!({"displayName": "Becky B", "mode": "mailbox"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ids = r.data().as_array().unwrap().clone();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        (ids[0]["fromAddress"].clone(), ids[0]["displayName"].clone()),
        (json!("becky@zylker.com"), json!("Becky B"))
    );
    // alias needs an alias of the account: make one by moving the primary.
    assert_eq!(
        add(json!({"fromAddress": "becky@zylker.com", "displayName": "B", "mode": "alias"}))
            .await
            .status,
        400
    );
    let r = put(
        &app,
        &Url::Admin,
        REBECCA,
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        add(json!({"fromAddress": "becky@zylker.com", "displayName": "B", "mode": "alias"}))
            .await
            .status,
        200
    );
    // extmailbox: the address of one of the user's external accounts.
    assert_eq!(add(json!({"fromAddress": "rebecca@pop.example.net", "displayName": "P", "mode": "extmailbox"})).await.status, 200);
    assert_eq!(add(json!({"fromAddress": "stranger@pop.example.net", "displayName": "P", "mode": "extmailbox"})).await.status, 400);
    // group: no groups yet, said clearly.
    let r =
        add(json!({"fromAddress": "team@zylker.com", "displayName": "T", "mode": "group"})).await;
    assert_eq!(r.status, 400);
    assert!(r.more_info().contains("group"), "{}", r.more_info());
    // backupacc takes no relay fields.
    assert_eq!(
        add(json!({"fromAddress": "backup@example.org", "displayName": "B", "mode": "backupacc"}))
            .await
            .status,
        200
    );
    let r = add(json!({"fromAddress": "backup2@example.org", "displayName": "B", "mode": "backupacc", "serverName": "x.example"})).await;
    assert_eq!(r.status, 400);
    // extfrom with another account's address is a conflict.
    let r = add(extfrom("admin@zylker.com")).await;
    assert_eq!((r.status, r.error_code()), (409, "ALREADY_EXISTS"));
    // Bad mode value and display name bounds.
    let r =
        add(json!({"fromAddress": "x@example.org", "displayName": "B", "mode": "carrier-pigeon"}))
            .await;
    assert_eq!((r.status, r.error_code()), (400, "PATTERN_NOT_MATCHED"));
    let r = add(json!({"fromAddress": "x@example.org", "displayName": "x".repeat(101), "mode": "backupacc"})).await;
    assert_eq!(r.status, 400);
    assert!(r.more_info().contains("displayName"));
}

async fn at_most_fifty_identities() {
    let app = TestApp::demo();
    let batch: Vec<Value> = (0..49)
        .map(|i| extfrom(&format!("x{i}@example.net")))
        .collect();
    let r = put(
        &app,
        &Url::User,
        REBECCA,
        json!({"mode": "addsendmaildetails", "sendMailDetails": batch}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.more_info());
    let r = put(&app, &Url::User, REBECCA, json!({"mode": "addsendmaildetails", "sendMailDetails": [extfrom("one-too-many@example.net")]})).await;
    assert_eq!(r.status, 400);
    assert!(r.more_info().contains("50"), "{}", r.more_info());
    // Replacing an existing one is still fine at the cap.
    let r = put(
        &app,
        &Url::User,
        REBECCA,
        json!({"mode": "addsendmaildetails", "sendMailDetails": [extfrom("x3@example.net")]}),
    )
    .await;
    assert_eq!(r.status, 200);
}

async fn delete_send_mail_details_by_id_or_address() {
    for url in [Url::Admin, Url::User] {
        let app = TestApp::demo();
        let r = put(&app, &url, REBECCA, json!({"mode": "addsendmaildetails", "sendMailDetails": [extfrom("a@example.net"), extfrom("b@example.net")]})).await;
        let id_of_a = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["fromAddress"] == "a@example.net")
            .unwrap()["sendMailId"]
            .clone();
        let r = put(
            &app,
            &url,
            REBECCA,
            json!({"mode": "deletesendmaildetails", "sendMailId": id_of_a}),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let r = put(
            &app,
            &url,
            REBECCA,
            json!({"mode": "deletesendmaildetails", "fromAddress": "B@example.net"}),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            identity_addresses(&account(&app, REBECCA).await),
            vec!["becky@zylker.com"]
        );
        let r = put(
            &app,
            &url,
            REBECCA,
            json!({"mode": "deletesendmaildetails", "fromAddress": "becky@zylker.com"}),
        )
        .await;
        assert_eq!(r.status, 400, "the primary mailbox identity stays");
        let r = put(
            &app,
            &url,
            REBECCA,
            json!({"mode": "deletesendmaildetails", "sendMailId": "123"}),
        )
        .await;
        assert_eq!(r.status, 400);
    }
}

async fn email_update_rules() {
    for url in [Url::Admin, Url::User] {
        let app = TestApp::demo();
        let upd = |a: &str| {
            put(
                &app,
                &url,
                REBECCA,
                json!({"mode": "emailupdate", "emailAddress": a}),
            )
        };
        let r = upd("rebecca@example.com").await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "INVALID_VALUE"),
            "outside the org's domains"
        );
        let r = upd("Admin@Zylker.com").await;
        assert_eq!(
            (r.status, r.error_code()),
            (409, "ALREADY_EXISTS"),
            "another account's address"
        );
        let before = app.data_snapshot();
        assert_eq!(
            upd("becky@zylker.com").await.status,
            200,
            "the current primary"
        );
        assert_eq!(app.data_snapshot(), before);
        assert_eq!(upd("REBECCA@zylker.com").await.status, 200);
        let a = account(&app, REBECCA).await;
        assert_eq!(a["primaryEmailAddress"], "rebecca@zylker.com");
        // Back to the old primary, now an alias: the two swap, nothing is lost.
        assert_eq!(upd("becky@zylker.com").await.status, 200);
        let a = account(&app, REBECCA).await;
        assert_eq!(a["primaryEmailAddress"], "becky@zylker.com");
        let mut mails: Vec<(String, bool)> = a["emailAddress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["mailId"].as_str().unwrap().to_string(),
                    m["isPrimary"].as_bool().unwrap(),
                )
            })
            .collect();
        mails.sort();
        assert_eq!(
            mails,
            vec![
                ("becky@zylker.com".into(), true),
                ("rebecca@zylker.com".into(), false)
            ]
        );
        // Identities are untouched by emailupdate.
        assert_eq!(identity_addresses(&a), vec!["becky@zylker.com"]);
    }
}

async fn enable_disable_and_outgoing_are_independent_and_idempotent() {
    for url in [Url::Admin, Url::User] {
        let app = TestApp::demo();
        for (body, field, want) in [
            (json!({"mode": "disableMailAccount"}), "enabled", false),
            (json!({"mode": "disableMailAccount"}), "enabled", false),
            (
                json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
                "outgoingBlocked",
                true,
            ),
            (json!({"mode": "enableMailAccount"}), "enabled", true),
            (json!({"mode": "enableMailAccount"}), "enabled", true),
            (
                json!({"mode": "updateOutgoingStatus", "outgoingBlocked": "false"}),
                "outgoingBlocked",
                false,
            ),
            (
                json!({"mode": "updateOutgoingStatus", "outgoingBlocked": "TRUE"}),
                "outgoingBlocked",
                true,
            ),
        ] {
            let r = put(&app, &url, REBECCA, body.clone()).await;
            assert_eq!(r.status, 200, "{body}");
            assert_eq!(account(&app, REBECCA).await[field], want, "{body}");
        }
        let a = account(&app, REBECCA).await;
        assert_eq!(
            (
                a["enabled"].clone(),
                a["outgoingBlocked"].clone(),
                a["incomingBlocked"].clone()
            ),
            (json!(true), json!(true), json!(false))
        );
    }
}

async fn incoming_status_is_for_admins() {
    let app = TestApp::demo();
    let r = put(
        &app,
        &Url::Admin,
        REBECCA,
        json!({"mode": "updateIncomingStatus", "incomingBlocked": "true"}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(account(&app, REBECCA).await["incomingBlocked"], true);
    let r = put(
        &app,
        &Url::User,
        REBECCA,
        json!({"mode": "updateIncomingStatus", "incomingBlocked": false}),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(account(&app, REBECCA).await["incomingBlocked"], true);
}

/// `updateIMAPStatus` and `updatePOPStatus`: each turns one flag, on the admin URL only,
/// on hosted accounts only, with an audit row of what it was and what it became.
async fn protocol_access_is_for_admins_and_audited() {
    let app = TestApp::demo();
    let flags = |a: &Value| {
        (
            a["imapAccessEnabled"].clone(),
            a["popAccessEnabled"].clone(),
        )
    };
    assert_eq!(
        flags(&account(&app, REBECCA).await),
        (json!(true), json!(true))
    );
    let r = put(
        &app,
        &Url::Admin,
        REBECCA,
        json!({"mode": "updateIMAPStatus", "imapAccessEnabled": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        flags(&account(&app, REBECCA).await),
        (json!(false), json!(true))
    );
    let audit = app
        .query("SELECT mode || ' ' || before || ' ' || after FROM audit ORDER BY id DESC LIMIT 1");
    assert_eq!(
        audit,
        [r#"updateIMAPStatus {"imapAccessEnabled":true} {"imapAccessEnabled":false}"#]
    );
    let r = put(
        &app,
        &Url::Admin,
        REBECCA,
        json!({"mode": "updatePOPStatus", "popAccessEnabled": "false", "zuid": REBECCA_ZUID}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        flags(&account(&app, REBECCA).await),
        (json!(false), json!(false))
    );
    // Not on her own URL, not without the flag, not on an external account.
    let before = audit_count(&app);
    let r = put(
        &app,
        &Url::User,
        REBECCA,
        json!({"mode": "updateIMAPStatus", "imapAccessEnabled": true}),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = put(
        &app,
        &Url::Admin,
        REBECCA,
        json!({"mode": "updatePOPStatus"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "LESS_THAN_MIN_OCCURANCE", "{}", r.body);
    let r = put(
        &app,
        &Url::Admin,
        POP,
        json!({"mode": "updatePOPStatus", "popAccessEnabled": true}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.more_info().contains("accountId"), "{}", r.body);
    assert_eq!(audit_count(&app), before);
    assert_eq!(
        flags(&account(&app, REBECCA).await),
        (json!(false), json!(false))
    );
}

async fn order(c: &Client) -> Vec<(String, u64)> {
    c.accounts()
        .await
        .unwrap()
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["accountId"].as_str().unwrap().to_string(),
                a["sequence"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn account_order_rules() {
    for url in [Url::Admin, Url::User] {
        let app = TestApp::demo();
        let r = put(
            &app,
            &url,
            REBECCA,
            json!({"mode": "mailaccountorderupdate", "accList": [IMAP]}),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            order(&app.user()).await,
            vec![(IMAP.into(), 1), (REBECCA.into(), 2), (POP.into(), 3)]
        );
        // Any of the user's accounts may be the one in the path.
        let r = put(&app, &url, POP, json!({"mode": "mailaccountorderupdate", "accList": [REBECCA.parse::<u64>().unwrap(), POP]})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(
            order(&app.user()).await,
            vec![(REBECCA.into(), 1), (POP.into(), 2), (IMAP.into(), 3)]
        );
        let before = app.snapshot();
        for bad in [
            json!(format!("{POP},{POP}")),
            json!([POP, "2999999999999999999"]),
            json!("abc"),
            json!([]),
        ] {
            let r = put(
                &app,
                &url,
                REBECCA,
                json!({"mode": "mailaccountorderupdate", "accList": bad.clone()}),
            )
            .await;
            assert_eq!(r.status, 400, "{bad}");
            assert!(r.more_info().contains("accList"), "{}", r.more_info());
        }
        assert_eq!(app.snapshot(), before);
    }
}

async fn external_accounts_take_only_the_order_mode() {
    let app = TestApp::demo();
    let r = put(
        &app,
        &Url::User,
        POP,
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.more_info().contains("external"), "{}", r.more_info());
}

async fn every_success_writes_one_audit_row_and_failures_none() {
    let app = TestApp::demo();
    let start = audit_count(&app);
    let bodies = [
        json!({"mode": "addsendmaildetails", "sendMailDetails": [extfrom("a@example.net")]}),
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
        json!({"mode": "disableMailAccount"}),
        json!({"mode": "enableMailAccount"}),
        json!({"mode": "mailaccountorderupdate", "accList": IMAP}),
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
    ];
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(put(&app, &Url::User, REBECCA, b.clone()).await.status, 200);
        assert_eq!(audit_count(&app), start + i + 1);
    }
    assert_eq!(
        put(
            &app,
            &Url::User,
            REBECCA,
            json!({"mode": "emailupdate", "emailAddress": "admin@zylker.com"})
        )
        .await
        .status,
        409
    );
    assert_eq!(audit_count(&app), start + bodies.len());
    let row = app.query("SELECT mode || ' ' || actor_zuid || ' ' || account_id || ' ' || client_addr || ' ' || before || ' ' || after || ' ' || length(request_id) FROM audit ORDER BY id DESC LIMIT 1");
    assert_eq!(
        row[0],
        format!(
            r#"updateOutgoingStatus {REBECCA_ZUID} {REBECCA} 127.0.0.1 {{"outgoingBlocked":false}} {{"outgoingBlocked":true}} 16"#
        )
    );
}

async fn relays_at_internal_addresses_are_refused_unless_allowed() {
    let relay = |host: &str| {
        let mut d = extfrom("relay@example.net");
        d["serverName"] = json!(host);
        json!({"mode": "addsendmaildetails", "sendMailDetails": [d]})
    };
    let app = TestApp::demo();
    let before = app.snapshot();
    for host in [
        "127.0.0.1",
        "10.0.0.5",
        "192.168.1.10",
        "169.254.169.254",
        "[::1]",
        "fd12::1",
        "::ffff:10.1.1.1",
    ] {
        let r = put(&app, &Url::User, REBECCA, relay(host)).await;
        assert_eq!((r.status, r.error_code()), (400, "INVALID_VALUE"), "{host}");
        assert!(r.more_info().contains("serverName"), "{}", r.more_info());
    }
    assert_eq!(app.snapshot(), before);
    for host in ["smtp.example.net", "203.0.113.7", "8.8.8.8"] {
        // 203.0.113.0/24 is documentation space: refused as well.
        let r = put(&app, &Url::User, REBECCA, relay(host)).await;
        let want = if host == "203.0.113.7" { 400 } else { 200 };
        assert_eq!(r.status, want, "{host}");
    }
    // The operator may allow internal relays (a relay on the same network).
    let allowed = TestApp::demo_on(Db::fresh(), &["--allow-internal-relays"]);
    let r = put(&allowed, &Url::Admin, REBECCA, relay("127.0.0.1")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

// ---- addEmailAlias, deleteEmailAlias, resetPassword: the admin URL with a zuid ----

/// A PUT on the admin URL of the demo organization, the path naming `id` (a zuid for the
/// modes that take one).
async fn admin_put_to(app: &TestApp, id: &str, body: Value) -> Reply {
    app.admin()
        .update_org_account(ZOID, id, &body)
        .await
        .unwrap()
}

fn add_aliases(list: Value) -> Value {
    json!({"mode": "addEmailAlias", "emailAlias": list})
}

/// Rebecca's addresses, from a read of her account: (address, is primary), sorted.
async fn addresses_of_rebecca(app: &TestApp) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = account(app, REBECCA).await["emailAddress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mailId"].as_str().unwrap().to_string(),
                m["isPrimary"].as_bool().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The `addEmailAlias` answer: one object per alias, in the order given, its key the
/// address and its value the id as a string of digits.
fn added_ids(r: &Reply, want: &[&str]) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["status"],
        json!({"code": 200, "description": "success"})
    );
    let data = r.data().as_array().expect("data is an array");
    assert_eq!(data.len(), want.len(), "{}", r.body);
    data.iter()
        .zip(want)
        .map(|(item, address)| {
            let obj = item.as_object().expect("one object per alias");
            assert_eq!(obj.len(), 1, "{item}");
            let id = obj[*address].as_str().expect("the id is a string");
            assert!(
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
                "{id}"
            );
            id.to_string()
        })
        .collect()
}

async fn email_aliases_are_added_through_the_users_zuid() {
    let app = TestApp::demo();
    let r = admin_put_to(
        &app,
        REBECCA_ZUID,
        add_aliases(json!(["rebecca.desk@zylker.com", "Sales@Zylker.com"])),
    )
    .await;
    let ids = added_ids(&r, &["rebecca.desk@zylker.com", "sales@zylker.com"]);
    assert_ne!(ids[0], ids[1]);
    // One address as a plain string, and the body's zuid when it is the path's.
    let r = admin_put_to(
        &app,
        REBECCA_ZUID,
        json!({"mode": "addEmailAlias", "emailAlias": "r3@zylker.com", "zuid": REBECCA_ZUID}),
    )
    .await;
    added_ids(&r, &["r3@zylker.com"]);
    assert_eq!(
        addresses_of_rebecca(&app).await,
        [
            ("becky@zylker.com".to_string(), true),
            ("r3@zylker.com".to_string(), false),
            ("rebecca.desk@zylker.com".to_string(), false),
            ("sales@zylker.com".to_string(), false),
        ]
    );
    let audit = app.query(
        "SELECT mode || ' ' || CAST(account_id AS TEXT) || ' ' || before || ' ' || after FROM audit ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(
        audit,
        [format!(
            r#"addEmailAlias {REBECCA} {{"emailAlias":[]}} {{"emailAlias":["r3@zylker.com"]}}"#
        )]
    );

    // The path names a user: her account id there is no zuid, nor is a user of another
    // organization within reach. Both answer as an absent user, naming the zuid only.
    let b = app.bootstrap("Other", "other.example", "boss@other.example");
    let boss = id_text(&b["zuid"]);
    let member = app.token(REBECCA_ZUID, "ZohoMail.organization.accounts.ALL");
    let before = app.snapshot();
    for id in [REBECCA, boss.as_str(), "70000999"] {
        let r = admin_put_to(&app, id, add_aliases(json!(["x@zylker.com"]))).await;
        assert_eq!((r.status, r.error_code()), (404, "NOT_FOUND"), "{id}");
        assert_eq!(r.more_info(), format!("zuid {id} was not found"));
    }
    // Under the other organization's URL, Rebecca is out of reach too.
    let r = app
        .admin()
        .update_org_account(
            &id_text(&b["zoid"]),
            REBECCA_ZUID,
            &add_aliases(json!(["x@zylker.com"])),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    // Not on her own URL, with either id; not for a member on the admin URL.
    for id in [REBECCA, REBECCA_ZUID] {
        let r = app
            .user()
            .update_account(id, &add_aliases(json!(["x@zylker.com"])))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.error_code()),
            (403, "NO_PERMISSION"),
            "{}",
            r.body
        );
    }
    let r = app
        .client(Some(&member))
        .update_org_account(ZOID, REBECCA_ZUID, &add_aliases(json!(["x@zylker.com"])))
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    // A body zuid other than the path's.
    let r = admin_put_to(
        &app,
        REBECCA_ZUID,
        json!({"mode": "addEmailAlias", "emailAlias": ["x@zylker.com"], "zuid": boss}),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (400, "INVALID_VALUE"));
    assert!(r.more_info().contains("zuid"), "{}", r.more_info());
    assert_eq!(app.snapshot(), before);
}

async fn email_alias_refusals_name_the_field() {
    let app = TestApp::demo();
    let b = app.bootstrap("Other", "other.example", "boss@other.example");
    let before = app.snapshot();
    let refused = |list: Value| {
        let app = &app;
        async move { admin_put_to(app, REBECCA_ZUID, add_aliases(list)).await }
    };
    for (list, status, code, says) in [
        (
            json!(["r@example.com"]),
            400,
            "INVALID_VALUE",
            "organization's domains",
        ),
        (
            json!(["r1@zylker.com", "R1@zylker.com"]),
            400,
            "INVALID_VALUE",
            "more than once",
        ),
        (json!([]), 400, "LESS_THAN_MIN_OCCURANCE", "emailAlias"),
        (
            json!(["not an address"]),
            400,
            "PATTERN_NOT_MATCHED",
            "email address",
        ),
        (json!(42), 400, "PATTERN_NOT_MATCHED", "array"),
        (
            json!(["becky@zylker.com"]),
            409,
            "ALREADY_EXISTS",
            "already an address of this account",
        ),
        (
            json!(["admin@zylker.com"]),
            409,
            "ALREADY_EXISTS",
            "already belongs to another account",
        ),
    ] {
        let r = refused(list.clone()).await;
        assert_alias_refusal(&r, &list, (status, code), says);
    }
    let r = admin_put_to(&app, REBECCA_ZUID, json!({"mode": "addEmailAlias"})).await;
    assert_eq!((r.status, r.error_code()), (400, "LESS_THAN_MIN_OCCURANCE"));
    // Another organization's domain: refused for the domain, the same whether that
    // organization has the address or not.
    let held = refused(json!(["boss@other.example"])).await;
    let absent = refused(json!(["nobody@other.example"])).await;
    assert_eq!((held.status, held.error_code()), (400, "INVALID_VALUE"));
    assert_eq!(
        held.more_info().replace("boss@", "nobody@"),
        absent.more_info()
    );
    assert_eq!(app.snapshot(), before, "no refusal changed anything");
    // An address of the demo domain that an account of the other organization holds (the
    // API cannot make one; a fixture can): a conflict like any other, naming nobody.
    app.execute(&format!(
        "INSERT INTO addresses (address, account_id, is_primary) VALUES ('planted@zylker.com', {}, FALSE)",
        id_text(&b["accountId"])
    ));
    let planted_before = app.snapshot();
    let r = refused(json!(["planted@zylker.com"])).await;
    assert_eq!(
        (r.status, r.error_code()),
        (409, "ALREADY_EXISTS"),
        "{}",
        r.body
    );
    assert_eq!(
        r.more_info(),
        "emailAlias planted@zylker.com already belongs to another account"
    );
    assert_eq!(app.snapshot(), planted_before);
}

/// At most 50 addresses per account, the primary included: `addEmailAlias` stops there, and
/// so does `emailupdate` with an address the account does not have (the old primary
/// stays as an alias), while making one of its aliases the primary still works.
async fn at_most_fifty_addresses_through_either_mode() {
    let app = TestApp::demo();
    let many: Vec<String> = (0..51).map(|i| format!("a{i}@zylker.com")).collect();
    let r = admin_put_to(&app, REBECCA_ZUID, add_aliases(json!(many))).await;
    assert_eq!((r.status, r.error_code()), (400, "PATTERN_NOT_MATCHED"));
    let r = admin_put_to(&app, REBECCA_ZUID, add_aliases(json!(many[..49]))).await;
    let names: Vec<&str> = many[..49].iter().map(String::as_str).collect();
    added_ids(&r, &names);
    assert_eq!(addresses_of_rebecca(&app).await.len(), 50);
    let before = app.snapshot();
    let r = admin_put_to(
        &app,
        REBECCA_ZUID,
        add_aliases(json!(["one-more@zylker.com"])),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (400, "INVALID_VALUE"));
    assert!(
        r.more_info().contains("emailAlias") && r.more_info().contains("50"),
        "{}",
        r.more_info()
    );
    let r = put(
        &app,
        &Url::User,
        REBECCA,
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (400, "INVALID_VALUE"));
    assert!(
        r.more_info().contains("emailAddress") && r.more_info().contains("50"),
        "{}",
        r.more_info()
    );
    assert_eq!(app.snapshot(), before);
    let r = put(
        &app,
        &Url::User,
        REBECCA,
        json!({"mode": "emailupdate", "emailAddress": "a7@zylker.com"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        account(&app, REBECCA).await["primaryEmailAddress"],
        "a7@zylker.com"
    );
}

fn delete_aliases(list: Value) -> Value {
    json!({"mode": "deleteEmailAlias", "emailAlias": list})
}

async fn email_aliases_are_deleted_through_the_users_zuid() {
    let app = TestApp::demo();
    let r = admin_put_to(
        &app,
        REBECCA_ZUID,
        add_aliases(json!(["a1@zylker.com", "a2@zylker.com", "a3@zylker.com"])),
    )
    .await;
    added_ids(&r, &["a1@zylker.com", "a2@zylker.com", "a3@zylker.com"]);
    // Rebecca may send as a1 through an identity of her own.
    add_identity(
        &app,
        json!({"fromAddress": "a1@zylker.com", "displayName": "A1", "mode": "alias"}),
    )
    .await;
    let r = admin_put_to(
        &app,
        REBECCA_ZUID,
        delete_aliases(json!(["A1@zylker.com", "a2@zylker.com"])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"status": {"code": 200, "description": "success"}}),
        "the status only"
    );
    assert_eq!(
        addresses_of_rebecca(&app).await,
        [
            ("a3@zylker.com".to_string(), false),
            ("becky@zylker.com".to_string(), true)
        ]
    );
    // The identity of the deleted alias went with it.
    assert_eq!(
        identity_addresses(&account(&app, REBECCA).await),
        vec!["becky@zylker.com"]
    );
    let audit = app
        .query("SELECT mode || ' ' || before || ' ' || after FROM audit ORDER BY id DESC LIMIT 1");
    assert!(
        audit[0].starts_with(r#"deleteEmailAlias {"emailAlias":["a1@zylker.com","a2@zylker.com"],"sendMailDetails":[{"#),
        "{audit:?}"
    );
    assert!(
        audit[0].ends_with(r#" {"emailAlias":[],"sendMailDetails":[]}"#),
        "{audit:?}"
    );

    // Refusals, each naming emailAlias, none changing anything.
    let before = app.snapshot();
    for (list, status, code, says) in [
        (
            json!(["becky@zylker.com"]),
            400,
            "INVALID_VALUE",
            "primary address",
        ),
        (
            json!(["admin@zylker.com"]),
            400,
            "INVALID_VALUE",
            "not an alias of this account",
        ),
        (
            json!(["nobody@zylker.com"]),
            400,
            "INVALID_VALUE",
            "not an alias of this account",
        ),
        (
            json!(["a3@zylker.com", "becky@zylker.com"]),
            400,
            "INVALID_VALUE",
            "primary address",
        ),
        (
            json!(["a3@zylker.com", "A3@zylker.com"]),
            400,
            "INVALID_VALUE",
            "more than once",
        ),
        (json!([]), 400, "LESS_THAN_MIN_OCCURANCE", "emailAlias"),
    ] {
        let r = admin_put_to(&app, REBECCA_ZUID, delete_aliases(list.clone())).await;
        assert_alias_refusal(&r, &list, (status, code), says);
    }
    let r = admin_put_to(&app, REBECCA, delete_aliases(json!(["a3@zylker.com"]))).await;
    assert_eq!((r.status, r.error_code()), (404, "NOT_FOUND"));
    assert_eq!(r.more_info(), format!("zuid {REBECCA} was not found"));
    let r = app
        .user()
        .update_account(REBECCA, &delete_aliases(json!(["a3@zylker.com"])))
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (403, "NO_PERMISSION"));
    assert_eq!(app.snapshot(), before);

    // After emailupdate the old primary is an alias holding her only mailbox identity: it
    // stays until the new primary has one.
    let r = put(
        &app,
        &Url::Admin,
        REBECCA,
        json!({"mode": "emailupdate", "emailAddress": "a3@zylker.com"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin_put_to(
        &app,
        REBECCA_ZUID,
        delete_aliases(json!(["becky@zylker.com"])),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "INVALID_VALUE"),
        "{}",
        r.body
    );
    assert!(r.more_info().contains("last"), "{}", r.more_info());
    add_identity(&app, json!({"displayName": "Rebecca", "mode": "mailbox"})).await;
    let r = admin_put_to(
        &app,
        REBECCA_ZUID,
        delete_aliases(json!("becky@zylker.com")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        addresses_of_rebecca(&app).await,
        [("a3@zylker.com".to_string(), true)]
    );
    assert_eq!(
        identity_addresses(&account(&app, REBECCA).await),
        vec!["a3@zylker.com"]
    );
}

async fn reset_password_through_the_users_zuid_and_its_refusals() {
    let app = TestApp::demo();
    let hash = |app: &TestApp| {
        app.query(&format!(
            "SELECT COALESCE(password_hash, 'none') FROM users WHERE zuid = {REBECCA_ZUID}"
        ))[0]
            .clone()
    };
    let before_hash = hash(&app);
    let r = admin_put_to(
        &app,
        REBECCA_ZUID,
        json!({"mode": "resetPassword", "password": "Rebecca-pass-1", "resetAuthToken": false, "zuid": REBECCA_ZUID}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"status": {"code": 200, "description": "success"}})
    );
    let set = hash(&app);
    assert!(set.starts_with("$argon2id$") && set != before_hash, "{set}");
    assert_eq!(account(&app, REBECCA).await["oneTimePassword"], false);
    // Her own token was kept.
    assert_eq!(app.user().accounts().await.unwrap().status, 200);

    let before = app.snapshot();
    let reset = |extra: Value| {
        let mut body = json!({"mode": "resetPassword", "password": "Rebecca-pass-2"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, status, code, field) in [
        (
            json!({"password": "short-7"}),
            400,
            "PATTERN_NOT_MATCHED",
            "password",
        ),
        (
            json!({"password": "x".repeat(257)}),
            400,
            "PATTERN_NOT_MATCHED",
            "password",
        ),
        (
            json!({"password": 12345678}),
            400,
            "PATTERN_NOT_MATCHED",
            "password",
        ),
        (
            json!({"password": null}),
            400,
            "LESS_THAN_MIN_OCCURANCE",
            "password",
        ),
        (
            json!({"resetAuthToken": true, "resetAuthtoken": false}),
            400,
            "PATTERN_NOT_MATCHED",
            "resetAuthtoken",
        ),
        (
            json!({"resetAuthToken": "yes"}),
            400,
            "PATTERN_NOT_MATCHED",
            "resetAuthToken",
        ),
        (
            json!({"oneTimePassword": 1}),
            400,
            "PATTERN_NOT_MATCHED",
            "oneTimePassword",
        ),
        (
            json!({"resetAuthTokens": true}),
            404,
            "EXTRA_KEY_FOUND_IN_JSON",
            "resetAuthTokens",
        ),
    ] {
        let r = admin_put_to(&app, REBECCA_ZUID, reset(extra.clone())).await;
        assert_eq!(
            (r.status, r.error_code()),
            (status, code),
            "{extra}: {}",
            r.body
        );
        assert!(r.more_info().contains(field), "{extra}: {}", r.more_info());
        assert!(!r.body.to_string().contains("short-7"), "{}", r.body);
    }
    assert_eq!(app.snapshot(), before);
    // The path names a user: her account id is none; nor is another organization's user
    // in reach. The password is never in the answer.
    let b = app.bootstrap("Other", "other.example", "boss@other.example");
    let before_other = app.snapshot();
    for id in [REBECCA.to_string(), id_text(&b["zuid"])] {
        let r = admin_put_to(&app, &id, reset(json!({}))).await;
        assert_eq!((r.status, r.error_code()), (404, "NOT_FOUND"), "{}", r.body);
        assert_eq!(r.more_info(), format!("zuid {id} was not found"));
    }
    let r = app
        .user()
        .update_account(REBECCA, &reset(json!({})))
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (403, "NO_PERMISSION"));
    assert_eq!(app.snapshot(), before_other);
    assert_eq!(hash(&app), set, "no refusal changed the password");
}

/// An `emailAlias` refusal: its status and error code, and `moreInfo` naming the field and
/// saying `says`.
fn assert_alias_refusal(r: &Reply, list: &Value, (status, code): (u16, &str), says: &str) {
    assert_eq!(
        (r.status, r.error_code()),
        (status, code),
        "{list}: {}",
        r.body
    );
    assert!(
        r.more_info().contains("emailAlias"),
        "{list}: {}",
        r.more_info()
    );
    assert!(r.more_info().contains(says), "{list}: {}", r.more_info());
}

/// The last audit row: (mode, actor zuid, before, after).
fn last_audit(app: &TestApp) -> (String, String, Value, Value) {
    let row = &app.query_rows(
        "SELECT mode, CAST(actor_zuid AS TEXT), before, after FROM audit ORDER BY id DESC LIMIT 1",
    )[0];
    (
        row[0].clone(),
        row[1].clone(),
        serde_json::from_str(&row[2]).unwrap(),
        serde_json::from_str(&row[3]).unwrap(),
    )
}

/// `updatePersonalInfo` sets the names given and keeps the others, on Rebecca's own URL
/// and on the admin URL (Zoho's body: `zuid` as a string); each change audited with the
/// names before and after. No name at all, or one too long, is a 400 that writes nothing.
async fn personal_info_under_both_urls_and_its_refusals() {
    let app = TestApp::demo();
    let names = |a: &Value| {
        (
            a["firstName"].clone(),
            a["lastName"].clone(),
            a["displayName"].clone(),
        )
    };
    let before = names(&account(&app, REBECCA).await);
    let r = put(
        &app,
        &Url::User,
        REBECCA,
        json!({"mode": "updatePersonalInfo", "firstName": "Becky"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"status": {"code": 200, "description": "success"}})
    );
    let a = account(&app, REBECCA).await;
    assert_eq!(
        names(&a),
        (json!("Becky"), before.1.clone(), before.2.clone())
    );
    let (mode, actor, was, now) = last_audit(&app);
    assert_eq!(
        (mode.as_str(), actor.as_str()),
        ("updatePersonalInfo", REBECCA_ZUID)
    );
    assert_eq!(
        (was, now),
        (
            json!({"firstName": before.0}),
            json!({"firstName": "Becky"})
        )
    );

    let body = json!({"zuid": REBECCA_ZUID, "mode": "updatePersonalInfo", "lastName": "Anderson", "displayName": "Rebecca Anderson"});
    let r = put(&app, &Url::Admin, REBECCA, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = account(&app, REBECCA).await;
    assert_eq!(
        names(&a),
        (json!("Becky"), json!("Anderson"), json!("Rebecca Anderson"))
    );
    assert_eq!(a["accountDisplayName"], "Rebecca Anderson");
    let (mode, actor, _, now) = last_audit(&app);
    assert_eq!(mode, "updatePersonalInfo");
    assert_ne!(actor, REBECCA_ZUID, "the admin did it");
    assert_eq!(
        now,
        json!({"lastName": "Anderson", "displayName": "Rebecca Anderson"})
    );

    let rows = audit_count(&app);
    for url in [Url::User, Url::Admin] {
        for (body, status, code, says) in [
            (
                json!({"mode": "updatePersonalInfo"}),
                400,
                "LESS_THAN_MIN_OCCURANCE",
                "one of firstName, lastName, displayName is mandatory",
            ),
            (
                json!({"mode": "updatePersonalInfo", "displayName": null}),
                400,
                "LESS_THAN_MIN_OCCURANCE",
                "one of firstName",
            ),
            (
                json!({"mode": "updatePersonalInfo", "displayName": "x".repeat(101)}),
                400,
                "PATTERN_NOT_MATCHED",
                "displayName must be a string of 1 to 100 characters",
            ),
            (
                json!({"mode": "updatePersonalInfo", "firstName": ""}),
                400,
                "PATTERN_NOT_MATCHED",
                "firstName",
            ),
            (
                json!({"mode": "updatePersonalInfo", "firstName": "A", "role": "admin"}),
                404,
                "EXTRA_KEY_FOUND_IN_JSON",
                "role",
            ),
        ] {
            let r = put(&app, &url, REBECCA, body.clone()).await;
            assert_eq!(
                (r.status, r.error_code()),
                (status, code),
                "{body}: {}",
                r.body
            );
            assert!(r.more_info().contains(says), "{body}: {}", r.body);
        }
    }
    assert_eq!(audit_count(&app), rows, "refusals write nothing");
    assert_eq!(
        names(&account(&app, REBECCA).await).2,
        json!("Rebecca Anderson")
    );
}

/// `displaynameemailupdate` with Zoho's sample bodies: the `mailbox` identity of the
/// address gets the display name (keeping its `sendMailId`), or is added for an alias
/// that had none; the address must be the account's own, whoever else has it.
async fn display_name_email_update_names_a_mailbox_identity() {
    let app = TestApp::demo();
    let identity = |a: &Value, address: &str| {
        a["sendMailDetails"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["fromAddress"] == address)
            .cloned()
    };
    let first = identity(&account(&app, REBECCA).await, "becky@zylker.com")
        .expect("the primary's identity");
    let body = json!({"zuid": REBECCA_ZUID, "mode": "displaynameemailupdate", "emailAddress": "becky@zylker.com", "displayName": "Rebecca Anderson"});
    let r = put(&app, &Url::Admin, REBECCA, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"status": {"code": 200, "description": "success"}})
    );
    let now = identity(&account(&app, REBECCA).await, "becky@zylker.com").unwrap();
    assert_eq!(
        (
            now["displayName"].clone(),
            now["mode"].clone(),
            now["sendMailId"].clone()
        ),
        (
            json!("Rebecca Anderson"),
            json!("mailbox"),
            first["sendMailId"].clone()
        )
    );
    let (mode, _, was, after) = last_audit(&app);
    assert_eq!(mode, "displaynameemailupdate");
    assert_eq!(was["displayName"], first["displayName"]);
    assert_eq!(
        after,
        json!({"fromAddress": "becky@zylker.com", "displayName": "Rebecca Anderson", "mode": "mailbox"})
    );

    // The user's own URL, an alias without an identity (Zoho's user sample has no zuid).
    let alias = json!({"mode": "addEmailAlias", "emailAlias": ["rebecca.alias@zylker.com"]});
    assert_eq!(
        put(&app, &Url::Admin, REBECCA_ZUID, alias).await.status,
        200
    );
    let body = json!({"mode": "displaynameemailupdate", "emailAddress": "Rebecca.Alias@zylker.com", "displayName": "Becky (alias)"});
    let r = put(&app, &Url::User, REBECCA, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let added = identity(&account(&app, REBECCA).await, "rebecca.alias@zylker.com").expect("added");
    assert_eq!(
        (added["mode"].clone(), added["displayName"].clone()),
        (json!("mailbox"), json!("Becky (alias)"))
    );

    let rows = audit_count(&app);
    for url in [Url::User, Url::Admin] {
        for (address, status, code, says) in [
            (
                "admin@zylker.com",
                400,
                "INVALID_VALUE",
                "emailAddress admin@zylker.com is not an address of this account",
            ),
            (
                "someone@example.com",
                400,
                "INVALID_VALUE",
                "is not an address of this account",
            ),
            ("not an address", 400, "PATTERN_NOT_MATCHED", "emailAddress"),
        ] {
            let body = json!({"mode": "displaynameemailupdate", "emailAddress": address, "displayName": "Spoof"});
            let r = put(&app, &url, REBECCA, body).await;
            assert_eq!(
                (r.status, r.error_code()),
                (status, code),
                "{address}: {}",
                r.body
            );
            assert!(r.more_info().contains(says), "{address}: {}", r.body);
        }
        let r = put(
            &app,
            &url,
            REBECCA,
            json!({"mode": "displaynameemailupdate", "emailAddress": "becky@zylker.com"}),
        )
        .await;
        assert_eq!((r.status, r.error_code()), (400, "LESS_THAN_MIN_OCCURANCE"));
        assert_eq!(r.more_info(), "displayName is mandatory");
    }
    assert_eq!(audit_count(&app), rows, "refusals write nothing");
    let admin = app
        .admin()
        .org_account(ZOID, "admin@zylker.com")
        .await
        .unwrap();
    assert!(
        identity(admin.data(), "admin@zylker.com").unwrap()["displayName"] != "Spoof",
        "the admin's identity is untouched"
    );
}

/// An attacker's view: Rebecca (a member), even with every scope, cannot rename another
/// user, make anyone send under a new name, or change a role; each answer is the one an
/// absent target or a refused role gets, and nothing changes.
async fn a_member_reaches_no_one_elses_names_or_roles() {
    let app = TestApp::demo();
    let admin = app
        .admin()
        .org_account(ZOID, "admin@zylker.com")
        .await
        .unwrap();
    let (admin_account, admin_zuid) = (
        id_text(&admin.data()["accountId"]),
        id_text(&admin.data()["zuid"]),
    );
    let everything = app.token(
        REBECCA_ZUID,
        "ZohoMail.organization.accounts.ALL,ZohoMail.accounts.ALL",
    );
    let rebecca = app.client(Some(&everything));
    let snapshot = app.data_snapshot();
    let bodies = [
        json!({"mode": "updatePersonalInfo", "displayName": "Pwned"}),
        json!({"mode": "displaynameemailupdate", "emailAddress": "admin@zylker.com", "displayName": "Pwned"}),
    ];
    for body in &bodies {
        // Her own URL form, another user's account: as if it did not exist.
        let r = rebecca.update_account(&admin_account, body).await.unwrap();
        assert_eq!(
            (r.status, r.error_code()),
            (404, "NOT_FOUND"),
            "{body}: {}",
            r.body
        );
        let missing = rebecca
            .update_account("2999999999999999999", body)
            .await
            .unwrap();
        assert_eq!(missing.status, 404);
        // The admin URL: not an admin.
        let r = rebecca
            .update_org_account(ZOID, &admin_account, body)
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.error_code()),
            (403, "NO_PERMISSION"),
            "{body}: {}",
            r.body
        );
    }
    for role in ["admin", "member"] {
        let body =
            json!({"mode": "changeRole", "userList": [admin_zuid, REBECCA_ZUID], "role": role});
        let r = rebecca.change_role(ZOID, &body).await.unwrap();
        assert_eq!(
            (r.status, r.error_code()),
            (403, "NO_PERMISSION"),
            "{}",
            r.body
        );
    }
    // Her own demo token (user scopes only) has no organization scope at all.
    let body = json!({"mode": "changeRole", "userList": [REBECCA_ZUID], "role": "admin"});
    let r = app.user().change_role(ZOID, &body).await.unwrap();
    assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHSCOPE"));
    assert_eq!(app.data_snapshot(), snapshot, "nothing changed");
}
