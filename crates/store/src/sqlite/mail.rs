//! Lookups for the mail server (the Postfix listeners): by address, never cached, so a
//! change through the API applies to the next SMTP transaction. Who may send as an
//! address is settled by the rules of `mailplane_domain::send_as`, at each lookup.

use mailplane_domain::{AccountId, AddressFacts, EmailAddress, IdentityMode, MailAccount, Owner};
use rusqlite::{Connection, OptionalExtension};

use super::read::{address_facts, addresses, identities};
use crate::relay_key::RelayKey;
use crate::{send_as, RelayRoute, StoreError};

/// The hosted account `address` belongs to.
pub(super) fn account_by_address(
    c: &Connection,
    address: &EmailAddress,
) -> Result<Option<MailAccount>, StoreError> {
    let found = c
        .prepare_cached(
            "SELECT a.account_id, a.enabled, a.outgoing_blocked, a.incoming_blocked \
             FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
             WHERE d.address = ?1",
        )?
        .query_row([address.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
        })
        .optional()?;
    let Some((id, flags)) = found else {
        return Ok(None);
    };
    let id = AccountId::from_db(id);
    let own = addresses(c, id)?.into_iter().map(|a| a.address).collect();
    Ok(Some(send_as::mail_account(
        id,
        flags,
        own,
        &identities(c, id)?,
    )))
}

/// The account that may send as `address`, if exactly one may.
fn owner(c: &Connection, address: &EmailAddress) -> Result<Option<AccountId>, StoreError> {
    let facts = address_facts(c, std::slice::from_ref(address))?;
    // A contested address has no owner: no map answers for it (the policy service says
    // why, and logs it, when a login tries to use it).
    Ok(match facts.first().map(AddressFacts::owner) {
        Some(Owner::Account(id)) => Some(id),
        _ => None,
    })
}

/// The logins (every address of the one account that owns `address`) that may use it as
/// sender.
pub(super) fn sender_logins(
    c: &Connection,
    address: &EmailAddress,
) -> Result<Vec<EmailAddress>, StoreError> {
    let Some(id) = owner(c, address)? else {
        return Ok(Vec::new());
    };
    Ok(addresses(c, id)?.into_iter().map(|a| a.address).collect())
}

/// The relay of the `extfrom` identity of the one account that owns `address`.
pub(super) fn relay_route(
    c: &Connection,
    key: &RelayKey,
    address: &EmailAddress,
) -> Result<Option<RelayRoute>, StoreError> {
    let Some(id) = owner(c, address)? else {
        return Ok(None);
    };
    let found = c
        .prepare_cached(
            "SELECT server_name, server_port, user_name, password_enc FROM identities \
             WHERE account_id = ?1 AND from_address = ?2 AND mode = ?3 AND server_name IS NOT NULL",
        )?
        .query_row(
            rusqlite::params![
                id.as_i64(),
                address.as_str(),
                IdentityMode::ExtFrom.as_str()
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<Vec<u8>>>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((server_name, port, user_name, sealed)) = found else {
        return Ok(None);
    };
    RelayRoute::unseal(
        key,
        id.as_i64(),
        address.as_str(),
        server_name,
        port,
        user_name,
        sealed,
    )
    .map(Some)
}
