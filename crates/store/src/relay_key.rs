//! Encryption at rest of relay passwords (XChaCha20-Poly1305).
//!
//! The key lives outside the database: a file in the data directory (created on first
//! start, mode 0600) or the `MAILPLANE_RELAY_KEY` environment variable. Each ciphertext is
//! bound to its row (account id and from address as associated data), so a ciphertext
//! copied into another row does not decrypt.

use std::fs;
use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::StoreError;

/// The version byte that starts every ciphertext, so a later key rotation can tell keys
/// apart.
const KEY_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// The key that encrypts relay passwords.
#[derive(Clone)]
pub struct RelayKey {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for RelayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayKey(***)")
    }
}

impl RelayKey {
    /// Parses 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Result<Self, StoreError> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
            StoreError::Config("the relay key must be 64 hexadecimal digits".into())
        })?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            StoreError::Config("the relay key must be 64 hexadecimal digits".into())
        })?;
        Ok(Self {
            key: Zeroizing::new(key),
        })
    }

    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self { key }
    }

    /// Reads the key file, creating it (mode 0600) when it does not exist. Several nodes
    /// may start at once on a fresh data directory: the key is written to a private
    /// temporary file first and linked into place, which fails if another node got there
    /// first, so every node ends up reading one complete key.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        match fs::read_to_string(path) {
            Ok(text) => return Self::from_hex(&text),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(StoreError::Io(e)),
            Err(_) => {}
        }
        let key = Self::generate();
        let mut suffix = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        let tmp = path.with_extension(format!("tmp-{}", hex::encode(suffix)));
        let written = (|| {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            let text = Zeroizing::new(hex::encode(key.key.as_ref()));
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::hard_link(&tmp, path)
        })();
        let _ = fs::remove_file(&tmp);
        match written {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::from_hex(&fs::read_to_string(path).map_err(StoreError::Io)?)
            }
            Err(e) => Err(StoreError::Io(e)),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_ref().into())
    }

    /// Encrypts `plain` for the row identified by `binding`.
    pub fn seal(&self, plain: &str, binding: &str) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(KEY_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a ciphertext made by [`RelayKey::seal`] for the same binding.
    pub fn open(&self, sealed: &[u8], binding: &str) -> Result<Zeroizing<String>, StoreError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != KEY_VERSION {
            return Err(StoreError::Crypto);
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto)?;
        String::from_utf8(plain)
            .map(Zeroizing::new)
            .map_err(|_| StoreError::Crypto)
    }
}

/// The associated data that binds a relay password to its identity row.
pub fn binding(account_id: i64, from_address: &str) -> String {
    format!("relay-password:{account_id}:{from_address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_another_row() {
        let k = RelayKey::generate();
        let sealed = k.seal("Smknel@88", &binding(1, "a@x.com")).unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"Smknel@88"));
        assert_eq!(
            k.open(&sealed, &binding(1, "a@x.com")).unwrap().as_str(),
            "Smknel@88"
        );
        assert!(k.open(&sealed, &binding(2, "a@x.com")).is_err());
        assert!(RelayKey::generate()
            .open(&sealed, &binding(1, "a@x.com"))
            .is_err());
    }

    #[test]
    fn racing_creators_all_get_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.key");
        let keys: Vec<RelayKey> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| RelayKey::load_or_create(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let sealed = keys[0].seal("p", "b").unwrap();
        assert!(keys.iter().all(|k| k.open(&sealed, "b").is_ok()));
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files are left behind");
    }

    #[test]
    fn key_file_is_created_private_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.key");
        let k1 = RelayKey::load_or_create(&path).unwrap();
        let k2 = RelayKey::load_or_create(&path).unwrap();
        let sealed = k1.seal("p", "b").unwrap();
        assert_eq!(k2.open(&sealed, "b").unwrap().as_str(), "p");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
