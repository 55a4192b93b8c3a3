//! The policy service's protocol, client side (SMTPD_POLICY_README): requests as Postfix
//! writes them, one connection's answers read strictly, and what a refusal must look like.

use super::wire::Wire;
use super::TestApp;

/// What Postfix sends with every request (SMTPD_POLICY_README), before the attributes a
/// test cares about; the service must ignore what it does not use.
pub const USUAL: &[(&str, &str)] = &[
    ("request", "smtpd_access_policy"),
    ("protocol_state", "RCPT"),
    ("protocol_name", "ESMTP"),
    ("client_address", "192.0.2.10"),
    ("client_name", "mx.example.org"),
    ("client_port", "53412"),
    ("reverse_client_name", "mx.example.org"),
    ("server_address", "192.0.2.1"),
    ("server_port", "587"),
    ("helo_name", "mx.example.org"),
    ("queue_id", ""),
    ("recipient_count", "0"),
    ("instance", "2a1b.64f0c1d2.9e4a1.0"),
    ("size", "0"),
    ("etrn_domain", ""),
    ("stress", ""),
    ("ccert_subject", ""),
    ("ccert_issuer", ""),
    ("ccert_fingerprint", ""),
    ("ccert_pubkey_fingerprint", ""),
    ("encryption_protocol", "TLSv1.3"),
    ("encryption_cipher", "TLS_AES_256_GCM_SHA384"),
    ("encryption_keysize", "256"),
    ("policy_context", ""),
    ("compatibility_level", "3.6"),
    ("mail_version", "3.7.11"),
];

/// A request: the usual attributes, then `attrs`, then the empty line.
pub fn request(attrs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (name, value) in USUAL.iter().chain(attrs) {
        s.push_str(&format!("{name}={value}\n"));
    }
    s.push('\n');
    s
}

/// A message submitted by an authenticated login.
pub fn submission(login: &str, sender: &str) -> String {
    request(&[
        ("sasl_method", "PLAIN"),
        ("sasl_username", login),
        ("sasl_sender", ""),
        ("sender", sender),
        ("recipient", "friend@example.org"),
    ])
}

/// A message arriving from outside (no login: Postfix sends `sasl_username=` empty).
pub fn inbound(recipient: &str) -> String {
    request(&[
        ("sasl_method", ""),
        ("sasl_username", ""),
        ("sasl_sender", ""),
        ("sender", "someone@example.org"),
        ("recipient", recipient),
    ])
}

/// One connection to the policy service.
pub struct Policy(pub Wire);

impl Policy {
    pub async fn connect(app: &TestApp) -> Policy {
        let addr = app
            .policy_addr
            .as_deref()
            .expect("the policy service address");
        Policy(Wire::connect(addr, "the policy service").await)
    }

    pub async fn line(&mut self, what: &str) -> String {
        self.0.line(what).await.unwrap_or_else(|| {
            panic!("the policy service closed the connection instead of answering ({what})")
        })
    }

    /// Reads one answer, exactly `action=<action>\n\n`; the action.
    pub async fn answer(&mut self) -> String {
        let first = self.line("the action line").await;
        let action = first
            .strip_prefix("action=")
            .and_then(|a| a.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("an answer must be `action=…\\n`, got {first:?}"));
        assert!(
            !action.contains('\r'),
            "the action line ends with a bare \\n: {first:?}"
        );
        assert!(!action.is_empty(), "an empty action: {first:?}");
        let end = self.line("the empty line after the action").await;
        assert_eq!(end, "\n", "an answer ends with an empty line");
        action.to_string()
    }

    /// Sends one request and reads its answer; the action.
    pub async fn ask(&mut self, request: &str) -> String {
        self.0.send(request.as_bytes()).await;
        self.answer().await
    }
}

/// The connection's bytes: sending, half-closing, asserting the close.
impl std::ops::Deref for Policy {
    type Target = Wire;
    fn deref(&self) -> &Wire {
        &self.0
    }
}

impl std::ops::DerefMut for Policy {
    fn deref_mut(&mut self) -> &mut Wire {
        &mut self.0
    }
}

/// `<code> 5.7.1 <a sentence containing needle>`.
pub fn assert_refused(action: &str, code: &str, needle: &str) {
    let prefix = format!("{code} 5.7.1 ");
    let text = action
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("expected `{prefix}…`, got action={action:?}"));
    assert!(
        text.trim().len() > 3,
        "a refusal carries a sentence: {action:?}"
    );
    assert!(
        text.contains(needle),
        "expected {needle:?} in the refusal, got action={action:?}"
    );
}

pub fn assert_dunno(action: &str, what: &str) {
    assert_eq!(action, "DUNNO", "{what}");
}
