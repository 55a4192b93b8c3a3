//! Strings that must never be printed: passwords on their way to encryption or hashing,
//! and the hashes of user passwords.

use std::fmt;
use zeroize::Zeroize;

/// Holds a secret string. `Debug` prints a placeholder and the memory is wiped on drop,
/// so a secret that reaches a log line or an error by accident shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    /// The plain text, for the one place that needs it (encryption).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A user's password as it is stored: an argon2id hash in PHC form. Not the password, but
/// still nothing to print: `Debug` shows a placeholder, and audit rows never hold one.
/// Its only constructor takes nothing but an argon2id hash, so a plain password cannot be
/// passed where a hash is expected.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The hash, if `phc` is an argon2id PHC string (`$argon2id$…`).
    pub fn from_phc(phc: String) -> Option<Self> {
        phc.starts_with("$argon2id$").then_some(Self(phc))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_argon2id_hash_is_a_password_hash_and_neither_prints() {
        assert!(PasswordHash::from_phc("Correct-horse-9".into()).is_none());
        assert!(
            PasswordHash::from_phc("$argon2i$v=19$m=16,t=2,p=1$c2FsdA$aGFzaA".into()).is_none()
        );
        let h =
            PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()).unwrap();
        assert!(h.as_str().starts_with("$argon2id$"));
        assert_eq!(format!("{h:?}"), "PasswordHash(***)");
        assert_eq!(format!("{:?}", Secret::new("pw".into())), "Secret(***)");
    }
}
