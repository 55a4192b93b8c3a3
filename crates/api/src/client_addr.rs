//! The client's address, for the audit rows, the security events and the sign-in
//! throttle: the socket's peer, or, when the peer is a proxy the operator named with
//! `--trusted-proxy`, the address that proxy saw, from `X-Forwarded-For`.
//!
//! Only `X-Forwarded-For` is read, never `Forwarded`: a proxy that appends to one passes
//! the other through untouched, so reading both would let a client write its own address
//! in the header its proxy does not set.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address or a CIDR block: `192.0.2.7`, `10.0.0.0/8`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network address (host bits cleared).
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        mask(ip.to_canonical(), self.prefix) == Some(self.addr)
    }
}

/// `ip` with all but its first `prefix` bits cleared; `None` across address families.
fn mask(ip: IpAddr, prefix: u8) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) if prefix <= 32 => {
            let bits = u32::from(v4) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some(IpAddr::V4(bits.into()))
        }
        IpAddr::V6(v6) if prefix <= 128 => {
            let bits = u128::from(v6) & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Some(IpAddr::V6(bits.into()))
        }
        _ => None,
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IP address or a CIDR block (e.g. 10.0.0.0/8)");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = IpAddr::from_str(addr).map_err(|_| bad())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpNet {
            addr: mask(addr, prefix).ok_or_else(bad)?,
            prefix,
        })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client of a request that came from `peer`. From an untrusted peer, the peer
    /// itself, whatever the headers say. From a trusted one, `X-Forwarded-For` read from
    /// the right (each proxy appends the address it saw): the first address that is not a
    /// trusted proxy; the left-most if all are; and where an entry cannot be read, the
    /// last address read before it (what a trusted proxy vouched for).
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        for line in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(line) = line.to_str() else {
                return client;
            };
            for hop in line.rsplit(',') {
                let Some(ip) = parse_hop(hop) else {
                    return client;
                };
                client = ip;
                if !self.trusts(ip) {
                    return client;
                }
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`[::1]:80`, `1.2.3.4:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = IpAddr::from_str(hop)
        .ok()
        .or_else(|| SocketAddr::from_str(hop).ok().map(|s| s.ip()))
        .or_else(|| IpAddr::from_str(hop.strip_prefix('[')?.strip_suffix(']')?).ok())?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nets_parse_and_contain() {
        let n: IpNet = "10.1.2.3/8".parse().unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(ip("10.255.0.1")) && !n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.0.0.1")), "v4-mapped is v4");
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("10.0.0.1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "proxy",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&["203.0.113.9"]);
        assert_eq!(p.client_addr(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        assert_eq!(
            TrustedProxies::default().client_addr(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_trusted_peer_gives_the_right_most_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.5"]);
        let peer = ip("10.0.0.1");
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&["198.51.100.1, 203.0.113.9", "192.0.2.5, 10.0.0.2"]);
        assert_eq!(p.client_addr(peer, &h), ip("203.0.113.9"));
        assert_eq!(
            p.client_addr(peer, &headers(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
        // Every hop a proxy: the left-most. No header: the peer.
        assert_eq!(
            p.client_addr(peer, &headers(&["10.9.9.9, 10.0.0.2"])),
            ip("10.9.9.9")
        );
        assert_eq!(p.client_addr(peer, &HeaderMap::new()), peer);
        // An unreadable entry: the last address a trusted proxy vouched for.
        assert_eq!(
            p.client_addr(peer, &headers(&["203.0.113.9, junk, 10.0.0.2"])),
            ip("10.0.0.2")
        );
    }
}
