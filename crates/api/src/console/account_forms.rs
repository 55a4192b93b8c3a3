//! The forms of an account's card, each turned into the body of the API mode it stands
//! for. Nothing here decides whether a change is allowed or valid: the API's handler
//! does, with its own messages.

use serde_json::{json, Map, Value};

use super::form::Form;
use mailplane_domain::{AccountId, IdentityMode};
use mailplane_store::AccountView;

/// A form of the card: where its errors are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CardForm {
    Status,
    EmailUpdate,
    /// Adding an identity.
    Identity,
    /// Acting on a listed identity: remove, confirm, check.
    IdentityRow,
    Order,
    Password,
}

impl CardForm {
    pub fn name(self) -> &'static str {
        match self {
            CardForm::Status => "status",
            CardForm::EmailUpdate => "emailupdate",
            CardForm::Identity => "identity",
            CardForm::IdentityRow => "identity_row",
            CardForm::Order => "order",
            CardForm::Password => "password",
        }
    }

    /// The fields whose names a refusal of this form may carry.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            CardForm::EmailUpdate => &["emailAddress"],
            CardForm::Identity => IDENTITY_FIELDS,
            CardForm::Password => &["password"],
            // The row's key field is one of many on the page: its refusal is said on the
            // line under the table.
            CardForm::IdentityRow | CardForm::Status | CardForm::Order => &[],
        }
    }
}

/// The fields of the add-identity form, named as the API's keys.
pub(crate) const IDENTITY_FIELDS: &[&str] = &[
    "fromAddress",
    "displayName",
    "mode",
    "serverName",
    "serverPort",
    "smtpConnection",
    "userName",
    "password",
];

/// The identity modes offered in the form, `extfrom` among them.
pub(crate) fn identity_modes() -> Vec<&'static str> {
    IdentityMode::ALL.iter().map(|m| m.as_str()).collect()
}

/// A posted card form as an API operation.
pub(crate) struct Operation {
    pub form: CardForm,
    /// The API body.
    pub body: Value,
    /// Whether the mode's URL names the user (Zoho's admin modes by zuid) rather than the
    /// account.
    pub by_user: bool,
    /// What the page says once it is done.
    pub done: &'static str,
}

/// The operation of `action` on `account`; `None` for an action no form has.
pub(crate) fn operation(
    action: &str,
    form: &Form,
    account: &AccountView,
    all: &[AccountView],
) -> Option<Operation> {
    let op = |form, body, done| Operation {
        form,
        body,
        by_user: false,
        done,
    };
    let status = |mode: &str, key: Option<(&str, bool)>, done| {
        let mut body = json!({ "mode": mode });
        if let Some((k, v)) = key {
            body[k] = json!(v);
        }
        op(CardForm::Status, body, done)
    };
    let identity_id = || json!(form.get("sendMailId"));
    Some(match action {
        "enable" => status("enableMailAccount", None, "enabled"),
        "disable" => status("disableMailAccount", None, "disabled"),
        "block_outgoing" => status(
            "updateOutgoingStatus",
            Some(("outgoingBlocked", true)),
            "outgoing_blocked",
        ),
        "unblock_outgoing" => status(
            "updateOutgoingStatus",
            Some(("outgoingBlocked", false)),
            "outgoing_allowed",
        ),
        "block_incoming" => status(
            "updateIncomingStatus",
            Some(("incomingBlocked", true)),
            "incoming_blocked",
        ),
        "unblock_incoming" => status(
            "updateIncomingStatus",
            Some(("incomingBlocked", false)),
            "incoming_allowed",
        ),
        "emailupdate" => op(
            CardForm::EmailUpdate,
            json!({ "mode": "emailupdate", "emailAddress": form.get("emailAddress") }),
            "primary_changed",
        ),
        "add_identity" => op(
            CardForm::Identity,
            json!({ "mode": "addsendmaildetails", "sendMailDetails": [identity(form)] }),
            "identity_added",
        ),
        "delete_identity" => op(
            CardForm::IdentityRow,
            json!({ "mode": "deletesendmaildetails", "sendMailId": identity_id() }),
            "identity_removed",
        ),
        "confirm_identity" => {
            let mut body = json!({ "mode": "verifysendmaildetails", "sendMailId": identity_id() });
            // Without a key, an admin confirms an address of the organization's domains.
            if !form.get("confirmKey").is_empty() {
                body["confirmKey"] = json!(form.get("confirmKey"));
            }
            op(CardForm::IdentityRow, body, "identity_confirmed")
        }
        "check_identity" => op(
            CardForm::IdentityRow,
            json!({ "mode": "verifysendmaildetails", "sendMailId": identity_id() }),
            "identity_checked",
        ),
        "move_up" | "move_down" => op(
            CardForm::Order,
            json!({ "mode": "mailaccountorderupdate", "accList": moved(all, account.account_id, action == "move_up") }),
            "order_changed",
        ),
        "reset_password" => Operation {
            by_user: true,
            ..op(
                CardForm::Password,
                json!({ "mode": "resetPassword", "password": form.raw("password") }),
                "password_set",
            )
        },
        _ => return None,
    })
}

/// The identity of the add form: the fields given, as the API's keys; the relay's only
/// for `extfrom`, the one mode that has a relay.
fn identity(form: &Form) -> Value {
    let mut d = Map::new();
    let relay = form.get("mode") == "extfrom";
    for key in IDENTITY_FIELDS {
        let is_relay_key = !matches!(*key, "fromAddress" | "displayName" | "mode");
        if is_relay_key && !relay {
            continue;
        }
        let value = if *key == "password" {
            form.raw(key)
        } else {
            form.get(key)
        };
        if value.is_empty() {
            continue;
        }
        // A port in digits is a number, as the API's clients send it; anything else goes
        // as written, for the API to name.
        let v = match (*key, value.parse::<u64>()) {
            ("serverPort", Ok(n)) => json!(n),
            _ => json!(value),
        };
        d.insert((*key).to_string(), v);
    }
    Value::Object(d)
}

/// The user's accounts in their order, with `account` moved one place.
fn moved(all: &[AccountView], account: AccountId, up: bool) -> Vec<String> {
    let mut ids: Vec<AccountId> = all.iter().map(|a| a.account_id).collect();
    if let Some(i) = ids.iter().position(|&a| a == account) {
        let j = if up { i.checked_sub(1) } else { Some(i + 1) };
        if let Some(j) = j.filter(|&j| j < ids.len()) {
            ids.swap(i, j);
        }
    }
    ids.iter().map(ToString::to_string).collect()
}

/// What the page says after a change, by the code the redirect carries (never text from
/// the request).
pub(crate) fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "enabled" => "The account is enabled.",
        "disabled" => "The account is disabled.",
        "outgoing_blocked" => "Outgoing mail is blocked.",
        "outgoing_allowed" => "Outgoing mail is allowed again.",
        "incoming_blocked" => "Incoming mail is blocked.",
        "incoming_allowed" => "Incoming mail is allowed again.",
        "primary_changed" => "The primary address is changed.",
        "identity_added" => "The identity is added. An address outside the account is used once its owner confirms it with the key mailed to it.",
        "identity_removed" => "The identity is removed.",
        "identity_confirmed" => "The identity is confirmed.",
        "identity_checked" => "The relay was checked; its state is below.",
        "order_changed" => "The order of the accounts is changed.",
        "password_set" => "The password is set. The user's console sessions and API tokens have ended.",
        "user_added" => "The user is added.",
        "users_deleted" => "The users are deleted.",
        "client_deleted" => "The client is deleted.",
        _ => return None,
    })
}
