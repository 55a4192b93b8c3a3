//! OAuth scopes as Zoho writes them: `ZohoMail.accounts.UPDATE`,
//! `ZohoMail.organization.accounts.ALL`, …

use std::fmt;
use std::str::FromStr;

/// What a scope grants access to: the caller's own accounts (user authentication) or the
/// accounts of an organization (admin authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Accounts,
    OrganizationAccounts,
}

/// The operation a scope grants. `All` includes every other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Update,
    Create,
    Delete,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    pub resource: Resource,
    pub access: Access,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: expected ZohoMail.accounts.<READ|UPDATE|ALL> or ZohoMail.organization.accounts.<READ|UPDATE|CREATE|DELETE|ALL>")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, UnknownScope> {
        let unknown = || UnknownScope(s.to_string());
        let (resource, op) = if let Some(op) = s.strip_prefix("ZohoMail.organization.accounts.") {
            (Resource::OrganizationAccounts, op)
        } else if let Some(op) = s.strip_prefix("ZohoMail.accounts.") {
            (Resource::Accounts, op)
        } else {
            return Err(unknown());
        };
        let access = match (resource, op) {
            (_, "READ") => Access::Read,
            (_, "UPDATE") => Access::Update,
            (_, "ALL") => Access::All,
            (Resource::OrganizationAccounts, "CREATE") => Access::Create,
            (Resource::OrganizationAccounts, "DELETE") => Access::Delete,
            _ => return Err(unknown()),
        };
        Ok(Scope { resource, access })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.resource {
            Resource::Accounts => "ZohoMail.accounts",
            Resource::OrganizationAccounts => "ZohoMail.organization.accounts",
        };
        let op = match self.access {
            Access::Read => "READ",
            Access::Update => "UPDATE",
            Access::Create => "CREATE",
            Access::Delete => "DELETE",
            Access::All => "ALL",
        };
        write!(f, "{prefix}.{op}")
    }
}

/// The scopes a token carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    pub fn new(mut scopes: Vec<Scope>) -> Self {
        scopes.dedup();
        Self(scopes)
    }

    /// Every scope of both resources: what `bootstrap` and the demo admin get.
    pub fn everything() -> Self {
        Self(vec![
            Scope {
                resource: Resource::OrganizationAccounts,
                access: Access::All,
            },
            Scope {
                resource: Resource::Accounts,
                access: Access::All,
            },
        ])
    }

    pub fn user_all() -> Self {
        Self(vec![Scope {
            resource: Resource::Accounts,
            access: Access::All,
        }])
    }

    pub fn allows(&self, resource: Resource, access: Access) -> bool {
        self.0
            .iter()
            .any(|s| s.resource == resource && (s.access == access || s.access == Access::All))
    }

    /// Parses Zoho's comma-separated form, ignoring blanks around the commas.
    pub fn parse_list(s: &str) -> Result<Self, UnknownScope> {
        let scopes = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Scope>, _>>()?;
        if scopes.is_empty() {
            return Err(UnknownScope(String::new()));
        }
        Ok(Self::new(scopes))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_includes_every_operation() {
        let s = ScopeSet::parse_list("ZohoMail.organization.accounts.ALL").unwrap();
        for a in [Access::Read, Access::Update, Access::Create, Access::Delete] {
            assert!(s.allows(Resource::OrganizationAccounts, a));
            assert!(!s.allows(Resource::Accounts, a));
        }
    }

    #[test]
    fn update_does_not_grant_read() {
        let s = ScopeSet::parse_list("ZohoMail.accounts.UPDATE").unwrap();
        assert!(s.allows(Resource::Accounts, Access::Update));
        assert!(!s.allows(Resource::Accounts, Access::Read));
    }

    #[test]
    fn round_trips_and_rejects_unknown() {
        let text = "ZohoMail.accounts.READ,ZohoMail.organization.accounts.CREATE";
        assert_eq!(ScopeSet::parse_list(text).unwrap().to_string(), text);
        assert!(ScopeSet::parse_list("ZohoMail.accounts.CREATE").is_err());
        assert!(ScopeSet::parse_list("ZohoMail.messages.ALL").is_err());
        assert!(ScopeSet::parse_list("").is_err());
    }
}
