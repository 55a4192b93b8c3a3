//! The write path of an account update: target → aggregate → rule → persist → audit, all
//! in the caller's transaction.

use mailplane_domain::{
    AccountAggregate, AccountCommand, AccountId, AccountKind, AccountState, EmailAddress, Op, Role,
    RuleError, UserAccount, Zoid, Zuid,
};
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;

use super::read;
use crate::access::not_found;
use crate::relay_key::{binding, RelayKey};
use crate::{now_ms, Applied, Grant, RequestMeta, StoreError, WriteError};

/// The account row the rule starts from, with its owner.
struct Target {
    state: AccountState,
    zoid: Zoid,
    user_display_name: String,
    /// The owner's role: an admin may not change a super admin's accounts.
    owner_role: Role,
}

fn find_target(tx: &Transaction<'_>, id: AccountId) -> Result<Option<Target>, StoreError> {
    let row = tx
        .prepare_cached(
            "SELECT a.zuid, a.kind, a.enabled, a.outgoing_blocked, a.incoming_blocked, u.zoid, u.display_name, u.role \
             FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE a.account_id = ?1",
        )?
        .query_row([id.as_i64()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((
        zuid,
        kind,
        enabled,
        outgoing_blocked,
        incoming_blocked,
        zoid,
        user_display_name,
        role,
    )) = row
    else {
        return Ok(None);
    };
    let owner_role =
        Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?;
    let kind = AccountKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("account kind {kind:?}")))?;
    Ok(Some(Target {
        state: AccountState {
            id,
            zuid: Zuid::from_db(zuid),
            kind,
            enabled,
            outgoing_blocked,
            incoming_blocked,
        },
        zoid: Zoid::from_db(zoid),
        user_display_name,
        owner_role,
    }))
}

fn user_accounts(tx: &Transaction<'_>, zuid: Zuid) -> Result<Vec<UserAccount>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT account_id, kind, sequence, external_address FROM accounts WHERE zuid = ?1 ORDER BY sequence",
    )?;
    let rows = stmt
        .query_map([zuid.as_i64()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, kind, sequence, ext)| {
            Ok(UserAccount {
                id: AccountId::from_db(id),
                kind: AccountKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("account kind {kind:?}")))?,
                sequence,
                external_address: ext.as_deref().map(read::email).transpose()?,
            })
        })
        .collect()
}

/// A unique-constraint failure on `addresses` means another transaction's address won:
/// a conflict for the client, not a server error.
fn address_conflict(e: rusqlite::Error, address: &EmailAddress) -> WriteError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            return WriteError::Rule(RuleError::conflict(
                "emailAddress",
                format!("emailAddress {address} already belongs to another account"),
            ));
        }
    }
    WriteError::from(e)
}

/// Runs a statement kept prepared on the connection: parsing one costs more than running
/// it.
fn exec(tx: &Transaction<'_>, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params)
}

fn persist(
    tx: &Transaction<'_>,
    key: &RelayKey,
    account: AccountId,
    op: Op,
) -> Result<(), WriteError> {
    let id = account.as_i64();
    match op {
        Op::SetEnabled(v) => {
            exec(
                tx,
                "UPDATE accounts SET enabled = ?1 WHERE account_id = ?2",
                params![v, id],
            )?;
        }
        Op::SetOutgoingBlocked(v) => {
            exec(
                tx,
                "UPDATE accounts SET outgoing_blocked = ?1 WHERE account_id = ?2",
                params![v, id],
            )?;
        }
        Op::SetIncomingBlocked(v) => {
            exec(
                tx,
                "UPDATE accounts SET incoming_blocked = ?1 WHERE account_id = ?2",
                params![v, id],
            )?;
        }
        Op::SetPrimaryAddress { new, old, add_new } => {
            exec(
                tx,
                "UPDATE addresses SET is_primary = 0 WHERE address = ?1 AND account_id = ?2",
                params![old.as_str(), id],
            )?;
            if add_new {
                exec(
                    tx,
                    "INSERT INTO addresses (address, account_id, is_primary) VALUES (?1, ?2, 1)",
                    params![new.as_str(), id],
                )
                .map_err(|e| address_conflict(e, &new))?;
            } else {
                exec(
                    tx,
                    "UPDATE addresses SET is_primary = 1 WHERE address = ?1 AND account_id = ?2",
                    params![new.as_str(), id],
                )?;
            }
        }
        Op::UpsertIdentity {
            replaces,
            from_address,
            display_name,
            mode,
            relay,
        } => {
            let (server, port, user, conn, password) = match &relay {
                Some((r, secret)) => (
                    Some(r.server_name.as_str()),
                    Some(r.server_port),
                    Some(r.user_name.as_str()),
                    Some(r.smtp_connection.as_str()),
                    Some(key.seal(secret.expose(), &binding(id, from_address.as_str()))?),
                ),
                None => (None, None, None, None, None),
            };
            match replaces {
                // Replacing keeps the sendMailId, so a retried request changes nothing.
                Some(sid) => exec(
                    tx,
                    "UPDATE identities SET display_name = ?1, mode = ?2, server_name = ?3, server_port = ?4, \
                     user_name = ?5, password_enc = ?6, smtp_connection = ?7 WHERE send_mail_id = ?8",
                    params![display_name, mode.as_str(), server, port, user, password, conn, sid.as_i64()],
                )?,
                None => exec(
                    tx,
                    "INSERT INTO identities (account_id, from_address, display_name, mode, server_name, server_port, \
                     user_name, password_enc, smtp_connection, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![id, from_address.as_str(), display_name, mode.as_str(), server, port, user, password, conn, now_ms()],
                )?,
            };
        }
        Op::DeleteIdentity(sid) => {
            exec(
                tx,
                "DELETE FROM identities WHERE send_mail_id = ?1 AND account_id = ?2",
                params![sid.as_i64(), id],
            )?;
        }
        Op::SetAccountOrder(order) => {
            let mut stmt =
                tx.prepare_cached("UPDATE accounts SET sequence = ?1 WHERE account_id = ?2")?;
            for (i, a) in order.iter().enumerate() {
                stmt.execute(params![i as i64 + 1, a.as_i64()])?;
            }
        }
    }
    Ok(())
}

/// One audit row. `before`/`after` come from the domain, which never includes secrets.
#[allow(clippy::too_many_arguments)]
pub(super) fn audit(
    tx: &Transaction<'_>,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    zuid: Option<Zuid>,
    account: Option<AccountId>,
    mode: &str,
    before: &Value,
    after: &Value,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO audit (at_ms, request_id, actor_zuid, actor_token_id, client_addr, zoid, zuid, account_id, mode, before, after) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        now_ms(),
        meta.request_id,
        grant.actor.zuid.as_i64(),
        grant.actor.token_id,
        meta.client_addr,
        zoid.as_i64(),
        zuid.map(Zuid::as_i64),
        account.map(AccountId::as_i64),
        mode,
        before.to_string(),
        after.to_string(),
    ])?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn apply(
    tx: &Transaction<'_>,
    key: &RelayKey,
    grant: &Grant,
    meta: &RequestMeta,
    zoid_in_url: Option<Zoid>,
    account: AccountId,
    body_zuid: Option<Zuid>,
    cmd: AccountCommand,
) -> Result<Applied, WriteError> {
    let target = find_target(tx, account)?.ok_or_else(|| not_found(account))?;
    grant.check_target(
        account,
        target.state.zuid,
        target.owner_role,
        target.zoid,
        zoid_in_url,
        body_zuid,
    )?;
    let mode = cmd.mode();
    let parts = cmd.reads();
    let agg = AccountAggregate {
        org_domains: when(parts.org_domains, || read::org_domains(tx, target.zoid))?,
        addresses: when(parts.addresses, || read::addresses(tx, account))?,
        identities: when(parts.identities, || read::identities(tx, account))?,
        user_accounts: when(parts.user_accounts, || user_accounts(tx, target.state.zuid))?,
        claims: read::address_facts(tx, &cmd.addresses_to_check())?,
        zoid: target.zoid,
        user_display_name: target.user_display_name,
        account: target.state,
    };
    let change = mailplane_domain::apply(&agg, cmd)?;
    for op in change.ops {
        persist(tx, key, account, op)?;
    }
    audit(
        tx,
        grant,
        meta,
        target.zoid,
        Some(agg.account.zuid),
        Some(account),
        mode.as_str(),
        &change.before,
        &change.after,
    )?;
    let identities = mode
        .answers_with_identities()
        .then(|| read::identities(tx, account))
        .transpose()?;
    Ok(Applied { identities })
}

/// A part of the aggregate, read only when the rule reads it.
fn when<T>(
    needed: bool,
    load: impl FnOnce() -> Result<Vec<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    if needed {
        load()
    } else {
        Ok(Vec::new())
    }
}
