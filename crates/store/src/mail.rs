//! Lookups for the mail server (the Postfix listeners), never cached, so a change made on
//! any node applies to the next SMTP transaction. Who may send as an address is settled
//! by the rules of `mailplane_domain::send_as`, at each lookup.

use mailplane_domain::{
    AccountId, AccountKind, AddressFacts, EmailAddress, MailAccount, MailLogin, Owner,
    SmtpConnection,
};

use crate::db::Db;
use crate::read::{address_facts, addresses, email, identities};
use crate::relay_key::RelayKey;
use crate::{send_as, RelayRoute, StoreError};

/// The hosted account `address` belongs to, with every address it may send as.
pub(crate) async fn account_by_address<D: Db>(
    db: &D,
    address: &EmailAddress,
) -> Result<Option<MailAccount>, StoreError> {
    let Some((id, flags)) = db
        .row(
            "SELECT a.account_id, a.enabled, a.outgoing_blocked, a.incoming_blocked \
             FROM addresses d JOIN accounts a ON a.account_id = d.account_id WHERE d.address = $1",
            &[&address.as_str()],
            |r| {
                Ok((
                    AccountId::from_db(r.get("account_id")?),
                    (
                        r.get("enabled")?,
                        r.get("outgoing_blocked")?,
                        r.get("incoming_blocked")?,
                    ),
                ))
            },
        )
        .await?
    else {
        return Ok(None);
    };
    let (own, identities) = tokio::try_join!(addresses(db, id), identities(db, id))?;
    let own = own.into_iter().map(|a| a.address).collect();
    Ok(Some(send_as::mail_account(id, flags, own, &identities)))
}

/// Whether `domain` is one of an organization's domains: mail to it is mailplane's to
/// deliver.
pub(crate) async fn hosts_domain<D: Db>(db: &D, domain: &str) -> Result<bool, StoreError> {
    db.exists("SELECT 1 FROM domains WHERE name = $1", &[&domain])
        .await
}

/// The hosted account `address` (primary or alias) belongs to, with its primary address.
pub(crate) async fn mailbox<D: Db>(
    db: &D,
    address: &EmailAddress,
) -> Result<Option<(AccountId, EmailAddress)>, StoreError> {
    db.row(
        "SELECT a.account_id, p.address AS primary_address FROM addresses d \
         JOIN accounts a ON a.account_id = d.account_id \
         JOIN addresses p ON p.account_id = a.account_id AND p.is_primary \
         WHERE d.address = $1 AND a.kind = $2",
        &[&address.as_str(), &AccountKind::Hosted.as_str()],
        |r| {
            Ok((
                AccountId::from_db(r.get("account_id")?),
                email(&r.get::<String>("primary_address")?)?,
            ))
        },
    )
    .await
}

/// Where the mail of a hosted account goes besides its mailbox: the targets of its
/// forwards in effect (confirmed and enabled), and whether the mailbox keeps a copy
/// (`deleteZohoMailCopy` unset). No forward in effect: the mailbox only, whatever the flag.
pub(crate) async fn forwarding<D: Db>(
    db: &D,
    account: AccountId,
) -> Result<(Vec<EmailAddress>, bool), StoreError> {
    // One statement: the account's flag on every row, a target on each (none, NULL, when
    // no forward is in effect). A target that became an address of the account itself
    // (an alias added later) is its own mail already: answering it would send Postfix
    // round the alias and back.
    let rows = db
        .rows(
            "SELECT a.forward_delete_copy, f.address FROM accounts a \
             LEFT JOIN mail_forwards f ON f.account_id = a.account_id AND f.confirmed AND f.enabled \
             AND f.address NOT IN (SELECT address FROM addresses WHERE account_id = a.account_id) \
             WHERE a.account_id = $1 ORDER BY f.address",
            &[&account.as_i64()],
            |r| {
                Ok((
                    r.get::<bool>("forward_delete_copy")?,
                    r.get::<Option<String>>("address")?,
                ))
            },
        )
        .await?;
    let delete_copy = rows.first().is_some_and(|(d, _)| *d);
    let targets = rows
        .iter()
        .filter_map(|(_, a)| a.as_deref().map(email))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((targets, !delete_copy))
}

/// The hosted account whose primary address is `login`, as a login sees it.
pub(crate) async fn mail_login<D: Db>(
    db: &D,
    login: &EmailAddress,
) -> Result<Option<MailLogin>, StoreError> {
    db.row(
        "SELECT a.account_id, a.enabled, a.imap_enabled, a.pop_enabled, u.password_hash, u.expires_ms \
         FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
         JOIN users u ON u.zuid = a.zuid \
         WHERE d.address = $1 AND d.is_primary AND a.kind = $2",
        &[&login.as_str(), &AccountKind::Hosted.as_str()],
        |r| {
            Ok(MailLogin {
                account_id: AccountId::from_db(r.get("account_id")?),
                login: login.clone(),
                enabled: r.get("enabled")?,
                imap_enabled: r.get("imap_enabled")?,
                pop_enabled: r.get("pop_enabled")?,
                password_hash: r.get("password_hash")?,
                expires_ms: r.get("expires_ms")?,
            })
        },
    )
    .await
}

/// The account that may send as `address`, if exactly one may. A contested address has
/// no owner: no map answers for it (the policy service says why when a login tries it).
async fn owner<D: Db>(db: &D, address: &EmailAddress) -> Result<Option<AccountId>, StoreError> {
    let facts = address_facts(db, std::slice::from_ref(address)).await?;
    Ok(match facts.first().map(AddressFacts::owner) {
        Some(Owner::Account(id)) => Some(id),
        _ => None,
    })
}

/// The logins (every address of the one account that owns `address`) that may use it as
/// sender.
pub(crate) async fn sender_logins<D: Db>(
    db: &D,
    address: &EmailAddress,
) -> Result<Vec<EmailAddress>, StoreError> {
    let Some(id) = owner(db, address).await? else {
        return Ok(Vec::new());
    };
    Ok(addresses(db, id)
        .await?
        .into_iter()
        .map(|a| a.address)
        .collect())
}

/// The rows of `identities` whose relay the mail server may use: `extfrom` identities
/// whose owner is confirmed and whose relay passed its last check. Anything else (pending,
/// failed, unconfirmed) gets no route, so Postfix never tries a relay nobody checked.
/// A macro, not a `const`, so that `concat!` can put it into `&'static str` statements.
macro_rules! validated_relay {
    () => {
        "mode = 'extfrom' AND owner_confirmed AND relay_state = 'validated' \
         AND server_name IS NOT NULL"
    };
}

/// The relay of the validated `extfrom` identity of the one account that owns `address`.
pub(crate) async fn relay_route<D: Db>(
    db: &D,
    key: &RelayKey,
    address: &EmailAddress,
) -> Result<Option<RelayRoute>, StoreError> {
    let Some(id) = owner(db, address).await? else {
        return Ok(None);
    };
    let found = db
        .row(
            concat!(
                "SELECT server_name, server_port, user_name, password_enc, smtp_connection \
                 FROM identities WHERE account_id = $1 AND from_address = $2 AND ",
                validated_relay!()
            ),
            &[&id.as_i64(), &address.as_str()],
            RelayRoute::from_row,
        )
        .await?;
    let Some((route, sealed)) = found else {
        return Ok(None);
    };
    route
        .unseal(key, id.as_i64(), address.as_str(), sealed)
        .map(Some)
}

/// The distinct (server name, connection kind) of the validated relays on `port`: the TLS
/// policy map resolves the names and keeps those that lead to the next hop it was asked
/// about (Postfix asks by `[ip]:port`, the name is ours to map back).
pub(crate) async fn relay_tls_names<D: Db>(
    db: &D,
    port: u16,
) -> Result<Vec<(String, SmtpConnection)>, StoreError> {
    let rows = db
        .rows(
            concat!(
                "SELECT DISTINCT server_name, smtp_connection FROM identities \
                 WHERE server_port = $1 AND ",
                validated_relay!(),
                " ORDER BY server_name, smtp_connection"
            ),
            &[&i32::from(port)],
            |r| {
                Ok((
                    r.get::<String>("server_name")?,
                    r.get::<Option<String>>("smtp_connection")?,
                ))
            },
        )
        .await?;
    rows.into_iter()
        .map(|(name, conn)| Ok((name, crate::model::smtp_connection(conn)?)))
        .collect()
}

/// Every stored relay password: (identity id, binding, ciphertext), locked for the
/// re-encryption that reads them.
pub(crate) async fn relay_passwords<D: Db>(
    db: &D,
) -> Result<Vec<(i64, String, Vec<u8>)>, StoreError> {
    db.rows(
        "SELECT send_mail_id, account_id, from_address, password_enc FROM identities \
         WHERE password_enc IS NOT NULL FOR UPDATE",
        &[],
        |r| {
            Ok((
                r.get("send_mail_id")?,
                crate::relay_key::binding(r.get("account_id")?, &r.get::<String>("from_address")?),
                r.get("password_enc")?,
            ))
        },
    )
    .await
}

/// Re-encrypts every stored relay password under the key's current version.
pub(crate) async fn reencrypt_relay_passwords<D: Db>(
    db: &D,
    key: &RelayKey,
) -> Result<usize, StoreError> {
    let sealed = relay_passwords(db).await?;
    for (id, binding, ct) in &sealed {
        db.exec(
            "UPDATE identities SET password_enc = $1 WHERE send_mail_id = $2",
            &[&key.reseal(ct, binding)?, id],
        )
        .await?;
    }
    Ok(sealed.len())
}
