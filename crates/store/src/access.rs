//! Who is calling and what they may reach.
//!
//! A [`Principal`] comes only from [`crate::Store::authenticate`]; a [`Grant`] comes only
//! from a principal whose scopes and role allow the operation. Every store method that
//! reads or writes an account takes a `Grant`, so a handler cannot skip the check.

use mailplane_domain::{Access, AccountId, Resource, Role, RuleError, ScopeSet, Zoid, Zuid};

use crate::WriteError;

/// The user behind a valid token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub(crate) token_id: i64,
    pub(crate) zuid: Zuid,
    pub(crate) zoid: Zoid,
    pub(crate) role: Role,
    pub(crate) scopes: ScopeSet,
    /// Where the token is used: the API, or a console session.
    pub(crate) via: crate::Via,
}

/// Why a principal may not perform an operation at all (before any target is looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The token lacks every scope that would allow it (401 `INVALID_OAUTHSCOPE`).
    Scope,
    /// The scope is right but the user's role is not (403).
    Role,
}

/// Which grant a request asks for: the user's own accounts (`/api/accounts/…`) or the
/// organization's (`/api/organization/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    User,
    Admin,
}

/// What the path of an account update names: an account, or (for the modes whose table
/// entry says `PathId::Zuid`) a user, whose first hosted account is the one changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateTarget {
    Account(AccountId),
    HostedAccountOf(Zuid),
}

impl From<AccountId> for UpdateTarget {
    fn from(id: AccountId) -> Self {
        UpdateTarget::Account(id)
    }
}

impl std::fmt::Display for UpdateTarget {
    /// As answers name it: by the id the path gave.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateTarget::Account(id) => write!(f, "accountId {id}"),
            UpdateTarget::HostedAccountOf(zuid) => write!(f, "zuid {zuid}"),
        }
    }
}

impl UpdateTarget {
    /// The answer when it is absent or out of reach (the two look alike). It names only
    /// the id of the path: a user of another organization is never answered with the id
    /// of their account.
    pub(crate) fn not_found(self) -> WriteError {
        WriteError::NotFound(format!("{self} was not found"))
    }
}

/// How far a grant reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The principal's own accounts (user authentication).
    Own(Zuid),
    /// Every account of the organization (admin authentication).
    Organization(Zoid),
}

/// Permission to perform one class of operation, within a reach.
#[derive(Debug, Clone)]
pub struct Grant {
    pub(crate) actor: Principal,
    pub(crate) reach: Reach,
}

impl Principal {
    pub fn zuid(&self) -> Zuid {
        self.zuid
    }
    pub fn zoid(&self) -> Zoid {
        self.zoid
    }
    pub fn role(&self) -> Role {
        self.role
    }

    /// The grant of `kind` for `access`.
    pub fn grant(&self, kind: GrantKind, access: Access) -> Result<Grant, Denied> {
        match kind {
            GrantKind::User => self.user_grant(access),
            GrantKind::Admin => self.admin_grant(access),
        }
    }

    /// The grant of `kind` for `access` of the principal a token lookup found, if any.
    pub(crate) fn grant_of(
        found: Option<Principal>,
        kind: GrantKind,
        access: Access,
    ) -> Result<Grant, crate::Refusal> {
        found
            .ok_or(crate::Refusal::InvalidToken)?
            .grant(kind, access)
            .map_err(crate::Refusal::Denied)
    }

    /// For `/api/accounts/...`: the principal's own accounts.
    pub fn user_grant(&self, access: Access) -> Result<Grant, Denied> {
        if !self.scopes.allows(Resource::Accounts, access) {
            return Err(Denied::Scope);
        }
        Ok(Grant {
            actor: self.clone(),
            reach: Reach::Own(self.zuid),
        })
    }

    /// For `/api/organization/...`: the accounts of the principal's organization, for an
    /// admin or super admin.
    pub fn admin_grant(&self, access: Access) -> Result<Grant, Denied> {
        if !self.scopes.allows(Resource::OrganizationAccounts, access) {
            return Err(Denied::Scope);
        }
        if !self.role.is_admin() {
            return Err(Denied::Role);
        }
        Ok(Grant {
            actor: self.clone(),
            reach: Reach::Organization(self.zoid),
        })
    }
}

impl Grant {
    pub fn actor(&self) -> &Principal {
        &self.actor
    }

    /// Whether an organization named in a URL is within reach. Another organization is
    /// answered like a missing one.
    pub fn reaches_org(&self, zoid: Zoid) -> bool {
        matches!(self.reach, Reach::Organization(z) if z == zoid)
    }

    /// Whether an account owned by `zuid` in organization `zoid` is within reach.
    pub(crate) fn reaches_account(&self, owner: Zuid, owner_org: Zoid) -> bool {
        match self.reach {
            Reach::Own(z) => z == owner,
            Reach::Organization(o) => o == owner_org,
        }
    }

    /// Whether the grant may change the accounts of a user whose role is `owner_role`.
    /// Only a super admin may create or remove admins; an ordinary admin who could
    /// disable a super admin's mailbox, block its mail or take its address would hold
    /// more power than that, so a super admin's accounts are out of an admin's hands.
    /// Everyone may change their own (the user URL reaches nothing else).
    pub(crate) fn may_change_accounts_of(&self, owner_role: Role) -> bool {
        match self.reach {
            Reach::Own(_) => true,
            Reach::Organization(_) => {
                owner_role != Role::SuperAdmin || self.actor.role == Role::SuperAdmin
            }
        }
    }

    /// Checks an update's target against the grant, the same on every backend: an
    /// account out of reach (or under another organization's URL) is answered like a
    /// missing one; one whose owner's role is above the caller's is a 403; a body `zuid`
    /// must be the owner's.
    pub(crate) fn check_target(
        &self,
        target: UpdateTarget,
        owner: Zuid,
        owner_role: Role,
        owner_org: Zoid,
        zoid_in_url: Option<Zoid>,
        body_zuid: Option<Zuid>,
    ) -> Result<(), WriteError> {
        let url_ok = zoid_in_url.is_none_or(|z| z == owner_org && self.reaches_org(z));
        if !url_ok || !self.reaches_account(owner, owner_org) {
            return Err(target.not_found());
        }
        // After the reach: an account outside the organization stays a 404, never a
        // 403 that would tell it exists.
        if !self.may_change_accounts_of(owner_role) {
            return Err(WriteError::Forbidden(format!(
                "{target} belongs to a super admin; only a super admin may change it"
            )));
        }
        if body_zuid.is_some_and(|z| z != owner) {
            let message = match target {
                UpdateTarget::Account(account) => {
                    format!("zuid must be the owner of account {account} ({owner})")
                }
                UpdateTarget::HostedAccountOf(_) => {
                    format!("zuid must be the one in the path ({owner})")
                }
            };
            return Err(RuleError::invalid("zuid", message).into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailplane_domain::ScopeSet;

    fn principal(role: Role) -> Principal {
        Principal {
            token_id: 1,
            zuid: Zuid::new(7).unwrap(),
            zoid: Zoid::new(1).unwrap(),
            role,
            scopes: ScopeSet::everything(),
            via: crate::Via::Api,
        }
    }

    #[test]
    fn only_a_super_admin_changes_a_super_admins_accounts() {
        use Role::*;
        for (actor, owner, allowed) in [
            (SuperAdmin, SuperAdmin, true),
            (SuperAdmin, Admin, true),
            (SuperAdmin, Member, true),
            (Admin, SuperAdmin, false),
            (Admin, Admin, true),
            (Admin, Member, true),
        ] {
            let grant = principal(actor).admin_grant(Access::Update).unwrap();
            assert_eq!(
                grant.may_change_accounts_of(owner),
                allowed,
                "{actor:?} on {owner:?}"
            );
            let account = UpdateTarget::Account(AccountId::new(9).unwrap());
            let owner_zuid = Zuid::new(8).unwrap();
            let checked =
                grant.check_target(account, owner_zuid, owner, grant.actor.zoid, None, None);
            assert_eq!(
                matches!(checked, Err(WriteError::Forbidden(_))),
                !allowed,
                "{actor:?} on {owner:?}"
            );
        }
        // Out of reach stays a 404 whatever the owner's role.
        let admin = principal(Admin).admin_grant(Access::Update).unwrap();
        let elsewhere = admin.check_target(
            UpdateTarget::Account(AccountId::new(9).unwrap()),
            Zuid::new(8).unwrap(),
            SuperAdmin,
            Zoid::new(2).unwrap(),
            None,
            None,
        );
        assert!(matches!(elsewhere, Err(WriteError::NotFound(_))));
        // Named by a zuid, the answer names the zuid and nothing else.
        let by_zuid = admin.check_target(
            UpdateTarget::HostedAccountOf(Zuid::new(8).unwrap()),
            Zuid::new(8).unwrap(),
            Member,
            Zoid::new(2).unwrap(),
            None,
            None,
        );
        assert!(matches!(by_zuid, Err(WriteError::NotFound(m)) if m == "zuid 8 was not found"));
        // On the user URL a user changes its own accounts, whatever its role.
        let own = principal(SuperAdmin).user_grant(Access::Update).unwrap();
        assert!(own.may_change_accounts_of(SuperAdmin));
    }
}
