//! Scalar values of the grammar: sizes, durations, ports, SMTP replies, and their canonical
//! spelling for the normal form.

use std::fmt;
use std::time::Duration;

/// Parses a size: bytes, or a number scaled by `K`, `M`, `G` or `T` (powers of 1024, either
/// case, optionally followed by `B`), e.g. `35M`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(unit_at);
    if digits.is_empty() {
        return Err("expected a number of bytes, optionally followed by K, M, G or T".into());
    }
    let unit = unit.strip_suffix(['b', 'B']).unwrap_or(unit);
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("unknown unit \"{unit}\"; use K, M, G or T")),
    };
    let n: u64 = digits.parse().map_err(|_| "number too large".to_owned())?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| "size too large".to_owned())
}

/// Writes a size with the largest unit that divides it exactly.
pub(crate) fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// Parses a duration: a positive whole number followed by `s`, `m`, `h` or `d`, e.g. `4d`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let Some(unit) = text.chars().last().filter(|c| c.is_ascii_alphabetic()) else {
        return Err("expected a number followed by s, m, h or d".into());
    };
    let Some(&(_, factor)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!("unknown unit \"{unit}\"; use s, m, h or d"));
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a number followed by s, m, h or d".into());
    }
    let n: u64 = digits.parse().map_err(|_| "number too large".to_owned())?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    let seconds = n
        .checked_mul(factor)
        .ok_or_else(|| "duration too large".to_owned())?;
    Ok(Duration::from_secs(seconds))
}

/// Writes a duration with the largest unit that divides it exactly.
pub(crate) fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (unit, factor) = UNITS
        .iter()
        .copied()
        .find(|&(_, f)| seconds != 0 && seconds.is_multiple_of(f))
        .unwrap_or(('s', 1));
    format!("{}{unit}", seconds / factor)
}

/// Parses a TCP port: a number from 1 to 65535 or one of the service names every system knows
/// (`smtp`, `smtps`, `submission`), since resolving others would need the services database.
pub(crate) fn parse_port(text: &str) -> Result<u16, String> {
    match text {
        "smtp" => Ok(25),
        "smtps" => Ok(465),
        "submission" => Ok(587),
        _ => match text.parse::<u16>() {
            Ok(0) | Err(_) => {
                Err("expected a number from 1 to 65535, smtp, smtps or submission".into())
            }
            Ok(port) => Ok(port),
        },
    }
}

/// Parses a count (limits): a whole number.
pub(crate) fn parse_count(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number".into());
    }
    text.parse().map_err(|_| "number too large".into())
}

/// An SMTP reply a builtin filter sends: a 4xx or 5xx code and its text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SmtpReply {
    /// The reply code, 400 to 599.
    pub code: u16,
    /// The text after the code, usually starting with an enhanced status code.
    pub text: String,
}

impl SmtpReply {
    /// Parses `"550 5.7.1 text"`: three digits starting with 4 or 5, a space, and a text.
    pub fn parse(reply: &str) -> Option<SmtpReply> {
        let (code, text) = reply.split_once(' ')?;
        let bytes = code.as_bytes();
        let valid = bytes.len() == 3
            && matches!(bytes[0], b'4' | b'5')
            && bytes[1..].iter().all(u8::is_ascii_digit)
            && !text.trim().is_empty();
        valid.then(|| SmtpReply {
            code: code.parse().unwrap_or(0),
            text: text.to_owned(),
        })
    }
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("35M"), Ok(36_700_160));
        assert_eq!(parse_size("35m"), Ok(36_700_160));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1KB"), Ok(1024));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("M").is_err());
        assert!(parse_size("35X").is_err());
        assert!(parse_size("3.5M").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("17000000T").is_err());
        assert_eq!(format_size(36_700_160), "35M");
        assert_eq!(format_size(1536), "1536");
        assert_eq!(format_size(2048), "2K");
        assert_eq!(format_size(0), "0");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("4d"), Ok(Duration::from_secs(4 * 86_400)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("4w").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("-4d").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert_eq!(format_duration(Duration::from_secs(86_400 * 4)), "4d");
        assert_eq!(format_duration(Duration::from_secs(5_400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(61)), "61s");
    }

    #[test]
    fn ports_and_counts() {
        assert_eq!(parse_port("587"), Ok(587));
        assert_eq!(parse_port("submission"), Ok(587));
        assert!(parse_port("0").is_err());
        assert!(parse_port("65536").is_err());
        assert!(parse_port("imap").is_err());
        assert_eq!(parse_count("1000"), Ok(1000));
        assert!(parse_count("-1").is_err());
        assert!(parse_count("").is_err());
    }

    #[test]
    fn replies() {
        let reply = SmtpReply::parse("550 5.7.1 no rDNS").unwrap();
        assert_eq!((reply.code, reply.text.as_str()), (550, "5.7.1 no rDNS"));
        assert_eq!(reply.to_string(), "550 5.7.1 no rDNS");
        assert!(SmtpReply::parse("421 try later").is_some());
        assert!(SmtpReply::parse("250 ok").is_none());
        assert!(SmtpReply::parse("550").is_none());
        assert!(SmtpReply::parse("550 ").is_none());
        assert!(SmtpReply::parse("55O x").is_none());
        assert!(SmtpReply::parse("no rDNS").is_none());
    }
}
