//! The account update modes: one module per mode, one entry point, [`apply`].

mod account_order;
mod email_alias;
mod email_update;
mod mail_forward;
mod personal_info;
mod reset_password;
mod send_mail;
mod status;

use serde_json::Value;

use crate::{
    AccountAggregate, AccountId, AccountKind, EmailAddress, IdentityMode, PasswordHash, PendingKey,
    Relay, RuleError, Secret, SendMailId, SmtpConnection,
};

pub use mail_forward::{
    forward_status, ForwardDisable, ForwardKey, FORWARD_KEY_TTL_MS, FORWARD_RESEND_WAIT_MS,
    MAX_FORWARDS_PER_ACCOUNT,
};
pub use personal_info::PersonalInfo;
pub use send_mail::{
    IdentityKey, IDENTITY_KEY_TTL_MS, IDENTITY_RESEND_WAIT_MS, MAX_IDENTITIES_PER_ACCOUNT,
};

/// At most this many addresses (the primary and its aliases) per account: the modes that
/// add an address (`emailupdate` with a new one) stop there.
pub const MAX_ADDRESSES_PER_ACCOUNT: usize = 50;

/// Which URL form offers a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// `/api/accounts/{accountId}` and `/api/organization/{zoid}/accounts/{accountId}`.
    BothUrls,
    /// The organization's URL only: a user's own token cannot use the mode.
    AdminUrlOnly,
}

/// What the id in the path of `PUT …/accounts/{id}` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathId {
    /// The account to change (`accountId`).
    AccountId,
    /// A user (`zuid`), as Zoho's pages of these modes have it: the mode changes that
    /// user's hosted account (the first by sequence). Offered on the admin URL only.
    Zuid,
}

/// What the success answer of a mode carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The status only; nothing is read back after the change.
    StatusOnly,
    /// The account's identities after the change, in `data`.
    Identities,
    /// Each address the change added with its new id, in `data`:
    /// `[{"a@zylker.com": "<id>"}, …]`.
    AddedAddresses,
    /// The account's forwards after the change, in `data`.
    Forwards,
}

/// Which accounts a mode may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    HostedOnly,
    /// External (POP/IMAP) accounts too.
    AnyAccount,
}

/// What the API, the store and the OpenAPI document need to know of a mode, besides its
/// rule and the types of its body. Every mode has one, in the `modes!` table below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeSpec {
    /// Body keys that must be present (and not `null`), besides `mode`.
    pub required: &'static [&'static str],
    /// Body keys that may be present, besides `zuid` and `mode`.
    pub optional: &'static [&'static str],
    pub offered: Offered,
    /// What the id in the path names.
    pub path: PathId,
    /// The parts of the aggregate beyond the account row that the mode's rule reads.
    pub reads: AggregateParts,
    pub answer: Answer,
    pub applies: Applies,
}

impl ModeSpec {
    /// Every body key the mode takes besides `zuid` and `mode`: the required ones first.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> {
        self.required.iter().chain(self.optional).copied()
    }
}

/// Declares `Mode` (through `wire_enum!`, so `Mode::ALL` and the parser come from the same
/// list) and `Mode::spec`, from one entry per mode: the table below is the one place where
/// a mode is named and its keys are listed.
macro_rules! modes {
    ($(#[$doc:meta])* $name:ident {
        $($variant:ident = $wire:literal {
            required: [$($required:literal),* $(,)?],
            optional: [$($optional:literal),* $(,)?],
            offered: $offered:expr,
            path: $path:expr,
            reads: $reads:expr,
            answer: $answer:expr,
            applies: $applies:expr $(,)?
        }),+ $(,)?
    }) => {
        wire_enum!($(#[$doc])* $name { $($variant = $wire),+ });

        impl $name {
            pub fn spec(self) -> ModeSpec {
                match self {
                    $($name::$variant => ModeSpec {
                        required: &[$($required),*],
                        optional: &[$($optional),*],
                        offered: $offered,
                        path: $path,
                        reads: $reads,
                        answer: $answer,
                        applies: $applies,
                    },)+
                }
            }
        }
    };
}

modes!(
    /// The `mode` values of `PUT …/accounts/{accountId}`, as Zoho spells them (matched
    /// exactly).
    Mode {
        AddSendMailDetails = "addsendmaildetails" {
            required: ["sendMailDetails"],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::ALL,
            answer: Answer::Identities,
            applies: Applies::HostedOnly,
        },
        // One of the two keys, not both: the parser and the OpenAPI body say so.
        DeleteSendMailDetails = "deletesendmaildetails" {
            required: [],
            optional: ["sendMailId", "fromAddress"],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::ALL,
            answer: Answer::Identities,
            applies: Applies::HostedOnly,
        },
        // mailplane's own: confirms the owner of an identity's address (with the key
        // mailed to it, or on the admin URL for the organization's own domains without
        // one) and checks an `extfrom` identity's relay again.
        VerifySendMailDetails = "verifysendmaildetails" {
            required: ["sendMailId"],
            optional: ["confirmKey"],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts {
                org_domains: true,
                addresses: true,
                identities: true,
                ..AggregateParts::NONE
            },
            answer: Answer::Identities,
            applies: Applies::HostedOnly,
        },
        EmailUpdate = "emailupdate" {
            required: ["emailAddress"],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::ALL,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        EnableMailAccount = "enableMailAccount" {
            required: [],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::NONE,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        DisableMailAccount = "disableMailAccount" {
            required: [],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::NONE,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        MailAccountOrderUpdate = "mailaccountorderupdate" {
            required: ["accList"],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts {
                user_accounts: true,
                ..AggregateParts::NONE
            },
            answer: Answer::StatusOnly,
            applies: Applies::AnyAccount,
        },
        UpdateOutgoingStatus = "updateOutgoingStatus" {
            required: ["outgoingBlocked"],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::NONE,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        UpdateIncomingStatus = "updateIncomingStatus" {
            required: ["incomingBlocked"],
            optional: [],
            offered: Offered::AdminUrlOnly,
            path: PathId::AccountId,
            reads: AggregateParts::NONE,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        UpdateImapStatus = "updateIMAPStatus" {
            required: ["imapAccessEnabled"],
            optional: [],
            offered: Offered::AdminUrlOnly,
            path: PathId::AccountId,
            reads: AggregateParts::NONE,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        UpdatePopStatus = "updatePOPStatus" {
            required: ["popAccessEnabled"],
            optional: [],
            offered: Offered::AdminUrlOnly,
            path: PathId::AccountId,
            reads: AggregateParts::NONE,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        // Zoho's pages give these on the admin URL with the user's zuid in the path.
        AddEmailAlias = "addEmailAlias" {
            required: ["emailAlias"],
            optional: [],
            offered: Offered::AdminUrlOnly,
            path: PathId::Zuid,
            reads: AggregateParts {
                org_domains: true,
                addresses: true,
                ..AggregateParts::NONE
            },
            answer: Answer::AddedAddresses,
            applies: Applies::HostedOnly,
        },
        DeleteEmailAlias = "deleteEmailAlias" {
            required: ["emailAlias"],
            optional: [],
            offered: Offered::AdminUrlOnly,
            path: PathId::Zuid,
            // The identities: those of a deleted alias go with it.
            reads: AggregateParts {
                addresses: true,
                identities: true,
                ..AggregateParts::NONE
            },
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        // `resetAuthtoken` is the same key as `resetAuthToken`, as some of Zoho's samples
        // spell it; the parser refuses both at once.
        ResetPassword = "resetPassword" {
            required: ["password"],
            optional: ["resetAuthToken", "resetAuthtoken", "oneTimePassword"],
            offered: Offered::AdminUrlOnly,
            path: PathId::Zuid,
            reads: AggregateParts::NONE,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        // Zoho's forwarding pages: every one takes `mailForward`, an array of objects
        // naming `mailForwardTo` (or, as some clients send it, one object or a string).
        AddMailForward = "addMailForward" {
            required: ["mailForward"],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::FORWARDS,
            answer: Answer::Forwards,
            applies: Applies::HostedOnly,
        },
        EnableMailForward = "enableMailForward" {
            required: ["mailForward"],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::FORWARDS,
            answer: Answer::Forwards,
            applies: Applies::HostedOnly,
        },
        // `reason` in each element, or once beside `mailForward`.
        DisableMailForward = "disableMailForward" {
            required: ["mailForward"],
            optional: ["reason"],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::FORWARDS,
            answer: Answer::Forwards,
            applies: Applies::HostedOnly,
        },
        DeleteMailForward = "deleteMailForward" {
            required: ["mailForward"],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::FORWARDS,
            answer: Answer::Forwards,
            applies: Applies::HostedOnly,
        },
        // `confirmKey` in each element, or once beside `mailForward`.
        VerifyMailForward = "verifyMailForward" {
            required: ["mailForward"],
            optional: ["confirmKey"],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::FORWARDS,
            answer: Answer::Forwards,
            applies: Applies::HostedOnly,
        },
        ResendMailForwardVerficationMail = "resendMailForwardVerficationMail" {
            required: ["mailForward"],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::FORWARDS,
            answer: Answer::Forwards,
            applies: Applies::HostedOnly,
        },
        DeleteZohoMailCopy = "deleteZohoMailCopy" {
            required: [],
            optional: ["deleteCopy"],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::NONE,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        // The user's names; at least one of the three (the parser and the OpenAPI body
        // say so).
        UpdatePersonalInfo = "updatePersonalInfo" {
            required: [],
            optional: ["firstName", "lastName", "displayName"],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts::NONE,
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
        DisplayNameEmailUpdate = "displaynameemailupdate" {
            required: ["displayName", "emailAddress"],
            optional: [],
            offered: Offered::BothUrls,
            path: PathId::AccountId,
            reads: AggregateParts {
                addresses: true,
                identities: true,
                ..AggregateParts::NONE
            },
            answer: Answer::StatusOnly,
            applies: Applies::HostedOnly,
        },
    }
);

impl Mode {
    /// Whether the success answer carries the account's identities after the change; for
    /// the other modes nothing is read back.
    pub fn answers_with_identities(self) -> bool {
        self.spec().answer == Answer::Identities
    }
}

/// The relay fields of one `sendMailDetails` element, as given (each optional: which ones
/// are required depends on the identity's mode, a rule checked in [`apply`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRelay {
    pub server_name: Option<String>,
    pub server_port: Option<u16>,
    pub user_name: Option<String>,
    pub password: Option<Secret>,
    pub smtp_connection: Option<SmtpConnection>,
}

impl NewRelay {
    pub fn is_empty(&self) -> bool {
        *self == NewRelay::default()
    }
}

/// One element of `sendMailDetails`, complete for its mode. Its only constructor,
/// [`NewIdentity::new`], checks the fields that must (or must not) be present, so that a
/// request missing one is refused while it is parsed, before any account is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdentity {
    /// `None` only for `mailbox`, whose address defaults to the account's primary one.
    pub(crate) from_address: Option<EmailAddress>,
    pub(crate) display_name: String,
    pub(crate) mode: IdentityMode,
    /// Present exactly for `extfrom`.
    pub(crate) relay: Option<(Relay, Secret)>,
    /// For an address outside the account: the key the edge made to mail there.
    pub(crate) key: Option<IdentityKey>,
}

/// Which identity `deletesendmaildetails` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySelector {
    Id(SendMailId),
    Address(EmailAddress),
}

/// `resetPassword`, once its password is hashed: the command carries the hash, never the
/// password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    pub hash: PasswordHash,
    /// Whether every token of the user is revoked with it (`resetAuthToken`).
    pub revoke_tokens: bool,
    /// `oneTimePassword`: stored and shown.
    pub one_time: bool,
}

/// A request body, parsed: one variant per mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    AddSendMailDetails(Vec<NewIdentity>),
    DeleteSendMailDetails(IdentitySelector),
    /// `verifysendmaildetails`: the digest of the key given back, if one was; `by_admin`
    /// on the admin URL (an admin may vouch for an address of the organization's domains).
    VerifySendMailDetails {
        id: SendMailId,
        key: Option<IdentityKey>,
        by_admin: bool,
    },
    EmailUpdate(EmailAddress),
    EnableMailAccount,
    DisableMailAccount,
    MailAccountOrderUpdate(Vec<AccountId>),
    UpdateOutgoingStatus {
        blocked: bool,
    },
    UpdateIncomingStatus {
        blocked: bool,
    },
    UpdateImapStatus {
        enabled: bool,
    },
    UpdatePopStatus {
        enabled: bool,
    },
    AddEmailAlias(Vec<EmailAddress>),
    DeleteEmailAlias(Vec<EmailAddress>),
    ResetPassword(PasswordReset),
    /// Forwards to add, each with the digest of the key that will be mailed to it.
    AddMailForward {
        keys: Vec<ForwardKey>,
        now_ms: i64,
    },
    EnableMailForward(Vec<EmailAddress>),
    DisableMailForward(Vec<ForwardDisable>),
    DeleteMailForward(Vec<EmailAddress>),
    /// The digests of the keys given back.
    VerifyMailForward {
        keys: Vec<ForwardKey>,
        now_ms: i64,
    },
    /// A new key for each target, to be mailed.
    ResendMailForward {
        keys: Vec<ForwardKey>,
        now_ms: i64,
    },
    DeleteZohoMailCopy(bool),
    UpdatePersonalInfo(PersonalInfo),
    DisplayNameEmailUpdate {
        display_name: String,
        address: EmailAddress,
    },
}

impl AccountCommand {
    pub fn mode(&self) -> Mode {
        match self {
            AccountCommand::AddSendMailDetails(_) => Mode::AddSendMailDetails,
            AccountCommand::DeleteSendMailDetails(_) => Mode::DeleteSendMailDetails,
            AccountCommand::VerifySendMailDetails { .. } => Mode::VerifySendMailDetails,
            AccountCommand::EmailUpdate(_) => Mode::EmailUpdate,
            AccountCommand::EnableMailAccount => Mode::EnableMailAccount,
            AccountCommand::DisableMailAccount => Mode::DisableMailAccount,
            AccountCommand::MailAccountOrderUpdate(_) => Mode::MailAccountOrderUpdate,
            AccountCommand::UpdateOutgoingStatus { .. } => Mode::UpdateOutgoingStatus,
            AccountCommand::UpdateIncomingStatus { .. } => Mode::UpdateIncomingStatus,
            AccountCommand::UpdateImapStatus { .. } => Mode::UpdateImapStatus,
            AccountCommand::UpdatePopStatus { .. } => Mode::UpdatePopStatus,
            AccountCommand::AddEmailAlias(_) => Mode::AddEmailAlias,
            AccountCommand::DeleteEmailAlias(_) => Mode::DeleteEmailAlias,
            AccountCommand::ResetPassword(_) => Mode::ResetPassword,
            AccountCommand::AddMailForward { .. } => Mode::AddMailForward,
            AccountCommand::EnableMailForward(_) => Mode::EnableMailForward,
            AccountCommand::DisableMailForward(_) => Mode::DisableMailForward,
            AccountCommand::DeleteMailForward(_) => Mode::DeleteMailForward,
            AccountCommand::VerifyMailForward { .. } => Mode::VerifyMailForward,
            AccountCommand::ResendMailForward { .. } => Mode::ResendMailForwardVerficationMail,
            AccountCommand::DeleteZohoMailCopy(_) => Mode::DeleteZohoMailCopy,
            AccountCommand::UpdatePersonalInfo(_) => Mode::UpdatePersonalInfo,
            AccountCommand::DisplayNameEmailUpdate { .. } => Mode::DisplayNameEmailUpdate,
        }
    }

    /// The parts of the aggregate beyond the account row that this command's rule reads.
    /// The store loads only these: a flag change needs none of the account's lists, and
    /// loading them was most of such a change's database work.
    pub fn reads(&self) -> AggregateParts {
        self.mode().spec().reads
    }

    /// The addresses whose ownership by *other* accounts the rule needs to know; the store
    /// looks up who holds and claims them into [`AccountAggregate::claims`].
    pub fn addresses_to_check(&self) -> Vec<EmailAddress> {
        match self {
            AccountCommand::EmailUpdate(a) => vec![a.clone()],
            AccountCommand::AddEmailAlias(list) => list.clone(),
            AccountCommand::AddSendMailDetails(ids) => {
                ids.iter().filter_map(|i| i.from_address.clone()).collect()
            }
            // Listed rather than left to a fallback, so that a new mode has to say.
            // The identity's own state carries who else confirmed its address.
            AccountCommand::DeleteSendMailDetails(_)
            | AccountCommand::VerifySendMailDetails { .. }
            | AccountCommand::EnableMailAccount
            | AccountCommand::DisableMailAccount
            | AccountCommand::MailAccountOrderUpdate(_)
            | AccountCommand::UpdateOutgoingStatus { .. }
            | AccountCommand::UpdateIncomingStatus { .. }
            | AccountCommand::UpdateImapStatus { .. }
            | AccountCommand::UpdatePopStatus { .. }
            | AccountCommand::DeleteEmailAlias(_)
            | AccountCommand::ResetPassword(_)
            | AccountCommand::AddMailForward { .. }
            | AccountCommand::EnableMailForward(_)
            | AccountCommand::DisableMailForward(_)
            | AccountCommand::DeleteMailForward(_)
            | AccountCommand::VerifyMailForward { .. }
            | AccountCommand::ResendMailForward { .. }
            | AccountCommand::DeleteZohoMailCopy(_) => Vec::new(),
            | AccountCommand::UpdatePersonalInfo(_)
            // An address of the account itself: nobody else's holding or claim matters.
            | AccountCommand::DisplayNameEmailUpdate { .. } => Vec::new(),
        }
    }
}

/// Which lists of an [`AccountAggregate`] a rule reads (see [`AccountCommand::reads`]);
/// the account row and its user's display name are always loaded, and
/// `claims` follows [`AccountCommand::addresses_to_check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateParts {
    pub org_domains: bool,
    pub addresses: bool,
    pub identities: bool,
    pub user_accounts: bool,
    pub forwards: bool,
}

impl AggregateParts {
    pub const NONE: AggregateParts = AggregateParts {
        org_domains: false,
        addresses: false,
        identities: false,
        user_accounts: false,
        forwards: false,
    };
    pub const ALL: AggregateParts = AggregateParts {
        org_domains: true,
        addresses: true,
        identities: true,
        user_accounts: true,
        forwards: true,
    };
    /// The account's forwards, and its addresses (the answer and the confirmation mail
    /// name the account).
    pub const FORWARDS: AggregateParts = AggregateParts {
        addresses: true,
        forwards: true,
        ..AggregateParts::NONE
    };
}

/// One write the store performs for an accepted command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    SetEnabled(bool),
    SetOutgoingBlocked(bool),
    SetIncomingBlocked(bool),
    SetImapEnabled(bool),
    SetPopEnabled(bool),
    /// Makes `new` the primary address; `old` stays on the account as an alias. When
    /// `new` is not yet an address of the account it is added.
    SetPrimaryAddress {
        new: EmailAddress,
        old: EmailAddress,
        add_new: bool,
    },
    /// Adds an identity, replacing the one with the same `fromAddress` if `replaces`.
    UpsertIdentity {
        replaces: Option<SendMailId>,
        from_address: EmailAddress,
        display_name: String,
        mode: IdentityMode,
        relay: Option<(Relay, Secret)>,
        /// A new key to mail to the address (a claim whose owner is not confirmed yet).
        /// Whatever the key, the relay of an `extfrom` identity is checked again.
        key: Option<PendingKey>,
    },
    DeleteIdentity(SendMailId),
    /// The owner of the identity's address is confirmed; its key is spent.
    ConfirmIdentityOwner(SendMailId),
    /// The full new order of the user's accounts: sequence 1, 2, … in this order.
    SetAccountOrder(Vec<AccountId>),
    /// Adds an address to the account, not as its primary one.
    AddAlias(EmailAddress),
    /// Removes an address of the account that is not its primary one.
    DeleteAlias(EmailAddress),
    /// Sets the user's password (the one of every account of the user).
    SetPassword {
        hash: PasswordHash,
        one_time: bool,
    },
    /// Revokes every access token, refresh token and pending authorization code of the
    /// user.
    RevokeUserTokens,
    /// Ends every console session of the user (tokens of kind `console`), keeping the API's.
    EndConsoleSessions,
    /// A new, unconfirmed forward awaiting the key mailed to it.
    AddForward {
        to: EmailAddress,
        key: PendingKey,
    },
    /// A new key for an unconfirmed forward, replacing the previous one.
    SetForwardKey {
        to: EmailAddress,
        key: PendingKey,
    },
    /// The forward is confirmed; its key is spent.
    ConfirmForward(EmailAddress),
    SetForwardEnabled {
        to: EmailAddress,
        enabled: bool,
        reason: Option<String>,
    },
    DeleteForward(EmailAddress),
    SetForwardDeleteCopy(bool),
    /// Sets the user's names that are given.
    SetPersonalInfo(PersonalInfo),
}

/// What an accepted command changes, with the audit view of it (never a secret).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub ops: Vec<Op>,
    pub before: Value,
    pub after: Value,
}

/// Applies the rule of the command's mode to the aggregate.
pub fn apply(agg: &AccountAggregate, cmd: AccountCommand) -> Result<Change, RuleError> {
    let mode = cmd.mode();
    if agg.account.kind != AccountKind::Hosted && mode.spec().applies == Applies::HostedOnly {
        return Err(RuleError::invalid(
            "accountId",
            format!(
                "accountId {} is an external account ({}); {} applies to hosted accounts only",
                agg.account.id,
                agg.account.kind.as_str(),
                mode.as_str()
            ),
        ));
    }
    match cmd {
        AccountCommand::AddSendMailDetails(new) => send_mail::add(agg, new),
        AccountCommand::DeleteSendMailDetails(sel) => send_mail::delete(agg, sel),
        AccountCommand::VerifySendMailDetails { id, key, by_admin } => {
            send_mail::verify(agg, id, key, by_admin)
        }
        AccountCommand::EmailUpdate(addr) => email_update::apply(agg, addr),
        AccountCommand::EnableMailAccount => Ok(status::enabled(agg, true)),
        AccountCommand::DisableMailAccount => Ok(status::enabled(agg, false)),
        AccountCommand::UpdateOutgoingStatus { blocked } => Ok(status::outgoing(agg, blocked)),
        AccountCommand::UpdateIncomingStatus { blocked } => Ok(status::incoming(agg, blocked)),
        AccountCommand::UpdateImapStatus { enabled } => Ok(status::imap(agg, enabled)),
        AccountCommand::UpdatePopStatus { enabled } => Ok(status::pop(agg, enabled)),
        AccountCommand::MailAccountOrderUpdate(list) => account_order::apply(agg, list),
        AccountCommand::AddEmailAlias(list) => email_alias::add(agg, list),
        AccountCommand::DeleteEmailAlias(list) => email_alias::delete(agg, list),
        AccountCommand::ResetPassword(reset) => Ok(reset_password::apply(agg, reset)),
        AccountCommand::AddMailForward { keys, now_ms } => mail_forward::add(agg, keys, now_ms),
        AccountCommand::EnableMailForward(list) => mail_forward::set_enabled(
            agg,
            list.into_iter()
                .map(|to| ForwardDisable { to, reason: None })
                .collect(),
            true,
        ),
        AccountCommand::DisableMailForward(list) => mail_forward::set_enabled(agg, list, false),
        AccountCommand::DeleteMailForward(list) => mail_forward::delete(agg, list),
        AccountCommand::VerifyMailForward { keys, now_ms } => {
            mail_forward::verify(agg, keys, now_ms)
        }
        AccountCommand::ResendMailForward { keys, now_ms } => {
            mail_forward::resend(agg, keys, now_ms)
        }
        AccountCommand::DeleteZohoMailCopy(delete) => Ok(mail_forward::delete_copy(agg, delete)),
        AccountCommand::UpdatePersonalInfo(info) => Ok(personal_info::update(agg, info)),
        AccountCommand::DisplayNameEmailUpdate {
            display_name,
            address,
        } => personal_info::display_name_email(agg, display_name, address),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::*;

    pub fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    /// Rebecca's aggregate where `address` is another account's (of her organization).
    pub fn held_elsewhere(mut agg: AccountAggregate, address: &str) -> AccountAggregate {
        agg.claims.push(AddressFacts {
            address: addr(address),
            holder: Some(AccountId::new(1).unwrap()),
            domain_org: Some(agg.zoid),
            claims: vec![],
        });
        agg
    }

    /// Rebecca of the demo organization: a hosted account with one alias, a mailbox
    /// identity and two external accounts.
    pub fn rebecca() -> AccountAggregate {
        let id = AccountId::new(2560636000000008002).unwrap();
        AccountAggregate {
            account: AccountState {
                id,
                zuid: Zuid::new(11111111).unwrap(),
                kind: AccountKind::Hosted,
                enabled: true,
                outgoing_blocked: false,
                incoming_blocked: false,
                imap_enabled: true,
                pop_enabled: true,
                forward_delete_copy: false,
            },
            zoid: Zoid::new(12345678).unwrap(),
            user_first_name: "Rebecca".into(),
            user_last_name: String::new(),
            user_display_name: "Rebecca".into(),
            user_one_time_password: false,
            org_domains: vec!["zylker.com".into()],
            addresses: vec![
                AccountAddress {
                    address: addr("becky@zylker.com"),
                    is_primary: true,
                },
                AccountAddress {
                    address: addr("rebecca.alias@zylker.com"),
                    is_primary: false,
                },
            ],
            identities: vec![Identity {
                id: SendMailId::new(1).unwrap(),
                from_address: addr("becky@zylker.com"),
                display_name: "Rebecca".into(),
                mode: IdentityMode::Mailbox,
                relay: None,
                state: IdentityState::Active,
                verification: Verification::OWN,
            }],
            forwards: vec![],
            user_accounts: vec![
                UserAccount {
                    id,
                    kind: AccountKind::Hosted,
                    sequence: 1,
                    external_address: None,
                },
                UserAccount {
                    id: AccountId::new(5111110000000008001).unwrap(),
                    kind: AccountKind::Pop,
                    sequence: 2,
                    external_address: Some(addr("rebecca@pop.example.com")),
                },
                UserAccount {
                    id: AccountId::new(5111110000000009001).unwrap(),
                    kind: AccountKind::Imap,
                    sequence: 3,
                    external_address: Some(addr("rebecca@imap.example.com")),
                },
            ],
            claims: vec![],
        }
    }
}

#[cfg(test)]
mod reads_tests {
    use super::fixtures::addr;
    use crate::*;

    /// The aggregate as the store loads it for `cmd`: the parts the rule does not read
    /// left empty.
    fn as_loaded(full: &AccountAggregate, cmd: &AccountCommand) -> AccountAggregate {
        let parts = cmd.reads();
        let mut agg = full.clone();
        if !parts.org_domains {
            agg.org_domains.clear();
        }
        if !parts.addresses {
            agg.addresses.clear();
        }
        if !parts.identities {
            agg.identities.clear();
        }
        if !parts.user_accounts {
            agg.user_accounts.clear();
        }
        if !parts.forwards {
            agg.forwards.clear();
        }
        agg
    }

    #[test]
    fn a_rule_decides_the_same_on_the_parts_it_says_it_reads() {
        let full = super::mail_forward::tests::with_forwards();
        let now_ms = super::mail_forward::tests::NOW;
        let key = super::mail_forward::tests::key;
        let ids: Vec<AccountId> = full.user_accounts.iter().map(|a| a.id).collect();
        let stranger = AccountId::new(9_000_000_000_000_000_001).unwrap();
        let commands = vec![
            AccountCommand::EnableMailAccount,
            AccountCommand::DisableMailAccount,
            AccountCommand::UpdateOutgoingStatus { blocked: true },
            AccountCommand::UpdateOutgoingStatus { blocked: false },
            AccountCommand::UpdateIncomingStatus { blocked: true },
            AccountCommand::UpdateImapStatus { enabled: false },
            AccountCommand::UpdatePopStatus { enabled: false },
            AccountCommand::MailAccountOrderUpdate(ids.iter().rev().copied().collect()),
            AccountCommand::MailAccountOrderUpdate(vec![ids[2]]),
            AccountCommand::MailAccountOrderUpdate(vec![stranger]),
            AccountCommand::AddEmailAlias(vec![addr("r1@zylker.com"), addr("r2@zylker.com")]),
            AccountCommand::AddEmailAlias(vec![addr("becky@zylker.com")]),
            AccountCommand::AddEmailAlias(vec![addr("rebecca.alias@zylker.com")]),
            AccountCommand::AddEmailAlias(vec![addr("r1@example.com")]),
            AccountCommand::DeleteEmailAlias(vec![addr("rebecca.alias@zylker.com")]),
            AccountCommand::DeleteEmailAlias(vec![addr("becky@zylker.com")]),
            AccountCommand::DeleteEmailAlias(vec![addr("admin@zylker.com")]),
            AccountCommand::ResetPassword(super::reset_password::tests::reset(true, false)),
            AccountCommand::ResetPassword(super::reset_password::tests::reset(false, true)),
            AccountCommand::AddMailForward {
                keys: vec![key("new@example.com", "d")],
                now_ms,
            },
            AccountCommand::AddMailForward {
                keys: vec![key("paula@example.com", "d")],
                now_ms,
            },
            AccountCommand::AddMailForward {
                keys: vec![key("becky@zylker.com", "d")],
                now_ms,
            },
            AccountCommand::EnableMailForward(vec![addr("archive@example.net")]),
            AccountCommand::EnableMailForward(vec![addr("new@example.com")]),
            AccountCommand::DisableMailForward(vec![ForwardDisable {
                to: addr("archive@example.net"),
                reason: None,
            }]),
            AccountCommand::DeleteMailForward(vec![addr("paula@example.com")]),
            AccountCommand::DeleteMailForward(vec![addr("new@example.com")]),
            AccountCommand::VerifyMailForward {
                keys: vec![key("paula@example.com", "d1")],
                now_ms,
            },
            AccountCommand::VerifyMailForward {
                keys: vec![key("paula@example.com", "bad")],
                now_ms,
            },
            AccountCommand::ResendMailForward {
                keys: vec![key("paula@example.com", "d2")],
                now_ms: now_ms + FORWARD_RESEND_WAIT_MS,
            },
            AccountCommand::ResendMailForward {
                keys: vec![key("archive@example.net", "d2")],
                now_ms,
            },
            AccountCommand::DeleteZohoMailCopy(true),
            AccountCommand::UpdatePersonalInfo(super::personal_info::tests::names(
                Some("Becky"),
                None,
                Some("Becky A."),
            )),
            AccountCommand::DisplayNameEmailUpdate {
                display_name: "Rebecca A.".into(),
                address: addr("becky@zylker.com"),
            },
            AccountCommand::DisplayNameEmailUpdate {
                display_name: "Rebecca A.".into(),
                address: addr("rebecca.alias@zylker.com"),
            },
            AccountCommand::DisplayNameEmailUpdate {
                display_name: "Rebecca A.".into(),
                address: addr("admin@zylker.com"),
            },
            AccountCommand::VerifySendMailDetails {
                id: SendMailId::new(1).unwrap(),
                key: None,
                by_admin: true,
            },
            AccountCommand::VerifySendMailDetails {
                id: SendMailId::new(77).unwrap(),
                key: None,
                by_admin: false,
            },
        ];
        // A mode that reads less than everything is held to it here: it must be among the
        // commands above.
        for m in Mode::ALL {
            if m.spec().reads != AggregateParts::ALL {
                assert!(
                    commands.iter().any(|c| c.mode() == *m),
                    "{} reads part of the aggregate only; add its commands to this test",
                    m.as_str()
                );
            }
        }
        let mut external = full.clone();
        external.account.kind = AccountKind::Imap;
        for agg in [&full, &external] {
            for cmd in &commands {
                let reduced = as_loaded(agg, cmd);
                assert_eq!(
                    apply(agg, cmd.clone()),
                    apply(&reduced, cmd.clone()),
                    "{cmd:?} decided differently without the parts it does not read"
                );
            }
        }
    }

    #[test]
    fn only_the_identity_modes_answer_with_identities() {
        for m in Mode::ALL {
            assert_eq!(
                m.answers_with_identities(),
                matches!(
                    m,
                    Mode::AddSendMailDetails
                        | Mode::DeleteSendMailDetails
                        | Mode::VerifySendMailDetails
                )
            );
        }
    }
}
