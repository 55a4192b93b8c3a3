//! `addsendmaildetails`, `deletesendmaildetails` and `verifysendmaildetails`: the
//! identities an account may send as.
//!
//! An identity for an address outside the account counts only once the address's owner
//! confirmed it (see [`crate::send_as`]): adding one mails a key to the address, made at
//! the edge (it is mailed after the change commits; the rules see its digest only), and
//! `verifysendmaildetails` gives it back. An admin may vouch for an address of the
//! organization's own domains instead.

use serde_json::{json, Value};

use super::{Change, IdentitySelector, NewIdentity, NewRelay, Op};
use crate::{
    AccountAggregate, EmailAddress, Identity, IdentityMode, IdentityState, InertReason, PendingKey,
    Relay, RuleError, Secret, SendMailId, SmtpConnection,
};

/// At most this many identities per account.
pub const MAX_IDENTITIES_PER_ACCOUNT: usize = 50;

/// How long a key mailed to an identity's address can be given back.
pub const IDENTITY_KEY_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// How long after a key was mailed to an address adding the identity again mails no new
/// one: re-adding cannot be used to flood someone's mailbox.
pub const IDENTITY_RESEND_WAIT_MS: i64 = 60 * 1000;

/// A key for an identity's address, as its digest, with the time it was made (to mail) or
/// given back (to check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityKey {
    pub digest: String,
    pub now_ms: i64,
}

fn audit_view(
    from: &EmailAddress,
    display: &str,
    mode: IdentityMode,
    relay: Option<&Relay>,
) -> Value {
    let mut v =
        json!({ "fromAddress": from.as_str(), "displayName": display, "mode": mode.as_str() });
    if let Some(r) = relay {
        v["serverName"] = json!(r.server_name);
        v["serverPort"] = json!(r.server_port);
        v["userName"] = json!(r.user_name);
        v["smtpConnection"] = json!(r.smtp_connection.as_str());
    }
    v
}

/// An identity as audit rows show it (never its relay password).
pub(super) fn identity_view(i: &Identity) -> Value {
    audit_view(&i.from_address, &i.display_name, i.mode, i.relay.as_ref())
}

impl NewIdentity {
    /// Checks one `sendMailDetails` element; `field` names it in errors
    /// (`sendMailDetails[0]`).
    pub fn new(
        field: &str,
        from_address: Option<EmailAddress>,
        display_name: String,
        mode: IdentityMode,
        relay: NewRelay,
    ) -> Result<Self, RuleError> {
        if from_address.is_none() && mode != IdentityMode::Mailbox {
            return Err(RuleError::missing(format!("{field}.fromAddress")));
        }
        if !(1..=100).contains(&display_name.chars().count()) {
            return Err(RuleError::invalid(
                format!("{field}.displayName"),
                format!("{field}.displayName must be 1 to 100 characters"),
            ));
        }
        let relay = relay_for(field, mode, relay)?;
        Ok(Self {
            from_address,
            display_name,
            mode,
            relay,
            key: None,
        })
    }

    /// Whether the identity names an address outside the account: its owner must
    /// confirm it, with a key mailed there.
    pub fn is_claim(&self) -> bool {
        self.mode.is_claim()
    }

    /// Whether it names a relay (`extfrom`): one to check once the change commits.
    pub fn has_relay(&self) -> bool {
        self.relay.is_some()
    }

    /// The address, when given (a mailbox identity may leave it to the primary).
    pub fn from_address(&self) -> Option<&EmailAddress> {
        self.from_address.as_ref()
    }

    /// Gives the identity the key the edge made for its address.
    pub fn with_key(mut self, key: IdentityKey) -> Self {
        self.key = Some(key);
        self
    }
}

/// The key to store for a claim: none once its owner is confirmed, and none while the
/// last one was mailed less than [`IDENTITY_RESEND_WAIT_MS`] ago (that one stays valid).
fn key_to_store(existing: Option<&Identity>, key: Option<IdentityKey>) -> Option<PendingKey> {
    let key = key?;
    if let Some(x) = existing.filter(|x| x.is_claim()) {
        if x.verification.owner_confirmed {
            return None;
        }
        if x.verification
            .pending_key
            .as_ref()
            .is_some_and(|p| key.now_ms - p.sent_ms < IDENTITY_RESEND_WAIT_MS)
        {
            return None;
        }
    }
    Some(PendingKey {
        digest: key.digest,
        expires_ms: key.now_ms + IDENTITY_KEY_TTL_MS,
        sent_ms: key.now_ms,
    })
}

/// Checks the relay fields against the mode: complete for `extfrom`, absent otherwise.
fn relay_for(
    field: &str,
    mode: IdentityMode,
    relay: NewRelay,
) -> Result<Option<(Relay, Secret)>, RuleError> {
    if mode != IdentityMode::ExtFrom {
        if relay.is_empty() {
            return Ok(None);
        }
        return Err(RuleError::invalid(
            field,
            format!(
                "{field}: serverName, serverPort, userName, password and smtpConnection are only allowed with mode extfrom"
            ),
        ));
    }
    let NewRelay {
        server_name,
        server_port,
        user_name,
        password,
        smtp_connection,
    } = relay;
    let need = |name: &str| RuleError::missing(format!("{field}.{name}"));
    let server_name = server_name.ok_or_else(|| need("serverName"))?;
    let server_port = server_port.ok_or_else(|| need("serverPort"))?;
    let user_name = user_name.ok_or_else(|| need("userName"))?;
    let password = password.ok_or_else(|| need("password"))?;
    let smtp_connection = smtp_connection.unwrap_or(SmtpConnection::Plain);
    Ok(Some((
        Relay {
            server_name,
            server_port,
            user_name,
            smtp_connection,
        },
        password,
    )))
}

/// Checks that the account may send as `from` with this mode.
fn check_address(
    agg: &AccountAggregate,
    field: &str,
    mode: IdentityMode,
    from: &EmailAddress,
) -> Result<(), RuleError> {
    let fail = |why: String| Err(RuleError::invalid(format!("{field}.fromAddress"), why));
    match mode {
        IdentityMode::Mailbox if !agg.has_address(from) => {
            fail(format!("{field}.fromAddress {from} is not an address of this account (mode mailbox)"))
        }
        IdentityMode::Alias if !agg.addresses.iter().any(|a| &a.address == from && !a.is_primary) => {
            fail(format!("{field}.fromAddress {from} is not an alias of this account (mode alias)"))
        }
        IdentityMode::Group => Err(RuleError::invalid(
            format!("{field}.mode"),
            format!("{field}.mode group is not supported yet: mailplane has no groups"),
        )),
        IdentityMode::ExtMailbox
            if !agg.user_accounts.iter().any(|a| a.external_address.as_ref() == Some(from)) =>
        {
            fail(format!(
                "{field}.fromAddress {from} is not the address of one of the user's external accounts (mode extmailbox)"
            ))
        }
        IdentityMode::ExtMailbox | IdentityMode::ExtFrom | IdentityMode::BackupAcc => {
            external_claim(agg, field, mode, from)
        }
        _ => Ok(()),
    }
}

/// An address outside the account's own: never in another organization's domain (one
/// answer whether or not the address exists there), never another account's address.
fn external_claim(
    agg: &AccountAggregate,
    field: &str,
    mode: IdentityMode,
    from: &EmailAddress,
) -> Result<(), RuleError> {
    if agg.in_foreign_domain(from) {
        return Err(RuleError::invalid(
            format!("{field}.fromAddress"),
            format!(
                "{field}.fromAddress {from} cannot be used with mode {}: its domain is hosted by another organization on this server",
                mode.as_str()
            ),
        ));
    }
    if agg.is_taken_elsewhere(from) {
        return Err(RuleError::conflict(
            format!("{field}.fromAddress"),
            format!("{field}.fromAddress {from} is an address of another account"),
        ));
    }
    Ok(())
}

pub(super) fn add(agg: &AccountAggregate, new: Vec<NewIdentity>) -> Result<Change, RuleError> {
    if new.is_empty() {
        return Err(RuleError::missing("sendMailDetails"));
    }
    let mut ops = Vec::with_capacity(new.len());
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut seen: Vec<EmailAddress> = Vec::new();
    let mut added = 0usize;
    for (i, n) in new.into_iter().enumerate() {
        let field = format!("sendMailDetails[{i}]");
        // Only a mailbox identity comes without an address: it defaults to the primary.
        let from = match n.from_address {
            Some(a) => a,
            None => agg
                .primary_address()
                .cloned()
                .ok_or_else(|| RuleError::missing(format!("{field}.fromAddress")))?,
        };
        if seen.contains(&from) {
            return Err(RuleError::invalid(
                format!("{field}.fromAddress"),
                format!("{field}.fromAddress {from} appears more than once in this request"),
            ));
        }
        check_address(agg, &field, n.mode, &from)?;
        let relay = n.relay;
        let existing = agg.identities.iter().find(|x| x.from_address == from);
        if existing.is_some_and(|x| is_protected(agg, x)) && n.mode != IdentityMode::Mailbox {
            return Err(RuleError::invalid(
                format!("{field}.mode"),
                format!("{field}.mode: the mailbox identity of the primary address can only be replaced by another mailbox identity"),
            ));
        }
        match existing {
            Some(x) => before.push(identity_view(x)),
            None => added += 1,
        }
        let mut view = audit_view(
            &from,
            &n.display_name,
            n.mode,
            relay.as_ref().map(|(r, _)| r),
        );
        let key = if n.mode.is_claim() {
            key_to_store(existing, n.key)
        } else {
            None
        };
        if key.is_some() {
            view["confirmationKey"] = json!("mailed");
        }
        after.push(view);
        seen.push(from.clone());
        ops.push(Op::UpsertIdentity {
            replaces: existing.map(|x| x.id),
            from_address: from,
            display_name: n.display_name,
            mode: n.mode,
            relay,
            key,
        });
    }
    if agg.identities.len() + added > MAX_IDENTITIES_PER_ACCOUNT {
        return Err(RuleError::invalid(
            "sendMailDetails",
            format!(
                "sendMailDetails would give the account more than {MAX_IDENTITIES_PER_ACCOUNT} identities (it has {})",
                agg.identities.len()
            ),
        ));
    }
    Ok(Change {
        ops,
        before: json!({ "sendMailDetails": before }),
        after: json!({ "sendMailDetails": after }),
    })
}

/// The identity every hosted account keeps: the mailbox identity of its primary address.
/// (After `emailupdate` the old primary's mailbox identity is the one that remains, and
/// the last mailbox identity is kept too: an account never ends up unable to send.)
fn is_protected(agg: &AccountAggregate, identity: &Identity) -> bool {
    identity.mode == IdentityMode::Mailbox && Some(&identity.from_address) == agg.primary_address()
}

pub(super) fn delete(agg: &AccountAggregate, sel: IdentitySelector) -> Result<Change, RuleError> {
    let (field, found) = match &sel {
        IdentitySelector::Id(id) => ("sendMailId", agg.identities.iter().find(|x| x.id == *id)),
        IdentitySelector::Address(a) => (
            "fromAddress",
            agg.identities.iter().find(|x| &x.from_address == a),
        ),
    };
    let Some(identity) = found else {
        return Err(RuleError::invalid(
            field,
            format!("{field} does not name an identity of this account"),
        ));
    };
    if is_protected(agg, identity) {
        return Err(RuleError::invalid(
            field,
            format!("{field}: the mailbox identity of the primary address cannot be deleted (replace it instead)"),
        ));
    }
    let mailboxes = agg
        .identities
        .iter()
        .filter(|x| x.mode == IdentityMode::Mailbox)
        .count();
    if identity.mode == IdentityMode::Mailbox && mailboxes == 1 {
        return Err(RuleError::invalid(
            field,
            format!("{field}: the account's last mailbox identity cannot be deleted"),
        ));
    }
    Ok(Change {
        ops: vec![Op::DeleteIdentity(identity.id)],
        before: json!({ "sendMailDetails": [identity_view(identity)] }),
        after: json!({ "sendMailDetails": [] }),
    })
}

/// `verifysendmaildetails`: confirms the owner of the identity's address with the key
/// mailed there, or, on the admin URL, an address of the organization's own domains
/// without one. Without a key, an identity whose owner is confirmed is left as it is: the
/// edge checks its relay again.
pub(super) fn verify(
    agg: &AccountAggregate,
    id: SendMailId,
    key: Option<IdentityKey>,
    by_admin: bool,
) -> Result<Change, RuleError> {
    let Some(identity) = agg.identities.iter().find(|x| x.id == id) else {
        return Err(RuleError::invalid(
            "sendMailId",
            "sendMailId does not name an identity of this account",
        ));
    };
    let from = &identity.from_address;
    if !identity.is_claim() {
        return Err(RuleError::invalid(
            "sendMailId",
            format!(
                "sendMailId names the {} identity of {from}, an address of the account itself: there is nothing to verify",
                identity.mode.as_str()
            ),
        ));
    }
    let confirmed = identity.verification.owner_confirmed;
    let unchanged = || Change {
        ops: Vec::new(),
        before: json!({ "sendMailDetails": [identity_view(identity)] }),
        after: json!({ "sendMailDetails": [identity_view(identity)], "check": "relay" }),
    };
    match key {
        Some(_) if confirmed => Err(RuleError::invalid(
            "confirmKey",
            format!("confirmKey: the owner of {from} is already confirmed"),
        )),
        Some(key) => {
            let pending = identity.verification.pending_key.as_ref().ok_or_else(|| {
                RuleError::invalid(
                    "confirmKey",
                    format!("confirmKey: no key awaits confirmation for {from}; add the identity again to mail a new one"),
                )
            })?;
            if key.now_ms > pending.expires_ms {
                return Err(RuleError::invalid(
                    "confirmKey",
                    format!("confirmKey: the key mailed to {from} has expired; add the identity again to mail a new one"),
                ));
            }
            if key.digest != pending.digest {
                return Err(RuleError::invalid(
                    "confirmKey",
                    format!("confirmKey does not match the key mailed to {from}"),
                ));
            }
            confirm(identity)
        }
        None if confirmed && identity.mode == IdentityMode::ExtFrom => Ok(unchanged()),
        None if confirmed => Err(RuleError::invalid(
            "sendMailId",
            format!("sendMailId: the owner of {from} is already confirmed, and a {} identity has no relay to check", identity.mode.as_str()),
        )),
        None if by_admin && agg.org_domains.iter().any(|d| d == from.domain()) => {
            confirm(identity)
        }
        None => Err(RuleError {
            kind: crate::RuleErrorKind::Missing,
            field: "confirmKey".into(),
            message: format!(
                "confirmKey is required: the owner of {from} confirms it with the key mailed there{}",
                if by_admin {
                    ""
                } else {
                    " (an admin of the organization can confirm an address of its own domains)"
                }
            ),
        }),
    }
}

/// The owner of the identity's address is confirmed, unless the address is out of the
/// account's reach or another account confirmed it first.
fn confirm(identity: &Identity) -> Result<Change, RuleError> {
    let from = &identity.from_address;
    match identity.state {
        IdentityState::Inert(InertReason::VerifiedElsewhere) => Err(RuleError::conflict(
            "sendMailId",
            format!("sendMailId: another account has confirmed its ownership of {from}"),
        )),
        IdentityState::Inert(_) => Err(RuleError::invalid(
            "sendMailId",
            format!(
                "sendMailId: {from} cannot be confirmed: {}",
                identity
                    .state
                    .reason()
                    .unwrap_or("it is out of this account's reach")
            ),
        )),
        IdentityState::Active | IdentityState::Unconfirmed => {
            let mut after = identity_view(identity);
            after["ownerConfirmed"] = json!(true);
            Ok(Change {
                ops: vec![Op::ConfirmIdentityOwner(identity.id)],
                before: json!({ "sendMailDetails": [identity_view(identity)] }),
                after: json!({ "sendMailDetails": [after] }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{addr, held_elsewhere, rebecca};
    use crate::*;

    fn relay(from: &str) -> NewRelay {
        NewRelay {
            server_name: Some("mail.zoho.com".into()),
            server_port: Some(465),
            user_name: Some(from.into()),
            password: Some(Secret::new("Smknel@88".into())),
            smtp_connection: Some(SmtpConnection::Plain),
        }
    }

    fn new(
        from: Option<&str>,
        mode: IdentityMode,
        relay: NewRelay,
    ) -> Result<NewIdentity, RuleError> {
        NewIdentity::new(
            "sendMailDetails[0]",
            from.map(addr),
            "Rebecca".into(),
            mode,
            relay,
        )
    }

    fn extfrom(from: &str) -> NewIdentity {
        new(Some(from), IdentityMode::ExtFrom, relay(from)).unwrap()
    }

    fn plain(from: &str, mode: IdentityMode) -> NewIdentity {
        new(Some(from), mode, NewRelay::default()).unwrap()
    }

    fn add(agg: &AccountAggregate, v: Vec<NewIdentity>) -> Result<Change, RuleError> {
        crate::apply(agg, AccountCommand::AddSendMailDetails(v))
    }

    #[test]
    fn extfrom_seed_sample_is_accepted_without_leaking_the_password() {
        let c = add(&rebecca(), vec![extfrom("rebecca@zylker.com")]).unwrap();
        assert!(matches!(
            &c.ops[0],
            Op::UpsertIdentity {
                replaces: None,
                relay: Some(_),
                ..
            }
        ));
        let audit = format!("{} {} {:?}", c.before, c.after, c.ops);
        assert!(!audit.contains("Smknel@88"), "{audit}");
    }

    #[test]
    fn construction_checks_what_must_and_must_not_be_present() {
        let mut r = relay("x@example.com");
        r.password = None;
        let e = new(Some("x@example.com"), IdentityMode::ExtFrom, r).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_str()),
            (RuleErrorKind::Missing, "sendMailDetails[0].password")
        );
        let e = new(None, IdentityMode::ExtFrom, relay("x@example.com")).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_str()),
            (RuleErrorKind::Missing, "sendMailDetails[0].fromAddress")
        );
        let e = new(
            Some("becky@zylker.com"),
            IdentityMode::Mailbox,
            relay("x@example.com"),
        )
        .unwrap_err();
        assert_eq!(e.kind, RuleErrorKind::Invalid);
        let long = NewIdentity::new(
            "f",
            None,
            "x".repeat(101),
            IdentityMode::Mailbox,
            NewRelay::default(),
        );
        assert_eq!(long.unwrap_err().field, "f.displayName");
        assert!(NewIdentity::new(
            "f",
            None,
            "x".repeat(100),
            IdentityMode::Mailbox,
            NewRelay::default()
        )
        .is_ok());
    }

    #[test]
    fn mailbox_defaults_to_primary_and_replaces_existing() {
        let n = new(None, IdentityMode::Mailbox, NewRelay::default()).unwrap();
        let c = add(&rebecca(), vec![n]).unwrap();
        assert!(
            matches!(&c.ops[0], Op::UpsertIdentity { replaces: Some(_), from_address, .. } if from_address.as_str() == "becky@zylker.com")
        );
    }

    #[test]
    fn mode_rules() {
        let agg = rebecca();
        assert!(add(
            &agg,
            vec![plain("rebecca.alias@zylker.com", IdentityMode::Alias)]
        )
        .is_ok());
        assert!(add(&agg, vec![plain("becky@zylker.com", IdentityMode::Alias)]).is_err());
        assert!(add(&agg, vec![plain("other@zylker.com", IdentityMode::Mailbox)]).is_err());
        assert!(add(
            &agg,
            vec![plain("rebecca@pop.example.com", IdentityMode::ExtMailbox)]
        )
        .is_ok());
        assert!(add(
            &agg,
            vec![plain("nobody@example.com", IdentityMode::ExtMailbox)]
        )
        .is_err());
        assert!(add(&agg, vec![plain("team@zylker.com", IdentityMode::Group)]).is_err());
        assert!(add(
            &agg,
            vec![plain("backup@example.com", IdentityMode::BackupAcc)]
        )
        .is_ok());
        let taken = held_elsewhere(agg.clone(), "admin@zylker.com");
        let e = add(&taken, vec![extfrom("admin@zylker.com")]).unwrap_err();
        assert_eq!(e.kind, RuleErrorKind::Conflict);
    }

    /// `victim.example` is hosted by organization 99; `gmail.example` by nobody here.
    fn with_facts(
        domain_org: Option<u64>,
        holder: Option<u64>,
        claims: &[(u64, u64)],
        a: &str,
    ) -> AccountAggregate {
        let mut agg = rebecca();
        agg.claims.push(AddressFacts {
            address: addr(a),
            holder: holder.map(|h| AccountId::new(h).unwrap()),
            domain_org: domain_org.map(|z| Zoid::new(z).unwrap()),
            claims: claims
                .iter()
                .map(|&(a, z)| Claim {
                    account: AccountId::new(a).unwrap(),
                    zoid: Zoid::new(z).unwrap(),
                    confirmed: false,
                })
                .collect(),
        });
        agg
    }

    #[test]
    fn external_addresses_in_another_organizations_domain_are_refused_alike() {
        for mode in [IdentityMode::ExtFrom, IdentityMode::BackupAcc] {
            let n = |a: &str| match mode {
                IdentityMode::ExtFrom => extfrom(a),
                _ => plain(a, mode),
            };
            // An existing address of the other organization and an absent one: one answer.
            let held = with_facts(Some(99), Some(7), &[], "ceo@victim.example");
            let absent = with_facts(Some(99), None, &[], "nobody@victim.example");
            let e1 = add(&held, vec![n("ceo@victim.example")]).unwrap_err();
            let e2 = add(&absent, vec![n("nobody@victim.example")]).unwrap_err();
            assert_eq!(
                (e1.kind, e2.kind),
                (RuleErrorKind::Invalid, RuleErrorKind::Invalid)
            );
            assert_eq!(
                e1.message.replace("ceo@", "nobody@"),
                e2.message,
                "the two refusals differ only in the address"
            );
            // Its own organization's domain stays allowed while nobody holds the address.
            let own = with_facts(Some(12345678), None, &[], "rebecca@zylker.com");
            assert!(add(&own, vec![n("rebecca@zylker.com")]).is_ok());
        }
    }

    fn key(digest: &str, now_ms: i64) -> IdentityKey {
        IdentityKey {
            digest: digest.into(),
            now_ms,
        }
    }

    /// Rebecca with an `extfrom` identity (id 2) for `a`, its key `k` mailed at 1000.
    fn with_claim(a: &str, confirmed: bool, state: IdentityState) -> AccountAggregate {
        let mut agg = rebecca();
        agg.identities.push(Identity {
            id: SendMailId::new(2).unwrap(),
            from_address: addr(a),
            display_name: "R".into(),
            mode: IdentityMode::ExtFrom,
            relay: None,
            state,
            verification: Verification {
                owner_confirmed: confirmed,
                pending_key: Some(PendingKey {
                    digest: "k".into(),
                    expires_ms: 1000 + IDENTITY_KEY_TTL_MS,
                    sent_ms: 1000,
                }),
                relay: RelayCheck::PENDING,
            },
        });
        agg
    }

    fn verify(
        agg: &AccountAggregate,
        k: Option<IdentityKey>,
        by_admin: bool,
    ) -> Result<Change, RuleError> {
        let id = SendMailId::new(2).unwrap();
        crate::apply(
            agg,
            AccountCommand::VerifySendMailDetails {
                id,
                key: k,
                by_admin,
            },
        )
    }

    #[test]
    fn a_claim_gets_a_key_unless_confirmed_or_mailed_a_minute_ago() {
        let n = extfrom("rebecca@gmail.example").with_key(key("new", 5000));
        let c = add(&rebecca(), vec![n.clone()]).unwrap();
        assert!(
            matches!(&c.ops[0], Op::UpsertIdentity { key: Some(k), .. } if k.digest == "new" && k.expires_ms == 5000 + IDENTITY_KEY_TTL_MS)
        );
        assert_eq!(c.after["sendMailDetails"][0]["confirmationKey"], "mailed");
        // Re-added within the minute: the mailed key stays the one to give back.
        let pending = with_claim("rebecca@gmail.example", false, IdentityState::Unconfirmed);
        let c = add(&pending, vec![n.clone()]).unwrap();
        assert!(matches!(
            &c.ops[0],
            Op::UpsertIdentity {
                key: None,
                replaces: Some(_),
                ..
            }
        ));
        let later =
            extfrom("rebecca@gmail.example").with_key(key("new", 1000 + IDENTITY_RESEND_WAIT_MS));
        let c = add(&pending, vec![later.clone()]).unwrap();
        assert!(matches!(&c.ops[0], Op::UpsertIdentity { key: Some(_), .. }));
        let confirmed = with_claim("rebecca@gmail.example", true, IdentityState::Active);
        let c = add(&confirmed, vec![later]).unwrap();
        assert!(matches!(&c.ops[0], Op::UpsertIdentity { key: None, .. }));
        // An identity of the account's own address never gets one.
        let own = plain("rebecca.alias@zylker.com", IdentityMode::Alias).with_key(key("x", 1));
        let c = add(&rebecca(), vec![own]).unwrap();
        assert!(matches!(&c.ops[0], Op::UpsertIdentity { key: None, .. }));
    }

    #[test]
    fn the_key_given_back_confirms_the_owner_once() {
        let agg = with_claim("rebecca@gmail.example", false, IdentityState::Unconfirmed);
        let c = verify(&agg, Some(key("k", 2000)), false).unwrap();
        assert_eq!(
            c.ops,
            vec![Op::ConfirmIdentityOwner(SendMailId::new(2).unwrap())]
        );
        let e = verify(&agg, Some(key("wrong", 2000)), false).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_str()),
            (RuleErrorKind::Invalid, "confirmKey")
        );
        let e = verify(&agg, Some(key("k", 1001 + IDENTITY_KEY_TTL_MS)), false).unwrap_err();
        assert!(e.message.contains("expired"), "{}", e.message);
        let e = verify(&agg, None, false).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_str()),
            (RuleErrorKind::Missing, "confirmKey")
        );
        let done = with_claim("rebecca@gmail.example", true, IdentityState::Active);
        let e = verify(&done, Some(key("k", 2000)), false).unwrap_err();
        assert!(e.message.contains("already confirmed"), "{}", e.message);
        // Without a key, a confirmed extfrom identity is left for its relay check.
        assert_eq!(verify(&done, None, false).unwrap().ops, vec![]);
        let taken = with_claim(
            "rebecca@gmail.example",
            false,
            IdentityState::Inert(InertReason::VerifiedElsewhere),
        );
        let e = verify(&taken, Some(key("k", 2000)), false).unwrap_err();
        assert_eq!(e.kind, RuleErrorKind::Conflict);
    }

    #[test]
    fn an_admin_vouches_for_the_organizations_own_domains_only() {
        let own = with_claim("rebecca@zylker.com", false, IdentityState::Unconfirmed);
        assert_eq!(verify(&own, None, true).unwrap().ops.len(), 1);
        let e = verify(&own, None, false).unwrap_err();
        assert_eq!(e.field, "confirmKey");
        let outside = with_claim("rebecca@gmail.example", false, IdentityState::Unconfirmed);
        let e = verify(&outside, None, true).unwrap_err();
        assert_eq!(e.field, "confirmKey");
        let e = verify(&rebecca(), None, true).unwrap_err();
        assert_eq!(e.field, "sendMailId");
    }

    #[test]
    fn duplicates_in_one_request_and_the_cap_are_refused() {
        let agg = rebecca();
        assert!(add(
            &agg,
            vec![extfrom("a@example.com"), extfrom("A@example.com")]
        )
        .is_err());
        let many = (0..MAX_IDENTITIES_PER_ACCOUNT)
            .map(|i| extfrom(&format!("x{i}@example.com")))
            .collect();
        let e = add(&agg, many).unwrap_err();
        assert_eq!(e.field, "sendMailDetails");
        let fits = (0..MAX_IDENTITIES_PER_ACCOUNT - 1)
            .map(|i| extfrom(&format!("x{i}@example.com")))
            .collect();
        assert!(add(&agg, fits).is_ok());
    }

    #[test]
    fn primary_mailbox_identity_keeps_its_mode() {
        let e = add(&rebecca(), vec![extfrom("becky@zylker.com")]).unwrap_err();
        assert_eq!(e.field, "sendMailDetails[0].mode");
    }

    #[test]
    fn last_mailbox_identity_cannot_be_deleted() {
        // After emailupdate the primary has no identity; the old primary's is the last.
        let mut agg = rebecca();
        agg.addresses[0].is_primary = false;
        agg.addresses[1].is_primary = true;
        let sel = IdentitySelector::Address(addr("becky@zylker.com"));
        let e = crate::apply(&agg, AccountCommand::DeleteSendMailDetails(sel)).unwrap_err();
        assert!(e.message.contains("last mailbox identity"), "{}", e.message);
    }

    #[test]
    fn primary_mailbox_identity_cannot_be_deleted() {
        let agg = rebecca();
        let sel = IdentitySelector::Address(addr("becky@zylker.com"));
        assert!(crate::apply(&agg, AccountCommand::DeleteSendMailDetails(sel)).is_err());
        let sel = IdentitySelector::Id(SendMailId::new(99).unwrap());
        assert!(crate::apply(&agg, AccountCommand::DeleteSendMailDetails(sel)).is_err());
    }
}
