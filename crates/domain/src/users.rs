//! The rules of adding and removing users (`POST`/`DELETE …/organization/{zoid}/accounts`),
//! the same on every backend.

use serde_json::{json, Value};

use crate::{AccountId, EmailAddress, Role, RuleError, Zuid};

/// Why a user may not be added or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRuleError {
    /// The caller's role does not allow it (403).
    Forbidden(String),
    /// The request breaks a rule (400 or 409).
    Rule(RuleError),
}

impl From<RuleError> for UserRuleError {
    fn from(e: RuleError) -> Self {
        UserRuleError::Rule(e)
    }
}

/// An admin may add members; only a super admin may add admins. The address must be in
/// one of the organization's domains.
pub fn check_new_user(
    actor: Role,
    role: Role,
    address: &EmailAddress,
    org_domains: &[String],
) -> Result<(), UserRuleError> {
    if role.is_admin() && actor != Role::SuperAdmin {
        return Err(UserRuleError::Forbidden(
            "only a super admin may create admins".into(),
        ));
    }
    if !org_domains.iter().any(|d| d == address.domain()) {
        return Err(RuleError::invalid(
            "primaryEmailAddress",
            format!(
                "primaryEmailAddress must be in one of the organization's domains ({})",
                org_domains.join(", ")
            ),
        )
        .into());
    }
    Ok(())
}

/// Only a super admin may remove admins, and the organization keeps at least one super
/// admin. `removed` are the roles of the users to remove (each once).
pub fn check_removal(
    actor: Role,
    removed: &[Role],
    super_admins_in_org: usize,
) -> Result<(), UserRuleError> {
    if removed.iter().any(|r| r.is_admin()) && actor != Role::SuperAdmin {
        return Err(UserRuleError::Forbidden(
            "only a super admin may remove admins".into(),
        ));
    }
    let supers = removed.iter().filter(|r| **r == Role::SuperAdmin).count();
    if supers > 0 && supers >= super_admins_in_org {
        return Err(RuleError::invalid(
            "accountList",
            "accountList: the organization's last super admin cannot be removed",
        )
        .into());
    }
    Ok(())
}

/// The audit view of a user added (the row's `after`) or removed (its `before`): the same
/// on every backend, never a password.
pub fn user_audit_view(
    zuid: Zuid,
    account: Option<AccountId>,
    primary: Option<&str>,
    role: Role,
) -> Value {
    let mut v =
        json!({ "zuid": zuid.get(), "primaryEmailAddress": primary, "role": role.as_str() });
    if let Some(a) = account {
        v["accountId"] = json!(a.to_string());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn only_super_admins_add_admins_and_domains_are_the_orgs() {
        let domains = vec!["zylker.com".to_string()];
        assert!(check_new_user(Role::Admin, Role::Member, &addr("a@zylker.com"), &domains).is_ok());
        assert!(matches!(
            check_new_user(Role::Admin, Role::Admin, &addr("a@zylker.com"), &domains),
            Err(UserRuleError::Forbidden(_))
        ));
        assert!(check_new_user(
            Role::SuperAdmin,
            Role::SuperAdmin,
            &addr("a@zylker.com"),
            &domains
        )
        .is_ok());
        assert!(matches!(
            check_new_user(
                Role::SuperAdmin,
                Role::Member,
                &addr("a@example.com"),
                &domains
            ),
            Err(UserRuleError::Rule(_))
        ));
    }

    #[test]
    fn the_last_super_admin_stays() {
        assert!(check_removal(Role::SuperAdmin, &[Role::Member], 1).is_ok());
        assert!(matches!(
            check_removal(Role::SuperAdmin, &[Role::SuperAdmin], 1),
            Err(UserRuleError::Rule(_))
        ));
        assert!(check_removal(Role::SuperAdmin, &[Role::SuperAdmin], 2).is_ok());
        assert!(matches!(
            check_removal(Role::Admin, &[Role::Admin], 1),
            Err(UserRuleError::Forbidden(_))
        ));
    }
}
