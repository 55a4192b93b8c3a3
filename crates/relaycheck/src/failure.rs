//! How a failed check reads: one sentence for the user who owns the identity. Its words
//! partly come from the relay (a reply's text, the first bytes of garbage), and the
//! relay is whatever host a user typed, so the sentence is made safe to store and show:
//! printable ASCII only, bounded, and never the password (a hostile relay could echo it).

use std::fmt;

/// The longest sentence shown.
pub const MAX_SENTENCE: usize = 300;

/// What kind of trouble a check met, for a caller that treats some differently (e.g.
/// retries a timeout sooner than a refused password).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No TCP connection: refused, unreachable.
    Connect,
    /// The whole check did not finish within the configured time.
    Timeout,
    /// The TLS handshake failed, the certificate included.
    Tls,
    /// The relay refused the user name and password.
    Auth,
    /// Anything else the relay did wrong or does not offer.
    Protocol,
}

/// Why a relay check failed. `Display` is the sentence for users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    kind: FailureKind,
    sentence: String,
}

impl CheckFailure {
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The sentence, as `Display` writes it.
    pub fn sentence(&self) -> &str {
        &self.sentence
    }
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sentence)
    }
}

impl std::error::Error for CheckFailure {}

/// A failure inside the crate, before it is made safe to show.
#[derive(Debug)]
pub(crate) struct Fail {
    pub kind: FailureKind,
    pub text: String,
}

impl Fail {
    pub fn new(kind: FailureKind, text: impl Into<String>) -> Self {
        Fail {
            kind,
            text: text.into(),
        }
    }

    pub fn protocol(text: impl Into<String>) -> Self {
        Fail::new(FailureKind::Protocol, text)
    }

    /// The sentence to show: printable, without any of `secrets`, at most
    /// [`MAX_SENTENCE`] characters. Secrets are removed after the control characters,
    /// so `hun\x01ter2` cannot slip through, and before the cut, so no cut can split one
    /// out of sight of the search.
    pub fn finish(self, secrets: &[&str]) -> CheckFailure {
        let mut sentence = printable(&self.text);
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            sentence = sentence.replace(secret, "***");
        }
        CheckFailure {
            kind: self.kind,
            sentence: cut(sentence.trim()),
        }
    }
}

/// `text` with tabs as spaces and every other character outside printable ASCII dropped.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| (' '..='~').contains(c))
        .collect()
}

/// At most [`MAX_SENTENCE`] characters, `...` marking a cut. `text` is ASCII, so any
/// byte index is a character boundary.
fn cut(text: &str) -> String {
    if text.len() <= MAX_SENTENCE {
        text.to_string()
    } else {
        format!("{}...", &text[..MAX_SENTENCE - 3])
    }
}

/// Bytes that came instead of SMTP, readable: printable ASCII as is, the rest as `\xNN`.
pub(crate) fn escaped(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (b' '..=b'~').contains(&b) && b != b'\\' {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_is_printable_bounded_and_free_of_secrets() {
        let f = Fail::protocol("unexpected reply to AUTH: 535 hun\u{1}ter2\r\n is wrong\u{e9}");
        let done = f.finish(&["hunter2"]);
        assert_eq!(
            done.to_string(),
            "unexpected reply to AUTH: 535 *** is wrong"
        );

        let long = Fail::protocol("x".repeat(1000)).finish(&[]);
        assert_eq!(long.to_string().len(), MAX_SENTENCE);
        assert!(long.to_string().ends_with("..."));
    }

    #[test]
    fn garbage_is_escaped() {
        assert_eq!(escaped(b"\x16\x03A\\"), "\\x16\\x03A\\x5c");
    }
}
