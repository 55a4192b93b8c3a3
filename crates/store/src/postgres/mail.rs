//! Lookups for the mail server (the Postfix listeners) on PostgreSQL: one statement each,
//! never cached, so a change made on any node applies to the next SMTP transaction.

use deadpool_postgres::GenericClient;
use mailplane_domain::{AccountId, EmailAddress, IdentityMode, MailAccount};

use super::read::email;
use super::{row_opt, rows};
use crate::relay_key::RelayKey;
use crate::{RelayRoute, StoreError};

/// The hosted account `address` belongs to, with every address it may send as.
pub(super) async fn account_by_address<C: GenericClient>(
    c: &C,
    address: &EmailAddress,
) -> Result<Option<MailAccount>, StoreError> {
    let Some(r) = row_opt(
        c,
        "SELECT a.account_id, a.enabled, a.outgoing_blocked, a.incoming_blocked, \
                ARRAY(SELECT address FROM addresses WHERE account_id = a.account_id \
                      UNION SELECT from_address FROM identities WHERE account_id = a.account_id) \
         FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
         WHERE d.address = $1",
        &[&address.as_str()],
    )
    .await?
    else {
        return Ok(None);
    };
    let may_send_as = r
        .try_get::<_, Vec<String>>(4)?
        .iter()
        .map(|a| email(a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(MailAccount {
        account_id: AccountId::from_db(r.try_get(0)?),
        enabled: r.try_get(1)?,
        outgoing_blocked: r.try_get(2)?,
        incoming_blocked: r.try_get(3)?,
        may_send_as,
    }))
}

/// The logins (every address of every account) that may use `address` as sender.
pub(super) async fn sender_logins<C: GenericClient>(
    c: &C,
    address: &EmailAddress,
) -> Result<Vec<EmailAddress>, StoreError> {
    rows(
        c,
        "SELECT address FROM addresses WHERE account_id IN ( \
             SELECT account_id FROM addresses WHERE address = $1 \
             UNION SELECT account_id FROM identities WHERE from_address = $1) \
         ORDER BY address",
        &[&address.as_str()],
    )
    .await?
    .iter()
    .map(|r| email(r.try_get(0)?))
    .collect()
}

/// The relay of the `extfrom` identity with this `fromAddress`; the oldest decides when
/// several accounts have one (the mail server asks by sender alone).
pub(super) async fn relay_route<C: GenericClient>(
    c: &C,
    key: &RelayKey,
    address: &EmailAddress,
) -> Result<Option<RelayRoute>, StoreError> {
    let Some(r) = row_opt(
        c,
        "SELECT account_id, server_name, server_port, user_name, password_enc \
         FROM identities WHERE from_address = $1 AND mode = $2 AND server_name IS NOT NULL \
         ORDER BY send_mail_id LIMIT 1",
        &[&address.as_str(), &IdentityMode::ExtFrom.as_str()],
    )
    .await?
    else {
        return Ok(None);
    };
    RelayRoute::unseal(
        key,
        r.try_get(0)?,
        address.as_str(),
        r.try_get(1)?,
        r.try_get::<_, Option<i32>>(2)?.map(i64::from),
        r.try_get(3)?,
        r.try_get(4)?,
    )
    .map(Some)
}
