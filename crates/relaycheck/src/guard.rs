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
        // A name may resolve to public and internal addresses at once (DNS rebinding):
        // pin a public one; refuse when there is none.
        let chosen = self.permitted(host, port).await?[0];
        Ok(next_hop(chosen, port))
    }

    /// The address a check of the relay at `host:port` connects to: the one
    /// [`RelayGuard::next_hop`] would hand to Postfix.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, RelayRefusal> {
        Ok(SocketAddr::new(self.permitted(host, port).await?[0], port))
    }

    /// Every next hop `host:port` may be handed to Postfix as, now: the TLS policy map
    /// asks about a next hop some time after the transport map chose it, and a name with
    /// several addresses (round-robin DNS) may resolve in another order by then.
    pub async fn next_hops(&self, host: &str, port: u16) -> Result<Vec<String>, RelayRefusal> {
        let permitted = self.permitted(host, port).await?;
        Ok(permitted.into_iter().map(|ip| next_hop(ip, port)).collect())
    }

    /// The permitted addresses of `host`, in the resolver's order; at least one.
    async fn permitted(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, RelayRefusal> {
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
        let permitted: Vec<IpAddr> = candidates
            .into_iter()
            .filter(|ip| self.allow_internal || !is_internal_ip(*ip))
            .collect();
        if permitted.is_empty() {
            return Err(RelayRefusal::Internal(host.to_string()));
        }
        Ok(permitted)
    }
}

/// Postfix's spelling of a next hop at `ip`: brackets turn off MX lookups.
fn next_hop(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]:{port}"),
        IpAddr::V6(v6) => format!("[ipv6:{v6}]:{port}"),
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
        assert_eq!(
            open.next_hops("127.0.0.1", 2525).await,
            Ok(vec!["[127.0.0.1]:2525".to_string()])
        );
        assert_eq!(
            strict.next_hops("localhost", 25).await,
            Err(RelayRefusal::Internal("localhost".into()))
        );
        assert!(matches!(
            strict.next_hop("no-such-host.invalid", 25).await,
            Err(RelayRefusal::Unresolved(_))
        ));
    }
}
