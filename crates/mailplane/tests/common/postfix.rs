//! A private Postfix instance for one test: its own configuration, queue and data
//! directories in a temporary directory, its smtpd on a free port of 127.0.0.1, its log in
//! a file of its own (printed when the test fails), stopped when dropped.
//!
//! Postfix must be installed (`postfix`, `postconf`, `postqueue` in `/usr/sbin` or on
//! `PATH`) and the test must run as root (only root may start Postfix). Being root also
//! means the instance does not have to be listed in `alternate_config_directories` of the
//! system's `/etc/postfix/main.cf` (Postfix asks that of other users only), so the system
//! configuration is neither read nor changed, and instances of tests running in parallel
//! share nothing.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The Postfix command `name` (`postfix`, `postconf`, `postqueue`): on `PATH` or in the
/// usual sbin directories.
pub fn command_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Stops `test` with the reason when this machine cannot run a private Postfix (the
/// commands are missing, or we are not root). The build marks the test ignored where it
/// found them missing (`cfg(no_mail_server)`), so reaching this without them means CI, where
/// they must be there, or a machine that changed since the build.
pub fn require(test: &str) {
    let missing: Vec<&str> = ["postfix", "postconf", "postqueue"]
        .into_iter()
        .filter(|c| command_path(c).is_none())
        .collect();
    if !missing.is_empty() {
        panic!(
            "{test}: Postfix is not installed ({} not found; apt-get install postfix)",
            missing.join(", ")
        );
    }
    if !is_root() {
        panic!("{test}: Postfix can only be started by root, and this test does not run as root");
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A free TCP port on 127.0.0.1 (free when this returns; Postfix binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub struct PostfixInstance {
    /// Holds `etc/` (main.cf, master.cf), `queue/`, `data/` and `maillog`.
    root: TempDir,
    smtpd_port: u16,
    /// The ports of every smtpd service, the main one first.
    smtpd_ports: Vec<u16>,
    started: bool,
}

impl PostfixInstance {
    /// Writes the configuration of an instance that accepts mail on a free port of
    /// 127.0.0.1, lets clients on 127.0.0.0/8 relay and claim a SASL login with
    /// `XCLIENT LOGIN=`, and sends all mail to `relayhost` (e.g. `[127.0.0.1]:2525`)
    /// unless a sender-dependent map says otherwise. Not started yet: append more
    /// settings with [`PostfixInstance::append_main_cf`] first.
    pub fn new(relayhost: &str) -> PostfixInstance {
        // Postfix's daemons run as the `postfix` user: they must reach the queue and data
        // directories.
        let root = open_temp_dir("mailplane-postfix-", &["etc", "queue", "data"]);
        let dir = root.path();
        // The data directory (master.lock, caches) belongs to the mail owner.
        run(Command::new("chown").arg("postfix").arg(dir.join("data")));
        let smtpd_port = free_port();
        let d = dir.display();
        let main_cf = format!(
            "# A private Postfix instance of mailplane's Postfix test.
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
# Log to a file of this instance: maillog_file must lie under one of the prefixes.
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.mailplane.test
mydomain = mailplane.test
myorigin = $myhostname
# Nothing is delivered locally: all mail is relayed.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
mynetworks = 127.0.0.0/8
# Test clients claim their SASL login with XCLIENT LOGIN=, instead of a real AUTH.
smtpd_authorized_xclient_hosts = 127.0.0.0/8
# A submission server offers SASL; without it smtpd ignores
# reject_authenticated_sender_login_mismatch (\"no SASL support\").
smtpd_sasl_auth_enable = yes
smtpd_tls_security_level = none
smtp_tls_security_level = none
relayhost = {relayhost}
# Retry deferred mail within seconds rather than minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"
        );
        std::fs::write(dir.join("etc/main.cf"), main_cf).expect("write main.cf");
        // Debian's master.cf, without chroot (the queue directory would need copies of
        // /etc files) and with smtpd on the instance's port.
        let master_cf = format!(
            "127.0.0.1:{smtpd_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"
        );
        std::fs::write(dir.join("etc/master.cf"), master_cf).expect("write master.cf");
        PostfixInstance {
            root,
            smtpd_port,
            smtpd_ports: vec![smtpd_port],
            started: false,
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root.path().join("etc")
    }

    /// Where the instance's smtpd listens, `127.0.0.1:PORT`.
    pub fn smtpd_addr(&self) -> String {
        format!("127.0.0.1:{}", self.smtpd_port)
    }

    /// Adds an smtpd service on another free port whose settings differ from main.cf by
    /// `overrides` (`name=value`, as `-o` options in master.cf); its `127.0.0.1:PORT`.
    pub fn add_smtpd(&mut self, overrides: &[&str]) -> String {
        assert!(!self.started, "add services before starting");
        let port = free_port();
        let options: String = overrides.iter().map(|o| format!(" -o {o}")).collect();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.config_dir().join("master.cf"))
            .expect("open master.cf");
        writeln!(f, "127.0.0.1:{port} inet n - n - - smtpd{options}").expect("append to master.cf");
        self.smtpd_ports.push(port);
        format!("127.0.0.1:{port}")
    }

    /// Appends lines to main.cf (later settings override earlier ones).
    pub fn append_main_cf(&self, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.config_dir().join("main.cf"))
            .expect("open main.cf");
        f.write_all(text.as_bytes()).expect("append to main.cf");
        if !text.ends_with('\n') {
            f.write_all(b"\n").unwrap();
        }
    }

    /// Appends lines to master.cf (services of their own, e.g. mailplane's relay
    /// transports).
    pub fn append_master_cf(&self, text: &str) {
        assert!(!self.started, "add services before starting");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.config_dir().join("master.cf"))
            .expect("open master.cf");
        f.write_all(text.as_bytes()).expect("append to master.cf");
        if !text.ends_with('\n') {
            f.write_all(b"\n").unwrap();
        }
    }

    pub fn main_cf(&self) -> String {
        std::fs::read_to_string(self.config_dir().join("main.cf")).unwrap_or_default()
    }

    pub fn master_cf(&self) -> String {
        std::fs::read_to_string(self.config_dir().join("master.cf")).unwrap_or_default()
    }

    /// The instance's log so far.
    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.root.path().join("maillog")).unwrap_or_default()
    }

    /// `postconf -c DIR ARGS`: e.g. `-n` for every setting that is not a default.
    pub fn postconf(&self, args: &[&str]) -> Output {
        self.command("postconf", args)
    }

    fn command(&self, name: &str, args: &[&str]) -> Output {
        let path = command_path(name).unwrap_or_else(|| panic!("{name} is not installed"));
        Command::new(path)
            .arg("-c")
            .arg(self.config_dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {name}: {e}"))
    }

    /// Checks the configuration, starts Postfix and waits until each smtpd greets.
    pub fn start(&mut self) {
        // postconf names unknown parameters and bad values.
        let conf = self.postconf(&["-n"]);
        let warnings = String::from_utf8_lossy(&conf.stderr);
        assert!(
            conf.status.success(),
            "postconf -n failed:\n{warnings}\nmain.cf:\n{}",
            self.main_cf()
        );
        if !warnings.trim().is_empty() {
            eprintln!("postconf warnings:\n{warnings}");
        }
        // An unknown parameter name (a typo, or one this Postfix lacks) would be ignored.
        assert!(
            !warnings.contains("unused parameter"),
            "main.cf names parameters Postfix does not know:\n{warnings}\nmain.cf:\n{}",
            self.main_cf()
        );
        // Postfix commands log to maillog_file (to stderr only on a terminal), so a
        // failure is explained by the log.
        let out = self.command("postfix", &["start"]);
        self.started = true;
        assert!(
            out.status.success(),
            "postfix start failed ({}): {}{}\nmaillog:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.maillog()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in &self.smtpd_ports {
            let addr = format!("127.0.0.1:{port}");
            loop {
                if let Some(greeting) = greeting(&addr) {
                    eprintln!(
                        "Postfix ({}) is up on {addr}: {greeting}",
                        self.config_dir().display(),
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "Postfix's smtpd did not answer on {addr} within 30 s; maillog:\n{}",
                    self.maillog()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// `postfix reload`: the daemons read the configuration again.
    pub fn reload(&self) {
        let out = self.command("postfix", &["reload"]);
        assert!(
            out.status.success(),
            "postfix reload failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postqueue -f`: tries to deliver the queued mail now.
    pub fn flush(&self) {
        let out = self.command("postqueue", &["-f"]);
        if !out.status.success() {
            eprintln!(
                "postqueue -f failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// `postqueue -p`: the queue, as text.
    pub fn queue(&self) -> String {
        String::from_utf8_lossy(&self.command("postqueue", &["-p"]).stdout).into_owned()
    }

    /// The master's process id, from its pid file.
    fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.root.path().join("queue/pid/master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// `postfix stop`, then waits for the master to exit (killing it after 10 s).
    pub fn stop(&mut self) {
        if !std::mem::take(&mut self.started) {
            return;
        }
        let pid = self.master_pid();
        let out = self.command("postfix", &["stop"]);
        if !out.status.success() {
            eprintln!(
                "postfix stop failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let Some(pid) = pid else { return };
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(&proc) {
            if Instant::now() > deadline {
                eprintln!("Postfix master {pid} still runs 10 s after postfix stop: killing it");
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PostfixInstance {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- Postfix maillog ({}) ----\n{}---- Postfix queue ----\n{}---- main.cf ----\n{}---- master.cf ----\n{}----",
                self.root.path().join("maillog").display(),
                self.maillog(),
                if self.started { self.queue() } else { String::new() },
                self.main_cf(),
                self.master_cf()
            );
        }
        self.stop();
    }
}

/// Whether the process of `/proc/PID` still runs (a zombie does not).
fn alive(proc: &Path) -> bool {
    std::fs::read_to_string(proc.join("stat"))
        .map(|s| {
            let state = s.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            !matches!(state.and_then(|r| r.chars().next()), Some('Z' | 'X') | None)
        })
        .unwrap_or(false)
}

/// The greeting of the SMTP server at `addr` (then QUIT), or `None` if it does not greet.
fn greeting(addr: &str) -> Option<String> {
    greeting_of(addr, "220 ", "QUIT")
}

/// The first line the server at `addr` sends, when it starts with `ok` (then `bye` is sent
/// to leave politely), or `None`.
pub fn greeting_of(addr: &str, ok: &str, bye: &str) -> Option<String> {
    let stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let _ = (&stream).write_all(format!("{bye}\r\n").as_bytes());
    let _ = reader.read_line(&mut String::new());
    line.starts_with(ok).then(|| line.trim_end().to_string())
}

/// A temporary directory with the subdirectories `subs`, all mode 0755 (tempdir makes them
/// 0700), for a server whose processes run as users other than root.
pub fn open_temp_dir(prefix: &str, subs: &[&str]) -> TempDir {
    let root = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir");
    chmod(root.path(), 0o755);
    for sub in subs {
        let path = root.path().join(sub);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        chmod(&path, 0o755);
    }
    root
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
