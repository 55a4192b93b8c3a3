//! The benchmark's synthetic users on SQLite: thousands of rows through five statements
//! kept prepared, in the writer's transaction.

use mailplane_domain::{AccountId, Zoid, Zuid};
use rusqlite::{params, Transaction};

use crate::{now_ms, StoreError};

/// Inserts synthetic users of `zoid` (see `crate::synthetic`); their ids, in order.
pub(super) fn insert(
    tx: &Transaction<'_>,
    zoid: Zoid,
    users: &[crate::synthetic::PlannedUser],
) -> Result<Vec<(Zuid, AccountId)>, StoreError> {
    use crate::synthetic::{PlannedUser, USER_SCOPES};
    let now = now_ms();
    let mut user = tx.prepare_cached(
        "INSERT INTO users (zoid, role, first_name, last_name, display_name, country, language, time_zone, created_ms) \
         VALUES (?1, ?2, ?3, '', ?3, 'us', 'en', 'UTC', ?4)",
    )?;
    let mut account = tx.prepare_cached(
        "INSERT INTO accounts (zuid, kind, sequence, created_ms) VALUES (?1, 'ZOHO_ACCOUNT', 1, ?2)",
    )?;
    let mut address = tx.prepare_cached(
        "INSERT INTO addresses (address, account_id, is_primary) VALUES (?1, ?2, 1)",
    )?;
    let mut identity = tx.prepare_cached(
        "INSERT INTO identities (account_id, from_address, display_name, mode, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut token = tx.prepare_cached(
        "INSERT INTO tokens (digest, zuid, scopes, created_ms) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut ids = Vec::with_capacity(users.len());
    for u in users {
        let zuid = user.insert(params![
            zoid.as_i64(),
            PlannedUser::ROLE.as_str(),
            u.first_name,
            now
        ])?;
        let account_id = account.insert(params![zuid, now])?;
        address.execute(params![u.address, account_id])?;
        identity.execute(params![
            account_id,
            u.address,
            u.first_name,
            PlannedUser::MODE.as_str(),
            now
        ])?;
        token.execute(params![u.digest, zuid, USER_SCOPES, now])?;
        ids.push((Zuid::from_db(zuid), AccountId::from_db(account_id)));
    }
    Ok(ids)
}
