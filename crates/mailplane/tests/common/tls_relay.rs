//! Fake external relays for the Postfix TLS test: a test CA, and small SMTP servers on
//! 127.0.0.1 that speak plain SMTP, STARTTLS or implicit TLS, accept any AUTH PLAIN or
//! LOGIN, and record each message with whether the AUTH came inside TLS and the SNI name.
//!
//! Minimal on purpose, until the shared relays of `common/relay.rs` land (the two are to
//! be merged then).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A certificate authority of the test, and its certificate as a PEM file.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    pub pem_file: PathBuf,
}

impl TestCa {
    /// A new CA, its PEM written into `dir` (readable by Postfix's `postfix` user).
    pub fn new(dir: &Path) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mailplane relay test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let pem_file = dir.join("relay-test-ca.pem");
        std::fs::write(&pem_file, cert.pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pem_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        TestCa {
            cert,
            key,
            pem_file,
        }
    }

    /// A server configuration with a certificate of this CA for `name`.
    pub fn server_config(&self, name: &str) -> Arc<ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), self.cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        // ring, as the store's TLS (see crates/store/src/postgres/tls.rs for why).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        )
    }
}

/// How a relay speaks.
#[derive(Clone)]
pub enum Security {
    /// No TLS at all; AUTH offered in clear.
    Plain,
    /// STARTTLS offered; AUTH offered before and after it (a client that authenticates
    /// before STARTTLS is caught).
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte (port 465 style).
    Implicit(Arc<ServerConfig>),
}

/// What a relay saw of one message.
#[derive(Debug, Clone)]
pub struct Message {
    pub auth: (String, String),
    /// Whether the AUTH command came inside TLS.
    pub auth_in_tls: bool,
    /// The SNI name the client sent, if any.
    pub sni: Option<String>,
    pub mail_from: String,
    pub subject: String,
}

#[derive(Default)]
struct Seen {
    messages: Vec<Message>,
    /// Every AUTH, with whether it came inside TLS (also those of failed deliveries).
    auths: Vec<bool>,
    /// Connections, and how many got through a TLS handshake.
    connections: usize,
    handshakes: usize,
}

/// A fake relay that requires AUTH before MAIL. Stops accepting when dropped.
pub struct Relay {
    name: String,
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Relay {
    pub fn start(name: &str, security: Security) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (n, s) = (name.to_string(), seen.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (n, s, sec) = (n.clone(), s.clone(), security.clone());
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                    if let Err(e) = session(&n, stream, sec, &s) {
                        eprintln!("[{n}] session ended: {e}");
                    }
                });
            }
        });
        eprintln!("fake relay {name} listening on {addr}");
        Relay {
            name: name.to_string(),
            addr,
            seen,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn find(&self, subject: &str) -> Option<Message> {
        let seen = self.seen.lock().unwrap();
        seen.messages.iter().find(|m| m.subject == subject).cloned()
    }

    /// Whether any AUTH arrived, with whether each came inside TLS.
    pub fn auths(&self) -> Vec<bool> {
        self.seen.lock().unwrap().auths.clone()
    }

    /// (connections, TLS handshakes completed).
    pub fn connections(&self) -> (usize, usize) {
        let seen = self.seen.lock().unwrap();
        (seen.connections, seen.handshakes)
    }

    /// Waits up to `timeout` for the message `subject`, calling `tick` every 5 s.
    pub fn wait_for(
        &self,
        subject: &str,
        timeout: Duration,
        mut tick: impl FnMut(),
    ) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        let mut next_tick = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(m) = self.find(subject) {
                return Some(m);
            }
            if Instant::now() >= next_tick {
                tick();
                next_tick = Instant::now() + Duration::from_secs(5);
            }
            thread::sleep(Duration::from_millis(100));
        }
        self.find(subject)
    }
}

/// A connection, in clear or inside TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    fn tls(config: Arc<ServerConfig>, tcp: TcpStream) -> std::io::Result<Conn> {
        let conn = ServerConnection::new(config).map_err(std::io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Conn::Tls(Box::new(stream)))
    }

    fn sni(&self) -> Option<String> {
        match self {
            Conn::Tls(s) => s.conn.server_name().map(str::to_string),
            Conn::Plain(_) => None,
        }
    }

    fn line(&mut self) -> std::io::Result<Option<String>> {
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            let n = match self {
                Conn::Plain(s) => s.read(&mut byte)?,
                Conn::Tls(s) => s.read(&mut byte)?,
            };
            if n == 0 {
                return Ok(None);
            }
            if byte[0] == b'\n' {
                let text = String::from_utf8_lossy(&out);
                return Ok(Some(text.trim_end_matches('\r').to_string()));
            }
            out.push(byte[0]);
        }
    }

    fn send(&mut self, line: &str) -> std::io::Result<()> {
        let data = format!("{line}\r\n");
        match self {
            Conn::Plain(s) => s.write_all(data.as_bytes()),
            Conn::Tls(s) => {
                s.write_all(data.as_bytes())?;
                s.flush()
            }
        }
    }
}

fn b64(text: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn session(
    name: &str,
    tcp: TcpStream,
    security: Security,
    seen: &Mutex<Seen>,
) -> std::io::Result<()> {
    seen.lock().unwrap().connections += 1;
    let mut conn = match &security {
        Security::Implicit(config) => {
            let c = Conn::tls(config.clone(), tcp)?;
            seen.lock().unwrap().handshakes += 1;
            c
        }
        _ => Conn::Plain(tcp),
    };
    let say = |conn: &mut Conn, line: &str| {
        eprintln!("[{name}] S: {line}");
        conn.send(line)
    };
    say(
        &mut conn,
        &format!("220 {name}.relay.test ESMTP fake relay"),
    )?;
    let mut auth: Option<(String, String, bool)> = None;
    let mut mail_from = String::new();
    while let Some(line) = conn.line()? {
        eprintln!("[{name}] C: {line}");
        let upper = line.to_ascii_uppercase();
        let in_tls = matches!(conn, Conn::Tls(_));
        if upper.starts_with("EHLO") {
            say(&mut conn, &format!("250-{name}.relay.test"))?;
            if matches!(security, Security::StartTls(_)) && !in_tls {
                say(&mut conn, "250-STARTTLS")?;
            }
            say(&mut conn, "250 AUTH PLAIN LOGIN")?;
        } else if upper == "STARTTLS" {
            let Security::StartTls(config) = &security else {
                say(&mut conn, "502 5.5.1 not here")?;
                continue;
            };
            say(&mut conn, "220 2.0.0 Ready to start TLS")?;
            let Conn::Plain(tcp) = conn else {
                return Ok(());
            };
            conn = Conn::tls(config.clone(), tcp)?;
            seen.lock().unwrap().handshakes += 1;
        } else if upper.starts_with("AUTH PLAIN") {
            seen.lock().unwrap().auths.push(in_tls);
            let arg = match line.split_whitespace().nth(2) {
                Some(a) => a.to_string(),
                None => {
                    say(&mut conn, "334 ")?;
                    conn.line()?.unwrap_or_default()
                }
            };
            let decoded = b64(&arg);
            let mut parts = decoded.split('\0').skip(1);
            let (user, pass) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            auth = Some((user.to_string(), pass.to_string(), in_tls));
            say(&mut conn, "235 2.7.0 Authentication successful")?;
        } else if upper.starts_with("AUTH LOGIN") {
            seen.lock().unwrap().auths.push(in_tls);
            say(&mut conn, "334 VXNlcm5hbWU6")?;
            let user = b64(&conn.line()?.unwrap_or_default());
            say(&mut conn, "334 UGFzc3dvcmQ6")?;
            let pass = b64(&conn.line()?.unwrap_or_default());
            auth = Some((user, pass, in_tls));
            say(&mut conn, "235 2.7.0 Authentication successful")?;
        } else if upper.starts_with("MAIL FROM:") {
            if auth.is_none() {
                say(&mut conn, "530 5.7.0 Authentication required")?;
                continue;
            }
            mail_from = line[10..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(['<', '>'])
                .to_string();
            say(&mut conn, "250 2.1.0 Ok")?;
        } else if upper.starts_with("RCPT TO:") {
            say(&mut conn, "250 2.1.5 Ok")?;
        } else if upper == "DATA" {
            say(&mut conn, "354 End data with <CR><LF>.<CR><LF>")?;
            let mut subject = String::new();
            while let Some(l) = conn.line()? {
                if l == "." {
                    break;
                }
                if let Some(s) = l.strip_prefix("Subject:") {
                    subject = s.trim().to_string();
                }
            }
            let (user, pass, auth_in_tls) = auth.clone().unwrap_or_default();
            seen.lock().unwrap().messages.push(Message {
                auth: (user, pass),
                auth_in_tls,
                sni: conn.sni(),
                mail_from: mail_from.clone(),
                subject,
            });
            say(&mut conn, "250 2.0.0 Ok: queued")?;
        } else if upper == "QUIT" {
            say(&mut conn, "221 2.0.0 Bye")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            say(&mut conn, "250 2.0.0 Ok")?;
        } else {
            say(&mut conn, "502 5.5.2 Error: command not recognized")?;
        }
    }
    Ok(())
}
