//! The socketmaps that send an `extfrom` identity's mail through its own relay, the way
//! the identity says, and only once it is validated (owner confirmed, relay check passed):
//!
//! - `transport <sender>` (`sender_dependent_default_transport_maps`):
//!   `relay-plain:[ip]:port`, `relay-tls:[ip]:port` or `relay-ssl:[ip]:port`, one
//!   `master.cf` transport per connection kind, so that implicit TLS (wrapper mode) is
//!   possible at all and no global TLS setting decides;
//! - `tlspolicy <next hop>` (`smtp_tls_policy_maps`): Postfix asks by the next hop exactly
//!   as the transport map wrote it (`[ip]:port`); the answer checks the relay's
//!   certificate against the name the user gave, though Postfix connects to the checked IP;
//! - `relayhost <sender>` (`sender_dependent_relayhost_maps`, kept for configurations
//!   printed before the transport map): `[ip]:port`;
//! - `relaycreds <sender>` (`smtp_sasl_password_maps`): `userName:password`.
//!
//! The next hop is always the IP address the SSRF guard checked ([`RelayGuard`]), never the
//! name.

use std::fmt::Write;

use mailplane_domain::{literal_ip, EmailAddress, SmtpConnection};

use crate::relay::{RelayGuard, RelayRefusal};
use crate::socketmap::{unavailable, Reply};
use crate::Services;

/// The `master.cf` transport (a `smtp` client with its own TLS settings) for a kind of
/// connection; `mailplane postfix config` prints the three.
pub fn transport_name(connection: SmtpConnection) -> &'static str {
    match connection {
        SmtpConnection::Plain => "relay-plain",
        SmtpConnection::Tls => "relay-tls",
        SmtpConnection::Ssl => "relay-ssl",
    }
}

/// `relayhost` and `transport`: the checked next hop of the sender's validated relay,
/// alone or after its transport.
pub(crate) async fn next_hop(services: &Services, sender: &EmailAddress, transport: bool) -> Reply {
    let route = match services.store.relay_route(sender).await {
        Ok(Some(route)) => route,
        Ok(None) => return Reply::NotFound,
        Err(e) => return unavailable(e),
    };
    match services
        .relay_guard
        .next_hop(&route.server_name, route.server_port)
        .await
    {
        Ok(hop) if transport => {
            Reply::Ok(format!("{}:{hop}", transport_name(route.smtp_connection)))
        }
        Ok(hop) => Reply::Ok(hop),
        Err(refusal @ RelayRefusal::Internal(_)) => {
            tracing::warn!(%sender, %refusal, "relay refused");
            Reply::Perm(refusal.to_string())
        }
        Err(refusal @ RelayRefusal::Unresolved(_)) => Reply::Temp(refusal.to_string()),
    }
}

/// `relaycreds`: `userName:password` of the sender's validated relay (Postfix splits at
/// the first colon, so the password may hold colons).
pub(crate) async fn credentials(services: &Services, sender: &EmailAddress) -> Reply {
    match services.store.relay_route(sender).await {
        Ok(Some(route)) => match route.password {
            Some(password) if !route.user_name.is_empty() => {
                Reply::Ok(format!("{}:{}", route.user_name, password.as_str()))
            }
            _ => Reply::NotFound,
        },
        Ok(None) => Reply::NotFound,
        Err(e) => unavailable(e),
    }
}

/// The port of a next hop as Postfix writes it, `[ip]:port` or `[ipv6:ip]:port`; `None`
/// for anything else (a domain, a bare address: no relay of ours is ever named so).
fn bracketed_port(key: &str) -> Option<u16> {
    let (host, port) = key.strip_prefix('[')?.rsplit_once("]:")?;
    let ip = host.strip_prefix("ipv6:").unwrap_or(host);
    ip.parse::<std::net::IpAddr>().ok()?;
    port.parse().ok().filter(|p| *p > 0)
}

/// `tlspolicy`: the TLS policy of the next hop `key`, from every validated relay that
/// leads there. Two relays behind one next hop share its policy (the key is all Postfix
/// gives), so the strictest wins: `secure` with every name as a match when any of them
/// asked for TLS, `none` when all are plain.
pub(crate) async fn tls_policy(services: &Services, key: &str) -> Reply {
    let Some(port) = bracketed_port(key) else {
        return Reply::NotFound;
    };
    let relays = match services.store.relay_tls_names(port).await {
        Ok(relays) => relays,
        Err(e) => return unavailable(e),
    };
    let mut names: Vec<&str> = Vec::new();
    let mut any = false;
    for (name, connection) in &relays {
        if !leads_to(&services.relay_guard, name, port, key).await {
            continue;
        }
        any = true;
        if *connection != SmtpConnection::Plain && !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    if !any {
        return Reply::NotFound;
    }
    if names.is_empty() {
        return Reply::Ok("none".into());
    }
    Reply::Ok(secure(&names))
}

/// Whether `name:port` resolves, through the guard, to the next hop `key` (any of its
/// permitted addresses: the transport map may have picked another of a round-robin name).
/// A name that does not resolve now is left out; should its mail have been routed here a
/// moment ago, the TLS transports' own `secure` level defers it rather than sending it
/// without its policy.
async fn leads_to(guard: &RelayGuard, name: &str, port: u16, key: &str) -> bool {
    guard
        .next_hops(name, port)
        .await
        .is_ok_and(|hops| hops.iter().any(|h| h.eq_ignore_ascii_case(key)))
}

/// `secure match=a:b servername=a`. An IPv6 literal cannot be listed (`:` separates the
/// names) and an IP literal is no SNI name: without a name to match, `secure` matches the
/// next hop's IP, which in practice defers, so such a relay fails closed.
fn secure(names: &[&str]) -> String {
    let matched: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !n.contains(':') && !n.contains(char::is_whitespace))
        .collect();
    let mut policy = String::from("secure");
    if !matched.is_empty() {
        let _ = write!(policy, " match={}", matched.join(":"));
    }
    if let Some(sni) = matched.iter().find(|n| literal_ip(n).is_none()) {
        let _ = write!(policy, " servername={sni}");
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bracketed_next_hops_are_policy_keys() {
        assert_eq!(bracketed_port("[127.0.0.1]:2525"), Some(2525));
        assert_eq!(bracketed_port("[ipv6:2001:db8::1]:465"), Some(465));
        for key in [
            "127.0.0.1:25",
            "[127.0.0.1]",
            "example.net",
            "[example.net]:25",
            "[127.0.0.1]:0",
            "[127.0.0.1]:x",
            "[1.2.3.4]:99999",
            "relay@example.net",
        ] {
            assert_eq!(bracketed_port(key), None, "{key}");
        }
    }

    #[test]
    fn policies_match_every_name_and_send_one_as_sni() {
        assert_eq!(
            secure(&["relay.example"]),
            "secure match=relay.example servername=relay.example"
        );
        assert_eq!(
            secure(&["a.example", "b.example"]),
            "secure match=a.example:b.example servername=a.example"
        );
        assert_eq!(secure(&["8.8.8.8"]), "secure match=8.8.8.8");
        assert_eq!(secure(&["[2001:db8::1]"]), "secure");
    }

    #[test]
    fn each_connection_kind_has_its_transport() {
        assert_eq!(transport_name(SmtpConnection::Plain), "relay-plain");
        assert_eq!(transport_name(SmtpConnection::Tls), "relay-tls");
        assert_eq!(transport_name(SmtpConnection::Ssl), "relay-ssl");
    }
}
