//! Nobody sends as, or through, what is not theirs: the findings of the security review of
//! send-as identities, each reproduced against the real policy service and socketmap and
//! shown not to reproduce. The demo organization Zylker (Rebecca, `becky@zylker.com`) and
//! a second organization made with `bootstrap` play victim and attacker in turn.

mod common;

use common::policy_client::{assert_dunno, assert_refused, request, Policy};
use common::socketmap_client::{Socketmap, NOTFOUND};
use common::*;
use mailplane_client::Client;
use serde_json::{json, Value};

backend_tests!(
    an_address_in_another_organizations_domain_is_refused_alike_whether_it_exists_or_not,
    an_identity_whose_domain_another_organization_later_hosts_is_inert,
    an_identity_whose_address_becomes_a_colleagues_is_inert,
    an_external_address_is_its_confirmed_owners_and_later_claims_change_nothing,
    backupacc_is_pending_and_follows_the_same_rules,
    logged_in_senders_meet_the_recipient_rules_too,
);

const BECKY: &str = "becky@zylker.com";

/// A second organization on the same server, with its super admin's account and token.
struct Org {
    zoid: String,
    account: String,
    admin: Client,
}

fn bootstrap(app: &TestApp, name: &str, domain: &str, admin: &str) -> Org {
    let v = app.bootstrap(name, domain, admin);
    Org {
        zoid: id_text(&v["zoid"]),
        account: id_text(&v["accountId"]),
        admin: app.client(Some(v["accessToken"].as_str().expect("token"))),
    }
}

fn app() -> TestApp {
    TestApp::demo_with_postfix_listeners(&[])
}

fn extfrom(from: &str, server: &str, user: &str, password: &str) -> Value {
    json!({ "fromAddress": from, "displayName": "X", "mode": "extfrom", "serverName": server,
            "serverPort": 587, "userName": user, "password": password, "smtpConnection": "tls" })
}

fn add(detail: Value) -> Value {
    json!({"mode": "addsendmaildetails", "sendMailDetails": [detail]})
}

/// Rebecca adds one identity through her own URL; status and body.
async fn rebecca_adds(app: &TestApp, detail: Value) -> (u16, Value) {
    let r = app
        .user()
        .update_account(REBECCA, &add(detail))
        .await
        .unwrap();
    (r.status, r.body)
}

/// An organization's super admin adds an identity to their own account (admin URL).
async fn org_admin_adds(org: &Org, detail: Value) -> (u16, Value) {
    let r = org
        .admin
        .update_org_account(&org.zoid, &org.account, &add(detail))
        .await
        .unwrap();
    (r.status, r.body)
}

/// Rebecca's identity for `from`, as her account reads now.
async fn rebecca_identity(app: &TestApp, from: &str) -> Value {
    let r = app.user().account(REBECCA).await.unwrap();
    r.data()["sendMailDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fromAddress"] == from)
        .unwrap_or_else(|| panic!("no identity {from} in {}", r.body))
        .clone()
}

/// What the socketmap answers for `address` in each of its three maps.
async fn maps(app: &TestApp, address: &str) -> [String; 3] {
    let mut m = Socketmap::connect(app).await;
    [
        m.lookup("senderlogin", address).await,
        m.lookup("relayhost", address).await,
        m.lookup("relaycreds", address).await,
    ]
}

/// The policy service's action for mail from `login` with envelope sender `sender`.
async fn policy(app: &TestApp, login: &str, sender: &str, recipient: &str) -> String {
    let mut p = Policy::connect(app).await;
    p.ask(&request(&[
        ("sasl_method", "PLAIN"),
        ("sasl_username", login),
        ("sender", sender),
        ("recipient", recipient),
    ]))
    .await
}

fn more_info(body: &Value) -> String {
    body["data"]["moreInfo"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// Findings 1 and 7: claiming another organization's address, and learning whether it
// exists from the answer.
async fn an_address_in_another_organizations_domain_is_refused_alike_whether_it_exists_or_not() {
    let app = app();
    let _victim = bootstrap(&app, "Victim", "victim.example", "ceo@victim.example");
    let (s1, held) = rebecca_adds(
        &app,
        extfrom("ceo@victim.example", "8.8.8.8", "attacker", "attacker-pw"),
    )
    .await;
    let (s2, absent) = rebecca_adds(
        &app,
        extfrom(
            "nobody@victim.example",
            "8.8.8.8",
            "attacker",
            "attacker-pw",
        ),
    )
    .await;
    assert_eq!((s1, s2), (400, 400), "{held} {absent}");
    assert_eq!(held["data"]["errorCode"], absent["data"]["errorCode"]);
    assert_eq!(
        more_info(&held).replace("ceo@", "nobody@"),
        more_info(&absent),
        "the two refusals differ only in the address"
    );
    assert!(
        more_info(&held).contains("sendMailDetails[0].fromAddress"),
        "{held}"
    );
    assert!(!held.to_string().contains("attacker-pw"));
    // Nothing was stored: the victim's address has no relay and only its own login.
    assert_eq!(
        maps(&app, "ceo@victim.example").await,
        [
            "OK ceo@victim.example".to_string(),
            NOTFOUND.into(),
            NOTFOUND.into()
        ]
    );
    // The seed sample's own-domain identity still works verbatim.
    let (s, body) = rebecca_adds(
        &app,
        json!({"fromAddress": "rebecca@zylker.com", "displayName": "Rebecca", "mode": "extfrom",
               "serverPort": "465", "serverName": "mail.zoho.com", "userName": "rebecca@zylker.com",
               "password": "Smknel@88", "smtpConnection": "plain"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
}

// Finding 1, the other way round: the identity came first, the domain later.
async fn an_identity_whose_domain_another_organization_later_hosts_is_inert() {
    let app = app();
    let (s, body) = rebecca_adds(
        &app,
        extfrom("ceo@later.example", "8.8.8.8", "attacker", "attacker-pw"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    mark_verified(&app, "ceo@later.example");
    assert_eq!(
        maps(&app, "ceo@later.example").await,
        [
            format!("OK {BECKY}"),
            "OK [8.8.8.8]:587".into(),
            "OK attacker:attacker-pw".into()
        ],
        "before the domain is hosted here, the claim is Rebecca's alone"
    );
    // The organization that hosts the domain arrives; creating it is not blocked.
    let _later = bootstrap(&app, "Later", "later.example", "ceo@later.example");
    assert_eq!(
        maps(&app, "ceo@later.example").await,
        [
            "OK ceo@later.example".to_string(),
            NOTFOUND.into(),
            NOTFOUND.into()
        ],
        "the CEO's mail leaves by the default route and only the CEO may send as it"
    );
    assert_refused(
        &policy(&app, BECKY, "ceo@later.example", "friend@example.org").await,
        "553",
        "<ceo@later.example>",
    );
    let i = rebecca_identity(&app, "ceo@later.example").await;
    assert_eq!(i["status"], false, "{i}");
    assert!(
        i["statusReason"]
            .as_str()
            .unwrap()
            .contains("hosted by another organization"),
        "{i}"
    );
    // Another address of that domain, which nobody holds, is inert for Rebecca as well.
    let (s, _) = rebecca_adds(&app, extfrom("info@later.example", "8.8.8.8", "u", "p")).await;
    assert_eq!(s, 400);
}

// The same within one organization: an address claimed first, then given to a colleague.
async fn an_identity_whose_address_becomes_a_colleagues_is_inert() {
    let app = app();
    let (s, body) = rebecca_adds(&app, extfrom("sales@zylker.com", "8.8.8.8", "u", "pw")).await;
    assert_eq!(s, 200, "{body}");
    let created = app
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "sales@zylker.com", "password": "sales-pass-1",
                    "firstName": "Sam", "lastName": "Sales"}),
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        maps(&app, "sales@zylker.com").await,
        [
            "OK sales@zylker.com".to_string(),
            NOTFOUND.into(),
            NOTFOUND.into()
        ]
    );
    assert_refused(
        &policy(&app, BECKY, "sales@zylker.com", "friend@example.org").await,
        "553",
        "<sales@zylker.com>",
    );
    assert_dunno(
        &policy(
            &app,
            "sales@zylker.com",
            "sales@zylker.com",
            "friend@example.org",
        )
        .await,
        "the new holder sends as its own address",
    );
    let i = rebecca_identity(&app, "sales@zylker.com").await;
    assert_eq!(
        (i["status"].clone(), i["statusReason"].clone()),
        (
            json!(false),
            json!("the address now belongs to another account")
        )
    );
}

// Finding 2: somebody else's stored relay password. Only a confirmed claim counts, and
// the first to confirm an address has it: a later claim, however typed, changes nothing.
async fn an_external_address_is_its_confirmed_owners_and_later_claims_change_nothing() {
    let app = app();
    let other = bootstrap(&app, "Other", "other.example", "ceo@other.example");
    let shared = "rebecca@gmail.example";
    let (s, _) = rebecca_adds(&app, extfrom(shared, "8.8.8.8", "rebecca-relay", "real-pw")).await;
    assert_eq!(s, 200);
    // Unconfirmed, it is nobody's yet.
    assert_eq!(
        maps(&app, shared).await,
        [NOTFOUND.to_string(), NOTFOUND.into(), NOTFOUND.into()]
    );
    mark_verified(&app, shared);
    assert_eq!(
        maps(&app, shared).await,
        [
            format!("OK {BECKY}"),
            "OK [8.8.8.8]:587".into(),
            "OK rebecca-relay:real-pw".into()
        ]
    );
    // The other organization's admin claims the same address with junk relay details:
    // stored (an unconfirmed claim blocks nobody), and of no use to anyone.
    let (s, body) = org_admin_adds(&other, extfrom(shared, "9.9.9.9", "junk", "junk-pw")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        maps(&app, shared).await,
        [
            format!("OK {BECKY}"),
            "OK [8.8.8.8]:587".into(),
            "OK rebecca-relay:real-pw".into()
        ],
        "Rebecca's relay and password stay hers"
    );
    assert_dunno(
        &policy(&app, BECKY, shared, "friend@example.org").await,
        "the confirmed owner sends",
    );
    assert_refused(
        &policy(&app, "ceo@other.example", shared, "friend@example.org").await,
        "553",
        "is not one the account of ceo@other.example may send as",
    );
    let theirs = other.admin.account(&other.account).await.unwrap();
    let theirs = theirs.data()["sendMailDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fromAddress"] == shared)
        .cloned()
        .unwrap();
    assert_eq!(theirs["status"], false, "{theirs}");
    assert!(
        !theirs.to_string().contains("zylker"),
        "names nobody: {theirs}"
    );
    let audit = other
        .admin
        .send(
            reqwest::Method::GET,
            &format!("/api/organization/{}/auditlog", other.zoid),
            None,
        )
        .await
        .unwrap();
    assert!(!audit.body.to_string().contains("junk-pw"));
    // Rebecca's claim goes: the address is nobody's until the other account confirms it.
    user_put(
        &app,
        json!({"mode": "deletesendmaildetails", "fromAddress": shared}),
    )
    .await;
    assert_eq!(
        maps(&app, shared).await,
        [NOTFOUND.to_string(), NOTFOUND.into(), NOTFOUND.into()]
    );
}

// Finding 3: backup addresses were shown as validated and could name anyone's address.
async fn backupacc_is_pending_and_follows_the_same_rules() {
    let app = app();
    let _victim = bootstrap(&app, "Victim", "victim.example", "ceo@victim.example");
    let backup = |a: &str| json!({"fromAddress": a, "displayName": "B", "mode": "backupacc"});
    let (s, body) = rebecca_adds(&app, backup("postmaster@victim.example")).await;
    assert_eq!(s, 400, "{body}");
    assert!(more_info(&body).contains("hosted by another organization"));
    let (s, body) = rebecca_adds(&app, backup("security@bank.example")).await;
    assert_eq!(s, 200, "{body}");
    let i = rebecca_identity(&app, "security@bank.example").await;
    assert_eq!(
        (
            i["validated"].clone(),
            i["validationRequired"].clone(),
            i["validationState"].clone()
        ),
        (json!(false), json!(true), json!("pending")),
        "{i}"
    );
    // Until its owner confirms it, nobody may send as it, and the refusal says why.
    assert_refused(
        &policy(&app, BECKY, "security@bank.example", "friend@example.org").await,
        "553",
        "ownership of this address is not confirmed yet",
    );
    assert_eq!(
        maps(&app, "security@bank.example").await[0],
        NOTFOUND,
        "no login may use it"
    );
}

// Finding 6: a logged-in sender reached mailboxes that mail from outside cannot.
async fn logged_in_senders_meet_the_recipient_rules_too() {
    let app = app();
    let admin = "admin@zylker.com";
    assert_dunno(
        &policy(&app, admin, admin, BECKY).await,
        "open mailbox, logged-in sender",
    );
    admin_put(
        &app,
        json!({"mode": "updateIncomingStatus", "incomingBlocked": true}),
    )
    .await;
    assert_refused(
        &policy(&app, admin, admin, BECKY).await,
        "550",
        "Incoming mail is blocked",
    );
    admin_put(
        &app,
        json!({"mode": "updateIncomingStatus", "incomingBlocked": false}),
    )
    .await;
    admin_put(&app, json!({"mode": "disableMailAccount"})).await;
    assert_refused(&policy(&app, admin, admin, BECKY).await, "550", "disabled");
    // The sender's own refusal still comes first.
    assert_refused(
        &policy(&app, admin, "stranger@example.net", BECKY).await,
        "553",
        "<stranger@example.net>",
    );
}
