//! `emailupdate`: make an address the account's primary one.

use serde_json::json;

use super::{Change, Op, MAX_ADDRESSES_PER_ACCOUNT};
use crate::{AccountAggregate, EmailAddress, RuleError};

pub(super) fn apply(agg: &AccountAggregate, new: EmailAddress) -> Result<Change, RuleError> {
    let old = agg
        .primary_address()
        .cloned()
        .ok_or_else(|| RuleError::invalid("accountId", "the account has no primary address"))?;
    if !agg.org_domains.iter().any(|d| d == new.domain()) {
        return Err(RuleError::invalid(
            "emailAddress",
            format!(
                "emailAddress must be in one of the organization's domains ({})",
                agg.org_domains.join(", ")
            ),
        ));
    }
    if agg.is_taken_elsewhere(&new) {
        return Err(RuleError::address_taken("emailAddress", &new));
    }
    let before = json!({ "primaryEmailAddress": old.as_str() });
    let after = json!({ "primaryEmailAddress": new.as_str() });
    let ops = if new == old {
        Vec::new()
    } else {
        let add_new = !agg.has_address(&new);
        // The old primary stays as an alias, so a new address is one more.
        if add_new && agg.addresses.len() >= MAX_ADDRESSES_PER_ACCOUNT {
            return Err(RuleError::invalid(
                "emailAddress",
                format!(
                    "emailAddress {new} would give the account more than {MAX_ADDRESSES_PER_ACCOUNT} addresses (it has {}); delete an alias first",
                    agg.addresses.len()
                ),
            ));
        }
        vec![Op::SetPrimaryAddress { new, old, add_new }]
    };
    Ok(Change { ops, before, after })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{addr, held_elsewhere, rebecca};
    use crate::*;

    fn update(agg: &AccountAggregate, to: &str) -> Result<Change, RuleError> {
        crate::apply(agg, AccountCommand::EmailUpdate(addr(to)))
    }

    #[test]
    fn new_address_becomes_primary_and_old_stays() {
        let c = update(&rebecca(), "rebecca@zylker.com").unwrap();
        assert_eq!(
            c.ops,
            vec![Op::SetPrimaryAddress {
                new: addr("rebecca@zylker.com"),
                old: addr("becky@zylker.com"),
                add_new: true
            }]
        );
    }

    #[test]
    fn alias_swaps_and_current_primary_changes_nothing() {
        let c = update(&rebecca(), "rebecca.alias@zylker.com").unwrap();
        assert!(matches!(
            c.ops[0],
            Op::SetPrimaryAddress { add_new: false, .. }
        ));
        assert!(update(&rebecca(), "becky@zylker.com")
            .unwrap()
            .ops
            .is_empty());
    }

    #[test]
    fn a_new_address_past_the_bound_is_refused_but_a_swap_is_not() {
        let mut agg = rebecca();
        for i in agg.addresses.len()..MAX_ADDRESSES_PER_ACCOUNT {
            agg.addresses.push(AccountAddress {
                address: addr(&format!("alias{i}@zylker.com")),
                is_primary: false,
            });
        }
        let e = update(&agg, "rebecca@zylker.com").unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_str()),
            (RuleErrorKind::Invalid, "emailAddress")
        );
        assert!(e.message.contains("50"), "{}", e.message);
        // Making one of its own aliases the primary adds nothing.
        assert!(update(&agg, "alias7@zylker.com").is_ok());
        agg.addresses.pop();
        assert!(update(&agg, "rebecca@zylker.com").is_ok());
    }

    #[test]
    fn foreign_domain_is_invalid_and_taken_address_conflicts() {
        let e = update(&rebecca(), "rebecca@example.com").unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_str()),
            (RuleErrorKind::Invalid, "emailAddress")
        );
        let agg = held_elsewhere(rebecca(), "admin@zylker.com");
        let e = update(&agg, "admin@zylker.com").unwrap_err();
        assert_eq!(e.kind, RuleErrorKind::Conflict);
    }
}
