//! PostgreSQL going away and coming back. The server reaches PostgreSQL through a small
//! TCP forwarder of the test's own, which makes two kinds of outage:
//!
//! - gone: the forwarder stops (its listener and every forwarded connection close);
//! - silent: the forwarder keeps every connection open, accepts new ones, and passes no
//!   byte either way (a network partition), so only the server's timeout ends a wait.
//!
//! During either, every request answers 503 `DATABASE_UNAVAILABLE` in the error envelope
//! within about `--db-timeout-ms` (1000 here), never hanging; once the forwarder works
//! again (on the same port), the same server process answers 200 again by itself.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::dict_client::Dict;
use common::socketmap_client::Socketmap;
use common::*;
use mailplane_client::Reply;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

postgres_tests!(
    database_gone_answers_503_promptly_then_the_node_recovers_by_itself,
    database_silent_answers_503_within_the_timeout_then_the_node_recovers_by_itself,
);

/// The server's `--db-timeout-ms`.
const DB_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a 503 may take: the database timeout and some slack.
const PROMPT: Duration = Duration::from_millis(3000);
/// The client gives up after this: an answer that takes longer is a hang.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the node may take to answer 200 again once the database is back.
const RECOVERY: Duration = Duration::from_secs(10);

/// A TCP forwarder from a local port to `upstream`, which can be stopped and started
/// again on the same port, or frozen and thawed.
struct Forwarder {
    addr: SocketAddr,
    upstream: String,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    frozen: watch::Sender<bool>,
}

impl Forwarder {
    /// A forwarder to `upstream` on a free port, started.
    async fn start(upstream: &str) -> Forwarder {
        let listener = bind("127.0.0.1:0".parse().unwrap());
        let mut f = Forwarder {
            addr: listener.local_addr().unwrap(),
            upstream: upstream.to_string(),
            running: None,
            frozen: watch::channel(false).0,
        };
        f.run(listener);
        f
    }

    fn run(&mut self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel();
        let frozen = self.frozen.subscribe();
        let task = tokio::spawn(forward(listener, self.upstream.clone(), frozen, stopped));
        self.running = Some((stop, task));
    }

    /// Closes the listener and every forwarded connection, and waits until they are.
    async fn stop(&mut self) {
        let (stop, task) = self.running.take().expect("running");
        let _ = stop.send(());
        task.await.expect("forwarder task");
    }

    /// Listens on the same port again.
    async fn resume(&mut self) {
        assert!(self.running.is_none(), "already running");
        let listener = bind(self.addr);
        self.run(listener);
    }

    /// Passes no more bytes, keeping every connection open (and taking new ones).
    fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Passes bytes again, those held included.
    fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

/// A listener on `addr`, which may be a port just closed (SO_REUSEADDR).
fn bind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(128).unwrap()
}

/// Accepts connections and copies each both ways to a new connection to `upstream`
/// (holding the bytes while `frozen`), until `stopped`; then drops the listener and every
/// connection.
async fn forward(
    listener: TcpListener,
    upstream: String,
    frozen: watch::Receiver<bool>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { continue };
                let (upstream, frozen) = (upstream.clone(), frozen.clone());
                connections.spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(&upstream).await {
                        let (from_server, to_server) = inbound.into_split();
                        let (from_db, to_db) = outbound.into_split();
                        tokio::join!(
                            pump(from_server, to_db, frozen.clone()),
                            pump(from_db, to_server, frozen),
                        );
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Copies `from` to `to` until either ends; while `frozen`, holds what it has read.
async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if frozen.wait_for(|f| !f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The requests tried during an outage: reads and a write, user and admin URLs.
async fn requests(app: &TestApp) -> Vec<(&'static str, Reply)> {
    let outgoing = json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true});
    vec![
        ("GET account", timed(app.user().account(REBECCA)).await),
        ("GET accounts", timed(app.user().accounts()).await),
        (
            "PUT account",
            timed(app.user().update_account(REBECCA, &outgoing)).await,
        ),
        (
            "GET organization",
            timed(app.admin().own_organization()).await,
        ),
    ]
}

/// The answer of `request`, which must come within [`CLIENT_TIMEOUT`].
async fn timed(request: impl std::future::Future<Output = Result<Reply, reqwest::Error>>) -> Reply {
    let start = Instant::now();
    let r = tokio::time::timeout(CLIENT_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| panic!("no answer within {CLIENT_TIMEOUT:?}: the server hangs"))
        .expect("request sent");
    let took = start.elapsed();
    eprintln!("  {} in {took:?}", r.status);
    assert!(took <= PROMPT, "the answer took {took:?}: {}", r.body);
    r
}

/// The 503 error envelope with `DATABASE_UNAVAILABLE`.
fn assert_unavailable(what: &str, r: &Reply) {
    assert_eq!(r.status, 503, "{what}: {}", r.body);
    assert_eq!(r.body["status"]["code"], 503, "{what}: {}", r.body);
    assert!(
        r.body["status"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{what}: {}",
        r.body
    );
    assert_eq!(r.error_code(), "DATABASE_UNAVAILABLE", "{what}: {}", r.body);
    assert!(!r.more_info().is_empty(), "{what}: {}", r.body);
    assert!(
        !r.more_info().contains("postgres://"),
        "{what}: moreInfo shows the database URL: {}",
        r.body
    );
}

/// Polls until Rebecca's account reads 200 again; every answer before is a 503.
async fn wait_for_recovery(app: &TestApp) -> Duration {
    let start = Instant::now();
    loop {
        let r = timed(app.user().account(REBECCA)).await;
        if r.status == 200 {
            return start.elapsed();
        }
        assert_unavailable("while PostgreSQL comes back", &r);
        assert!(
            start.elapsed() < RECOVERY,
            "still 503 {RECOVERY:?} after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The demo on PostgreSQL through a forwarder, with `--db-timeout-ms 1000`; every
/// request answers 200 before the outage.
async fn demo_through_a_forwarder(db: &Db) -> (TestApp, Forwarder) {
    let Db::Postgres(pg) = db else {
        unreachable!("a PostgreSQL test")
    };
    let forwarder = Forwarder::start(&pg.host_port()).await;
    let via_forwarder = pg.url_via(&forwarder.addr.to_string());
    let timeout_ms = DB_TIMEOUT.as_millis().to_string();
    let app = TestApp::demo_with_mail_listeners(
        db.clone(),
        &["--db", &via_forwarder, "--db-timeout-ms", &timeout_ms],
    );
    for (what, r) in requests(&app).await {
        assert_eq!(r.status, 200, "{what} before the outage: {}", r.body);
    }
    (app, forwarder)
}

/// During an outage: every request answers 503, twice over (first on the pooled
/// connections, then on new ones); the mail server's lookups answer a temporary failure,
/// never "not found" (which would bounce mail or refuse a login as unknown).
async fn assert_all_unavailable(app: &TestApp, outage: &str) {
    for _ in 0..2 {
        for (what, r) in requests(app).await {
            assert_unavailable(&format!("{outage}: {what}"), &r);
        }
    }
    let mut socketmap = Socketmap::connect(app).await;
    for map in [
        "domains",
        "mailboxes",
        "aliases",
        "senderlogin",
        "transport",
        "relaycreds",
        "tlspolicy",
    ] {
        let key = match map {
            "domains" => "zylker.com",
            // A TLS policy missing by accident would fall back to main.cf's level.
            "tlspolicy" => "[8.8.8.8]:587",
            _ => "becky@zylker.com",
        };
        let answer = timed_lookup(socketmap.lookup(map, key)).await;
        assert!(
            answer.starts_with("TEMP "),
            "{outage}: socketmap {map}: {answer:?}"
        );
    }
    let mut dict = Dict::connect(app).await;
    for key in [
        "passdb/imap/becky@zylker.com",
        "deny/imap/becky@zylker.com",
        "userdb/becky@zylker.com",
    ] {
        let answer = timed_lookup(dict.lookup(key)).await;
        assert!(answer.starts_with('F'), "{outage}: dict {key}: {answer:?}");
    }
}

/// A lookup's answer, which must come within [`PROMPT`].
async fn timed_lookup(lookup: impl std::future::Future<Output = String>) -> String {
    let started = Instant::now();
    let answer = lookup.await;
    assert!(
        started.elapsed() < PROMPT,
        "a lookup took {:?} during the outage",
        started.elapsed()
    );
    answer
}

/// After an outage: 200 again within [`RECOVERY`], then a write lands in the database.
async fn assert_recovers(app: &TestApp, outage: &str, blocked: bool) {
    let took = wait_for_recovery(app).await;
    eprintln!("{outage}: 200 again {took:?} after the database came back");
    let r = app
        .user()
        .update_account(
            REBECCA,
            &json!({"mode": "updateOutgoingStatus", "outgoingBlocked": blocked}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "a write after {outage}: {}", r.body);
    let stored = app.query(&format!(
        "SELECT outgoing_blocked FROM accounts WHERE account_id = {REBECCA}"
    ));
    assert_eq!(stored, [if blocked { "t" } else { "f" }], "after {outage}");
}

fn assert_still_running(app: &mut TestApp) {
    assert!(app.is_running(), "the same process throughout");
    assert!(
        !app.log().contains("panicked"),
        "the server panicked:\n{}",
        app.log()
    );
}

async fn database_gone_answers_503_promptly_then_the_node_recovers_by_itself() {
    let db = Db::fresh();
    let (mut app, mut forwarder) = demo_through_a_forwarder(&db).await;
    for round in 1..=2 {
        let outage = format!("database gone ({round})");
        eprintln!("{outage}: forwarder stopped");
        forwarder.stop().await;
        assert_all_unavailable(&app, &outage).await;
        forwarder.resume().await;
        assert_recovers(&app, &outage, round % 2 == 1).await;
    }
    assert_still_running(&mut app);
}

async fn database_silent_answers_503_within_the_timeout_then_the_node_recovers_by_itself() {
    let db = Db::fresh();
    let (mut app, forwarder) = demo_through_a_forwarder(&db).await;
    for round in 1..=2 {
        let outage = format!("database silent ({round})");
        eprintln!("{outage}: forwarder frozen");
        forwarder.freeze();
        assert_all_unavailable(&app, &outage).await;
        forwarder.thaw();
        assert_recovers(&app, &outage, round % 2 == 1).await;
    }
    assert_still_running(&mut app);
}
