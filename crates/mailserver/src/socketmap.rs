//! The socketmap lookup tables (Postfix's socketmap_table): requests and replies are
//! netstrings (`<length>:<bytes>,`), a request is `<map> <key>`, a reply `OK <value>`,
//! `NOTFOUND `, `TEMP <reason>` or `PERM <reason>`; many requests per connection.
//!
//! Maps:
//! - `senderlogin <address>`: the logins that may use the address as envelope sender
//!   (for `smtpd_sender_login_maps`);
//! - `transport <address>`, `tlspolicy <[ip]:port>`, `relayhost <address>` and
//!   `relaycreds <address>`: the relay of the address's validated `extfrom` identity, the
//!   way it must be used (see [`crate::relay_maps`]). `relaycreds` is the only place a
//!   relay password leaves mailplane, which is why this listener binds a UNIX socket
//!   (mode 0660) or loopback only;
//! - `domains <domain>`: found when an organization holds the domain (for
//!   `virtual_mailbox_domains`: mail to it is delivered here, and a recipient the next two
//!   maps do not know is refused `550 5.1.1 … User unknown`);
//! - `mailboxes <address>`: the primary address of a hosted account (for
//!   `virtual_mailbox_maps`; the value is the address itself, Postfix only needs a hit);
//! - `aliases <address>`: an alias of a hosted account, mapped to the account's primary
//!   address (for `virtual_alias_maps`), so that all of an account's mail reaches its one
//!   mailbox; and a primary address whose account has forwards in effect, mapped to the
//!   forward targets, after the address itself unless the account keeps no copy.
//!
//! Keys are compared in lower case, as mailplane stores addresses. Postfix asks a
//! socketmap for `user+ext@domain` only (it strips extensions for indexed tables, not for
//! socketmaps), so `mailboxes` and `aliases` try the address without its extension when
//! the address as given is unknown, with the delimiters of `serve --recipient-delimiter`
//! (Postfix's `recipient_delimiter`, `+` by default).

use mailplane_domain::EmailAddress;
use mailplane_store::StoreError;
use tokio::io::{AsyncBufRead, AsyncReadExt};

use crate::listen::{accept_loop, serve_requests, Limits, Listener};
use crate::{relay_maps, Services};

/// The longest request accepted. A key is an address (at most 254 bytes); the bound is for
/// clients that are not Postfix.
pub const MAX_REQUEST_BYTES: usize = 10_000;

/// A reply, before framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok(String),
    NotFound,
    Temp(String),
    Perm(String),
}

impl Reply {
    /// The reply as a netstring.
    pub fn encode(&self) -> Vec<u8> {
        let body = match self {
            Reply::Ok(v) => format!("OK {v}"),
            Reply::NotFound => "NOTFOUND ".to_string(),
            Reply::Temp(r) => format!("TEMP {r}"),
            Reply::Perm(r) => format!("PERM {r}"),
        };
        format!("{}:{body},", body.len()).into_bytes()
    }
}

/// Why no request could be framed. The connection cannot be resynchronized after any of
/// them: the listener answers `PERM` (when the peer is still there) and closes.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the client left in the middle of a request")]
    Truncated,
    #[error("request longer than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("not a netstring")]
    Malformed,
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one netstring. `Ok(None)`: the client closed the connection between requests.
pub async fn read_request<R>(reader: &mut R) -> Result<Option<Vec<u8>>, ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let eof = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ReadError::Truncated,
        _ => ReadError::Io(e),
    };
    let mut len: usize = 0;
    let mut digits = 0;
    loop {
        let mut byte = [0u8; 1];
        if reader.read(&mut byte).await? == 0 {
            return if digits == 0 {
                Ok(None)
            } else {
                Err(ReadError::Truncated)
            };
        }
        match byte[0] {
            b @ b'0'..=b'9' => {
                digits += 1;
                len = len * 10 + usize::from(b - b'0');
                if len > MAX_REQUEST_BYTES {
                    return Err(ReadError::TooLarge);
                }
            }
            b':' if digits > 0 => break,
            _ => return Err(ReadError::Malformed),
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await.map_err(eof)?;
    let mut comma = [0u8; 1];
    reader.read_exact(&mut comma).await.map_err(eof)?;
    if comma[0] != b',' {
        return Err(ReadError::Malformed);
    }
    Ok(Some(body))
}

/// A request's map name and key, or the `PERM` reply to a request that has none.
fn parse(body: &[u8]) -> Result<(&str, &str), Reply> {
    let text = std::str::from_utf8(body).map_err(|_| Reply::Perm("request is not UTF-8".into()))?;
    text.split_once(' ')
        .filter(|(name, key)| !name.is_empty() && !key.is_empty())
        .ok_or_else(|| Reply::Perm("expected '<map> <key>'".into()))
}

pub(crate) fn unavailable(e: StoreError) -> Reply {
    tracing::error!(error = %e, "socketmap lookup failed");
    Reply::Temp("mailplane cannot read its database".into())
}

/// Answers one request.
pub async fn lookup(services: &Services, body: &[u8]) -> Reply {
    let (map, key) = match parse(body) {
        Ok(parts) => parts,
        Err(reply) => return reply,
    };
    if !matches!(
        map,
        "senderlogin"
            | "relayhost"
            | "relaycreds"
            | "transport"
            | "tlspolicy"
            | "domains"
            | "mailboxes"
            | "aliases"
    ) {
        return Reply::Perm(format!("unknown map {map:?}"));
    }
    let store = &services.store;
    if map == "tlspolicy" {
        return relay_maps::tls_policy(services, key).await;
    }
    if map == "domains" {
        let Some(domain) = mailplane_domain::parse_domain(key) else {
            return Reply::NotFound;
        };
        return match store.hosts_domain(&domain).await {
            Ok(true) => Reply::Ok(domain),
            Ok(false) => Reply::NotFound,
            Err(e) => unavailable(e),
        };
    }
    // Postfix also asks for `@domain` and other partial keys, and for the null sender as
    // `<>` or `""`: no address, nothing found.
    let Ok(address) = EmailAddress::parse(key) else {
        return Reply::NotFound;
    };
    match map {
        "mailboxes" | "aliases" => {
            // As Postfix would for an indexed table: the address as given, then without
            // its extension.
            let bare = crate::without_extension(&address, &services.recipient_delimiter);
            for key in std::iter::once(&address).chain(&bare) {
                match store.mailbox(key).await {
                    // The primary address is the mailbox; any other address an alias of it.
                    Ok(Some((account, primary))) => {
                        return match (map, primary == *key) {
                            ("mailboxes", true) | ("aliases", false) => {
                                Reply::Ok(primary.to_string())
                            }
                            ("aliases", true) => forwards(services, account, &primary).await,
                            _ => Reply::NotFound,
                        };
                    }
                    Ok(None) => {}
                    Err(e) => return unavailable(e),
                }
            }
            Reply::NotFound
        }
        "senderlogin" => match store.sender_logins(&address).await {
            Ok(logins) if logins.is_empty() => Reply::NotFound,
            Ok(logins) => Reply::Ok(
                logins
                    .iter()
                    .map(EmailAddress::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Err(e) => unavailable(e),
        },
        "relayhost" => relay_maps::next_hop(services, &address, false).await,
        "transport" => relay_maps::next_hop(services, &address, true).await,
        _ => relay_maps::credentials(services, &address).await,
    }
}

/// `aliases` of a primary address: its forwards in effect, after the address itself
/// unless the account keeps no copy. Postfix delivers to an address that a lookup
/// answers with itself, and expands the others; no forward in effect, no answer (the
/// mailbox alone, whatever `deleteZohoMailCopy` says).
async fn forwards(
    services: &Services,
    account: mailplane_domain::AccountId,
    primary: &EmailAddress,
) -> Reply {
    match services.store.forwarding(account).await {
        Ok((targets, _)) if targets.is_empty() => Reply::NotFound,
        Ok((targets, keep_copy)) => {
            let copy = keep_copy.then_some(primary);
            Reply::Ok(
                copy.into_iter()
                    .chain(&targets)
                    .map(EmailAddress::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )
        }
        Err(e) => unavailable(e),
    }
}

/// Serves the socketmap protocol on `listener`, forever.
pub async fn serve(listener: Listener, services: Services, limits: Limits) {
    accept_loop(listener, "socketmap", limits, move |stream, peer, conn| {
        let services = services.clone();
        serve_requests(
            stream,
            conn,
            read_request,
            move |e| {
                tracing::info!(%peer, error = %e, "socketmap client dropped");
                Some(Reply::Perm(e.to_string()).encode())
            },
            async move |body: Vec<u8>| {
                let reply = lookup(&services, &body).await;
                // The value of a relaycreds answer is a password: log the kind only.
                tracing::debug!(
                    %peer,
                    request = %String::from_utf8_lossy(&body),
                    found = matches!(reply, Reply::Ok(_)),
                    "socketmap"
                );
                Some(reply.encode())
            },
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(input: &[u8]) -> Vec<Result<Option<Vec<u8>>, String>> {
        crate::test_support::read_all(input, read_request)
    }

    #[test]
    fn netstrings_in_a_row() {
        let got = frames(b"21:relayhost a@b.example,0:,");
        assert_eq!(got[0], Ok(Some(b"relayhost a@b.example".to_vec())));
        assert_eq!(got[1], Ok(Some(Vec::new())));
        assert_eq!(got[2], Ok(None));
    }

    #[test]
    fn broken_netstrings() {
        for bad in [&b":x,"[..], b"1x:a,", b"3:abc;", b"abc", b"-1:a,"] {
            assert!(frames(bad)[0].is_err(), "{bad:?}");
        }
        assert!(frames(b"3:ab")[0].is_err(), "truncated");
        assert!(frames(b"10001:")[0].is_err(), "too large");
        assert!(
            frames(b"0000000000000000000000000001:a,")[0].is_ok(),
            "leading zeros"
        );
    }

    #[test]
    fn requests_need_a_map_and_a_key() {
        assert_eq!(parse(b"relayhost a@b"), Ok(("relayhost", "a@b")));
        assert_eq!(parse(b"relayhost a b"), Ok(("relayhost", "a b")));
        assert!(parse(b"relayhost").is_err());
        assert!(parse(b"relayhost ").is_err());
        assert!(parse(&[0xff, b' ', b'a']).is_err());
    }

    #[test]
    fn replies_are_netstrings() {
        assert_eq!(Reply::NotFound.encode(), b"9:NOTFOUND ,");
        assert_eq!(Reply::Ok("x:y".into()).encode(), b"6:OK x:y,");
        assert_eq!(Reply::Perm("no".into()).encode(), b"7:PERM no,");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        #[test]
        fn any_bytes_frame_or_fail_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            let results = frames(&input);
            prop_assert!(!results.is_empty());
        }
    }
}
