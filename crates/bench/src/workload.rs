//! The benchmark's requests, on random accounts of the seeded organizations.
//!
//! [`UpdateMix`]: `PUT` of the seed modes, every one a durable change with an audit row:
//! on the user URL (`/api/accounts/{accountId}`, the account's own token)
//! `updateOutgoingStatus`, `enableMailAccount`, `disableMailAccount` and
//! `mailaccountorderupdate` (the user's single account); on the admin URL
//! (`/api/organization/{zoid}/accounts/{accountId}`, the organization's admin token, with
//! the owner's `zuid`) `updateOutgoingStatus`, `updateIncomingStatus`, `enableMailAccount`
//! and `disableMailAccount`. [`Read`]: `GET /api/accounts/{accountId}` with the user's
//! token. Requests go to the servers in turn.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::Method;
use rand::Rng;

use crate::loadgen::{HttpRequest, Workload};

/// One seeded account and the tokens that may change it.
#[derive(Clone, Debug)]
pub struct BenchAccount {
    pub zoid: String,
    pub zuid: String,
    pub account_id: String,
    user_auth: HeaderValue,
    admin_auth: HeaderValue,
}

impl BenchAccount {
    pub fn new(
        zoid: String,
        zuid: String,
        account_id: String,
        user_token: &str,
        admin_token: &str,
    ) -> Result<BenchAccount, String> {
        let auth = |t: &str| {
            HeaderValue::from_str(&format!("Zoho-oauthtoken {t}"))
                .map_err(|_| "a token is not a valid header value".to_string())
        };
        Ok(BenchAccount {
            zoid,
            zuid,
            account_id,
            user_auth: auth(user_token)?,
            admin_auth: auth(admin_token)?,
        })
    }
}

/// Shared by the workloads: the servers' base URLs and the accounts.
#[derive(Clone)]
pub struct Targets {
    bases: Arc<[String]>,
    accounts: Arc<[BenchAccount]>,
}

impl Targets {
    /// `bases` like `http://127.0.0.1:8080`, without a trailing slash.
    pub fn new(bases: Vec<String>, accounts: Arc<[BenchAccount]>) -> Targets {
        assert!(!bases.is_empty() && !accounts.is_empty());
        Targets {
            bases: bases.into(),
            accounts,
        }
    }

    pub fn accounts(&self) -> &[BenchAccount] {
        &self.accounts
    }

    fn pick(&self, i: u64) -> (&str, &BenchAccount) {
        let base = &self.bases[(i % self.bases.len() as u64) as usize];
        let account = &self.accounts[rand::thread_rng().gen_range(0..self.accounts.len())];
        (base, account)
    }
}

/// `PUT` of the seed modes (see the module's description).
pub struct UpdateMix(pub Targets);

/// `GET` of one account with its user's token.
pub struct Read(pub Targets);

/// `GET` of an admin URL with a made-up token, a new one each time: what a client that
/// knows a `zoid` but holds no token can send.
pub struct InvalidTokens(pub Targets);

fn request(method: Method, uri: String, auth: &HeaderValue, body: Option<String>) -> HttpRequest {
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header(AUTHORIZATION, auth.clone());
    let body = match body {
        Some(json) => {
            b = b.header(CONTENT_TYPE, "application/json");
            Bytes::from(json)
        }
        None => Bytes::new(),
    };
    b.body(Full::new(body)).expect("a valid request")
}

/// The body and whether it goes to the admin URL, for a random choice `r` in 0..10.
pub fn update_body(r: u32, flag: bool, a: &BenchAccount) -> (bool, String) {
    let (zuid, id) = (&a.zuid, &a.account_id);
    match r {
        0 | 1 => (
            false,
            format!(r#"{{"mode":"updateOutgoingStatus","outgoingBlocked":"{flag}"}}"#),
        ),
        2 => (false, r#"{"mode":"enableMailAccount"}"#.to_string()),
        3 => (false, r#"{"mode":"disableMailAccount"}"#.to_string()),
        4 | 5 => (
            false,
            format!(r#"{{"mode":"mailaccountorderupdate","accList":"{id}"}}"#),
        ),
        6 => (
            true,
            format!(
                r#"{{"zuid":"{zuid}","mode":"updateOutgoingStatus","outgoingBlocked":"{flag}"}}"#
            ),
        ),
        7 => (
            true,
            format!(
                r#"{{"zuid":"{zuid}","mode":"updateIncomingStatus","incomingBlocked":"{flag}"}}"#
            ),
        ),
        8 => (
            true,
            format!(r#"{{"zuid":{zuid},"mode":"enableMailAccount"}}"#),
        ),
        _ => (
            true,
            format!(r#"{{"zuid":{zuid},"mode":"disableMailAccount"}}"#),
        ),
    }
}

impl UpdateMix {
    /// The `i`-th request with the body of choice `r` (0..10) and `flag` (see
    /// [`update_body`]), on a random account.
    pub fn request_of(&self, i: u64, r: u32, flag: bool) -> HttpRequest {
        let (base, a) = self.0.pick(i);
        let (admin, body) = update_body(r, flag, a);
        if admin {
            let uri = format!(
                "{base}/api/organization/{}/accounts/{}",
                a.zoid, a.account_id
            );
            request(Method::PUT, uri, &a.admin_auth, Some(body))
        } else {
            let uri = format!("{base}/api/accounts/{}", a.account_id);
            request(Method::PUT, uri, &a.user_auth, Some(body))
        }
    }
}

impl Workload for UpdateMix {
    fn request(&self, i: u64) -> HttpRequest {
        let mut rng = rand::thread_rng();
        self.request_of(i, rng.gen_range(0..10), rng.gen())
    }
}

impl Workload for InvalidTokens {
    fn request(&self, i: u64) -> HttpRequest {
        let (base, a) = self.0.pick(i);
        let uri = format!(
            "{base}/api/organization/{}/accounts/{}",
            a.zoid, a.account_id
        );
        let auth = HeaderValue::from_str(&format!("Zoho-oauthtoken mpat_not_a_token_{i}"))
            .expect("an ASCII header");
        request(Method::GET, uri, &auth, None)
    }
}

impl Workload for Read {
    fn request(&self, i: u64) -> HttpRequest {
        let (base, a) = self.0.pick(i);
        let uri = format!("{base}/api/accounts/{}", a.account_id);
        request(Method::GET, uri, &a.user_auth, None)
    }
}

/// `GET`s of a path the workload's closure picks for each request (its randomness its
/// own), with the same headers on every request: the console scenario's pages and its
/// baseline listing. Requests go to the servers in turn.
pub struct Gets {
    bases: Arc<[String]>,
    headers: Vec<(HeaderName, HeaderValue)>,
    path: Box<dyn Fn(u64) -> String + Send + Sync>,
}

impl Gets {
    /// `bases` like `http://127.0.0.1:8080`; `path(i)` the path and query of the `i`-th
    /// request, starting with `/`.
    pub fn new(
        bases: Vec<String>,
        headers: &[(&str, &str)],
        path: impl Fn(u64) -> String + Send + Sync + 'static,
    ) -> Result<Gets, String> {
        assert!(!bases.is_empty());
        let headers = headers
            .iter()
            .map(|(k, v)| {
                Ok((
                    HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("{k}: {e}"))?,
                    HeaderValue::from_str(v).map_err(|e| format!("{k}: {e}"))?,
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Gets {
            bases: bases.into(),
            headers,
            path: Box::new(path),
        })
    }
}

impl Workload for Gets {
    fn request(&self, i: u64) -> HttpRequest {
        let base = &self.bases[(i % self.bases.len() as u64) as usize];
        let mut b = hyper::Request::builder()
            .method(Method::GET)
            .uri(format!("{base}{}", (self.path)(i)));
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(Full::new(Bytes::new())).expect("a valid request")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_is_json_with_a_mode() {
        let a = BenchAccount::new(
            "1".into(),
            "2".into(),
            "3".into(),
            "mpat_user",
            "mpat_admin",
        )
        .unwrap();
        let mut admin_seen = 0;
        for r in 0..10 {
            for flag in [true, false] {
                let (admin, body) = update_body(r, flag, &a);
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert!(v["mode"].is_string(), "{body}");
                assert_eq!(admin, v.get("zuid").is_some(), "{body}");
                admin_seen += usize::from(admin);
            }
        }
        assert_eq!(admin_seen, 8);
    }

    #[test]
    fn requests_go_to_the_servers_in_turn() {
        let a = BenchAccount::new("1".into(), "2".into(), "3".into(), "u", "a").unwrap();
        let t = Targets::new(
            vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            vec![a].into(),
        );
        let read = Read(t);
        assert_eq!(
            read.request(0).uri().to_string(),
            "http://127.0.0.1:1/api/accounts/3"
        );
        assert_eq!(
            read.request(1).uri().to_string(),
            "http://127.0.0.1:2/api/accounts/3"
        );
        assert_eq!(
            read.request(1).headers()[AUTHORIZATION],
            "Zoho-oauthtoken u"
        );
    }

    #[test]
    fn gets_carry_their_headers_to_the_servers_in_turn() {
        let gets = Gets::new(
            vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            &[("cookie", "mailplane_console=t")],
            |i| format!("/console/users?page={i}"),
        )
        .unwrap();
        let r = gets.request(3);
        assert_eq!(r.method(), Method::GET);
        assert_eq!(
            r.uri().to_string(),
            "http://127.0.0.1:2/console/users?page=3"
        );
        assert_eq!(r.headers()["cookie"], "mailplane_console=t");
        assert!(
            Gets::new(vec!["http://x".into()], &[("cookie", "a\nb")], |_| "/"
                .into())
            .is_err()
        );
    }
}
