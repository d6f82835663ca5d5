//! Delivery status notifications (RFC 3464): the bounce and delay messages sent back to the
//! sender, as `multipart/report; report-type=delivery-status`.

use std::fmt::Write as _;

use crate::smtp::{EnhancedCode, Reply, Ret};
use crate::time::Time;

use super::date::rfc5322;

/// What a notification reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnKind {
    /// Delivery failed permanently (or the message expired): a bounce.
    Failure,
    /// Delivery is delayed and will be retried: a warning.
    Delay,
    /// The message was relayed to a server that cannot send notifications on (RFC 3461 4.1).
    Relayed,
    /// The message was delivered and the sender asked to be told (NOTIFY=SUCCESS).
    Delivered,
}

impl DsnKind {
    fn action(self) -> &'static str {
        match self {
            DsnKind::Failure => "failed",
            DsnKind::Delay => "delayed",
            DsnKind::Relayed => "relayed",
            DsnKind::Delivered => "delivered",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            DsnKind::Failure => "Undelivered Mail Returned to Sender",
            DsnKind::Delay => "Delayed Mail (still being retried)",
            DsnKind::Relayed => "Relayed Mail",
            DsnKind::Delivered => "Successful Mail Delivery Report",
        }
    }
}

/// One recipient of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DsnRecipient {
    /// The recipient address (Final-Recipient).
    pub address: String,
    /// ORCPT, if the client gave one: (address type, address).
    pub original: Option<(String, String)>,
    /// The status (`5.1.1`, `4.4.1` …).
    pub status: EnhancedCode,
    /// The remote server involved, if any.
    pub remote_mta: Option<String>,
    /// The reply that decided the outcome.
    pub diagnostic: Option<Reply>,
    /// When the last attempt was made.
    pub last_attempt: Option<Time>,
    /// For delays: when the queue gives up.
    pub will_retry_until: Option<Time>,
}

/// Everything needed to write a notification.
#[derive(Clone, Debug)]
pub struct Dsn<'a> {
    /// What is reported.
    pub kind: DsnKind,
    /// Our host name (Reporting-MTA, From: MAILER-DAEMON@…).
    pub reporting_mta: &'a str,
    /// The recipient of the notification: the original sender.
    pub to: &'a str,
    /// When the original message arrived.
    pub arrival: Time,
    /// Now.
    pub now: Time,
    /// ENVID of the original transaction.
    pub envid: Option<&'a str>,
    /// The recipients reported on.
    pub recipients: &'a [DsnRecipient],
    /// The original message (headers and body, CRLF).
    pub original: &'a [u8],
    /// Return the whole message or only its headers.
    pub ret: Ret,
    /// A unique token, used for the Message-ID and the MIME boundary.
    pub unique: &'a str,
}

impl Dsn<'_> {
    /// The complete message, CRLF line endings, ready to be queued.
    #[must_use]
    pub fn render(&self) -> Vec<u8> {
        let boundary = format!("{}/{}", self.unique, self.reporting_mta);
        let mut m = String::new();
        let _ = write!(
            m,
            "From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\n\
             To: <{to}>\r\n\
             Subject: {subject}\r\n\
             Date: {date}\r\n\
             Message-ID: <{unique}@{mta}>\r\n\
             Auto-Submitted: auto-replied\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status;\r\n\
             \tboundary=\"{boundary}\"\r\n\
             \r\n\
             This is a MIME-encapsulated message.\r\n\
             \r\n\
             --{boundary}\r\n\
             Content-Description: Notification\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             \r\n",
            mta = self.reporting_mta,
            to = self.to,
            subject = self.kind.subject(),
            date = rfc5322(self.now),
            unique = self.unique,
        );
        self.human_part(&mut m);
        let _ = write!(
            m,
            "\r\n--{boundary}\r\n\
             Content-Description: Delivery report\r\n\
             Content-Type: message/delivery-status\r\n\
             \r\n\
             Reporting-MTA: dns; {mta}\r\n",
            mta = self.reporting_mta
        );
        if let Some(envid) = self.envid {
            let _ = write!(m, "Original-Envelope-Id: {}\r\n", ascii_safe(envid));
        }
        let _ = write!(m, "Arrival-Date: {}\r\n", rfc5322(self.arrival));
        for r in self.recipients {
            self.recipient_part(&mut m, r);
        }
        let headers_only = self.ret == Ret::Headers;
        let _ = write!(
            m,
            "\r\n--{boundary}\r\n\
             Content-Description: {desc}\r\n\
             Content-Type: {ctype}\r\n",
            desc = if headers_only {
                "Undelivered message headers"
            } else {
                "Undelivered message"
            },
            ctype = if headers_only {
                "text/rfc822-headers"
            } else {
                "message/rfc822"
            },
        );
        let original = if headers_only {
            headers_of(self.original)
        } else {
            self.original
        };
        if !original.is_ascii() {
            m.push_str("Content-Transfer-Encoding: 8bit\r\n");
        }
        m.push_str("\r\n");
        let mut out = m.into_bytes();
        out.extend_from_slice(original);
        if !original.ends_with(b"\r\n") && !original.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        out
    }

    fn human_part(&self, m: &mut String) {
        let what = match self.kind {
            DsnKind::Failure => {
                "could not be delivered to one or more recipients. It has been given up on."
            }
            DsnKind::Delay => {
                "has not yet been delivered to one or more recipients. Delivery will be retried."
            }
            DsnKind::Relayed => {
                "was relayed to a server that does not send delivery notifications."
            }
            DsnKind::Delivered => "was delivered to the recipients below.",
        };
        let _ = write!(
            m,
            "This is the mail system at host {}.\r\n\r\nYour message {what}\r\n\r\n",
            self.reporting_mta
        );
        for r in self.recipients {
            let _ = write!(m, "<{}>", ascii_safe(&r.address));
            if let Some(d) = &r.diagnostic {
                let _ = write!(m, ": {}", ascii_safe(&d.to_string().replace('\n', " ")));
            }
            if let (DsnKind::Delay, Some(until)) = (self.kind, r.will_retry_until) {
                let _ = write!(m, " (retrying until {})", rfc5322(until));
            }
            m.push_str("\r\n");
        }
    }

    fn recipient_part(&self, m: &mut String, r: &DsnRecipient) {
        m.push_str("\r\n");
        if let Some((kind, addr)) = &r.original {
            let _ = write!(
                m,
                "Original-Recipient: {}; {}\r\n",
                ascii_safe(kind),
                ascii_safe(addr)
            );
        }
        let _ = write!(
            m,
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            ascii_safe(&r.address),
            self.kind.action(),
            r.status
        );
        if let Some(mta) = &r.remote_mta {
            let _ = write!(m, "Remote-MTA: dns; {}\r\n", ascii_safe(mta));
        }
        if let Some(d) = &r.diagnostic {
            let _ = write!(
                m,
                "Diagnostic-Code: smtp; {}\r\n",
                ascii_safe(&d.to_string().replace('\n', " "))
            );
        }
        if let Some(t) = r.last_attempt {
            let _ = write!(m, "Last-Attempt-Date: {}\r\n", rfc5322(t));
        }
        if let Some(t) = r.will_retry_until {
            let _ = write!(m, "Will-Retry-Until: {}\r\n", rfc5322(t));
        }
    }
}

/// Header fields are ASCII; anything else (a UTF-8 address, a stray control character from a
/// remote reply) is replaced so the report stays well-formed.
fn ascii_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The header section of a message: everything up to and including the empty line.
#[must_use]
pub fn headers_of(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &message[..2];
    }
    match memchr::memmem::find(message, b"\r\n\r\n") {
        Some(i) => &message[..i + 4],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: DsnKind, ret: Ret) -> String {
        let recipients = [DsnRecipient {
            address: "bob@example.net".into(),
            original: Some(("rfc822".into(), "bob+x@example.net".into())),
            status: EnhancedCode::new(5, 1, 1),
            remote_mta: Some("mx.example.net".into()),
            diagnostic: Some(Reply::new(550, EnhancedCode::new(5, 1, 1), "no such user")),
            last_attempt: Some(Time::from_secs(1_700_000_100)),
            will_retry_until: None,
        }];
        let dsn = Dsn {
            kind,
            reporting_mta: "mx.example.org",
            to: "alice@example.org",
            arrival: Time::from_secs(1_700_000_000),
            now: Time::from_secs(1_700_000_200),
            envid: Some("QQ314159"),
            recipients: &recipients,
            original: b"Subject: hello\r\nFrom: alice@example.org\r\n\r\nbody line\r\n",
            ret,
            unique: "abc123",
        };
        String::from_utf8(dsn.render()).unwrap()
    }

    #[test]
    fn failure_report_is_a_multipart_report() {
        let m = report(DsnKind::Failure, Ret::Headers);
        assert!(m.contains("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"abc123/mx.example.org\""));
        assert!(m.contains("Reporting-MTA: dns; mx.example.org\r\n"));
        assert!(m.contains("Original-Envelope-Id: QQ314159\r\n"));
        assert!(m.contains("Original-Recipient: rfc822; bob+x@example.net\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
        assert!(m.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
        assert!(m.contains("Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\nFrom: alice@example.org\r\n\r\n\r\n--abc123/mx.example.org--\r\n"));
        assert!(!m.contains("body line"));
        assert!(m.contains("Auto-Submitted: auto-replied\r\n"));
        // Every line ends in CRLF.
        assert!(!m.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn full_return_includes_the_body() {
        let m = report(DsnKind::Delay, Ret::Full);
        assert!(m.contains("Action: delayed\r\n"));
        assert!(m.contains("Content-Type: message/rfc822\r\n\r\nSubject: hello"));
        assert!(m.contains("body line\r\n"));
    }

    #[test]
    fn headers_of_messages() {
        assert_eq!(headers_of(b"A: b\r\n\r\nbody"), b"A: b\r\n\r\n");
        assert_eq!(headers_of(b"A: b\r\n"), b"A: b\r\n");
        assert_eq!(headers_of(b"\r\nbody"), b"\r\n");
    }
}
