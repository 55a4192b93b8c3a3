//! Who may log in to the mail server (IMAP, POP3, SMTP submission through Dovecot's SASL)
//! and where a hosted account's mail lives, decided from the account's settings: the rules
//! behind the Dovecot dict lookups. Pure, like [`crate::mail_policy`].

use crate::{AccountId, EmailAddress};

/// What the mail server needs to know of the hosted account whose primary address is a
/// login name.
#[derive(Clone, PartialEq, Eq)]
pub struct MailLogin {
    pub account_id: AccountId,
    /// The primary address: the one login name of the account.
    pub login: EmailAddress,
    pub enabled: bool,
    pub imap_enabled: bool,
    pub pop_enabled: bool,
    /// The user's argon2 hash (a PHC string); `None` for a user created without one.
    pub password_hash: Option<String>,
    /// When the user expires (`userExpiry`), in epoch milliseconds; `None` for never.
    pub expires_ms: Option<i64>,
}

impl std::fmt::Debug for MailLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailLogin")
            .field("account_id", &self.account_id)
            .field("login", &self.login)
            .field("enabled", &self.enabled)
            .field("imap_enabled", &self.imap_enabled)
            .field("pop_enabled", &self.pop_enabled)
            .field("expires_ms", &self.expires_ms)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why `login` may not log in to `service` (Dovecot's name of the protocol: `imap`,
/// `pop3`, `smtp` for Postfix's SASL, …), as the sentence the client sees; `None` when
/// the account's settings allow it (the password is checked after this).
///
/// An expired user (`userExpiry`, as of `now_ms`) and a disabled account are refused for
/// every service. IMAP and POP3 each have their own
/// switch; SMTP submission has none here, since what a login may send is the policy
/// service's decision.
pub fn refusal(login: &MailLogin, service: &str, now_ms: i64) -> Option<&'static str> {
    if crate::is_expired(login.expires_ms, now_ms) {
        return Some("Account expired");
    }
    if !login.enabled {
        return Some("Account disabled");
    }
    match service {
        "imap" if !login.imap_enabled => Some("IMAP access is disabled for this account"),
        "pop3" if !login.pop_enabled => Some("POP access is disabled for this account"),
        _ => None,
    }
}

/// The hash in the form Dovecot verifies itself: its scheme name in braces, then the PHC
/// string. `None` for a hash of another kind, which Dovecot is never handed (no login).
pub fn dovecot_password(phc: &str) -> Option<String> {
    // Every hash mailplane writes is argon2id (`secrets::hash_password`); Dovecot names
    // the variants by the PHC identifier.
    let scheme = match phc.split('$').nth(1)? {
        "argon2id" => "ARGON2ID",
        "argon2i" => "ARGON2I",
        _ => return None,
    };
    Some(format!("{{{scheme}}}{phc}"))
}

/// Where an account's mail lives below the mail root: its id, which no update changes,
/// so a new primary address keeps the mailbox.
pub fn mailbox_dir(account: AccountId) -> String {
    account.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn login() -> MailLogin {
        MailLogin {
            account_id: AccountId::new(3_000_000_000_000_000_001).unwrap(),
            login: EmailAddress::parse("becky@zylker.com").unwrap(),
            enabled: true,
            imap_enabled: true,
            pop_enabled: true,
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            expires_ms: None,
        }
    }

    #[test]
    fn a_disabled_account_is_refused_everywhere() {
        let l = MailLogin {
            enabled: false,
            ..login()
        };
        for service in ["imap", "pop3", "smtp", "lmtp", "doveadm"] {
            assert_eq!(refusal(&l, service, NOW), Some("Account disabled"));
        }
    }

    #[test]
    fn each_protocol_has_its_own_switch() {
        let no_imap = MailLogin {
            imap_enabled: false,
            ..login()
        };
        assert!(refusal(&no_imap, "imap", NOW).is_some());
        assert_eq!(refusal(&no_imap, "pop3", NOW), None);
        assert_eq!(refusal(&no_imap, "smtp", NOW), None);
        let no_pop = MailLogin {
            pop_enabled: false,
            ..login()
        };
        assert!(refusal(&no_pop, "pop3", NOW).is_some());
        assert_eq!(refusal(&no_pop, "imap", NOW), None);
        assert_eq!(refusal(&login(), "imap", NOW), None);
    }

    #[test]
    fn an_expired_user_is_refused_everywhere_from_its_expiry_on() {
        let l = MailLogin {
            expires_ms: Some(NOW),
            ..login()
        };
        for service in ["imap", "pop3", "smtp"] {
            assert_eq!(refusal(&l, service, NOW), Some("Account expired"));
            assert_eq!(refusal(&l, service, NOW - 1), None);
        }
    }

    #[test]
    fn dovecot_gets_the_scheme_it_verifies() {
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        assert_eq!(
            dovecot_password(phc).as_deref(),
            Some("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
        );
        assert_eq!(dovecot_password("$2b$12$abc"), None);
        assert_eq!(dovecot_password("plain"), None);
    }

    #[test]
    fn the_hash_is_not_in_debug_output() {
        assert!(!format!("{:?}", login()).contains("argon2"));
    }
}
