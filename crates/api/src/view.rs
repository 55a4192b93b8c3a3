//! The response shapes of the live service: the account object (contract §6) and the
//! organization object (§7). Ids that Zoho sends as strings are strings here too.

use mailplane_domain::{AccountKind, Identity, IdentityMode};
use mailplane_store::{AccountView, AuditEntry, OrgView, SecurityEvent};
use serde_json::{json, Value};

pub fn identity(i: &Identity) -> Value {
    let mut v = json!({
        "sendMailId": i.id.to_string(),
        "fromAddress": i.from_address.as_str(),
        "displayName": i.display_name,
        "mode": i.mode.as_str(),
        // Relay credentials are not checked against the relay yet, so extfrom identities
        // are reported as awaiting validation; the others need none.
        "validated": i.mode != IdentityMode::ExtFrom,
        "validationRequired": i.mode == IdentityMode::ExtFrom,
        "validationState": if i.mode == IdentityMode::ExtFrom { "pending" } else { "validated" },
        "status": true,
    });
    if let Some(r) = &i.relay {
        v["serverName"] = json!(r.server_name);
        v["serverPort"] = json!(r.server_port);
        v["userName"] = json!(r.user_name);
        v["smtpConnection"] = json!(r.smtp_connection.as_str());
    }
    v
}

pub fn identities(list: &[Identity]) -> Value {
    Value::Array(list.iter().map(identity).collect())
}

pub fn account(a: &AccountView, base: &str) -> Value {
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
        "sendMailDetails": identities(&a.identities),
        "enabled": a.enabled,
        "status": a.enabled,
        "mailboxStatus": if a.enabled { "enabled" } else { "disabled" },
        "incomingBlocked": a.incoming_blocked,
        "outgoingBlocked": a.outgoing_blocked,
        "imapAccessEnabled": a.imap_enabled,
        "popAccessEnabled": a.pop_enabled,
        "activeSyncEnabled": a.activesync_enabled,
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
    })
}

pub fn security_event(e: &SecurityEvent) -> Value {
    json!({
        "time": e.at_ms,
        "requestId": e.request_id,
        "clientAddress": e.client_addr,
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "errorCode": e.error_code,
        "actor": { "zuid": e.actor_zuid.map(|z| z.as_i64()) },
    })
}
