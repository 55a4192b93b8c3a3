//! The check's SMTP dialogue: greeting, EHLO, STARTTLS (and EHLO again) or TLS from the
//! first byte, AUTH, QUIT. No MAIL is ever sent: the check must not deliver anything.

use std::fmt;
use std::net::SocketAddr;

use mailplane_domain::SmtpConnection;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::ehlo::{login_response, plain_response, Mechanism, Offer};
use crate::failure::{escaped, Fail, FailureKind};
use crate::wire::{ReadError, Reply, Wire, MAX_LINE, MAX_REPLY, MAX_REPLY_LINES};
use crate::{tls, Checker, Target};

/// The step a failure happened in, as the sentence names it.
#[derive(Debug, Clone, Copy)]
enum Step {
    Greeting,
    Ehlo,
    StartTls,
    Auth,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Greeting => "the greeting",
            Step::Ehlo => "EHLO",
            Step::StartTls => "STARTTLS",
            Step::Auth => "AUTH",
        })
    }
}

/// The failure for a reply that could not be read during `step`.
fn unread(step: Step) -> impl FnOnce(ReadError) -> Fail {
    move |e| match e {
        ReadError::Closed => {
            Fail::protocol(format!("the server closed the connection during {step}"))
        }
        ReadError::LineTooLong => {
            Fail::protocol(format!("reply line longer than {MAX_LINE} bytes"))
        }
        ReadError::ReplyTooLong => Fail::protocol(format!("reply longer than {MAX_REPLY} bytes")),
        ReadError::TooManyLines => {
            Fail::protocol(format!("reply of more than {MAX_REPLY_LINES} lines"))
        }
        ReadError::NotSmtp(bytes) => {
            Fail::protocol(format!("not an SMTP server: {}", escaped(&bytes)))
        }
        ReadError::Io(e) => Fail::protocol(format!("the connection failed during {step}: {e}")),
    }
}

fn unexpected(step: Step, reply: &Reply) -> Fail {
    Fail::protocol(format!("unexpected reply to {step}: {}", reply.summary()))
}

/// How the dialogue gets into TLS, with the name the certificate must carry.
enum Mode {
    Plain,
    StartTls(ServerName<'static>),
    Implicit(ServerName<'static>),
}

/// The whole dialogue. `authenticated` is set once the relay accepted the credentials,
/// so that a caller whose deadline strikes during QUIT still counts the check as passed.
pub(crate) async fn run(
    checker: &Checker,
    target: &Target<'_>,
    authenticated: &mut bool,
) -> Result<(), Fail> {
    // The name is checked before connecting: one that cannot be verified fails without
    // any traffic.
    let mode = match target.connection {
        SmtpConnection::Plain => Mode::Plain,
        SmtpConnection::Tls => Mode::StartTls(tls::server_name(target.server_name)?),
        SmtpConnection::Ssl => Mode::Implicit(tls::server_name(target.server_name)?),
    };
    let tcp = connect(target.addr).await?;
    match mode {
        Mode::Implicit(name) => {
            let stream = tls::handshake(&checker.tls, name, tcp).await?;
            let mut wire = Wire::new(stream);
            greeting(&mut wire).await?;
            let offer = ehlo(&mut wire, &checker.helo).await?;
            finish(wire, &offer, target, authenticated).await
        }
        Mode::StartTls(name) => {
            let mut wire = Wire::new(tcp);
            greeting(&mut wire).await?;
            if !ehlo(&mut wire, &checker.helo).await?.starttls {
                return Err(Fail::protocol("the server does not offer STARTTLS"));
            }
            let reply = wire
                .command("STARTTLS")
                .await
                .map_err(unread(Step::StartTls))?;
            if reply.code != 220 {
                return Err(unexpected(Step::StartTls, &reply));
            }
            let tcp = wire.into_inner().ok_or_else(|| {
                Fail::protocol("the server sent more than its reply to STARTTLS before TLS began")
            })?;
            let stream = tls::handshake(&checker.tls, name, tcp).await?;
            let mut wire = Wire::new(stream);
            // RFC 3207 4.2: what was learnt before TLS is forgotten; AUTH is read anew.
            let offer = ehlo(&mut wire, &checker.helo).await?;
            finish(wire, &offer, target, authenticated).await
        }
        Mode::Plain => {
            // The user chose no TLS: AUTH goes in clear, as they asked.
            let mut wire = Wire::new(tcp);
            greeting(&mut wire).await?;
            let offer = ehlo(&mut wire, &checker.helo).await?;
            finish(wire, &offer, target, authenticated).await
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, Fail> {
    TcpStream::connect(addr).await.map_err(|e| {
        let text = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            _ => format!("could not connect: {e}"),
        };
        Fail::new(FailureKind::Connect, text)
    })
}

async fn greeting<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<S>) -> Result<(), Fail> {
    let reply = wire.reply().await.map_err(unread(Step::Greeting))?;
    match reply.code {
        220 => Ok(()),
        // 554 or 421 (RFC 5321 3.1): the server does not want this client now.
        400..=599 => Err(Fail::protocol(format!(
            "the server turned the connection away: {}",
            reply.summary()
        ))),
        _ => Err(unexpected(Step::Greeting, &reply)),
    }
}

async fn ehlo<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    helo: &str,
) -> Result<Offer, Fail> {
    let reply = wire
        .command(&format!("EHLO {helo}"))
        .await
        .map_err(unread(Step::Ehlo))?;
    if reply.code != 250 {
        return Err(unexpected(Step::Ehlo, &reply));
    }
    Ok(Offer::of(&reply))
}

/// AUTH, then QUIT. Whatever QUIT meets, the check has passed once AUTH did.
async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
    mut wire: Wire<S>,
    offer: &Offer,
    target: &Target<'_>,
    authenticated: &mut bool,
) -> Result<(), Fail> {
    let Some(mechanism) = offer.mechanism() else {
        let offered = if offer.auth.is_empty() {
            "none".to_string()
        } else {
            offer.auth.join(" ")
        };
        let hint = match (offer.auth.is_empty(), target.connection) {
            (true, SmtpConnection::Plain) => " (servers often offer it only over TLS)",
            _ => "",
        };
        return Err(Fail::protocol(format!(
            "the server offers no authentication mechanism mailplane supports (PLAIN, LOGIN); it offers: {offered}{hint}"
        )));
    };
    let reply = match mechanism {
        Mechanism::Plain => {
            let response = plain_response(target.user_name, target.password.expose());
            command(&mut wire, &format!("AUTH PLAIN {}", response.as_str())).await?
        }
        Mechanism::Login => login(&mut wire, target).await?,
    };
    settle(&reply)?;
    *authenticated = true;
    let _ = wire.command("QUIT").await;
    wire.close().await;
    Ok(())
}

/// AUTH LOGIN: the user name and the password, each after the relay's 334.
async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    target: &Target<'_>,
) -> Result<Reply, Fail> {
    let mut reply = command(wire, "AUTH LOGIN").await?;
    for answer in [target.user_name, target.password.expose()] {
        if reply.code != 334 {
            return Ok(reply);
        }
        reply = command(wire, login_response(answer).as_str()).await?;
    }
    Ok(reply)
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    line: &str,
) -> Result<Reply, Fail> {
    wire.command(line).await.map_err(unread(Step::Auth))
}

/// The end of AUTH: 235 passes; any 4xx/5xx (535 wrong credentials, 534 mechanism too
/// weak, 454 try later) is the relay's verdict on the credentials, reported with its
/// words; anything else is a relay not following RFC 4954.
fn settle(reply: &Reply) -> Result<(), Fail> {
    match reply.code {
        235 => Ok(()),
        400..=599 => Err(Fail::new(
            FailureKind::Auth,
            format!("authentication failed: {}", reply.summary()),
        )),
        _ => Err(unexpected(Step::Auth, reply)),
    }
}
