//! The confirmation keys mailplane mails: to a forward's target (`addMailForward`,
//! `resendMailForwardVerficationMail`) and to the address of a send-as identity outside
//! the account (`addsendmaildetails`). Each key is random (120 bits), made here before
//! the change, and only its digest goes into the command; the key itself is mailed once
//! the change commits, in a slot taken before it (with none free, nothing changes).

use mailplane_domain::{EmailAddress, Secret, FORWARD_KEY_TTL_MS, IDENTITY_KEY_TTL_MS};
use mailplane_outbound::{Message, Slot, Submitter};
use mailplane_store::secrets;

use crate::error::ApiError;

/// Seconds a client is asked to wait when every mail slot is taken.
const MAIL_BUSY_RETRY_AFTER_SECS: u64 = 5;

/// What a key confirms; it decides the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// That the target wants the account's mail forwarded to it.
    Forward,
    /// That whoever reads the address lets the account send as it.
    SendAs,
}

/// Keys made for a change, to mail once it commits.
pub struct KeyMail {
    purpose: KeyPurpose,
    submitter: Submitter,
    slot: Slot,
    keys: Vec<(EmailAddress, Secret)>,
}

/// Why no key can be mailed from this server: it has nowhere to hand mail.
pub const NO_MAIL_SUBMIT: &str =
    "this server has nowhere to hand mail (serve --mail-submit is not set); ask its operator";

impl KeyMail {
    /// A new key for each of `to`, with a slot to mail them in; `None` when the server
    /// has nowhere to mail (`--mail-submit` unset). With no slot free: busy.
    pub fn make(
        submitter: Option<&Submitter>,
        purpose: KeyPurpose,
        to: Vec<EmailAddress>,
    ) -> Result<Option<KeyMail>, ApiError> {
        let Some(submitter) = submitter else {
            return Ok(None);
        };
        let slot = submitter
            .slot()
            .ok_or(ApiError::Busy(MAIL_BUSY_RETRY_AFTER_SECS))?;
        let keys = to
            .into_iter()
            .map(|to| (to, Secret::new(secrets::new_password())))
            .collect();
        Ok(Some(KeyMail {
            purpose,
            submitter: submitter.clone(),
            slot,
            keys,
        }))
    }

    /// Each address with the digest of its key: what the command carries.
    pub fn digests(&self) -> impl Iterator<Item = (&EmailAddress, String)> {
        self.keys
            .iter()
            .map(|(to, key)| (to, secrets::token_digest(key.expose())))
    }

    /// Mails the key of each address in `only` (those the change did give a new key), in
    /// the slot taken before the change. The change has committed: a message that cannot
    /// be handed over is reported in the answer, never as a failure of the request. All of
    /// it within one step timeout, so the answer never waits on the mail server past the
    /// request's own limit.
    pub async fn send(
        self,
        account: &EmailAddress,
        only: Option<&[EmailAddress]>,
    ) -> Vec<(EmailAddress, String)> {
        let KeyMail {
            purpose,
            submitter,
            slot,
            keys,
        } = self;
        let keys = keys
            .into_iter()
            .filter(|(to, _)| only.is_none_or(|list| list.contains(to)));
        let Some(from) = submitter.from_for(account) else {
            return keys
                .map(|(to, _)| (to, "not sent: no From address".to_string()))
                .collect();
        };
        let budget = submitter.step_timeout();
        let deadline = tokio::time::Instant::now() + budget;
        let mut outcomes = Vec::new();
        for (to, key) in keys {
            let message = message(purpose, account, &to, &key, from.clone());
            let outcome =
                match tokio::time::timeout_at(deadline, submitter.send(&slot, &to, &message)).await
                {
                    Ok(Ok(())) => "sent".to_string(),
                    Ok(Err(e)) => format!("not sent: {e}"),
                    Err(_) => format!("not sent: the mail server took longer than {budget:?}"),
                };
            outcomes.push((to, outcome));
        }
        outcomes
    }
}

/// The message that carries a key: who asks what, and the key on a line of its own.
fn message(
    purpose: KeyPurpose,
    account: &EmailAddress,
    to: &EmailAddress,
    key: &Secret,
    from: EmailAddress,
) -> Message {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    let (subject, asks, days, otherwise) = match purpose {
        KeyPurpose::Forward => (
            format!("Confirm forwarding of {account}'s mail to you"),
            format!("The mail account {account} asks that its incoming mail be forwarded to {to}."),
            FORWARD_KEY_TTL_MS / DAY_MS,
            "If you do not, ignore this message: nothing is forwarded to you until the key is given back.",
        ),
        KeyPurpose::SendAs => (
            format!("Confirm that {account} may send mail as {to}"),
            format!("The mail account {account} asks to send mail with your address, {to}, as its sender."),
            IDENTITY_KEY_TTL_MS / DAY_MS,
            "If you do not, ignore this message: nobody sends as your address from there until the key is given back.",
        ),
    };
    Message {
        from,
        subject,
        body: vec![
            asks,
            String::new(),
            format!(
                "If you agree, give the confirmation key below to {account} (or to its mail administrator); it is valid for {days} days:"
            ),
            String::new(),
            key.expose().to_string(),
            String::new(),
            otherwise.into(),
        ],
    }
}
