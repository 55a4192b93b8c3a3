//! The store's behaviour, the same on both backends: each body below runs once on SQLite
//! and once on PostgreSQL (see `common::conformance!`), through the public `Store` API
//! only, as the API and the command line call it. A difference between the backends
//! shows as one of the two variants failing.

mod common;

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{conformance, Fresh};
use mailplane_domain::{
    Access, AccountCommand, AccountId, AccountKind, EmailAddress, IdentityKey, IdentityMode,
    IdentitySelector, IdentityState, NewIdentity, NewRelay, PasswordHash, PasswordReset, Relay,
    RelayCheck, RelayState, Role, RuleErrorKind, ScopeSet, Secret, SmtpConnection, Zoid, Zuid,
};
use mailplane_store::oauth::{CodeChallenge, OAuthClient, OAuthError};
use mailplane_store::{
    AuditEntry, AuditQuery, Caller, DemoTokens, Denied, Grant, GrantKind, NewUser, OrgClient,
    ProvisionError, Pruned, ReadError, Refusal, RequestMeta, SecurityEvent, Store, UpdateTarget,
    UserRef, WriteError, MAX_EVENT_PATH_CHARS, RELAY_CHECK_MODE,
};

conformance!(
    ping_durability_and_pool,
    bootstrap_makes_an_organization_and_refuses_a_taken_domain,
    demo_is_seeded_once_with_the_contract_ids,
    tokens_authenticate_until_they_expire_or_are_revoked,
    account_reads_follow_the_grant,
    org_accounts_page_by_zuid_and_find_users_by_zuid_or_email,
    create_user_refuses_a_taken_address,
    delete_users_by_zuid_and_email_is_all_or_nothing,
    every_mode_applies_and_the_mail_server_sees_it,
    emailupdate_to_a_taken_address_is_a_conflict,
    email_aliases_are_added_through_a_zuid_and_reach_the_mail_server,
    a_deleted_alias_is_no_longer_the_accounts_to_send_as,
    reset_password_sets_the_hash_and_revokes_only_that_users_tokens,
    apply_refuses_bad_callers_and_targets_out_of_reach,
    concurrent_reorders_never_lose_an_update,
    oauth_codes_are_single_use_and_bound_to_their_pkce_challenge,
    oauth_refresh_and_revocation,
    audit_log_pages_newest_first_without_overlap,
    security_events_are_kept_per_organization_newest_first,
    prune_removes_old_rows_in_batches,
    seed_synthetic_makes_organizations_users_and_tokens,
    relay_passwords_survive_key_rotation,
    users_page_searches_names_and_addresses_and_pages_in_the_database,
    org_clients_are_registered_listed_and_deleted_per_organization,
    org_clients_are_limited_per_organization,
    audit_and_events_filter_by_kind_and_actor,
);

// ---- the demo organization (contract §9) ----

const DEMO_ZOID: u64 = 12345678;
const REBECCA_ZUID: u64 = 11111111;
const REBECCA: u64 = 2560636000000008002;
const POP: u64 = 5111110000000008001;
const IMAP: u64 = 5111110000000009001;

fn zoid(v: u64) -> Zoid {
    Zoid::new(v).unwrap()
}
fn zuid(v: u64) -> Zuid {
    Zuid::new(v).unwrap()
}
fn account(v: u64) -> AccountId {
    AccountId::new(v).unwrap()
}
fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn meta(request_id: &str) -> RequestMeta {
    RequestMeta {
        request_id: request_id.into(),
        client_addr: "192.0.2.7".into(),
    }
}

fn user(token: &str) -> Caller<'_> {
    Caller {
        token,
        kind: GrantKind::User,
    }
}

fn admin(token: &str) -> Caller<'_> {
    Caller {
        token,
        kind: GrantKind::Admin,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The grant a valid token gets for `kind` and `access`.
async fn grant(s: &Store, token: &str, kind: GrantKind, access: Access) -> Grant {
    s.authenticate(token)
        .await
        .unwrap()
        .expect("a valid token")
        .grant(kind, access)
        .expect("the grant")
}

async fn demo(db: &Fresh) -> (Store, DemoTokens) {
    let s = db.store().await;
    let tokens = s.seed_demo().await.expect("the demo on an empty database");
    (s, tokens)
}

/// Rebecca's hosted account as her own token reads it.
async fn rebecca(s: &Store, t: &DemoTokens) -> mailplane_store::AccountView {
    s.account(user(&t.user_token), account(REBECCA))
        .await
        .unwrap()
        .expect("Rebecca's account")
}

fn every_page() -> AuditQuery {
    AuditQuery {
        start: 0,
        limit: 1000,
        ..AuditQuery::default()
    }
}

/// An `extfrom` identity with a relay and its password.
fn extfrom(address: &str, password: &str) -> NewIdentity {
    NewIdentity::new(
        "sendMailDetails[0]",
        Some(addr(address)),
        "Rebecca outside".into(),
        IdentityMode::ExtFrom,
        NewRelay {
            server_name: Some("smtp.outside.example".into()),
            server_port: Some(587),
            user_name: Some("rebecca.relay".into()),
            password: Some(Secret::new(password.into())),
            smtp_connection: Some(SmtpConnection::Tls),
        },
    )
    .unwrap()
}

fn assert_rule(r: Result<impl std::fmt::Debug, WriteError>, kind: RuleErrorKind, field: &str) {
    match r {
        Err(WriteError::Rule(e)) => {
            assert_eq!((e.kind, e.field.as_str()), (kind, field), "{e}");
        }
        other => panic!("expected a {kind:?} rule error on {field}, got {other:?}"),
    }
}

fn assert_refused<T: std::fmt::Debug>(r: Result<T, ProvisionError>) {
    assert!(
        matches!(r, Err(ProvisionError::Refused(_))),
        "expected a refusal, got {r:?}"
    );
}

// ---- the bodies ----

async fn ping_durability_and_pool(db: Fresh) {
    let s = db.store().await;
    s.ping().await.unwrap();
    let d = s.durability().await.unwrap();
    assert!(!d.settings.is_empty(), "no durability setting reported");
    assert!(
        !d.weaker_than_default,
        "the default settings report themselves weaker than default: {:?}",
        d.settings
    );
    let (in_use, idle, most) = s.pool_state();
    assert!(most >= 1, "a pool of no connections");
    assert!(in_use + idle <= most, "{in_use} + {idle} > {most}");
}

async fn bootstrap_makes_an_organization_and_refuses_a_taken_domain(db: Fresh) {
    let s = db.store().await;
    let b = s
        .bootstrap(
            "Acme",
            "acme.example",
            addr("boss@acme.example"),
            Some("$argon2id$stand-in".into()),
        )
        .await
        .unwrap();
    let p = s
        .authenticate(&b.access_token)
        .await
        .unwrap()
        .expect("its token");
    assert_eq!(
        (p.zuid(), p.zoid(), p.role()),
        (b.zuid, b.zoid, Role::SuperAdmin)
    );
    let g = p.grant(GrantKind::Admin, Access::Read).unwrap();
    let org = s
        .organization(&g, b.zoid)
        .await
        .unwrap()
        .expect("its organization");
    assert_eq!(org.zoid, b.zoid);
    assert_eq!(org.name, "Acme");
    assert_eq!(org.primary_domain, "acme.example");
    assert_eq!(org.domains, vec!["acme.example".to_string()]);
    assert_eq!(org.users_count, 1);
    assert_eq!(org.super_admin, Some(addr("boss@acme.example")));
    let view = s
        .org_user_account(&g, b.zoid, UserRef::Zuid(b.zuid))
        .await
        .unwrap()
        .expect("the admin's account");
    assert_eq!(view.account_id, b.account_id);
    assert_eq!(view.role, Role::SuperAdmin);
    assert_eq!(view.kind, AccountKind::Hosted);
    assert_eq!(view.primary_address(), Some(&addr("boss@acme.example")));
    let creds = s
        .credentials(&addr("boss@acme.example"))
        .await
        .unwrap()
        .expect("the admin signs in");
    assert_eq!(creds.zuid, b.zuid);
    assert_eq!(creds.password_hash.as_deref(), Some("$argon2id$stand-in"));

    // What the code does today: a second bootstrap is refused when its domain is taken
    // (whatever the admin), or when the admin is outside the domain; another domain makes
    // another organization.
    assert_refused(
        s.bootstrap(
            "Acme again",
            "acme.example",
            addr("other@acme.example"),
            None,
        )
        .await,
    );
    assert_refused(
        s.bootstrap("Gamma", "gamma.example", addr("boss@acme.example"), None)
            .await,
    );
    let org_again = s.organization(&g, b.zoid).await.unwrap().unwrap();
    assert_eq!(org_again.users_count, 1, "a refused bootstrap added a user");
    assert!(s
        .credentials(&addr("other@acme.example"))
        .await
        .unwrap()
        .is_none());
    let b2 = s
        .bootstrap("Beta", "beta.example", addr("boss@beta.example"), None)
        .await
        .unwrap();
    assert_ne!(b2.zoid, b.zoid);
    assert_ne!(b2.zuid, b.zuid);
    assert!(
        s.organization(&g, b2.zoid).await.unwrap().is_none(),
        "one organization's admin reaches another"
    );
    // The demo wants an empty database.
    assert_refused(s.seed_demo().await);
}

async fn demo_is_seeded_once_with_the_contract_ids(db: Fresh) {
    let (s, t) = demo(&db).await;
    assert_refused(s.seed_demo().await);
    let a = s.authenticate(&t.admin_token).await.unwrap().unwrap();
    assert_eq!((a.zoid(), a.role()), (zoid(DEMO_ZOID), Role::SuperAdmin));
    let u = s.authenticate(&t.user_token).await.unwrap().unwrap();
    assert_eq!(
        (u.zuid(), u.zoid(), u.role()),
        (zuid(REBECCA_ZUID), zoid(DEMO_ZOID), Role::Member)
    );
    let own = s
        .own_accounts(&u.grant(GrantKind::User, Access::Read).unwrap())
        .await
        .unwrap();
    let summary: Vec<_> = own
        .iter()
        .map(|v| (v.account_id, v.kind, v.sequence, v.external_address.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (account(REBECCA), AccountKind::Hosted, 1, None),
            (
                account(POP),
                AccountKind::Pop,
                2,
                Some(addr("rebecca@pop.example.net"))
            ),
            (
                account(IMAP),
                AccountKind::Imap,
                3,
                Some(addr("rebecca@imap.example.net"))
            ),
        ]
    );
    assert_eq!(own[0].primary_address(), Some(&addr("becky@zylker.com")));
    assert_eq!(own[0].display_name, "Rebecca");
    // A user's token reaches no organization.
    assert!(s
        .organization(
            &u.grant(GrantKind::User, Access::Read).unwrap(),
            zoid(DEMO_ZOID)
        )
        .await
        .unwrap()
        .is_none());
    let org = s
        .organization(
            &a.grant(GrantKind::Admin, Access::Read).unwrap(),
            zoid(DEMO_ZOID),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            org.name.as_str(),
            org.primary_domain.as_str(),
            org.users_count
        ),
        ("Zylker", "zylker.com", 2)
    );
    assert_eq!(org.super_admin, Some(addr("admin@zylker.com")));
}

async fn tokens_authenticate_until_they_expire_or_are_revoked(db: Fresh) {
    let (s, _) = demo(&db).await;
    let rebecca = zuid(REBECCA_ZUID);
    let token = s
        .issue_token(rebecca, ScopeSet::user_all(), None)
        .await
        .unwrap();
    let p = s.authenticate(&token).await.unwrap().expect("a new token");
    assert_eq!(p.zuid(), rebecca);
    assert!(p.grant(GrantKind::User, Access::Update).is_ok());
    assert_eq!(
        p.grant(GrantKind::Admin, Access::Read).unwrap_err(),
        Denied::Scope
    );
    // Every scope, but a member: the role is what refuses.
    let wide = s
        .issue_token(rebecca, ScopeSet::everything(), None)
        .await
        .unwrap();
    let wp = s.authenticate(&wide).await.unwrap().unwrap();
    assert_eq!(
        wp.grant(GrantKind::Admin, Access::Read).unwrap_err(),
        Denied::Role
    );
    // Expiry: a token of no lifetime is dead at once; one of an hour lives.
    let dead = s
        .issue_token(rebecca, ScopeSet::user_all(), Some(0))
        .await
        .unwrap();
    assert!(s.authenticate(&dead).await.unwrap().is_none());
    let hour = s
        .issue_token(rebecca, ScopeSet::user_all(), Some(3600))
        .await
        .unwrap();
    assert!(s.authenticate(&hour).await.unwrap().is_some());
    // Revocation: once, and only of a live token.
    assert!(s.revoke_token(&token).await.unwrap());
    assert!(s.authenticate(&token).await.unwrap().is_none());
    assert!(!s.revoke_token(&token).await.unwrap());
    assert!(!s.revoke_token("mpat_no-such-token").await.unwrap());
    assert!(
        s.authenticate(&hour).await.unwrap().is_some(),
        "revoked the wrong token"
    );
    assert!(s.authenticate("").await.unwrap().is_none());
    assert_refused(s.issue_token(zuid(999), ScopeSet::user_all(), None).await);
}

async fn account_reads_follow_the_grant(db: Fresh) {
    let (s, t) = demo(&db).await;
    let mine = rebecca(&s, &t).await;
    assert_eq!(mine.zuid, zuid(REBECCA_ZUID));
    assert_eq!(mine.zoid, zoid(DEMO_ZOID));
    assert_eq!(mine.primary_address(), Some(&addr("becky@zylker.com")));
    assert!(mine.enabled && !mine.outgoing_blocked && !mine.incoming_blocked);
    // The admin reads it through the organization, and sees the same.
    let via_admin = s
        .account(admin(&t.admin_token), account(REBECCA))
        .await
        .unwrap()
        .expect("within the organization");
    assert_eq!(via_admin, mine);
    let g = grant(&s, &t.admin_token, GrantKind::Admin, Access::Read).await;
    let by_email = s
        .org_user_account(
            &g,
            zoid(DEMO_ZOID),
            UserRef::Email(addr("becky@zylker.com")),
        )
        .await
        .unwrap();
    assert_eq!(by_email.as_ref(), Some(&mine));
    // The admin's own account is out of Rebecca's reach, and looks missing.
    let boss = s
        .org_user_account(
            &g,
            zoid(DEMO_ZOID),
            UserRef::Email(addr("admin@zylker.com")),
        )
        .await
        .unwrap()
        .expect("the admin's account");
    assert!(s
        .account(user(&t.user_token), boss.account_id)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .account(user(&t.user_token), account(9_000_000_000_000_000_001))
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.account(user("mpat_forged"), account(REBECCA)).await,
        Err(ReadError::Refused(Refusal::InvalidToken))
    ));
    assert!(matches!(
        s.account(admin(&t.user_token), account(REBECCA)).await,
        Err(ReadError::Refused(Refusal::Denied(Denied::Scope)))
    ));
}

async fn org_accounts_page_by_zuid_and_find_users_by_zuid_or_email(db: Fresh) {
    let s = db.store().await;
    let b = s
        .bootstrap("Acme", "acme.example", addr("boss@acme.example"), None)
        .await
        .unwrap();
    let other = s
        .bootstrap("Beta", "beta.example", addr("boss@beta.example"), None)
        .await
        .unwrap();
    let create = grant(&s, &b.access_token, GrantKind::Admin, Access::Create).await;
    let mut made = Vec::new();
    for n in 1..=5 {
        let mut u = NewUser::minimal(addr(&format!("u{n}@acme.example")), Role::Member);
        u.first_name = format!("User{n}");
        let v = s
            .create_user(&create, &meta(&format!("create-{n}")), b.zoid, u)
            .await
            .unwrap();
        assert_eq!(
            v.primary_address(),
            Some(&addr(&format!("u{n}@acme.example")))
        );
        assert_eq!(
            (v.role, v.kind, v.sequence),
            (Role::Member, AccountKind::Hosted, 1)
        );
        assert_eq!(v.first_name, format!("User{n}"));
        made.push(v);
    }
    let g = grant(&s, &b.access_token, GrantKind::Admin, Access::Read).await;
    let all = s.org_accounts(&g, b.zoid, 0, 100).await.unwrap().unwrap();
    assert_eq!(all.len(), 6, "the admin and five users");
    assert!(all.windows(2).all(|w| w[0].zuid < w[1].zuid), "not by zuid");
    for v in &made {
        assert!(
            all.contains(v),
            "{:?} missing from the listing",
            v.account_id
        );
    }
    // `start` is an offset: pages of four are the listing cut in two.
    let first = s.org_accounts(&g, b.zoid, 0, 4).await.unwrap().unwrap();
    let second = s.org_accounts(&g, b.zoid, 4, 4).await.unwrap().unwrap();
    assert_eq!((first.len(), second.len()), (4, 2));
    assert_eq!([first, second].concat(), all);
    assert!(s
        .org_accounts(&g, b.zoid, 6, 4)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    assert!(s
        .org_accounts(&g, other.zoid, 0, 100)
        .await
        .unwrap()
        .is_none());

    let third = &made[2];
    let by_zuid = s
        .org_user_account(&g, b.zoid, UserRef::Zuid(third.zuid))
        .await
        .unwrap();
    let by_email = s
        .org_user_account(&g, b.zoid, UserRef::Email(addr("u3@acme.example")))
        .await
        .unwrap();
    assert_eq!(by_zuid.as_ref(), Some(third));
    assert_eq!(by_email.as_ref(), Some(third));
    for missing in [
        UserRef::Email(addr("nobody@acme.example")),
        UserRef::Zuid(other.zuid),
        UserRef::Email(addr("boss@beta.example")),
    ] {
        assert!(
            s.org_user_account(&g, b.zoid, missing.clone())
                .await
                .unwrap()
                .is_none(),
            "{missing:?} found in the wrong organization"
        );
    }
    assert!(s
        .org_user_account(&g, other.zoid, UserRef::Zuid(other.zuid))
        .await
        .unwrap()
        .is_none());
}

async fn create_user_refuses_a_taken_address(db: Fresh) {
    let s = db.store().await;
    let b = s
        .bootstrap("Acme", "acme.example", addr("boss@acme.example"), None)
        .await
        .unwrap();
    let g = grant(&s, &b.access_token, GrantKind::Admin, Access::Create).await;
    let first = NewUser::minimal(addr("dup@acme.example"), Role::Member);
    s.create_user(&g, &meta("c1"), b.zoid, first.clone())
        .await
        .unwrap();
    // The API answers these 409.
    assert_rule(
        s.create_user(&g, &meta("c2"), b.zoid, first).await,
        RuleErrorKind::Conflict,
        "primaryEmailAddress",
    );
    assert_rule(
        s.create_user(
            &g,
            &meta("c3"),
            b.zoid,
            NewUser::minimal(addr("boss@acme.example"), Role::Member),
        )
        .await,
        RuleErrorKind::Conflict,
        "primaryEmailAddress",
    );
    let read = grant(&s, &b.access_token, GrantKind::Admin, Access::Read).await;
    let org = s.organization(&read, b.zoid).await.unwrap().unwrap();
    assert_eq!(org.users_count, 2, "a refused user was created");
    // Outside the organization's domains: refused, but not as a conflict.
    let outside = s
        .create_user(
            &g,
            &meta("c4"),
            b.zoid,
            NewUser::minimal(addr("someone@elsewhere.example"), Role::Member),
        )
        .await;
    assert!(
        matches!(&outside, Err(WriteError::Rule(e)) if e.kind != RuleErrorKind::Conflict),
        "{outside:?}"
    );
}

async fn delete_users_by_zuid_and_email_is_all_or_nothing(db: Fresh) {
    let s = db.store().await;
    let b = s
        .bootstrap("Acme", "acme.example", addr("boss@acme.example"), None)
        .await
        .unwrap();
    let create = grant(&s, &b.access_token, GrantKind::Admin, Access::Create).await;
    let mut views = Vec::new();
    for name in ["one", "two", "three"] {
        let u = NewUser::minimal(addr(&format!("{name}@acme.example")), Role::Member);
        views.push(
            s.create_user(&create, &meta(name), b.zoid, u)
                .await
                .unwrap(),
        );
    }
    let delete = grant(&s, &b.access_token, GrantKind::Admin, Access::Delete).await;
    let read = grant(&s, &b.access_token, GrantKind::Admin, Access::Read).await;
    // One of the two is missing: nothing is removed.
    let partly = s
        .delete_users(
            &delete,
            &meta("d1"),
            b.zoid,
            vec![
                UserRef::Zuid(views[0].zuid),
                UserRef::Email(addr("nobody@acme.example")),
            ],
        )
        .await;
    assert!(matches!(partly, Err(WriteError::NotFound(_))), "{partly:?}");
    assert!(s
        .org_user_account(&read, b.zoid, UserRef::Zuid(views[0].zuid))
        .await
        .unwrap()
        .is_some());
    s.delete_users(
        &delete,
        &meta("d2"),
        b.zoid,
        vec![
            UserRef::Zuid(views[0].zuid),
            UserRef::Email(addr("two@acme.example")),
        ],
    )
    .await
    .unwrap();
    for gone in [
        UserRef::Zuid(views[0].zuid),
        UserRef::Zuid(views[1].zuid),
        UserRef::Email(addr("one@acme.example")),
    ] {
        assert!(s
            .org_user_account(&read, b.zoid, gone)
            .await
            .unwrap()
            .is_none());
    }
    assert!(s
        .mail_account(&addr("one@acme.example"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .credentials(&addr("two@acme.example"))
        .await
        .unwrap()
        .is_none());
    let left = s
        .org_accounts(&read, b.zoid, 0, 100)
        .await
        .unwrap()
        .unwrap();
    let left: Vec<_> = left.iter().map(|v| v.zuid).collect();
    assert_eq!(left, vec![b.zuid, views[2].zuid]);
    // The address is free again.
    s.create_user(
        &create,
        &meta("again"),
        b.zoid,
        NewUser::minimal(addr("one@acme.example"), Role::Member),
    )
    .await
    .unwrap();
}

async fn every_mode_applies_and_the_mail_server_sees_it(db: Fresh) {
    let (s, t) = demo(&db).await;
    let me = user(&t.user_token);
    let id = account(REBECCA);
    let becky = addr("becky@zylker.com");
    let mut modes = Vec::new();
    let mut run = |cmd: AccountCommand| {
        modes.push(cmd.mode().as_str());
        cmd
    };

    let a = s
        .apply(
            me,
            &meta("m1"),
            None,
            id,
            None,
            run(AccountCommand::DisableMailAccount),
        )
        .await
        .unwrap();
    assert_eq!(a.identities, None);
    assert!(!rebecca(&s, &t).await.enabled);
    assert!(!s.mail_account(&becky).await.unwrap().unwrap().enabled);
    s.apply(
        me,
        &meta("m2"),
        None,
        id,
        None,
        run(AccountCommand::EnableMailAccount),
    )
    .await
    .unwrap();
    assert!(rebecca(&s, &t).await.enabled);
    assert!(s.mail_account(&becky).await.unwrap().unwrap().enabled);

    s.apply(
        me,
        &meta("m3"),
        None,
        id,
        Some(zuid(REBECCA_ZUID)),
        run(AccountCommand::UpdateOutgoingStatus { blocked: true }),
    )
    .await
    .unwrap();
    assert!(rebecca(&s, &t).await.outgoing_blocked);
    assert!(
        s.mail_account(&becky)
            .await
            .unwrap()
            .unwrap()
            .outgoing_blocked
    );

    // Incoming mail is an administrator's to block.
    s.apply(
        admin(&t.admin_token),
        &meta("m4"),
        Some(zoid(DEMO_ZOID)),
        id,
        None,
        run(AccountCommand::UpdateIncomingStatus { blocked: true }),
    )
    .await
    .unwrap();
    let v = rebecca(&s, &t).await;
    assert!(v.incoming_blocked && v.outgoing_blocked);
    assert!(
        s.mail_account(&becky)
            .await
            .unwrap()
            .unwrap()
            .incoming_blocked
    );

    // An identity that sends through a relay elsewhere.
    let outside = addr("rebecca@outside.example");
    let added = s
        .apply(
            me,
            &meta("m5"),
            None,
            id,
            None,
            run(AccountCommand::AddSendMailDetails(vec![extfrom(
                "rebecca@outside.example",
                "relay-secret-1",
            )
            .with_key(IdentityKey {
                digest: "digest-of-the-key".into(),
                now_ms: now_ms(),
            })])),
        )
        .await
        .unwrap()
        .identities
        .expect("this mode answers with the identities");
    let ident = added
        .iter()
        .find(|i| i.from_address == outside)
        .expect("the new identity");
    assert_eq!(ident.mode, IdentityMode::ExtFrom);
    // Nothing counts before the owner of the address confirms it and the relay passes.
    assert_eq!(ident.state, IdentityState::Unconfirmed);
    assert!(!ident.verification.owner_confirmed && !ident.may_send());
    assert!(ident.verification.pending_key.is_some());
    assert_eq!(ident.verification.relay, RelayCheck::PENDING);
    assert!(s.relay_route(&outside).await.unwrap().is_none());
    let mail = s.mail_account(&becky).await.unwrap().unwrap();
    assert!(!mail.may_send_as.contains(&outside));
    assert!(mail.unverified.iter().any(|(a, _)| a == &outside));
    let wrong = s
        .apply(
            me,
            &meta("m5-wrong"),
            None,
            id,
            None,
            AccountCommand::VerifySendMailDetails {
                id: ident.id,
                key: Some(IdentityKey {
                    digest: "another".into(),
                    now_ms: now_ms(),
                }),
                by_admin: false,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, WriteError::Rule(ref e) if e.field == "confirmKey"),
        "{wrong:?}"
    );
    let confirmed = s
        .apply(
            me,
            &meta("m5-key"),
            None,
            id,
            None,
            run(AccountCommand::VerifySendMailDetails {
                id: ident.id,
                key: Some(IdentityKey {
                    digest: "digest-of-the-key".into(),
                    now_ms: now_ms(),
                }),
                by_admin: false,
            }),
        )
        .await
        .unwrap()
        .identities
        .unwrap();
    let ident = confirmed.iter().find(|i| i.id == ident.id).unwrap().clone();
    assert!(ident.verification.owner_confirmed && ident.verification.pending_key.is_none());
    assert_eq!(ident.state, IdentityState::Active);
    assert!(!ident.may_send(), "the relay is not checked yet");
    // The relay check: taken once (a second node finds it leased), the password opened
    // for it, the outcome recorded.
    let job = s
        .take_relay_checks("node-a", 60_000, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.send_mail_id == ident.id)
        .expect("the new identity's check is due");
    assert!(s
        .take_relay_checks("node-b", 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.relay_password(&job).unwrap().expose(), "relay-secret-1");
    assert!(s
        .record_relay_check(job, Ok(()), Some(now_ms() + 3_600_000))
        .await
        .unwrap());
    let added = rebecca(&s, &t).await.identities;
    let ident = added.iter().find(|i| i.id == ident.id).unwrap();
    assert!(ident.may_send() && ident.is_validated());
    assert_eq!(ident.verification.relay.state, RelayState::Validated);
    assert_eq!(
        ident.relay,
        Some(Relay {
            server_name: "smtp.outside.example".into(),
            server_port: 587,
            user_name: "rebecca.relay".into(),
            smtp_connection: SmtpConnection::Tls,
        })
    );
    assert!(added.iter().any(|i| i.from_address == becky));
    // The TLS policy map's names: the validated relays on a port.
    assert_eq!(
        s.relay_tls_names(587).await.unwrap(),
        vec![("smtp.outside.example".to_string(), SmtpConnection::Tls)]
    );
    assert!(s.relay_tls_names(465).await.unwrap().is_empty());
    let route = s
        .relay_route(&outside)
        .await
        .unwrap()
        .expect("a relay route");
    assert_eq!(
        (
            route.server_name.as_str(),
            route.server_port,
            route.user_name.as_str()
        ),
        ("smtp.outside.example", 587, "rebecca.relay")
    );
    assert_eq!(route.smtp_connection, SmtpConnection::Tls);
    assert_eq!(
        route.password.as_deref().map(String::as_str),
        Some("relay-secret-1")
    );
    assert_eq!(
        s.sender_logins(&outside).await.unwrap(),
        vec![becky.clone()]
    );
    let mail = s.mail_account(&becky).await.unwrap().unwrap();
    assert_eq!(mail.account_id, id);
    assert!(mail.may_send_as.contains(&outside) && mail.may_send_as.contains(&becky));
    assert!(mail.unverified.is_empty());

    let after_delete = s
        .apply(
            me,
            &meta("m6"),
            None,
            id,
            None,
            run(AccountCommand::DeleteSendMailDetails(
                IdentitySelector::Address(outside.clone()),
            )),
        )
        .await
        .unwrap()
        .identities
        .expect("this mode answers with the identities");
    assert!(after_delete.iter().all(|i| i.from_address != outside));
    assert!(s.relay_route(&outside).await.unwrap().is_none());
    assert!(s.sender_logins(&outside).await.unwrap().is_empty());
    assert!(!s
        .mail_account(&becky)
        .await
        .unwrap()
        .unwrap()
        .may_send_as
        .contains(&outside));

    // A new primary address; the old one stays as an alias.
    let new = addr("rebecca@zylker.com");
    s.apply(
        me,
        &meta("m7"),
        None,
        id,
        None,
        run(AccountCommand::EmailUpdate(new.clone())),
    )
    .await
    .unwrap();
    let v = rebecca(&s, &t).await;
    assert_eq!(v.primary_address(), Some(&new));
    assert!(v
        .addresses
        .iter()
        .any(|a| a.address == becky && !a.is_primary));
    for a in [&new, &becky] {
        assert_eq!(
            s.mail_account(a).await.unwrap().map(|m| m.account_id),
            Some(id)
        );
    }
    assert!(s
        .mail_account(&addr("rebecca@pop.example.net"))
        .await
        .unwrap()
        .is_none());

    let order = vec![account(IMAP), account(POP), id];
    s.apply(
        me,
        &meta("m8"),
        None,
        id,
        None,
        run(AccountCommand::MailAccountOrderUpdate(order.clone())),
    )
    .await
    .unwrap();
    let own = s
        .own_accounts(&grant(&s, &t.user_token, GrantKind::User, Access::Read).await)
        .await
        .unwrap();
    let seen: Vec<_> = own.iter().map(|v| (v.account_id, v.sequence)).collect();
    assert_eq!(seen, vec![(order[0], 1), (order[1], 2), (order[2], 3)]);

    // Each change left one audit row, newest first, with the request's facts.
    let audit = s
        .audit_log(
            &grant(&s, &t.admin_token, GrantKind::Admin, Access::Read).await,
            zoid(DEMO_ZOID),
            every_page(),
        )
        .await
        .unwrap()
        .unwrap();
    // The relay check's outcome is the system's row: no actor, no request.
    let (checks, changes): (Vec<&AuditEntry>, Vec<&AuditEntry>) = audit
        .iter()
        .filter(|e| e.mode != "denied")
        .partition(|e| e.mode == RELAY_CHECK_MODE);
    assert_eq!(checks.len(), 1);
    assert_eq!(
        (checks[0].actor_zuid, checks[0].request_id.as_deref()),
        (None, None)
    );
    assert_eq!(
        (
            &checks[0].before["sendMailDetails"][0]["validationState"],
            &checks[0].after["sendMailDetails"][0]["validationState"]
        ),
        (
            &serde_json::json!("pending"),
            &serde_json::json!("validated")
        )
    );
    let logged: Vec<&str> = changes.iter().map(|e| e.mode.as_str()).collect();
    let expected: Vec<&str> = modes.iter().rev().copied().collect();
    assert_eq!(logged, expected);
    let ids: Vec<Option<&str>> = changes.iter().map(|e| e.request_id.as_deref()).collect();
    assert_eq!(
        ids,
        ["m8", "m7", "m6", "m5-key", "m5", "m4", "m3", "m2", "m1"].map(Some)
    );
    assert!(changes
        .iter()
        .all(|e| e.zuid == Some(REBECCA_ZUID as i64)
            && e.client_addr.as_deref() == Some("192.0.2.7")));
    let secret_shown = audit
        .iter()
        .any(|e| format!("{} {}", e.before, e.after).contains("relay-secret-1"));
    assert!(!secret_shown, "a relay password in the audit trail");
}

async fn emailupdate_to_a_taken_address_is_a_conflict(db: Fresh) {
    let (s, t) = demo(&db).await;
    let before = rebecca(&s, &t).await;
    let m = meta("e");
    let change = |to: &str| {
        s.apply(
            user(&t.user_token),
            &m,
            None,
            account(REBECCA),
            None,
            AccountCommand::EmailUpdate(addr(to)),
        )
    };
    // The API answers this 409.
    assert_rule(
        change("admin@zylker.com").await,
        RuleErrorKind::Conflict,
        "emailAddress",
    );
    assert_rule(
        change("becky@elsewhere.example").await,
        RuleErrorKind::Invalid,
        "emailAddress",
    );
    assert_eq!(
        rebecca(&s, &t).await,
        before,
        "a refused change changed the account"
    );
    // The admin's address stays the admin's.
    let boss = s
        .mail_account(&addr("admin@zylker.com"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(boss.account_id, account(REBECCA));
}

/// `addEmailAlias` on the user's hosted account, named by the zuid: each alias answered
/// with an id of its own, in the account at once for the mail server; a zuid of another
/// organization, or an account id where the zuid belongs, answered as absent, naming the
/// zuid only.
async fn email_aliases_are_added_through_a_zuid_and_reach_the_mail_server(db: Fresh) {
    let (s, t) = demo(&db).await;
    let me = admin(&t.admin_token);
    let org = Some(zoid(DEMO_ZOID));
    let rebecca_by_zuid = UpdateTarget::HostedAccountOf(zuid(REBECCA_ZUID));
    let desk = addr("rebecca.desk@zylker.com");
    let sales = addr("sales@zylker.com");
    let add = |list: &[&EmailAddress]| {
        AccountCommand::AddEmailAlias(list.iter().map(|a| (*a).clone()).collect())
    };
    let added = s
        .apply(
            me,
            &meta("a1"),
            org,
            rebecca_by_zuid,
            None,
            add(&[&desk, &sales]),
        )
        .await
        .unwrap()
        .added_addresses
        .expect("this mode answers with the addresses it added");
    let names: Vec<&EmailAddress> = added.iter().map(|(a, _)| a).collect();
    assert_eq!(names, [&desk, &sales]);
    assert_ne!(added[0].1, added[1].1, "each alias has an id of its own");
    for alias in [&desk, &sales] {
        assert_eq!(
            s.mail_account(alias).await.unwrap().map(|m| m.account_id),
            Some(account(REBECCA))
        );
    }
    let v = rebecca(&s, &t).await;
    assert!(v
        .addresses
        .iter()
        .any(|a| a.address == desk && !a.is_primary));
    assert_eq!(v.primary_address(), Some(&addr("becky@zylker.com")));
    let more = s
        .apply(
            me,
            &meta("a2"),
            org,
            rebecca_by_zuid,
            None,
            add(&[&addr("r3@zylker.com")]),
        )
        .await
        .unwrap()
        .added_addresses
        .unwrap();
    assert!(more[0].1 > added[1].1, "ids are never given twice");

    // Already hers; another account's: conflicts, and nothing written.
    assert_rule(
        s.apply(me, &meta("a3"), org, rebecca_by_zuid, None, add(&[&desk]))
            .await,
        RuleErrorKind::Conflict,
        "emailAlias",
    );
    assert_rule(
        s.apply(
            me,
            &meta("a4"),
            org,
            rebecca_by_zuid,
            None,
            add(&[&addr("admin@zylker.com")]),
        )
        .await,
        RuleErrorKind::Conflict,
        "emailAlias",
    );
    // Another organization's domain, and the same request aimed at its user.
    let b = s
        .bootstrap("Other", "other.example", addr("boss@other.example"), None)
        .await
        .unwrap();
    assert_rule(
        s.apply(
            me,
            &meta("a5"),
            org,
            rebecca_by_zuid,
            None,
            add(&[&addr("boss@other.example")]),
        )
        .await,
        RuleErrorKind::Invalid,
        "emailAlias",
    );
    for (zoid_in_url, target) in [
        (org, b.zuid),
        (Some(b.zoid), b.zuid),
        (org, zuid(REBECCA)),
        (org, zuid(99_999_999)),
    ] {
        let r = s
            .apply(
                me,
                &meta("a6"),
                zoid_in_url,
                UpdateTarget::HostedAccountOf(target),
                None,
                add(&[&addr("stray@zylker.com")]),
            )
            .await;
        assert!(
            matches!(&r, Err(WriteError::NotFound(m)) if *m == format!("zuid {target} was not found")),
            "{r:?}"
        );
    }
    assert!(s
        .mail_account(&addr("stray@zylker.com"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        rebecca(&s, &t).await.addresses.len(),
        4,
        "the primary and the three aliases"
    );
}

/// `deleteEmailAlias`: the address leaves the account, and with it the identity that let
/// the account send as it, so the mail server's lookups (the socketmap's sender logins,
/// the policy service's account) no longer give it to anyone.
async fn a_deleted_alias_is_no_longer_the_accounts_to_send_as(db: Fresh) {
    let (s, t) = demo(&db).await;
    let me = admin(&t.admin_token);
    let org = Some(zoid(DEMO_ZOID));
    let rebecca_by_zuid = UpdateTarget::HostedAccountOf(zuid(REBECCA_ZUID));
    let becky = addr("becky@zylker.com");
    let desk = addr("rebecca.desk@zylker.com");
    s.apply(
        me,
        &meta("d1"),
        org,
        rebecca_by_zuid,
        None,
        AccountCommand::AddEmailAlias(vec![desk.clone()]),
    )
    .await
    .unwrap();
    let alias_identity = NewIdentity::new(
        "sendMailDetails[0]",
        Some(desk.clone()),
        "Desk".into(),
        IdentityMode::Alias,
        NewRelay::default(),
    )
    .unwrap();
    s.apply(
        user(&t.user_token),
        &meta("d2"),
        None,
        account(REBECCA),
        None,
        AccountCommand::AddSendMailDetails(vec![alias_identity]),
    )
    .await
    .unwrap();
    let logins = s.sender_logins(&desk).await.unwrap();
    assert!(
        logins.contains(&becky) && logins.contains(&desk),
        "{logins:?}"
    );
    assert!(s
        .mail_account(&becky)
        .await
        .unwrap()
        .unwrap()
        .may_send_as
        .contains(&desk));

    let applied = s
        .apply(
            me,
            &meta("d3"),
            org,
            rebecca_by_zuid,
            None,
            AccountCommand::DeleteEmailAlias(vec![desk.clone()]),
        )
        .await
        .unwrap();
    assert_eq!(
        applied,
        mailplane_store::Applied::default(),
        "the status only"
    );
    assert!(s.sender_logins(&desk).await.unwrap().is_empty());
    assert!(s.mail_account(&desk).await.unwrap().is_none());
    let mail = s.mail_account(&becky).await.unwrap().unwrap();
    assert!(!mail.may_send_as.contains(&desk), "{:?}", mail.may_send_as);
    let v = rebecca(&s, &t).await;
    assert!(v.addresses.iter().all(|a| a.address != desk));
    assert!(v.identities.iter().all(|i| i.from_address != desk));

    // The primary stays; an address that is not hers is refused alike, whoever has it.
    for not_an_alias in [
        &becky,
        &addr("admin@zylker.com"),
        &addr("nobody@zylker.com"),
    ] {
        assert_rule(
            s.apply(
                me,
                &meta("d4"),
                org,
                rebecca_by_zuid,
                None,
                AccountCommand::DeleteEmailAlias(vec![not_an_alias.clone()]),
            )
            .await,
            RuleErrorKind::Invalid,
            "emailAlias",
        );
    }
    assert_eq!(rebecca(&s, &t).await, v);
}

/// `resetPassword`: the hash the command carries becomes the user's, the one the sign-in
/// checks; with `revoke_tokens` every token of that user is revoked in the same change,
/// and nobody else's.
async fn reset_password_sets_the_hash_and_revokes_only_that_users_tokens(db: Fresh) {
    let (s, t) = demo(&db).await;
    let me = admin(&t.admin_token);
    let org = Some(zoid(DEMO_ZOID));
    let rebecca_by_zuid = UpdateTarget::HostedAccountOf(zuid(REBECCA_ZUID));
    let hash = |n: u8| {
        PasswordHash::from_phc(format!(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA{n}"
        ))
        .unwrap()
    };
    let reset = |n: u8, revoke_tokens: bool| {
        AccountCommand::ResetPassword(PasswordReset {
            hash: hash(n),
            revoke_tokens,
            one_time: n == 1,
        })
    };
    let stored = || async {
        s.credentials(&addr("becky@zylker.com"))
            .await
            .unwrap()
            .expect("Rebecca signs in with her address")
            .password_hash
    };
    let client = s.create_client("Desk", None).await.unwrap();
    let refresh = s
        .oauth_grant(
            &client.client_id,
            zuid(REBECCA_ZUID),
            ScopeSet::user_all().into(),
        )
        .await
        .unwrap();

    let applied = s
        .apply(me, &meta("p1"), org, rebecca_by_zuid, None, reset(1, false))
        .await
        .unwrap();
    assert_eq!(applied, mailplane_store::Applied::default());
    assert_eq!(stored().await.as_deref(), Some(hash(1).as_str()));
    assert!(rebecca(&s, &t).await.one_time_password);
    assert!(s.authenticate(&t.user_token).await.unwrap().is_some());

    s.apply(me, &meta("p2"), org, rebecca_by_zuid, None, reset(2, true))
        .await
        .unwrap();
    assert_eq!(stored().await.as_deref(), Some(hash(2).as_str()));
    assert!(s.authenticate(&t.user_token).await.unwrap().is_none());
    assert_oauth(
        s.refresh_access(&client.client_id, &client.client_secret, &refresh, 3600)
            .await,
        "invalid_code",
    );
    assert!(
        s.authenticate(&t.admin_token).await.unwrap().is_some(),
        "the admin's token is not Rebecca's"
    );
    let g = grant(&s, &t.admin_token, GrantKind::Admin, Access::Read).await;
    let v = s
        .org_user_account(&g, zoid(DEMO_ZOID), UserRef::Zuid(zuid(REBECCA_ZUID)))
        .await
        .unwrap()
        .unwrap();
    assert!(!v.one_time_password);
}

async fn apply_refuses_bad_callers_and_targets_out_of_reach(db: Fresh) {
    let (s, t) = demo(&db).await;
    let before = rebecca(&s, &t).await;
    let disable = || AccountCommand::DisableMailAccount;
    let g = grant(&s, &t.admin_token, GrantKind::Admin, Access::Read).await;
    let boss = s
        .org_user_account(
            &g,
            zoid(DEMO_ZOID),
            UserRef::Email(addr("admin@zylker.com")),
        )
        .await
        .unwrap()
        .unwrap();
    let id = account(REBECCA);
    let m = meta("r");

    let r = s
        .apply(user("mpat_forged"), &m, None, id, None, disable())
        .await;
    assert!(
        matches!(r, Err(WriteError::Refused(Refusal::InvalidToken))),
        "{r:?}"
    );
    let r = s
        .apply(
            admin(&t.user_token),
            &m,
            Some(zoid(DEMO_ZOID)),
            id,
            None,
            disable(),
        )
        .await;
    assert!(
        matches!(r, Err(WriteError::Refused(Refusal::Denied(Denied::Scope)))),
        "{r:?}"
    );
    let r = s
        .apply(
            user(&t.user_token),
            &m,
            None,
            boss.account_id,
            None,
            disable(),
        )
        .await;
    assert!(matches!(r, Err(WriteError::NotFound(_))), "{r:?}");
    let r = s
        .apply(
            admin(&t.admin_token),
            &m,
            Some(zoid(999)),
            id,
            None,
            disable(),
        )
        .await;
    assert!(matches!(r, Err(WriteError::NotFound(_))), "{r:?}");
    let r = s
        .apply(user(&t.user_token), &m, None, account(42), None, disable())
        .await;
    assert!(matches!(r, Err(WriteError::NotFound(_))), "{r:?}");
    assert_rule(
        s.apply(
            user(&t.user_token),
            &m,
            None,
            id,
            Some(boss.zuid),
            disable(),
        )
        .await,
        RuleErrorKind::Invalid,
        "zuid",
    );
    assert_rule(
        s.apply(user(&t.user_token), &m, None, account(POP), None, disable())
            .await,
        RuleErrorKind::Invalid,
        "accountId",
    );
    assert_eq!(rebecca(&s, &t).await, before);
    let pop = s
        .account(user(&t.user_token), account(POP))
        .await
        .unwrap()
        .unwrap();
    assert!(pop.enabled);
}

async fn concurrent_reorders_never_lose_an_update(db: Fresh) {
    let (s, t) = demo(&db).await;
    let ids = [account(REBECCA), account(POP), account(IMAP)];
    let read = grant(&s, &t.user_token, GrantKind::User, Access::Read).await;
    for round in 0..20 {
        // Two different orders each round, so that a mix of the two shows.
        let a: Vec<AccountId> = (0..3).map(|i| ids[(i + round) % 3]).collect();
        let b: Vec<AccountId> = a.iter().rev().copied().collect();
        let send = |order: Vec<AccountId>| {
            let (s, token) = (s.clone(), t.user_token.clone());
            tokio::spawn(async move {
                s.apply(
                    user(&token),
                    &meta(&format!("reorder-{round}")),
                    None,
                    account(REBECCA),
                    None,
                    AccountCommand::MailAccountOrderUpdate(order),
                )
                .await
            })
        };
        let (ra, rb) = tokio::join!(send(a.clone()), send(b.clone()));
        ra.unwrap()
            .unwrap_or_else(|e| panic!("round {round}: first order: {e}"));
        rb.unwrap()
            .unwrap_or_else(|e| panic!("round {round}: second order: {e}"));
        let own = s.own_accounts(&read).await.unwrap();
        let sequences: Vec<u32> = own.iter().map(|v| v.sequence).collect();
        assert_eq!(sequences, vec![1, 2, 3], "round {round}");
        let order: Vec<AccountId> = own.iter().map(|v| v.account_id).collect();
        assert!(
            order == a || order == b,
            "round {round}: {order:?} is neither {a:?} nor {b:?}"
        );
    }
}

const REDIRECT: &str = "https://app.example/callback";
// RFC 7636, appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn assert_oauth<T: std::fmt::Debug>(r: Result<T, OAuthError>, want: &str) {
    match r {
        Err(e) if e.to_string() == want && !matches!(e, OAuthError::Store(_)) => {}
        other => panic!("expected {want}, got {other:?}"),
    }
}

async fn oauth_codes_are_single_use_and_bound_to_their_pkce_challenge(db: Fresh) {
    let (s, _) = demo(&db).await;
    let rebecca = zuid(REBECCA_ZUID);
    let c = s
        .create_client("Conformance app", Some(REDIRECT))
        .await
        .unwrap();
    assert!(c.client_id.starts_with("1000."));
    assert_eq!(
        s.oauth_client(&c.client_id).await.unwrap(),
        Some(OAuthClient {
            client_id: c.client_id.clone(),
            name: "Conformance app".into(),
            redirect_uri: Some(REDIRECT.into()),
        })
    );
    assert!(s.oauth_client("1000.NOSUCHCLIENT").await.unwrap().is_none());
    let creds = s
        .credentials(&addr("becky@zylker.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.zuid, rebecca);
    // The demo gives Rebecca a random mailbox password.
    assert!(creds
        .password_hash
        .as_deref()
        .is_some_and(|h| h.starts_with("$argon2id$")));
    assert!(s
        .credentials(&addr("nobody@zylker.com"))
        .await
        .unwrap()
        .is_none());

    let (id, secret) = (c.client_id.as_str(), c.client_secret.as_str());
    let store = &s;
    let issue = move |pkce: Option<CodeChallenge>| {
        store.issue_code(id, rebecca, ScopeSet::user_all().into(), REDIRECT, pkce)
    };
    let code = issue(None).await.unwrap();
    let pending = s.pending_code(&code).await.unwrap().expect("pending");
    assert_eq!(pending.client.client_id, c.client_id);
    assert_eq!(pending.zuid, rebecca);
    assert_eq!(pending.scopes, ScopeSet::user_all());
    assert_eq!(pending.redirect_uri, REDIRECT);
    // Not approved yet: refused, and not spent.
    assert_oauth(
        s.exchange_code(id, secret, &code, None, None, 3600).await,
        "invalid_code",
    );
    assert_eq!(
        s.decide_code(&code, true).await.unwrap().as_deref(),
        Some(REDIRECT)
    );
    assert!(
        s.pending_code(&code).await.unwrap().is_none(),
        "still pending"
    );
    assert!(
        s.decide_code(&code, false).await.unwrap().is_none(),
        "decided twice"
    );
    assert_oauth(
        s.exchange_code(id, "mpcs_wrong", &code, None, None, 3600)
            .await,
        "invalid_client",
    );
    assert_oauth(
        s.exchange_code(id, secret, &code, Some("https://evil.example/"), None, 3600)
            .await,
        "invalid_redirect_uri",
    );
    let tokens = s
        .exchange_code(id, secret, &code, Some(REDIRECT), None, 3600)
        .await
        .unwrap();
    assert_eq!(tokens.expires_in_secs, 3600);
    assert_eq!(tokens.scopes, ScopeSet::user_all());
    assert!(tokens.refresh_token.is_some());
    let p = s.authenticate(&tokens.access_token).await.unwrap().unwrap();
    assert_eq!(p.zuid(), rebecca);
    // Single use.
    assert_oauth(
        s.exchange_code(id, secret, &code, Some(REDIRECT), None, 3600)
            .await,
        "invalid_code",
    );
    assert_oauth(
        s.exchange_code(id, secret, "mpac_made-up", None, None, 3600)
            .await,
        "invalid_code",
    );

    // A refused code never turns into tokens.
    let refused = issue(None).await.unwrap();
    assert_eq!(
        s.decide_code(&refused, false).await.unwrap().as_deref(),
        Some(REDIRECT)
    );
    assert_oauth(
        s.exchange_code(id, secret, &refused, None, None, 3600)
            .await,
        "invalid_code",
    );

    // PKCE: the code answers only the matching verifier, and only once: a wrong or
    // missing verifier spends it.
    let challenge = || CodeChallenge::from_request(CHALLENGE, "S256").unwrap();
    let approved = move |pkce: Option<CodeChallenge>| async move {
        let code = issue(pkce).await.unwrap();
        assert!(store.decide_code(&code, true).await.unwrap().is_some());
        code
    };
    let missing = approved(challenge()).await;
    assert_oauth(
        s.exchange_code(id, secret, &missing, None, None, 3600)
            .await,
        "invalid_code",
    );
    assert_oauth(
        s.exchange_code(id, secret, &missing, None, Some(VERIFIER), 3600)
            .await,
        "invalid_code",
    );
    let wrong = approved(challenge()).await;
    assert_oauth(
        s.exchange_code(
            id,
            secret,
            &wrong,
            None,
            Some(&CHALLENGE.replace('E', "F")),
            3600,
        )
        .await,
        "invalid_code",
    );
    assert_oauth(
        s.exchange_code(id, secret, &wrong, None, Some(VERIFIER), 3600)
            .await,
        "invalid_code",
    );
    let right = approved(challenge()).await;
    let t = s
        .exchange_code(id, secret, &right, None, Some(VERIFIER), 60)
        .await
        .unwrap();
    assert_eq!(
        s.authenticate(&t.access_token)
            .await
            .unwrap()
            .unwrap()
            .zuid(),
        rebecca
    );
    // A plain challenge is the verifier itself.
    let plain = approved(CodeChallenge::from_request(VERIFIER, "").unwrap()).await;
    s.exchange_code(id, secret, &plain, None, Some(VERIFIER), 60)
        .await
        .unwrap();
    // A verifier for a code issued without a challenge: a downgrade, refused.
    let downgrade = approved(None).await;
    assert_oauth(
        s.exchange_code(id, secret, &downgrade, None, Some(VERIFIER), 60)
            .await,
        "invalid_code",
    );
    // A code is the client's own.
    let other = s.create_client("Other app", None).await.unwrap();
    let theirs = approved(None).await;
    assert_oauth(
        s.exchange_code(
            &other.client_id,
            &other.client_secret,
            &theirs,
            None,
            None,
            60,
        )
        .await,
        "invalid_code",
    );
    s.exchange_code(id, secret, &theirs, None, None, 60)
        .await
        .unwrap();
}

async fn oauth_refresh_and_revocation(db: Fresh) {
    let (s, _) = demo(&db).await;
    let rebecca = zuid(REBECCA_ZUID);
    let c = s.create_client("Refresher", Some(REDIRECT)).await.unwrap();
    let (id, secret) = (c.client_id.as_str(), c.client_secret.as_str());
    let code = s
        .issue_code(id, rebecca, ScopeSet::user_all().into(), REDIRECT, None)
        .await
        .unwrap();
    s.decide_code(&code, true).await.unwrap().unwrap();
    let first = s
        .exchange_code(id, secret, &code, None, None, 3600)
        .await
        .unwrap();
    let refresh = first.refresh_token.clone().unwrap();
    let again = s.refresh_access(id, secret, &refresh, 600).await.unwrap();
    assert!(again.refresh_token.is_none());
    assert_eq!(
        (again.expires_in_secs, &again.scopes),
        (600, &ScopeSet::user_all())
    );
    assert_ne!(again.access_token, first.access_token);
    assert_eq!(
        s.authenticate(&again.access_token)
            .await
            .unwrap()
            .unwrap()
            .zuid(),
        rebecca
    );
    assert_oauth(
        s.refresh_access(id, "mpcs_wrong", &refresh, 600).await,
        "invalid_client",
    );
    let other = s.create_client("Other", None).await.unwrap();
    assert_oauth(
        s.refresh_access(&other.client_id, &other.client_secret, &refresh, 600)
            .await,
        "invalid_code",
    );
    // Revoking the refresh token revokes what it minted, and it mints no more.
    assert!(s.revoke_oauth_token(&refresh).await.unwrap());
    assert_oauth(
        s.refresh_access(id, secret, &refresh, 600).await,
        "invalid_code",
    );
    assert!(s.authenticate(&first.access_token).await.unwrap().is_none());
    assert!(s.authenticate(&again.access_token).await.unwrap().is_none());
    assert!(!s.revoke_oauth_token(&refresh).await.unwrap());
    assert!(!s.revoke_oauth_token("mprt_made-up").await.unwrap());

    // A grant made without the browser, and an access token revoked on its own.
    let granted = s
        .oauth_grant(id, rebecca, ScopeSet::user_all().into())
        .await
        .unwrap();
    let a1 = s.refresh_access(id, secret, &granted, 600).await.unwrap();
    let a2 = s.refresh_access(id, secret, &granted, 600).await.unwrap();
    assert!(s.revoke_oauth_token(&a1.access_token).await.unwrap());
    assert!(s.authenticate(&a1.access_token).await.unwrap().is_none());
    assert!(s.authenticate(&a2.access_token).await.unwrap().is_some());
    s.refresh_access(id, secret, &granted, 600).await.unwrap();
}

async fn audit_log_pages_newest_first_without_overlap(db: Fresh) {
    let (s, t) = demo(&db).await;
    for n in 0..7 {
        s.apply(
            user(&t.user_token),
            &meta(&format!("a{n}")),
            None,
            account(REBECCA),
            None,
            AccountCommand::UpdateOutgoingStatus {
                blocked: n % 2 == 0,
            },
        )
        .await
        .unwrap();
    }
    let g = grant(&s, &t.admin_token, GrantKind::Admin, Access::Read).await;
    let all = s
        .audit_log(&g, zoid(DEMO_ZOID), every_page())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all.len(), 7);
    assert!(all
        .windows(2)
        .all(|w| w[0].id > w[1].id && w[0].at_ms >= w[1].at_ms));
    let request_ids: Vec<_> = all.iter().map(|e| e.request_id.clone().unwrap()).collect();
    assert_eq!(request_ids, ["a6", "a5", "a4", "a3", "a2", "a1", "a0"]);
    for e in &all {
        assert_eq!(e.mode, "updateOutgoingStatus");
        assert_eq!(e.actor_zuid, Some(REBECCA_ZUID as i64));
        assert_eq!(e.account_id, Some(REBECCA as i64));
        assert!(e.actor_token_id.is_some());
        assert_ne!(e.before, e.after);
    }
    let mut paged = Vec::new();
    let mut seen = HashSet::new();
    for start in (0..).step_by(3) {
        let page = s
            .audit_log(
                &g,
                zoid(DEMO_ZOID),
                AuditQuery {
                    start,
                    limit: 3,
                    ..every_page()
                },
            )
            .await
            .unwrap()
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        for e in &page {
            assert!(seen.insert(e.id), "entry {} on two pages", e.id);
        }
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let only_pop = s
        .audit_log(
            &g,
            zoid(DEMO_ZOID),
            AuditQuery {
                account: Some(account(POP)),
                ..every_page()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(only_pop.is_empty(), "{only_pop:?}");
    let only_rebecca = s
        .audit_log(
            &g,
            zoid(DEMO_ZOID),
            AuditQuery {
                account: Some(account(REBECCA)),
                ..every_page()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(only_rebecca, all);
    let future = s
        .audit_log(
            &g,
            zoid(DEMO_ZOID),
            AuditQuery {
                since_ms: Some(now_ms() + 60_000),
                ..every_page()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(future.is_empty());
    let since_newest = s
        .audit_log(
            &g,
            zoid(DEMO_ZOID),
            AuditQuery {
                since_ms: Some(all[0].at_ms),
                ..every_page()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!since_newest.is_empty() && since_newest.iter().all(|e| e.at_ms >= all[0].at_ms));
    // Out of reach: a user's grant, another organization.
    let mine = grant(&s, &t.user_token, GrantKind::User, Access::Read).await;
    assert!(s
        .audit_log(&mine, zoid(DEMO_ZOID), every_page())
        .await
        .unwrap()
        .is_none());
    assert!(s
        .audit_log(&g, zoid(999), every_page())
        .await
        .unwrap()
        .is_none());
}

fn event(zoid_: Zoid, at_ms: i64, path: &str, actor: Option<Zuid>) -> SecurityEvent {
    SecurityEvent {
        at_ms,
        first_ms: at_ms - 500,
        count: 3,
        request_id: Some(format!("sec-{at_ms}")),
        client_addr: Some("198.51.100.9".into()),
        zoid: zoid_,
        method: "PUT".into(),
        path: path.into(),
        status: 404,
        error_code: "URL_RULE_NOT_CONFIGURED".into(),
        actor_zuid: actor,
    }
}

async fn security_events_are_kept_per_organization_newest_first(db: Fresh) {
    let (s, t) = demo(&db).await;
    let z = zoid(DEMO_ZOID);
    let now = now_ms();
    let long = format!("/api/organization/{DEMO_ZOID}/{}", "x".repeat(400));
    let events = vec![
        event(z, now - 3000, "/api/organization/12345678/accounts/1", None),
        event(z, now - 2000, &long, Some(zuid(REBECCA_ZUID))),
        // Made-up organization: nothing is written for it.
        event(
            zoid(987654321),
            now - 1500,
            "/api/organization/987654321",
            None,
        ),
        event(z, now - 1000, "/api/organization/12345678", None),
    ];
    s.record_security_events(events.clone()).await.unwrap();
    let g = grant(&s, &t.admin_token, GrantKind::Admin, Access::Read).await;
    let kept = s
        .security_events(&g, z, every_page())
        .await
        .unwrap()
        .unwrap();
    let mut expected = vec![events[3].clone(), events[1].clone(), events[0].clone()];
    let clipped: String = long.chars().take(MAX_EVENT_PATH_CHARS).collect();
    expected[1].path = format!("{clipped}…");
    assert_eq!(kept, expected);
    let second = s
        .security_events(
            &g,
            z,
            AuditQuery {
                start: 1,
                limit: 1,
                ..every_page()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second, vec![expected[1].clone()]);
    let recent = s
        .security_events(
            &g,
            z,
            AuditQuery {
                since_ms: Some(now - 2000),
                ..every_page()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recent, expected[..2].to_vec());
    let mine = grant(&s, &t.user_token, GrantKind::User, Access::Read).await;
    assert!(s
        .security_events(&mine, z, every_page())
        .await
        .unwrap()
        .is_none());
    assert!(s
        .security_events(&g, zoid(987654321), every_page())
        .await
        .unwrap()
        .is_none());
    // Only the three of the real organization were written.
    assert_eq!(
        s.prune(Pruned::SecurityEvents, i64::MAX, 100)
            .await
            .unwrap(),
        3
    );
}

async fn prune_removes_old_rows_in_batches(db: Fresh) {
    let (s, t) = demo(&db).await;
    let z = zoid(DEMO_ZOID);
    let now = now_ms();
    let mut events: Vec<SecurityEvent> =
        (0..5).map(|n| event(z, 10_000 + n, "/old", None)).collect();
    events.push(event(z, now, "/new", None));
    events.push(event(z, now + 1, "/new", None));
    s.record_security_events(events).await.unwrap();
    let batches = [
        s.prune(Pruned::SecurityEvents, 20_000, 2).await.unwrap(),
        s.prune(Pruned::SecurityEvents, 20_000, 2).await.unwrap(),
        s.prune(Pruned::SecurityEvents, 20_000, 2).await.unwrap(),
        s.prune(Pruned::SecurityEvents, 20_000, 2).await.unwrap(),
    ];
    assert_eq!(batches, [2, 2, 1, 0]);
    let g = grant(&s, &t.admin_token, GrantKind::Admin, Access::Read).await;
    let left = s
        .security_events(&g, z, every_page())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        left.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["/new", "/new"]
    );

    for n in 0..3 {
        s.apply(
            user(&t.user_token),
            &meta(&format!("p{n}")),
            None,
            account(REBECCA),
            None,
            AccountCommand::UpdateOutgoingStatus { blocked: n != 1 },
        )
        .await
        .unwrap();
    }
    assert_eq!(
        s.prune(Pruned::Audit, 0, 10).await.unwrap(),
        0,
        "rows from before 1970"
    );
    assert_eq!(
        s.audit_log(&g, z, every_page())
            .await
            .unwrap()
            .unwrap()
            .len(),
        3
    );
    let future = now_ms() + 60_000;
    assert_eq!(s.prune(Pruned::Audit, future, 2).await.unwrap(), 2);
    // Oldest first: the newest row is the one left.
    let left = s.audit_log(&g, z, every_page()).await.unwrap().unwrap();
    assert_eq!(
        left.iter()
            .map(|e| e.request_id.as_deref())
            .collect::<Vec<_>>(),
        [Some("p2")]
    );
    assert_eq!(s.prune(Pruned::Audit, future, 2).await.unwrap(), 1);
    assert!(s
        .audit_log(&g, z, every_page())
        .await
        .unwrap()
        .unwrap()
        .is_empty());
}

async fn seed_synthetic_makes_organizations_users_and_tokens(db: Fresh) {
    let s = db.store().await;
    let orgs = s.seed_synthetic(2, 3).await.unwrap();
    assert_eq!(orgs.len(), 2);
    assert_ne!(orgs[0].zoid, orgs[1].zoid);
    for (n, org) in orgs.iter().enumerate() {
        assert_eq!(org.domain, format!("bench{}.example", n + 1));
        assert_eq!(org.accounts.len(), 3);
        let a = s.authenticate(&org.admin_token).await.unwrap().unwrap();
        assert_eq!((a.zoid(), a.role()), (org.zoid, Role::SuperAdmin));
        let g = a.grant(GrantKind::Admin, Access::Read).unwrap();
        let listed = s.org_accounts(&g, org.zoid, 0, 100).await.unwrap().unwrap();
        assert_eq!(listed.len(), 4, "the admin and three users");
        for acc in &org.accounts {
            let p = s.authenticate(&acc.token).await.unwrap().unwrap();
            assert_eq!((p.zuid(), p.zoid()), (acc.zuid, org.zoid));
            let v = s
                .account(user(&acc.token), acc.account_id)
                .await
                .unwrap()
                .expect("its own account");
            assert_eq!(v.zuid, acc.zuid);
            assert!(listed.iter().any(|l| l.account_id == acc.account_id));
            let primary = v.primary_address().expect("a hosted account").clone();
            assert_eq!(primary.domain(), org.domain);
            assert_eq!(
                s.mail_account(&primary)
                    .await
                    .unwrap()
                    .map(|m| m.account_id),
                Some(acc.account_id)
            );
        }
    }
    // Seeding again collides with the domains already there.
    assert!(matches!(
        s.seed_synthetic(1, 1).await,
        Err(ProvisionError::Refused(_))
    ));
}

async fn relay_passwords_survive_key_rotation(db: Fresh) {
    let outside = addr("rebecca@outside.example");
    let (s, t) = demo(&db).await;
    let added = s
        .apply(
            user(&t.user_token),
            &meta("k"),
            None,
            account(REBECCA),
            None,
            AccountCommand::AddSendMailDetails(vec![extfrom(
                "rebecca@outside.example",
                "k-secret",
            )]),
        )
        .await
        .unwrap();
    let added_id = added
        .identities
        .unwrap()
        .iter()
        .find(|i| i.from_address == outside)
        .unwrap()
        .id;
    assert_eq!(s.check_relay_passwords().await.unwrap(), (1, 0));
    drop(s);

    let rotated = db.key.rotated().unwrap();
    let s = db.open(rotated.clone()).await;
    assert_eq!(s.check_relay_passwords().await.unwrap(), (1, 0));
    assert_eq!(s.reencrypt_relay_passwords().await.unwrap(), 1);
    assert_eq!(s.check_relay_passwords().await.unwrap(), (1, 0));
    drop(s);

    // The old version retired: the password opens with the new key alone...
    let s = db.open(rotated.current_only()).await;
    assert_eq!(s.check_relay_passwords().await.unwrap(), (1, 0));
    let job = s
        .take_relay_check("n", account(REBECCA), added_id, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.relay_password(&job).unwrap().expose(), "k-secret");
    drop(s);
    // ...and no longer with the old key alone.
    let s = db.open(db.key.clone()).await;
    assert_eq!(s.check_relay_passwords().await.unwrap(), (0, 1));
    let job = s
        .take_relay_check("n", account(REBECCA), added_id, 1)
        .await
        .unwrap()
        .unwrap();
    assert!(s.relay_password(&job).is_err());
}

// ---- the web console ----

/// A member of the organization with these names.
async fn member(s: &Store, g: &Grant, zoid_: Zoid, email: &str, first: &str, last: &str) -> Zuid {
    let mut u = NewUser::minimal(addr(email), Role::Member);
    u.first_name = first.into();
    u.last_name = last.into();
    s.create_user(g, &meta(email), zoid_, u).await.unwrap().zuid
}

async fn users_page_searches_names_and_addresses_and_pages_in_the_database(db: Fresh) {
    let s = db.store().await;
    let b = s
        .bootstrap("Acme", "acme.example", addr("boss@acme.example"), None)
        .await
        .unwrap();
    let other = s
        .bootstrap("Beta", "beta.example", addr("boss@beta.example"), None)
        .await
        .unwrap();
    let create = grant(&s, &b.access_token, GrantKind::Admin, Access::Create).await;
    let ann = member(&s, &create, b.zoid, "ann@acme.example", "Ann", "Lee").await;
    let mut bobby = NewUser::minimal(addr("bob@acme.example"), Role::Member);
    (bobby.first_name, bobby.last_name) = ("Bob".into(), "Stone".into());
    bobby.display_name = Some("Bobby Tables".into());
    let bob = s
        .create_user(&create, &meta("bob"), b.zoid, bobby)
        .await
        .unwrap()
        .zuid;
    let under = member(&s, &create, b.zoid, "a_b@acme.example", "Under", "Score").await;
    member(&s, &create, b.zoid, "axb@acme.example", "Plain", "Letters").await;
    let fifty = member(&s, &create, b.zoid, "p1@acme.example", "Sale 50% off", "P").await;
    let five_hundred = member(&s, &create, b.zoid, "p2@acme.example", "Sale 500 off", "Q").await;
    s.apply(
        admin(&b.access_token),
        &meta("alias"),
        Some(b.zoid),
        UpdateTarget::HostedAccountOf(bob),
        None,
        AccountCommand::AddEmailAlias(vec![addr("sales.desk@acme.example")]),
    )
    .await
    .unwrap();
    // Another organization's Ann is never found from Acme.
    let beta = grant(&s, &other.access_token, GrantKind::Admin, Access::Create).await;
    member(&s, &beta, other.zoid, "ann@beta.example", "Ann", "Other").await;

    let g = grant(&s, &b.access_token, GrantKind::Admin, Access::Read).await;
    let page = |search: &'static str, start: u32, limit: u32| {
        let (s, g) = (&s, &g);
        async move {
            s.users_page(g, b.zoid, search, start, limit)
                .await
                .unwrap()
                .expect("within reach")
        }
    };
    let zuids =
        |p: &mailplane_store::UsersPage| p.accounts.iter().map(|v| v.zuid).collect::<Vec<_>>();

    let all = page("  ", 0, 100).await;
    assert_eq!(all.total, 7, "the admin and six users");
    assert_eq!(
        all.accounts,
        s.org_accounts(&g, b.zoid, 0, 100).await.unwrap().unwrap()
    );
    for (search, found) in [
        ("ANN", vec![ann]),
        ("  lee ", vec![ann]),
        ("bobby", vec![bob]),
        ("stone", vec![bob]),
        ("Sales.Desk", vec![bob]),
        ("a_b", vec![under]),
        ("50%", vec![fifty]),
        ("sale 50% ", vec![fifty]),
        ("sale 50", vec![fifty, five_hundred]),
        ("\\", vec![]),
        ("%", vec![fifty]),
        ("nobody", vec![]),
    ] {
        let p = page(search, 0, 100).await;
        assert_eq!(
            (zuids(&p), p.total),
            (found.clone(), found.len() as u64),
            "{search:?}"
        );
    }
    let found = page("a_b", 0, 100).await;
    assert_eq!(
        found.accounts[0].primary_address(),
        Some(&addr("a_b@acme.example"))
    );

    // Pages are cut in the database; the total is the whole listing's.
    let every = zuids(&page("acme.example", 0, 100).await);
    assert_eq!(every, zuids(&all));
    let middle = page("acme.example", 2, 3).await;
    assert_eq!((middle.total, zuids(&middle)), (7, every[2..5].to_vec()));
    let last = page("", 6, 3).await;
    assert_eq!((last.total, zuids(&last)), (7, every[6..].to_vec()));
    let past = page("", 7, 3).await;
    assert_eq!((past.total, past.accounts.len()), (7, 0));
    // A search's count rides on its rows; past its last page it is counted on its own.
    let past = page("acme.example", 7, 3).await;
    assert_eq!((past.total, past.accounts.len()), (7, 0));
    let tail = page("acme.example", 5, 3).await;
    assert_eq!((tail.total, zuids(&tail)), (7, every[5..].to_vec()));
    let none = page("", 0, 0).await;
    assert_eq!((none.total, none.accounts.len()), (7, 0));

    // A text longer than any address matches nothing.
    let long: &'static str = Box::leak("a".repeat(255).into_boxed_str());
    assert_eq!(page(long, 0, 10).await.total, 0);

    // Out of reach: another organization's admin, a user's grant.
    let beta_read = grant(&s, &other.access_token, GrantKind::Admin, Access::Read).await;
    assert!(s
        .users_page(&beta_read, b.zoid, "", 0, 10)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .users_page(&g, other.zoid, "ann", 0, 10)
        .await
        .unwrap()
        .is_none());
}

/// The audit rows of `mode`, newest first.
async fn audit_of(s: &Store, g: &Grant, zoid_: Zoid, mode: &str) -> Vec<AuditEntry> {
    let q = AuditQuery {
        kind: Some(mode.into()),
        ..every_page()
    };
    s.audit_log(g, zoid_, q).await.unwrap().unwrap()
}

async fn org_clients_are_registered_listed_and_deleted_per_organization(db: Fresh) {
    let s = db.store().await;
    let b = s
        .bootstrap("Acme", "acme.example", addr("boss@acme.example"), None)
        .await
        .unwrap();
    let other = s
        .bootstrap("Beta", "beta.example", addr("boss@beta.example"), None)
        .await
        .unwrap();
    let g = grant(&s, &b.access_token, GrantKind::Admin, Access::Update).await;
    let beta = grant(&s, &other.access_token, GrantKind::Admin, Access::Update).await;
    let c = s
        .register_org_client(&g, &meta("reg"), b.zoid, "  My app ", Some(REDIRECT))
        .await
        .unwrap();
    assert!(c.client_id.starts_with("1000."));
    let listed = s.org_clients(&g, b.zoid).await.unwrap().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0],
        OrgClient {
            client_id: c.client_id.clone(),
            name: "My app".into(),
            redirect_uri: Some(REDIRECT.into()),
            created_ms: listed[0].created_ms,
        }
    );
    assert!((now_ms() - listed[0].created_ms).abs() < 60_000);
    // The client works in the OAuth flow like the operator's.
    assert_eq!(
        s.oauth_client(&c.client_id).await.unwrap().map(|o| o.name),
        Some("My app".into())
    );

    // One audit row, without the secret or its digest.
    let rows = audit_of(&s, &g, b.zoid, "registerclient").await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!((row.zuid, row.account_id), (None, None));
    assert_eq!(row.actor_zuid, Some(b.zuid.as_i64()));
    assert_eq!(row.request_id.as_deref(), Some("reg"));
    assert_eq!(
        row.after,
        serde_json::json!({"clientId": c.client_id, "name": "My app", "redirectUri": REDIRECT})
    );
    let text = format!("{} {}", row.before, row.after);
    let digest = mailplane_store::secrets::token_digest(&c.client_secret);
    assert!(
        !text.contains(&c.client_secret) && !text.contains(&digest),
        "{text}"
    );

    // Refused: fields that are not right, a grant of another organization.
    assert_rule(
        s.register_org_client(&g, &meta("r2"), b.zoid, " \t ", None)
            .await,
        RuleErrorKind::Invalid,
        "name",
    );
    assert_rule(
        s.register_org_client(&g, &meta("r3"), b.zoid, "Bad\u{1b}[31m", None)
            .await,
        RuleErrorKind::Invalid,
        "name",
    );
    assert_rule(
        s.register_org_client(&g, &meta("r4"), b.zoid, "App", Some("javascript:alert(1)"))
            .await,
        RuleErrorKind::Invalid,
        "redirectUri",
    );
    let elsewhere = s
        .register_org_client(&beta, &meta("r5"), b.zoid, "Intruder", None)
        .await;
    assert!(
        matches!(elsewhere, Err(WriteError::NotFound(_))),
        "{elsewhere:?}"
    );
    assert!(s.org_clients(&beta, b.zoid).await.unwrap().is_none());

    // Each organization lists its own; the operator's belong to none.
    let theirs = s
        .register_org_client(&beta, &meta("b1"), other.zoid, "Beta app", None)
        .await
        .unwrap();
    let operators = s.create_client("Operator's", None).await.unwrap();
    let ids = |l: Vec<OrgClient>| l.into_iter().map(|c| c.client_id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.org_clients(&g, b.zoid).await.unwrap().unwrap()),
        [c.client_id.as_str()]
    );
    assert_eq!(
        ids(s.org_clients(&beta, other.zoid).await.unwrap().unwrap()),
        [theirs.client_id.as_str()]
    );
    // Deleting another's is "not found", with nothing written.
    for id in [
        &theirs.client_id,
        &operators.client_id,
        &"1000.NOSUCH".to_string(),
    ] {
        assert!(!s
            .delete_org_client(&g, &meta("d0"), b.zoid, id)
            .await
            .unwrap());
    }
    assert!(s.oauth_client(&theirs.client_id).await.unwrap().is_some());
    assert!(s
        .oauth_client(&operators.client_id)
        .await
        .unwrap()
        .is_some());
    assert!(audit_of(&s, &g, b.zoid, "deleteclient").await.is_empty());
    let denied = s
        .delete_org_client(&beta, &meta("d1"), b.zoid, &c.client_id)
        .await;
    assert!(matches!(denied, Err(WriteError::NotFound(_))), "{denied:?}");

    // Deleting takes its refresh tokens with it, and their access tokens.
    let refresh = s
        .oauth_grant(&c.client_id, b.zuid, ScopeSet::user_all().into())
        .await
        .unwrap();
    let access = s
        .refresh_access(&c.client_id, &c.client_secret, &refresh, 600)
        .await
        .unwrap();
    assert!(s
        .authenticate(&access.access_token)
        .await
        .unwrap()
        .is_some());
    assert!(s
        .delete_org_client(&g, &meta("d2"), b.zoid, &c.client_id)
        .await
        .unwrap());
    assert!(s
        .authenticate(&access.access_token)
        .await
        .unwrap()
        .is_none());
    // The refresh token is gone, not merely refused: there is nothing left to revoke.
    assert!(!s.revoke_oauth_token(&refresh).await.unwrap());
    assert!(s.oauth_client(&c.client_id).await.unwrap().is_none());
    assert!(s.org_clients(&g, b.zoid).await.unwrap().unwrap().is_empty());
    assert!(!s
        .delete_org_client(&g, &meta("d3"), b.zoid, &c.client_id)
        .await
        .unwrap());
    let deleted = audit_of(&s, &g, b.zoid, "deleteclient").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deleted[0].before,
        serde_json::json!({"clientId": c.client_id, "name": "My app"})
    );
    assert_eq!(deleted[0].request_id.as_deref(), Some("d2"));
}

async fn org_clients_are_limited_per_organization(db: Fresh) {
    let s = db.store().await;
    let b = s
        .bootstrap("Acme", "acme.example", addr("boss@acme.example"), None)
        .await
        .unwrap();
    let g = grant(&s, &b.access_token, GrantKind::Admin, Access::Update).await;
    let limit = mailplane_store::oauth::MAX_CLIENTS_PER_ORG;
    assert_eq!(limit, 50);
    for n in 0..limit {
        s.register_org_client(&g, &meta("r"), b.zoid, &format!("App {n}"), None)
            .await
            .unwrap();
    }
    let refused = s
        .register_org_client(&g, &meta("r"), b.zoid, "One too many", None)
        .await;
    match refused {
        Err(WriteError::Rule(e)) => {
            assert_eq!(e.kind, RuleErrorKind::Invalid);
            assert!(e.message.contains("50"), "{}", e.message);
        }
        other => panic!("expected the limit, got {other:?}"),
    }
    let listed = s.org_clients(&g, b.zoid).await.unwrap().unwrap();
    assert_eq!(listed.len(), 50);
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].created_ms >= w[1].created_ms),
        "not newest first"
    );
    assert_eq!(audit_of(&s, &g, b.zoid, "registerclient").await.len(), 50);
    // A deleted one makes room again.
    assert!(s
        .delete_org_client(&g, &meta("d"), b.zoid, &listed[0].client_id)
        .await
        .unwrap());
    s.register_org_client(&g, &meta("r"), b.zoid, "Room again", None)
        .await
        .unwrap();
}

async fn audit_and_events_filter_by_kind_and_actor(db: Fresh) {
    let (s, t) = demo(&db).await;
    let z = zoid(DEMO_ZOID);
    let boss = s
        .authenticate(&t.admin_token)
        .await
        .unwrap()
        .unwrap()
        .zuid();
    let becky = zuid(REBECCA_ZUID);
    for n in 0..2 {
        s.apply(
            user(&t.user_token),
            &meta(&format!("own{n}")),
            None,
            account(REBECCA),
            None,
            AccountCommand::UpdateOutgoingStatus { blocked: n == 0 },
        )
        .await
        .unwrap();
    }
    s.apply(
        admin(&t.admin_token),
        &meta("admin-on-becky"),
        Some(z),
        account(REBECCA),
        None,
        AccountCommand::UpdateIncomingStatus { blocked: true },
    )
    .await
    .unwrap();
    let g = grant(&s, &t.admin_token, GrantKind::Admin, Access::Read).await;
    s.register_org_client(&g, &meta("client"), z, "Filtered", None)
        .await
        .unwrap();
    let ids = |rows: Vec<AuditEntry>| {
        rows.into_iter()
            .map(|e| e.request_id.unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let audit = |kind: Option<&str>, actor: Option<Zuid>| {
        let (s, g) = (&s, &g);
        let q = AuditQuery {
            kind: kind.map(str::to_string),
            actor,
            ..every_page()
        };
        async move { ids(s.audit_log(g, z, q).await.unwrap().unwrap()) }
    };
    assert_eq!(audit(None, None).await.len(), 4);
    assert_eq!(
        audit(Some("updateOutgoingStatus"), None).await,
        ["own1", "own0"]
    );
    assert_eq!(audit(Some("registerclient"), None).await, ["client"]);
    assert!(audit(Some("nosuchmode"), None).await.is_empty());
    // An actor finds what they did and what was done to them.
    assert_eq!(
        audit(None, Some(becky)).await,
        ["admin-on-becky", "own1", "own0"]
    );
    assert_eq!(audit(None, Some(boss)).await, ["client", "admin-on-becky"]);
    assert_eq!(
        audit(Some("updateIncomingStatus"), Some(boss)).await,
        ["admin-on-becky"]
    );
    assert!(audit(Some("registerclient"), Some(becky)).await.is_empty());
    // The filter's choices.
    assert_eq!(
        s.audit_kinds(&g, z).await.unwrap().unwrap(),
        [
            "registerclient",
            "updateIncomingStatus",
            "updateOutgoingStatus"
        ]
    );
    let mine = grant(&s, &t.user_token, GrantKind::User, Access::Read).await;
    assert!(s.audit_kinds(&mine, z).await.unwrap().is_none());
    assert!(s.audit_kinds(&g, zoid(999)).await.unwrap().is_none());
    let fresh = s
        .bootstrap("Empty", "empty.example", addr("boss@empty.example"), None)
        .await
        .unwrap();
    let empty = grant(&s, &fresh.access_token, GrantKind::Admin, Access::Read).await;
    assert!(s
        .audit_kinds(&empty, fresh.zoid)
        .await
        .unwrap()
        .unwrap()
        .is_empty());

    // Security events: by error code and by the token's user.
    let now = now_ms();
    let mut denied = event(z, now - 3000, "/a", Some(becky));
    denied.error_code = "INVALID_OAUTHSCOPE".into();
    let events = vec![
        denied,
        event(z, now - 2000, "/b", Some(boss)),
        event(z, now - 1000, "/c", None),
    ];
    s.record_security_events(events).await.unwrap();
    let paths = |kind: Option<&str>, actor: Option<Zuid>| {
        let (s, g) = (&s, &g);
        let q = AuditQuery {
            kind: kind.map(str::to_string),
            actor,
            ..every_page()
        };
        async move {
            s.security_events(g, z, q)
                .await
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|e| e.path)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(paths(None, None).await, ["/c", "/b", "/a"]);
    assert_eq!(paths(Some("INVALID_OAUTHSCOPE"), None).await, ["/a"]);
    assert_eq!(
        paths(Some("URL_RULE_NOT_CONFIGURED"), None).await,
        ["/c", "/b"]
    );
    assert_eq!(paths(None, Some(becky)).await, ["/a"]);
    assert_eq!(
        paths(Some("URL_RULE_NOT_CONFIGURED"), Some(becky)).await,
        Vec::<String>::new()
    );
    assert_eq!(paths(None, Some(boss)).await, ["/b"]);
}
