//! The message as local delivery writes it: trace headers, local line endings, mbox escaping.
//!
//! The queue holds messages with CRLF line endings, as they travel in SMTP. Files on a Unix
//! system end lines with LF, and every local delivery agent (mail.local, procmail, Dovecot's
//! deliver, OpenSMTPD's own) hands the mail over that way, so CRLF becomes LF here. A bare CR
//! inside a line is content and is kept.

use petrel_core::queue::date::DateTime;

use crate::clock::{Clock, SystemClock};

/// The lines of the header section of `message` (CRLF or LF), without their line endings. The
/// section ends at the first empty line, or at the first line that is neither a field nor a
/// continuation (as OpenSMTPD's loop check decides).
fn header_lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| {
            !line.is_empty() && (line.contains(&b':') || line[0] == b' ' || line[0] == b'\t')
        })
}

/// The values (first line only, trimmed) of the header fields called `name`.
fn header_values<'a>(message: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    header_lines(message).filter_map(move |line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let field = line[..colon].trim_ascii_end();
        field
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| line[colon + 1..].trim_ascii())
    })
}

/// True when the message is marked as spam by a filter (`X-Spam: yes`, or SpamAssassin's
/// `X-Spam-Flag: yes`), which `maildir junk` files into `.Junk`.
#[must_use]
pub fn is_spam(message: &[u8]) -> bool {
    header_values(message, "X-Spam")
        .chain(header_values(message, "X-Spam-Flag"))
        .any(|v| v.eq_ignore_ascii_case(b"yes"))
}

/// The address among `addresses` that a `Delivered-To:` field of the message already names: the
/// message has been delivered to it before and came back, a loop.
#[must_use]
pub fn delivered_before<'a>(message: &[u8], addresses: &[&'a str]) -> Option<&'a str> {
    header_values(message, "Delivered-To").find_map(|v| {
        addresses
            .iter()
            .find(|a| !a.is_empty() && v.eq_ignore_ascii_case(a.as_bytes()))
            .copied()
    })
}

/// Header values come from the network: never let one break the header block.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The trace fields prepended at final delivery: `Return-Path:` (RFC 5321 section 4.4; `<>` for
/// the null sender, so that filters can recognise bounces) and `Delivered-To:` (as OpenSMTPD,
/// Postfix and qmail add, and as the loop check reads).
#[must_use]
pub fn trace_headers(sender: &str, delivered_to: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{}>\nDelivered-To: {}\n",
        one_line(sender),
        one_line(delivered_to)
    )
    .into_bytes()
}

/// The message with CRLF line endings turned into LF.
#[must_use]
pub fn to_lf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    for line in message.split_inclusive(|&b| b == b'\n') {
        match line.strip_suffix(b"\r\n") {
            Some(text) => {
                out.extend_from_slice(text);
                out.push(b'\n');
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// The message as an mbox entry body: LF line endings, every line matching `>*From ` quoted with
/// one more `>` (mboxrd, so that readers can undo it exactly), a final newline if the message
/// lacked one, and the empty line that separates it from the next entry.
#[must_use]
pub fn mbox_body(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 2);
    for line in message.split_inclusive(|&b| b == b'\n') {
        let quoted = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
        if line[quoted..].starts_with(b"From ") {
            out.push(b'>');
        }
        match line.strip_suffix(b"\r\n") {
            Some(text) => {
                out.extend_from_slice(text);
                out.push(b'\n');
            }
            None => out.extend_from_slice(line),
        }
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// The `From ` line that starts an mbox entry: `From sender asctime-date`. The null sender is
/// written `MAILER-DAEMON` as mail.local does; the date is UTC (the daemon reads no time zone).
#[must_use]
pub fn mbox_from_line(sender: &str, now_secs: u64) -> Vec<u8> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Readers split the line at spaces: a sender must stay one word.
    let sender: String = if sender.is_empty() {
        "MAILER-DAEMON".into()
    } else {
        sender
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    };
    let d = DateTime::from_time(petrel_core::Time::from_secs(now_secs));
    let weekday = DAYS[((now_secs / 86_400) % 7) as usize];
    format!(
        "From {sender} {weekday} {} {:>2} {:02}:{:02}:{:02} {}\n",
        MONTHS[usize::from(d.month - 1)],
        d.day,
        d.hour,
        d.minute,
        d.second,
        d.year
    )
    .into_bytes()
}

/// Seconds since the epoch, from the daemon's clock.
pub(crate) fn now_secs() -> u64 {
    SystemClock.now().as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spam_marks_in_the_header_only() {
        assert!(is_spam(b"Subject: x\r\nx-spam: YES\r\n\r\nbody\r\n"));
        assert!(is_spam(b"X-Spam-Flag:  yes \r\n\r\n"));
        assert!(!is_spam(b"X-Spam: no\r\n\r\nX-Spam: yes\r\n"));
        assert!(!is_spam(b"Subject: x\r\n\r\n"));
    }

    #[test]
    fn loops() {
        let m = b"Delivered-To: Bob@Example.org\r\nSubject: x\r\n\r\nDelivered-To: a@b\r\n";
        assert_eq!(
            delivered_before(m, &["bob@example.org"]),
            Some("bob@example.org")
        );
        assert_eq!(delivered_before(m, &["a@b", ""]), None);
    }

    #[test]
    fn line_endings() {
        assert_eq!(to_lf(b"a\r\nb\rc\r\n\r\nd"), b"a\nb\rc\n\nd");
    }

    #[test]
    fn mboxrd_quoting() {
        let body = mbox_body(b"Subject: x\r\n\r\nFrom me\r\n>From you\r\nFromage\r\n>>From x");
        assert_eq!(
            body,
            b"Subject: x\n\n>From me\n>>From you\nFromage\n>>>From x\n\n"
        );
    }

    #[test]
    fn from_line() {
        // 2001-09-09 01:46:40 UTC was a Sunday.
        assert_eq!(
            mbox_from_line("", 1_000_000_000),
            b"From MAILER-DAEMON Sun Sep  9 01:46:40 2001\n"
        );
        assert!(mbox_from_line("a b@c", 0).starts_with(b"From a_b@c Thu Jan  1 "));
    }

    #[test]
    fn trace() {
        assert_eq!(
            trace_headers("", "bob@example.org"),
            b"Return-Path: <>\nDelivered-To: bob@example.org\n"
        );
        assert_eq!(
            trace_headers("a\r\nX: y", "b"),
            b"Return-Path: <a  X: y>\nDelivered-To: b\n"
        );
    }
}
