//! `mailaccountorderupdate`: the listed accounts take the first positions in the order
//! given; the user's other accounts follow in their previous order.

use serde_json::json;

use super::{Change, Op};
use crate::{AccountAggregate, AccountId, RuleError};

pub(super) fn apply(agg: &AccountAggregate, list: Vec<AccountId>) -> Result<Change, RuleError> {
    if list.is_empty() {
        return Err(RuleError::missing("accList"));
    }
    for (i, id) in list.iter().enumerate() {
        if list[..i].contains(id) {
            return Err(RuleError::invalid(
                "accList",
                format!("accList lists account {id} more than once"),
            ));
        }
        if !agg.user_accounts.iter().any(|a| a.id == *id) {
            return Err(RuleError::invalid(
                "accList",
                format!("accList: {id} is not an account of this user"),
            ));
        }
    }
    let mut current: Vec<_> = agg.user_accounts.iter().collect();
    current.sort_by_key(|a| a.sequence);
    let before: Vec<AccountId> = current.iter().map(|a| a.id).collect();
    let mut order = list;
    order.extend(
        before
            .iter()
            .filter(|id| !order.contains(id))
            .copied()
            .collect::<Vec<_>>(),
    );
    let show = |ids: &[AccountId]| ids.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    Ok(Change {
        before: json!({ "accountOrder": show(&before) }),
        after: json!({ "accountOrder": show(&order) }),
        ops: vec![Op::SetAccountOrder(order)],
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::rebecca;
    use crate::*;
    use proptest::prelude::*;

    fn ids(v: &[u64]) -> Vec<AccountId> {
        v.iter().map(|i| AccountId::new(*i).unwrap()).collect()
    }

    #[test]
    fn listed_accounts_come_first_others_keep_their_order() {
        let agg = rebecca();
        let c = crate::apply(
            &agg,
            AccountCommand::MailAccountOrderUpdate(ids(&[5111110000000009001])),
        )
        .unwrap();
        assert_eq!(
            c.ops,
            vec![Op::SetAccountOrder(ids(&[
                5111110000000009001,
                2560636000000008002,
                5111110000000008001
            ]))]
        );
    }

    #[test]
    fn duplicates_and_strangers_are_refused() {
        let agg = rebecca();
        let dup = ids(&[5111110000000009001, 5111110000000009001]);
        assert!(crate::apply(&agg, AccountCommand::MailAccountOrderUpdate(dup)).is_err());
        let stranger = ids(&[42]);
        let e = crate::apply(&agg, AccountCommand::MailAccountOrderUpdate(stranger)).unwrap_err();
        assert_eq!(e.field, "accList");
    }

    proptest! {
        /// Whatever subset and order is listed, the result is a permutation of all the
        /// user's accounts that starts with the list.
        #[test]
        fn result_is_a_permutation_starting_with_the_list(
            picks in proptest::sample::subsequence(vec![0usize, 1, 2], 1..=3),
            seed in any::<u64>(),
        ) {
            let agg = rebecca();
            let mut list: Vec<AccountId> = picks.iter().map(|&i| agg.user_accounts[i].id).collect();
            let n = list.len();
            list.rotate_left((seed % n as u64) as usize);
            let c = crate::apply(&agg, AccountCommand::MailAccountOrderUpdate(list.clone())).unwrap();
            let Op::SetAccountOrder(order) = &c.ops[0] else { panic!("wrong op") };
            prop_assert_eq!(&order[..n], &list[..]);
            let mut sorted = order.clone();
            sorted.sort();
            let mut all: Vec<_> = agg.user_accounts.iter().map(|a| a.id).collect();
            all.sort();
            prop_assert_eq!(sorted, all);
        }
    }
}
