//! SMTP commands: parsing one command line (without its CRLF) and formatting it back.

use std::fmt;

use thiserror::Error;

use super::params::{MailParams, ParamError, RcptParams};
use super::path::{self, ForwardPath, Host, PathError, PathOptions, ReversePath};

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
        /// The SASL mechanism, uppercased.
        mechanism: String,
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

/// Reads a verb of up to eight bytes as one integer, ASCII letters uppercased, so that
/// recognising it is a single integer match.
fn verb_key(verb: &[u8]) -> u64 {
    let mut key = 0u64;
    for &b in verb {
        key = (key << 8) | u64::from(b.to_ascii_uppercase());
    }
    key
}

const fn key(verb: &[u8]) -> u64 {
    let mut key = 0u64;
    let mut i = 0;
    while i < verb.len() {
        key = (key << 8) | verb[i] as u64;
        i += 1;
    }
    key
}

const HELO: u64 = key(b"HELO");
const EHLO: u64 = key(b"EHLO");
const MAIL: u64 = key(b"MAIL");
const RCPT: u64 = key(b"RCPT");
const DATA: u64 = key(b"DATA");
const BDAT: u64 = key(b"BDAT");
const RSET: u64 = key(b"RSET");
const NOOP: u64 = key(b"NOOP");
const QUIT: u64 = key(b"QUIT");
const VRFY: u64 = key(b"VRFY");
const EXPN: u64 = key(b"EXPN");
const HELP: u64 = key(b"HELP");
const AUTH: u64 = key(b"AUTH");
const STARTTLS: u64 = key(b"STARTTLS");

impl Command {
    /// Parses one command line, without its CRLF.
    pub fn parse(line: &[u8], opts: ParseOptions) -> Result<Command, CommandError> {
        let verb_len = memchr::memchr(b' ', line).unwrap_or(line.len());
        // Verbs are letters only; anything else (a NUL, a digit) would otherwise vanish into
        // the integer key and let `\0QUIT` pass for QUIT.
        if verb_len == 0 || verb_len > 8 || !line[..verb_len].iter().all(u8::is_ascii_alphabetic) {
            return Err(CommandError::Unrecognized);
        }
        let verb = verb_key(&line[..verb_len]);
        let rest = line.get(verb_len + 1..).unwrap_or_default();
        let arg = std::str::from_utf8(rest).map_err(|_| CommandError::NotUtf8)?;
        let no_arg = |cmd: Command| {
            if arg.trim_matches(' ').is_empty() {
                Ok(cmd)
            } else {
                Err(CommandError::Syntax("no arguments allowed"))
            }
        };
        match verb {
            MAIL => parse_mail(arg, opts),
            RCPT => parse_rcpt(arg, opts),
            DATA => no_arg(Command::Data),
            BDAT => parse_bdat(arg),
            EHLO => parse_helo(arg).map(Command::Ehlo),
            HELO => parse_helo(arg).map(Command::Helo),
            RSET => no_arg(Command::Rset),
            NOOP => Ok(Command::Noop),
            QUIT => no_arg(Command::Quit),
            VRFY => required(arg, "VRFY needs an argument").map(Command::Vrfy),
            EXPN => required(arg, "EXPN needs an argument").map(Command::Expn),
            HELP => Ok(Command::Help(
                Some(arg.trim_matches(' '))
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned),
            )),
            STARTTLS => no_arg(Command::StartTls),
            AUTH => parse_auth(arg),
            _ => Err(CommandError::Unrecognized),
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

fn required(arg: &str, what: &'static str) -> Result<String, CommandError> {
    let arg = arg.trim_matches(' ');
    if arg.is_empty() {
        Err(CommandError::Syntax(what))
    } else {
        Ok(arg.to_owned())
    }
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
    // RFC 3030: chunk-size = 1*DIGIT, leading zeros however many.
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
        mechanism: mechanism.to_ascii_uppercase(),
        initial,
    })
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
