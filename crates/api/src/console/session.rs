//! The console's session cookie, its CSRF token and the checks every form post passes.
//!
//! The cookie holds a console token (see `mailplane_store::console_sessions`): random,
//! stored as a digest, revocable, with an idle and an absolute limit. The CSRF token of a
//! session is derived from the session's token, so it needs no storage of its own and
//! dies with the session; a page shows it, and it tells nothing of the cookie.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use mailplane_store::Principal;
use sha2::{Digest, Sha256};

use super::render;
use crate::AppState;

/// The cookie's name: with the `__Host-` prefix when it is `Secure` (bound to this host
/// and path `/`, never set by a subdomain).
pub(crate) fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-mailplane_console"
    } else {
        "mailplane_console"
    }
}

/// The `Set-Cookie` of a new session: not readable by scripts, not sent with cross-site
/// posts, and only over TLS when the console is served over https.
pub(crate) fn set_cookie(token: &str, secure: bool, max_age_secs: i64) -> HeaderValue {
    let secure_attr = if secure { "; Secure" } else { "" };
    let value = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure_attr}",
        cookie_name(secure)
    );
    HeaderValue::from_str(&value).expect("a token is printable ASCII")
}

/// The `Set-Cookie` that removes the cookie.
pub(crate) fn clear_cookie(secure: bool) -> HeaderValue {
    let secure_attr = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure_attr}",
        cookie_name(secure)
    ))
    .expect("printable ASCII")
}

/// The session token the request's cookie holds, if any.
pub(crate) fn cookie_token(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        // A token is at most a few dozen characters; anything longer is not one.
        .filter(|v| !v.is_empty() && v.len() <= 512)
}

/// The CSRF token of a session: a digest of its token under a label of its own, so that
/// it is neither the token nor the digest the database keeps.
pub(crate) fn csrf_of(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"mailplane console csrf\0");
    h.update(token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

/// A signed-in user, from a live session.
#[derive(Clone)]
pub(crate) struct Session {
    /// The session's token: presented to the API's handlers as their bearer token.
    pub token: String,
    pub principal: Principal,
    pub csrf: String,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.principal.role().is_admin()
    }

    /// The request headers that make the API's handlers act as this session.
    pub fn as_bearer(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&format!("Zoho-oauthtoken {}", self.token)) {
            headers.insert(header::AUTHORIZATION, v);
        }
        headers
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    /// Without a live session: to the sign-in page.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie_token(&parts.headers, state.console.secure_cookie) else {
            return Err(Redirect::to("/console/sign-in").into_response());
        };
        match state.store.console_session(&token).await {
            Ok(Some(s)) => Ok(Session {
                csrf: csrf_of(&token),
                token,
                principal: s.principal,
            }),
            Ok(None) => {
                let mut resp = Redirect::to("/console/sign-in").into_response();
                resp.headers_mut().insert(
                    header::SET_COOKIE,
                    clear_cookie(state.console.secure_cookie),
                );
                Err(resp)
            }
            Err(e) => Err(render::unavailable(e.into())),
        }
    }
}

/// Why a post is refused before anything is looked at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Forgery {
    /// The `Origin` (or `Sec-Fetch-Site`) says the form was sent from another site.
    CrossOrigin,
    /// The form's token is missing or not this session's.
    Token,
}

/// The origin checks of a post: a browser names the page's origin in `Origin` on every
/// post; one that names another (or `null`) is refused, as is one that says it is
/// cross-site. Clients that send no `Origin` (not browsers) rely on the token alone.
pub(crate) fn check_origin(headers: &HeaderMap, public_url: &str) -> Result<(), Forgery> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(Forgery::CrossOrigin);
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| Forgery::CrossOrigin)?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let ours = origin == origin_of(public_url)
        || (!host.is_empty()
            && (origin == format!("http://{host}") || origin == format!("https://{host}")));
    if ours {
        Ok(())
    } else {
        Err(Forgery::CrossOrigin)
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find('/').map_or(url.len(), |j| i + 3 + j);
            &url[..end]
        }
        None => url,
    }
}

/// A post's CSRF token against the session's, compared in constant time.
pub(crate) fn check_token(session: &Session, given: Option<&str>) -> Result<(), Forgery> {
    let given = given.unwrap_or_default().as_bytes();
    let expected = session.csrf.as_bytes();
    let same = given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Forgery::Token)
    }
}

/// The checks of every state-changing post of a signed-in page: the origin, then the
/// session's CSRF token. A refusal changes nothing and says so.
pub(crate) async fn check_post(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    form: &super::form::Form,
) -> Result<(), Response> {
    let checked = check_origin(headers, &state.public_url)
        .and_then(|()| check_token(session, Some(form.get("csrf"))));
    match checked {
        Ok(()) => Ok(()),
        Err(why) => {
            tracing::info!(?why, zuid = %session.principal.zuid(), "console post refused");
            let nav = render::Nav::of(state, session, "").await;
            Err(render::message(
                axum::http::StatusCode::FORBIDDEN,
                Some(nav),
                "Nothing was changed",
                "This form came from another site or from a page that is out of date. \
                 Reload the page and try again.",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins() {
        let url = "https://mail.example.com";
        assert_eq!(check_origin(&with(&[]), url), Ok(()));
        assert_eq!(
            check_origin(&with(&[("origin", "https://mail.example.com")]), url),
            Ok(())
        );
        assert_eq!(
            check_origin(
                &with(&[
                    ("origin", "http://127.0.0.1:8080"),
                    ("host", "127.0.0.1:8080")
                ]),
                url
            ),
            Ok(())
        );
        for bad in [
            "https://evil.example",
            "null",
            "https://mail.example.com.evil.example",
        ] {
            assert_eq!(
                check_origin(&with(&[("origin", bad), ("host", "mail.example.com")]), url),
                Err(Forgery::CrossOrigin),
                "{bad}"
            );
        }
        assert_eq!(
            check_origin(&with(&[("sec-fetch-site", "cross-site")]), url),
            Err(Forgery::CrossOrigin)
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/x/y"),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn the_csrf_token_is_neither_the_token_nor_its_stored_digest() {
        let t = "mpa_abc";
        assert_ne!(csrf_of(t), t);
        assert_ne!(csrf_of(t), mailplane_store::secrets::token_digest(t));
        assert_eq!(csrf_of(t), csrf_of(t));
        assert_ne!(csrf_of(t), csrf_of("mpa_abd"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = with(&[("cookie", "a=1; mailplane_console=tok; b=2")]);
        assert_eq!(cookie_token(&h, false).as_deref(), Some("tok"));
        assert_eq!(cookie_token(&h, true), None);
        let attr = set_cookie("tok", true, 60);
        let attr = attr.to_str().unwrap();
        for part in ["__Host-", "HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(attr.contains(part), "{attr}");
        }
        assert!(!set_cookie("tok", false, 60)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}
