//! Fake external SMTP relays, the kind a send-as identity ("extfrom") names, for the
//! relay-check tests and for Postfix tests that send through such a relay:
//!
//! - [`FakeRelay`]: checks a user name and password (AUTH PLAIN and LOGIN), without TLS,
//!   with STARTTLS or with TLS from the first byte, and accepts and records mail sent
//!   after AUTH. It can be told to refuse every AUTH from then on.
//! - [`HostileRelay`]: one way of misbehaving each ([`Hostile`]): silent, garbage, an
//!   endless line or reply, hanging up after EHLO, a negative greeting, echoing the
//!   credentials, mute after AUTH, a reply injected behind STARTTLS.
//! - [`TestCa`]: a CA whose PEM file a client can trust, and the server certificates it
//!   issues.
//!
//! Plain blocking code on std threads, like the stand-in of `smtp.rs`: the clients under
//! test are mailplane's async checker or another process, and nothing here needs the
//! async runtime. Every relay listens on 127.0.0.1, port 0, and counts its connections.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A client line longer than this ends the session (the clients here are well behaved;
/// this only keeps a broken test from eating memory).
const MAX_CLIENT_LINE: usize = 64 * 1024;
/// How long a session waits for the client's next line.
const IDLE: Duration = Duration::from_secs(60);

// ---- certificates ----

/// A test CA: its certificate in a PEM file (for `--relay-ca-file`, Postfix's
/// `smtp_tls_CAfile`, or the relay checker's `extra_roots`) and its key, to issue
/// server certificates. The file is removed when the `TestCa` is dropped.
pub struct TestCa {
    dir: tempfile::TempDir,
    pem_path: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    pub fn new() -> TestCa {
        TestCa::named("mailplane relay test CA")
    }

    /// A CA with this common name (two CAs in one test are told apart by it).
    pub fn named(common_name: &str) -> TestCa {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("a self-signed CA");
        let dir = tempfile::Builder::new()
            .prefix("mailplane-relay-ca-")
            .tempdir()
            .expect("a temporary directory");
        let pem_path = dir.path().join("ca.pem");
        std::fs::write(&pem_path, cert.pem()).expect("write the CA file");
        // Readable by all: Postfix may read `smtp_tls_CAfile` as its own user.
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [(dir.path(), 0o755), (pem_path.as_path(), 0o644)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .expect("make the CA file readable");
        }
        TestCa {
            dir,
            pem_path,
            cert,
            key,
        }
    }

    /// The CA's certificate as a PEM file.
    pub fn pem_path(&self) -> &Path {
        &self.pem_path
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `name`: a DNS name, or an IP address (which becomes an
    /// IP subjectAltName).
    pub fn issue(&self, name: &str) -> Leaf {
        let key = KeyPair::generate().expect("a server key");
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("a server certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// A server certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Leaf {
    /// A rustls server configuration presenting this certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        // ring, as mailplane uses (see mailplane-store); deprecated only for lacking
        // post-quantum key exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .expect("a server TLS configuration");
        Arc::new(config)
    }
}

// ---- the listener every relay shares ----

/// Accepts connections on 127.0.0.1:0 and runs `session` on a thread for each, until
/// dropped.
struct Listener {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn start(name: &str, session: impl Fn(TcpStream) + Send + Sync + 'static) -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fake relay");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt, session) = (connections.clone(), stop.clone(), Arc::new(session));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(IDLE));
                let session = session.clone();
                thread::spawn(move || session(stream));
            }
        });
        eprintln!("fake relay {name} listening on {addr}");
        Listener {
            addr,
            connections,
            stop,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

// ---- the relay that works ----

/// How a [`FakeRelay`] does TLS.
#[derive(Clone)]
pub enum RelayTls {
    None,
    /// STARTTLS offered; AUTH offered only once TLS is on, as real relays do.
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte (port 465 style).
    Implicit(Arc<ServerConfig>),
}

/// One AUTH a [`FakeRelay`] answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthAttempt {
    pub user: String,
    /// `PLAIN` or `LOGIN`.
    pub mechanism: String,
    pub accepted: bool,
    /// Whether the session was inside TLS.
    pub in_tls: bool,
}

/// A message a [`FakeRelay`] accepted.
#[derive(Clone, Debug)]
pub struct Relayed {
    /// The user the session authenticated as.
    pub user: String,
    /// Whether that AUTH happened inside TLS.
    pub auth_in_tls: bool,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as received (dot-stuffing undone), lines ended by `\n`.
    pub data: String,
}

impl Relayed {
    /// The value of the first `Subject:` header.
    pub fn subject(&self) -> Option<&str> {
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("subject").then_some(value.trim())
            })
    }
}

/// What the sessions of a [`FakeRelay`] share.
struct Relay {
    name: String,
    user: String,
    password: String,
    /// Behind a lock: a test may change the certificate while the relay runs.
    tls: Mutex<RelayTls>,
    mechanisms: String,
    reject_auth: AtomicBool,
    auths: Mutex<Vec<AuthAttempt>>,
    messages: Mutex<Vec<Relayed>>,
    arrived: Condvar,
    /// The SNI of each TLS session (`None`: the client sent none).
    server_names: Mutex<Vec<Option<String>>>,
}

impl Relay {
    fn tls(&self) -> RelayTls {
        self.tls.lock().unwrap().clone()
    }
}

/// How to start a [`FakeRelay`]; from [`FakeRelay::builder`].
pub struct RelayBuilder {
    name: String,
    user: String,
    password: String,
    tls: RelayTls,
    mechanisms: String,
}

impl RelayBuilder {
    /// The name shown before every line it logs, and in its greeting.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    pub fn starttls(mut self, leaf: &Leaf) -> Self {
        self.tls = RelayTls::StartTls(leaf.server_config());
        self
    }

    pub fn implicit_tls(mut self, leaf: &Leaf) -> Self {
        self.tls = RelayTls::Implicit(leaf.server_config());
        self
    }

    /// The AUTH mechanisms advertised, e.g. `"LOGIN"` (default `"PLAIN LOGIN"`; it
    /// answers both whatever it advertises).
    pub fn mechanisms(mut self, mechanisms: &str) -> Self {
        self.mechanisms = mechanisms.to_string();
        self
    }

    pub fn start(self) -> FakeRelay {
        let relay = Arc::new(Relay {
            name: self.name,
            user: self.user,
            password: self.password,
            tls: Mutex::new(self.tls),
            mechanisms: self.mechanisms,
            reject_auth: AtomicBool::new(false),
            auths: Mutex::default(),
            messages: Mutex::default(),
            arrived: Condvar::new(),
            server_names: Mutex::default(),
        });
        let shared = relay.clone();
        let listener = Listener::start(&relay.name, move |stream| {
            if let Err(e) = Session::run(&shared, stream) {
                eprintln!("[{}] session ended: {e}", shared.name);
            }
        });
        FakeRelay { relay, listener }
    }
}

/// An SMTP relay that checks one user name and password and accepts mail after AUTH.
pub struct FakeRelay {
    relay: Arc<Relay>,
    listener: Listener,
}

impl FakeRelay {
    /// A relay (no TLS until told otherwise) accepting `user` with `password`; 535 5.7.8
    /// to anything else.
    pub fn builder(user: &str, password: &str) -> RelayBuilder {
        RelayBuilder {
            name: "relay".into(),
            user: user.into(),
            password: password.into(),
            tls: RelayTls::None,
            mechanisms: "PLAIN LOGIN".into(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr
    }

    pub fn port(&self) -> u16 {
        self.listener.addr.port()
    }

    /// How many connections it accepted so far.
    pub fn connections(&self) -> usize {
        self.listener.connections.load(Ordering::SeqCst)
    }

    /// From now on, answer every AUTH with 535 (`true`) or check it again (`false`).
    /// From the next session on, TLS (as it was started) with `leaf`'s certificate: a
    /// relay whose certificate changed after it was checked.
    pub fn set_certificate(&self, leaf: &Leaf) {
        let mut tls = self.relay.tls.lock().unwrap();
        *tls = match &*tls {
            RelayTls::StartTls(_) => RelayTls::StartTls(leaf.server_config()),
            RelayTls::Implicit(_) => RelayTls::Implicit(leaf.server_config()),
            RelayTls::None => panic!("set_certificate on a relay without TLS"),
        };
    }

    pub fn reject_auth(&self, reject: bool) {
        self.relay.reject_auth.store(reject, Ordering::SeqCst);
    }

    /// Every AUTH answered so far.
    pub fn auths(&self) -> Vec<AuthAttempt> {
        self.relay.auths.lock().unwrap().clone()
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<Relayed> {
        self.relay.messages.lock().unwrap().clone()
    }

    /// The SNI of each TLS session so far, in order.
    pub fn server_names(&self) -> Vec<Option<String>> {
        self.relay.server_names.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for the message with this subject.
    pub fn wait_for(&self, subject: &str, timeout: Duration) -> Option<Relayed> {
        let deadline = Instant::now() + timeout;
        let mut messages = self.relay.messages.lock().unwrap();
        loop {
            if let Some(m) = messages.iter().find(|m| m.subject() == Some(subject)) {
                return Some(m.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            messages = self.relay.arrived.wait_timeout(messages, left).unwrap().0;
        }
    }
}

/// A session's stream, before and after TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    /// For the instant the plain stream is being moved into TLS.
    Moved,
}

fn moved() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the stream moved into TLS")
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.read(buf),
            Io::Moved => Err(moved()),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.write(buf),
            Io::Tls(s) => s.write(buf),
            Io::Moved => Err(moved()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.flush(),
            Io::Tls(s) => s.flush(),
            Io::Moved => Err(moved()),
        }
    }
}

/// One connection to a [`FakeRelay`].
struct Session<'a> {
    relay: &'a Relay,
    io: Io,
    /// The user it authenticated as.
    user: Option<String>,
    auth_in_tls: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl<'a> Session<'a> {
    fn run(relay: &'a Relay, stream: TcpStream) -> io::Result<()> {
        let io = match &relay.tls() {
            RelayTls::Implicit(config) => tls(relay, config, stream)?,
            _ => Io::Plain(stream),
        };
        let mut s = Session {
            relay,
            io,
            user: None,
            auth_in_tls: false,
            mail_from: None,
            rcpt_to: Vec::new(),
        };
        s.reply(&format!(
            "220 {}.relay.mailplane.test ESMTP fake relay",
            relay.name
        ))?;
        while let Some(line) = s.line()? {
            s.log_client(&line);
            let verb = line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => s.ehlo()?,
                "HELO" => s.reply(&format!("250 {}.relay.mailplane.test", relay.name))?,
                "STARTTLS" => s.starttls()?,
                "AUTH" => s.auth(&line)?,
                "MAIL" => {
                    if s.user.is_none() {
                        s.reply("530 5.7.0 Authentication required")?;
                    } else if let Some(addr) = path_of(&line, "MAIL FROM:") {
                        s.mail_from = Some(addr);
                        s.rcpt_to.clear();
                        s.reply("250 2.1.0 Ok")?;
                    } else {
                        s.reply("501 5.5.4 Syntax: MAIL FROM:<address>")?;
                    }
                }
                "RCPT" => {
                    if s.mail_from.is_none() {
                        s.reply("503 5.5.1 Error: need MAIL command")?;
                    } else if let Some(addr) = path_of(&line, "RCPT TO:") {
                        s.rcpt_to.push(addr);
                        s.reply("250 2.1.5 Ok")?;
                    } else {
                        s.reply("501 5.5.4 Syntax: RCPT TO:<address>")?;
                    }
                }
                "DATA" => s.data()?,
                "RSET" => {
                    s.mail_from = None;
                    s.rcpt_to.clear();
                    s.reply("250 2.0.0 Ok")?;
                }
                "NOOP" => s.reply("250 2.0.0 Ok")?,
                "QUIT" => {
                    s.reply("221 2.0.0 Bye")?;
                    return Ok(());
                }
                _ => s.reply("502 5.5.2 Error: command not recognized")?,
            }
        }
        Ok(())
    }

    fn in_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    fn ehlo(&mut self) -> io::Result<()> {
        let mut lines = vec![format!("{}.relay.mailplane.test", self.relay.name)];
        let offers_starttls = matches!(self.relay.tls(), RelayTls::StartTls(_)) && !self.in_tls();
        if offers_starttls {
            lines.push("STARTTLS".into());
        } else {
            lines.push(format!("AUTH {}", self.relay.mechanisms));
        }
        lines.push("8BITMIME".into());
        lines.push("SIZE 10240000".into());
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.reply(&format!("250{sep}{line}"))?;
        }
        Ok(())
    }

    fn starttls(&mut self) -> io::Result<()> {
        let config = match &self.relay.tls() {
            RelayTls::StartTls(config) if !self.in_tls() => config.clone(),
            _ => return self.reply("502 5.5.1 Error: command not implemented"),
        };
        self.reply("220 2.0.0 Ready to start TLS")?;
        if let Io::Plain(stream) = std::mem::replace(&mut self.io, Io::Moved) {
            self.io = tls(self.relay, &config, stream)?;
        }
        // RFC 3207 4.2: the client starts over.
        self.user = None;
        self.mail_from = None;
        self.rcpt_to.clear();
        Ok(())
    }

    /// `AUTH PLAIN [initial]` or `AUTH LOGIN [initial]`.
    fn auth(&mut self, line: &str) -> io::Result<()> {
        if self.user.is_some() {
            return self.reply("503 5.5.1 Error: already authenticated");
        }
        if matches!(self.relay.tls(), RelayTls::StartTls(_)) && !self.in_tls() {
            return self.reply("530 5.7.0 Must issue a STARTTLS command first");
        }
        let mut words = line.split_whitespace().skip(1);
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        let initial = words.next().map(str::to_string);
        let credentials = match mechanism.as_str() {
            "PLAIN" => {
                let Some(response) = self.answer(initial, "")? else {
                    return Ok(());
                };
                decode(&response).and_then(|raw| {
                    // authzid NUL authcid NUL passwd
                    let mut parts = raw.split('\0');
                    let (_authzid, user, pass) = (parts.next()?, parts.next()?, parts.next()?);
                    Some((user.to_string(), pass.to_string()))
                })
            }
            "LOGIN" => {
                let Some(user) = self.answer(initial, "VXNlcm5hbWU6")? else {
                    return Ok(());
                };
                let Some(pass) = self.answer(None, "UGFzc3dvcmQ6")? else {
                    return Ok(());
                };
                decode(&user).zip(decode(&pass))
            }
            _ => return self.reply("504 5.5.4 Unrecognized authentication type"),
        };
        let Some((user, pass)) = credentials else {
            return self.reply("501 5.5.2 Cannot decode the response");
        };
        let accepted = !self.relay.reject_auth.load(Ordering::SeqCst)
            && user == self.relay.user
            && pass == self.relay.password;
        eprintln!(
            "[{}] AUTH {mechanism} as {user:?}: {}",
            self.relay.name,
            if accepted { "accepted" } else { "refused" }
        );
        self.relay.auths.lock().unwrap().push(AuthAttempt {
            user: user.clone(),
            mechanism,
            accepted,
            in_tls: self.in_tls(),
        });
        if accepted {
            self.user = Some(user);
            self.auth_in_tls = self.in_tls();
            self.reply("235 2.7.0 Authentication successful")
        } else {
            self.reply("535 5.7.8 Authentication credentials invalid")
        }
    }

    /// The client's answer: `initial` when it gave one with the command, else the next
    /// line after a `334 challenge`. `None` when the client left.
    fn answer(&mut self, initial: Option<String>, challenge: &str) -> io::Result<Option<String>> {
        if initial.is_some() {
            return Ok(initial);
        }
        self.reply(&format!("334 {challenge}"))?;
        let line = self.line()?;
        if let Some(l) = &line {
            self.log_client(l);
        }
        Ok(line)
    }

    fn data(&mut self) -> io::Result<()> {
        let Some(user) = self.user.clone().filter(|_| !self.rcpt_to.is_empty()) else {
            return self.reply("503 5.5.1 Error: need RCPT command");
        };
        self.reply("354 End data with <CR><LF>.<CR><LF>")?;
        let mut data = String::new();
        loop {
            let Some(l) = self.line()? else {
                return Ok(());
            };
            if l == "." {
                break;
            }
            data.push_str(l.strip_prefix('.').unwrap_or(&l));
            data.push('\n');
        }
        let message = Relayed {
            user,
            auth_in_tls: self.auth_in_tls,
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
            data,
        };
        eprintln!(
            "[{}] C: ({} lines of message) . from <{}> to {:?}, subject {:?}",
            self.relay.name,
            message.data.lines().count(),
            message.mail_from,
            message.rcpt_to,
            message.subject().unwrap_or_default()
        );
        let n = {
            let mut messages = self.relay.messages.lock().unwrap();
            messages.push(message);
            messages.len()
        };
        self.relay.arrived.notify_all();
        self.reply(&format!("250 2.0.0 Ok: queued as RELAY{n}"))
    }

    fn reply(&mut self, line: &str) -> io::Result<()> {
        eprintln!("[{}] S: {line}", self.relay.name);
        self.io.write_all(format!("{line}\r\n").as_bytes())?;
        self.io.flush()
    }

    fn log_client(&self, line: &str) {
        eprintln!("[{}] C: {line}", self.relay.name);
    }

    /// The next line without its line end; `None` when the client left. Read a byte at a
    /// time so that nothing past the line is taken from the socket: after STARTTLS the
    /// next bytes belong to the TLS handshake.
    fn line(&mut self) -> io::Result<Option<String>> {
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.io.read(&mut byte) {
                Ok(0) => return Ok(None),
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) if raw.len() >= MAX_CLIENT_LINE => {
                    return Err(io::Error::other("client line too long"))
                }
                Ok(_) => raw.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
        Ok(Some(String::from_utf8_lossy(&raw).into_owned()))
    }
}

/// A TLS session over `stream`, the handshake done (so that the SNI can be recorded and
/// a client refusing the certificate ends the session here).
fn tls(relay: &Relay, config: &Arc<ServerConfig>, mut stream: TcpStream) -> io::Result<Io> {
    let mut conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut stream) {
            eprintln!("[{}] TLS handshake failed: {e}", relay.name);
            return Err(e);
        }
    }
    let sni = conn.server_name().map(str::to_string);
    eprintln!("[{}] TLS on, SNI {sni:?}", relay.name);
    relay.server_names.lock().unwrap().push(sni);
    Ok(Io::Tls(Box::new(StreamOwned::new(conn, stream))))
}

fn decode(text: &str) -> Option<String> {
    let bytes = BASE64.decode(text.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

/// The address in `<…>` after `prefix` (case-insensitive), e.g. `MAIL FROM:<a@b> SIZE=1`.
fn path_of(line: &str, prefix: &str) -> Option<String> {
    let rest = line
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| line[prefix.len()..].trim_start())?;
    let rest = rest.strip_prefix('<')?;
    Some(rest[..rest.find('>')?].to_string())
}

// ---- relays that misbehave ----

/// How a [`HostileRelay`] misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// Accepts the connection and never says anything.
    Silent,
    /// Sends binary bytes that are not SMTP ([`GARBAGE`]), then waits.
    Garbage,
    /// Sends `220 ` and then `x` without end, until the client leaves.
    EndlessLine,
    /// Sends `220-xxx…` lines of 200 bytes without end: each line fine, the reply endless.
    EndlessReply,
    /// Greets and answers EHLO (offering AUTH PLAIN LOGIN), then hangs up when the next
    /// command comes.
    CloseAfterEhlo,
    /// Greets with `554 5.3.2 busy, try later` and hangs up.
    Busy,
    /// Answers AUTH with a 535 that repeats what the client sent, decoded too: a relay
    /// that would put the password into the failure text.
    EchoAuth,
    /// Accepts any AUTH, then answers nothing more (QUIT included).
    MuteAfterAuth,
    /// Offers STARTTLS and sends a forged extra reply right behind its 220, in the same
    /// packet: what a man in the middle injects (CVE-2011-0411).
    StartTlsInjection,
}

/// What [`Hostile::Garbage`] sends: the start of a PNG file.
pub const GARBAGE: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

/// A relay that misbehaves in one way.
pub struct HostileRelay {
    listener: Listener,
}

impl HostileRelay {
    pub fn start(kind: Hostile) -> HostileRelay {
        let listener = Listener::start(&format!("{kind:?}"), move |stream| {
            let _ = misbehave(kind, stream);
        });
        HostileRelay { listener }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr
    }

    pub fn connections(&self) -> usize {
        self.listener.connections.load(Ordering::SeqCst)
    }
}

/// What a scripted relay does with a command line.
enum Then {
    /// Sends these lines (CRLF added) in one write.
    Reply(String),
    HangUp,
    /// Says nothing and reads on.
    Mute,
}

const GREETING: &str = "220 hostile.relay.mailplane.test ESMTP";
const EHLO_AUTH: &str = "250-hostile.relay.mailplane.test\r\n250 AUTH PLAIN LOGIN";

fn misbehave(kind: Hostile, mut stream: TcpStream) -> io::Result<()> {
    let verb = |command: &str| {
        let verb = command.split(' ').next().unwrap_or_default();
        verb.to_ascii_uppercase()
    };
    match kind {
        Hostile::Silent => wait_for_the_client(stream),
        Hostile::Garbage => {
            stream.write_all(GARBAGE)?;
            wait_for_the_client(stream)
        }
        Hostile::EndlessLine => {
            stream.write_all(b"220 ")?;
            let chunk = [b'x'; 16 * 1024];
            // Ends when the client closes: the write fails.
            loop {
                stream.write_all(&chunk)?;
            }
        }
        Hostile::EndlessReply => {
            let lines = format!("220-{}\r\n", "x".repeat(194)).repeat(100);
            let lines = lines.as_bytes();
            loop {
                stream.write_all(lines)?;
            }
        }
        Hostile::Busy => {
            stream.write_all(b"554 5.3.2 busy, try later\r\n")?;
            stream.shutdown(std::net::Shutdown::Both)
        }
        Hostile::CloseAfterEhlo => scripted(stream, |c| match verb(c).as_str() {
            "EHLO" => Then::Reply(EHLO_AUTH.into()),
            _ => Then::HangUp,
        }),
        Hostile::EchoAuth => scripted(stream, |c| match verb(c).as_str() {
            "EHLO" => Then::Reply(EHLO_AUTH.into()),
            "AUTH" => {
                let decoded = c
                    .split(' ')
                    .nth(2)
                    .and_then(|b| BASE64.decode(b).ok())
                    .map(|raw| String::from_utf8_lossy(&raw).replace('\0', "\t"))
                    .unwrap_or_default();
                Then::Reply(format!("535 5.7.8 you sent {c:?}, that is {decoded}"))
            }
            "QUIT" => Then::Reply("221 2.0.0 Bye".into()),
            _ => Then::Reply("502 5.5.2 Error: command not recognized".into()),
        }),
        Hostile::MuteAfterAuth => scripted(stream, |c| match verb(c).as_str() {
            "EHLO" => Then::Reply(EHLO_AUTH.into()),
            "AUTH" => Then::Reply("235 2.7.0 Authentication successful".into()),
            _ => Then::Mute,
        }),
        Hostile::StartTlsInjection => scripted(stream, |c| match verb(c).as_str() {
            "EHLO" => Then::Reply("250-hostile.relay.mailplane.test\r\n250 STARTTLS".into()),
            "STARTTLS" => Then::Reply("220 2.0.0 Ready to start TLS\r\n250 2.0.0 forged".into()),
            _ => Then::Mute,
        }),
    }
}

/// Greets, then answers each command line as `answer` says, until the client leaves.
fn scripted(mut stream: TcpStream, answer: impl Fn(&str) -> Then) -> io::Result<()> {
    stream.write_all(format!("{GREETING}\r\n").as_bytes())?;
    let mut reader = io::BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    while io::BufRead::read_line(&mut reader, &mut line)? > 0 {
        match answer(line.trim_end()) {
            Then::Reply(reply) => stream.write_all(format!("{reply}\r\n").as_bytes())?,
            Then::HangUp => return stream.shutdown(std::net::Shutdown::Both),
            Then::Mute => {}
        }
        line.clear();
    }
    Ok(())
}

/// Reads until the client leaves, so that the connection stays open as long as the
/// client is willing to wait.
fn wait_for_the_client(mut stream: TcpStream) -> io::Result<()> {
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink)? > 0 {}
    Ok(())
}
