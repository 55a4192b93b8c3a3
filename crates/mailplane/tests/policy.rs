//! The Postfix policy service (`serve --policy-listen`), over real sockets: the
//! SMTPD_POLICY_README protocol (attribute lines `name=value`, an empty line ends a
//! request, `action=…` and an empty line answer it, many requests per connection) and
//! the decisions it takes from the accounts, as the API changes them.
//!
//! Every read and write has a timeout: a server that hangs fails the test instead of
//! hanging it.

mod common;

use std::time::Duration;

use common::policy_client::*;
use common::wire::{reset_after_sending, Wire};
use common::*;
use serde_json::{json, Value};
use tokio::time::sleep;

backend_tests!(
    the_demo_login_may_send_as_its_own_addresses,
    a_login_may_send_as_the_addresses_of_its_identities,
    a_login_may_not_send_as_other_addresses,
    a_disabled_then_a_blocked_login_is_refused_whatever_the_sender,
    unknown_logins_and_addresses_are_left_to_postfix,
    recipients_whose_incoming_is_blocked_or_whose_account_is_disabled_are_refused,
    values_keep_everything_after_the_first_equals_sign,
    crlf_line_endings_are_accepted,
    many_requests_on_one_connection_and_many_connections_at_once,
    pipelined_requests_are_answered_in_order,
    requests_written_in_tiny_pieces_are_answered,
    a_request_then_end_of_input_is_answered_then_closed,
    requests_over_64_kib_close_the_connection_without_an_answer,
    a_line_without_equals_closes_the_connection_without_an_answer,
    clients_leaving_mid_request_do_not_disturb_the_server,
    api_changes_apply_to_the_next_request_on_the_same_connection,
    a_second_node_answers_from_the_same_database;
    // The limits are the listener's, whatever the database.
    sqlite only:
    idle_connections_from_other_addresses_cannot_keep_postfix_out,
    a_client_address_may_hold_only_so_many_connections_without_a_request,
    silent_connections_are_closed_sooner_before_their_first_request_than_after,
    at_the_limit_new_connections_go_first_then_the_longest_idle,
);

const BECKY: &str = "becky@zylker.com";
const ADMIN: &str = "admin@zylker.com";

/// The demo with the policy service (and the socketmap) on free ports.
fn app() -> TestApp {
    let app = TestApp::demo_with_postfix_listeners(&[]);
    assert!(
        app.policy_addr.is_some(),
        "serve did not print `mailplane policy service listening on ADDR`"
    );
    app
}

// ---- the API ----

fn extfrom(from: &str) -> Value {
    json!({ "fromAddress": from, "displayName": "R", "mode": "extfrom", "serverName": "smtp.example.net",
            "serverPort": 587, "userName": from, "password": "pw-secret", "smtpConnection": "tls" })
}

// ---- the tests ----

async fn the_demo_login_may_send_as_its_own_addresses() {
    let app = app();
    // The login of the demo user is her address: account 2560636000000008002.
    let r = app.user().accounts().await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let rebecca = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["accountId"] == REBECCA)
        .expect("Rebecca's hosted account")
        .clone();
    assert_eq!(rebecca["primaryEmailAddress"], BECKY);

    let mut p = Policy::connect(&app).await;
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "own address");
    // Logins and addresses compare without case.
    assert_dunno(
        &p.ask(&submission("Becky@Zylker.COM", "BECKY@zylker.com"))
            .await,
        "own address, other case",
    );
    // The null sender (bounces) from a login is left to Postfix.
    assert_dunno(&p.ask(&submission(BECKY, "")).await, "null sender");

    // After an address change both the new primary and the old address (now an alias)
    // are logins of the account, and both may be used as sender.
    admin_put(
        &app,
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    for login in [BECKY, "rebecca@zylker.com"] {
        for sender in [BECKY, "rebecca@zylker.com"] {
            assert_dunno(
                &p.ask(&submission(login, sender)).await,
                &format!("login {login}, sender {sender}"),
            );
        }
        // Still not someone else's.
        assert_refused(&p.ask(&submission(login, ADMIN)).await, "553", ADMIN);
    }
}

async fn a_login_may_send_as_the_addresses_of_its_identities() {
    let app = app();
    let mut p = Policy::connect(&app).await;
    let ext = "rebecca.relay@example.net";
    assert_refused(&p.ask(&submission(BECKY, ext)).await, "553", ext);
    add_identity(&app, extfrom(ext)).await;
    assert_refused(
        &p.ask(&submission(BECKY, ext)).await,
        "553",
        &format!("<{ext}>: the external server for this address is not verified yet"),
    );
    mark_verified(&app, ext);
    assert_dunno(&p.ask(&submission(BECKY, ext)).await, "extfrom identity");
    assert_dunno(
        &p.ask(&submission(BECKY, "Rebecca.Relay@EXAMPLE.net")).await,
        "extfrom identity, other case",
    );
    // An identity of another kind: the address of her POP account.
    add_identity(
        &app,
        json!({"fromAddress": "rebecca@pop.example.net", "displayName": "P", "mode": "extmailbox"}),
    )
    .await;
    assert_refused(
        &p.ask(&submission(BECKY, "rebecca@pop.example.net")).await,
        "553",
        "ownership of this address is not confirmed yet",
    );
    mark_verified(&app, "rebecca@pop.example.net");
    assert_dunno(
        &p.ask(&submission(BECKY, "rebecca@pop.example.net")).await,
        "extmailbox identity",
    );
    // And a backup account identity.
    add_identity(
        &app,
        json!({"fromAddress": "backup@example.org", "displayName": "B", "mode": "backupacc"}),
    )
    .await;
    mark_verified(&app, "backup@example.org");
    assert_dunno(
        &p.ask(&submission(BECKY, "backup@example.org")).await,
        "backupacc identity",
    );
}

async fn a_login_may_not_send_as_other_addresses() {
    let app = app();
    let mut p = Policy::connect(&app).await;
    for sender in [
        ADMIN,
        "nobody@zylker.com",
        "ceo@example.com",
        "becky@zylker.com.evil.example",
        "xbecky@zylker.com",
    ] {
        let action = p.ask(&submission(BECKY, sender)).await;
        assert_refused(&action, "553", sender);
    }
    // The admin's login may not send as Rebecca either.
    assert_refused(&p.ask(&submission(ADMIN, BECKY)).await, "553", BECKY);
    assert_dunno(&p.ask(&submission(ADMIN, ADMIN)).await, "the admin's own");
}

async fn a_disabled_then_a_blocked_login_is_refused_whatever_the_sender() {
    let app = app();
    let mut p = Policy::connect(&app).await;

    user_put(&app, json!({"mode": "disableMailAccount"})).await;
    for sender in [BECKY, "ceo@example.com"] {
        assert_refused(&p.ask(&submission(BECKY, sender)).await, "554", "disabled");
    }
    // Disabled wins over blocked.
    user_put(
        &app,
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
    )
    .await;
    assert_refused(&p.ask(&submission(BECKY, BECKY)).await, "554", "disabled");

    user_put(&app, json!({"mode": "enableMailAccount"})).await;
    for sender in [BECKY, "ceo@example.com"] {
        assert_refused(
            &p.ask(&submission(BECKY, sender)).await,
            "554",
            "Outgoing mail is blocked",
        );
    }
    // Through the admin URL too, and the block is lifted the same way.
    admin_put(
        &app,
        json!({"zuid": REBECCA_ZUID, "mode": "updateOutgoingStatus", "outgoingBlocked": "false"}),
    )
    .await;
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "unblocked");
    assert_refused(
        &p.ask(&submission(BECKY, "ceo@example.com")).await,
        "553",
        "ceo@example.com",
    );
    // The admin's account is not affected by Rebecca's state.
    user_put(&app, json!({"mode": "disableMailAccount"})).await;
    assert_dunno(&p.ask(&submission(ADMIN, ADMIN)).await, "another account");
}

async fn unknown_logins_and_addresses_are_left_to_postfix() {
    let app = app();
    let mut p = Policy::connect(&app).await;
    assert_dunno(
        &p.ask(&submission("stranger@zylker.com", "ceo@example.com"))
            .await,
        "unknown login",
    );
    assert_dunno(
        &p.ask(&submission("stranger@example.net", BECKY)).await,
        "unknown login, a known sender",
    );
    // A login that is only an identity (not an address of any account) is no login.
    add_identity(&app, extfrom("rebecca.relay@example.net")).await;
    assert_dunno(
        &p.ask(&submission("rebecca.relay@example.net", "ceo@example.com"))
            .await,
        "an identity address is no login",
    );
    assert_dunno(
        &p.ask(&inbound("nobody@zylker.com")).await,
        "unknown recipient",
    );
    assert_dunno(
        &p.ask(&inbound("someone@example.org")).await,
        "foreign recipient",
    );
    assert_dunno(
        &p.ask(&inbound(BECKY)).await,
        "a recipient that accepts mail",
    );
    // A request with neither login nor recipient.
    assert_dunno(
        &p.ask(&request(&[("protocol_state", "CONNECT")])).await,
        "nothing to decide on",
    );
}

async fn recipients_whose_incoming_is_blocked_or_whose_account_is_disabled_are_refused() {
    let app = app();
    let mut p = Policy::connect(&app).await;
    assert_dunno(&p.ask(&inbound(BECKY)).await, "before");

    admin_put(
        &app,
        json!({"mode": "updateIncomingStatus", "incomingBlocked": "true"}),
    )
    .await;
    assert_refused(&p.ask(&inbound(BECKY)).await, "550", "");
    assert_refused(&p.ask(&inbound("BECKY@Zylker.com")).await, "550", "");
    // Without any sasl_username attribute at all.
    let no_login = request(&[("sender", "someone@example.org"), ("recipient", BECKY)]);
    assert_refused(&p.ask(&no_login).await, "550", "");
    // Other recipients still receive.
    assert_dunno(&p.ask(&inbound(ADMIN)).await, "another recipient");
    // An alias of the account is refused as well.
    admin_put(
        &app,
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    assert_refused(&p.ask(&inbound("rebecca@zylker.com")).await, "550", "");
    assert_refused(&p.ask(&inbound(BECKY)).await, "550", "");

    admin_put(
        &app,
        json!({"mode": "updateIncomingStatus", "incomingBlocked": false}),
    )
    .await;
    assert_dunno(&p.ask(&inbound(BECKY)).await, "unblocked");

    user_put(&app, json!({"mode": "disableMailAccount"})).await;
    assert_refused(&p.ask(&inbound(BECKY)).await, "550", "");
    assert_refused(&p.ask(&inbound("rebecca@zylker.com")).await, "550", "");
    assert_dunno(&p.ask(&inbound(ADMIN)).await, "another recipient");
    user_put(&app, json!({"mode": "enableMailAccount"})).await;
    assert_dunno(&p.ask(&inbound(BECKY)).await, "enabled again");
}

async fn values_keep_everything_after_the_first_equals_sign() {
    let app = app();
    let mut p = Policy::connect(&app).await;
    // The sender's value holds `=`: the address named in the refusal is all of it.
    let sender = "bounce=ceo=example.com@lists.example.org";
    let action = p.ask(&submission(BECKY, sender)).await;
    assert_refused(&action, "553", sender);
    // `=` in attributes the service does not use, and attributes it does not know.
    let req = request(&[
        ("ccert_subject", "CN=mx.example.org,O=Example=Org"),
        ("x_unknown_attribute", "a=b=c"),
        ("policy_context", "=leading"),
        ("sasl_method", "PLAIN"),
        ("sasl_username", BECKY),
        ("sender", BECKY),
        ("recipient", "friend@example.org"),
    ]);
    assert_dunno(&p.ask(&req).await, "`=` in other values");
}

async fn crlf_line_endings_are_accepted() {
    let app = app();
    let mut p = Policy::connect(&app).await;
    let crlf = |req: String| req.replace('\n', "\r\n");
    assert_dunno(
        &p.ask(&crlf(submission(BECKY, BECKY))).await,
        "CRLF, own address",
    );
    let action = p.ask(&crlf(submission(BECKY, "ceo@example.com"))).await;
    assert_refused(&action, "553", "ceo@example.com");
    // The `\r` is not part of the value: the address named ends where it should.
    assert!(!action.contains('\r'), "the value kept its \\r: {action:?}");
    // Mixed endings on one connection.
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "LF after CRLF");
}

async fn many_requests_on_one_connection_and_many_connections_at_once() {
    let app = app();
    let mut p = Policy::connect(&app).await;
    for i in 0..30 {
        match i % 3 {
            0 => assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "own"),
            1 => {
                let sender = format!("someone{i}@example.com");
                assert_refused(&p.ask(&submission(BECKY, &sender)).await, "553", &sender);
            }
            _ => assert_dunno(&p.ask(&inbound(BECKY)).await, "inbound"),
        }
    }
    // Several clients at once, each with several requests (Postfix keeps a few
    // connections open per smtpd process).
    let mut clients = Vec::new();
    for c in 0..8 {
        let mut p = Policy::connect(&app).await;
        clients.push(tokio::spawn(async move {
            for i in 0..10 {
                let sender = format!("c{c}r{i}@example.com");
                assert_refused(&p.ask(&submission(BECKY, &sender)).await, "553", &sender);
                assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "own");
            }
        }));
    }
    for c in clients {
        c.await.expect("a client failed");
    }
    // The first connection is still usable.
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "still open");
}

async fn pipelined_requests_are_answered_in_order() {
    let app = app();
    admin_put(
        &app,
        json!({"mode": "updateIncomingStatus", "incomingBlocked": true}),
    )
    .await;
    let mut p = Policy::connect(&app).await;
    let batch = [
        submission(BECKY, BECKY),
        submission(BECKY, "first@example.com"),
        inbound(BECKY),
        submission(BECKY, "second@example.com"),
        inbound(ADMIN),
    ]
    .concat();
    p.send(batch.as_bytes()).await;
    assert_dunno(&p.answer().await, "1st");
    assert_refused(&p.answer().await, "553", "first@example.com");
    assert_refused(&p.answer().await, "550", "");
    assert_refused(&p.answer().await, "553", "second@example.com");
    assert_dunno(&p.answer().await, "5th");
    // Two requests in one write with the second cut in half, the rest later.
    let second = submission(BECKY, "third@example.com");
    let (head, tail) = second.split_at(second.len() / 2);
    p.send(format!("{}{head}", submission(BECKY, BECKY)).as_bytes())
        .await;
    assert_dunno(&p.answer().await, "before the cut one");
    sleep(Duration::from_millis(50)).await;
    p.send(tail.as_bytes()).await;
    assert_refused(&p.answer().await, "553", "third@example.com");
}

async fn requests_written_in_tiny_pieces_are_answered() {
    let app = app();
    let mut p = Policy::connect(&app).await;
    // Byte by byte.
    p.send_byte_by_byte(submission(BECKY, "tiny@example.com").as_bytes())
        .await;
    assert_refused(&p.answer().await, "553", "tiny@example.com");
    // CRLF byte by byte (the `\r` and the `\n` arrive apart).
    p.send_byte_by_byte(submission(BECKY, BECKY).replace('\n', "\r\n").as_bytes())
        .await;
    assert_dunno(&p.answer().await, "CRLF byte by byte");
    // Pieces of 7 bytes, and a pause before the final empty line: a request is not
    // answered before its empty line.
    let req = submission(BECKY, "pieces@example.com");
    p.send_in_pieces(&req.as_bytes()[..req.len() - 1], 7).await;
    p.assert_silent_for(Duration::from_millis(300), "before the empty line")
        .await;
    p.send(b"\n").await;
    assert_refused(&p.answer().await, "553", "pieces@example.com");
}

async fn a_request_then_end_of_input_is_answered_then_closed() {
    // As with `printf … | nc`: the request, then FIN.
    let app = app();
    let mut p = Policy::connect(&app).await;
    p.send(submission(BECKY, "eof@example.com").as_bytes())
        .await;
    p.shutdown_write().await;
    assert_refused(&p.answer().await, "553", "eof@example.com");
    p.assert_closed("after the last answer").await;
}

async fn requests_over_64_kib_close_the_connection_without_an_answer() {
    let app = app();

    // Just under the limit, in lines of 4000 bytes: answered.
    let mut p = Policy::connect(&app).await;
    let filler = "f".repeat(4000);
    let mut attrs: Vec<(String, String)> = (0..15)
        .map(|i| (format!("x_filler_{i}"), filler.clone()))
        .collect();
    attrs.push(("sasl_username".into(), BECKY.into()));
    attrs.push(("sender".into(), "big@example.com".into()));
    let attrs_ref: Vec<(&str, &str)> = attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let near = request(&attrs_ref);
    assert!(near.len() < 63 * 1024, "{}", near.len());
    assert_refused(&p.ask(&near).await, "553", "big@example.com");

    // Over the limit in many lines: closed, even though the request is complete.
    let mut p = Policy::connect(&app).await;
    let mut over = String::new();
    for i in 0..20 {
        over.push_str(&format!("x_filler_{i}={filler}\n"));
    }
    over.push_str(&submission(BECKY, "big@example.com"));
    assert!(over.len() > 65 * 1024 + 1024);
    p.send_regardless(over.as_bytes()).await;
    p.assert_closed("a request of 80 KB").await;

    // One line over the limit without its newline: closed, not buffered for ever.
    let mut p = Policy::connect(&app).await;
    let mut long = String::from("sender=");
    long.push_str(&"a".repeat(70 * 1024));
    p.send_regardless(long.as_bytes()).await;
    p.assert_closed("a 70 KB line without end").await;

    // After a good request, an oversized one on the same connection.
    let mut p = Policy::connect(&app).await;
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "first");
    p.send_regardless(over.as_bytes()).await;
    p.assert_closed("oversized second request").await;

    // The service still works.
    let mut p = Policy::connect(&app).await;
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "afterwards");
}

async fn a_line_without_equals_closes_the_connection_without_an_answer() {
    let app = app();
    for (what, garbage) in [
        ("a sentence", "hello there\n\n".to_string()),
        (
            "a line without = among attributes",
            format!("request=smtpd_access_policy\nsasl_username={BECKY}\nnonsense\nsender=ceo@example.com\n\n"),
        ),
        ("an HTTP request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_string()),
        (
            "binary",
            "\u{0}\u{1}\u{2}\u{7f}garbage\n\n".to_string(),
        ),
    ] {
        let mut p = Policy::connect(&app).await;
        p.send_regardless(garbage.as_bytes()).await;
        p.assert_closed(what).await;
    }
    // After a good request, garbage on the same connection: the good one was answered,
    // then the connection closes.
    let mut p = Policy::connect(&app).await;
    p.send(format!("{}what is this\n\n", submission(BECKY, BECKY)).as_bytes())
        .await;
    assert_dunno(&p.answer().await, "the request before the garbage");
    p.assert_closed("garbage after a request").await;
    // The service still works.
    let mut p = Policy::connect(&app).await;
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "afterwards");
}

async fn clients_leaving_mid_request_do_not_disturb_the_server() {
    let app = app();
    // A connection opened before, kept across the disturbances.
    let mut kept = Policy::connect(&app).await;
    assert_dunno(&kept.ask(&submission(BECKY, BECKY)).await, "before");

    let req = submission(BECKY, "ceo@example.com");
    for cut in [0, 1, 20, req.len() / 2, req.len() - 1] {
        // Gone without a word (drop: FIN, or RST with unread data).
        let mut p = Policy::connect(&app).await;
        p.send(&req.as_bytes()[..cut]).await;
        drop(p);
        // Half-closed mid-request: the server closes without answering.
        let mut p = Policy::connect(&app).await;
        p.send(&req.as_bytes()[..cut]).await;
        p.shutdown_write().await;
        p.assert_closed(&format!("FIN after {cut} bytes")).await;
    }
    // Aborted with a reset (SO_LINGER 0) mid-request.
    for _ in 0..3 {
        reset_after_sending(app.policy_addr.as_deref().unwrap(), &req.as_bytes()[..30]).await;
    }
    // A client that sends a whole request and leaves before reading the answer.
    for _ in 0..5 {
        let mut p = Policy::connect(&app).await;
        p.send(req.as_bytes()).await;
        drop(p);
    }
    sleep(Duration::from_millis(200)).await;

    assert_refused(&kept.ask(&req).await, "553", "ceo@example.com");
    let mut fresh = Policy::connect(&app).await;
    assert_refused(&fresh.ask(&req).await, "553", "ceo@example.com");
    assert_dunno(&fresh.ask(&submission(BECKY, BECKY)).await, "fresh");
    // And the HTTP API is unaffected.
    assert_eq!(app.user().account(REBECCA).await.unwrap().status, 200);
}

async fn api_changes_apply_to_the_next_request_on_the_same_connection() {
    let app = app();
    let mut p = Policy::connect(&app).await;
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "before");

    user_put(
        &app,
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
    )
    .await;
    assert_refused(
        &p.ask(&submission(BECKY, BECKY)).await,
        "554",
        "Outgoing mail is blocked",
    );
    user_put(
        &app,
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": false}),
    )
    .await;
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "unblocked");

    user_put(&app, json!({"mode": "disableMailAccount"})).await;
    assert_refused(&p.ask(&submission(BECKY, BECKY)).await, "554", "disabled");
    user_put(&app, json!({"mode": "enableMailAccount"})).await;
    assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "enabled");

    // An identity added, then deleted.
    let ext = "later@example.net";
    assert_refused(&p.ask(&submission(BECKY, ext)).await, "553", ext);
    add_verified_identity(&app, extfrom(ext)).await;
    assert_dunno(&p.ask(&submission(BECKY, ext)).await, "identity added");
    user_put(
        &app,
        json!({"mode": "deletesendmaildetails", "fromAddress": ext}),
    )
    .await;
    assert_refused(&p.ask(&submission(BECKY, ext)).await, "553", ext);

    // An address change: the new address is a login at once.
    assert_dunno(
        &p.ask(&submission("rebecca@zylker.com", "ceo@example.com"))
            .await,
        "not a login yet",
    );
    user_put(
        &app,
        json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    assert_refused(
        &p.ask(&submission("rebecca@zylker.com", "ceo@example.com"))
            .await,
        "553",
        "ceo@example.com",
    );
}

async fn a_second_node_answers_from_the_same_database() {
    let a = app();
    let b = a.second_node_with(&POSTFIX_LISTENERS);
    assert_ne!(a.policy_addr, b.policy_addr);
    let mut pa = Policy::connect(&a).await;
    let mut pb = Policy::connect(&b).await;
    assert_dunno(&pb.ask(&submission(BECKY, BECKY)).await, "node B before");

    // A change through node A's API is seen by node B's policy service at once.
    user_put(
        &a,
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
    )
    .await;
    assert_refused(
        &pb.ask(&submission(BECKY, BECKY)).await,
        "554",
        "Outgoing mail is blocked",
    );
    assert_refused(
        &pa.ask(&submission(BECKY, BECKY)).await,
        "554",
        "Outgoing mail is blocked",
    );
    user_put(
        &a,
        json!({"mode": "updateOutgoingStatus", "outgoingBlocked": false}),
    )
    .await;
    assert_dunno(&pb.ask(&submission(BECKY, BECKY)).await, "node B after");
    add_verified_identity(&a, extfrom("nodes@example.net")).await;
    assert_dunno(
        &pb.ask(&submission(BECKY, "nodes@example.net")).await,
        "identity added on A",
    );
}

// ---- the listener's limits ----

/// A connection to the policy service from the local address `ip`, as another client.
async fn policy_from(app: &TestApp, ip: &str) -> Policy {
    let addr = app
        .policy_addr
        .as_deref()
        .expect("the policy service address");
    Policy(Wire::connect_from(addr, ip, "the policy service").await)
}

/// More connections than the listener serves (512), from addresses other than Postfix's,
/// none of them saying a word, and then Postfix's query: it is answered at once, the
/// oldest silent connection having been closed to make room. (The first request limit is
/// raised to a minute, so that only making room can answer it within the test's timeout.)
async fn idle_connections_from_other_addresses_cannot_keep_postfix_out() {
    let app = TestApp::demo_with_postfix_listeners(&["--postfix-first-request-ms", "60000"]);
    // 9 addresses, 58 each: under the 64 new connections an address may hold.
    let mut idle = Vec::new();
    for i in 0..520 {
        idle.push(policy_from(&app, &format!("127.0.0.{}", 2 + i % 9)).await);
    }
    let mut postfix = Policy::connect(&app).await;
    assert_dunno(
        &postfix.ask(&submission(BECKY, BECKY)).await,
        "Postfix's query",
    );
    idle[0]
        .assert_closed("the oldest connection without a request")
        .await;
    assert_dunno(&postfix.ask(&inbound(BECKY)).await, "and its next one");
}

/// One address may hold `--postfix-max-new-per-client` connections that have not sent a
/// request (4 here); one more is closed at once. Connections that have spoken do not count:
/// Postfix keeps many from one address.
async fn a_client_address_may_hold_only_so_many_connections_without_a_request() {
    let app = TestApp::demo_with_postfix_listeners(&[
        "--postfix-max-new-per-client",
        "4",
        "--postfix-first-request-ms",
        "60000",
    ]);
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(policy_from(&app, "127.0.0.2").await);
    }
    let mut fifth = policy_from(&app, "127.0.0.2").await;
    fifth
        .assert_closed("a fifth connection without a request from one address")
        .await;
    // Another address is not affected.
    let mut other = policy_from(&app, "127.0.0.3").await;
    assert_dunno(
        &other.ask(&submission(BECKY, BECKY)).await,
        "another address",
    );
    // The four were kept: each is served, and once one has spoken, the address may open
    // a new connection again.
    assert_dunno(&silent[0].ask(&inbound(BECKY)).await, "a kept connection");
    let mut again = policy_from(&app, "127.0.0.2").await;
    assert_dunno(
        &again.ask(&inbound(BECKY)).await,
        "a new one once one spoke",
    );
    for (i, p) in silent.iter_mut().enumerate() {
        assert_dunno(
            &p.ask(&inbound(BECKY)).await,
            &format!("kept connection {i}"),
        );
    }
    // Postfix's way: many connections from one address, each asking as it opens.
    let mut kept = Vec::new();
    for i in 0..10 {
        let mut p = Policy::connect(&app).await;
        assert_dunno(
            &p.ask(&inbound(BECKY)).await,
            &format!("reused connection {i}"),
        );
        kept.push(p);
    }
    for p in &mut kept {
        assert_dunno(&p.ask(&submission(BECKY, BECKY)).await, "still open");
    }
}

/// Before its first request a connection has `--postfix-first-request-ms`, from its
/// accept, however it trickles bytes; after it, `--postfix-idle-ms` between requests
/// (300 s by default, as Postfix keeps its connections).
async fn silent_connections_are_closed_sooner_before_their_first_request_than_after() {
    let app = TestApp::demo_with_postfix_listeners(&["--postfix-first-request-ms", "500"]);
    let mut silent = Policy::connect(&app).await;
    let mut trickling = Policy::connect(&app).await;
    let mut spoken = Policy::connect(&app).await;
    assert_dunno(&spoken.ask(&inbound(BECKY)).await, "a first request");
    // 2 s of a byte every 100 ms, never a whole request.
    for b in submission(BECKY, BECKY).bytes().take(20) {
        trickling.send_regardless(&[b]).await;
        sleep(Duration::from_millis(100)).await;
    }
    silent
        .assert_closed("no request within the first request limit")
        .await;
    trickling
        .assert_closed("bytes, but no whole request within the limit")
        .await;
    assert_dunno(
        &spoken.ask(&inbound(BECKY)).await,
        "a connection that has spoken outlives the first request limit",
    );

    let app = TestApp::demo_with_postfix_listeners(&["--postfix-idle-ms", "500"]);
    let mut spoken = Policy::connect(&app).await;
    assert_dunno(&spoken.ask(&inbound(BECKY)).await, "a first request");
    spoken
        .assert_closed("silent past the idle limit after a request")
        .await;
}

/// At `--postfix-max-connections` (3 here), a newcomer is served: the connection without
/// a request goes first, whatever its age; then the one idle longest since its answer.
async fn at_the_limit_new_connections_go_first_then_the_longest_idle() {
    let app = TestApp::demo_with_postfix_listeners(&[
        "--postfix-max-connections",
        "3",
        "--postfix-first-request-ms",
        "60000",
    ]);
    let mut a = Policy::connect(&app).await;
    assert_dunno(&a.ask(&inbound(BECKY)).await, "a");
    let mut silent = policy_from(&app, "127.0.0.2").await;
    let mut c = Policy::connect(&app).await;
    assert_dunno(&c.ask(&inbound(BECKY)).await, "c");
    let mut d = Policy::connect(&app).await;
    assert_dunno(&d.ask(&inbound(BECKY)).await, "d, past the limit");
    silent
        .assert_closed("the connection without a request makes room")
        .await;
    // a is older than the silent one, but has spoken: kept. Asking again makes c the
    // connection idle longest.
    assert_dunno(&a.ask(&inbound(BECKY)).await, "a, kept");
    assert_dunno(&d.ask(&inbound(BECKY)).await, "d again");
    let mut e = Policy::connect(&app).await;
    assert_dunno(&e.ask(&inbound(BECKY)).await, "e, past the limit");
    c.assert_closed("the connection idle longest makes room")
        .await;
    for (name, p) in [("a", &mut a), ("d", &mut d), ("e", &mut e)] {
        assert_dunno(&p.ask(&inbound(BECKY)).await, name);
    }
}
