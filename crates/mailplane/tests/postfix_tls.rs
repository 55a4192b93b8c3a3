//! A real Postfix uses each `extfrom` relay the way its identity says, with only what
//! `mailplane postfix config` (main.cf and `--master-cf`) prints: the transport map picks
//! `relay-plain`, `relay-tls` or `relay-ssl`, the TLS policy map makes Postfix verify the
//! relay's certificate against the name the user gave (though it connects to the IP
//! mailplane checked), and the relay password crosses without TLS only when the identity
//! says `plain`.
//!
//! Each identity is verified the way a user does it: the confirmation key travels through
//! this Postfix to the address's server (the default relay here, a stand-in that keeps
//! what it gets) and comes back through `verifysendmaildetails`, and mailplane checks the
//! relay itself; only then does Postfix use it.
//!
//! The relays are fake, on loopback, with certificates of a test CA that Postfix and
//! mailplane are told to trust (`smtp_tls_CAfile`, `--relay-ca-file`). No DNS here: the
//! relays are named `localhost`, which resolves to 127.0.0.1 (allowed with
//! `--allow-internal-relays`); a certificate for `localhost` is the right one, one for
//! `other.test` the wrong one (a relay whose certificate changed after its check).
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

use std::time::{Duration, Instant};

use common::relay::{FakeRelay, TestCa};
use common::*;
use mail_server::MailServer;
use serde_json::json;
use smtp::{submit, Outcome, StandIn, Submission};

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
/// and verifies it: the key mailed to `from` (through Postfix to `mailbox`) given back,
/// then the relay checked. The identity afterwards.
async fn verified_identity(
    app: &TestApp,
    mailbox: &StandIn,
    from: &str,
    port: u16,
    connection: &str,
) -> serde_json::Value {
    let added = user_put(
        app,
        json!({"mode": "addsendmaildetails", "sendMailDetails": [{
               "fromAddress": from, "displayName": "Rebecca elsewhere", "mode": "extfrom",
               "serverName": "localhost", "serverPort": port, "userName": RELAY_USER,
               "password": RELAY_PASSWORD, "smtpConnection": connection}]}),
    )
    .await;
    let id = added["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fromAddress"] == from)
        .map(|i| id_text(&i["sendMailId"]))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let key = loop {
        if let Some(m) = mailbox
            .messages()
            .iter()
            .find(|m| m.rcpt_to == [from.to_string()])
        {
            break m.confirmation_key();
        }
        assert!(
            Instant::now() < deadline,
            "no key reached {from} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    user_put(
        app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id, "confirmKey": key}),
    )
    .await;
    // Checked now, whatever the background check found so far.
    let checked = user_put(
        app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id}),
    )
    .await;
    checked["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fromAddress"] == from)
        .cloned()
        .unwrap()
}

/// The message `subject` at `relay`, flushing Postfix's queue meanwhile (60 s at most).
fn arrived(
    relay: &FakeRelay,
    mta: &postfix::PostfixInstance,
    subject: &str,
) -> common::relay::Relayed {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = relay.wait_for(subject, Duration::from_secs(5)) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "[{subject}] did not reach its relay within 60 s"
        );
        mta.flush();
    }
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
    let ca = TestCa::new();
    let (right, other) = (ca.issue("localhost"), ca.issue("other.test"));
    let relay = |name: &str| FakeRelay::builder(RELAY_USER, RELAY_PASSWORD).name(name);
    let tls = relay("tls").starttls(&right).start();
    let changed = relay("changed-cert").starttls(&right).start();
    let ssl = relay("ssl").implicit_tls(&right).start();
    let plain = relay("plain").start();
    // The addresses' own mail server: where Postfix delivers the confirmation keys.
    let mailbox = StandIn::start("example.net", false);

    let ca_file = ca.pem_path().display().to_string();
    let server = MailServer::start(
        &format!("[127.0.0.1]:{}", mailbox.port()),
        &["--allow-internal-relays", "--relay-ca-file", &ca_file],
        // Instead of the system's roots: the test CA (later lines win in main.cf). Log
        // level 1 names each TLS connection and whether it was verified.
        |mta| {
            mta.append_main_cf(&format!(
                "smtp_tls_CAfile = {ca_file}\nsmtp_tls_loglevel = 1"
            ))
        },
    );
    let (app, mta) = (&server.app, &server.postfix);
    let smtpd = server.smtpd();

    // Before verification Postfix refuses the sender: nothing uses the relay.
    add_identity(
        app,
        json!({"fromAddress": "early@example.net", "displayName": "Early", "mode": "extfrom",
               "serverName": "localhost", "serverPort": tls.port(), "userName": RELAY_USER,
               "password": RELAY_PASSWORD, "smtpConnection": "tls"}),
    )
    .await;
    let early = Submission {
        label: "unverified",
        login: Some(BECKY),
        from: "early@example.net",
        to: FRIEND,
        subject: "unverified",
    };
    // (Postfix's own sender-login check answers first: the address has no owner yet.)
    match submit(&smtpd, &early) {
        Outcome::Refused { reply, .. } => assert!(
            reply.code == 553 && reply.text().contains("<early@example.net>"),
            "{reply}"
        ),
        Outcome::Accepted(r) => panic!("an unverified identity's mail was accepted: {r}"),
    }

    for (from, relay, connection) in [
        ("tls@example.net", &tls, "tls"),
        ("changed@example.net", &changed, "tls"),
        ("ssl@example.net", &ssl, "ssl"),
        ("plain@example.net", &plain, "plain"),
    ] {
        let i = verified_identity(app, &mailbox, from, relay.port(), connection).await;
        assert_eq!(i["validationState"], "validated", "{from}: {i}");
    }
    // The checks authenticated inside TLS where the identity says so, and sent nothing.
    assert!(tls.auths().iter().all(|a| a.in_tls && a.accepted));
    assert!(ssl.auths().iter().all(|a| a.in_tls && a.accepted));
    // Then the relay's certificate changes to another name's.
    changed.set_certificate(&other);
    let checks = changed.auths().len();

    for (from, label) in [
        ("tls@example.net", "starttls verified"),
        ("changed@example.net", "starttls wrong name"),
        ("ssl@example.net", "implicit tls verified"),
        ("plain@example.net", "plain as asked"),
    ] {
        send(&smtpd, label, from);
    }

    // STARTTLS, the certificate verified against the name given, AUTH inside TLS.
    let got = arrived(&tls, mta, "starttls verified");
    eprintln!(">>> [starttls verified] {got:?}");
    assert_eq!(got.mail_from, "tls@example.net");
    assert_eq!(got.user, RELAY_USER);
    assert!(got.auth_in_tls, "AUTH after STARTTLS");
    assert!(
        tls.server_names()
            .iter()
            .all(|n| n.as_deref() == Some("localhost")),
        "SNI names the relay: {:?}",
        tls.server_names()
    );

    // Implicit TLS (wrapper mode), verified the same way.
    let got = arrived(&ssl, mta, "implicit tls verified");
    eprintln!(">>> [implicit tls verified] {got:?}");
    assert_eq!(got.mail_from, "ssl@example.net");
    assert_eq!(got.user, RELAY_USER);
    assert!(got.auth_in_tls);
    assert!(ssl
        .server_names()
        .iter()
        .all(|n| n.as_deref() == Some("localhost")));

    // Plain, as the identity says: AUTH in clear.
    let got = arrived(&plain, mta, "plain as asked");
    eprintln!(">>> [plain as asked] {got:?}");
    assert_eq!(got.user, RELAY_USER);
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
    let line = deferred_through(mta, changed.port());
    eprintln!(">>> [starttls wrong name] {line}");
    assert!(line.contains("dsn=4.7.5"), "{line}");
    assert!(
        line.to_lowercase().contains("certificate not verified"),
        "{line}"
    );
    assert!(changed
        .wait_for("starttls wrong name", Duration::ZERO)
        .is_none());
    assert_eq!(
        changed.auths().len(),
        checks,
        "no AUTH to a wrong certificate"
    );

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
        assert!(relay.wait_for(label, Duration::ZERO).is_none(), "{label}");
    }
    assert_eq!(
        (tls.auths().len(), ssl.auths().len()),
        auths,
        "no AUTH without a verified certificate"
    );

    // The addresses' server got the keys and nothing else: no message left through the
    // default relay.
    assert!(
        mailbox.messages().iter().all(|m| m.mail_from.is_empty()),
        "only mailplane's own (null-sender) mail went to the default relay"
    );
    eprintln!(">>> Postfix maillog:\n{}", mta.maillog());
}
