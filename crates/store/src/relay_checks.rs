//! The checks of `extfrom` relays: which are due, who takes each (one node at a time),
//! and what came out. The check itself is made outside the store, with the password
//! opened only then ([`crate::Store::relay_password`]).
//!
//! A node takes due checks by setting a lease on their rows in one statement; the lease's
//! condition is repeated outside the subquery so that on PostgreSQL a node that waited on
//! another's row lock sees the new lease and skips the row (the row is checked again
//! after the wait), and on SQLite the one writer settles it. An outcome is recorded only
//! over the details that were checked (`relay_version`): re-adding the identity while a
//! check runs starts it over.

use mailplane_domain::{
    AccountId, EmailAddress, IdentityMode, RelayState, SendMailId, SmtpConnection, Zoid, Zuid,
};
use serde_json::json;

use crate::db::{Db, Row};
use crate::{now_ms, StoreError};

/// One relay to check, as taken from its identity row. No `Debug`: it carries the sealed
/// password.
pub struct RelayCheckJob {
    pub send_mail_id: SendMailId,
    pub account_id: AccountId,
    pub from_address: EmailAddress,
    pub server_name: String,
    pub server_port: u16,
    pub user_name: String,
    pub connection: SmtpConnection,
    /// The state before this check.
    pub previous: RelayState,
    pub(crate) version: i64,
    pub(crate) sealed: Vec<u8>,
}

/// What a check found: `Ok` or the sentence of the failure.
pub type RelayOutcome = Result<(), String>;

/// The longest error text stored: a relay's own words are cut to this.
pub const MAX_RELAY_ERROR_CHARS: usize = 300;

fn job_row(r: &Row<'_>) -> Result<RelayCheckJob, StoreError> {
    let corrupt = |what: &str, v: &str| StoreError::Corrupt(format!("{what}: {v:?}"));
    let from: String = r.get("from_address")?;
    let conn: String = r
        .get::<Option<String>>("smtp_connection")?
        .unwrap_or_else(|| "plain".into());
    let state: String = r.get("relay_state")?;
    let port: Option<i32> = r.get("server_port")?;
    Ok(RelayCheckJob {
        send_mail_id: SendMailId::from_db(r.get("send_mail_id")?),
        account_id: AccountId::from_db(r.get("account_id")?),
        from_address: EmailAddress::parse(&from).map_err(|_| corrupt("address", &from))?,
        server_name: r
            .get::<Option<String>>("server_name")?
            .ok_or_else(|| corrupt("relay host", "NULL"))?,
        server_port: port
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| corrupt("relay port", &format!("{port:?}")))?,
        user_name: r.get::<Option<String>>("user_name")?.unwrap_or_default(),
        connection: SmtpConnection::parse(&conn)
            .ok_or_else(|| corrupt("smtp connection", &conn))?,
        previous: RelayState::parse(&state).ok_or_else(|| corrupt("relay state", &state))?,
        version: r.get("relay_version")?,
        sealed: r
            .get::<Option<Vec<u8>>>("password_enc")?
            .unwrap_or_default(),
    })
}

/// A statement that leases the rows its `WHERE` clause picks (`$1` the lease's end, `$2`
/// the node) and returns them as [`job_row`] reads them.
macro_rules! leased {
    ($where:literal) => {
        concat!(
            "UPDATE identities SET lease_until_ms = $1, lease_node = $2 ",
            $where,
            " RETURNING send_mail_id, account_id, from_address, server_name, server_port, \
             user_name, smtp_connection, relay_state, relay_version, password_enc"
        )
    };
}

/// Whether any check is due and free to take: read first, so that a node with nothing to
/// do never takes the writer (on SQLite there is one) to find that out.
pub(crate) async fn any_due<D: Db>(db: &D, now: i64) -> Result<bool, StoreError> {
    db.exists(
        "SELECT 1 FROM identities WHERE mode = $1 AND next_check_ms <= $2 \
         AND (lease_until_ms IS NULL OR lease_until_ms < $2) LIMIT 1",
        &[&IdentityMode::ExtFrom.as_str(), &now],
    )
    .await
}

/// Takes up to `limit` due checks for `node`, each leased until `now + lease_ms`.
pub(crate) async fn take_due<D: Db>(
    db: &D,
    node: &str,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<RelayCheckJob>, StoreError> {
    db.rows(
        leased!(
            "WHERE send_mail_id IN (SELECT send_mail_id FROM identities WHERE mode = $3 \
             AND next_check_ms <= $4 AND (lease_until_ms IS NULL OR lease_until_ms < $4) \
             ORDER BY next_check_ms LIMIT $5) \
             AND (lease_until_ms IS NULL OR lease_until_ms < $4)"
        ),
        &[
            &(now + lease_ms),
            &node,
            &IdentityMode::ExtFrom.as_str(),
            &now,
            &limit,
        ],
        job_row,
    )
    .await
}

/// The check of one identity of `account`, taken now whatever its schedule (a user asked
/// for it), leased like a scheduled one so that no node starts the same check meanwhile.
/// `None`: no such `extfrom` identity.
pub(crate) async fn take_one<D: Db>(
    db: &D,
    node: &str,
    account: AccountId,
    id: SendMailId,
    lease_ms: i64,
) -> Result<Option<RelayCheckJob>, StoreError> {
    db.row(
        leased!("WHERE send_mail_id = $3 AND account_id = $4 AND mode = $5"),
        &[
            &(now_ms() + lease_ms),
            &node,
            &id.as_i64(),
            &account.as_i64(),
            &IdentityMode::ExtFrom.as_str(),
        ],
        job_row,
    )
    .await
}

/// Records the outcome of `job`'s check, to be made again at `next_check` (`None`: only
/// when asked). A change of state is audited, its actor the system. Whether it was
/// recorded: not when the identity changed or went meanwhile.
pub(crate) async fn record<D: Db>(
    db: &D,
    job: &RelayCheckJob,
    outcome: &RelayOutcome,
    next_check: Option<i64>,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let (state, error) = match outcome {
        Ok(()) => (RelayState::Validated, None),
        Err(e) => (RelayState::Failed, Some(clip(e))),
    };
    let n = db
        .exec(
            "UPDATE identities SET relay_state = $1, relay_error = $2, relay_checked_ms = $3, \
             next_check_ms = $4, lease_until_ms = NULL, lease_node = NULL \
             WHERE send_mail_id = $5 AND relay_version = $6",
            &[
                &state.as_str(),
                &error,
                &now,
                &next_check,
                &job.send_mail_id.as_i64(),
                &job.version,
            ],
        )
        .await?;
    if n == 0 {
        return Ok(false);
    }
    if state != job.previous {
        let owner = db
            .row(
                "SELECT a.zuid, u.zoid FROM accounts a JOIN users u ON u.zuid = a.zuid \
                 WHERE a.account_id = $1",
                &[&job.account_id.as_i64()],
                |r| Ok((Zuid::from_db(r.get("zuid")?), Zoid::from_db(r.get("zoid")?))),
            )
            .await?;
        if let Some((zuid, zoid)) = owner {
            let view = |s: RelayState, e: Option<&str>| {
                json!({ "sendMailDetails": [{
                    "sendMailId": job.send_mail_id.to_string(),
                    "fromAddress": job.from_address.as_str(),
                    "validationState": s.as_str(),
                    "validationError": e,
                }] })
            };
            db.exec(
                "INSERT INTO audit (at_ms, request_id, actor_zuid, actor_token_id, client_addr, zoid, zuid, \
                 account_id, mode, before, after) VALUES ($1, NULL, NULL, NULL, NULL, $2, $3, $4, $5, $6, $7)",
                &[
                    &now,
                    &zoid.as_i64(),
                    &zuid.as_i64(),
                    &job.account_id.as_i64(),
                    &RELAY_CHECK_MODE,
                    &view(job.previous, None).to_string(),
                    &view(state, error.as_deref()).to_string(),
                ],
            )
            .await?;
        }
    }
    Ok(true)
}

/// The `mode` of the audit rows of relay checks (the system's, not a client's).
pub const RELAY_CHECK_MODE: &str = "relaycheck";

/// An error text cut to [`MAX_RELAY_ERROR_CHARS`], on one line.
fn clip(e: &str) -> String {
    let one_line: String = e
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= MAX_RELAY_ERROR_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_RELAY_ERROR_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn errors_are_one_line_and_bounded() {
        assert_eq!(clip("a\r\nb"), "a  b");
        let long = "x".repeat(1000);
        assert_eq!(clip(&long).chars().count(), super::MAX_RELAY_ERROR_CHARS);
    }
}
