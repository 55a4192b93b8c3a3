//! The web console in a real browser: Debian's Chromium, headless, driven over
//! WebDriver. An admin disables Rebecca's account, adds an `extfrom` identity whose
//! password no page ever shows, meets a refusal at its field, adds and deletes a user,
//! registers a client; Rebecca reorders her accounts and meets 403 and 404; a form
//! posted from another origin changes nothing. Every page is photographed at 1440 and
//! 375 px into `target/console-screenshots`.

mod common;

#[path = "common/browser.rs"]
mod browser;

use browser::Browser;
use common::console::demo_passwords;
use common::*;
use fantoccini::Locator;
use serde_json::Value;

#[cfg_attr(
    no_browser,
    ignore = "needs Chromium and chromium-driver (see crates/store/probes.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_rebecca_in_the_browser() {
    let app = TestApp::demo();
    let (admin_password, _) = demo_passwords(&app);
    let mut b = Browser::start("an_admin_manages_rebecca_in_the_browser").await;
    let base = app.base.clone();

    // The front door leads to the sign-in.
    b.goto(&format!("{base}/")).await;
    assert!(b.exists("#email").await, "the sign-in form");
    b.screenshot("sign-in").await;
    b.fill("#email", "admin@zylker.com").await;
    b.fill("#password", "a wrong password").await;
    b.click("form button[type=submit]").await;
    assert!(b
        .text("#signin-error")
        .await
        .contains("Wrong email address or password"));
    b.screenshot("sign-in-refused").await;
    b.fill("#email", "admin@zylker.com").await;
    b.fill("#password", &admin_password).await;
    let overview = b.click("form button[type=submit]").await;
    assert!(overview.contains("Zylker"), "the overview");
    b.screenshot("overview-first").await;

    // Rebecca's page: disable her account; the API says so.
    b.goto(&format!("{base}/console/users")).await;
    assert!(
        b.exists(&format!("a[href='/console/users/{REBECCA_ZUID}']"))
            .await
    );
    b.screenshot("users").await;
    b.click(&format!("a[href='/console/users/{REBECCA_ZUID}']"))
        .await;
    b.click(&format!("#account-{REBECCA} button[value=disable]"))
        .await;
    assert!(b.text("p.notice").await.contains("disabled"));
    let r = app.admin().org_account(ZOID, REBECCA_ZUID).await.unwrap();
    assert_eq!(r.body["data"]["status"], Value::Bool(false), "{}", r.body);

    // A refusal of the API, shown at the field it names.
    b.fill(&format!("#primary-{REBECCA}"), "becky@elsewhere.example")
        .await;
    b.click(&format!(
        "#account-{REBECCA} form.inline-form button[type=submit]"
    ))
    .await;
    let error = b.text(&format!("#primary-{REBECCA}-error")).await;
    assert!(error.contains("emailAddress"), "{error}");
    assert_eq!(
        b.client
            .find(Locator::Css(&format!("#primary-{REBECCA}")))
            .await
            .unwrap()
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    b.screenshot("user-field-error").await;

    // An extfrom identity: its password is in no page the browser is shown.
    let secret = "Browser-Relay-Secret-9f2c";
    b.goto(&format!("{base}/console/users/{REBECCA_ZUID}"))
        .await;
    b.press(&format!("#account-{REBECCA} details.add-identity summary"))
        .await;
    let field = |name: &str| format!("#id-{REBECCA}-{name}");
    b.fill(&field("fromAddress"), "rebecca@partner.example")
        .await;
    b.fill(&field("displayName"), "Rebecca at Partner").await;
    b.press(&format!("{} option[value=extfrom]", field("mode")))
        .await;
    b.fill(&field("serverName"), "smtp.partner.example").await;
    b.fill(&field("serverPort"), "587").await;
    b.fill(&field("userName"), "rebecca").await;
    b.fill(&field("password"), secret).await;
    b.click(&format!(
        "#account-{REBECCA} details.add-identity button[type=submit]"
    ))
    .await;
    let page = b.keep().await;
    assert!(
        page.contains("rebecca@partner.example"),
        "the identity is listed"
    );
    assert!(page.contains("awaiting confirmation"), "{page}");
    b.screenshot("user").await;

    // The admin's other pages.
    b.goto(&format!("{base}/console/audit")).await;
    assert!(b.exists("table").await);
    b.screenshot("audit").await;
    b.goto(&format!("{base}/console/audit?type=disableMailAccount"))
        .await;
    let filtered = b.keep().await;
    assert!(
        filtered.contains("disableMailAccount")
            && !filtered.contains("<code>addsendmaildetails</code>")
    );
    b.goto(&format!("{base}/console/security")).await;
    b.screenshot("security").await;
    b.goto(&format!("{base}/console/clients")).await;
    b.screenshot("clients-empty").await;
    b.fill("#client-name", "Helpdesk").await;
    b.fill("#client-redirect", "https://helpdesk.example/callback")
        .await;
    b.click("form.grid button[type=submit]").await;
    let client_secret = b.text("#client-secret").await;
    assert!(!client_secret.is_empty());
    b.screenshot("clients-registered").await;
    b.goto(&format!("{base}/console/clients")).await;
    let listed = b.keep().await;
    assert!(
        listed.contains("Helpdesk") && !listed.contains(&client_secret),
        "the secret is shown once"
    );

    // Add a user, then delete it after the confirmation that names it.
    b.goto(&format!("{base}/console/users")).await;
    b.fill("#new-primaryEmailAddress", "not an address").await;
    b.fill("#new-password", "Temp-Passw0rd-1").await;
    b.click("form.grid button[type=submit]").await;
    assert!(
        b.exists("#new-primaryEmailAddress-error").await,
        "the refusal at its field"
    );
    b.screenshot("users-field-error").await;
    b.fill("#new-primaryEmailAddress", "paula@zylker.com").await;
    b.fill("#new-password", "Temp-Passw0rd-1").await;
    b.fill("#new-firstName", "Paula").await;
    b.click("form.grid button[type=submit]").await;
    b.fill("#q", "paula").await;
    b.click("form.search button").await;
    let found = b.keep().await;
    assert!(
        found.contains("paula@zylker.com") && !found.contains("becky@zylker.com"),
        "{found}"
    );
    b.press("table input[type=checkbox]").await;
    let confirm = b.click("button.danger.secondary").await;
    assert!(
        confirm.contains("paula@zylker.com"),
        "the confirmation names the user"
    );
    b.screenshot("delete-users").await;
    b.click("form button.danger").await;
    assert!(b.text("p.notice").await.contains("deleted"));
    let r = app
        .admin()
        .org_account(ZOID, "paula@zylker.com")
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);

    // The overview again, with the changes made.
    b.goto(&format!("{base}/console")).await;
    assert!(b.keep().await.contains("disableMailAccount"));
    b.screenshot("overview").await;

    for html in &b.seen {
        assert!(!html.contains(secret), "a page showed the relay password");
    }
    assert!(!app.log().contains(secret));
    b.click("form.signout button").await;
    assert!(b.exists("#email").await, "signed out");
    b.close().await;
}

#[cfg_attr(
    no_browser,
    ignore = "needs Chromium and chromium-driver (see crates/store/probes.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebecca_reorders_her_accounts_and_meets_403_and_404() {
    let app = TestApp::demo();
    let (_, becky_password) = demo_passwords(&app);
    let admin_zuid = app.admin().accounts().await.unwrap().body["data"][0]["zuid"].to_string();
    let order = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["accountId"].as_str().unwrap().to_string())
            .collect()
    };
    let before = order(&app.user().accounts().await.unwrap().body);
    assert_eq!(before[0], REBECCA);

    let mut b = Browser::start("rebecca_reorders_her_accounts_and_meets_403_and_404").await;
    let base = app.base.clone();
    b.goto(&format!("{base}/console/sign-in")).await;
    b.fill("#email", "becky@zylker.com").await;
    b.fill("#password", &becky_password).await;
    let own = b.click("form button[type=submit]").await;
    assert!(own.contains("becky@zylker.com"), "her own page");
    assert!(
        !own.contains("href=\"/console/users\""),
        "no admin menu for a member"
    );
    b.screenshot("member-accounts").await;
    b.click(&format!("#account-{REBECCA} button[value=move_down]"))
        .await;
    assert!(b.text("p.notice").await.contains("order"));
    let after = order(&app.user().accounts().await.unwrap().body);
    assert_eq!(after[1], REBECCA, "{before:?} -> {after:?}");
    assert_eq!(after[0], before[1]);

    b.goto(&format!("{base}/console/users")).await;
    assert!(b.text("main h1").await.contains("Not allowed"));
    assert_eq!(
        b.text(".who").await,
        "becky@zylker.com",
        "the header names her by her mailbox, wherever it is in her order"
    );
    b.screenshot("member-forbidden").await;
    b.goto(&format!(
        "{base}/console/users/{}",
        admin_zuid.trim_matches('"')
    ))
    .await;
    assert!(b.text("main h1").await.contains("Not found"));
    b.close().await;
}

/// Serves one page, at every request, from another origin than the console's.
async fn attacker_page(html: String) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

#[cfg_attr(
    no_browser,
    ignore = "needs Chromium and chromium-driver (see crates/store/probes.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_origin_changes_nothing() {
    let app = TestApp::demo();
    let (admin_password, _) = demo_passwords(&app);
    let mut b = Browser::start("a_form_posted_from_another_origin_changes_nothing").await;
    let base = app.base.clone();
    b.goto(&format!("{base}/console/sign-in")).await;
    b.fill("#email", "admin@zylker.com").await;
    b.fill("#password", &admin_password).await;
    b.click("form button[type=submit]").await;
    let audit_before = app.query("SELECT COUNT(*) FROM audit");

    // The same site on another port (the cookie goes along), then another site
    // (`localhost`: SameSite=Lax keeps the cookie home).
    let form = format!(
        "<!doctype html><title>Win a prize</title><form method=post action=\"{base}/console/accounts/{REBECCA}\">\
         <input type=hidden name=action value=disable><button id=go>Claim</button></form>"
    );
    let port = attacker_page(form).await;
    for origin in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        b.goto(&origin).await;
        b.click("#go").await;
        let answer = b.keep().await;
        assert!(
            answer.contains("Nothing was changed") || answer.contains("id=\"email\""),
            "{origin}: {answer}"
        );
    }
    b.screenshot("cross-site-refused").await;
    let r = app.admin().org_account(ZOID, REBECCA_ZUID).await.unwrap();
    assert_eq!(r.body["data"]["status"], Value::Bool(true), "{}", r.body);
    assert_eq!(app.query("SELECT COUNT(*) FROM audit"), audit_before);
    b.close().await;
}
