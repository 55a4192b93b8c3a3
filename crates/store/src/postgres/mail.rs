//! Lookups for the mail server (the Postfix listeners) on PostgreSQL, never cached, so a
//! change made on any node applies to the next SMTP transaction. Who may send as an
//! address is settled by the rules of `mailplane_domain::send_as`, at each lookup.

use deadpool_postgres::GenericClient;
use mailplane_domain::{AccountId, AddressFacts, EmailAddress, IdentityMode, MailAccount, Owner};

use super::read::{address_facts, addresses, identities};
use super::row_opt;
use crate::relay_key::RelayKey;
use crate::{send_as, RelayRoute, StoreError};

/// The hosted account `address` belongs to, with every address it may send as.
pub(super) async fn account_by_address<C: GenericClient>(
    c: &C,
    address: &EmailAddress,
) -> Result<Option<MailAccount>, StoreError> {
    let Some(r) = row_opt(
        c,
        "SELECT a.account_id, a.enabled, a.outgoing_blocked, a.incoming_blocked \
         FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
         WHERE d.address = $1",
        &[&address.as_str()],
    )
    .await?
    else {
        return Ok(None);
    };
    let id = AccountId::from_db(r.try_get(0)?);
    let flags = (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
    let (own, identities) = tokio::try_join!(addresses(c, id), identities(c, id))?;
    let own = own.into_iter().map(|a| a.address).collect();
    Ok(Some(send_as::mail_account(id, flags, own, &identities)))
}

/// The account that may send as `address`, if exactly one may. A contested address has
/// no owner: no map answers for it (the policy service says why when a login tries it).
async fn owner<C: GenericClient>(
    c: &C,
    address: &EmailAddress,
) -> Result<Option<AccountId>, StoreError> {
    let facts = address_facts(c, std::slice::from_ref(address)).await?;
    Ok(match facts.first().map(AddressFacts::owner) {
        Some(Owner::Account(id)) => Some(id),
        _ => None,
    })
}

/// The logins (every address of the one account that owns `address`) that may use it as
/// sender.
pub(super) async fn sender_logins<C: GenericClient>(
    c: &C,
    address: &EmailAddress,
) -> Result<Vec<EmailAddress>, StoreError> {
    let Some(id) = owner(c, address).await? else {
        return Ok(Vec::new());
    };
    Ok(addresses(c, id)
        .await?
        .into_iter()
        .map(|a| a.address)
        .collect())
}

/// The relay of the `extfrom` identity of the one account that owns `address`.
pub(super) async fn relay_route<C: GenericClient>(
    c: &C,
    key: &RelayKey,
    address: &EmailAddress,
) -> Result<Option<RelayRoute>, StoreError> {
    let Some(id) = owner(c, address).await? else {
        return Ok(None);
    };
    let Some(r) = row_opt(
        c,
        "SELECT server_name, server_port, user_name, password_enc FROM identities \
         WHERE account_id = $1 AND from_address = $2 AND mode = $3 AND server_name IS NOT NULL",
        &[
            &id.as_i64(),
            &address.as_str(),
            &IdentityMode::ExtFrom.as_str(),
        ],
    )
    .await?
    else {
        return Ok(None);
    };
    RelayRoute::unseal(
        key,
        id.as_i64(),
        address.as_str(),
        r.try_get(0)?,
        r.try_get::<_, Option<i32>>(1)?.map(i64::from),
        r.try_get(2)?,
        r.try_get(3)?,
    )
    .map(Some)
}
