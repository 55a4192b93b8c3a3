//! `enableMailAccount`, `disableMailAccount`, `updateOutgoingStatus`, `updateIncomingStatus`,
//! `updateIMAPStatus`, `updatePOPStatus`: independent flags of the account. Setting a flag to the value it has is a success that
//! changes nothing (the request is idempotent).

use serde_json::json;

use super::{Change, Op};
use crate::AccountAggregate;

pub(super) fn enabled(agg: &AccountAggregate, enabled: bool) -> Change {
    Change {
        ops: vec![Op::SetEnabled(enabled)],
        before: json!({ "enabled": agg.account.enabled }),
        after: json!({ "enabled": enabled }),
    }
}

pub(super) fn outgoing(agg: &AccountAggregate, blocked: bool) -> Change {
    Change {
        ops: vec![Op::SetOutgoingBlocked(blocked)],
        before: json!({ "outgoingBlocked": agg.account.outgoing_blocked }),
        after: json!({ "outgoingBlocked": blocked }),
    }
}

pub(super) fn incoming(agg: &AccountAggregate, blocked: bool) -> Change {
    Change {
        ops: vec![Op::SetIncomingBlocked(blocked)],
        before: json!({ "incomingBlocked": agg.account.incoming_blocked }),
        after: json!({ "incomingBlocked": blocked }),
    }
}

/// `updateIMAPStatus`: whether the account's mailbox may be read over IMAP.
pub(super) fn imap(agg: &AccountAggregate, enabled: bool) -> Change {
    Change {
        ops: vec![Op::SetImapEnabled(enabled)],
        before: json!({ "imapAccessEnabled": agg.account.imap_enabled }),
        after: json!({ "imapAccessEnabled": enabled }),
    }
}

/// `updatePOPStatus`: whether the account's mailbox may be read over POP3.
pub(super) fn pop(agg: &AccountAggregate, enabled: bool) -> Change {
    Change {
        ops: vec![Op::SetPopEnabled(enabled)],
        before: json!({ "popAccessEnabled": agg.account.pop_enabled }),
        after: json!({ "popAccessEnabled": enabled }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::rebecca;
    use crate::*;

    #[test]
    fn flags_are_independent_and_audited() {
        let agg = rebecca();
        let c = apply(&agg, AccountCommand::UpdateOutgoingStatus { blocked: true }).unwrap();
        assert_eq!(c.ops, vec![Op::SetOutgoingBlocked(true)]);
        assert_eq!(c.before["outgoingBlocked"], false);
        assert_eq!(c.after["outgoingBlocked"], true);
        let c = apply(&agg, AccountCommand::DisableMailAccount).unwrap();
        assert_eq!(c.ops, vec![Op::SetEnabled(false)]);
    }

    #[test]
    fn protocol_access_is_its_own_flag() {
        let agg = rebecca();
        let c = apply(&agg, AccountCommand::UpdateImapStatus { enabled: false }).unwrap();
        assert_eq!(c.ops, vec![Op::SetImapEnabled(false)]);
        assert_eq!(c.before, serde_json::json!({ "imapAccessEnabled": true }));
        assert_eq!(c.after, serde_json::json!({ "imapAccessEnabled": false }));
        let c = apply(&agg, AccountCommand::UpdatePopStatus { enabled: false }).unwrap();
        assert_eq!(c.ops, vec![Op::SetPopEnabled(false)]);
        assert_eq!(c.before["popAccessEnabled"], true);
        let mut external = rebecca();
        external.account.kind = AccountKind::Imap;
        let e = apply(
            &external,
            AccountCommand::UpdateImapStatus { enabled: true },
        )
        .unwrap_err();
        assert_eq!(e.field, "accountId");
    }

    #[test]
    fn external_accounts_are_refused() {
        let mut agg = rebecca();
        agg.account.kind = AccountKind::Pop;
        let e = apply(&agg, AccountCommand::EnableMailAccount).unwrap_err();
        assert_eq!(e.field, "accountId");
    }
}
