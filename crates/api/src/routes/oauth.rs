//! The accounts server of Zoho's OAuth: `/oauth/v2/auth` (sign-in and consent pages),
//! `/oauth/v2/token` (code and refresh grants) and `/oauth/v2/token/revoke`.
//!
//! Parameters come in the query string or a form body, as Zoho accepts them. The token
//! endpoints answer errors as Zoho does: HTTP 200 with `{"error": "…"}`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mailplane_domain::ScopeRequest;
use mailplane_store::oauth::{CodeChallenge, IssuedTokens, OAuthClient, OAuthError};
use mailplane_store::{RequestMeta, StoreError};
use serde_json::json;

use super::pages;
use crate::client_auth::{client_credentials, ClientAuthError};
use crate::password_sign_in::{self, SignIn};
use crate::password_work::BUSY_RETRY_AFTER_SECS;
use crate::signin_limit::Throttled;
use crate::AppState;

/// Query string and form body, merged (the body wins on a repeated name).
fn params(query: Option<&str>, body: &Bytes) -> HashMap<String, String> {
    let mut out: HashMap<String, String> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default())
            .unwrap_or_default()
            .into_iter()
            .collect();
    if let Ok(text) = std::str::from_utf8(body) {
        out.extend(serde_urlencoded::from_str::<Vec<(String, String)>>(text).unwrap_or_default());
    }
    out
}

/// The parameters of an OAuth request: the query string and the form body, merged. A
/// body that cannot be read is answered here, in JSON, for every endpoint alike.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let query = req.uri().query().map(str::to_string);
        let body = Bytes::from_request(req, state).await.map_err(unreadable)?;
        Ok(Params(params(query.as_deref(), &body)))
    }
}

/// A form body that could not be read: too large (413) or broken off.
fn unreadable(r: BytesRejection) -> Response {
    let status = r.status();
    (status, Json(json!({ "error": if status == StatusCode::PAYLOAD_TOO_LARGE { "request_too_large" } else { "invalid_request" } })))
        .into_response()
}

fn get<'a>(p: &'a HashMap<String, String>, k: &str) -> &'a str {
    p.get(k).map(String::as_str).unwrap_or_default()
}

/// `redirect_uri` with `extra` appended to its query.
fn redirect(uri: &str, extra: &[(&str, &str)]) -> Response {
    let query = serde_urlencoded::to_string(extra).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, format!("{uri}{sep}{query}")),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
    )
        .into_response()
}

fn unavailable(e: StoreError) -> Response {
    tracing::error!(cause = %e, "OAuth storage error");
    pages::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service cannot complete this right now; try again shortly.",
    )
}

/// The authorization request, checked: a known client and its registered redirect URI.
struct AuthRequest {
    client: OAuthClient,
    redirect_uri: String,
    scopes: ScopeRequest,
    state: String,
    /// The PKCE challenge the code will be bound to.
    pkce: Option<CodeChallenge>,
}

/// Errors before the redirect URI is trusted are shown to the user; after, they go back
/// to the client in the redirect, as OAuth wants.
async fn auth_request(
    state: &AppState,
    p: &HashMap<String, String>,
) -> Result<AuthRequest, Response> {
    let client = match state.store.oauth_client(get(p, "client_id")).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(pages::error(StatusCode::BAD_REQUEST, "Unknown client_id.")),
        Err(e) => return Err(unavailable(e)),
    };
    let Some(registered) = client.redirect_uri.clone() else {
        return Err(pages::error(
            StatusCode::BAD_REQUEST,
            "This client has no redirect URI registered.",
        ));
    };
    let given = get(p, "redirect_uri");
    if !given.is_empty() && given != registered {
        return Err(pages::error(
            StatusCode::BAD_REQUEST,
            "The redirect_uri is not the one registered for this client.",
        ));
    }
    let state_param = get(p, "state").to_string();
    if get(p, "response_type") != "code" {
        return Err(redirect(
            &registered,
            &[
                ("error", "unsupported_response_type"),
                ("state", &state_param),
            ],
        ));
    }
    // Any of Zoho's scopes is accepted, so that clients asking for fixed sets get
    // through; a request that names nothing served here is refused all the same.
    let scopes = match ScopeRequest::parse(get(p, "scope")) {
        Ok(s) => s,
        Err(e) => {
            return Err(redirect(
                &registered,
                &[
                    ("error", "invalid_scope"),
                    ("error_description", &error_description(&e.to_string())),
                    ("state", &state_param),
                ],
            ))
        }
    };
    let Ok(pkce) =
        CodeChallenge::from_request(get(p, "code_challenge"), get(p, "code_challenge_method"))
    else {
        return Err(redirect(
            &registered,
            &[("error", "invalid_request"), ("state", &state_param)],
        ));
    };
    Ok(AuthRequest {
        client,
        redirect_uri: registered,
        scopes,
        state: state_param,
        pkce,
    })
}

/// RFC 6749 §4.1.2.1: printable ASCII without `"` and `\`.
fn error_description(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, ' '..='~') && !matches!(c, '"' | '\\'))
        .collect()
}

/// The fields the sign-in form carries from the authorization request to its post.
fn carried(p: &HashMap<String, String>) -> Vec<(&'static str, String)> {
    [
        "response_type",
        "client_id",
        "scope",
        "redirect_uri",
        "state",
        "access_type",
        "code_challenge",
        "code_challenge_method",
    ]
    .into_iter()
    .map(|k| (k, get(p, k).to_string()))
    .collect()
}

fn sign_in_page(
    status: StatusCode,
    client: &OAuthClient,
    p: &HashMap<String, String>,
    message: Option<&str>,
) -> Response {
    let fields = carried(p);
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pages::sign_in(status, &client.name, &refs, message)
}

/// Zoho: `GET /oauth/v2/auth` shows the sign-in page.
pub async fn authorize(State(state): State<AppState>, Params(p): Params) -> Response {
    match auth_request(&state, &p).await {
        Ok(req) => sign_in_page(StatusCode::OK, &req.client, &p, None),
        Err(resp) => resp,
    }
}

/// The sign-in form's post: on the right password, the consent page.
pub async fn sign_in(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Params(p): Params,
) -> Response {
    let req = match auth_request(&state, &p).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let password = get(&p, "password").to_string();
    let user = match password_sign_in::check(&state, &meta.client_addr, get(&p, "email"), password)
        .await
    {
        SignIn::Signed(user) => user,
        SignIn::Wrong => {
            return sign_in_page(
                StatusCode::OK,
                &req.client,
                &p,
                Some("Wrong email address or password."),
            )
        }
        SignIn::Expired => {
            return sign_in_page(
                StatusCode::OK,
                &req.client,
                &p,
                Some("This account has expired. Ask your administrator."),
            )
        }
        SignIn::Throttled(t) => return throttled(&req.client, &p, t),
        SignIn::Busy => return busy(&req.client, &p),
        SignIn::Unavailable(e) => return unavailable(e),
    };
    match state
        .store
        .issue_code(
            &req.client.client_id,
            user.zuid,
            req.scopes.clone(),
            &req.redirect_uri,
            req.pkce.clone(),
        )
        .await
    {
        Ok(ticket) => {
            let served: Vec<String> = req
                .scopes
                .served()
                .iter()
                .map(ToString::to_string)
                .collect();
            let unserved: Vec<String> = req
                .scopes
                .unserved()
                .iter()
                .map(ToString::to_string)
                .collect();
            pages::consent(&req.client.name, &served, &unserved, &ticket, &req.state)
        }
        Err(e) => unavailable(e),
    }
}

/// A sign-in refused without verifying: 429 with the sign-in page and `Retry-After`. The
/// same for an unknown address as for a user, so it tells nothing about either.
fn throttled(client: &OAuthClient, p: &HashMap<String, String>, t: Throttled) -> Response {
    tracing::info!(limit = t.reason, "sign-in throttled");
    let mut resp = sign_in_page(
        StatusCode::TOO_MANY_REQUESTS,
        client,
        p,
        Some("Too many failed sign-ins. Try again later."),
    );
    let secs = t.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    resp
}

/// A sign-in not checked because every argon2 slot stayed taken: 503 with the sign-in
/// page (the user may simply submit again) and `Retry-After`.
fn busy(client: &OAuthClient, p: &HashMap<String, String>) -> Response {
    tracing::info!("sign-in refused: every argon2 slot is taken");
    let mut resp = sign_in_page(
        StatusCode::SERVICE_UNAVAILABLE,
        client,
        p,
        Some("The server is busy. Try again in a moment."),
    );
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(BUSY_RETRY_AFTER_SECS),
    );
    resp
}

/// The consent form's post: back to the client with the code, or with `access_denied`.
pub async fn consent(State(state): State<AppState>, Params(p): Params) -> Response {
    let (ticket, state_param) = (get(&p, "ticket"), get(&p, "state"));
    let approve = get(&p, "decision") == "approve";
    match state.store.decide_code(ticket, approve).await {
        Ok(Some(uri)) if approve => redirect(
            &uri,
            &[
                ("state", state_param),
                ("code", ticket),
                ("location", "us"),
                ("accounts-server", &state.public_url),
            ],
        ),
        Ok(Some(uri)) => redirect(&uri, &[("error", "access_denied"), ("state", state_param)]),
        Ok(None) => pages::error(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired or was already used. Start again from the application.",
        ),
        Err(e) => unavailable(e),
    }
}

fn oauth_error(e: OAuthError) -> Response {
    let code = match e {
        OAuthError::InvalidClient => "invalid_client",
        OAuthError::InvalidCode => "invalid_code",
        OAuthError::InvalidRedirectUri => "invalid_redirect_uri",
        OAuthError::Store(e) => {
            tracing::error!(cause = %e, "OAuth storage error");
            let status = if matches!(e, StoreError::Unavailable(_)) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return (status, Json(json!({ "error": "server_error" }))).into_response();
        }
    };
    // Zoho answers refusals with HTTP 200 and an `error` member.
    Json(json!({ "error": code })).into_response()
}

/// A refused client that authenticated with HTTP Basic: 401 and a challenge (RFC 6749
/// §5.2), where the form's refusals keep Zoho's 200.
fn basic_refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic realm=\"oauth\""),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Json(json!({ "error": "invalid_client" })),
    )
        .into_response()
}

/// `scope` is the served scopes the token carries: what it may do. A client that asked
/// for more learns here which of its scopes were granted (RFC 6749 §5.1).
fn tokens(t: IssuedTokens, api_domain: &str) -> Response {
    let mut body = json!({
        "access_token": t.access_token,
        "api_domain": api_domain,
        "token_type": "Bearer",
        "expires_in": t.expires_in_secs,
        "scope": t.scopes.to_string(),
    });
    if let Some(r) = t.refresh_token {
        body["refresh_token"] = json!(r);
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// Zoho: `POST /oauth/v2/token`. The client authenticates in the form or with HTTP
/// Basic. A `scope` parameter is not read: the grant's scopes decide.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(p): Params,
) -> Response {
    let client = match client_credentials(&headers, get(&p, "client_id"), get(&p, "client_secret"))
    {
        Ok(c) => c,
        Err(ClientAuthError::BadBasic) => return basic_refused(),
        Err(ClientAuthError::Conflict) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "invalid_request" })),
            )
                .into_response()
        }
    };
    let (client_id, secret) = (client.id.as_str(), client.secret.as_str());
    let ttl = state.access_token_ttl_secs;
    let result = match get(&p, "grant_type") {
        "authorization_code" => {
            let redirect_uri = Some(get(&p, "redirect_uri")).filter(|r| !r.is_empty());
            let verifier = Some(get(&p, "code_verifier")).filter(|v| !v.is_empty());
            state
                .store
                .exchange_code(
                    client_id,
                    secret,
                    get(&p, "code"),
                    redirect_uri,
                    verifier,
                    ttl,
                )
                .await
        }
        "refresh_token" => {
            state
                .store
                .refresh_access(client_id, secret, get(&p, "refresh_token"), ttl)
                .await
        }
        _ => return Json(json!({ "error": "unsupported_grant_type" })).into_response(),
    };
    match result {
        Ok(t) => tokens(t, &state.public_url),
        Err(OAuthError::InvalidClient) if client.basic => basic_refused(),
        Err(e) => oauth_error(e),
    }
}

/// Zoho: `POST /oauth/v2/token/revoke?token=…`: a refresh token and every access token
/// minted from it. Answers success for an unknown token too, so the answer tells nothing.
pub async fn revoke(State(state): State<AppState>, Params(p): Params) -> Response {
    match state.store.revoke_oauth_token(get(&p, "token")).await {
        Ok(_) => Json(json!({ "status": "success" })).into_response(),
        Err(e) => oauth_error(OAuthError::Store(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_merge_query_and_form() {
        let p = params(Some("a=1&b=x%20y"), &Bytes::from_static(b"b=2&c=%3D"));
        assert_eq!(
            (get(&p, "a"), get(&p, "b"), get(&p, "c"), get(&p, "d")),
            ("1", "2", "=", "")
        );
    }

    #[test]
    fn redirect_appends_to_an_existing_query() {
        let r = redirect("https://app.example/cb?x=1", &[("code", "a b")]);
        assert_eq!(
            r.headers()[header::LOCATION],
            "https://app.example/cb?x=1&code=a+b"
        );
    }
}
