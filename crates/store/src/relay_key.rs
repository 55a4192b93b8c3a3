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

const NONCE_LEN: usize = 24;

fn bad_key() -> StoreError {
    StoreError::Config(
        "the relay key must be 64 hexadecimal digits (or lines of VERSION:HEX)".into(),
    )
}

/// The keys that encrypt relay passwords: every version still in use, the newest last.
/// Each ciphertext starts with the version byte of the key that made it, so a rotation
/// can re-encrypt under a new version while the old one still decrypts, then retire it.
#[derive(Clone)]
pub struct RelayKey {
    keys: Vec<(u8, Zeroizing<[u8; 32]>)>,
}

impl std::fmt::Debug for RelayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RelayKey(versions {:?}, ***)", self.versions())
    }
}

fn parse_key(hex_text: &str) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let bytes = Zeroizing::new(hex::decode(hex_text.trim()).map_err(|_| bad_key())?);
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| bad_key())?;
    Ok(Zeroizing::new(key))
}

impl RelayKey {
    /// Parses a key file: one line of 64 hexadecimal digits (version 1), or lines of
    /// `VERSION:HEX`.
    pub fn from_hex(text: &str) -> Result<Self, StoreError> {
        let mut keys = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (version, hex_text) = match line.split_once(':') {
                Some((v, h)) => (
                    v.parse::<u8>()
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or_else(bad_key)?,
                    h,
                ),
                None => (1, line),
            };
            keys.push((version, parse_key(hex_text)?));
        }
        keys.sort_by_key(|(v, _)| *v);
        keys.dedup_by_key(|(v, _)| *v);
        if keys.is_empty() {
            return Err(bad_key());
        }
        Ok(Self { keys })
    }

    /// The key file's text: `VERSION:HEX` lines.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(
            self.keys
                .iter()
                .map(|(v, k)| format!("{v}:{}\n", hex::encode(k.as_ref())))
                .collect(),
        )
    }

    fn random_key() -> Zeroizing<[u8; 32]> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        key
    }

    pub fn generate() -> Self {
        Self {
            keys: vec![(1, Self::random_key())],
        }
    }

    pub fn versions(&self) -> Vec<u8> {
        self.keys.iter().map(|(v, _)| *v).collect()
    }

    /// The version new ciphertexts are made with.
    pub fn current_version(&self) -> u8 {
        self.keys.last().map(|(v, _)| *v).unwrap_or(1)
    }

    /// These keys plus a new, current version.
    pub fn rotated(&self) -> Result<Self, StoreError> {
        let next = self
            .current_version()
            .checked_add(1)
            .ok_or_else(|| StoreError::Config("no key versions left".into()))?;
        let mut keys = self.keys.clone();
        keys.push((next, Self::random_key()));
        Ok(Self { keys })
    }

    /// Only the current version: the older ones retired.
    pub fn current_only(&self) -> Self {
        Self {
            keys: self.keys.last().cloned().into_iter().collect(),
        }
    }

    /// Writes the key file atomically (a private temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        let tmp = path.with_extension("rotating");
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(StoreError::Io)?;
        f.write_all(self.to_text().as_bytes())
            .map_err(StoreError::Io)?;
        f.sync_all().map_err(StoreError::Io)?;
        fs::rename(&tmp, path).map_err(StoreError::Io)
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
            f.write_all(key.to_text().as_bytes())?;
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

    fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(key.into())
    }

    /// Encrypts `plain` for the row identified by `binding`.
    pub fn seal(&self, plain: &str, binding: &str) -> Result<Vec<u8>, StoreError> {
        let (version, key) = self.keys.last().ok_or(StoreError::Crypto)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = Self::cipher(key)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(*version);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a ciphertext made by [`RelayKey::seal`] for the same binding, with the key
    /// version it names.
    pub fn open(&self, sealed: &[u8], binding: &str) -> Result<Zeroizing<String>, StoreError> {
        if sealed.len() < 1 + NONCE_LEN {
            return Err(StoreError::Crypto);
        }
        let (_, key) = self
            .keys
            .iter()
            .find(|(v, _)| *v == sealed[0])
            .ok_or(StoreError::Crypto)?;
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        let plain = Self::cipher(key)
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

    /// The same plain text under the current version (for a rotation).
    /// Of stored relay passwords `(id, binding, ciphertext)`, how many open with this key
    /// and how many do not.
    pub fn count_openable(&self, sealed: &[(i64, String, Vec<u8>)]) -> (usize, usize) {
        let ok = sealed
            .iter()
            .filter(|(_, binding, ct)| self.open(ct, binding).is_ok())
            .count();
        (ok, sealed.len() - ok)
    }

    pub fn reseal(&self, sealed: &[u8], binding: &str) -> Result<Vec<u8>, StoreError> {
        self.seal(&self.open(sealed, binding)?, binding)
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
    fn rotation_reseals_under_the_new_version_and_retires_the_old() {
        let old = RelayKey::generate();
        let sealed = old.seal("pw", "b").unwrap();
        let both = old.rotated().unwrap();
        assert_eq!(both.versions(), vec![1, 2]);
        assert_eq!(
            both.open(&sealed, "b").unwrap().as_str(),
            "pw",
            "the old version still decrypts"
        );
        let resealed = both.reseal(&sealed, "b").unwrap();
        assert_eq!(resealed[0], 2);
        let new = both.current_only();
        assert_eq!(new.versions(), vec![2]);
        assert_eq!(new.open(&resealed, "b").unwrap().as_str(), "pw");
        assert!(
            new.open(&sealed, "b").is_err(),
            "the retired version is gone"
        );
        assert!(new.reseal(&resealed, "other-row").is_err());
        let reread = RelayKey::from_hex(&both.to_text()).unwrap();
        assert_eq!(reread.versions(), vec![1, 2]);
        assert_eq!(
            RelayKey::from_hex(&"ab".repeat(32)).unwrap().versions(),
            vec![1],
            "a bare key is version 1"
        );
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
