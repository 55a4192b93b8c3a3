//! Where a relay (an `extfrom` identity's SMTP server) may be: not inside the network
//! mailplane runs in, unless the operator allows it. Otherwise an API client could make
//! mailplane (and the mail server it feeds) connect to internal services (SSRF).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7 and link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// Whether an address is loopback, private, link-local or otherwise not a public host.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

/// The IP address a relay host names literally (`10.0.0.1`, `[::1]`, `::1`), if any.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_and_public_addresses() {
        for h in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "[::1]",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal_ip(literal_ip(h).unwrap()), "{h}");
        }
        for h in [
            "8.8.8.8",
            "1.1.1.1",
            "2a00:1450:4001::1",
            "[2606:4700::1111]",
        ] {
            assert!(!is_internal_ip(literal_ip(h).unwrap()), "{h}");
        }
        assert_eq!(literal_ip("smtp.example.net"), None);
    }
}
