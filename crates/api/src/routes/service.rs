//! The operator's endpoints: liveness, readiness, metrics and the API description. None
//! needs a token (put them behind the proxy's own rules if they must not be public).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::metrics::PoolState;
use crate::{openapi, AppState};

/// `GET /health`: the process is up.
pub async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /ready`: the database answers (503 in the envelope when it does not).
pub async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({ "status": "ok" })).into_response())
}

/// `GET /metrics`: Prometheus' text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (in_use, idle, max) = state.store.pool_state();
    let body = state.metrics.render(&PoolState {
        in_use,
        idle,
        max,
        commits: state.store.commit_stats(),
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// `GET /api/openapi.json`: the document `mailplane openapi` prints.
pub async fn openapi() -> Response {
    Json(openapi::document()).into_response()
}
