//! End to end with a whole mail server: mailplane, a real Dovecot and a real Postfix from
//! Debian's packages, wired only by what `mailplane dovecot config` and `mailplane postfix
//! config` print (see `common/mail_server.rs`). Mail is sent over SMTP, read over IMAP and
//! POP3, and every change goes through the API, as a client of the Zoho API makes it:
//! delivery to primary addresses and aliases into one mailbox per account, logins with the
//! mailbox password, disabled accounts and protocols, a new password, a deleted user.
//!
//! Needs Postfix, Dovecot and root: when the build found them missing, the test is marked
//! ignored (the runner shows it skipped), except when `CI=true`. Every protocol line is
//! printed (see the output with `--no-capture`).

mod common;
#[path = "common/dovecot.rs"]
mod dovecot;
#[path = "common/mail_clients.rs"]
mod mail_clients;
#[path = "common/mail_server.rs"]
mod mail_server;
#[path = "common/postfix.rs"]
mod postfix;
#[path = "common/smtp.rs"]
mod smtp;

use std::time::{Duration, Instant};

use common::*;
use mail_clients::{pop3_login, Imap};
use mail_server::MailServer;
use serde_json::{json, Value};
use smtp::{base64_encode, submit, Outcome, Received, Reply, SmtpClient, StandIn, Submission};

backend_tests!(
    #[cfg_attr(
        no_mail_server,
        ignore = "needs Postfix, Dovecot and root (see crates/store/probes.rs)"
    )]
    the_mail_server_follows_mailplane
);

const BECKY: &str = "becky@zylker.com";
const REBECCA_NEW: &str = "rebecca@zylker.com";
const ALIAS: &str = "rebecca.sales@zylker.com";
const NEWBIE: &str = "newbie@zylker.com";
const NEWBIE_PASSWORD: &str = "Newbie-pass-42";
const FRIEND: &str = "friend@example.org";
const FORWARD_TO: &str = "paula@example.org";

/// Mail from outside (no login) to `to`; how it ended.
fn mail_to(server: &MailServer, to: &str, subject: &str) -> Outcome {
    let outcome = submit(
        &server.smtpd(),
        &Submission {
            label: subject,
            login: None,
            from: FRIEND,
            to,
            subject,
        },
    );
    eprintln!(">>> [{subject}] {outcome:?}");
    outcome
}

/// Waits up to 30 s for a message with `subject` in the INBOX of `login`, flushing
/// Postfix's queue meanwhile; whether it came.
fn arrives(server: &MailServer, login: &str, password: &str, subject: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut flushed = Instant::now();
    loop {
        let mut imap = Imap::login(&server.dovecot.imap_addr(), login, password)
            .unwrap_or_else(|e| panic!("{login} cannot log in to IMAP: {e}"));
        let found = !imap.search_inbox(subject).is_empty();
        imap.logout();
        if found {
            return true;
        }
        if Instant::now() > deadline {
            eprintln!("queue:\n{}", server.postfix.queue());
            return false;
        }
        if flushed.elapsed() > Duration::from_secs(2) {
            server.postfix.flush();
            flushed = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn imap_refusal(server: &MailServer, login: &str, password: &str) -> String {
    match Imap::login(&server.dovecot.imap_addr(), login, password) {
        Ok(_) => panic!("{login} logged in to IMAP, and must not"),
        Err(status) => status,
    }
}

fn imap_works(server: &MailServer, login: &str, password: &str) {
    Imap::login(&server.dovecot.imap_addr(), login, password)
        .unwrap_or_else(|e| panic!("{login} cannot log in to IMAP: {e}"))
        .logout();
}

/// SMTP AUTH PLAIN at Postfix (checked by Dovecot), then one message; the first refusal
/// (the command and the reply), if any.
fn auth_and_send(
    server: &MailServer,
    login: &str,
    password: &str,
    from: &str,
    subject: &str,
) -> Result<(), (String, Reply)> {
    let (mut c, greeting) = SmtpClient::connect(&server.smtpd(), subject);
    assert_eq!(greeting.code, 220);
    let plain = base64_encode(format!("\0{login}\0{password}").as_bytes());
    let steps = [
        ("EHLO client.mailplane.test".to_string(), 250),
        (format!("AUTH PLAIN {plain}"), 235),
        (format!("MAIL FROM:<{from}>"), 250),
        (format!("RCPT TO:<{FRIEND}>"), 250),
        ("DATA".to_string(), 354),
    ];
    for (command, want) in steps {
        let reply = c.command(&command);
        if reply.code != want {
            c.quit();
            let name = command.split([' ', ':']).next().unwrap().to_string();
            return Err((name, reply));
        }
    }
    let reply = c.send_message(&format!(
        "From: <{from}>\r\nTo: <{FRIEND}>\r\nSubject: {subject}\r\n\r\nSent with SMTP AUTH.\r\n"
    ));
    c.quit();
    if reply.code == 250 {
        Ok(())
    } else {
        Err((".".into(), reply))
    }
}

/// A PUT on the admin URL with the user's zuid in the path (Zoho's form for the alias and
/// password modes); the answer's body.
async fn admin_put_zuid(app: &TestApp, zuid: &str, body: Value) -> Value {
    let r = app
        .admin()
        .update_org_account(ZOID, zuid, &body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{body}: {}", r.body);
    eprintln!(">>> API (admin, zuid {zuid}): {body} -> {}", r.body);
    r.body
}

async fn the_mail_server_follows_mailplane() {
    mail_server::require("the_mail_server_follows_mailplane");
    let sink = StandIn::start("sink", false);
    let server = MailServer::start(&format!("[127.0.0.1]:{}", sink.port()), &[], |_| {});
    let app = &server.app;
    let password = server.user_password.clone();

    // 1. Mail to Rebecca's primary address lands in her mailbox, read over IMAP.
    mail_to(&server, BECKY, "1 first").accepted();
    assert!(arrives(&server, BECKY, &password, "1 first"));
    assert_eq!(
        pop3_login(&server.dovecot.pop3_addr(), BECKY, &password),
        Ok(1)
    );

    // 2. A new primary address: the login changes, the mailbox stays, both addresses
    //    deliver into it; the old one is an alias now, not a login.
    user_put(
        app,
        json!({"mode": "emailupdate", "emailAddress": REBECCA_NEW}),
    )
    .await;
    mail_to(&server, BECKY, "2 to the old address").accepted();
    mail_to(&server, REBECCA_NEW, "2 to the new address").accepted();
    for subject in ["2 to the old address", "2 to the new address", "1 first"] {
        assert!(
            arrives(&server, REBECCA_NEW, &password, subject),
            "{subject}"
        );
    }
    let refused = imap_refusal(&server, BECKY, &password);
    assert!(refused.contains("AUTHENTICATIONFAILED"), "{refused}");
    // user+tag@domain is the user's mail.
    mail_to(&server, "rebecca+news@zylker.com", "2 with a tag").accepted();
    assert!(arrives(&server, REBECCA_NEW, &password, "2 with a tag"));

    // 3. An alias added through the API delivers at once; deleted, it is unknown.
    let answer = admin_put_zuid(
        app,
        REBECCA_ZUID,
        json!({"mode": "addEmailAlias", "emailAlias": [ALIAS]}),
    )
    .await;
    assert!(answer["data"][0][ALIAS].is_string(), "{answer}");
    mail_to(&server, ALIAS, "3 to the alias").accepted();
    assert!(arrives(&server, REBECCA_NEW, &password, "3 to the alias"));
    admin_put_zuid(
        app,
        REBECCA_ZUID,
        json!({"mode": "deleteEmailAlias", "emailAlias": [ALIAS]}),
    )
    .await;
    let outcome = mail_to(&server, ALIAS, "3 to the deleted alias");
    let reply = outcome.refused_at("RCPT");
    assert_eq!(reply.code, 550, "{reply}");
    assert!(
        reply.text().starts_with("5.1.1 ") && reply.text().contains("User unknown"),
        "{reply}"
    );
    // Other addresses of a hosted domain are unknown too.
    let reply = mail_to(&server, "nobody@zylker.com", "3 nobody")
        .refused_at("RCPT")
        .clone();
    assert!(reply.text().starts_with("5.1.1 "), "{reply}");

    // 4. A user created through the API logs in at once and receives mail.
    let r = app
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": NEWBIE, "password": NEWBIE_PASSWORD}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let newbie_zuid = id_text(&r.data()["zuid"]);
    let mut imap = Imap::login(&server.dovecot.imap_addr(), NEWBIE, NEWBIE_PASSWORD)
        .expect("the new user logs in at once");
    assert_eq!(imap.inbox_count(), 0);
    imap.logout();
    mail_to(&server, NEWBIE, "4 welcome").accepted();
    assert!(arrives(&server, NEWBIE, NEWBIE_PASSWORD, "4 welcome"));

    // 5. A disabled account logs in nowhere and receives nothing; enabled, all works.
    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "disableMailAccount"}),
    )
    .await;
    let refused = imap_refusal(&server, REBECCA_NEW, &password);
    assert!(refused.contains("Account disabled"), "{refused}");
    let pop = pop3_login(&server.dovecot.pop3_addr(), REBECCA_NEW, &password);
    assert!(
        pop.as_ref().is_err_and(|e| e.contains("Account disabled")),
        "{pop:?}"
    );
    let (command, reply) =
        auth_and_send(&server, REBECCA_NEW, &password, REBECCA_NEW, "5 disabled").unwrap_err();
    assert_eq!((command.as_str(), reply.code), ("AUTH", 535), "{reply}");
    let reply = mail_to(&server, REBECCA_NEW, "5 to the disabled")
        .refused_at("RCPT")
        .clone();
    assert_eq!(reply.code, 550, "{reply}");
    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "enableMailAccount"}),
    )
    .await;
    imap_works(&server, REBECCA_NEW, &password);
    assert!(pop3_login(&server.dovecot.pop3_addr(), REBECCA_NEW, &password).is_ok());
    auth_and_send(
        &server,
        REBECCA_NEW,
        &password,
        REBECCA_NEW,
        "5 enabled again",
    )
    .expect("SMTP AUTH works again");
    mail_to(&server, REBECCA_NEW, "5 to the enabled").accepted();

    // 6. IMAP off: IMAP refused, POP3 still works; on again.
    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "updateIMAPStatus", "imapAccessEnabled": false}),
    )
    .await;
    let refused = imap_refusal(&server, REBECCA_NEW, &password);
    assert!(refused.contains("IMAP access is disabled"), "{refused}");
    assert!(pop3_login(&server.dovecot.pop3_addr(), REBECCA_NEW, &password).is_ok());
    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "updatePOPStatus", "popAccessEnabled": false}),
    )
    .await;
    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "updateIMAPStatus", "imapAccessEnabled": true}),
    )
    .await;
    imap_works(&server, REBECCA_NEW, &password);
    let pop = pop3_login(&server.dovecot.pop3_addr(), REBECCA_NEW, &password);
    assert!(
        pop.as_ref()
            .is_err_and(|e| e.contains("POP access is disabled")),
        "{pop:?}"
    );
    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "updatePOPStatus", "popAccessEnabled": true}),
    )
    .await;

    // 8. SMTP AUTH through Dovecot: the right password and an owned sender go out; a
    //    wrong password does not log in; with outgoing mail blocked the policy service
    //    refuses.
    auth_and_send(
        &server,
        REBECCA_NEW,
        &password,
        REBECCA_NEW,
        "8 authenticated",
    )
    .expect("Rebecca's authenticated mail is accepted");
    assert!(sink
        .wait_for(
            "8 authenticated",
            Duration::from_secs(30),
            Duration::from_secs(2),
            || server.postfix.flush()
        )
        .is_some());
    let (command, reply) = auth_and_send(
        &server,
        REBECCA_NEW,
        "wrong-password",
        REBECCA_NEW,
        "8 wrong",
    )
    .unwrap_err();
    assert_eq!((command.as_str(), reply.code), ("AUTH", 535), "{reply}");
    let (command, reply) =
        auth_and_send(&server, REBECCA_NEW, &password, NEWBIE, "8 not hers").unwrap_err();
    // Postfix's own sender check (553) comes before the policy service's (554).
    assert_eq!(command, "RCPT", "{reply}");
    assert!(matches!(reply.code, 553 | 554), "{reply}");
    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "updateOutgoingStatus", "outgoingBlocked": true}),
    )
    .await;
    let (command, reply) =
        auth_and_send(&server, REBECCA_NEW, &password, REBECCA_NEW, "8 blocked").unwrap_err();
    assert_eq!((command.as_str(), reply.code), ("RCPT", 554), "{reply}");
    assert!(reply.text().contains("Outgoing mail is blocked"), "{reply}");
    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "updateOutgoingStatus", "outgoingBlocked": false}),
    )
    .await;

    // 10. Forwarding: nothing before the target gives back the key mailed to it; then a
    //     copy to the target and one in the mailbox; with deleteZohoMailCopy the target's
    //     only; disabled, the mailbox's only.
    forwarding(&server, &sink, &password).await;

    // 7. A new password: the old one fails everywhere, the new one works, and Rebecca's
    //    tokens are revoked.
    let new_password = "Brand-new-pass-7";
    admin_put_zuid(
        app,
        REBECCA_ZUID,
        json!({"mode": "resetPassword", "password": new_password}),
    )
    .await;
    let refused = imap_refusal(&server, REBECCA_NEW, &password);
    assert!(refused.contains("AUTHENTICATIONFAILED"), "{refused}");
    assert!(pop3_login(&server.dovecot.pop3_addr(), REBECCA_NEW, &password).is_err());
    imap_works(&server, REBECCA_NEW, new_password);
    auth_and_send(
        &server,
        REBECCA_NEW,
        new_password,
        REBECCA_NEW,
        "7 new password",
    )
    .expect("SMTP AUTH with the new password");
    let r = app.user().accounts().await.unwrap();
    assert_eq!(r.status, 401, "Rebecca's token is revoked: {}", r.body);

    // 9. A deleted user: the address is unknown and the login gone.
    let r = app
        .admin()
        .delete_users(ZOID, &json!({"accountList": [newbie_zuid]}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let reply = mail_to(&server, NEWBIE, "9 to the deleted")
        .refused_at("RCPT")
        .clone();
    assert_eq!(reply.code, 550, "{reply}");
    assert!(reply.text().starts_with("5.1.1 "), "{reply}");
    let refused = imap_refusal(&server, NEWBIE, NEWBIE_PASSWORD);
    assert!(refused.contains("AUTHENTICATIONFAILED"), "{refused}");

    // Nothing secret in what mailplane logged.
    let log = app.log();
    for secret in [password.as_str(), new_password, NEWBIE_PASSWORD, "$argon2"] {
        assert!(!log.contains(secret), "the log holds a secret ({secret})");
    }
}

/// Waits for `subject` at the sink (the relay of every other domain), flushing Postfix.
fn relayed(server: &MailServer, sink: &StandIn, subject: &str) -> Option<Received> {
    sink.wait_for(
        subject,
        Duration::from_secs(30),
        Duration::from_secs(2),
        || server.postfix.flush(),
    )
}

/// Whether `subject` reached the sink within a few seconds of flushing (for mail that
/// must not: by then anything Postfix had for the relay was sent).
fn relayed_soon(server: &MailServer, sink: &StandIn, subject: &str) -> bool {
    server.postfix.flush();
    sink.wait_for(
        subject,
        Duration::from_secs(3),
        Duration::from_secs(1),
        || server.postfix.flush(),
    )
    .is_some()
}

async fn forwarding(server: &MailServer, sink: &StandIn, password: &str) {
    let app = &server.app;
    let added = admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "addMailForward", "mailForward": [{"mailForwardTo": FORWARD_TO}]}),
    )
    .await;
    assert_eq!(added["data"][0]["confirmationMail"], "sent", "{added}");
    // The key, through Postfix to the target's server (the sink), with the null sender.
    let mail = relayed(
        server,
        sink,
        &format!("Confirm forwarding of {REBECCA_NEW}'s mail to you"),
    )
    .expect("the confirmation mail reaches the target");
    assert_eq!(mail.rcpt_to, [FORWARD_TO.to_string()]);
    assert_eq!(mail.mail_from, "");
    let key = mail.confirmation_key();

    mail_to(server, REBECCA_NEW, "10 unconfirmed").accepted();
    assert!(arrives(server, REBECCA_NEW, password, "10 unconfirmed"));
    assert!(
        !relayed_soon(server, sink, "10 unconfirmed"),
        "an unconfirmed forward forwarded"
    );

    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "verifyMailForward", "mailForward": [{"mailForwardTo": FORWARD_TO, "confirmKey": key}]}),
    )
    .await;
    mail_to(server, REBECCA_NEW, "10 with a copy").accepted();
    let forwarded = relayed(server, sink, "10 with a copy").expect("the forward delivers");
    assert_eq!(forwarded.rcpt_to, [FORWARD_TO.to_string()]);
    assert!(arrives(server, REBECCA_NEW, password, "10 with a copy"));
    // An alias of the account is forwarded as well.
    mail_to(server, BECKY, "10 to the old address").accepted();
    assert!(relayed(server, sink, "10 to the old address").is_some());

    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "deleteZohoMailCopy", "deleteCopy": true}),
    )
    .await;
    mail_to(server, REBECCA_NEW, "10 no copy").accepted();
    assert!(relayed(server, sink, "10 no copy").is_some());
    let mut imap = Imap::login(&server.dovecot.imap_addr(), REBECCA_NEW, password).unwrap();
    assert!(
        imap.search_inbox("10 no copy").is_empty(),
        "the mailbox kept a copy"
    );
    imap.logout();

    admin_put(
        app,
        json!({"zuid": REBECCA_ZUID, "mode": "disableMailForward", "mailForward": [{"mailForwardTo": FORWARD_TO, "reason": "back from leave"}]}),
    )
    .await;
    mail_to(server, REBECCA_NEW, "10 disabled").accepted();
    assert!(
        arrives(server, REBECCA_NEW, password, "10 disabled"),
        "with no forward in effect the mailbox gets the mail, whatever deleteZohoMailCopy says"
    );
    assert!(
        !relayed_soon(server, sink, "10 disabled"),
        "a disabled forward forwarded"
    );
    assert!(!app.log().contains(&key), "the key is logged");
}
