//! The write path of an account update on PostgreSQL: lock the owner → aggregate → rule →
//! persist → audit, in the caller's transaction.

use deadpool_postgres::Transaction;
use mailplane_domain::{
    AccountAggregate, AccountCommand, AccountId, AccountState, EmailAddress, Op, RuleError,
    UserAccount, Zoid, Zuid,
};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{exec, read, row_opt, rows};
use crate::access::not_found;
use crate::relay_key::{binding, RelayKey};
use crate::{now_ms, Applied, Grant, RequestMeta, StoreError, WriteError};

/// The account row the rule starts from, with its owner.
struct Target {
    state: AccountState,
    zoid: Zoid,
    user_display_name: String,
}

/// Locks the owner of the account (`FOR UPDATE` of the user row) and reads the account.
/// Every change to any of a user's accounts takes the same lock, on every node, so two
/// changes of one user never interleave (the reorder rule reads all of them).
async fn lock_target(tx: &Transaction<'_>, id: AccountId) -> Result<Option<Target>, StoreError> {
    // The lock and the read are sent together (one round trip). Statements of a pipeline
    // run one after the other on the server, so under READ COMMITTED the read, with a
    // snapshot of its own, sees every change committed by the transaction that held the
    // lock before us.
    let key = id.as_i64();
    let params: &[&(dyn ToSql + Sync)] = &[&key];
    let (locked, row) = tokio::try_join!(
        row_opt(
            tx,
            "SELECT u.zuid FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE a.account_id = $1 FOR UPDATE OF u",
            params,
        ),
        row_opt(
            tx,
            "SELECT a.zuid, a.kind, a.enabled, a.outgoing_blocked, a.incoming_blocked, u.zoid, u.display_name \
             FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE a.account_id = $1",
            params,
        )
    )?;
    let (Some(_), Some(r)) = (locked, row) else {
        return Ok(None);
    };
    Ok(Some(Target {
        state: AccountState {
            id,
            zuid: Zuid::from_db(r.try_get(0)?),
            kind: read::kind(r.try_get(1)?)?,
            enabled: r.try_get(2)?,
            outgoing_blocked: r.try_get(3)?,
            incoming_blocked: r.try_get(4)?,
        },
        zoid: Zoid::from_db(r.try_get(5)?),
        user_display_name: r.try_get(6)?,
    }))
}

async fn user_accounts(tx: &Transaction<'_>, zuid: Zuid) -> Result<Vec<UserAccount>, StoreError> {
    let found = rows(
        tx,
        "SELECT account_id, kind, sequence, external_address FROM accounts WHERE zuid = $1 ORDER BY sequence",
        &[&zuid.as_i64()],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(UserAccount {
                id: AccountId::from_db(r.try_get(0)?),
                kind: read::kind(r.try_get(1)?)?,
                sequence: r.try_get::<_, i32>(2)? as u32,
                external_address: r
                    .try_get::<_, Option<&str>>(3)?
                    .map(read::email)
                    .transpose()?,
            })
        })
        .collect()
}

async fn taken_elsewhere(
    tx: &Transaction<'_>,
    account: AccountId,
    candidates: Vec<EmailAddress>,
) -> Result<Vec<EmailAddress>, StoreError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<&str> = candidates.iter().map(EmailAddress::as_str).collect();
    let found = rows(
        tx,
        "SELECT address FROM addresses WHERE address = ANY($1) AND account_id <> $2",
        &[&list, &account.as_i64()],
    )
    .await?;
    found.iter().map(|r| read::email(r.try_get(0)?)).collect()
}

/// A unique violation on `addresses`: another transaction's address won the race.
pub(super) fn address_conflict(
    e: tokio_postgres::Error,
    field: &str,
    address: &EmailAddress,
) -> WriteError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        return RuleError::conflict(
            field,
            format!("{field} {address} already belongs to another account"),
        )
        .into();
    }
    e.into()
}

async fn persist(
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
                "UPDATE accounts SET enabled = $1 WHERE account_id = $2",
                &[&v, &id],
            )
            .await?;
        }
        Op::SetOutgoingBlocked(v) => {
            exec(
                tx,
                "UPDATE accounts SET outgoing_blocked = $1 WHERE account_id = $2",
                &[&v, &id],
            )
            .await?;
        }
        Op::SetIncomingBlocked(v) => {
            exec(
                tx,
                "UPDATE accounts SET incoming_blocked = $1 WHERE account_id = $2",
                &[&v, &id],
            )
            .await?;
        }
        Op::SetPrimaryAddress { new, old, add_new } => {
            exec(
                tx,
                "UPDATE addresses SET is_primary = FALSE WHERE address = $1 AND account_id = $2",
                &[&old.as_str(), &id],
            )
            .await?;
            if add_new {
                exec(
                    tx,
                    "INSERT INTO addresses (address, account_id, is_primary) VALUES ($1, $2, TRUE)",
                    &[&new.as_str(), &id],
                )
                .await
                .map_err(|e| address_conflict(e, "emailAddress", &new))?;
            } else {
                exec(
                    tx,
                    "UPDATE addresses SET is_primary = TRUE WHERE address = $1 AND account_id = $2",
                    &[&new.as_str(), &id],
                )
                .await?;
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
                    Some(i32::from(r.server_port)),
                    Some(r.user_name.as_str()),
                    Some(r.smtp_connection.as_str()),
                    Some(key.seal(secret.expose(), &binding(id, from_address.as_str()))?),
                ),
                None => (None, None, None, None, None),
            };
            match replaces {
                // Replacing keeps the sendMailId, so a retried request changes nothing.
                Some(sid) => {
                    exec(
                        tx,
                        "UPDATE identities SET display_name = $1, mode = $2, server_name = $3, server_port = $4, \
                         user_name = $5, password_enc = $6, smtp_connection = $7 WHERE send_mail_id = $8",
                        &[&display_name, &mode.as_str(), &server, &port, &user, &password, &conn, &sid.as_i64()],
                    )
                    .await?;
                }
                None => {
                    exec(
                        tx,
                        "INSERT INTO identities (account_id, from_address, display_name, mode, server_name, server_port, \
                         user_name, password_enc, smtp_connection, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        &[&id, &from_address.as_str(), &display_name, &mode.as_str(), &server, &port, &user, &password, &conn, &now_ms()],
                    )
                    .await?;
                }
            }
        }
        Op::DeleteIdentity(sid) => {
            exec(
                tx,
                "DELETE FROM identities WHERE send_mail_id = $1 AND account_id = $2",
                &[&sid.as_i64(), &id],
            )
            .await?;
        }
        Op::SetAccountOrder(order) => {
            // One statement: the new sequence of each account is its position in the list.
            let ids: Vec<i64> = order.iter().map(|a| a.as_i64()).collect();
            exec(
                tx,
                "UPDATE accounts SET sequence = o.pos FROM unnest($1::bigint[]) WITH ORDINALITY AS o(id, pos) \
                 WHERE accounts.account_id = o.id",
                &[&ids],
            )
            .await?;
        }
    }
    Ok(())
}

/// One audit row. `before`/`after` come from the domain, which never includes secrets.
#[allow(clippy::too_many_arguments)]
pub(super) async fn audit(
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
    exec(
        tx,
        "INSERT INTO audit (at_ms, request_id, actor_zuid, actor_token_id, client_addr, zoid, zuid, account_id, mode, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &now_ms(),
            &meta.request_id,
            &grant.actor.zuid.as_i64(),
            &grant.actor.token_id,
            &meta.client_addr,
            &zoid.as_i64(),
            &zuid.map(Zuid::as_i64),
            &account.map(AccountId::as_i64),
            &mode,
            &before.to_string(),
            &after.to_string(),
        ],
    )
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn apply(
    tx: &Transaction<'_>,
    key: &RelayKey,
    grant: &Grant,
    meta: &RequestMeta,
    zoid_in_url: Option<Zoid>,
    account: AccountId,
    body_zuid: Option<Zuid>,
    cmd: AccountCommand,
) -> Result<Applied, WriteError> {
    let target = lock_target(tx, account)
        .await?
        .ok_or_else(|| not_found(account))?;
    grant.check_target(
        account,
        target.state.zuid,
        target.zoid,
        zoid_in_url,
        body_zuid,
    )?;
    let mode = cmd.mode();
    let parts = cmd.reads();
    // The aggregate's reads are independent: sent together, they are pipelined on the
    // connection and cost one round trip, not five. Only the parts the rule reads are
    // asked for at all.
    let (org_domains, addresses, identities, user_accounts, taken_elsewhere) = tokio::try_join!(
        when(parts.org_domains, read::org_domains(tx, target.zoid)),
        when(parts.addresses, read::addresses(tx, account)),
        when(parts.identities, read::identities(tx, account)),
        when(parts.user_accounts, user_accounts(tx, target.state.zuid)),
        taken_elsewhere(tx, account, cmd.addresses_to_check()),
    )?;
    let agg = AccountAggregate {
        org_domains,
        addresses,
        identities,
        user_accounts,
        taken_elsewhere,
        user_display_name: target.user_display_name,
        account: target.state,
    };
    let change = mailplane_domain::apply(&agg, cmd)?;
    // The change and its audit row in one batch: the audit statement is sent behind the
    // change's without waiting for its answer. Should a change fail, its error answers
    // first (statements are answered in order) and the transaction is rolled back.
    let persist_all = async {
        for op in change.ops {
            persist(tx, key, account, op).await?;
        }
        Ok::<(), WriteError>(())
    };
    let audit_row = async {
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
        )
        .await
        .map_err(WriteError::from)
    };
    tokio::try_join!(persist_all, audit_row)?;
    let identities = if mode.answers_with_identities() {
        Some(read::identities(tx, account).await?)
    } else {
        None
    };
    Ok(Applied { identities })
}

/// A part of the aggregate, read only when the rule reads it (a future not polled sends
/// nothing).
async fn when<T>(
    needed: bool,
    load: impl std::future::Future<Output = Result<Vec<T>, StoreError>>,
) -> Result<Vec<T>, StoreError> {
    if needed {
        load.await
    } else {
        Ok(Vec::new())
    }
}
