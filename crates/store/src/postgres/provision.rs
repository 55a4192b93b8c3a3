//! Organizations, users and tokens on PostgreSQL.

use deadpool_postgres::{GenericClient, Transaction};
use mailplane_domain::{
    check_new_user, check_removal, user_audit_view, AccountId, AccountKind, EmailAddress,
    IdentityMode, Role, RuleError, ScopeSet, Zoid, Zuid,
};
use serde_json::json;

use super::{exec, one, read, row_opt, write};
use crate::secrets::{new_access_token, token_digest};
use crate::{
    now_ms, AccountView, Bootstrapped, DemoTokens, Grant, NewUser, Principal, ProvisionError,
    RequestMeta, StoreError, UserRef, WriteError,
};

pub(super) async fn authenticate<C: GenericClient>(
    c: &C,
    digest: &str,
) -> Result<Option<Principal>, StoreError> {
    let row = row_opt(
        c,
        "SELECT t.token_id, t.zuid, t.scopes, t.expires_ms, t.revoked_ms, u.zoid, u.role \
         FROM tokens t JOIN users u ON u.zuid = t.zuid WHERE t.digest = $1",
        &[&digest],
    )
    .await?;
    let Some(r) = row else { return Ok(None) };
    let (expires_ms, revoked_ms): (Option<i64>, Option<i64>) = (r.try_get(3)?, r.try_get(4)?);
    if revoked_ms.is_some() || expires_ms.is_some_and(|e| e <= now_ms()) {
        return Ok(None);
    }
    Ok(Some(Principal {
        token_id: r.try_get(0)?,
        zuid: Zuid::from_db(r.try_get(1)?),
        zoid: Zoid::from_db(r.try_get(5)?),
        role: read::role(r.try_get(6)?)?,
        scopes: ScopeSet::parse_list(r.try_get(2)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    }))
}

pub(super) async fn issue_token(
    tx: &Transaction<'_>,
    zuid: Zuid,
    scopes: &ScopeSet,
    expires_in_secs: Option<u64>,
) -> Result<String, ProvisionError> {
    if row_opt(tx, "SELECT 1 FROM users WHERE zuid = $1", &[&zuid.as_i64()])
        .await?
        .is_none()
    {
        return Err(ProvisionError::Refused(format!("no user has zuid {zuid}")));
    }
    let token = new_access_token();
    let now = now_ms();
    let expires = expires_in_secs.map(|s| now.saturating_add((s as i64).saturating_mul(1000)));
    exec(
        tx,
        "INSERT INTO tokens (digest, zuid, scopes, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
        &[&token_digest(&token), &zuid.as_i64(), &scopes.to_string(), &now, &expires],
    )
    .await?;
    Ok(token)
}

pub(super) async fn revoke_token(tx: &Transaction<'_>, digest: &str) -> Result<bool, StoreError> {
    let n = exec(
        tx,
        "UPDATE tokens SET revoked_ms = $1 WHERE digest = $2 AND revoked_ms IS NULL",
        &[&now_ms(), &digest],
    )
    .await?;
    Ok(n > 0)
}

async fn insert_org(
    tx: &Transaction<'_>,
    zoid: Option<Zoid>,
    name: &str,
    domain: &str,
) -> Result<Zoid, ProvisionError> {
    let refused = || {
        ProvisionError::Refused(format!(
            "the domain {domain} already belongs to an organization"
        ))
    };
    if row_opt(tx, "SELECT 1 FROM domains WHERE name = $1", &[&domain])
        .await?
        .is_some()
    {
        return Err(refused());
    }
    let r = one(
        tx,
        "INSERT INTO orgs (zoid, name, created_ms) VALUES (COALESCE($1, nextval('orgs_zoid_seq')), $2, $3) RETURNING zoid",
        &[&zoid.map(Zoid::as_i64), &name, &now_ms()],
    )
    .await?;
    let zoid = Zoid::from_db(r.try_get(0)?);
    // Another node may have claimed the domain since the check: the key decides.
    exec(
        tx,
        "INSERT INTO domains (name, zoid, is_primary) VALUES ($1, $2, TRUE)",
        &[&domain, &zoid.as_i64()],
    )
    .await
    .map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            refused()
        } else {
            e.into()
        }
    })?;
    Ok(zoid)
}

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

/// Inserts a user with its hosted account, primary address and mailbox identity.
async fn insert_user(
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
    let conflict = || -> WriteError {
        RuleError::conflict(
            "primaryEmailAddress",
            format!(
                "primaryEmailAddress {} already belongs to another account",
                u.primary_email
            ),
        )
        .into()
    };
    if row_opt(
        tx,
        "SELECT 1 FROM addresses WHERE address = $1",
        &[&u.primary_email.as_str()],
    )
    .await?
    .is_some()
    {
        return Err(conflict());
    }
    let r = one(
        tx,
        "INSERT INTO users (zuid, zoid, role, first_name, last_name, display_name, password_hash, country, language, time_zone, created_ms) \
         VALUES (COALESCE($1, nextval('users_zuid_seq')), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING zuid",
        &[&ids.map(|i| i.0.as_i64()), &zoid.as_i64(), &u.role.as_str(), &u.first_name, &u.last_name, &display, &u.password_hash, &u.country, &u.language, &u.time_zone, &now],
    )
    .await?;
    let zuid = Zuid::from_db(r.try_get(0)?);
    let r = one(
        tx,
        "INSERT INTO accounts (account_id, zuid, kind, sequence, created_ms) \
         VALUES (COALESCE($1, nextval('accounts_id_seq')), $2, 'ZOHO_ACCOUNT', 1, $3) RETURNING account_id",
        &[&ids.map(|i| i.1.as_i64()), &zuid.as_i64(), &now],
    )
    .await?;
    let account = AccountId::from_db(r.try_get(0)?);
    exec(
        tx,
        "INSERT INTO addresses (address, account_id, is_primary) VALUES ($1, $2, TRUE)",
        &[&u.primary_email.as_str(), &account.as_i64()],
    )
    .await
    .map_err(|e| write::address_conflict(e, "primaryEmailAddress", &u.primary_email))?;
    exec(
        tx,
        "INSERT INTO identities (account_id, from_address, display_name, mode, created_ms) VALUES ($1, $2, $3, $4, $5)",
        &[&account.as_i64(), &u.primary_email.as_str(), &display, &IdentityMode::Mailbox.as_str(), &now],
    )
    .await?;
    Ok((zuid, account))
}

async fn insert_external_account(
    tx: &Transaction<'_>,
    zuid: Zuid,
    id: AccountId,
    kind: AccountKind,
    address: &str,
) -> Result<(), StoreError> {
    exec(
        tx,
        "INSERT INTO accounts (account_id, zuid, kind, sequence, external_address, created_ms) \
         VALUES ($1, $2, $3, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM accounts WHERE zuid = $2), $4, $5)",
        &[&id.as_i64(), &zuid.as_i64(), &kind.as_str(), &address, &now_ms()],
    )
    .await?;
    Ok(())
}

fn provision_err(e: WriteError) -> ProvisionError {
    match e {
        WriteError::Store(s) => ProvisionError::Store(s),
        other => ProvisionError::Refused(other.to_string()),
    }
}

pub(super) async fn bootstrap(
    tx: &Transaction<'_>,
    org_name: &str,
    domain: &str,
    admin: &EmailAddress,
    password_hash: Option<String>,
) -> Result<Bootstrapped, ProvisionError> {
    if admin.domain() != domain {
        return Err(ProvisionError::Refused(format!(
            "the admin address {admin} is not in the domain {domain}"
        )));
    }
    let zoid = insert_org(tx, None, org_name, domain).await?;
    let mut user = NewUser::minimal(admin.clone(), Role::SuperAdmin);
    user.password_hash = password_hash;
    let (zuid, account_id) = insert_user(tx, zoid, None, &user)
        .await
        .map_err(provision_err)?;
    let access_token = issue_token(tx, zuid, &ScopeSet::everything(), None).await?;
    Ok(Bootstrapped {
        zoid,
        zuid,
        account_id,
        access_token,
    })
}

pub(super) async fn seed_demo(tx: &Transaction<'_>) -> Result<DemoTokens, ProvisionError> {
    use crate::demo::*;
    let orgs: i64 = one(tx, "SELECT COUNT(*) FROM orgs", &[])
        .await?
        .try_get(0)?;
    if orgs > 0 {
        return Err(ProvisionError::Refused(
            "--demo needs an empty database, and this one already holds data".into(),
        ));
    }
    let d = Demo::new()?;
    let zoid = insert_org(tx, Some(d.zoid), ORG_NAME, DOMAIN).await?;
    let (admin_zuid, _) = insert_user(tx, zoid, None, &d.admin)
        .await
        .map_err(provision_err)?;
    insert_user(
        tx,
        zoid,
        Some((d.rebecca_zuid, d.rebecca_account)),
        &d.rebecca,
    )
    .await
    .map_err(provision_err)?;
    insert_external_account(
        tx,
        d.rebecca_zuid,
        d.pop_account,
        AccountKind::Pop,
        POP_ADDRESS,
    )
    .await?;
    insert_external_account(
        tx,
        d.rebecca_zuid,
        d.imap_account,
        AccountKind::Imap,
        IMAP_ADDRESS,
    )
    .await?;
    Ok(DemoTokens {
        admin_token: issue_token(tx, admin_zuid, &ScopeSet::everything(), None).await?,
        user_token: issue_token(tx, d.rebecca_zuid, &ScopeSet::user_all(), None).await?,
    })
}

pub(super) async fn create_user_via_api(
    tx: &Transaction<'_>,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    user: &NewUser,
) -> Result<AccountView, WriteError> {
    if !grant.reaches_org(zoid) {
        return Err(WriteError::NotFound(format!(
            "organization {zoid} was not found"
        )));
    }
    let domains = read::org_domains(tx, zoid).await?;
    check_new_user(grant.actor.role, user.role, &user.primary_email, &domains)?;
    let (zuid, account) = insert_user(tx, zoid, None, user).await?;
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
    )
    .await?;
    read::account_view(tx, account)
        .await?
        .ok_or_else(|| StoreError::Corrupt("new account vanished".into()).into())
}

pub(super) async fn delete_users(
    tx: &Transaction<'_>,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    users: &[UserRef],
) -> Result<(), WriteError> {
    if !grant.reaches_org(zoid) {
        return Err(WriteError::NotFound(format!(
            "organization {zoid} was not found"
        )));
    }
    // The organization's super admins are counted under a lock, so two concurrent
    // removals cannot each leave the other to be the last.
    exec(
        tx,
        "SELECT 1 FROM orgs WHERE zoid = $1 FOR UPDATE",
        &[&zoid.as_i64()],
    )
    .await?;
    let mut victims: Vec<(Zuid, Role, Option<String>)> = Vec::new();
    for u in users {
        let shown = match u {
            UserRef::Zuid(z) => z.to_string(),
            UserRef::Email(e) => e.to_string(),
        };
        let zuid = read::resolve_user(tx, zoid, u)
            .await?
            .ok_or_else(|| WriteError::NotFound(format!("user {shown} was not found")))?;
        if victims.iter().any(|v| v.0 == zuid) {
            continue;
        }
        let r = one(
            tx,
            "SELECT u.role, (SELECT d.address FROM accounts a JOIN addresses d ON d.account_id = a.account_id \
             WHERE a.zuid = u.zuid AND d.is_primary) FROM users u WHERE u.zuid = $1",
            &[&zuid.as_i64()],
        )
        .await?;
        let role = read::role(r.try_get(0)?)?;
        victims.push((zuid, role, r.try_get(1)?));
    }
    let super_admins: i64 = one(
        tx,
        "SELECT COUNT(*) FROM users WHERE zoid = $1 AND role = 'super_admin'",
        &[&zoid.as_i64()],
    )
    .await?
    .try_get(0)?;
    let removed: Vec<Role> = victims.iter().map(|v| v.1).collect();
    check_removal(grant.actor.role, &removed, super_admins as usize)?;
    for (zuid, role, primary) in &victims {
        exec(tx, "DELETE FROM users WHERE zuid = $1", &[&zuid.as_i64()]).await?;
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
        )
        .await?;
    }
    Ok(())
}

/// Inserts synthetic users of `zoid` (see `crate::synthetic`) in five statements; their
/// ids, in order.
pub(super) async fn insert_synthetic(
    tx: &Transaction<'_>,
    zoid: Zoid,
    users: &[crate::synthetic::PlannedUser],
) -> Result<Vec<(Zuid, AccountId)>, StoreError> {
    use crate::synthetic::{PlannedUser, USER_SCOPES};
    let now = crate::now_ms();
    let count = users.len() as i64;
    let ids = super::rows(
        tx,
        "SELECT nextval('users_zuid_seq'), nextval('accounts_id_seq') FROM generate_series(1, $1::BIGINT)",
        &[&count],
    )
    .await?;
    let zuids: Vec<i64> = ids.iter().map(|r| r.get(0)).collect();
    let accounts: Vec<i64> = ids.iter().map(|r| r.get(1)).collect();
    let names: Vec<&str> = users.iter().map(|u| u.first_name.as_str()).collect();
    let addresses: Vec<&str> = users.iter().map(|u| u.address.as_str()).collect();
    let digests: Vec<&str> = users.iter().map(|u| u.digest.as_str()).collect();
    super::exec(
        tx,
        "INSERT INTO users (zuid, zoid, role, first_name, last_name, display_name, country, language, time_zone, created_ms) \
         SELECT z, $2, $3, n, '', n, 'us', 'en', 'UTC', $4 FROM unnest($1::BIGINT[], $5::TEXT[]) AS t(z, n)",
        &[&zuids, &zoid.as_i64(), &PlannedUser::ROLE.as_str(), &now, &names],
    )
    .await?;
    super::exec(
        tx,
        "INSERT INTO accounts (account_id, zuid, kind, sequence, created_ms) \
         SELECT a, z, 'ZOHO_ACCOUNT', 1, $3 FROM unnest($1::BIGINT[], $2::BIGINT[]) AS t(a, z)",
        &[&accounts, &zuids, &now],
    )
    .await?;
    super::exec(
        tx,
        "INSERT INTO addresses (address, account_id, is_primary) \
         SELECT d, a, TRUE FROM unnest($1::TEXT[], $2::BIGINT[]) AS t(d, a)",
        &[&addresses, &accounts],
    )
    .await?;
    super::exec(
        tx,
        "INSERT INTO identities (account_id, from_address, display_name, mode, created_ms) \
         SELECT a, d, n, $4, $5 FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[]) AS t(a, d, n)",
        &[
            &accounts,
            &addresses,
            &names,
            &PlannedUser::MODE.as_str(),
            &now,
        ],
    )
    .await?;
    super::exec(
        tx,
        "INSERT INTO tokens (digest, zuid, scopes, created_ms) \
         SELECT g, z, $3, $4 FROM unnest($1::TEXT[], $2::BIGINT[]) AS t(g, z)",
        &[&digests, &zuids, &USER_SCOPES, &now],
    )
    .await?;
    Ok(zuids
        .into_iter()
        .zip(accounts)
        .map(|(z, a)| (Zuid::from_db(z), AccountId::from_db(a)))
        .collect())
}
