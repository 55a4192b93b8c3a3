//! The operator's endpoints (health, readiness, metrics, the OpenAPI document) and the
//! audit trail's read endpoint.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

backend_tests!(
    health_ready_and_the_openapi_document,
    metrics_count_requests_by_route_mode_and_status,
    audit_log_lists_changes_newest_first_with_filters,
    per_token_rate_limit_and_request_time_limit,
    oversized_headers_and_slow_clients,
    connections_past_the_limit_wait_until_one_closes,
);

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("{}{path}", app.base)).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn health_ready_and_the_openapi_document() {
    let app = TestApp::demo();
    assert_eq!(
        get(&app, "/health").await,
        (200, r#"{"status":"ok"}"#.to_string())
    );
    assert_eq!(
        get(&app, "/ready").await,
        (200, r#"{"status":"ok"}"#.to_string())
    );
    let (status, served) = get(&app, "/api/openapi.json").await;
    assert_eq!(status, 200);
    let served: Value = serde_json::from_str(&served).unwrap();
    let printed = app.cli(&["openapi"]);
    assert!(printed.status.success());
    let printed: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(
        served, printed,
        "GET /api/openapi.json and `mailplane openapi` give the same document"
    );
    assert_eq!(served["openapi"], "3.1.0");
    let committed: Value = serde_json::from_str(include_str!("../../../openapi.json")).unwrap();
    assert_eq!(served, committed, "the committed openapi.json is current");
}

async fn metrics_count_requests_by_route_mode_and_status() {
    let app = TestApp::demo();
    for blocked in [true, false, true] {
        let r = app
            .user()
            .update_account(
                REBECCA,
                &json!({"mode": "updateOutgoingStatus", "outgoingBlocked": blocked}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    let r = app
        .anonymous()
        .send(Method::PUT, &format!("/api/accounts/{REBECCA}"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, 200);
    let ok = r#"mailplane_http_requests_total{route="/api/accounts/{account_id}",mode="updateOutgoingStatus",status="200"} 3"#;
    assert!(text.contains(ok), "{text}");
    let refused = r#"mailplane_http_requests_total{route="/api/accounts/{account_id}",mode="",status="400"} 1"#;
    assert!(text.contains(refused), "{text}");
    assert!(text.contains(r#"mailplane_http_request_duration_seconds_count{route="/api/accounts/{account_id}",mode="updateOutgoingStatus",status="200"} 3"#));
    assert!(text.contains("mailplane_db_pool_connections{state=\"max\"}"));
    assert!(!text.contains(REBECCA), "ids never become labels");
    // SQLite's writer: the three changes were committed (in groups) and each commit's
    // flush was timed. PostgreSQL commits each request itself and has no such series.
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    if app.db.is_postgres() {
        assert_eq!(value("mailplane_db_commits_total"), None, "{text}");
    } else {
        let commits = value("mailplane_db_commits_total").unwrap();
        assert!(
            value("mailplane_db_committed_writes_total").unwrap() >= 3.0,
            "{text}"
        );
        assert!(commits >= 1.0, "{text}");
        assert_eq!(
            value("mailplane_db_commit_flush_seconds_count"),
            Some(commits)
        );
        assert_eq!(
            value(r#"mailplane_db_commit_flush_seconds_bucket{le="+Inf"}"#),
            Some(commits)
        );
        assert!(value("mailplane_db_commit_flush_seconds_sum").unwrap() > 0.0);
    }
}

async fn audit_log_lists_changes_newest_first_with_filters() {
    let app = TestApp::demo();
    let ext = json!({"fromAddress": "a@example.net", "displayName": "A", "mode": "extfrom", "serverName": "smtp.example.net",
                     "serverPort": 587, "userName": "a", "password": "AuditCanary-77", "smtpConnection": "tls"});
    let bodies = [
        json!({"mode": "addsendmaildetails", "sendMailDetails": [ext]}),
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    ];
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(
            app.user().update_account(REBECCA, b).await.unwrap().status,
            200
        );
        if i == 0 {
            // The new relay is checked in the background (and fails: no such host here);
            // its outcome is the system's audit row, waited for so the order is known.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let r = app.user().account(REBECCA).await.unwrap();
                let checked = r.data()["sendMailDetails"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| {
                        i["fromAddress"] == "a@example.net" && i.get("validatedTime").is_some()
                    });
                if checked {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the relay was never checked"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    let r = app
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "p@zylker.com", "password": "password-1"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    let log = |q: &'static str| {
        let admin = app.admin();
        async move {
            admin
                .send(
                    Method::GET,
                    &format!("/api/organization/{ZOID}/auditlog{q}"),
                    None,
                )
                .await
                .unwrap()
        }
    };
    let all = log("?limit=200").await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    let entries = all.data().as_array().unwrap();
    let modes: Vec<&str> = entries
        .iter()
        .map(|e| e["mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes,
        vec![
            "createUser",
            "emailupdate",
            "updateOutgoingStatus",
            "relaycheck",
            "addsendmaildetails"
        ],
        "newest first"
    );
    assert!(entries[3]["actor"]["zuid"].is_null(), "the system's row");
    let e = &entries[1];
    assert_eq!(e["actor"]["zuid"], json!(11111111));
    assert_eq!(e["target"]["accountId"], REBECCA);
    assert_eq!(e["clientAddress"], "127.0.0.1");
    assert_eq!(e["requestId"].as_str().unwrap().len(), 16);
    assert_eq!(
        (
            e["before"]["primaryEmailAddress"].clone(),
            e["after"]["primaryEmailAddress"].clone()
        ),
        (json!("becky@zylker.com"), json!("rebecca@zylker.com"))
    );
    assert!(e["time"].as_i64().unwrap() > 0);
    assert!(
        !all.body.to_string().contains("AuditCanary-77"),
        "never a secret"
    );
    // Filters and paging.
    let one = log("?limit=1&start=1").await;
    assert_eq!(one.data().as_array().unwrap().len(), 1);
    assert_eq!(one.data()[0]["mode"], "emailupdate");
    let by_account = log("?accountId=2560636000000008002").await;
    assert_eq!(by_account.data().as_array().unwrap().len(), 4);
    let later = log("?since=99999999999999").await;
    assert_eq!(later.data().as_array().unwrap().len(), 0);
    for bad in ["?limit=0", "?accountId=x", "?since=-5"] {
        assert_eq!(log(bad).await.status, 400, "{bad}");
    }
    // Refused requests on the admin URLs are kept as security events.
    let member = app.token(REBECCA_ZUID, "ZohoMail.organization.accounts.ALL");
    let r = app
        .client(Some(&member))
        .update_org_account(ZOID, REBECCA, &json!({"mode": "enableMailAccount"}))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let r = app
        .anonymous()
        .update_org_account(ZOID, REBECCA, &json!({"mode": "enableMailAccount"}))
        .await
        .unwrap();
    assert_eq!(
        r.status, 400,
        "not a refusal of a caller: nothing to record"
    );
    let mut events = Vec::new();
    for _ in 0..50 {
        events = log("?type=security")
            .await
            .data()
            .as_array()
            .unwrap()
            .clone();
        if !events.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["status"].clone(), events[0]["errorCode"].clone()),
        (json!(403), json!("NO_PERMISSION"))
    );
    assert_eq!(
        events[0]["path"],
        format!("/api/organization/{ZOID}/accounts/{REBECCA}")
    );
    assert_eq!(events[0]["method"], "PUT");
    assert_eq!(
        events[0]["actor"]["zuid"].to_string(),
        REBECCA_ZUID,
        "the refused token's user"
    );
    // Admin only, own organization only.
    let r = app
        .user()
        .send(
            Method::GET,
            &format!("/api/organization/{ZOID}/auditlog"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401, "a user token has no organization scope");
    let other = app.bootstrap("Other", "other.example", "boss@other.example");
    let boss = app.client(other["accessToken"].as_str());
    let r = boss
        .send(
            Method::GET,
            &format!("/api/organization/{ZOID}/auditlog"),
            None,
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (404, "NOT_FOUND"));
}

async fn per_token_rate_limit_and_request_time_limit() {
    let app = TestApp::demo_on(
        Db::fresh(),
        &["--rate-limit", "0.5", "--rate-limit-burst", "3"],
    );
    for _ in 0..3 {
        assert_eq!(app.user().account(REBECCA).await.unwrap().status, 200);
    }
    let r = reqwest::Client::new()
        .get(format!("{}/api/accounts/{REBECCA}", app.base))
        .header(
            "Authorization",
            format!("Zoho-oauthtoken {}", app.user_token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry = retry_after_secs(&r);
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"]["code"], 429);
    assert_eq!(body["data"]["errorCode"], "TOO_MANY_REQUESTS");
    // Another token has its own allowance.
    assert_eq!(app.admin().own_organization().await.unwrap().status, 200);
    // Off by default: the demo without the flag takes a burst.
    let open = TestApp::demo();
    for _ in 0..20 {
        assert_eq!(open.user().account(REBECCA).await.unwrap().status, 200);
    }
    // A request over the time limit is answered in the envelope, and leaves nothing behind
    // (adding a user hashes its password, which takes far longer than 1 ms).
    let slow = TestApp::demo_on(Db::fresh(), &["--request-timeout-ms", "1"]);
    let r = slow
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "late@zylker.com", "password": "password-1"}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (503, "REQUEST_TIMEOUT"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        slow.query("SELECT COUNT(*) FROM addresses WHERE address = 'late@zylker.com'")[0],
        "0"
    );
}

/// Sends raw bytes on a new connection and reads until the server closes it (or 5 s pass).
async fn raw_exchange(app: &TestApp, bytes: &[u8], then_wait: bool) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if !then_wait && out.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

async fn oversized_headers_and_slow_clients() {
    let app = TestApp::demo_on(Db::fresh(), &["--header-read-timeout-ms", "500"]);
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let (reply, _) = raw_exchange(&app, big.as_bytes(), false).await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    let fine = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(8 * 1024)
    );
    let (reply, _) = raw_exchange(&app, fine.as_bytes(), false).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // Half a request, then silence: the server hangs up instead of waiting forever.
    let (_, closed) = raw_exchange(&app, b"GET /health HTTP/1.1\r\nHost: x\r\n", true).await;
    assert!(
        closed,
        "the connection of a client that never finishes its headers is closed"
    );
    assert_eq!(
        get(&app, "/health").await.0,
        200,
        "and the server keeps serving"
    );
}

/// Sends `GET /health` on `s` (keep-alive) and reads the whole answer: head and body.
async fn health_on(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed before the whole answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("a Content-Length");
            if got.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

async fn connections_past_the_limit_wait_until_one_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let app = TestApp::demo_on(Db::fresh(), &["--max-connections", "2"]);
    let addr = app.base.trim_start_matches("http://").to_string();
    // Two keep-alive connections, served and left open: they hold both slots.
    let mut first = TcpStream::connect(&addr).await.unwrap();
    let mut second = TcpStream::connect(&addr).await.unwrap();
    for s in [&mut first, &mut second] {
        assert!(health_on(s).await.starts_with("HTTP/1.1 200"));
    }
    // A third connection is not accepted: the kernel completes it, its request waits.
    let mut third = TcpStream::connect(&addr).await.unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early =
        tokio::time::timeout(std::time::Duration::from_secs(2), third.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "a third connection was served past --max-connections 2: {early:?}"
    );
    // The connections already served still are.
    assert!(health_on(&mut second).await.starts_with("HTTP/1.1 200"));
    // One of them leaves: its slot goes to the waiting connection, which is answered.
    drop(first);
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
            let n = third.read(&mut buf).await.unwrap();
            assert!(n > 0, "the waiting connection was closed, not served");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the waiting connection is served once a slot is free");
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}
