//! A whole private mail server for one test: mailplane (`serve --demo` with its policy
//! service, socketmap and Dovecot dict listener), a Dovecot and a Postfix, each wired only
//! by what `mailplane dovecot config` and `mailplane postfix config` print, plus the
//! instances' private paths and ports. Dovecot starts before Postfix: Postfix's smtpd
//! needs Dovecot's auth service for its SASL.
#![allow(dead_code)]

use serde_json::Value;

use crate::common::{Db, TestApp, POSTFIX_LISTENERS};
use crate::dovecot::DovecotInstance;
use crate::postfix::{command_path, PostfixInstance};

/// Stops `test` with the reason when this machine cannot run a private Postfix and
/// Dovecot. The build marks the tests ignored where it found them missing
/// (`cfg(no_mail_server)`), so reaching this without them means CI, where they must be
/// there, or a machine that changed since the build.
pub fn require(test: &str) {
    crate::postfix::require(test);
    let missing: Vec<&str> = ["dovecot", "doveconf", "doveadm"]
        .into_iter()
        .filter(|c| command_path(c).is_none())
        .collect();
    if !missing.is_empty() {
        panic!(
            "{test}: Dovecot is not installed ({} not found; apt-get install dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd)",
            missing.join(", ")
        );
    }
}

pub struct MailServer {
    // Dropped in this order: Postfix first, as it talks to the other two.
    pub postfix: PostfixInstance,
    pub dovecot: DovecotInstance,
    pub app: TestApp,
    /// What `serve --demo` wrote to `demo-tokens.json`.
    pub admin_password: String,
    pub user_password: String,
}

impl MailServer {
    /// Starts the three; Postfix sends mail for other domains to `relayhost` (e.g.
    /// `[127.0.0.1]:2525`). `serve_args` are added to mailplane's; `more_postfix` may
    /// change Postfix's configuration before it starts (add an smtpd, say).
    pub fn start(
        relayhost: &str,
        serve_args: &[&str],
        more_postfix: impl FnOnce(&mut PostfixInstance),
    ) -> MailServer {
        let mut dovecot = DovecotInstance::new();
        let dict = dovecot.dict_listen();
        // Postfix's ports are chosen now: mailplane hands its own messages (forward
        // confirmations) to Postfix's smtpd, as in a real installation.
        let mut postfix = PostfixInstance::new(relayhost);
        let submit = postfix.smtpd_addr();
        let dict_args = [
            "--dovecot-listen",
            dict.as_str(),
            "--dovecot-socket-group",
            "dovecot",
            "--mail-submit",
            submit.as_str(),
        ];
        let app = TestApp::demo_on(
            Db::fresh(),
            &[&POSTFIX_LISTENERS[..], &dict_args, serve_args].concat(),
        );
        let tokens: Value = serde_json::from_slice(
            &std::fs::read(app.dir.path().join("demo-tokens.json")).expect("demo tokens"),
        )
        .expect("json");
        let password = |key: &str| {
            tokens[key]
                .as_str()
                .unwrap_or_else(|| panic!("demo-tokens.json has no {key}"))
                .to_string()
        };

        let args = dovecot.config_args();
        let out = app.cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "mailplane dovecot config failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            ">>> mailplane {}:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        dovecot.start();

        let policy = app
            .policy_addr
            .clone()
            .expect("serve printed the policy address");
        let socketmap = app
            .socketmap_addr
            .clone()
            .expect("serve printed the socketmap address");
        let (lmtp, sasl) = (dovecot.lmtp_addr(), dovecot.auth_addr());
        let out = app.cli(&[
            "postfix",
            "config",
            "--policy",
            &policy,
            "--socketmap",
            &socketmap,
            "--lmtp",
            &lmtp,
            "--sasl",
            &sasl,
        ]);
        assert!(
            out.status.success(),
            "mailplane postfix config failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = String::from_utf8(out.stdout).expect("UTF-8");
        eprintln!(">>> mailplane postfix config:\n{config}");
        assert!(
            config.contains(&format!("inet:{policy}"))
                && config.contains(&format!("inet:{socketmap}")),
            "the configuration names neither the policy service nor the socketmap"
        );
        postfix.append_main_cf(&format!("# mailplane postfix config\n{config}"));
        let out = app.cli(&["postfix", "config", "--master-cf"]);
        assert!(
            out.status.success(),
            "mailplane postfix config --master-cf failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let transports = String::from_utf8(out.stdout).expect("UTF-8");
        eprintln!(">>> mailplane postfix config --master-cf:\n{transports}");
        postfix.append_master_cf(&transports);
        more_postfix(&mut postfix);
        postfix.start();
        MailServer {
            postfix,
            dovecot,
            app,
            admin_password: password("adminPassword"),
            user_password: password("userPassword"),
        }
    }

    /// Where Postfix's smtpd listens.
    pub fn smtpd(&self) -> String {
        self.postfix.smtpd_addr()
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- mailplane log ----\n{}----", self.app.log());
        }
    }
}
