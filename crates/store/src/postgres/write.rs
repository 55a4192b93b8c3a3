//! The write path of an account update on PostgreSQL: lock the owner → aggregate → rule →
//! persist → audit, in the caller's transaction.

use deadpool_postgres::GenericClient;
use mailplane_domain::{
    Access, AccountAggregate, AccountCommand, AccountId, AccountState, EmailAddress, Op, Role,
    RuleError, UserAccount, Zoid, Zuid,
};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::pipeline::Tx;
use super::{exec, provision, read, row_opt, rows};
use crate::access::not_found;
use crate::relay_key::{binding, RelayKey};
use crate::{now_ms, Applied, Grant, GrantKind, Principal, RequestMeta, StoreError, WriteError};

const SET_ENABLED: &str = "UPDATE accounts SET enabled = $1 WHERE account_id = $2";
const SET_OUTGOING_BLOCKED: &str =
    "UPDATE accounts SET outgoing_blocked = $1 WHERE account_id = $2";
const SET_INCOMING_BLOCKED: &str =
    "UPDATE accounts SET incoming_blocked = $1 WHERE account_id = $2";
const DELETE_IDENTITY: &str = "DELETE FROM identities WHERE send_mail_id = $1 AND account_id = $2";
// One statement: the new sequence of each account is its position in the list.
const SET_ACCOUNT_ORDER: &str =
    "UPDATE accounts SET sequence = o.pos FROM unnest($1::bigint[]) WITH ORDINALITY AS o(id, pos) \
     WHERE accounts.account_id = o.id";
const AUDIT_SQL: &str =
    "INSERT INTO audit (at_ms, request_id, actor_zuid, actor_token_id, client_addr, zoid, zuid, account_id, mode, before, after) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// The statement that persists `op`, when it is one statement with nothing to compute on
/// our side that could fail once it is sent (what [`Tx::commit_with`] needs).
fn single_statement(op: &Op) -> Option<&'static str> {
    match op {
        Op::SetEnabled(_) => Some(SET_ENABLED),
        Op::SetOutgoingBlocked(_) => Some(SET_OUTGOING_BLOCKED),
        Op::SetIncomingBlocked(_) => Some(SET_INCOMING_BLOCKED),
        Op::DeleteIdentity(_) => Some(DELETE_IDENTITY),
        Op::SetAccountOrder(_) => Some(SET_ACCOUNT_ORDER),
        // Two statements, the second sent once the first is answered; a password sealed
        // on our side before its statement is sent.
        Op::SetPrimaryAddress { .. } | Op::UpsertIdentity { .. } => None,
    }
}

/// The account row the rule starts from, with its owner.
struct Target {
    state: AccountState,
    zoid: Zoid,
    user_display_name: String,
    /// The owner's role: an admin may not change a super admin's accounts.
    owner_role: Role,
}

/// Locks the owner of the account (`FOR UPDATE` of the user row) and reads the account.
/// Every change to any of a user's accounts takes the same lock, on every node, so two
/// changes of one user never interleave (the reorder rule reads all of them).
async fn lock_target<C: GenericClient>(
    tx: &C,
    id: AccountId,
) -> Result<Option<Target>, StoreError> {
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
            "SELECT a.zuid, a.kind, a.enabled, a.outgoing_blocked, a.incoming_blocked, u.zoid, u.display_name, u.role \
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
        owner_role: {
            let role: &str = r.try_get(7)?;
            Role::parse(role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?
        },
    }))
}

async fn user_accounts<C: GenericClient>(
    tx: &C,
    zuid: Zuid,
) -> Result<Vec<UserAccount>, StoreError> {
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

async fn persist<C: GenericClient>(
    tx: &C,
    key: &RelayKey,
    account: AccountId,
    op: Op,
) -> Result<(), WriteError> {
    let id = account.as_i64();
    match op {
        Op::SetEnabled(v) => {
            exec(tx, SET_ENABLED, &[&v, &id]).await?;
        }
        Op::SetOutgoingBlocked(v) => {
            exec(tx, SET_OUTGOING_BLOCKED, &[&v, &id]).await?;
        }
        Op::SetIncomingBlocked(v) => {
            exec(tx, SET_INCOMING_BLOCKED, &[&v, &id]).await?;
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
            exec(tx, DELETE_IDENTITY, &[&sid.as_i64(), &id]).await?;
        }
        Op::SetAccountOrder(order) => {
            let ids: Vec<i64> = order.iter().map(|a| a.as_i64()).collect();
            exec(tx, SET_ACCOUNT_ORDER, &[&ids]).await?;
        }
    }
    Ok(())
}

/// One audit row. `before`/`after` come from the domain, which never includes secrets.
#[allow(clippy::too_many_arguments)]
pub(super) async fn audit<C: GenericClient>(
    tx: &C,
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
        AUDIT_SQL,
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

/// The account a change names, and what else the request says of it.
pub(super) struct Addressing {
    pub(super) account: AccountId,
    pub(super) zoid_in_url: Option<Zoid>,
    pub(super) body_zuid: Option<Zuid>,
}

/// One account change, in two round trips where the mode allows: `BEGIN`, the token and
/// the owner's lock together; then the change, its audit row and `COMMIT` together (see
/// [`pipeline`](super::pipeline)). Modes that answer with what they wrote, or whose
/// statements depend on each other, commit in a round trip of their own.
pub(super) async fn apply(
    tx: &Tx,
    key: &RelayKey,
    (digest, kind): (&str, GrantKind),
    meta: &RequestMeta,
    to: Addressing,
    cmd: AccountCommand,
) -> Result<Applied, WriteError> {
    let c = tx.client();
    let account = to.account;
    // The lock is taken before the token's verdict is known; a refused request holds it
    // only until its rollback, and the verdict still comes first in the answer.
    let (found, target) = tx
        .begin_with(async {
            tokio::try_join!(provision::authenticate(c, digest), lock_target(c, account))
        })
        .await?;
    let grant = Principal::grant_of(found, kind, Access::Update)?;
    let target = target.ok_or_else(|| not_found(account))?;
    grant.check_target(
        account,
        target.state.zuid,
        target.owner_role,
        target.zoid,
        to.zoid_in_url,
        to.body_zuid,
    )?;
    let mode = cmd.mode();
    let parts = cmd.reads();
    // The aggregate's reads are independent: sent together, they are pipelined on the
    // connection and cost one round trip, not five. Only the parts the rule reads are
    // asked for at all.
    let to_check = cmd.addresses_to_check();
    let (org_domains, addresses, identities, user_accounts, claims) = tokio::try_join!(
        when(parts.org_domains, read::org_domains(c, target.zoid)),
        when(parts.addresses, read::addresses(c, account)),
        when(parts.identities, read::identities(c, account)),
        when(parts.user_accounts, user_accounts(c, target.state.zuid)),
        read::address_facts(c, &to_check),
    )?;
    let agg = AccountAggregate {
        org_domains,
        addresses,
        identities,
        user_accounts,
        claims,
        zoid: target.zoid,
        user_display_name: target.user_display_name,
        account: target.state,
    };
    let change = mailplane_domain::apply(&agg, cmd)?;
    let with_commit = match change.ops.as_slice() {
        [op] if !mode.answers_with_identities() => single_statement(op),
        _ => None,
    };
    // The change and its audit row in one batch: the audit statement is sent behind the
    // change's without waiting for its answer. Should a change fail, its error answers
    // first (statements are answered in order) and the transaction is rolled back.
    let persist_all = async {
        for op in change.ops {
            persist(c, key, account, op).await?;
        }
        Ok::<(), WriteError>(())
    };
    let audit_row = async {
        audit(
            c,
            &grant,
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
    if let Some(sql) = with_commit {
        // Prepared first, so both statements go out on their first poll, ahead of COMMIT.
        c.prepare_cached(sql).await.map_err(StoreError::from)?;
        c.prepare_cached(AUDIT_SQL)
            .await
            .map_err(StoreError::from)?;
        tx.commit_with(async { tokio::try_join!(persist_all, audit_row) })
            .await?;
        return Ok(Applied { identities: None });
    }
    tokio::try_join!(persist_all, audit_row)?;
    let identities = if mode.answers_with_identities() {
        Some(read::identities(c, account).await?)
    } else {
        None
    };
    tx.commit().await?;
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
