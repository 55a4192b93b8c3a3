//! Who may send as an address: the ownership rules of send-as identities.
//!
//! An account always owns its own addresses (primary and aliases: hosted addresses are
//! unique on the server). Any other address it names in an identity (`extfrom`,
//! `backupacc`, `extmailbox`) is only a *claim*, and the claim counts only while
//!
//! - its owner is confirmed: whoever reads the address gave back the key mailed to it,
//!   or an admin of the organization whose domain holds it vouched for it (among
//!   confirmed claims an address is unique on the server, so an unconfirmed claim blocks
//!   nobody and takes nothing),
//! - the address is no other account's own address, and
//! - its domain is hosted by no other organization on this server.
//!
//! The rules are applied where the answer is given (each lookup of the mail server, each
//! read), not only when an identity is added, because users and domains added later can
//! take an address over. The store loads [`AddressFacts`]; the decision is made here.

use crate::{AccountId, EmailAddress, Zoid};

/// An account's identity for an address, with the organization of the account's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub account: AccountId,
    pub zoid: Zoid,
    /// Whether the identity's owner is confirmed.
    pub confirmed: bool,
}

/// What decides who may send as one address, as stored now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFacts {
    pub address: EmailAddress,
    /// The account that has the address as one of its own (primary or alias).
    pub holder: Option<AccountId>,
    /// The organization that hosts the address's domain, if one on this server does.
    pub domain_org: Option<Zoid>,
    /// Every account with an identity for the address.
    pub claims: Vec<Claim>,
}

/// Who may send as an address, and whose relay its mail leaves through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Exactly one account.
    Account(AccountId),
    /// No account holds it or has a claim that counts.
    Nobody,
}

/// Why an identity is not used although it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InertReason {
    /// The address's domain is hosted by another organization.
    ForeignDomain,
    /// The address is now another account's own address.
    HeldElsewhere,
    /// Another account confirmed its ownership of the address first.
    VerifiedElsewhere,
}

/// Whether the mail server honours an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityState {
    /// The account may send as the address (and through the identity's relay, once that
    /// passed its check).
    Active,
    /// The owner of the address has not confirmed the claim yet.
    Unconfirmed,
    /// The address is out of the account's reach now: the identity is kept but unused.
    Inert(InertReason),
}

impl IdentityState {
    pub fn is_active(self) -> bool {
        self == IdentityState::Active
    }

    /// A sentence for readers of the account (API reads): what is wrong, never who else
    /// is involved.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            IdentityState::Active => None,
            IdentityState::Unconfirmed => Some(
                "ownership of the address is not confirmed yet: give back the key mailed to it with verifysendmaildetails",
            ),
            IdentityState::Inert(InertReason::ForeignDomain) => {
                Some("the address's domain is hosted by another organization on this server")
            }
            IdentityState::Inert(InertReason::HeldElsewhere) => {
                Some("the address now belongs to another account")
            }
            IdentityState::Inert(InertReason::VerifiedElsewhere) => {
                Some("another account has confirmed its ownership of this address")
            }
        }
    }
}

impl AddressFacts {
    /// Whether a claim from an account of organization `zoid` can count at all.
    fn domain_allows(&self, zoid: Zoid) -> bool {
        self.domain_org.is_none_or(|d| d == zoid)
    }

    /// The account, other than `except`, whose confirmed claim counts.
    fn confirmed_claim(&self, except: Option<AccountId>) -> Option<AccountId> {
        self.claims
            .iter()
            .find(|c| Some(c.account) != except && c.confirmed && self.domain_allows(c.zoid))
            .map(|c| c.account)
    }

    /// Who may send as the address.
    pub fn owner(&self) -> Owner {
        match self.holder.or_else(|| self.confirmed_claim(None)) {
            Some(account) => Owner::Account(account),
            None => Owner::Nobody,
        }
    }

    /// The state of the identity of `account` (of organization `zoid`) for the address.
    /// The reasons are checked in an order that reveals nothing of other organizations:
    /// a foreign domain is named before whether the address exists there.
    pub fn state_for(&self, account: AccountId, zoid: Zoid) -> IdentityState {
        if self.holder == Some(account) {
            return IdentityState::Active;
        }
        if !self.domain_allows(zoid) {
            return IdentityState::Inert(InertReason::ForeignDomain);
        }
        if self.holder.is_some() {
            return IdentityState::Inert(InertReason::HeldElsewhere);
        }
        let own_confirmed = self
            .claims
            .iter()
            .any(|c| c.account == account && c.confirmed);
        if own_confirmed {
            return IdentityState::Active;
        }
        if self.confirmed_claim(Some(account)).is_some() {
            return IdentityState::Inert(InertReason::VerifiedElsewhere);
        }
        IdentityState::Unconfirmed
    }

    /// Whether an account of organization `zoid` may not even add a claim: the domain is
    /// another organization's.
    pub fn in_foreign_domain(&self, zoid: Zoid) -> bool {
        !self.domain_allows(zoid)
    }

    /// Whether an account other than `account` has confirmed its ownership of the
    /// address: `account` cannot confirm it too.
    pub fn verified_by_other(&self, account: AccountId) -> bool {
        self.claims
            .iter()
            .any(|c| c.account != account && c.confirmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }
    fn acc(n: u64) -> AccountId {
        AccountId::new(n).unwrap()
    }
    fn org(n: u64) -> Zoid {
        Zoid::new(n).unwrap()
    }
    fn claim(a: u64, z: u64, confirmed: bool) -> Claim {
        Claim {
            account: acc(a),
            zoid: org(z),
            confirmed,
        }
    }

    #[test]
    fn a_holder_owns_its_address_whoever_claims_it() {
        let f = AddressFacts {
            address: addr("ceo@victim.example"),
            holder: Some(acc(2)),
            domain_org: Some(org(20)),
            claims: vec![claim(1, 10, true), claim(2, 20, true)],
        };
        assert_eq!(f.owner(), Owner::Account(acc(2)));
        assert_eq!(f.state_for(acc(2), org(20)), IdentityState::Active);
        // The attacker's claim names the foreign domain first, not that the address exists.
        assert_eq!(
            f.state_for(acc(1), org(10)),
            IdentityState::Inert(InertReason::ForeignDomain)
        );
        // Within one organization, a colleague's address.
        assert_eq!(
            f.state_for(acc(3), org(20)),
            IdentityState::Inert(InertReason::HeldElsewhere)
        );
    }

    #[test]
    fn claims_in_a_foreign_domain_never_count() {
        let f = AddressFacts {
            address: addr("postmaster@victim.example"),
            holder: None,
            domain_org: Some(org(20)),
            claims: vec![claim(1, 10, true)],
        };
        assert_eq!(f.owner(), Owner::Nobody);
        assert!(f.in_foreign_domain(org(10)));
        assert!(!f.in_foreign_domain(org(20)));
        let mut g = f.clone();
        g.claims.push(claim(2, 20, true));
        assert_eq!(g.owner(), Owner::Account(acc(2)));
        assert_eq!(g.state_for(acc(2), org(20)), IdentityState::Active);
    }

    #[test]
    fn only_a_confirmed_claim_counts_and_unconfirmed_ones_block_nobody() {
        let f = AddressFacts {
            address: addr("rebecca@gmail.example"),
            holder: None,
            domain_org: None,
            claims: vec![claim(1, 10, false), claim(2, 20, false)],
        };
        assert_eq!(f.owner(), Owner::Nobody);
        assert_eq!(f.state_for(acc(1), org(10)), IdentityState::Unconfirmed);
        assert!(!f.verified_by_other(acc(1)));
        let mut g = f.clone();
        g.claims[1].confirmed = true;
        assert_eq!(g.owner(), Owner::Account(acc(2)));
        assert_eq!(g.state_for(acc(2), org(20)), IdentityState::Active);
        assert_eq!(
            g.state_for(acc(1), org(10)),
            IdentityState::Inert(InertReason::VerifiedElsewhere)
        );
        assert!(g.verified_by_other(acc(1)));
        assert!(!g.verified_by_other(acc(2)));
    }
}
