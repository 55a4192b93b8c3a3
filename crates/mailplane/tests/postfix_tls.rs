//! A real Postfix uses each `extfrom` relay the way its identity says, with only what
//! `mailplane postfix config` (main.cf and `--master-cf`) prints: the transport map picks
//! `relay-plain`, `relay-tls` or `relay-ssl`, the TLS policy map makes Postfix verify the
//! relay's certificate against the name the user gave (though it connects to the IP
//! mailplane checked), and the relay password crosses without TLS only when the identity
//! says `plain`.
//!
//! The relays are fake, on loopback, with certificates of a test CA that Postfix is told
//! to trust (`smtp_tls_CAfile`). No DNS here: the relays are named `localhost`, which
//! resolves to 127.0.0.1 (allowed with `--allow-internal-relays`); a certificate for
//! `localhost` is the right one, a certificate for `other.test` the wrong one.
//!
//! Needs Postfix, Dovecot and root, as `tests/postfix.rs`.

mod common;
#[path = "common/dovecot.rs"]
mod dovecot;
#[path = "common/mail_server.rs"]
mod mail_server;
#[path = "common/postfix.rs"]
mod postfix;
#[path = "common/smtp.rs"]
mod smtp;
#[path = "common/tls_relay.rs"]
mod tls_relay;

use std::time::{Duration, Instant};

use common::*;
use mail_server::MailServer;
use serde_json::json;
use smtp::{submit, Outcome, StandIn, Submission};
use tls_relay::{Relay, Security, TestCa};

// One Postfix for the binary: TLS to relays does not depend on the database backend.
sqlite_tests!(
    #[cfg_attr(
        no_mail_server,
        ignore = "needs Postfix, Dovecot and root (see crates/store/probes.rs)"
    )]
    postfix_uses_each_relay_the_way_its_identity_says
);

const BECKY: &str = "becky@zylker.com";
const FRIEND: &str = "friend@example.org";
const RELAY_USER: &str = "rebecca.relay@example.net";
const RELAY_PASSWORD: &str = "Relay-pass:9 x";

/// Adds Rebecca's identity `from`, relayed through `localhost:port` with `connection`,
/// and marks it validated.
async fn relay_identity(app: &TestApp, from: &str, port: u16, connection: &str) {
    add_identity(
        app,
        json!({"fromAddress": from, "displayName": "Rebecca elsewhere", "mode": "extfrom",
               "serverName": "localhost", "serverPort": port, "userName": RELAY_USER,
               "password": RELAY_PASSWORD, "smtpConnection": connection}),
    )
    .await;
    // TEMP until verifysendmaildetails lands: validated through SQL, not the API.
    validate_identity(app, from);
}

/// Submits Rebecca's message from `from` with the subject `label`; Postfix takes it.
fn send(smtpd: &str, label: &str, from: &str) {
    let s = Submission {
        label,
        login: Some(BECKY),
        from,
        to: FRIEND,
        subject: label,
    };
    match submit(smtpd, &s) {
        Outcome::Accepted(r) => eprintln!(">>> [{label}] accepted: {r}"),
        Outcome::Refused { command, reply } => {
            panic!("[{label}] refused at {command}: {reply}")
        }
    }
}

/// The first maillog line of a deferral through `127.0.0.1:port`, waiting up to 60 s.
fn deferred_through(mta: &postfix::PostfixInstance, port: u16) -> String {
    let relay = format!("relay=127.0.0.1[127.0.0.1]:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(l) = mta
            .maillog()
            .lines()
            .find(|l| l.contains(&relay) && l.contains("status=deferred"))
        {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no deferral through {relay} within 60 s"
        );
        mta.flush();
        std::thread::sleep(Duration::from_secs(1));
    }
}

async fn postfix_uses_each_relay_the_way_its_identity_says() {
    mail_server::require("postfix_uses_each_relay_the_way_its_identity_says");
    let files = postfix::open_temp_dir("pfx-relay-ca-", &[]);
    let ca = TestCa::new(files.path());
    let tls = Relay::start("tls", Security::StartTls(ca.server_config("localhost")));
    let wrong = Relay::start(
        "wrong-name",
        Security::StartTls(ca.server_config("other.test")),
    );
    let ssl = Relay::start("ssl", Security::Implicit(ca.server_config("localhost")));
    let plain = Relay::start("plain", Security::Plain);
    let sink = StandIn::start("sink", false);

    let server = MailServer::start(
        &format!("[127.0.0.1]:{}", sink.port()),
        &["--allow-internal-relays"],
        // Instead of the system's roots: the test CA (later lines win in main.cf). Log
        // level 1 names each TLS connection and whether it was verified.
        |mta| {
            mta.append_main_cf(&format!(
                "smtp_tls_CAfile = {}\nsmtp_tls_loglevel = 1",
                ca.pem_file.display()
            ))
        },
    );
    let (app, mta) = (&server.app, &server.postfix);
    let smtpd = server.smtpd();
    relay_identity(app, "tls@example.net", tls.port(), "tls").await;
    relay_identity(app, "wrong@example.net", wrong.port(), "tls").await;
    relay_identity(app, "ssl@example.net", ssl.port(), "ssl").await;
    relay_identity(app, "plain@example.net", plain.port(), "plain").await;

    for (from, label) in [
        ("tls@example.net", "starttls verified"),
        ("wrong@example.net", "starttls wrong name"),
        ("ssl@example.net", "implicit tls verified"),
        ("plain@example.net", "plain as asked"),
    ] {
        send(&smtpd, label, from);
    }
    let wait = |relay: &Relay, label: &str| {
        relay
            .wait_for(label, Duration::from_secs(60), || mta.flush())
            .unwrap_or_else(|| panic!("[{label}] did not reach its relay within 60 s"))
    };

    // STARTTLS, the certificate verified against the name given, AUTH inside TLS.
    let got = wait(&tls, "starttls verified");
    eprintln!(">>> [starttls verified] {got:?}");
    assert_eq!(got.mail_from, "tls@example.net");
    assert_eq!(
        got.auth,
        (RELAY_USER.to_string(), RELAY_PASSWORD.to_string())
    );
    assert!(got.auth_in_tls, "AUTH after STARTTLS");
    assert_eq!(got.sni.as_deref(), Some("localhost"), "SNI names the relay");

    // Implicit TLS (wrapper mode), verified the same way.
    let got = wait(&ssl, "implicit tls verified");
    eprintln!(">>> [implicit tls verified] {got:?}");
    assert_eq!(got.mail_from, "ssl@example.net");
    assert_eq!(
        got.auth,
        (RELAY_USER.to_string(), RELAY_PASSWORD.to_string())
    );
    assert!(got.auth_in_tls);
    assert_eq!(got.sni.as_deref(), Some("localhost"));

    // Plain, as the identity says: AUTH in clear.
    let got = wait(&plain, "plain as asked");
    eprintln!(">>> [plain as asked] {got:?}");
    assert_eq!(
        got.auth,
        (RELAY_USER.to_string(), RELAY_PASSWORD.to_string())
    );
    assert!(!got.auth_in_tls, "no TLS: the identity said plain");

    let log = mta.maillog();
    for relay in [&tls, &ssl] {
        let verified = format!(
            "Verified TLS connection established to 127.0.0.1[127.0.0.1]:{}",
            relay.port()
        );
        assert!(log.contains(&verified), "no `{verified}` in the maillog");
    }

    // A certificate for another name: deferred (4.7.5), the password never sent.
    let line = deferred_through(mta, wrong.port());
    eprintln!(">>> [starttls wrong name] {line}");
    assert!(line.contains("dsn=4.7.5"), "{line}");
    assert!(
        line.to_lowercase().contains("certificate not verified"),
        "{line}"
    );
    assert!(wrong.find("starttls wrong name").is_none());
    assert_eq!(
        wrong.auths(),
        Vec::<bool>::new(),
        "no AUTH to a wrong certificate"
    );
    assert!(wrong.connections().1 >= 1, "Postfix did start TLS with it");

    // Without its policy, each TLS transport is `secure` on its own: the certificate is
    // then checked against the next hop's IP, and the mail waits rather than meeting an
    // unverified server (taken away here in master.cf, as a policy lookup that missed).
    for service in ["relay-tls", "relay-ssl"] {
        let out = mta.postconf(&["-P", &format!("{service}/unix/smtp_tls_policy_maps=")]);
        assert!(out.status.success(), "{out:?}");
    }
    mta.reload();
    let auths = (tls.auths().len(), ssl.auths().len());
    send(&smtpd, "starttls without policy", "tls@example.net");
    send(&smtpd, "implicit tls without policy", "ssl@example.net");
    for (relay, label) in [
        (&tls, "starttls without policy"),
        (&ssl, "implicit tls without policy"),
    ] {
        let line = deferred_through(mta, relay.port());
        eprintln!(">>> [{label}] {line}");
        assert!(line.contains("dsn=4.7.5"), "{line}");
        assert!(relay.find(label).is_none(), "{label}");
    }
    assert_eq!(
        (tls.auths().len(), ssl.auths().len()),
        auths,
        "no AUTH without a verified certificate"
    );

    // Nothing went to the default relay.
    assert!(sink.messages().is_empty());
    eprintln!(">>> Postfix maillog:\n{}", mta.maillog());
}
