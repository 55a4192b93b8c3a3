//! SMTP for the Postfix tests: a client that talks to a server one command at a time and
//! shows every line it sends and receives, and a stand-in server that accepts mail (with
//! AUTH PLAIN or LOGIN, optionally required) and records each message with the
//! credentials it was sent with.
//!
//! Both are plain blocking code on std threads: the servers under test are other
//! processes, so nothing here needs the async runtime.
#![allow(dead_code)]

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long the client waits for one reply before it gives up.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

// ---- replies ----

/// One SMTP reply: the code and the text of each line (without the code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The text of every line, joined by a space: `5.7.1 <a@b>: Recipient address rejected: …`.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{}{sep}{line}", self.code)?;
        }
        Ok(())
    }
}

// ---- the client ----

/// A connection to an SMTP server. Every command and reply is printed to stderr, each
/// line prefixed with the connection's label.
pub struct SmtpClient {
    label: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl SmtpClient {
    /// Connects and reads the greeting.
    pub fn connect(addr: &str, label: &str) -> (SmtpClient, Reply) {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut client = SmtpClient {
            label: label.to_string(),
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        eprintln!("[{label}] connected to {addr}");
        let greeting = client.read_reply();
        (client, greeting)
    }

    /// Sends one command line and reads its reply.
    pub fn command(&mut self, line: &str) -> Reply {
        eprintln!("[{}] C: {line}", self.label);
        self.send_line(line);
        self.read_reply()
    }

    /// After a 354: sends `message` (lines ended by CRLF, dot-stuffed) and the final dot,
    /// and reads the reply.
    pub fn send_message(&mut self, message: &str) -> Reply {
        let mut wire = String::new();
        for line in message.lines() {
            if line.starts_with('.') {
                wire.push('.');
            }
            wire.push_str(line);
            wire.push_str("\r\n");
        }
        wire.push_str(".\r\n");
        let first = message.lines().next().unwrap_or_default();
        eprintln!(
            "[{}] C: ({} lines of message, first: {first:?})",
            self.label,
            message.lines().count()
        );
        eprintln!("[{}] C: .", self.label);
        self.writer
            .write_all(wire.as_bytes())
            .unwrap_or_else(|e| panic!("[{}] write: {e}", self.label));
        self.read_reply()
    }

    fn send_line(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("[{}] write: {e}", self.label));
    }

    /// Reads one reply, all its lines (`250-…` continues, `250 …` ends).
    pub fn read_reply(&mut self) -> Reply {
        let mut code = None;
        let mut lines = Vec::new();
        loop {
            let mut raw = String::new();
            let n = self
                .reader
                .read_line(&mut raw)
                .unwrap_or_else(|e| panic!("[{}] reading a reply: {e}", self.label));
            assert!(
                n > 0,
                "[{}] the server closed the connection before replying",
                self.label
            );
            let line = raw.trim_end_matches(['\r', '\n']);
            eprintln!("[{}] S: {line}", self.label);
            let parsed: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("[{}] not an SMTP reply: {line:?}", self.label));
            assert!(
                code.is_none_or(|c| c == parsed),
                "[{}] reply code changed within a reply: {line:?}",
                self.label
            );
            code = Some(parsed);
            lines.push(line.get(4..).unwrap_or_default().to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        Reply {
            code: code.unwrap(),
            lines,
        }
    }

    /// QUIT, without caring for the answer (the server may already have closed).
    pub fn quit(mut self) {
        eprintln!("[{}] C: QUIT", self.label);
        if self.writer.write_all(b"QUIT\r\n").is_ok() {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) > 0 {
                eprintln!("[{}] S: {}", self.label, line.trim_end());
            }
        }
        let _ = self.writer.shutdown(Shutdown::Both);
    }
}

/// One message to submit with [`submit`].
pub struct Submission<'a> {
    /// Shown before every line of the conversation.
    pub label: &'a str,
    /// The SASL login the client claims through `XCLIENT LOGIN=` (the server must list the
    /// client in `smtpd_authorized_xclient_hosts`); `None` for unauthenticated mail.
    pub login: Option<&'a str>,
    pub from: &'a str,
    pub to: &'a str,
    /// Also the `Subject:`; the stand-in servers find messages by it.
    pub subject: &'a str,
}

/// How a submission ended: the reply to the final dot, or the first negative reply (and
/// the command it answered).
#[derive(Debug)]
pub enum Outcome {
    Accepted(Reply),
    Refused { command: String, reply: Reply },
}

impl Outcome {
    /// The refusal, or a panic saying the message was accepted.
    pub fn refused_at(&self, command: &str) -> &Reply {
        match self {
            Outcome::Refused { command: c, reply } if c == command => reply,
            other => panic!("expected a refusal at {command}, got {other:?}"),
        }
    }

    /// The reply to the final dot, or a panic naming the refusal.
    pub fn accepted(&self) -> &Reply {
        match self {
            Outcome::Accepted(reply) => reply,
            other => panic!("expected the message to be accepted, got {other:?}"),
        }
    }
}

/// One message over a fresh connection: EHLO, `XCLIENT LOGIN=` and EHLO again when a
/// login is given, MAIL, RCPT, DATA; QUIT in any case.
pub fn submit(addr: &str, s: &Submission<'_>) -> Outcome {
    let (mut c, greeting) = SmtpClient::connect(addr, s.label);
    assert_eq!(greeting.code, 220, "[{}] greeting: {greeting}", s.label);
    let mut steps: Vec<(String, u16)> = vec![("EHLO client.mailplane.test".into(), 250)];
    if let Some(login) = s.login {
        steps.push((format!("XCLIENT LOGIN={}", xtext(login)), 220));
        steps.push(("EHLO client.mailplane.test".into(), 250));
    }
    steps.push((format!("MAIL FROM:<{}>", s.from), 250));
    steps.push((format!("RCPT TO:<{}>", s.to), 250));
    steps.push(("DATA".into(), 354));
    for (command, want) in steps {
        let reply = c.command(&command);
        if reply.code != want {
            c.quit();
            let command = command.split([' ', ':']).next().unwrap().to_string();
            return Outcome::Refused { command, reply };
        }
    }
    let message = format!(
        "From: <{}>\r\nTo: <{}>\r\nSubject: {}\r\nMessage-ID: <{}@client.mailplane.test>\r\n\r\nA test message from mailplane's Postfix test.\r\n",
        s.from,
        s.to,
        s.subject,
        s.subject.replace(' ', "-")
    );
    let reply = c.send_message(&message);
    c.quit();
    if reply.code == 250 {
        Outcome::Accepted(reply)
    } else {
        Outcome::Refused {
            command: ".".into(),
            reply,
        }
    }
}

/// `value` as xtext (RFC 3461), as XCLIENT wants its attribute values.
pub fn xtext(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if (33..=126).contains(&b) && b != b'+' && b != b'=' {
                (b as char).to_string()
            } else {
                format!("+{b:02X}")
            }
        })
        .collect()
}

// ---- the stand-in server ----

/// A message a [`StandIn`] accepted.
#[derive(Clone, Debug)]
pub struct Received {
    /// `(user, password)` of the AUTH that preceded it on its connection, if any.
    pub auth: Option<(String, String)>,
    /// The mechanism of that AUTH (`PLAIN` or `LOGIN`).
    pub mechanism: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as received (dot-stuffing undone), lines ended by `\n`.
    pub data: String,
}

impl Received {
    /// The confirmation key of a message mailplane wrote: the body's line of 20 letters
    /// and digits.
    pub fn confirmation_key(&self) -> String {
        let (_, body) = self.data.split_once("\n\n").expect("a body");
        body.lines()
            .find(|l| l.len() == 20 && l.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or_else(|| panic!("no key line in {body}"))
            .to_string()
    }

    /// The value of the first `Subject:` header.
    pub fn subject(&self) -> Option<&str> {
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                l.strip_prefix("Subject:")
                    .or_else(|| l.strip_prefix("subject:"))
            })
            .map(str::trim)
    }
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<Received>>,
    arrived: Condvar,
    stop: AtomicBool,
    queued: AtomicUsize,
}

/// A small ESMTP server on 127.0.0.1 that accepts every message (after AUTH, when
/// required) and remembers it. It stops when dropped.
pub struct StandIn {
    name: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl StandIn {
    /// Starts a stand-in on a free port. With `require_auth`, MAIL before a successful
    /// AUTH is answered 530; any user and password are accepted (and recorded).
    pub fn start(name: &str, require_auth: bool) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a stand-in SMTP server");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let (n, s) = (name.to_string(), shared.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (n, s) = (n.clone(), s.clone());
                thread::spawn(move || {
                    let _ = Session::new(&n, stream, require_auth, &s).run();
                });
            }
        });
        eprintln!(
            "stand-in SMTP server {name} listening on {addr}{}",
            if require_auth { " (AUTH required)" } else { "" }
        );
        StandIn {
            name: name.to_string(),
            addr,
            shared,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// The message with this subject, if it has arrived.
    pub fn find(&self, subject: &str) -> Option<Received> {
        self.messages()
            .into_iter()
            .find(|m| m.subject() == Some(subject))
    }

    /// Waits up to `timeout` for the message with this subject, calling `tick` about
    /// every `every` while it waits (e.g. to flush the sender's queue).
    pub fn wait_for(
        &self,
        subject: &str,
        timeout: Duration,
        every: Duration,
        mut tick: impl FnMut(),
    ) -> Option<Received> {
        let deadline = Instant::now() + timeout;
        let mut next_tick = Instant::now() + every;
        let mut messages = self.shared.messages.lock().unwrap();
        loop {
            if let Some(m) = messages.iter().find(|m| m.subject() == Some(subject)) {
                return Some(m.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            if now >= next_tick {
                drop(messages);
                tick();
                next_tick = Instant::now() + every;
                messages = self.shared.messages.lock().unwrap();
                continue;
            }
            let wait = deadline.min(next_tick) - now;
            messages = self.shared.arrived.wait_timeout(messages, wait).unwrap().0;
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        eprintln!(
            "stand-in SMTP server {} stopped ({} messages)",
            self.name,
            self.shared.messages.lock().unwrap().len()
        );
    }
}

/// One connection to a [`StandIn`].
struct Session<'a> {
    name: &'a str,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    require_auth: bool,
    shared: &'a Shared,
    auth: Option<(String, String)>,
    mechanism: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl<'a> Session<'a> {
    fn new(name: &'a str, stream: TcpStream, require_auth: bool, shared: &'a Shared) -> Self {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
        Session {
            name,
            reader: BufReader::new(stream.try_clone().expect("clone the stream")),
            writer: stream,
            require_auth,
            shared,
            auth: None,
            mechanism: None,
            mail_from: None,
            rcpt_to: Vec::new(),
        }
    }

    fn reply(&mut self, line: &str) -> std::io::Result<()> {
        eprintln!("[{}] S: {line}", self.name);
        self.writer.write_all(format!("{line}\r\n").as_bytes())
    }

    /// The next line without its CRLF; `None` at the end of the connection.
    fn line(&mut self) -> std::io::Result<Option<String>> {
        let mut raw = String::new();
        if self.reader.read_line(&mut raw)? == 0 {
            return Ok(None);
        }
        Ok(Some(raw.trim_end_matches(['\r', '\n']).to_string()))
    }

    /// Reads a line of the client and prints it (AUTH secrets are printed as sent:
    /// base64 of test credentials).
    fn client_line(&mut self) -> std::io::Result<Option<String>> {
        let line = self.line()?;
        if let Some(l) = &line {
            eprintln!("[{}] C: {l}", self.name);
        }
        Ok(line)
    }

    fn run(mut self) -> std::io::Result<()> {
        if self.shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.reply(&format!(
            "220 {}.stand-in.mailplane.test ESMTP stand-in",
            self.name
        ))?;
        while let Some(line) = self.client_line()? {
            let upper = line.to_ascii_uppercase();
            let verb = upper.split(' ').next().unwrap_or_default().to_string();
            match verb.as_str() {
                "EHLO" => {
                    self.reply(&format!("250-{}.stand-in.mailplane.test", self.name))?;
                    self.reply("250-AUTH PLAIN LOGIN")?;
                    self.reply("250-8BITMIME")?;
                    self.reply("250 SIZE 52428800")?;
                }
                "HELO" => self.reply(&format!("250 {}.stand-in.mailplane.test", self.name))?,
                "AUTH" => self.auth(&line)?,
                "MAIL" => {
                    if self.require_auth && self.auth.is_none() {
                        self.reply("530 5.7.0 Authentication required")?;
                    } else if let Some(addr) = path_of(&line, "MAIL FROM:") {
                        self.mail_from = Some(addr);
                        self.rcpt_to.clear();
                        self.reply("250 2.1.0 Ok")?;
                    } else {
                        self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")?;
                    }
                }
                "RCPT" => {
                    if self.mail_from.is_none() {
                        self.reply("503 5.5.1 Error: need MAIL command")?;
                    } else if let Some(addr) = path_of(&line, "RCPT TO:") {
                        self.rcpt_to.push(addr);
                        self.reply("250 2.1.5 Ok")?;
                    } else {
                        self.reply("501 5.5.4 Syntax: RCPT TO:<address>")?;
                    }
                }
                "DATA" => {
                    if self.rcpt_to.is_empty() {
                        self.reply("503 5.5.1 Error: need RCPT command")?;
                        continue;
                    }
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
                    eprintln!(
                        "[{}] C: ({} lines of message) .",
                        self.name,
                        data.lines().count()
                    );
                    let n = self.shared.queued.fetch_add(1, Ordering::SeqCst) + 1;
                    let received = Received {
                        auth: self.auth.clone(),
                        mechanism: self.mechanism.clone(),
                        mail_from: self.mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut self.rcpt_to),
                        data,
                    };
                    eprintln!(
                        "[{}] received message {n}: from <{}> to {:?}, subject {:?}, auth {:?}",
                        self.name,
                        received.mail_from,
                        received.rcpt_to,
                        received.subject().unwrap_or_default(),
                        received.auth.as_ref().map(|(u, _)| u),
                    );
                    self.shared.messages.lock().unwrap().push(received);
                    self.shared.arrived.notify_all();
                    self.reply(&format!("250 2.0.0 Ok: queued as STANDIN{n}"))?;
                }
                "RSET" => {
                    self.mail_from = None;
                    self.rcpt_to.clear();
                    self.reply("250 2.0.0 Ok")?;
                }
                "NOOP" => self.reply("250 2.0.0 Ok")?,
                "QUIT" => {
                    self.reply("221 2.0.0 Bye")?;
                    return Ok(());
                }
                _ => self.reply("502 5.5.2 Error: command not recognized")?,
            }
        }
        Ok(())
    }

    /// `AUTH PLAIN [initial]` or `AUTH LOGIN [initial]`.
    fn auth(&mut self, line: &str) -> std::io::Result<()> {
        if self.auth.is_some() {
            return self.reply("503 5.5.1 Error: already authenticated");
        }
        let mut words = line.split_whitespace().skip(1);
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        let initial = words.next().map(str::to_string);
        let credentials = match mechanism.as_str() {
            "PLAIN" => {
                let response = match initial {
                    Some(r) => r,
                    None => {
                        self.reply("334 ")?;
                        match self.client_line()? {
                            Some(r) => r,
                            None => return Ok(()),
                        }
                    }
                };
                base64_decode(&response).and_then(|raw| {
                    // authzid NUL authcid NUL passwd
                    let mut parts = raw.split(|b| *b == 0);
                    let (_authzid, user, pass) = (parts.next()?, parts.next()?, parts.next()?);
                    Some((
                        String::from_utf8(user.to_vec()).ok()?,
                        String::from_utf8(pass.to_vec()).ok()?,
                    ))
                })
            }
            "LOGIN" => {
                let user = match initial {
                    Some(u) => u,
                    None => {
                        self.reply("334 VXNlcm5hbWU6")?;
                        match self.client_line()? {
                            Some(r) => r,
                            None => return Ok(()),
                        }
                    }
                };
                self.reply("334 UGFzc3dvcmQ6")?;
                let Some(pass) = self.client_line()? else {
                    return Ok(());
                };
                let text = |s: &str| base64_decode(s).and_then(|b| String::from_utf8(b).ok());
                text(&user).zip(text(&pass))
            }
            _ => return self.reply("504 5.5.4 Unrecognized authentication type"),
        };
        match credentials {
            Some(c) => {
                eprintln!("[{}] AUTH {mechanism} as {:?}", self.name, c.0);
                self.auth = Some(c);
                self.mechanism = Some(mechanism);
                self.reply("235 2.7.0 Authentication successful")
            }
            None => self.reply("501 5.5.2 Cannot decode the response"),
        }
    }
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

// ---- base64 (the standard alphabet, with padding) ----

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `None` when `text` is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().trim_end_matches('=');
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
