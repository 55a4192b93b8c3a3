//! Checks that the external SMTP relay of a send-as identity ("extfrom") works, the way
//! the identity will use it: connect, EHLO, TLS as `smtpConnection` says (none,
//! STARTTLS, or TLS from the first byte), AUTH with the user name and password (PLAIN
//! when offered, else LOGIN), QUIT. No mail is sent.
//!
//! The caller has resolved the host name and passed the address through its SSRF guard:
//! the check connects to exactly [`Target::addr`] and resolves nothing. The certificate
//! is verified against the name the user gave ([`Target::server_name`]), which is also
//! sent as SNI unless it is an IP address. The whole check, connect to QUIT, takes at
//! most [`CheckConfig::timeout`]. A failure is one sentence for the user
//! ([`CheckFailure`]): printable ASCII, at most 300 characters, never the password.
//!
//! # Why a small SMTP client of our own
//!
//! The dialogue is written here instead of using lettre or mail-send, because neither
//! can bound and report what a hostile or broken relay does (the relay is any host a
//! user types):
//!
//! - lettre 0.11 (`AsyncSmtpConnection::read_response`) reads each reply line with
//!   `read_line` into a `String` and checks `MAX_RESPONSE_LINE_BYTES` only once the
//!   newline has come: a relay sending an endless line grows that buffer as fast as it
//!   sends until the deadline (over 1 GiB in ten seconds at 1 Gbit/s). Its parse errors
//!   also drop the bytes, so "not an SMTP server: <what it sent>" cannot be said.
//! - mail-send 0.5 (`SmtpClient::read`) bounds a reply at 4 KiB, but turns a closed
//!   connection, garbage and an over-long reply all into `Error::UnparseableReply`, so
//!   "the server closed the connection during EHLO", "not an SMTP server" and "reply
//!   line longer than N bytes" cannot be told apart, nor any of them show what the
//!   relay sent.
//!
//! The client needs only EHLO, STARTTLS, AUTH PLAIN/LOGIN and QUIT, and rustls does the
//! TLS, so owning those few hundred lines costs less than working around either crate.

mod dialogue;
mod ehlo;
mod failure;
pub mod guard;
mod schedule;
mod tls;
mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mailplane_domain::{Secret, SmtpConnection};
use tokio_rustls::TlsConnector;

pub use failure::{CheckFailure, FailureKind, MAX_SENTENCE};
pub use guard::{RelayGuard, RelayRefusal};
pub use schedule::{CheckSlot, RelayChecks, ScheduleConfig};
pub use wire::{MAX_LINE, MAX_REPLY, MAX_REPLY_LINES};

/// How checks are made.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// The longest a whole check may take, connect to QUIT.
    pub timeout: Duration,
    /// The name mailplane gives in EHLO.
    pub helo: String,
    /// A PEM file of CAs trusted besides the system's (e.g. a company CA, or a test CA).
    pub extra_roots: Option<PathBuf>,
}

/// Why a [`Checker`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the CA file {}: {source}", path.display())]
    ReadCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {}: {reason}", path.display())]
    InvalidCa { path: PathBuf, reason: String },
    #[error("the EHLO name {0:?} is not a host name")]
    Helo(String),
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// One relay to check: where to connect and what the identity says.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The address the caller resolved and allowed.
    pub addr: SocketAddr,
    /// The host name the user gave; the certificate must be valid for it.
    pub server_name: &'a str,
    pub connection: SmtpConnection,
    pub user_name: &'a str,
    pub password: &'a Secret,
}

/// Makes checks; build one and share it (the CAs are loaded once).
#[derive(Clone)]
pub struct Checker {
    tls: TlsConnector,
    helo: String,
    timeout: Duration,
}

impl fmt::Debug for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checker")
            .field("helo", &self.helo)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Checker {
    pub fn new(cfg: CheckConfig) -> Result<Checker, ConfigError> {
        if !is_helo_name(&cfg.helo) {
            return Err(ConfigError::Helo(cfg.helo));
        }
        Ok(Checker {
            tls: tls::connector(cfg.extra_roots.as_deref())?,
            helo: cfg.helo,
            timeout: cfg.timeout,
        })
    }

    /// Checks one relay. `Ok` once the relay accepted the credentials, even if QUIT then
    /// fails or the time runs out during it.
    pub async fn check(&self, target: &Target<'_>) -> Result<(), CheckFailure> {
        let mut authenticated = false;
        let run = dialogue::run(self, target, &mut authenticated);
        let outcome = match tokio::time::timeout(self.timeout, run).await {
            Ok(outcome) => outcome,
            Err(_) if authenticated => Ok(()),
            Err(_) => Err(failure::Fail::new(
                FailureKind::Timeout,
                format!("timed out after {} s", self.timeout.as_secs_f64()),
            )),
        };
        // The password in clear and in the base64 forms it was sent in: a relay that
        // echoes what it got must not get it into the sentence.
        let password = target.password.expose();
        let plain = ehlo::plain_response(target.user_name, password);
        let login = ehlo::login_response(password);
        outcome.map_err(|f| f.finish(&[password, plain.as_str(), login.as_str()]))
    }
}

/// A name fit for `EHLO <name>`: a domain or an address literal, nothing that could end
/// the command line or add words to it.
fn is_helo_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic())
}
