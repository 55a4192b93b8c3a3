//! No anonymous client can fill the disk: what a flood of refused requests, a stolen token,
//! an oversized path and a writer that cannot keep up cost, and what retention removes.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

backend_tests!(
    two_thousand_refusals_cost_no_write_and_become_a_handful_of_rows,
    a_valid_tokens_refusals_are_written_one_by_one_up_to_a_cap,
    an_address_presenting_invalid_tokens_is_refused_before_any_lookup,
    retention_prunes_old_security_events_in_batches_and_keeps_the_audit,
    audit_retention_when_asked_removes_only_old_rows;
    sqlite only: a_full_writer_queue_answers_503_and_loses_nothing_acknowledged,
);

/// A window longer than any test: refusals are written only at shutdown.
const NO_WINDOW: &[&str] = &["--security-event-window-ms", "600000"];

/// The SQLite database's size in pages, as its last commit left it (the WAL included,
/// whatever the checkpoints have copied to the file yet).
fn sqlite_pages(app: &TestApp) -> u64 {
    app.query("PRAGMA page_count")[0].parse().unwrap()
}

/// `(count, status, actor_zuid, path length)` of every security event, read from the
/// database.
fn event_rows(app: &TestApp) -> Vec<(u64, u16, String, usize)> {
    app.query_rows("SELECT count, status, actor_zuid, path FROM security_events ORDER BY id")
        .into_iter()
        .map(|r| {
            (
                r[0].parse().unwrap(),
                r[1].parse().unwrap(),
                r[2].clone(),
                r[3].chars().count(),
            )
        })
        .collect()
}

/// Sends `n` requests spread over `workers` concurrent clients; their statuses.
async fn flood<F, Fut>(n: usize, workers: usize, send: F) -> Vec<u16>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let send = Arc::new(send);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let send = send.clone();
        tasks.spawn(async move {
            let mut out = Vec::new();
            for i in (w..n).step_by(workers) {
                out.push(send(i).await);
            }
            out
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    all
}

async fn two_thousand_refusals_cost_no_write_and_become_a_handful_of_rows() {
    let mut app = TestApp::demo_on(Db::fresh(), NO_WINDOW);
    let before = (!app.db.is_postgres()).then(|| sqlite_pages(&app));
    let base = app.base.clone();
    let http = reqwest::Client::new();
    let statuses = flood(2000, 32, move |i| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}/api/organization/{ZOID}/accounts/{REBECCA}"))
                .header("Authorization", format!("Zoho-oauthtoken mpat_made_up_{i}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    })
    .await;
    assert!(statuses.iter().all(|s| *s == 401), "all refused");
    // A path of 15,000 characters, refused like the others.
    let long = format!(
        "{}/api/organization/{ZOID}/accounts/{}",
        app.base,
        "9".repeat(15_000)
    );
    let r = reqwest::Client::new()
        .get(long)
        .header("Authorization", "Zoho-oauthtoken mpat_made_up_long")
        .send()
        .await
        .unwrap();
    assert!([401, 404].contains(&r.status().as_u16()), "{}", r.status());
    // Not one byte written for them so far.
    assert!(event_rows(&app).is_empty());
    if let Some(before) = before {
        assert_eq!(sqlite_pages(&app), before, "the database did not grow");
    }
    // At shutdown what was counted is written: a handful of rows counting every refusal.
    assert!(app.terminate(), "graceful stop");
    let rows = event_rows(&app);
    assert!(rows.len() <= 3, "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.0).sum::<u64>(), 2001, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| [401, 404].contains(&r.1) && r.2 == "NULL"));
    assert!(
        rows.iter()
            .all(|r| r.3 <= mailplane_store::MAX_EVENT_PATH_CHARS + 1),
        "sample paths are cut: {rows:?}"
    );
    if let Some(before) = before {
        let grown = sqlite_pages(&app).saturating_sub(before);
        assert!(grown <= 4, "grew {grown} pages for 2,001 refusals");
    }
}

async fn a_valid_tokens_refusals_are_written_one_by_one_up_to_a_cap() {
    let mut app = TestApp::demo_on(
        Db::fresh(),
        &[NO_WINDOW, &["--security-events-per-user", "5"]].concat(),
    );
    // Rebecca is a member: her token with the organization scope is refused on admin URLs.
    let member = app.token(REBECCA_ZUID, "ZohoMail.organization.accounts.ALL");
    for _ in 0..30 {
        let r = app
            .client(Some(&member))
            .update_org_account(ZOID, REBECCA, &json!({"mode": "enableMailAccount"}))
            .await
            .unwrap();
        assert_eq!(r.status, 403);
    }
    assert!(app.terminate());
    let rows = event_rows(&app);
    let singles = rows.iter().filter(|r| r.0 == 1).count();
    assert_eq!(singles, 5, "{rows:?}");
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.0).sum::<u64>(), 30);
    assert!(
        rows.iter().all(|r| r.2 == REBECCA_ZUID),
        "each names the user"
    );
}

async fn an_address_presenting_invalid_tokens_is_refused_before_any_lookup() {
    let app = TestApp::demo_on(Db::fresh(), &["--bad-token-limit", "20"]);
    let path = format!("{}/api/organization/{ZOID}", app.base);
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    // GET of the organization from `client` with `token`.
    let ask = |client: &reqwest::Client, token: String| {
        client
            .get(&path)
            .header("Authorization", format!("Zoho-oauthtoken {token}"))
            .send()
    };
    let attacker = from("127.0.0.1");
    for i in 0..20 {
        let r = ask(&attacker, format!("mpat_bad_{i}")).await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = ask(&attacker, "mpat_bad_21".into()).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait = retry_after_secs(&r);
    assert!((1..=10).contains(&wait), "{wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["errorCode"], "TOO_MANY_REQUESTS");
    // The address is refused whatever the token, for the rest of the window…
    let r = ask(&attacker, app.admin_token.clone()).await.unwrap();
    assert_eq!(r.status(), 429);
    // … and other addresses are not.
    let r = ask(&from("127.0.0.2"), app.admin_token.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The refusals are recorded, counted, like any other (read from the other address).
    let events = wait_for_events(&app, |e| e.iter().any(|x| x["status"] == 429)).await;
    assert!(events.iter().all(|e| e["clientAddress"] == "127.0.0.1"));
    let total: u64 = events.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 22, "{events:?}");
}

/// The organization's security events (the audit API, asked from 127.0.0.2), once `done`
/// says so, or after 10 s.
async fn wait_for_events(app: &TestApp, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let http = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    loop {
        let r: Value = http
            .get(format!(
                "{}/api/organization/{ZOID}/auditlog?type=security&limit=200",
                app.base
            ))
            .header(
                "Authorization",
                format!("Zoho-oauthtoken {}", app.admin_token),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = r["data"].as_array().cloned().unwrap_or_default();
        if done(&events) || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Adds `n` security events and one audit row, all `days` old.
fn add_old_rows(app: &TestApp, n: u32, days: i64) {
    let at = now_ms() - days * DAY_MS;
    let numbers = if app.db.is_postgres() {
        format!("generate_series(1, {n}) AS n(i)")
    } else {
        format!("(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) AS n")
    };
    app.execute(&format!(
        "INSERT INTO security_events (at_ms, first_ms, count, zoid, method, path, status, error_code) \
         SELECT {at}, {at}, 1, {ZOID}, 'GET', '/old', 401, 'INVALID_OAUTHTOKEN' FROM {numbers}"
    ));
    app.execute(&format!(
        "INSERT INTO audit (at_ms, zoid, mode, before, after) VALUES ({at}, {ZOID}, 'old', '{{}}', '{{}}')"
    ));
}

/// `/metrics`' value of a series line, waiting up to 20 s for it to reach `at_least`.
async fn metric_reaching(app: &TestApp, line: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = reqwest::get(format!("{}/metrics", app.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if value >= at_least || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn retention_prunes_old_security_events_in_batches_and_keeps_the_audit() {
    let app = TestApp::demo_on(Db::fresh(), &["--retention-interval-ms", "300"]);
    // 1,200 events of 100 days ago (more than two batches), 3 of 10 days ago.
    add_old_rows(&app, 1200, 100);
    add_old_rows(&app, 3, 10);
    let pruned = metric_reaching(
        &app,
        r#"mailplane_retention_pruned_rows_total{table="security_events"}"#,
        1200.0,
    )
    .await;
    assert_eq!(pruned, 1200.0);
    let left = app.query("SELECT count(*) FROM security_events");
    assert_eq!(left, vec!["3"]);
    assert_eq!(
        app.query("SELECT count(*) FROM audit WHERE mode = 'old'"),
        vec!["2"],
        "the audit trail is kept forever by default"
    );
}

async fn audit_retention_when_asked_removes_only_old_rows() {
    let app = TestApp::demo_on(
        Db::fresh(),
        &[
            "--retention-interval-ms",
            "300",
            "--audit-retention-days",
            "30",
        ],
    );
    add_old_rows(&app, 1, 400);
    add_old_rows(&app, 1, 10);
    let pruned = metric_reaching(
        &app,
        r#"mailplane_retention_pruned_rows_total{table="audit"}"#,
        1.0,
    )
    .await;
    assert_eq!(pruned, 1.0);
    assert_eq!(
        app.query("SELECT count(*) FROM audit WHERE mode = 'old'"),
        vec!["1"]
    );
    // Security events of 400 days are past the default 90 days; of 10 days, kept.
    metric_reaching(
        &app,
        r#"mailplane_retention_pruned_rows_total{table="security_events"}"#,
        1.0,
    )
    .await;
    assert_eq!(app.query("SELECT count(*) FROM security_events"), vec!["1"]);
}

async fn a_full_writer_queue_answers_503_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = TestApp::serve(
        dir,
        &["--demo", "--write-queue", "2"],
        &[("MAILPLANE_TEST_WRITE_STALL_MS", "1500")],
    );
    app.load_demo_tokens();
    let (base, token) = (app.base.clone(), app.user_token.clone());
    let answers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = answers.clone();
    flood(12, 12, move |i| {
        let (base, token, seen) = (base.clone(), token.clone(), seen.clone());
        async move {
            let body = json!({"mode": "addsendmaildetails", "sendMailDetails": [
                {"fromAddress": format!("b{i}@example.org"), "displayName": "B", "mode": "backupacc"}]});
            let r = reqwest::Client::new()
                .put(format!("{base}/api/accounts/{REBECCA}"))
                .header("Authorization", format!("Zoho-oauthtoken {token}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            let body: Value = r.json().await.unwrap();
            seen.lock().unwrap().push((i, status, retry, body));
            status
        }
    })
    .await;
    let answers = answers.lock().unwrap().clone();
    let busy: Vec<_> = answers.iter().filter(|a| a.1 == 503).collect();
    assert!(!busy.is_empty(), "the queue of 2 filled: {answers:?}");
    for (_, _, retry, body) in &busy {
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["data"]["errorCode"], "SERVER_BUSY");
    }
    assert!(
        answers.iter().all(|a| a.1 == 200 || a.1 == 503),
        "{answers:?}"
    );
    // Every acknowledged identity is there, no refused one is.
    let account = app.user().account(REBECCA).await.unwrap();
    let stored = identity_addresses(account.data());
    for (i, status, _, _) in &answers {
        let address = format!("b{i}@example.org");
        assert_eq!(
            stored.contains(&address),
            *status == 200,
            "{address}: {status}"
        );
    }
    // And they survive a restart.
    assert!(app.terminate());
    let acknowledged = answers.iter().filter(|a| a.1 == 200).count();
    let rows = app.query("SELECT count(*) FROM identities WHERE mode = 'backupacc'");
    assert_eq!(rows, vec![acknowledged.to_string()]);
}
