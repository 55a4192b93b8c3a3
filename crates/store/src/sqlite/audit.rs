//! Reading the audit trail on SQLite.

use mailplane_domain::{Zoid, Zuid};
use rusqlite::{params, Connection, Transaction};
use serde_json::Value;

use crate::{AuditEntry, AuditQuery, Pruned, SecurityEvent, StoreError};

pub(super) fn entries(
    c: &Connection,
    zoid: Zoid,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at_ms, request_id, actor_zuid, actor_token_id, client_addr, zuid, account_id, mode, before, after \
         FROM audit WHERE zoid = ?1 AND (?2 IS NULL OR account_id = ?2) AND (?3 IS NULL OR at_ms >= ?3) \
         ORDER BY id DESC LIMIT ?4 OFFSET ?5",
    )?;
    let rows = stmt
        .query_map(
            params![
                zoid.as_i64(),
                q.account.map(|a| a.as_i64()),
                q.since_ms,
                q.limit,
                q.start
            ],
            |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    request_id: r.get(2)?,
                    actor_zuid: r.get(3)?,
                    actor_token_id: r.get(4)?,
                    client_addr: r.get(5)?,
                    zuid: r.get(6)?,
                    account_id: r.get(7)?,
                    mode: r.get(8)?,
                    before: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or(Value::Null),
                    after: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or(Value::Null),
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn record_security_events(
    tx: &Transaction<'_>,
    events: &[SecurityEvent],
) -> Result<(), StoreError> {
    let mut org = tx.prepare_cached("SELECT 1 FROM orgs WHERE zoid = ?1")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO security_events (at_ms, first_ms, count, request_id, client_addr, zoid, method, path, status, error_code, actor_zuid) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for e in events {
        if !org.exists([e.zoid.as_i64()])? {
            continue;
        }
        insert.execute(params![
            e.at_ms,
            e.first_ms,
            e.count as i64,
            e.request_id,
            e.client_addr,
            e.zoid.as_i64(),
            e.method,
            e.path,
            e.status,
            e.error_code,
            e.actor_zuid.map(Zuid::as_i64)
        ])?;
    }
    Ok(())
}

pub(super) fn prune(
    tx: &Transaction<'_>,
    table: Pruned,
    before_ms: i64,
    batch: u32,
) -> Result<u64, StoreError> {
    let t = table.table();
    let gone = tx
        .prepare_cached(&format!(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE at_ms < ?1 ORDER BY id LIMIT ?2)"
        ))?
        .execute(params![before_ms, batch])?;
    Ok(gone as u64)
}

pub(super) fn security_events(
    c: &Connection,
    zoid: Zoid,
    q: &AuditQuery,
) -> Result<Vec<SecurityEvent>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT at_ms, request_id, client_addr, method, path, status, error_code, actor_zuid, count, first_ms FROM security_events \
         WHERE zoid = ?1 AND (?2 IS NULL OR at_ms >= ?2) ORDER BY id DESC LIMIT ?3 OFFSET ?4",
    )?;
    let rows = stmt
        .query_map(params![zoid.as_i64(), q.since_ms, q.limit, q.start], |r| {
            let at_ms = r.get(0)?;
            Ok(SecurityEvent {
                at_ms,
                first_ms: r.get::<_, Option<i64>>(9)?.unwrap_or(at_ms),
                count: r.get::<_, i64>(8)?.max(1) as u64,
                request_id: r.get(1)?,
                client_addr: r.get(2)?,
                zoid,
                method: r.get(3)?,
                path: r.get(4)?,
                status: r.get(5)?,
                error_code: r.get(6)?,
                actor_zuid: r.get::<_, Option<i64>>(7)?.map(Zuid::from_db),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
