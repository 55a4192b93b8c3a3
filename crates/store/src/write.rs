//! The write path of an account update: token → lock the owner → aggregate → rule →
//! persist → audit, all in the caller's transaction.

use mailplane_domain::{
    Access, AccountAggregate, AccountCommand, AccountId, AccountState, AliasId, Answer,
    EmailAddress, IdentityMode, Op, Role, RuleError, UserAccount, Zoid, Zuid,
};
use serde_json::Value;

use crate::access::UpdateTarget;
use crate::db::{is_unique_violation, Db, Dialect, Param, Tx};
use crate::read;
use crate::relay_key::{binding, RelayKey};
use crate::{
    now_ms, provision, Applied, Grant, GrantKind, Principal, RequestMeta, StoreError, WriteError,
};

const SET_ENABLED: &str = "UPDATE accounts SET enabled = $1 WHERE account_id = $2";
const SET_OUTGOING_BLOCKED: &str =
    "UPDATE accounts SET outgoing_blocked = $1 WHERE account_id = $2";
const SET_INCOMING_BLOCKED: &str =
    "UPDATE accounts SET incoming_blocked = $1 WHERE account_id = $2";
const SET_IMAP_ENABLED: &str = "UPDATE accounts SET imap_enabled = $1 WHERE account_id = $2";
const SET_POP_ENABLED: &str = "UPDATE accounts SET pop_enabled = $1 WHERE account_id = $2";
const DELETE_IDENTITY: &str = "DELETE FROM identities WHERE send_mail_id = $1 AND account_id = $2";
const ADD_ALIAS: &str =
    "INSERT INTO addresses (address, account_id, is_primary) VALUES ($1, $2, FALSE) RETURNING id";
const SET_PASSWORD: &str =
    "UPDATE users SET password_hash = $1, password_one_time = $2 WHERE zuid = $3";
// A name not given (NULL) stays as it is.
const SET_PERSONAL_INFO: &str =
    "UPDATE users SET first_name = COALESCE($1, first_name), last_name = COALESCE($2, last_name), \
     display_name = COALESCE($3, display_name) WHERE zuid = $4";
// Never the primary, whatever the rule said: an account always keeps one address.
const DELETE_ALIAS: &str =
    "DELETE FROM addresses WHERE address = $1 AND account_id = $2 AND NOT is_primary";
const SET_FORWARD_DELETE_COPY: &str =
    "UPDATE accounts SET forward_delete_copy = $1 WHERE account_id = $2";
const AUDIT: &str =
    "INSERT INTO audit (at_ms, request_id, actor_zuid, actor_token_id, client_addr, zoid, zuid, account_id, mode, before, after, via) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// One statement sets every account's new sequence, its position in `$1`, a JSON list of
/// account ids. The one statement whose text differs by dialect: each reads a JSON array
/// its own way.
fn set_account_order(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "UPDATE accounts SET sequence = (SELECT o.key + 1 FROM json_each($1) o WHERE o.value = accounts.account_id) \
             WHERE account_id IN (SELECT value FROM json_each($1))"
        }
        // Through an array: `unnest` of an array is planned as the few rows it is, so each
        // account is found by its key. Joined to `jsonb_array_elements_text` directly, the
        // planner expects 100 rows and scans the whole table.
        Dialect::Postgres => {
            "UPDATE accounts SET sequence = o.pos \
             FROM unnest(ARRAY(SELECT e::bigint FROM jsonb_array_elements_text($1::text::jsonb) \
                               WITH ORDINALITY AS x(e, n) ORDER BY n)) \
             WITH ORDINALITY AS o(id, pos) WHERE accounts.account_id = o.id"
        }
    }
}

/// The statement that persists `op`, when it is one statement with nothing to compute on
/// our side that could fail once it is sent (what [`Tx::commit_with`] needs).
fn single_statement(op: &Op, dialect: Dialect) -> Option<&'static str> {
    match op {
        Op::SetEnabled(_) => Some(SET_ENABLED),
        Op::SetOutgoingBlocked(_) => Some(SET_OUTGOING_BLOCKED),
        Op::SetIncomingBlocked(_) => Some(SET_INCOMING_BLOCKED),
        Op::SetImapEnabled(_) => Some(SET_IMAP_ENABLED),
        Op::SetPopEnabled(_) => Some(SET_POP_ENABLED),
        Op::DeleteIdentity(_) => Some(DELETE_IDENTITY),
        Op::DeleteAlias(_) => Some(DELETE_ALIAS),
        Op::SetPassword { .. } => Some(SET_PASSWORD),
        Op::SetForwardDeleteCopy(_) => Some(SET_FORWARD_DELETE_COPY),
        Op::SetPersonalInfo(_) => Some(SET_PERSONAL_INFO),
        Op::SetAccountOrder(_) => Some(set_account_order(dialect)),
        // Two statements, the second sent once the first is answered; a password sealed
        // on our side before its statement is sent; an id to read back.
        // Three tables for the tokens.
        Op::SetPrimaryAddress { .. }
        | Op::UpsertIdentity { .. }
        | Op::ConfirmIdentityOwner(_)
        | Op::AddAlias(_)
        | Op::RevokeUserTokens
        | Op::EndConsoleSessions => None,
        // The forwarding modes answer with the forwards, read back after the change.
        Op::AddForward { .. }
        | Op::SetForwardKey { .. }
        | Op::ConfirmForward(_)
        | Op::SetForwardEnabled { .. }
        | Op::DeleteForward(_) => None,
    }
}

/// The account row the rule starts from, with its owner.
struct Target {
    state: AccountState,
    zoid: Zoid,
    user_first_name: String,
    user_last_name: String,
    user_display_name: String,
    user_one_time_password: bool,
    /// The owner's role: an admin may not change a super admin's accounts.
    owner_role: Role,
}

/// The columns of the account row a rule starts from (`a` the account, `u` its user).
macro_rules! select_target {
    ($($rest:literal)*) => {
        concat!(
            "SELECT a.account_id, a.zuid, a.kind, a.enabled, a.outgoing_blocked, a.incoming_blocked, \
                    a.imap_enabled, a.pop_enabled, a.forward_delete_copy, u.zoid, u.first_name, \
                    u.last_name, u.display_name, \
                    u.password_one_time, u.role \
             FROM accounts a JOIN users u ON u.zuid = a.zuid ",
            $($rest),*
        )
    };
}

/// Locks the owner of the account and reads the account. Every change to any of a user's
/// accounts takes the same lock (on PostgreSQL `FOR UPDATE` of the user row, which every
/// node honours; on SQLite the one write lock), so two changes of one user never
/// interleave: the reorder rule reads all of them.
async fn lock_target<D: Db>(db: &D, target: UpdateTarget) -> Result<Option<Target>, StoreError> {
    // The lock and the read are sent together (one round trip). Statements of a pipeline
    // run one after the other on the server, so under READ COMMITTED the read, with a
    // snapshot of its own, sees every change committed by the transaction that held the
    // lock before us.
    let (lock, row, key) = match target {
        UpdateTarget::Account(id) => (
            "SELECT u.zuid FROM accounts a JOIN users u ON u.zuid = a.zuid WHERE a.account_id = $1 FOR UPDATE OF u",
            select_target!("WHERE a.account_id = $1"),
            id.as_i64(),
        ),
        // A user's hosted account is found under the user's lock, so it is the one that
        // stays theirs until the change commits.
        UpdateTarget::HostedAccountOf(zuid) => (
            "SELECT zuid FROM users WHERE zuid = $1 FOR UPDATE",
            select_target!(
                "WHERE a.zuid = $1 AND a.kind = 'ZOHO_ACCOUNT' ORDER BY a.sequence LIMIT 1"
            ),
            zuid.as_i64(),
        ),
    };
    let params: &[&dyn Param] = &[&key];
    let (_, target) = tokio::try_join!(
        db.lock(lock, params),
        db.row(row, params, |r| {
            Ok(Target {
                state: AccountState {
                    id: AccountId::from_db(r.get("account_id")?),
                    zuid: Zuid::from_db(r.get("zuid")?),
                    kind: read::kind(&r.get::<String>("kind")?)?,
                    enabled: r.get("enabled")?,
                    outgoing_blocked: r.get("outgoing_blocked")?,
                    incoming_blocked: r.get("incoming_blocked")?,
                    imap_enabled: r.get("imap_enabled")?,
                    pop_enabled: r.get("pop_enabled")?,
                    forward_delete_copy: r.get("forward_delete_copy")?,
                },
                zoid: Zoid::from_db(r.get("zoid")?),
                user_first_name: r.get("first_name")?,
                user_last_name: r.get("last_name")?,
                user_display_name: r.get("display_name")?,
                user_one_time_password: r.get("password_one_time")?,
                owner_role: read::role(&r.get::<String>("role")?)?,
            })
        })
    )?;
    Ok(target)
}

async fn user_accounts<D: Db>(db: &D, zuid: Zuid) -> Result<Vec<UserAccount>, StoreError> {
    db.rows(
        "SELECT account_id, kind, sequence, external_address FROM accounts WHERE zuid = $1 ORDER BY sequence",
        &[&zuid.as_i64()],
        |r| {
            Ok(UserAccount {
                id: AccountId::from_db(r.get("account_id")?),
                kind: read::kind(&r.get::<String>("kind")?)?,
                sequence: read::sequence(r)?,
                external_address: read::email_opt(r, "external_address")?,
            })
        },
    )
    .await
}

/// A unique violation on `addresses`: another transaction's address won the race, a
/// conflict for the client rather than a server error.
pub(crate) fn address_conflict(e: StoreError, field: &str, address: &EmailAddress) -> WriteError {
    if is_unique_violation(&e) {
        return RuleError::address_taken(field, address).into();
    }
    e.into()
}

/// Persists one operation on `account` of `owner`; the address it added, with its new id,
/// if it added one.
async fn persist<D: Db>(
    db: &D,
    key: &RelayKey,
    (account, owner): (AccountId, Zuid),
    op: Op,
) -> Result<Option<(EmailAddress, AliasId)>, WriteError> {
    let id = account.as_i64();
    match op {
        Op::SetEnabled(v) => {
            db.exec(SET_ENABLED, &[&v, &id]).await?;
        }
        Op::SetOutgoingBlocked(v) => {
            db.exec(SET_OUTGOING_BLOCKED, &[&v, &id]).await?;
        }
        Op::SetIncomingBlocked(v) => {
            db.exec(SET_INCOMING_BLOCKED, &[&v, &id]).await?;
        }
        Op::SetImapEnabled(v) => {
            db.exec(SET_IMAP_ENABLED, &[&v, &id]).await?;
        }
        Op::SetPopEnabled(v) => {
            db.exec(SET_POP_ENABLED, &[&v, &id]).await?;
        }
        Op::SetPrimaryAddress { new, old, add_new } => {
            db.exec(
                "UPDATE addresses SET is_primary = FALSE WHERE address = $1 AND account_id = $2",
                &[&old.as_str(), &id],
            )
            .await?;
            if add_new {
                db.exec(
                    "INSERT INTO addresses (address, account_id, is_primary) VALUES ($1, $2, TRUE)",
                    &[&new.as_str(), &id],
                )
                .await
                .map_err(|e| address_conflict(e, "emailAddress", &new))?;
            } else {
                db.exec(
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
            key: new_key,
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
            let (digest, expires, sent) = match &new_key {
                Some(k) => (Some(k.digest.as_str()), Some(k.expires_ms), Some(k.sent_ms)),
                None => (None, None, None),
            };
            let now = now_ms();
            // A relay is checked as soon as a node gets to it; anything else never is.
            let next_check = (mode == IdentityMode::ExtFrom).then_some(now);
            match replaces {
                // Replacing keeps the sendMailId, so a retried request changes nothing
                // but the relay check, which starts over: the details may be new. The
                // owner stays confirmed (same account, same address); a key not renewed
                // stays the one to give back.
                Some(sid) => {
                    db.exec(
                        "UPDATE identities SET display_name = $1, mode = $2, server_name = $3, server_port = $4, \
                         user_name = $5, password_enc = $6, smtp_connection = $7, \
                         key_digest = COALESCE($8, key_digest), key_expires_ms = COALESCE($9, key_expires_ms), \
                         key_sent_ms = COALESCE($10, key_sent_ms), relay_state = 'pending', relay_error = NULL, \
                         relay_checked_ms = NULL, next_check_ms = $11, lease_until_ms = NULL, lease_node = NULL, \
                         relay_version = relay_version + 1 WHERE send_mail_id = $12",
                        &[&display_name, &mode.as_str(), &server, &port, &user, &password, &conn,
                          &digest, &expires, &sent, &next_check, &sid.as_i64()],
                    )
                    .await?;
                }
                None => {
                    db.exec(
                        "INSERT INTO identities (account_id, from_address, display_name, mode, server_name, server_port, \
                         user_name, password_enc, smtp_connection, created_ms, key_digest, key_expires_ms, key_sent_ms, \
                         next_check_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                        &[&id, &from_address.as_str(), &display_name, &mode.as_str(), &server, &port, &user, &password, &conn, &now,
                          &digest, &expires, &sent, &next_check],
                    )
                    .await?;
                }
            }
        }
        Op::ConfirmIdentityOwner(sid) => {
            // The key is spent. Among confirmed identities an address is unique: should
            // another account's confirmation have won the race, this one is a conflict.
            db.exec(
                "UPDATE identities SET owner_confirmed = TRUE, confirmed_ms = $1, key_digest = NULL, \
                 key_expires_ms = NULL, key_sent_ms = NULL WHERE send_mail_id = $2 AND account_id = $3",
                &[&now_ms(), &sid.as_i64(), &id],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    RuleError::conflict(
                        "sendMailId",
                        "sendMailId: another account has confirmed its ownership of this address",
                    )
                    .into()
                } else {
                    WriteError::from(e)
                }
            })?;
        }
        Op::DeleteIdentity(sid) => {
            db.exec(DELETE_IDENTITY, &[&sid.as_i64(), &id]).await?;
        }
        Op::SetAccountOrder(order) => {
            let ids = Value::from(order.iter().map(|a| a.as_i64()).collect::<Vec<_>>()).to_string();
            db.exec(set_account_order(db.dialect()), &[&ids]).await?;
        }
        Op::AddAlias(address) => {
            // The id comes from the table's own counter (SQLite) or sequence (PostgreSQL).
            let alias = db
                .one(ADD_ALIAS, &[&address.as_str(), &id], |r| {
                    Ok(AliasId::from_db(r.get("id")?))
                })
                .await
                .map_err(|e| address_conflict(e, "emailAlias", &address))?;
            return Ok(Some((address, alias)));
        }
        Op::DeleteAlias(address) => {
            db.exec(DELETE_ALIAS, &[&address.as_str(), &id]).await?;
        }
        Op::SetPassword { hash, one_time } => {
            db.exec(SET_PASSWORD, &[&hash.as_str(), &one_time, &owner.as_i64()])
                .await?;
        }
        Op::SetPersonalInfo(info) => {
            db.exec(
                SET_PERSONAL_INFO,
                &[
                    &info.first_name,
                    &info.last_name,
                    &info.display_name,
                    &owner.as_i64(),
                ],
            )
            .await?;
        }
        Op::SetForwardDeleteCopy(v) => {
            db.exec(SET_FORWARD_DELETE_COPY, &[&v, &id]).await?;
        }
        Op::AddForward { to, key } => {
            db.exec(
                "INSERT INTO mail_forwards (account_id, address, key_digest, key_expires_ms, key_sent_ms, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &to.as_str(), &key.digest, &key.expires_ms, &key.sent_ms, &now_ms()],
            )
            .await?;
        }
        Op::SetForwardKey { to, key } => {
            db.exec(
                "UPDATE mail_forwards SET key_digest = $1, key_expires_ms = $2, key_sent_ms = $3 \
                 WHERE account_id = $4 AND address = $5",
                &[
                    &key.digest,
                    &key.expires_ms,
                    &key.sent_ms,
                    &id,
                    &to.as_str(),
                ],
            )
            .await?;
        }
        Op::ConfirmForward(to) => {
            // The key is spent: a second confirmation with it finds none.
            db.exec(
                "UPDATE mail_forwards SET confirmed = TRUE, key_digest = NULL, key_expires_ms = NULL, \
                 key_sent_ms = NULL WHERE account_id = $1 AND address = $2",
                &[&id, &to.as_str()],
            )
            .await?;
        }
        Op::SetForwardEnabled {
            to,
            enabled,
            reason,
        } => {
            db.exec(
                "UPDATE mail_forwards SET enabled = $1, disabled_reason = $2 WHERE account_id = $3 AND address = $4",
                &[&enabled, &reason, &id, &to.as_str()],
            )
            .await?;
        }
        Op::DeleteForward(to) => {
            db.exec(
                "DELETE FROM mail_forwards WHERE account_id = $1 AND address = $2",
                &[&id, &to.as_str()],
            )
            .await?;
        }
        Op::RevokeUserTokens => {
            // Access tokens (minted from a refresh token or issued on their own), refresh
            // tokens, and codes of a sign-in made with the old password that are not
            // exchanged yet: the three are sent together.
            let (now, zuid) = (crate::now_ms(), owner.as_i64());
            let params: &[&dyn Param] = &[&now, &zuid];
            tokio::try_join!(
                db.exec(
                    "UPDATE tokens SET revoked_ms = $1 WHERE zuid = $2 AND revoked_ms IS NULL",
                    params,
                ),
                db.exec(
                    "UPDATE refresh_tokens SET revoked_ms = $1 WHERE zuid = $2 AND revoked_ms IS NULL",
                    params,
                ),
                db.exec(
                    "UPDATE auth_codes SET used_ms = $1 WHERE zuid = $2 AND used_ms IS NULL",
                    params,
                ),
            )?;
        }
        Op::EndConsoleSessions => {
            db.exec(
                "UPDATE tokens SET revoked_ms = $1 WHERE zuid = $2 AND kind = 'console' AND revoked_ms IS NULL",
                &[&crate::now_ms(), &owner.as_i64()],
            )
            .await?;
        }
    }
    Ok(None)
}

/// What an audit row says: who, from where, on which organization, user and account.
pub(crate) struct AuditRow<'a> {
    pub grant: &'a Grant,
    pub meta: &'a RequestMeta,
    pub zoid: Zoid,
    pub zuid: Option<Zuid>,
    pub account: Option<AccountId>,
    pub mode: &'a str,
}

/// One audit row. `before`/`after` come from the domain, which never includes secrets.
pub(crate) async fn audit<D: Db>(
    db: &D,
    row: AuditRow<'_>,
    before: &Value,
    after: &Value,
) -> Result<(), StoreError> {
    db.exec(
        AUDIT,
        &[
            &now_ms(),
            &row.meta.request_id,
            &row.grant.actor.zuid.as_i64(),
            &row.grant.actor.token_id,
            &row.meta.client_addr,
            &row.zoid.as_i64(),
            &row.zuid.map(Zuid::as_i64),
            &row.account.map(AccountId::as_i64),
            &row.mode,
            &before.to_string(),
            &after.to_string(),
            &row.grant.actor.via.as_str(),
        ],
    )
    .await?;
    Ok(())
}

/// The account a change names, and what else the request says of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addressing {
    pub target: UpdateTarget,
    pub zoid_in_url: Option<Zoid>,
    pub body_zuid: Option<Zuid>,
}

/// One account change, checked against the caller's token in its own transaction. On
/// PostgreSQL that is two round trips where the mode allows: `BEGIN`, the token and the
/// owner's lock together; then the change, its audit row and `COMMIT` together (see
/// `postgres::pipeline`). Modes that answer with what they wrote, or whose statements
/// depend on each other, commit in a round trip of their own.
pub(crate) async fn apply<D: Tx>(
    db: &D,
    key: &RelayKey,
    (digest, kind): (&str, GrantKind),
    meta: &RequestMeta,
    to: Addressing,
    cmd: AccountCommand,
) -> Result<Applied, WriteError> {
    // The lock is taken before the token's verdict is known; a refused request holds it
    // only until its rollback, and the verdict still comes first in the answer.
    let (found, target) = tokio::try_join!(
        provision::authenticate(db, digest),
        lock_target(db, to.target)
    )?;
    let grant = Principal::grant_of(found, kind, Access::Update)?;
    let target = target.ok_or_else(|| to.target.not_found())?;
    let account = target.state.id;
    grant.check_target(
        to.target,
        target.state.zuid,
        target.owner_role,
        target.zoid,
        to.zoid_in_url,
        to.body_zuid,
    )?;
    let mode = cmd.mode();
    let parts = cmd.reads();
    // The aggregate's reads are independent: sent together, they are pipelined on
    // PostgreSQL and cost one round trip, not five. Only the parts the rule reads are
    // asked for at all.
    let to_check = cmd.addresses_to_check();
    let (org_domains, addresses, identities, user_accounts, forwards, claims) = tokio::try_join!(
        when(parts.org_domains, read::org_domains(db, target.zoid)),
        when(parts.addresses, read::addresses(db, account)),
        when(parts.identities, read::identities(db, account)),
        when(parts.user_accounts, user_accounts(db, target.state.zuid)),
        when(parts.forwards, read::forwards(db, account)),
        read::address_facts(db, &to_check),
    )?;
    let agg = AccountAggregate {
        org_domains,
        addresses,
        identities,
        forwards,
        user_accounts,
        claims,
        zoid: target.zoid,
        user_first_name: target.user_first_name,
        user_last_name: target.user_last_name,
        user_display_name: target.user_display_name,
        user_one_time_password: target.user_one_time_password,
        account: target.state,
    };
    let change = mailplane_domain::apply(&agg, cmd)?;
    let answer = mode.spec().answer;
    // The addresses that are to be mailed a new key once the change commits.
    let keyed: Vec<EmailAddress> = change
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::UpsertIdentity {
                from_address,
                key: Some(_),
                ..
            } => Some(from_address.clone()),
            _ => None,
        })
        .collect();
    let with_commit = match change.ops.as_slice() {
        [op] if answer == Answer::StatusOnly => single_statement(op, db.dialect()),
        _ => None,
    };
    // The change and its audit row in one batch: the audit statement is sent behind the
    // change's without waiting for its answer. Should a change fail, its error answers
    // first (statements are answered in order) and the transaction is rolled back.
    let persist_all = async {
        let mut added = Vec::new();
        for op in change.ops {
            added.extend(persist(db, key, (account, agg.account.zuid), op).await?);
        }
        Ok::<_, WriteError>(added)
    };
    let row = AuditRow {
        grant: &grant,
        meta,
        zoid: target.zoid,
        zuid: Some(agg.account.zuid),
        account: Some(account),
        mode: mode.as_str(),
    };
    let audit_row = async {
        audit(db, row, &change.before, &change.after)
            .await
            .map_err(WriteError::from)
    };
    if let Some(sql) = with_commit {
        // Prepared first, so both statements go out on their first poll, ahead of COMMIT.
        db.prepare(sql).await?;
        db.prepare(AUDIT).await?;
        db.commit_with(async { tokio::try_join!(persist_all, audit_row) })
            .await?;
        return Ok(Applied::default());
    }
    let (added, ()) = tokio::try_join!(persist_all, audit_row)?;
    Ok(match answer {
        Answer::StatusOnly => Applied::default(),
        Answer::Identities => Applied {
            identities: Some(read::identities(db, account).await?),
            account_address: agg.primary_address().cloned(),
            keyed,
            ..Applied::default()
        },
        Answer::AddedAddresses => Applied {
            added_addresses: Some(added),
            ..Applied::default()
        },
        Answer::Forwards => Applied {
            forwards: Some(read::forwards(db, account).await?),
            account_address: agg.primary_address().cloned(),
            ..Applied::default()
        },
    })
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
