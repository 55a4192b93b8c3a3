//! OAuth as Zoho's accounts server does it: registered clients, refresh tokens (grants),
//! short-lived authorization codes, access tokens minted from a refresh token. What is
//! shared by the backends: the shapes, the limits and the secrets' formats.

use base64::Engine;
use mailplane_domain::{ScopeSet, Zuid};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{redacted, StoreError, REDACTED};

pub(crate) mod flow;
pub(crate) mod org_clients;

pub use org_clients::{OrgClient, MAX_CLIENTS_PER_ORG, MAX_LISTED_CLIENTS};

/// Live refresh tokens per user and client; issuing one more revokes the oldest.
pub const MAX_REFRESH_TOKENS_PER_GRANT: usize = 20;
/// How long an authorization code may wait for its exchange, sign-in and consent included.
pub const AUTH_CODE_TTL_MS: i64 = 2 * 60 * 1000;

pub const REFRESH_TOKEN_PREFIX: &str = "mprt_";
pub const CLIENT_SECRET_PREFIX: &str = "mpcs_";
pub const AUTH_CODE_PREFIX: &str = "mpac_";

/// A prefix and 256 random bits, base64url: recognisable by secret scanners.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A client id in Zoho's style: `1000.` and 32 upper-case hexadecimal digits.
pub fn new_client_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("1000.{}", hex::encode_upper(bytes))
}

/// A registered client, as the sign-in and consent pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uri: Option<String>,
}

/// A new client's credentials; the secret is shown once and stored as a digest.
#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

// By hand, not derived: a value that reaches a log line or a panic message through `{:?}`
// must not carry the secret with it.
impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &REDACTED)
            .finish()
    }
}

/// An authorization code waiting for the user's consent.
#[derive(Debug, Clone)]
pub struct PendingCode {
    pub client: OAuthClient,
    pub zuid: Zuid,
    pub scopes: ScopeSet,
    pub redirect_uri: String,
}

/// What the token endpoint hands out.
#[derive(Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    /// Only for `grant_type=authorization_code`.
    pub refresh_token: Option<String>,
    pub scopes: ScopeSet,
    pub expires_in_secs: u64,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("access_token", &REDACTED)
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("scopes", &self.scopes)
            .field("expires_in_secs", &self.expires_in_secs)
            .finish()
    }
}

/// The token endpoint's refusals, in Zoho's words (answered as HTTP 200 `{"error": …}`).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Unknown client, or the wrong secret.
    #[error("invalid_client")]
    InvalidClient,
    /// Unknown, expired, used or unapproved code; unknown or revoked refresh token.
    #[error("invalid_code")]
    InvalidCode,
    /// The redirect URI differs from the one the code was issued for.
    #[error("invalid_redirect_uri")]
    InvalidRedirectUri,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// PKCE (RFC 7636): the challenge an authorization request binds to its code, which the
/// token request must answer with the matching `code_verifier`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge {
    /// `plain` or `S256`, as the client asked (kept for the record).
    pub method: &'static str,
    /// base64url(SHA-256(verifier)): the S256 challenge as given, or the plain challenge
    /// hashed here, so that one comparison serves both and no stored value is a verifier.
    pub digest: String,
}

/// A `code_challenge` or `code_challenge_method` RFC 7636 does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidChallenge;

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]` (verifiers and, with the
/// same grammar, plain challenges; an S256 challenge is 43 base64url characters).
fn pkce_grammar(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl CodeChallenge {
    /// The challenge of an authorization request's parameters (empty means absent): none
    /// without a `code_challenge`, and `plain` when it names no method (RFC 7636 §4.3). A
    /// method without a challenge is refused: the client meant PKCE and sent none.
    pub fn from_request(challenge: &str, method: &str) -> Result<Option<Self>, InvalidChallenge> {
        if challenge.is_empty() {
            return if method.is_empty() {
                Ok(None)
            } else {
                Err(InvalidChallenge)
            };
        }
        if !pkce_grammar(challenge) {
            return Err(InvalidChallenge);
        }
        match method {
            "S256" if challenge.len() == 43 => Ok(Some(Self {
                method: "S256",
                digest: challenge.to_string(),
            })),
            "plain" | "" => Ok(Some(Self {
                method: "plain",
                digest: s256(challenge),
            })),
            _ => Err(InvalidChallenge),
        }
    }
}

/// Whether a token request's `code_verifier` answers the challenge stored with its code.
/// A verifier for a code issued without a challenge is refused too (RFC 9700 §2.1.1: it
/// is how a PKCE downgrade looks). The comparison need not be constant-time: a code gets
/// one try, whatever the answer.
pub(crate) fn pkce_satisfied(stored_digest: Option<&str>, verifier: Option<&str>) -> bool {
    match (stored_digest, verifier) {
        (None, None) => true,
        (Some(digest), Some(v)) => pkce_grammar(v) && s256(v) == digest,
        (None, Some(_)) | (Some(_), None) => false,
    }
}

/// What a code exchange did inside its transaction. A PKCE refusal must still commit (the
/// code is spent: no second try with another verifier), so it is not an error, which
/// would roll the spend back.
pub(crate) enum Exchange {
    Tokens(IssuedTokens),
    SpentOnPkce,
}

impl Exchange {
    /// The token endpoint's answer: a spent code is an `invalid_code` like any other.
    pub(crate) fn into_result(self) -> Result<IssuedTokens, OAuthError> {
        match self {
            Exchange::Tokens(t) => Ok(t),
            Exchange::SpentOnPkce => Err(OAuthError::InvalidCode),
        }
    }
}

/// The user a sign-in names: the zuid, the stored password hash (none if the user has no
/// password) and when the user expires (`userExpiry`; none for never).
#[derive(Clone)]
pub struct Credentials {
    pub zuid: Zuid,
    pub password_hash: Option<String>,
    pub expires_ms: Option<i64>,
}

impl Credentials {
    /// Whether the user has expired: such a user cannot sign in, whatever the password.
    pub fn expired(&self) -> bool {
        mailplane_domain::is_expired(self.expires_ms, crate::now_ms())
    }
}

// A password hash is not a password, but in a log it is one offline guessing away from it.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("zuid", &self.zuid)
            .field("password_hash", &redacted(&self.password_hash))
            .field("expires_ms", &self.expires_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636, appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn s256_matches_the_rfc_example() {
        let c = CodeChallenge::from_request(CHALLENGE, "S256")
            .unwrap()
            .unwrap();
        assert!(pkce_satisfied(Some(&c.digest), Some(VERIFIER)));
        assert!(!pkce_satisfied(Some(&c.digest), Some(CHALLENGE)));
        assert!(!pkce_satisfied(Some(&c.digest), None));
    }

    #[test]
    fn plain_is_the_default_and_is_stored_hashed() {
        let c = CodeChallenge::from_request(VERIFIER, "").unwrap().unwrap();
        assert_eq!(c.method, "plain");
        assert_ne!(c.digest, VERIFIER);
        assert!(pkce_satisfied(Some(&c.digest), Some(VERIFIER)));
    }

    #[test]
    fn refusals() {
        assert_eq!(CodeChallenge::from_request("", ""), Ok(None));
        for (challenge, method) in [
            (CHALLENGE, "S512"),
            (CHALLENGE, "s256"),
            ("", "S256"),
            ("short", "plain"),
            (&"a".repeat(129)[..], "plain"),
            (&format!("{}!", &VERIFIER[1..])[..], "plain"),
            // An S256 challenge is a SHA-256 digest: 43 characters, no more.
            (&"a".repeat(44)[..], "S256"),
        ] {
            assert_eq!(
                CodeChallenge::from_request(challenge, method),
                Err(InvalidChallenge),
                "{challenge:?} {method:?}"
            );
        }
        // A verifier for a code without a challenge: a downgrade.
        assert!(!pkce_satisfied(None, Some(VERIFIER)));
        assert!(pkce_satisfied(None, None));
    }
}
