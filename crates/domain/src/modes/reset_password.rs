//! `resetPassword`: a new password for the user of the account (the one password of the
//! user: the mail server's login and the sign-in of the OAuth pages). The rule sees only
//! its hash, computed before the command was made.

use serde_json::json;

use super::{Change, Op, PasswordReset};
use crate::AccountAggregate;

pub(super) fn apply(agg: &AccountAggregate, reset: PasswordReset) -> Change {
    let PasswordReset {
        hash,
        revoke_tokens,
        one_time,
    } = reset;
    let mut ops = vec![Op::SetPassword { hash, one_time }];
    // The console's sessions end either way: a new password is how a user shuts out
    // whoever knew the old one, and a session is as good as the password it came from.
    ops.push(if revoke_tokens {
        Op::RevokeUserTokens
    } else {
        Op::EndConsoleSessions
    });
    // What changed, never the password or its hash.
    Change {
        ops,
        before: json!({ "oneTimePassword": agg.user_one_time_password }),
        after: json!({
            "password": "changed",
            "resetAuthToken": revoke_tokens,
            "oneTimePassword": one_time,
        }),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::fixtures::rebecca;
    use crate::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

    pub(in crate::modes) fn reset(revoke_tokens: bool, one_time: bool) -> PasswordReset {
        PasswordReset {
            hash: PasswordHash::from_phc(HASH.into()).unwrap(),
            revoke_tokens,
            one_time,
        }
    }

    #[test]
    fn the_hash_is_stored_and_the_tokens_revoked_when_asked() {
        let c = apply(
            &rebecca(),
            AccountCommand::ResetPassword(reset(true, false)),
        )
        .unwrap();
        assert_eq!(
            c.ops,
            vec![
                Op::SetPassword {
                    hash: PasswordHash::from_phc(HASH.into()).unwrap(),
                    one_time: false
                },
                Op::RevokeUserTokens
            ]
        );
        let c = apply(
            &rebecca(),
            AccountCommand::ResetPassword(reset(false, true)),
        )
        .unwrap();
        assert_eq!(
            c.ops[1],
            Op::EndConsoleSessions,
            "the API's tokens are kept, the console's sessions end"
        );
        assert_eq!(c.ops.len(), 2);
    }

    #[test]
    fn the_audit_says_what_changed_and_holds_no_hash() {
        let mut agg = rebecca();
        agg.user_one_time_password = true;
        let c = apply(&agg, AccountCommand::ResetPassword(reset(true, false))).unwrap();
        assert_eq!(c.before, serde_json::json!({"oneTimePassword": true}));
        assert_eq!(
            c.after,
            serde_json::json!({"password": "changed", "resetAuthToken": true, "oneTimePassword": false})
        );
        let shown = format!("{} {} {:?}", c.before, c.after, c.ops);
        assert!(!shown.contains("argon2"), "{shown}");
    }

    #[test]
    fn external_accounts_are_refused() {
        let mut agg = rebecca();
        agg.account.kind = AccountKind::Pop;
        let e = apply(&agg, AccountCommand::ResetPassword(reset(true, false))).unwrap_err();
        assert_eq!(e.field, "accountId");
    }
}
