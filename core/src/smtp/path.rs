//! Mailboxes, domains and paths as RFC 5321 section 4.1.2 defines them, with RFC 6531
//! (SMTPUTF8) internationalised local parts and domains where the caller allows them.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::scan::{self, ATEXT, LDH, span};

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

/// The fast path of [`parse_reverse_path`] (see [`scan`](super::scan)): `<>` or an ASCII
/// `<local@host>`, then nothing or a space; `None` when unsure.
#[inline]
pub(crate) fn reverse_path_fast(s: &[u8]) -> Option<(ReversePath, &[u8])> {
    let (path, rest) = match s {
        [b'<', b'>', rest @ ..] => (ReversePath::Null, rest),
        [b'<', inner @ ..] => {
            let (mailbox, rest) = mailbox_fast(inner)?;
            (ReversePath::Mailbox(mailbox), rest)
        }
        _ => return None,
    };
    Some((path, after_path(rest)?))
}

/// The fast path of [`parse_forward_path`]: `<postmaster>` (any case) or an ASCII
/// `<local@host>`, then nothing or a space; `None` when unsure.
#[inline]
pub(crate) fn forward_path_fast(s: &[u8]) -> Option<(ForwardPath, &[u8])> {
    let [b'<', inner @ ..] = s else {
        return None;
    };
    let (path, rest) = match inner.split_at_checked(10) {
        Some((name, [b'>', rest @ ..])) if name.eq_ignore_ascii_case(b"postmaster") => {
            (ForwardPath::Postmaster(scan::string(name)?), rest)
        }
        _ => {
            let (mailbox, rest) = mailbox_fast(inner)?;
            (ForwardPath::Mailbox(mailbox), rest)
        }
    };
    Some((path, after_path(rest)?))
}

/// What may follow a path: nothing, or a space before the parameters.
#[inline]
fn after_path(rest: &[u8]) -> Option<&[u8]> {
    matches!(rest.first(), None | Some(b' ')).then_some(rest)
}

/// `local@host>` at the start of `s`, where the local part is an ASCII Dot-string and the host
/// an ASCII domain or an IPv4 literal: one pass that finds the `@` and the `>` while checking
/// the atoms and labels on the way. What it accepts, the general path has no other reading
/// of: no quote, backslash or bracket before the `@`, none but the literal's after it.
/// Returns the mailbox and what follows the `>`.
#[inline]
fn mailbox_fast(s: &[u8]) -> Option<(Mailbox, &[u8])> {
    let mut i = 0;
    loop {
        let atom = span(&s[i..], ATEXT);
        if atom == 0 {
            return None;
        }
        i += atom;
        match s.get(i) {
            Some(b'.') => i += 1,
            Some(b'@') => break,
            _ => return None,
        }
    }
    let at = i;
    if at > MAX_LOCAL_PART {
        return None;
    }
    let host_start = at + 1;
    let (literal, end) = if s.get(host_start) == Some(&b'[') {
        let close = host_start + 1 + s.get(host_start + 1..)?.iter().position(|&b| b == b']')?;
        let addr = scan::ipv4(&s[host_start + 1..close])?;
        (Some(AddressLiteral::V4(addr)), close + 1)
    } else {
        let mut j = host_start;
        loop {
            let label = span(&s[j..], LDH);
            if label == 0 || label > MAX_LABEL || s[j] == b'-' || s[j + label - 1] == b'-' {
                return None;
            }
            j += label;
            match s.get(j) {
                Some(b'.') => j += 1,
                Some(b'>') => break,
                _ => return None,
            }
        }
        if j - host_start > MAX_DOMAIN {
            return None;
        }
        (None, j)
    };
    if s.get(end) != Some(&b'>') {
        return None;
    }
    // One UTF-8 validation for both strings.
    let text = scan::text(&s[..end])?;
    let host = match literal {
        Some(literal) => Host::Literal(literal),
        None => Host::Domain(text.get(host_start..)?.to_owned()),
    };
    let local = text.get(..at)?.to_owned();
    Some((Mailbox { local, host }, &s[end + 1..]))
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
    // The usual case in one pass; anything else is checked (and refused) below, in order.
    if scan::is_ascii_dot_string(local.as_bytes()) {
        return Ok(());
    }
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
    // The usual case in one pass, without splitting; anything else is checked (and refused)
    // below, in order.
    if scan::is_ascii_domain(domain.as_bytes()) {
        return Ok(());
    }
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

/// RFC 5321 section 4.1.3: `IPv4-address-literal = Snum 3("." Snum)`, `Snum = 1*3DIGIT`
/// (0 to 255, in decimal: `096` is 96, leading zeros allowed, never octal).
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

fn parse_literal(s: &str) -> Result<AddressLiteral, PathError> {
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or(PathError::Syntax("unterminated address literal"))?;
    // A dotted quad, the usual literal, without the general address parser. (Nothing starting
    // with the IPv6 tag is one, so the order of the two checks does not matter.)
    if let Some(v4) = scan::ipv4(inner.as_bytes()) {
        return Ok(AddressLiteral::V4(v4));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: PathOptions = PathOptions {
        utf8: false,
        lenient: false,
    };

    fn rev(s: &str) -> Result<ReversePath, PathError> {
        parse_reverse_path(s, STRICT).map(|(p, rest)| {
            assert_eq!(rest, "");
            p
        })
    }

    fn fwd(s: &str, opts: PathOptions) -> Result<ForwardPath, PathError> {
        parse_forward_path(s, opts).map(|(p, _)| p)
    }

    #[test]
    fn dot_atom_and_quoted_local_parts() {
        let p = rev("<alice.smith+tag@example.org>").unwrap();
        assert_eq!(p.mailbox().unwrap().local, "alice.smith+tag");
        assert_eq!(p.to_string(), "<alice.smith+tag@example.org>");
        let p = rev(r#"<"john \"jd\" doe>x"@example.org>"#).unwrap();
        let m = p.mailbox().unwrap();
        assert_eq!(m.local, r#""john \"jd\" doe>x""#);
        assert_eq!(m.local_unquoted(), r#"john "jd" doe>x"#);
        assert!(rev("<.alice@example.org>").is_err());
        assert!(rev("<alice.@example.org>").is_err());
        assert!(rev("<al..ice@example.org>").is_err());
        assert!(rev("<al(ice@example.org>").is_err());
    }

    #[test]
    fn null_postmaster_and_source_routes() {
        assert_eq!(rev("<>").unwrap(), ReversePath::Null);
        assert_eq!(
            fwd("<Postmaster>", STRICT).unwrap(),
            ForwardPath::Postmaster("Postmaster".into())
        );
        assert!(fwd("<>", STRICT).is_err());
        let p = fwd("<@relay.example,@other.example:bob@example.org>", STRICT).unwrap();
        assert_eq!(p.to_string(), "<bob@example.org>");
        assert!(fwd("<@relay.example:bob>", STRICT).is_err());
        assert!(fwd("<@-bad:bob@example.org>", STRICT).is_err());
    }

    #[test]
    fn address_literals() {
        let m = Mailbox::parse("a@[192.0.2.1]", false).unwrap();
        assert_eq!(
            m.host,
            Host::Literal(AddressLiteral::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        let m = Mailbox::parse("a@[IPv6:2001:db8::1]", false).unwrap();
        assert_eq!(m.to_string(), "a@[IPv6:2001:db8::1]");
        let m = Mailbox::parse("a@[x-tag:some-thing]", false).unwrap();
        assert!(matches!(
            m.host,
            Host::Literal(AddressLiteral::General { .. })
        ));
        assert!(Mailbox::parse("a@[300.1.1.1]", false).is_err());
        // Snum is 1*3DIGIT: leading zeros are decimal, and the address prints without them.
        let h = Host::parse("[096.000.02.1]", false).unwrap();
        assert_eq!(
            h,
            Host::Literal(AddressLiteral::V4(Ipv4Addr::new(96, 0, 2, 1)))
        );
        assert_eq!(h.to_string(), "[96.0.2.1]");
        for bad in [
            "[0096.0.2.1]",
            "[1.2.3]",
            "[1.2.3.4.5]",
            "[1..2.3]",
            "[+1.2.3.4]",
        ] {
            assert!(Host::parse(bad, false).is_err(), "{bad}");
        }
        assert!(Mailbox::parse("a@[IPv6:zz]", false).is_err());
        assert!(Mailbox::parse("a@[192.0.2.1", false).is_err());
    }

    #[test]
    fn domains() {
        assert!(Mailbox::parse("a@-bad.example", false).is_err());
        assert!(Mailbox::parse("a@bad-.example", false).is_err());
        assert!(Mailbox::parse("a@ex..ample", false).is_err());
        assert!(Mailbox::parse("a@", false).is_err());
        assert!(Mailbox::parse("a@my_host.example", false).is_ok());
        let long_label = "x".repeat(64);
        assert_eq!(
            Mailbox::parse(&format!("a@{long_label}.org"), false),
            Err(PathError::TooLong("domain label"))
        );
        assert!(
            Host::parse("EXAMPLE.org", false)
                .unwrap()
                .eq_ignore_case("example.ORG")
        );
    }

    #[test]
    fn utf8_only_with_smtputf8() {
        assert_eq!(rev("<jösé@example.org>"), Err(PathError::NonAscii));
        assert_eq!(rev("<jose@exämple.org>"), Err(PathError::NonAscii));
        let utf8 = PathOptions {
            utf8: true,
            lenient: false,
        };
        let p = fwd("<jösé@exämple.org>", utf8).unwrap();
        assert!(p.mailbox().unwrap().is_utf8());
    }

    #[test]
    fn brackets_required_unless_lenient() {
        assert!(rev("alice@example.org").is_err());
        let lenient = PathOptions {
            utf8: false,
            lenient: true,
        };
        let (p, rest) = parse_reverse_path("alice@example.org SIZE=10", lenient).unwrap();
        assert_eq!(p.to_string(), "<alice@example.org>");
        assert_eq!(rest, " SIZE=10");
        assert!(rev("<alice@example.org").is_err());
        assert!(rev("<alice@example.org>x").is_err());
    }

    #[test]
    fn length_limits() {
        let local = "l".repeat(MAX_LOCAL_PART + 1);
        assert_eq!(
            Mailbox::parse(&format!("{local}@x.org"), false),
            Err(PathError::TooLong("local part"))
        );
        let local = "l".repeat(MAX_LOCAL_PART);
        assert!(Mailbox::parse(&format!("{local}@x.org"), false).is_ok());
    }
}
