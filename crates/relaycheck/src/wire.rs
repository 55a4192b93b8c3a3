//! The SMTP wire (RFC 5321 4.2): command lines out, replies in, with a bound on what a
//! relay can make us hold. The relay is whatever host a user typed, so it may be hostile:
//! an endless line must cost us a few KiB and an error, not memory until the deadline.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The longest reply line taken. RFC 5321 4.5.3.1.5 allows 512 octets; real servers stay
/// far below this, and a line past it is not from a server worth waiting on.
pub const MAX_LINE: usize = 4096;
/// The most bytes of one reply, all its lines together (EHLO replies are the long ones).
pub const MAX_REPLY: usize = 64 * 1024;
/// The most lines of one reply: many short lines cost more memory than their bytes.
/// EHLO replies have a dozen or two.
pub const MAX_REPLY_LINES: usize = 512;
/// How many bytes of something that is not a reply a failure shows.
const SHOWN: usize = 32;
/// How much is read from the socket at a time; the buffer never exceeds
/// `MAX_LINE + CHUNK`.
const CHUNK: usize = 4096;

/// One complete reply: its code and the text of each line (without the code).
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// `535 5.7.8 Authentication credentials invalid`: the code and the lines' text.
    pub fn summary(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
            .trim_end()
            .to_string()
    }
}

/// Why no reply could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection ended (cleanly or by a reset) before a whole reply came.
    Closed,
    LineTooLong,
    ReplyTooLong,
    TooManyLines,
    /// The first bytes of what came instead of a reply.
    NotSmtp(Vec<u8>),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            // A TLS peer that leaves without close_notify shows as UnexpectedEof.
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ReadError::Closed,
            _ => ReadError::Io(e),
        }
    }
}

/// A connection to the relay, plain or TLS, with the bytes read but not yet consumed.
pub struct Wire<S> {
    stream: S,
    pending: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub fn new(stream: S) -> Self {
        Wire {
            stream,
            pending: Vec::with_capacity(CHUNK),
        }
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, ReadError> {
        self.stream.write_all(line.as_bytes()).await?;
        self.stream.write_all(b"\r\n").await?;
        // A TLS stream holds the record until flushed.
        self.stream.flush().await?;
        self.reply().await
    }

    /// Reads one reply, all its lines (`250-…` continues, `250 …` ends).
    pub async fn reply(&mut self) -> Result<Reply, ReadError> {
        let mut code = None;
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = self.line().await?;
            total += line.len();
            if total > MAX_REPLY {
                return Err(ReadError::ReplyTooLong);
            }
            if lines.len() == MAX_REPLY_LINES {
                return Err(ReadError::TooManyLines);
            }
            // `line` passed `starts_reply`: three digits come first.
            let this = line[..3]
                .iter()
                .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
            if code.is_some_and(|c| c != this) {
                return Err(not_smtp(&line));
            }
            code = Some(this);
            lines.push(String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned());
            if line.get(3) != Some(&b'-') {
                return Ok(Reply { code: this, lines });
            }
        }
    }

    /// The stream, for the TLS handshake after STARTTLS; `None` when the relay sent more
    /// than its reply. Such bytes would be read as if they had come inside TLS (the
    /// STARTTLS injection of CVE-2011-0411), so they fail the check instead.
    pub fn into_inner(self) -> Option<S> {
        self.pending.is_empty().then_some(self.stream)
    }

    /// Shuts the write side (TLS: sends close_notify), ignoring errors: the dialogue is over.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// The next line without its line end.
    async fn line(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.pending[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                let line = &self.pending[..end];
                let line = line.strip_suffix(b"\r".as_slice()).unwrap_or(line);
                if line.len() > MAX_LINE {
                    return Err(ReadError::LineTooLong);
                }
                if !starts_reply(line, true) {
                    return Err(not_smtp(&self.pending));
                }
                let line = line.to_vec();
                self.pending.drain(..=end);
                return Ok(line);
            }
            scanned = self.pending.len();
            // Garbage shows in its first bytes; waiting for a newline that may never come
            // would turn "not an SMTP server" into a timeout.
            if !starts_reply(&self.pending, false) {
                return Err(not_smtp(&self.pending));
            }
            if self.pending.len() > MAX_LINE {
                return Err(ReadError::LineTooLong);
            }
            let mut chunk = [0u8; CHUNK];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(ReadError::Closed);
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Whether `bytes` can begin a reply line: a code 200-599, then a space, a hyphen or the
/// end. `complete` says the line has ended, so a short one is malformed.
fn starts_reply(bytes: &[u8], complete: bool) -> bool {
    let digits_ok = bytes
        .iter()
        .take(3)
        .enumerate()
        .all(|(i, b)| b.is_ascii_digit() && (i > 0 || (b'2'..=b'5').contains(b)));
    let separator_ok = match bytes.get(3) {
        None => !complete || bytes.len() == 3,
        // `\r` ends a bare `250` line whose `\n` is still to come.
        Some(b) => matches!(b, b' ' | b'-') || (!complete && *b == b'\r'),
    };
    digits_ok && separator_ok
}

/// What came instead of a reply: its first bytes, line ends and all.
fn not_smtp(bytes: &[u8]) -> ReadError {
    ReadError::NotSmtp(bytes[..bytes.len().min(SHOWN)].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply to `EHLO` when the relay sends `sent`.
    async fn reply_to(sent: &[u8]) -> Result<Reply, ReadError> {
        let (client, mut relay) = tokio::io::duplex(1 << 20);
        relay.write_all(sent).await.unwrap();
        drop(relay);
        Wire::new(client).reply().await
    }

    #[tokio::test]
    async fn replies_are_bounded_in_bytes_and_lines() {
        let ok = reply_to(b"250-relay.test\r\n250-STARTTLS\n250 AUTH PLAIN\r\n")
            .await
            .unwrap();
        assert_eq!(ok.code, 250);
        assert_eq!(ok.lines, ["relay.test", "STARTTLS", "AUTH PLAIN"]);

        let many = b"250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        assert!(matches!(
            reply_to(&many).await,
            Err(ReadError::TooManyLines)
        ));
        let long = format!("250-{}\r\n", "x".repeat(1000)).repeat(100);
        assert!(matches!(
            reply_to(long.as_bytes()).await,
            Err(ReadError::ReplyTooLong)
        ));
        let line = format!("250 {}", "x".repeat(MAX_LINE));
        assert!(matches!(
            reply_to(line.as_bytes()).await,
            Err(ReadError::LineTooLong)
        ));
        assert!(matches!(
            reply_to(b"250-a\r\n").await,
            Err(ReadError::Closed)
        ));
        assert!(matches!(
            reply_to(b"250-a\r\n251 b\r\n").await,
            Err(ReadError::NotSmtp(_))
        ));
    }

    #[test]
    fn a_reply_line_starts_with_a_code() {
        assert!(starts_reply(b"250 ok", true));
        assert!(starts_reply(b"250-SIZE", true));
        assert!(starts_reply(b"250", true));
        assert!(starts_reply(b"25", false));
        assert!(starts_reply(b"250\r", false));
        assert!(starts_reply(b"", false));
        assert!(!starts_reply(b"25", true));
        assert!(!starts_reply(b"HTTP/1.1 400", false));
        assert!(!starts_reply(b"\x16\x03\x01", false));
        assert!(!starts_reply(b"650 no", true));
        assert!(!starts_reply(b"250x", false));
    }
}
