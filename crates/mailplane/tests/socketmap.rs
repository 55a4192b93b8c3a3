//! The Postfix socketmap (`serve --socketmap-listen`), over real sockets: the
//! socketmap_table protocol (a netstring `<len>:<map> <key>,` asks, a netstring
//! `OK <value>`, `NOTFOUND `, `TEMP <reason>` or `PERM <reason>` answers, many lookups per
//! connection) and its maps `senderlogin`, `transport`, `tlspolicy`, `relayhost` and
//! `relaycreds`, as the API changes them (relays only once their identity is validated).
//!
//! Every read and write has a timeout: a server that hangs fails the test instead of
//! hanging it.

mod common;

use std::time::Duration;

use common::socketmap_client::*;
use common::wire::{reset_after_sending, Wire};
use common::*;
use serde_json::{json, Value};
use tokio::time::sleep;

backend_tests!(
    senderlogin_lists_the_logins_that_may_send_as_an_address,
    senderlogin_of_unknown_addresses_and_domains_is_notfound,
    delivery_maps_know_hosted_domains_mailboxes_and_aliases,
    relayhost_answers_the_relay_of_an_extfrom_identity,
    relayhost_resolves_relay_names_at_lookup_time,
    relay_names_resolving_to_internal_addresses_are_perm_without_the_flag,
    relaycreds_answer_exactly_user_colon_password,
    transport_names_the_transport_of_the_connection_kind,
    only_validated_identities_have_a_route,
    tlspolicy_verifies_the_name_the_user_gave_for_its_next_hop,
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
    lookups_over_a_unix_socket_only_its_owner_and_group_may_open;
    // The socket file's handling is the listener's, whatever the database.
    sqlite only: a_stale_socket_is_replaced_a_live_one_or_another_file_is_refused,
    idle_connections_cannot_keep_postfix_out_of_the_socketmap,
    connections_on_the_unix_socket_count_only_against_the_total,
);

const BECKY: &str = "becky@zylker.com";
const ADMIN: &str = "admin@zylker.com";

/// The demo with the socketmap (and the policy service) on free ports.
fn app_with(extra: &[&str]) -> TestApp {
    let app = TestApp::demo_with_postfix_listeners(extra);
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

// ---- the API ----

fn relay(from: &str, server: &str, port: u16, user: &str, password: &str) -> Value {
    json!({ "fromAddress": from, "displayName": "R", "mode": "extfrom", "serverName": server,
            "serverPort": port, "userName": user, "password": password, "smtpConnection": "tls" })
}

/// The demo with Rebecca's identity `relay@example.net` relayed through `8.8.8.8:587` as
/// `relay-user` with `password`, and a connection to its socketmap.
async fn app_with_relay(password: &str) -> (TestApp, Socketmap) {
    let app = app();
    add_verified_identity(
        &app,
        relay("relay@example.net", "8.8.8.8", 587, "relay-user", password),
    )
    .await;
    let m = Socketmap::connect(&app).await;
    (app, m)
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
    assert_eq!(m.senderlogin(BECKY, "own address").await, set(&[BECKY]));
    // Keys are case-insensitive.
    assert_eq!(
        m.senderlogin("BECKY@Zylker.COM", "own address, other case")
            .await,
        set(&[BECKY])
    );
    assert_eq!(
        m.senderlogin(ADMIN, "the admin's address").await,
        set(&[ADMIN])
    );

    // The address of an extfrom identity: Rebecca's logins.
    add_verified_identity(&app, relay("relay@example.net", "8.8.8.8", 587, "u", "p")).await;
    assert_eq!(
        m.senderlogin("Relay@Example.NET", "extfrom identity").await,
        set(&[BECKY])
    );
    // Of an extmailbox identity too.
    add_verified_identity(
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
        assert_eq!(m.senderlogin(key, key).await, both, "{key}");
    }
    // The admin's address is still only the admin's.
    assert_eq!(
        m.senderlogin(ADMIN, "the admin's address").await,
        set(&[ADMIN])
    );
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
    assert_eq!(m.senderlogin(BECKY, "after NOTFOUND").await, set(&[BECKY]));
}

// ---- delivery: domains, mailboxes, aliases ----

async fn delivery_maps_know_hosted_domains_mailboxes_and_aliases() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(m.lookup("domains", "zylker.com").await, "OK zylker.com");
    assert_eq!(m.lookup("domains", "Zylker.COM").await, "OK zylker.com");
    for key in ["example.com", "pop.example.net", "@zylker.com", "zylker"] {
        assert_eq!(m.lookup("domains", key).await, NOTFOUND, "{key}");
    }
    // The primary address is the mailbox, in any case and with any extension.
    for key in [BECKY, "Becky@Zylker.com", "becky+news@zylker.com"] {
        assert_eq!(
            m.lookup("mailboxes", key).await,
            format!("OK {BECKY}"),
            "{key}"
        );
        assert_eq!(m.lookup("aliases", key).await, NOTFOUND, "{key}");
    }
    // Unknown addresses, external accounts' addresses, partial keys: nothing.
    for key in [
        "nobody@zylker.com",
        "nobody+becky@zylker.com",
        "+news@zylker.com",
        "rebecca@pop.example.net",
        "@zylker.com",
        "becky",
    ] {
        assert_eq!(m.lookup("mailboxes", key).await, NOTFOUND, "{key}");
        assert_eq!(m.lookup("aliases", key).await, NOTFOUND, "{key}");
    }
    // A new primary address: the maps follow on the next lookup. The old one is an
    // alias now, which leads to the new one and is no mailbox of its own.
    user_put(
        &app,
        serde_json::json!({"mode": "emailupdate", "emailAddress": "rebecca@zylker.com"}),
    )
    .await;
    for key in ["rebecca@zylker.com", "rebecca+news@zylker.com"] {
        assert_eq!(
            m.lookup("mailboxes", key).await,
            "OK rebecca@zylker.com",
            "{key}"
        );
    }
    for key in [BECKY, "becky+x@zylker.com"] {
        assert_eq!(
            m.lookup("aliases", key).await,
            "OK rebecca@zylker.com",
            "{key}"
        );
        assert_eq!(m.lookup("mailboxes", key).await, NOTFOUND, "{key}");
    }
}

// ---- relayhost and relaycreds ----

async fn relayhost_answers_the_relay_of_an_extfrom_identity() {
    // A public IP literal needs no flag and no DNS.
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(m.lookup("relayhost", "relay@example.net").await, NOTFOUND);
    add_verified_identity(
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
    add_verified_identity(
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
    add_verified_identity(
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
    add_verified_identity(
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
    assert_eq!(m.senderlogin(BECKY, "senderlogin").await, set(&[BECKY]));
}

async fn relaycreds_answer_exactly_user_colon_password() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(m.lookup("relaycreds", "creds@example.net").await, NOTFOUND);
    // A password holding `:`, `=`, `,`, spaces and non-ASCII letters (so the netstring
    // length counts bytes, not characters).
    let password = "p:a:s=s, wörd:ÿ";
    add_verified_identity(
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
    add_verified_identity(
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

// ---- transport and tlspolicy ----

/// An `extfrom` identity relayed through `server:port` with `connection`.
fn relay_by(from: &str, server: &str, port: u16, connection: &str) -> Value {
    let mut r = relay(from, server, port, "u", "p");
    r["smtpConnection"] = json!(connection);
    r
}

async fn transport_names_the_transport_of_the_connection_kind() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    for (from, port, connection, want) in [
        ("plain@example.net", 25, "plain", "relay-plain:[8.8.8.8]:25"),
        ("tls@example.net", 587, "tls", "relay-tls:[8.8.8.8]:587"),
        ("ssl@example.net", 465, "ssl", "relay-ssl:[8.8.8.8]:465"),
    ] {
        assert_eq!(m.lookup("transport", from).await, NOTFOUND, "{from}");
        add_verified_identity(&app, relay_by(from, "8.8.8.8", port, connection)).await;
        assert_eq!(m.lookup("transport", from).await, format!("OK {want}"));
        assert_eq!(
            m.lookup("transport", &from.to_uppercase()).await,
            format!("OK {want}"),
            "keys are case-insensitive"
        );
    }
    // Postfix asks for the null sender too (with and without quotes), and for domains.
    for key in ["<>", "\"\"", "@example.net", BECKY, "nobody@example.net"] {
        assert_eq!(m.lookup("transport", key).await, NOTFOUND, "{key}");
    }
}

async fn only_validated_identities_have_a_route() {
    let app = internal_app();
    let mut m = Socketmap::connect(&app).await;
    let ext = "unchecked@example.net";
    add_identity(&app, relay_by(ext, "localhost", 2587, "tls")).await;
    let hop = "[127.0.0.1]:2587";
    // A new identity is pending, its owner unconfirmed; then each state but the one.
    for (confirmed, state) in [
        (None, ""),
        (Some(false), "validated"),
        (Some(true), "pending"),
        (Some(true), "failed"),
        (Some(false), "failed"),
    ] {
        if let Some(confirmed) = confirmed {
            set_identity_state(&app, ext, confirmed, state);
        }
        let what = format!("owner confirmed {confirmed:?}, relay {state:?}");
        for map in ["transport", "relayhost", "relaycreds"] {
            assert_eq!(m.lookup(map, ext).await, NOTFOUND, "{map}, {what}");
        }
        assert_eq!(m.lookup("tlspolicy", hop).await, NOTFOUND, "{what}");
        // The account owns the address as a sender once its owner confirmed it, whatever
        // its relay (the policy service then says what is missing).
        if confirmed == Some(true) {
            assert_eq!(m.senderlogin(ext, &what).await, set(&[BECKY]));
        } else {
            assert_eq!(m.lookup("senderlogin", ext).await, NOTFOUND, "{what}");
        }
    }
    mark_verified(&app, ext);
    assert_eq!(
        m.lookup("transport", ext).await,
        format!("OK relay-tls:{hop}")
    );
    assert_eq!(m.lookup("relaycreds", ext).await, "OK u:p");
    assert_eq!(
        m.lookup("tlspolicy", hop).await,
        "OK secure match=localhost servername=localhost"
    );
    // A relay that starts failing its checks is dropped at the next lookup.
    set_identity_state(&app, ext, true, "failed");
    assert_eq!(m.lookup("transport", ext).await, NOTFOUND);
    assert_eq!(m.lookup("tlspolicy", hop).await, NOTFOUND);
}

async fn tlspolicy_verifies_the_name_the_user_gave_for_its_next_hop() {
    let app = internal_app();
    let mut m = Socketmap::connect(&app).await;
    add_verified_identity(&app, relay_by("a@example.net", "localhost", 2587, "tls")).await;
    add_verified_identity(&app, relay_by("b@example.net", "localhost", 2465, "ssl")).await;
    add_verified_identity(&app, relay_by("c@example.net", "127.0.0.1", 2525, "plain")).await;
    // Asked by the next hop exactly as the transport map wrote it.
    let mut hops = Vec::new();
    for from in ["a@example.net", "b@example.net", "c@example.net"] {
        let t = m.lookup("transport", from).await;
        hops.push(t.split_once(':').expect("transport:nexthop").1.to_string());
    }
    let [a, b, c] = <[String; 3]>::try_from(hops).unwrap();
    assert_eq!(
        (a.as_str(), b.as_str(), c.as_str()),
        ("[127.0.0.1]:2587", "[127.0.0.1]:2465", "[127.0.0.1]:2525")
    );
    let verified = "OK secure match=localhost servername=localhost";
    assert_eq!(m.lookup("tlspolicy", &a).await, verified, "tls");
    assert_eq!(m.lookup("tlspolicy", &b).await, verified, "ssl");
    assert_eq!(m.lookup("tlspolicy", &c).await, "OK none", "plain");
    // Not a next hop of ours, or not a bracketed next hop at all.
    for key in [
        "[127.0.0.1]:2526",
        "[127.0.0.2]:2587",
        "127.0.0.1:2587",
        "[127.0.0.1]",
        "localhost",
        "[localhost]:2587",
        "a@example.net",
        "<>",
    ] {
        assert_eq!(m.lookup("tlspolicy", key).await, NOTFOUND, "{key}");
    }
    // Several relays behind one next hop share its policy: the strictest, with every name.
    add_verified_identity(&app, relay_by("d@example.net", "127.0.0.1", 2587, "plain")).await;
    assert_eq!(m.lookup("tlspolicy", &a).await, verified, "plain and tls");
    add_verified_identity(&app, relay_by("e@example.net", "127.0.0.1", 2587, "tls")).await;
    assert_eq!(
        m.lookup("tlspolicy", &a).await,
        "OK secure match=127.0.0.1:localhost servername=localhost"
    );
    add_verified_identity(&app, relay_by("f@example.net", "127.0.0.1", 2525, "plain")).await;
    assert_eq!(
        m.lookup("tlspolicy", &c).await,
        "OK none",
        "plain and plain"
    );
}

// ---- protocol errors ----

async fn an_unknown_map_is_perm() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    for map in ["nosuchmap", "virtual", "senderlogins", ""] {
        let a = m.lookup(map, BECKY).await;
        assert_perm(&a, &format!("map {map:?}"));
        // A well-formed request: the connection serves on.
        assert_eq!(
            m.senderlogin(BECKY, "after the unknown map").await,
            set(&[BECKY])
        );
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
    assert_eq!(
        m.senderlogin(BECKY, "after the long key").await,
        set(&[BECKY])
    );

    // The length alone decides: no need to send the payload.
    for header in ["10001:", "99999:", "123456789012345678901234567890:"] {
        let mut m = Socketmap::connect(&app).await;
        m.send(header.as_bytes()).await;
        m.assert_perm_then_closed(header).await;
    }
    // With a payload following, after a good lookup on the same connection.
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(m.senderlogin(BECKY, "first").await, set(&[BECKY]));
    let mut big = b"20000:senderlogin ".to_vec();
    big.extend([b'x'; 200]);
    m.send(&big).await;
    m.assert_perm_then_closed("20000 announced").await;
    // The socketmap still serves.
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(m.senderlogin(BECKY, "afterwards").await, set(&[BECKY]));
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
    assert_eq!(m.senderlogin(BECKY, "afterwards").await, set(&[BECKY]));
}

// ---- connections ----

async fn many_lookups_on_one_connection_and_many_connections_at_once() {
    let (app, mut m) = app_with_relay("pw:1").await;
    for i in 0..20 {
        assert_eq!(m.senderlogin(BECKY, "senderlogin").await, set(&[BECKY]));
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
    assert_eq!(m.senderlogin(BECKY, "still open").await, set(&[BECKY]));
}

async fn pipelined_lookups_are_answered_in_order() {
    let (_app, mut m) = app_with_relay("pw").await;
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
    let (_app, mut m) = app_with_relay("pw").await;
    m.send_byte_by_byte(&query("senderlogin", BECKY)).await;
    assert_eq!(logins(&m.answer().await, "byte by byte"), set(&[BECKY]));
    m.send_byte_by_byte(&query("relaycreds", "relay@example.net"))
        .await;
    assert_eq!(m.answer().await, "OK relay-user:pw");
    // Not answered before the comma.
    let q = query("relayhost", "relay@example.net");
    m.send(&q[..q.len() - 1]).await;
    m.assert_silent_for(Duration::from_millis(300), "before the comma")
        .await;
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
    assert_eq!(kept.senderlogin(BECKY, "before").await, set(&[BECKY]));

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
        reset_after_sending(app.socketmap_addr.as_deref().unwrap(), &q[..10]).await;
    }
    for _ in 0..5 {
        let mut m = Socketmap::connect(&app).await;
        m.send(&q).await;
        drop(m);
    }
    sleep(Duration::from_millis(200)).await;

    assert_eq!(kept.senderlogin(BECKY, "kept").await, set(&[BECKY]));
    let mut fresh = Socketmap::connect(&app).await;
    assert_eq!(fresh.senderlogin(BECKY, "fresh").await, set(&[BECKY]));
    assert_eq!(app.user().account(REBECCA).await.unwrap().status, 200);
}

async fn api_changes_apply_to_the_next_lookup_on_the_same_connection() {
    let app = app();
    let mut m = Socketmap::connect(&app).await;
    let ext = "later@example.net";
    assert_eq!(m.lookup("senderlogin", ext).await, NOTFOUND);
    assert_eq!(m.lookup("relayhost", ext).await, NOTFOUND);
    assert_eq!(m.lookup("relaycreds", ext).await, NOTFOUND);

    add_verified_identity(&app, relay(ext, "8.8.8.8", 587, "later-user", "first")).await;
    assert_eq!(m.senderlogin(ext, ext).await, set(&[BECKY]));
    assert_eq!(m.lookup("relayhost", ext).await, "OK [8.8.8.8]:587");
    assert_eq!(m.lookup("relaycreds", ext).await, "OK later-user:first");

    // Through the admin URL, replaced.
    admin_put(
        &app,
        json!({"zuid": REBECCA_ZUID, "mode": "addsendmaildetails",
               "sendMailDetails": [relay(ext, "8.8.4.4", 2587, "later-user2", "second")]}),
    )
    .await;
    mark_verified(&app, ext);
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
    let b = a.second_node_with(&POSTFIX_LISTENERS);
    assert_ne!(a.socketmap_addr, b.socketmap_addr);
    let mut mb = Socketmap::connect(&b).await;
    let ext = "nodes@example.net";
    assert_eq!(mb.lookup("relaycreds", ext).await, NOTFOUND);
    // Added through node A, encrypted with the shared relay key, read by node B.
    add_verified_identity(&a, relay(ext, "8.8.8.8", 587, "nodes-user", "n0des:pw")).await;
    assert_eq!(mb.lookup("relaycreds", ext).await, "OK nodes-user:n0des:pw");
    assert_eq!(mb.lookup("relayhost", ext).await, "OK [8.8.8.8]:587");
    assert_eq!(mb.senderlogin(ext, ext).await, set(&[BECKY]));
}

// ---- the UNIX socket ----

fn unix(path: &std::path::Path) -> String {
    format!("unix:{}", path.display())
}

/// The mode bits of `path`, which must be a socket.
fn socket_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(path).expect("the socket file");
    assert!(
        meta.file_type().is_socket(),
        "{} is not a socket",
        path.display()
    );
    meta.permissions().mode() & 0o7777
}

/// `--socketmap-listen unix:PATH` (and `--policy-listen unix:PATH`): a socket file of mode
/// 0660 that answers as the TCP port does, named so by `postfix config`, and removed when
/// the server stops.
async fn lookups_over_a_unix_socket_only_its_owner_and_group_may_open() {
    let sockets = tempfile::tempdir().unwrap();
    let (map, policy) = (sockets.path().join("map"), sockets.path().join("policy"));
    let mut app = TestApp::demo_on(
        Db::fresh(),
        &[
            "--socketmap-listen",
            &unix(&map),
            "--policy-listen",
            &unix(&policy),
        ],
    );
    assert_eq!(app.socketmap_addr.as_deref(), Some(unix(&map).as_str()));
    assert_eq!(app.policy_addr.as_deref(), Some(unix(&policy).as_str()));
    for path in [&map, &policy] {
        assert_eq!(socket_mode(path), 0o660, "{}", path.display());
    }
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(m.senderlogin(BECKY, "own address").await, set(&[BECKY]));
    assert_eq!(m.lookup("relaycreds", BECKY).await, NOTFOUND);
    let mut p = common::policy_client::Policy::connect(&app).await;
    let action = p
        .ask(&common::policy_client::submission(BECKY, BECKY))
        .await;
    common::policy_client::assert_dunno(&action, "own address, over the UNIX socket");

    let out = app.cli(&[
        "postfix",
        "config",
        "--policy",
        &unix(&policy),
        "--socketmap",
        &unix(&map),
    ]);
    assert!(out.status.success());
    let cf = String::from_utf8(out.stdout).unwrap();
    assert!(
        cf.contains(&format!("check_policy_service {},", unix(&policy))),
        "{cf}"
    );
    for name in ["senderlogin", "transport", "tlspolicy", "relaycreds"] {
        assert!(
            cf.contains(&format!("socketmap:{}:{name}", unix(&map))),
            "{cf}"
        );
    }
    assert!(!cf.contains("inet:"), "{cf}");

    drop((m, p));
    assert!(app.terminate(), "mailplane did not exit cleanly on SIGTERM");
    assert!(!map.exists(), "the socket file is removed on shutdown");
    assert!(!policy.exists());
}

/// A socket file left by a server that is gone is replaced; a live server's socket, or a
/// file that is not a socket, makes `serve` refuse to start and is left alone.
async fn a_stale_socket_is_replaced_a_live_one_or_another_file_is_refused() {
    let sockets = tempfile::tempdir().unwrap();
    let map = sockets.path().join("map");
    // A socket nobody listens on any more (a server killed before it could remove it).
    drop(std::os::unix::net::UnixListener::bind(&map).unwrap());
    assert!(map.exists());
    let app = TestApp::demo_on(Db::fresh(), &["--socketmap-listen", &unix(&map)]);
    assert_eq!(socket_mode(&map), 0o660);
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(m.senderlogin(BECKY, "own address").await, set(&[BECKY]));

    // The socket is live: a second server on it is refused, and the first keeps serving.
    let second = TestApp::try_serve_logged(
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        Db::fresh(),
        &["--demo", "--socketmap-listen", &unix(&map)],
        &[],
        "server.log",
    );
    let log = second
        .err()
        .expect("a second server on a live socket is refused");
    assert!(log.contains("another process is listening"), "{log}");
    assert_eq!(
        m.senderlogin(BECKY, "after the refusal").await,
        set(&[BECKY])
    );

    // Not a socket: refused, the file untouched.
    let file = sockets.path().join("file");
    std::fs::write(&file, "keep me").unwrap();
    let third = TestApp::try_serve_logged(
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        Db::fresh(),
        &["--demo", "--socketmap-listen", &unix(&file)],
        &[],
        "server.log",
    );
    let log = third.err().expect("a path that is not a socket is refused");
    assert!(log.contains("not a socket"), "{log}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

// ---- the listener's limits (the policy service's tests have them all) ----

/// Silent connections from other addresses past `--postfix-max-connections` (8 here) do
/// not keep Postfix's lookup out: the oldest is closed to make room.
async fn idle_connections_cannot_keep_postfix_out_of_the_socketmap() {
    let app = app_with(&[
        "--postfix-max-connections",
        "8",
        "--postfix-first-request-ms",
        "60000",
    ]);
    let addr = app.socketmap_addr.clone().unwrap();
    let mut idle = Vec::new();
    for i in 0..12 {
        let from = format!("127.0.0.{}", 2 + i % 3);
        idle.push(Socketmap(
            Wire::connect_from(&addr, &from, "the socketmap").await,
        ));
    }
    let mut m = Socketmap::connect(&app).await;
    assert_eq!(
        m.senderlogin(BECKY, "Postfix's lookup").await,
        set(&[BECKY])
    );
    idle[0]
        .assert_closed("the oldest connection without a request")
        .await;
}

/// Connections on the UNIX socket have no client address: the per-address limit on
/// connections without a request (2 here) does not apply to them.
async fn connections_on_the_unix_socket_count_only_against_the_total() {
    let sockets = tempfile::tempdir().unwrap();
    let map = sockets.path().join("map");
    let app = TestApp::demo_on(
        Db::fresh(),
        &[
            "--socketmap-listen",
            &unix(&map),
            "--postfix-max-new-per-client",
            "2",
        ],
    );
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(Socketmap::connect(&app).await);
    }
    for (i, m) in silent.iter_mut().enumerate() {
        assert_eq!(
            m.senderlogin(BECKY, &format!("connection {i}")).await,
            set(&[BECKY])
        );
    }
}
