//! What a relay offers, read from its EHLO reply (RFC 5321 4.1.1.1), and the AUTH
//! mechanism mailplane picks from it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::wire::Reply;

/// The extensions of an EHLO reply that the check cares about.
#[derive(Debug, Default)]
pub struct Offer {
    pub starttls: bool,
    /// The AUTH mechanisms, upper case, in the relay's order.
    pub auth: Vec<String>,
}

impl Offer {
    pub fn of(reply: &Reply) -> Offer {
        let mut offer = Offer::default();
        // The first line is the server's name and greeting, not an extension.
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
            if keyword == "STARTTLS" {
                offer.starttls = true;
            } else if keyword == "AUTH" {
                offer.auth.extend(words.map(str::to_ascii_uppercase));
            } else if let Some(first) = keyword.strip_prefix("AUTH=") {
                // The pre-RFC 4954 form some old servers still send beside AUTH.
                offer.auth.push(first.to_string());
                offer.auth.extend(words.map(str::to_ascii_uppercase));
            }
        }
        offer.auth.dedup();
        offer
    }

    /// PLAIN when offered (one round trip), else LOGIN. Both send the password as is,
    /// which is what a relay that only knows the password can check.
    pub fn mechanism(&self) -> Option<Mechanism> {
        let has = |m: &str| self.auth.iter().any(|a| a == m);
        if has("PLAIN") {
            Some(Mechanism::Plain)
        } else if has("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

/// The initial response of AUTH PLAIN (RFC 4616): no authorization identity, the user
/// name, the password.
pub fn plain_response(user: &str, password: &str) -> Zeroizing<String> {
    let raw = Zeroizing::new(format!("\0{user}\0{password}"));
    Zeroizing::new(STANDARD.encode(raw.as_bytes()))
}

/// One answer of AUTH LOGIN: the text in base64.
pub fn login_response(text: &str) -> Zeroizing<String> {
    Zeroizing::new(STANDARD.encode(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> Offer {
        Offer::of(&Reply {
            code: 250,
            lines: lines.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn plain_is_preferred_and_login_is_the_fallback() {
        let both = ehlo(&["relay.test", "STARTTLS", "AUTH LOGIN PLAIN CRAM-MD5"]);
        assert!(both.starttls);
        assert_eq!(both.mechanism(), Some(Mechanism::Plain));
        assert_eq!(
            ehlo(&["relay.test", "auth=login"]).mechanism(),
            Some(Mechanism::Login)
        );
        assert_eq!(ehlo(&["relay.test", "AUTH CRAM-MD5"]).mechanism(), None);
        // The greeting line is not an extension, whatever it says.
        let greeting = ehlo(&["STARTTLS"]);
        assert!(!greeting.starttls);
    }

    #[test]
    fn plain_response_is_rfc_4616() {
        assert_eq!(*plain_response("a", "b"), "AGEAYg==");
    }
}
