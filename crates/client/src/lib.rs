//! A small client of mailplane's HTTP API: one method per endpoint, each returning the
//! HTTP status and the JSON body, so callers can assert on both.

use reqwest::Method;
use serde_json::Value;

/// An answer: the HTTP status and the body (`Value::Null` when it was not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// `data.errorCode` of an error envelope.
    pub fn error_code(&self) -> &str {
        self.body["data"]["errorCode"].as_str().unwrap_or_default()
    }
    pub fn more_info(&self) -> &str {
        self.body["data"]["moreInfo"].as_str().unwrap_or_default()
    }
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

/// How long an idle connection stays pooled: under the server's idle limit.
const IDLE_CONNECTION_KEPT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`) using `token`.
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.map(str::to_string),
            http: reqwest::Client::builder()
                // The server drops a keep-alive connection idle for its header read
                // timeout (10 s by default). A pooled connection kept longer can be picked
                // for a request just as the server closes it, and that request fails with
                // a reset; letting go of idle connections sooner avoids the race.
                .pool_idle_timeout(IDLE_CONNECTION_KEPT)
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self {
            token: token.map(str::to_string),
            ..self.clone()
        }
    }

    /// Sends a request with raw bytes as the body and the client's token.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Zoho-oauthtoken {t}"));
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok(Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Reply, reqwest::Error> {
        self.send(method, path, Some(body.to_string().into_bytes()))
            .await
    }

    /// `PUT /api/accounts/{accountId}`
    pub async fn update_account(
        &self,
        account_id: &str,
        body: &Value,
    ) -> Result<Reply, reqwest::Error> {
        self.json(Method::PUT, &format!("/api/accounts/{account_id}"), body)
            .await
    }

    /// `PUT /api/organization/{zoid}/accounts/{accountId}`
    pub async fn update_org_account(
        &self,
        zoid: &str,
        account_id: &str,
        body: &Value,
    ) -> Result<Reply, reqwest::Error> {
        self.json(
            Method::PUT,
            &format!("/api/organization/{zoid}/accounts/{account_id}"),
            body,
        )
        .await
    }

    /// `GET /api/accounts`
    pub async fn accounts(&self) -> Result<Reply, reqwest::Error> {
        self.send(Method::GET, "/api/accounts", None).await
    }

    /// `GET /api/accounts/{accountId}`
    pub async fn account(&self, account_id: &str) -> Result<Reply, reqwest::Error> {
        self.send(Method::GET, &format!("/api/accounts/{account_id}"), None)
            .await
    }

    /// `GET /api/organization`
    pub async fn own_organization(&self) -> Result<Reply, reqwest::Error> {
        self.send(Method::GET, "/api/organization", None).await
    }

    /// `GET /api/organization/{zoid}`
    pub async fn organization(&self, zoid: &str) -> Result<Reply, reqwest::Error> {
        self.send(Method::GET, &format!("/api/organization/{zoid}"), None)
            .await
    }

    /// `GET /api/organization/{zoid}/accounts?{query}`
    pub async fn org_accounts(&self, zoid: &str, query: &str) -> Result<Reply, reqwest::Error> {
        self.send(
            Method::GET,
            &format!("/api/organization/{zoid}/accounts?{query}"),
            None,
        )
        .await
    }

    /// `GET /api/organization/{zoid}/accounts/{zuid or email}`
    pub async fn org_account(&self, zoid: &str, key: &str) -> Result<Reply, reqwest::Error> {
        self.send(
            Method::GET,
            &format!("/api/organization/{zoid}/accounts/{key}"),
            None,
        )
        .await
    }

    /// `POST /api/organization/{zoid}/accounts`
    pub async fn create_user(&self, zoid: &str, body: &Value) -> Result<Reply, reqwest::Error> {
        self.json(
            Method::POST,
            &format!("/api/organization/{zoid}/accounts"),
            body,
        )
        .await
    }

    /// `PUT /api/organization/{zoid}/accounts` (Zoho's Change the Role of a User)
    pub async fn change_role(&self, zoid: &str, body: &Value) -> Result<Reply, reqwest::Error> {
        self.json(
            Method::PUT,
            &format!("/api/organization/{zoid}/accounts"),
            body,
        )
        .await
    }

    /// `DELETE /api/organization/{zoid}/accounts`
    pub async fn delete_users(&self, zoid: &str, body: &Value) -> Result<Reply, reqwest::Error> {
        self.json(
            Method::DELETE,
            &format!("/api/organization/{zoid}/accounts"),
            body,
        )
        .await
    }
}
