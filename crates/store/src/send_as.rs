//! The ownership rules of send-as identities applied to what a backend read: both
//! backends load [`AddressFacts`] in their own dialect and finish here, so that reads,
//! the policy service and the socketmaps agree on who may send as an address.

use mailplane_domain::{AccountId, AddressFacts, EmailAddress, Identity, MailAccount};

/// The addresses of `identities` whose state depends on other accounts.
pub(crate) fn claimed_addresses(identities: &[Identity]) -> Vec<EmailAddress> {
    identities
        .iter()
        .filter(|i| i.is_claim())
        .map(|i| i.from_address.clone())
        .collect()
}

/// Sets the state of each of `account`'s identities from the facts of their addresses.
pub(crate) fn settle(account: AccountId, identities: &mut [Identity], facts: &[AddressFacts]) {
    for identity in identities.iter_mut().filter(|i| i.is_claim()) {
        let Some(f) = facts.iter().find(|f| f.address == identity.from_address) else {
            continue;
        };
        // The account's own claim is among the facts and carries its organization.
        if let Some(own) = f.claims.iter().find(|c| c.account == account) {
            identity.state = f.state_for(account, own.zoid);
        }
    }
}

/// An account as the policy service sees it: its own addresses, and the identities whose
/// state is settled.
pub(crate) fn mail_account(
    account_id: AccountId,
    (enabled, outgoing_blocked, incoming_blocked): (bool, bool, bool),
    addresses: Vec<EmailAddress>,
    identities: &[Identity],
) -> MailAccount {
    let mut may_send_as = addresses;
    let mut unverified = Vec::new();
    for i in identities {
        if i.may_send() {
            may_send_as.push(i.from_address.clone());
        } else if let Some(why) = i.unverified_reason() {
            unverified.push((i.from_address.clone(), why));
        }
    }
    MailAccount {
        account_id,
        enabled,
        outgoing_blocked,
        incoming_blocked,
        may_send_as,
        unverified,
    }
}
