//! The SSRF guard of relay hosts lives with the relay checks, which connect to relays
//! too: the mail server's relay maps and the checks resolve and pick addresses the same
//! way.

pub use mailplane_relaycheck::guard::{RelayGuard, RelayRefusal};
