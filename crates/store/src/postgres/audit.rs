//! Reading the audit trail on PostgreSQL.

use deadpool_postgres::{GenericClient, Transaction};
use mailplane_domain::{Zoid, Zuid};
use serde_json::Value;

use super::{exec, rows};
use crate::{AuditEntry, AuditQuery, Pruned, SecurityEvent, StoreError};

pub(super) async fn entries<C: GenericClient>(
    c: &C,
    zoid: Zoid,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    let found = rows(
        c,
        "SELECT id, at_ms, request_id, actor_zuid, actor_token_id, client_addr, zuid, account_id, mode, before, after \
         FROM audit WHERE zoid = $1 AND ($2::BIGINT IS NULL OR account_id = $2) AND ($3::BIGINT IS NULL OR at_ms >= $3) \
         ORDER BY id DESC LIMIT $4 OFFSET $5",
        &[&zoid.as_i64(), &q.account.map(|a| a.as_i64()), &q.since_ms, &i64::from(q.limit), &i64::from(q.start)],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get(0)?,
                at_ms: r.try_get(1)?,
                request_id: r.try_get(2)?,
                actor_zuid: r.try_get(3)?,
                actor_token_id: r.try_get(4)?,
                client_addr: r.try_get(5)?,
                zuid: r.try_get(6)?,
                account_id: r.try_get(7)?,
                mode: r.try_get(8)?,
                before: serde_json::from_str(r.try_get(9)?).unwrap_or(Value::Null),
                after: serde_json::from_str(r.try_get(10)?).unwrap_or(Value::Null),
            })
        })
        .collect()
}

pub(super) async fn record_security_events(
    tx: &Transaction<'_>,
    events: &[SecurityEvent],
) -> Result<(), StoreError> {
    for e in events {
        // Only into the log of an organization that exists: made-up ids write nothing.
        exec(
            tx,
            "INSERT INTO security_events (at_ms, first_ms, count, request_id, client_addr, zoid, method, path, status, error_code, actor_zuid) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE EXISTS (SELECT 1 FROM orgs WHERE zoid = $6)",
            &[&e.at_ms, &e.first_ms, &(e.count as i64), &e.request_id, &e.client_addr, &e.zoid.as_i64(), &e.method, &e.path, &i32::from(e.status), &e.error_code, &e.actor_zuid.map(Zuid::as_i64)],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn prune(
    tx: &Transaction<'_>,
    table: Pruned,
    before_ms: i64,
    batch: u32,
) -> Result<u64, StoreError> {
    let t = table.table();
    Ok(exec(
        tx,
        &format!(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE at_ms < $1 ORDER BY id LIMIT $2)"
        ),
        &[&before_ms, &i64::from(batch)],
    )
    .await?)
}

pub(super) async fn security_events<C: GenericClient>(
    c: &C,
    zoid: Zoid,
    q: &AuditQuery,
) -> Result<Vec<SecurityEvent>, StoreError> {
    let found = rows(
        c,
        "SELECT at_ms, request_id, client_addr, method, path, status, error_code, actor_zuid, count, first_ms FROM security_events \
         WHERE zoid = $1 AND ($2::BIGINT IS NULL OR at_ms >= $2) ORDER BY id DESC LIMIT $3 OFFSET $4",
        &[&zoid.as_i64(), &q.since_ms, &i64::from(q.limit), &i64::from(q.start)],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            let at_ms = r.try_get(0)?;
            Ok(SecurityEvent {
                at_ms,
                first_ms: r.try_get::<_, Option<i64>>(9)?.unwrap_or(at_ms),
                count: r.try_get::<_, i64>(8)?.max(1) as u64,
                request_id: r.try_get(1)?,
                client_addr: r.try_get(2)?,
                zoid,
                method: r.try_get(3)?,
                path: r.try_get(4)?,
                status: r.try_get::<_, i32>(5)? as u16,
                error_code: r.try_get(6)?,
                actor_zuid: r.try_get::<_, Option<i64>>(7)?.map(Zuid::from_db),
            })
        })
        .collect()
}
