//! Mailboxes, domains and paths as RFC 5321 section 4.1.2 defines them, with RFC 6531
//! (SMTPUTF8) internationalised local parts and domains where the caller allows them.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// Longest local part accepted. RFC 5321 asks for at least 64 octets and advises accepting
/// more; SRS-rewritten addresses routinely exceed 64, so the limit is the one OpenSMTPD uses.
pub const MAX_LOCAL_PART: usize = 255;
/// Longest domain accepted (RFC 5321 section 4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;
/// Longest domain label (RFC 1035).
pub const MAX_LABEL: usize = 63;

/// How strictly paths are parsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathOptions {
    /// Allow UTF-8 in local parts and domains (the transaction carries SMTPUTF8).
    pub utf8: bool,
    /// Accept a path without its angle brackets (`MAIL FROM:user@example.org`).
    pub lenient: bool,
}

/// The host part of a mailbox: a domain name or an address literal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, as written (domains compare case-insensitively: see [`Host::eq_ignore_case`]).
    Domain(String),
    /// An address literal in square brackets.
    Literal(AddressLiteral),
}

/// An address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, `[tag:content]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddressLiteral {
    /// `[a.b.c.d]`
    V4(Ipv4Addr),
    /// `[IPv6:…]`
    V6(Ipv6Addr),
    /// `[tag:content]`: a standardized tag other than IPv6.
    General {
        /// The tag (an Ldh-str).
        tag: String,
        /// The content (dcontent characters).
        content: String,
    },
}

impl Host {
    /// The domain name, if this host is one.
    #[must_use]
    pub fn domain(&self) -> Option<&str> {
        match self {
            Host::Domain(d) => Some(d),
            Host::Literal(_) => None,
        }
    }

    /// Compares with a domain name, ignoring ASCII case.
    #[must_use]
    pub fn eq_ignore_case(&self, domain: &str) -> bool {
        matches!(self, Host::Domain(d) if d.eq_ignore_ascii_case(domain))
    }

    /// Parses a domain or an address literal, the argument of HELO/EHLO and the part of a
    /// mailbox after the `@`.
    pub fn parse(s: &str, utf8: bool) -> Result<Host, PathError> {
        if s.starts_with('[') {
            return parse_literal(s).map(Host::Literal);
        }
        check_domain(s, utf8)?;
        Ok(Host::Domain(s.to_owned()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Literal(lit) => fmt::Display::fmt(lit, f),
        }
    }
}

impl fmt::Display for AddressLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressLiteral::V4(a) => write!(f, "[{a}]"),
            AddressLiteral::V6(a) => write!(f, "[IPv6:{a}]"),
            AddressLiteral::General { tag, content } => write!(f, "[{tag}:{content}]"),
        }
    }
}

/// A mailbox: `local-part@host`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// The local part exactly as written on the wire: a dot-string, or a quoted string
    /// including its quotes and backslash escapes. It is case-sensitive in principle.
    pub local: String,
    /// The host.
    pub host: Host,
}

impl Mailbox {
    /// Parses `local@host` (no angle brackets).
    pub fn parse(s: &str, utf8: bool) -> Result<Mailbox, PathError> {
        let at = local_part_end(s)?;
        let (local, host) = (&s[..at], &s[at + 1..]);
        check_local_part(local, utf8)?;
        Ok(Mailbox {
            local: local.to_owned(),
            host: Host::parse(host, utf8)?,
        })
    }

    /// The local part with quoting removed (`"a b"` becomes `a b`).
    #[must_use]
    pub fn local_unquoted(&self) -> String {
        unquote(&self.local)
    }

    /// The domain, if the host is a domain name.
    #[must_use]
    pub fn domain(&self) -> Option<&str> {
        self.host.domain()
    }

    /// True when the address contains non-ASCII characters (needs SMTPUTF8 to be relayed).
    #[must_use]
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || self.host.domain().is_some_and(|d| !d.is_ascii())
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.host)
    }
}

/// The argument of MAIL FROM: a mailbox or the null path `<>` used by bounces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`
    Null,
    /// `<mailbox>`
    Mailbox(Mailbox),
}

impl ReversePath {
    /// The mailbox, unless this is the null path.
    #[must_use]
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ReversePath::Null => None,
            ReversePath::Mailbox(m) => Some(m),
        }
    }
}

impl fmt::Display for ReversePath {
    /// The path with its angle brackets, as on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// The argument of RCPT TO: a mailbox or the bare `<postmaster>` that every server must accept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ForwardPath {
    /// `<postmaster>` without a domain (RFC 5321 section 4.5.1), as written (case preserved).
    Postmaster(String),
    /// `<mailbox>`
    Mailbox(Mailbox),
}

impl ForwardPath {
    /// The mailbox, unless this is the bare postmaster.
    #[must_use]
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ForwardPath::Postmaster(_) => None,
            ForwardPath::Mailbox(m) => Some(m),
        }
    }
}

impl fmt::Display for ForwardPath {
    /// The path with its angle brackets, as on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster(p) => write!(f, "<{p}>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// Why a path, mailbox or domain was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not follow the grammar; the text says where.
    #[error("{0}")]
    Syntax(&'static str),
    /// Non-ASCII characters without SMTPUTF8.
    #[error("non-ASCII address without SMTPUTF8")]
    NonAscii,
    /// A part is longer than the limit.
    #[error("{0} too long")]
    TooLong(&'static str),
}

/// Parses a reverse path at the start of `s`; returns the path and what follows it.
pub fn parse_reverse_path(s: &str, opts: PathOptions) -> Result<(ReversePath, &str), PathError> {
    let (inner, rest) = split_path(s, opts)?;
    if inner.is_empty() {
        return Ok((ReversePath::Null, rest));
    }
    let mailbox = Mailbox::parse(strip_source_route(inner)?, opts.utf8)?;
    Ok((ReversePath::Mailbox(mailbox), rest))
}

/// Parses a forward path at the start of `s`; returns the path and what follows it.
pub fn parse_forward_path(s: &str, opts: PathOptions) -> Result<(ForwardPath, &str), PathError> {
    let (inner, rest) = split_path(s, opts)?;
    if inner.eq_ignore_ascii_case("postmaster") {
        return Ok((ForwardPath::Postmaster(inner.to_owned()), rest));
    }
    if inner.is_empty() {
        return Err(PathError::Syntax("empty recipient"));
    }
    let mailbox = Mailbox::parse(strip_source_route(inner)?, opts.utf8)?;
    Ok((ForwardPath::Mailbox(mailbox), rest))
}

/// Splits `<inner> rest` (or, leniently, `inner rest`), honouring quoted local parts that may
/// contain `>` or spaces.
fn split_path(s: &str, opts: PathOptions) -> Result<(&str, &str), PathError> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'<') {
        if !opts.lenient {
            return Err(PathError::Syntax("path must be enclosed in <>"));
        }
        let end = s.find(' ').unwrap_or(s.len());
        return Ok((&s[..end], &s[end..]));
    }
    // A quoted local part may hold '>' and spaces; so may an address literal, whose dcontent
    // also allows '"' (but never '[', ']' or '\\', so brackets nest unambiguously).
    let mut quoted = false;
    let mut literal = false;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' if !literal => quoted = !quoted,
            b'[' if !quoted => literal = true,
            b']' if !quoted => literal = false,
            b'>' if !quoted && !literal => {
                let rest = &s[i + 1..];
                if !rest.is_empty() && !rest.starts_with(' ') {
                    return Err(PathError::Syntax("garbage after the path"));
                }
                return Ok((&s[1..i], rest));
            }
            _ => {}
        }
        i += 1;
    }
    Err(PathError::Syntax("missing > at the end of the path"))
}

/// Drops an RFC 5321 source route (`@a,@b:`), which must be accepted and ignored.
fn strip_source_route(inner: &str) -> Result<&str, PathError> {
    if !inner.starts_with('@') {
        return Ok(inner);
    }
    let colon = inner
        .find(':')
        .ok_or(PathError::Syntax("bad source route"))?;
    for hop in inner[..colon].split(',') {
        let domain = hop
            .strip_prefix('@')
            .ok_or(PathError::Syntax("bad source route"))?;
        Host::parse(domain, true).map_err(|_| PathError::Syntax("bad source route"))?;
    }
    Ok(&inner[colon + 1..])
}

/// Index of the `@` that ends the local part (the first `@` outside a quoted string).
fn local_part_end(s: &str) -> Result<usize, PathError> {
    let bytes = s.as_bytes();
    if bytes.first() == Some(&b'"') {
        let mut i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    return if bytes.get(i + 1) == Some(&b'@') {
                        Ok(i + 1)
                    } else {
                        Err(PathError::Syntax("expected @ after the quoted local part"))
                    };
                }
                _ => i += 1,
            }
        }
        return Err(PathError::Syntax("unterminated quoted local part"));
    }
    // A Dot-string holds no '@', while a general address literal may: the first '@' is the one.
    memchr::memchr(b'@', bytes).ok_or(PathError::Syntax("missing @ in the address"))
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn check_local_part(local: &str, utf8: bool) -> Result<(), PathError> {
    if local.is_empty() {
        return Err(PathError::Syntax("empty local part"));
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(PathError::TooLong("local part"));
    }
    if !utf8 && !local.is_ascii() {
        return Err(PathError::NonAscii);
    }
    let bytes = local.as_bytes();
    if bytes[0] == b'"' {
        if bytes.len() < 2 || bytes[bytes.len() - 1] != b'"' {
            return Err(PathError::Syntax("unterminated quoted local part"));
        }
        let mut i = 1;
        while i < bytes.len() - 1 {
            match bytes[i] {
                b'\\' => {
                    let next = *bytes.get(i + 1).filter(|_| i + 1 < bytes.len() - 1).ok_or(
                        PathError::Syntax("backslash at the end of the quoted local part"),
                    )?;
                    if !(32..=126).contains(&next) {
                        return Err(PathError::Syntax("bad quoted-pair in local part"));
                    }
                    i += 2;
                }
                b'"' => return Err(PathError::Syntax("stray quote in local part")),
                32..=126 | 0x80.. => i += 1,
                _ => return Err(PathError::Syntax("control character in local part")),
            }
        }
        return Ok(());
    }
    for atom in local.split('.') {
        if atom.is_empty() {
            return Err(PathError::Syntax(
                "empty atom in local part (misplaced dot)",
            ));
        }
        if !atom.bytes().all(|b| is_atext(b) || b >= 0x80) {
            return Err(PathError::Syntax("invalid character in local part"));
        }
    }
    Ok(())
}

fn check_domain(domain: &str, utf8: bool) -> Result<(), PathError> {
    if domain.is_empty() {
        return Err(PathError::Syntax("empty domain"));
    }
    if domain.len() > MAX_DOMAIN {
        return Err(PathError::TooLong("domain"));
    }
    if !utf8 && !domain.is_ascii() {
        return Err(PathError::NonAscii);
    }
    for label in domain.split('.') {
        let bytes = label.as_bytes();
        if bytes.is_empty() {
            return Err(PathError::Syntax("empty label in domain"));
        }
        if bytes.len() > MAX_LABEL {
            return Err(PathError::TooLong("domain label"));
        }
        if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
            return Err(PathError::Syntax(
                "domain label starts or ends with a hyphen",
            ));
        }
        // Underscores are not legal in host names, but real clients use them in EHLO names and
        // sender domains often enough that refusing them would refuse legitimate mail.
        if !bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b >= 0x80)
        {
            return Err(PathError::Syntax("invalid character in domain"));
        }
    }
    Ok(())
}

fn parse_literal(s: &str) -> Result<AddressLiteral, PathError> {
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or(PathError::Syntax("unterminated address literal"))?;
    if let Some(v6) = inner.get(..5).filter(|p| p.eq_ignore_ascii_case("IPv6:")) {
        let _ = v6;
        return inner[5..]
            .parse::<Ipv6Addr>()
            .map(AddressLiteral::V6)
            .map_err(|_| PathError::Syntax("bad IPv6 address literal"));
    }
    if let Some(v4) = parse_ipv4_literal(inner) {
        return Ok(AddressLiteral::V4(v4));
    }
    let Some(colon) = inner.find(':') else {
        return Err(PathError::Syntax("bad address literal"));
    };
    let (tag, content) = (&inner[..colon], &inner[colon + 1..]);
    let tag_ok = !tag.is_empty()
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !tag.ends_with('-');
    let content_ok = !content.is_empty()
        && content
            .bytes()
            .all(|b| (33..=90).contains(&b) || (94..=126).contains(&b));
    if !tag_ok || !content_ok {
        return Err(PathError::Syntax("bad address literal"));
    }
    Ok(AddressLiteral::General {
        tag: tag.to_owned(),
        content: content.to_owned(),
    })
}

fn unquote(local: &str) -> String {
    let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        return local.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// RFC 5321 section 4.1.3: `Snum = 1*3DIGIT`, decimal, leading zeros allowed.
fn parse_ipv4_literal(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if !(1..=3).contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
}
