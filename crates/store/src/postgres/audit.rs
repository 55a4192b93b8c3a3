//! Reading the audit trail on PostgreSQL.

use deadpool_postgres::{GenericClient, Transaction};
use mailplane_domain::{Zoid, Zuid};
use serde_json::Value;

use super::{exec, row_opt, rows};
use crate::{AuditEntry, AuditQuery, SecurityEvent, StoreError};

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

pub(super) async fn record_security_event(
    tx: &Transaction<'_>,
    e: &SecurityEvent,
) -> Result<(), StoreError> {
    if row_opt(
        tx,
        "SELECT 1 FROM orgs WHERE zoid = $1",
        &[&e.zoid.as_i64()],
    )
    .await?
    .is_none()
    {
        return Ok(());
    }
    exec(
        tx,
        "INSERT INTO security_events (at_ms, request_id, client_addr, zoid, method, path, status, error_code, actor_zuid) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&e.at_ms, &e.request_id, &e.client_addr, &e.zoid.as_i64(), &e.method, &e.path, &i32::from(e.status), &e.error_code, &e.actor_zuid.map(Zuid::as_i64)],
    )
    .await?;
    Ok(())
}

pub(super) async fn security_events<C: GenericClient>(
    c: &C,
    zoid: Zoid,
    q: &AuditQuery,
) -> Result<Vec<SecurityEvent>, StoreError> {
    let found = rows(
        c,
        "SELECT at_ms, request_id, client_addr, method, path, status, error_code, actor_zuid FROM security_events \
         WHERE zoid = $1 AND ($2::BIGINT IS NULL OR at_ms >= $2) ORDER BY id DESC LIMIT $3 OFFSET $4",
        &[&zoid.as_i64(), &q.since_ms, &i64::from(q.limit), &i64::from(q.start)],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(SecurityEvent {
                at_ms: r.try_get(0)?,
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
