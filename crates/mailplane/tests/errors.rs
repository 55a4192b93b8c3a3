//! Every error of contract §3 (authorization) and §4 (the account update endpoint), under
//! both URLs where it applies: the HTTP status, the envelope
//! `{"status":{"code":N,"description":…},"data":{"errorCode":…,"moreInfo":…}}` with
//! `status.code` equal to the HTTP status, the order in which the checks run, and that no
//! refused request changes a single row of the database.

mod common;

use common::*;
use mailplane_client::{Client, Reply};
use reqwest::Method;
use serde_json::{json, Value};

backend_tests!(
    path_segments_that_are_not_utf8_are_404_in_the_envelope,
    no_authorization_header_is_400_invalid_ticket_on_both_urls,
    unknown_or_malformed_token_is_401_invalid_oauthtoken_on_both_urls,
    bearer_is_accepted_as_well_as_zoho_oauthtoken_on_both_urls,
    revoked_token_is_401_invalid_oauthtoken_on_both_urls,
    expired_token_is_401_invalid_oauthtoken_on_both_urls,
    token_without_the_needed_scope_is_401_invalid_oauthscope,
    member_with_organization_scope_on_the_admin_url_is_403_but_an_admin_is_let_in,
    token_of_a_removed_user_is_401_invalid_oauthtoken,
    admin_only_mode_on_the_user_url_is_403_and_works_on_the_admin_url,
    unknown_mode_is_400_invalid_mode_listing_the_supported_modes,
    missing_mode_is_400_less_than_min_occurance_naming_mode,
    key_the_mode_does_not_take_is_404_extra_key_found_in_json,
    zuid_and_mode_are_never_extra_keys,
    missing_mandatory_key_is_400_less_than_min_occurance_naming_it,
    value_of_the_wrong_form_is_400_pattern_not_matched_naming_it,
    outgoing_blocked_maybe_says_it_must_be_true_or_false,
    unparseable_json_is_400_json_parse_error,
    id_that_is_not_exactly_an_integer_is_400_naming_it_and_changes_nothing,
    a_key_twice_in_a_body_is_400_json_parse_error_naming_it,
    bad_id_in_the_path_is_404_url_rule_not_configured,
    body_over_64_kib_is_413_request_too_large_and_64_kib_is_accepted,
    chunked_body_over_64_kib_is_413_request_too_large,
    address_of_another_account_is_409_in_emailupdate,
    address_of_another_account_is_409_as_an_extfrom_identity,
    unknown_route_is_404_url_rule_not_configured,
    wrong_method_is_405,
    token_is_checked_before_the_body,
    scope_and_role_are_checked_before_the_body,
    body_is_checked_before_the_target,
    missing_extfrom_field_is_400_before_the_target_is_looked_up,
    target_is_checked_before_the_rules_of_the_mode,
);

const ADMIN_URL: &str = "/api/organization/12345678/accounts/2560636000000008002";
const USER_URL: &str = "/api/accounts/2560636000000008002";
/// An account id that no account has.
const ABSENT: &str = "2560636000000999999";
/// A body that succeeds on Rebecca's account under both URLs.
const OUTGOING: &[u8] = br#"{"mode":"updateOutgoingStatus","outgoingBlocked":"true"}"#;
/// A body that is not JSON.
const MALFORMED: &[u8] = br#"{"mode": "updateOutgoingStatus", "outgoingBlocked": "#;
/// Passed as the error code when the contract names only the status.
const ANY_CODE: &str = "";
/// The modes every URL offers; the list of an unknown-mode answer names them all.
const MODES: &[&str] = &[
    "addsendmaildetails",
    "deletesendmaildetails",
    "emailupdate",
    "enableMailAccount",
    "disableMailAccount",
    "mailaccountorderupdate",
    "updateOutgoingStatus",
];

/// Rebecca's account under both URLs, each with a client entitled to update it there.
fn both_urls(app: &TestApp) -> [(&'static str, Client); 2] {
    [(ADMIN_URL, app.admin()), (USER_URL, app.user())]
}

/// Sends a request. A server that refuses an oversized body answers 413 and closes the
/// connection while the client may still be writing the rest, which the client sees as a
/// broken pipe before it reads the answer: such a transport race is tried again (a few
/// times), the HTTP answer itself never is.
async fn send(client: &Client, method: Method, path: &str, body: &[u8]) -> Reply {
    let mut attempts = 0;
    loop {
        match client.send(method.clone(), path, Some(body.to_vec())).await {
            Ok(reply) => return reply,
            Err(e) if attempts < 5 && e.is_request() => attempts += 1,
            Err(e) => panic!("request not sent: {e:?}"),
        }
    }
}

async fn put(client: &Client, path: &str, body: &[u8]) -> Reply {
    send(client, Method::PUT, path, body).await
}

/// A PUT with the given `Authorization` header value, byte for byte.
async fn put_with_header(app: &TestApp, path: &str, authorization: &str, body: &[u8]) -> Reply {
    let resp = reqwest::Client::new()
        .put(format!("{}{path}", app.base))
        .header("Authorization", authorization)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("request sent");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A PUT whose body is sent with `Transfer-Encoding: chunked` (no Content-Length), over
/// a plain connection.
async fn put_chunked(app: &TestApp, path: &str, token: &str, body: &[u8]) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut req = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Zoho-oauthtoken {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(4096) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer before it has read everything.
    let _ = stream.write_all(&req).await;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    Reply {
        status,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// The error envelope, exactly: status and `status.code` agree, a description, the error
/// code (any non-empty one for [`ANY_CODE`]) and a `moreInfo` sentence.
fn assert_error(r: &Reply, status: u16, code: &str, ctx: &str) {
    assert_eq!(r.status, status, "{ctx}: {}", r.body);
    assert_eq!(r.body["status"]["code"], status, "{ctx}: {}", r.body);
    let description = r.body["status"]["description"].as_str().unwrap_or_default();
    assert!(!description.is_empty(), "{ctx}: {}", r.body);
    assert_eq!(
        sorted_keys(&r.body),
        ["data", "status"],
        "{ctx}: {}",
        r.body
    );
    assert_eq!(
        sorted_keys(&r.body["data"]),
        ["errorCode", "moreInfo"],
        "{ctx}: {}",
        r.body
    );
    if code == ANY_CODE {
        assert!(!r.error_code().is_empty(), "{ctx}: {}", r.body);
    } else {
        assert_eq!(r.error_code(), code, "{ctx}: {}", r.body);
    }
    assert!(!r.more_info().is_empty(), "{ctx}: {}", r.body);
    for internal in ["sqlite", "database", "panicked", "thread"] {
        assert!(
            !r.more_info().to_lowercase().contains(internal),
            "{ctx}: moreInfo shows internals: {}",
            r.body
        );
    }
}

/// Sends a request that must be refused with `status` and `code`, and checks that the
/// database is unchanged afterwards. Returns the answer for further checks.
async fn refused_with(
    app: &TestApp,
    client: &Client,
    (method, path, body): (Method, &str, &[u8]),
    status: u16,
    code: &str,
) -> Reply {
    let shown: String = String::from_utf8_lossy(body).chars().take(200).collect();
    let ctx = format!("{method} {path} {shown}");
    let before = app.snapshot();
    assert!(before.contains("accounts: "), "the snapshot sees no data");
    let r = send(client, method, path, body).await;
    assert_error(&r, status, code, &ctx);
    assert_eq!(app.snapshot(), before, "{ctx}: the database changed");
    r
}

/// [`refused_with`] for a PUT.
async fn refused(
    app: &TestApp,
    client: &Client,
    path: &str,
    body: &[u8],
    status: u16,
    code: &str,
) -> Reply {
    refused_with(app, client, (Method::PUT, path, body), status, code).await
}

/// The answer's `moreInfo` names `field`.
fn assert_names(r: &Reply, field: &str) {
    assert!(
        r.more_info().contains(field),
        "moreInfo should name {field}: {:?}",
        r.more_info()
    );
}

/// The zuid of the demo super admin, admin@zylker.com.
async fn admin_zuid(app: &TestApp) -> String {
    let r = app
        .admin()
        .org_account(ZOID, "admin@zylker.com")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.data()["zuid"].to_string()
}

/// The hosted account id of the demo super admin.
async fn admin_account(app: &TestApp) -> String {
    let r = app
        .admin()
        .org_account(ZOID, "admin@zylker.com")
        .await
        .unwrap();
    r.data()["accountId"]
        .as_str()
        .expect("accountId")
        .to_string()
}

/// A new user of the demo organization, made by the demo super admin; its zuid.
async fn create_user(app: &TestApp, address: &str, role: &str) -> String {
    let body = json!({"primaryEmailAddress": address, "password": "Correct-horse-9", "role": role});
    let r = app.admin().create_user(ZOID, &body).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    r.data()["zuid"].to_string()
}

/// `mailplane token issue` with an explicit lifetime.
fn issue(app: &TestApp, zuid: &str, scopes: &str, expires_in: &str) -> String {
    let out = app.cli(&[
        "token",
        "issue",
        "--zuid",
        zuid,
        "--scope",
        scopes,
        "--expires-in",
        expires_in,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["accessToken"].as_str().expect("token").to_string()
}

fn revoke(app: &TestApp, token: &str) {
    let out = app.cli(&["token", "revoke", "--token", token]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// An extfrom identity with every relay field, as the seed sample sends it.
fn extfrom() -> Value {
    json!({
        "fromAddress": "rebecca@zylker.com", "displayName": "Rebecca", "mode": "extfrom",
        "serverName": "mail.zoho.com", "serverPort": "465", "userName": "rebecca@zylker.com",
        "password": "Smknel@88", "smtpConnection": "plain"
    })
}

/// An addsendmaildetails body whose one element is `extfrom()` with `key` set to `value`.
fn extfrom_with(key: &str, value: Value) -> Value {
    let mut detail = extfrom();
    detail[key] = value;
    json!({ "mode": "addsendmaildetails", "sendMailDetails": [detail] })
}

/// An addsendmaildetails body whose one element is `extfrom()` without `key`.
fn extfrom_without(key: &str) -> Value {
    let mut detail = extfrom();
    detail.as_object_mut().expect("object").remove(key);
    json!({ "mode": "addsendmaildetails", "sendMailDetails": [detail] })
}

// ---- §3: the token, its scope, the role ----

async fn no_authorization_header_is_400_invalid_ticket_on_both_urls() {
    let app = TestApp::demo();
    for (path, _) in both_urls(&app) {
        refused(
            &app,
            &app.anonymous(),
            path,
            OUTGOING,
            400,
            "INVALID_TICKET",
        )
        .await;
    }
}

async fn unknown_or_malformed_token_is_401_invalid_oauthtoken_on_both_urls() {
    let app = TestApp::demo();
    for (path, _) in both_urls(&app) {
        for token in ["1000.0123456789abcdef0123456789abcdef", "x"] {
            refused(
                &app,
                &app.client(Some(token)),
                path,
                OUTGOING,
                401,
                "INVALID_OAUTHTOKEN",
            )
            .await;
        }
        let before = app.snapshot();
        for header in [
            format!("Zoho-oauthtoken {}x", app.admin_token),
            format!("Bearer {}x", app.user_token),
            format!("Basic {}", app.admin_token),
            "Zoho-oauthtoken".to_string(),
            "Bearer ".to_string(),
        ] {
            let r = put_with_header(&app, path, &header, OUTGOING).await;
            assert_error(&r, 401, "INVALID_OAUTHTOKEN", &header);
        }
        assert_eq!(app.snapshot(), before);
    }
}

async fn bearer_is_accepted_as_well_as_zoho_oauthtoken_on_both_urls() {
    let app = TestApp::demo();
    for (path, token) in [(ADMIN_URL, &app.admin_token), (USER_URL, &app.user_token)] {
        for header in [
            format!("Zoho-oauthtoken {token}"),
            format!("Bearer {token}"),
        ] {
            let r = put_with_header(&app, path, &header, OUTGOING).await;
            assert_eq!(r.status, 200, "{header}: {}", r.body);
            assert_eq!(r.body["status"]["code"], 200);
        }
    }
}

async fn revoked_token_is_401_invalid_oauthtoken_on_both_urls() {
    let app = TestApp::demo();
    let admin = app.token(
        &admin_zuid(&app).await,
        "ZohoMail.organization.accounts.ALL",
    );
    let user = app.token(REBECCA_ZUID, "ZohoMail.accounts.ALL");
    for (path, token) in [(ADMIN_URL, &admin), (USER_URL, &user)] {
        let client = app.client(Some(token));
        assert_eq!(
            put(&client, path, OUTGOING).await.status,
            200,
            "works before"
        );
        revoke(&app, token);
        refused(&app, &client, path, OUTGOING, 401, "INVALID_OAUTHTOKEN").await;
    }
    // The demo tokens themselves can be revoked too.
    revoke(&app, &app.user_token);
    refused(
        &app,
        &app.user(),
        USER_URL,
        OUTGOING,
        401,
        "INVALID_OAUTHTOKEN",
    )
    .await;
}

async fn expired_token_is_401_invalid_oauthtoken_on_both_urls() {
    let app = TestApp::demo();
    let admin = issue(
        &app,
        &admin_zuid(&app).await,
        "ZohoMail.organization.accounts.ALL",
        "1",
    );
    let user = issue(&app, REBECCA_ZUID, "ZohoMail.accounts.ALL", "1");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for (path, token) in [(ADMIN_URL, &admin), (USER_URL, &user)] {
        refused(
            &app,
            &app.client(Some(token)),
            path,
            OUTGOING,
            401,
            "INVALID_OAUTHTOKEN",
        )
        .await;
    }
}

async fn token_without_the_needed_scope_is_401_invalid_oauthscope() {
    let app = TestApp::demo();
    let admin = admin_zuid(&app).await;
    let cases = [
        // Read access does not allow a write.
        (USER_URL, app.token(REBECCA_ZUID, "ZohoMail.accounts.READ")),
        (
            ADMIN_URL,
            app.token(&admin, "ZohoMail.organization.accounts.READ"),
        ),
        (
            ADMIN_URL,
            app.token(
                &admin,
                "ZohoMail.organization.accounts.CREATE,ZohoMail.organization.accounts.DELETE",
            ),
        ),
        // User scopes do not open the admin URL, even to an admin.
        (ADMIN_URL, app.user_token.clone()),
        (ADMIN_URL, app.token(&admin, "ZohoMail.accounts.ALL")),
        // Organization scopes do not open the user URL.
        (
            USER_URL,
            app.token(REBECCA_ZUID, "ZohoMail.organization.accounts.ALL"),
        ),
    ];
    for (path, token) in &cases {
        refused(
            &app,
            &app.client(Some(token)),
            path,
            OUTGOING,
            401,
            "INVALID_OAUTHSCOPE",
        )
        .await;
    }
}

async fn member_with_organization_scope_on_the_admin_url_is_403_but_an_admin_is_let_in() {
    let app = TestApp::demo();
    let member = app.client(Some(&app.token(
        REBECCA_ZUID,
        "ZohoMail.organization.accounts.ALL,ZohoMail.accounts.ALL",
    )));
    // Her own account, and the admin's: the role is refused before any target.
    let admin_path = format!(
        "/api/organization/{ZOID}/accounts/{}",
        admin_account(&app).await
    );
    for path in [ADMIN_URL, admin_path.as_str()] {
        refused(&app, &member, path, OUTGOING, 403, ANY_CODE).await;
    }
    // A user of role admin (not super admin) with the same scope is let in.
    let zuid = create_user(&app, "deputy@zylker.com", "admin").await;
    let deputy = app.client(Some(
        &app.token(&zuid, "ZohoMail.organization.accounts.ALL"),
    ));
    let r = put(&deputy, ADMIN_URL, OUTGOING).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn token_of_a_removed_user_is_401_invalid_oauthtoken() {
    let app = TestApp::demo();
    let zuid = create_user(&app, "leaver@zylker.com", "member").await;
    let leaver = app.client(Some(&app.token(&zuid, "ZohoMail.accounts.ALL")));
    let own = leaver.accounts().await.unwrap();
    assert_eq!(own.status, 200, "{}", own.body);
    let path = format!(
        "/api/accounts/{}",
        own.data()[0]["accountId"].as_str().unwrap()
    );
    assert_eq!(
        put(&leaver, &path, OUTGOING).await.status,
        200,
        "works before"
    );
    let r = app
        .admin()
        .delete_users(ZOID, &json!({ "accountList": [zuid] }))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    refused(&app, &leaver, &path, OUTGOING, 401, "INVALID_OAUTHTOKEN").await;
}

async fn admin_only_mode_on_the_user_url_is_403_and_works_on_the_admin_url() {
    let app = TestApp::demo();
    let body = br#"{"mode":"updateIncomingStatus","incomingBlocked":true}"#;
    refused(&app, &app.user(), USER_URL, body, 403, ANY_CODE).await;
    // Even an admin may not use it on the user URL, on its own account.
    let own = format!("/api/accounts/{}", admin_account(&app).await);
    refused(&app, &app.admin(), &own, body, 403, ANY_CODE).await;
    let r = put(&app.admin(), ADMIN_URL, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---- §4: the body ----

async fn unknown_mode_is_400_invalid_mode_listing_the_supported_modes() {
    let app = TestApp::demo();
    for (path, client) in both_urls(&app) {
        for mode in ["nope", "addsendmaildetail", "delete"] {
            let body = bytes(&json!({ "mode": mode }));
            let r = refused(&app, &client, path, &body, 400, "INVALID_MODE").await;
            for m in MODES {
                assert_names(&r, m);
            }
        }
    }
}

async fn missing_mode_is_400_less_than_min_occurance_naming_mode() {
    let app = TestApp::demo();
    for (path, client) in both_urls(&app) {
        for body in [
            &b""[..],
            b"{}",
            b"  \n ",
            br#"{"outgoingBlocked":"true"}"#,
            br#"{"zuid":11111111,"emailAddress":"rebecca@zylker.com"}"#,
        ] {
            let r = refused(&app, &client, path, body, 400, "LESS_THAN_MIN_OCCURANCE").await;
            assert_names(&r, "mode");
        }
    }
}

async fn key_the_mode_does_not_take_is_404_extra_key_found_in_json() {
    let app = TestApp::demo();
    let cases = [
        (json!({"mode": "enableMailAccount", "bogus": 1}), "bogus"),
        (
            json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true, "emailAddress": "rebecca@zylker.com"}),
            "emailAddress",
        ),
        (
            json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com", "accountId": REBECCA}),
            "accountId",
        ),
        (
            json!({"mode": "mailaccountorderupdate", "accList": [POP, IMAP], "sequence": 1}),
            "sequence",
        ),
        (extfrom_with("colour", json!("red")), "colour"),
    ];
    for (path, client) in both_urls(&app) {
        for (body, key) in &cases {
            let r = refused(
                &app,
                &client,
                path,
                &bytes(body),
                404,
                "EXTRA_KEY_FOUND_IN_JSON",
            )
            .await;
            assert_names(&r, key);
        }
    }
}

async fn zuid_and_mode_are_never_extra_keys() {
    let app = TestApp::demo();
    for (path, client) in both_urls(&app) {
        let body = json!({"zuid": REBECCA_ZUID, "mode": "enableMailAccount"});
        let r = put(&client, path, &bytes(&body)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
}

async fn missing_mandatory_key_is_400_less_than_min_occurance_naming_it() {
    let app = TestApp::demo();
    let mut cases = vec![
        (
            json!({"mode": "updateOutgoingStatus"}),
            "outgoingBlocked".to_string(),
        ),
        (json!({"mode": "emailupdate"}), "emailAddress".into()),
        (json!({"mode": "mailaccountorderupdate"}), "accList".into()),
        (
            json!({"mode": "addsendmaildetails"}),
            "sendMailDetails".into(),
        ),
        (
            json!({"mode": "addsendmaildetails", "sendMailDetails": []}),
            "sendMailDetails".into(),
        ),
        (
            json!({"mode": "addsendmaildetails", "sendMailDetails": [{"fromAddress": "becky@zylker.com", "mode": "mailbox"}]}),
            "sendMailDetails[0].displayName".into(),
        ),
        (
            json!({"mode": "addsendmaildetails", "sendMailDetails": {"fromAddress": "becky@zylker.com", "displayName": "Becky"}}),
            "sendMailDetails[0].mode".into(),
        ),
        (
            json!({"mode": "deletesendmaildetails"}),
            "sendMailId".into(),
        ),
    ];
    // extfrom: the address and every relay field but smtpConnection are mandatory.
    for field in [
        "fromAddress",
        "serverName",
        "serverPort",
        "userName",
        "password",
    ] {
        cases.push((
            extfrom_without(field),
            format!("sendMailDetails[0].{field}"),
        ));
    }
    for (path, client) in both_urls(&app) {
        for (body, field) in &cases {
            let r = refused(
                &app,
                &client,
                path,
                &bytes(body),
                400,
                "LESS_THAN_MIN_OCCURANCE",
            )
            .await;
            assert_names(&r, field);
        }
    }
    let r = refused(
        &app,
        &app.admin(),
        ADMIN_URL,
        br#"{"mode":"updateIncomingStatus"}"#,
        400,
        "LESS_THAN_MIN_OCCURANCE",
    )
    .await;
    assert_names(&r, "incomingBlocked");
}

async fn value_of_the_wrong_form_is_400_pattern_not_matched_naming_it() {
    let app = TestApp::demo();
    let mut cases = vec![];
    for v in [json!("maybe"), json!("yes"), json!(1), json!([true])] {
        cases.push((
            json!({"mode": "updateOutgoingStatus", "outgoingBlocked": v}),
            "outgoingBlocked".to_string(),
        ));
    }
    for v in [
        json!("not-an-address"),
        json!("rebecca@"),
        json!("@zylker.com"),
        json!(42),
    ] {
        cases.push((
            json!({"mode": "emailupdate", "emailAddress": v}),
            "emailAddress".into(),
        ));
    }
    for v in [json!("abc"), json!(-5), json!("0"), json!(1.5), json!(true)] {
        cases.push((
            json!({"zuid": v, "mode": "updateOutgoingStatus", "outgoingBlocked": "true"}),
            "zuid".into(),
        ));
    }
    for v in [
        json!("70000"),
        json!(70000),
        json!(0),
        json!("abc"),
        json!(-1),
    ] {
        cases.push((
            extfrom_with("serverPort", v),
            "sendMailDetails[0].serverPort".into(),
        ));
    }
    cases.push((
        extfrom_with("fromAddress", json!("nobody")),
        "sendMailDetails[0].fromAddress".into(),
    ));
    cases.push((
        extfrom_with("smtpConnection", json!("starttls")),
        "sendMailDetails[0].smtpConnection".into(),
    ));
    cases.push((
        extfrom_with("mode", json!("relay")),
        "sendMailDetails[0].mode".into(),
    ));
    cases.push((
        json!({"mode": "addsendmaildetails", "sendMailDetails": "rebecca@zylker.com"}),
        "sendMailDetails".into(),
    ));
    cases.push((
        json!({"mode": "mailaccountorderupdate", "accList": "first,second"}),
        "accList".into(),
    ));
    cases.push((json!({"mode": 5}), "mode".into()));
    for (path, client) in both_urls(&app) {
        for (body, field) in &cases {
            let r = refused(
                &app,
                &client,
                path,
                &bytes(body),
                400,
                "PATTERN_NOT_MATCHED",
            )
            .await;
            assert_names(&r, field);
        }
    }
    let r = refused(
        &app,
        &app.admin(),
        ADMIN_URL,
        br#"{"mode":"updateIncomingStatus","incomingBlocked":"maybe"}"#,
        400,
        "PATTERN_NOT_MATCHED",
    )
    .await;
    assert_names(&r, "incomingBlocked");
}

async fn outgoing_blocked_maybe_says_it_must_be_true_or_false() {
    let app = TestApp::demo();
    for (path, client) in both_urls(&app) {
        let body = br#"{"mode":"updateOutgoingStatus","outgoingBlocked":"maybe"}"#;
        let r = refused(&app, &client, path, body, 400, "PATTERN_NOT_MATCHED").await;
        assert_eq!(r.more_info(), "outgoingBlocked must be true or false");
    }
}

async fn unparseable_json_is_400_json_parse_error() {
    let app = TestApp::demo();
    // Deeper than any parser should follow: refused, not a crash.
    let deeply_nested = format!(
        r#"{{"mode":"enableMailAccount","x":{}{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    )
    .into_bytes();
    for (path, client) in both_urls(&app) {
        for body in [
            MALFORMED,
            b"not json",
            br#"{"mode":"enableMailAccount",}"#,
            br#"{'mode':'enableMailAccount'}"#,
            br#"{"mode":"enableMailAccount"} trailing"#,
            b"\xff\xfe{\"mode\":\"enableMailAccount\"}",
            &deeply_nested,
        ] {
            refused(&app, &client, path, body, 400, "JSON_PARSE_ERROR").await;
        }
        // Well-formed JSON that is not an object is refused too.
        for body in [&b"[1]"[..], b"\"enableMailAccount\"", b"null", b"42"] {
            refused(&app, &client, path, body, 400, ANY_CODE).await;
        }
    }
}

/// An id that does not survive reading exactly. Each of these used to be rounded through
/// a double: the zuid and the user to remove below became exactly Rebecca's 11111111, the
/// review's `2560636000000008002.0000001` became the id …8192.
async fn id_that_is_not_exactly_an_integer_is_400_naming_it_and_changes_nothing() {
    let app = TestApp::demo();
    let port = extfrom_with("serverPort", json!(465)).to_string().replace(
        r#""serverPort":465"#,
        r#""serverPort":465.0000000000000001"#,
    );
    let cases = [
        (
            r#"{"zuid": 11111111.0000000001, "mode": "updateOutgoingStatus", "outgoingBlocked": true}"#.to_string(),
            "zuid",
        ),
        (
            r#"{"zuid": 2560636000000008002.0000001, "mode": "updateOutgoingStatus", "outgoingBlocked": true}"#.to_string(),
            "zuid",
        ),
        (
            format!(r#"{{"mode": "mailaccountorderupdate", "accList": [5111110000000009001.0000001, {POP}]}}"#),
            "accList",
        ),
        // Whole, but above 2^53 as a float: likely already rounded by the client.
        (
            format!(r#"{{"mode": "mailaccountorderupdate", "accList": [5.111110000000009001e18, {POP}]}}"#),
            "accList",
        ),
        (
            r#"{"mode": "deletesendmaildetails", "sendMailId": 2560636000000008002.0000001}"#.to_string(),
            "sendMailId",
        ),
        (port, "sendMailDetails[0].serverPort"),
    ];
    for (path, client) in both_urls(&app) {
        for (body, field) in &cases {
            let r = refused(
                &app,
                &client,
                path,
                body.as_bytes(),
                400,
                "PATTERN_NOT_MATCHED",
            )
            .await;
            assert_names(&r, field);
        }
    }
    let r = refused_with(
        &app,
        &app.admin(),
        (
            Method::DELETE,
            "/api/organization/12345678/accounts",
            br#"{"accountList": [11111111.0000000001]}"#,
        ),
        400,
        "PATTERN_NOT_MATCHED",
    )
    .await;
    assert_names(&r, "accountList");
    // A float whose text is exactly a whole number is still an id (some clients send
    // every number as a float).
    for (path, client) in both_urls(&app) {
        let body =
            br#"{"zuid": 11111111.000, "mode": "updateOutgoingStatus", "outgoingBlocked": true}"#;
        let r = put(&client, path, body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
}

/// A key twice in one object: JSON leaves it open which one counts, so the body is
/// refused rather than read one way here and another elsewhere.
async fn a_key_twice_in_a_body_is_400_json_parse_error_naming_it() {
    let app = TestApp::demo();
    let mut detail = extfrom().to_string();
    detail.insert_str(detail.len() - 1, r#","mode":"mailbox""#);
    let cases = [
        (
            r#"{"mode": "updateOutgoingStatus", "outgoingBlocked": true, "mode": "disableMailAccount"}"#.to_string(),
            "mode",
        ),
        (
            r#"{"outgoingBlocked": false, "mode": "updateOutgoingStatus", "outgoingBlocked": true}"#.to_string(),
            "outgoingBlocked",
        ),
        (
            format!(r#"{{"mode": "addsendmaildetails", "sendMailDetails": [{detail}]}}"#),
            "sendMailDetails[0].mode",
        ),
    ];
    for (path, client) in both_urls(&app) {
        for (body, key) in &cases {
            let r = refused(
                &app,
                &client,
                path,
                body.as_bytes(),
                400,
                "JSON_PARSE_ERROR",
            )
            .await;
            assert_names(&r, key);
        }
    }
    let org = "/api/organization/12345678/accounts";
    for (method, body, key) in [
        (
            Method::POST,
            &br#"{"primaryEmailAddress": "x@zylker.com", "password": "Correct-horse-9", "role": "member", "role": "super_admin"}"#[..],
            "role",
        ),
        (
            Method::DELETE,
            br#"{"accountList": [424242], "accountList": [11111111]}"#,
            "accountList",
        ),
    ] {
        let r = refused_with(&app, &app.admin(), (method, org, body), 400, "JSON_PARSE_ERROR").await;
        assert_names(&r, key);
    }
}

async fn bad_id_in_the_path_is_404_url_rule_not_configured() {
    let app = TestApp::demo();
    let bad = [
        "abc",
        "0",
        "00",
        "-1",
        "1.5",
        "1e3",
        "+1",
        "%201",
        "9223372036854775808",
        "18446744073709551616",
        "99999999999999999999",
    ];
    for id in bad {
        for (path, client) in [
            (format!("/api/accounts/{id}"), app.user()),
            (
                format!("/api/organization/{ZOID}/accounts/{id}"),
                app.admin(),
            ),
            (
                format!("/api/organization/{id}/accounts/{REBECCA}"),
                app.admin(),
            ),
        ] {
            refused(
                &app,
                &client,
                &path,
                OUTGOING,
                404,
                "URL_RULE_NOT_CONFIGURED",
            )
            .await;
        }
    }
}

async fn body_over_64_kib_is_413_request_too_large_and_64_kib_is_accepted() {
    let app = TestApp::demo();
    let padded = |len: usize| {
        let mut b = OUTGOING.to_vec();
        b.resize(len, b' ');
        b
    };
    for (path, client) in both_urls(&app) {
        for len in [64 * 1024 + 1, 100 * 1024] {
            refused(&app, &client, path, &padded(len), 413, "REQUEST_TOO_LARGE").await;
        }
        let r = put(&client, path, &padded(64 * 1024)).await;
        assert_eq!(r.status, 200, "{path}: exactly 64 KiB: {}", r.body);
    }
}

async fn chunked_body_over_64_kib_is_413_request_too_large() {
    let app = TestApp::demo();
    let padded = |len: usize| {
        let mut b = OUTGOING.to_vec();
        b.resize(len, b' ');
        b
    };
    for (path, token) in [(ADMIN_URL, &app.admin_token), (USER_URL, &app.user_token)] {
        let before = app.snapshot();
        let r = put_chunked(&app, path, token, &padded(100 * 1024)).await;
        assert_error(&r, 413, "REQUEST_TOO_LARGE", path);
        assert_eq!(app.snapshot(), before, "{path}: the database changed");
        let r = put_chunked(&app, path, token, &padded(1024)).await;
        assert_eq!(r.status, 200, "{path}: a small chunked body: {}", r.body);
    }
}

async fn address_of_another_account_is_409_in_emailupdate() {
    let app = TestApp::demo();
    for (path, client) in both_urls(&app) {
        for address in ["admin@zylker.com", "ADMIN@Zylker.com"] {
            let body = bytes(&json!({"mode": "emailupdate", "emailAddress": address}));
            let r = refused(&app, &client, path, &body, 409, ANY_CODE).await;
            assert_names(&r, "emailAddress");
        }
    }
}

async fn address_of_another_account_is_409_as_an_extfrom_identity() {
    let app = TestApp::demo();
    let body = extfrom_with("fromAddress", json!("admin@zylker.com"));
    for (path, client) in both_urls(&app) {
        let r = refused(&app, &client, path, &bytes(&body), 409, ANY_CODE).await;
        assert_names(&r, "fromAddress");
    }
}

async fn unknown_route_is_404_url_rule_not_configured() {
    let app = TestApp::demo();
    // `/` is not among them: it leads to the web console.
    for path in [
        "/api",
        "/api/account",
        "/api/v1/accounts",
        "/api/accounts/2560636000000008002/extra",
        "/api/organization/12345678/users",
        "/api/organization/12345678/accounts/2560636000000008002/x",
    ] {
        for method in [Method::GET, Method::PUT] {
            refused_with(
                &app,
                &app.admin(),
                (method, path, OUTGOING),
                404,
                "URL_RULE_NOT_CONFIGURED",
            )
            .await;
        }
    }
}

async fn wrong_method_is_405() {
    let app = TestApp::demo();
    let cases = [
        (Method::POST, USER_URL),
        (Method::DELETE, USER_URL),
        (Method::PATCH, USER_URL),
        (Method::POST, ADMIN_URL),
        (Method::DELETE, ADMIN_URL),
        (Method::PATCH, ADMIN_URL),
        (Method::PUT, "/api/accounts"),
        (Method::PUT, "/api/organization/12345678"),
        (Method::PATCH, "/api/organization/12345678/accounts"),
        (Method::POST, "/api/organization"),
    ];
    for (method, path) in cases {
        refused_with(&app, &app.admin(), (method, path, OUTGOING), 405, ANY_CODE).await;
    }
}

// ---- §4: the order of the checks ----

async fn token_is_checked_before_the_body() {
    let app = TestApp::demo();
    let huge = vec![b' '; 100 * 1024];
    let unknown = app.client(Some("1000.unknown.token"));
    for (path, _) in both_urls(&app) {
        for body in [MALFORMED, b"{}", br#"{"mode":"nope"}"#, huge.as_slice()] {
            refused(&app, &unknown, path, body, 401, "INVALID_OAUTHTOKEN").await;
            refused(&app, &app.anonymous(), path, body, 400, "INVALID_TICKET").await;
        }
    }
}

async fn scope_and_role_are_checked_before_the_body() {
    let app = TestApp::demo();
    let read_only = app.client(Some(&app.token(REBECCA_ZUID, "ZohoMail.accounts.READ")));
    let member = app.client(Some(
        &app.token(REBECCA_ZUID, "ZohoMail.organization.accounts.ALL"),
    ));
    let huge = vec![b' '; 100 * 1024];
    for body in [MALFORMED, b"{}", br#"{"mode":"nope"}"#, huge.as_slice()] {
        refused(&app, &read_only, USER_URL, body, 401, "INVALID_OAUTHSCOPE").await;
        refused(
            &app,
            &app.user(),
            ADMIN_URL,
            body,
            401,
            "INVALID_OAUTHSCOPE",
        )
        .await;
        refused(&app, &member, ADMIN_URL, body, 403, ANY_CODE).await;
    }
}

async fn body_is_checked_before_the_target() {
    let app = TestApp::demo();
    let other = app.bootstrap("Other", "other.example", "boss@other.example");
    let other_path = format!(
        "/api/organization/{}/accounts/{}",
        other["zoid"],
        other["accountId"].as_str().expect("accountId")
    );
    let absent_admin = format!("/api/organization/{ZOID}/accounts/{ABSENT}");
    let absent_user = format!("/api/accounts/{ABSENT}");
    let admins_account = format!("/api/accounts/{}", admin_account(&app).await);
    let huge = vec![b' '; 100 * 1024];
    let cases: [(&[u8], u16, &str); 6] = [
        (MALFORMED, 400, "JSON_PARSE_ERROR"),
        (b"{}", 400, "LESS_THAN_MIN_OCCURANCE"),
        (br#"{"mode":"nope"}"#, 400, "INVALID_MODE"),
        (
            br#"{"mode":"enableMailAccount","bogus":1}"#,
            404,
            "EXTRA_KEY_FOUND_IN_JSON",
        ),
        (
            br#"{"mode":"updateOutgoingStatus","outgoingBlocked":"maybe"}"#,
            400,
            "PATTERN_NOT_MATCHED",
        ),
        (huge.as_slice(), 413, "REQUEST_TOO_LARGE"),
    ];
    for (body, status, code) in cases {
        // The demo admin on another organization's account and on an absent one.
        for path in [&other_path, &absent_admin] {
            refused(&app, &app.admin(), path, body, status, code).await;
        }
        // Rebecca on an absent account and on someone else's.
        for path in [&absent_user, &admins_account] {
            refused(&app, &app.user(), path, body, status, code).await;
        }
    }
}

async fn missing_extfrom_field_is_400_before_the_target_is_looked_up() {
    let app = TestApp::demo();
    let other = app.bootstrap("Other", "other.example", "boss@other.example");
    let other_path = format!(
        "/api/organization/{}/accounts/{}",
        other["zoid"],
        other["accountId"].as_str().expect("accountId")
    );
    let absent_admin = format!("/api/organization/{ZOID}/accounts/{ABSENT}");
    let absent_user = format!("/api/accounts/{ABSENT}");
    for field in [
        "fromAddress",
        "serverName",
        "serverPort",
        "userName",
        "password",
    ] {
        let body = bytes(&extfrom_without(field));
        for path in [&other_path, &absent_admin] {
            let r = refused(
                &app,
                &app.admin(),
                path,
                &body,
                400,
                "LESS_THAN_MIN_OCCURANCE",
            )
            .await;
            assert_names(&r, &format!("sendMailDetails[0].{field}"));
        }
        let r = refused(
            &app,
            &app.user(),
            &absent_user,
            &body,
            400,
            "LESS_THAN_MIN_OCCURANCE",
        )
        .await;
        assert_names(&r, &format!("sendMailDetails[0].{field}"));
    }
}

async fn target_is_checked_before_the_rules_of_the_mode() {
    let app = TestApp::demo();
    let absent_admin = format!("/api/organization/{ZOID}/accounts/{ABSENT}");
    let absent_user = format!("/api/accounts/{ABSENT}");
    // Each would be a 400 or a 409 on Rebecca's account.
    let bodies = [
        json!({"mode": "emailupdate", "emailAddress": "admin@zylker.com"}),
        json!({"mode": "emailupdate", "emailAddress": "rebecca@example.com"}),
        json!({"zuid": 1, "mode": "enableMailAccount"}),
        json!({"mode": "mailaccountorderupdate", "accList": "1,2"}),
        json!({"mode": "deletesendmaildetails", "fromAddress": "becky@zylker.com"}),
    ];
    for body in &bodies {
        for (path, client) in [(&absent_admin, app.admin()), (&absent_user, app.user())] {
            let r = refused(&app, &client, path, &bytes(body), 404, ANY_CODE).await;
            assert_ne!(r.error_code(), "URL_RULE_NOT_CONFIGURED");
        }
    }
}

async fn path_segments_that_are_not_utf8_are_404_in_the_envelope() {
    let app = TestApp::demo();
    for (method, path) in [
        (Method::GET, "/api/accounts/%FF"),
        (Method::PUT, "/api/accounts/%C3%28"),
        (Method::GET, "/api/organization/%FF"),
        (
            Method::PUT,
            "/api/organization/%FF/accounts/2560636000000008002",
        ),
        (Method::GET, "/api/organization/12345678/accounts/%FF"),
    ] {
        let r = app
            .admin()
            .send(method.clone(), path, Some(b"{}".to_vec()))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.error_code()),
            (404, "URL_RULE_NOT_CONFIGURED"),
            "{method} {path}"
        );
    }
}
