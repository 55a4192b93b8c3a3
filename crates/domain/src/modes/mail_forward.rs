//! The forwarding modes: `addMailForward`, `enableMailForward`, `disableMailForward`,
//! `deleteMailForward`, `verifyMailForward`, `resendMailForwardVerficationMail` (Zoho's
//! spelling) and `deleteZohoMailCopy`.
//!
//! A forward sends a copy of the account's incoming mail to another address. Because that
//! address may be anyone's, a new forward does nothing until whoever reads the target
//! proves it wants the mail: mailplane mails a key there, and the forward takes effect
//! once the key comes back through `verifyMailForward`. The key is made at the edge (it
//! must be mailed after the change commits); the rules see only its digest.

use serde_json::{json, Value};

use super::{Change, Op};
use crate::{AccountAggregate, EmailAddress, MailForward, PendingKey, RuleError};

/// At most this many forwards per account, confirmed or not: each unconfirmed one is a
/// mail sent to an address nobody here vouched for.
pub const MAX_FORWARDS_PER_ACCOUNT: usize = 10;

/// How long a mailed key can be given back.
pub const FORWARD_KEY_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// How long after a key was mailed another one may be mailed to the same target.
pub const FORWARD_RESEND_WAIT_MS: i64 = 60 * 1000;

/// The field every forwarding refusal names.
const FIELD: &str = "mailForward";

/// A forward target with the digest of a key: the key the edge made and will mail
/// (`addMailForward`, `resendMailForwardVerficationMail`), or the one the client gave back
/// (`verifyMailForward`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardKey {
    pub to: EmailAddress,
    pub digest: String,
}

/// `disableMailForward`'s element: the target and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardDisable {
    pub to: EmailAddress,
    pub reason: Option<String>,
}

/// What the account reads show of a forward's state.
pub fn forward_status(f: &MailForward) -> &'static str {
    match (f.confirmed, f.enabled) {
        (false, _) => "UNCONFIRMED",
        (true, true) => "ENABLED",
        (true, false) => "DISABLED",
    }
}

fn targets_audit(agg: &AccountAggregate) -> Value {
    Value::from(
        agg.forwards
            .iter()
            .map(|f| json!({ "mailForwardTo": f.to.as_str(), "status": forward_status(f) }))
            .collect::<Vec<_>>(),
    )
}

/// The request names each target once.
fn once_each<'a>(targets: impl Iterator<Item = &'a EmailAddress>) -> Result<(), RuleError> {
    let mut seen: Vec<&EmailAddress> = Vec::new();
    for t in targets {
        if seen.contains(&t) {
            return Err(RuleError::invalid(
                FIELD,
                format!("{FIELD} lists {t} more than once"),
            ));
        }
        seen.push(t);
    }
    Ok(())
}

/// The account's forward to `to`, or the refusal that names it.
fn existing<'a>(
    agg: &'a AccountAggregate,
    to: &EmailAddress,
) -> Result<&'a MailForward, RuleError> {
    agg.forward(to).ok_or_else(|| {
        RuleError::invalid(
            FIELD,
            format!("{FIELD} {to} is not a forward of this account"),
        )
    })
}

/// The account's forward to `to` while it awaits its key: a confirmed one has no key to
/// give back or mail again.
fn unconfirmed<'a>(
    agg: &'a AccountAggregate,
    to: &EmailAddress,
) -> Result<&'a MailForward, RuleError> {
    let f = existing(agg, to)?;
    if f.confirmed {
        return Err(RuleError::invalid(
            FIELD,
            format!("{FIELD} {to} is already confirmed"),
        ));
    }
    Ok(f)
}

pub(super) fn add(
    agg: &AccountAggregate,
    keys: Vec<ForwardKey>,
    now_ms: i64,
) -> Result<Change, RuleError> {
    once_each(keys.iter().map(|k| &k.to))?;
    for k in &keys {
        if agg.has_address(&k.to) {
            return Err(RuleError::invalid(
                FIELD,
                format!(
                    "{FIELD} {} is an address of this account: its mail is already here",
                    k.to
                ),
            ));
        }
        if let Some(f) = agg.forward(&k.to) {
            return Err(RuleError::conflict(
                FIELD,
                format!(
                    "{FIELD} {} is already a forward of this account ({}); resendMailForwardVerficationMail mails a new key",
                    k.to,
                    forward_status(f)
                ),
            ));
        }
    }
    if agg.forwards.len() + keys.len() > MAX_FORWARDS_PER_ACCOUNT {
        return Err(RuleError::invalid(
            FIELD,
            format!(
                "{FIELD}: an account may have at most {MAX_FORWARDS_PER_ACCOUNT} forwards; this one has {}",
                agg.forwards.len()
            ),
        ));
    }
    let after: Vec<Value> = keys
        .iter()
        .map(|k| json!({ "mailForwardTo": k.to.as_str(), "status": "UNCONFIRMED" }))
        .collect();
    let ops = keys
        .into_iter()
        .map(|k| Op::AddForward {
            to: k.to,
            key: new_key(k.digest, now_ms),
        })
        .collect();
    Ok(Change {
        ops,
        before: json!({ "mailForward": targets_audit(agg) }),
        after: json!({ "added": after }),
    })
}

fn new_key(digest: String, now_ms: i64) -> PendingKey {
    PendingKey {
        digest,
        expires_ms: now_ms + FORWARD_KEY_TTL_MS,
        sent_ms: now_ms,
    }
}

pub(super) fn set_enabled(
    agg: &AccountAggregate,
    targets: Vec<ForwardDisable>,
    enabled: bool,
) -> Result<Change, RuleError> {
    once_each(targets.iter().map(|t| &t.to))?;
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut ops = Vec::new();
    for ForwardDisable { to, reason } in targets {
        let f = existing(agg, &to)?;
        before.push(json!({ "mailForwardTo": to.as_str(), "enabled": f.enabled }));
        after.push(match &reason {
            Some(r) => json!({ "mailForwardTo": to.as_str(), "enabled": enabled, "reason": r }),
            None => json!({ "mailForwardTo": to.as_str(), "enabled": enabled }),
        });
        ops.push(Op::SetForwardEnabled {
            to,
            enabled,
            reason: if enabled { None } else { reason },
        });
    }
    Ok(Change {
        ops,
        before: Value::from(before),
        after: Value::from(after),
    })
}

pub(super) fn delete(
    agg: &AccountAggregate,
    targets: Vec<EmailAddress>,
) -> Result<Change, RuleError> {
    once_each(targets.iter())?;
    for to in &targets {
        existing(agg, to)?;
    }
    Ok(Change {
        before: json!({ "mailForward": targets_audit(agg) }),
        after: json!({ "deleted": targets.iter().map(EmailAddress::as_str).collect::<Vec<_>>() }),
        ops: targets.into_iter().map(Op::DeleteForward).collect(),
    })
}

/// The key given back must be the one mailed last, unexpired; it is spent by the change.
pub(super) fn verify(
    agg: &AccountAggregate,
    keys: Vec<ForwardKey>,
    now_ms: i64,
) -> Result<Change, RuleError> {
    once_each(keys.iter().map(|k| &k.to))?;
    for k in &keys {
        let pending = unconfirmed(agg, &k.to)?.pending_key.as_ref();
        if pending.is_none_or(|p| p.digest != k.digest) {
            return Err(RuleError::invalid(
                "confirmKey",
                format!("confirmKey is not the key mailed to {}", k.to),
            ));
        }
        if pending.is_some_and(|p| now_ms > p.expires_ms) {
            return Err(RuleError::invalid(
                "confirmKey",
                format!(
                    "confirmKey for {} has expired; resendMailForwardVerficationMail mails a new one",
                    k.to
                ),
            ));
        }
    }
    Ok(Change {
        before: json!({ "mailForward": targets_audit(agg) }),
        after: json!({ "confirmed": keys.iter().map(|k| k.to.as_str()).collect::<Vec<_>>() }),
        ops: keys.into_iter().map(|k| Op::ConfirmForward(k.to)).collect(),
    })
}

/// A new key for unconfirmed forwards, the old one no longer valid.
pub(super) fn resend(
    agg: &AccountAggregate,
    keys: Vec<ForwardKey>,
    now_ms: i64,
) -> Result<Change, RuleError> {
    once_each(keys.iter().map(|k| &k.to))?;
    for k in &keys {
        if let Some(p) = &unconfirmed(agg, &k.to)?.pending_key {
            let wait = p.sent_ms + FORWARD_RESEND_WAIT_MS - now_ms;
            if wait > 0 {
                return Err(RuleError::invalid(
                    FIELD,
                    format!(
                        "{FIELD}: a key was mailed to {} less than a minute ago; try again in {} s",
                        k.to,
                        (wait + 999) / 1000
                    ),
                ));
            }
        }
    }
    Ok(Change {
        before: json!({ "mailForward": targets_audit(agg) }),
        after: json!({ "keyMailed": keys.iter().map(|k| k.to.as_str()).collect::<Vec<_>>() }),
        ops: keys
            .into_iter()
            .map(|k| Op::SetForwardKey {
                to: k.to,
                key: new_key(k.digest, now_ms),
            })
            .collect(),
    })
}

pub(super) fn delete_copy(agg: &AccountAggregate, delete: bool) -> Change {
    Change {
        ops: vec![Op::SetForwardDeleteCopy(delete)],
        before: json!({ "deleteZohoMailCopy": agg.account.forward_delete_copy }),
        after: json!({ "deleteZohoMailCopy": delete }),
    }
}

#[cfg(test)]
pub(in crate::modes) mod tests {
    use super::super::fixtures::{addr, rebecca};
    use super::*;
    use crate::*;

    pub(in crate::modes) const NOW: i64 = 1_800_000_000_000;

    pub(in crate::modes) fn key(to: &str, digest: &str) -> ForwardKey {
        ForwardKey {
            to: addr(to),
            digest: digest.into(),
        }
    }

    /// Rebecca with an unconfirmed forward to paula@example.com (key "d1", mailed at NOW)
    /// and a confirmed one to archive@example.net.
    pub(in crate::modes) fn with_forwards() -> AccountAggregate {
        let mut agg = rebecca();
        agg.forwards = vec![
            MailForward {
                to: addr("paula@example.com"),
                confirmed: false,
                enabled: true,
                disabled_reason: None,
                pending_key: Some(PendingKey {
                    digest: "d1".into(),
                    expires_ms: NOW + FORWARD_KEY_TTL_MS,
                    sent_ms: NOW,
                }),
            },
            MailForward {
                to: addr("archive@example.net"),
                confirmed: true,
                enabled: true,
                disabled_reason: None,
                pending_key: None,
            },
        ];
        agg
    }

    fn refused(agg: &AccountAggregate, cmd: AccountCommand) -> RuleError {
        apply(agg, cmd).expect_err("refused")
    }

    #[test]
    fn a_new_forward_waits_for_its_key() {
        let c = apply(
            &rebecca(),
            AccountCommand::AddMailForward {
                keys: vec![key("paula@example.com", "d")],
                now_ms: NOW,
            },
        )
        .unwrap();
        assert_eq!(
            c.ops,
            vec![Op::AddForward {
                to: addr("paula@example.com"),
                key: PendingKey {
                    digest: "d".into(),
                    expires_ms: NOW + FORWARD_KEY_TTL_MS,
                    sent_ms: NOW
                }
            }]
        );
        assert!(
            !c.after.to_string().contains("\"d\""),
            "no digest in the audit"
        );
    }

    #[test]
    fn adding_refuses_own_addresses_duplicates_and_past_the_limit() {
        let agg = with_forwards();
        let add = |list: &[&str]| AccountCommand::AddMailForward {
            keys: list.iter().map(|a| key(a, "d")).collect(),
            now_ms: NOW,
        };
        let e = refused(&agg, add(&["rebecca.alias@zylker.com"]));
        assert!(e.message.contains("an address of this account"), "{e}");
        let e = refused(&agg, add(&["paula@example.com"]));
        assert_eq!(e.kind, RuleErrorKind::Conflict);
        let e = refused(&agg, add(&["x@example.com", "x@example.com"]));
        assert!(e.message.contains("more than once"), "{e}");
        let many: Vec<String> = (0..MAX_FORWARDS_PER_ACCOUNT - 1)
            .map(|i| format!("f{i}@example.com"))
            .collect();
        let e = refused(
            &agg,
            add(&many.iter().map(String::as_str).collect::<Vec<_>>()),
        );
        assert!(e.message.contains("at most 10"), "{e}");
        assert!(apply(
            &agg,
            add(&many[..8].iter().map(String::as_str).collect::<Vec<_>>())
        )
        .is_ok());
    }

    #[test]
    fn only_the_mailed_key_confirms_and_only_once() {
        let agg = with_forwards();
        let verify = |digest: &str, now_ms: i64| AccountCommand::VerifyMailForward {
            keys: vec![key("paula@example.com", digest)],
            now_ms,
        };
        let e = refused(&agg, verify("wrong", NOW));
        assert_eq!(e.field, "confirmKey");
        let e = refused(&agg, verify("d1", NOW + FORWARD_KEY_TTL_MS + 1));
        assert!(e.message.contains("expired"), "{e}");
        let c = apply(&agg, verify("d1", NOW + 5)).unwrap();
        assert_eq!(c.ops, vec![Op::ConfirmForward(addr("paula@example.com"))]);
        let e = refused(
            &agg,
            AccountCommand::VerifyMailForward {
                keys: vec![key("archive@example.net", "d1")],
                now_ms: NOW,
            },
        );
        assert!(e.message.contains("already confirmed"), "{e}");
        let e = refused(
            &agg,
            AccountCommand::VerifyMailForward {
                keys: vec![key("nobody@example.net", "d1")],
                now_ms: NOW,
            },
        );
        assert!(e.message.contains("not a forward"), "{e}");
    }

    #[test]
    fn a_new_key_waits_a_minute_and_only_for_unconfirmed_forwards() {
        let agg = with_forwards();
        let resend = |to: &str, now_ms: i64| AccountCommand::ResendMailForward {
            keys: vec![key(to, "d2")],
            now_ms,
        };
        let e = refused(&agg, resend("paula@example.com", NOW + 1_000));
        assert!(e.message.contains("try again in 59 s"), "{e}");
        let c = apply(
            &agg,
            resend("paula@example.com", NOW + FORWARD_RESEND_WAIT_MS),
        )
        .unwrap();
        assert!(matches!(&c.ops[..], [Op::SetForwardKey { key, .. }] if key.digest == "d2"));
        let e = refused(
            &agg,
            resend("archive@example.net", NOW + FORWARD_RESEND_WAIT_MS),
        );
        assert!(e.message.contains("already confirmed"), "{e}");
    }

    #[test]
    fn enabling_disabling_and_deleting_name_existing_forwards() {
        let agg = with_forwards();
        let c = apply(
            &agg,
            AccountCommand::DisableMailForward(vec![ForwardDisable {
                to: addr("archive@example.net"),
                reason: Some("leaving".into()),
            }]),
        )
        .unwrap();
        assert_eq!(
            c.ops,
            vec![Op::SetForwardEnabled {
                to: addr("archive@example.net"),
                enabled: false,
                reason: Some("leaving".into())
            }]
        );
        let e = refused(
            &agg,
            AccountCommand::EnableMailForward(vec![addr("nobody@example.net")]),
        );
        assert!(e.message.contains("not a forward"), "{e}");
        let c = apply(
            &agg,
            AccountCommand::DeleteMailForward(vec![addr("paula@example.com")]),
        )
        .unwrap();
        assert_eq!(c.ops, vec![Op::DeleteForward(addr("paula@example.com"))]);
        let c = apply(&agg, AccountCommand::DeleteZohoMailCopy(true)).unwrap();
        assert_eq!(c.ops, vec![Op::SetForwardDeleteCopy(true)]);
    }

    #[test]
    fn statuses() {
        let agg = with_forwards();
        assert_eq!(forward_status(&agg.forwards[0]), "UNCONFIRMED");
        assert_eq!(forward_status(&agg.forwards[1]), "ENABLED");
        assert!(agg.forwards[1].in_effect() && !agg.forwards[0].in_effect());
    }
}
