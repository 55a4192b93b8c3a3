//! The PostgreSQL URL of `--db`, as far as mailplane reads it itself: the TLS parameters
//! tokio-postgres does not know (libpq's `sslmode=verify-ca|verify-full` and
//! `sslrootcert`), and the URL redacted for printing.

use std::path::PathBuf;

use crate::{StoreError, REDACTED};

/// libpq's `sslmode`, with libpq's meanings (see [`super::tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            // libpq's `allow` tries plain text first; tokio-postgres has no such order, and
            // quietly reading it as `prefer` or `disable` would change what the operator
            // asked for.
            "allow" => Err(StoreError::Config(
                "sslmode=allow is not supported: use prefer or disable".into(),
            )),
            other => Err(StoreError::Config(format!(
                "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ))),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// libpq's `sslrootcert`: a PEM file of CA certificates, or `system` for the system's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCert {
    File(PathBuf),
    System,
}

/// A PostgreSQL URL split into what tokio-postgres parses and the TLS parameters read here.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    /// The URL without `sslmode` and `sslrootcert`.
    pub url: String,
    /// `None` when the URL names none (libpq's default is `prefer`).
    pub sslmode: Option<SslMode>,
    pub root_cert: Option<RootCert>,
}

impl ConnInfo {
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| StoreError::Config("expected a postgres:// URL".into()))?;
        // The query starts at the first '?' after the credentials, which end at the first
        // '@' (tokio-postgres's reading: a password may hold a '?').
        let query_from = rest.find('@').map_or(0, |at| at + 1);
        let Some(q) = rest[query_from..].find('?').map(|q| q + query_from) else {
            return Ok(ConnInfo {
                url: url.to_string(),
                sslmode: None,
                root_cert: None,
            });
        };
        let (mut sslmode, mut root_cert) = (None, None);
        let mut kept = Vec::new();
        for param in rest[q + 1..].split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            // As in libpq, a parameter given twice takes its last value.
            match percent_decode(key)?.as_str() {
                "sslmode" => sslmode = Some(SslMode::parse(&percent_decode(value)?)?),
                "sslrootcert" => {
                    let value = percent_decode(value)?;
                    root_cert = match value.as_str() {
                        "" => None,
                        "system" => Some(RootCert::System),
                        path => Some(RootCert::File(PathBuf::from(path))),
                    };
                }
                _ => kept.push(param),
            }
        }
        let mut stripped = format!("{scheme}://{}", &rest[..q]);
        if !kept.is_empty() {
            stripped.push('?');
            stripped.push_str(&kept.join("&"));
        }
        Ok(ConnInfo {
            url: stripped,
            sslmode,
            root_cert,
        })
    }
}

/// `%XX` escapes decoded (a path in `sslrootcert` may hold `&` or `%`).
fn percent_decode(s: &str) -> Result<String, StoreError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    StoreError::Config("a '%' escape of the PostgreSQL URL is invalid".into())
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| StoreError::Config("a parameter of the PostgreSQL URL is not UTF-8".into()))
}

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
    fn tls_parameters_are_taken_out() {
        let c = ConnInfo::parse(
            "postgres://u:p?w@h:5432/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            c.url,
            "postgres://u:p?w@h:5432/db?application_name=x&connect_timeout=3"
        );
        assert_eq!(c.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(
            c.root_cert,
            Some(RootCert::File("/etc/ca dir/ca.pem".into()))
        );

        let c = ConnInfo::parse("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!(c.url, "postgresql://h/db");
        assert_eq!((c.sslmode, c.root_cert), (Some(SslMode::Require), None));

        let c = ConnInfo::parse("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!((c.sslmode, c.root_cert), (None, Some(RootCert::System)));

        let c = ConnInfo::parse("postgres://u@h/db").unwrap();
        assert_eq!(c.url, "postgres://u@h/db");
        assert_eq!((c.sslmode, c.root_cert), (None, None));

        for bad in ["sslmode=allow", "sslmode=verify_full", "sslrootcert=%zz"] {
            assert!(
                ConnInfo::parse(&format!("postgres://h/db?{bad}")).is_err(),
                "{bad}"
            );
        }
    }

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
