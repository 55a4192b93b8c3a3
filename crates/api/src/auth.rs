//! Reading the `Authorization` header into a principal.

use axum::http::{header, HeaderMap};
use mailplane_domain::Access;
use mailplane_store::{Grant, Principal, Store};

use crate::error::ApiError;

/// The token of `Zoho-oauthtoken <token>` or `Bearer <token>` (scheme case-insensitive).
pub(crate) fn token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::MissingTicket)?;
    let text = value.to_str().map_err(|_| ApiError::InvalidToken)?.trim();
    let (scheme, rest) = text
        .split_once(char::is_whitespace)
        .ok_or(ApiError::InvalidToken)?;
    let token = rest.trim();
    let known =
        scheme.eq_ignore_ascii_case("Zoho-oauthtoken") || scheme.eq_ignore_ascii_case("Bearer");
    if !known || token.is_empty() || token.len() > 512 {
        return Err(ApiError::InvalidToken);
    }
    Ok(token)
}

/// The token of the request, if its `Authorization` header has a readable one.
pub fn token_of(headers: &HeaderMap) -> Option<&str> {
    token(headers).ok()
}

pub async fn authenticate(store: &Store, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = token(headers)?;
    store
        .authenticate(token)
        .await?
        .ok_or(ApiError::InvalidToken)
}

/// The grant of an admin URL: the token's principal, with the organization scope for
/// `access` and an admin role.
pub async fn admin(store: &Store, headers: &HeaderMap, access: Access) -> Result<Grant, ApiError> {
    Ok(authenticate(store, headers).await?.admin_grant(access)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn schemes() {
        assert_eq!(token(&with("Zoho-oauthtoken abc")).unwrap(), "abc");
        assert_eq!(token(&with("zoho-oauthtoken   abc ")).unwrap(), "abc");
        assert_eq!(token(&with("Bearer abc")).unwrap(), "abc");
        assert!(matches!(
            token(&with("Basic abc")),
            Err(ApiError::InvalidToken)
        ));
        assert!(matches!(
            token(&with("Zoho-oauthtoken")),
            Err(ApiError::InvalidToken)
        ));
        assert!(matches!(
            token(&HeaderMap::new()),
            Err(ApiError::MissingTicket)
        ));
    }

    proptest! {
        // The issue asks for at least 10,000 cases per parser and run.
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        #[test]
        fn header_parser_never_panics(s in "[ -~]{0,100}") {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let mut h = HeaderMap::new();
                h.insert(header::AUTHORIZATION, v);
                if let Err(e) = token(&h) {
                    crate::command::tests::assert_client_error(e);
                }
            }
        }
    }
}
