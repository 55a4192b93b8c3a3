//! The audit trail and the security events: recorded, read in pages, pruned.

use mailplane_domain::{Zoid, Zuid};
use serde_json::Value;

use crate::db::Db;
use crate::{AuditEntry, AuditQuery, Pruned, SecurityEvent, StoreError};

/// One audit row as read.
fn entry(r: &crate::db::Row<'_>) -> Result<AuditEntry, StoreError> {
    let json = |text: String| serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(AuditEntry {
        id: r.get("id")?,
        at_ms: r.get("at_ms")?,
        request_id: r.get("request_id")?,
        actor_zuid: r.get("actor_zuid")?,
        actor_token_id: r.get("actor_token_id")?,
        client_addr: r.get("client_addr")?,
        zuid: r.get("zuid")?,
        account_id: r.get("account_id")?,
        mode: r.get("mode")?,
        before: json(r.get("before")?),
        after: json(r.get("after")?),
        via: r.get("via")?,
    })
}

/// The organization's audit rows, newest first.
pub(crate) async fn entries<D: Db>(
    db: &D,
    zoid: Zoid,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    db.rows(
        "SELECT id, at_ms, request_id, actor_zuid, actor_token_id, client_addr, zuid, account_id, mode, before, after, via \
         FROM audit WHERE zoid = $1 AND (CAST($2 AS BIGINT) IS NULL OR account_id = $2) \
         AND (CAST($3 AS BIGINT) IS NULL OR at_ms >= $3) AND (CAST($4 AS TEXT) IS NULL OR mode = $4) \
         AND (CAST($5 AS BIGINT) IS NULL OR actor_zuid = $5 OR zuid = $5) \
         ORDER BY id DESC LIMIT $6 OFFSET $7",
        &[&zoid.as_i64(), &q.account.map(|a| a.as_i64()), &q.since_ms, &q.kind, &q.actor.map(Zuid::as_i64),
          &i64::from(q.limit), &i64::from(q.start)],
        entry,
    )
    .await
}

/// The organization's audit rows about one user's accounts (or the user), newest first.
pub(crate) async fn about_user<D: Db>(
    db: &D,
    zoid: Zoid,
    zuid: Zuid,
    start: u32,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    db.rows(
        "SELECT id, at_ms, request_id, actor_zuid, actor_token_id, client_addr, zuid, account_id, mode, before, after, via \
         FROM audit WHERE zoid = $1 AND zuid = $2 ORDER BY id DESC LIMIT $3 OFFSET $4",
        &[&zoid.as_i64(), &zuid.as_i64(), &i64::from(limit), &i64::from(start)],
        entry,
    )
    .await
}

/// The most modes [`kinds`] answers: a filter's choices, not a report.
pub(crate) const MAX_AUDIT_KINDS: i64 = 100;

/// The distinct modes of the organization's audit rows, by name, at most
/// [`MAX_AUDIT_KINDS`]. The trail grows without bound and `DISTINCT` would read all of
/// it, so the modes are walked one by one on the index `audit_org_mode`: each step is one
/// look-up of the next mode after the last (a loose index scan, which neither backend
/// plans on its own).
pub(crate) async fn kinds<D: Db>(db: &D, zoid: Zoid) -> Result<Vec<String>, StoreError> {
    db.rows(
        "WITH RECURSIVE m(mode, n) AS ( \
           SELECT (SELECT MIN(mode) FROM audit WHERE zoid = $1), CAST(1 AS BIGINT) \
           UNION ALL \
           SELECT (SELECT MIN(a.mode) FROM audit a WHERE a.zoid = $1 AND a.mode > m.mode), m.n + 1 \
           FROM m WHERE m.mode IS NOT NULL AND m.n < $2) \
         SELECT mode FROM m WHERE mode IS NOT NULL ORDER BY mode",
        &[&zoid.as_i64(), &MAX_AUDIT_KINDS],
        |r| r.get("mode"),
    )
    .await
}

pub(crate) async fn record_security_events<D: Db>(
    db: &D,
    events: &[SecurityEvent],
) -> Result<(), StoreError> {
    for e in events {
        // Only into the log of an organization that exists: made-up ids write nothing.
        db.exec(
            "INSERT INTO security_events (at_ms, first_ms, count, request_id, client_addr, zoid, method, path, status, error_code, actor_zuid) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE EXISTS (SELECT 1 FROM orgs WHERE zoid = $6)",
            &[&e.at_ms, &e.first_ms, &(e.count as i64), &e.request_id, &e.client_addr, &e.zoid.as_i64(), &e.method, &e.path, &i32::from(e.status), &e.error_code, &e.actor_zuid.map(Zuid::as_i64)],
        )
        .await?;
    }
    Ok(())
}

/// Deletes up to `batch` rows of `table` older than `before_ms`, oldest first.
pub(crate) async fn prune<D: Db>(
    db: &D,
    table: Pruned,
    before_ms: i64,
    batch: u32,
) -> Result<u64, StoreError> {
    let sql = match table {
        Pruned::Audit => {
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at_ms < $1 ORDER BY id LIMIT $2)"
        }
        Pruned::SecurityEvents => {
            "DELETE FROM security_events WHERE id IN \
             (SELECT id FROM security_events WHERE at_ms < $1 ORDER BY id LIMIT $2)"
        }
    };
    db.exec(sql, &[&before_ms, &i64::from(batch)]).await
}

/// The organization's security events, newest first.
pub(crate) async fn security_events<D: Db>(
    db: &D,
    zoid: Zoid,
    q: &AuditQuery,
) -> Result<Vec<SecurityEvent>, StoreError> {
    db.rows(
        "SELECT at_ms, request_id, client_addr, method, path, status, error_code, actor_zuid, count, first_ms FROM security_events \
         WHERE zoid = $1 AND (CAST($2 AS BIGINT) IS NULL OR at_ms >= $2) \
         AND (CAST($3 AS TEXT) IS NULL OR error_code = $3) AND (CAST($4 AS BIGINT) IS NULL OR actor_zuid = $4) \
         ORDER BY id DESC LIMIT $5 OFFSET $6",
        &[&zoid.as_i64(), &q.since_ms, &q.kind, &q.actor.map(Zuid::as_i64), &i64::from(q.limit), &i64::from(q.start)],
        |r| {
            let at_ms = r.get("at_ms")?;
            Ok(SecurityEvent {
                at_ms,
                first_ms: r.get::<Option<i64>>("first_ms")?.unwrap_or(at_ms),
                count: r.get::<i64>("count")?.max(1) as u64,
                request_id: r.get("request_id")?,
                client_addr: r.get("client_addr")?,
                zoid,
                method: r.get("method")?,
                path: r.get("path")?,
                status: r.get::<i32>("status")? as u16,
                error_code: r.get("error_code")?,
                actor_zuid: r.get::<Option<i64>>("actor_zuid")?.map(Zuid::from_db),
            })
        },
    )
    .await
}
