//! `updatePersonalInfo` (the user's names) and `displaynameemailupdate` (the name a
//! `mailbox` identity of the account sends with).

use serde_json::{json, Map, Value};

use super::{Change, Op, MAX_IDENTITIES_PER_ACCOUNT};
use crate::{AccountAggregate, EmailAddress, IdentityMode, RuleError};

/// The names `updatePersonalInfo` sets; at least one is present (the parser's check),
/// each already of its allowed length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalInfo {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
}

/// The user's names change; the account's identities keep theirs (an identity's display
/// name is what its mail says, which `displaynameemailupdate` and `addsendmaildetails`
/// set).
pub(super) fn update(agg: &AccountAggregate, info: PersonalInfo) -> Change {
    let (mut before, mut after) = (Map::new(), Map::new());
    let given = [
        ("firstName", &agg.user_first_name, &info.first_name),
        ("lastName", &agg.user_last_name, &info.last_name),
        ("displayName", &agg.user_display_name, &info.display_name),
    ];
    for (key, old, new) in given {
        if let Some(new) = new {
            before.insert(key.into(), json!(old));
            after.insert(key.into(), json!(new));
        }
    }
    Change {
        ops: vec![Op::SetPersonalInfo(info)],
        before: Value::Object(before),
        after: Value::Object(after),
    }
}

/// The account sends as `address` with `display_name`: the `mailbox` identity of the
/// address gets the name, or is added if the account has none for it (an identity of
/// another mode for the address becomes the `mailbox` one, keeping its `sendMailId`).
/// Zoho's page calls the address the user's default one; the address must be one of the
/// account's own (primary or alias).
pub(super) fn display_name_email(
    agg: &AccountAggregate,
    display_name: String,
    address: EmailAddress,
) -> Result<Change, RuleError> {
    if !agg.addresses.iter().any(|a| a.address == address) {
        return Err(RuleError::invalid(
            "emailAddress",
            format!("emailAddress {address} is not an address of this account"),
        ));
    }
    let existing = agg.identities.iter().find(|i| i.from_address == address);
    if existing.is_none() && agg.identities.len() >= MAX_IDENTITIES_PER_ACCOUNT {
        return Err(RuleError::invalid(
            "emailAddress",
            format!(
                "emailAddress would give the account more than {MAX_IDENTITIES_PER_ACCOUNT} identities"
            ),
        ));
    }
    let before = match existing {
        Some(i) => json!({
            "fromAddress": address.as_str(),
            "displayName": i.display_name,
            "mode": i.mode.as_str(),
        }),
        None => json!({}),
    };
    let after = json!({
        "fromAddress": address.as_str(),
        "displayName": display_name,
        "mode": IdentityMode::Mailbox.as_str(),
    });
    Ok(Change {
        ops: vec![Op::UpsertIdentity {
            replaces: existing.map(|i| i.id),
            from_address: address,
            display_name,
            mode: IdentityMode::Mailbox,
            relay: None,
            key: None,
        }],
        before,
        after,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::fixtures::{addr, rebecca};
    use super::*;
    use crate::*;

    pub(in crate::modes) fn names(
        first: Option<&str>,
        last: Option<&str>,
        display: Option<&str>,
    ) -> PersonalInfo {
        PersonalInfo {
            first_name: first.map(Into::into),
            last_name: last.map(Into::into),
            display_name: display.map(Into::into),
        }
    }

    #[test]
    fn personal_info_sets_the_names_given_and_audits_only_them() {
        let info = names(None, Some("Anderson"), Some("Becky A."));
        let c = apply(&rebecca(), AccountCommand::UpdatePersonalInfo(info.clone())).unwrap();
        assert_eq!(c.ops, vec![Op::SetPersonalInfo(info)]);
        assert_eq!(c.before, json!({"lastName": "", "displayName": "Rebecca"}));
        assert_eq!(
            c.after,
            json!({"lastName": "Anderson", "displayName": "Becky A."})
        );
    }

    #[test]
    fn an_identity_of_the_address_is_renamed_and_becomes_the_mailbox_one() {
        let agg = rebecca();
        let cmd = |a: &str| AccountCommand::DisplayNameEmailUpdate {
            display_name: "Rebecca Anderson".into(),
            address: addr(a),
        };
        let c = apply(&agg, cmd("becky@zylker.com")).unwrap();
        assert_eq!(
            c.ops,
            vec![Op::UpsertIdentity {
                replaces: Some(agg.identities[0].id),
                from_address: addr("becky@zylker.com"),
                display_name: "Rebecca Anderson".into(),
                mode: IdentityMode::Mailbox,
                relay: None,
                key: None,
            }]
        );
        assert_eq!(c.before["displayName"], "Rebecca");
        // An alias without an identity gets one.
        let c = apply(&agg, cmd("rebecca.alias@zylker.com")).unwrap();
        assert!(matches!(
            &c.ops[..],
            [Op::UpsertIdentity {
                replaces: None,
                mode: IdentityMode::Mailbox,
                ..
            }]
        ));
        assert_eq!(c.before, json!({}));
        // Another account's address, or anybody's outside: not this account's.
        for foreign in ["admin@zylker.com", "rebecca@pop.example.com"] {
            let e = apply(&agg, cmd(foreign)).unwrap_err();
            assert_eq!(e.field, "emailAddress");
            assert!(e.message.contains("not an address of this account"), "{e}");
        }
    }

    #[test]
    fn a_new_identity_counts_against_the_limit() {
        let mut agg = rebecca();
        let one = agg.identities[0].clone();
        agg.identities = (0..MAX_IDENTITIES_PER_ACCOUNT)
            .map(|n| Identity {
                id: SendMailId::new(n as u64 + 1).unwrap(),
                from_address: addr(&format!("x{n}@example.com")),
                ..one.clone()
            })
            .collect();
        let cmd = AccountCommand::DisplayNameEmailUpdate {
            display_name: "R".into(),
            address: addr("rebecca.alias@zylker.com"),
        };
        assert_eq!(apply(&agg, cmd).unwrap_err().field, "emailAddress");
    }
}
