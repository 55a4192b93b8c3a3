//! How a client names itself at the token endpoint: `client_id` and `client_secret` in the
//! form, as Zoho's examples do, or HTTP Basic, which Zoho documents too and which generic
//! OAuth libraries send by default (RFC 6749 §2.3.1).

use axum::http::{header, HeaderMap};
use base64::Engine;

/// The client's id and secret, and whether they came in the `Authorization` header (a
/// refusal is then a 401 with a challenge, as RFC 6749 §5.2 wants).
#[derive(Debug, PartialEq, Eq)]
pub struct ClientCredentials {
    pub id: String,
    pub secret: String,
    pub basic: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ClientAuthError {
    /// An `Authorization: Basic` header that does not hold `id:secret`.
    BadBasic,
    /// Basic and form credentials that disagree: a client uses one method (RFC 6749
    /// §2.3), and guessing which one it meant could authenticate the wrong one.
    Conflict,
}

/// The credentials of a token request. Form values equal to the header's are tolerated
/// (some clients send both); other schemes in `Authorization` are not client
/// authentication and are ignored.
pub fn client_credentials(
    headers: &HeaderMap,
    form_id: &str,
    form_secret: &str,
) -> Result<ClientCredentials, ClientAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(ClientCredentials {
            id: form_id.to_string(),
            secret: form_secret.to_string(),
            basic: false,
        });
    };
    let value = value.to_str().map_err(|_| ClientAuthError::BadBasic)?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return if value.trim().eq_ignore_ascii_case("basic") {
            Err(ClientAuthError::BadBasic)
        } else {
            client_credentials(&HeaderMap::new(), form_id, form_secret)
        };
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return client_credentials(&HeaderMap::new(), form_id, form_secret);
    }
    let (id, secret) = basic_pair(encoded.trim()).ok_or(ClientAuthError::BadBasic)?;
    if (!form_id.is_empty() && form_id != id) || (!form_secret.is_empty() && form_secret != secret)
    {
        return Err(ClientAuthError::Conflict);
    }
    Ok(ClientCredentials {
        id,
        secret,
        basic: true,
    })
}

/// `base64(urlencode(id) ":" urlencode(secret))`, decoded; `None` if any step fails.
fn basic_pair(encoded: &str) -> Option<(String, String)> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(encoded).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    let (id, secret) = (form_decode(id)?, form_decode(secret)?);
    if id.is_empty() || id.chars().chain(secret.chars()).any(char::is_control) {
        return None;
    }
    Some((id, secret))
}

/// `application/x-www-form-urlencoded` decoding of one value. Ids and secrets mailplane
/// issues need no encoding, so a client that does not encode them is read the same.
fn form_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(auth: &str) -> HeaderMap {
        HeaderMap::from_iter([(header::AUTHORIZATION, auth.parse().unwrap())])
    }

    fn basic(pair: &str) -> HeaderMap {
        let engine = &base64::engine::general_purpose::STANDARD;
        with(&format!("Basic {}", engine.encode(pair)))
    }

    fn creds(id: &str, secret: &str, basic: bool) -> ClientCredentials {
        ClientCredentials {
            id: id.into(),
            secret: secret.into(),
            basic,
        }
    }

    #[test]
    fn form_basic_and_both_alike() {
        assert_eq!(
            client_credentials(&HeaderMap::new(), "1000.A", "s"),
            Ok(creds("1000.A", "s", false))
        );
        assert_eq!(
            client_credentials(&basic("1000.A:s%3A+x"), "", ""),
            Ok(creds("1000.A", "s: x", true))
        );
        assert_eq!(
            client_credentials(&basic("1000.A:s"), "1000.A", "s"),
            Ok(creds("1000.A", "s", true))
        );
        // Not client authentication: the form decides.
        assert_eq!(
            client_credentials(&with("Bearer abc"), "1000.A", "s"),
            Ok(creds("1000.A", "s", false))
        );
        assert_eq!(
            client_credentials(&with("bAsIc  MTAwMC5BOnM= "), "", ""),
            Ok(creds("1000.A", "s", true))
        );
    }

    #[test]
    fn refusals() {
        for h in [
            with("Basic"),
            with("Basic !!!"),
            basic("no-colon"),
            basic(":secret"),
            basic("id:%FF"),
            basic("id:a\u{1}b"),
            with("Basic /w=="),
        ] {
            assert_eq!(
                client_credentials(&h, "", ""),
                Err(ClientAuthError::BadBasic),
                "{h:?}"
            );
        }
        assert_eq!(
            client_credentials(&basic("1000.A:s"), "1000.B", ""),
            Err(ClientAuthError::Conflict)
        );
        assert_eq!(
            client_credentials(&basic("1000.A:s"), "1000.A", "t"),
            Err(ClientAuthError::Conflict)
        );
    }
}
