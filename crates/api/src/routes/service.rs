//! The operator's endpoints: liveness, readiness, metrics and the API description. None
//! needs a token (put them behind the proxy's own rules if they must not be public).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::metrics::{Counter, PoolState};
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
        counters: background_counters(&state),
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The counters of the background writers: the refusal log and retention.
fn background_counters(state: &AppState) -> Vec<Counter> {
    use std::sync::atomic::Ordering::Relaxed;
    let r = &state.metrics.retention;
    let pruned = "mailplane_retention_pruned_rows_total";
    let pruned_help = "Rows deleted by retention, by table.";
    vec![
        Counter {
            name: "mailplane_security_event_rows_total",
            help: "Security event rows written (each counts one or more refused requests alike).",
            labels: "",
            value: state.refusal_log.written(),
        },
        Counter {
            name: "mailplane_security_events_dropped_total",
            help: "Refused requests not kept: the window's groups were full.",
            labels: "",
            value: state.refusal_log.dropped(),
        },
        Counter {
            name: "mailplane_retention_runs_total",
            help: "Retention runs completed.",
            labels: "",
            value: r.runs.load(Relaxed),
        },
        Counter {
            name: "mailplane_retention_failures_total",
            help: "Retention batches that failed (retried at the next run).",
            labels: "",
            value: r.failures.load(Relaxed),
        },
        Counter {
            name: pruned,
            help: pruned_help,
            labels: r#"table="audit""#,
            value: r.audit_rows.load(Relaxed),
        },
        Counter {
            name: pruned,
            help: pruned_help,
            labels: r#"table="security_events""#,
            value: r.security_event_rows.load(Relaxed),
        },
    ]
}

/// `GET /api/openapi.json`: the document `mailplane openapi` prints.
pub async fn openapi() -> Response {
    Json(openapi::document()).into_response()
}
