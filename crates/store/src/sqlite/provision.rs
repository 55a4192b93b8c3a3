//! Organizations, users and tokens: created by the command line (`bootstrap`, `--demo`,
//! `token`) and by the user-management endpoints.

use mailplane_domain::{
    check_new_user, check_removal, user_audit_view, AccountId, AccountKind, EmailAddress,
    IdentityMode, Role, RuleError, ScopeSet, Zoid, Zuid,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::json;

use super::{read, write};
use crate::secrets::{new_access_token, token_digest};
use crate::{
    now_ms, AccountView, Bootstrapped, DemoTokens, Grant, NewUser, Principal, ProvisionError,
    RequestMeta, StoreError, UserRef, WriteError,
};

pub(super) fn authenticate(c: &Connection, digest: &str) -> Result<Option<Principal>, StoreError> {
    let row = c
        .prepare_cached(
            "SELECT t.token_id, t.zuid, t.scopes, t.expires_ms, t.revoked_ms, u.zoid, u.role \
             FROM tokens t JOIN users u ON u.zuid = t.zuid WHERE t.digest = ?1",
        )?
        .query_row([digest], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .optional()?;
    let Some((token_id, zuid, scopes, expires_ms, revoked_ms, zoid, role)) = row else {
        return Ok(None);
    };
    if revoked_ms.is_some() || expires_ms.is_some_and(|e| e <= now_ms()) {
        return Ok(None);
    }
    Ok(Some(Principal {
        token_id,
        zuid: Zuid::from_db(zuid),
        zoid: Zoid::from_db(zoid),
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        scopes: ScopeSet::parse_list(&scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    }))
}

pub(super) fn issue_token(
    tx: &Transaction<'_>,
    zuid: Zuid,
    scopes: &ScopeSet,
    expires_in_secs: Option<u64>,
) -> Result<String, ProvisionError> {
    let exists = tx
        .prepare_cached("SELECT 1 FROM users WHERE zuid = ?1")?
        .exists([zuid.as_i64()])?;
    if !exists {
        return Err(ProvisionError::Refused(format!("no user has zuid {zuid}")));
    }
    let token = new_access_token();
    let now = now_ms();
    let expires = expires_in_secs.map(|s| now.saturating_add((s as i64).saturating_mul(1000)));
    tx.execute(
        "INSERT INTO tokens (digest, zuid, scopes, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![token_digest(&token), zuid.as_i64(), scopes.to_string(), now, expires],
    )?;
    Ok(token)
}

pub(super) fn revoke_token(tx: &Transaction<'_>, digest: &str) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE tokens SET revoked_ms = ?1 WHERE digest = ?2 AND revoked_ms IS NULL",
        params![now_ms(), digest],
    )?;
    Ok(n > 0)
}

fn insert_org(
    tx: &Transaction<'_>,
    zoid: Option<Zoid>,
    name: &str,
    domain: &str,
) -> Result<Zoid, ProvisionError> {
    let taken = tx
        .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
        .exists([domain])?;
    if taken {
        return Err(ProvisionError::Refused(format!(
            "the domain {domain} already belongs to an organization"
        )));
    }
    tx.execute(
        "INSERT INTO orgs (zoid, name, created_ms) VALUES (?1, ?2, ?3)",
        params![zoid.map(Zoid::as_i64), name, now_ms()],
    )?;
    let zoid = Zoid::from_db(tx.last_insert_rowid());
    tx.execute(
        "INSERT INTO domains (name, zoid, is_primary) VALUES (?1, ?2, 1)",
        params![domain, zoid.as_i64()],
    )?;
    Ok(zoid)
}

/// The display name a user gets when none is given: first and last name, or the local
/// part of the address.
fn default_display_name(u: &NewUser) -> String {
    let full = format!("{} {}", u.first_name, u.last_name)
        .trim()
        .to_string();
    if full.is_empty() {
        u.primary_email.local_part().to_string()
    } else {
        full
    }
}

/// Inserts a user with its hosted account, primary address and mailbox identity. The
/// caller has checked the address's domain; a taken address is a conflict.
fn insert_user(
    tx: &Transaction<'_>,
    zoid: Zoid,
    ids: Option<(Zuid, AccountId)>,
    u: &NewUser,
) -> Result<(Zuid, AccountId), WriteError> {
    let display = u
        .display_name
        .clone()
        .unwrap_or_else(|| default_display_name(u));
    let now = now_ms();
    let taken = tx
        .prepare_cached("SELECT 1 FROM addresses WHERE address = ?1")?
        .exists([u.primary_email.as_str()])?;
    if taken {
        return Err(RuleError::conflict(
            "primaryEmailAddress",
            format!(
                "primaryEmailAddress {} already belongs to another account",
                u.primary_email
            ),
        )
        .into());
    }
    tx.execute(
        "INSERT INTO users (zuid, zoid, role, first_name, last_name, display_name, password_hash, country, language, time_zone, created_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![ids.map(|i| i.0.as_i64()), zoid.as_i64(), u.role.as_str(), u.first_name, u.last_name, display, u.password_hash, u.country, u.language, u.time_zone, now],
    )?;
    let zuid = Zuid::from_db(tx.last_insert_rowid());
    tx.execute(
        "INSERT INTO accounts (account_id, zuid, kind, sequence, created_ms) VALUES (?1, ?2, 'ZOHO_ACCOUNT', 1, ?3)",
        params![ids.map(|i| i.1.as_i64()), zuid.as_i64(), now],
    )?;
    let account = AccountId::from_db(tx.last_insert_rowid());
    tx.execute(
        "INSERT INTO addresses (address, account_id, is_primary) VALUES (?1, ?2, 1)",
        params![u.primary_email.as_str(), account.as_i64()],
    )?;
    tx.execute(
        "INSERT INTO identities (account_id, from_address, display_name, mode, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account.as_i64(), u.primary_email.as_str(), display, IdentityMode::Mailbox.as_str(), now],
    )?;
    Ok((zuid, account))
}

fn insert_external_account(
    tx: &Transaction<'_>,
    zuid: Zuid,
    id: AccountId,
    kind: AccountKind,
    address: &str,
) -> Result<(), StoreError> {
    let seq: i64 = tx.query_row(
        "SELECT COALESCE(MAX(sequence), 0) + 1 FROM accounts WHERE zuid = ?1",
        [zuid.as_i64()],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO accounts (account_id, zuid, kind, sequence, external_address, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id.as_i64(), zuid.as_i64(), kind.as_str(), seq, address, now_ms()],
    )?;
    Ok(())
}

fn provision_err(e: WriteError) -> ProvisionError {
    match e {
        WriteError::Store(s) => ProvisionError::Store(s),
        other => ProvisionError::Refused(other.to_string()),
    }
}

pub(super) fn bootstrap(
    tx: &Transaction<'_>,
    org_name: &str,
    domain: &str,
    admin: EmailAddress,
    password_hash: Option<String>,
) -> Result<Bootstrapped, ProvisionError> {
    if admin.domain() != domain {
        return Err(ProvisionError::Refused(format!(
            "the admin address {admin} is not in the domain {domain}"
        )));
    }
    let zoid = insert_org(tx, None, org_name, domain)?;
    let mut user = NewUser::minimal(admin, Role::SuperAdmin);
    user.password_hash = password_hash;
    let (zuid, account_id) = insert_user(tx, zoid, None, &user).map_err(provision_err)?;
    let access_token = issue_token(tx, zuid, &ScopeSet::everything(), None)?;
    Ok(Bootstrapped {
        zoid,
        zuid,
        account_id,
        access_token,
    })
}

pub(super) fn seed_demo(tx: &Transaction<'_>) -> Result<DemoTokens, ProvisionError> {
    use crate::demo::*;
    let orgs: i64 = tx.query_row("SELECT COUNT(*) FROM orgs", [], |r| r.get(0))?;
    if orgs > 0 {
        return Err(ProvisionError::Refused(
            "--demo needs an empty data directory, and this one already holds data".into(),
        ));
    }
    let d = Demo::new()?;
    let zoid = insert_org(tx, Some(d.zoid), ORG_NAME, DOMAIN)?;
    let (admin_zuid, _) = insert_user(tx, zoid, None, &d.admin).map_err(provision_err)?;
    insert_user(
        tx,
        zoid,
        Some((d.rebecca_zuid, d.rebecca_account)),
        &d.rebecca,
    )
    .map_err(provision_err)?;
    insert_external_account(
        tx,
        d.rebecca_zuid,
        d.pop_account,
        AccountKind::Pop,
        POP_ADDRESS,
    )?;
    insert_external_account(
        tx,
        d.rebecca_zuid,
        d.imap_account,
        AccountKind::Imap,
        IMAP_ADDRESS,
    )?;
    Ok(DemoTokens {
        admin_token: issue_token(tx, admin_zuid, &ScopeSet::everything(), None)?,
        user_token: issue_token(tx, d.rebecca_zuid, &ScopeSet::user_all(), None)?,
    })
}

pub(super) fn create_user_via_api(
    tx: &Transaction<'_>,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    user: NewUser,
) -> Result<AccountView, WriteError> {
    if !grant.reaches_org(zoid) {
        return Err(WriteError::NotFound(format!(
            "organization {zoid} was not found"
        )));
    }
    let domains = read::org_domains(tx, zoid)?;
    check_new_user(grant.actor.role, user.role, &user.primary_email, &domains)?;
    let (zuid, account) = insert_user(tx, zoid, None, &user)?;
    let after = user_audit_view(
        zuid,
        Some(account),
        Some(user.primary_email.as_str()),
        user.role,
    );
    write::audit(
        tx,
        grant,
        meta,
        zoid,
        Some(zuid),
        Some(account),
        "createUser",
        &json!({}),
        &after,
    )?;
    read::account_view(tx, account)?
        .ok_or_else(|| StoreError::Corrupt("new account vanished".into()).into())
}

pub(super) fn delete_users(
    tx: &Transaction<'_>,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    users: Vec<UserRef>,
) -> Result<(), WriteError> {
    if !grant.reaches_org(zoid) {
        return Err(WriteError::NotFound(format!(
            "organization {zoid} was not found"
        )));
    }
    let mut victims: Vec<(Zuid, Role, Option<String>)> = Vec::new();
    for u in &users {
        let shown = match u {
            UserRef::Zuid(z) => z.to_string(),
            UserRef::Email(e) => e.to_string(),
        };
        let zuid = read::resolve_user(tx, zoid, u)?
            .ok_or_else(|| WriteError::NotFound(format!("user {shown} was not found")))?;
        if victims.iter().any(|v| v.0 == zuid) {
            continue;
        }
        let (role, primary): (String, Option<String>) = tx.query_row(
            "SELECT u.role, (SELECT d.address FROM accounts a JOIN addresses d ON d.account_id = a.account_id \
             WHERE a.zuid = u.zuid AND d.is_primary = 1) FROM users u WHERE u.zuid = ?1",
            [zuid.as_i64()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let role =
            Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?;
        victims.push((zuid, role, primary));
    }
    let super_admins: i64 = tx.query_row(
        "SELECT COUNT(*) FROM users WHERE zoid = ?1 AND role = 'super_admin'",
        [zoid.as_i64()],
        |r| r.get(0),
    )?;
    let removed: Vec<Role> = victims.iter().map(|v| v.1).collect();
    check_removal(grant.actor.role, &removed, super_admins as usize)?;
    for (zuid, role, primary) in &victims {
        tx.execute("DELETE FROM users WHERE zuid = ?1", [zuid.as_i64()])?;
        let before = user_audit_view(*zuid, None, primary.as_deref(), *role);
        write::audit(
            tx,
            grant,
            meta,
            zoid,
            Some(*zuid),
            None,
            "deleteUser",
            &before,
            &json!({}),
        )?;
    }
    Ok(())
}

/// Inserts synthetic users of `zoid` (see `crate::synthetic`); their ids, in order.
pub(super) fn insert_synthetic(
    tx: &Transaction<'_>,
    zoid: Zoid,
    users: &[crate::synthetic::PlannedUser],
) -> Result<Vec<(Zuid, AccountId)>, StoreError> {
    use crate::synthetic::{PlannedUser, USER_SCOPES};
    let now = now_ms();
    let mut user = tx.prepare_cached(
        "INSERT INTO users (zoid, role, first_name, last_name, display_name, country, language, time_zone, created_ms) \
         VALUES (?1, ?2, ?3, '', ?3, 'us', 'en', 'UTC', ?4)",
    )?;
    let mut account = tx.prepare_cached(
        "INSERT INTO accounts (zuid, kind, sequence, created_ms) VALUES (?1, 'ZOHO_ACCOUNT', 1, ?2)",
    )?;
    let mut address = tx.prepare_cached(
        "INSERT INTO addresses (address, account_id, is_primary) VALUES (?1, ?2, 1)",
    )?;
    let mut identity = tx.prepare_cached(
        "INSERT INTO identities (account_id, from_address, display_name, mode, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut token = tx.prepare_cached(
        "INSERT INTO tokens (digest, zuid, scopes, created_ms) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut ids = Vec::with_capacity(users.len());
    for u in users {
        let zuid = user.insert(params![
            zoid.as_i64(),
            PlannedUser::ROLE.as_str(),
            u.first_name,
            now
        ])?;
        let account_id = account.insert(params![zuid, now])?;
        address.execute(params![u.address, account_id])?;
        identity.execute(params![
            account_id,
            u.address,
            u.first_name,
            PlannedUser::MODE.as_str(),
            now
        ])?;
        token.execute(params![u.digest, zuid, USER_SCOPES, now])?;
        ids.push((Zuid::from_db(zuid), AccountId::from_db(account_id)));
    }
    Ok(ids)
}
