//! Signing in to the console and out of it.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use mailplane_store::RequestMeta;

use super::form::Form;
use super::render::{self, Nav};
use super::session::{self, Session};
use crate::error::ApiError;
use crate::password_sign_in::{self, SignIn};
use crate::password_work::BUSY_RETRY_AFTER_SECS;
use crate::AppState;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage<'a> {
    nav: Option<Nav>,
    email: &'a str,
    error: Option<&'a str>,
}

fn sign_in_page(status: StatusCode, email: &str, error: Option<&str>) -> Response {
    render::page(
        status,
        &SignInPage {
            nav: None,
            email,
            error,
        },
    )
}

/// `GET /console/sign-in`.
pub(crate) async fn form() -> Response {
    sign_in_page(StatusCode::OK, "", None)
}

/// `POST /console/sign-in`: on the right password, a new session and the console.
pub(crate) async fn submit(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let email = form.get("email");
    // A sign-in posted from another site would sign the victim in to the attacker's
    // account: the origin is checked here too.
    if session::check_origin(&headers, &state.public_url).is_err() {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            email,
            Some("This sign-in came from another site and was refused."),
        );
    }
    let user = match password_sign_in::check(
        &state,
        &meta.client_addr,
        email,
        form.raw("password").to_string(),
    )
    .await
    {
        SignIn::Signed(user) => user,
        SignIn::Wrong => {
            return sign_in_page(
                StatusCode::OK,
                email,
                Some("Wrong email address or password."),
            )
        }
        SignIn::Expired => {
            return sign_in_page(
                StatusCode::OK,
                email,
                Some("This account has expired. Ask your administrator."),
            )
        }
        SignIn::Throttled(t) => {
            let mut resp = sign_in_page(
                StatusCode::TOO_MANY_REQUESTS,
                email,
                Some("Too many failed sign-ins. Try again later."),
            );
            let secs = t.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return resp;
        }
        SignIn::Busy => {
            let mut resp = sign_in_page(
                StatusCode::SERVICE_UNAVAILABLE,
                email,
                Some("The server is busy. Try again in a moment."),
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(BUSY_RETRY_AFTER_SECS),
            );
            return resp;
        }
        SignIn::Unavailable(e) => return render::unavailable(ApiError::from(e)),
    };
    let settings = state.console;
    let token = match state
        .store
        .open_console_session(user.zuid, settings.limits)
        .await
    {
        Ok(t) => t,
        Err(e) => return render::unavailable(ApiError::from(e)),
    };
    tracing::info!(zuid = %user.zuid, "console sign-in");
    let mut resp = render::see_other("/console");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(
            &token,
            settings.secure_cookie,
            settings.limits.absolute_ms / 1000,
        ),
    );
    resp
}

/// `POST /console/sign-out`: ends every console session of the user, this one too.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    form: Form,
) -> Response {
    if let Err(refused) = session::check_post(&state, &headers, &session, &form).await {
        return refused;
    }
    if let Err(e) = state
        .store
        .end_console_sessions(session.principal.zuid())
        .await
    {
        return render::unavailable(ApiError::from(e));
    }
    let mut resp = render::see_other("/console/sign-in");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::clear_cookie(state.console.secure_cookie),
    );
    resp
}
