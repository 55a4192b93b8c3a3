//! The `main.cf` lines that make Postfix ask mailplane: printed by `mailplane postfix
//! config`, appended to a real Postfix's configuration by the end-to-end test.

/// Postfix's name of an endpoint given as `serve` takes it: `unix:PATH` as is, `host:port`
/// as `inet:host:port`.
fn endpoint(addr: &str) -> String {
    if addr.starts_with("unix:") {
        addr.to_string()
    } else {
        format!("inet:{addr}")
    }
}

/// The lines for a policy service at `policy` and a socketmap at `socketmap` (each
/// `host:port` or `unix:PATH`).
pub fn main_cf(policy: &str, socketmap: &str) -> String {
    let map = |name: &str| format!("socketmap:{}:{name}", endpoint(socketmap));
    let lines = [
        "# mailplane: Postfix enforces what the Accounts API says (`mailplane postfix config`)."
            .to_string(),
        "# Add to main.cf, then `postfix reload`. mailplane must run with".to_string(),
        format!("#   --policy-listen {policy} --socketmap-listen {socketmap}"),
        "#".to_string(),
        "# Every recipient of every transaction is checked against the sender's account"
            .to_string(),
        "# (disabled, outgoing blocked, sender not its own) or, for mail from outside, the"
            .to_string(),
        "# recipient's (disabled, incoming blocked), before anything can permit it.".to_string(),
        "smtpd_recipient_restrictions =".to_string(),
        format!("    check_policy_service {},", endpoint(policy)),
        "    permit_sasl_authenticated,".to_string(),
        "    permit_mynetworks,".to_string(),
        "    reject_unauth_destination".to_string(),
        "# When mailplane cannot answer, mail waits (4xx) rather than passing unchecked."
            .to_string(),
        "smtpd_policy_service_default_action = 451 4.3.5 Policy service unavailable".to_string(),
        "# Which logins may use an envelope sender: the account's addresses and send-mail details."
            .to_string(),
        format!("smtpd_sender_login_maps = {}", map("senderlogin")),
        "# (Postfix applies this only with smtpd_sasl_auth_enable = yes, as for real logins;"
            .to_string(),
        "# the policy service checks the sender either way.)".to_string(),
        "smtpd_sender_restrictions = reject_authenticated_sender_login_mismatch".to_string(),
        "# Mail from an extfrom identity leaves through its own relay, authenticated as stored."
            .to_string(),
        format!("sender_dependent_relayhost_maps = {}", map("relayhost")),
        "smtp_sender_dependent_authentication = yes".to_string(),
        "smtp_sasl_auth_enable = yes".to_string(),
        format!("smtp_sasl_password_maps = {}", map("relaycreds")),
        "smtp_sasl_security_options = noanonymous".to_string(),
    ];
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_service_comes_before_any_permit() {
        let cf = main_cf("127.0.0.1:10040", "127.0.0.1:10041");
        let policy = cf
            .find("check_policy_service inet:127.0.0.1:10040")
            .unwrap();
        assert!(policy < cf.find("permit_sasl_authenticated").unwrap());
        assert!(policy < cf.find("permit_mynetworks").unwrap());
        for name in ["senderlogin", "relayhost", "relaycreds"] {
            assert!(cf.contains(&format!("socketmap:inet:127.0.0.1:10041:{name}")));
        }
    }

    #[test]
    fn unix_sockets_are_named_as_postfix_names_them() {
        let cf = main_cf(
            "unix:/run/mailplane/policy",
            "unix:/run/mailplane/socketmap",
        );
        assert!(cf.contains("check_policy_service unix:/run/mailplane/policy,"));
        for name in ["senderlogin", "relayhost", "relaycreds"] {
            assert!(cf.contains(&format!("socketmap:unix:/run/mailplane/socketmap:{name}")));
        }
        assert!(!cf.contains("inet:"), "{cf}");
    }
}
