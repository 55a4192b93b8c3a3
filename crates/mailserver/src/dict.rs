//! Dovecot's dict protocol (the `proxy` dict, version 3 as Dovecot 2.3 speaks it), for the
//! `dict` passdb and userdb: Dovecot asks mailplane who may log in and where an account's
//! mail lives, on every login and every delivery.
//!
//! A request is a line ended by `\n`; its first byte is the command. The client opens
//! with `H<major>\t<minor>\t<value type>\t<user>\t<dict name>` (no answer) and then asks
//! `L<key>\t<user>`; the answer is `O<value>` (found), `N` (not found) or `F<reason>` (a
//! temporary failure: Dovecot then fails the login or defers the delivery). Fields are
//! escaped with `\x01`: `\x011` is `\x01`, `\x01t` a tab, `\x01r` and `\x01n` CR and LF,
//! `\x010` NUL.
//!
//! Keys (Dovecot prefixes `shared/`; `<login>` is the name the user typed, lower-cased by
//! Dovecot's `auth_username_format`, `<service>` Dovecot's protocol name: `imap`, `pop3`,
//! `smtp` for Postfix's SASL, `lmtp`):
//! - `deny/<service>/<login>`: for a first passdb with `deny = yes`. Found, with the
//!   reason (`{"reason":"Account disabled"}`), when the account's settings refuse the
//!   login; not found otherwise. It is what blocks a disabled account at SMTP AUTH too:
//!   Postfix ignores `nologin`.
//! - `passdb/<service>/<login>`: `{"password":"{ARGON2ID}$argon2id$…","user":"<login>"}`
//!   for the primary address of a hosted account the settings allow: Dovecot verifies the
//!   password itself, so the plain password never crosses the socket. Not found for
//!   anything else (an alias, an unknown name, a user without a password, and, should the
//!   deny passdb be missing, a refused login).
//! - `userdb/<address>`: `{"mailbox":"<account id>"}` for any address of a hosted account
//!   (LMTP asks by recipient): the mailbox directory, which no update changes.
//!
//! Nothing is cached here; the Dovecot side is configured without an auth cache (see
//! `config::dovecot`). The listener is a UNIX socket only: it hands out password hashes,
//! and Dovecot 2.3's dict proxy connects to nothing else.

use mailplane_domain::{mail_login, EmailAddress};
use mailplane_store::StoreError;
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::listen::{accept_loop, serve_requests, Limits, Listener};
use crate::Services;

/// The longest line accepted. A key holds a service name and an address (at most 254
/// bytes); the bound is for clients that are not Dovecot.
pub const MAX_LINE_BYTES: usize = 4096;

/// The protocol's major version, the one Dovecot 2.3 speaks.
const MAJOR_VERSION: &str = "3";

/// One request line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Hello { major: String },
    Lookup { key: String },
}

/// An answer, before framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The hello has none.
    Nothing,
    Found(String),
    NotFound,
    Failed(String),
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Nothing => Vec::new(),
            Reply::Found(v) => format!("O{}\n", escape(v)).into_bytes(),
            Reply::NotFound => b"N\n".to_vec(),
            Reply::Failed(why) => format!("F{}\n", escape(why)).into_bytes(),
        }
    }
}

/// Why no request could be read. The connection is closed after any of them.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the client left in the middle of a line")]
    Truncated,
    #[error("line longer than {MAX_LINE_BYTES} bytes")]
    TooLarge,
    #[error("not a dict request: {0}")]
    Malformed(String),
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one request. `Ok(None)`: the client closed the connection between requests.
pub async fn read_request<R>(reader: &mut R) -> Result<Option<Request>, ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let mut line = Vec::new();
    // One byte past the bound tells an oversized line from one that fits exactly.
    let n = (&mut *reader)
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if n > MAX_LINE_BYTES {
        return Err(ReadError::TooLarge);
    }
    if line.pop() != Some(b'\n') {
        return Err(ReadError::Truncated);
    }
    let text = String::from_utf8(line)
        .map_err(|_| ReadError::Malformed("the line is not UTF-8".into()))?;
    parse(&text).map(Some)
}

fn parse(line: &str) -> Result<Request, ReadError> {
    let mut chars = line.chars();
    let command = chars.next();
    let fields: Vec<&str> = chars.as_str().split('\t').collect();
    match command {
        Some('H') => Ok(Request::Hello {
            major: unescape(fields[0])?,
        }),
        // The second field, the user the lookup is for, repeats what the key holds.
        Some('L') if !fields[0].is_empty() => Ok(Request::Lookup {
            key: unescape(fields[0])?,
        }),
        Some(c) => Err(ReadError::Malformed(format!(
            "command {c:?} is not served (only H and L)"
        ))),
        None => Err(ReadError::Malformed("empty line".into())),
    }
}

/// Undoes Dovecot's `\x01` escaping; a lone or unknown escape is malformed.
fn unescape(field: &str) -> Result<String, ReadError> {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\x01' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('1') => '\x01',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('n') => '\n',
            Some('0') => '\0',
            _ => return Err(ReadError::Malformed("a broken \\x01 escape".into())),
        });
    }
    Ok(out)
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\x01' => out.push_str("\x011"),
            '\t' => out.push_str("\x01t"),
            '\r' => out.push_str("\x01r"),
            '\n' => out.push_str("\x01n"),
            '\0' => out.push_str("\x010"),
            c => out.push(c),
        }
    }
    out
}

/// What a key asks.
#[derive(Debug, PartialEq, Eq)]
enum Key<'k> {
    Deny { service: &'k str, login: &'k str },
    Passdb { service: &'k str, login: &'k str },
    Userdb { address: &'k str },
}

fn key(key: &str) -> Option<Key<'_>> {
    let rest = key.strip_prefix("shared/")?;
    let (kind, rest) = rest.split_once('/')?;
    match kind {
        "deny" | "passdb" => {
            let (service, login) = rest.split_once('/')?;
            if service.is_empty() {
                return None;
            }
            Some(if kind == "deny" {
                Key::Deny { service, login }
            } else {
                Key::Passdb { service, login }
            })
        }
        "userdb" => Some(Key::Userdb { address: rest }),
        _ => None,
    }
}

fn unavailable(e: StoreError) -> Reply {
    tracing::error!(error = %e, "dict lookup failed");
    Reply::Failed("mailplane cannot read its database".into())
}

/// Answers one lookup.
pub async fn lookup(services: &Services, raw: &str) -> Reply {
    // A key mailplane does not serve is simply not found: Dovecot then says "unknown user".
    let Some(k) = key(raw) else {
        return Reply::NotFound;
    };
    let (Key::Deny { login, .. } | Key::Passdb { login, .. } | Key::Userdb { address: login }) = k;
    let Ok(address) = EmailAddress::parse(login) else {
        return Reply::NotFound;
    };
    let store = &services.store;
    match k {
        Key::Userdb { .. } => match store.mailbox(&address).await {
            Ok(Some((account, _))) => {
                Reply::Found(json!({ "mailbox": mail_login::mailbox_dir(account) }).to_string())
            }
            Ok(None) => Reply::NotFound,
            Err(e) => unavailable(e),
        },
        Key::Deny { service, .. } | Key::Passdb { service, .. } => {
            let found = match store.mail_login(&address).await {
                Ok(Some(found)) => found,
                Ok(None) => return Reply::NotFound,
                Err(e) => return unavailable(e),
            };
            let refusal = mail_login::refusal(&found, service, mailplane_store::now_ms());
            if matches!(k, Key::Deny { .. }) {
                return match refusal {
                    Some(reason) => {
                        tracing::info!(login = %address, service, reason, "mail login refused");
                        Reply::Found(json!({ "reason": reason }).to_string())
                    }
                    None => Reply::NotFound,
                };
            }
            let password = found
                .password_hash
                .as_deref()
                .and_then(mail_login::dovecot_password);
            match (refusal, password) {
                (None, Some(password)) => Reply::Found(
                    json!({ "password": password, "user": found.login.as_str() }).to_string(),
                ),
                _ => Reply::NotFound,
            }
        }
    }
}

/// Serves the dict protocol on `listener`, forever.
pub async fn serve(listener: Listener, services: Services, limits: Limits) {
    accept_loop(listener, "dict", limits, move |stream, peer, conn| {
        let services = services.clone();
        serve_requests(
            stream,
            conn,
            read_request,
            move |e| {
                tracing::info!(%peer, error = %e, "dict client dropped");
                None
            },
            async move |request: Request| {
                let reply = match request {
                    Request::Hello { major } if major == MAJOR_VERSION => Reply::Nothing,
                    Request::Hello { major } => {
                        tracing::warn!(%peer, major, "dict client speaks another protocol version");
                        return None;
                    }
                    Request::Lookup { key } => {
                        let reply = lookup(&services, &key).await;
                        // A passdb answer holds a password hash: log the kind only.
                        tracing::debug!(%peer, key, found = matches!(reply, Reply::Found(_)), "dict");
                        reply
                    }
                };
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

    fn requests(input: &[u8]) -> Vec<Result<Option<Request>, String>> {
        crate::test_support::read_all(input, read_request)
    }

    #[test]
    fn a_conversation_as_dovecot_opens_it() {
        let got = requests(
            b"H3\t2\t0\t\tmailplane\nLshared/passdb/imap/becky@zylker.com\tbecky@zylker.com\n",
        );
        assert_eq!(got[0], Ok(Some(Request::Hello { major: "3".into() })));
        assert_eq!(
            got[1],
            Ok(Some(Request::Lookup {
                key: "shared/passdb/imap/becky@zylker.com".into()
            }))
        );
        assert_eq!(got[2], Ok(None));
    }

    #[test]
    fn escapes_are_undone_and_broken_ones_refused() {
        assert_eq!(unescape("a\x01tb\x011c\x01n").unwrap(), "a\tb\x01c\n");
        assert!(unescape("a\x01").is_err());
        assert!(unescape("a\x01x").is_err());
        assert_eq!(escape("a\tb\x01\n"), "a\x01tb\x011\x01n");
        assert_eq!(
            unescape(&escape("x\t\r\n\0\x01y")).unwrap(),
            "x\t\r\n\0\x01y"
        );
    }

    #[test]
    fn bad_input_ends_the_conversation() {
        for bad in [
            &b"\n"[..],
            b"X123\n",
            b"L\tuser\n",
            b"Lshared/x\x01",
            b"L\xff\xfe\n",
        ] {
            let got = requests(bad);
            assert!(got[0].is_err(), "{bad:?}: {got:?}");
        }
        let mut long = b"L".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES));
        long.push(b'\n');
        assert!(requests(&long)[0].is_err(), "too long");
        assert!(
            requests(b"Lshared/userdb/a@b.example")[0].is_err(),
            "truncated"
        );
    }

    #[test]
    fn keys_name_what_they_ask() {
        assert_eq!(
            key("shared/deny/imap/a@b.example"),
            Some(Key::Deny {
                service: "imap",
                login: "a@b.example"
            })
        );
        assert_eq!(
            key("shared/passdb/smtp/a@b.example"),
            Some(Key::Passdb {
                service: "smtp",
                login: "a@b.example"
            })
        );
        assert_eq!(
            key("shared/userdb/a@b.example"),
            Some(Key::Userdb {
                address: "a@b.example"
            })
        );
        for unknown in [
            "priv/passdb/imap/a@b.example",
            "shared/passdb/a@b.example",
            "shared/passdb//a@b.example",
            "shared/quota/a@b.example",
            "shared",
        ] {
            assert_eq!(key(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn replies_are_lines() {
        assert_eq!(Reply::NotFound.encode(), b"N\n");
        assert_eq!(Reply::Found("{\"a\":1}".into()).encode(), b"O{\"a\":1}\n");
        assert_eq!(Reply::Failed("no\tdb".into()).encode(), b"Fno\x01tdb\n");
        assert!(Reply::Nothing.encode().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        #[test]
        fn any_bytes_frame_or_fail_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            let results = requests(&input);
            prop_assert!(!results.is_empty());
        }
    }
}
