//! Reads: rows into views. Used by the read endpoints and, inside write transactions, to
//! load what a rule needs.

use mailplane_domain::{
    AccountAddress, AccountId, AccountKind, AddressFacts, Claim, EmailAddress, Identity,
    IdentityMode, IdentityState, Relay, Role, SendMailId, SmtpConnection, Zoid, Zuid,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::send_as::{claimed_addresses, settle};
use crate::{AccountView, OrgView, StoreError, UserRef};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

pub(super) fn email(s: &str) -> Result<EmailAddress, StoreError> {
    EmailAddress::parse(s).map_err(|_| corrupt("address", s))
}

const ACCOUNT_COLUMNS: &str =
    "a.account_id, a.zuid, u.zoid, u.role, u.first_name, u.last_name, u.display_name, \
     a.kind, a.sequence, a.external_address, a.enabled, a.outgoing_blocked, a.incoming_blocked, \
     a.imap_enabled, a.pop_enabled, a.activesync_enabled, a.created_ms, a.last_login_ms, \
     u.time_zone, u.language, u.country";

fn account_row(r: &Row<'_>) -> rusqlite::Result<(AccountView, String, String, Option<String>)> {
    let view = AccountView {
        account_id: AccountId::from_db(r.get(0)?),
        zuid: Zuid::from_db(r.get(1)?),
        zoid: Zoid::from_db(r.get(2)?),
        role: Role::Member,
        first_name: r.get(4)?,
        last_name: r.get(5)?,
        display_name: r.get(6)?,
        kind: AccountKind::Hosted,
        sequence: r.get(8)?,
        external_address: None,
        enabled: r.get(10)?,
        outgoing_blocked: r.get(11)?,
        incoming_blocked: r.get(12)?,
        imap_enabled: r.get(13)?,
        pop_enabled: r.get(14)?,
        activesync_enabled: r.get(15)?,
        created_ms: r.get(16)?,
        last_login_ms: r.get(17)?,
        time_zone: r.get(18)?,
        language: r.get(19)?,
        country: r.get(20)?,
        addresses: Vec::new(),
        identities: Vec::new(),
    };
    Ok((view, r.get(3)?, r.get(7)?, r.get(9)?))
}

/// Completes a row read with [`ACCOUNT_COLUMNS`]: enums parsed, addresses and identities
/// loaded.
fn finish(
    c: &Connection,
    (mut v, role, kind, ext): (AccountView, String, String, Option<String>),
) -> Result<AccountView, StoreError> {
    v.role = Role::parse(&role).ok_or_else(|| corrupt("role", &role))?;
    v.kind = AccountKind::parse(&kind).ok_or_else(|| corrupt("account kind", &kind))?;
    v.external_address = ext.as_deref().map(email).transpose()?;
    if v.kind == AccountKind::Hosted {
        v.addresses = addresses(c, v.account_id)?;
        v.identities = identities(c, v.account_id)?;
    }
    Ok(v)
}

pub(super) fn account_view(
    c: &Connection,
    id: AccountId,
) -> Result<Option<AccountView>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE a.account_id = ?1");
    let row = c
        .prepare_cached(&sql)?
        .query_row([id.as_i64()], account_row)
        .optional()?;
    row.map(|r| finish(c, r)).transpose()
}

fn views(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<AccountView>, StoreError> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params, account_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(|r| finish(c, r)).collect()
}

pub(super) fn user_account_views(
    c: &Connection,
    zuid: Zuid,
) -> Result<Vec<AccountView>, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE a.zuid = ?1 ORDER BY a.sequence"
    );
    views(c, &sql, [zuid.as_i64()])
}

pub(super) fn org_account_views(
    c: &Connection,
    zoid: Zoid,
    start: u32,
    limit: u32,
) -> Result<Vec<AccountView>, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN users u ON u.zuid = a.zuid \
         WHERE u.zoid = ?1 AND a.kind = 'ZOHO_ACCOUNT' ORDER BY u.zuid LIMIT ?2 OFFSET ?3"
    );
    views(c, &sql, params![zoid.as_i64(), limit, start])
}

pub(super) fn hosted_account_of(
    c: &Connection,
    zuid: Zuid,
) -> Result<Option<AccountView>, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN users u ON u.zuid = a.zuid \
         WHERE a.zuid = ?1 AND a.kind = 'ZOHO_ACCOUNT'"
    );
    Ok(views(c, &sql, [zuid.as_i64()])?.into_iter().next())
}

/// The zuid of a user of the organization, by zuid or by any of its addresses.
pub(super) fn resolve_user(
    c: &Connection,
    zoid: Zoid,
    user: &UserRef,
) -> Result<Option<Zuid>, StoreError> {
    let found: Option<i64> = match user {
        UserRef::Zuid(z) => c
            .query_row(
                "SELECT zuid FROM users WHERE zuid = ?1 AND zoid = ?2",
                params![z.as_i64(), zoid.as_i64()],
                |r| r.get(0),
            )
            .optional()?,
        UserRef::Email(e) => c
            .query_row(
                "SELECT u.zuid FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
                 JOIN users u ON u.zuid = a.zuid WHERE d.address = ?1 AND u.zoid = ?2",
                params![e.as_str(), zoid.as_i64()],
                |r| r.get(0),
            )
            .optional()?,
    };
    Ok(found.map(Zuid::from_db))
}

pub(super) fn addresses(c: &Connection, id: AccountId) -> Result<Vec<AccountAddress>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT address, is_primary FROM addresses WHERE account_id = ?1 ORDER BY is_primary DESC, address",
    )?;
    let rows = stmt
        .query_map([id.as_i64()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(a, p)| {
            Ok(AccountAddress {
                address: email(&a)?,
                is_primary: p,
            })
        })
        .collect()
}

pub(super) fn identities(c: &Connection, id: AccountId) -> Result<Vec<Identity>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT send_mail_id, from_address, display_name, mode, server_name, server_port, user_name, smtp_connection \
         FROM identities WHERE account_id = ?1 ORDER BY send_mail_id",
    )?;
    type IdentityRow = (
        i64,
        String,
        String,
        String,
        Option<String>,
        Option<u16>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<IdentityRow> = stmt
        .query_map([id.as_i64()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut identities = rows
        .into_iter()
        .map(|(id, from, display, mode, server, port, user, conn)| {
            let mode = IdentityMode::parse(&mode).ok_or_else(|| corrupt("identity mode", &mode))?;
            let relay = match (server, port, user, conn) {
                (Some(server_name), Some(server_port), Some(user_name), Some(conn)) => {
                    Some(Relay {
                        server_name,
                        server_port,
                        user_name,
                        smtp_connection: SmtpConnection::parse(&conn)
                            .ok_or_else(|| corrupt("smtp connection", &conn))?,
                    })
                }
                _ => None,
            };
            Ok(Identity {
                id: SendMailId::from_db(id),
                from_address: email(&from)?,
                display_name: display,
                mode,
                relay,
                state: IdentityState::Active,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let claimed = claimed_addresses(&identities);
    if !claimed.is_empty() {
        settle(id, &mut identities, &address_facts(c, &claimed)?);
    }
    Ok(identities)
}

/// Who holds and who claims each of `addresses` (see `mailplane_domain::send_as`).
pub(super) fn address_facts(
    c: &Connection,
    addresses: &[EmailAddress],
) -> Result<Vec<AddressFacts>, StoreError> {
    let mut owner = c.prepare_cached(
        "SELECT (SELECT account_id FROM addresses WHERE address = ?1), \
                (SELECT zoid FROM domains WHERE name = ?2)",
    )?;
    let mut claims = c.prepare_cached(
        "SELECT i.account_id, u.zoid FROM identities i \
         JOIN accounts a ON a.account_id = i.account_id JOIN users u ON u.zuid = a.zuid \
         WHERE i.from_address = ?1 ORDER BY i.account_id",
    )?;
    addresses
        .iter()
        .map(|a| {
            let (holder, domain_org) = owner.query_row(params![a.as_str(), a.domain()], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
            })?;
            let claims = claims
                .query_map([a.as_str()], |r| {
                    Ok(Claim {
                        account: AccountId::from_db(r.get(0)?),
                        zoid: Zoid::from_db(r.get(1)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(AddressFacts {
                address: a.clone(),
                holder: holder.map(AccountId::from_db),
                domain_org: domain_org.map(Zoid::from_db),
                claims,
            })
        })
        .collect()
}

pub(super) fn org_domains(c: &Connection, zoid: Zoid) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT name FROM domains WHERE zoid = ?1 ORDER BY is_primary DESC, name",
    )?;
    let names = stmt
        .query_map([zoid.as_i64()], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}

pub(super) fn org_view(c: &Connection, zoid: Zoid) -> Result<Option<OrgView>, StoreError> {
    let Some((name, created_ms)) = c
        .query_row(
            "SELECT name, created_ms FROM orgs WHERE zoid = ?1",
            [zoid.as_i64()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )
        .optional()?
    else {
        return Ok(None);
    };
    let domains = org_domains(c, zoid)?;
    let users_count: u64 = c.query_row(
        "SELECT COUNT(*) FROM users WHERE zoid = ?1",
        [zoid.as_i64()],
        |r| r.get(0),
    )?;
    let mailbox_count: u64 = c.query_row(
        "SELECT COUNT(*) FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE u.zoid = ?1 AND a.kind = 'ZOHO_ACCOUNT'",
        [zoid.as_i64()],
        |r| r.get(0),
    )?;
    let super_admin: Option<String> = c
        .query_row(
            "SELECT d.address FROM users u JOIN accounts a ON a.zuid = u.zuid JOIN addresses d ON d.account_id = a.account_id \
             WHERE u.zoid = ?1 AND u.role = 'super_admin' AND d.is_primary = 1 ORDER BY u.zuid LIMIT 1",
            [zoid.as_i64()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(Some(OrgView {
        zoid,
        name,
        primary_domain: domains.first().cloned().unwrap_or_default(),
        domains,
        users_count,
        mailbox_count,
        super_admin: super_admin.as_deref().map(email).transpose()?,
        created_ms,
    }))
}
