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

pub use listen::{bind, Limits, ListenError, Listener, SOCKET_MODE};
pub use relay::{RelayGuard, RelayRefusal};

use mailplane_store::Store;

/// What both listeners share.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub relay_guard: RelayGuard,
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::fmt::Display;

    use tokio::io::BufReader;

    /// Reads `input` with `read_one` (a protocol's `read_request`) until it gives anything
    /// but a request: every result, errors as text, the last one included.
    pub(crate) fn read_all<'i, T, E: Display>(
        input: &'i [u8],
        mut read_one: impl AsyncFnMut(&mut BufReader<&'i [u8]>) -> Result<Option<T>, E>,
    ) -> Vec<Result<Option<T>, String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut reader = BufReader::new(input);
            let mut out = Vec::new();
            loop {
                let r = read_one(&mut reader).await.map_err(|e| e.to_string());
                let done = !matches!(r, Ok(Some(_)));
                out.push(r);
                if done {
                    return out;
                }
            }
        })
    }
}
