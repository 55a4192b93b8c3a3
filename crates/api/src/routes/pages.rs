//! The two HTML pages of the browser flow: sign-in and consent. Deliberately minimal:
//! a form a person (or a test's HTTP client) can fill in and post.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · mailplane</title></head>\n\
         <body><main><h1>{t}</h1>\n{body}\n</main></body></html>\n",
        t = escape(title)
    );
    let mut resp = (status, Html(html)).into_response();
    // Pages that carry a sign-in form or a code are never cached or framed.
    let headers = resp.headers_mut();
    headers.insert(
        "cache-control",
        axum::http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        "x-frame-options",
        axum::http::HeaderValue::from_static("DENY"),
    );
    resp
}

fn hidden(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn sign_in(
    status: StatusCode,
    client_name: &str,
    carried: &[(&str, &str)],
    message: Option<&str>,
) -> Response {
    let note = message
        .map(|m| format!("<p role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<p>Sign in to let <strong>{client}</strong> use your mail account.</p>\n{note}\n\
         <form method=\"post\" action=\"/oauth/v2/auth\">\n{hidden}\n\
         <label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\" required></label>\n\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\n\
         <button type=\"submit\">Sign in</button>\n</form>",
        client = escape(client_name),
        hidden = hidden(carried),
    );
    page(status, "Sign in", &body)
}

/// The consent page: the served scopes the grant gives, and (if any) the other scopes the
/// client asked for, which the user should know give it nothing here.
pub fn consent(
    client_name: &str,
    served: &[String],
    unserved: &[String],
    ticket: &str,
    state: &str,
) -> Response {
    let list = |scopes: &[String]| -> String {
        scopes
            .iter()
            .map(|s| format!("<li>{}</li>", escape(s)))
            .collect()
    };
    let items = list(served);
    let others = if unserved.is_empty() {
        String::new()
    } else {
        format!(
            "<p>It also asks for these, which give no access on this server:</p>\n\
             <ul class=\"unserved\">{}</ul>\n",
            list(unserved)
        )
    };
    let body = format!(
        "<p><strong>{client}</strong> asks for access to:</p>\n<ul>{items}</ul>\n{others}\
         <form method=\"post\" action=\"/oauth/v2/auth/consent\">\n{hidden}\n\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Accept</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Reject</button>\n</form>",
        client = escape(client_name),
        hidden = hidden(&[("ticket", ticket), ("state", state)]),
    );
    page(StatusCode::OK, "Allow access", &body)
}

pub fn error(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Cannot continue",
        &format!("<p role=\"alert\">{}</p>", escape(message)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
