//! The relay check of send-as identities (mailplane-relaycheck) against fake relays on
//! real sockets: each connection type that works, each way a relay can fail, and the
//! failure sentences users see.

mod common;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::relay::{AuthAttempt, FakeRelay, Hostile, HostileRelay, TestCa};
use mailplane_domain::{Secret, SmtpConnection};
use mailplane_relaycheck::{
    CheckConfig, CheckFailure, Checker, ConfigError, FailureKind, Target, MAX_SENTENCE,
};

const USER: &str = "rebecca@relay.example";
const PASSWORD: &str = "Sesame-7-open-wide";
/// The name the user gave; the relays' certificates are issued for it.
const NAME: &str = "relay.mailplane.test";

fn checker(ca: Option<&TestCa>, timeout: Duration) -> Checker {
    Checker::new(CheckConfig {
        timeout,
        helo: "mailplane.test".into(),
        extra_roots: ca.map(|ca| ca.pem_path().to_path_buf()),
    })
    .expect("a checker")
}

async fn check_with(
    checker: &Checker,
    addr: std::net::SocketAddr,
    server_name: &str,
    connection: SmtpConnection,
    password: &str,
) -> Result<(), CheckFailure> {
    let password = Secret::new(password.to_string());
    let result = checker
        .check(&Target {
            addr,
            server_name,
            connection,
            user_name: USER,
            password: &password,
        })
        .await;
    if let Err(f) = &result {
        eprintln!("check failed ({:?}): {f}", f.kind());
        assert_safe(f, password.expose());
    }
    result
}

/// The failure of a `plain` check against a hostile relay of `kind`.
async fn hostile(kind: Hostile) -> CheckFailure {
    let relay = HostileRelay::start(kind);
    check_with(
        &checker(None, LONG),
        relay.addr(),
        NAME,
        SmtpConnection::Plain,
        PASSWORD,
    )
    .await
    .unwrap_err()
}

/// A failure sentence is printable ASCII, bounded, and holds the password in no form.
fn assert_safe(f: &CheckFailure, password: &str) {
    let s = f.to_string();
    assert!(s.len() <= MAX_SENTENCE, "too long: {s}");
    assert!(s.bytes().all(|b| (b' '..=b'~').contains(&b)), "{s:?}");
    assert!(!s.contains(password), "the password in {s}");
    assert!(!s.contains(&BASE64.encode(password)), "the password in {s}");
    let plain = BASE64.encode(format!("\0{USER}\0{password}"));
    assert!(!s.contains(&plain), "the credentials in {s}");
}

fn accepted(mechanism: &str, in_tls: bool) -> AuthAttempt {
    AuthAttempt {
        user: USER.into(),
        mechanism: mechanism.into(),
        accepted: true,
        in_tls,
    }
}

const SECOND: Duration = Duration::from_secs(1);
/// Long enough that a check meant to fail otherwise never reaches it.
const LONG: Duration = Duration::from_secs(60);

// ---- relays that work ----

#[tokio::test]
async fn plain_connection_authenticates_without_tls_and_sends_no_mail() {
    let relay = FakeRelay::builder(USER, PASSWORD).start();
    let checker = checker(None, LONG);
    check_with(
        &checker,
        relay.addr(),
        NAME,
        SmtpConnection::Plain,
        PASSWORD,
    )
    .await
    .unwrap();
    assert_eq!(relay.auths(), vec![accepted("PLAIN", false)]);
    assert!(relay.messages().is_empty());
    assert_eq!(relay.connections(), 1);
}

#[tokio::test]
async fn login_is_used_when_plain_is_not_offered() {
    let relay = FakeRelay::builder(USER, PASSWORD)
        .mechanisms("LOGIN")
        .start();
    let checker = checker(None, LONG);
    check_with(
        &checker,
        relay.addr(),
        NAME,
        SmtpConnection::Plain,
        PASSWORD,
    )
    .await
    .unwrap();
    assert_eq!(relay.auths(), vec![accepted("LOGIN", false)]);
}

#[tokio::test]
async fn starttls_authenticates_inside_tls_with_the_users_host_name_as_sni() {
    let ca = TestCa::new();
    let relay = FakeRelay::builder(USER, PASSWORD)
        .starttls(&ca.issue(NAME))
        .start();
    let checker = checker(Some(&ca), LONG);
    check_with(&checker, relay.addr(), NAME, SmtpConnection::Tls, PASSWORD)
        .await
        .unwrap();
    assert_eq!(relay.auths(), vec![accepted("PLAIN", true)]);
    assert_eq!(relay.server_names(), vec![Some(NAME.to_string())]);
}

#[tokio::test]
async fn implicit_tls_authenticates_inside_tls() {
    let ca = TestCa::new();
    let relay = FakeRelay::builder(USER, PASSWORD)
        .implicit_tls(&ca.issue(NAME))
        .start();
    let checker = checker(Some(&ca), LONG);
    check_with(&checker, relay.addr(), NAME, SmtpConnection::Ssl, PASSWORD)
        .await
        .unwrap();
    assert_eq!(relay.auths(), vec![accepted("PLAIN", true)]);
    assert_eq!(relay.server_names(), vec![Some(NAME.to_string())]);
}

#[tokio::test]
async fn an_ip_address_as_server_name_is_verified_without_sni() {
    let ca = TestCa::new();
    let relay = FakeRelay::builder(USER, PASSWORD)
        .implicit_tls(&ca.issue("127.0.0.1"))
        .start();
    let checker = checker(Some(&ca), LONG);
    check_with(
        &checker,
        relay.addr(),
        "127.0.0.1",
        SmtpConnection::Ssl,
        PASSWORD,
    )
    .await
    .unwrap();
    assert_eq!(relay.server_names(), vec![None]);
}

// ---- credentials ----

#[tokio::test]
async fn a_wrong_password_is_reported_with_the_relays_reply() {
    let relay = FakeRelay::builder(USER, PASSWORD).start();
    let checker = checker(None, LONG);
    let f = check_with(&checker, relay.addr(), NAME, SmtpConnection::Plain, "wrong")
        .await
        .unwrap_err();
    assert_eq!(
        f.to_string(),
        "authentication failed: 535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(f.kind(), FailureKind::Auth);
}

#[tokio::test]
async fn a_wrong_password_over_login_is_reported_too() {
    let relay = FakeRelay::builder(USER, PASSWORD)
        .mechanisms("LOGIN")
        .start();
    let checker = checker(None, LONG);
    let f = check_with(&checker, relay.addr(), NAME, SmtpConnection::Plain, "wrong")
        .await
        .unwrap_err();
    assert_eq!(
        f.to_string(),
        "authentication failed: 535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(relay.auths()[0].mechanism, "LOGIN");
}

#[tokio::test]
async fn a_relay_that_starts_refusing_fails_the_next_check() {
    let ca = TestCa::new();
    let relay = FakeRelay::builder(USER, PASSWORD)
        .starttls(&ca.issue(NAME))
        .start();
    let checker = checker(Some(&ca), LONG);
    let check = || check_with(&checker, relay.addr(), NAME, SmtpConnection::Tls, PASSWORD);
    check().await.unwrap();
    relay.reject_auth(true);
    let f = check().await.unwrap_err();
    assert_eq!(
        f.to_string(),
        "authentication failed: 535 5.7.8 Authentication credentials invalid"
    );
    relay.reject_auth(false);
    check().await.unwrap();
    assert_eq!(relay.connections(), 3);
}

#[tokio::test]
async fn a_relay_echoing_the_credentials_does_not_get_the_password_into_the_sentence() {
    let relay = HostileRelay::start(Hostile::EchoAuth);
    let checker = checker(None, LONG);
    // check_with asserts that no form of the password is in the sentence.
    let f = check_with(
        &checker,
        relay.addr(),
        NAME,
        SmtpConnection::Plain,
        PASSWORD,
    )
    .await
    .unwrap_err();
    let s = f.to_string();
    assert!(
        s.starts_with("authentication failed: 535 5.7.8 you sent "),
        "{s}"
    );
    assert!(s.contains("***"), "{s}");
}

#[tokio::test]
async fn no_supported_mechanism_names_what_the_relay_offers() {
    let relay = FakeRelay::builder(USER, PASSWORD)
        .mechanisms("CRAM-MD5 XOAUTH2")
        .start();
    let checker = checker(None, LONG);
    let f = check_with(
        &checker,
        relay.addr(),
        NAME,
        SmtpConnection::Plain,
        PASSWORD,
    )
    .await
    .unwrap_err();
    assert_eq!(
        f.to_string(),
        "the server offers no authentication mechanism mailplane supports (PLAIN, LOGIN); it offers: CRAM-MD5 XOAUTH2"
    );
    assert!(relay.auths().is_empty());
}

// ---- connection and TLS ----

#[tokio::test]
async fn a_closed_port_is_connection_refused() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let checker = checker(None, LONG);
    let f = check_with(&checker, addr, NAME, SmtpConnection::Plain, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(f.to_string(), "connection refused");
    assert_eq!(f.kind(), FailureKind::Connect);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_not_trusted() {
    let ca = TestCa::new();
    let relay = FakeRelay::builder(USER, PASSWORD)
        .implicit_tls(&ca.issue("other.mailplane.test"))
        .start();
    let checker = checker(Some(&ca), LONG);
    let f = check_with(&checker, relay.addr(), NAME, SmtpConnection::Ssl, PASSWORD)
        .await
        .unwrap_err();
    let s = f.to_string();
    assert!(
        s.starts_with("certificate not trusted: invalid peer certificate: certificate not valid for name \"relay.mailplane.test\""),
        "{s}"
    );
    assert_eq!(f.kind(), FailureKind::Tls);
    assert!(relay.auths().is_empty());
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_not_trusted() {
    let (ca, other) = (TestCa::new(), TestCa::named("a CA nobody trusts"));
    let relay = FakeRelay::builder(USER, PASSWORD)
        .starttls(&other.issue(NAME))
        .start();
    let checker = checker(Some(&ca), LONG);
    let f = check_with(&checker, relay.addr(), NAME, SmtpConnection::Tls, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(
        f.to_string(),
        "certificate not trusted: invalid peer certificate: UnknownIssuer"
    );
    assert!(relay.auths().is_empty());
}

#[tokio::test]
async fn starttls_asked_but_not_offered_fails_before_any_credentials_are_sent() {
    let relay = FakeRelay::builder(USER, PASSWORD).start();
    let checker = checker(None, LONG);
    let f = check_with(&checker, relay.addr(), NAME, SmtpConnection::Tls, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(f.to_string(), "the server does not offer STARTTLS");
    assert!(relay.auths().is_empty());
}

#[tokio::test]
async fn implicit_tls_against_a_plain_server_fails_the_handshake() {
    let relay = FakeRelay::builder(USER, PASSWORD).start();
    let checker = checker(None, LONG);
    let f = check_with(&checker, relay.addr(), NAME, SmtpConnection::Ssl, PASSWORD)
        .await
        .unwrap_err();
    assert!(f.to_string().starts_with("TLS handshake failed: "), "{f}");
    assert!(relay.auths().is_empty());
}

// ---- relays that misbehave ----

#[tokio::test]
async fn a_silent_relay_times_out_at_the_deadline() {
    let relay = HostileRelay::start(Hostile::Silent);
    let checker = checker(None, SECOND);
    let start = Instant::now();
    let f = check_with(
        &checker,
        relay.addr(),
        NAME,
        SmtpConnection::Plain,
        PASSWORD,
    )
    .await
    .unwrap_err();
    let took = start.elapsed();
    assert_eq!(f.to_string(), "timed out after 1 s");
    assert_eq!(f.kind(), FailureKind::Timeout);
    assert!(took >= SECOND && took < 3 * SECOND, "took {took:?}");
}

#[tokio::test]
async fn garbage_is_not_an_smtp_server() {
    let f = hostile(Hostile::Garbage).await;
    assert!(
        f.to_string()
            .starts_with(r"not an SMTP server: \x89PNG\x0d\x0a\x1a\x0a"),
        "{f}"
    );
}

#[tokio::test]
async fn an_endless_line_is_cut_off() {
    let f = hostile(Hostile::EndlessLine).await;
    assert_eq!(f.to_string(), "reply line longer than 4096 bytes");
}

#[tokio::test]
async fn an_endless_reply_of_short_lines_is_cut_off() {
    let f = hostile(Hostile::EndlessReply).await;
    assert_eq!(f.to_string(), "reply longer than 65536 bytes");
}

#[tokio::test]
async fn a_relay_hanging_up_after_ehlo_is_reported_at_auth() {
    let f = hostile(Hostile::CloseAfterEhlo).await;
    assert_eq!(
        f.to_string(),
        "the server closed the connection during AUTH"
    );
}

#[tokio::test]
async fn a_relay_mute_after_auth_has_passed_the_check() {
    let relay = HostileRelay::start(Hostile::MuteAfterAuth);
    // QUIT gets no answer; the deadline strikes during it, after AUTH succeeded.
    let checker = checker(None, SECOND);
    check_with(
        &checker,
        relay.addr(),
        NAME,
        SmtpConnection::Plain,
        PASSWORD,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_reply_injected_behind_starttls_fails_the_check() {
    let relay = HostileRelay::start(Hostile::StartTlsInjection);
    let checker = checker(None, LONG);
    let f = check_with(&checker, relay.addr(), NAME, SmtpConnection::Tls, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(
        f.to_string(),
        "the server sent more than its reply to STARTTLS before TLS began"
    );
}

#[tokio::test]
async fn a_negative_greeting_is_reported_with_its_text() {
    let f = hostile(Hostile::Busy).await;
    assert_eq!(
        f.to_string(),
        "the server turned the connection away: 554 5.3.2 busy, try later"
    );
}

// ---- configuration ----

#[test]
fn an_unreadable_or_invalid_ca_file_is_a_configuration_error() {
    let cfg = |path: &str| CheckConfig {
        timeout: SECOND,
        helo: "mailplane.test".into(),
        extra_roots: Some(path.into()),
    };
    let missing = Checker::new(cfg("/nonexistent/ca.pem")).unwrap_err();
    assert!(matches!(missing, ConfigError::ReadCa { .. }), "{missing}");

    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let invalid = Checker::new(cfg(not_pem.to_str().unwrap())).unwrap_err();
    assert!(
        matches!(invalid, ConfigError::InvalidCa { .. }),
        "{invalid}"
    );

    let bad_helo = Checker::new(CheckConfig {
        helo: "mailplane.test\r\nRSET".into(),
        ..cfg("/nonexistent")
    })
    .unwrap_err();
    assert!(matches!(bad_helo, ConfigError::Helo(_)), "{bad_helo}");
}
