//! mailplane's HTTP layer: the routes of the Zoho Mail Accounts API, their wire formats
//! and the error envelope.

// The OpenAPI document is one large `json!` literal.
#![recursion_limit = "256"]

mod auth;
mod bad_token_limit;
mod client_addr;
mod client_auth;
mod command;
mod console;
mod error;
mod key_mail;
mod lenient;
pub mod metrics;
pub mod openapi;
mod password_sign_in;
mod password_work;
mod rate_limit;
pub mod refusal_log;
mod routes;
mod signin_limit;
mod view;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mailplane_store::{RequestMeta, Store};
use rand::RngCore;
use tracing::Instrument;

pub use bad_token_limit::BadTokenLimit;
pub use client_addr::{IpNet, TrustedProxies};
pub use command::RelayPolicy;
pub use console::ConsoleSettings;
pub use error::ApiError;
pub use password_work::PasswordWork;
pub use rate_limit::RateLimiter;
pub use refusal_log::RefusalLog;
pub use signin_limit::{SignInLimiter, SignInPolicy};

/// Bodies above this are refused with 413 (contract §4).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The base of the `URI` fields, without a trailing slash.
    pub public_url: String,
    /// Lifetime of access tokens minted by the OAuth token endpoint.
    pub access_token_ttl_secs: u64,
    pub signin_limiter: std::sync::Arc<SignInLimiter>,
    pub metrics: std::sync::Arc<metrics::Metrics>,
    pub relay_policy: RelayPolicy,
    /// Per-token request rate limit; `None` for none.
    pub rate_limiter: Option<std::sync::Arc<RateLimiter>>,
    /// The longest a request may take before it is answered 503.
    pub request_timeout: std::time::Duration,
    /// A client that has not sent its headers by then is disconnected (slow clients); an
    /// idle keep-alive connection as well (hyper starts the clock when it waits for a head).
    pub header_read_timeout: std::time::Duration,
    /// Most HTTP connections served at once (`--max-connections`).
    pub max_connections: usize,
    /// The proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: std::sync::Arc<TrustedProxies>,
    /// Refused requests on admin URLs, counted until they are written.
    pub refusal_log: std::sync::Arc<RefusalLog>,
    /// Client addresses refused before any lookup for presenting too many invalid tokens.
    pub bad_tokens: std::sync::Arc<BadTokenLimit>,
    /// The slots every argon2 run takes (`--argon2-slots`).
    pub password_work: std::sync::Arc<PasswordWork>,
    /// Where mailplane hands the messages it writes (`--mail-submit`); `None`: nowhere,
    /// so the modes that must mail something are refused.
    pub mail_submit: Option<mailplane_outbound::Submitter>,
    /// The checks of `extfrom` relays, run by this node's schedule and for
    /// `verifysendmaildetails`.
    pub relay_checks: mailplane_relaycheck::RelayChecks,
    /// The web console's session limits and cookie.
    pub console: ConsoleSettings,
}

pub fn router(state: AppState) -> Router {
    use routes::{accounts, oauth, organization, service};
    Router::new()
        .route("/api/accounts", get(accounts::list_own))
        .route(
            "/api/accounts/{account_id}",
            get(accounts::get_own).put(accounts::update_own),
        )
        .route("/api/organization", get(organization::get_own_org))
        .route("/api/organization/{zoid}", get(organization::get_org))
        .route(
            "/api/organization/{zoid}/auditlog",
            get(organization::audit_log),
        )
        .route(
            "/api/organization/{zoid}/accounts",
            get(organization::list_org_accounts)
                .post(organization::create_account)
                .put(organization::update_accounts)
                .delete(organization::delete_accounts),
        )
        .route(
            "/api/organization/{zoid}/accounts/{account}",
            get(organization::get_org_account).put(accounts::update_in_org),
        )
        .route("/health", get(service::health))
        .route("/ready", get(service::ready))
        .route("/metrics", get(service::metrics))
        .route("/api/openapi.json", get(service::openapi))
        .route("/oauth/v2/auth", get(oauth::authorize).post(oauth::sign_in))
        .route("/oauth/v2/auth/consent", post(oauth::consent))
        .route("/oauth/v2/token", post(oauth::token))
        .route("/oauth/v2/token/revoke", post(oauth::revoke))
        .merge(console::routes())
        .fallback(|| async { ApiError::UrlNotConfigured })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), limits))
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

fn new_request_id() -> String {
    let mut b = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Gives each request an id and its audit facts, and logs one line when it is answered:
/// method, path (never the query or headers, which may carry secrets), status, time.
async fn log_request(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = new_request_id();
    // One client address for everything that records or counts it (audit rows, security
    // events, the sign-in throttle): a proxy's header only when the proxy is trusted.
    let client_addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| {
            state
                .trusted_proxies
                .client_addr(c.0.ip(), req.headers())
                .to_string()
        })
        .unwrap_or_default();
    let meta = RequestMeta {
        request_id: id.clone(),
        client_addr,
    };
    req.extensions_mut().insert(meta.clone());
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    // The route's template, not the path: ids would make a series per account.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    // Kept for the security event of a refusal, which names the token's user: a reference-
    // counted copy of the header, read only if the request is refused.
    let authorization = path
        .starts_with("/api/organization/")
        .then(|| {
            req.headers()
                .get(axum::http::header::AUTHORIZATION)
                .cloned()
        })
        .flatten();
    let span = tracing::info_span!("request", id = %id);
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let secs = started.elapsed().as_secs_f64();
    let ms = secs * 1000.0;
    let mode = resp
        .extensions()
        .get::<metrics::ModeLabel>()
        .map(|m| m.0)
        .unwrap_or_default();
    state
        .metrics
        .observe(&route, mode, resp.status().as_u16(), secs);
    span.in_scope(|| tracing::info!(%method, %path, status = resp.status().as_u16(), ms = format!("{ms:.2}"), "request"));
    let code = resp
        .extensions()
        .get::<error::ErrorCode>()
        .map(|c| c.0)
        .unwrap_or_default();
    let answered = (resp.status().as_u16(), code);
    record_refusal(&state, &meta, &method, &path, authorization, answered).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Notes a request refused on an admin URL (401, 403, 404, 429) in the refusal log, as a
/// security event of the organization the URL names (see [`refusal_log`]): no write, no
/// task of its own. The user behind a valid token is looked up only for a 403 or 404 (a
/// 401 had no valid token, a 429 was refused before any lookup).
async fn record_refusal(
    state: &AppState,
    meta: &RequestMeta,
    method: &axum::http::Method,
    path: &str,
    authorization: Option<HeaderValue>,
    (status, error_code): (u16, &'static str),
) {
    if !matches!(status, 401 | 403 | 404 | 429) {
        return;
    }
    let Some(zoid) = path
        .strip_prefix("/api/organization/")
        .and_then(|rest| rest.split('/').next())
    else {
        return;
    };
    let Ok(zoid) = zoid.parse::<mailplane_domain::Zoid>() else {
        return;
    };
    let mut actor_zuid = None;
    if let (403 | 404, Some(value)) = (status, authorization) {
        let headers =
            axum::http::HeaderMap::from_iter([(axum::http::header::AUTHORIZATION, value)]);
        if let Some(token) = auth::token_of(&headers) {
            actor_zuid = state
                .store
                .authenticate(token)
                .await
                .ok()
                .flatten()
                .map(|p| p.zuid());
        }
    }
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    state.refusal_log.note(mailplane_store::SecurityEvent {
        at_ms,
        first_ms: at_ms,
        count: 1,
        request_id: Some(meta.request_id.clone()),
        client_addr: Some(meta.client_addr.clone()),
        zoid,
        method: method.to_string(),
        path: path.to_string(),
        status,
        error_code: error_code.to_string(),
        actor_zuid,
    });
}

/// Per-token rate limiting and the request time limit, both answered in the envelope.
async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<RequestMeta>()
        .map(|m| m.client_addr.clone())
        .unwrap_or_default();
    // A console session's cookie counts as its token: the same rate for the same user,
    // whichever door they use.
    let bearer = auth::token_of(req.headers());
    let session = bearer
        .is_none()
        .then(|| console::cookie_token(req.headers(), state.console.secure_cookie))
        .flatten();
    if let Some(token) = bearer.or(session.as_deref()) {
        if let Some(wait) = state.bad_tokens.retry_after(&client) {
            return ApiError::TooManyInvalidTokens(wait.as_secs_f64().ceil().max(1.0) as u64)
                .into_response();
        }
        if let Some(limiter) = &state.rate_limiter {
            if let Err(wait) = limiter.take(token) {
                return ApiError::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64)
                    .into_response();
            }
        }
    }
    let resp = match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::Timeout.into_response(),
    };
    let invalid = resp
        .extensions()
        .get::<error::ErrorCode>()
        .is_some_and(|c| c.0 == "INVALID_OAUTHTOKEN");
    if invalid {
        state.bad_tokens.note_invalid(&client);
    }
    resp
}

/// Request headers above this are answered 431 (by hyper, which reads at most this much
/// before the headers end).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long a shutdown waits for requests in flight.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves HTTP/1.1 until `shutdown` completes, then finishes the requests in flight.
///
/// An accept loop of our own rather than `axum::serve`, for the limits it does not expose:
/// the header size (431 above [`MAX_HEADER_BYTES`]), the header read timeout and the number
/// of connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ConnectionLimits {
        header_read_timeout: state.header_read_timeout,
        max_connections: state.max_connections,
    };
    serve_router(listener, router(state), limits, shutdown).await
}

/// What one client's connections may hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Headers not received by then (or no new request on an idle connection): closed.
    pub header_read_timeout: std::time::Duration,
    /// Most connections served at once; past it, new ones wait in the kernel's backlog.
    pub max_connections: usize,
}

/// [`serve`]'s accept loop for any router: the same HTTP/1.1 settings and limits (used by
/// `mailplane bench` to measure the HTTP stack alone).
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let header_read_timeout = limits.header_read_timeout;
    // Each connection is a task with its buffers: without a bound, clients that open
    // connections and keep them could grow the server without limit. A slot is taken
    // *before* accepting, so past the limit new connections wait in the kernel's backlog
    // (and time out there) instead of being accepted and closed.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(addr));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .max_buf_size(MAX_HEADER_BYTES);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the grace period");
    }
    Ok(())
}
