//! The Postfix socketmap (`serve --socketmap-listen`), over real sockets: the
//! socketmap_table protocol (a netstring `<len>:<map> <key>,` asks, a netstring
//! `OK <value>`, `NOTFOUND `, `TEMP <reason>` or `PERM <reason>` answers, many lookups per
//! connection) and its maps `senderlogin`, `relayhost` and `relaycreds`, as the API
//! changes them.
//!
//! Every read and write has a timeout: a server that hangs fails the test instead of
//! hanging it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

backend_tests!(
    senderlogin_lists_the_logins_that_may_send_as_an_address,
    senderlogin_of_unknown_addresses_and_domains_is_notfound,
    relayhost_answers_the_relay_of_an_extfrom_identity,
    relayhost_resolves_relay_names_at_lookup_time,
    relay_names_resolving_to_internal_addresses_are_perm_without_the_flag,
    relaycreds_answer_exactly_user_colon_password,
    an_unknown_map_is_perm,
    netstrings_over_10000_bytes_are_perm_and_close,
    malformed_netstrings_are_perm_and_close,
    many_lookups_on_one_connection_and_many_connections_at_once,
    pipelined_lookups_are_answered_in_order,
    lookups_written_in_tiny_pieces_are_answered,
    a_lookup_then_end_of_input_is_answered_then_closed,
    clients_leaving_mid_request_do_not_disturb_the_server,
    api_changes_apply_to_the_next_lookup_on_the_same_connection,
    a_second_node_answers_from_the_same_database,
);

/// The longest any single read or write may take.
const TIMEOUT: Duration = Duration::from_secs(10);

const BECKY: &str = "becky@zylker.com";
const ADMIN: &str = "admin@zylker.com";
const NOTFOUND: &str = "NOTFOUND ";

/// The demo with the socketmap (and the policy service) on free ports.
fn app_with(extra: &[&str]) -> TestApp {
    let args = [
        &[
            "--policy-listen",
            "127.0.0.1:0",
            "--socketmap-listen",
            "127.0.0.1:0",
        ],
        extra,
    ]
    .concat();
    let app = TestApp::demo_on(Db::fresh(), &args);
    assert!(
        app.socketmap_addr.is_some(),
        "serve did not print `mailplane socketmap listening on ADDR`"
    );
    app
}

fn app() -> TestApp {
    app_with(&[])
}

/// The demo allowing relays at internal addresses (`--allow-internal-relays`).
fn internal_app() -> TestApp {
    app_with(&["--allow-internal-relays"])
}

// ---- the protocol, client side ----

fn netstring(payload: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v.push(b',');
    v
}

fn query(map: &str, key: &str) -> Vec<u8> {
    netstring(format!("{map} {key}").as_bytes())
}

/// One connection to the socketmap.
struct Socketmap {
    reader: BufReader<OwnedReadHalf>,
    writer: Option<OwnedWriteHalf>,
}

impl Socketmap {
    async fn connect(app: &TestApp) -> Socketmap {
        let addr = app
            .socketmap_addr
            .as_deref()
            .expect("the socketmap address");
        let stream = timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connecting to the socketmap timed out")
            .expect("connect to the socketmap");
        stream.set_nodelay(true).unwrap();
        let (r, w) = stream.into_split();
        Socketmap {
            reader: BufReader::new(r),
            writer: Some(w),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        let w = self.writer.as_mut().expect("not shut down");
        timeout(TIMEOUT, async {
            w.write_all(bytes).await?;
            w.flush().await
        })
        .await
        .expect("writing to the socketmap timed out")
        .expect("write to the socketmap");
    }

    /// Writes, ignoring errors (the server may already have closed the connection).
    async fn send_regardless(&mut self, bytes: &[u8]) {
        let w = self.writer.as_mut().expect("not shut down");
        let _ = timeout(TIMEOUT, async {
            w.write_all(bytes).await?;
            w.flush().await
        })
        .await
        .expect("writing to the socketmap timed out");
    }

    async fn send_byte_by_byte(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.send(&[*b]).await;
            sleep(Duration::from_millis(3)).await;
        }
    }

    async fn shutdown_write(&mut self) {
        let mut w = self.writer.take().expect("not shut down yet");
        timeout(TIMEOUT, w.shutdown())
            .await
            .expect("shutdown timed out")
            .expect("shutdown");
    }

    async fn byte(&mut self, what: &str) -> Option<u8> {
        match timeout(TIMEOUT, self.reader.read_u8()).await {
            Err(_) => panic!("no answer within {TIMEOUT:?} ({what})"),
            Ok(Ok(b)) => Some(b),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof || is_reset(&e) => None,
            Ok(Err(e)) => panic!("reading ({what}): {e}"),
        }
    }

    /// Reads one netstring answer (strictly: digits, `:`, that many bytes, `,`); `None`
    /// when the server closed the connection before its first byte.
    async fn try_answer(&mut self) -> Option<String> {
        let mut len = String::new();
        loop {
            let Some(b) = self.byte("the netstring length").await else {
                assert!(
                    len.is_empty(),
                    "the connection closed inside a netstring length {len:?}"
                );
                return None;
            };
            match b {
                b'0'..=b'9' if len.len() < 6 => len.push(b as char),
                b':' if !len.is_empty() => break,
                _ => panic!(
                    "not a netstring: {:?} after {len:?}",
                    String::from_utf8_lossy(&[b])
                ),
            }
        }
        let len: usize = len.parse().unwrap();
        let mut payload = vec![0u8; len];
        timeout(TIMEOUT, self.reader.read_exact(&mut payload))
            .await
            .expect("the netstring payload did not arrive in time")
            .expect("the connection closed inside a netstring");
        let comma = self.byte("the netstring's comma").await;
        assert_eq!(
            comma,
            Some(b','),
            "a netstring ends with `,` (payload {:?})",
            String::from_utf8_lossy(&payload)
        );
        Some(String::from_utf8(payload).expect("the answer is UTF-8"))
    }

    async fn answer(&mut self) -> String {
        self.try_answer()
            .await
            .expect("the socketmap closed the connection instead of answering")
    }

    async fn lookup(&mut self, map: &str, key: &str) -> String {
        self.send(&query(map, key)).await;
        self.answer().await
    }

    /// Asserts that the server closes the connection, sending nothing more.
    async fn assert_closed(&mut self, what: &str) {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match timeout(TIMEOUT, self.reader.read(&mut buf)).await {
                Err(_) => panic!(
                    "{what}: the connection is still open after {TIMEOUT:?} (received {:?})",
                    String::from_utf8_lossy(&got)
                ),
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Ok(Err(e)) if is_reset(&e) => break,
                Ok(Err(e)) => panic!("{what}: reading: {e}"),
            }
        }
        assert!(
            got.is_empty(),
            "{what}: expected the connection to close, got {:?}",
            String::from_utf8_lossy(&got)
        );
    }

    /// Asserts a `PERM <reason>` answer, then the close.
    async fn assert_perm_then_closed(&mut self, what: &str) {
        let a = self
            .try_answer()
            .await
            .unwrap_or_else(|| panic!("{what}: closed without the PERM answer"));
        assert_perm(&a, what);
        self.assert_closed(what).await;
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}

// ---- what the answers must be ----

fn assert_perm(answer: &str, what: &str) {
    let reason = answer
        .strip_prefix("PERM ")
        .unwrap_or_else(|| panic!("{what}: expected `PERM <reason>`, got {answer:?}"));
    assert!(!reason.trim().is_empty(), "{what}: PERM without a reason");
}

/// The value of an `OK <value>` answer.
fn ok_value<'a>(answer: &'a str, what: &str) -> &'a str {
    answer
        .strip_prefix("OK ")
        .unwrap_or_else(|| panic!("{what}: expected `OK <value>`, got {answer:?}"))
}

/// The logins of an `OK login1,login2,…` answer of `senderlogin`.
fn logins(answer: &str, what: &str) -> BTreeSet<String> {
    let list = ok_value(answer, what);
    let logins: Vec<&str> = list.split(',').collect();
    for l in &logins {
        assert!(
            !l.is_empty() && !l.contains(' ') && l.contains('@'),
            "{what}: a bad login {l:?} in {answer:?}"
        );
    }
    let set: BTreeSet<String> = logins.iter().map(|l| l.to_string()).collect();
    assert_eq!(set.len(), logins.len(), "{what}: duplicates in {answer:?}");
    set
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---- the API ----

async fn user_put(app: &TestApp, body: Value) -> Value {
    let r = app.user().update_account(REBECCA, &body).await.unwrap();
    assert_eq!(r.status, 200, "{body}: {}", r.body);
    r.body
}

async fn admin_put(app: &TestApp, body: Value) -> Value {
    let r = app
        .admin()
        .update_org_account(ZOID, REBECCA, &body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{body}: {}", r.body);
    r.body
}

fn relay(from: &str, server: &str, port: u16, user: &str, password: &str) -> Value {
    json!({ "fromAddress": from, "displayName": "R", "mode": "extfrom", "serverName": server,
            "serverPort": port, "userName": user, "password": password, "smtpConnection": "tls" })
}

async fn add_identity(app: &TestApp, detail: Value) {
    user_put(
        app,
        json!({"mode": "addsendmaildetails", "sendMailDetails": [detail]}),
    )
    .await;
}

// ---- senderlogin ----

async fn senderlogin_lists_the_logins_that_may_send_as_an_address() {
    let app = app();
    // Rebecca's login is her address (account 2560636000000008002).
    let r = app.user().accounts().await.unwrap();
    assert!(
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["accountId"] == REBECCA && a["primaryEmailAddress"] == BECKY),
        "{}",
        r.body
    );
    let mut m = Socketmap::connect(&app).await;
    let a = m.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "own address"), set(&[BECKY]));
    // Keys are case-insensitive.
    let a = m.lookup("senderlogin", "BECKY@Zylker.COM").await;
    assert_eq!(logins(&a, "own address, other case"), set(&[BECKY]));
    let a = m.lookup("senderlogin", ADMIN).await;
    assert_eq!(logins(&a, "the admin's address"), set(&[ADMIN]));

    // The address of an extfrom identity: Rebecca's logins.
    add_identity(&app, relay("relay@example.net", "8.8.8.8", 587, "u", "p")).await;
    let a = m.lookup("senderlogin", "Relay@Example.NET").await;
    assert_eq!(logins(&a, "extfrom identity"), set(&[BECKY]));
    // Of an extmailbox identity too.
    add_identity(
        &app,
        json!({"fromAddress": "rebecca@pop.example.net", "displayName": "P", "mode": "extmailbox"}),
    )
    .await;
    let a = m.lookup("senderlogin", "rebecca@pop.example.net").await;
    assert!(logins(&a, "extmailbox identity").contains(BECKY), "{a:?}");

    // After an address change the account has two logins, both listed for each of its
    // addresses and identities.
    admin_put(
        &app,
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    let both = set(&[BECKY, "rebecca@zylker.com"]);
    for key in [BECKY, "rebecca@zylker.com", "relay@example.net"] {
        let a = m.lookup("senderlogin", key).await;
        assert_eq!(logins(&a, key), both, "{key}");
    }
    // The admin's address is still only the admin's.
    let a = m.lookup("senderlogin", ADMIN).await;
    assert_eq!(logins(&a, "the admin's address"), set(&[ADMIN]));
}

async fn senderlogin_of_unknown_addresses_and_domains_is_notfound() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    for key in [
        "nobody@zylker.com",
        "ceo@example.com",
        "@zylker.com",
        "@ZYLKER.COM",
        "@example.net",
        "becky@zylker.com.evil.example",
    ] {
        assert_eq!(m.lookup("senderlogin", key).await, NOTFOUND, "{key}");
    }
    // The connection serves on after NOTFOUND answers.
    let a = m.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "after NOTFOUND"), set(&[BECKY]));
}

// ---- relayhost and relaycreds ----

async fn relayhost_answers_the_relay_of_an_extfrom_identity() {
    // A public IP literal needs no flag and no DNS.
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(m.lookup("relayhost", "relay@example.net").await, NOTFOUND);
    add_identity(
        &app,
        relay("relay@example.net", "8.8.8.8", 587, "relay-user", "pw"),
    )
    .await;
    assert_eq!(
        m.lookup("relayhost", "relay@example.net").await,
        "OK [8.8.8.8]:587"
    );
    assert_eq!(
        m.lookup("relayhost", "RELAY@example.NET").await,
        "OK [8.8.8.8]:587",
        "keys are case-insensitive"
    );
    // Addresses without an extfrom identity have no relay.
    for key in [BECKY, ADMIN, "nobody@example.net", "@example.net"] {
        assert_eq!(m.lookup("relayhost", key).await, NOTFOUND, "{key}");
        assert_eq!(m.lookup("relaycreds", key).await, NOTFOUND, "{key}");
    }
    add_identity(
        &app,
        json!({"fromAddress": "backup@example.org", "displayName": "B", "mode": "backupacc"}),
    )
    .await;
    assert_eq!(
        m.lookup("relayhost", "backup@example.org").await,
        NOTFOUND,
        "a backupacc identity has no relay"
    );

    // With --allow-internal-relays, a relay on this host.
    let app = internal_app();
    let mut m = Socketmap::connect(&app).await;
    add_identity(
        &app,
        relay("local@example.net", "127.0.0.1", 2525, "local-user", "pw"),
    )
    .await;
    assert_eq!(
        m.lookup("relayhost", "local@example.net").await,
        "OK [127.0.0.1]:2525"
    );
}

async fn relayhost_resolves_relay_names_at_lookup_time() {
    let app = internal_app();
    let mut m = Socketmap::connect(&app).await;
    add_identity(
        &app,
        relay("named@example.net", "localhost", 2526, "named-user", "pw"),
    )
    .await;
    let a = m.lookup("relayhost", "named@example.net").await;
    assert!(
        a == "OK [127.0.0.1]:2526" || a == "OK [::1]:2526",
        "`localhost` resolved to a loopback address, as `[ip]:port`: {a:?}"
    );
}

async fn relay_names_resolving_to_internal_addresses_are_perm_without_the_flag() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    // A name is accepted when the identity is added (only literals are refused then)…
    add_identity(
        &app,
        relay("ssrf@example.net", "localhost", 25, "ssrf-user", "pw"),
    )
    .await;
    // …and refused when the relay is looked up: it resolves to a loopback address.
    let a = m.lookup("relayhost", "ssrf@example.net").await;
    assert_perm(&a, "a relay named `localhost`");
    assert!(!a.contains("OK"), "{a:?}");
    // The connection serves on after a PERM about the data (not the protocol).
    assert_eq!(m.lookup("relayhost", "nobody@example.net").await, NOTFOUND);
    let a = m.lookup("relayhost", "SSRF@example.net").await;
    assert_perm(&a, "again, other case");
    // Another account's lookups are unaffected.
    let a = m.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "senderlogin"), set(&[BECKY]));
}

async fn relaycreds_answer_exactly_user_colon_password() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(m.lookup("relaycreds", "creds@example.net").await, NOTFOUND);
    // A password holding `:`, `=`, `,`, spaces and non-ASCII letters (so the netstring
    // length counts bytes, not characters).
    let password = "p:a:s=s, wörd:ÿ";
    add_identity(
        &app,
        relay(
            "creds@example.net",
            "8.8.8.8",
            465,
            "relay-user@example.net",
            password,
        ),
    )
    .await;
    assert_eq!(
        m.lookup("relaycreds", "creds@example.net").await,
        format!("OK relay-user@example.net:{password}")
    );
    assert_eq!(
        m.lookup("relaycreds", "CREDS@EXAMPLE.NET").await,
        format!("OK relay-user@example.net:{password}"),
        "keys are case-insensitive"
    );
    // Re-adding the address replaces the identity: the next lookup has the new secret.
    add_identity(
        &app,
        relay(
            "creds@example.net",
            "8.8.4.4",
            587,
            "other-user",
            "second:secret",
        ),
    )
    .await;
    assert_eq!(
        m.lookup("relaycreds", "creds@example.net").await,
        "OK other-user:second:secret"
    );
    assert_eq!(
        m.lookup("relayhost", "creds@example.net").await,
        "OK [8.8.4.4]:587"
    );
    // The password is not in the server's log.
    assert!(!app.log().contains("wörd"), "the relay password was logged");
}

// ---- protocol errors ----

async fn an_unknown_map_is_perm() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    for map in ["nosuchmap", "virtual", "senderlogins", ""] {
        let a = m.lookup(map, BECKY).await;
        assert_perm(&a, &format!("map {map:?}"));
        // A well-formed request: the connection serves on.
        let a = m.lookup("senderlogin", BECKY).await;
        assert_eq!(logins(&a, "after the unknown map"), set(&[BECKY]));
    }
}

async fn netstrings_over_10000_bytes_are_perm_and_close() {
    let app = app();
    // Exactly 10000 bytes: looked up.
    let mut m = Socketmap::connect(&app).await;
    let key = format!(
        "{}@example.net",
        "k".repeat(10000 - "senderlogin ".len() - 12)
    );
    let q = query("senderlogin", &key);
    assert!(q.starts_with(b"10000:"), "{:?}", &q[..8]);
    m.send(&q).await;
    assert_eq!(m.answer().await, NOTFOUND);
    let a = m.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "after the long key"), set(&[BECKY]));

    // The length alone decides: no need to send the payload.
    for header in ["10001:", "99999:", "123456789012345678901234567890:"] {
        let mut m = Socketmap::connect(&app).await;
        m.send(header.as_bytes()).await;
        m.assert_perm_then_closed(header).await;
    }
    // With a payload following, after a good lookup on the same connection.
    let mut m = Socketmap::connect(&app).await;
    let a = m.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "first"), set(&[BECKY]));
    let mut big = b"20000:senderlogin ".to_vec();
    big.extend([b'x'; 200]);
    m.send(&big).await;
    m.assert_perm_then_closed("20000 announced").await;
    // The socketmap still serves.
    let mut m = Socketmap::connect(&app).await;
    let a = m.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "afterwards"), set(&[BECKY]));
}

async fn malformed_netstrings_are_perm_and_close() {
    let app = app();
    for (what, bytes) in [
        ("letters for a length", &b"abc:senderlogin x,"[..]),
        ("a letter after digits", b"1x:senderlogin x,"),
        ("a negative length", b"-5:hello,"),
        ("an empty length", b":senderlogin x,"),
        (
            "a space in the length",
            b"2 3:senderlogin becky@zylker.com,",
        ),
        ("no comma after the payload", b"5:hello;"),
        (
            "no comma: the next netstring follows at once",
            b"28:senderlogin becky@zylker.com28:senderlogin becky@zylker.com,",
        ),
        ("an HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ] {
        let mut m = Socketmap::connect(&app).await;
        m.send_regardless(bytes).await;
        m.assert_perm_then_closed(what).await;
    }
    // After a good lookup on the same connection.
    let mut m = Socketmap::connect(&app).await;
    let mut batch = query("senderlogin", BECKY);
    batch.extend_from_slice(b"5:hello!");
    m.send(&batch).await;
    assert_eq!(
        logins(&m.answer().await, "before the bad one"),
        set(&[BECKY])
    );
    m.assert_perm_then_closed("missing comma after a good lookup")
        .await;
    // The socketmap still serves.
    let mut m = Socketmap::connect(&app).await;
    let a = m.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "afterwards"), set(&[BECKY]));
}

// ---- connections ----

async fn many_lookups_on_one_connection_and_many_connections_at_once() {
    let app = app();
    add_identity(
        &app,
        relay("relay@example.net", "8.8.8.8", 587, "relay-user", "pw:1"),
    )
    .await;
    let mut m = Socketmap::connect(&app).await;
    for i in 0..20 {
        let a = m.lookup("senderlogin", BECKY).await;
        assert_eq!(logins(&a, "senderlogin"), set(&[BECKY]));
        assert_eq!(
            m.lookup("relayhost", "relay@example.net").await,
            "OK [8.8.8.8]:587"
        );
        assert_eq!(
            m.lookup("relaycreds", "relay@example.net").await,
            "OK relay-user:pw:1"
        );
        assert_eq!(
            m.lookup("senderlogin", &format!("n{i}@example.com")).await,
            NOTFOUND
        );
    }
    let mut clients = Vec::new();
    for c in 0..8 {
        let mut m = Socketmap::connect(&app).await;
        clients.push(tokio::spawn(async move {
            for i in 0..10 {
                assert_eq!(
                    m.lookup("senderlogin", &format!("c{c}n{i}@example.com"))
                        .await,
                    NOTFOUND
                );
                assert_eq!(
                    m.lookup("relaycreds", "relay@example.net").await,
                    "OK relay-user:pw:1"
                );
            }
        }));
    }
    for c in clients {
        c.await.expect("a client failed");
    }
    let a = m.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "still open"), set(&[BECKY]));
}

async fn pipelined_lookups_are_answered_in_order() {
    let app = app();
    add_identity(
        &app,
        relay("relay@example.net", "8.8.8.8", 587, "relay-user", "pw"),
    )
    .await;
    let mut m = Socketmap::connect(&app).await;
    let batch = [
        query("senderlogin", BECKY),
        query("relayhost", "relay@example.net"),
        query("senderlogin", "nobody@example.com"),
        query("relaycreds", "relay@example.net"),
        query("nosuchmap", "x"),
        query("senderlogin", ADMIN),
    ]
    .concat();
    m.send(&batch).await;
    assert_eq!(logins(&m.answer().await, "1st"), set(&[BECKY]));
    assert_eq!(m.answer().await, "OK [8.8.8.8]:587");
    assert_eq!(m.answer().await, NOTFOUND);
    assert_eq!(m.answer().await, "OK relay-user:pw");
    assert_perm(&m.answer().await, "5th");
    assert_eq!(logins(&m.answer().await, "6th"), set(&[ADMIN]));
    // A lookup cut in two writes.
    let q = query("senderlogin", BECKY);
    let (head, tail) = q.split_at(7);
    m.send(&[&query("senderlogin", ADMIN)[..], head].concat())
        .await;
    assert_eq!(logins(&m.answer().await, "before the cut"), set(&[ADMIN]));
    sleep(Duration::from_millis(50)).await;
    m.send(tail).await;
    assert_eq!(logins(&m.answer().await, "the cut one"), set(&[BECKY]));
}

async fn lookups_written_in_tiny_pieces_are_answered() {
    let app = app();
    add_identity(
        &app,
        relay("relay@example.net", "8.8.8.8", 587, "relay-user", "pw"),
    )
    .await;
    let mut m = Socketmap::connect(&app).await;
    m.send_byte_by_byte(&query("senderlogin", BECKY)).await;
    assert_eq!(logins(&m.answer().await, "byte by byte"), set(&[BECKY]));
    m.send_byte_by_byte(&query("relaycreds", "relay@example.net"))
        .await;
    assert_eq!(m.answer().await, "OK relay-user:pw");
    // Not answered before the comma.
    let q = query("relayhost", "relay@example.net");
    m.send(&q[..q.len() - 1]).await;
    let mut byte = [0u8; 1];
    let early = timeout(Duration::from_millis(300), m.reader.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "the socketmap answered (or closed) before the comma: {early:?}"
    );
    m.send(b",").await;
    assert_eq!(m.answer().await, "OK [8.8.8.8]:587");
}

async fn a_lookup_then_end_of_input_is_answered_then_closed() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    m.send(&query("senderlogin", BECKY)).await;
    m.shutdown_write().await;
    assert_eq!(logins(&m.answer().await, "before FIN"), set(&[BECKY]));
    m.assert_closed("after the last answer").await;
}

async fn clients_leaving_mid_request_do_not_disturb_the_server() {
    let app = app();
    let mut kept = Socketmap::connect(&app).await;
    let a = kept.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "before"), set(&[BECKY]));

    let q = query("senderlogin", BECKY);
    for cut in [0, 1, 2, 3, 10, q.len() - 1] {
        let mut m = Socketmap::connect(&app).await;
        m.send(&q[..cut]).await;
        drop(m);
        // Half-closed mid-request: the server closes (a PERM first is allowed).
        let mut m = Socketmap::connect(&app).await;
        m.send(&q[..cut]).await;
        m.shutdown_write().await;
        if let Some(a) = m.try_answer().await {
            assert_perm(&a, &format!("FIN after {cut} bytes"));
        }
        m.assert_closed(&format!("FIN after {cut} bytes")).await;
    }
    for _ in 0..3 {
        let mut s = TcpStream::connect(app.socketmap_addr.as_deref().unwrap())
            .await
            .unwrap();
        s.write_all(&q[..10]).await.unwrap();
        s.set_zero_linger().unwrap();
        drop(s);
    }
    for _ in 0..5 {
        let mut m = Socketmap::connect(&app).await;
        m.send(&q).await;
        drop(m);
    }
    sleep(Duration::from_millis(200)).await;

    let a = kept.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "kept"), set(&[BECKY]));
    let mut fresh = Socketmap::connect(&app).await;
    let a = fresh.lookup("senderlogin", BECKY).await;
    assert_eq!(logins(&a, "fresh"), set(&[BECKY]));
    assert_eq!(app.user().account(REBECCA).await.unwrap().status, 200);
}

async fn api_changes_apply_to_the_next_lookup_on_the_same_connection() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    let ext = "later@example.net";
    assert_eq!(m.lookup("senderlogin", ext).await, NOTFOUND);
    assert_eq!(m.lookup("relayhost", ext).await, NOTFOUND);
    assert_eq!(m.lookup("relaycreds", ext).await, NOTFOUND);

    add_identity(&app, relay(ext, "8.8.8.8", 587, "later-user", "first")).await;
    assert_eq!(
        logins(&m.lookup("senderlogin", ext).await, ext),
        set(&[BECKY])
    );
    assert_eq!(m.lookup("relayhost", ext).await, "OK [8.8.8.8]:587");
    assert_eq!(m.lookup("relaycreds", ext).await, "OK later-user:first");

    // Through the admin URL, replaced.
    admin_put(
        &app,
        json!({"zuid": REBECCA_ZUID, "mode": "addsendmaildetails",
               "sendMailDetails": [relay(ext, "8.8.4.4", 2587, "later-user2", "second")]}),
    )
    .await;
    assert_eq!(m.lookup("relayhost", ext).await, "OK [8.8.4.4]:2587");
    assert_eq!(m.lookup("relaycreds", ext).await, "OK later-user2:second");

    user_put(
        &app,
        json!({"mode": "deletesendmaildetails", "fromAddress": ext}),
    )
    .await;
    assert_eq!(m.lookup("senderlogin", ext).await, NOTFOUND);
    assert_eq!(m.lookup("relayhost", ext).await, NOTFOUND);
    assert_eq!(m.lookup("relaycreds", ext).await, NOTFOUND);

    // An address change: the new address is known at once, the old one stays a login.
    assert_eq!(
        m.lookup("senderlogin", "rebecca@zylker.com").await,
        NOTFOUND
    );
    user_put(
        &app,
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    let a = m.lookup("senderlogin", "rebecca@zylker.com").await;
    assert_eq!(
        logins(&a, "after emailupdate"),
        set(&[BECKY, "rebecca@zylker.com"])
    );
}

async fn a_second_node_answers_from_the_same_database() {
    let a = app();
    // `second_node` starts a node without extra arguments; this one gets the listeners.
    let b = TestApp::try_serve_logged(
        a.dir.clone(),
        a.db.clone(),
        &[
            "--policy-listen",
            "127.0.0.1:0",
            "--socketmap-listen",
            "127.0.0.1:0",
        ],
        &[],
        "server-socketmap-node2.log",
    )
    .unwrap_or_else(|log| panic!("the second node exited before listening:\n{log}"));
    assert_ne!(a.socketmap_addr, b.socketmap_addr);
    let mut mb = Socketmap::connect(&b).await;
    let ext = "nodes@example.net";
    assert_eq!(mb.lookup("relaycreds", ext).await, NOTFOUND);
    // Added through node A, encrypted with the shared relay key, read by node B.
    add_identity(&a, relay(ext, "8.8.8.8", 587, "nodes-user", "n0des:pw")).await;
    assert_eq!(mb.lookup("relaycreds", ext).await, "OK nodes-user:n0des:pw");
    assert_eq!(mb.lookup("relayhost", ext).await, "OK [8.8.8.8]:587");
    assert_eq!(
        logins(&mb.lookup("senderlogin", ext).await, ext),
        set(&[BECKY])
    );
}
