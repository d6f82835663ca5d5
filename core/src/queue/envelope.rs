//! The queue's envelopes: one per (message, recipient), with everything needed to route,
//! deliver, retry and report it, and a plain-text serialisation that the store writes to disk.
//!
//! The text form is versioned `key: value` lines, so an operator can read a queued envelope
//! with `cat`, and a future version can add fields without breaking old queues.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

use crate::smtp::{Body, Notify, Ret};
use crate::time::Time;

/// A message in the queue: 32 bits, shown as 8 hex digits (as in OpenSMTPD's report events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId(pub u32);

/// An envelope: the message id in the upper 32 bits, an index below; 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvelopeId(pub u64);

impl EnvelopeId {
    /// The `n`-th envelope of message `msg`.
    #[must_use]
    pub fn new(msg: MsgId, n: u32) -> EnvelopeId {
        EnvelopeId(u64::from(msg.0) << 32 | u64::from(n))
    }

    /// The message this envelope belongs to.
    #[must_use]
    pub fn msg(self) -> MsgId {
        MsgId((self.0 >> 32) as u32)
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for MsgId {
    type Err = EnvelopeError;
    fn from_str(s: &str) -> Result<MsgId, EnvelopeError> {
        if s.len() != 8 {
            return Err(EnvelopeError::BadValue("msgid"));
        }
        u32::from_str_radix(s, 16)
            .map(MsgId)
            .map_err(|_| EnvelopeError::BadValue("msgid"))
    }
}

impl FromStr for EnvelopeId {
    type Err = EnvelopeError;
    fn from_str(s: &str) -> Result<EnvelopeId, EnvelopeError> {
        if s.len() != 16 {
            return Err(EnvelopeError::BadValue("id"));
        }
        u64::from_str_radix(s, 16)
            .map(EnvelopeId)
            .map_err(|_| EnvelopeError::BadValue("id"))
    }
}

/// Facts about the session a message arrived in, kept so that match rules can be evaluated
/// again when the configuration changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Submitted locally (the local socket or the sendmail entry point), or produced by the
    /// daemon itself (alias expansion, bounces): matched as `from local`.
    pub local: bool,
    /// The client's address.
    pub src: Option<IpAddr>,
    /// The client's reverse DNS name.
    pub rdns: Option<String>,
    /// The HELO/EHLO name.
    pub helo: Option<String>,
    /// The authenticated user.
    pub auth: Option<String>,
    /// The session used TLS.
    pub tls: bool,
    /// The listener's tag.
    pub tag: Option<String>,
}

/// One recipient of one queued message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Its id.
    pub id: EnvelopeId,
    /// When the message was accepted.
    pub created: Time,
    /// When the queue gives up and bounces.
    pub expires: Time,
    /// The envelope sender, without brackets; empty for the null sender.
    pub sender: String,
    /// The recipient as the client gave it.
    pub rcpt: String,
    /// Where the message now goes (differs from `rcpt` after alias or virtual expansion).
    pub dest: String,
    /// The action chosen by the match rules; `None` until routed.
    pub action: Option<String>,
    /// What the action delivers for a local action (a mailbox, a file, a command and the
    /// identity it runs with), in the shell's own encoding; `None` for relays.
    pub target: Option<String>,
    /// The session the message came from.
    pub origin: Origin,
    /// BODY parameter of MAIL.
    pub body: Option<Body>,
    /// SMTPUTF8 was given.
    pub smtputf8: bool,
    /// RET parameter (DSN).
    pub ret: Option<Ret>,
    /// ENVID parameter (DSN).
    pub envid: Option<String>,
    /// NOTIFY parameter (DSN).
    pub notify: Option<Notify>,
    /// ORCPT parameter (DSN): address type and address.
    pub orcpt: Option<(String, String)>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the last attempt was made.
    pub last_try: Option<Time>,
    /// When the next attempt is due.
    pub next_try: Time,
    /// The last failure, in words (usually the remote reply).
    pub last_error: Option<String>,
    /// How many delay notices have been sent.
    pub warnings: u8,
}

impl Envelope {
    /// A fresh envelope for `rcpt`, due at once.
    #[must_use]
    pub fn new(id: EnvelopeId, sender: &str, rcpt: &str, created: Time, expires: Time) -> Envelope {
        Envelope {
            id,
            created,
            expires,
            sender: sender.to_owned(),
            rcpt: rcpt.to_owned(),
            dest: rcpt.to_owned(),
            action: None,
            target: None,
            origin: Origin::default(),
            body: None,
            smtputf8: false,
            ret: None,
            envid: None,
            notify: None,
            orcpt: None,
            attempts: 0,
            last_try: None,
            next_try: created,
            last_error: None,
            warnings: 0,
        }
    }

    /// The text form written to disk.
    #[must_use]
    pub fn serialize(&self) -> String {
        let mut s = String::with_capacity(512);
        let mut put = |k: &str, v: &str| {
            let _ = writeln!(s, "{k}: {}", escape(v));
        };
        put("version", "1");
        put("id", &self.id.to_string());
        put("created", &self.created.as_millis().to_string());
        put("expires", &self.expires.as_millis().to_string());
        put("sender", &self.sender);
        put("rcpt", &self.rcpt);
        put("dest", &self.dest);
        if let Some(a) = &self.action {
            put("action", a);
        }
        if let Some(t) = &self.target {
            put("target", t);
        }
        let o = &self.origin;
        if o.local {
            put("origin-local", "yes");
        }
        if let Some(src) = o.src {
            put("origin-src", &src.to_string());
        }
        if let Some(v) = &o.rdns {
            put("origin-rdns", v);
        }
        if let Some(v) = &o.helo {
            put("origin-helo", v);
        }
        if let Some(v) = &o.auth {
            put("origin-auth", v);
        }
        if o.tls {
            put("origin-tls", "yes");
        }
        if let Some(v) = &o.tag {
            put("origin-tag", v);
        }
        if let Some(b) = self.body {
            put(
                "body",
                match b {
                    Body::SevenBit => "7BIT",
                    Body::EightBitMime => "8BITMIME",
                    Body::BinaryMime => "BINARYMIME",
                },
            );
        }
        if self.smtputf8 {
            put("smtputf8", "yes");
        }
        if let Some(r) = self.ret {
            put("ret", if r == Ret::Full { "FULL" } else { "HDRS" });
        }
        if let Some(v) = &self.envid {
            put("envid", v);
        }
        if let Some(n) = self.notify {
            put("notify", &n.to_string());
        }
        if let Some((t, a)) = &self.orcpt {
            put("orcpt", &format!("{t};{a}"));
        }
        put("attempts", &self.attempts.to_string());
        if let Some(t) = self.last_try {
            put("last-try", &t.as_millis().to_string());
        }
        put("next-try", &self.next_try.as_millis().to_string());
        if let Some(v) = &self.last_error {
            put("last-error", v);
        }
        put("warnings", &self.warnings.to_string());
        s
    }

    /// Reads the text form back. Unknown keys are ignored (written by a newer version).
    pub fn parse(text: &str) -> Result<Envelope, EnvelopeError> {
        let mut e = Envelope::new(EnvelopeId(0), "", "", Time::ZERO, Time::ZERO);
        let mut seen_id = false;
        let mut seen_version = false;
        for line in text.lines() {
            let (key, raw) = line.split_once(": ").ok_or(EnvelopeError::BadLine)?;
            let v = unescape(raw)?;
            let time = |name: &'static str| {
                v.parse::<u64>()
                    .map(Time::from_millis)
                    .map_err(|_| EnvelopeError::BadValue(name))
            };
            let yes = v == "yes";
            match key {
                "version" => {
                    if v != "1" {
                        return Err(EnvelopeError::Version(v));
                    }
                    seen_version = true;
                }
                "id" => {
                    e.id = v.parse()?;
                    seen_id = true;
                }
                "created" => e.created = time("created")?,
                "expires" => e.expires = time("expires")?,
                "sender" => e.sender = v,
                "rcpt" => e.rcpt = v,
                "dest" => e.dest = v,
                "action" => e.action = Some(v),
                "target" => e.target = Some(v),
                "origin-local" => e.origin.local = yes,
                "origin-src" => {
                    e.origin.src = Some(
                        v.parse()
                            .map_err(|_| EnvelopeError::BadValue("origin-src"))?,
                    )
                }
                "origin-rdns" => e.origin.rdns = Some(v),
                "origin-helo" => e.origin.helo = Some(v),
                "origin-auth" => e.origin.auth = Some(v),
                "origin-tls" => e.origin.tls = yes,
                "origin-tag" => e.origin.tag = Some(v),
                "body" => {
                    e.body = Some(match v.as_str() {
                        "7BIT" => Body::SevenBit,
                        "8BITMIME" => Body::EightBitMime,
                        "BINARYMIME" => Body::BinaryMime,
                        _ => return Err(EnvelopeError::BadValue("body")),
                    });
                }
                "smtputf8" => e.smtputf8 = yes,
                "ret" => {
                    e.ret = Some(match v.as_str() {
                        "FULL" => Ret::Full,
                        "HDRS" => Ret::Headers,
                        _ => return Err(EnvelopeError::BadValue("ret")),
                    });
                }
                "envid" => e.envid = Some(v),
                "notify" => {
                    let params = crate::smtp::RcptParams::parse(&format!("NOTIFY={v}"))
                        .map_err(|_| EnvelopeError::BadValue("notify"))?;
                    e.notify = params.notify;
                }
                "orcpt" => {
                    let (t, a) = v.split_once(';').ok_or(EnvelopeError::BadValue("orcpt"))?;
                    e.orcpt = Some((t.to_owned(), a.to_owned()));
                }
                "attempts" => {
                    e.attempts = v.parse().map_err(|_| EnvelopeError::BadValue("attempts"))?
                }
                "last-try" => e.last_try = Some(time("last-try")?),
                "next-try" => e.next_try = time("next-try")?,
                "last-error" => e.last_error = Some(v),
                "warnings" => {
                    e.warnings = v.parse().map_err(|_| EnvelopeError::BadValue("warnings"))?
                }
                _ => {}
            }
        }
        if !seen_version || !seen_id {
            return Err(EnvelopeError::Incomplete);
        }
        Ok(e)
    }
}

/// Why an envelope file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// A line is not `key: value`.
    #[error("malformed line")]
    BadLine,
    /// A value cannot be parsed.
    #[error("invalid value for {0}")]
    BadValue(&'static str),
    /// Written by an unknown format version.
    #[error("unsupported envelope version {0}")]
    Version(String),
    /// The version or id is missing (a truncated file).
    #[error("incomplete envelope")]
    Incomplete,
    /// A bad escape sequence.
    #[error("invalid escape")]
    BadEscape,
}

/// Values may hold any text (remote replies); newlines and backslashes are escaped so each
/// value stays on one line.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(v: &str) -> Result<String, EnvelopeError> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            _ => return Err(EnvelopeError::BadEscape),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_every_field() {
        let mut e = Envelope::new(
            EnvelopeId::new(MsgId(0xdead_beef), 3),
            "alice@example.org",
            "bob@example.net",
            Time::from_millis(1_700_000_000_123),
            Time::from_millis(1_700_345_600_123),
        );
        e.dest = "bob@relay.example".into();
        e.action = Some("outbound".into());
        e.target = Some("mailbox\tbob\t-".into());
        e.origin = Origin {
            local: false,
            src: Some("2001:db8::1".parse().unwrap()),
            rdns: Some("mail.example.org".into()),
            helo: Some("mail.example.org".into()),
            auth: Some("alice".into()),
            tls: true,
            tag: Some("SUBMIT".into()),
        };
        e.body = Some(Body::EightBitMime);
        e.smtputf8 = true;
        e.ret = Some(Ret::Headers);
        e.envid = Some("QQ1".into());
        e.notify = Some(Notify {
            never: false,
            success: true,
            failure: true,
            delay: false,
        });
        e.orcpt = Some(("rfc822".into(), "bob+tag@example.net".into()));
        e.attempts = 4;
        e.last_try = Some(Time::from_millis(1_700_000_500_000));
        e.next_try = Time::from_millis(1_700_001_000_000);
        e.last_error = Some("451 4.7.1 greylisted\nsecond line \\ backslash".into());
        e.warnings = 1;
        let text = e.serialize();
        assert!(text.starts_with("version: 1\nid: deadbeef00000003\n"));
        assert_eq!(Envelope::parse(&text).unwrap(), e);
        assert_eq!(e.id.msg(), MsgId(0xdead_beef));
    }

    #[test]
    fn truncated_or_garbled_files_are_refused() {
        let e = Envelope::new(EnvelopeId(1), "", "x@y", Time::ZERO, Time::ZERO);
        let text = e.serialize();
        assert_eq!(Envelope::parse(""), Err(EnvelopeError::Incomplete));
        assert_eq!(
            Envelope::parse("version: 1\n"),
            Err(EnvelopeError::Incomplete)
        );
        assert_eq!(
            Envelope::parse(&text.replace("version: 1", "version: 9")),
            Err(EnvelopeError::Version("9".into()))
        );
        assert_eq!(Envelope::parse("garbage"), Err(EnvelopeError::BadLine));
        assert_eq!(
            Envelope::parse(&format!("{text}future-key: x\n")).unwrap(),
            e
        );
    }
}
