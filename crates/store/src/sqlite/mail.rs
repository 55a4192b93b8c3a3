//! Lookups for the mail server (the Postfix listeners): by address, never cached, so a
//! change through the API applies to the next SMTP transaction.

use mailplane_domain::{AccountId, EmailAddress, IdentityMode, MailAccount};
use rusqlite::{Connection, OptionalExtension};

use super::read::email;
use crate::relay_key::RelayKey;
use crate::{RelayRoute, StoreError};

/// The hosted account `address` belongs to.
pub(super) fn account_by_address(
    c: &Connection,
    address: &EmailAddress,
) -> Result<Option<MailAccount>, StoreError> {
    let found = c
        .query_row(
            "SELECT a.account_id, a.enabled, a.outgoing_blocked, a.incoming_blocked \
             FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
             WHERE d.address = ?1",
            [address.as_str()],
            |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((id, enabled, outgoing_blocked, incoming_blocked)) = found else {
        return Ok(None);
    };
    let mut stmt = c.prepare_cached(
        "SELECT address FROM addresses WHERE account_id = ?1 \
         UNION SELECT from_address FROM identities WHERE account_id = ?1",
    )?;
    let may_send_as = stmt
        .query_map([id], |r| r.get::<_, String>(0))?
        .map(|a| email(&a?))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(MailAccount {
        account_id: AccountId::from_db(id),
        enabled,
        outgoing_blocked,
        incoming_blocked,
        may_send_as,
    }))
}

/// The logins (every address of every account) that may use `address` as sender.
pub(super) fn sender_logins(
    c: &Connection,
    address: &EmailAddress,
) -> Result<Vec<EmailAddress>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT address FROM addresses WHERE account_id IN ( \
             SELECT account_id FROM addresses WHERE address = ?1 \
             UNION SELECT account_id FROM identities WHERE from_address = ?1) \
         ORDER BY address",
    )?;
    let logins = stmt
        .query_map([address.as_str()], |r| r.get::<_, String>(0))?
        .map(|a| email(&a?))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(logins)
}

/// The relay of the `extfrom` identity with this `fromAddress`. Should several accounts
/// have one, the oldest identity decides (the mail server asks by sender alone).
pub(super) fn relay_route(
    c: &Connection,
    key: &RelayKey,
    address: &EmailAddress,
) -> Result<Option<RelayRoute>, StoreError> {
    let found = c
        .query_row(
            "SELECT account_id, server_name, server_port, user_name, password_enc \
             FROM identities WHERE from_address = ?1 AND mode = ?2 AND server_name IS NOT NULL \
             ORDER BY send_mail_id LIMIT 1",
            [address.as_str(), IdentityMode::ExtFrom.as_str()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((account_id, server_name, port, user_name, sealed)) = found else {
        return Ok(None);
    };
    RelayRoute::unseal(
        key,
        account_id,
        address.as_str(),
        server_name,
        port,
        user_name,
        sealed,
    )
    .map(Some)
}
