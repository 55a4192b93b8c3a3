//! A plain-text message as mailplane writes it (RFC 5322): the header fields, then the
//! body with CRLF line ends and dot-stuffing for SMTP's DATA.

use std::time::SystemTime;

use mailplane_domain::EmailAddress;
use rand::RngCore;

/// A message mailplane writes. Every value in it comes from mailplane or from a parsed
/// address, never a line break from a client: the subject and body are checked here all
/// the same, so that nothing can add a header field.
#[derive(Debug, Clone)]
pub struct Message {
    /// The `From` field's address.
    pub from: EmailAddress,
    pub subject: String,
    /// Lines of text; a line may be empty.
    pub body: Vec<String>,
}

impl Message {
    /// The message as sent in DATA, without the final `.` line.
    pub(crate) fn render(&self, to: &EmailAddress) -> String {
        let one_line = |s: &str| s.replace(['\r', '\n'], " ");
        let mut id = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let mut out = String::new();
        for (name, value) in [
            ("From", format!("mailplane <{}>", self.from)),
            ("To", format!("<{to}>")),
            ("Subject", one_line(&self.subject)),
            ("Date", httpdate::fmt_http_date(SystemTime::now())),
            ("Message-ID", format!("<{id}@{}>", self.from.domain())),
            ("MIME-Version", "1.0".into()),
            ("Content-Type", "text/plain; charset=utf-8".into()),
            ("Content-Transfer-Encoding", "8bit".into()),
            // RFC 3834: an automatic message; auto-responders leave it alone.
            ("Auto-Submitted", "auto-generated".into()),
        ] {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        for line in &self.body {
            let line = one_line(line);
            // RFC 5321 4.5.2: a line that starts with a dot gets one more.
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(&line);
            out.push_str("\r\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_cannot_be_added_and_dots_are_stuffed() {
        let m = Message {
            from: EmailAddress::parse("postmaster@zylker.com").unwrap(),
            subject: "Hi\r\nBcc: x@example.com".into(),
            body: vec![".hidden".into(), "plain\nBcc: y@example.com".into()],
        };
        let text = m.render(&EmailAddress::parse("paula@example.com").unwrap());
        assert!(
            text.contains("Subject: Hi  Bcc: x@example.com\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\n..hidden\r\n"), "{text}");
        assert!(!text.contains("\nBcc"), "{text}");
        assert!(text.contains("To: <paula@example.com>\r\n"));
        assert!(text.contains("Date: ") && text.contains(" GMT\r\n"));
    }
}
