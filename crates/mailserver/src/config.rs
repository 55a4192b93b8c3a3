//! The configuration lines that make the mail server ask mailplane: `main.cf` lines for
//! Postfix (`mailplane postfix config`) and the Dovecot files (`mailplane dovecot config`),
//! used as printed by the end-to-end tests.

use std::path::PathBuf;

/// Postfix's name of an endpoint given as `serve` takes it: `unix:PATH` as is, `host:port`
/// as `inet:host:port`.
fn endpoint(addr: &str) -> String {
    if addr.starts_with("unix:") {
        addr.to_string()
    } else {
        format!("inet:{addr}")
    }
}

/// Where Postfix finds mailplane's listeners and Dovecot's: each `host:port` or
/// `unix:PATH` (a relative path is under Postfix's queue directory, as Postfix reads it).
#[derive(Debug, Clone)]
pub struct PostfixWiring {
    pub policy: String,
    pub socketmap: String,
    /// Dovecot's LMTP service.
    pub lmtp: String,
    /// Dovecot's auth service for Postfix's SASL.
    pub sasl: String,
    /// Postfix's `recipient_delimiter`, as mailplane's; empty for none.
    pub recipient_delimiter: String,
}

/// The `main.cf` lines for `w`.
pub fn main_cf(w: &PostfixWiring) -> String {
    let map = |name: &str| format!("socketmap:{}:{name}", endpoint(&w.socketmap));
    // Postfix's dovecot SASL takes a path for a UNIX socket, `inet:host:port` otherwise.
    let sasl_path = match w.sasl.strip_prefix("unix:") {
        Some(path) => path.to_string(),
        None => format!("inet:{}", w.sasl),
    };
    format!(
        "# mailplane: Postfix enforces what the Accounts API says (`mailplane postfix config`).
# Add to main.cf, then `postfix reload`. mailplane must run with
#   --policy-listen {policy} --socketmap-listen {socketmap}
# and Dovecot with what `mailplane dovecot config` writes.
#
# Every recipient of every transaction is checked against the sender's account
# (disabled, outgoing blocked, sender not its own) or, for mail from outside, the
# recipient's (disabled, incoming blocked), before anything can permit it.
smtpd_recipient_restrictions =
    check_policy_service {policy_ep},
    permit_sasl_authenticated,
    permit_mynetworks,
    reject_unauth_destination
# When mailplane cannot answer, mail waits (4xx) rather than passing unchecked.
smtpd_policy_service_default_action = 451 4.3.5 Policy service unavailable
# Which logins may use an envelope sender: the account's addresses and send-mail details.
smtpd_sender_login_maps = {senderlogin}
smtpd_sender_restrictions = reject_authenticated_sender_login_mismatch
# Mail from a validated extfrom identity leaves through its own relay, at the IP address
# mailplane checked, over the transport of its smtpConnection (relay-plain, relay-tls,
# relay-ssl: add the lines of `mailplane postfix config --master-cf` to master.cf), and
# authenticated as stored. Any other sender takes default_transport. To refuse instead
# of sending mail of unknown senders straight to the recipient's MX, where that fits:
#   default_transport = error:5.7.1 no relay configured for this sender
sender_dependent_default_transport_maps = {transport}
# The relay's TLS, by next hop: `secure` against the name the user gave for tls and ssl,
# `none` for plain. Two relays behind one [ip]:port share one policy, the strictest.
smtp_tls_policy_maps = {tlspolicy}
# Postfix trusts no CA unless told: the system's roots, to verify relays' certificates.
smtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt
smtp_sender_dependent_authentication = yes
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = {relaycreds}
# A second line of defence: no password in clear, except on relay-plain (as its user asked).
smtp_sasl_security_options = noplaintext, noanonymous
smtp_sasl_tls_security_options = noanonymous
#
# Delivery: the organizations' domains are virtual mailbox domains (keep them out of
# mydestination). An account's primary address is its mailbox, its aliases lead there,
# any other address in those domains is refused at RCPT (550 5.1.1 User unknown).
virtual_mailbox_domains = {domains}
virtual_mailbox_maps = {mailboxes}
virtual_alias_maps = {aliases}
# Empty, or Postfix would also ask the alias map about bare domain names.
virtual_alias_domains =
# Mail is stored by Dovecot, over LMTP, in the mailbox of the account (keyed by its id).
virtual_transport = lmtp:{lmtp_ep}
# user+tag@domain is delivered to user@domain (mailplane and Dovecot are told the same).
recipient_delimiter = {delimiter}
#
# Logins: SMTP AUTH is checked by Dovecot, which asks mailplane (a disabled account
# cannot log in). Offer AUTH on TLS only in production (smtpd_tls_auth_only = yes).
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {sasl_path}
smtpd_sasl_security_options = noanonymous
",
        policy = w.policy,
        socketmap = w.socketmap,
        policy_ep = endpoint(&w.policy),
        senderlogin = map("senderlogin"),
        transport = map("transport"),
        tlspolicy = map("tlspolicy"),
        relaycreds = map("relaycreds"),
        domains = map("domains"),
        mailboxes = map("mailboxes"),
        aliases = map("aliases"),
        lmtp_ep = endpoint(&w.lmtp),
        delimiter = w.recipient_delimiter,
    )
}

/// The `master.cf` lines of the relay transports that the `transport` map names: one
/// `smtp` client per kind of connection, each with the TLS it needs whatever main.cf
/// says. The policy map narrows `secure` to the relay's own name; without an entry,
/// `secure` checks the certificate against the next hop's IP, which fails: a relay whose
/// policy went missing defers rather than meeting an unverified server.
pub fn master_cf() -> String {
    use mailplane_domain::SmtpConnection::{Plain, Ssl, Tls};

    use crate::relay_maps::transport_name;
    format!(
        "# mailplane: the relay transports (`mailplane postfix config --master-cf`).
# Add to master.cf, then `postfix reload`.
# plain: no TLS, the password in clear, as the identity's user asked.
{plain} unix - - n - - smtp -o smtp_tls_security_level=none -o smtp_sasl_security_options=noanonymous
# tls: STARTTLS, the certificate verified (smtp_tls_policy_maps gives the name).
{tls} unix - - n - - smtp -o smtp_tls_security_level=secure
# ssl: implicit TLS from the first byte (port 465), the certificate verified the same way.
{ssl} unix - - n - - smtp -o smtp_tls_wrappermode=yes -o smtp_tls_security_level=secure
",
        plain = transport_name(Plain),
        tls = transport_name(Tls),
        ssl = transport_name(Ssl),
    )
}

/// Where Dovecot finds mailplane and where it keeps mail.
#[derive(Debug, Clone)]
pub struct DovecotWiring {
    /// mailplane's dict listener (`serve --dovecot-listen`), `unix:PATH`.
    pub dict: String,
    /// Dovecot's configuration directory: the fragment goes to `conf.d/99-mailplane.conf`
    /// in it, the dict files beside `dovecot.conf`.
    pub conf_dir: PathBuf,
    /// The directory holding one mailbox directory per account.
    pub mail_root: PathBuf,
    /// The system user (and group of the same name) that owns the mail.
    pub mail_user: String,
    /// Where Dovecot's LMTP service listens for Postfix: `unix:PATH` or `host:port`.
    pub lmtp: String,
    /// Where Dovecot's auth service listens for Postfix's SASL: `unix:PATH` or
    /// `host:port`.
    pub sasl: String,
    /// Postfix's `recipient_delimiter`, as mailplane's; empty for none.
    pub recipient_delimiter: String,
}

/// The files of Dovecot's configuration for `w`: (path, contents), the fragment first.
pub fn dovecot(w: &DovecotWiring) -> Vec<(PathBuf, String)> {
    let dir = &w.conf_dir;
    let deny = dir.join("mailplane-deny.conf.ext");
    let passdb = dir.join("mailplane-passdb.conf.ext");
    let userdb = dir.join("mailplane-userdb.conf.ext");
    let socket = w.dict.strip_prefix("unix:").unwrap_or(&w.dict);
    let uri = format!("uri = proxy:{socket}:mailplane");
    let fragment = format!(
        "# mailplane: Dovecot takes its users from mailplane (`mailplane dovecot config`).
# Turn off the system's users first: in conf.d/10-auth.conf, comment out
#   !include auth-system.conf.ext
# mailplane must run with --dovecot-listen {dict}.
#
# No auth cache: every login asks mailplane, so a disabled account, a new password or a
# protocol switched off applies at the next login, whichever node made the change.
auth_cache_size = 0
auth_username_format = %Lu
auth_mechanisms = plain login
# First: refuse a login the account's settings forbid (disabled; IMAP or POP off), with
# the reason, before the password is checked. This also stops SMTP AUTH, which ignores
# `nologin`.
passdb {{
  driver = dict
  args = {deny}
  deny = yes
}}
# Then: the password, as an argon2id hash that Dovecot verifies itself.
passdb {{
  driver = dict
  args = {passdb}
}}
# The mailbox of every address of a hosted account: a directory named by the account's
# id, so a new primary address keeps the mail.
userdb {{
  driver = dict
  args = {userdb}
}}
mail_location = maildir:~/Maildir
mail_uid = {user}
mail_gid = {user}
first_valid_uid = 1
first_valid_gid = 1
# As Postfix's recipient_delimiter: user+tag@domain is user@domain's mail.
recipient_delimiter = {delimiter}
{lmtp}
{auth}",
        dict = w.dict,
        deny = deny.display(),
        passdb = passdb.display(),
        userdb = userdb.display(),
        user = w.mail_user,
        lmtp = service("lmtp", &w.lmtp, "0600"),
        auth = service("auth", &w.sasl, "0660"),
        delimiter = w.recipient_delimiter,
    );
    let deny_ext = dict_file(
        "why a login is refused",
        &uri,
        ("deny", "deny/%s/%u"),
        "passdb_objects = deny\n",
    );
    let passdb_ext = dict_file(
        "the password of a login",
        &uri,
        ("passdb", "passdb/%s/%u"),
        "passdb_objects = passdb\n",
    );
    let userdb_ext = dict_file(
        "the mailbox of an address",
        &uri,
        ("userdb", "userdb/%u"),
        &format!(
            "# Listed as an object too: Dovecot 2.3's auth worker crashes when a field names a key
# that is not (the extra `mailbox` field it adds is harmless).
userdb_objects = userdb
userdb_fields {{
  home = {root}/%{{dict:userdb.mailbox}}
}}
",
            root = w.mail_root.display()
        ),
    );
    vec![
        (dir.join("conf.d/99-mailplane.conf"), fragment),
        (deny, deny_ext),
        (passdb, passdb_ext),
        (userdb, userdb_ext),
    ]
}

/// One of the dict files: what it is for, the dict's URI, one JSON key (its name and its
/// template) and what is made of the answer.
fn dict_file(what: &str, uri: &str, (name, key): (&str, &str), tail: &str) -> String {
    format!(
        "# mailplane: {what} (`mailplane dovecot config`).
{uri}
iterate_disable = yes
key {name} {{
  key = {key}
  format = json
}}
{tail}"
    )
}

/// A service block that lets Postfix reach Dovecot's `name` service at `addr`: a UNIX
/// listener owned by Postfix's user, or an inet listener.
fn service(name: &str, addr: &str, mode: &str) -> String {
    let listener = match addr.strip_prefix("unix:") {
        Some(path) => format!(
            "  unix_listener {path} {{\n    mode = {mode}\n    user = postfix\n    group = postfix\n  }}"
        ),
        None => {
            let (host, port) = addr.rsplit_once(':').unwrap_or(("127.0.0.1", addr));
            format!(
                "  inet_listener {name}-postfix {{\n    address = {host}\n    port = {port}\n  }}"
            )
        }
    };
    format!("service {name} {{\n{listener}\n}}\n")
}

/// The files of `files` as one text, each under a line naming it (what `dovecot config`
/// prints without `--write`).
pub fn bundle(files: &[(PathBuf, String)]) -> String {
    files
        .iter()
        .map(|(path, text)| format!("# ==> {} <==\n{text}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wiring(policy: &str, socketmap: &str) -> PostfixWiring {
        PostfixWiring {
            policy: policy.into(),
            socketmap: socketmap.into(),
            lmtp: "unix:private/dovecot-lmtp".into(),
            sasl: "unix:private/auth".into(),
            recipient_delimiter: "+".into(),
        }
    }

    #[test]
    fn the_policy_service_comes_before_any_permit() {
        let cf = main_cf(&wiring("127.0.0.1:10040", "127.0.0.1:10041"));
        let policy = cf
            .find("check_policy_service inet:127.0.0.1:10040")
            .unwrap();
        assert!(policy < cf.find("permit_sasl_authenticated").unwrap());
        assert!(policy < cf.find("permit_mynetworks").unwrap());
        for name in [
            "senderlogin",
            "transport",
            "tlspolicy",
            "relaycreds",
            "domains",
            "mailboxes",
            "aliases",
        ] {
            assert!(cf.contains(&format!("socketmap:inet:127.0.0.1:10041:{name}")));
        }
    }

    #[test]
    fn relays_are_used_the_way_their_identity_says() {
        let cf = main_cf(&wiring("127.0.0.1:1", "127.0.0.1:2"));
        for line in [
            "sender_dependent_default_transport_maps = socketmap:inet:127.0.0.1:2:transport\n",
            "smtp_tls_policy_maps = socketmap:inet:127.0.0.1:2:tlspolicy\n",
            "smtp_sasl_password_maps = socketmap:inet:127.0.0.1:2:relaycreds\n",
            "smtp_sasl_auth_enable = yes\n",
            "smtp_sender_dependent_authentication = yes\n",
            "smtp_sasl_security_options = noplaintext, noanonymous\n",
            "smtp_sasl_tls_security_options = noanonymous\n",
            "smtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt\n",
        ] {
            assert!(cf.contains(line), "{line}");
        }
        // The transport map alone: a relayhost map's next hop would lose to it anyway.
        assert!(!cf.contains("sender_dependent_relayhost_maps"), "{cf}");
        assert!(
            !cf.lines().any(|l| l.starts_with("default_transport")),
            "failing closed is the operator's choice"
        );
        let master = master_cf();
        for line in [
            "relay-plain unix - - n - - smtp -o smtp_tls_security_level=none -o smtp_sasl_security_options=noanonymous\n",
            "relay-tls unix - - n - - smtp -o smtp_tls_security_level=secure\n",
            "relay-ssl unix - - n - - smtp -o smtp_tls_wrappermode=yes -o smtp_tls_security_level=secure\n",
        ] {
            assert!(master.contains(line), "{line}");
        }
        assert!(master
            .lines()
            .all(|l| l.starts_with('#') || l.starts_with("relay-")));
    }

    #[test]
    fn unix_sockets_are_named_as_postfix_names_them() {
        let cf = main_cf(&wiring(
            "unix:/run/mailplane/policy",
            "unix:/run/mailplane/socketmap",
        ));
        assert!(cf.contains("check_policy_service unix:/run/mailplane/policy,"));
        for name in [
            "senderlogin",
            "transport",
            "tlspolicy",
            "relaycreds",
            "aliases",
        ] {
            assert!(cf.contains(&format!("socketmap:unix:/run/mailplane/socketmap:{name}")));
        }
        assert!(cf.contains("virtual_transport = lmtp:unix:private/dovecot-lmtp\n"));
        assert!(cf.contains("smtpd_sasl_path = private/auth\n"));
        assert!(!cf.contains("inet:"), "{cf}");
    }

    #[test]
    fn dovecot_over_tcp_is_named_inet() {
        let cf = main_cf(&PostfixWiring {
            lmtp: "127.0.0.1:2424".into(),
            sasl: "127.0.0.1:2525".into(),
            ..wiring("127.0.0.1:1", "127.0.0.1:2")
        });
        assert!(cf.contains("virtual_transport = lmtp:inet:127.0.0.1:2424\n"));
        assert!(cf.contains("smtpd_sasl_path = inet:127.0.0.1:2525\n"));
    }

    fn dovecot_wiring(lmtp: &str, sasl: &str) -> DovecotWiring {
        DovecotWiring {
            dict: "unix:/run/mailplane/dovecot".into(),
            conf_dir: "/etc/dovecot".into(),
            mail_root: "/var/vmail".into(),
            mail_user: "mail".into(),
            lmtp: lmtp.into(),
            sasl: sasl.into(),
            recipient_delimiter: "+".into(),
        }
    }

    #[test]
    fn dovecot_asks_mailplane_over_its_socket_with_no_cache() {
        let files = dovecot(&dovecot_wiring(
            "unix:/var/spool/postfix/private/dovecot-lmtp",
            "unix:/var/spool/postfix/private/auth",
        ));
        let paths: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/etc/dovecot/conf.d/99-mailplane.conf",
                "/etc/dovecot/mailplane-deny.conf.ext",
                "/etc/dovecot/mailplane-passdb.conf.ext",
                "/etc/dovecot/mailplane-userdb.conf.ext",
            ]
        );
        let fragment = &files[0].1;
        assert!(fragment.contains("auth_cache_size = 0\n"));
        // The deny passdb comes first, or a right password would log a disabled account in.
        let deny = fragment.find("mailplane-deny.conf.ext").unwrap();
        assert!(deny < fragment.find("mailplane-passdb.conf.ext").unwrap());
        assert!(fragment.contains("deny = yes"));
        assert!(fragment.contains("unix_listener /var/spool/postfix/private/auth {"));
        assert!(!fragment.contains("inet_listener"), "{fragment}");
        for (_, ext) in &files[1..] {
            assert!(ext.contains("uri = proxy:/run/mailplane/dovecot:mailplane\n"));
        }
        assert!(files[3]
            .1
            .contains("home = /var/vmail/%{dict:userdb.mailbox}"));
    }

    #[test]
    fn dovecot_services_on_loopback_ports() {
        let files = dovecot(&dovecot_wiring("127.0.0.1:2424", "127.0.0.1:2525"));
        let fragment = &files[0].1;
        assert!(fragment
            .contains("inet_listener lmtp-postfix {\n    address = 127.0.0.1\n    port = 2424\n"));
        assert!(fragment
            .contains("inet_listener auth-postfix {\n    address = 127.0.0.1\n    port = 2525\n"));
        assert!(bundle(&files).contains("# ==> /etc/dovecot/mailplane-userdb.conf.ext <==\n"));
    }
}
