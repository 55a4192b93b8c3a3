//! Just enough IMAP and POP3 to log in and look for a message, as a mail client would.
//! Every line is printed with a label (see the output with `--no-capture`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Lines {
    label: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Lines {
    fn connect(addr: &str, label: &str) -> Lines {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Lines {
            label: label.to_string(),
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, line: &str, shown: &str) {
        eprintln!("[{}] C: {shown}", self.label);
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a line");
        let line = line.trim_end().to_string();
        eprintln!("[{}] S: {line}", self.label);
        line
    }
}

/// An IMAP session, logged in.
pub struct Imap {
    io: Lines,
    tag: u32,
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Imap {
    /// Logs in with LOGIN; the tagged reply's text when it is not OK.
    pub fn login(addr: &str, user: &str, password: &str) -> Result<Imap, String> {
        let mut io = Lines::connect(addr, &format!("imap {user}"));
        let greeting = io.line();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        let mut imap = Imap { io, tag: 0 };
        let command = format!("LOGIN {} {}", quoted(user), quoted(password));
        let (status, _) = imap.command(&command, &format!("LOGIN {} ***", quoted(user)));
        match status.strip_prefix("OK") {
            Some(_) => Ok(imap),
            None => Err(status),
        }
    }

    /// Sends a command; the tagged reply without its tag, and the untagged lines before it.
    fn command(&mut self, command: &str, shown: &str) -> (String, Vec<String>) {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.io
            .send(&format!("{tag} {command}"), &format!("{tag} {shown}"));
        let mut untagged = Vec::new();
        loop {
            let line = self.io.line();
            assert!(!line.is_empty(), "the IMAP server closed the connection");
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return (rest.to_string(), untagged);
            }
            untagged.push(line);
        }
    }

    /// The numbers of the INBOX messages whose Subject contains `subject`.
    pub fn search_inbox(&mut self, subject: &str) -> Vec<u32> {
        let (status, _) = self.command("SELECT INBOX", "SELECT INBOX");
        assert!(status.starts_with("OK"), "{status}");
        let command = format!("SEARCH SUBJECT {}", quoted(subject));
        let (status, lines) = self.command(&command, &command);
        assert!(status.starts_with("OK"), "{status}");
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|rest| rest.split_whitespace().map(|n| n.parse().unwrap()))
            .collect()
    }

    /// How many messages INBOX holds.
    pub fn inbox_count(&mut self) -> u32 {
        let (status, lines) = self.command("SELECT INBOX", "SELECT INBOX");
        assert!(status.starts_with("OK"), "{status}");
        lines
            .iter()
            .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" EXISTS")?.parse().ok())
            .expect("SELECT answers EXISTS")
    }

    pub fn logout(mut self) {
        self.command("LOGOUT", "LOGOUT");
    }
}

/// Logs in to POP3 with USER and PASS; the message count (STAT), or the refusal.
pub fn pop3_login(addr: &str, user: &str, password: &str) -> Result<u32, String> {
    let mut io = Lines::connect(addr, &format!("pop3 {user}"));
    let greeting = io.line();
    assert!(greeting.starts_with("+OK"), "{greeting}");
    io.send(&format!("USER {user}"), &format!("USER {user}"));
    let reply = io.line();
    assert!(reply.starts_with("+OK"), "{reply}");
    io.send(&format!("PASS {password}"), "PASS ***");
    let reply = io.line();
    if !reply.starts_with("+OK") {
        return Err(reply);
    }
    io.send("STAT", "STAT");
    let stat = io.line();
    io.send("QUIT", "QUIT");
    let _ = io.line();
    stat.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or(stat)
}
