//! User passwords (argon2id) and access tokens (random, stored as SHA-256 digests).

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng as HashRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Every access token starts with this, so secret scanners can recognise a leaked one.
pub const ACCESS_TOKEN_PREFIX: &str = "mpat_";

/// Hashes a user password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut HashRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| StoreError::Crypto)
}

/// Checks a password against a stored hash. With no hash (an unknown user, or one without
/// a password) it checks against a throwaway hash of the same cost and fails, so that the
/// two cases take the same time as a wrong password.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password(&new_access_token()).unwrap_or_default());
    let (stored, real) = match hash {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    ok && real
}

/// A new access token: the prefix and 256 random bits, base64url.
pub fn new_access_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{ACCESS_TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A new random password for a mailbox: 20 characters of letters and digits (about 119
/// bits), easy to paste into a mail client.
pub fn new_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // 256 is not a multiple of the alphabet's 57: draws past the last whole multiple are
    // redrawn, so every character is equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    bytes
        .iter()
        .map(|&b| {
            let mut b = usize::from(b);
            while b >= limit {
                let mut one = [0u8; 1];
                rand::rngs::OsRng.fill_bytes(&mut one);
                b = usize::from(one[0]);
            }
            char::from(ALPHABET[b % ALPHABET.len()])
        })
        .collect()
}

/// What the database holds of a token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_random_letters_and_digits() {
        let (a, b) = (new_password(), new_password());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn tokens_are_long_random_and_digested() {
        let a = new_access_token();
        assert!(a.starts_with(ACCESS_TOKEN_PREFIX));
        assert!(a.len() >= ACCESS_TOKEN_PREFIX.len() + 43);
        assert_ne!(a, new_access_token());
        assert_eq!(token_digest(&a).len(), 64);
        assert!(!token_digest(&a).contains(&a[5..]));
    }

    #[test]
    fn password_hash_is_argon2id_and_verifies() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
    }
}
