//! SMTP commands: parsing one command line (without its CRLF) and formatting it back.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

use super::params::{MailParams, ParamError, RcptParams};
use super::path::{self, AddressLiteral, ForwardPath, Host, PathError, PathOptions, ReversePath};
use super::scan::{self, MECH, Word};

/// One SMTP command with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `HELO domain`
    Helo(Host),
    /// `EHLO domain`
    Ehlo(Host),
    /// `MAIL FROM:<reverse-path> [params]`
    Mail {
        /// The sender.
        from: ReversePath,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `RCPT TO:<forward-path> [params]`
    Rcpt {
        /// The recipient.
        to: ForwardPath,
        /// ESMTP parameters.
        params: RcptParams,
    },
    /// `DATA`
    Data,
    /// `BDAT size [LAST]` (RFC 3030)
    Bdat {
        /// Octets that follow the command line.
        size: u64,
        /// This is the last chunk of the message.
        last: bool,
    },
    /// `RSET`
    Rset,
    /// `NOOP [string]` (the argument is ignored)
    Noop,
    /// `QUIT`
    Quit,
    /// `VRFY string`
    Vrfy(String),
    /// `EXPN string`
    Expn(String),
    /// `HELP [topic]`
    Help(Option<String>),
    /// `STARTTLS` (RFC 3207)
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954)
    Auth {
        /// The SASL mechanism, uppercased (borrowed for the registered names, so that the
        /// usual AUTH line costs no allocation for it).
        mechanism: Cow<'static, str>,
        /// The initial response as sent (base64, or `=` for an empty one).
        initial: Option<String>,
    },
}

/// What the parser needs to know about the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// The server offers SMTPUTF8, so a MAIL carrying the SMTPUTF8 parameter may use UTF-8.
    pub smtputf8_offered: bool,
    /// The current transaction's MAIL carried SMTPUTF8, so RCPT may use UTF-8.
    pub utf8_transaction: bool,
    /// Accept paths without angle brackets.
    pub lenient_paths: bool,
}

/// Why a command line was refused. The server maps each to the reply RFC 5321 gives.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The verb is not an SMTP command (500).
    #[error("command unrecognized")]
    Unrecognized,
    /// The line is not valid UTF-8 (500).
    #[error("invalid characters in command")]
    NotUtf8,
    /// The arguments do not follow the command's syntax (501).
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// The HELO/EHLO argument is not a domain or address literal (501).
    #[error("invalid domain name: {0}")]
    BadHelo(PathError),
    /// The MAIL path is malformed (501 5.1.7, or 553 5.6.7 for non-ASCII).
    #[error("bad sender address: {0}")]
    BadSender(PathError),
    /// The RCPT path is malformed (501 5.1.3, or 553 5.6.7 for non-ASCII).
    #[error("bad recipient address: {0}")]
    BadRecipient(PathError),
    /// The ESMTP parameters are unknown (555) or malformed (501).
    #[error("{0}")]
    Param(ParamError),
}

/// The verbs this parser knows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    Auth,
    StartTls,
}

const fn four(verb: &[u8; 4]) -> u64 {
    Word::new(verb).lower()
}

const HELO: u64 = four(b"HELO");
const EHLO: u64 = four(b"EHLO");
const MAIL: u64 = four(b"MAIL");
const RCPT: u64 = four(b"RCPT");
const DATA: u64 = four(b"DATA");
const BDAT: u64 = four(b"BDAT");
const RSET: u64 = four(b"RSET");
const NOOP: u64 = four(b"NOOP");
const QUIT: u64 = four(b"QUIT");
const VRFY: u64 = four(b"VRFY");
const EXPN: u64 = four(b"EXPN");
const HELP: u64 = four(b"HELP");
const AUTH: u64 = four(b"AUTH");
const STARTTLS: Word = Word::new(b"STARTTLS");

/// Recognises the verb at the start of `line` (it ends at the first space or at the end of the
/// line) and returns it with its length; `None` for anything else.
///
/// The verb's bytes are read as one word and compared whole, ignoring case (smtp-proto's
/// trick, see [`Word`]): no string comparison, and no separate search for the space. Only
/// the known verbs match, all letters, so a NUL or a digit in the verb (`\0QUIT`) cannot pass
/// for one.
#[inline]
fn verb(line: &[u8]) -> Option<(Verb, usize)> {
    let w = scan::load8(line);
    if line.len() >= 4 && matches!(line.get(4), None | Some(b' ')) {
        // Setting bit 5 of each byte lowercases letters; the match is exact because only a
        // letter in either case lowercases to a letter (see `Word`).
        let verb = match (w & 0xffff_ffff) | 0x2020_2020 {
            MAIL => Verb::Mail,
            RCPT => Verb::Rcpt,
            DATA => Verb::Data,
            EHLO => Verb::Ehlo,
            QUIT => Verb::Quit,
            RSET => Verb::Rset,
            NOOP => Verb::Noop,
            HELO => Verb::Helo,
            BDAT => Verb::Bdat,
            AUTH => Verb::Auth,
            VRFY => Verb::Vrfy,
            EXPN => Verb::Expn,
            HELP => Verb::Help,
            _ => return None,
        };
        return Some((verb, 4));
    }
    STARTTLS
        .whole(line, w, b' ')
        .then_some((Verb::StartTls, STARTTLS.len()))
}

impl Command {
    /// Parses one command line, without its CRLF.
    pub fn parse(line: &[u8], opts: ParseOptions) -> Result<Command, CommandError> {
        let Some((verb, verb_len)) = verb(line) else {
            return Err(unknown_verb(line));
        };
        let rest = line.get(verb_len + 1..).unwrap_or_default();
        // Commands without arguments are the commonest lines after MAIL and RCPT: answer them
        // without validating UTF-8 (an argument of spaces is ASCII). Anything else is refused
        // below exactly as before: invalid UTF-8 first, then the argument itself.
        if rest.iter().all(|&b| b == b' ') {
            match verb {
                Verb::Data => return Ok(Command::Data),
                Verb::Rset => return Ok(Command::Rset),
                Verb::Quit => return Ok(Command::Quit),
                Verb::Noop => return Ok(Command::Noop),
                Verb::StartTls => return Ok(Command::StartTls),
                _ => {}
            }
        }
        // The usual shapes of the commands with arguments, straight from the bytes (see
        // `scan`); `None` hands the line to the general code below.
        let fast = match verb {
            Verb::Mail => mail_fast(rest),
            Verb::Rcpt => rcpt_fast(rest),
            Verb::Ehlo => helo_fast(rest).map(Command::Ehlo),
            Verb::Helo => helo_fast(rest).map(Command::Helo),
            Verb::Auth => auth_fast(rest),
            _ => None,
        };
        if let Some(command) = fast {
            return Ok(command);
        }
        let arg = utf8(rest)?;
        let no_arg = |cmd: Command| {
            if arg.trim_matches(' ').is_empty() {
                Ok(cmd)
            } else {
                Err(CommandError::Syntax("no arguments allowed"))
            }
        };
        match verb {
            Verb::Mail => parse_mail(arg, opts),
            Verb::Rcpt => parse_rcpt(arg, opts),
            Verb::Data => no_arg(Command::Data),
            Verb::Bdat => parse_bdat(arg),
            Verb::Ehlo => parse_helo(arg).map(Command::Ehlo),
            Verb::Helo => parse_helo(arg).map(Command::Helo),
            Verb::Rset => no_arg(Command::Rset),
            Verb::Noop => Ok(Command::Noop),
            Verb::Quit => no_arg(Command::Quit),
            Verb::Vrfy => required(arg, "VRFY needs an argument").map(Command::Vrfy),
            Verb::Expn => required(arg, "EXPN needs an argument").map(Command::Expn),
            Verb::Help => Ok(Command::Help(
                Some(arg.trim_matches(' '))
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned),
            )),
            Verb::StartTls => no_arg(Command::StartTls),
            Verb::Auth => parse_auth(arg),
        }
    }

    /// The command's verb, uppercased (for logs and report events).
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Helo(_) => "HELO",
            Command::Ehlo(_) => "EHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy(_) => "VRFY",
            Command::Expn(_) => "EXPN",
            Command::Help(_) => "HELP",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
        }
    }

    /// Appends the wire form, CRLF included, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{self}\r\n");
    }
}

/// Why a line without a known verb is refused. A verb that could be one (one to eight
/// letters) is unrecognized only once its argument has passed the UTF-8 check that every
/// line's argument gets first; anything else is unrecognized outright.
#[cold]
fn unknown_verb(line: &[u8]) -> CommandError {
    let head = &line[..line.len().min(9)];
    let verb_len = head.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let letters =
        (1..=8).contains(&verb_len) && line[..verb_len].iter().all(u8::is_ascii_alphabetic);
    match line.get(verb_len + 1..) {
        Some(rest) if letters && !rest.is_ascii() && std::str::from_utf8(rest).is_err() => {
            CommandError::NotUtf8
        }
        _ => CommandError::Unrecognized,
    }
}

/// The argument as text. Every line's argument must be UTF-8, whatever the verb: a line that is
/// not gets [`CommandError::NotUtf8`] before any other check.
#[inline]
fn utf8(rest: &[u8]) -> Result<&str, CommandError> {
    std::str::from_utf8(rest).map_err(|_| CommandError::NotUtf8)
}

fn required(arg: &str, what: &'static str) -> Result<String, CommandError> {
    let arg = arg.trim_matches(' ');
    if arg.is_empty() {
        Err(CommandError::Syntax(what))
    } else {
        Ok(arg.to_owned())
    }
}

/// Strips `keyword` case-insensitively, then spaces, as [`after_keyword`] does.
#[inline]
fn after_keyword_fast(arg: &[u8], keyword: Word) -> Option<&[u8]> {
    keyword
        .prefix(scan::load8(arg))
        .then(|| scan::skip_spaces(&arg[keyword.len()..]))
}

const FROM: Word = Word::new(b"FROM:");
const TO: Word = Word::new(b"TO:");

/// The fast path of [`parse_mail`]. An ASCII path needs no SMTPUTF8, so the options do not
/// matter; a path without angle brackets (the lenient option) is left to the general code.
#[inline]
fn mail_fast(arg: &[u8]) -> Option<Command> {
    let (from, params) = path::reverse_path_fast(after_keyword_fast(arg, FROM)?)?;
    let params = MailParams::parse_fast(params)?;
    Some(Command::Mail { from, params })
}

/// The fast path of [`parse_rcpt`], as for [`mail_fast`].
#[inline]
fn rcpt_fast(arg: &[u8]) -> Option<Command> {
    let (to, params) = path::forward_path_fast(after_keyword_fast(arg, TO)?)?;
    let params = RcptParams::parse_fast(params)?;
    Some(Command::Rcpt { to, params })
}

/// The fast path of [`parse_helo`]: an ASCII domain or an IPv4 address literal.
#[inline]
fn helo_fast(arg: &[u8]) -> Option<Host> {
    let arg = &arg[..arg.iter().rposition(|&b| b != b' ')? + 1];
    if let [b'[', inner @ .., b']'] = arg {
        return scan::ipv4(inner).map(|a| Host::Literal(AddressLiteral::V4(a)));
    }
    if scan::is_ascii_domain(arg) {
        return scan::string(arg).map(Host::Domain);
    }
    None
}

/// The fast path of [`parse_auth`]: a mechanism name and at most one initial response,
/// separated by spaces.
#[inline]
fn auth_fast(arg: &[u8]) -> Option<Command> {
    let s = scan::skip_spaces(arg);
    let mech_len = scan::span(s, MECH);
    if mech_len == 0 || mech_len > 20 || !matches!(s.get(mech_len), None | Some(b' ')) {
        return None;
    }
    let after = scan::skip_spaces(&s[mech_len..]);
    let start = s.len() - after.len();
    // An initial response is base64, often tens of bytes: memchr finds its end faster than a
    // byte loop.
    let initial_len = memchr::memchr(b' ', after).unwrap_or(after.len());
    // One UTF-8 validation for both strings (the response is the only part of the line that
    // need not be ASCII).
    let text = scan::text(&s[..start + initial_len])?;
    let mechanism = mechanism_name(text.get(..mech_len)?);
    let initial = match initial_len {
        0 => None,
        _ => Some(text.get(start..)?.to_owned()),
    };
    scan::skip_spaces(&after[initial_len..])
        .is_empty()
        .then_some(Command::Auth { mechanism, initial })
}

fn parse_helo(arg: &str) -> Result<Host, CommandError> {
    let arg = arg.trim_end_matches(' ');
    if arg.is_empty() {
        return Err(CommandError::Syntax("HELO/EHLO needs a domain"));
    }
    Host::parse(arg, false).map_err(CommandError::BadHelo)
}

/// Strips `keyword` (like `FROM:`) case-insensitively, then the spaces many clients put before
/// the path even though the grammar has none.
fn after_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| arg[keyword.len()..].trim_start_matches(' '))
}

fn parse_mail(arg: &str, opts: ParseOptions) -> Result<Command, CommandError> {
    let rest =
        after_keyword(arg, "FROM:").ok_or(CommandError::Syntax("expected MAIL FROM:<address>"))?;
    // The SMTPUTF8 parameter follows the path but decides whether the path may be UTF-8, so
    // the path is parsed as UTF-8 first and checked once the parameters are known.
    let path_opts = PathOptions {
        utf8: true,
        lenient: opts.lenient_paths,
    };
    let (from, params) =
        path::parse_reverse_path(rest, path_opts).map_err(CommandError::BadSender)?;
    let params = MailParams::parse(params).map_err(CommandError::Param)?;
    let utf8_ok = opts.smtputf8_offered && params.smtputf8;
    if !utf8_ok && from.mailbox().is_some_and(path::Mailbox::is_utf8) {
        return Err(CommandError::BadSender(PathError::NonAscii));
    }
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(arg: &str, opts: ParseOptions) -> Result<Command, CommandError> {
    let rest =
        after_keyword(arg, "TO:").ok_or(CommandError::Syntax("expected RCPT TO:<address>"))?;
    let path_opts = PathOptions {
        utf8: opts.utf8_transaction,
        lenient: opts.lenient_paths,
    };
    let (to, params) =
        path::parse_forward_path(rest, path_opts).map_err(CommandError::BadRecipient)?;
    let params = RcptParams::parse(params).map_err(CommandError::Param)?;
    Ok(Command::Rcpt { to, params })
}

fn parse_bdat(arg: &str) -> Result<Command, CommandError> {
    let mut parts = arg.split(' ').filter(|p| !p.is_empty());
    let size = parts
        .next()
        .ok_or(CommandError::Syntax("BDAT needs a chunk size"))?;
    // RFC 3030: chunk-size = 1*DIGIT, so leading zeros are allowed however many there are;
    // what is left must fit in 64 bits.
    let significant = size.trim_start_matches('0');
    if significant.len() > 20 || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::Syntax("invalid BDAT chunk size"));
    }
    let size = (if significant.is_empty() {
        "0"
    } else {
        significant
    })
    .parse::<u64>()
    .map_err(|_| CommandError::Syntax("invalid BDAT chunk size"))?;
    let last = match parts.next() {
        None => false,
        Some(l) if l.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(CommandError::Syntax("expected LAST after the BDAT size")),
    };
    if parts.next().is_some() {
        return Err(CommandError::Syntax("too many BDAT arguments"));
    }
    Ok(Command::Bdat { size, last })
}

fn parse_auth(arg: &str) -> Result<Command, CommandError> {
    let mut parts = arg.split(' ').filter(|p| !p.is_empty());
    let mechanism = parts
        .next()
        .ok_or(CommandError::Syntax("AUTH needs a mechanism"))?;
    let mech_ok = mechanism.len() <= 20
        && mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !mech_ok {
        return Err(CommandError::Syntax("invalid SASL mechanism name"));
    }
    let initial = parts.next().map(str::to_owned);
    if parts.next().is_some() {
        return Err(CommandError::Syntax("too many AUTH arguments"));
    }
    Ok(Command::Auth {
        mechanism: mechanism_name(mechanism),
        initial,
    })
}

/// The uppercased mechanism name: a static string for the names SMTP servers offer, so that
/// they are not allocated.
fn mechanism_name(name: &str) -> Cow<'static, str> {
    const KNOWN: &[&str] = &[
        "PLAIN",
        "LOGIN",
        "CRAM-MD5",
        "XOAUTH2",
        "OAUTHBEARER",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
        "EXTERNAL",
        "ANONYMOUS",
        "GSSAPI",
    ];
    match KNOWN.iter().find(|known| known.eq_ignore_ascii_case(name)) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_ascii_uppercase()),
    }
}

impl fmt::Display for Command {
    /// The command line as sent on the wire, without CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Helo(h) => write!(f, "HELO {h}"),
            Command::Ehlo(h) => write!(f, "EHLO {h}"),
            Command::Mail { from, params } => write!(f, "MAIL FROM:{from}{params}"),
            Command::Rcpt { to, params } => write!(f, "RCPT TO:{to}{params}"),
            Command::Data => f.write_str("DATA"),
            Command::Bdat { size, last: true } => write!(f, "BDAT {size} LAST"),
            Command::Bdat { size, last: false } => write!(f, "BDAT {size}"),
            Command::Rset => f.write_str("RSET"),
            Command::Noop => f.write_str("NOOP"),
            Command::Quit => f.write_str("QUIT"),
            Command::Vrfy(s) => write!(f, "VRFY {s}"),
            Command::Expn(s) => write!(f, "EXPN {s}"),
            Command::Help(None) => f.write_str("HELP"),
            Command::Help(Some(t)) => write!(f, "HELP {t}"),
            Command::StartTls => f.write_str("STARTTLS"),
            Command::Auth {
                mechanism,
                initial: None,
            } => write!(f, "AUTH {mechanism}"),
            Command::Auth {
                mechanism,
                initial: Some(i),
            } => write!(f, "AUTH {mechanism} {i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::params::Body;

    fn parse(line: &str) -> Result<Command, CommandError> {
        Command::parse(line.as_bytes(), ParseOptions::default())
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(parse("quit"), Ok(Command::Quit));
        assert_eq!(parse("QuIt"), Ok(Command::Quit));
        assert_eq!(parse("StartTLS"), Ok(Command::StartTls));
        assert_eq!(parse("data"), Ok(Command::Data));
        assert_eq!(parse("noop whatever"), Ok(Command::Noop));
        assert_eq!(parse("QUITX"), Err(CommandError::Unrecognized));
        assert_eq!(parse(""), Err(CommandError::Unrecognized));
        assert_eq!(parse(" QUIT"), Err(CommandError::Unrecognized));
        assert_eq!(parse("STARTTLSX"), Err(CommandError::Unrecognized));
        assert_eq!(parse("GET / HTTP/1.0"), Err(CommandError::Unrecognized));
    }

    #[test]
    fn mail_and_rcpt() {
        let cmd = parse("MAIL FROM:<a@example.org> SIZE=10 BODY=8BITMIME").unwrap();
        let Command::Mail { from, params } = &cmd else {
            panic!()
        };
        assert_eq!(from.to_string(), "<a@example.org>");
        assert_eq!(params.body, Some(Body::EightBitMime));
        assert_eq!(
            cmd.to_string(),
            "MAIL FROM:<a@example.org> SIZE=10 BODY=8BITMIME"
        );
        assert!(matches!(
            parse("mail from: <a@example.org>"),
            Ok(Command::Mail { .. })
        ));
        assert!(matches!(
            parse("RCPT TO:<postmaster>"),
            Ok(Command::Rcpt { .. })
        ));
        assert_eq!(
            parse("MAIL TO:<a@b.c>"),
            Err(CommandError::Syntax("expected MAIL FROM:<address>"))
        );
        assert!(matches!(
            parse("MAIL FROM:a@b.c"),
            Err(CommandError::BadSender(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<a@b.c> FOO=1"),
            Err(CommandError::Param(ParamError::Unknown(_)))
        ));
        assert!(matches!(
            parse("MAIL FROM:<a@b.c> SIZE=x"),
            Err(CommandError::Param(ParamError::Invalid(_)))
        ));
    }

    #[test]
    fn utf8_needs_offer_and_parameter() {
        let offered = ParseOptions {
            smtputf8_offered: true,
            ..ParseOptions::default()
        };
        let line = "MAIL FROM:<jö@exämple.org> SMTPUTF8";
        assert!(Command::parse(line.as_bytes(), offered).is_ok());
        assert_eq!(
            parse(line),
            Err(CommandError::BadSender(PathError::NonAscii))
        );
        let no_param = "MAIL FROM:<jö@exämple.org>";
        assert_eq!(
            Command::parse(no_param.as_bytes(), offered),
            Err(CommandError::BadSender(PathError::NonAscii))
        );
        let rcpt = "RCPT TO:<ü@example.org>";
        assert_eq!(
            parse(rcpt),
            Err(CommandError::BadRecipient(PathError::NonAscii))
        );
        let in_tx = ParseOptions {
            utf8_transaction: true,
            ..ParseOptions::default()
        };
        assert!(Command::parse(rcpt.as_bytes(), in_tx).is_ok());
        assert_eq!(
            Command::parse(b"HELP \xff", in_tx),
            Err(CommandError::NotUtf8)
        );
    }

    #[test]
    fn helo_bdat_auth() {
        assert!(matches!(parse("EHLO mx.example.org"), Ok(Command::Ehlo(_))));
        assert!(matches!(parse("HELO [192.0.2.1]"), Ok(Command::Helo(_))));
        assert!(matches!(parse("EHLO"), Err(CommandError::Syntax(_))));
        assert!(matches!(parse("EHLO a b"), Err(CommandError::BadHelo(_))));
        assert_eq!(
            parse("BDAT 100 last"),
            Ok(Command::Bdat {
                size: 100,
                last: true
            })
        );
        assert_eq!(
            parse("BDAT 0"),
            Ok(Command::Bdat {
                size: 0,
                last: false
            })
        );
        assert!(parse("BDAT -1").is_err());
        // Leading zeros are part of RFC 3030's 1*DIGIT, however many.
        assert_eq!(
            parse("BDAT 00000000000000000000000042 LAST"),
            Ok(Command::Bdat {
                size: 42,
                last: true
            })
        );
        assert_eq!(
            parse("BDAT 0000000000000000000000"),
            Ok(Command::Bdat {
                size: 0,
                last: false
            })
        );
        assert!(parse("BDAT 18446744073709551616").is_err());
        assert!(parse("BDAT +1").is_err());
        assert!(parse("BDAT 1 FIRST").is_err());
        assert_eq!(
            parse("auth plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            })
        );
        assert!(parse("AUTH").is_err());
        assert_eq!(
            parse("DATA now"),
            Err(CommandError::Syntax("no arguments allowed"))
        );
        assert_eq!(parse("RSET "), Ok(Command::Rset));
        assert_eq!(
            parse("VRFY"),
            Err(CommandError::Syntax("VRFY needs an argument"))
        );
        assert_eq!(parse("HELP"), Ok(Command::Help(None)));
    }
}
