//! The response shapes of the live service: the account object (contract §6) and the
//! organization object (§7). Ids that Zoho sends as strings are strings here too.

use mailplane_domain::{
    AccountKind, AliasId, EmailAddress, Identity, IdentityMode, MailForward, RelayState,
};
use mailplane_store::{AccountView, AuditEntry, OrgView, SecurityEvent};
use serde::Serialize;
use serde_json::{json, Value};

// The account and identity objects are typed rather than built as `Value`s: they are
// the bodies of the hottest reads, and building a map of owned strings for each answer
// cost more than the database read behind it. Fields are declared in the byte order of
// their names, the order a `Value` map writes them in, so the bytes are what they were.

/// One `sendMailDetails` element.
#[derive(Serialize)]
pub struct IdentityView<'a> {
    /// What became of the key mailed to the address by the change (`addsendmaildetails`
    /// answers only).
    #[serde(rename = "confirmationMail", skip_serializing_if = "Option::is_none")]
    confirmation_mail: Option<&'a str>,
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "fromAddress")]
    from_address: &'a str,
    mode: &'a str,
    /// Whether the owner of the address confirmed it (mailplane's addition; always true
    /// for the account's own addresses).
    #[serde(rename = "ownerConfirmed")]
    owner_confirmed: bool,
    #[serde(rename = "sendMailId")]
    send_mail_id: String,
    #[serde(rename = "serverName", skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    #[serde(rename = "serverPort", skip_serializing_if = "Option::is_none")]
    server_port: Option<u16>,
    #[serde(rename = "smtpConnection", skip_serializing_if = "Option::is_none")]
    smtp_connection: Option<&'a str>,
    status: bool,
    /// Why `status` is false: the identity is stored but the mail server does not honour
    /// it (mailplane's addition; see the ownership rules in docs/security.md).
    #[serde(rename = "statusReason", skip_serializing_if = "Option::is_none")]
    status_reason: Option<String>,
    #[serde(rename = "userName", skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
    validated: bool,
    /// When the relay's last check ended (epoch ms), for `extfrom`.
    #[serde(rename = "validatedTime", skip_serializing_if = "Option::is_none")]
    validated_time: Option<i64>,
    /// Why the relay's last check failed.
    #[serde(rename = "validationError", skip_serializing_if = "Option::is_none")]
    validation_error: Option<&'a str>,
    #[serde(rename = "validationRequired")]
    validation_required: bool,
    #[serde(rename = "validationState")]
    validation_state: &'static str,
}

/// `validationState`: `validated` once nothing is left to check, `failed` when an
/// `extfrom` relay failed its last check, `pending` otherwise.
pub(crate) fn validation_state(i: &Identity) -> &'static str {
    if i.is_validated() {
        "validated"
    } else if i.mode == IdentityMode::ExtFrom && i.verification.relay.state == RelayState::Failed {
        "failed"
    } else {
        "pending"
    }
}

pub fn identity<'a>(i: &'a Identity, mail: Option<&'a str>) -> IdentityView<'a> {
    let relay = i.relay.as_ref();
    let validated = i.is_validated();
    let check = (i.mode == IdentityMode::ExtFrom).then_some(&i.verification.relay);
    IdentityView {
        confirmation_mail: mail,
        display_name: &i.display_name,
        from_address: i.from_address.as_str(),
        mode: i.mode.as_str(),
        owner_confirmed: i.verification.owner_confirmed,
        send_mail_id: i.id.to_string(),
        server_name: relay.map(|r| r.server_name.as_str()),
        server_port: relay.map(|r| r.server_port),
        smtp_connection: relay.map(|r| r.smtp_connection.as_str()),
        status: i.may_send(),
        status_reason: i
            .state
            .reason()
            .map(str::to_string)
            .or_else(|| i.unverified_reason()),
        user_name: relay.map(|r| r.user_name.as_str()),
        validated,
        validated_time: check.and_then(|c| c.checked_ms),
        validation_error: check.and_then(|c| c.error.as_deref()),
        validation_required: !validated,
        validation_state: validation_state(i),
    }
}

pub fn identities(list: &[Identity]) -> Vec<IdentityView<'_>> {
    list.iter().map(|i| identity(i, None)).collect()
}

/// The identities after a change, each with what became of the key mailed for it.
pub fn identities_after<'a>(
    list: &'a [Identity],
    mailed: &'a [(EmailAddress, String)],
) -> Vec<IdentityView<'a>> {
    list.iter()
        .map(|i| {
            let outcome = mailed
                .iter()
                .find(|(to, _)| to == &i.from_address)
                .map(|(_, o)| o.as_str());
            identity(i, outcome)
        })
        .collect()
}

/// The addresses a change added, as `addEmailAlias` answers them: one object per address,
/// the address its key and its id (a string, as every 19-digit id is) its value.
pub fn added_addresses(list: &[(EmailAddress, AliasId)]) -> Vec<Value> {
    list.iter()
        .map(|(address, id)| json!({ address.as_str(): id.to_string() }))
        .collect()
}

/// One `emailAddress` element.
#[derive(Serialize)]
pub struct AddressView<'a> {
    #[serde(rename = "isAlias")]
    is_alias: bool,
    #[serde(rename = "isConfirmed")]
    is_confirmed: bool,
    #[serde(rename = "isPrimary")]
    is_primary: bool,
    #[serde(rename = "mailId")]
    mail_id: &'a str,
}

/// One `mailForward` element.
#[derive(Serialize)]
pub struct ForwardView<'a> {
    /// The answer of `addMailForward` and `resendMailForwardVerficationMail`: whether the
    /// key went to the mail server ("sent") or why not (a mailplane addition).
    #[serde(rename = "confirmationMail", skip_serializing_if = "Option::is_none")]
    confirmation_mail: Option<&'a str>,
    /// What `disableMailForward` said (a mailplane addition).
    #[serde(rename = "disabledReason", skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<&'a str>,
    #[serde(rename = "mailForwardTo")]
    mail_forward_to: &'a str,
    /// `UNCONFIRMED` until the key comes back, then `ENABLED` or `DISABLED`.
    status: &'static str,
    /// `internal` for a target in the account's own domain, `external` otherwise.
    #[serde(rename = "type")]
    kind: &'static str,
}

fn forward<'a>(
    f: &'a MailForward,
    account: Option<&EmailAddress>,
    mailed: Option<&'a str>,
) -> ForwardView<'a> {
    let internal = account.is_some_and(|a| a.domain() == f.to.domain());
    ForwardView {
        confirmation_mail: mailed,
        disabled_reason: f.disabled_reason.as_deref().filter(|_| !f.enabled),
        mail_forward_to: f.to.as_str(),
        status: mailplane_domain::forward_status(f),
        kind: if internal { "internal" } else { "external" },
    }
}

/// The forwards of an account after a forwarding mode, with the outcome of each key mailed.
pub fn forwards_after<'a>(
    list: &'a [MailForward],
    account: Option<&EmailAddress>,
    mailed: &'a [(EmailAddress, String)],
) -> Vec<ForwardView<'a>> {
    list.iter()
        .map(|f| {
            let outcome = mailed
                .iter()
                .find(|(to, _)| to == &f.to)
                .map(|(_, o)| o.as_str());
            forward(f, account, outcome)
        })
        .collect()
}

/// The account object (contract §6).
#[derive(Serialize)]
pub struct AccountJson<'a> {
    #[serde(rename = "URI")]
    uri: String,
    #[serde(rename = "accountCreationTime")]
    account_creation_time: i64,
    #[serde(rename = "accountDisplayName")]
    account_display_name: &'a str,
    #[serde(rename = "accountId")]
    account_id: String,
    #[serde(rename = "accountName")]
    account_name: &'a str,
    #[serde(rename = "activeSyncEnabled")]
    active_sync_enabled: bool,
    country: &'a str,
    /// `deleteZohoMailCopy`: while a forward is in effect, the mailbox keeps no copy.
    #[serde(rename = "deleteZohoMailCopy")]
    delete_zoho_mail_copy: bool,
    department: &'a str,
    designation: &'a str,
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "emailAddress")]
    email_address: Vec<AddressView<'a>>,
    #[serde(rename = "employeeId")]
    employee_id: &'a str,
    enabled: bool,
    extension: &'a str,
    #[serde(rename = "firstName")]
    first_name: &'a str,
    #[serde(rename = "imapAccessEnabled")]
    imap_access_enabled: bool,
    #[serde(rename = "incomingBlocked")]
    incoming_blocked: bool,
    #[serde(rename = "incomingUserName")]
    incoming_user_name: &'a str,
    language: &'a str,
    #[serde(rename = "lastLogin")]
    last_login: i64,
    #[serde(rename = "lastName")]
    last_name: &'a str,
    #[serde(rename = "mailForward")]
    mail_forward: Vec<ForwardView<'a>>,
    #[serde(rename = "mailboxAddress")]
    mailbox_address: &'a str,
    #[serde(rename = "mailboxCreationTime")]
    mailbox_creation_time: i64,
    #[serde(rename = "mailboxStatus")]
    mailbox_status: &'static str,
    #[serde(rename = "mobileNumber")]
    mobile_number: &'a str,
    /// The user's password was set as one-time (a mailplane addition).
    #[serde(rename = "oneTimePassword")]
    one_time_password: bool,
    #[serde(rename = "outgoingBlocked")]
    outgoing_blocked: bool,
    #[serde(rename = "popAccessEnabled")]
    pop_access_enabled: bool,
    #[serde(rename = "primaryEmailAddress")]
    primary_email_address: &'a str,
    role: &'a str,
    #[serde(rename = "sendMailDetails")]
    send_mail_details: Vec<IdentityView<'a>>,
    sequence: u32,
    status: bool,
    #[serde(rename = "timeZone")]
    time_zone: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    /// When the user expires (`userExpiry` on creation), epoch milliseconds; -1 for never
    /// (a mailplane addition, in the form of the other times).
    #[serde(rename = "userExpiry")]
    user_expiry: i64,
    zoid: u64,
    zuid: u64,
}

pub fn account<'a>(a: &'a AccountView, base: &str) -> AccountJson<'a> {
    let primary = a.primary_address().map(|p| p.as_str()).unwrap_or_default();
    let email_address = if a.kind == AccountKind::Hosted {
        a.addresses
            .iter()
            .map(|x| AddressView {
                is_alias: !x.is_primary,
                is_confirmed: true,
                is_primary: x.is_primary,
                mail_id: x.address.as_str(),
            })
            .collect()
    } else {
        a.external_address
            .iter()
            .map(|x| AddressView {
                is_alias: false,
                is_confirmed: true,
                is_primary: true,
                mail_id: x.as_str(),
            })
            .collect()
    };
    AccountJson {
        uri: format!("{base}/api/accounts/{}", a.account_id),
        account_creation_time: a.created_ms,
        account_display_name: &a.display_name,
        account_id: a.account_id.to_string(),
        account_name: primary.split('@').next().unwrap_or_default(),
        active_sync_enabled: a.activesync_enabled,
        country: &a.country,
        delete_zoho_mail_copy: a.forward_delete_copy,
        department: &a.profile.department,
        designation: &a.profile.designation,
        display_name: &a.display_name,
        email_address,
        employee_id: &a.profile.employee_id,
        enabled: a.enabled,
        extension: &a.profile.extension,
        first_name: &a.first_name,
        imap_access_enabled: a.imap_enabled,
        incoming_blocked: a.incoming_blocked,
        incoming_user_name: primary,
        language: &a.language,
        last_login: a.last_login_ms,
        last_name: &a.last_name,
        mail_forward: a
            .forwards
            .iter()
            .map(|f| forward(f, a.primary_address(), None))
            .collect(),
        mailbox_address: primary,
        mailbox_creation_time: a.created_ms,
        mailbox_status: if a.enabled { "enabled" } else { "disabled" },
        mobile_number: &a.profile.mobile_number,
        one_time_password: a.one_time_password,
        outgoing_blocked: a.outgoing_blocked,
        pop_access_enabled: a.pop_enabled,
        primary_email_address: primary,
        role: a.role.as_str(),
        send_mail_details: identities(&a.identities),
        sequence: a.sequence,
        status: a.enabled,
        time_zone: &a.time_zone,
        kind: a.kind.as_str(),
        user_expiry: a.expires_ms.unwrap_or(-1),
        zoid: a.zoid.get(),
        zuid: a.zuid.get(),
    }
}

pub fn organization(o: &OrgView, base: &str) -> Value {
    json!({
        "zoid": o.zoid.get(),
        "orgName": o.name,
        "primaryDomainName": o.primary_domain,
        "domains": o.domains,
        "usersCount": o.users_count,
        "mailboxCount": o.mailbox_count,
        "superAdmin": o.super_admin.as_ref().map(|a| a.as_str()),
        "orgCreationTime": o.created_ms,
        "URI": format!("{base}/api/organization/{}", o.zoid),
    })
}

pub fn audit_entry(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "time": e.at_ms,
        "requestId": e.request_id,
        "actor": { "zuid": e.actor_zuid, "tokenId": e.actor_token_id },
        "clientAddress": e.client_addr,
        "target": { "zuid": e.zuid, "accountId": e.account_id.map(|a| a.to_string()) },
        "mode": e.mode,
        "before": e.before,
        "after": e.after,
        "via": e.via,
    })
}

pub fn security_event(e: &SecurityEvent) -> Value {
    json!({
        "time": e.at_ms,
        "firstTime": e.first_ms,
        "count": e.count,
        "requestId": e.request_id,
        "clientAddress": e.client_addr,
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "errorCode": e.error_code,
        "actor": { "zuid": e.actor_zuid.map(|z| z.as_i64()) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailplane_domain::{
        AccountAddress, AccountId, EmailAddress, IdentityState, InertReason, Relay, RelayCheck,
        Role, SendMailId, SmtpConnection, UserProfile, Verification, Zoid, Zuid,
    };

    // The views as they were built before they were typed: the typed ones must write the
    // same bytes.
    fn value_identity(i: &Identity) -> Value {
        let mut v = json!({
            "sendMailId": i.id.to_string(),
            "fromAddress": i.from_address.as_str(),
            "displayName": i.display_name,
            "mode": i.mode.as_str(),
            "validated": i.is_validated(),
            "validationRequired": !i.is_validated(),
            "validationState": validation_state(i),
            "ownerConfirmed": i.verification.owner_confirmed,
            "status": i.may_send(),
        });
        if let Some(why) = i
            .state
            .reason()
            .map(str::to_string)
            .or_else(|| i.unverified_reason())
        {
            v["statusReason"] = json!(why);
        }
        if i.mode == IdentityMode::ExtFrom {
            if let Some(t) = i.verification.relay.checked_ms {
                v["validatedTime"] = json!(t);
            }
            if let Some(e) = &i.verification.relay.error {
                v["validationError"] = json!(e);
            }
        }
        if let Some(r) = &i.relay {
            v["serverName"] = json!(r.server_name);
            v["serverPort"] = json!(r.server_port);
            v["userName"] = json!(r.user_name);
            v["smtpConnection"] = json!(r.smtp_connection.as_str());
        }
        v
    }

    fn value_identities(list: &[Identity]) -> Value {
        Value::Array(list.iter().map(value_identity).collect())
    }

    fn value_account(a: &AccountView, base: &str) -> Value {
        let primary = a
            .primary_address()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let addresses: Vec<Value> = if a.kind == AccountKind::Hosted {
            a.addresses
                .iter()
                .map(|x| json!({ "mailId": x.address.as_str(), "isPrimary": x.is_primary, "isAlias": !x.is_primary, "isConfirmed": true }))
                .collect()
        } else {
            a.external_address
                .iter()
                .map(|x| json!({ "mailId": x.as_str(), "isPrimary": true, "isAlias": false, "isConfirmed": true }))
                .collect()
        };
        let account_name = primary.split('@').next().unwrap_or_default().to_string();
        json!({
            "accountId": a.account_id.to_string(),
            "zuid": a.zuid.get(),
            "zoid": a.zoid.get(),
            "accountName": account_name,
            "accountDisplayName": a.display_name,
            "displayName": a.display_name,
            "firstName": a.first_name,
            "lastName": a.last_name,
            "role": a.role.as_str(),
            "type": a.kind.as_str(),
            "primaryEmailAddress": primary,
            "mailboxAddress": primary,
            "incomingUserName": primary,
            "emailAddress": addresses,
            "sendMailDetails": value_identities(&a.identities),
            "enabled": a.enabled,
            "status": a.enabled,
            "mailboxStatus": if a.enabled { "enabled" } else { "disabled" },
            "incomingBlocked": a.incoming_blocked,
            "outgoingBlocked": a.outgoing_blocked,
            "imapAccessEnabled": a.imap_enabled,
            "popAccessEnabled": a.pop_enabled,
            "activeSyncEnabled": a.activesync_enabled,
            "oneTimePassword": a.one_time_password,
            "deleteZohoMailCopy": a.forward_delete_copy,
            "mailForward": a.forwards.iter().map(|f| {
                let mut v = json!({
                    "mailForwardTo": f.to.as_str(),
                    "status": mailplane_domain::forward_status(f),
                    "type": if primary.ends_with(&format!("@{}", f.to.domain())) { "internal" } else { "external" },
                });
                if let Some(r) = f.disabled_reason.as_deref().filter(|_| !f.enabled) {
                    v["disabledReason"] = json!(r);
                }
                v
            }).collect::<Vec<_>>(),
            "userExpiry": a.expires_ms.unwrap_or(-1),
            "employeeId": a.profile.employee_id,
            "department": a.profile.department,
            "designation": a.profile.designation,
            "mobileNumber": a.profile.mobile_number,
            "extension": a.profile.extension,
            "sequence": a.sequence,
            "accountCreationTime": a.created_ms,
            "mailboxCreationTime": a.created_ms,
            "lastLogin": a.last_login_ms,
            "timeZone": a.time_zone,
            "language": a.language,
            "country": a.country,
            "URI": format!("{base}/api/accounts/{}", a.account_id),
        })
    }

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn sample(kind: AccountKind) -> AccountView {
        AccountView {
            account_id: AccountId::new(2560636000000008002).unwrap(),
            zuid: Zuid::new(11111111).unwrap(),
            zoid: Zoid::new(1234567).unwrap(),
            role: Role::Admin,
            first_name: "Rebecca \"Becky\"".into(),
            last_name: "Anderson".into(),
            display_name: "Rebecca <Anderson> ü".into(),
            kind,
            sequence: 2,
            external_address: (kind != AccountKind::Hosted)
                .then(|| addr("rebecca@pop.example.com")),
            enabled: false,
            outgoing_blocked: true,
            incoming_blocked: false,
            imap_enabled: true,
            pop_enabled: false,
            activesync_enabled: true,
            created_ms: 1_700_000_000_123,
            last_login_ms: -1,
            time_zone: "Asia/Kolkata".into(),
            language: "en".into(),
            country: "in".into(),
            one_time_password: true,
            forward_delete_copy: true,
            forwards: vec![
                MailForward {
                    to: addr("archive@zylker.com"),
                    confirmed: true,
                    enabled: false,
                    disabled_reason: Some("quiet \"week\"".into()),
                    pending_key: None,
                },
                MailForward {
                    to: addr("paula@example.com"),
                    confirmed: false,
                    enabled: true,
                    disabled_reason: None,
                    pending_key: None,
                },
            ],
            expires_ms: Some(1_800_000_000_000),
            profile: UserProfile {
                employee_id: "E-1024".into(),
                department: "Sales & \"Support\"".into(),
                designation: "Lead".into(),
                mobile_number: "+1 555 0100".into(),
                extension: "42".into(),
            },
            addresses: vec![
                AccountAddress {
                    address: addr("becky@zylker.com"),
                    is_primary: true,
                },
                AccountAddress {
                    address: addr("rebecca.alias@zylker.com"),
                    is_primary: false,
                },
            ],
            identities: vec![
                Identity {
                    id: SendMailId::new(1).unwrap(),
                    from_address: addr("becky@zylker.com"),
                    display_name: "Rebecca".into(),
                    mode: IdentityMode::Mailbox,
                    relay: None,
                    state: IdentityState::Active,
                    verification: Verification::OWN,
                },
                Identity {
                    id: SendMailId::new(5).unwrap(),
                    from_address: addr("shared@example.org"),
                    display_name: "Backup".into(),
                    mode: IdentityMode::BackupAcc,
                    relay: None,
                    state: IdentityState::Unconfirmed,
                    verification: Verification {
                        owner_confirmed: false,
                        pending_key: None,
                        relay: RelayCheck::PENDING,
                    },
                },
                Identity {
                    id: SendMailId::new(7).unwrap(),
                    from_address: addr("rebecca.home@example.net"),
                    display_name: "Home".into(),
                    mode: IdentityMode::ExtFrom,
                    relay: Some(Relay {
                        server_name: "smtp.example.net".into(),
                        server_port: 587,
                        user_name: "rebecca".into(),
                        smtp_connection: SmtpConnection::parse("tls").unwrap(),
                    }),
                    state: IdentityState::Inert(InertReason::ForeignDomain),
                    verification: Verification {
                        owner_confirmed: true,
                        pending_key: None,
                        relay: RelayCheck {
                            state: RelayState::Failed,
                            error: Some("authentication failed: 535 5.7.8 no".into()),
                            checked_ms: Some(1_700_000_000_000),
                        },
                    },
                },
            ],
        }
    }

    #[test]
    fn typed_views_write_the_bytes_the_value_views_wrote() {
        for kind in [AccountKind::Hosted, AccountKind::Pop] {
            let a = sample(kind);
            let base = "https://mail.example.com";
            assert_eq!(
                serde_json::to_string(&account(&a, base)).unwrap(),
                serde_json::to_string(&value_account(&a, base)).unwrap()
            );
            assert_eq!(
                serde_json::to_string(&identities(&a.identities)).unwrap(),
                serde_json::to_string(&value_identities(&a.identities)).unwrap()
            );
        }
    }
}
