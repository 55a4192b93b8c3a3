//! A private Dovecot instance for one test: its configuration, state, sockets and mail in
//! a temporary directory, IMAP, POP3, LMTP and auth (for Postfix's SASL) on free ports of
//! 127.0.0.1, its log in a file of its own (printed when the test fails), stopped when
//! dropped. Its users come from mailplane, through what `mailplane dovecot config` writes.
//!
//! Dovecot must be installed (`dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd`)
//! and the test must run as root (the mail is owned by the `mail` user, the auth process
//! runs as `dovecot`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::postfix::{free_port, greeting_of, open_temp_dir};

pub struct DovecotInstance {
    /// Holds `dovecot.conf`, `conf/` (what mailplane writes), `run/`, `state/`, `mail/`,
    /// `dovecot.log` and mailplane's dict socket.
    root: TempDir,
    pub imap_port: u16,
    pub pop3_port: u16,
    pub lmtp_port: u16,
    pub auth_port: u16,
    child: Option<Child>,
}

impl DovecotInstance {
    /// The directories of an instance, not configured yet: start mailplane with
    /// [`DovecotInstance::dict_listen`] first, then [`DovecotInstance::start`].
    pub fn new() -> DovecotInstance {
        // The auth process runs as `dovecot`, the login processes as `dovenull`: they must
        // reach the sockets below.
        let root = open_temp_dir("mailplane-dovecot-", &["conf", "run", "state", "mail"]);
        let dir = root.path();
        // The mail belongs to the `mail` user, as the configuration says.
        let status = Command::new("chown")
            .args(["mail:mail"])
            .arg(dir.join("mail"))
            .status()
            .expect("chown");
        assert!(status.success(), "chown mail:mail failed");
        DovecotInstance {
            root,
            imap_port: free_port(),
            pop3_port: free_port(),
            lmtp_port: free_port(),
            auth_port: free_port(),
            child: None,
        }
    }

    /// What `serve --dovecot-listen` takes: the socket mailplane serves the dict on.
    pub fn dict_listen(&self) -> String {
        format!("unix:{}", self.root.path().join("dict.sock").display())
    }

    pub fn lmtp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.lmtp_port)
    }

    pub fn auth_addr(&self) -> String {
        format!("127.0.0.1:{}", self.auth_port)
    }

    pub fn imap_addr(&self) -> String {
        format!("127.0.0.1:{}", self.imap_port)
    }

    pub fn pop3_addr(&self) -> String {
        format!("127.0.0.1:{}", self.pop3_port)
    }

    /// The arguments of `mailplane dovecot config` for this instance.
    pub fn config_args(&self) -> Vec<String> {
        let dir = self.root.path();
        [
            "dovecot",
            "config",
            "--write",
            "--dict",
            &self.dict_listen(),
            "--conf-dir",
            &dir.join("conf").display().to_string(),
            "--mail-root",
            &dir.join("mail").display().to_string(),
            "--lmtp",
            &self.lmtp_addr(),
            "--sasl",
            &self.auth_addr(),
        ]
        .map(String::from)
        .to_vec()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Writes `dovecot.conf`: the instance's private paths and ports, then what mailplane
    /// wrote (which must be in `conf/` by now), and starts Dovecot in the foreground of a
    /// process group of its own; waits for the IMAP greeting.
    pub fn start(&mut self) {
        let dir = self.root.path();
        let d = dir.display();
        let fragment = dir.join("conf/conf.d/99-mailplane.conf");
        assert!(
            fragment.is_file(),
            "mailplane dovecot config --write did not write {}",
            fragment.display()
        );
        let conf = format!(
            "# A private Dovecot instance of mailplane's mail server tests.
protocols = imap pop3 lmtp
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
listen = 127.0.0.1
ssl = no
# Plain LOGIN over loopback without TLS: a test instance only.
disable_plaintext_auth = no
auth_verbose = yes
# Failed logins answer at once (the tests try several).
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
# What `mailplane dovecot config` wrote:
!include {fragment}
",
            imap = self.imap_port,
            pop3 = self.pop3_port,
            fragment = fragment.display(),
        );
        let conf_path = dir.join("dovecot.conf");
        std::fs::write(&conf_path, conf).expect("write dovecot.conf");
        let check = Command::new("doveconf")
            .arg("-c")
            .arg(&conf_path)
            .arg("-n")
            .output()
            .expect("run doveconf");
        assert!(
            check.status.success(),
            "doveconf refuses the configuration: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        use std::os::unix::process::CommandExt;
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start dovecot");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(greeting) = greeting_of(&self.imap_addr(), "* OK", "z LOGOUT") {
                eprintln!("Dovecot ({d}) is up: {greeting}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Dovecot did not greet on {} within 30 s; log:\n{}",
                self.imap_addr(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the master with SIGTERM, then kills what is left of its process group (its
    /// children outlive it while clients are connected).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // `-s KILL -- -PGID`: procps' kill reads `-KILL -PGID` as `kill -1` and signals
        // every process on the machine.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pid}")])
            .status();
        let _ = child.wait();
    }

    /// The maildir of account `id`, as Dovecot keeps it.
    pub fn maildir(&self, id: &str) -> PathBuf {
        self.root.path().join("mail").join(id).join("Maildir")
    }
}

impl Drop for DovecotInstance {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- Dovecot log ({}) ----\n{}----",
                self.root.path().display(),
                self.log()
            );
        }
        self.stop();
    }
}
