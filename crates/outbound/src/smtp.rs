//! One SMTP transaction (RFC 5321): greeting, EHLO, MAIL FROM:<>, RCPT TO, DATA, QUIT.

use std::time::Duration;

use mailplane_domain::EmailAddress;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::{SubmitConfig, SubmitError};

/// A reply line longer than this, or a reply of more lines, is not from a mail server
/// worth waiting on.
const MAX_REPLY_LINE: usize = 2048;
const MAX_REPLY_LINES: usize = 100;

/// A complete reply: its code and its text (the lines joined).
struct Reply {
    code: u16,
    text: String,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

struct Session {
    reader: BufReader<TcpStream>,
    step: Duration,
}

impl Session {
    async fn reply(&mut self) -> Result<Reply, SubmitError> {
        let step = self.step;
        let reader = &mut self.reader;
        let read = async move {
            let mut text = Vec::new();
            for _ in 0..MAX_REPLY_LINES {
                let mut line = Vec::new();
                let n = (&mut *reader)
                    .take(MAX_REPLY_LINE as u64)
                    .read_until(b'\n', &mut line)
                    .await?;
                if n == 0 {
                    return Err(SubmitError::Protocol(
                        "the server closed the connection".into(),
                    ));
                }
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                let code = line
                    .get(..3)
                    .and_then(|c| c.parse::<u16>().ok())
                    .filter(|c| (200..600).contains(c))
                    .ok_or_else(|| SubmitError::Protocol(format!("{line:?}")))?;
                text.push(line.get(4..).unwrap_or("").to_string());
                // `250-…` continues the reply; `250 …` (or a bare code) ends it.
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Ok(Reply {
                        code,
                        text: text.join(" "),
                    });
                }
            }
            Err(SubmitError::Protocol("a reply of too many lines".into()))
        };
        tokio::time::timeout(step, read)
            .await
            .map_err(|_| SubmitError::Timeout(step))?
    }

    async fn send(&mut self, line: &str) -> Result<(), SubmitError> {
        let stream = self.reader.get_mut();
        let write = async {
            stream.write_all(line.as_bytes()).await?;
            stream.write_all(b"\r\n").await?;
            Ok(())
        };
        tokio::time::timeout(self.step, write)
            .await
            .map_err(|_| SubmitError::Timeout(self.step))?
    }

    /// Sends `line` and expects a reply of the class `expect` (2 or 3).
    async fn command(
        &mut self,
        name: &'static str,
        line: &str,
        expect: u16,
    ) -> Result<(), SubmitError> {
        self.send(line).await?;
        self.expect(name, expect).await
    }

    async fn expect(&mut self, name: &'static str, class: u16) -> Result<(), SubmitError> {
        let reply = self.reply().await?;
        if reply.code / 100 == class {
            Ok(())
        } else {
            Err(SubmitError::Refused {
                command: name,
                reply: reply.to_string(),
            })
        }
    }
}

pub(crate) async fn submit(
    config: &SubmitConfig,
    to: &EmailAddress,
    data: &str,
) -> Result<(), SubmitError> {
    let step = config.step_timeout;
    let stream = tokio::time::timeout(step, TcpStream::connect(&config.server))
        .await
        .map_err(|_| SubmitError::Timeout(step))?
        .map_err(|source| SubmitError::Connect {
            server: config.server.clone(),
            source,
        })?;
    let mut s = Session {
        reader: BufReader::new(stream),
        step,
    };
    s.expect("the connection", 2).await?;
    s.command("EHLO", &format!("EHLO {}", config.helo), 2)
        .await?;
    s.command("MAIL FROM", "MAIL FROM:<>", 2).await?;
    s.command("RCPT TO", &format!("RCPT TO:<{to}>"), 2).await?;
    s.command("DATA", "DATA", 3).await?;
    // The message (CRLF line ends, dots stuffed) and the line that ends it.
    s.send(&format!("{data}.")).await?;
    s.expect("the message", 2).await?;
    // The message is the server's now; how the goodbye goes does not matter.
    let _ = s.send("QUIT").await;
    Ok(())
}
