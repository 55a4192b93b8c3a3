//! Organizations, users and tokens: created by the command line (`bootstrap`, `--demo`,
//! `token`) and by the user-management endpoints.

use mailplane_domain::{
    check_new_user, check_removal, check_role_change, is_expired, role_audit_view, user_audit_view,
    AccountId, AccountKind, EmailAddress, IdentityMode, Role, RuleError, ScopeSet, Zoid, Zuid,
};
use serde_json::json;

use crate::db::{is_unique_violation, Db};
use crate::read::{self, email_opt};
use crate::secrets::{new_access_token, token_digest};
use crate::write::{self, address_conflict, AuditRow};
use crate::{
    now_ms, AccountView, Bootstrapped, DemoTokens, Grant, NewUser, Principal, ProvisionError,
    RequestMeta, StoreError, UserRef, WriteError,
};

/// The principal behind a token digest; `None` for an unknown, expired or revoked token.
pub(crate) async fn authenticate<D: Db>(
    db: &D,
    digest: &str,
) -> Result<Option<Principal>, StoreError> {
    let found = db
        .row(
            "SELECT t.token_id, t.zuid, t.scopes, t.expires_ms, t.revoked_ms, t.kind, t.idle_until_ms, \
             u.zoid, u.role, u.expires_ms AS user_expires_ms \
             FROM tokens t JOIN users u ON u.zuid = t.zuid WHERE t.digest = $1",
            &[&digest],
            |r| {
                let (expires_ms, revoked_ms): (Option<i64>, Option<i64>) =
                    (r.get("expires_ms")?, r.get("revoked_ms")?);
                let now = now_ms();
                // An expired user's tokens stop working with it (`userExpiry`), as if
                // revoked: the user can no longer act, and nobody can act as the user.
                // A console session also ends when it has not been used for its idle limit.
                if revoked_ms.is_some()
                    || is_expired(expires_ms, now)
                    || is_expired(r.get("idle_until_ms")?, now)
                    || is_expired(r.get("user_expires_ms")?, now)
                {
                    return Ok(None);
                }
                Ok(Some(Principal {
                    token_id: r.get("token_id")?,
                    zuid: Zuid::from_db(r.get("zuid")?),
                    zoid: Zoid::from_db(r.get("zoid")?),
                    role: read::role(&r.get::<String>("role")?)?,
                    scopes: ScopeSet::parse_list(&r.get::<String>("scopes")?)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    via: crate::Via::of_kind(&r.get::<String>("kind")?),
                }))
            },
        )
        .await?;
    Ok(found.flatten())
}

pub(crate) async fn issue_token<D: Db>(
    db: &D,
    zuid: Zuid,
    scopes: &ScopeSet,
    expires_in_secs: Option<u64>,
) -> Result<String, ProvisionError> {
    if !db
        .exists("SELECT 1 FROM users WHERE zuid = $1", &[&zuid.as_i64()])
        .await?
    {
        return Err(ProvisionError::Refused(format!("no user has zuid {zuid}")));
    }
    let token = new_access_token();
    let now = now_ms();
    let expires = expires_in_secs.map(|s| now.saturating_add((s as i64).saturating_mul(1000)));
    db.exec(
        "INSERT INTO tokens (digest, zuid, scopes, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
        &[&token_digest(&token), &zuid.as_i64(), &scopes.to_string(), &now, &expires],
    )
    .await?;
    Ok(token)
}

pub(crate) async fn revoke_token<D: Db>(db: &D, digest: &str) -> Result<bool, StoreError> {
    let n = db
        .exec(
            "UPDATE tokens SET revoked_ms = $1 WHERE digest = $2 AND revoked_ms IS NULL",
            &[&now_ms(), &digest],
        )
        .await?;
    Ok(n > 0)
}

async fn insert_org<D: Db>(
    db: &D,
    zoid: Option<Zoid>,
    name: &str,
    domain: &str,
) -> Result<Zoid, ProvisionError> {
    let refused = || {
        ProvisionError::Refused(format!(
            "the domain {domain} already belongs to an organization"
        ))
    };
    if db
        .exists("SELECT 1 FROM domains WHERE name = $1", &[&domain])
        .await?
    {
        return Err(refused());
    }
    let zoid = match zoid {
        Some(z) => Some(z.as_i64()),
        None => db.next_id("orgs_zoid_seq").await?,
    };
    let zoid = db
        .one(
            "INSERT INTO orgs (zoid, name, created_ms) VALUES ($1, $2, $3) RETURNING zoid",
            &[&zoid, &name, &now_ms()],
            |r| Ok(Zoid::from_db(r.get("zoid")?)),
        )
        .await?;
    // Another node may have claimed the domain since the check: the key decides.
    db.exec(
        "INSERT INTO domains (name, zoid, is_primary) VALUES ($1, $2, TRUE)",
        &[&domain, &zoid.as_i64()],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
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
async fn insert_user<D: Db>(
    db: &D,
    zoid: Zoid,
    ids: Option<(Zuid, AccountId)>,
    u: &NewUser,
) -> Result<(Zuid, AccountId), WriteError> {
    let display = u
        .display_name
        .clone()
        .unwrap_or_else(|| default_display_name(u));
    let now = now_ms();
    let address = u.primary_email.as_str();
    if db
        .exists("SELECT 1 FROM addresses WHERE address = $1", &[&address])
        .await?
    {
        return Err(address_conflict_rule(&u.primary_email));
    }
    let (zuid, account) = match ids {
        Some((z, a)) => (Some(z.as_i64()), Some(a.as_i64())),
        None => (
            db.next_id("users_zuid_seq").await?,
            db.next_id("accounts_id_seq").await?,
        ),
    };
    let zuid = db
        .one(
            "INSERT INTO users (zuid, zoid, role, first_name, last_name, display_name, password_hash, country, language, time_zone, created_ms, \
             password_one_time, expires_ms, employee_id, department, designation, mobile_number, extension) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING zuid",
            &[&zuid, &zoid.as_i64(), &u.role.as_str(), &u.first_name, &u.last_name, &display, &u.password_hash, &u.country, &u.language, &u.time_zone, &now,
              &u.one_time_password, &u.expires_ms, &u.profile.employee_id, &u.profile.department, &u.profile.designation, &u.profile.mobile_number, &u.profile.extension],
            |r| Ok(Zuid::from_db(r.get("zuid")?)),
        )
        .await?;
    let account = db
        .one(
            "INSERT INTO accounts (account_id, zuid, kind, sequence, created_ms) \
             VALUES ($1, $2, 'ZOHO_ACCOUNT', 1, $3) RETURNING account_id",
            &[&account, &zuid.as_i64(), &now],
            |r| Ok(AccountId::from_db(r.get("account_id")?)),
        )
        .await?;
    db.exec(
        "INSERT INTO addresses (address, account_id, is_primary) VALUES ($1, $2, TRUE)",
        &[&address, &account.as_i64()],
    )
    .await
    .map_err(|e| address_conflict(e, "primaryEmailAddress", &u.primary_email))?;
    db.exec(
        "INSERT INTO identities (account_id, from_address, display_name, mode, created_ms) VALUES ($1, $2, $3, $4, $5)",
        &[&account.as_i64(), &address, &display, &IdentityMode::Mailbox.as_str(), &now],
    )
    .await?;
    Ok((zuid, account))
}

fn address_conflict_rule(address: &EmailAddress) -> WriteError {
    RuleError::address_taken("primaryEmailAddress", address).into()
}

async fn insert_external_account<D: Db>(
    db: &D,
    zuid: Zuid,
    id: AccountId,
    kind: AccountKind,
    address: &str,
) -> Result<(), StoreError> {
    db.exec(
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

pub(crate) async fn bootstrap<D: Db>(
    db: &D,
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
    let zoid = insert_org(db, None, org_name, domain).await?;
    let mut user = NewUser::minimal(admin.clone(), Role::SuperAdmin);
    user.password_hash = password_hash;
    let (zuid, account_id) = insert_user(db, zoid, None, &user)
        .await
        .map_err(provision_err)?;
    let access_token = issue_token(db, zuid, &ScopeSet::everything(), None).await?;
    Ok(Bootstrapped {
        zoid,
        zuid,
        account_id,
        access_token,
    })
}

/// The demo organization, its admin's and Rebecca's passwords already hashed; the
/// passwords in the answer are left empty for the caller, which made them.
pub(crate) async fn seed_demo<D: Db>(
    db: &D,
    admin_hash: String,
    user_hash: String,
) -> Result<DemoTokens, ProvisionError> {
    use crate::demo::*;
    if db.exists("SELECT 1 FROM orgs", &[]).await? {
        return Err(ProvisionError::Refused(
            "--demo needs an empty database, and this one already holds data".into(),
        ));
    }
    let mut d = Demo::new()?;
    d.admin.password_hash = Some(admin_hash);
    d.rebecca.password_hash = Some(user_hash);
    let zoid = insert_org(db, Some(d.zoid), ORG_NAME, DOMAIN).await?;
    let (admin_zuid, _) = insert_user(db, zoid, None, &d.admin)
        .await
        .map_err(provision_err)?;
    let rebecca = Some((d.rebecca_zuid, d.rebecca_account));
    insert_user(db, zoid, rebecca, &d.rebecca)
        .await
        .map_err(provision_err)?;
    let external = [
        (d.pop_account, AccountKind::Pop, POP_ADDRESS),
        (d.imap_account, AccountKind::Imap, IMAP_ADDRESS),
    ];
    for (id, kind, address) in external {
        insert_external_account(db, d.rebecca_zuid, id, kind, address).await?;
    }
    Ok(DemoTokens {
        admin_token: issue_token(db, admin_zuid, &ScopeSet::everything(), None).await?,
        user_token: issue_token(db, d.rebecca_zuid, &ScopeSet::user_all(), None).await?,
        admin_password: String::new(),
        user_password: String::new(),
    })
}

fn org_not_found(zoid: Zoid) -> WriteError {
    WriteError::NotFound(format!("organization {zoid} was not found"))
}

pub(crate) async fn create_user_via_api<D: Db>(
    db: &D,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    user: &NewUser,
) -> Result<AccountView, WriteError> {
    if !grant.reaches_org(zoid) {
        return Err(org_not_found(zoid));
    }
    let domains = read::org_domains(db, zoid).await?;
    check_new_user(grant.actor.role, user.role, &user.primary_email, &domains)?;
    let (zuid, account) = insert_user(db, zoid, None, user).await?;
    let after = user_audit_view(
        zuid,
        Some(account),
        Some(user.primary_email.as_str()),
        user.role,
    );
    let row = AuditRow {
        grant,
        meta,
        zoid,
        zuid: Some(zuid),
        account: Some(account),
        mode: "createUser",
    };
    write::audit(db, row, &json!({}), &after).await?;
    read::account_view(db, account)
        .await?
        .ok_or_else(|| StoreError::Corrupt("new account vanished".into()).into())
}

pub(crate) async fn delete_users<D: Db>(
    db: &D,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    users: &[UserRef],
) -> Result<(), WriteError> {
    if !grant.reaches_org(zoid) {
        return Err(org_not_found(zoid));
    }
    // The organization's super admins are counted under a lock, so two concurrent
    // removals cannot each leave the other to be the last.
    db.lock(
        "SELECT 1 FROM orgs WHERE zoid = $1 FOR UPDATE",
        &[&zoid.as_i64()],
    )
    .await?;
    let mut victims: Vec<(Zuid, Role, Option<EmailAddress>)> = Vec::new();
    for u in users {
        let shown = match u {
            UserRef::Zuid(z) => z.to_string(),
            UserRef::Email(e) => e.to_string(),
        };
        let zuid = read::resolve_user(db, zoid, u)
            .await?
            .ok_or_else(|| WriteError::NotFound(format!("user {shown} was not found")))?;
        if victims.iter().any(|v| v.0 == zuid) {
            continue;
        }
        let (role, primary) = db
            .one(
                "SELECT u.role, (SELECT d.address FROM accounts a JOIN addresses d ON d.account_id = a.account_id \
                 WHERE a.zuid = u.zuid AND d.is_primary) AS primary_address FROM users u WHERE u.zuid = $1",
                &[&zuid.as_i64()],
                |r| Ok((read::role(&r.get::<String>("role")?)?, email_opt(r, "primary_address")?)),
            )
            .await?;
        victims.push((zuid, role, primary));
    }
    let super_admins = db
        .one(
            "SELECT COUNT(*) AS n FROM users WHERE zoid = $1 AND role = 'super_admin'",
            &[&zoid.as_i64()],
            |r| r.get::<i64>("n"),
        )
        .await?;
    let removed: Vec<Role> = victims.iter().map(|v| v.1).collect();
    check_removal(grant.actor.role, &removed, super_admins as usize)?;
    for (zuid, role, primary) in &victims {
        db.exec("DELETE FROM users WHERE zuid = $1", &[&zuid.as_i64()])
            .await?;
        let before = user_audit_view(
            *zuid,
            None,
            primary.as_ref().map(EmailAddress::as_str),
            *role,
        );
        let row = AuditRow {
            grant,
            meta,
            zoid,
            zuid: Some(*zuid),
            account: None,
            mode: "deleteUser",
        };
        write::audit(db, row, &before, &json!({})).await?;
    }
    Ok(())
}

/// `changeRole`: gives each named user of the organization `role`, all or none. The
/// organization's row is locked first, as for a removal, so two concurrent changes cannot
/// each leave the other to demote the last super admin. Every named user gets an audit row
/// (a user who had the role already too: the request named them).
pub(crate) async fn change_roles<D: Db>(
    db: &D,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    zuids: &[Zuid],
    role: Role,
) -> Result<(), WriteError> {
    if !grant.reaches_org(zoid) {
        return Err(org_not_found(zoid));
    }
    db.lock(
        "SELECT 1 FROM orgs WHERE zoid = $1 FOR UPDATE",
        &[&zoid.as_i64()],
    )
    .await?;
    let mut named: Vec<(Zuid, Role)> = Vec::new();
    for zuid in zuids {
        if named.iter().any(|(z, _)| z == zuid) {
            continue;
        }
        // Another organization's user answers as one that does not exist.
        let current = db
            .row(
                "SELECT role FROM users WHERE zuid = $1 AND zoid = $2",
                &[&zuid.as_i64(), &zoid.as_i64()],
                |r| read::role(&r.get::<String>("role")?),
            )
            .await?
            .ok_or_else(|| WriteError::NotFound(format!("user {zuid} was not found")))?;
        named.push((*zuid, current));
    }
    let super_admins = db
        .one(
            "SELECT COUNT(*) AS n FROM users WHERE zoid = $1 AND role = 'super_admin'",
            &[&zoid.as_i64()],
            |r| r.get::<i64>("n"),
        )
        .await?;
    let current: Vec<Role> = named.iter().map(|(_, r)| *r).collect();
    check_role_change(grant.actor.role, role, &current, super_admins as usize)?;
    for (zuid, before) in named {
        db.exec(
            "UPDATE users SET role = $1 WHERE zuid = $2",
            &[&role.as_str(), &zuid.as_i64()],
        )
        .await?;
        let row = AuditRow {
            grant,
            meta,
            zoid,
            zuid: Some(zuid),
            account: None,
            mode: "changeRole",
        };
        write::audit(db, row, &role_audit_view(before), &role_audit_view(role)).await?;
    }
    Ok(())
}
