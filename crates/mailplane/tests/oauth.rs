//! mailplane as Zoho's accounts server: the browser flow driven over HTTP like a person
//! filling in the forms, the script grant, refresh, expiry, revocation, the refresh-token
//! limit, PKCE, sign-in throttling and the client address behind a trusted proxy.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::{json, Value};

backend_tests!(
    browser_flow_gives_tokens_that_work,
    refusing_consent_returns_access_denied,
    token_endpoint_refusals_are_zoho_shaped,
    script_grant_refresh_and_revoke,
    access_tokens_expire_and_refresh_never_widens_scope,
    twenty_one_refresh_tokens_keep_the_newest_twenty,
    sign_in_failures_look_alike_and_are_throttled,
    oauth_secrets_are_stored_as_digests_and_never_logged,
    pkce_s256_binds_the_code_to_its_verifier,
    pkce_plain_and_refused_challenges,
    trusted_proxy_header_names_the_client,
    concurrent_sign_ins_verify_no_more_than_the_limit,
    failures_through_an_alias_count_with_the_primary,
    a_slowed_account_signs_in_once_its_wait_is_over,
    the_client_limit_is_hard,
    argon2_past_its_slots_is_503_and_costs_no_failure,
    reset_password_changes_the_sign_in_and_revokes_the_tokens,
    an_expired_user_cannot_sign_in_and_its_tokens_stop,
    a_fixed_zoho_scope_set_gets_a_token_that_does_only_what_is_served,
    lowercase_operations_and_virtual_office_names_are_served,
    scope_requests_serving_nothing_or_malformed_are_refused,
    the_command_line_accepts_zoho_scope_sets,
    the_token_endpoint_takes_http_basic_client_credentials,
);

const REDIRECT: &str = "https://app.example/callback";
const EMAIL: &str = "paula@zylker.com";
const PASSWORD: &str = "paula-secret-1";

/// A demo server with a user who has a password and a registered client.
struct OAuthApp {
    app: TestApp,
    zuid: String,
    client_id: String,
    secret: String,
    http: reqwest::Client,
}

fn setup(args: &[&str]) -> OAuthApp {
    let app = TestApp::demo_on(Db::fresh(), args);
    let out = app.cli(&[
        "oauth",
        "client",
        "create",
        "--name",
        "Billing <sync>",
        "--redirect-uri",
        REDIRECT,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    OAuthApp {
        app,
        zuid: String::new(),
        client_id: c["clientId"].as_str().unwrap().to_string(),
        secret: c["clientSecret"].as_str().unwrap().to_string(),
        http,
    }
}

/// How a sign-in was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignIn {
    /// The consent page: the password was right.
    Consent,
    /// The sign-in page again: the password was checked, and wrong (or no such user).
    Wrong,
    /// 429: refused without checking the password.
    Throttled,
}

fn sign_in_outcome(status: u16, html: &str) -> SignIn {
    match status {
        429 => {
            assert!(html.contains("Too many failed sign-ins"), "{html}");
            SignIn::Throttled
        }
        200 if html.contains("action=\"/oauth/v2/auth/consent\"") => SignIn::Consent,
        200 if html.contains("Wrong email address or password") => SignIn::Wrong,
        _ => panic!("unexpected sign-in answer {status}: {html}"),
    }
}

fn count(outcomes: &[SignIn], which: SignIn) -> usize {
    outcomes.iter().filter(|o| **o == which).count()
}

impl OAuthApp {
    /// The same app, reached from another loopback address (each is its own client
    /// address for the sign-in throttle).
    fn via(&self, ip: &str) -> Via<'_> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        Via { app: self, http }
    }

    /// Signs in with the page's form from `ip`.
    async fn sign_in(&self, ip: &str, page: &str, email: &str, password: &str) -> SignIn {
        self.via(ip).sign_in(page, email, password, &[]).await
    }

    /// All of `attempts` (client address, email, password) at once, each on its own
    /// connection; their outcomes, in order.
    async fn flood(&self, page: &str, attempts: &[(&str, &str, &str)]) -> Vec<SignIn> {
        let mut tasks = Vec::new();
        for (ip, email, password) in attempts {
            let http = self.via(ip).http;
            let (base, page) = (self.app.base.clone(), page.to_string());
            let fields = [
                ("email", email.to_string()),
                ("password", password.to_string()),
            ];
            tasks.push(tokio::spawn(async move {
                let extra: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (status, html, _) = post_form(&http, &base, &page, &extra, &[]).await;
                sign_in_outcome(status, &html)
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    async fn with_user(self) -> Self {
        self.with_user_as("member").await
    }

    /// Paula, with `role` in the demo organization.
    async fn with_user_as(mut self, role: &str) -> Self {
        let r = self
            .app
            .admin()
            .create_user(
                ZOID,
                &json!({"primaryEmailAddress": EMAIL, "password": PASSWORD, "firstName": "Paula", "role": role}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201);
        self.zuid = r.data()["zuid"].to_string();
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.base)
    }

    /// GET the authorization endpoint with `params`.
    async fn auth_page(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(self.url("/oauth/v2/auth"))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// GET the authorization page; (status, html).
    async fn authorize(&self, scope: &str, state: &str) -> (u16, String) {
        self.authorize_with(scope, state, &[]).await
    }

    /// [`OAuthApp::authorize`] with more parameters (e.g. PKCE's).
    async fn authorize_with(
        &self,
        scope: &str,
        state: &str,
        extra: &[(&str, &str)],
    ) -> (u16, String) {
        let params = [
            &[
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("scope", scope),
                ("redirect_uri", REDIRECT),
                ("access_type", "offline"),
                ("state", state),
            ],
            extra,
        ]
        .concat();
        let r = self.auth_page(&params).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Posts the page's form with its hidden fields plus `extra`; (status, html, location).
    async fn submit(&self, html: &str, extra: &[(&str, &str)]) -> (u16, String, Option<String>) {
        post_form(&self.http, &self.app.base, html, extra, &[]).await
    }

    /// The whole browser flow: sign in, approve; the redirect's query.
    async fn browser_flow(&self, scope: &str) -> HashMap<String, String> {
        self.browser_flow_with(scope, &[]).await
    }

    /// [`OAuthApp::browser_flow`] with more parameters for the authorization request
    /// (only there: the sign-in form must carry them on).
    async fn browser_flow_with(
        &self,
        scope: &str,
        extra: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let consent = self.consent_page(scope, extra).await;
        for one in scope.split(',') {
            assert!(
                consent.contains(&format!("<li>{one}</li>")),
                "the consent page lists {one}"
            );
        }
        self.approve(&consent).await
    }

    /// The flow up to the consent page, signed in as Paula; its html.
    async fn consent_page(&self, scope: &str, extra: &[(&str, &str)]) -> String {
        let (status, page) = self.authorize_with(scope, "st-1", extra).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("Billing &lt;sync&gt;"),
            "the sign-in page names the client, escaped"
        );
        let (status, consent, _) = self
            .submit(&page, &[("email", EMAIL), ("password", PASSWORD)])
            .await;
        assert_eq!(status, 200, "{consent}");
        assert!(
            consent.contains("Billing &lt;sync&gt;"),
            "the consent page names the client"
        );
        consent
    }

    /// Approves on the consent page; the redirect's query.
    async fn approve(&self, consent: &str) -> HashMap<String, String> {
        let (status, _, location) = self.submit(consent, &[("decision", "approve")]).await;
        assert_eq!(status, 302);
        let location = location.unwrap();
        assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
        query(&location)
    }

    async fn token(&self, params: &[(&str, &str)]) -> Value {
        let r = self
            .http
            .post(self.url("/oauth/v2/token"))
            .form(params)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "Zoho answers the token endpoint with 200, errors included"
        );
        r.json().await.unwrap()
    }

    async fn exchange(&self, code: &str) -> Value {
        self.exchange_with(code, &[]).await
    }

    /// [`OAuthApp::exchange`] with more parameters (e.g. `code_verifier`).
    async fn exchange_with(&self, code: &str, extra: &[(&str, &str)]) -> Value {
        let params = [
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &self.client_id),
                ("client_secret", &self.secret),
                ("code", code),
                ("redirect_uri", REDIRECT),
            ],
            extra,
        ]
        .concat();
        self.token(&params).await
    }

    async fn refresh(&self, refresh_token: &str) -> Value {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &self.client_id),
            ("client_secret", &self.secret),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    async fn revoke(&self, token: &str) {
        let r = self
            .http
            .post(self.url("/oauth/v2/token/revoke"))
            .query(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    fn grant(&self, scope: &str) -> String {
        let out = self.app.cli(&[
            "oauth",
            "grant",
            "--client-id",
            &self.client_id,
            "--zuid",
            &self.zuid,
            "--scope",
            scope,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["scope"], scope);
        v["refreshToken"].as_str().unwrap().to_string()
    }

    /// The status of `GET /api/accounts` with an access token.
    async fn api_status(&self, access_token: &str) -> (u16, String) {
        let r = self
            .app
            .client(Some(access_token))
            .accounts()
            .await
            .unwrap();
        (r.status, r.error_code().to_string())
    }
}

/// An [`OAuthApp`] reached from another client address.
struct Via<'a> {
    app: &'a OAuthApp,
    http: reqwest::Client,
}

impl Via<'_> {
    /// An admin change (Rebecca's outgoing status) sent with `X-Forwarded-For: xff`; the
    /// client address its audit row records.
    async fn audited_addr(&self, xff: &str) -> String {
        let r = self
            .http
            .put(
                self.app
                    .url(&format!("/api/organization/{ZOID}/accounts/{REBECCA}")),
            )
            .header(
                "authorization",
                format!("Zoho-oauthtoken {}", self.app.app.admin_token),
            )
            .header("x-forwarded-for", xff)
            .json(&json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        self.app
            .app
            .query("SELECT client_addr FROM audit ORDER BY id DESC LIMIT 1")
            .remove(0)
    }

    async fn submit(&self, html: &str, extra: &[(&str, &str)]) -> (u16, String, Option<String>) {
        post_form(&self.http, &self.app.app.base, html, extra, &[]).await
    }

    /// Signs in with the page's form, with more request `headers`.
    async fn sign_in(
        &self,
        page: &str,
        email: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> SignIn {
        let fields = [("email", email), ("password", password)];
        let (status, html, _) =
            post_form(&self.http, &self.app.app.base, page, &fields, headers).await;
        sign_in_outcome(status, &html)
    }
}

async fn post_form(
    http: &reqwest::Client,
    base: &str,
    html: &str,
    extra: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let (action, mut fields) = form(html);
    for (k, v) in extra {
        fields.insert(k.to_string(), v.to_string());
    }
    let mut request = http.post(format!("{base}{action}")).form(&fields);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    (r.status().as_u16(), r.text().await.unwrap(), location)
}

/// The action and fields (hidden inputs, and the clicked button's name) of the page's form.
fn form(html: &str) -> (String, HashMap<String, String>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    };
    let form_tag = html
        .split("<form")
        .nth(1)
        .expect("a form")
        .split('>')
        .next()
        .unwrap();
    let action = attr(form_tag, "action").expect("an action");
    let mut fields = HashMap::new();
    for tag in html
        .split("<input")
        .skip(1)
        .map(|t| t.split('>').next().unwrap())
    {
        if attr(tag, "type").as_deref() == Some("hidden") {
            fields.insert(
                attr(tag, "name").unwrap(),
                attr(tag, "value").unwrap_or_default(),
            );
        }
    }
    (action, fields)
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    serde_urlencoded::from_str(q).unwrap()
}

async fn browser_flow_gives_tokens_that_work() {
    let o = setup(&[]).with_user().await;
    let back = o
        .browser_flow("ZohoMail.accounts.READ,ZohoMail.accounts.UPDATE")
        .await;
    assert_eq!(back["state"], "st-1");
    assert_eq!(back["accounts-server"], o.app.base);
    let code = &back["code"];
    assert!(code.starts_with("mpac_"));
    let t = o.exchange(code).await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    assert_eq!(
        t["scope"],
        "ZohoMail.accounts.READ,ZohoMail.accounts.UPDATE"
    );
    assert_eq!(t["api_domain"], o.app.base);
    let (access, refresh) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    assert!(access.starts_with("mpat_") && refresh.starts_with("mprt_"));
    // The token is Paula's: her accounts, and a change through the API.
    let r = o.app.client(Some(access)).accounts().await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.data()[0]["primaryEmailAddress"], EMAIL);
    let account = r.data()[0]["accountId"].as_str().unwrap().to_string();
    let r = o
        .app
        .client(Some(access))
        .update_account(
            &account,
            &json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // Single use: the same code again is refused, and the first tokens still work.
    assert_eq!(o.exchange(code).await, json!({"error": "invalid_code"}));
    assert_eq!(o.api_status(access).await.0, 200);
    // A refresh gives a new, working access token and no new refresh token.
    let t2 = o.refresh(refresh).await;
    assert!(t2.get("refresh_token").is_none());
    assert_ne!(t2["access_token"], t["access_token"]);
    assert_eq!(
        o.api_status(t2["access_token"].as_str().unwrap()).await.0,
        200
    );
    // Parameters in the query string work as well as in the form body.
    let r = o
        .http
        .post(o.url("/oauth/v2/token"))
        .query(&[
            ("grant_type", "refresh_token"),
            ("client_id", &o.client_id),
            ("client_secret", &o.secret),
            ("refresh_token", refresh),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(
        v["access_token"].as_str().unwrap().starts_with("mpat_"),
        "{v}"
    );
}

async fn refusing_consent_returns_access_denied() {
    let o = setup(&[]).with_user().await;
    let (_, page) = o.authorize("ZohoMail.accounts.ALL", "st-2").await;
    let (_, consent, _) = o
        .submit(&page, &[("email", EMAIL), ("password", PASSWORD)])
        .await;
    let (status, _, location) = o.submit(&consent, &[("decision", "deny")]).await;
    assert_eq!(status, 302);
    let back = query(&location.unwrap());
    assert_eq!(
        (back["error"].as_str(), back["state"].as_str()),
        ("access_denied", "st-2")
    );
    assert!(!back.contains_key("code"));
    // The ticket is spent: approving afterwards does not work, nor does exchanging it.
    let (_, fields) = form(&consent);
    let (status, _, _) = o.submit(&consent, &[("decision", "approve")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        o.exchange(&fields["ticket"]).await,
        json!({"error": "invalid_code"})
    );
}

async fn token_endpoint_refusals_are_zoho_shaped() {
    let o = setup(&[]).with_user().await;
    let back = o.browser_flow("ZohoMail.accounts.ALL").await;
    let code = back["code"].clone();
    // An unapproved ticket is no code: sign in again and exchange without consenting.
    let (_, page) = o.authorize("ZohoMail.accounts.ALL", "s").await;
    let (_, consent, _) = o
        .submit(&page, &[("email", EMAIL), ("password", PASSWORD)])
        .await;
    let (_, fields) = form(&consent);
    assert_eq!(
        o.exchange(&fields["ticket"]).await,
        json!({"error": "invalid_code"})
    );
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", &o.client_id),
                ("client_secret", "mpcs_wrong"),
                ("code", &code),
            ],
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", "1000.NOPE"),
                ("client_secret", &o.secret),
                ("code", &code),
            ],
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", &o.client_id),
                ("client_secret", &o.secret),
                ("code", &code),
                ("redirect_uri", "https://evil.example/"),
            ],
            "invalid_redirect_uri",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", &o.client_id),
                ("client_secret", &o.secret),
                ("refresh_token", "mprt_nope"),
            ],
            "invalid_code",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &o.client_id),
                ("client_secret", &o.secret),
            ],
            "unsupported_grant_type",
        ),
        (vec![], "unsupported_grant_type"),
    ];
    for (params, error) in cases {
        assert_eq!(
            o.token(&params).await,
            json!({ "error": error }),
            "{params:?}"
        );
    }
    // An oversized form is refused in JSON too, not in the framework's plain text.
    let r = o
        .http
        .post(o.url("/oauth/v2/token"))
        .body(format!("grant_type={}", "x".repeat(70 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "request_too_large"})
    );
    // The refused attempts did not spend the code.
    assert!(o.exchange(&code).await["access_token"].is_string());
    // The auth page refuses an unknown client or a foreign redirect URI before redirecting.
    let r = o
        .auth_page(&[
            ("response_type", "code"),
            ("client_id", "1000.NOPE"),
            ("scope", "ZohoMail.accounts.ALL"),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let r = o
        .auth_page(&[
            ("response_type", "code"),
            ("client_id", &o.client_id),
            ("scope", "ZohoMail.accounts.ALL"),
            ("redirect_uri", "https://evil.example/"),
        ])
        .await;
    assert_eq!(r.status(), 400);
    // A bad scope goes back to the client.
    let r = o
        .auth_page(&[
            ("response_type", "code"),
            ("client_id", &o.client_id),
            ("scope", "ZohoMail.everything"),
            ("state", "q"),
        ])
        .await;
    assert_eq!(r.status(), 302);
    let back = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(back["error"], "invalid_scope");
}

async fn script_grant_refresh_and_revoke() {
    let o = setup(&[]).with_user().await;
    let refresh = o.grant("ZohoMail.accounts.ALL");
    assert!(refresh.starts_with("mprt_"));
    let a1 = o.refresh(&refresh).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let a2 = o.refresh(&refresh).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let other = o.grant("ZohoMail.accounts.ALL");
    let a3 = o.refresh(&other).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    for a in [&a1, &a2, &a3] {
        assert_eq!(o.api_status(a).await.0, 200);
    }
    // Revoking the refresh token takes every access token minted from it, and only those.
    o.revoke(&refresh).await;
    assert_eq!(o.api_status(&a1).await, (401, "INVALID_OAUTHTOKEN".into()));
    assert_eq!(o.api_status(&a2).await, (401, "INVALID_OAUTHTOKEN".into()));
    assert_eq!(o.api_status(&a3).await.0, 200);
    assert_eq!(o.refresh(&refresh).await, json!({"error": "invalid_code"}));
    // Revoking an unknown token answers the same.
    o.revoke("mprt_unknown").await;
    // The CLI refuses unknown clients and users.
    for args in [
        vec![
            "oauth",
            "grant",
            "--client-id",
            "1000.NOPE",
            "--zuid",
            o.zuid.as_str(),
            "--scope",
            "ZohoMail.accounts.ALL",
        ],
        vec![
            "oauth",
            "grant",
            "--client-id",
            o.client_id.as_str(),
            "--zuid",
            "999",
            "--scope",
            "ZohoMail.accounts.ALL",
        ],
        vec![
            "oauth",
            "grant",
            "--client-id",
            o.client_id.as_str(),
            "--zuid",
            o.zuid.as_str(),
            "--scope",
            "ZohoMail.nope",
        ],
    ] {
        assert_eq!(o.app.cli(&args).status.code(), Some(1), "{args:?}");
    }
}

async fn access_tokens_expire_and_refresh_never_widens_scope() {
    let o = setup(&["--access-token-ttl", "1"]).with_user().await;
    let refresh = o.grant("ZohoMail.accounts.READ");
    let t = o.refresh(&refresh).await;
    assert_eq!(
        (t["expires_in"].clone(), t["scope"].clone()),
        (json!(1), json!("ZohoMail.accounts.READ"))
    );
    let access = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(o.api_status(&access).await.0, 200);
    // Read-only: a change is refused for its scope.
    let r = o
        .app
        .client(Some(&access))
        .update_account(REBECCA, &json!({"mode": "enableMailAccount"}))
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHSCOPE"));
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert_eq!(
        o.api_status(&access).await,
        (401, "INVALID_OAUTHTOKEN".into())
    );
    let t = o.refresh(&refresh).await;
    assert_eq!(
        t["scope"], "ZohoMail.accounts.READ",
        "a refresh keeps the grant's scopes"
    );
    assert_eq!(
        o.api_status(t["access_token"].as_str().unwrap()).await.0,
        200
    );
}

async fn twenty_one_refresh_tokens_keep_the_newest_twenty() {
    let o = setup(&[]).with_user().await;
    let tokens: Vec<String> = (0..21).map(|_| o.grant("ZohoMail.accounts.READ")).collect();
    let oldest_access = o.refresh(&tokens[1]).await;
    assert!(oldest_access["access_token"].is_string());
    assert_eq!(
        o.refresh(&tokens[0]).await,
        json!({"error": "invalid_code"}),
        "the first was replaced"
    );
    for t in &tokens[1..] {
        assert!(o.refresh(t).await["access_token"].is_string());
    }
    // One more: the oldest live one (tokens[1]) goes, with its access token.
    o.grant("ZohoMail.accounts.READ");
    assert_eq!(
        o.refresh(&tokens[1]).await,
        json!({"error": "invalid_code"})
    );
    assert_eq!(
        o.api_status(oldest_access["access_token"].as_str().unwrap())
            .await
            .0,
        401
    );
    let live = o.app.query(&format!(
        "SELECT COUNT(*) FROM refresh_tokens WHERE zuid = {} AND revoked_ms IS NULL",
        o.zuid
    ));
    assert_eq!(live[0], "20");
}

/// A long first wait: the tests that count refusals must not see it pass.
const LONG_DELAY: [&str; 2] = ["--signin-delay-ms", "600000"];

/// A wrong password and an unknown address look alike, and both are throttled per
/// account: the failures from any address add up, and once they are used up the right
/// password waits too, from an address that never failed, answered 429 like an unknown
/// user's; other accounts from that address are not slowed.
async fn sign_in_failures_look_alike_and_are_throttled() {
    let o = setup(&[&["--signin-max-failures", "3"][..], &LONG_DELAY].concat())
        .with_user()
        .await;
    let (_, page) = o.authorize("ZohoMail.accounts.ALL", "s").await;
    let wrong = [("email", EMAIL), ("password", "not-it")];
    let (s1, wrong_password, _) = o.via("127.0.0.1").submit(&page, &wrong).await;
    let (s2, unknown_user, _) = o
        .via("127.0.0.1")
        .submit(
            &page,
            &[("email", "nobody@zylker.com"), ("password", "not-it")],
        )
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        wrong_password, unknown_user,
        "a wrong password and an unknown user get the same page"
    );
    assert!(wrong_password.contains("Wrong email address or password"));
    // Paula's second and third failures, from other addresses, use up her account.
    assert_eq!(
        o.sign_in("127.0.0.2", &page, EMAIL, "x").await,
        SignIn::Wrong
    );
    assert_eq!(
        o.sign_in("127.0.0.3", &page, EMAIL, "x").await,
        SignIn::Wrong
    );
    let (status, paula_waits, _) = o
        .via("127.0.0.4")
        .submit(&page, &[("email", EMAIL), ("password", PASSWORD)])
        .await;
    assert_eq!(status, 429, "{paula_waits}");
    // That address still signs in others.
    assert_eq!(
        o.sign_in("127.0.0.4", &page, "admin@zylker.com", "x").await,
        SignIn::Wrong
    );
    // An unknown user is throttled the same way, with the same page.
    for ip in ["127.0.0.1", "127.0.0.2"] {
        assert_eq!(
            o.sign_in(ip, &page, "nobody@zylker.com", "x").await,
            SignIn::Wrong
        );
    }
    let (status, nobody_waits, _) = o
        .via("127.0.0.4")
        .submit(&page, &[("email", "nobody@zylker.com"), ("password", "x")])
        .await;
    assert_eq!(status, 429);
    assert_eq!(paula_waits, nobody_waits);
    // The answer says when to come back.
    let (_, mut fields) = form(&page);
    fields.insert("email".into(), EMAIL.into());
    fields.insert("password".into(), PASSWORD.into());
    let r = o
        .via("127.0.0.4")
        .http
        .post(o.url("/oauth/v2/auth"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry_after = retry_after_secs(&r);
    assert!(retry_after >= 1);
}

/// 40 wrong passwords at once, from four addresses, check exactly the 5 the account
/// allows: the others are refused before any password is checked. Once throttled, a
/// flood with the right password in it gets nothing through.
async fn concurrent_sign_ins_verify_no_more_than_the_limit() {
    let o = setup(
        &[
            &[
                "--signin-max-failures",
                "5",
                "--signin-client-max-failures",
                "1000",
            ][..],
            &LONG_DELAY,
        ]
        .concat(),
    )
    .with_user()
    .await;
    let (_, page) = o.authorize("ZohoMail.accounts.ALL", "s").await;
    let ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let attempts: Vec<(&str, &str, &str)> =
        (0..40).map(|i| (ips[i % 4], EMAIL, "not-it")).collect();
    let outcomes = o.flood(&page, &attempts).await;
    assert_eq!(
        (
            count(&outcomes, SignIn::Wrong),
            count(&outcomes, SignIn::Throttled)
        ),
        (5, 35),
        "{outcomes:?}"
    );
    let mut attempts: Vec<(&str, &str, &str)> =
        (0..10).map(|i| (ips[i % 4], EMAIL, "not-it")).collect();
    attempts.insert(5, ("127.0.0.5", EMAIL, PASSWORD));
    let outcomes = o.flood(&page, &attempts).await;
    assert_eq!(count(&outcomes, SignIn::Throttled), 11, "{outcomes:?}");
    assert_eq!(
        o.app.query("SELECT COUNT(*) FROM auth_codes"),
        ["0"],
        "no sign-in got through"
    );
}

/// The failures of an account count together whichever of its addresses they name: here
/// its old primary address (an alias since an `emailupdate`) and the new one.
async fn failures_through_an_alias_count_with_the_primary() {
    let o = setup(&[&["--signin-max-failures", "3"][..], &LONG_DELAY].concat())
        .with_user()
        .await;
    let account = o.app.admin().org_account(ZOID, EMAIL).await.unwrap().data()["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    let new = "paula.new@zylker.com";
    let r = o
        .app
        .admin()
        .update_org_account(
            ZOID,
            &account,
            &json!({"mode": "emailupdate", "emailAddress": new}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, page) = o.authorize("ZohoMail.accounts.ALL", "s").await;
    // Both addresses sign Paula in.
    assert_eq!(
        o.sign_in("127.0.0.1", &page, EMAIL, PASSWORD).await,
        SignIn::Consent
    );
    assert_eq!(
        o.sign_in("127.0.0.1", &page, new, PASSWORD).await,
        SignIn::Consent
    );
    assert_eq!(
        o.sign_in("127.0.0.1", &page, EMAIL, "x").await,
        SignIn::Wrong
    );
    assert_eq!(o.sign_in("127.0.0.2", &page, new, "x").await, SignIn::Wrong);
    assert_eq!(
        o.sign_in("127.0.0.3", &page, EMAIL, "x").await,
        SignIn::Wrong
    );
    for address in [new, EMAIL] {
        assert_eq!(
            o.sign_in("127.0.0.4", &page, address, PASSWORD).await,
            SignIn::Throttled,
            "{address}"
        );
    }
}

/// A slowed account is not locked: once its wait is over the right password signs in
/// (every earlier try is refused without a check, never answered "wrong"), and the
/// failures are forgotten: the free ones are free again, even at once.
async fn a_slowed_account_signs_in_once_its_wait_is_over() {
    let o = setup(&["--signin-max-failures", "2", "--signin-delay-ms", "300"])
        .with_user()
        .await;
    let (_, page) = o.authorize("ZohoMail.accounts.ALL", "s").await;
    for _ in 0..2 {
        assert_eq!(
            o.sign_in("127.0.0.1", &page, EMAIL, "x").await,
            SignIn::Wrong
        );
    }
    let mut tries = 0;
    loop {
        match o.sign_in("127.0.0.1", &page, EMAIL, PASSWORD).await {
            SignIn::Consent => break,
            SignIn::Throttled => {}
            SignIn::Wrong => panic!("the right password was answered as wrong"),
        }
        tries += 1;
        assert!(tries < 600, "still throttled after a minute");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let again = o
        .flood(
            &page,
            &[("127.0.0.1", EMAIL, "x"), ("127.0.0.2", EMAIL, "x")],
        )
        .await;
    assert_eq!(again, [SignIn::Wrong, SignIn::Wrong]);
}

/// Per client address: at most `--signin-client-max-failures` failures (here 4) in the
/// window, whichever accounts they name and however they race; then 429 for anything
/// from that address, the right password of another account included.
async fn the_client_limit_is_hard() {
    let o = setup(&[&["--signin-client-max-failures", "4"][..], &LONG_DELAY].concat())
        .with_user()
        .await;
    let (_, page) = o.authorize("ZohoMail.accounts.ALL", "s").await;
    let emails: Vec<String> = (0..20).map(|i| format!("u{i}@zylker.com")).collect();
    let attempts: Vec<(&str, &str, &str)> = emails
        .iter()
        .map(|e| ("127.0.0.1", e.as_str(), "x"))
        .collect();
    let outcomes = o.flood(&page, &attempts).await;
    assert_eq!(
        (
            count(&outcomes, SignIn::Wrong),
            count(&outcomes, SignIn::Throttled)
        ),
        (4, 16),
        "{outcomes:?}"
    );
    assert_eq!(
        o.sign_in("127.0.0.1", &page, EMAIL, PASSWORD).await,
        SignIn::Throttled
    );
    assert_eq!(
        o.sign_in("127.0.0.2", &page, EMAIL, PASSWORD).await,
        SignIn::Consent
    );
}

/// With one argon2 slot and almost no wait for it, bursts find the slot taken. A sign-in
/// is then answered 503 with the sign-in page (to submit again) and `Retry-After`, never
/// 500, and the throttle does not count it: the client still has exactly its allowance of
/// checked failures. An added user is answered 503 `SERVER_BUSY` and not created.
async fn argon2_past_its_slots_is_503_and_costs_no_failure() {
    let o = setup(
        &[
            &[
                "--argon2-slots",
                "1",
                "--argon2-wait-ms",
                "1",
                "--signin-client-max-failures",
                "20",
            ][..],
            &LONG_DELAY,
        ]
        .concat(),
    )
    .with_user()
    .await;
    let (_, page) = o.authorize("ZohoMail.accounts.ALL", "s").await;
    // 16 at once, each naming its own unknown address (no account is slowed), fewer than
    // the client's allowance of 20: only the slot can refuse them.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let http = o.via("127.0.0.1").http;
        let (base, page) = (o.app.base.clone(), page.clone());
        tasks.push(tokio::spawn(async move {
            let (action, mut fields) = form(&page);
            fields.insert("email".into(), format!("burst{i}@zylker.com"));
            fields.insert("password".into(), "x".into());
            let r = http
                .post(format!("{base}{action}"))
                .form(&fields)
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (r.status().as_u16(), retry, r.text().await.unwrap())
        }));
    }
    let (mut checked, mut busy) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (503, retry, html) => {
                busy += 1;
                assert!(retry.is_some_and(|s| s >= 1), "503 without Retry-After");
                assert!(html.contains("The server is busy"), "{html}");
                assert_eq!(form(&html).0, "/oauth/v2/auth", "the form comes back");
            }
            (status, _, html) => {
                assert_eq!(sign_in_outcome(status, &html), SignIn::Wrong);
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 1 && busy >= 1,
        "{checked} checked, {busy} busy: a burst on one slot is expected to see both"
    );
    // The busy ones cost nothing: exactly 20 - checked more failures, then 429.
    for i in 0..20 - checked {
        let outcome = o
            .sign_in("127.0.0.1", &page, &format!("after{i}@zylker.com"), "x")
            .await;
        assert_eq!(outcome, SignIn::Wrong, "failure {} of 20", checked + i + 1);
    }
    assert_eq!(
        o.sign_in("127.0.0.1", &page, "last@zylker.com", "x").await,
        SignIn::Throttled
    );

    // Adding users hashes their passwords in the same slot.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let url = o.url(&format!("/api/organization/{ZOID}/accounts"));
        let token = o.app.admin_token.clone();
        tasks.push(tokio::spawn(async move {
            let address = format!("new{i}@zylker.com");
            let r = reqwest::Client::new()
                .post(url)
                .header("Authorization", format!("Zoho-oauthtoken {token}"))
                .json(&json!({"primaryEmailAddress": address, "password": "password-1"}))
                .send()
                .await
                .unwrap();
            let retry = r.headers().get("retry-after").cloned();
            let status = r.status().as_u16();
            (address, status, retry, r.json::<Value>().await.unwrap())
        }));
    }
    let (mut created, mut refused) = (0, 0);
    for t in tasks {
        let (address, status, retry, body) = t.await.unwrap();
        let stored = o.app.query(&format!(
            "SELECT COUNT(*) FROM addresses WHERE address = '{address}'"
        ));
        match status {
            201 => {
                created += 1;
                assert_eq!(stored, ["1"]);
            }
            503 => {
                refused += 1;
                assert_eq!(body["data"]["errorCode"], "SERVER_BUSY", "{body}");
                assert!(retry.is_some(), "503 SERVER_BUSY without Retry-After");
                assert_eq!(stored, ["0"], "a refused user is not created");
            }
            other => panic!("adding a user answered {other}: {body}"),
        }
    }
    assert!(
        created >= 1 && refused >= 1,
        "{created} created, {refused} refused"
    );
}

async fn oauth_secrets_are_stored_as_digests_and_never_logged() {
    let o = setup(&[]).with_user().await;
    let back = o.browser_flow("ZohoMail.accounts.ALL").await;
    let t = o.exchange(&back["code"]).await;
    let secrets = [
        o.secret.clone(),
        back["code"].clone(),
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
        PASSWORD.to_string(),
    ];
    let log = o.app.log();
    assert!(
        log.contains("/oauth/v2/token"),
        "the log records the requests"
    );
    let stored: Vec<u8> = match &o.app.db {
        Db::Sqlite => {
            let mut bytes = std::fs::read(o.app.db_path()).unwrap();
            bytes.extend(
                std::fs::read(o.app.dir.path().join("mailplane.db-wal")).unwrap_or_default(),
            );
            bytes
        }
        Db::Postgres(pg) => pg.all_rows().into_bytes(),
    };
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "a secret is in the log");
        assert!(
            !stored.windows(s.len()).any(|w| w == s.as_bytes()),
            "a secret is stored in clear"
        );
    }
}

// RFC 7636, appendix B: a verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const S256_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Well-formed, but not the verifier of either challenge.
const OTHER_VERIFIER: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// With an S256 challenge, the code needs its verifier: a missing or wrong one is
/// `invalid_code` and spends the code (no second try with another verifier); a verifier
/// for a code issued without a challenge is refused too (a PKCE downgrade).
async fn pkce_s256_binds_the_code_to_its_verifier() {
    let o = setup(&[]).with_user().await;
    let pkce = [
        ("code_challenge", S256_CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let scope = "ZohoMail.accounts.READ";
    // The right verifier: tokens that work.
    let code = o.browser_flow_with(scope, &pkce).await["code"].clone();
    let t = o.exchange_with(&code, &[("code_verifier", VERIFIER)]).await;
    assert_eq!(
        o.api_status(t["access_token"].as_str().unwrap()).await.0,
        200
    );
    let stored = o.app.query("SELECT pkce_method FROM auth_codes");
    assert_eq!(stored, ["S256"]);
    // No verifier, or a wrong one: refused, and the code is spent.
    for first in [vec![], vec![("code_verifier", OTHER_VERIFIER)]] {
        let code = o.browser_flow_with(scope, &pkce).await["code"].clone();
        assert_eq!(
            o.exchange_with(&code, &first).await,
            json!({"error": "invalid_code"}),
            "{first:?}"
        );
        assert_eq!(
            o.exchange_with(&code, &[("code_verifier", VERIFIER)]).await,
            json!({"error": "invalid_code"}),
            "the code was spent by the refused exchange"
        );
    }
    // A verifier for a code that had no challenge.
    let code = o.browser_flow(scope).await["code"].clone();
    assert_eq!(
        o.exchange_with(&code, &[("code_verifier", VERIFIER)]).await,
        json!({"error": "invalid_code"})
    );
    assert_eq!(o.exchange(&code).await, json!({"error": "invalid_code"}));
    let granted = o.app.query(&format!(
        "SELECT COUNT(*) FROM refresh_tokens WHERE zuid = {}",
        o.zuid
    ));
    assert_eq!(granted, ["1"], "only the right verifier got tokens");
}

/// `plain` (also the default method) compares the verifier with the challenge; an
/// unknown method, a malformed challenge or a method without a challenge goes back to
/// the client as `invalid_request`, before any sign-in.
async fn pkce_plain_and_refused_challenges() {
    let o = setup(&[]).with_user().await;
    let scope = "ZohoMail.accounts.READ";
    for pkce in [
        vec![
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ],
        vec![("code_challenge", VERIFIER)],
    ] {
        let code = o.browser_flow_with(scope, &pkce).await["code"].clone();
        let t = o.exchange_with(&code, &[("code_verifier", VERIFIER)]).await;
        assert!(t["access_token"].is_string(), "{pkce:?}: {t}");
        let code = o.browser_flow_with(scope, &pkce).await["code"].clone();
        assert_eq!(
            o.exchange_with(&code, &[("code_verifier", OTHER_VERIFIER)])
                .await,
            json!({"error": "invalid_code"}),
            "{pkce:?}"
        );
    }
    let too_long = "a".repeat(129);
    for pkce in [
        vec![
            ("code_challenge", S256_CHALLENGE),
            ("code_challenge_method", "S512"),
        ],
        vec![
            ("code_challenge", "too-short"),
            ("code_challenge_method", "S256"),
        ],
        vec![("code_challenge", too_long.as_str())],
        vec![(
            "code_challenge",
            "not base64url: spaces and more than 43 chars here",
        )],
        vec![("code_challenge_method", "S256")],
    ] {
        let r = o
            .auth_page(
                &[
                    &[
                        ("response_type", "code"),
                        ("client_id", o.client_id.as_str()),
                        ("scope", scope),
                        ("state", "pk"),
                    ][..],
                    &pkce,
                ]
                .concat(),
            )
            .await;
        assert_eq!(r.status(), 302, "{pkce:?}");
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
        let back = query(&location);
        assert_eq!(
            (back["error"].as_str(), back["state"].as_str()),
            ("invalid_request", "pk"),
            "{pkce:?}"
        );
    }
}

/// `X-Forwarded-For` names the client only when the peer is a `--trusted-proxy`: read from
/// the right, the first address that is not itself a trusted proxy. Seen here in the
/// audit rows, which record the client address.
async fn trusted_proxy_header_names_the_client() {
    let o = setup(
        &[
            &[
                "--trusted-proxy",
                "127.0.0.2",
                "--trusted-proxy",
                "127.0.0.8/30",
            ][..],
            &["--signin-client-max-failures", "2"],
            &LONG_DELAY,
        ]
        .concat(),
    );
    // From an untrusted peer the header is ignored.
    assert_eq!(
        o.via("127.0.0.1").audited_addr("203.0.113.7").await,
        "127.0.0.1"
    );
    assert_eq!(
        o.via("127.0.0.3").audited_addr("203.0.113.7").await,
        "127.0.0.3"
    );
    // From a trusted one, the right-most address that is no trusted proxy: what the
    // client wrote itself (198.51.100.1) is passed over.
    let from_proxy = o.via("127.0.0.2");
    assert_eq!(
        from_proxy.audited_addr("198.51.100.1, 203.0.113.7").await,
        "203.0.113.7"
    );
    assert_eq!(
        from_proxy
            .audited_addr("198.51.100.1, 203.0.113.7, 127.0.0.9")
            .await,
        "203.0.113.7",
        "a proxy of the trusted block in the chain is skipped"
    );
    // The sign-in throttle counts the same client address. From an untrusted peer, a
    // new forwarded address on each try buys no more tries.
    let (_, page) = o.authorize("ZohoMail.accounts.ALL", "s").await;
    let direct = o.via("127.0.0.1");
    for (i, expected) in [SignIn::Wrong, SignIn::Wrong, SignIn::Throttled]
        .into_iter()
        .enumerate()
    {
        let xff = format!("203.0.113.{i}");
        let email = format!("u{i}@zylker.com");
        let got = direct
            .sign_in(&page, &email, "x", &[("x-forwarded-for", &xff)])
            .await;
        assert_eq!(got, expected, "try {i}");
    }
    // Through the proxy, each forwarded client has its own count, and the proxy's own
    // address none of theirs.
    for email in ["v1@zylker.com", "v2@zylker.com"] {
        let got = from_proxy
            .sign_in(&page, email, "x", &[("x-forwarded-for", "198.51.100.1")])
            .await;
        assert_eq!(got, SignIn::Wrong);
    }
    let third = ["198.51.100.1", "198.51.100.2", ""].map(|c| {
        let headers: Vec<(&str, &str)> = if c.is_empty() {
            vec![]
        } else {
            vec![("x-forwarded-for", c)]
        };
        headers
    });
    let mut got = Vec::new();
    for headers in &third {
        got.push(
            from_proxy
                .sign_in(&page, "v3@zylker.com", "x", headers)
                .await,
        );
    }
    assert_eq!(got, [SignIn::Throttled, SignIn::Wrong, SignIn::Wrong]);
}

/// `resetPassword` on the admin URL, by Paula's zuid: the old password no longer signs in
/// and the new one does. With `resetAuthToken` false her tokens keep working; omitted (or
/// `resetAuthtoken`, lower-case t, true) every access token, refresh token and sign-in
/// awaiting consent of hers dies, and nobody else's.
async fn reset_password_changes_the_sign_in_and_revokes_the_tokens() {
    let o = setup(&[]).with_user().await;
    let reset = |body: Value| {
        let (app, zuid) = (&o.app, o.zuid.clone());
        async move {
            let r = app
                .admin()
                .update_org_account(ZOID, &zuid, &body)
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{body}: {}", r.body);
            assert_eq!(
                r.body,
                json!({"status": {"code": 200, "description": "success"}})
            );
        }
    };
    let scope = "ZohoMail.accounts.READ";
    let refresh = o.grant(scope);
    let access = o.refresh(&refresh).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let issued = o.app.token(&o.zuid, scope);
    let live = |token: &str| {
        let token = token.to_string();
        let o = &o;
        async move { o.api_status(&token).await.0 == 200 }
    };
    assert!(live(&access).await && live(&issued).await);

    let first = "Paula-new-pass-1";
    reset(json!({"mode": "resetPassword", "password": first, "resetAuthToken": false})).await;
    let (_, page) = o.authorize(scope, "s1").await;
    assert_eq!(
        o.sign_in("127.0.0.1", &page, EMAIL, PASSWORD).await,
        SignIn::Wrong
    );
    assert_eq!(
        o.sign_in("127.0.0.1", &page, EMAIL, first).await,
        SignIn::Consent
    );
    assert!(
        live(&access).await && live(&issued).await,
        "resetAuthToken false keeps them"
    );
    assert!(o.refresh(&refresh).await["access_token"].is_string());

    // A sign-in with the current password, awaiting consent when the password changes.
    let (_, page) = o.authorize(scope, "s2").await;
    let (status, consent, _) = o
        .submit(&page, &[("email", EMAIL), ("password", first)])
        .await;
    assert_eq!(status, 200, "{consent}");
    let admins = o.app.admin();
    let second = "Paula-new-pass-2";
    reset(json!({"mode": "resetPassword", "password": second, "oneTimePassword": "true"})).await;
    for token in [&access, &issued] {
        assert_eq!(
            o.api_status(token).await,
            (401, "INVALID_OAUTHTOKEN".into())
        );
    }
    assert_eq!(o.refresh(&refresh).await, json!({"error": "invalid_code"}));
    let (status, _, location) = o.submit(&consent, &[("decision", "approve")]).await;
    assert!(
        status == 400 && location.is_none(),
        "a consent for a sign-in made before the reset gives no code: {status}"
    );
    assert_eq!(
        admins.own_organization().await.unwrap().status,
        200,
        "the admin's own token is not Paula's"
    );
    let (_, page) = o.authorize(scope, "s3").await;
    assert_eq!(
        o.sign_in("127.0.0.2", &page, EMAIL, first).await,
        SignIn::Wrong
    );
    assert_eq!(
        o.sign_in("127.0.0.2", &page, EMAIL, second).await,
        SignIn::Consent
    );
    let account = o.app.admin().org_account(ZOID, &o.zuid).await.unwrap();
    assert_eq!(account.data()["oneTimePassword"], true);

    // The other spelling of the key.
    let refresh = o.grant(scope);
    reset(
        json!({"mode": "resetPassword", "password": "Paula-new-pass-3", "resetAuthtoken": "TRUE"}),
    )
    .await;
    assert_eq!(o.refresh(&refresh).await, json!({"error": "invalid_code"}));

    // Each reset audited with what it did, never the password or its hash.
    let rows = o
        .app
        .query_rows("SELECT before, after FROM audit WHERE mode = 'resetPassword' ORDER BY id");
    let rows: Vec<(Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                serde_json::from_str(&r[0]).unwrap(),
                serde_json::from_str(&r[1]).unwrap(),
            )
        })
        .collect();
    let after = |revoked: bool, one_time: bool| json!({"password": "changed", "resetAuthToken": revoked, "oneTimePassword": one_time});
    assert_eq!(
        rows,
        [
            (json!({"oneTimePassword": false}), after(false, false)),
            (json!({"oneTimePassword": false}), after(true, true)),
            (json!({"oneTimePassword": true}), after(true, false)),
        ]
    );
    let hash = o.app.query(&format!(
        "SELECT password_hash FROM users WHERE zuid = {}",
        o.zuid
    ));
    assert!(hash[0].starts_with("$argon2id$"), "{hash:?}");
}

/// A user added with `userExpiry` signs in until the expiry (moved into the past in the
/// database, as waiting would); from then on the right password gets the sign-in page
/// saying the account expired, never a consent page, and the user's refresh and access
/// tokens stop working. Another user's do not.
async fn an_expired_user_cannot_sign_in_and_its_tokens_stop() {
    let mut o = setup(&[]);
    let r = o
        .app
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": EMAIL, "password": PASSWORD, "userExpiry": 30}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    o.zuid = r.data()["zuid"].to_string();
    let shown = r.data()["userExpiry"].as_i64().expect("userExpiry in ms");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let thirty_days = 30 * 86_400_000;
    assert!(
        (now + thirty_days - 60_000..=now + thirty_days).contains(&shown),
        "{shown}"
    );
    let scope = "ZohoMail.accounts.READ";
    let refresh = o.grant(scope);
    let access = o.refresh(&refresh).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(o.api_status(&access).await.0, 200);
    let (_, page) = o.authorize(scope, "e1").await;
    assert_eq!(
        o.sign_in("127.0.0.1", &page, EMAIL, PASSWORD).await,
        SignIn::Consent
    );

    o.app.execute(&format!(
        "UPDATE users SET expires_ms = 1000 WHERE zuid = {}",
        o.zuid
    ));
    let (_, page) = o.authorize(scope, "e2").await;
    let (status, html, _) = o
        .submit(&page, &[("email", EMAIL), ("password", PASSWORD)])
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("This account has expired"), "{html}");
    assert!(!html.contains("/oauth/v2/auth/consent"), "{html}");
    // A wrong password is answered as ever: the expiry shows only to the password.
    assert_eq!(
        o.sign_in("127.0.0.1", &page, EMAIL, "not-the-password")
            .await,
        SignIn::Wrong
    );
    assert_eq!(
        o.api_status(&access).await,
        (401, "INVALID_OAUTHTOKEN".into())
    );
    assert_eq!(o.refresh(&refresh).await, json!({"error": "invalid_code"}));
    let account = o.app.admin().org_account(ZOID, EMAIL).await.unwrap();
    assert_eq!(account.data()["userExpiry"], 1000);
    assert_eq!(o.api_status(&o.app.admin_token).await.0, 200);
}

/// What third-party Zoho Mail clients ask for: account scopes among scopes of other
/// services, a legacy name and the profile scope.
const ZOHO_CLIENT_SCOPES: &str = "ZohoMail.accounts.READ,ZohoMail.messages.ALL,ZohoMail.folders.ALL,\
                                  VirtualOffice.accounts.READ,aaaserver.profile.READ,ZohoMail.tags.ALL";

impl OAuthApp {
    /// The token endpoint with HTTP Basic `id:secret` (sent as given) and a form; status,
    /// `WWW-Authenticate` and body.
    async fn token_basic(
        &self,
        pair: &str,
        params: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(pair);
        let r = self
            .http
            .post(self.url("/oauth/v2/token"))
            .header("authorization", format!("Basic {basic}"))
            .form(params)
            .send()
            .await
            .unwrap();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|h| h.to_str().unwrap().to_string());
        (r.status().as_u16(), challenge, r.text().await.unwrap())
    }

    /// Whether an access token may read Paula's accounts, change her account, and read
    /// the organization's accounts: (status, error code) of each.
    async fn reach(&self, access: &str) -> [(u16, String); 3] {
        let c = self.app.client(Some(access));
        let r = c.accounts().await.unwrap();
        let read = (r.status, r.error_code().to_string());
        let account = if r.status == 200 {
            r.data()[0]["accountId"].as_str().unwrap().to_string()
        } else {
            REBECCA.to_string()
        };
        let r = c
            .update_account(
                &account,
                &json!({"mode": "updateOutgoingStatus", "outgoingBlocked": false}),
            )
            .await
            .unwrap();
        let update = (r.status, r.error_code().to_string());
        let r = c.org_accounts(ZOID, "").await.unwrap();
        let org = (r.status, r.error_code().to_string());
        [read, update, org]
    }
}

fn answer(status: u16, code: &str) -> (u16, String) {
    (status, code.to_string())
}

async fn a_fixed_zoho_scope_set_gets_a_token_that_does_only_what_is_served() {
    let o = setup(&[]).with_user().await;
    let consent = o.consent_page(ZOHO_CLIENT_SCOPES, &[]).await;
    // The served scope is what the user grants; the others are named as giving nothing.
    let (granted, others) = consent
        .split_once("which give no access on this server")
        .expect("the consent page names the scopes that give nothing");
    assert!(
        granted.contains("<li>ZohoMail.accounts.READ</li>"),
        "{consent}"
    );
    for other in [
        "ZohoMail.messages.ALL",
        "ZohoMail.folders.ALL",
        "aaaserver.profile.READ",
        "ZohoMail.tags.ALL",
    ] {
        assert!(
            !granted.contains(other),
            "{other} is not granted: {consent}"
        );
        assert!(others.contains(&format!("<li>{other}</li>")), "{consent}");
    }
    assert!(
        !consent.contains("VirtualOffice"),
        "read as ZohoMail: {consent}"
    );
    let back = o.approve(&consent).await;
    assert_eq!(back["state"], "st-1");
    let t = o.exchange(&back["code"]).await;
    assert_eq!(
        t["scope"], "ZohoMail.accounts.READ",
        "the served scopes: {t}"
    );
    // The grant records the request as it was asked.
    assert_eq!(
        o.app.query("SELECT requested_scopes FROM refresh_tokens"),
        [ZOHO_CLIENT_SCOPES]
    );
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        o.reach(access).await,
        [
            answer(200, ""),
            answer(401, "INVALID_OAUTHSCOPE"),
            answer(401, "INVALID_OAUTHSCOPE"),
        ]
    );
    // A refresh naming the same set (as some clients do) keeps the grant's scopes.
    let t = o
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &o.client_id),
            ("client_secret", &o.secret),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            (
                "scope",
                "ZohoMail.accounts.ALL,ZohoMail.organization.accounts.ALL",
            ),
        ])
        .await;
    assert_eq!(t["scope"], "ZohoMail.accounts.READ");
    assert_eq!(
        o.reach(t["access_token"].as_str().unwrap()).await[1],
        answer(401, "INVALID_OAUTHSCOPE")
    );
}

async fn lowercase_operations_and_virtual_office_names_are_served() {
    let o = setup(&[]).with_user_as("admin").await;
    let consent = o
        .consent_page(
            "ZohoMail.accounts.read,ZohoMail.accounts.update aaaserver.profile.READ",
            &[],
        )
        .await;
    assert!(
        consent.contains("<li>ZohoMail.accounts.UPDATE</li>"),
        "{consent}"
    );
    let t = o.exchange(&o.approve(&consent).await["code"]).await;
    assert_eq!(
        t["scope"],
        "ZohoMail.accounts.READ,ZohoMail.accounts.UPDATE"
    );
    let reach = o.reach(t["access_token"].as_str().unwrap()).await;
    assert_eq!(
        reach,
        [
            answer(200, ""),
            answer(200, ""),
            answer(401, "INVALID_OAUTHSCOPE"),
        ]
    );
    // Zoho Mail's former name, for the organization: Paula is an admin, so it reads.
    let consent = o
        .consent_page("VirtualOffice.organization.accounts.READ", &[])
        .await;
    assert!(
        consent.contains("<li>ZohoMail.organization.accounts.READ</li>"),
        "{consent}"
    );
    let t = o.exchange(&o.approve(&consent).await["code"]).await;
    assert_eq!(t["scope"], "ZohoMail.organization.accounts.READ");
    let reach = o.reach(t["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (&reach[0], &reach[2]),
        (&answer(401, "INVALID_OAUTHSCOPE"), &answer(200, ""))
    );
}

async fn scope_requests_serving_nothing_or_malformed_are_refused() {
    let o = setup(&[]).with_user().await;
    let long = format!("ZohoMail.{}.READ", "a".repeat(200));
    let many = vec!["ZohoMail.tags.ALL"; 40].join(",");
    for (scope, says) in [
        (
            "ZohoMail.messages.ALL,aaaserver.profile.READ",
            "none of the scopes is served",
        ),
        ("", "no scope given"),
        (
            "ZohoMail.accounts.READ,ZohoMail..READ",
            "not a scope of the form",
        ),
        (
            "ZohoMail.accounts.READ,ZohoMail.accounts.WRITE",
            "not a scope of the form",
        ),
        (
            "ZohoMail.accounts.READ,ZohoMail.acc\u{7}ounts.READ",
            "not a scope of the form",
        ),
        ("ZohoMail.accounts.READ,openid", "not a scope of the form"),
        (&long[..], "longer than 100"),
        (&many[..], "more than 32"),
    ] {
        let (status, location) = {
            let r = o
                .auth_page(&[
                    ("response_type", "code"),
                    ("client_id", &o.client_id),
                    ("scope", scope),
                    ("state", "q"),
                ])
                .await;
            (
                r.status().as_u16(),
                r.headers()["location"].to_str().unwrap().to_string(),
            )
        };
        assert_eq!(status, 302, "{scope:?}");
        let back = query(&location);
        assert_eq!(back["error"], "invalid_scope", "{scope:?}");
        assert_eq!(back["state"], "q");
        assert!(
            back["error_description"].contains(says),
            "{scope:?}: {back:?}"
        );
        assert!(
            back["error_description"]
                .chars()
                .all(|c| (' '..='~').contains(&c)),
            "{back:?}"
        );
    }
    // The sign-in post checks the request again: a form altered on its way is refused.
    let (_, page) = o.authorize("ZohoMail.accounts.READ", "st-1").await;
    let (status, _, location) = o
        .submit(
            &page,
            &[
                ("email", EMAIL),
                ("password", PASSWORD),
                ("scope", "ZohoMail.messages.ALL"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    assert_eq!(query(&location.unwrap())["error"], "invalid_scope");
    assert_eq!(o.app.query("SELECT COUNT(*) FROM auth_codes"), ["0"]);
}

async fn the_command_line_accepts_zoho_scope_sets() {
    let o = setup(&[]).with_user().await;
    let out = o.app.cli(&[
        "oauth",
        "grant",
        "--client-id",
        &o.client_id,
        "--zuid",
        &o.zuid,
        "--scope",
        ZOHO_CLIENT_SCOPES,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scope"], "ZohoMail.accounts.READ");
    assert_eq!(
        v["unservedScopes"],
        json!([
            "ZohoMail.messages.ALL",
            "ZohoMail.folders.ALL",
            "aaaserver.profile.READ",
            "ZohoMail.tags.ALL"
        ])
    );
    assert_eq!(
        o.app.query("SELECT requested_scopes FROM refresh_tokens"),
        [ZOHO_CLIENT_SCOPES]
    );
    let t = o.refresh(v["refreshToken"].as_str().unwrap()).await;
    assert_eq!(t["scope"], "ZohoMail.accounts.READ");
    let reach = o.reach(t["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (&reach[0], &reach[1]),
        (&answer(200, ""), &answer(401, "INVALID_OAUTHSCOPE"))
    );

    let out = o.app.cli(&[
        "token",
        "issue",
        "--zuid",
        &o.zuid,
        "--scope",
        "ZohoMail.accounts.update,ZohoMail.accounts.READ,ZohoMail.organization.domains.ALL",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["scope"],
        "ZohoMail.accounts.UPDATE,ZohoMail.accounts.READ"
    );
    assert_eq!(
        v["unservedScopes"],
        json!(["ZohoMail.organization.domains.ALL"])
    );
    let reach = o.reach(v["accessToken"].as_str().unwrap()).await;
    assert_eq!(
        reach,
        [
            answer(200, ""),
            answer(200, ""),
            answer(401, "INVALID_OAUTHSCOPE"),
        ]
    );

    // Nothing served, or garbage: refused, saying why.
    for (command, scope, says) in [
        (
            "grant",
            "ZohoMail.messages.ALL,aaaserver.profile.READ",
            "none of the scopes is served",
        ),
        (
            "issue",
            "ZohoMail.messages.ALL",
            "none of the scopes is served",
        ),
        (
            "grant",
            "ZohoMail.accounts.READ,ZohoMail..ALL",
            "not a scope of the form",
        ),
        (
            "issue",
            "ZohoMail.accounts.READ,Zoho Mail",
            "not a scope of the form",
        ),
    ] {
        let out = match command {
            "grant" => o.app.cli(&[
                "oauth",
                "grant",
                "--client-id",
                &o.client_id,
                "--zuid",
                &o.zuid,
                "--scope",
                scope,
            ]),
            _ => o
                .app
                .cli(&["token", "issue", "--zuid", &o.zuid, "--scope", scope]),
        };
        assert_eq!(out.status.code(), Some(1), "{command} {scope:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{command} {scope:?}: {stderr}");
    }
}

async fn the_token_endpoint_takes_http_basic_client_credentials() {
    let o = setup(&[]).with_user().await;
    let pair = format!("{}:{}", o.client_id, o.secret);
    // A code exchanged with Basic alone.
    let code = o.browser_flow("ZohoMail.accounts.READ").await["code"].clone();
    let (status, _, body) = o
        .token_basic(
            &pair,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        o.api_status(t["access_token"].as_str().unwrap()).await.0,
        200
    );
    // A refresh with Basic, and with Basic and the same values in the form.
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh[..]),
    ];
    let (status, _, body) = o.token_basic(&pair, &grant).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("access_token"));
    let same = [
        &grant[..],
        &[
            ("client_id", &o.client_id[..]),
            ("client_secret", &o.secret[..]),
        ],
    ]
    .concat();
    assert_eq!(o.token_basic(&pair, &same).await.0, 200);
    // A wrong secret, an unknown client, a header that is not id:secret: 401, a
    // challenge, and nothing of what was sent.
    let wrong = format!("{}:mpcs_wrong-secret", o.client_id);
    let bad_header = "no colon here";
    for sent in [&wrong[..], "1000.NOPE:whatever", bad_header] {
        let (status, challenge, body) = o.token_basic(sent, &grant).await;
        assert_eq!(status, 401, "{sent}");
        assert_eq!(challenge.as_deref(), Some("Basic realm=\"oauth\""));
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"error": "invalid_client"})
        );
    }
    let r = o
        .http
        .post(o.url("/oauth/v2/token"))
        .header("authorization", "Basic %%%")
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Basic and form credentials that disagree: refused, whichever is right.
    for form in [
        [
            ("client_id", &o.client_id[..]),
            ("client_secret", "mpcs_other"),
        ],
        [
            ("client_id", "1000.OTHER"),
            ("client_secret", &o.secret[..]),
        ],
    ] {
        let params = [&grant[..], &form[..]].concat();
        let (status, _, body) = o.token_basic(&pair, &params).await;
        assert_eq!(status, 400, "{form:?}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"error": "invalid_request"})
        );
    }
    // The refusals spent nothing: the refresh token still works, in the form too.
    assert!(o.refresh(&refresh).await["access_token"].is_string());
}
