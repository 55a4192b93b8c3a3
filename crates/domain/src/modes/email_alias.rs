//! `addEmailAlias` and `deleteEmailAlias`: the account's own addresses besides its primary
//! one. An alias is an address of the account like the primary (mail to it arrives in the
//! account, the account may send as it), so the same rules hold: in one of the
//! organization's domains, and no other account's anywhere on the server.

use serde_json::json;

use super::send_mail::identity_view;
use super::{Change, Op, MAX_ADDRESSES_PER_ACCOUNT};
use crate::{AccountAggregate, EmailAddress, Identity, IdentityMode, RuleError};

const FIELD: &str = "emailAlias";

/// A list of addresses that names each once, and at least one.
fn once_each(list: &[EmailAddress]) -> Result<(), RuleError> {
    if list.is_empty() {
        return Err(RuleError::missing(FIELD));
    }
    for (i, a) in list.iter().enumerate() {
        if list[..i].contains(a) {
            return Err(RuleError::invalid(
                FIELD,
                format!("emailAlias {a} appears more than once in this request"),
            ));
        }
    }
    Ok(())
}

fn listed(list: &[EmailAddress]) -> Vec<&str> {
    list.iter().map(EmailAddress::as_str).collect()
}

pub(super) fn add(agg: &AccountAggregate, new: Vec<EmailAddress>) -> Result<Change, RuleError> {
    once_each(&new)?;
    for a in &new {
        // The domain is checked first: an address in another organization's domain gets
        // one answer, whether or not that organization has it.
        if !agg.org_domains.iter().any(|d| d == a.domain()) {
            return Err(RuleError::invalid(
                FIELD,
                format!(
                    "emailAlias {a} must be in one of the organization's domains ({})",
                    agg.org_domains.join(", ")
                ),
            ));
        }
        if agg.has_address(a) {
            return Err(RuleError::conflict(
                FIELD,
                format!("emailAlias {a} is already an address of this account"),
            ));
        }
        if agg.is_taken_elsewhere(a) {
            return Err(RuleError::address_taken(FIELD, a));
        }
    }
    if agg.addresses.len() + new.len() > MAX_ADDRESSES_PER_ACCOUNT {
        return Err(RuleError::invalid(
            FIELD,
            format!(
                "emailAlias would give the account more than {MAX_ADDRESSES_PER_ACCOUNT} addresses (it has {}, the primary included)",
                agg.addresses.len()
            ),
        ));
    }
    Ok(Change {
        before: json!({ "emailAlias": [] }),
        after: json!({ "emailAlias": listed(&new) }),
        ops: new.into_iter().map(Op::AddAlias).collect(),
    })
}

pub(super) fn delete(agg: &AccountAggregate, gone: Vec<EmailAddress>) -> Result<Change, RuleError> {
    once_each(&gone)?;
    for a in &gone {
        match agg.addresses.iter().find(|x| &x.address == a) {
            // Whether another account has it is not this request's business: one answer.
            None => {
                return Err(RuleError::invalid(
                    FIELD,
                    format!("emailAlias {a} is not an alias of this account"),
                ))
            }
            Some(x) if x.is_primary => {
                return Err(RuleError::invalid(
                    FIELD,
                    format!(
                        "emailAlias {a} is the account's primary address and cannot be deleted; make another address the primary first (emailupdate)"
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    // A `mailbox` or `alias` identity names an address of the account itself, which is
    // what lets the account send as it (see `send_as`): once the address is gone, such
    // an identity would be a claim on an address nobody holds. It goes with its alias.
    // Identities of the other modes are claims already, settled at every lookup by the
    // ownership rules, and stay.
    let (going, staying): (Vec<&Identity>, Vec<&Identity>) = agg.identities.iter().partition(|i| {
        matches!(i.mode, IdentityMode::Mailbox | IdentityMode::Alias)
            && gone.contains(&i.from_address)
    });
    // The rule of `deletesendmaildetails`: an account keeps a mailbox identity. After
    // `emailupdate` the old primary, now an alias, may hold the only one.
    if let Some(last) = going.iter().find(|i| i.mode == IdentityMode::Mailbox) {
        if !staying.iter().any(|i| i.mode == IdentityMode::Mailbox) {
            return Err(RuleError::invalid(
                FIELD,
                format!(
                    "emailAlias {}: its mailbox identity is the account's last one; add a mailbox identity for the primary address (addsendmaildetails) before deleting this alias",
                    last.from_address
                ),
            ));
        }
    }
    let mut ops: Vec<Op> = gone.iter().cloned().map(Op::DeleteAlias).collect();
    ops.extend(going.iter().map(|i| Op::DeleteIdentity(i.id)));
    let mut before = json!({ "emailAlias": listed(&gone) });
    let mut after = json!({ "emailAlias": [] });
    if !going.is_empty() {
        before["sendMailDetails"] = going.iter().map(|i| identity_view(i)).collect();
        after["sendMailDetails"] = json!([]);
    }
    Ok(Change { ops, before, after })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{addr, held_elsewhere, rebecca};
    use crate::*;

    fn add(agg: &AccountAggregate, list: &[&str]) -> Result<Change, RuleError> {
        crate::apply(
            agg,
            AccountCommand::AddEmailAlias(list.iter().map(|a| addr(a)).collect()),
        )
    }

    fn delete(agg: &AccountAggregate, list: &[&str]) -> Result<Change, RuleError> {
        crate::apply(
            agg,
            AccountCommand::DeleteEmailAlias(list.iter().map(|a| addr(a)).collect()),
        )
    }

    fn identity(id: u64, from: &str, mode: IdentityMode) -> Identity {
        Identity {
            id: SendMailId::new(id).unwrap(),
            from_address: addr(from),
            display_name: "R".into(),
            mode,
            relay: None,
            state: IdentityState::Active,
            verification: Verification::OWN,
        }
    }

    fn refused(r: Result<Change, RuleError>) -> (RuleErrorKind, String) {
        let e = r.unwrap_err();
        assert_eq!(e.field, "emailAlias", "{}", e.message);
        (e.kind, e.message)
    }

    #[test]
    fn aliases_are_added_in_the_order_given_and_audited() {
        let c = add(&rebecca(), &["r1@zylker.com", "r2@zylker.com"]).unwrap();
        assert_eq!(
            c.ops,
            vec![
                Op::AddAlias(addr("r1@zylker.com")),
                Op::AddAlias(addr("r2@zylker.com"))
            ]
        );
        assert_eq!(
            c.after,
            serde_json::json!({ "emailAlias": ["r1@zylker.com", "r2@zylker.com"] })
        );
    }

    #[test]
    fn an_alias_is_in_the_organizations_domains_and_nobody_elses() {
        let (kind, message) = refused(add(&rebecca(), &["becky@example.com"]));
        assert_eq!(kind, RuleErrorKind::Invalid);
        assert!(message.contains("zylker.com"), "{message}");
        let taken = held_elsewhere(rebecca(), "admin@zylker.com");
        let (kind, message) = refused(add(&taken, &["admin@zylker.com"]));
        assert_eq!(kind, RuleErrorKind::Conflict);
        assert_eq!(
            message,
            "emailAlias admin@zylker.com already belongs to another account"
        );
        // Its own addresses, primary or alias: a conflict that says whose.
        for own in ["becky@zylker.com", "rebecca.alias@zylker.com"] {
            let (kind, message) = refused(add(&rebecca(), &[own]));
            assert_eq!(kind, RuleErrorKind::Conflict);
            assert!(
                message.contains("already an address of this account"),
                "{message}"
            );
        }
    }

    /// An address in another organization's domain is refused for its domain, in the same
    /// words whether that organization has the address or not.
    #[test]
    fn another_organizations_domain_tells_nothing_of_its_addresses() {
        let mut held = rebecca();
        held.claims.push(AddressFacts {
            address: addr("ceo@victim.example"),
            holder: Some(AccountId::new(7).unwrap()),
            domain_org: Some(Zoid::new(99).unwrap()),
            claims: vec![],
        });
        let (k1, m1) = refused(add(&held, &["ceo@victim.example"]));
        let (k2, m2) = refused(add(&rebecca(), &["nobody@victim.example"]));
        assert_eq!((k1, k2), (RuleErrorKind::Invalid, RuleErrorKind::Invalid));
        assert_eq!(m1.replace("ceo@", "nobody@"), m2);
    }

    #[test]
    fn duplicates_and_an_empty_list_are_refused() {
        let (kind, _) = refused(add(&rebecca(), &["r1@zylker.com", "R1@zylker.com"]));
        assert_eq!(kind, RuleErrorKind::Invalid);
        let (kind, _) = refused(add(&rebecca(), &[]));
        assert_eq!(kind, RuleErrorKind::Missing);
    }

    #[test]
    fn at_most_fifty_addresses_the_primary_included() {
        // Rebecca has two addresses: 48 more fit, 49 do not.
        let names: Vec<String> = (0..49).map(|i| format!("a{i}@zylker.com")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (kind, message) = refused(add(&rebecca(), &names));
        assert_eq!(kind, RuleErrorKind::Invalid);
        assert!(message.contains("50"), "{message}");
        assert_eq!(add(&rebecca(), &names[..48]).unwrap().ops.len(), 48);
    }

    #[test]
    fn deleting_an_alias_takes_its_mailbox_and_alias_identities_with_it() {
        let mut agg = rebecca();
        agg.identities.extend([
            identity(2, "rebecca.alias@zylker.com", IdentityMode::Alias),
            identity(3, "rebecca.alias@zylker.com", IdentityMode::Mailbox),
            identity(4, "elsewhere@example.net", IdentityMode::BackupAcc),
        ]);
        let c = delete(&agg, &["Rebecca.Alias@zylker.com"]).unwrap();
        assert_eq!(
            c.ops,
            vec![
                Op::DeleteAlias(addr("rebecca.alias@zylker.com")),
                Op::DeleteIdentity(SendMailId::new(2).unwrap()),
                Op::DeleteIdentity(SendMailId::new(3).unwrap()),
            ]
        );
        assert_eq!(
            c.before["emailAlias"],
            serde_json::json!(["rebecca.alias@zylker.com"])
        );
        assert_eq!(c.before["sendMailDetails"].as_array().unwrap().len(), 2);
        assert_eq!(
            c.after,
            serde_json::json!({"emailAlias": [], "sendMailDetails": []})
        );
        // Without identities of its own, only the address goes.
        let c = delete(&rebecca(), &["rebecca.alias@zylker.com"]).unwrap();
        assert_eq!(
            c.ops,
            vec![Op::DeleteAlias(addr("rebecca.alias@zylker.com"))]
        );
        assert_eq!(c.after, serde_json::json!({"emailAlias": []}));
    }

    #[test]
    fn the_primary_and_addresses_not_the_accounts_are_refused() {
        let (kind, message) = refused(delete(&rebecca(), &["becky@zylker.com"]));
        assert_eq!(kind, RuleErrorKind::Invalid);
        assert!(message.contains("primary address"), "{message}");
        // Another account's address and one nobody has: the same answer.
        let taken = held_elsewhere(rebecca(), "admin@zylker.com");
        let (k1, m1) = refused(delete(&taken, &["admin@zylker.com"]));
        let (k2, m2) = refused(delete(&rebecca(), &["nobody@zylker.com"]));
        assert_eq!((k1, k2), (RuleErrorKind::Invalid, RuleErrorKind::Invalid));
        assert_eq!(m1.replace("admin@", "nobody@"), m2);
        let (kind, _) = refused(delete(
            &rebecca(),
            &["rebecca.alias@zylker.com", "rebecca.alias@zylker.com"],
        ));
        assert_eq!(kind, RuleErrorKind::Invalid);
        // All or nothing: one bad address refuses the request.
        assert!(delete(
            &rebecca(),
            &["rebecca.alias@zylker.com", "becky@zylker.com"]
        )
        .is_err());
    }

    /// After `emailupdate` the old primary is an alias holding the account's only mailbox
    /// identity: it cannot go until the new primary has one.
    #[test]
    fn the_alias_with_the_last_mailbox_identity_stays() {
        let mut agg = rebecca();
        agg.addresses[0].is_primary = false;
        agg.addresses[1].is_primary = true;
        let (kind, message) = refused(delete(&agg, &["becky@zylker.com"]));
        assert_eq!(kind, RuleErrorKind::Invalid);
        assert!(message.contains("last"), "{message}");
        agg.identities.push(identity(
            5,
            "rebecca.alias@zylker.com",
            IdentityMode::Mailbox,
        ));
        let c = delete(&agg, &["becky@zylker.com"]).unwrap();
        assert!(c
            .ops
            .contains(&Op::DeleteIdentity(SendMailId::new(1).unwrap())));
    }
}
