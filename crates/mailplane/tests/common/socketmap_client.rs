//! The socketmap's protocol, client side (Postfix's socketmap_table): netstring lookups,
//! answers read strictly, and what the answers of each map must look like.

use std::collections::BTreeSet;

use super::wire::Wire;
use super::TestApp;

pub const NOTFOUND: &str = "NOTFOUND ";

pub fn netstring(payload: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v.push(b',');
    v
}

pub fn query(map: &str, key: &str) -> Vec<u8> {
    netstring(format!("{map} {key}").as_bytes())
}

/// One connection to the socketmap.
pub struct Socketmap(pub Wire);

impl Socketmap {
    pub async fn connect(app: &TestApp) -> Socketmap {
        let addr = app
            .socketmap_addr
            .as_deref()
            .expect("the socketmap address");
        Socketmap(Wire::connect(addr, "the socketmap").await)
    }

    /// Reads one netstring answer (strictly: digits, `:`, that many bytes, `,`); `None`
    /// when the server closed the connection before its first byte.
    pub async fn try_answer(&mut self) -> Option<String> {
        let mut len = String::new();
        loop {
            let Some(b) = self.byte("the netstring length").await else {
                assert!(
                    len.is_empty(),
                    "the connection closed inside a netstring length {len:?}"
                );
                return None;
            };
            match b {
                b'0'..=b'9' if len.len() < 6 => len.push(b as char),
                b':' if !len.is_empty() => break,
                _ => panic!(
                    "not a netstring: {:?} after {len:?}",
                    String::from_utf8_lossy(&[b])
                ),
            }
        }
        let payload = self
            .bytes(len.parse().unwrap(), "the netstring payload")
            .await;
        let comma = self.byte("the netstring's comma").await;
        assert_eq!(
            comma,
            Some(b','),
            "a netstring ends with `,` (payload {:?})",
            String::from_utf8_lossy(&payload)
        );
        Some(String::from_utf8(payload).expect("the answer is UTF-8"))
    }

    pub async fn answer(&mut self) -> String {
        self.try_answer()
            .await
            .expect("the socketmap closed the connection instead of answering")
    }

    pub async fn lookup(&mut self, map: &str, key: &str) -> String {
        self.send(&query(map, key)).await;
        self.answer().await
    }

    /// Looks `key` up in `senderlogin`; the logins of the `OK` answer (see [`logins`]).
    pub async fn senderlogin(&mut self, key: &str, what: &str) -> BTreeSet<String> {
        logins(&self.lookup("senderlogin", key).await, what)
    }

    /// Asserts a `PERM <reason>` answer, then the close.
    pub async fn assert_perm_then_closed(&mut self, what: &str) {
        let a = self
            .try_answer()
            .await
            .unwrap_or_else(|| panic!("{what}: closed without the PERM answer"));
        assert_perm(&a, what);
        self.assert_closed(what).await;
    }
}

/// The connection's bytes: sending, half-closing, asserting the close.
impl std::ops::Deref for Socketmap {
    type Target = Wire;
    fn deref(&self) -> &Wire {
        &self.0
    }
}

impl std::ops::DerefMut for Socketmap {
    fn deref_mut(&mut self) -> &mut Wire {
        &mut self.0
    }
}

pub fn assert_perm(answer: &str, what: &str) {
    let reason = answer
        .strip_prefix("PERM ")
        .unwrap_or_else(|| panic!("{what}: expected `PERM <reason>`, got {answer:?}"));
    assert!(!reason.trim().is_empty(), "{what}: PERM without a reason");
}

/// The value of an `OK <value>` answer.
pub fn ok_value<'a>(answer: &'a str, what: &str) -> &'a str {
    answer
        .strip_prefix("OK ")
        .unwrap_or_else(|| panic!("{what}: expected `OK <value>`, got {answer:?}"))
}

/// The logins of an `OK login1,login2,…` answer of `senderlogin`.
pub fn logins(answer: &str, what: &str) -> BTreeSet<String> {
    let list = ok_value(answer, what);
    let logins: Vec<&str> = list.split(',').collect();
    for l in &logins {
        assert!(
            !l.is_empty() && !l.contains(' ') && l.contains('@'),
            "{what}: a bad login {l:?} in {answer:?}"
        );
    }
    let set: BTreeSet<String> = logins.iter().map(|l| l.to_string()).collect();
    assert_eq!(set.len(), logins.len(), "{what}: duplicates in {answer:?}");
    set
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
