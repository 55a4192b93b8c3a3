//! mailplane as the live source of truth of a mail server: of Postfix, through the two
//! interfaces it offers for it, SMTP access policy delegation ([`policy`]) and socketmap
//! lookup tables ([`socketmap`]); of Dovecot, through its dict protocol ([`dict`]) for
//! logins and mailboxes. Nothing is cached: every question goes to the store, so a change
//! made through the API is enforced on the next SMTP transaction or login, on every node.
//!
//! The protocol codecs are pure and separate from the listeners; the decisions themselves
//! are the domain's (`mailplane_domain::mail_policy`).

pub mod config;
pub mod dict;
mod listen;
pub mod policy;
mod relay;
pub mod relay_maps;
pub mod socketmap;

pub use listen::{bind, bind_in_group, Limits, ListenError, Listener, SOCKET_MODE};
pub use relay::{RelayGuard, RelayRefusal};

use mailplane_store::Store;

/// What both listeners share.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub relay_guard: RelayGuard,
    /// The characters that start an address extension (`user+ext@domain`), as Postfix's
    /// `recipient_delimiter`; empty for none. Postfix does not strip extensions before
    /// asking a socketmap (it treats one as a pattern table), so the delivery maps do.
    pub recipient_delimiter: String,
}

/// `address` without its extension: the local part up to the first of `delimiters`,
/// when it has one and something precedes it.
pub fn without_extension(
    address: &mailplane_domain::EmailAddress,
    delimiters: &str,
) -> Option<mailplane_domain::EmailAddress> {
    let local = address.local_part();
    let cut = local.find(|c| delimiters.contains(c)).filter(|&i| i > 0)?;
    mailplane_domain::EmailAddress::parse(&format!("{}@{}", &local[..cut], address.domain())).ok()
}

#[cfg(test)]
mod tests {
    use mailplane_domain::EmailAddress;

    use super::without_extension;

    #[test]
    fn extensions_are_cut_at_the_first_delimiter() {
        let a = |s: &str| EmailAddress::parse(s).unwrap();
        let cut = |s: &str, d: &str| without_extension(&a(s), d).map(|e| e.to_string());
        assert_eq!(
            cut("becky+news@zylker.com", "+").as_deref(),
            Some("becky@zylker.com")
        );
        assert_eq!(
            cut("becky+a+b@zylker.com", "+").as_deref(),
            Some("becky@zylker.com")
        );
        assert_eq!(
            cut("becky-x+y@zylker.com", "+-").as_deref(),
            Some("becky@zylker.com")
        );
        assert_eq!(cut("becky@zylker.com", "+"), None);
        assert_eq!(cut("+news@zylker.com", "+"), None);
        assert_eq!(cut("becky+news@zylker.com", ""), None);
    }
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
