//! OAuth scopes as Zoho writes them: `ZohoMail.accounts.UPDATE`,
//! `ZohoMail.organization.accounts.ALL`, …
//!
//! Two readings. [`Scope`] and [`ScopeSet`] are the scopes mailplane serves, in their
//! canonical spelling: what a token may do, and what the store keeps beside it.
//! [`ScopeRequest`] is what a client asks for: Zoho clients ask for fixed sets that name
//! other Zoho services too (`ZohoMail.messages.ALL`, `aaaserver.profile.READ`, …), and
//! would never get a token if those were refused. A request accepts any scope of Zoho's
//! form, within bounds, and keeps the served ones apart from the rest, which grant
//! nothing here.

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

impl Access {
    /// Zoho's spelling, in capitals.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "READ",
            Access::Update => "UPDATE",
            Access::Create => "CREATE",
            Access::Delete => "DELETE",
            Access::All => "ALL",
        }
    }
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
        write!(f, "{prefix}.{}", self.access.as_str())
    }
}

/// The scopes a token carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// The scopes in their first order, each once.
    pub fn new(scopes: Vec<Scope>) -> Self {
        let mut unique = Vec::with_capacity(scopes.len());
        for s in scopes {
            if !unique.contains(&s) {
                unique.push(s);
            }
        }
        Self(unique)
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

    /// Parses the stored, canonical list: served scopes only, comma-separated, blanks
    /// around the commas ignored. A client's request goes through [`ScopeRequest`].
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

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
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

/// The most scopes one request may name. Zoho clients ask for a dozen at most; the bound
/// keeps what a grant records, and the consent page, small.
pub const MAX_REQUESTED_SCOPES: usize = 32;
/// The longest single scope. Zoho's longest are under 60 characters.
pub const MAX_SCOPE_LEN: usize = 100;
/// The longest scope list, separators included: what a grant may record.
pub const MAX_SCOPE_LIST_LEN: usize = 2048;

/// Why a scope request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("no scope given")]
    Empty,
    #[error("the scope list is longer than {MAX_SCOPE_LIST_LEN} characters")]
    ListTooLong,
    #[error("more than {MAX_REQUESTED_SCOPES} scopes")]
    TooMany,
    #[error("a scope is longer than {MAX_SCOPE_LEN} characters")]
    ScopeTooLong,
    /// The offending scope, quoted with anything unprintable escaped (it is at most
    /// [`MAX_SCOPE_LEN`] long, so the sentence stays short).
    #[error("{0} is not a scope of the form Service.resource.OPERATION (OPERATION one of READ, CREATE, UPDATE, DELETE, ALL)")]
    Malformed(String),
    #[error("none of the scopes is served here: ask for ZohoMail.accounts.<READ|UPDATE|ALL> or ZohoMail.organization.accounts.<READ|UPDATE|CREATE|DELETE|ALL>")]
    NothingServed,
}

/// One scope of Zoho's form, `<Service>.<resource>.<OP>`, whether or not mailplane serves
/// it. The resource may be dotted (`organization.accounts`). Names are compared without
/// regard to case, since clients vary (`ZohoMail.accounts.read`, `AaaServer.profile.READ`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedScope {
    /// As written, except: `VirtualOffice` (Zoho Mail's former name) reads `ZohoMail`.
    service: String,
    resource: String,
    op: Access,
}

/// Zoho Mail was once Zoho VirtualOffice; old clients still ask for `VirtualOffice.…`.
const LEGACY_MAIL_SERVICE: &str = "VirtualOffice";
const MAIL_SERVICE: &str = "ZohoMail";

fn is_name(part: &str) -> bool {
    part.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl RequestedScope {
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::ScopeTooLong);
        }
        let malformed = || ScopeError::Malformed(format!("{s:?}"));
        let (path, op) = s.rsplit_once('.').ok_or_else(malformed)?;
        let (service, resource) = path.split_once('.').ok_or_else(malformed)?;
        if !is_name(service) || !resource.split('.').all(is_name) {
            return Err(malformed());
        }
        let op = match op.to_ascii_uppercase().as_str() {
            "READ" => Access::Read,
            "UPDATE" => Access::Update,
            "CREATE" => Access::Create,
            "DELETE" => Access::Delete,
            "ALL" => Access::All,
            _ => return Err(malformed()),
        };
        let service = if service.eq_ignore_ascii_case(LEGACY_MAIL_SERVICE) {
            MAIL_SERVICE.to_string()
        } else {
            service.to_string()
        };
        Ok(Self {
            service,
            resource: resource.to_string(),
            op,
        })
    }

    /// The served scope this one is, if mailplane serves it.
    pub fn served(&self) -> Option<Scope> {
        if !self.service.eq_ignore_ascii_case(MAIL_SERVICE) {
            return None;
        }
        let resource = if self.resource.eq_ignore_ascii_case("accounts") {
            Resource::Accounts
        } else if self.resource.eq_ignore_ascii_case("organization.accounts") {
            Resource::OrganizationAccounts
        } else {
            return None;
        };
        // A user's own accounts are read and updated here, never created or deleted.
        if resource == Resource::Accounts && matches!(self.op, Access::Create | Access::Delete) {
            return None;
        }
        Some(Scope {
            resource,
            access: self.op,
        })
    }
}

/// Zoho's spelling: the OP in capitals; the served ones exactly as [`Scope`] writes them.
impl fmt::Display for RequestedScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scope) = self.served() {
            return write!(f, "{scope}");
        }
        write!(f, "{}.{}.{}", self.service, self.resource, self.op.as_str())
    }
}

/// A client's scope request, checked: well formed, within bounds, and naming at least one
/// scope mailplane serves. The served scopes decide what a token may do; the rest are
/// kept only as part of what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequest {
    asked: String,
    served: ScopeSet,
    unserved: Vec<RequestedScope>,
}

impl ScopeRequest {
    /// Zoho separates scopes with commas; clients built on generic OAuth libraries use
    /// spaces (RFC 6749 §3.3). Both are read, and empty items between them ignored.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        if text.len() > MAX_SCOPE_LIST_LEN {
            return Err(ScopeError::ListTooLong);
        }
        let items: Vec<&str> = text
            .split([',', ' '])
            .filter(|item| !item.is_empty())
            .collect();
        if items.is_empty() {
            return Err(ScopeError::Empty);
        }
        if items.len() > MAX_REQUESTED_SCOPES {
            return Err(ScopeError::TooMany);
        }
        let mut served = Vec::new();
        let mut unserved: Vec<RequestedScope> = Vec::new();
        for item in items {
            let scope = RequestedScope::parse(item)?;
            match scope.served() {
                Some(s) => served.push(s),
                None if !unserved.contains(&scope) => unserved.push(scope),
                None => {}
            }
        }
        if served.is_empty() {
            return Err(ScopeError::NothingServed);
        }
        Ok(Self {
            asked: text.to_string(),
            served: ScopeSet::new(served),
            unserved,
        })
    }

    /// The request as the client wrote it (well formed and within bounds).
    pub fn asked(&self) -> &str {
        &self.asked
    }

    /// What a token from this request may do.
    pub fn served(&self) -> &ScopeSet {
        &self.served
    }

    /// The scopes asked for that grant nothing here, in Zoho's spelling.
    pub fn unserved(&self) -> &[RequestedScope] {
        &self.unserved
    }
}

/// A request for exactly the served scopes of a set: what mailplane itself grants.
impl From<ScopeSet> for ScopeRequest {
    fn from(served: ScopeSet) -> Self {
        Self {
            asked: served.to_string(),
            served,
            unserved: Vec::new(),
        }
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

    #[test]
    fn a_zoho_client_set_is_accepted_and_only_the_served_scopes_count() {
        let text = "ZohoMail.accounts.READ,ZohoMail.messages.ALL,ZohoMail.folders.ALL,\
                    VirtualOffice.accounts.READ,aaaserver.profile.READ,ZohoMail.tags.ALL";
        let r = ScopeRequest::parse(text).unwrap();
        assert_eq!(r.asked(), text);
        assert_eq!(r.served().to_string(), "ZohoMail.accounts.READ");
        let unserved: Vec<String> = r.unserved().iter().map(ToString::to_string).collect();
        assert_eq!(
            unserved,
            [
                "ZohoMail.messages.ALL",
                "ZohoMail.folders.ALL",
                "aaaserver.profile.READ",
                "ZohoMail.tags.ALL"
            ]
        );
    }

    #[test]
    fn operations_ignore_case_and_virtual_office_is_zoho_mail() {
        let r = ScopeRequest::parse(
            "ZohoMail.accounts.update VirtualOffice.organization.accounts.Read",
        )
        .unwrap();
        assert_eq!(
            r.served().to_string(),
            "ZohoMail.accounts.UPDATE,ZohoMail.organization.accounts.READ"
        );
        assert!(r.unserved().is_empty());
        // Served, but not an operation on a user's own accounts: it grants nothing.
        let r = ScopeRequest::parse("ZohoMail.accounts.READ,ZohoMail.accounts.create").unwrap();
        assert_eq!(r.served().to_string(), "ZohoMail.accounts.READ");
        assert_eq!(r.unserved()[0].to_string(), "ZohoMail.accounts.CREATE");
        let r =
            ScopeRequest::parse("ZohoMail.organization.domains.ALL,ZohoMail.accounts.ALL").unwrap();
        assert_eq!(
            r.unserved()[0].to_string(),
            "ZohoMail.organization.domains.ALL"
        );
    }

    #[test]
    fn refusals() {
        use ScopeError::*;
        let long = format!("ZohoMail.{}.READ", "a".repeat(MAX_SCOPE_LEN));
        let many = vec!["ZohoMail.accounts.READ"; MAX_REQUESTED_SCOPES + 1].join(",");
        let huge = format!("ZohoMail.accounts.READ{}", ",".repeat(MAX_SCOPE_LIST_LEN));
        for (text, want) in [
            ("", Empty),
            (" , ,", Empty),
            (
                "ZohoMail.messages.ALL,aaaserver.profile.READ",
                NothingServed,
            ),
            (&long[..], ScopeTooLong),
            (&many[..], TooMany),
            (&huge[..], ListTooLong),
        ] {
            assert_eq!(ScopeRequest::parse(text), Err(want), "{text:?}");
        }
        for bad in [
            "ZohoMail.everything",
            "ZohoMail.accounts",
            "ZohoMail..READ",
            ".accounts.READ",
            "ZohoMail.accounts.",
            "ZohoMail.accounts.WRITE",
            "ZohoMail.accounts.READ.",
            "ZohoMail.acc\u{0}ounts.READ",
            "ZohoMail.accounts.READ\n",
            "ZohoMail.accou\tnts.READ",
            "Zoho/Mail.accounts.READ",
            "ZohoMail.accounts.RÉAD",
            "1Zoho.accounts.READ",
            "openid",
        ] {
            let e = ScopeRequest::parse(&format!("ZohoMail.accounts.READ,{bad}")).unwrap_err();
            assert!(matches!(e, Malformed(_)), "{bad:?}: {e:?}");
            assert!(!e.to_string().chars().any(char::is_control), "{e}");
        }
    }

    proptest::proptest! {
        /// Whatever a client sends, a request either fails or keeps within its bounds, and
        /// what it serves is a set the store can read back.
        #[test]
        fn any_text_is_refused_or_bounded(text in "[A-Za-z.,\\x00-\\x20]{0,300}") {
            if let Ok(r) = ScopeRequest::parse(&text) {
                proptest::prop_assert!(!r.served().is_empty());
                proptest::prop_assert!(r.unserved().len() <= MAX_REQUESTED_SCOPES);
                proptest::prop_assert_eq!(
                    ScopeSet::parse_list(&r.served().to_string()).unwrap(),
                    r.served().clone()
                );
            }
        }
    }
}
