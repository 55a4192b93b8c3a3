//! The PostgreSQL URL of `--db`, as far as mailplane reads it itself: redacted for
//! printing.

use crate::REDACTED;

/// `url` with its password (in the user info or as a `password=` parameter) replaced by
/// `<redacted>`, for logs and error messages. The user, host, database and other
/// parameters are kept: they are what an operator needs to tell which database is meant.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a database URL)".into();
    };
    // Credentials end at the first '@', wherever it is: that is how tokio-postgres reads
    // the URL, so that is where the password it uses is.
    let (credentials, rest) = match rest.split_once('@') {
        Some((credentials, rest)) => (Some(credentials), rest),
        None => (None, rest),
    };
    let mut out = format!("{scheme}://");
    if let Some(credentials) = credentials {
        match credentials.split_once(':') {
            Some((user, _password)) => out.push_str(&format!("{user}:{REDACTED}@")),
            None => out.push_str(&format!("{credentials}@")),
        }
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    out.push_str(before_query);
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key == "password" => format!("{key}={REDACTED}"),
                _ => param.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        for (url, shown) in [
            (
                "postgres://u:hunter2@db.example:5432/mp?sslmode=require",
                "postgres://u:<redacted>@db.example:5432/mp?sslmode=require",
            ),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            (
                "postgres://h/db?user=u&password=hunter2&sslmode=disable",
                "postgres://h/db?user=u&password=<redacted>&sslmode=disable",
            ),
            // tokio-postgres reads the credentials up to the first '@'.
            ("postgres://u:hun/ter2@h/db", "postgres://u:<redacted>@h/db"),
            ("not a url", "(a database URL)"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }
}
