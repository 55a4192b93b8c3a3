//! OAuth as Zoho's accounts server does it: registered clients, refresh tokens (grants),
//! short-lived authorization codes, access tokens minted from a refresh token. What is
//! shared by the backends: the shapes, the limits and the secrets' formats.

use base64::Engine;
use mailplane_domain::{ScopeSet, Zuid};
use rand::RngCore;

use crate::StoreError;

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
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
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
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    /// Only for `grant_type=authorization_code`.
    pub refresh_token: Option<String>,
    pub scopes: ScopeSet,
    pub expires_in_secs: u64,
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

/// The user a sign-in names: the zuid and the stored password hash (none if the user
/// has no password).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub zuid: Zuid,
    pub password_hash: Option<String>,
}
