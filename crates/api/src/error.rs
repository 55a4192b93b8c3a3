//! The one error type of the HTTP boundary and its one mapping to Zoho's error envelope:
//! `{"status":{"code":N,"description":"…"},"data":{"errorCode":"…","moreInfo":"…"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mailplane_domain::{RuleError, RuleErrorKind};
use mailplane_store::{Denied, ReadError, Refusal, StoreError, WriteError};
use serde_json::json;

/// The `errorCode` of an error response, for the middleware that records refusals.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

#[derive(Debug)]
pub enum ApiError {
    /// No `Authorization` header (Zoho answers 400 `INVALID_TICKET`).
    MissingTicket,
    /// Unknown, malformed, expired or revoked token.
    InvalidToken,
    /// A valid token without the scope the operation needs.
    InvalidScope,
    /// Right scope, wrong role (or a mode not offered on this URL).
    Forbidden(String),
    /// A path that no route serves, or an id in the path that is not a number.
    UrlNotConfigured,
    /// The target does not exist or is out of the caller's reach (the same answer).
    NotFound(String),
    /// A body key the mode does not take (Zoho answers 404 for this).
    ExtraKey(String),
    /// A mandatory key is absent.
    Missing(String),
    /// A value of the wrong form; the sentence names the field and what was expected.
    Pattern(String),
    /// The body is not JSON, or not a JSON object.
    JsonParse(String),
    /// `mode` names no operation.
    UnknownMode(String),
    /// A well-formed value that a rule refuses.
    Invalid(String),
    /// The request conflicts with other data.
    Conflict(String),
    TooLarge,
    /// The token's request rate is over the configured limit; retry after this many seconds.
    RateLimited(u64),
    /// The client address presented too many invalid tokens; retry after this many seconds.
    TooManyInvalidTokens(u64),
    /// The request took longer than the configured limit.
    Timeout,
    /// Every argon2 slot stayed taken for the whole wait; retry after this many seconds.
    Busy(u64),
    MethodNotAllowed,
    /// The database cannot be reached; the request may be retried. The cause is logged.
    Unavailable(String),
    /// Too many writes are waiting: nothing was changed; retry after a second.
    QueueFull,
    /// Something broke on our side. The cause is logged, never sent.
    Internal(String),
}

impl ApiError {
    pub(crate) fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        use ApiError::*;
        match self {
            MissingTicket => (
                StatusCode::BAD_REQUEST,
                "Invalid Input",
                "INVALID_TICKET",
                "the Authorization header is missing: send Authorization: Zoho-oauthtoken <token>"
                    .into(),
            ),
            InvalidToken => (
                StatusCode::UNAUTHORIZED,
                "Invalid OAuth Token",
                "INVALID_OAUTHTOKEN",
                "the access token is invalid, expired or revoked".into(),
            ),
            InvalidScope => (
                StatusCode::UNAUTHORIZED,
                "Invalid OAuth Scope",
                "INVALID_OAUTHSCOPE",
                "the access token does not carry a scope that allows this operation".into(),
            ),
            Forbidden(m) => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "NO_PERMISSION",
                m.clone(),
            ),
            UrlNotConfigured => (
                StatusCode::NOT_FOUND,
                "URL Not Found",
                "URL_RULE_NOT_CONFIGURED",
                "no API is configured for this URL; ids in the path must be positive integers"
                    .into(),
            ),
            NotFound(m) => (StatusCode::NOT_FOUND, "Not Found", "NOT_FOUND", m.clone()),
            ExtraKey(k) => (
                StatusCode::NOT_FOUND,
                "Invalid Input",
                "EXTRA_KEY_FOUND_IN_JSON",
                format!("{k} is not a key of this operation"),
            ),
            Missing(f) => (
                StatusCode::BAD_REQUEST,
                "Invalid Input",
                "LESS_THAN_MIN_OCCURANCE",
                format!("{f} is mandatory"),
            ),
            Pattern(m) => (
                StatusCode::BAD_REQUEST,
                "Invalid Input",
                "PATTERN_NOT_MATCHED",
                m.clone(),
            ),
            JsonParse(m) => (
                StatusCode::BAD_REQUEST,
                "Invalid Input",
                "JSON_PARSE_ERROR",
                m.clone(),
            ),
            UnknownMode(m) => (
                StatusCode::BAD_REQUEST,
                "Invalid Input",
                "INVALID_MODE",
                m.clone(),
            ),
            Invalid(m) => (
                StatusCode::BAD_REQUEST,
                "Invalid Input",
                "INVALID_VALUE",
                m.clone(),
            ),
            Conflict(m) => (
                StatusCode::CONFLICT,
                "Conflict",
                "ALREADY_EXISTS",
                m.clone(),
            ),
            TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request Too Large",
                "REQUEST_TOO_LARGE",
                "the request body is larger than 64 KiB".into(),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                "METHOD_NOT_ALLOWED",
                "this URL does not accept this HTTP method".into(),
            ),
            RateLimited(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "TOO_MANY_REQUESTS",
                format!("this token sends requests faster than allowed; retry in {secs} s"),
            ),
            TooManyInvalidTokens(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "TOO_MANY_REQUESTS",
                format!("too many requests from this address carried an invalid token; retry in {secs} s"),
            ),
            Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "REQUEST_TIMEOUT",
                "the request took longer than the server allows; it may or may not have been applied".into(),
            ),
            Busy(secs) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "SERVER_BUSY",
                format!("the server is checking as many passwords as it can; retry in {secs} s"),
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "DATABASE_UNAVAILABLE",
                "the database cannot be reached right now; try again shortly".into(),
            ),
            QueueFull => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "SERVER_BUSY",
                "the server has too many changes waiting; nothing was changed, retry shortly".into(),
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Error",
                "INTERNAL_ERROR",
                "the server failed to handle the request; it has been logged".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The request span carries the request id.
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            _ => {}
        }
        let (status, description, code, more) = self.parts();
        let body = json!({
            "status": { "code": status.as_u16(), "description": description },
            "data": { "errorCode": code, "moreInfo": more },
        });
        let mut resp = (status, Json(body)).into_response();
        resp.extensions_mut().insert(ErrorCode(code));
        let retry_after = match self {
            ApiError::RateLimited(secs)
            | ApiError::TooManyInvalidTokens(secs)
            | ApiError::Busy(secs) => Some(secs),
            ApiError::QueueFull => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause),
            StoreError::Busy => ApiError::QueueFull,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::password_work::PasswordWorkError> for ApiError {
    fn from(e: crate::password_work::PasswordWorkError) -> Self {
        use crate::password_work::{PasswordWorkError, BUSY_RETRY_AFTER_SECS};
        match e {
            PasswordWorkError::Busy => ApiError::Busy(BUSY_RETRY_AFTER_SECS),
            PasswordWorkError::Failed(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        match e.kind {
            RuleErrorKind::Missing => ApiError::Missing(e.field),
            RuleErrorKind::Invalid => ApiError::Invalid(e.message),
            RuleErrorKind::Conflict => ApiError::Conflict(e.message),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotFound(m) => ApiError::NotFound(m),
            WriteError::Rule(r) => r.into(),
            WriteError::Forbidden(m) => ApiError::Forbidden(m),
            WriteError::Refused(r) => r.into(),
            WriteError::Store(s) => s.into(),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Refused(r) => r.into(),
            ReadError::Store(s) => s.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::InvalidToken => ApiError::InvalidToken,
            Refusal::Denied(d) => d.into(),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Scope => ApiError::InvalidScope,
            Denied::Role => ApiError::Forbidden(
                "this URL is for organization admins; the token's user is not an admin".into(),
            ),
        }
    }
}
