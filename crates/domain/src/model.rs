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

    /// Whether another account already has a claim on the address that counts: a new
    /// claim by this account would leave the address contested.
    pub fn contested_by_others(&self, address: &EmailAddress) -> bool {
        self.facts(address)
            .is_some_and(|f| f.state_for(self.account.id, self.zoid) == IdentityState::Contested)
    }
}
