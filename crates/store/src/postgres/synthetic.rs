//! The benchmark's synthetic users on PostgreSQL: thousands of rows in five statements
//! over arrays, in one transaction.

use mailplane_domain::{AccountId, Zoid, Zuid};

use tokio_postgres::types::ToSql;

use super::pipeline::Tx;
use crate::StoreError;

/// A statement over arrays, which only PostgreSQL binds (not a [`crate::db::Param`]).
async fn run(
    tx: &Tx,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    tx.send(async { Ok(tx.client().query(sql, params).await?) })
        .await
}

/// Inserts synthetic users of `zoid` (see `crate::synthetic`) in five statements; their
/// ids, in order.
pub(super) async fn insert(
    tx: &Tx,
    zoid: Zoid,
    users: &[crate::synthetic::PlannedUser],
) -> Result<Vec<(Zuid, AccountId)>, StoreError> {
    use crate::synthetic::{PlannedUser, USER_SCOPES};
    let now = crate::now_ms();
    let count = users.len() as i64;
    let ids = run(
        tx,
        "SELECT nextval('users_zuid_seq') AS zuid, nextval('accounts_id_seq') AS account_id FROM generate_series(1, $1::BIGINT)",
        &[&count],
    )
    .await?;
    let zuids: Vec<i64> = ids.iter().map(|r| r.get("zuid")).collect();
    let accounts: Vec<i64> = ids.iter().map(|r| r.get("account_id")).collect();
    let names: Vec<&str> = users.iter().map(|u| u.first_name.as_str()).collect();
    let addresses: Vec<&str> = users.iter().map(|u| u.address.as_str()).collect();
    let digests: Vec<&str> = users.iter().map(|u| u.digest.as_str()).collect();
    run(
        tx,
        "INSERT INTO users (zuid, zoid, role, first_name, last_name, display_name, country, language, time_zone, created_ms) \
         SELECT z, $2, $3, n, '', n, 'us', 'en', 'UTC', $4 FROM unnest($1::BIGINT[], $5::TEXT[]) AS t(z, n)",
        &[&zuids, &zoid.as_i64(), &PlannedUser::ROLE.as_str(), &now, &names],
    )
    .await?;
    run(
        tx,
        "INSERT INTO accounts (account_id, zuid, kind, sequence, created_ms) \
         SELECT a, z, 'ZOHO_ACCOUNT', 1, $3 FROM unnest($1::BIGINT[], $2::BIGINT[]) AS t(a, z)",
        &[&accounts, &zuids, &now],
    )
    .await?;
    run(
        tx,
        "INSERT INTO addresses (address, account_id, is_primary) \
         SELECT d, a, TRUE FROM unnest($1::TEXT[], $2::BIGINT[]) AS t(d, a)",
        &[&addresses, &accounts],
    )
    .await?;
    run(
        tx,
        "INSERT INTO identities (account_id, from_address, display_name, mode, created_ms) \
         SELECT a, d, n, $4, $5 FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[]) AS t(a, d, n)",
        &[
            &accounts,
            &addresses,
            &names,
            &PlannedUser::MODE.as_str(),
            &now,
        ],
    )
    .await?;
    run(
        tx,
        "INSERT INTO tokens (digest, zuid, scopes, created_ms) \
         SELECT g, z, $3, $4 FROM unnest($1::TEXT[], $2::BIGINT[]) AS t(g, z)",
        &[&digests, &zuids, &USER_SCOPES, &now],
    )
    .await?;
    Ok(zuids
        .into_iter()
        .zip(accounts)
        .map(|(z, a)| (Zuid::from_db(z), AccountId::from_db(a)))
        .collect())
}
