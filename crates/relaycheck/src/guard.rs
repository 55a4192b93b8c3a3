//! The SSRF guard at the moment of connecting. A relay's host name was only checked for
//! being a literal internal address when it was stored; a name can point anywhere, and can
//! point somewhere else tomorrow. So the name is resolved when a connection is to be made
//! (the mail server asking where to relay, or a check of the relay), every address is
//! checked, and the checked IP address itself is what is connected to (handed to the mail
//! server as `[ip]:port`), never the name.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mailplane_domain::{is_internal_ip, literal_ip};

/// The longest a relay host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where relays may be, as the operator configured it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RelayGuard {
    /// Whether a relay may be at a loopback, private or link-local address.
    pub allow_internal: bool,
}

/// Why no next hop was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayRefusal {
    /// Permanent: the host is inside the network and the operator did not allow that.
    #[error("relay host {0} is at an internal address")]
    Internal(String),
    /// Temporary: the name did not resolve (now).
    #[error("relay host {0} does not resolve")]
    Unresolved(String),
}

impl RelayGuard {
    /// The next hop to hand to Postfix for `host:port`: `[ip]:port` of a permitted address.
    pub async fn next_hop(&self, host: &str, port: u16) -> Result<String, RelayRefusal> {
        let addr = self.resolve(host, port).await?;
        Ok(match addr.ip() {
            IpAddr::V4(v4) => format!("[{v4}]:{port}"),
            IpAddr::V6(v6) => format!("[ipv6:{v6}]:{port}"),
        })
    }

    /// The address to connect to for `host:port`: one the guard permits.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, RelayRefusal> {
        let candidates: Vec<IpAddr> = match literal_ip(host) {
            Some(ip) => vec![ip],
            None => tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| RelayRefusal::Unresolved(host.to_string()))?
                .map_err(|_| RelayRefusal::Unresolved(host.to_string()))?
                .map(|a| a.ip())
                .collect(),
        };
        if candidates.is_empty() {
            return Err(RelayRefusal::Unresolved(host.to_string()));
        }
        // A name may resolve to public and internal addresses at once (DNS rebinding):
        // pin a public one; refuse when there is none.
        let chosen = candidates
            .into_iter()
            .find(|ip| self.allow_internal || !is_internal_ip(*ip))
            .ok_or_else(|| RelayRefusal::Internal(host.to_string()))?;
        Ok(SocketAddr::new(chosen, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_and_literals_are_checked_when_asked() {
        let strict = RelayGuard::default();
        let open = RelayGuard {
            allow_internal: true,
        };
        assert_eq!(
            strict.next_hop("localhost", 25).await,
            Err(RelayRefusal::Internal("localhost".into()))
        );
        assert_eq!(
            strict.next_hop("127.0.0.1", 25).await,
            Err(RelayRefusal::Internal("127.0.0.1".into()))
        );
        assert_eq!(
            strict.next_hop("203.0.113.9", 587).await,
            Err(RelayRefusal::Internal("203.0.113.9".into())),
            "documentation ranges are not public hosts"
        );
        assert_eq!(
            strict.next_hop("8.8.8.8", 587).await.as_deref(),
            Ok("[8.8.8.8]:587")
        );
        assert_eq!(
            strict
                .next_hop("[2001:4860:4860::8888]", 465)
                .await
                .as_deref(),
            Ok("[ipv6:2001:4860:4860::8888]:465")
        );
        assert_eq!(
            open.next_hop("127.0.0.1", 2525).await.as_deref(),
            Ok("[127.0.0.1]:2525")
        );
        assert!(matches!(
            strict.next_hop("no-such-host.invalid", 25).await,
            Err(RelayRefusal::Unresolved(_))
        ));
    }
}
