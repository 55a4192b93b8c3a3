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

/// The role `changeRole` gives: `admin` or `member`, and `user`, which Zoho's sample sends,
/// read as `member`. A super admin is made only by `bootstrap` or on creation.
pub fn assignable_role(s: &str) -> Option<Role> {
    match s {
        "admin" => Some(Role::Admin),
        "member" | "user" => Some(Role::Member),
        _ => None,
    }
}

/// The role in the audit rows of `changeRole` (`before` and `after`).
pub fn role_audit_view(role: Role) -> Value {
    json!({ "role": role.as_str() })
}

/// Only a super admin may make or unmake admins (`changeRole`), and the organization keeps
/// at least one super admin. `current` are the roles of the users named (each once),
/// `new` the role they get.
pub fn check_role_change(
    actor: Role,
    new: Role,
    current: &[Role],
    super_admins_in_org: usize,
) -> Result<(), UserRuleError> {
    let touches_admins = new.is_admin() || current.iter().any(|r| r.is_admin());
    if touches_admins && actor != Role::SuperAdmin {
        return Err(UserRuleError::Forbidden(
            "only a super admin may make or unmake admins".into(),
        ));
    }
    let demoted = current.iter().filter(|r| **r == Role::SuperAdmin).count();
    if new != Role::SuperAdmin && demoted > 0 && demoted >= super_admins_in_org {
        return Err(RuleError::invalid(
            "userList",
            "userList: the organization's last super admin keeps that role",
        )
        .into());
    }
    Ok(())
}

/// The most days `userExpiry` may be (about a hundred years): a larger count would only
/// overflow the clock, and "never" is said by leaving the key out.
pub const MAX_USER_EXPIRY_DAYS: u64 = 36_500;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// When a user created at `now_ms` with `userExpiry` = `days` expires, in epoch
/// milliseconds. Zoho's page counts the expiry in days from the creation.
pub fn expiry_ms(now_ms: i64, days: u64) -> Result<i64, RuleError> {
    if !(1..=MAX_USER_EXPIRY_DAYS).contains(&days) {
        return Err(RuleError::invalid(
            "userExpiry",
            format!("userExpiry must be a number of days from 1 to {MAX_USER_EXPIRY_DAYS}"),
        ));
    }
    Ok(now_ms.saturating_add(days as i64 * DAY_MS))
}

/// Whether a user whose expiry is `expires_ms` (`None`: never) has expired at `now_ms`.
/// An expired user can no longer sign in (OAuth) nor log in to mail, and its tokens stop
/// working; its data stays.
pub fn is_expired(expires_ms: Option<i64>, now_ms: i64) -> bool {
    expires_ms.is_some_and(|e| e <= now_ms)
}

/// The profile fields of Zoho's Add User page (the ones it passes on to an HR record).
/// mailplane keeps and shows them; nothing else reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    EmployeeId,
    Department,
    Designation,
    MobileNumber,
    Extension,
}

impl ProfileField {
    pub const ALL: [ProfileField; 5] = [
        ProfileField::EmployeeId,
        ProfileField::Department,
        ProfileField::Designation,
        ProfileField::MobileNumber,
        ProfileField::Extension,
    ];

    /// The body key.
    pub fn key(self) -> &'static str {
        match self {
            ProfileField::EmployeeId => "employeeId",
            ProfileField::Department => "department",
            ProfileField::Designation => "designation",
            ProfileField::MobileNumber => "mobileNumber",
            ProfileField::Extension => "extension",
        }
    }

    /// What the field may hold, for the message of a refused value.
    pub fn rule(self) -> &'static str {
        match self {
            ProfileField::EmployeeId => "1 to 50 letters, digits, spaces or . _ - / #",
            ProfileField::Department | ProfileField::Designation => {
                "1 to 100 characters, no control characters"
            }
            ProfileField::MobileNumber => {
                "a phone number: 4 to 20 digits, optionally a leading +, spaces, -, ( or )"
            }
            ProfileField::Extension => "1 to 10 digits",
        }
    }

    fn accepts(self, s: &str) -> bool {
        let len = s.chars().count();
        match self {
            ProfileField::EmployeeId => {
                (1..=50).contains(&len)
                    && s.chars()
                        .all(|c| c.is_alphanumeric() || " ._-/#".contains(c))
            }
            ProfileField::Department | ProfileField::Designation => {
                (1..=100).contains(&len) && !s.chars().any(char::is_control)
            }
            ProfileField::MobileNumber => {
                let body = s.strip_prefix('+').unwrap_or(s);
                let digits = body.chars().filter(char::is_ascii_digit).count();
                len <= 30
                    && (4..=20).contains(&digits)
                    && body
                        .chars()
                        .all(|c| c.is_ascii_digit() || " -()".contains(c))
            }
            ProfileField::Extension => {
                (1..=10).contains(&len) && s.bytes().all(|b| b.is_ascii_digit())
            }
        }
    }

    /// The value, trimmed, if the field accepts it.
    pub fn parse(self, value: &str) -> Result<String, RuleError> {
        let value = value.trim();
        if self.accepts(value) {
            Ok(value.to_string())
        } else {
            Err(RuleError::invalid(
                self.key(),
                format!("{} must be {}", self.key(), self.rule()),
            ))
        }
    }
}

/// A user's profile fields; an empty string is a field not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    pub employee_id: String,
    pub department: String,
    pub designation: String,
    pub mobile_number: String,
    pub extension: String,
}

impl UserProfile {
    pub fn get(&self, field: ProfileField) -> &str {
        match field {
            ProfileField::EmployeeId => &self.employee_id,
            ProfileField::Department => &self.department,
            ProfileField::Designation => &self.designation,
            ProfileField::MobileNumber => &self.mobile_number,
            ProfileField::Extension => &self.extension,
        }
    }

    pub fn set(&mut self, field: ProfileField, value: String) {
        *match field {
            ProfileField::EmployeeId => &mut self.employee_id,
            ProfileField::Department => &mut self.department,
            ProfileField::Designation => &mut self.designation,
            ProfileField::MobileNumber => &mut self.mobile_number,
            ProfileField::Extension => &mut self.extension,
        } = value;
    }
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

    #[test]
    fn only_super_admins_change_admin_roles_and_the_last_super_admin_stays() {
        use Role::*;
        assert!(check_role_change(Admin, Member, &[Member], 1).is_ok());
        assert!(matches!(
            check_role_change(Admin, Admin, &[Member], 1),
            Err(UserRuleError::Forbidden(_))
        ));
        assert!(matches!(
            check_role_change(Admin, Member, &[Admin], 1),
            Err(UserRuleError::Forbidden(_))
        ));
        assert!(matches!(
            check_role_change(Member, Member, &[SuperAdmin], 1),
            Err(UserRuleError::Forbidden(_))
        ));
        assert!(check_role_change(SuperAdmin, Admin, &[Member, Admin], 1).is_ok());
        assert!(matches!(
            check_role_change(SuperAdmin, Admin, &[SuperAdmin], 1),
            Err(UserRuleError::Rule(_))
        ));
        assert!(check_role_change(SuperAdmin, Member, &[SuperAdmin], 2).is_ok());
        assert!(matches!(
            check_role_change(SuperAdmin, Member, &[SuperAdmin, SuperAdmin], 2),
            Err(UserRuleError::Rule(_))
        ));
    }

    #[test]
    fn expiry_counts_days_and_expires_at_its_time() {
        assert_eq!(expiry_ms(1_000, 1).unwrap(), 1_000 + 86_400_000);
        assert!(expiry_ms(0, 0).is_err());
        assert!(expiry_ms(0, MAX_USER_EXPIRY_DAYS + 1).is_err());
        assert!(expiry_ms(i64::MAX - 5, MAX_USER_EXPIRY_DAYS).is_ok());
        assert!(!is_expired(None, i64::MAX));
        assert!(!is_expired(Some(10), 9));
        assert!(is_expired(Some(10), 10));
    }

    #[test]
    fn profile_fields_keep_their_forms() {
        use ProfileField::*;
        assert_eq!(EmployeeId.parse(" E-1024/b ").unwrap(), "E-1024/b");
        assert!(EmployeeId.parse("").is_err());
        assert!(EmployeeId.parse("a;b").is_err());
        assert!(EmployeeId.parse(&"x".repeat(51)).is_err());
        assert_eq!(
            Department.parse("Sales & Support").unwrap(),
            "Sales & Support"
        );
        assert!(Designation.parse("line\nbreak").is_err());
        assert!(Designation.parse(&"é".repeat(101)).is_err());
        assert_eq!(
            MobileNumber.parse("+1 (555) 010-9999").unwrap(),
            "+1 (555) 010-9999"
        );
        assert!(MobileNumber.parse("123").is_err());
        assert!(MobileNumber.parse("555-CALL-NOW").is_err());
        assert!(MobileNumber.parse("1+2345").is_err());
        assert_eq!(Extension.parse("0042").unwrap(), "0042");
        assert!(Extension.parse("12a").is_err());
        assert!(Extension.parse("12345678901").is_err());
    }
}
