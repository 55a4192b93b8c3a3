//! End to end with a real Postfix: mailplane serves its policy service and socketmap, a
//! private Postfix instance is configured with what `mailplane postfix config` prints
//! (with a private Dovecot behind it, see `common/mail_server.rs`), and
//! SMTP conversations with that Postfix show that it enforces what the API says: blocked
//! outgoing mail, senders the account does not own, blocked incoming mail, a disabled
//! account, and relaying an `extfrom` identity's mail through its own server with its
//! stored credentials, and only while no other account claims its address.
//!
//! Needs Postfix, Dovecot and root: when the build found them missing, the test is marked
//! ignored (the runner shows it skipped), except when `CI=true`. Every SMTP line is
//! printed (see the output with `--no-capture`).

mod common;
#[path = "common/dovecot.rs"]
mod dovecot;
#[path = "common/mail_server.rs"]
mod mail_server;
#[path = "common/postfix.rs"]
mod postfix;
#[path = "common/smtp.rs"]
mod smtp;

use std::time::Duration;

use common::*;
use mail_server::MailServer;
use postfix::PostfixInstance;
use serde_json::json;
use smtp::{submit, Outcome, Received, Reply, StandIn, Submission};

backend_tests!(
    #[cfg_attr(
        no_mail_server,
        ignore = "needs Postfix, Dovecot and root (see crates/store/probes.rs)"
    )]
    postfix_enforces_what_the_api_says
);

/// Rebecca's login: the primary address of her hosted account in the demo.
const BECKY: &str = "becky@zylker.com";
/// Somebody outside, the recipient of Rebecca's mail and the sender of mail to her.
const FRIEND: &str = "friend@example.org";
/// The address of the `extfrom` identity the test adds, and its relay's credentials.
const EXT_FROM: &str = "rebecca.home@example.net";
const RELAY_USER: &str = "rebecca.relay@example.net";
/// With a colon and a space: Postfix splits `user:password` at the first colon.
const RELAY_PASSWORD: &str = "Relay-pass:9 x";

mod stand_in {
    use super::smtp::*;

    /// The stand-in server and the client agree without Postfix (runs everywhere).
    #[test]
    fn stand_in_speaks_enough_smtp() {
        let server = StandIn::start("self-test", true);
        let (mut c, greeting) = SmtpClient::connect(&server.addr(), "self-test client");
        assert_eq!(greeting.code, 220);
        let ehlo = c.command("EHLO me");
        assert_eq!(ehlo.code, 250);
        assert!(ehlo.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"), "{ehlo}");
        assert_eq!(c.command("MAIL FROM:<a@example.org>").code, 530);
        let plain = base64_encode(b"\0user@example.org\0p\xc3\xa4ss word");
        assert_eq!(c.command(&format!("AUTH PLAIN {plain}")).code, 235);
        assert_eq!(c.command("MAIL FROM:<a@example.org> SIZE=10").code, 250);
        assert_eq!(c.command("RCPT TO:<b@example.org>").code, 250);
        assert_eq!(c.command("NOOP").code, 250);
        assert_eq!(c.command("DATA").code, 354);
        let r = c.send_message("Subject: one\r\n\r\n.leading dot\r\nend");
        assert_eq!(r.code, 250);
        c.quit();
        let (mut c, _) = SmtpClient::connect(&server.addr(), "self-test client");
        c.command("EHLO me");
        assert_eq!(c.command("AUTH LOGIN").code, 334);
        assert_eq!(c.command(&base64_encode(b"login-user")).code, 334);
        assert_eq!(c.command(&base64_encode(b"login-pass")).code, 235);
        c.command("MAIL FROM:<>");
        c.command("RCPT TO:<c@example.org>");
        c.command("DATA");
        c.send_message("Subject: two\r\n\r\nbody");
        c.quit();
        let one = server.find("one").expect("message one");
        assert_eq!(
            one.auth,
            Some(("user@example.org".into(), "päss word".into()))
        );
        assert_eq!(one.mechanism.as_deref(), Some("PLAIN"));
        assert_eq!(one.mail_from, "a@example.org");
        assert_eq!(one.rcpt_to, vec!["b@example.org"]);
        assert!(one.data.contains("\n.leading dot\n"), "{:?}", one.data);
        let two = server.find("two").expect("message two");
        assert_eq!(two.auth, Some(("login-user".into(), "login-pass".into())));
        assert_eq!(two.mechanism.as_deref(), Some("LOGIN"));
        assert_eq!(two.mail_from, "");
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).as_deref(),
                Some(s.as_bytes())
            );
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(xtext("a+b=c@d e"), "a+2Bb+3Dc@d+20e");
    }
}

fn submission<'a>(
    label: &'a str,
    login: Option<&'a str>,
    from: &'a str,
    to: &'a str,
) -> Submission<'a> {
    // The label is unique within the test, so it serves as the subject too.
    Submission {
        label,
        login,
        from,
        to,
        subject: label,
    }
}

/// Sends and prints how it ended.
fn send(smtpd: &str, s: &Submission<'_>) -> Outcome {
    let outcome = submit(smtpd, s);
    match &outcome {
        Outcome::Accepted(r) => eprintln!(">>> [{}] accepted: {r}", s.label),
        Outcome::Refused { command, reply } => {
            eprintln!(">>> [{}] refused at {command}: {reply}", s.label)
        }
    }
    outcome
}

/// Sends a message Postfix must refuse at RCPT, with `code` and the status `5.7.1`; the
/// reply.
fn refused_at_rcpt(smtpd: &str, s: &Submission<'_>, code: u16) -> Reply {
    let reply = send(smtpd, s).refused_at("RCPT").clone();
    assert_eq!(reply.code, code, "{reply}");
    assert!(reply.text().starts_with("5.7.1 "), "{reply}");
    reply
}

/// Waits up to 60 s for the message `subject` at `server`, flushing Postfix's queue every
/// 5 s meanwhile.
fn delivered(server: &StandIn, mta: &PostfixInstance, subject: &str) -> Option<Received> {
    server.wait_for(
        subject,
        Duration::from_secs(60),
        Duration::from_secs(5),
        || mta.flush(),
    )
}

/// [`admin_put`], printed.
async fn put_admin(app: &TestApp, body: serde_json::Value) {
    admin_put(app, body.clone()).await;
    eprintln!(">>> API (admin): {body} -> 200");
}

/// [`user_put`], printed; the answer's body.
async fn put_user(app: &TestApp, body: serde_json::Value) -> serde_json::Value {
    let answer = user_put(app, body.clone()).await;
    eprintln!(">>> API (Rebecca): {body} -> 200");
    answer
}

async fn postfix_enforces_what_the_api_says() {
    mail_server::require("postfix_enforces_what_the_api_says");
    let version = postfix::command_path("postconf")
        .map(|p| {
            std::process::Command::new(p)
                .args(["-d", "-h", "mail_version"])
                .output()
        })
        .and_then(Result::ok)
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    eprintln!(">>> Postfix {version}");

    // Where Postfix sends everything by default, and the relay of the extfrom identity.
    let sink = StandIn::start("sink", false);
    let relay = StandIn::start("relay", true);

    // A second smtpd of the same Postfix, without SASL (as behind a proxy that logs users
    // in with XCLIENT): there smtpd ignores reject_authenticated_sender_login_mismatch
    // ("no SASL support"), and only mailplane's policy service guards the sender.
    let mut policy_only = String::new();
    let server = MailServer::start(
        &format!("[127.0.0.1]:{}", sink.port()),
        &["--allow-internal-relays"],
        |mta| policy_only = mta.add_smtpd(&["smtpd_sasl_auth_enable=no"]),
    );
    let (app, mta) = (&server.app, &server.postfix);
    let smtpd = server.smtpd();

    // Rebecca's login is the primary address of her account, as the API shows it.
    let account = app.user().account(REBECCA).await.unwrap();
    assert_eq!(account.data()["primaryEmailAddress"], BECKY);
    assert_eq!(account.data()["outgoingBlocked"], false);

    // (a) Rebecca's mail from her own address goes out, to the default relay.
    let s = submission("a allowed", Some(BECKY), BECKY, FRIEND);
    let reply = send(&smtpd, &s).accepted().clone();
    assert_eq!(reply.code, 250);
    let got = delivered(&sink, mta, s.subject)
        .expect("the allowed message reaches the default relay within 60 s");
    assert_eq!(
        (got.mail_from.as_str(), got.rcpt_to.clone(), got.auth),
        (BECKY, vec![FRIEND.to_string()], None),
        "the default relay gets the message, without credentials"
    );

    // (b) Outgoing blocked through the API: the next message is refused at RCPT.
    put_admin(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "updateOutgoingStatus", "outgoingBlocked": true}),
    )
    .await;
    let reply = refused_at_rcpt(
        &smtpd,
        &submission("b blocked", Some(BECKY), BECKY, FRIEND),
        554,
    );
    let want = format!("5.7.1 <{FRIEND}>: Recipient address rejected: Outgoing mail is blocked");
    assert!(
        reply.text().starts_with(&want),
        "{reply}\nwanted: 554 {want}…"
    );
    // … and once unblocked (Rebecca's own URL), the next one goes out again.
    put_user(
        app,
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": false}),
    )
    .await;
    let s = submission("b unblocked", Some(BECKY), BECKY, FRIEND);
    send(&smtpd, &s).accepted();
    delivered(&sink, mta, s.subject)
        .expect("the message after unblocking reaches the default relay");

    // (c) Senders Rebecca may not send as: another account's address, and a stranger's;
    // refused by Postfix's login map, and by the policy service where that map is ignored.
    for (sender, who) in [
        ("admin@zylker.com", "admin's address"),
        ("stranger@example.net", "a stranger's address"),
    ] {
        for (addr, server) in [(&smtpd, ""), (&policy_only, ", smtpd without SASL")] {
            let label = format!("c {who}{server}");
            let s = submission(&label, Some(BECKY), sender, FRIEND);
            let reply = refused_at_rcpt(addr, &s, 553);
            assert!(
                reply.text().contains(&format!("<{sender}>")),
                "the refusal names the sender: {reply}"
            );
        }
    }
    // Her own address passes both.
    send(
        &policy_only,
        &submission(
            "c own address, smtpd without SASL",
            Some(BECKY),
            BECKY,
            FRIEND,
        ),
    )
    .accepted();

    // (d) Unauthenticated mail to Rebecca: accepted, until an admin blocks her incoming mail.
    let s = submission("d incoming open", None, FRIEND, BECKY);
    send(&smtpd, &s).accepted();
    put_admin(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "updateIncomingStatus", "incomingBlocked": true}),
    )
    .await;
    let s = submission("d incoming blocked", None, FRIEND, BECKY);
    let reply = refused_at_rcpt(&smtpd, &s, 550);
    assert!(reply.text().contains(&format!("<{BECKY}>")), "{reply}");
    // Her outgoing mail is not affected.
    send(
        &smtpd,
        &submission(
            "d outgoing while incoming blocked",
            Some(BECKY),
            BECKY,
            FRIEND,
        ),
    )
    .accepted();
    put_admin(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "updateIncomingStatus", "incomingBlocked": false}),
    )
    .await;
    send(
        &smtpd,
        &submission("d incoming open again", None, FRIEND, BECKY),
    )
    .accepted();

    // (e) An extfrom identity: its mail leaves through its own relay, with its credentials.
    let relay_port = relay.port();
    let answer = put_user(
        app,
        json!({"mode": "addsendmaildetails", "sendMailDetails": [{
            "fromAddress": EXT_FROM, "displayName": "Rebecca at home", "mode": "extfrom",
            "serverName": "127.0.0.1", "serverPort": relay_port,
            "userName": RELAY_USER, "password": RELAY_PASSWORD, "smtpConnection": "plain"}]}),
    )
    .await;
    assert!(
        answer["data"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["fromAddress"] == EXT_FROM)),
        "{answer:?}"
    );
    // Refused until verified: the owner of the address gives back the key that Postfix
    // delivered there (the default relay here), and the relay is checked.
    let s = submission("e extfrom unverified", Some(BECKY), EXT_FROM, FRIEND);
    let reply = refused_at_rcpt(&smtpd, &s, 553);
    assert!(reply.text().contains(&format!("<{EXT_FROM}>")), "{reply}");
    // Where only the policy service guards the sender, it says why.
    let s = submission(
        "e extfrom unverified, no SASL",
        Some(BECKY),
        EXT_FROM,
        FRIEND,
    );
    let reply = refused_at_rcpt(&policy_only, &s, 553);
    assert!(
        reply
            .text()
            .contains("the external server for this address is not verified yet"),
        "{reply}"
    );
    let id = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fromAddress"] == EXT_FROM)
        .map(|i| id_text(&i["sendMailId"]))
        .unwrap();
    let key = sink
        .wait_for(
            &format!("Confirm that {BECKY} may send mail as {EXT_FROM}"),
            Duration::from_secs(60),
            Duration::from_secs(5),
            || mta.flush(),
        )
        .expect("the confirmation key reaches the address's server through Postfix")
        .confirmation_key();
    put_user(
        app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id, "confirmKey": key}),
    )
    .await;
    let checked = put_user(
        app,
        json!({"mode": "verifysendmaildetails", "sendMailId": id}),
    )
    .await;
    assert!(
        checked["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["fromAddress"] == EXT_FROM && i["validationState"] == "validated"),
        "{checked}"
    );
    let s = submission("e extfrom", Some(BECKY), EXT_FROM, FRIEND);
    send(&smtpd, &s).accepted();
    let got = delivered(&relay, mta, s.subject).unwrap_or_else(|| {
        panic!(
            "the extfrom message did not reach its relay (127.0.0.1:{relay_port}) within 60 s; \
             the default relay got: {:?}",
            sink.find(s.subject).map(|m| m.mail_from)
        )
    });
    eprintln!(
        ">>> [e extfrom] the relay got the message from <{}>, AUTH {} as {:?}",
        got.mail_from,
        got.mechanism.as_deref().unwrap_or("-"),
        got.auth.as_ref().map(|(u, _)| u)
    );
    assert_eq!(got.mail_from, EXT_FROM);
    assert_eq!(got.rcpt_to, vec![FRIEND]);
    assert_eq!(
        got.auth,
        Some((RELAY_USER.to_string(), RELAY_PASSWORD.to_string())),
        "Postfix authenticates at the relay with the stored userName and password"
    );
    assert!(sink.find(s.subject).is_none(), "only the relay gets it");
    // Rebecca's mailbox address still goes to the default relay.
    let s = submission(
        "e mailbox address after extfrom",
        Some(BECKY),
        BECKY,
        FRIEND,
    );
    send(&smtpd, &s).accepted();
    delivered(&sink, mta, s.subject)
        .expect("mail from the mailbox address still reaches the default relay");

    // (g) A second account, of another organization, claims the same external address
    // with relay details of its own: an unconfirmed claim changes nothing. Its account may
    // not send as the address; the owner's mail still leaves through her relay.
    let other = app.bootstrap("Other", "other.example", "ceo@other.example");
    let other_admin = app.client(Some(other["accessToken"].as_str().expect("token")));
    let (other_zoid, other_account) = (id_text(&other["zoid"]), id_text(&other["accountId"]));
    let junk_relay = StandIn::start("junk relay", true);
    let claim = json!({"mode": "addsendmaildetails", "sendMailDetails": [{
        "fromAddress": EXT_FROM, "displayName": "Not Rebecca", "mode": "extfrom",
        "serverName": "127.0.0.1", "serverPort": junk_relay.port(),
        "userName": "junk", "password": "junk-password", "smtpConnection": "plain"}]});
    let r = other_admin
        .update_org_account(&other_zoid, &other_account, &claim)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    eprintln!(">>> API (ceo@other.example): claims {EXT_FROM} -> 200");
    for (addr, server) in [(&smtpd, ""), (&policy_only, ", smtpd without SASL")] {
        let label = format!("g shared address, second account{server}");
        let reply = refused_at_rcpt(
            addr,
            &submission(&label, Some("ceo@other.example"), EXT_FROM, FRIEND),
            553,
        );
        assert!(reply.text().contains(&format!("<{EXT_FROM}>")), "{reply}");
    }
    let s = submission("g the owner still", Some(BECKY), EXT_FROM, FRIEND);
    send(&smtpd, &s).accepted();
    let got = delivered(&relay, mta, s.subject).expect("the owner's mail reaches her relay");
    assert_eq!(
        got.auth,
        Some((RELAY_USER.to_string(), RELAY_PASSWORD.to_string()))
    );
    assert!(
        junk_relay.messages().is_empty() && sink.find(s.subject).is_none(),
        "the second account's relay got nothing"
    );

    // (f) A disabled account sends nothing and receives nothing.
    put_user(app, json!({"mode": "disableMailAccount"})).await;
    let s = submission("f disabled sends", Some(BECKY), BECKY, FRIEND);
    refused_at_rcpt(&smtpd, &s, 554);
    let s = submission("f disabled receives", None, FRIEND, BECKY);
    refused_at_rcpt(&smtpd, &s, 550);
    put_admin(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "enableMailAccount"}),
    )
    .await;
    send(
        &smtpd,
        &submission("f enabled again", Some(BECKY), BECKY, FRIEND),
    )
    .accepted();

    eprintln!(">>> Postfix maillog:\n{}", mta.maillog());
}
