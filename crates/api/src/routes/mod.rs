//! The routes, one module per URL family. Each handler names the Zoho endpoint it
//! mirrors, and does only: read the path, authenticate, authorize, parse the body, call
//! the store once, shape the response.

pub mod accounts;
pub mod oauth;
pub mod organization;
mod pages;
pub mod service;

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use crate::error::ApiError;

/// The path's segments, as text. A segment that is not valid UTF-8 (`%FF`) is a URL no rule
/// serves, answered in the envelope like any other (axum's own `Path` would answer in
/// plain text).
pub(crate) struct Segments<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for Segments<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Segments(v))
            .map_err(|_| ApiError::UrlNotConfigured)
    }
}

/// An id in the path; anything but a positive integer is a URL no rule serves.
pub(crate) fn path_id<T: FromStr>(s: &str) -> Result<T, ApiError> {
    s.parse().map_err(|_| ApiError::UrlNotConfigured)
}

pub(crate) fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::JsonParse("the request body could not be read".into())
        }
    })
}

pub(crate) fn success() -> Response {
    Json(json!({ "status": { "code": 200, "description": "success" } })).into_response()
}

pub(crate) fn success_with<T: Serialize>(data: T) -> Response {
    with_data(StatusCode::OK, "success", data)
}

pub(crate) fn created<T: Serialize>(data: T) -> Response {
    with_data(StatusCode::CREATED, "Created", data)
}

/// The envelope of an answer with data, serialized straight from `data` (no `Value` in
/// between); fields in the order a `Value` map writes them, so the bytes are unchanged.
fn with_data<T: Serialize>(status: StatusCode, description: &'static str, data: T) -> Response {
    #[derive(Serialize)]
    struct Envelope<T> {
        data: T,
        status: Status,
    }
    #[derive(Serialize)]
    struct Status {
        code: u16,
        description: &'static str,
    }
    let envelope = Envelope {
        data,
        status: Status {
            code: status.as_u16(),
            description,
        },
    };
    (status, Json(envelope)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailplane_domain::AccountId;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        /// Any path segment: an id, or the 404 no route serves; never a panic.
        #[test]
        fn path_ids_parse_or_answer_404(s in "\\PC{0,24}|[0-9]{1,22}|-[0-9]{1,5}") {
            match path_id::<AccountId>(&s) {
                Ok(id) => prop_assert_eq!(Some(id.get()), s.parse::<u64>().ok()),
                Err(e) => crate::command::tests::assert_client_error(e),
            }
        }
    }
}
