//! Reads: rows into views, for the read endpoints and, inside write transactions, to load
//! what a rule needs.

use mailplane_domain::{
    AccountAddress, AccountId, AccountKind, AddressFacts, Claim, EmailAddress, Identity,
    IdentityMode, IdentityState, MailForward, PendingKey, Relay, RelayCheck, RelayState, Role,
    SendMailId, SmtpConnection, UserProfile, Verification, Zoid, Zuid,
};

use crate::db::{try_join_all, Db, Param, Row};
use crate::send_as::{claimed_addresses, settle};
use crate::{AccountView, OrgView, StoreError, UserRef};

pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

pub(crate) fn email(s: &str) -> Result<EmailAddress, StoreError> {
    EmailAddress::parse(s).map_err(|_| corrupt("address", s))
}

pub(crate) fn kind(s: &str) -> Result<AccountKind, StoreError> {
    AccountKind::parse(s).ok_or_else(|| corrupt("account kind", s))
}

pub(crate) fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| corrupt("role", s))
}

/// An address column that may be empty.
pub(crate) fn email_opt(r: &Row<'_>, column: &str) -> Result<Option<EmailAddress>, StoreError> {
    r.get::<Option<String>>(column)?
        .as_deref()
        .map(email)
        .transpose()
}

/// A `sequence` column: an `INTEGER` from 1 up.
pub(crate) fn sequence(r: &Row<'_>) -> Result<u32, StoreError> {
    u32::try_from(r.get::<i32>("sequence")?).map_err(|_| corrupt("sequence", "negative"))
}

/// The columns of an account view, and the tables they come from (`a` the account, `u`
/// its user).
macro_rules! select_accounts {
    ($($rest:expr),*) => {
        concat!(
            "SELECT a.account_id, a.zuid, u.zoid, u.role, u.first_name, u.last_name, u.display_name, \
             a.kind, a.sequence, a.external_address, a.enabled, a.outgoing_blocked, a.incoming_blocked, \
             a.imap_enabled, a.pop_enabled, a.activesync_enabled, a.created_ms, a.last_login_ms, \
             u.time_zone, u.language, u.country, u.password_one_time, u.expires_ms, \
             u.employee_id, u.department, u.designation, u.mobile_number, u.extension, \
             a.forward_delete_copy \
             FROM accounts a JOIN users u ON u.zuid = a.zuid ",
            $($rest),*
        )
    };
}

pub(crate) use select_accounts;

fn account_row(r: &Row<'_>) -> Result<AccountView, StoreError> {
    Ok(AccountView {
        account_id: AccountId::from_db(r.get("account_id")?),
        zuid: Zuid::from_db(r.get("zuid")?),
        zoid: Zoid::from_db(r.get("zoid")?),
        role: role(&r.get::<String>("role")?)?,
        first_name: r.get("first_name")?,
        last_name: r.get("last_name")?,
        display_name: r.get("display_name")?,
        kind: kind(&r.get::<String>("kind")?)?,
        sequence: sequence(r)?,
        external_address: email_opt(r, "external_address")?,
        enabled: r.get("enabled")?,
        outgoing_blocked: r.get("outgoing_blocked")?,
        incoming_blocked: r.get("incoming_blocked")?,
        imap_enabled: r.get("imap_enabled")?,
        pop_enabled: r.get("pop_enabled")?,
        activesync_enabled: r.get("activesync_enabled")?,
        created_ms: r.get("created_ms")?,
        last_login_ms: r.get("last_login_ms")?,
        time_zone: r.get("time_zone")?,
        language: r.get("language")?,
        country: r.get("country")?,
        one_time_password: r.get("password_one_time")?,
        forward_delete_copy: r.get("forward_delete_copy")?,
        expires_ms: r.get("expires_ms")?,
        profile: UserProfile {
            employee_id: r.get("employee_id")?,
            department: r.get("department")?,
            designation: r.get("designation")?,
            mobile_number: r.get("mobile_number")?,
            extension: r.get("extension")?,
        },
        addresses: Vec::new(),
        identities: Vec::new(),
        forwards: Vec::new(),
    })
}

/// The views of the accounts `sql` (a [`select_accounts!`]) finds, with the addresses and
/// identities of the hosted ones.
pub(crate) async fn views<D: Db>(
    db: &D,
    sql: &'static str,
    params: &[&dyn Param],
) -> Result<Vec<AccountView>, StoreError> {
    let mut found = db.rows(sql, params, account_row).await?;
    with_parts(db, &mut found).await?;
    Ok(found)
}

/// Loads the addresses, identities and forwards of the hosted accounts among `views`.
async fn with_parts<D: Db>(db: &D, views: &mut [AccountView]) -> Result<(), StoreError> {
    for v in views.iter_mut().filter(|v| v.kind == AccountKind::Hosted) {
        // Sent together: one round trip for the three on PostgreSQL.
        (v.addresses, v.identities, v.forwards) = tokio::try_join!(
            addresses(db, v.account_id),
            identities(db, v.account_id),
            forwards(db, v.account_id)
        )?;
    }
    Ok(())
}

/// [`views`] of a query whose rows also carry a `total` (a window count): the views, and
/// the total when there was a row to carry it.
pub(crate) async fn counted_views<D: Db>(
    db: &D,
    sql: &'static str,
    params: &[&dyn Param],
) -> Result<(Option<i64>, Vec<AccountView>), StoreError> {
    let rows = db
        .rows(sql, params, |r| {
            Ok((account_row(r)?, r.get::<i64>("total")?))
        })
        .await?;
    let total = rows.first().map(|(_, n)| *n);
    let mut found: Vec<AccountView> = rows.into_iter().map(|(v, _)| v).collect();
    with_parts(db, &mut found).await?;
    Ok((total, found))
}

/// The account's forwards, by target address.
pub(crate) async fn forwards<D: Db>(
    db: &D,
    account: AccountId,
) -> Result<Vec<MailForward>, StoreError> {
    db.rows(
        "SELECT address, confirmed, enabled, disabled_reason, key_digest, key_expires_ms, key_sent_ms \
         FROM mail_forwards WHERE account_id = $1 ORDER BY address",
        &[&account.as_i64()],
        |r| {
            let pending_key = pending_key(r)?;
            Ok(MailForward {
                to: email(&r.get::<String>("address")?)?,
                confirmed: r.get("confirmed")?,
                enabled: r.get("enabled")?,
                disabled_reason: r.get("disabled_reason")?,
                pending_key,
            })
        },
    )
    .await
}

pub(crate) async fn account_view<D: Db>(
    db: &D,
    id: AccountId,
) -> Result<Option<AccountView>, StoreError> {
    let sql = select_accounts!("WHERE a.account_id = $1");
    Ok(views(db, sql, &[&id.as_i64()]).await?.pop())
}

pub(crate) async fn user_account_views<D: Db>(
    db: &D,
    zuid: Zuid,
) -> Result<Vec<AccountView>, StoreError> {
    let sql = select_accounts!("WHERE a.zuid = $1 ORDER BY a.sequence");
    views(db, sql, &[&zuid.as_i64()]).await
}

pub(crate) async fn org_account_views<D: Db>(
    db: &D,
    zoid: Zoid,
    start: u32,
    limit: u32,
) -> Result<Vec<AccountView>, StoreError> {
    let sql = select_accounts!(
        "WHERE u.zoid = $1 AND a.kind = 'ZOHO_ACCOUNT' ORDER BY u.zuid LIMIT $2 OFFSET $3"
    );
    let (limit, start) = (i64::from(limit), i64::from(start));
    views(db, sql, &[&zoid.as_i64(), &limit, &start]).await
}

pub(crate) async fn hosted_account_of<D: Db>(
    db: &D,
    zuid: Zuid,
) -> Result<Option<AccountView>, StoreError> {
    let sql = select_accounts!("WHERE a.zuid = $1 AND a.kind = 'ZOHO_ACCOUNT'");
    Ok(views(db, sql, &[&zuid.as_i64()]).await?.pop())
}

pub(crate) async fn resolve_user<D: Db>(
    db: &D,
    zoid: Zoid,
    user: &UserRef,
) -> Result<Option<Zuid>, StoreError> {
    let zuid = |r: &Row<'_>| Ok(Zuid::from_db(r.get("zuid")?));
    match user {
        UserRef::Zuid(z) => {
            db.row(
                "SELECT zuid FROM users WHERE zuid = $1 AND zoid = $2",
                &[&z.as_i64(), &zoid.as_i64()],
                zuid,
            )
            .await
        }
        UserRef::Email(e) => {
            db.row(
                "SELECT u.zuid FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
                 JOIN users u ON u.zuid = a.zuid WHERE d.address = $1 AND u.zoid = $2",
                &[&e.as_str(), &zoid.as_i64()],
                zuid,
            )
            .await
        }
    }
}

/// The account's own addresses: the primary first, then the aliases by name.
pub(crate) async fn addresses<D: Db>(
    db: &D,
    id: AccountId,
) -> Result<Vec<AccountAddress>, StoreError> {
    db.rows(
        "SELECT address, is_primary FROM addresses WHERE account_id = $1 ORDER BY is_primary DESC, address",
        &[&id.as_i64()],
        |r| {
            Ok(AccountAddress {
                address: email(&r.get::<String>("address")?)?,
                is_primary: r.get("is_primary")?,
            })
        },
    )
    .await
}

/// The key awaiting confirmation in a row of `mail_forwards` or `identities` (the same
/// three columns in both), if any.
fn pending_key(r: &Row<'_>) -> Result<Option<PendingKey>, StoreError> {
    Ok(
        match (
            r.get::<Option<String>>("key_digest")?,
            r.get::<Option<i64>>("key_expires_ms")?,
            r.get::<Option<i64>>("key_sent_ms")?,
        ) {
            (Some(digest), Some(expires_ms), Some(sent_ms)) => Some(PendingKey {
                digest,
                expires_ms,
                sent_ms,
            }),
            _ => None,
        },
    )
}

fn identity_row(r: &Row<'_>) -> Result<Identity, StoreError> {
    let mode: String = r.get("mode")?;
    let mode = IdentityMode::parse(&mode).ok_or_else(|| corrupt("identity mode", &mode))?;
    let relay = match (
        r.get::<Option<String>>("server_name")?,
        r.get::<Option<i32>>("server_port")?,
        r.get::<Option<String>>("user_name")?,
        r.get::<Option<String>>("smtp_connection")?,
    ) {
        (Some(server_name), Some(port), Some(user_name), Some(conn)) => Some(Relay {
            server_name,
            server_port: u16::try_from(port)
                .map_err(|_| corrupt("server port", &port.to_string()))?,
            user_name,
            smtp_connection: SmtpConnection::parse(&conn)
                .ok_or_else(|| corrupt("smtp connection", &conn))?,
        }),
        _ => None,
    };
    let state: String = r.get("relay_state")?;
    let relay_check = RelayCheck {
        state: RelayState::parse(&state).ok_or_else(|| corrupt("relay state", &state))?,
        error: r.get("relay_error")?,
        checked_ms: r.get("relay_checked_ms")?,
    };
    let pending_key = pending_key(r)?;
    Ok(Identity {
        id: SendMailId::from_db(r.get("send_mail_id")?),
        from_address: email(&r.get::<String>("from_address")?)?,
        display_name: r.get("display_name")?,
        verification: Verification {
            // An identity of the account's own address needs no one's confirmation.
            owner_confirmed: !mode.is_claim() || r.get::<bool>("owner_confirmed")?,
            pending_key,
            relay: relay_check,
        },
        mode,
        relay,
        state: IdentityState::Active,
    })
}

/// A statement that reads whole identities, for [`identity_row`]: its columns, then the
/// rest of the statement.
macro_rules! select_identities {
    ($rest:literal) => {
        concat!(
            "SELECT send_mail_id, from_address, display_name, mode, server_name, server_port, \
             user_name, smtp_connection, owner_confirmed, key_digest, key_expires_ms, key_sent_ms, \
             relay_state, relay_error, relay_checked_ms FROM identities ",
            $rest
        )
    };
}

/// The account's send-as identities, each with its state under the ownership rules.
pub(crate) async fn identities<D: Db>(db: &D, id: AccountId) -> Result<Vec<Identity>, StoreError> {
    let mut identities = db
        .rows(
            select_identities!("WHERE account_id = $1 ORDER BY send_mail_id"),
            &[&id.as_i64()],
            identity_row,
        )
        .await?;
    let claimed = claimed_addresses(&identities);
    if !claimed.is_empty() {
        settle(id, &mut identities, &address_facts(db, &claimed).await?);
    }
    Ok(identities)
}

/// Who holds and who claims each of `addresses` (see `mailplane_domain::send_as`). The
/// statements of every address are sent together: one round trip for all on PostgreSQL,
/// as many as an `addsendmaildetails` of 50 identities asks for.
pub(crate) async fn address_facts<D: Db>(
    db: &D,
    addresses: &[EmailAddress],
) -> Result<Vec<AddressFacts>, StoreError> {
    try_join_all(addresses.iter().map(|a| facts_of(db, a)).collect()).await
}

async fn facts_of<D: Db>(db: &D, a: &EmailAddress) -> Result<AddressFacts, StoreError> {
    let (address, domain) = (a.as_str(), a.domain());
    let by_name: [&dyn Param; 2] = [&address, &domain];
    let holder = db.row(
        "SELECT (SELECT account_id FROM addresses WHERE address = $1) AS holder, \
                (SELECT zoid FROM domains WHERE name = $2) AS domain_org",
        &by_name,
        |r| {
            Ok((
                r.get::<Option<i64>>("holder")?.map(AccountId::from_db),
                r.get::<Option<i64>>("domain_org")?.map(Zoid::from_db),
            ))
        },
    );
    let claims = db.rows(
        "SELECT i.account_id, u.zoid, i.owner_confirmed FROM identities i \
         JOIN accounts a ON a.account_id = i.account_id JOIN users u ON u.zuid = a.zuid \
         WHERE i.from_address = $1 ORDER BY i.account_id",
        &by_name[..1],
        |r| {
            Ok(Claim {
                account: AccountId::from_db(r.get("account_id")?),
                zoid: Zoid::from_db(r.get("zoid")?),
                confirmed: r.get("owner_confirmed")?,
            })
        },
    );
    let (holder, claims) = tokio::try_join!(holder, claims)?;
    let (holder, domain_org) = holder.unwrap_or_default();
    Ok(AddressFacts {
        address: a.clone(),
        holder,
        domain_org,
        claims,
    })
}

pub(crate) async fn org_domains<D: Db>(db: &D, zoid: Zoid) -> Result<Vec<String>, StoreError> {
    db.rows(
        "SELECT name FROM domains WHERE zoid = $1 ORDER BY is_primary DESC, name",
        &[&zoid.as_i64()],
        |r| r.get("name"),
    )
    .await
}

pub(crate) async fn org_view<D: Db>(db: &D, zoid: Zoid) -> Result<Option<OrgView>, StoreError> {
    let id = zoid.as_i64();
    let by_id: [&dyn Param; 1] = [&id];
    let org = db.row(
        "SELECT name, created_ms FROM orgs WHERE zoid = $1",
        &by_id,
        |r| Ok((r.get::<String>("name")?, r.get::<i64>("created_ms")?)),
    );
    let counts = db.one(
        "SELECT (SELECT COUNT(*) FROM users WHERE zoid = $1) AS users, \
                (SELECT COUNT(*) FROM accounts a JOIN users u ON u.zuid = a.zuid \
                  WHERE u.zoid = $1 AND a.kind = 'ZOHO_ACCOUNT') AS mailboxes, \
                (SELECT d.address FROM users u JOIN accounts a ON a.zuid = u.zuid \
                  JOIN addresses d ON d.account_id = a.account_id \
                  WHERE u.zoid = $1 AND u.role = 'super_admin' AND d.is_primary \
                  ORDER BY u.zuid LIMIT 1) AS super_admin",
        &by_id,
        |r| {
            Ok((
                r.get::<i64>("users")? as u64,
                r.get::<i64>("mailboxes")? as u64,
                email_opt(r, "super_admin")?,
            ))
        },
    );
    let (org, domains, (users_count, mailbox_count, super_admin)) =
        tokio::try_join!(org, org_domains(db, zoid), counts)?;
    let Some((name, created_ms)) = org else {
        return Ok(None);
    };
    Ok(Some(OrgView {
        zoid,
        name,
        created_ms,
        primary_domain: domains.first().cloned().unwrap_or_default(),
        domains,
        users_count,
        mailbox_count,
        super_admin,
    }))
}
