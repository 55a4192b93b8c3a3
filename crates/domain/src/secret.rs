//! A string that must never be printed: relay passwords on their way to encryption.

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
