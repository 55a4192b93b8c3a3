//! `enableMailAccount`, `disableMailAccount`, `updateOutgoingStatus`, `updateIncomingStatus`:
//! independent flags of the account. Setting a flag to the value it has is a success that
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
    fn external_accounts_are_refused() {
        let mut agg = rebecca();
        agg.account.kind = AccountKind::Pop;
        let e = apply(&agg, AccountCommand::EnableMailAccount).unwrap_err();
        assert_eq!(e.field, "accountId");
    }
}
