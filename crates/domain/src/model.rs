//! The state the rules read: an account with its addresses and identities, and the other
//! accounts of its user.

use crate::send_as::{AddressFacts, IdentityState};
use crate::{AccountId, EmailAddress, SendMailId, Zoid, Zuid};

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The spelling used on the wire and in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
            /// The accepted spellings, for error messages.
            pub fn choices() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

wire_enum!(
    /// A user's role in the organization.
    Role { SuperAdmin = "super_admin", Admin = "admin", Member = "member" }
);

impl Role {
    pub fn is_admin(self) -> bool {
        matches!(self, Role::SuperAdmin | Role::Admin)
    }
}

wire_enum!(
    /// The hosted account, or a mailbox elsewhere that the user reads here.
    AccountKind { Hosted = "ZOHO_ACCOUNT", Pop = "POP_ACCOUNT", Imap = "IMAP_ACCOUNT" }
);

wire_enum!(
    /// How a send-mail identity relates to the account (`sendMailDetails[].mode`).
    IdentityMode {
        Mailbox = "mailbox",
        Alias = "alias",
        Group = "group",
        ExtMailbox = "extmailbox",
        ExtFrom = "extfrom",
        BackupAcc = "backupacc",
    }
);

impl IdentityMode {
    /// Whether an identity of this mode names an address outside the account (a claim,
    /// settled by the rules of [`crate::send_as`]) rather than one of its own.
    pub fn is_claim(self) -> bool {
        !matches!(self, IdentityMode::Mailbox | IdentityMode::Alias)
    }
}

wire_enum!(
    /// The kind of connection to an external SMTP relay.
    SmtpConnection { Plain = "plain", Ssl = "ssl", Tls = "tls" }
);

/// The flags and identity of one account, as the rules see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub id: AccountId,
    pub zuid: Zuid,
    pub kind: AccountKind,
    pub enabled: bool,
    pub outgoing_blocked: bool,
    pub incoming_blocked: bool,
    /// Whether the mailbox may be read over IMAP, and over POP3.
    pub imap_enabled: bool,
    pub pop_enabled: bool,
    /// `deleteZohoMailCopy`: while a forward is in effect, the mailbox keeps no copy.
    pub forward_delete_copy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAddress {
    pub address: EmailAddress,
    pub is_primary: bool,
}

/// The relay settings of an `extfrom` identity, without its password: rules never need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub server_name: String,
    pub server_port: u16,
    pub user_name: String,
    pub smtp_connection: SmtpConnection,
}

/// A stored send-mail identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: SendMailId,
    pub from_address: EmailAddress,
    pub display_name: String,
    pub mode: IdentityMode,
    pub relay: Option<Relay>,
    /// Whether the mail server honours it now (see [`crate::send_as`]).
    pub state: IdentityState,
    /// What has been checked of it: its owner (an address outside the account) and its
    /// relay (`extfrom`).
    pub verification: Verification,
}

impl Identity {
    /// Whether the identity names an address outside the account: it counts only once
    /// whoever reads that address confirmed it (see [`crate::send_as`]).
    pub fn is_claim(&self) -> bool {
        self.mode.is_claim()
    }

    /// `validated` of the API: nothing left to check. An identity of the account's own
    /// address is; a claim once its owner is confirmed; an `extfrom` one once its relay
    /// passed its check too.
    pub fn is_validated(&self) -> bool {
        let owned = !self.is_claim() || self.verification.owner_confirmed;
        let relay = self.mode != IdentityMode::ExtFrom
            || self.verification.relay.state == RelayState::Validated;
        owned && relay
    }

    /// Whether the mail server lets the account send as the address now.
    pub fn may_send(&self) -> bool {
        self.state.is_active() && self.is_validated()
    }

    /// Why the mail server refuses the address although the account has an identity for
    /// it that verification would make usable: the sentence of the policy service's 553.
    /// `None` when it may send, or when the identity can never count (another account's
    /// address or domain: refused as any stranger's address).
    pub fn unverified_reason(&self) -> Option<String> {
        if self.may_send() || matches!(self.state, IdentityState::Inert(_)) {
            return None;
        }
        if self.mode == IdentityMode::ExtFrom {
            let relay = &self.verification.relay;
            return Some(match (&relay.state, &relay.error) {
                (RelayState::Failed, Some(error)) if self.verification.owner_confirmed => {
                    format!("the external server for this address failed verification: {error}")
                }
                _ => "the external server for this address is not verified yet".to_string(),
            });
        }
        Some("ownership of this address is not confirmed yet".to_string())
    }
}

wire_enum!(
    /// The outcome of the last check of an `extfrom` identity's relay.
    RelayState { Pending = "pending", Validated = "validated", Failed = "failed" }
);

/// The last check of a relay: its outcome, the error of a failure (a sentence, never a
/// password) and when it was known (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCheck {
    pub state: RelayState,
    pub error: Option<String>,
    pub checked_ms: Option<i64>,
}

impl RelayCheck {
    pub const PENDING: RelayCheck = RelayCheck {
        state: RelayState::Pending,
        error: None,
        checked_ms: None,
    };
}

/// What has been verified of an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Whoever reads the address gave back the key mailed to it, or an admin of the
    /// organization whose domain holds it vouched for it.
    pub owner_confirmed: bool,
    /// The key mailed to the address and not yet given back.
    pub pending_key: Option<PendingKey>,
    pub relay: RelayCheck,
}

impl Verification {
    /// An identity of one of the account's own addresses: nothing to verify.
    pub const OWN: Verification = Verification {
        owner_confirmed: true,
        pending_key: None,
        relay: RelayCheck::PENDING,
    };
}

/// A forward of the account's incoming mail to another address (`addMailForward`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailForward {
    pub to: EmailAddress,
    /// Whether the target gave back the key mailed to it (`verifyMailForward`).
    pub confirmed: bool,
    pub enabled: bool,
    /// What `disableMailForward` said, while disabled.
    pub disabled_reason: Option<String>,
    /// The digest of the key awaiting confirmation, when it expires and when it was
    /// mailed (epoch ms).
    pub pending_key: Option<PendingKey>,
}

impl MailForward {
    /// Whether mail is forwarded to the target now.
    pub fn in_effect(&self) -> bool {
        self.confirmed && self.enabled
    }
}

/// A confirmation key that was mailed and not yet given back: only its digest is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingKey {
    pub digest: String,
    pub expires_ms: i64,
    pub sent_ms: i64,
}

/// One account of the user who owns the account being changed (including that account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccount {
    pub id: AccountId,
    pub kind: AccountKind,
    pub sequence: u32,
    /// For an external account, the address of the mailbox elsewhere.
    pub external_address: Option<EmailAddress>,
}

/// Everything the rule of any mode reads, loaded by the store in the command's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAggregate {
    pub account: AccountState,
    /// The organization of the account's user.
    pub zoid: Zoid,
    /// The names of the account's user (the display name is the default of its mailbox
    /// identity).
    pub user_first_name: String,
    pub user_last_name: String,
    pub user_display_name: String,
    /// Whether the user's password was set as one-time (`resetPassword`).
    pub user_one_time_password: bool,
    /// The organization's domain names, lower-case.
    pub org_domains: Vec<String>,
    /// The account's own addresses (hosted accounts only): one primary, the rest aliases.
    pub addresses: Vec<AccountAddress>,
    pub identities: Vec<Identity>,
    /// The account's forwards, by target address.
    pub forwards: Vec<MailForward>,
    /// The user's accounts, by sequence.
    pub user_accounts: Vec<UserAccount>,
    /// Who holds and claims each address the command names. The store fills this from
    /// [`crate::AccountCommand::addresses_to_check`].
    pub claims: Vec<AddressFacts>,
}

impl AccountAggregate {
    pub fn primary_address(&self) -> Option<&EmailAddress> {
        self.addresses
            .iter()
            .find(|a| a.is_primary)
            .map(|a| &a.address)
    }

    pub fn has_address(&self, address: &EmailAddress) -> bool {
        self.addresses.iter().any(|a| &a.address == address)
    }

    pub fn forward(&self, to: &EmailAddress) -> Option<&MailForward> {
        self.forwards.iter().find(|f| &f.to == to)
    }

    /// What the store found of an address the command names.
    pub fn facts(&self, address: &EmailAddress) -> Option<&AddressFacts> {
        self.claims.iter().find(|f| &f.address == address)
    }

    /// Whether the address is another account's own address.
    pub fn is_taken_elsewhere(&self, address: &EmailAddress) -> bool {
        self.facts(address)
            .and_then(|f| f.holder)
            .is_some_and(|h| h != self.account.id)
    }

    /// Whether the address lies in a domain another organization on this server hosts.
    pub fn in_foreign_domain(&self, address: &EmailAddress) -> bool {
        self.facts(address)
            .is_some_and(|f| f.in_foreign_domain(self.zoid))
    }

    /// Whether another account has confirmed its ownership of the address: this account
    /// cannot confirm it too.
    pub fn verified_elsewhere(&self, address: &EmailAddress) -> bool {
        self.facts(address)
            .is_some_and(|f| f.verified_by_other(self.account.id))
    }
}
