//! Dovecot's dict protocol, client side, as Dovecot's `proxy` dict speaks it: a hello line,
//! then lookups answered `O<value>`, `N` or `F<reason>`.
#![allow(dead_code)]

use super::wire::Wire;
use super::TestApp;

/// One connection to mailplane's dict listener, past its hello.
pub struct Dict(pub Wire);

impl Dict {
    pub async fn connect(app: &TestApp) -> Dict {
        let addr = app.dict_addr.as_deref().expect("the dict address");
        let mut wire = Wire::connect(addr, "the Dovecot dict").await;
        // Dovecot 2.3's hello: major 3, minor 2, value type 0 (string), no user, the name.
        wire.send(b"H3\t2\t0\t\tmailplane\n").await;
        Dict(wire)
    }

    /// The answer line to a lookup of `key` (Dovecot prefixes `shared/`), without its
    /// `\n`; panics when the server closes instead.
    pub async fn lookup(&mut self, key: &str) -> String {
        self.0.send(format!("Lshared/{key}\t\n").as_bytes()).await;
        let line = self
            .0
            .line(key)
            .await
            .unwrap_or_else(|| panic!("the dict closed the connection at {key}"));
        line.strip_suffix('\n').expect("a whole line").to_string()
    }

    /// The JSON object of a found answer.
    pub async fn found(&mut self, key: &str) -> serde_json::Value {
        let line = self.lookup(key).await;
        let json = line
            .strip_prefix('O')
            .unwrap_or_else(|| panic!("{key}: expected O<json>, got {line:?}"));
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{key}: {e}: {json:?}"))
    }
}
