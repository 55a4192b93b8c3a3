//! The web console over HTTP, without a browser: the session cookie and its limits,
//! revocation, the CSRF and origin checks, the security headers, who sees which page,
//! and changes that go through the API's own path and audit.

mod common;

use common::console::{demo_passwords, Console};
use common::*;
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(
    signing_in_gives_a_session_cookie_and_every_page_its_headers,
    a_post_without_the_sessions_token_or_from_another_origin_changes_nothing,
    sessions_end_when_idle_past_their_limit_or_at_their_absolute_limit,
    sign_out_and_a_password_reset_end_the_users_sessions,
    a_member_sees_only_their_own_pages,
    console_changes_take_the_api_path_and_are_audited_via_console,
    sign_in_is_throttled_like_the_oauth_page,
    a_user_keeps_at_most_ten_sessions_and_no_rows_of_ended_ones,
    a_session_is_rate_limited_like_a_token,
);

const ADMIN: &str = "admin@zylker.com";
const BECKY: &str = "becky@zylker.com";

async fn admin_console(app: &TestApp) -> Console {
    let (admin, _) = demo_passwords(app);
    Console::signed_in(app, ADMIN, &admin).await
}

async fn becky_console(app: &TestApp) -> Console {
    let (_, becky) = demo_passwords(app);
    Console::signed_in(app, BECKY, &becky).await
}

/// The cookie's token, as the browser holds it.
fn token_of(c: &Console) -> String {
    c.cookie
        .as_deref()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

async fn rebecca_enabled(app: &TestApp) -> bool {
    let r = app.admin().org_account(ZOID, REBECCA_ZUID).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"]["accountStatus"] == json!(true) || r.body["data"]["status"] == json!(true)
}

async fn signing_in_gives_a_session_cookie_and_every_page_its_headers() {
    let app = TestApp::demo();
    // Without a session every page leads to the sign-in.
    let anonymous = Console::new(&app);
    let root = anonymous.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.get("/console").await.location(),
        "/console/sign-in"
    );
    let form = anonymous.get("/console/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.html.contains("name=\"password\""));

    // A wrong password: the same page, no cookie, nothing written.
    let tokens_before = app.query("SELECT COUNT(*) FROM tokens");
    let mut wrong = Console::new(&app);
    let page = wrong.sign_in(ADMIN, "not-the-password").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Wrong email address or password"));
    assert!(wrong.cookie.is_none());
    assert_eq!(app.query("SELECT COUNT(*) FROM tokens"), tokens_before);

    let c = admin_console(&app).await;
    let set = c.set_cookie.clone();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set.contains(part), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "a console served over http cannot use a Secure cookie: {set}"
    );
    // Only the token's digest is stored, as a session of its own kind.
    let token = token_of(&c);
    assert_eq!(
        app.query(&format!(
            "SELECT COUNT(*) FROM tokens WHERE digest = '{token}'"
        )),
        ["0"]
    );
    assert_eq!(
        app.query("SELECT COUNT(*) FROM tokens WHERE kind = 'console' AND revoked_ms IS NULL"),
        ["1"]
    );

    for path in [
        "/console",
        "/console/users",
        &format!("/console/users/{REBECCA_ZUID}"),
        "/console/audit",
        "/console/security",
        "/console/clients",
        "/console/sign-in",
    ] {
        let page = c.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.html);
        let h = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let csp = h("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h("referrer-policy"), "same-origin", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("cache-control"), "no-store", "{path}");
        assert!(
            !page.html.contains("<script"),
            "{path}: no page runs a script"
        );
    }
    let overview = c.get("/console").await;
    assert!(overview.html.contains("Zylker"));
    let css = c.get("/console/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

async fn a_post_without_the_sessions_token_or_from_another_origin_changes_nothing() {
    let app = TestApp::demo();
    let c = admin_console(&app).await;
    let page = c.get(&format!("/console/users/{REBECCA_ZUID}")).await;
    let csrf = page.csrf();
    let path = format!("/console/accounts/{REBECCA}");
    let audit_before = app.query("SELECT COUNT(*) FROM audit");
    let other = becky_console(&app).await;
    let other_csrf = other
        .get(&format!("/console/users/{REBECCA_ZUID}"))
        .await
        .csrf();
    assert_ne!(csrf, other_csrf, "each session has its own token");
    for (form, origin, what) in [
        (vec![("action", "disable")], None, "no token"),
        (
            vec![("action", "disable"), ("csrf", "forged")],
            None,
            "a made-up token",
        ),
        (
            vec![("action", "disable"), ("csrf", other_csrf.as_str())],
            None,
            "another session's token",
        ),
        (
            vec![("action", "disable"), ("csrf", csrf.as_str())],
            Some("http://evil.example"),
            "another origin",
        ),
        (
            vec![("action", "disable"), ("csrf", csrf.as_str())],
            Some("null"),
            "an opaque origin",
        ),
    ] {
        let refused = c.post(&path, &form, origin).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{what}: {}",
            refused.html
        );
        assert!(refused.html.contains("Nothing was changed"), "{what}");
    }
    assert!(rebecca_enabled(&app).await, "nothing was disabled");
    assert_eq!(app.query("SELECT COUNT(*) FROM audit"), audit_before);

    // With the session's own token, from our own pages: done, and audited as the admin,
    // via the console.
    let done = c
        .post(&path, &[("action", "disable"), ("csrf", &csrf)], None)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert!(done
        .location()
        .starts_with(&format!("/console/users/{REBECCA_ZUID}?done=disabled")));
    assert!(!rebecca_enabled(&app).await);
    let row =
        app.query_rows("SELECT mode, via, actor_zuid FROM audit WHERE mode = 'disableMailAccount'");
    let admin_zuid = app.admin().accounts().await.unwrap().body["data"][0]["zuid"].to_string();
    assert_eq!(
        row,
        [vec![
            "disableMailAccount".to_string(),
            "console".into(),
            admin_zuid
        ]]
    );
}

async fn sessions_end_when_idle_past_their_limit_or_at_their_absolute_limit() {
    let app = TestApp::demo();
    let c = becky_console(&app).await;
    let page = format!("/console/users/{REBECCA_ZUID}");
    assert_eq!(c.get(&page).await.status, StatusCode::OK);
    // The limits are the database's to enforce: moved into the past here, as time would.
    app.execute("UPDATE tokens SET idle_until_ms = 1 WHERE kind = 'console'");
    let gone = c.get(&page).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.location(), "/console/sign-in");
    assert!(
        gone.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "the dead cookie is cleared"
    );
    // Nor does the token work as a bearer token of the API once idle.
    let api = mailplane_client::Client::new(&app.base, Some(&token_of(&c)));
    assert_eq!(api.accounts().await.unwrap().status, 401);

    let c = becky_console(&app).await;
    assert_eq!(c.get(&page).await.status, StatusCode::OK);
    app.execute("UPDATE tokens SET expires_ms = 1 WHERE kind = 'console' AND revoked_ms IS NULL");
    assert_eq!(c.get(&page).await.location(), "/console/sign-in");

    // A used session moves its idle limit forward (at most once a minute).
    let c = becky_console(&app).await;
    app.execute(
        "UPDATE tokens SET idle_until_ms = idle_until_ms - 600000 WHERE kind = 'console' AND revoked_ms IS NULL AND expires_ms > 1",
    );
    let before =
        app.query("SELECT idle_until_ms FROM tokens WHERE kind = 'console' AND expires_ms > 1");
    assert_eq!(c.get(&page).await.status, StatusCode::OK);
    let after =
        app.query("SELECT idle_until_ms FROM tokens WHERE kind = 'console' AND expires_ms > 1");
    assert!(
        after[0].parse::<i64>().unwrap() > before[0].parse::<i64>().unwrap(),
        "{before:?} -> {after:?}"
    );
}

async fn sign_out_and_a_password_reset_end_the_users_sessions() {
    let app = TestApp::demo();
    let page = format!("/console/users/{REBECCA_ZUID}");
    let (laptop, phone) = (becky_console(&app).await, becky_console(&app).await);
    let csrf = laptop.get(&page).await.csrf();
    let out = laptop
        .post("/console/sign-out", &[("csrf", &csrf)], None)
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(laptop.get(&page).await.location(), "/console/sign-in");
    assert_eq!(
        phone.get(&page).await.location(),
        "/console/sign-in",
        "signing out ends the user's other sessions"
    );
    // Sign-out is a form like the others: without the token it does nothing.
    let kept = becky_console(&app).await;
    let refused = kept.post("/console/sign-out", &[], None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(kept.get(&page).await.status, StatusCode::OK);

    // A new password ends the console's sessions even when the API's tokens are kept.
    let reset = app
        .admin()
        .update_org_account(
            ZOID,
            REBECCA_ZUID,
            &json!({"mode": "resetPassword", "password": "A-new-passw0rd!", "resetAuthToken": false}),
        )
        .await
        .unwrap();
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(kept.get(&page).await.location(), "/console/sign-in");
    assert_eq!(
        app.user().accounts().await.unwrap().status,
        200,
        "the API token stays"
    );
    let mut again = Console::new(&app);
    assert_eq!(
        again.sign_in(BECKY, "A-new-passw0rd!").await.status,
        StatusCode::SEE_OTHER
    );
}

async fn a_member_sees_only_their_own_pages() {
    let app = TestApp::demo();
    let other_org = app.bootstrap("Other", "other.example", "boss@other.example");
    let other_zuid = other_org["zuid"].to_string().trim_matches('"').to_string();
    let becky = becky_console(&app).await;
    let home = becky.get("/console").await;
    assert_eq!(home.location(), format!("/console/users/{REBECCA_ZUID}"));
    let own = becky.get(&format!("/console/users/{REBECCA_ZUID}")).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.html.contains(BECKY));
    assert!(
        !own.html.contains("Set password"),
        "no admin form for a member"
    );
    for admin_page in [
        "/console/users",
        "/console/audit",
        "/console/security",
        "/console/clients",
        "/console/users/delete?zuid=11111111",
    ] {
        let page = becky.get(admin_page).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{admin_page}");
        assert!(page.html.contains("Not allowed"));
    }
    let admin_zuid = app.admin().accounts().await.unwrap().body["data"][0]["zuid"].to_string();
    let admin_zuid = admin_zuid.trim_matches('"');
    for foreign in [admin_zuid, other_zuid.as_str(), "99999999", "not-a-number"] {
        let page = becky.get(&format!("/console/users/{foreign}")).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{foreign}");
    }
    // An admin: another organization's user is as unknown as a zuid nobody has.
    let admin = admin_console(&app).await;
    let foreign = admin.get(&format!("/console/users/{other_zuid}")).await;
    let unknown = admin.get("/console/users/99999999").await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.html, unknown.html);
    // A member's post on an account not theirs: 404, nothing changed.
    let csrf = own.csrf();
    let admin_account = app.admin().accounts().await.unwrap().body["data"][0]["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = becky
        .post(
            &format!("/console/accounts/{admin_account}"),
            &[("action", "disable"), ("csrf", &csrf)],
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.query("SELECT COUNT(*) FROM audit WHERE mode = 'disableMailAccount'"),
        ["0"]
    );
}

async fn console_changes_take_the_api_path_and_are_audited_via_console() {
    let app = TestApp::demo();
    let c = admin_console(&app).await;
    let csrf = c
        .get(&format!("/console/users/{REBECCA_ZUID}"))
        .await
        .csrf();
    let path = format!("/console/accounts/{REBECCA}");
    // The API's own refusal, shown at its field.
    let api = app
        .admin()
        .update_org_account(
            ZOID,
            REBECCA,
            &json!({"mode": "emailupdate", "emailAddress": "not-an-address"}),
        )
        .await
        .unwrap();
    let api_message = api.body["data"]["moreInfo"].as_str().unwrap().to_string();
    let refused = c
        .post(
            &path,
            &[
                ("action", "emailupdate"),
                ("emailAddress", "not-an-address"),
                ("csrf", &csrf),
            ],
            None,
        )
        .await;
    assert_eq!(refused.status.as_u16(), api.status, "{}", refused.html);
    let at_field = format!("id=\"primary-{REBECCA}-error\">");
    let shown = refused
        .html
        .split(&at_field)
        .nth(1)
        .expect("the error at its field");
    let escaped = api_message
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;");
    assert!(shown.starts_with(&escaped), "{shown} / {api_message}");
    assert!(
        refused.html.contains("value=\"not-an-address\""),
        "the value is shown again"
    );

    // An extfrom identity with its relay password: added, audited via the console, and
    // the password is in no page, no audit row and no log line.
    let secret = "Relay-Pa55word-Never-Shown";
    let added = c
        .post(
            &path,
            &[
                ("action", "add_identity"),
                ("csrf", &csrf),
                ("fromAddress", "rebecca@partner.example"),
                ("displayName", "Rebecca at Partner"),
                ("mode", "extfrom"),
                ("serverName", "smtp.partner.example"),
                ("serverPort", "587"),
                ("smtpConnection", "tls"),
                ("userName", "rebecca"),
                ("password", secret),
            ],
            None,
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.html);
    let page = c.get(&format!("/console/users/{REBECCA_ZUID}")).await;
    assert!(page.html.contains("rebecca@partner.example"));
    assert!(page.html.contains("smtp.partner.example:587"));
    assert!(!page.html.contains(secret));
    // A refused add shows the other fields again, never the password.
    let again = c
        .post(
            &path,
            &[
                ("action", "add_identity"),
                ("csrf", &csrf),
                ("fromAddress", "rebecca@partner.example"),
                ("displayName", ""),
                ("mode", "extfrom"),
                ("password", secret),
            ],
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.html);
    assert!(
        again
            .html
            .contains(&format!("id=\"id-{REBECCA}-displayName-error\"")),
        "{}",
        again.html
    );
    assert!(!again.html.contains(secret));
    let audit =
        app.query_rows("SELECT via, before, after FROM audit WHERE mode = 'addsendmaildetails'");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0][0], "console");
    assert!(!audit[0].concat().contains(secret));
    assert!(!app.log().contains(secret));

    // The API's audit log says where each change came from.
    app.admin()
        .update_org_account(ZOID, REBECCA, &json!({"mode": "enableMailAccount"}))
        .await
        .unwrap();
    assert_eq!(
        app.query("SELECT via FROM audit WHERE mode = 'enableMailAccount'"),
        ["api"]
    );
    let log = app
        .admin()
        .send(
            reqwest::Method::GET,
            &format!("/api/organization/{ZOID}/auditlog"),
            None,
        )
        .await
        .unwrap();
    let via_of = |mode: &str| {
        log.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["mode"] == mode)
            .map(|e| e["via"].clone())
    };
    assert_eq!(
        via_of("enableMailAccount"),
        Some(json!("api")),
        "{}",
        log.body
    );
    assert_eq!(
        via_of("addsendmaildetails"),
        Some(json!("console")),
        "{}",
        log.body
    );
}

async fn sign_in_is_throttled_like_the_oauth_page() {
    let app = TestApp::demo_on(
        Db::fresh(),
        &["--signin-max-failures", "2", "--signin-delay-ms", "600000"],
    );
    let mut c = Console::new(&app);
    for _ in 0..2 {
        assert_eq!(c.sign_in(BECKY, "wrong").await.status, StatusCode::OK);
    }
    let throttled = c.sign_in(BECKY, "wrong").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers.contains_key("retry-after"));
    // Even the right password waits: the throttle is the account's.
    let (_, becky) = demo_passwords(&app);
    assert_eq!(
        c.sign_in(BECKY, &becky).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert!(c.cookie.is_none());
}

async fn a_user_keeps_at_most_ten_sessions_and_no_rows_of_ended_ones() {
    let app = TestApp::demo();
    let page = format!("/console/users/{REBECCA_ZUID}");
    let first = becky_console(&app).await;
    let mut others = Vec::new();
    for _ in 0..10 {
        others.push(becky_console(&app).await);
    }
    assert_eq!(
        first.get(&page).await.location(),
        "/console/sign-in",
        "the eleventh sign-in ends the oldest session"
    );
    for c in &others {
        assert_eq!(c.get(&page).await.status, StatusCode::OK);
    }
    let rows = |sql: &str| app.query(sql)[0].parse::<u64>().unwrap();
    assert_eq!(
        rows("SELECT COUNT(*) FROM tokens WHERE kind = 'console' AND revoked_ms IS NULL"),
        10
    );
    // Signing out and in again many times leaves the table as it was.
    for _ in 0..5 {
        let c = becky_console(&app).await;
        let csrf = c.get(&page).await.csrf();
        c.post("/console/sign-out", &[("csrf", &csrf)], None).await;
    }
    let c = becky_console(&app).await;
    assert_eq!(c.get(&page).await.status, StatusCode::OK);
    assert_eq!(
        rows("SELECT COUNT(*) FROM tokens WHERE kind = 'console'"),
        1
    );
}

async fn a_session_is_rate_limited_like_a_token() {
    let app = TestApp::demo_on(
        Db::fresh(),
        &["--rate-limit", "0.01", "--rate-limit-burst", "3"],
    );
    let c = becky_console(&app).await;
    let page = format!("/console/users/{REBECCA_ZUID}");
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(c.get(&page).await.status.as_u16());
        }
        out
    };
    assert_eq!(
        statuses,
        [200, 200, 200, 429],
        "the session's burst, then 429"
    );
    let limited = c.get(&page).await;
    assert!(limited.headers.contains_key("retry-after"));
    // Another user's session has its own allowance.
    let admin = admin_console(&app).await;
    assert_eq!(admin.get("/console").await.status, StatusCode::OK);
}
