//! The SMTP access policy service (Postfix's SMTPD_POLICY_README): Postfix sends
//! `name=value` lines ended by an empty line, once per SMTP command it checks, and many
//! requests per connection; the service answers `action=...` and an empty line.
//!
//! On anything it cannot answer correctly (a broken request, a database failure) the service
//! closes the connection without a word: Postfix then applies its own default action
//! (`smtpd_policy_service_default_action`, a temporary failure). It never answers `OK`.

use mailplane_domain::{mail_policy, EmailAddress, Verdict};
use mailplane_store::{Store, StoreError};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::listen::{accept_loop, serve_requests, Limits, Listener};
use crate::Services;

/// The largest request accepted, all lines together. Postfix's requests are a few hundred
/// bytes; the bound is for clients that are not Postfix.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// One policy request: its attributes in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    attrs: Vec<(String, String)>,
}

impl Request {
    /// The value of attribute `name` (the last one, should it repeat).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request could be read; the connection is closed in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the client left in the middle of a request")]
    Truncated,
    #[error("request larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("line without '=': {0:?}")]
    Malformed(String),
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one request. `Ok(None)`: the client closed the connection between requests.
pub async fn read_request<R>(reader: &mut R) -> Result<Option<Request>, ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let mut budget = MAX_REQUEST_BYTES;
    let mut request = Request::default();
    let mut started = false;
    loop {
        let mut line = Vec::new();
        // One byte past the budget tells an oversized line from one that fits exactly.
        let n = (&mut *reader)
            .take(budget as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return if started {
                Err(ReadError::Truncated)
            } else {
                Ok(None)
            };
        }
        started = true;
        if n > budget {
            return Err(ReadError::TooLarge);
        }
        budget -= n;
        if line.pop() != Some(b'\n') {
            return Err(ReadError::Truncated);
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            return Ok(Some(request));
        }
        let text = String::from_utf8_lossy(&line);
        // The value is everything after the first '=': values may contain '='.
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| ReadError::Malformed(text.chars().take(80).collect()))?;
        request.attrs.push((name.to_string(), value.to_string()));
    }
}

/// The decision for one request.
///
/// A submission is a request with a SASL login: the login's account decides first
/// (disabled, outgoing blocked, sender not its own). Then, whoever the sender, a local
/// recipient's account decides (disabled, incoming blocked): a logged-in sender must not
/// reach a mailbox that mail from outside cannot. A login or recipient that is no
/// account's address gets `DUNNO`: Postfix's own rules decide.
pub async fn decide(store: &Store, request: &Request) -> Result<Verdict, StoreError> {
    let login = request.get("sasl_username").unwrap_or("");
    if let Ok(login) = EmailAddress::parse(login) {
        let sender = request.get("sender").unwrap_or("");
        if let Some(account) = store.mail_account(&login).await? {
            let verdict = mail_policy::submission(&login, &account, sender);
            if verdict != Verdict::Dunno {
                if EmailAddress::parse(sender)
                    .is_ok_and(|s| account.unverified.iter().any(|(a, _)| *a == s))
                {
                    tracing::info!(%login, %sender, "sender refused: its identity is not verified yet");
                }
                return Ok(verdict);
            }
        }
    }
    let Some(recipient) = request
        .get("recipient")
        .and_then(|r| EmailAddress::parse(r).ok())
    else {
        return Ok(Verdict::Dunno);
    };
    Ok(match store.mail_account(&recipient).await? {
        Some(account) => mail_policy::delivery(&recipient, &account),
        None => Verdict::Dunno,
    })
}

/// The reply to Postfix: `action=...` and the empty line that ends it.
pub fn encode(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Dunno => "action=DUNNO\n\n".to_string(),
        Verdict::Reject { code, text } => {
            // The text may quote what the client sent (its sender address): one line only.
            let text: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            format!("action={code} 5.7.1 {text}\n\n")
        }
    }
}

/// Serves the policy protocol on `listener`, forever.
pub async fn serve(listener: Listener, services: Services, limits: Limits) {
    accept_loop(listener, "policy", limits, move |stream, peer, conn| {
        let store = services.store.clone();
        serve_requests(
            stream,
            conn,
            read_request,
            move |e| {
                tracing::info!(%peer, error = %e, "policy client dropped");
                None
            },
            async move |request: Request| {
                let verdict = match decide(&store, &request).await {
                    Ok(v) => v,
                    Err(e) => {
                        // No answer at all: Postfix falls back to its default action.
                        tracing::error!(%peer, error = %e, "policy decision failed; closing");
                        return None;
                    }
                };
                tracing::debug!(
                    %peer,
                    login = request.get("sasl_username").unwrap_or(""),
                    sender = request.get("sender").unwrap_or(""),
                    recipient = request.get("recipient").unwrap_or(""),
                    ?verdict,
                    "policy"
                );
                Some(encode(&verdict).into_bytes())
            },
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(input: &[u8]) -> Vec<Result<Option<Request>, String>> {
        crate::test_support::read_all(input, read_request)
    }

    #[test]
    fn requests_values_and_endings() {
        let got = read_all(
            b"request=smtpd_access_policy\nsender=a=b@x.example\r\nx=\n\nsasl_username=u\n\n",
        );
        let first = got[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(first.get("sender"), Some("a=b@x.example"));
        assert_eq!(first.get("x"), Some(""));
        assert_eq!(first.get("missing"), None);
        let second = got[1].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(second.get("sasl_username"), Some("u"));
        assert_eq!(got[2], Ok(None));
    }

    #[test]
    fn broken_requests_are_errors() {
        assert!(read_all(b"no equals sign\n\n")[0].is_err());
        assert!(
            read_all(b"a=b\n")[0].is_err(),
            "end of input inside a request"
        );
        assert!(read_all(b"a=b")[0].is_err(), "end of input inside a line");
        let mut big = b"a=".to_vec();
        big.extend(std::iter::repeat_n(b'x', MAX_REQUEST_BYTES));
        big.extend(b"\n\n");
        assert!(read_all(&big)[0].is_err());
    }

    #[test]
    fn a_request_of_exactly_the_limit_is_read() {
        let mut req = b"a=".to_vec();
        req.extend(std::iter::repeat_n(b'x', MAX_REQUEST_BYTES - 4));
        req.extend(b"\n\n");
        assert_eq!(req.len(), MAX_REQUEST_BYTES);
        assert!(matches!(read_all(&req)[0], Ok(Some(_))));
    }

    #[test]
    fn replies_are_one_line_and_an_empty_one() {
        assert_eq!(encode(&Verdict::Dunno), "action=DUNNO\n\n");
        let r = encode(&Verdict::Reject {
            code: 553,
            text: "sender <a\rb> refused".into(),
        });
        assert_eq!(r, "action=553 5.7.1 sender <a b> refused\n\n");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        #[test]
        fn any_bytes_give_requests_or_an_error_never_a_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let results = read_all(&input);
            prop_assert!(!results.is_empty());
        }
    }
}
