//! mailplane's own outgoing mail. mailplane writes a few messages itself (the key that
//! confirms a forward); it hands each to one SMTP server, `serve --mail-submit HOST:PORT`,
//! normally the local Postfix, which delivers it like any other mail. mailplane never
//! talks to a recipient's server itself.
//!
//! The client is minimal on purpose: plain SMTP to a server the operator names (no TLS, no
//! authentication: it is meant for loopback, where Postfix's `mynetworks` lets it relay),
//! one message per connection, the null envelope sender (RFC 5321 4.5.5: no bounce of a
//! bounce, and it claims nobody's address), and a deadline on every step.

mod message;
mod smtp;

use std::sync::Arc;
use std::time::Duration;

use mailplane_domain::EmailAddress;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use message::Message;

/// How `--mail-submit` is used.
#[derive(Debug, Clone)]
pub struct SubmitConfig {
    /// `HOST:PORT` of the SMTP server.
    pub server: String,
    /// The name mailplane gives in `EHLO`.
    pub helo: String,
    /// The longest any one step (connecting, each reply) may take.
    pub step_timeout: Duration,
    /// Messages handed over at once; a request that finds none free is answered busy.
    pub slots: usize,
    /// The `From` of mailplane's messages (`--mail-from`); by default `postmaster@` the
    /// domain of the account the message is about.
    pub from: Option<EmailAddress>,
}

/// Why a message was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("cannot connect to the mail server {server}: {source}")]
    Connect {
        server: String,
        source: std::io::Error,
    },
    #[error("the mail server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the mail server refused {command}: {reply}")]
    Refused {
        command: &'static str,
        reply: String,
    },
    #[error("the connection to the mail server broke: {0}")]
    Io(#[from] std::io::Error),
    #[error("the mail server's reply is not SMTP: {0}")]
    Protocol(String),
}

/// The outbound path: where messages go and how many may be on their way at once.
#[derive(Debug, Clone)]
pub struct Submitter {
    config: Arc<SubmitConfig>,
    slots: Arc<Semaphore>,
}

/// A place among the messages being handed over; the message is sent with it.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Submitter {
    pub fn new(config: SubmitConfig) -> Submitter {
        let slots = Arc::new(Semaphore::new(config.slots.max(1)));
        Submitter {
            config: Arc::new(config),
            slots,
        }
    }

    pub fn server(&self) -> &str {
        &self.config.server
    }

    /// The longest one step of a transaction may take.
    pub fn step_timeout(&self) -> Duration {
        self.config.step_timeout
    }

    /// The `From` address of a message about `account` (an address of it).
    pub fn from_for(&self, account: &EmailAddress) -> Option<EmailAddress> {
        match &self.config.from {
            Some(from) => Some(from.clone()),
            None => EmailAddress::parse(&format!("postmaster@{}", account.domain())).ok(),
        }
    }

    /// A free slot, or `None` when every one is taken: the caller answers busy rather
    /// than queueing work behind a slow mail server.
    pub fn slot(&self) -> Option<Slot> {
        self.slots.clone().try_acquire_owned().ok().map(Slot)
    }

    /// Hands `message` to the mail server for `to`; returns once the server accepted it
    /// (it then owns the delivery) or refused it.
    pub async fn send(
        &self,
        _slot: &Slot,
        to: &EmailAddress,
        message: &Message,
    ) -> Result<(), SubmitError> {
        let result = smtp::submit(&self.config, to, &message.render(to)).await;
        match &result {
            Ok(()) => {
                tracing::info!(%to, server = %self.config.server, "message handed to the mail server")
            }
            Err(e) => {
                tracing::warn!(%to, server = %self.config.server, error = %e, "message not handed to the mail server")
            }
        }
        result
    }
}
