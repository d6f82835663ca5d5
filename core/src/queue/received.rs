//! Trace information: the `Received:` header every SMTP server prepends (RFC 5321 section
//! 4.4), and the hop count used to stop mail loops.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::time::Time;

use super::date::rfc5322;

/// Most `Received:` headers a message may carry before it is refused as looping (OpenSMTPD's
/// limit; RFC 5321 section 6.3 suggests at least 100).
pub const MAX_HOPS: usize = 100;

/// What the `Received:` header records.
#[derive(Clone, Debug, Default)]
pub struct ReceivedInfo<'a> {
    /// The client's HELO/EHLO name.
    pub helo: Option<&'a str>,
    /// The client's reverse DNS name.
    pub rdns: Option<&'a str>,
    /// The client's address (`None` for local submission).
    pub src: Option<IpAddr>,
    /// Leave out the `from` clause (`mask-src`).
    pub mask_src: bool,
    /// Our host name.
    pub by: &'a str,
    /// The client used EHLO.
    pub esmtp: bool,
    /// The session used TLS.
    pub tls: bool,
    /// The client authenticated (as this user, shown only with `received-auth`).
    pub auth: Option<&'a str>,
    /// Show the authenticated user.
    pub show_auth: bool,
    /// The transaction used SMTPUTF8.
    pub utf8: bool,
    /// The queue id.
    pub id: &'a str,
    /// The recipient, when there is exactly one.
    pub rcpt: Option<&'a str>,
    /// When the message was received.
    pub date: Time,
}

impl ReceivedInfo<'_> {
    /// The `with` protocol name (RFC 3848 and RFC 6531): SMTP, ESMTP, ESMTPS, ESMTPA,
    /// ESMTPSA, and the UTF8 forms.
    #[must_use]
    pub fn protocol(&self) -> String {
        let base = match (self.utf8, self.esmtp) {
            (true, _) => "UTF8SMTP",
            (false, true) => "ESMTP",
            (false, false) => "SMTP",
        };
        let mut p = base.to_owned();
        if self.esmtp || self.utf8 {
            if self.tls {
                p.push('S');
            }
            if self.auth.is_some() {
                p.push('A');
            }
        }
        p
    }

    /// The header, folded over several lines, ending in CRLF.
    #[must_use]
    pub fn render(&self) -> String {
        let mut h = String::from("Received:");
        if !self.mask_src {
            let helo = self.helo.map(sanitize).unwrap_or_else(|| "unknown".into());
            let _ = write!(h, " from {helo}");
            match (self.rdns, self.src) {
                (Some(r), Some(ip)) => {
                    let _ = write!(h, " ({} [{ip}])", sanitize(r));
                }
                (None, Some(ip)) => {
                    let _ = write!(h, " ([{ip}])");
                }
                _ => {}
            }
            h.push_str("\r\n\t");
        } else {
            h.push(' ');
        }
        let _ = write!(
            h,
            "by {} (Petrel) with {}",
            sanitize(self.by),
            self.protocol()
        );
        if self.show_auth
            && let Some(user) = self.auth
        {
            let _ = write!(h, " (authenticated as {})", sanitize(user));
        }
        let _ = write!(h, " id {}", self.id);
        if let Some(rcpt) = self.rcpt {
            let _ = write!(h, "\r\n\tfor <{}>", sanitize(rcpt));
        }
        let _ = write!(h, ";\r\n\t{}\r\n", rfc5322(self.date));
        h
    }
}

/// Keeps client-supplied names from breaking the header: anything outside printable ASCII,
/// and characters that would end a comment or a clause, become `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .take(255)
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '(' | ')' | ';' | '[' | ']' | '\\') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Counts `Received:` headers in the header section of a message as it streams in.
#[derive(Clone, Debug, Default)]
pub struct HopCounter {
    hops: usize,
    line: Vec<u8>,
    in_body: bool,
}

impl HopCounter {
    /// A counter at the start of a message.
    #[must_use]
    pub fn new() -> HopCounter {
        HopCounter::default()
    }

    /// `Received:` headers counted so far.
    #[must_use]
    pub fn hops(&self) -> usize {
        self.hops
    }

    /// Feeds content (CRLF lines); stops looking once the header section has ended.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while !self.in_body && !chunk.is_empty() {
            let (line, rest, complete) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (&chunk[..=i], &chunk[i + 1..], true),
                None => (chunk, &[][..], false),
            };
            chunk = rest;
            // Only the first few bytes of a line decide; keep no more than that.
            if self.line.len() < 16 {
                let take = line.len().min(16 - self.line.len());
                self.line.extend_from_slice(&line[..take]);
            }
            if complete {
                self.end_line();
            }
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if line == b"\r\n" || line == b"\n" {
            self.in_body = true;
        } else if line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:") {
            self.hops += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_full_header() {
        let info = ReceivedInfo {
            helo: Some("client.example.org"),
            rdns: Some("mail.example.org"),
            src: Some("192.0.2.7".parse().unwrap()),
            by: "mx.example.net",
            esmtp: true,
            tls: true,
            auth: Some("alice"),
            show_auth: true,
            id: "deadbeef",
            rcpt: Some("bob@example.net"),
            date: Time::from_secs(1_700_000_000),
            ..ReceivedInfo::default()
        };
        assert_eq!(
            info.render(),
            "Received: from client.example.org (mail.example.org [192.0.2.7])\r\n\
             \tby mx.example.net (Petrel) with ESMTPSA (authenticated as alice) id deadbeef\r\n\
             \tfor <bob@example.net>;\r\n\
             \tTue, 14 Nov 2023 22:13:20 +0000\r\n"
        );
    }

    #[test]
    fn masks_and_sanitises() {
        let info = ReceivedInfo {
            helo: Some("evil)\r\nX-Injected: yes"),
            src: Some("192.0.2.7".parse().unwrap()),
            mask_src: true,
            by: "mx",
            id: "1",
            date: Time::ZERO,
            ..ReceivedInfo::default()
        };
        let h = info.render();
        assert!(h.starts_with("Received: by mx (Petrel) with SMTP id 1;"));
        let info = ReceivedInfo {
            mask_src: false,
            ..info
        };
        let h = info.render();
        assert!(
            h.contains("from evil___X-Injected:_yes ([192.0.2.7])"),
            "{h}"
        );
        assert_eq!(h.matches("\r\n").count(), 3);
    }

    #[test]
    fn counts_hops_in_headers_only() {
        let mut c = HopCounter::new();
        let msg = b"Received: a\r\nreceived: b\r\nSubject: x\r\n\r\nReceived: in the body\r\n";
        for piece in msg.chunks(3) {
            c.feed(piece);
        }
        assert_eq!(c.hops(), 2);
    }
}
