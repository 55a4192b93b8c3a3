//! The domain of mailplane: the types a request is parsed into and the rules of every
//! account update `mode`.
//!
//! Nothing here performs I/O. A rule is a pure function of an [`AccountAggregate`] (the
//! account with everything its rules look at, loaded by the store) and an
//! [`AccountCommand`]; it answers with a [`Change`] the store persists, or a [`RuleError`].

mod email;
mod error;
mod ids;
pub mod mail_login;
pub mod mail_policy;
// `wire_enum!` is defined there and used by `modes` too.
#[macro_use]
mod model;
mod modes;
mod relay_host;
mod scope;
mod secret;
pub mod send_as;
mod users;

pub use email::{parse_domain, EmailAddress, InvalidEmail};
pub use error::{RuleError, RuleErrorKind};
pub use ids::{AccountId, AliasId, IdError, SendMailId, Zoid, Zuid};
pub use mail_login::MailLogin;
pub use mail_policy::{MailAccount, Verdict};
pub use model::{
    AccountAddress, AccountAggregate, AccountKind, AccountState, Identity, IdentityMode,
    MailForward, PendingKey, Relay, RelayCheck, RelayState, Role, SmtpConnection, UserAccount,
    Verification,
};
pub use modes::{
    apply, forward_status, AccountCommand, AggregateParts, Answer, Applies, Change, ForwardDisable,
    ForwardKey, IdentityKey, IdentitySelector, Mode, ModeSpec, NewIdentity, NewRelay, Offered, Op,
    PasswordReset, PathId, PersonalInfo, FORWARD_KEY_TTL_MS, FORWARD_RESEND_WAIT_MS,
    IDENTITY_KEY_TTL_MS, IDENTITY_RESEND_WAIT_MS, MAX_ADDRESSES_PER_ACCOUNT,
    MAX_FORWARDS_PER_ACCOUNT, MAX_IDENTITIES_PER_ACCOUNT,
};
pub use relay_host::{is_internal_ip, literal_ip};
pub use scope::{
    Access, RequestedScope, Resource, Scope, ScopeError, ScopeRequest, ScopeSet,
    MAX_REQUESTED_SCOPES, MAX_SCOPE_LEN, MAX_SCOPE_LIST_LEN,
};
pub use secret::{PasswordHash, Secret};
pub use send_as::{AddressFacts, Claim, IdentityState, InertReason, Owner};
pub use users::{
    assignable_role, check_new_user, check_removal, check_role_change, expiry_ms, is_expired,
    role_audit_view, user_audit_view, ProfileField, UserProfile, UserRuleError,
    MAX_USER_EXPIRY_DAYS,
};
