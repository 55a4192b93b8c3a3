//! The web console: server-rendered pages over the same rules as the API.
//!
//! A page reads through the store with the grant of the signed-in user's session; a form
//! post becomes the JSON body of the API operation it stands for and is handed to that
//! operation's handler, with the session's token as its bearer token. So a change made
//! here is parsed, validated, authorized, applied and audited exactly as the API's, and
//! its audit row says `via: console`.
//!
//! Templates (`templates/console/`) and the stylesheet are compiled into the binary; no
//! page runs a script, so every page works without JavaScript and the policy forbids all
//! script.

mod account_forms;
mod admin_pages;
mod clients;
mod form;
mod render;
mod session;
mod sign_in;
mod time;
mod user_page;
mod users;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use mailplane_store::SessionLimits;

use crate::AppState;

pub(crate) use session::cookie_token;

/// How the console's sessions behave.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleSettings {
    pub limits: SessionLimits,
    /// `Secure` cookies: the public URL is https.
    pub secure_cookie: bool,
}

impl ConsoleSettings {
    /// Sessions of `idle_minutes` idle and `absolute_hours` at most; secure cookies when
    /// `public_url` is https.
    pub fn new(public_url: &str, idle_minutes: u64, absolute_hours: u64) -> Self {
        let minute = 60_000i64;
        ConsoleSettings {
            limits: SessionLimits {
                idle_ms: (idle_minutes.max(1) as i64).saturating_mul(minute),
                absolute_ms: (absolute_hours.max(1) as i64).saturating_mul(60 * minute),
            },
            secure_cookie: public_url.starts_with("https://"),
        }
    }
}

/// The console's routes, to merge into the API's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(admin_pages::overview))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/users", get(users::list).post(users::add))
        .route(
            "/console/users/delete",
            get(users::confirm_delete).post(users::delete),
        )
        .route("/console/users/{zuid}", get(user_page::show))
        .route("/console/accounts/{account_id}", post(user_page::change))
        .route("/console/audit", get(admin_pages::audit))
        .route("/console/security", get(admin_pages::security))
        .route(
            "/console/clients",
            get(clients::list).post(clients::register),
        )
        .route("/console/clients/delete", post(clients::delete))
        .route("/console/assets/console.css", get(stylesheet))
        .layer(axum::middleware::from_fn(headers))
}

const STYLESHEET: &str = include_str!("../../assets/console.css");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The headers of every console answer: no script at all, no framing, no referrer to
/// other sites, no guessing of types, and (but for the stylesheet) no caching of pages
/// that show an organization's data.
async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
