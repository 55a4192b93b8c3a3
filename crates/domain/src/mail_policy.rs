//! What the mail server must do with a message, decided from an account's settings: the
//! rules behind the Postfix policy service. Pure, like the update rules: the store loads a
//! [`MailAccount`], the listener speaks the protocol, the decision is made here.

use crate::{AccountId, EmailAddress};

/// What the mail server needs to know of the account an address belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAccount {
    pub account_id: AccountId,
    pub enabled: bool,
    pub outgoing_blocked: bool,
    pub incoming_blocked: bool,
    /// Every address the account may use as envelope sender: its own addresses and the
    /// `fromAddress` of each of its send-mail details that is active (see
    /// [`crate::send_as`]).
    pub may_send_as: Vec<EmailAddress>,
    /// The addresses of its identities that are not verified yet, each with why: refused
    /// with a reply that says so, so that the user knows what is missing.
    pub unverified: Vec<(EmailAddress, String)>,
}

/// The answer for one SMTP transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No objection: the mail server's own rules decide.
    Dunno,
    /// Refuse with an SMTP reply code (5xx), the enhanced status 5.7.1 and a sentence.
    Reject { code: u16, text: String },
}

impl Verdict {
    fn reject(code: u16, text: String) -> Verdict {
        Verdict::Reject { code, text }
    }
}

/// Mail submitted by an authenticated login (`login` is one of `account`'s addresses) with
/// the envelope sender `sender` as the client gave it (empty for the null sender).
///
/// Checks run in a fixed order so the reply names the most fundamental reason: a disabled
/// account, then a block on outgoing mail, then the sender.
pub fn submission(login: &EmailAddress, account: &MailAccount, sender: &str) -> Verdict {
    if !account.enabled {
        return Verdict::reject(554, format!("The account of {login} is disabled"));
    }
    if account.outgoing_blocked {
        return Verdict::reject(
            554,
            format!("Outgoing mail is blocked for the account of {login}"),
        );
    }
    // The null sender (bounces, notifications) claims no one's address.
    if sender.is_empty() {
        return Verdict::Dunno;
    }
    let parsed = EmailAddress::parse(sender).ok();
    match parsed {
        Some(s) if account.may_send_as.contains(&s) => Verdict::Dunno,
        Some(s) => match account.unverified.iter().find(|(a, _)| *a == s) {
            Some((_, why)) => Verdict::reject(553, format!("<{s}>: {why}")),
            None => not_yours(sender, login),
        },
        None => not_yours(sender, login),
    }
}

fn not_yours(sender: &str, login: &EmailAddress) -> Verdict {
    Verdict::reject(
        553,
        format!("Sender address <{sender}> is not one the account of {login} may send as"),
    )
}

/// Mail arriving from outside for `recipient`, one of `account`'s addresses.
pub fn delivery(recipient: &EmailAddress, account: &MailAccount) -> Verdict {
    if !account.enabled {
        return Verdict::reject(550, format!("The account of {recipient} is disabled"));
    }
    if account.incoming_blocked {
        return Verdict::reject(
            550,
            format!("Incoming mail is blocked for the account of {recipient}"),
        );
    }
    Verdict::Dunno
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn account() -> MailAccount {
        MailAccount {
            account_id: AccountId::new(2560636000000008002).unwrap(),
            enabled: true,
            outgoing_blocked: false,
            incoming_blocked: false,
            may_send_as: vec![addr("becky@zylker.com"), addr("becky@gmail.example")],
            unverified: vec![(
                addr("shared@gmail.example"),
                "the external server for this address is not verified yet".into(),
            )],
        }
    }

    fn code(v: &Verdict) -> Option<u16> {
        match v {
            Verdict::Dunno => None,
            Verdict::Reject { code, .. } => Some(*code),
        }
    }

    #[test]
    fn submission_checks_in_order() {
        let login = addr("becky@zylker.com");
        let mut a = account();
        assert_eq!(
            submission(&login, &a, "Becky@Gmail.example"),
            Verdict::Dunno
        );
        assert_eq!(submission(&login, &a, ""), Verdict::Dunno);
        let stranger = submission(&login, &a, "ceo@zylker.com");
        assert_eq!(code(&stranger), Some(553));
        assert!(format!("{stranger:?}").contains("<ceo@zylker.com>"));
        assert_eq!(code(&submission(&login, &a, "not an address")), Some(553));
        let shared = submission(&login, &a, "shared@gmail.example");
        assert_eq!(code(&shared), Some(553));
        assert!(format!("{shared:?}").contains(
            "<shared@gmail.example>: the external server for this address is not verified yet"
        ));

        a.outgoing_blocked = true;
        let blocked = submission(&login, &a, "ceo@zylker.com");
        assert_eq!(code(&blocked), Some(554));
        assert!(format!("{blocked:?}").contains("Outgoing mail is blocked"));

        a.enabled = false;
        assert!(format!("{:?}", submission(&login, &a, "")).contains("disabled"));
    }

    #[test]
    fn delivery_refuses_blocked_or_disabled_accounts() {
        let rcpt = addr("becky@zylker.com");
        let mut a = account();
        a.outgoing_blocked = true;
        assert_eq!(delivery(&rcpt, &a), Verdict::Dunno);
        a.incoming_blocked = true;
        assert_eq!(code(&delivery(&rcpt, &a)), Some(550));
        a.incoming_blocked = false;
        a.enabled = false;
        assert_eq!(code(&delivery(&rcpt, &a)), Some(550));
    }
}
