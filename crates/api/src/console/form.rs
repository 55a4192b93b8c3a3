//! A posted form (`application/x-www-form-urlencoded`), read as name–value pairs; a name
//! may repeat (the users picked for deletion).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::Response;

use super::render;

pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or_default()
    }

    /// The first value of `name` as given (a password keeps its spaces).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        // The router's body limit applies: a larger form is refused before it is read.
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            render::plain_message(
                r.status(),
                "This form could not be read",
                "The form was too large or broken off; nothing was changed.",
            )
        })?;
        Ok(Form(
            serde_urlencoded::from_bytes(&body).unwrap_or_default(),
        ))
    }
}
