//! A client of the web console over HTTP, as a browser would be but with every header in
//! view: it keeps the session cookie, follows no redirect, and reads the CSRF token off
//! the pages.
#![allow(dead_code)]

use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;

use super::TestApp;

/// The demo's mailbox passwords, as `serve --demo` wrote them: (admin, Rebecca).
pub fn demo_passwords(app: &TestApp) -> (String, String) {
    let tokens: Value = serde_json::from_slice(
        &std::fs::read(app.dir.path().join("demo-tokens.json")).expect("demo tokens"),
    )
    .expect("json");
    (
        tokens["adminPassword"]
            .as_str()
            .expect("admin password")
            .into(),
        tokens["userPassword"]
            .as_str()
            .expect("user password")
            .into(),
    )
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The CSRF token its forms carry.
    pub fn csrf(&self) -> String {
        csrf_in(&self.html).expect("a form with a CSRF token")
    }
}

pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_string())
}

pub struct Console {
    pub base: String,
    http: reqwest::Client,
    /// `name=value` of the session cookie.
    pub cookie: Option<String>,
    /// The `Set-Cookie` of the sign-in, as sent.
    pub set_cookie: String,
}

impl Console {
    pub fn new(app: &TestApp) -> Console {
        Console {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
            set_cookie: String::new(),
        }
    }

    /// Signs in; panics unless the console answers with a session.
    pub async fn signed_in(app: &TestApp, email: &str, password: &str) -> Console {
        let mut c = Console::new(app);
        let page = c.sign_in(email, password).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        assert!(c.cookie.is_some(), "no session cookie");
        c
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let r = self
            .http
            .post(format!("{}/console/sign-in", self.base))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        if let Some(v) = r.headers().get(SET_COOKIE) {
            let text = v.to_str().unwrap().to_string();
            self.cookie = text.split(';').next().map(str::to_string);
            self.set_cookie = text;
        }
        page(r).await
    }

    pub async fn get(&self, path: &str) -> Page {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        page(req.send().await.unwrap()).await
    }

    /// Posts `form` as the browser would from one of our pages (`Origin` ours), or from
    /// `origin` when given.
    pub async fn post(&self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(ORIGIN, origin.unwrap_or(&self.base))
            .form(form);
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        page(req.send().await.unwrap()).await
    }
}

async fn page(r: reqwest::Response) -> Page {
    Page {
        status: r.status(),
        headers: r.headers().clone(),
        html: r.text().await.unwrap(),
    }
}
