//! Every sample request of the five seed pages, sent byte for byte (only the host and the
//! token changed) against the demo organization, and its effect read back.

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

backend_tests!(
    add_send_mail_details_both_urls,
    email_update_both_urls,
    enable_mail_account_both_urls,
    mail_account_order_both_urls,
    update_outgoing_status_samples,
);

const ADD_ADMIN: &str = "{\n\"zuid\": 11111111,\n\"mode\": \"addsendmaildetails\",\n\"sendMailDetails\": [\n{\n\"fromAddress\": \"rebecca@zylker.com\",\n\"displayName\": \"Rebecca\",\n\"mode\": \"extfrom\",\n\"serverPort\": \"465\",\n\"serverName\": \"mail.zoho.com\",\n\"userName\": \"rebecca@zylker.com\",\n\"password\": \"Smknel@88\",\n\"smtpConnection\": \"plain\"\n}\n]\n}";
const ADD_USER: &str = "{\n\"mode\": \"addsendmaildetails\",\n\"sendMailDetails\": [\n{\n\"fromAddress\": \"rebecca@zylker.com\",\n\"displayName\": \"Rebecca\",\n\"mode\": \"extfrom\",\n\"serverPort\": \"465\",\n\"serverName\": \"mail.zoho.com\",\n\"userName\": \"rebecca@zylker.com\",\n\"password\": \"Smknel@88\",\n\"smtpConnection\": \"plain\"\n}\n]\n}";
const EMAIL_ADMIN: &str = "{\n   \"zuid\": \"11111111\",\n   \"mode\": \"emailupdate\",\n   \"emailAddress\": \"rebecca@zylker.com\"\n}";
const EMAIL_USER: &str =
    "{\n   \"mode\": \"emailupdate\",\n   \"emailAddress\": \"rebecca@zylker.com\"\n}";
const ENABLE_ADMIN: &str = "{\n   \"zuid\": 1111111,\n   \"mode\": \"enableMailAccount\"\n}";
const ENABLE_USER: &str = "{\n   \"mode\": \"enableMailAccount\"\n}";
const ORDER_ADMIN: &str = "{\n\"zuid\": \"11111111\",\n\"mode\": \"mailaccountorderupdate\",\n\"accList\": \"5111110000000008001,5111110000000009001\"\n}";
const ORDER_USER: &str = "{\n\"mode\" : \"mailaccountorderupdate\",\n\"accList\" : \"5111110000000008001,5111110000000009001\"\n}";
const OUTGOING_ADMIN: &str = "{\n   \"zuid\": \"1112233333\",\n   \"mode\": \"updateOutgoingStatus\",\n   \"outgoingBlocked\": \"true\"\n}";
const OUTGOING_ADMIN_NO_ZUID: &str =
    "{\n   \"mode\": \"updateOutgoingStatus\",\n   \"outgoingBlocked\": \"true\"\n}";

const ADMIN_URL: &str = "/api/organization/12345678/accounts/2560636000000008002";
const USER_URL: &str = "/api/accounts/2560636000000008002";

fn success() -> Value {
    serde_json::json!({ "status": { "code": 200, "description": "success" } })
}

async fn put(client: &mailplane_client::Client, path: &str, body: &str) -> mailplane_client::Reply {
    client
        .send(Method::PUT, path, Some(body.as_bytes().to_vec()))
        .await
        .unwrap()
}

async fn rebecca(app: &TestApp) -> Value {
    app.user().account(REBECCA).await.unwrap().data().clone()
}

async fn add_send_mail_details_both_urls() {
    for (who, path, body) in [
        ("admin", ADMIN_URL, ADD_ADMIN),
        ("user", USER_URL, ADD_USER),
    ] {
        let app = TestApp::demo();
        let client = if who == "admin" {
            app.admin()
        } else {
            app.user()
        };
        let r = put(&client, path, body).await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.body);
        assert_eq!(r.body["status"], success()["status"]);
        let ext = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["fromAddress"] == "rebecca@zylker.com")
            .cloned()
            .unwrap();
        assert_eq!(ext["mode"], "extfrom");
        assert_eq!(ext["serverName"], "mail.zoho.com");
        assert_eq!(ext["serverPort"], 465);
        assert_eq!(ext["userName"], "rebecca@zylker.com");
        assert_eq!(ext["smtpConnection"], "plain");
        assert!(ext["sendMailId"].is_string());
        assert!(ext.get("password").is_none());
        assert_eq!(
            identity_addresses(&rebecca(&app).await),
            vec!["becky@zylker.com", "rebecca@zylker.com"]
        );
        // Sent again, the same identity is replaced, not duplicated.
        assert_eq!(put(&client, path, body).await.status, 200);
        assert_eq!(identity_addresses(&rebecca(&app).await).len(), 2);
    }
}

async fn email_update_both_urls() {
    for (who, path, body) in [
        ("admin", ADMIN_URL, EMAIL_ADMIN),
        ("user", USER_URL, EMAIL_USER),
    ] {
        let app = TestApp::demo();
        let client = if who == "admin" {
            app.admin()
        } else {
            app.user()
        };
        let r = put(&client, path, body).await;
        assert_eq!((r.status, &r.body), (200, &success()), "{who}");
        let acc = rebecca(&app).await;
        assert_eq!(acc["primaryEmailAddress"], "rebecca@zylker.com");
        let old = acc["emailAddress"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["mailId"] == "becky@zylker.com")
            .cloned()
            .unwrap();
        assert_eq!(
            (old["isPrimary"].clone(), old["isAlias"].clone()),
            (Value::Bool(false), Value::Bool(true))
        );
    }
}

async fn enable_mail_account_both_urls() {
    let app = TestApp::demo();
    // The admin sample's zuid (1111111) is not Rebecca's: refused, naming zuid.
    let r = put(&app.admin(), ADMIN_URL, ENABLE_ADMIN).await;
    assert_eq!(r.status, 400);
    assert!(r.more_info().starts_with("zuid"), "{}", r.more_info());
    // Disable, then the samples (with Rebecca's zuid in the admin one) enable again.
    let r = app
        .admin()
        .update_org_account(
            ZOID,
            REBECCA,
            &serde_json::json!({"mode": "disableMailAccount"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(rebecca(&app).await["enabled"], false);
    let r = put(
        &app.admin(),
        ADMIN_URL,
        &ENABLE_ADMIN.replace("1111111", REBECCA_ZUID),
    )
    .await;
    assert_eq!((r.status, &r.body), (200, &success()));
    assert_eq!(rebecca(&app).await["enabled"], true);
    assert_eq!(rebecca(&app).await["mailboxStatus"], "enabled");
    let r = put(&app.user(), USER_URL, ENABLE_USER).await;
    assert_eq!((r.status, &r.body), (200, &success()));
}

async fn mail_account_order_both_urls() {
    for (who, path, body) in [
        ("admin", ADMIN_URL, ORDER_ADMIN),
        ("user", USER_URL, ORDER_USER),
    ] {
        let app = TestApp::demo();
        let client = if who == "admin" {
            app.admin()
        } else {
            app.user()
        };
        let r = put(&client, path, body).await;
        assert_eq!((r.status, &r.body), (200, &success()), "{who}");
        let list = app.user().accounts().await.unwrap();
        let order: Vec<(String, u64)> = list
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
            .collect();
        assert_eq!(
            order,
            vec![
                (POP.to_string(), 1),
                (IMAP.to_string(), 2),
                (REBECCA.to_string(), 3)
            ],
            "{who}"
        );
    }
}

async fn update_outgoing_status_samples() {
    let app = TestApp::demo();
    let r = put(&app.admin(), ADMIN_URL, OUTGOING_ADMIN).await;
    assert_eq!(r.status, 400, "the sample's zuid is not Rebecca's");
    assert_eq!(rebecca(&app).await["outgoingBlocked"], false);
    let r = put(
        &app.admin(),
        ADMIN_URL,
        &OUTGOING_ADMIN.replace("1112233333", REBECCA_ZUID),
    )
    .await;
    assert_eq!((r.status, &r.body), (200, &success()));
    assert_eq!(rebecca(&app).await["outgoingBlocked"], true);
    let r = app
        .user()
        .update_account(
            REBECCA,
            &serde_json::json!({"mode": "updateOutgoingStatus", "outgoingBlocked": false}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(rebecca(&app).await["outgoingBlocked"], false);
    // The page's second sample: admin URL without zuid.
    let r = put(&app.admin(), ADMIN_URL, OUTGOING_ADMIN_NO_ZUID).await;
    assert_eq!((r.status, &r.body), (200, &success()));
    assert_eq!(rebecca(&app).await["outgoingBlocked"], true);
}
