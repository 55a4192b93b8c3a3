//! Zoho's forwarding modes over HTTP, with Zoho's bodies: a new forward is confirmed only
//! with the key mailed to its target (through `--mail-submit`, here a stand-in SMTP
//! server that keeps what it gets), and the refusals around it. That Postfix then forwards
//! is in `mail_server.rs`.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use smtp::{Received, StandIn};

backend_tests!(
    forwards_are_confirmed_by_their_target;
    sqlite only: forwarding_needs_somewhere_to_mail_and_a_free_slot
);

const PAULA: &str = "paula@example.com";
const SUBJECT: &str = "Confirm forwarding of becky@zylker.com's mail to you";

/// The key of the latest confirmation mail to `to`: the line of its own in the body.
fn key_mailed_to(sink: &StandIn, to: &str, count: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mails: Vec<Received> = sink
            .messages()
            .into_iter()
            .filter(|m| m.rcpt_to == [to.to_string()])
            .collect();
        if mails.len() >= count {
            let m = &mails[count - 1];
            assert_eq!(m.subject(), Some(SUBJECT));
            assert_eq!(
                m.mail_from, "",
                "mailplane's own mail goes out with the null sender"
            );
            return m.confirmation_key();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no confirmation mail {count} to {to}: {:?}",
            sink.messages()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn forwards(app: &TestApp) -> Value {
    let r = app.user().account(REBECCA).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"]["mailForward"].clone()
}

async fn refused(app: &TestApp, body: Value, status: u16, code: &str, says: &str) {
    let r = app.user().update_account(REBECCA, &body).await.unwrap();
    assert_eq!(r.status, status, "{body}: {}", r.body);
    assert_eq!(r.error_code(), code, "{body}: {}", r.body);
    assert!(
        r.more_info().contains(says),
        "{body}: {:?} does not say {says:?}",
        r.more_info()
    );
}

async fn forwards_are_confirmed_by_their_target() {
    let sink = StandIn::start("submit", false);
    let addr = sink.addr();
    let app = TestApp::demo_on(Db::fresh(), &["--mail-submit", &addr]);

    // Zoho's sample body, on the user URL: the forward waits for its key.
    let added = user_put(
        &app,
        json!({"mode": "addMailForward", "mailForward": [{"mailForwardTo": PAULA}]}),
    )
    .await;
    assert_eq!(
        added["data"],
        json!([{"mailForwardTo": PAULA, "status": "UNCONFIRMED", "type": "external", "confirmationMail": "sent"}])
    );
    let key = key_mailed_to(&sink, PAULA, 1);
    assert_eq!(
        forwards(&app).await,
        json!([{"mailForwardTo": PAULA, "status": "UNCONFIRMED", "type": "external"}])
    );

    // Only the key mailed confirms, once; on the admin URL with a zuid as a string too.
    refused(
        &app,
        json!({"mode": "verifyMailForward", "mailForward": [{"mailForwardTo": PAULA, "confirmKey": "not-the-key"}]}),
        400,
        "INVALID_VALUE",
        "confirmKey is not the key mailed to paula@example.com",
    )
    .await;
    refused(
        &app,
        json!({"mode": "verifyMailForward", "mailForward": [{"mailForwardTo": PAULA}]}),
        400,
        "LESS_THAN_MIN_OCCURANCE",
        "mailForward[0].confirmKey",
    )
    .await;
    let verified = admin_put(
        &app,
        json!({"zuid": REBECCA_ZUID, "mode": "verifyMailForward", "mailForward": [{"mailForwardTo": PAULA, "confirmKey": key}]}),
    )
    .await;
    assert_eq!(verified["data"][0]["status"], "ENABLED");
    refused(
        &app,
        json!({"mode": "verifyMailForward", "mailForward": [{"mailForwardTo": PAULA, "confirmKey": key}]}),
        400,
        "INVALID_VALUE",
        "already confirmed",
    )
    .await;

    // Disable with Zoho's body (a reason in the element), enable again.
    let disabled = user_put(
        &app,
        json!({"mode": "disableMailForward", "mailForward": [{"mailForwardTo": PAULA, "reason": "Account to be deleted"}]}),
    )
    .await;
    assert_eq!(
        disabled["data"][0],
        json!({"mailForwardTo": PAULA, "status": "DISABLED", "type": "external", "disabledReason": "Account to be deleted"})
    );
    let enabled = user_put(
        &app,
        json!({"mode": "enableMailForward", "mailForward": {"mailForwardTo": PAULA}}),
    )
    .await;
    assert_eq!(enabled["data"][0]["status"], "ENABLED");

    // The plain string some clients send; an address of the organization is `internal`.
    let added = user_put(
        &app,
        json!({"mode": "addMailForward", "mailForward": "Team@Zylker.com"}),
    )
    .await;
    assert_eq!(added["data"][1]["mailForwardTo"], "team@zylker.com");
    assert_eq!(added["data"][1]["type"], "internal");
    let _ = key_mailed_to(&sink, "team@zylker.com", 1);

    // A new key waits a minute; for a confirmed forward there is none.
    refused(
        &app,
        json!({"mode": "resendMailForwardVerficationMail", "mailForward": [{"mailForwardTo": "team@zylker.com"}]}),
        400,
        "INVALID_VALUE",
        "less than a minute ago",
    )
    .await;
    refused(
        &app,
        json!({"mode": "resendMailForwardVerficationMail", "mailForward": [{"mailForwardTo": PAULA}]}),
        400,
        "INVALID_VALUE",
        "already confirmed",
    )
    .await;

    // Refusals, each naming the field.
    for (body, status, code, says) in [
        (
            json!({"mode": "addMailForward", "mailForward": [{"mailForwardTo": "not an address"}]}),
            400,
            "PATTERN_NOT_MATCHED",
            "mailForward[0].mailForwardTo",
        ),
        (
            json!({"mode": "addMailForward", "mailForward": [{"mailForwardTo": "Becky@zylker.com"}]}),
            400,
            "INVALID_VALUE",
            "an address of this account",
        ),
        (
            json!({"mode": "addMailForward", "mailForward": [{"mailForwardTo": PAULA}]}),
            409,
            "ALREADY_EXISTS",
            "already a forward",
        ),
        (
            json!({"mode": "addMailForward", "mailForward": [{"mailForwardTo": PAULA, "bcc": "x@example.com"}]}),
            404,
            "EXTRA_KEY_FOUND_IN_JSON",
            "mailForward[0].bcc",
        ),
        (
            json!({"mode": "addMailForward", "mailForward": []}),
            400,
            "LESS_THAN_MIN_OCCURANCE",
            "mailForward",
        ),
        (
            json!({"mode": "deleteMailForward", "mailForward": [{"mailForwardTo": "nobody@example.com"}]}),
            400,
            "INVALID_VALUE",
            "not a forward of this account",
        ),
        (
            json!({"mode": "deleteZohoMailCopy", "deleteCopy": "maybe"}),
            400,
            "PATTERN_NOT_MATCHED",
            "deleteCopy",
        ),
    ] {
        refused(&app, body, status, code, says).await;
    }

    // Keep no copy (Zoho's default), then keep one again.
    user_put(&app, json!({"mode": "deleteZohoMailCopy"})).await;
    let r = app.user().account(REBECCA).await.unwrap();
    assert_eq!(r.body["data"]["deleteZohoMailCopy"], true);
    user_put(
        &app,
        json!({"mode": "deleteZohoMailCopy", "deleteCopy": "false"}),
    )
    .await;
    let r = app.user().account(REBECCA).await.unwrap();
    assert_eq!(r.body["data"]["deleteZohoMailCopy"], false);

    // At most 10 forwards an account; the answer says so and adds none.
    let more: Vec<Value> = (0..8)
        .map(|i| json!({"mailForwardTo": format!("f{i}@example.net")}))
        .collect();
    user_put(&app, json!({"mode": "addMailForward", "mailForward": more})).await;
    refused(
        &app,
        json!({"mode": "addMailForward", "mailForward": "one.more@example.net"}),
        400,
        "INVALID_VALUE",
        "at most 10 forwards",
    )
    .await;
    assert_eq!(forwards(&app).await.as_array().unwrap().len(), 10);
    let deleted = user_put(
        &app,
        json!({"mode": "deleteMailForward", "mailForward": "f0@example.net,f1@example.net"}),
    )
    .await;
    assert_eq!(deleted["data"].as_array().unwrap().len(), 8);

    // Nobody reaches another's forwards: Rebecca's token on the admin's account, another
    // organization's admin on Rebecca's.
    let admin_account = app.admin().accounts().await.unwrap().body["data"][0]["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .user()
        .update_account(
            &admin_account,
            &json!({"mode": "addMailForward", "mailForward": "thief@example.com"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let v = app.bootstrap("Other", "other.example", "boss@other.example");
    let other = app.client(Some(v["accessToken"].as_str().unwrap()));
    let r = other
        .update_org_account(
            &id_text(&v["zoid"]),
            REBECCA,
            &json!({"mode": "addMailForward", "mailForward": "thief@example.com"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        sink.messages()
            .iter()
            .all(|m| m.rcpt_to != ["thief@example.com".to_string()]),
        "a refused request mailed nothing"
    );

    // The key is in no answer, no log line and no audit row.
    let audit = app
        .admin()
        .send(
            reqwest::Method::GET,
            &format!("/api/organization/{ZOID}/auditlog?limit=200"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(audit.status, 200, "{}", audit.body);
    let modes: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["mode"].as_str())
        .collect();
    for m in [
        "addMailForward",
        "verifyMailForward",
        "disableMailForward",
        "deleteZohoMailCopy",
    ] {
        assert!(modes.contains(&m), "no audit row of {m}: {modes:?}");
    }
    for text in [
        audit.body.to_string(),
        app.log(),
        forwards(&app).await.to_string(),
    ] {
        assert!(!text.contains(&key), "the key shows: {text}");
    }
}

async fn forwarding_needs_somewhere_to_mail_and_a_free_slot() {
    // No --mail-submit: the key could not be mailed, so nothing is added.
    let app = TestApp::demo();
    refused(
        &app,
        json!({"mode": "addMailForward", "mailForward": PAULA}),
        400,
        "INVALID_VALUE",
        "--mail-submit",
    )
    .await;
    assert_eq!(forwards(&app).await, json!([]));
    drop(app);

    // A mail server that accepts the connection and never answers, one slot: while the
    // first request waits on it, the next is answered busy at once, and changes nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let app = TestApp::demo_on(
        Db::fresh(),
        &[
            "--mail-submit",
            &silent_addr,
            "--mail-submit-slots",
            "1",
            "--mail-submit-timeout-ms",
            "3000",
        ],
    );
    let user = app.user();
    let first = tokio::spawn(async move {
        user.update_account(
            REBECCA,
            &json!({"mode": "addMailForward", "mailForward": PAULA}),
        )
        .await
        .unwrap()
    });
    // The first request holds the slot once its forward is stored.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while forwards(&app).await.as_array().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first forward never appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = app
        .user()
        .update_account(
            REBECCA,
            &json!({"mode": "addMailForward", "mailForward": "second@example.com"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.error_code(), "SERVER_BUSY");
    // The change is made and answered; the mail that could not go says why.
    let first = first.await.unwrap();
    assert_eq!(first.status, 200, "{}", first.body);
    let outcome = first.body["data"][0]["confirmationMail"].as_str().unwrap();
    assert!(outcome.starts_with("not sent:"), "{outcome}");
    assert_eq!(
        forwards(&app).await,
        json!([{"mailForwardTo": PAULA, "status": "UNCONFIRMED", "type": "external"}])
    );
    drop(silent);
}
