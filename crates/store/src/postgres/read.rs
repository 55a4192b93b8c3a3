//! Reads on PostgreSQL: rows into views, for the read endpoints and inside write
//! transactions.

use deadpool_postgres::GenericClient;
use mailplane_domain::{
    AccountAddress, AccountId, AccountKind, AddressFacts, Claim, EmailAddress, Identity,
    IdentityMode, IdentityState, Relay, Role, SendMailId, SmtpConnection, Zoid, Zuid,
};
use tokio_postgres::Row;

use super::{one, row_opt, rows};
use crate::send_as::{claimed_addresses, settle};
use crate::{AccountView, OrgView, StoreError, UserRef};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

pub(super) fn email(s: &str) -> Result<EmailAddress, StoreError> {
    EmailAddress::parse(s).map_err(|_| corrupt("address", s))
}

pub(super) fn kind(s: &str) -> Result<AccountKind, StoreError> {
    AccountKind::parse(s).ok_or_else(|| corrupt("account kind", s))
}

pub(super) fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| corrupt("role", s))
}

const ACCOUNT_COLUMNS: &str =
    "a.account_id, a.zuid, u.zoid, u.role, u.first_name, u.last_name, u.display_name, \
     a.kind, a.sequence, a.external_address, a.enabled, a.outgoing_blocked, a.incoming_blocked, \
     a.imap_enabled, a.pop_enabled, a.activesync_enabled, a.created_ms, a.last_login_ms, \
     u.time_zone, u.language, u.country";

async fn finish<C: GenericClient>(c: &C, r: &Row) -> Result<AccountView, StoreError> {
    let mut v = AccountView {
        account_id: AccountId::from_db(r.try_get(0)?),
        zuid: Zuid::from_db(r.try_get(1)?),
        zoid: Zoid::from_db(r.try_get(2)?),
        role: role(r.try_get(3)?)?,
        first_name: r.try_get(4)?,
        last_name: r.try_get(5)?,
        display_name: r.try_get(6)?,
        kind: kind(r.try_get(7)?)?,
        sequence: u32::try_from(r.try_get::<_, i32>(8)?)
            .map_err(|_| corrupt("sequence", "negative"))?,
        external_address: r.try_get::<_, Option<&str>>(9)?.map(email).transpose()?,
        enabled: r.try_get(10)?,
        outgoing_blocked: r.try_get(11)?,
        incoming_blocked: r.try_get(12)?,
        imap_enabled: r.try_get(13)?,
        pop_enabled: r.try_get(14)?,
        activesync_enabled: r.try_get(15)?,
        created_ms: r.try_get(16)?,
        last_login_ms: r.try_get(17)?,
        time_zone: r.try_get(18)?,
        language: r.try_get(19)?,
        country: r.try_get(20)?,
        addresses: Vec::new(),
        identities: Vec::new(),
    };
    if v.kind == AccountKind::Hosted {
        // Pipelined on the connection: one round trip for both.
        (v.addresses, v.identities) =
            tokio::try_join!(addresses(c, v.account_id), identities(c, v.account_id))?;
    }
    Ok(v)
}

async fn views<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<AccountView>, StoreError> {
    let mut out = Vec::new();
    for r in rows(c, sql, params).await? {
        out.push(finish(c, &r).await?);
    }
    Ok(out)
}

pub(super) async fn account_view<C: GenericClient>(
    c: &C,
    id: AccountId,
) -> Result<Option<AccountView>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE a.account_id = $1");
    Ok(views(c, &sql, &[&id.as_i64()]).await?.pop())
}

pub(super) async fn user_account_views<C: GenericClient>(
    c: &C,
    zuid: Zuid,
) -> Result<Vec<AccountView>, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE a.zuid = $1 ORDER BY a.sequence"
    );
    views(c, &sql, &[&zuid.as_i64()]).await
}

pub(super) async fn org_account_views<C: GenericClient>(
    c: &C,
    zoid: Zoid,
    start: u32,
    limit: u32,
) -> Result<Vec<AccountView>, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN users u ON u.zuid = a.zuid \
         WHERE u.zoid = $1 AND a.kind = 'ZOHO_ACCOUNT' ORDER BY u.zuid LIMIT $2 OFFSET $3"
    );
    views(
        c,
        &sql,
        &[&zoid.as_i64(), &i64::from(limit), &i64::from(start)],
    )
    .await
}

pub(super) async fn hosted_account_of<C: GenericClient>(
    c: &C,
    zuid: Zuid,
) -> Result<Option<AccountView>, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN users u ON u.zuid = a.zuid \
         WHERE a.zuid = $1 AND a.kind = 'ZOHO_ACCOUNT'"
    );
    Ok(views(c, &sql, &[&zuid.as_i64()]).await?.pop())
}

pub(super) async fn resolve_user<C: GenericClient>(
    c: &C,
    zoid: Zoid,
    user: &UserRef,
) -> Result<Option<Zuid>, StoreError> {
    let row =
        match user {
            UserRef::Zuid(z) => {
                row_opt(
                    c,
                    "SELECT zuid FROM users WHERE zuid = $1 AND zoid = $2",
                    &[&z.as_i64(), &zoid.as_i64()],
                )
                .await?
            }
            UserRef::Email(e) => row_opt(
                c,
                "SELECT u.zuid FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
                 JOIN users u ON u.zuid = a.zuid WHERE d.address = $1 AND u.zoid = $2",
                &[&e.as_str(), &zoid.as_i64()],
            )
            .await?,
        };
    Ok(row.map(|r| Zuid::from_db(r.get(0))))
}

pub(super) async fn addresses<C: GenericClient>(
    c: &C,
    id: AccountId,
) -> Result<Vec<AccountAddress>, StoreError> {
    let found = rows(
        c,
        "SELECT address, is_primary FROM addresses WHERE account_id = $1 ORDER BY is_primary DESC, address",
        &[&id.as_i64()],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(AccountAddress {
                address: email(r.try_get(0)?)?,
                is_primary: r.try_get(1)?,
            })
        })
        .collect()
}

pub(super) async fn identities<C: GenericClient>(
    c: &C,
    id: AccountId,
) -> Result<Vec<Identity>, StoreError> {
    let found = rows(
        c,
        "SELECT send_mail_id, from_address, display_name, mode, server_name, server_port, user_name, smtp_connection \
         FROM identities WHERE account_id = $1 ORDER BY send_mail_id",
        &[&id.as_i64()],
    )
    .await?;
    let mut identities = found
        .iter()
        .map(|r| {
            let mode: &str = r.try_get(3)?;
            let mode = IdentityMode::parse(mode).ok_or_else(|| corrupt("identity mode", mode))?;
            let relay = match (
                r.try_get::<_, Option<String>>(4)?,
                r.try_get::<_, Option<i32>>(5)?,
                r.try_get::<_, Option<String>>(6)?,
                r.try_get::<_, Option<&str>>(7)?,
            ) {
                (Some(server_name), Some(port), Some(user_name), Some(conn)) => Some(Relay {
                    server_name,
                    server_port: u16::try_from(port)
                        .map_err(|_| corrupt("server port", &port.to_string()))?,
                    user_name,
                    smtp_connection: SmtpConnection::parse(conn)
                        .ok_or_else(|| corrupt("smtp connection", conn))?,
                }),
                _ => None,
            };
            Ok(Identity {
                id: SendMailId::from_db(r.try_get(0)?),
                from_address: email(r.try_get(1)?)?,
                display_name: r.try_get(2)?,
                mode,
                relay,
                state: IdentityState::Active,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let claimed = claimed_addresses(&identities);
    if !claimed.is_empty() {
        settle(id, &mut identities, &address_facts(c, &claimed).await?);
    }
    Ok(identities)
}

/// Who holds and who claims each of `addresses` (see `mailplane_domain::send_as`), in
/// one statement.
pub(super) async fn address_facts<C: GenericClient>(
    c: &C,
    addresses: &[EmailAddress],
) -> Result<Vec<AddressFacts>, StoreError> {
    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<&str> = addresses.iter().map(EmailAddress::as_str).collect();
    let found = rows(
        c,
        "SELECT x.address, \
                (SELECT account_id FROM addresses WHERE address = x.address), \
                (SELECT zoid FROM domains WHERE name = split_part(x.address, '@', 2)), \
                ARRAY(SELECT i.account_id FROM identities i WHERE i.from_address = x.address \
                      ORDER BY i.account_id), \
                ARRAY(SELECT u.zoid FROM identities i JOIN accounts a ON a.account_id = i.account_id \
                      JOIN users u ON u.zuid = a.zuid WHERE i.from_address = x.address \
                      ORDER BY i.account_id) \
         FROM unnest($1::text[]) AS x(address)",
        &[&list],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            let accounts: Vec<i64> = r.try_get(3)?;
            let zoids: Vec<i64> = r.try_get(4)?;
            Ok(AddressFacts {
                address: email(r.try_get(0)?)?,
                holder: r.try_get::<_, Option<i64>>(1)?.map(AccountId::from_db),
                domain_org: r.try_get::<_, Option<i64>>(2)?.map(Zoid::from_db),
                claims: accounts
                    .into_iter()
                    .zip(zoids)
                    .map(|(a, z)| Claim {
                        account: AccountId::from_db(a),
                        zoid: Zoid::from_db(z),
                    })
                    .collect(),
            })
        })
        .collect()
}

pub(super) async fn org_domains<C: GenericClient>(
    c: &C,
    zoid: Zoid,
) -> Result<Vec<String>, StoreError> {
    let found = rows(
        c,
        "SELECT name FROM domains WHERE zoid = $1 ORDER BY is_primary DESC, name",
        &[&zoid.as_i64()],
    )
    .await?;
    Ok(found.iter().map(|r| r.get(0)).collect())
}

pub(super) async fn org_view<C: GenericClient>(
    c: &C,
    zoid: Zoid,
) -> Result<Option<OrgView>, StoreError> {
    let Some(org) = row_opt(
        c,
        "SELECT name, created_ms FROM orgs WHERE zoid = $1",
        &[&zoid.as_i64()],
    )
    .await?
    else {
        return Ok(None);
    };
    let domains = org_domains(c, zoid).await?;
    let counts = one(
        c,
        "SELECT (SELECT COUNT(*) FROM users WHERE zoid = $1), \
                (SELECT COUNT(*) FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE u.zoid = $1 AND a.kind = 'ZOHO_ACCOUNT'), \
                (SELECT d.address FROM users u JOIN accounts a ON a.zuid = u.zuid JOIN addresses d ON d.account_id = a.account_id \
                  WHERE u.zoid = $1 AND u.role = 'super_admin' AND d.is_primary ORDER BY u.zuid LIMIT 1)",
        &[&zoid.as_i64()],
    )
    .await?;
    Ok(Some(OrgView {
        zoid,
        name: org.try_get(0)?,
        created_ms: org.try_get(1)?,
        primary_domain: domains.first().cloned().unwrap_or_default(),
        domains,
        users_count: counts.try_get::<_, i64>(0)? as u64,
        mailbox_count: counts.try_get::<_, i64>(1)? as u64,
        super_admin: counts
            .try_get::<_, Option<&str>>(2)?
            .map(email)
            .transpose()?,
    }))
}
