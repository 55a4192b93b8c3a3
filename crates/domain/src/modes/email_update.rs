//! `emailupdate`: make an address the account's primary one.

use serde_json::json;

use super::{Change, Op};
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
        return Err(RuleError::conflict(
            "emailAddress",
            format!("emailAddress {new} already belongs to another account"),
        ));
    }
    let before = json!({ "primaryEmailAddress": old.as_str() });
    let after = json!({ "primaryEmailAddress": new.as_str() });
    let ops = if new == old {
        Vec::new()
    } else {
        let add_new = !agg.has_address(&new);
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
