//! ESMTP parameters of MAIL and RCPT: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8
//! (RFC 6531), RET, ENVID, NOTIFY and ORCPT (RFC 3461), AUTH= (RFC 4954), and the xtext
//! encoding they use.

use std::fmt::{self, Write as _};

use thiserror::Error;

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

fn esmtp_keyword_ok(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

impl MailParams {
    /// Parses the parameters after the reverse path.
    pub fn parse(s: &str) -> Result<MailParams, ParamError> {
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
    /// Parses the parameters after the forward path.
    pub fn parse(s: &str) -> Result<RcptParams, ParamError> {
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
        // RFC 3461: NEVER stands alone; a list element may be named twice.
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
