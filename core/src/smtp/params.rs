//! ESMTP parameters of MAIL and RCPT: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8
//! (RFC 6531), RET, ENVID, NOTIFY and ORCPT (RFC 3461), AUTH= (RFC 4954), and the xtext
//! encoding they use.

use std::fmt::{self, Write as _};

use thiserror::Error;

use super::scan::{DIGIT, KEYWORD, Word, XTEXT, load8, skip_spaces, span, string, text};

/// The BODY parameter of MAIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, arbitrary::Arbitrary)]
pub enum Body {
    /// `BODY=7BIT`
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152)
    EightBitMime,
    /// `BODY=BINARYMIME` (RFC 3030; needs BDAT)
    BinaryMime,
}

impl Body {
    fn as_str(self) -> &'static str {
        match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        }
    }
}

/// The RET parameter of MAIL: how much of the message a failure DSN returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, arbitrary::Arbitrary)]
pub enum Ret {
    /// `RET=FULL`
    Full,
    /// `RET=HDRS`
    Headers,
}

/// The NOTIFY parameter of RCPT (RFC 3461 section 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, arbitrary::Arbitrary)]
pub struct Notify {
    /// `NEVER`: no DSN at all. Exclusive with the other three.
    pub never: bool,
    /// `SUCCESS`
    pub success: bool,
    /// `FAILURE`
    pub failure: bool,
    /// `DELAY`
    pub delay: bool,
}

/// The ORCPT parameter of RCPT: the original recipient, `addr-type;xtext`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Orcpt {
    /// The address type, normally `rfc822` (or `utf-8`).
    pub addr_type: String,
    /// The address, xtext-decoded.
    pub address: String,
}

/// The parameters of a MAIL command. Fields left `None`/`false` were not given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct MailParams {
    /// `SIZE=n`: the client's estimate of the message size.
    pub size: Option<u64>,
    /// `BODY=…`
    pub body: Option<Body>,
    /// `SMTPUTF8`
    pub smtputf8: bool,
    /// `RET=FULL|HDRS`
    pub ret: Option<Ret>,
    /// `ENVID=xtext`, decoded.
    pub envid: Option<String>,
    /// `AUTH=xtext`, decoded; `Some("")` for `AUTH=<>`.
    pub auth: Option<String>,
}

/// The parameters of a RCPT command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct RcptParams {
    /// `NOTIFY=…`
    pub notify: Option<Notify>,
    /// `ORCPT=…`
    pub orcpt: Option<Orcpt>,
}

/// Why ESMTP parameters were refused. Unknown parameters get 555 (RFC 5321 section 4.1.1.11),
/// malformed ones 501.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParamError {
    /// A parameter this server does not know.
    #[error("unrecognized parameter {0}")]
    Unknown(String),
    /// A known parameter with a malformed value.
    #[error("invalid value for {0}")]
    Invalid(&'static str),
    /// A parameter given twice.
    #[error("duplicate parameter {0}")]
    Duplicate(&'static str),
}

/// Longest ENVID (RFC 3461 section 4.4).
pub const MAX_ENVID: usize = 100;
/// Longest ORCPT address (RFC 3461 section 4.2: 500 characters).
pub const MAX_ORCPT: usize = 500;

/// Splits `KEY[=VALUE] KEY[=VALUE]…` (parameters separated by one or more spaces).
fn split_params(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    s.split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        })
}

// Keywords with their `=`, so that one comparison checks both.
const SIZE: Word = Word::new(b"SIZE=");
const BODY: Word = Word::new(b"BODY=");
const SMTPUTF8: Word = Word::new(b"SMTPUTF8");
const RET: Word = Word::new(b"RET=");
const ENVID: Word = Word::new(b"ENVID=");
const AUTH: Word = Word::new(b"AUTH=");
const NOTIFY: Word = Word::new(b"NOTIFY=");
const ORCPT: Word = Word::new(b"ORCPT=");
const SEVEN_BIT: Word = Word::new(b"7BIT");
const EIGHT_BIT_MIME: Word = Word::new(b"8BITMIME");
const FULL: Word = Word::new(b"FULL");
const HDRS: Word = Word::new(b"HDRS");
const NEVER: Word = Word::new(b"NEVER");
const SUCCESS: Word = Word::new(b"SUCCESS");
const FAILURE: Word = Word::new(b"FAILURE");
const DELAY: Word = Word::new(b"DELAY");

/// The fast parameter scanner's loop: for each `KEY[=VALUE]` (spaces before each skipped),
/// calls `param` with the parameter's bytes and their [`load8`] word; `param` returns how many
/// bytes the parameter took, or `None` when the fast path cannot read it. A parameter must be
/// followed by a space or the end.
#[inline]
fn scan_params(mut s: &[u8], mut param: impl FnMut(&[u8], u64) -> Option<usize>) -> Option<()> {
    loop {
        s = skip_spaces(s);
        if s.is_empty() {
            return Some(());
        }
        s = &s[param(s, load8(s))?..];
        if !matches!(s.first(), None | Some(b' ')) {
            return None;
        }
    }
}

/// Length of the xtext value at the start of `s` when it holds no `+` escape and nothing but
/// printable ASCII (it then decodes to itself and re-encodes to itself, so its length is the
/// one the limits apply to), between 1 and `max`.
#[inline]
fn plain_xtext(s: &[u8], max: usize) -> Option<usize> {
    let n = span(s, XTEXT);
    (n > 0 && n <= max).then_some(n)
}

fn esmtp_keyword_ok(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

impl MailParams {
    /// The fast path of [`MailParams::parse`] (see [`scan`](super::scan)): plain-ASCII
    /// parameters, each given once, read in one pass over bytes with keywords compared as
    /// words; `None` when unsure.
    #[inline]
    pub(crate) fn parse_fast(params: &[u8]) -> Option<MailParams> {
        let mut p = MailParams::default();
        scan_params(params, |s, w| {
            if SIZE.prefix(w) && p.size.is_none() {
                let (size, digits) = size_fast(&s[SIZE.len()..])?;
                p.size = Some(size);
                Some(SIZE.len() + digits)
            } else if BODY.prefix(w) && p.body.is_none() {
                let v = &s[BODY.len()..];
                let vw = load8(v);
                let (body, used) = if EIGHT_BIT_MIME.whole(v, vw, b' ') {
                    (Body::EightBitMime, EIGHT_BIT_MIME.len())
                } else if SEVEN_BIT.whole(v, vw, b' ') {
                    (Body::SevenBit, SEVEN_BIT.len())
                } else {
                    return None;
                };
                p.body = Some(body);
                Some(BODY.len() + used)
            } else if SMTPUTF8.whole(s, w, b' ') && !p.smtputf8 {
                p.smtputf8 = true;
                Some(SMTPUTF8.len())
            } else if RET.prefix(w) && p.ret.is_none() {
                let v = &s[RET.len()..];
                let vw = load8(v);
                p.ret = Some(if HDRS.whole(v, vw, b' ') {
                    Ret::Headers
                } else if FULL.whole(v, vw, b' ') {
                    Ret::Full
                } else {
                    return None;
                });
                Some(RET.len() + 4)
            } else if ENVID.prefix(w) && p.envid.is_none() {
                let v = &s[ENVID.len()..];
                let used = plain_xtext(v, MAX_ENVID)?;
                p.envid = Some(string(&v[..used])?);
                Some(ENVID.len() + used)
            } else if AUTH.prefix(w) && p.auth.is_none() {
                let v = &s[AUTH.len()..];
                let used = plain_xtext(v, usize::MAX)?;
                p.auth = Some(if &v[..used] == b"<>" {
                    String::new()
                } else {
                    string(&v[..used])?
                });
                Some(AUTH.len() + used)
            } else {
                None
            }
        })?;
        Some(p)
    }

    /// Parses the parameters after the reverse path.
    pub fn parse(s: &str) -> Result<MailParams, ParamError> {
        if let Some(p) = MailParams::parse_fast(s.as_bytes()) {
            return Ok(p);
        }
        let mut p = MailParams::default();
        for (key, value) in split_params(s) {
            if key.eq_ignore_ascii_case("SIZE") {
                set_once(&mut p.size, "SIZE", parse_size(value)?)?;
            } else if key.eq_ignore_ascii_case("BODY") {
                let body = match value {
                    Some(v) if v.eq_ignore_ascii_case("7BIT") => Body::SevenBit,
                    Some(v) if v.eq_ignore_ascii_case("8BITMIME") => Body::EightBitMime,
                    Some(v) if v.eq_ignore_ascii_case("BINARYMIME") => Body::BinaryMime,
                    _ => return Err(ParamError::Invalid("BODY")),
                };
                set_once(&mut p.body, "BODY", body)?;
            } else if key.eq_ignore_ascii_case("SMTPUTF8") {
                if value.is_some() {
                    return Err(ParamError::Invalid("SMTPUTF8"));
                }
                if p.smtputf8 {
                    return Err(ParamError::Duplicate("SMTPUTF8"));
                }
                p.smtputf8 = true;
            } else if key.eq_ignore_ascii_case("RET") {
                let ret = match value {
                    Some(v) if v.eq_ignore_ascii_case("FULL") => Ret::Full,
                    Some(v) if v.eq_ignore_ascii_case("HDRS") => Ret::Headers,
                    _ => return Err(ParamError::Invalid("RET")),
                };
                set_once(&mut p.ret, "RET", ret)?;
            } else if key.eq_ignore_ascii_case("ENVID") {
                let v = value.ok_or(ParamError::Invalid("ENVID"))?;
                let envid = xtext_decode(v).ok_or(ParamError::Invalid("ENVID"))?;
                // The limit holds for the form passed on to the next hop, which encodes
                // every non-ASCII byte as +HH.
                if envid.is_empty() || xtext_encode(&envid).len() > MAX_ENVID {
                    return Err(ParamError::Invalid("ENVID"));
                }
                set_once(&mut p.envid, "ENVID", envid)?;
            } else if key.eq_ignore_ascii_case("AUTH") {
                let v = value.ok_or(ParamError::Invalid("AUTH"))?;
                let auth = if v == "<>" {
                    String::new()
                } else {
                    xtext_decode(v)
                        .filter(|a| !a.is_empty())
                        .ok_or(ParamError::Invalid("AUTH"))?
                };
                set_once(&mut p.auth, "AUTH", auth)?;
            } else if esmtp_keyword_ok(key) {
                return Err(ParamError::Unknown(key.to_owned()));
            } else {
                return Err(ParamError::Invalid("parameter keyword"));
            }
        }
        Ok(p)
    }
}

impl RcptParams {
    /// The fast path of [`RcptParams::parse`], as for [`MailParams::parse_fast`].
    #[inline]
    pub(crate) fn parse_fast(params: &[u8]) -> Option<RcptParams> {
        let mut p = RcptParams::default();
        scan_params(params, |s, w| {
            if NOTIFY.prefix(w) && p.notify.is_none() {
                let (notify, used) = notify_fast(&s[NOTIFY.len()..])?;
                p.notify = Some(notify);
                Some(NOTIFY.len() + used)
            } else if ORCPT.prefix(w) && p.orcpt.is_none() {
                let v = &s[ORCPT.len()..];
                let type_len = span(v, KEYWORD);
                if type_len == 0 || !v[0].is_ascii_alphanumeric() || v.get(type_len) != Some(&b';')
                {
                    return None;
                }
                let xtext = &v[type_len + 1..];
                let used = plain_xtext(xtext, MAX_ORCPT)?;
                // One UTF-8 validation for both strings.
                let text = text(&v[..type_len + 1 + used])?;
                p.orcpt = Some(Orcpt {
                    addr_type: text.get(..type_len)?.to_owned(),
                    address: text.get(type_len + 1..)?.to_owned(),
                });
                Some(ORCPT.len() + type_len + 1 + used)
            } else {
                None
            }
        })?;
        Some(p)
    }

    /// Parses the parameters after the forward path.
    pub fn parse(s: &str) -> Result<RcptParams, ParamError> {
        if let Some(p) = RcptParams::parse_fast(s.as_bytes()) {
            return Ok(p);
        }
        let mut p = RcptParams::default();
        for (key, value) in split_params(s) {
            if key.eq_ignore_ascii_case("NOTIFY") {
                let v = value.ok_or(ParamError::Invalid("NOTIFY"))?;
                set_once(&mut p.notify, "NOTIFY", parse_notify(v)?)?;
            } else if key.eq_ignore_ascii_case("ORCPT") {
                let v = value.ok_or(ParamError::Invalid("ORCPT"))?;
                let (addr_type, xtext) = v.split_once(';').ok_or(ParamError::Invalid("ORCPT"))?;
                if !esmtp_keyword_ok(addr_type) {
                    return Err(ParamError::Invalid("ORCPT"));
                }
                let address = xtext_decode(xtext)
                    .filter(|a| !a.is_empty())
                    .ok_or(ParamError::Invalid("ORCPT"))?;
                // As for ENVID: the limit holds for the re-encoded form.
                if xtext_encode(&address).len() > MAX_ORCPT {
                    return Err(ParamError::Invalid("ORCPT"));
                }
                set_once(
                    &mut p.orcpt,
                    "ORCPT",
                    Orcpt {
                        addr_type: addr_type.to_owned(),
                        address,
                    },
                )?;
            } else if esmtp_keyword_ok(key) {
                return Err(ParamError::Unknown(key.to_owned()));
            } else {
                return Err(ParamError::Invalid("parameter keyword"));
            }
        }
        Ok(p)
    }
}

fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), ParamError> {
    if slot.is_some() {
        return Err(ParamError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_size(value: Option<&str>) -> Result<u64, ParamError> {
    let v = value.ok_or(ParamError::Invalid("SIZE"))?;
    // RFC 1870: size-value ::= 1*20DIGIT.
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::Invalid("SIZE"));
    }
    // A value too large for u64 is as good as "too big" to any limit we could have.
    Ok(v.parse::<u64>().unwrap_or(u64::MAX))
}

/// `SIZE=` value: 1 to 20 digits (RFC 1870), read without `str::parse`; too large for `u64`
/// is `u64::MAX`, as in [`parse_size`]. Returns the size and the digits used.
#[inline]
fn size_fast(v: &[u8]) -> Option<(u64, usize)> {
    let digits = span(v, DIGIT);
    let value = |n: u64, &d: &u8| n * 10 + u64::from(d - b'0');
    match digits {
        0 | 21.. => None,
        // Nineteen digits always fit in a u64; only twenty may overflow.
        1..=19 => Some((v[..digits].iter().fold(0, value), digits)),
        _ => {
            let high = v[..19].iter().fold(0, value);
            let size = high
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(v[19] - b'0')))
                .unwrap_or(u64::MAX);
            Some((size, digits))
        }
    }
}

/// `NOTIFY=` value: a comma-separated list of distinct keywords, NEVER alone. Returns it and
/// the bytes used.
#[inline]
fn notify_fast(v: &[u8]) -> Option<(Notify, usize)> {
    let mut n = Notify::default();
    let mut i = 0;
    loop {
        let item = &v[i..];
        let w = load8(item);
        let (flag, len) = if SUCCESS.whole(item, w, b',') {
            (&mut n.success, SUCCESS.len())
        } else if FAILURE.whole(item, w, b',') {
            (&mut n.failure, FAILURE.len())
        } else if DELAY.whole(item, w, b',') {
            (&mut n.delay, DELAY.len())
        } else if NEVER.whole(item, w, b',') {
            (&mut n.never, NEVER.len())
        } else {
            return None;
        };
        if std::mem::replace(flag, true) {
            return None;
        }
        i += len;
        if v.get(i) != Some(&b',') {
            break;
        }
        i += 1;
    }
    (!(n.never && (n.success || n.failure || n.delay))).then_some((n, i))
}

fn parse_notify(v: &str) -> Result<Notify, ParamError> {
    let mut n = Notify::default();
    for item in v.split(',') {
        let flag = if item.eq_ignore_ascii_case("NEVER") {
            &mut n.never
        } else if item.eq_ignore_ascii_case("SUCCESS") {
            &mut n.success
        } else if item.eq_ignore_ascii_case("FAILURE") {
            &mut n.failure
        } else if item.eq_ignore_ascii_case("DELAY") {
            &mut n.delay
        } else {
            return Err(ParamError::Invalid("NOTIFY"));
        };
        // RFC 3461 section 4.1: `"NEVER" / 1#notify-list-element`. NEVER stands alone; the
        // list may name an element twice (the grammar allows it, and it means the same).
        *flag = true;
    }
    if n.never && v.contains(',') {
        return Err(ParamError::Invalid("NOTIFY"));
    }
    Ok(n)
}

/// Decodes RFC 3461 xtext (`+HH` hex escapes, uppercase hex required); `None` when malformed.
#[must_use]
pub fn xtext_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let val = |c: u8| match c {
                    b'0'..=b'9' => Some(c - b'0'),
                    b'A'..=b'F' => Some(c - b'A' + 10),
                    _ => None,
                };
                out.push(val(hex[0])? << 4 | val(hex[1])?);
                i += 3;
            }
            b'=' => return None,
            // RFC 6533 allows UTF-8 in utf-8-addr-xtext; plain xtext is printable ASCII.
            c if (33..=126).contains(&c) || c >= 0x80 => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes text as RFC 3461 xtext.
#[must_use]
pub fn xtext_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            let _ = write!(out, "+{b:02X}");
        }
    }
    out
}

impl fmt::Display for MailParams {
    /// The parameters as on the wire, each preceded by a space (empty when there are none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(size) = self.size {
            write!(f, " SIZE={size}")?;
        }
        if let Some(body) = self.body {
            write!(f, " BODY={}", body.as_str())?;
        }
        if self.smtputf8 {
            f.write_str(" SMTPUTF8")?;
        }
        if let Some(ret) = self.ret {
            f.write_str(match ret {
                Ret::Full => " RET=FULL",
                Ret::Headers => " RET=HDRS",
            })?;
        }
        if let Some(envid) = &self.envid {
            write!(f, " ENVID={}", xtext_encode(envid))?;
        }
        if let Some(auth) = &self.auth {
            if auth.is_empty() {
                f.write_str(" AUTH=<>")?;
            } else if auth == "<>" {
                // An identity that is literally "<>" must not read back as "no identity".
                f.write_str(" AUTH=+3C+3E")?;
            } else {
                write!(f, " AUTH={}", xtext_encode(auth))?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.never {
            return f.write_str("NEVER");
        }
        let mut sep = "";
        for (on, name) in [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ] {
            if on {
                write!(f, "{sep}{name}")?;
                sep = ",";
            }
        }
        Ok(())
    }
}

impl fmt::Display for RcptParams {
    /// The parameters as on the wire, each preceded by a space (empty when there are none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.notify {
            write!(f, " NOTIFY={n}")?;
        }
        if let Some(o) = &self.orcpt {
            write!(f, " ORCPT={};{}", o.addr_type, xtext_encode(&o.address))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_params() {
        let p = MailParams::parse("SIZE=1000 body=8bitmime SMTPUTF8 RET=HDRS ENVID=QQ+2B1 AUTH=<>")
            .unwrap();
        assert_eq!(p.size, Some(1000));
        assert_eq!(p.body, Some(Body::EightBitMime));
        assert!(p.smtputf8);
        assert_eq!(p.ret, Some(Ret::Headers));
        assert_eq!(p.envid.as_deref(), Some("QQ+1"));
        assert_eq!(p.auth.as_deref(), Some(""));
        assert_eq!(
            p.to_string(),
            " SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B1 AUTH=<>"
        );
        assert_eq!(MailParams::parse("").unwrap(), MailParams::default());
    }

    #[test]
    fn mail_param_errors_are_distinct() {
        assert_eq!(
            MailParams::parse("FOO=bar"),
            Err(ParamError::Unknown("FOO".into()))
        );
        assert_eq!(
            MailParams::parse("X-LONG"),
            Err(ParamError::Unknown("X-LONG".into()))
        );
        assert_eq!(
            MailParams::parse("SIZE=abc"),
            Err(ParamError::Invalid("SIZE"))
        );
        assert_eq!(MailParams::parse("SIZE"), Err(ParamError::Invalid("SIZE")));
        assert_eq!(
            MailParams::parse("SIZE=1 SIZE=2"),
            Err(ParamError::Duplicate("SIZE"))
        );
        assert_eq!(
            MailParams::parse("BODY=9BIT"),
            Err(ParamError::Invalid("BODY"))
        );
        assert_eq!(
            MailParams::parse("SMTPUTF8=yes"),
            Err(ParamError::Invalid("SMTPUTF8"))
        );
        assert_eq!(
            MailParams::parse("ENVID=a+zz"),
            Err(ParamError::Invalid("ENVID"))
        );
        assert_eq!(
            MailParams::parse(&format!("ENVID={}", "a".repeat(101))),
            Err(ParamError::Invalid("ENVID"))
        );
        assert_eq!(
            MailParams::parse("=x"),
            Err(ParamError::Invalid("parameter keyword"))
        );
        assert_eq!(
            MailParams::parse("SIZE=99999999999999999999").unwrap().size,
            Some(u64::MAX)
        );
    }

    #[test]
    fn rcpt_params() {
        let p = RcptParams::parse("NOTIFY=success,DELAY ORCPT=rfc822;bob+2Bx@example.org").unwrap();
        assert_eq!(
            p.notify,
            Some(Notify {
                never: false,
                success: true,
                failure: false,
                delay: true
            })
        );
        assert_eq!(p.orcpt.as_ref().unwrap().address, "bob+x@example.org");
        assert_eq!(
            p.to_string(),
            " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+2Bx@example.org"
        );
        assert_eq!(
            RcptParams::parse("NOTIFY=NEVER,SUCCESS"),
            Err(ParamError::Invalid("NOTIFY"))
        );
        // A list element named twice is still the RFC 3461 grammar; NEVER twice is not.
        assert_eq!(
            RcptParams::parse("NOTIFY=FAILURE,failure,DELAY")
                .unwrap()
                .notify,
            Some(Notify {
                never: false,
                success: false,
                failure: true,
                delay: true
            })
        );
        assert_eq!(
            RcptParams::parse("NOTIFY=NEVER,NEVER"),
            Err(ParamError::Invalid("NOTIFY"))
        );
        assert_eq!(
            RcptParams::parse("NOTIFY=SUCCESS,NEVER"),
            Err(ParamError::Invalid("NOTIFY"))
        );
        assert_eq!(
            RcptParams::parse("NOTIFY="),
            Err(ParamError::Invalid("NOTIFY"))
        );
        assert_eq!(
            RcptParams::parse("ORCPT=bob"),
            Err(ParamError::Invalid("ORCPT"))
        );
        assert_eq!(
            RcptParams::parse("SIZE=1"),
            Err(ParamError::Unknown("SIZE".into()))
        );
    }

    #[test]
    fn xtext_round_trip() {
        for s in ["plain", "a+b=c", "sp ace", "ünï", "\u{1}"] {
            assert_eq!(xtext_decode(&xtext_encode(s)).as_deref(), Some(s));
        }
        assert_eq!(xtext_decode("+2b"), None);
        assert_eq!(xtext_decode("+2"), None);
    }
}
