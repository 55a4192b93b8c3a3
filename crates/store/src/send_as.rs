//! The ownership rules of send-as identities applied to what a backend read: both
//! backends load [`AddressFacts`] in their own dialect and finish here, so that reads,
//! the policy service and the socketmaps agree on who may send as an address.

use mailplane_domain::{
    AccountId, AddressFacts, EmailAddress, Identity, IdentityMode, IdentityState, MailAccount,
};

/// Whether an identity of this mode names an address of the account itself (always
/// owned) rather than one outside it (a claim, settled by the rules of `send_as`).
fn is_claim(mode: IdentityMode) -> bool {
    !matches!(mode, IdentityMode::Mailbox | IdentityMode::Alias)
}

/// The addresses of `identities` whose state depends on other accounts.
pub(crate) fn claimed_addresses(identities: &[Identity]) -> Vec<EmailAddress> {
    identities
        .iter()
        .filter(|i| is_claim(i.mode))
        .map(|i| i.from_address.clone())
        .collect()
}

/// Sets the state of each of `account`'s identities from the facts of their addresses.
pub(crate) fn settle(account: AccountId, identities: &mut [Identity], facts: &[AddressFacts]) {
    for identity in identities.iter_mut().filter(|i| is_claim(i.mode)) {
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
    let mut contested = Vec::new();
    for i in identities {
        match i.state {
            IdentityState::Active => may_send_as.push(i.from_address.clone()),
            IdentityState::Contested => contested.push(i.from_address.clone()),
            IdentityState::Inert(_) => {}
        }
    }
    MailAccount {
        account_id,
        enabled,
        outgoing_blocked,
        incoming_blocked,
        may_send_as,
        contested,
    }
}
