//! The authorization matrix (contract §3, §4, §5): every principal × every target × every
//! mode of the account update endpoint, on both URL forms, and the reads.
//!
//! - Principals: the demo super admin with each organization scope alone and with
//!   `ZohoMail.accounts.ALL` only; an `admin` of the demo organization; Rebecca (a member)
//!   with user scopes and with organization scopes; Rebecca's own demo token; the super
//!   admin of a second organization; no token; an expired token; a revoked token.
//! - Targets: Rebecca's account, the demo admin's, the other organization's, an id nothing
//!   has, `0`, a negative number, an id past 64 bits, and a body `zuid` that is not the
//!   owner; under the user URL and under the admin URL of each organization, of one that
//!   does not exist and of `0`.
//!
//! An ordinary admin may not change a super admin's accounts (403 on the admin URL, after
//! the reach: only a super admin may create or remove admins).
//!
//! Every answer is the one the contract gives (status and `errorCode`); no success lands
//! where the principal may not reach with a scope that allows it; an account, user or
//! organization out of reach answers exactly like an absent one (same status, same body
//! once the ids in `moreInfo` are masked); and no denial changes a single row. Each body is
//! valid for its target, so only authorization decides: the same body succeeds for those
//! entitled to it (checked too). Denials and reads run concurrently in one batch between
//! two snapshots; the expected successes run one at a time afterwards, each undone when it
//! would make a later one invalid.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mailplane_client::{Client, Reply};
use mailplane_domain::{Mode, Offered, PathId};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

backend_tests!(authorization_matrix);

/// Requests in flight at once during the concurrent batch.
const IN_FLIGHT: usize = 32;

const ORG_SCOPE: &str = "ZohoMail.organization.accounts";
const USER_SCOPE: &str = "ZohoMail.accounts";
const EVERY_SCOPE: &str = "ZohoMail.organization.accounts.ALL,ZohoMail.accounts.ALL";

/// Ids that nothing has (valid positive 64-bit integers).
const MISSING_ACCOUNT: &str = "2999999999999999999";
const MISSING_ZUID: &str = "2999999999999999998";
const MISSING_ZOID: &str = "99999999";
/// Path ids that are not positive 64-bit integers.
const BAD_IDS: [(&str, &str); 3] = [
    ("zero", "0"),
    ("negative", "-1"),
    ("overflow", "99999999999999999999"),
];

/// The identity every `addsendmaildetails` of the matrix adds (re-adding replaces it).
const ADDED: &str = "matrix@relay.example.net";
/// The identity every `deletesendmaildetails` removes; put on each account beforehand and
/// put back after each successful delete.
const DELETABLE: &str = "deleteme@relay.example.net";

/// The local part of the alias every `addEmailAlias` adds, in the account's organization's
/// domain (undone after each success).
const ALIAS: &str = "matrix.alias";
/// The local part of the alias every `deleteEmailAlias` removes; put on each account
/// beforehand and put back after each successful delete.
const DELETABLE_ALIAS: &str = "matrix.deleteme";

/// The forward every account has from the start (enabled, disabled, never confirmed), and
/// the one every `deleteMailForward` removes (added back after each successful delete).
const KEPT_FORWARD: &str = "matrix.kept@forward.example.net";
const DELETABLE_FORWARD: &str = "matrix.deleteme@forward.example.net";
/// The forward every `addMailForward` adds (removed after each success).
const ADDED_FORWARD: &str = "matrix.added@forward.example.net";

/// The modes whose matrix body the rule refuses (see [`RULE_REFUSAL`]).
fn rule_refuses(mode: &str) -> bool {
    matches!(
        mode,
        "verifyMailForward" | "resendMailForwardVerficationMail" | "verifysendmaildetails"
    )
}

/// Every mode, from the domain's list: a new mode is in the matrix from the start, and
/// [`Acct::body`] does not compile until it has a body for it.
fn modes() -> impl Iterator<Item = &'static str> {
    Mode::ALL.iter().map(|m| m.as_str())
}

const INVALID_TICKET: (u16, &str) = (400, "INVALID_TICKET");
const INVALID_OAUTHTOKEN: (u16, &str) = (401, "INVALID_OAUTHTOKEN");
const INVALID_OAUTHSCOPE: (u16, &str) = (401, "INVALID_OAUTHSCOPE");
const NO_PERMISSION: (u16, &str) = (403, "NO_PERMISSION");
const URL_RULE: (u16, &str) = (404, "URL_RULE_NOT_CONFIGURED");
const NOT_FOUND: (u16, &str) = (404, "NOT_FOUND");
/// What the rule answers a caller who reached the account with a body that cannot
/// succeed here: `verifyMailForward` without the key mailed, and
/// `resendMailForwardVerficationMail` within a minute of the last key.
const RULE_REFUSAL: (u16, &str) = (400, "INVALID_VALUE");

/// What a read answers: a malformed id before anything, then the token's gate, then
/// whether the target is within reach (absent and elsewhere look alike).
fn read_expectation(
    valid: bool,
    gate: Option<(u16, &'static str)>,
    reach: bool,
) -> Result<(), (u16, &'static str)> {
    if !valid {
        Err(URL_RULE)
    } else if let Some(d) = gate {
        Err(d)
    } else if !reach {
        Err(NOT_FOUND)
    } else {
        Ok(())
    }
}
const ZUID_NOT_OWNER: (u16, &str) = (400, "INVALID_VALUE");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Org {
    A,
    B,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenState {
    /// No `Authorization` header.
    Missing,
    /// Expired or revoked.
    Dead,
    Live,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Member,
    Admin,
    SuperAdmin,
}

struct Principal {
    name: String,
    client: Client,
    token: TokenState,
    zuid: String,
    org: Org,
    role: Role,
    scopes: Vec<String>,
}

impl Principal {
    fn is_admin(&self) -> bool {
        self.role != Role::Member
    }

    fn allows(&self, resource: &str, access: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == format!("{resource}.{access}") || *s == format!("{resource}.ALL"))
    }

    /// The denial of the token, its scope and the role (in that order), if any.
    fn gate(&self, admin_url: bool, access: &str) -> Option<(u16, &'static str)> {
        match self.token {
            TokenState::Missing => Some(INVALID_TICKET),
            TokenState::Dead => Some(INVALID_OAUTHTOKEN),
            TokenState::Live => {
                let resource = if admin_url { ORG_SCOPE } else { USER_SCOPE };
                if !self.allows(resource, access) {
                    Some(INVALID_OAUTHSCOPE)
                } else if admin_url && !self.is_admin() {
                    Some(NO_PERMISSION)
                } else {
                    None
                }
            }
        }
    }

    /// Whether the principal administers `org` (a live token of one of its admins).
    fn administers(&self, org: Option<Org>) -> bool {
        self.token == TokenState::Live && self.is_admin() && org == Some(self.org)
    }
}

/// A zoid in a URL.
#[derive(Clone)]
struct ZoidRef {
    label: &'static str,
    id: String,
    org: Option<Org>,
    valid: bool,
}

/// An account (or, for the org account read, a user) named in a URL.
#[derive(Clone)]
struct Target {
    label: String,
    id: String,
    /// The owner's zuid and organization; `None` when nothing has the id.
    owner: Option<(String, Org)>,
    valid: bool,
}

/// One of the accounts the matrix updates, with what makes a valid body for it.
#[derive(Clone)]
struct Acct {
    label: &'static str,
    id: String,
    zuid: String,
    org: Org,
    /// Its primary address when the matrix starts: an address it keeps whatever the other
    /// modes do (`displaynameemailupdate`).
    first_primary: &'static str,
    /// A new primary address in the account's organization (`emailupdate`).
    new_address: String,
    /// The account's organization's domain.
    domain: &'static str,
    /// What tells its aliases from the other accounts' (aliases are unique on the server).
    tag: &'static str,
    /// Accounts of the same user (`mailaccountorderupdate`).
    acc_list: Value,
    /// Whether the owner is a super admin (out of an ordinary admin's hands).
    owner_super_admin: bool,
}

impl Acct {
    fn target(&self) -> Target {
        Target {
            label: self.label.to_string(),
            id: self.id.clone(),
            owner: Some((self.zuid.clone(), self.org)),
            valid: true,
        }
    }

    /// A body of `mode` that succeeds on this account for whoever may update it.
    fn body(&self, mode: &str) -> Value {
        match Mode::parse(mode).unwrap_or_else(|| panic!("{mode} is not a mode")) {
            Mode::AddSendMailDetails => json!({"mode": mode, "sendMailDetails": [{
                "fromAddress": ADDED, "displayName": "Matrix", "mode": "extfrom",
                "serverName": "smtp.relay.example.net", "serverPort": "465",
                "userName": ADDED, "password": "Relay-pass-9", "smtpConnection": "ssl"}]}),
            Mode::DeleteSendMailDetails => json!({"mode": mode, "fromAddress": DELETABLE}),
            Mode::EmailUpdate => json!({"mode": mode, "emailAddress": self.new_address}),
            Mode::EnableMailAccount | Mode::DisableMailAccount => json!({ "mode": mode }),
            Mode::MailAccountOrderUpdate => json!({"mode": mode, "accList": self.acc_list}),
            Mode::UpdateOutgoingStatus => json!({"mode": mode, "outgoingBlocked": "true"}),
            Mode::UpdateIncomingStatus => json!({"mode": mode, "incomingBlocked": true}),
            Mode::UpdateImapStatus => json!({"mode": mode, "imapAccessEnabled": false}),
            Mode::UpdatePopStatus => json!({"mode": mode, "popAccessEnabled": "false"}),
            Mode::AddEmailAlias => json!({"mode": mode, "emailAlias": [self.alias(ALIAS)]}),
            Mode::DeleteEmailAlias => {
                json!({"mode": mode, "emailAlias": self.alias(DELETABLE_ALIAS)})
            }
            // The tokens stay: the matrix goes on with them.
            Mode::ResetPassword => json!({"mode": mode, "password": "Matrix-pass-9",
                                          "resetAuthToken": "false", "oneTimePassword": true}),
            Mode::AddMailForward => json!({"mode": mode, "mailForward": ADDED_FORWARD}),
            Mode::EnableMailForward => {
                json!({"mode": mode, "mailForward": [{"mailForwardTo": KEPT_FORWARD}]})
            }
            Mode::DisableMailForward => json!({"mode": mode,
                "mailForward": [{"mailForwardTo": KEPT_FORWARD, "reason": "matrix"}]}),
            Mode::DeleteMailForward => {
                json!({"mode": mode, "mailForward": [{"mailForwardTo": DELETABLE_FORWARD}]})
            }
            // The rule refuses these (see RULE_REFUSAL), after every authorization check.
            Mode::VerifyMailForward => json!({"mode": mode,
                "mailForward": [{"mailForwardTo": KEPT_FORWARD, "confirmKey": "not-the-key"}]}),
            // A target that is no forward of any account: refused whatever the time (the
            // minute between two keys would make the answer depend on the clock).
            Mode::ResendMailForwardVerficationMail => {
                json!({"mode": mode, "mailForward": [{"mailForwardTo": "matrix.none@forward.example.net"}]})
            }
            // No identity of any account has this id.
            Mode::VerifySendMailDetails => json!({"mode": mode,
                "sendMailId": "9000000000000000001", "confirmKey": "not-the-key"}),
            Mode::DeleteZohoMailCopy => json!({"mode": mode, "deleteCopy": "true"}),
            Mode::UpdatePersonalInfo => {
                json!({"mode": mode, "firstName": "Matrix", "displayName": "Matrix Person"})
            }
            Mode::DisplayNameEmailUpdate => json!({"mode": mode, "displayName": "Matrix Sender",
                                                   "emailAddress": self.first_primary}),
        }
    }

    /// An alias of this account, in its organization's domain.
    fn alias(&self, local: &str) -> String {
        format!("{local}.{}@{}", self.tag, self.domain)
    }
}

/// What a success must show besides its status.
#[derive(Clone)]
enum Check {
    Nothing,
    /// A PUT of `mode` on `accts[acct]`.
    Update {
        acct: usize,
        mode: &'static str,
    },
    /// `data` is this account of this user.
    Account {
        id: String,
        zuid: String,
    },
    /// `data` is this organization.
    Org {
        zoid: String,
    },
    /// `data` lists only accounts of these users.
    Accounts {
        zuids: Vec<String>,
    },
}

/// (principal, operation, URL, target, request body): what identifies a case.
type Key = (usize, String, String, String, String);

struct Case {
    who: usize,
    method: Method,
    path: String,
    body: Option<Value>,
    op: String,
    url: String,
    target: String,
    /// The ids named in the path, masked in `moreInfo` when answers are compared.
    masks: Vec<String>,
    expect: Result<(), (u16, &'static str)>,
    /// Whether the principal may reach the target with a scope that allows the operation:
    /// a success on a case that is not legit is a cross-organization or cross-user one.
    legit: bool,
    /// Cases naming something absent instead of something out of reach: the answers
    /// must be the same.
    twins: Vec<Key>,
    check: Check,
    /// Whether `expect` is the rule's refusal ([`RULE_REFUSAL`]), which names the body's
    /// field, rather than a zuid that is not the owner's.
    rule_refusal: bool,
}

impl Case {
    fn key(&self) -> Key {
        key(
            self.who,
            &self.op,
            &self.url,
            &self.target,
            self.body.as_ref(),
        )
    }

    fn describe(&self, principals: &[Principal]) -> String {
        let body = self.body.as_ref().map(Value::to_string).unwrap_or_default();
        format!(
            "[{}] {} {} {body}",
            principals[self.who].name, self.method, self.path
        )
    }
}

fn key(who: usize, op: &str, url: &str, target: &str, body: Option<&Value>) -> Key {
    (
        who,
        op.to_string(),
        url.to_string(),
        target.to_string(),
        body.map(Value::to_string).unwrap_or_default(),
    )
}

#[derive(Default)]
struct Matrix {
    cases: Vec<Case>,
    index: HashMap<Key, usize>,
}

impl Matrix {
    /// Adds a case unless the same one is there already.
    fn push(&mut self, case: Case) {
        let k = case.key();
        if !self.index.contains_key(&k) {
            self.index.insert(k, self.cases.len());
            self.cases.push(case);
        }
    }
}

/// Everything the matrix runs against.
struct World {
    principals: Vec<Principal>,
    accts: Vec<Acct>,
    zoids: Vec<ZoidRef>,
    /// The users of each organization, for the org account read.
    users: Vec<Target>,
    /// The zuids of organization A's users and of B's.
    org_users: [Vec<String>; 2],
    zoid_b: String,
    /// The organization super admins, to set up and undo.
    admin_a: Client,
    admin_b: Client,
    dana_zuid: String,
}

fn cli_json(app: &TestApp, args: &[&str]) -> Value {
    let out = app.cli(args);
    assert!(
        out.status.success(),
        "mailplane {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the command prints JSON")
}

/// `mailplane token issue` with a lifetime.
fn issue(app: &TestApp, zuid: &str, scopes: &str, expires_in: &str) -> String {
    let v = cli_json(
        app,
        &[
            "token",
            "issue",
            "--zuid",
            zuid,
            "--scope",
            scopes,
            "--expires-in",
            expires_in,
        ],
    );
    v["accessToken"].as_str().expect("accessToken").to_string()
}

fn put_body(client: &Client, path: &str, body: &Value) -> impl std::future::Future<Output = Reply> {
    let (client, path, body) = (client.clone(), path.to_string(), body.to_string());
    async move {
        client
            .send(Method::PUT, &path, Some(body.into_bytes()))
            .await
            .expect("request sent")
    }
}

async fn setup(app: &TestApp) -> World {
    // The expired token first, so that it has expired by the time the matrix runs.
    let r = app
        .admin()
        .org_account(ZOID, "admin@zylker.com")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let adm_zuid = id_text(&r.data()["zuid"]);
    let adm_account = id_text(&r.data()["accountId"]);
    let expired = issue(app, &adm_zuid, EVERY_SCOPE, "1");
    let expired_at = Instant::now() + Duration::from_secs(1);

    let b = app.bootstrap("Other", "other.example", "boss@other.example");
    let zoid_b = id_text(&b["zoid"]);
    let boss_zuid = id_text(&b["zuid"]);
    let boss_account = id_text(&b["accountId"]);
    let admin_b = app.client(Some(b["accessToken"].as_str().expect("token")));

    // An admin (not super admin) of A.
    let r = app
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "dana@zylker.com", "password": "Correct-horse-9",
                    "role": "admin"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let dana_zuid = id_text(&r.data()["zuid"]);

    let revoked = issue(app, &adm_zuid, EVERY_SCOPE, "0");
    let r = app.client(Some(&revoked)).own_organization().await.unwrap();
    assert_eq!(
        r.status, 200,
        "the token to revoke works before: {}",
        r.body
    );
    cli_json(app, &["token", "revoke", "--token", &revoked]);

    let live = |who: &str, zuid: &str, org: Org, role: Role, scopes: &str, token: &str| Principal {
        name: who.to_string(),
        client: app.client(Some(token)),
        token: TokenState::Live,
        zuid: zuid.to_string(),
        org,
        role,
        scopes: scopes.split(',').map(str::to_string).collect(),
    };
    let mut principals = vec![
        Principal {
            name: "no token".into(),
            client: app.anonymous(),
            token: TokenState::Missing,
            zuid: String::new(),
            org: Org::A,
            role: Role::Member,
            scopes: Vec::new(),
        },
        Principal {
            name: "expired token of the A admin".into(),
            client: app.client(Some(&expired)),
            token: TokenState::Dead,
            zuid: adm_zuid.clone(),
            org: Org::A,
            role: Role::SuperAdmin,
            scopes: Vec::new(),
        },
        Principal {
            name: "revoked token of the A admin".into(),
            client: app.client(Some(&revoked)),
            token: TokenState::Dead,
            zuid: adm_zuid.clone(),
            org: Org::A,
            role: Role::SuperAdmin,
            scopes: Vec::new(),
        },
    ];
    for scope in [
        "ZohoMail.organization.accounts.READ",
        "ZohoMail.organization.accounts.UPDATE",
        "ZohoMail.organization.accounts.CREATE",
        "ZohoMail.organization.accounts.DELETE",
        "ZohoMail.organization.accounts.ALL",
        "ZohoMail.accounts.ALL",
    ] {
        let token = issue(app, &adm_zuid, scope, "0");
        principals.push(live(
            &format!("A super admin, {scope}"),
            &adm_zuid,
            Org::A,
            Role::SuperAdmin,
            scope,
            &token,
        ));
    }
    let token = issue(app, &dana_zuid, EVERY_SCOPE, "0");
    principals.push(live(
        "A admin Dana (role admin), every scope",
        &dana_zuid,
        Org::A,
        Role::Admin,
        EVERY_SCOPE,
        &token,
    ));
    for scope in [
        "ZohoMail.accounts.READ",
        "ZohoMail.accounts.UPDATE",
        "ZohoMail.accounts.READ,ZohoMail.accounts.UPDATE",
        "ZohoMail.organization.accounts.ALL",
        "ZohoMail.organization.accounts.READ,ZohoMail.organization.accounts.UPDATE",
        EVERY_SCOPE,
    ] {
        let token = issue(app, REBECCA_ZUID, scope, "0");
        principals.push(live(
            &format!("A member Rebecca, {scope}"),
            REBECCA_ZUID,
            Org::A,
            Role::Member,
            scope,
            &token,
        ));
    }
    principals.push(live(
        "Rebecca's demo token (account a1's user token)",
        REBECCA_ZUID,
        Org::A,
        Role::Member,
        "ZohoMail.accounts.ALL",
        &app.user_token,
    ));
    principals.push(live(
        "B super admin (bootstrap token)",
        &boss_zuid,
        Org::B,
        Role::SuperAdmin,
        EVERY_SCOPE,
        b["accessToken"].as_str().unwrap(),
    ));

    let accts = vec![
        Acct {
            label: "Rebecca's account (A)",
            id: REBECCA.into(),
            zuid: REBECCA_ZUID.into(),
            org: Org::A,
            first_primary: "becky@zylker.com",
            new_address: "matrix.rebecca@zylker.com".into(),
            domain: "zylker.com",
            tag: "rebecca",
            acc_list: json!(format!("{POP},{IMAP}")),
            owner_super_admin: false,
        },
        Acct {
            label: "the A admin's account",
            id: adm_account.clone(),
            zuid: adm_zuid.clone(),
            org: Org::A,
            first_primary: "admin@zylker.com",
            new_address: "matrix.admin@zylker.com".into(),
            domain: "zylker.com",
            tag: "admin",
            acc_list: json!([adm_account]),
            owner_super_admin: true,
        },
        Acct {
            label: "B's account",
            id: boss_account.clone(),
            zuid: boss_zuid.clone(),
            org: Org::B,
            first_primary: "boss@other.example",
            new_address: "matrix.boss@other.example".into(),
            domain: "other.example",
            tag: "boss",
            acc_list: json!([boss_account]),
            owner_super_admin: true,
        },
    ];
    // Each account gets the identity and the alias the delete modes remove.
    for a in &accts {
        let admin = if a.org == Org::A {
            app.admin()
        } else {
            admin_b.clone()
        };
        let zoid = if a.org == Org::A { ZOID } else { &zoid_b };
        let r = admin
            .update_org_account(zoid, &a.id, &deletable_body())
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let r = admin
            .update_org_account(zoid, &a.zuid, &deletable_alias_body(a))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let r = admin
            .update_org_account(
                zoid,
                &a.id,
                &json!({"mode": "addMailForward", "mailForward": [KEPT_FORWARD, DELETABLE_FORWARD]}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }

    let zoid = |label, id: &str, org, valid| ZoidRef {
        label,
        id: id.to_string(),
        org,
        valid,
    };
    let mut zoids = vec![
        zoid("A", ZOID, Some(Org::A), true),
        zoid("B", &zoid_b, Some(Org::B), true),
        zoid("absent", MISSING_ZOID, None, true),
    ];
    for (label, id) in BAD_IDS {
        zoids.push(zoid(label, id, None, false));
    }
    let user = |label: &str, id: &str, owner: Option<(&str, Org)>| Target {
        label: label.to_string(),
        id: id.to_string(),
        owner: owner.map(|(z, o)| (z.to_string(), o)),
        valid: true,
    };
    let mut users = vec![
        user("Rebecca (A)", REBECCA_ZUID, Some((REBECCA_ZUID, Org::A))),
        user("the A admin", &adm_zuid, Some((&adm_zuid, Org::A))),
        user("Dana (A)", &dana_zuid, Some((&dana_zuid, Org::A))),
        user("B's admin", &boss_zuid, Some((&boss_zuid, Org::B))),
        user("missing", MISSING_ZUID, None),
        user(
            "Rebecca by address",
            "becky@zylker.com",
            Some((REBECCA_ZUID, Org::A)),
        ),
        user(
            "B's admin by address",
            "boss@other.example",
            Some((&boss_zuid, Org::B)),
        ),
        user("missing", "nobody@zylker.com", None),
    ];
    for (label, id) in BAD_IDS {
        users.push(Target {
            label: label.into(),
            id: id.into(),
            owner: None,
            valid: false,
        });
    }

    // Wait until the expired token is refused.
    tokio::time::sleep(expired_at.saturating_duration_since(Instant::now())).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.client(Some(&expired)).own_organization().await.unwrap();
        if r.status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the token with --expires-in 1 still works: {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    World {
        principals,
        accts,
        zoids,
        users,
        org_users: [
            vec![REBECCA_ZUID.to_string(), adm_zuid, dana_zuid.clone()],
            vec![boss_zuid],
        ],
        zoid_b,
        admin_a: app.admin(),
        admin_b,
        dana_zuid,
    }
}

fn deletable_body() -> Value {
    json!({"mode": "addsendmaildetails", "sendMailDetails": [{
        "fromAddress": DELETABLE, "displayName": "Delete me", "mode": "extfrom",
        "serverName": "smtp.relay.example.net", "serverPort": 587, "userName": DELETABLE,
        "password": "Relay-pass-9", "smtpConnection": "tls"}]})
}

fn deletable_alias_body(a: &Acct) -> Value {
    json!({"mode": "addEmailAlias", "emailAlias": [a.alias(DELETABLE_ALIAS)]})
}

/// The twin of a case on `zoid`, with an absent zoid instead, when `zoid` is an
/// organization the principal does not administer.
fn zoid_twin(
    p: &Principal,
    who: usize,
    op: &str,
    z: &ZoidRef,
    t: &str,
    body: Option<&Value>,
) -> Option<Key> {
    (z.org.is_some() && !p.administers(z.org)).then(|| key(who, op, "org absent", t, body))
}

/// Every case of the account update endpoint.
fn update_cases(w: &World, m: &mut Matrix) {
    let mut urls: Vec<Option<&ZoidRef>> = vec![None];
    urls.extend(
        w.zoids
            .iter()
            .filter(|z| z.label != "negative" && z.label != "overflow")
            .map(Some),
    );
    // (target, index of the account whose body is sent, body zuid)
    let mut targets: Vec<(Target, usize, Option<String>)> = Vec::new();
    for (i, a) in w.accts.iter().enumerate() {
        targets.push((a.target(), i, None));
    }
    // A body zuid that is not the owner's: another user of the same organization, and
    // one of the other organization.
    for (i, zuid) in [
        (0, w.accts[1].zuid.clone()),
        (1, REBECCA_ZUID.to_string()),
        (2, REBECCA_ZUID.to_string()),
        (0, w.accts[2].zuid.clone()),
    ] {
        let mut t = w.accts[i].target();
        t.label = format!("{} with zuid {zuid}", t.label);
        targets.push((t, i, Some(zuid)));
    }
    let missing = Target {
        label: "missing".into(),
        id: MISSING_ACCOUNT.into(),
        owner: None,
        valid: true,
    };
    for (label, id) in BAD_IDS {
        targets.push((
            Target {
                label: label.into(),
                id: id.into(),
                owner: None,
                valid: false,
            },
            0,
            None,
        ));
    }
    for (who, p) in w.principals.iter().enumerate() {
        for url in &urls {
            let url_label = url.map_or("user URL".to_string(), |z| format!("org {}", z.label));
            for mode in modes() {
                let op = format!("PUT {mode}");
                for (t, acct, zuid) in &targets {
                    let mut body = w.accts[*acct].body(mode);
                    if let Some(z) = zuid {
                        body["zuid"] = json!(z);
                    }
                    // The target, and the same body on an id nothing has.
                    let pair = if t.owner.is_some() {
                        vec![t, &missing]
                    } else {
                        vec![t]
                    };
                    for t in pair {
                        let owner_super_admin =
                            t.owner.is_some() && w.accts[*acct].owner_super_admin;
                        let c = update_case(
                            p,
                            who,
                            *url,
                            &url_label,
                            mode,
                            &op,
                            (t, owner_super_admin),
                            *acct,
                            zuid.as_deref(),
                            &body,
                        );
                        m.push(c);
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn update_case(
    p: &Principal,
    who: usize,
    url: Option<&ZoidRef>,
    url_label: &str,
    mode: &'static str,
    op: &str,
    (t, owner_super_admin): (&Target, bool),
    acct: usize,
    body_zuid: Option<&str>,
    body: &Value,
) -> Case {
    // The modes whose path names a user take the owner's zuid where the others take the
    // account id (and a zuid nothing has for the missing account).
    let by_zuid = Mode::parse(mode).is_some_and(|m| m.spec().path == PathId::Zuid);
    let path_id = match &t.owner {
        Some((zuid, _)) if by_zuid => zuid.clone(),
        None if by_zuid && t.valid => MISSING_ZUID.to_string(),
        _ => t.id.clone(),
    };
    let path = match url {
        None => format!("/api/accounts/{path_id}"),
        Some(z) => format!("/api/organization/{}/accounts/{path_id}", z.id),
    };
    let reach = match (&t.owner, url) {
        (None, _) => false,
        (Some((zuid, _)), None) => p.token == TokenState::Live && *zuid == p.zuid,
        (Some((_, org)), Some(z)) => z.org == Some(*org) && p.administers(Some(*org)),
    };
    let gate = p.gate(url.is_some(), "UPDATE");
    // An ordinary admin reaches a super admin's account but may not change it.
    let outranked = url.is_some() && p.role == Role::Admin && owner_super_admin;
    // A mode the table offers on the admin URL only is refused on the user URL.
    let admin_only_on_user_url = url.is_none()
        && Mode::parse(mode).is_some_and(|m| m.spec().offered == Offered::AdminUrlOnly);
    let mut rule_refusal = false;
    let expect = if !t.valid || url.is_some_and(|z| !z.valid) {
        Err(URL_RULE)
    } else if let Some(denial) = gate {
        Err(denial)
    } else if admin_only_on_user_url {
        Err(NO_PERMISSION)
    } else if !reach {
        Err(NOT_FOUND)
    } else if outranked {
        Err(NO_PERMISSION)
    } else if body_zuid.is_some_and(|z| Some(z) != t.owner.as_ref().map(|o| o.0.as_str())) {
        Err(ZUID_NOT_OWNER)
    } else if rule_refuses(mode) {
        rule_refusal = true;
        Err(RULE_REFUSAL)
    } else {
        Ok(())
    };
    let legit = reach && gate.is_none() && !outranked && !admin_only_on_user_url;
    let mut twins = Vec::new();
    if t.valid && url.is_none_or(|z| z.valid) {
        if t.owner.is_some() && !reach {
            twins.push(key(who, op, url_label, "missing", Some(body)));
        }
        if let Some(z) = url {
            twins.extend(zoid_twin(p, who, op, z, &t.label, Some(body)));
        }
    }
    let mut masks = vec![path_id];
    masks.extend(url.map(|z| z.id.clone()));
    Case {
        who,
        method: Method::PUT,
        path,
        body: Some(body.clone()),
        op: op.to_string(),
        url: url_label.to_string(),
        target: t.label.clone(),
        masks,
        expect,
        legit,
        twins,
        check: Check::Update { acct, mode },
        rule_refusal,
    }
}

/// Every case of the reads.
fn read_cases(w: &World, m: &mut Matrix) {
    let mut accounts: Vec<Target> = w.accts.iter().map(Acct::target).collect();
    accounts.push(Target {
        label: "Rebecca's POP account (A)".into(),
        id: POP.into(),
        owner: Some((REBECCA_ZUID.into(), Org::A)),
        valid: true,
    });
    accounts.push(Target {
        label: "missing".into(),
        id: MISSING_ACCOUNT.into(),
        owner: None,
        valid: true,
    });
    for (label, id) in BAD_IDS {
        accounts.push(Target {
            label: label.into(),
            id: id.into(),
            owner: None,
            valid: false,
        });
    }
    let read = |who: usize, op: &str, url: &str, target: &str, path: String| Case {
        who,
        method: Method::GET,
        path,
        body: None,
        op: op.to_string(),
        url: url.to_string(),
        target: target.to_string(),
        masks: Vec::new(),
        expect: Ok(()),
        legit: false,
        twins: Vec::new(),
        check: Check::Nothing,
        rule_refusal: false,
    };
    for (who, p) in w.principals.iter().enumerate() {
        let user_gate = p.gate(false, "READ");
        let admin_gate = p.gate(true, "READ");

        // GET /api/accounts
        let mut c = read(
            who,
            "GET accounts",
            "user URL",
            "own",
            "/api/accounts".into(),
        );
        c.expect = user_gate.map_or(Ok(()), Err);
        c.legit = user_gate.is_none();
        c.check = Check::Accounts {
            zuids: vec![p.zuid.clone()],
        };
        m.push(c);

        // GET /api/accounts/{accountId}
        for t in &accounts {
            let mut c = read(
                who,
                "GET account",
                "user URL",
                &t.label,
                format!("/api/accounts/{}", t.id),
            );
            let reach = t.owner.as_ref().is_some_and(|(z, _)| *z == p.zuid);
            c.expect = read_expectation(t.valid, user_gate, reach);
            c.legit = reach && user_gate.is_none();
            if t.owner.is_some() && !c.legit {
                c.twins
                    .push(key(who, "GET account", "user URL", "missing", None));
            }
            c.masks = vec![t.id.clone()];
            c.check = Check::Account {
                id: t.id.clone(),
                zuid: p.zuid.clone(),
            };
            m.push(c);
        }

        // GET /api/organization
        let mut c = read(
            who,
            "GET own org",
            "org URL",
            "own",
            "/api/organization".into(),
        );
        c.expect = admin_gate.map_or(Ok(()), Err);
        c.legit = admin_gate.is_none();
        c.check = Check::Org {
            zoid: w.zoid_of(p.org).to_string(),
        };
        m.push(c);

        for z in &w.zoids {
            let url = format!("org {}", z.label);
            let reach = p.administers(z.org);
            let expect = read_expectation(z.valid, admin_gate, reach);
            let legit = reach && admin_gate.is_none();
            // GET /api/organization/{zoid}
            let mut c = read(
                who,
                "GET org",
                &url,
                "org",
                format!("/api/organization/{}", z.id),
            );
            c.expect = expect;
            c.legit = legit;
            c.twins.extend(zoid_twin(p, who, "GET org", z, "org", None));
            c.masks = vec![z.id.clone()];
            c.check = Check::Org { zoid: z.id.clone() };
            m.push(c);
            // GET /api/organization/{zoid}/accounts
            let mut c = read(
                who,
                "GET org accounts",
                &url,
                "org",
                format!("/api/organization/{}/accounts?start=0&limit=200", z.id),
            );
            c.expect = expect;
            c.legit = legit;
            c.twins
                .extend(zoid_twin(p, who, "GET org accounts", z, "org", None));
            c.masks = vec![z.id.clone()];
            c.check = Check::Accounts {
                zuids: z
                    .org
                    .map(|o| w.org_users[o as usize].clone())
                    .unwrap_or_default(),
            };
            m.push(c);
            // GET /api/organization/{zoid}/accounts/{zuid or email}
            if z.label == "negative" || z.label == "overflow" {
                continue;
            }
            for u in &w.users {
                let mut c = read(
                    who,
                    "GET org account",
                    &url,
                    &format!("{} {}", u.label, u.id.contains('@')),
                    format!("/api/organization/{}/accounts/{}", z.id, u.id),
                );
                let reach = reach && u.owner.as_ref().is_some_and(|o| z.org == Some(o.1));
                c.expect = read_expectation(z.valid && u.valid, admin_gate, reach);
                c.legit = reach && admin_gate.is_none();
                if z.valid && u.valid {
                    if u.owner.is_some() && !c.legit {
                        c.twins.push(key(
                            who,
                            "GET org account",
                            &url,
                            &format!("missing {}", u.id.contains('@')),
                            None,
                        ));
                    }
                    c.twins
                        .extend(zoid_twin(p, who, "GET org account", z, &c.target, None));
                }
                c.masks = vec![z.id.clone(), u.id.clone()];
                c.check = Check::Account {
                    id: String::new(),
                    zuid: u.owner.as_ref().map(|o| o.0.clone()).unwrap_or_default(),
                };
                m.push(c);
            }
        }
    }
}

impl World {
    fn zoid_of(&self, org: Org) -> &str {
        match org {
            Org::A => ZOID,
            Org::B => &self.zoid_b,
        }
    }

    fn super_admin(&self, org: Org) -> &Client {
        match org {
            Org::A => &self.admin_a,
            Org::B => &self.admin_b,
        }
    }
}

/// Sends every case, at most [`IN_FLIGHT`] at a time; the answers in the cases' order.
async fn send_all(w: &World, cases: &[&Case]) -> Vec<Reply> {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for (i, c) in cases.iter().enumerate() {
        let client = w.principals[c.who].client.clone();
        let (method, path) = (c.method.clone(), c.path.clone());
        let body = c.body.as_ref().map(|b| b.to_string().into_bytes());
        let slot = slots.clone().acquire_owned().await.expect("semaphore");
        tasks.spawn(async move {
            let r = client
                .send(method, &path, body)
                .await
                .expect("request sent");
            drop(slot);
            (i, r)
        });
    }
    let mut replies: Vec<Option<Reply>> = vec![None; cases.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, r) = done.expect("request task");
        replies[i] = Some(r);
    }
    replies.into_iter().map(|r| r.expect("an answer")).collect()
}

/// The answer with the ids of `c`'s path replaced in `moreInfo`.
fn masked(c: &Case, r: &Reply) -> Value {
    let mut body = r.body.clone();
    if let Some(more) = r.body["data"]["moreInfo"].as_str() {
        let mut masks = c.masks.clone();
        masks.sort_by_key(|m| std::cmp::Reverse(m.len()));
        let mut more = more.to_string();
        for id in masks.iter().filter(|m| m.len() > 2) {
            more = more.replace(id.as_str(), "<id>");
        }
        body["data"]["moreInfo"] = more.into();
    }
    body
}

/// What is wrong with the answer `r` to `c`, if anything.
fn judge(c: &Case, r: &Reply) -> Option<String> {
    if r.body["status"]["code"] != json!(r.status) {
        return Some(format!("status.code is not the HTTP status {}", r.status));
    }
    match c.expect {
        Err((status, code)) => {
            if r.status != status || r.error_code() != code {
                return Some(format!("expected {status} {code}"));
            }
            if c.rule_refusal {
                let more = r.more_info();
                if !["confirmKey", "mailForward", "sendMailId"]
                    .iter()
                    .any(|field| more.starts_with(field))
                {
                    return Some("the rule's 400 does not name its field".into());
                }
            } else if code == ZUID_NOT_OWNER.1 && !r.more_info().contains("zuid") {
                return Some("the 400 does not name zuid".into());
            }
            None
        }
        Ok(()) if r.status != 200 => Some("expected 200".into()),
        Ok(()) => match &c.check {
            Check::Nothing => None,
            Check::Update { mode, .. } => {
                let listed = r.data().to_string();
                match *mode {
                    "addsendmaildetails" if !listed.contains(ADDED) => {
                        Some(format!("{ADDED} is not among the identities"))
                    }
                    "deletesendmaildetails" if listed.contains(DELETABLE) => {
                        Some(format!("{DELETABLE} is still among the identities"))
                    }
                    "addEmailAlias" if !listed.contains(&format!("\"{ALIAS}.")) => {
                        Some(format!("{ALIAS}@… is not among the aliases added"))
                    }
                    _ => None,
                }
            }
            Check::Account { id, zuid } => {
                let d = r.data();
                if (!id.is_empty() && id_text(&d["accountId"]) != *id)
                    || id_text(&d["zuid"]) != *zuid
                {
                    Some(format!("expected account {id} of user {zuid}"))
                } else {
                    None
                }
            }
            Check::Org { zoid } => (id_text(&r.data()["zoid"]) != *zoid)
                .then(|| format!("expected organization {zoid}")),
            Check::Accounts { zuids } => {
                let list = r.data().as_array().cloned().unwrap_or_default();
                let foreign: Vec<String> = list
                    .iter()
                    .map(|a| id_text(&a["zuid"]))
                    .filter(|z| !zuids.contains(z))
                    .collect();
                if list.is_empty() || !foreign.is_empty() {
                    Some(format!(
                        "lists users {foreign:?} outside {zuids:?} (or none)"
                    ))
                } else {
                    None
                }
            }
        },
    }
}

/// Undoes what a successful update did when it would make a later success impossible.
async fn undo(w: &World, c: &Case) {
    let Check::Update { acct, mode } = c.check else {
        return;
    };
    let a = &w.accts[acct];
    // (body, whether its path names the zuid)
    let (body, by_zuid) = match mode {
        "deletesendmaildetails" => (deletable_body(), false),
        "disableMailAccount" => (json!({"mode": "enableMailAccount"}), false),
        "addEmailAlias" => (
            json!({"mode": "deleteEmailAlias", "emailAlias": [a.alias(ALIAS)]}),
            true,
        ),
        "deleteEmailAlias" => (deletable_alias_body(a), true),
        "addMailForward" => (
            json!({"mode": "deleteMailForward", "mailForward": ADDED_FORWARD}),
            false,
        ),
        "deleteMailForward" => (
            json!({"mode": "addMailForward", "mailForward": DELETABLE_FORWARD}),
            false,
        ),
        _ => return,
    };
    let path_id = if by_zuid { &a.zuid } else { &a.id };
    let r = w
        .super_admin(a.org)
        .update_org_account(w.zoid_of(a.org), path_id, &body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "undoing {mode} on {}: {}", a.id, r.body);
}

async fn authorization_matrix() {
    // `resetPassword` hashes its password before the store answers, even for a target out
    // of reach: the batch asks for about a hundred hashes at once, which queue for the
    // argon2 slots longer than the default wait.
    // The forwarding modes mail their keys to a port nothing listens on: the change is
    // made and the answer says the mail was not sent, at once. Every request that may
    // update takes a mail slot before the store checks whom it reaches; the matrix sends
    // hundreds at once, so it gets as many slots (the limit is tested in forwarding.rs).
    let nowhere = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let app = TestApp::demo_on(
        Db::fresh(),
        &[
            "--argon2-wait-ms",
            "120000",
            "--mail-submit",
            &nowhere,
            "--mail-submit-slots",
            "100000",
        ],
    );
    let w = setup(&app).await;
    let mut m = Matrix::default();
    update_cases(&w, &mut m);
    read_cases(&w, &mut m);
    for c in &m.cases {
        for t in &c.twins {
            assert!(m.index.contains_key(t), "no twin {t:?} in the matrix");
        }
    }
    let dana_before = w
        .admin_a
        .org_account(ZOID, &w.dana_zuid)
        .await
        .unwrap()
        .body;
    let started = Instant::now();

    // 1. Every denial and every read, concurrently, between two snapshots.
    let (changes, batch): (Vec<&Case>, Vec<&Case>) = m
        .cases
        .iter()
        .partition(|c| c.method == Method::PUT && c.expect.is_ok());
    let before = app.snapshot();
    assert!(before.contains("accounts: "), "the snapshot sees no data");
    let batch_replies = send_all(&w, &batch).await;
    let after = app.snapshot();
    let batch_time = started.elapsed();

    // 2. The updates that must succeed, one at a time, each undone where needed.
    let mut change_replies = Vec::new();
    for c in &changes {
        let r = put_body(
            &w.principals[c.who].client,
            &c.path,
            c.body.as_ref().unwrap(),
        )
        .await;
        if r.status == 200 {
            undo(&w, c).await;
        }
        change_replies.push(r);
    }
    let elapsed = started.elapsed();

    let all: Vec<(&Case, &Reply)> = batch
        .iter()
        .copied()
        .zip(&batch_replies)
        .chain(changes.iter().copied().zip(&change_replies))
        .collect();
    let reply_of: HashMap<Key, &Reply> = all.iter().map(|(c, r)| (c.key(), *r)).collect();
    let case_of: HashMap<Key, &Case> = all.iter().map(|(c, _)| (c.key(), *c)).collect();

    let mut failures = Vec::new();
    let mut cross = Vec::new();
    let mut compared = 0;
    let mut statuses: HashMap<(u16, String), usize> = HashMap::new();
    if before != after {
        let old: std::collections::BTreeSet<&str> = before.lines().collect();
        let new: std::collections::BTreeSet<&str> = after.lines().collect();
        failures.push(format!(
            "the denials changed the database:\n  gone: {:?}\n  new: {:?}",
            old.difference(&new).collect::<Vec<_>>(),
            new.difference(&old).collect::<Vec<_>>()
        ));
    }

    for (c, r) in &all {
        *statuses
            .entry((r.status, r.error_code().to_string()))
            .or_default() += 1;
        if r.status >= 500 {
            failures.push(format!(
                "{}: a server error {} {}",
                c.describe(&w.principals),
                r.status,
                r.body
            ));
            continue;
        }
        if (200..300).contains(&r.status) && !c.legit {
            cross.push(format!(
                "{}: {} {}",
                c.describe(&w.principals),
                r.status,
                r.body
            ));
        }
        if let Some(why) = judge(c, r) {
            failures.push(format!(
                "{}: {why}; got {} {}",
                c.describe(&w.principals),
                r.status,
                r.body
            ));
        }
        for t in &c.twins {
            compared += 1;
            let (tc, tr) = (case_of[t], reply_of[t]);
            if (r.status, masked(c, r)) != (tr.status, masked(tc, tr)) {
                failures.push(format!(
                    "{}: out of reach and absent answer differently:\n    {} {}\n    {}: {} {}",
                    c.describe(&w.principals),
                    r.status,
                    r.body,
                    tc.describe(&w.principals),
                    tr.status,
                    tr.body
                ));
            }
        }
    }
    // The successes landed on their targets, and nowhere else.
    for a in &w.accts {
        let r = w
            .super_admin(a.org)
            .org_account(w.zoid_of(a.org), &a.zuid)
            .await
            .unwrap();
        let d = r.data();
        let identities = identity_addresses(d);
        let addresses = d["emailAddress"].to_string();
        let ok = d["primaryEmailAddress"] == json!(a.new_address)
            && d["enabled"] == json!(true)
            && d["outgoingBlocked"] == json!(true)
            && d["incomingBlocked"] == json!(true)
            && d["imapAccessEnabled"] == json!(false)
            && d["popAccessEnabled"] == json!(false)
            && identities.iter().any(|i| i == ADDED)
            && identities.iter().any(|i| i == DELETABLE)
            && addresses.contains(&format!("\"{}\"", a.alias(DELETABLE_ALIAS)))
            && !addresses.contains(&format!("\"{}\"", a.alias(ALIAS)));
        if !ok {
            failures.push(format!(
                "{} does not show the matrix's updates: {}",
                a.label, r.body
            ));
        }
    }
    let dana_after = w
        .admin_a
        .org_account(ZOID, &w.dana_zuid)
        .await
        .unwrap()
        .body;
    if dana_after != dana_before {
        failures.push(format!(
            "Dana's account, never a target, changed:\n  {dana_before}\n  {dana_after}"
        ));
    }

    let backend = match Backend::current() {
        Backend::Sqlite => "SQLite",
        Backend::Postgres { .. } => "PostgreSQL",
    };
    let mut tally: Vec<_> = statuses.into_iter().collect();
    tally.sort();
    eprintln!(
        "authorization matrix: {} cases, {} cross-org/user successes (on {}: {} updates and {} reads by {} principals, {} updates that succeed, {} elsewhere/absent comparisons; denials and reads in {:.1?}, all in {:.1?})",
        all.len(),
        cross.len(),
        backend,
        all.iter().filter(|(c, _)| c.method == Method::PUT).count(),
        all.iter().filter(|(c, _)| c.method == Method::GET).count(),
        w.principals.len(),
        changes.len(),
        compared,
        batch_time,
        elapsed
    );
    eprintln!("answers: {tally:?}");
    assert!(
        cross.is_empty(),
        "{} cross-organization or cross-user successes:\n{}",
        cross.len(),
        cross.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} failures (the first 40):\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
