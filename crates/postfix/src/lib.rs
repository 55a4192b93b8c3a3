//! mailplane as the live source of truth of a Postfix server, through the two interfaces
//! Postfix offers for it: SMTP access policy delegation ([`policy`]) and socketmap lookup
//! tables ([`socketmap`]). Nothing is cached: every question goes to the store, so a change
//! made through the API is enforced on the next SMTP transaction, on every node.
//!
//! The protocol codecs are pure and separate from the listeners; the decisions themselves
//! are the domain's (`mailplane_domain::mail_policy`).

pub mod config;
mod listen;
pub mod policy;
mod relay;
pub mod socketmap;

pub use listen::{bind, ListenError};
pub use relay::{RelayGuard, RelayRefusal};

use mailplane_store::Store;

/// What both listeners share.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub relay_guard: RelayGuard,
}
