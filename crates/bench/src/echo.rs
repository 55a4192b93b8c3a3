//! The HTTP ceiling: an axum router that answers every request (any method, any path)
//! with a fixed JSON body, after reading the request's body. Served through mailplane's
//! own accept loop (`mailplane_api::serve_router`), it costs what mailplane's HTTP stack
//! costs and nothing else.

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::http::Method;
use axum::response::IntoResponse;
use axum::Router;

/// What a successful `PUT` of mailplane answers.
pub const PUT_REPLY: &str = r#"{"status":{"code":200,"description":"success"}}"#;

/// A `GET` answer of `bytes` bytes (at least the envelope's size).
pub fn get_reply(bytes: usize) -> String {
    let envelope = r#"{"data":{"pad":""},"status":{"code":200,"description":"success"}}"#;
    let pad = "x".repeat(bytes.saturating_sub(envelope.len()));
    format!(r#"{{"data":{{"pad":"{pad}"}},"status":{{"code":200,"description":"success"}}}}"#)
}

/// Answers `GET` with [`get_reply`]`(get_bytes)` and anything else with [`PUT_REPLY`].
pub fn router(get_bytes: usize) -> Router {
    let get = Bytes::from(get_reply(get_bytes));
    let put = Bytes::from_static(PUT_REPLY.as_bytes());
    Router::new().fallback(move |method: Method, body: Bytes| {
        let reply = if method == Method::GET {
            get.clone()
        } else {
            put.clone()
        };
        async move {
            drop(body);
            ([(CONTENT_TYPE, "application/json;charset=UTF-8")], reply).into_response()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_reply_has_the_asked_size_and_is_json() {
        for n in [0, 10, 100, 2000] {
            let r = get_reply(n);
            assert!(r.len() >= n && (n < 80 || r.len() == n), "{n}: {}", r.len());
            serde_json::from_str::<serde_json::Value>(&r).unwrap();
        }
        serde_json::from_str::<serde_json::Value>(PUT_REPLY).unwrap();
    }
}
