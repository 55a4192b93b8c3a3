//! A request body of the account update endpoint becomes an [`AccountCommand`] here, once;
//! nothing past this point sees JSON.

use mailplane_domain::{
    AccountCommand, AccountId, EmailAddress, ForwardDisable, ForwardKey, IdentityKey, IdentityMode,
    IdentitySelector, Mode, NewIdentity, NewRelay, Offered, PathId, PersonalInfo, Secret,
    SendMailId, SmtpConnection, Zuid, MAX_ADDRESSES_PER_ACCOUNT, MAX_FORWARDS_PER_ACCOUNT,
    MAX_IDENTITIES_PER_ACCOUNT,
};
use mailplane_store::{secrets, GrantKind};
use serde_json::Value;

use crate::error::ApiError;
use crate::lenient::{self, Object};

/// A parsed update request: the optional `zuid` and the body.
#[derive(Debug)]
pub struct UpdateRequest {
    pub zuid: Option<Zuid>,
    pub body: UpdateBody,
}

/// A parsed body: a command, or the one body that is not a command yet.
#[derive(Debug)]
pub enum UpdateBody {
    Command(AccountCommand),
    /// `resetPassword`: its password is hashed first (slow, so off the async runtime and
    /// outside the write path), and only the hash goes into the command.
    ResetPassword(NewPassword),
    /// `addMailForward` and `resendMailForwardVerficationMail`: a key is made for each
    /// target and mailed to it once the change commits; the command carries its digest.
    KeysToMail(KeysToMail),
}

impl UpdateBody {
    pub fn mode(&self) -> Mode {
        match self {
            UpdateBody::Command(c) => c.mode(),
            UpdateBody::ResetPassword(_) => Mode::ResetPassword,
            UpdateBody::KeysToMail(k) if k.resend => Mode::ResendMailForwardVerficationMail,
            UpdateBody::KeysToMail(_) => Mode::AddMailForward,
        }
    }
}

/// The forward targets that are to get a new confirmation key.
#[derive(Debug)]
pub struct KeysToMail {
    /// `resendMailForwardVerficationMail` (existing forwards) rather than `addMailForward`.
    pub resend: bool,
    pub targets: Vec<EmailAddress>,
}

/// The body of `resetPassword`, its password still in the clear (in a [`Secret`]: never
/// printed, wiped when dropped).
#[derive(Debug)]
pub struct NewPassword {
    pub password: Secret,
    /// `resetAuthToken` (or `resetAuthtoken`): revoke the user's tokens; true by default.
    pub revoke_tokens: bool,
    /// `oneTimePassword`: false by default.
    pub one_time: bool,
}

fn modes_list() -> String {
    Mode::ALL
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the operator allows of relay servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct RelayPolicy {
    /// Whether a relay may be at a loopback, private or link-local address.
    pub allow_internal: bool,
}

/// `kind` is the grant of the URL the request came in on: the admin-only modes are
/// offered on the organization's URL only.
pub fn parse_update(
    obj: &Object,
    kind: GrantKind,
    policy: RelayPolicy,
) -> Result<UpdateRequest, ApiError> {
    let mode_text = lenient::require(obj, "mode", "mode")?
        .as_str()
        .ok_or_else(|| {
            ApiError::Pattern(format!("mode must be a string, one of: {}", modes_list()))
        })?;
    let mode = Mode::parse(mode_text).ok_or_else(|| {
        ApiError::UnknownMode(format!(
            "mode {mode_text:?} is not supported; supported modes: {}",
            modes_list()
        ))
    })?;
    // What the mode's entry in the domain's table says is checked here, for every mode
    // alike; the `match` below only turns the mode's keys into its command.
    let spec = mode.spec();
    match spec.offered {
        Offered::BothUrls => {}
        Offered::AdminUrlOnly => {
            if kind == GrantKind::User {
                let id = match spec.path {
                    PathId::AccountId => "accountId",
                    PathId::Zuid => "zuid",
                };
                return Err(ApiError::Forbidden(format!(
                    "mode {} is offered to organization admins only, on /api/organization/{{zoid}}/accounts/{{{id}}}",
                    mode.as_str()
                )));
            }
        }
    }
    let mut allowed = vec!["zuid", "mode"];
    allowed.extend(spec.keys());
    lenient::only_keys(obj, &allowed, "")?;
    let zuid = lenient::get(obj, "zuid")
        .map(|v| lenient::id(v, "zuid"))
        .transpose()?;
    for key in spec.required {
        lenient::require(obj, key, key)?;
    }
    let command = match mode {
        Mode::AddSendMailDetails => {
            AccountCommand::AddSendMailDetails(send_mail_details(obj, policy)?)
        }
        Mode::DeleteSendMailDetails => {
            AccountCommand::DeleteSendMailDetails(identity_selector(obj)?)
        }
        Mode::VerifySendMailDetails => AccountCommand::VerifySendMailDetails {
            id: lenient::id::<SendMailId>(
                lenient::require(obj, "sendMailId", "sendMailId")?,
                "sendMailId",
            )?,
            // Only the digest goes on: the store keeps no key in the clear.
            key: lenient::get(obj, "confirmKey")
                .map(|v| lenient::text(v, "confirmKey", 200).map(Secret::new))
                .transpose()?
                .map(|key| IdentityKey {
                    digest: secrets::token_digest(key.expose()),
                    now_ms: mailplane_store::now_ms(),
                }),
            // The admin URL grants admins only, within their organization.
            by_admin: kind == GrantKind::Admin,
        },
        Mode::EmailUpdate => AccountCommand::EmailUpdate(lenient::email(
            lenient::require(obj, "emailAddress", "emailAddress")?,
            "emailAddress",
        )?),
        Mode::EnableMailAccount => AccountCommand::EnableMailAccount,
        Mode::DisableMailAccount => AccountCommand::DisableMailAccount,
        Mode::MailAccountOrderUpdate => AccountCommand::MailAccountOrderUpdate(account_list(obj)?),
        Mode::UpdateOutgoingStatus => AccountCommand::UpdateOutgoingStatus {
            blocked: lenient::boolean(
                lenient::require(obj, "outgoingBlocked", "outgoingBlocked")?,
                "outgoingBlocked",
            )?,
        },
        Mode::UpdateIncomingStatus => AccountCommand::UpdateIncomingStatus {
            blocked: lenient::boolean(
                lenient::require(obj, "incomingBlocked", "incomingBlocked")?,
                "incomingBlocked",
            )?,
        },
        Mode::UpdateImapStatus => AccountCommand::UpdateImapStatus {
            enabled: lenient::boolean(
                lenient::require(obj, "imapAccessEnabled", "imapAccessEnabled")?,
                "imapAccessEnabled",
            )?,
        },
        Mode::UpdatePopStatus => AccountCommand::UpdatePopStatus {
            enabled: lenient::boolean(
                lenient::require(obj, "popAccessEnabled", "popAccessEnabled")?,
                "popAccessEnabled",
            )?,
        },
        Mode::AddEmailAlias => AccountCommand::AddEmailAlias(email_aliases(obj)?),
        Mode::DeleteEmailAlias => AccountCommand::DeleteEmailAlias(email_aliases(obj)?),
        Mode::ResetPassword => {
            let body = UpdateBody::ResetPassword(new_password(obj)?);
            return Ok(UpdateRequest { zuid, body });
        }
        Mode::AddMailForward | Mode::ResendMailForwardVerficationMail => {
            let targets = mail_forward(obj, &[])?.into_iter().map(|f| f.to).collect();
            let resend = mode == Mode::ResendMailForwardVerficationMail;
            let body = UpdateBody::KeysToMail(KeysToMail { resend, targets });
            return Ok(UpdateRequest { zuid, body });
        }
        Mode::EnableMailForward => AccountCommand::EnableMailForward(
            mail_forward(obj, &[])?.into_iter().map(|f| f.to).collect(),
        ),
        Mode::DisableMailForward => AccountCommand::DisableMailForward(
            mail_forward(obj, &["reason"])?
                .into_iter()
                .map(|f| ForwardDisable {
                    to: f.to,
                    reason: f.reason,
                })
                .collect(),
        ),
        Mode::DeleteMailForward => AccountCommand::DeleteMailForward(
            mail_forward(obj, &[])?.into_iter().map(|f| f.to).collect(),
        ),
        Mode::VerifyMailForward => {
            let keys = mail_forward(obj, &["confirmKey"])?
                .into_iter()
                .enumerate()
                .map(|(i, f)| {
                    let key = f.confirm_key.ok_or_else(|| {
                        ApiError::Missing(if f.in_element {
                            format!("mailForward[{i}].confirmKey")
                        } else {
                            "confirmKey".into()
                        })
                    })?;
                    // Only the digest goes on: the store keeps no key in the clear.
                    Ok(ForwardKey {
                        to: f.to,
                        digest: secrets::token_digest(key.expose()),
                    })
                })
                .collect::<Result<_, ApiError>>()?;
            AccountCommand::VerifyMailForward {
                keys,
                now_ms: mailplane_store::now_ms(),
            }
        }
        Mode::DeleteZohoMailCopy => AccountCommand::DeleteZohoMailCopy(
            lenient::get(obj, "deleteCopy")
                .map(|v| lenient::boolean(v, "deleteCopy"))
                .transpose()?
                .unwrap_or(true),
        ),
        Mode::UpdatePersonalInfo => AccountCommand::UpdatePersonalInfo(personal_info(obj)?),
        Mode::DisplayNameEmailUpdate => AccountCommand::DisplayNameEmailUpdate {
            display_name: lenient::text(
                lenient::require(obj, "displayName", "displayName")?,
                "displayName",
                MAX_NAME_CHARS,
            )?,
            address: lenient::email(
                lenient::require(obj, "emailAddress", "emailAddress")?,
                "emailAddress",
            )?,
        },
    };
    // An arm that builds another mode's command would compile; this catches it in tests.
    debug_assert_eq!(command.mode(), mode, "the body of {} parsed", mode.as_str());
    Ok(UpdateRequest {
        zuid,
        body: UpdateBody::Command(command),
    })
}

/// The longest name (first, last, display, an identity's), as on user creation.
const MAX_NAME_CHARS: usize = 100;

/// `updatePersonalInfo`'s names: each 1 to 100 characters, at least one of them.
fn personal_info(obj: &Object) -> Result<PersonalInfo, ApiError> {
    let name = |key: &str| {
        lenient::get(obj, key)
            .map(|v| lenient::text(v, key, MAX_NAME_CHARS))
            .transpose()
    };
    let info = PersonalInfo {
        first_name: name("firstName")?,
        last_name: name("lastName")?,
        display_name: name("displayName")?,
    };
    if info.first_name.is_none() && info.last_name.is_none() && info.display_name.is_none() {
        return Err(ApiError::Missing(
            "one of firstName, lastName, displayName".into(),
        ));
    }
    Ok(info)
}

/// `resetPassword`'s keys. `resetAuthtoken` is read as `resetAuthToken` (Zoho's samples
/// spell it both ways); a body with both is refused rather than one of them ignored.
fn new_password(obj: &Object) -> Result<NewPassword, ApiError> {
    let password = lenient::password(lenient::require(obj, "password", "password")?, "password")?;
    let revoke_tokens = match (
        lenient::get(obj, "resetAuthToken"),
        lenient::get(obj, "resetAuthtoken"),
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Pattern(
                "give resetAuthToken or resetAuthtoken (the same key), not both".into(),
            ))
        }
        (Some(v), None) => lenient::boolean(v, "resetAuthToken")?,
        (None, Some(v)) => lenient::boolean(v, "resetAuthtoken")?,
        (None, None) => true,
    };
    let one_time = lenient::get(obj, "oneTimePassword")
        .map(|v| lenient::boolean(v, "oneTimePassword"))
        .transpose()?
        .unwrap_or(false);
    Ok(NewPassword {
        password,
        revoke_tokens,
        one_time,
    })
}

const DETAIL_KEYS: &[&str] = &[
    "fromAddress",
    "displayName",
    "mode",
    "serverName",
    "serverPort",
    "userName",
    "password",
    "smtpConnection",
];

fn send_mail_details(obj: &Object, policy: RelayPolicy) -> Result<Vec<NewIdentity>, ApiError> {
    let items: Vec<&Value> = match lenient::require(obj, "sendMailDetails", "sendMailDetails")? {
        Value::Array(a) => a.iter().collect(),
        v @ Value::Object(_) => vec![v],
        _ => {
            return Err(ApiError::Pattern(
                "sendMailDetails must be an object or an array of objects".into(),
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::Missing("sendMailDetails".into()));
    }
    if items.len() > MAX_IDENTITIES_PER_ACCOUNT {
        return Err(ApiError::Pattern(format!(
            "sendMailDetails may hold at most {MAX_IDENTITIES_PER_ACCOUNT} elements"
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| send_mail_detail(i, v, policy))
        .collect()
}

fn send_mail_detail(i: usize, v: &Value, policy: RelayPolicy) -> Result<NewIdentity, ApiError> {
    let name = |k: &str| format!("sendMailDetails[{i}].{k}");
    let Value::Object(d) = v else {
        return Err(ApiError::Pattern(format!(
            "sendMailDetails[{i}] must be an object"
        )));
    };
    lenient::only_keys(d, DETAIL_KEYS, &format!("sendMailDetails[{i}]."))?;
    let opt = |k: &str| lenient::get(d, k);
    let from_address = opt("fromAddress")
        .map(|v| lenient::email(v, &name("fromAddress")))
        .transpose()?;
    let display_name = lenient::text(
        lenient::require(d, "displayName", &name("displayName"))?,
        &name("displayName"),
        100,
    )?;
    let mode = lenient::word(
        lenient::require(d, "mode", &name("mode"))?,
        &name("mode"),
        IdentityMode::parse,
        &IdentityMode::choices(),
    )?;
    let relay = NewRelay {
        server_name: opt("serverName")
            .map(|v| host_name(v, &name("serverName"), policy))
            .transpose()?,
        server_port: opt("serverPort")
            .map(|v| lenient::port(v, &name("serverPort")))
            .transpose()?,
        user_name: opt("userName")
            .map(|v| lenient::text(v, &name("userName"), 320))
            .transpose()?,
        password: opt("password")
            .map(|v| lenient::text(v, &name("password"), 1024).map(Secret::new))
            .transpose()?,
        smtp_connection: opt("smtpConnection")
            .map(|v| {
                lenient::word(
                    v,
                    &name("smtpConnection"),
                    SmtpConnection::parse,
                    &SmtpConnection::choices(),
                )
            })
            .transpose()?,
    };
    // The domain checks which fields the identity's mode needs, here at the edge, so a
    // request missing one is refused before any account is looked up.
    Ok(NewIdentity::new(
        &format!("sendMailDetails[{i}]"),
        from_address,
        display_name,
        mode,
        relay,
    )?)
}

/// An SMTP server: a host name or an IP address, no spaces, no port.
/// A host name or an IP literal. An IP inside the network is refused unless the operator
/// allows it; a name is checked when a connection is made (it may resolve differently).
fn host_name(v: &Value, field: &str, policy: RelayPolicy) -> Result<String, ApiError> {
    let s = lenient::text(v, field, 253)?;
    if let Some(ip) = mailplane_domain::literal_ip(&s) {
        if !policy.allow_internal && mailplane_domain::is_internal_ip(ip) {
            return Err(ApiError::Invalid(format!(
                "{field} {ip} is a loopback, private or link-local address; relays must be public hosts"
            )));
        }
    }
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(ApiError::Pattern(format!(
            "{field} must be a host name or IP address"
        )))
    }
}

fn identity_selector(obj: &Object) -> Result<IdentitySelector, ApiError> {
    match (
        lenient::get(obj, "sendMailId"),
        lenient::get(obj, "fromAddress"),
    ) {
        (Some(_), Some(_)) => Err(ApiError::Pattern(
            "give sendMailId or fromAddress, not both".into(),
        )),
        (Some(v), None) => Ok(IdentitySelector::Id(lenient::id::<SendMailId>(
            v,
            "sendMailId",
        )?)),
        (None, Some(v)) => Ok(IdentitySelector::Address(lenient::email(v, "fromAddress")?)),
        (None, None) => Err(ApiError::Missing("sendMailId".into())),
    }
}

/// `emailAlias`: a list of addresses, as a JSON array or one string (a single address, or
/// several separated by commas).
fn email_aliases(obj: &Object) -> Result<Vec<EmailAddress>, ApiError> {
    let items = lenient::list(
        lenient::require(obj, "emailAlias", "emailAlias")?,
        "emailAlias",
    )?;
    if items.is_empty() {
        return Err(ApiError::Missing("emailAlias".into()));
    }
    // No request can add or remove more than an account may hold.
    if items.len() > MAX_ADDRESSES_PER_ACCOUNT {
        return Err(ApiError::Pattern(format!(
            "emailAlias may list at most {MAX_ADDRESSES_PER_ACCOUNT} addresses"
        )));
    }
    items
        .iter()
        .map(|v| lenient::email(v, "emailAlias"))
        .collect()
}

/// One element of `mailForward`, with the keys the mode takes beside `mailForwardTo`.
struct ForwardElement {
    to: EmailAddress,
    reason: Option<String>,
    confirm_key: Option<Secret>,
    /// Whether the element is an object (its keys are named `mailForward[i].…`).
    in_element: bool,
}

/// `mailForward`: an array of `{"mailForwardTo": …}` objects as Zoho's pages give it, one
/// such object, or a string (one address, or several separated by commas) as some clients
/// send it. `extra` are the element keys the mode takes besides `mailForwardTo`; each may
/// also stand once beside `mailForward`, for every element that does not give its own.
fn mail_forward(obj: &Object, extra: &[&str]) -> Result<Vec<ForwardElement>, ApiError> {
    let value = lenient::require(obj, "mailForward", "mailForward")?;
    let items: Vec<Value> = match value {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![value.clone()],
        Value::String(_) => lenient::list(value, "mailForward")?,
        _ => {
            return Err(ApiError::Pattern(
                "mailForward must be an array of {\"mailForwardTo\": …} objects, one such object, or a string of addresses".into(),
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::Missing("mailForward".into()));
    }
    if items.len() > MAX_FORWARDS_PER_ACCOUNT {
        return Err(ApiError::Pattern(format!(
            "mailForward may list at most {MAX_FORWARDS_PER_ACCOUNT} addresses"
        )));
    }
    let shared_reason = lenient::get(obj, "reason")
        .map(|v| lenient::text(v, "reason", 200))
        .transpose()?;
    let shared_key = lenient::get(obj, "confirmKey")
        .map(|v| lenient::text(v, "confirmKey", 200).map(Secret::new))
        .transpose()?;
    let mut allowed = vec!["mailForwardTo"];
    allowed.extend_from_slice(extra);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = |k: &str| format!("mailForward[{i}].{k}");
            match item {
                Value::String(_) => Ok(ForwardElement {
                    to: lenient::email(item, &format!("mailForward[{i}]"))?,
                    reason: shared_reason.clone(),
                    confirm_key: shared_key.clone(),
                    in_element: false,
                }),
                Value::Object(d) => {
                    lenient::only_keys(d, &allowed, &format!("mailForward[{i}]."))?;
                    let to = lenient::email(
                        lenient::require(d, "mailForwardTo", &name("mailForwardTo"))?,
                        &name("mailForwardTo"),
                    )?;
                    let reason = match lenient::get(d, "reason") {
                        Some(v) => Some(lenient::text(v, &name("reason"), 200)?),
                        None => shared_reason.clone(),
                    };
                    let confirm_key = match lenient::get(d, "confirmKey") {
                        Some(v) => Some(Secret::new(lenient::text(v, &name("confirmKey"), 200)?)),
                        None => shared_key.clone(),
                    };
                    Ok(ForwardElement {
                        to,
                        reason,
                        confirm_key,
                        in_element: true,
                    })
                }
                _ => Err(ApiError::Pattern(format!(
                    "mailForward[{i}] must be an object with mailForwardTo, or an address"
                ))),
            }
        })
        .collect()
}

fn account_list(obj: &Object) -> Result<Vec<AccountId>, ApiError> {
    let items = lenient::list(lenient::require(obj, "accList", "accList")?, "accList")?;
    if items.is_empty() {
        return Err(ApiError::Missing("accList".into()));
    }
    items
        .iter()
        .map(|v| {
            lenient::id(v, "accList").map_err(|_| {
                ApiError::Pattern("accList must list account ids (positive integers)".into())
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lenient::parse_object;
    use axum::body::Bytes;
    use proptest::prelude::*;

    /// A rejection must be a 4xx with an error code and a sentence for the envelope.
    pub(crate) fn assert_client_error(e: ApiError) {
        let (status, _, code, more) = e.parts();
        assert!(status.is_client_error(), "{status} for {code}");
        assert!(!code.is_empty() && !more.is_empty());
    }

    fn parse(body: &str, form: GrantKind) -> Result<UpdateRequest, ApiError> {
        parse_update(
            &parse_object(&Bytes::from(body.to_string()))?,
            form,
            RelayPolicy::default(),
        )
    }

    #[test]
    fn seed_bodies_parse() {
        let r = parse(
            r#"{"zuid": "1112233333", "mode": "updateOutgoingStatus", "outgoingBlocked": "true"}"#,
            GrantKind::Admin,
        )
        .unwrap();
        assert!(matches!(
            r.body,
            UpdateBody::Command(AccountCommand::UpdateOutgoingStatus { blocked: true })
        ));
        let r = parse(r#"{"mode":"mailaccountorderupdate","accList":"5111110000000008001,5111110000000009001"}"#, GrantKind::User).unwrap();
        assert!(
            matches!(r.body, UpdateBody::Command(AccountCommand::MailAccountOrderUpdate(ref l)) if l.len() == 2)
        );
    }

    #[test]
    fn email_aliases_as_a_list_or_one_string() {
        let aliases = |body: &str| match parse(body, GrantKind::Admin).map(|r| r.body) {
            Ok(UpdateBody::Command(AccountCommand::AddEmailAlias(list))) => Ok(list
                .iter()
                .map(|a| a.as_str().to_string())
                .collect::<Vec<_>>()),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            aliases(r#"{"mode":"addEmailAlias","emailAlias":["A@Zylker.com","b@zylker.com"]}"#)
                .unwrap(),
            ["a@zylker.com", "b@zylker.com"]
        );
        assert_eq!(
            aliases(r#"{"mode":"addEmailAlias","emailAlias":"a@zylker.com"}"#).unwrap(),
            ["a@zylker.com"]
        );
        assert!(matches!(
            aliases(r#"{"mode":"addEmailAlias","emailAlias":[]}"#),
            Err(ApiError::Missing(f)) if f == "emailAlias"
        ));
        assert!(matches!(
            aliases(r#"{"mode":"addEmailAlias","emailAlias":["not an address"]}"#),
            Err(ApiError::Pattern(m)) if m.starts_with("emailAlias")
        ));
        let many: Vec<String> = (0..51).map(|i| format!("a{i}@zylker.com")).collect();
        let body = serde_json::json!({"mode": "addEmailAlias", "emailAlias": many}).to_string();
        assert!(matches!(aliases(&body), Err(ApiError::Pattern(m)) if m.contains("50")));
        assert!(matches!(
            parse(r#"{"mode":"addEmailAlias","emailAlias":["a@zylker.com"]}"#, GrantKind::User),
            Err(ApiError::Forbidden(m)) if m.contains("{zuid}")
        ));
    }

    #[test]
    fn reset_password_keys() {
        let reset = |body: &str| match parse(body, GrantKind::Admin).map(|r| r.body) {
            Ok(UpdateBody::ResetPassword(p)) => {
                Ok((p.password.expose().to_string(), p.revoke_tokens, p.one_time))
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            reset(r#"{"mode":"resetPassword","password":"Correct-horse-9"}"#).unwrap(),
            ("Correct-horse-9".to_string(), true, false)
        );
        assert_eq!(
            reset(r#"{"mode":"resetPassword","password":"Correct-horse-9","resetAuthToken":false,"oneTimePassword":"true"}"#).unwrap(),
            ("Correct-horse-9".to_string(), false, true)
        );
        assert!(
            !reset(
                r#"{"mode":"resetPassword","password":"Correct-horse-9","resetAuthtoken":"false"}"#
            )
            .unwrap()
            .1
        );
        // `null` is absence, as for every key.
        assert!(
            !reset(r#"{"mode":"resetPassword","password":"Correct-horse-9","resetAuthtoken":null,"resetAuthToken":false}"#).unwrap().1
        );
        assert!(matches!(
            reset(r#"{"mode":"resetPassword","password":"Correct-horse-9","resetAuthToken":true,"resetAuthtoken":true}"#),
            Err(ApiError::Pattern(m)) if m.contains("not both")
        ));
        for (body, field) in [
            (
                r#"{"mode":"resetPassword","password":"short-7"}"#,
                "password",
            ),
            (
                r#"{"mode":"resetPassword","password":12345678}"#,
                "password",
            ),
            (
                r#"{"mode":"resetPassword","password":"Correct-horse-9","oneTimePassword":"maybe"}"#,
                "oneTimePassword",
            ),
            (
                r#"{"mode":"resetPassword","password":"Correct-horse-9","resetAuthToken":1}"#,
                "resetAuthToken",
            ),
        ] {
            match reset(body) {
                Err(ApiError::Pattern(m)) => {
                    assert!(m.starts_with(field), "{m}");
                    assert!(!m.contains("short-7") && !m.contains("12345678"), "{m}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        let long = format!(
            r#"{{"mode":"resetPassword","password":"{}"}}"#,
            "x".repeat(257)
        );
        assert!(matches!(reset(&long), Err(ApiError::Pattern(_))));
        let longest = format!(
            r#"{{"mode":"resetPassword","password":"{}"}}"#,
            "x".repeat(256)
        );
        assert!(reset(&longest).is_ok());
        assert!(matches!(
            reset(r#"{"mode":"resetPassword"}"#),
            Err(ApiError::Missing(f)) if f == "password"
        ));
        assert!(matches!(
            parse(
                r#"{"mode":"resetPassword","password":"Correct-horse-9"}"#,
                GrantKind::User
            ),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn personal_info_needs_a_name_and_display_name_email_both_keys() {
        let info = |body: &str| match parse(body, GrantKind::User).map(|r| r.body) {
            Ok(UpdateBody::Command(AccountCommand::UpdatePersonalInfo(i))) => Ok(i),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let i = info(r#"{"mode":"updatePersonalInfo","lastName":"Anderson"}"#).unwrap();
        assert_eq!(
            (i.first_name, i.last_name, i.display_name),
            (None, Some("Anderson".into()), None)
        );
        for body in [
            r#"{"mode":"updatePersonalInfo"}"#,
            r#"{"mode":"updatePersonalInfo","firstName":null}"#,
        ] {
            assert!(
                matches!(info(body), Err(ApiError::Missing(f)) if f.contains("firstName, lastName, displayName")),
                "{body}"
            );
        }
        let long = format!(
            r#"{{"mode":"updatePersonalInfo","displayName":"{}"}}"#,
            "x".repeat(101)
        );
        assert!(matches!(info(&long), Err(ApiError::Pattern(m)) if m.starts_with("displayName")));
        assert!(matches!(
            info(r#"{"mode":"updatePersonalInfo","firstName":""}"#),
            Err(ApiError::Pattern(m)) if m.starts_with("firstName")
        ));
        let r = parse(
            r#"{"zuid":"1111111","mode":"displaynameemailupdate","emailAddress":"Rebecca@Zylker.com","displayName":"Rebecca Anderson"}"#,
            GrantKind::Admin,
        )
        .unwrap();
        assert!(matches!(
            r.body,
            UpdateBody::Command(AccountCommand::DisplayNameEmailUpdate { ref display_name, ref address })
                if display_name == "Rebecca Anderson" && address.as_str() == "rebecca@zylker.com"
        ));
        assert!(matches!(
            parse(r#"{"mode":"displaynameemailupdate","emailAddress":"r@zylker.com"}"#, GrantKind::User),
            Err(ApiError::Missing(f)) if f == "displayName"
        ));
    }

    #[test]
    fn wire_errors() {
        assert!(matches!(
            parse(r#"{"mode":"nope"}"#, GrantKind::User),
            Err(ApiError::UnknownMode(_))
        ));
        assert!(
            matches!(parse(r#"{}"#, GrantKind::User), Err(ApiError::Missing(f)) if f == "mode")
        );
        assert!(
            matches!(parse(r#"{"mode":"enableMailAccount","x":1}"#, GrantKind::User), Err(ApiError::ExtraKey(k)) if k == "x")
        );
        assert!(matches!(
            parse(
                r#"{"mode":"updateIncomingStatus","incomingBlocked":true}"#,
                GrantKind::User
            ),
            Err(ApiError::Forbidden(_))
        ));
        assert!(
            matches!(parse(r#"{"mode":"updateOutgoingStatus","outgoingBlocked":"maybe"}"#, GrantKind::User), Err(ApiError::Pattern(m)) if m == "outgoingBlocked must be true or false")
        );
        assert!(matches!(
            parse(r#"[1]"#, GrantKind::User),
            Err(ApiError::JsonParse(_))
        ));
        assert!(
            matches!(parse(r#"{"mode":"addsendmaildetails","sendMailDetails":{"displayName":"R","mode":"alias","bogus":1}}"#, GrantKind::User), Err(ApiError::ExtraKey(k)) if k == "sendMailDetails[0].bogus")
        );
    }

    /// The keys the parser takes and requires are the ones the mode's entry in the
    /// domain's table lists: an unlisted key is refused, a listed one is not, and a body
    /// without the required keys is refused naming the first of them.
    #[test]
    fn the_parser_takes_the_keys_of_the_mode_table() {
        for mode in Mode::ALL {
            let spec = mode.spec();
            let form = match spec.offered {
                Offered::BothUrls => GrantKind::User,
                Offered::AdminUrlOnly => GrantKind::Admin,
            };
            let body = |extra: &str| format!(r#"{{"mode":"{}"{extra}}}"#, mode.as_str());
            assert!(
                matches!(parse(&body(r#","unlisted":1"#), form), Err(ApiError::ExtraKey(k)) if k == "unlisted"),
                "{} takes a key its entry does not list",
                mode.as_str()
            );
            for key in spec.keys() {
                assert!(
                    !matches!(
                        parse(&body(&format!(r#","{key}":null"#)), form),
                        Err(ApiError::ExtraKey(_))
                    ),
                    "{} refuses its key {key}",
                    mode.as_str()
                );
            }
            if let Some(first) = spec.required.first() {
                assert!(
                    matches!(parse(&body(""), form), Err(ApiError::Missing(k)) if k == *first),
                    "{} parses without its required key {first}",
                    mode.as_str()
                );
            }
        }
    }

    proptest! {
        // The issue asks for at least 10,000 cases per parser and run.
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        /// Any JSON object with any mode and any values: a command or a 4xx, never a panic.
        #[test]
        fn update_parser_never_panics(
            mode in proptest::sample::select(Mode::ALL.iter().map(|m| m.as_str()).chain(["x"]).collect::<Vec<_>>()),
            key in proptest::sample::select(Mode::ALL.iter().flat_map(|m| m.spec().keys()).chain(["zuid", "other"]).collect::<Vec<_>>()),
            value in prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::from), any::<i64>().prop_map(Value::from), "\\PC{0,30}".prop_map(Value::from),
                Just(serde_json::json!([{"displayName": "x", "mode": "extfrom", "serverPort": "99999"}]))],
        ) {
            let mut obj = Object::new();
            obj.insert("mode".into(), Value::from(mode));
            obj.insert(key.into(), value);
            if let Err(e) = parse_update(&obj, GrantKind::User, RelayPolicy::default()) {
                assert_client_error(e);
            }
        }
    }
}
