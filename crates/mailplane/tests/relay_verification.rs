//! Verifying send-as identities over HTTP, with real SMTP servers on loopback as the
//! relays users name: the key mailed to the address (through `--mail-submit`, a stand-in
//! SMTP server that keeps what it gets), the relay checked in the background and on
//! request, each outcome seen through the API, the socketmap and the policy service, the
//! schedule of re-checks, and one check per identity with two nodes.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::time::{Duration, Instant};

use common::policy_client::{assert_dunno, assert_refused, submission, Policy};
use common::relay::{FakeRelay, Hostile, HostileRelay, TestCa};
use common::socketmap_client::Socketmap;
use common::*;
use mailplane_client::Reply;
use reqwest::Method;
use serde_json::{json, Value};
use smtp::StandIn;

backend_tests!(
    an_address_is_confirmed_by_the_key_mailed_to_it_and_then_its_relay_is_used,
    every_outcome_of_a_relay_check_is_shown_and_enforced,
    a_relay_that_starts_failing_is_flipped_by_the_schedule_and_audited,
    an_admin_confirms_the_organizations_own_addresses_and_the_first_confirmation_wins;
    sqlite only: with_every_check_slot_taken_a_check_on_request_is_busy_and_changes_nothing;
    postgres only: with_two_nodes_each_identity_is_checked_once
);

const BECKY: &str = "becky@zylker.com";
const OUTSIDE: &str = "becky@outside.example";
const RELAY_USER: &str = "becky.relay";
const RELAY_PASSWORD: &str = "Relay-secret-77";
const KEY_SUBJECT: &str = "Confirm that becky@zylker.com may send mail as becky@outside.example";

/// A server that mails keys to `sink`, allows relays on loopback and trusts `ca`.
fn app_with(db: Db, sink: &StandIn, ca: &TestCa, extra: &[&str]) -> TestApp {
    let mut args = vec![
        "--mail-submit".to_string(),
        sink.addr(),
        "--allow-internal-relays".into(),
        "--relay-ca-file".into(),
        ca.pem_path().display().to_string(),
        "--relay-probe-timeout-secs".into(),
        "2".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestApp::demo_with_mail_listeners(db, &args)
}

/// An `extfrom` element for `from` through `host:port`.
fn extfrom(from: &str, host: &str, port: u16, connection: &str, password: &str) -> Value {
    json!({"fromAddress": from, "displayName": "Becky", "mode": "extfrom",
           "serverName": host, "serverPort": port, "userName": RELAY_USER,
           "password": password, "smtpConnection": connection})
}

/// Rebecca's identity for `from`, from a GET of her account.
async fn identity(app: &TestApp, from: &str) -> Value {
    let r = app.user().account(REBECCA).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"]["sendMailDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fromAddress"] == from)
        .cloned()
        .unwrap_or_else(|| panic!("no identity for {from}: {}", r.body))
}

/// The identity for `from` in an answer that lists the identities.
fn in_answer(answer: &Value, from: &str) -> Value {
    answer["data"]
        .as_array()
        .and_then(|list| list.iter().find(|i| i["fromAddress"] == from))
        .cloned()
        .unwrap_or_else(|| panic!("no identity for {from} in {answer}"))
}

/// Waits until the relay check of `from` has an outcome; the identity then.
async fn checked(app: &TestApp, from: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let i = identity(app, from).await;
        if i.get("validatedTime").is_some() {
            return i;
        }
        assert!(Instant::now() < deadline, "never checked: {i}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The key in the latest confirmation mail to `to`.
fn key_mailed_to(sink: &StandIn, to: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(m) = sink
            .messages()
            .into_iter()
            .rev()
            .find(|m| m.rcpt_to == [to.to_string()] && m.subject() == Some(KEY_SUBJECT))
        {
            assert_eq!(m.mail_from, "", "mailplane's own mail has the null sender");
            return m.confirmation_key();
        }
        assert!(Instant::now() < deadline, "no key mailed to {to}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn socketmap(app: &TestApp, map: &str, key: &str) -> String {
    let mut s = Socketmap::connect(app).await;
    s.lookup(map, key).await
}

async fn verify(app: &TestApp, body: Value) -> Reply {
    app.user().update_account(REBECCA, &body).await.unwrap()
}

/// The organization's audit rows, newest first.
async fn audit_rows(app: &TestApp) -> Vec<Value> {
    let r = app
        .admin()
        .send(
            Method::GET,
            &format!("/api/organization/{ZOID}/auditlog?limit=200"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().cloned().unwrap_or_default()
}

/// A 400 whose message names `field`.
fn refused_naming(r: &Reply, field: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.more_info().contains(field), "{}", r.body);
}

async fn an_address_is_confirmed_by_the_key_mailed_to_it_and_then_its_relay_is_used() {
    let (sink, ca) = (StandIn::start("submit", false), TestCa::new());
    let relay = FakeRelay::builder(RELAY_USER, RELAY_PASSWORD).start();
    let app = app_with(Db::fresh(), &sink, &ca, &[]);

    let added = user_put(
        &app,
        json!({"mode": "addsendmaildetails",
               "sendMailDetails": [extfrom(OUTSIDE, "127.0.0.1", relay.port(), "plain", RELAY_PASSWORD)]}),
    )
    .await;
    let new = in_answer(&added, OUTSIDE);
    assert_eq!(new["confirmationMail"], "sent", "{new}");
    assert_eq!(
        (
            &new["validated"],
            &new["validationState"],
            &new["ownerConfirmed"],
            &new["status"]
        ),
        (
            &json!(false),
            &json!("pending"),
            &json!(false),
            &json!(false)
        )
    );
    let id = id_text(&new["sendMailId"]);
    // The relay passes in the background; the owner is not confirmed yet, so nothing
    // counts: no route, and the policy service says why.
    let i = checked(&app, OUTSIDE).await;
    assert_eq!(
        (&i["validated"], &i["validationState"]),
        (&json!(false), &json!("pending"))
    );
    assert!(i.get("validationError").is_none(), "{i}");
    assert_eq!(relay.auths().len(), 1, "checked once");
    assert!(relay.messages().is_empty(), "a check sends no mail");
    assert_eq!(socketmap(&app, "relaycreds", OUTSIDE).await, "NOTFOUND ");
    let mut policy = Policy::connect(&app).await;
    let action = policy.ask(&submission(BECKY, OUTSIDE)).await;
    assert_refused(
        &action,
        "553",
        "the external server for this address is not verified yet",
    );

    // A wrong key, a missing one: refused, naming the key.
    let wrong = verify(&app, json!({"mode": "verifysendmaildetails", "sendMailId": id, "confirmKey": "AAAAAAAAAAAAAAAAAAAA"})).await;
    refused_naming(&wrong, "confirmKey");
    let none = verify(
        &app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id}),
    )
    .await;
    refused_naming(&none, "confirmKey");

    let key = key_mailed_to(&sink, OUTSIDE);
    let ok = user_put(
        &app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id, "confirmKey": key}),
    )
    .await;
    let i = in_answer(&ok, OUTSIDE);
    assert_eq!(
        (
            &i["validated"],
            &i["validationState"],
            &i["ownerConfirmed"],
            &i["status"]
        ),
        (
            &json!(true),
            &json!("validated"),
            &json!(true),
            &json!(true)
        ),
        "{i}"
    );
    // Single use.
    let again = verify(
        &app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id, "confirmKey": key}),
    )
    .await;
    assert_eq!(again.status, 400, "{}", again.body);

    // Now the mail server has it: the transport, the password, the sender.
    assert_eq!(
        socketmap(&app, "relaycreds", OUTSIDE).await,
        format!("OK {RELAY_USER}:{RELAY_PASSWORD}")
    );
    let action = policy.ask(&submission(BECKY, OUTSIDE)).await;
    assert_dunno(&action, "a verified identity");

    // Without a key, the relay is checked now and the answer says how it went.
    relay.reject_auth(true);
    let now = user_put(
        &app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id}),
    )
    .await;
    let i = in_answer(&now, OUTSIDE);
    assert_eq!(
        (&i["validated"], &i["validationState"]),
        (&json!(false), &json!("failed")),
        "{i}"
    );
    let error = i["validationError"].as_str().unwrap();
    assert!(error.starts_with("authentication failed: 535"), "{error}");
    let action = policy.ask(&submission(BECKY, OUTSIDE)).await;
    assert_refused(
        &action,
        "553",
        "failed verification: authentication failed: 535",
    );
    assert_eq!(socketmap(&app, "relaycreds", OUTSIDE).await, "NOTFOUND ");

    // Re-adding the identity starts over (the owner stays confirmed, no new key).
    relay.reject_auth(false);
    let mails = sink.messages().len();
    add_identity(
        &app,
        extfrom(OUTSIDE, "127.0.0.1", relay.port(), "plain", RELAY_PASSWORD),
    )
    .await;
    let i = checked(&app, OUTSIDE).await;
    assert_eq!(
        (&i["validated"], &i["ownerConfirmed"]),
        (&json!(true), &json!(true)),
        "{i}"
    );
    assert_eq!(
        sink.messages().len(),
        mails,
        "a confirmed owner gets no new key"
    );

    // The password and the key: in no answer, log line or audit row.
    let audit = Value::from(audit_rows(&app).await).to_string();
    for text in [audit, app.log(), identity(&app, OUTSIDE).await.to_string()] {
        assert!(!text.contains(RELAY_PASSWORD), "the relay password leaked");
        assert!(!text.contains(&key), "the key leaked");
    }
}

async fn every_outcome_of_a_relay_check_is_shown_and_enforced() {
    let (sink, ca) = (StandIn::start("submit", false), TestCa::new());
    let app = app_with(Db::fresh(), &sink, &ca, &[]);
    let leaf = ca.issue("localhost");
    let other = ca.issue("other.test");
    let good = |b: common::relay::RelayBuilder| b.start();
    let plain = good(FakeRelay::builder(RELAY_USER, RELAY_PASSWORD));
    let starttls = good(FakeRelay::builder(RELAY_USER, RELAY_PASSWORD).starttls(&leaf));
    let implicit = good(FakeRelay::builder(RELAY_USER, RELAY_PASSWORD).implicit_tls(&leaf));
    let wrong_name = good(FakeRelay::builder(RELAY_USER, RELAY_PASSWORD).starttls(&other));
    let rejecting = good(FakeRelay::builder(RELAY_USER, "another password"));
    let silent = HostileRelay::start(Hostile::Silent);
    let garbage = HostileRelay::start(Hostile::Garbage);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // (address, relay port, connection, expected state, what the error starts with)
    let cases: Vec<(&str, u16, &str, &str, &str)> = vec![
        (
            "plain@outside.example",
            plain.port(),
            "plain",
            "validated",
            "",
        ),
        (
            "starttls@outside.example",
            starttls.port(),
            "tls",
            "validated",
            "",
        ),
        (
            "implicit@outside.example",
            implicit.port(),
            "ssl",
            "validated",
            "",
        ),
        (
            "wrongname@outside.example",
            wrong_name.port(),
            "tls",
            "failed",
            "certificate not trusted",
        ),
        (
            "rejected@outside.example",
            rejecting.port(),
            "plain",
            "failed",
            "authentication failed: 535",
        ),
        (
            "silent@outside.example",
            silent.addr().port(),
            "plain",
            "failed",
            "timed out after 2 s",
        ),
        (
            "garbage@outside.example",
            garbage.addr().port(),
            "plain",
            "failed",
            "not an SMTP server",
        ),
        (
            "closed@outside.example",
            closed,
            "plain",
            "failed",
            "connection refused",
        ),
    ];
    let details: Vec<Value> = cases
        .iter()
        .map(|(from, port, conn, _, _)| extfrom(from, "localhost", *port, conn, RELAY_PASSWORD))
        .collect();
    user_put(
        &app,
        json!({"mode": "addsendmaildetails", "sendMailDetails": details}),
    )
    .await;
    for (from, _, _, state, error) in &cases {
        let i = checked(&app, from).await;
        assert_eq!(
            i["validationState"],
            if *state == "validated" {
                "pending"
            } else {
                "failed"
            },
            "{from}: {i}"
        );
        let said = i["validationError"].as_str().unwrap_or("");
        assert!(
            said.starts_with(error),
            "{from}: {said:?} does not start with {error:?}"
        );
        assert!(!said.contains(RELAY_PASSWORD));
        assert!(said.len() <= 300);
    }
    // The passing relays were used with TLS as asked, the name sent.
    assert!(starttls.auths().iter().all(|a| a.in_tls) && !starttls.auths().is_empty());
    assert!(implicit.auths().iter().all(|a| a.in_tls) && !implicit.auths().is_empty());
    assert!(
        wrong_name.auths().is_empty(),
        "no AUTH to a server whose certificate is wrong"
    );
    assert_eq!(starttls.server_names(), vec![Some("localhost".to_string())]);
}

async fn a_relay_that_starts_failing_is_flipped_by_the_schedule_and_audited() {
    let (sink, ca) = (StandIn::start("submit", false), TestCa::new());
    let relay = FakeRelay::builder(RELAY_USER, RELAY_PASSWORD).start();
    // About two seconds between checks.
    let app = app_with(
        Db::fresh(),
        &sink,
        &ca,
        &["--relay-recheck-hours", "0.0006"],
    );
    add_identity(
        &app,
        extfrom(OUTSIDE, "127.0.0.1", relay.port(), "plain", RELAY_PASSWORD),
    )
    .await;
    let id = id_text(&identity(&app, OUTSIDE).await["sendMailId"]);
    let key = key_mailed_to(&sink, OUTSIDE);
    user_put(
        &app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id, "confirmKey": key}),
    )
    .await;
    let first = checked(&app, OUTSIDE).await;
    assert_eq!(first["validationState"], "validated", "{first}");
    // Checked again on its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    while relay.auths().len() < 2 {
        assert!(Instant::now() < deadline, "never checked again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.reject_auth(true);
    loop {
        let i = identity(&app, OUTSIDE).await;
        if i["validationState"] == "failed" {
            assert!(i["validationError"]
                .as_str()
                .unwrap()
                .starts_with("authentication failed: 535"));
            assert!(
                i["validatedTime"].as_i64().unwrap() > first["validatedTime"].as_i64().unwrap()
            );
            break;
        }
        assert!(Instant::now() < deadline, "never flipped: {i}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A failed relay is left for the user: no further checks.
    let n = relay.auths().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(relay.auths().len(), n);
    // The flip is the system's audit row.
    let rows = audit_rows(&app).await;
    let flip = rows
        .iter()
        .find(|e| {
            e["mode"] == "relaycheck"
                && e["after"]["sendMailDetails"][0]["validationState"] == "failed"
        })
        .unwrap_or_else(|| panic!("no relaycheck row: {rows:?}"));
    assert_eq!(
        flip["before"]["sendMailDetails"][0]["validationState"],
        "validated"
    );
    assert!(flip["actor"]["zuid"].is_null(), "{flip}");
}

async fn an_admin_confirms_the_organizations_own_addresses_and_the_first_confirmation_wins() {
    let (sink, ca) = (StandIn::start("submit", false), TestCa::new());
    let relay = FakeRelay::builder(RELAY_USER, RELAY_PASSWORD).start();
    let app = app_with(Db::fresh(), &sink, &ca, &[]);
    // The seed sample's address, in Zylker's own domain: the admin vouches for it.
    let own = "rebecca@zylker.com";
    add_identity(
        &app,
        extfrom(own, "127.0.0.1", relay.port(), "plain", RELAY_PASSWORD),
    )
    .await;
    let id = id_text(&identity(&app, own).await["sendMailId"]);
    let r = verify(
        &app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id}),
    )
    .await;
    assert_eq!(r.status, 400, "a member cannot vouch: {}", r.body);
    let done = admin_put(
        &app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id}),
    )
    .await;
    let i = in_answer(&done, own);
    assert_eq!(
        (&i["validated"], &i["ownerConfirmed"]),
        (&json!(true), &json!(true)),
        "{i}"
    );
    // Not for an address outside the organization's domains.
    add_identity(
        &app,
        extfrom(OUTSIDE, "127.0.0.1", relay.port(), "plain", RELAY_PASSWORD),
    )
    .await;
    let outside_id = id_text(&identity(&app, OUTSIDE).await["sendMailId"]);
    let r = app
        .admin()
        .update_org_account(
            ZOID,
            REBECCA,
            &json!({"mode": "verifysendmaildetails", "sendMailId": outside_id}),
        )
        .await
        .unwrap();
    refused_naming(&r, "confirmKey");

    // The admin's own account claims the same outside address: an unconfirmed claim
    // blocks nobody; once Rebecca confirms, the admin's confirmation is a conflict.
    let admin_account = app.admin().accounts().await.unwrap().body["data"][0]["accountId"].clone();
    let admin_account = id_text(&admin_account);
    let body = json!({"mode": "addsendmaildetails", "sendMailDetails": [extfrom(OUTSIDE, "127.0.0.1", relay.port(), "plain", RELAY_PASSWORD)]});
    let r = app
        .admin()
        .update_account(&admin_account, &body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let key = key_mailed_to(&sink, OUTSIDE);
    user_put(
        &app,
        json!({"mode": "verifysendmaildetails", "sendMailId": outside_id, "confirmKey": key}),
    )
    .await;
    // Even with the key mailed for its own claim, the admin's account comes second.
    let admin_key = sink
        .messages()
        .into_iter()
        .find(|m| {
            m.rcpt_to == [OUTSIDE.to_string()]
                && m.subject()
                    == Some("Confirm that admin@zylker.com may send mail as becky@outside.example")
        })
        .expect("a key for the admin's claim")
        .confirmation_key();
    let theirs = in_answer(&r.body, OUTSIDE);
    let r = app
        .admin()
        .update_account(&admin_account, &json!({"mode": "verifysendmaildetails", "sendMailId": id_text(&theirs["sendMailId"]), "confirmKey": admin_key}))
        .await
        .unwrap();
    assert_eq!(r.status, 409, "{}", r.body);
    let mut policy = Policy::connect(&app).await;
    let action = policy.ask(&submission("admin@zylker.com", OUTSIDE)).await;
    assert_refused(
        &action,
        "553",
        "is not one the account of admin@zylker.com may send as",
    );
}

async fn with_two_nodes_each_identity_is_checked_once() {
    let (sink, ca) = (StandIn::start("submit", false), TestCa::new());
    let relays: Vec<FakeRelay> = (0..6)
        .map(|_| FakeRelay::builder(RELAY_USER, RELAY_PASSWORD).start())
        .collect();
    let a = app_with(Db::fresh(), &sink, &ca, &[]);
    let b = a.second_node_with(&[
        "--mail-submit",
        &sink.addr(),
        "--allow-internal-relays",
        "--relay-ca-file",
        &ca.pem_path().display().to_string(),
    ]);
    let details: Vec<Value> = relays
        .iter()
        .enumerate()
        .map(|(n, r)| {
            extfrom(
                &format!("n{n}@outside.example"),
                "127.0.0.1",
                r.port(),
                "plain",
                RELAY_PASSWORD,
            )
        })
        .collect();
    user_put(
        &a,
        json!({"mode": "addsendmaildetails", "sendMailDetails": details}),
    )
    .await;
    for n in 0..relays.len() {
        checked(&b, &format!("n{n}@outside.example")).await;
    }
    // Both nodes poll every second: give them time to take a check twice if they could.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (n, r) in relays.iter().enumerate() {
        assert_eq!(
            r.connections(),
            1,
            "relay {n} was checked {} times",
            r.connections()
        );
    }
}

async fn with_every_check_slot_taken_a_check_on_request_is_busy_and_changes_nothing() {
    let (sink, ca) = (StandIn::start("submit", false), TestCa::new());
    // One slot; a relay that never answers holds it for the whole timeout (2 s).
    let silent = HostileRelay::start(Hostile::Silent);
    let app = app_with(Db::fresh(), &sink, &ca, &["--relay-check-slots", "1"]);
    let own = "rebecca@zylker.com";
    add_identity(
        &app,
        extfrom(
            own,
            "127.0.0.1",
            silent.addr().port(),
            "plain",
            RELAY_PASSWORD,
        ),
    )
    .await;
    let id = id_text(&identity(&app, own).await["sendMailId"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while silent.connections() == 0 {
        assert!(
            Instant::now() < deadline,
            "the background check never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The background check holds the slot: the admin's confirmation is refused, busy,
    // before anything changes.
    let r = app
        .admin()
        .update_org_account(
            ZOID,
            REBECCA,
            &json!({"mode": "verifysendmaildetails", "sendMailId": id}),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (503, "SERVER_BUSY"),
        "{}",
        r.body
    );
    assert_eq!(identity(&app, own).await["ownerConfirmed"], false);
    // Once the slot is free again, the same request goes through.
    checked(&app, own).await;
    let done = admin_put(
        &app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id}),
    )
    .await;
    assert_eq!(in_answer(&done, own)["ownerConfirmed"], true);
}
