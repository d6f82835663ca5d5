//! Differential comparison of Petrel's command parser ([`Command::parse`]) with smtp-proto's
//! (`Request::parse`, Stalwart) on the same command line.
//!
//! This file is shared, by `#[path]`, between the `command_diff` fuzz target
//! (`fuzz/fuzz_targets/command_diff.rs`) and the test that replays its corpus
//! (`core/tests/command_diff.rs`), so that smtp-proto stays a dev-dependency of `petrel-core`.
//!
//! Every line of the input (split at LF, one trailing CR dropped) goes to both parsers: Petrel
//! gets the line as its framer hands it over, under [`OPTS`]; smtp-proto gets it with CRLF.
//! Lines holding another CR are skipped: Petrel's line framer deals with bare CRs before a line
//! reaches the parser. The parsers must name the same verb, agree on accepting or refusing the
//! line, and, where both accept, give the same mailbox, parameters, host, chunk size or
//! mechanism. Every known disagreement is a [`Reason`], each with the reason Petrel is right
//! (the same list is in `fuzz/README.md`); anything else is a [`Verdict::Disagree`], which the
//! fuzz target and the replay test turn into a panic.

use std::borrow::Cow;

use petrel_core::smtp::{
    Body, Command, CommandError, ForwardPath, Host, MailParams, Mailbox, ParamError, ParseOptions,
    PathError, RcptParams, Ret, ReversePath,
};
use smtp_proto::{MailFrom, RcptTo, Request};

/// The session Petrel parses in: SMTPUTF8 offered and in use (smtp-proto always takes UTF-8),
/// angle brackets required (smtp-proto requires them too).
pub const OPTS: ParseOptions = ParseOptions {
    smtputf8_offered: true,
    utf8_transaction: true,
    lenient_paths: false,
};

/// A known disagreement, and why Petrel's answer is the right one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// smtp-proto knows LHLO (LMTP), ETRN, ATRN and BURL; Petrel implements none of them, so
    /// they are unrecognised commands (RFC 5321 section 4.2.4: 500/502).
    ExtensionVerb,
    /// smtp-proto skips spaces before the verb and takes any whitespace (a tab) after it; RFC
    /// 5321 section 4.1.1 puts the verb first and separates arguments with SP.
    VerbSyntax,
    /// smtp-proto ignores arguments after DATA, RSET, QUIT and STARTTLS; RFC 5321 section
    /// 4.1.1 (and RFC 3207 section 4) give them none, so Petrel answers 501.
    ArgumentsNotAllowed,
    /// smtp-proto takes any word as the HELO/EHLO argument; RFC 5321 section 4.1.1.1 requires
    /// a domain or an address literal.
    HeloSyntax,
    /// smtp-proto accepts addresses RFC 5321 section 4.1.2 does not (a dot at the end of the
    /// local part, an empty or malformed domain, `<postmaster>` as a sender, characters outside
    /// atext, text after the closing bracket...), or refuses ones it allows (address literals,
    /// quoted strings with specials). Petrel follows the grammar of section 4.1.2.
    PathSyntax,
    /// A MAIL with a non-ASCII address and no SMTPUTF8 parameter: RFC 6531 section 3.4 refuses
    /// it; smtp-proto does not look.
    Utf8WithoutSmtputf8,
    /// An ESMTP parameter of an extension Petrel does not implement (or offer): RFC 5321
    /// section 4.1.1.11 and RFC 1869 answer 555 for it.
    UnimplementedParameter,
    /// A parameter value outside its RFC's syntax that smtp-proto lets through or reads
    /// differently (RFC 1870 SIZE, RFC 3461 NOTIFY/RET/ENVID/ORCPT, RFC 4954 AUTH=, RFC 6152
    /// BODY, RFC 6531 SMTPUTF8 without a value), or a keyword that is not an RFC 5321
    /// esmtp-keyword. Checked against the grammar here, independently of Petrel's code.
    ParameterSyntax,
    /// The same parameter twice: which value holds is ambiguous, and Petrel answers 501
    /// (smtp-proto keeps the last one, or ORs both BODY values).
    ParameterTwice,
    /// `SIZE` or a BDAT chunk size of 20 digits that overflows: RFC 1870 allows 1*20DIGIT,
    /// and RFC 3030 an arbitrary size; Petrel reads it as "too big" instead of refusing it.
    HugeNumber,
    /// An AUTH line outside RFC 4954 section 4's `AUTH mechanism [SP initial-response]`: a
    /// mechanism name that is not an RFC 4422 `sasl-mech` (1 to 20 of A-Z, 0-9, `-`, `_`), or
    /// more words after the initial response. smtp-proto takes any word and ignores the rest
    /// (and refuses names it cannot hash, which Petrel leaves to the session's 504).
    AuthMechanism,
    /// VRFY/EXPN with an argument longer than 256 octets or quoted: smtp-proto refuses it or
    /// reads it differently; RFC 5321 section 4.1.1.6 only bounds it by the line length.
    VrfyArgument,
    /// BDAT followed by something other than `LAST`: smtp-proto ignores a second argument that
    /// is not a word; RFC 3030 section 2 allows only `BDAT chunk-size [SP "LAST"]`.
    BdatSyntax,
    /// The line is not UTF-8: RFC 5321 commands are ASCII and RFC 6531 allows UTF-8 only.
    NotUtf8,
    /// Non-ASCII octets decoded from xtext (`ENVID`, `ORCPT`, `AUTH=`): smtp-proto makes one
    /// character of each octet (Latin-1); Petrel decodes the octets as UTF-8 (RFC 6533).
    XtextNonAscii,
    /// An `AUTH=` identity or ORCPT address longer than 256 octets: smtp-proto's limit for
    /// addresses; RFC 4954 section 5 and RFC 3461 section 4.2 bound them by the line only
    /// (Petrel takes ORCPT up to RFC 3461's 500 octets once re-encoded).
    XtextLength,
    /// An ORCPT address type other than rfc822: RFC 3461 section 4.2 allows any atom (RFC 6533
    /// adds utf-8); smtp-proto knows rfc822 only.
    OrcptAddrType,
}

/// The outcome of comparing one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Both parsers say the same.
    Agree,
    /// They differ in a known way, with Petrel right.
    Allowed(Reason),
    /// An unexplained difference: a bug in Petrel, or a reason to add.
    Disagree(String),
}

/// Fuzz target body; also replayed by the corpus test. Panics on a [`Verdict::Disagree`].
pub fn command_diff(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        assert_explained(line, &compare_line(line));
    }
}

/// Panics, naming the line, if `verdict` is a [`Verdict::Disagree`].
pub fn assert_explained(line: &[u8], verdict: &Verdict) {
    if let Verdict::Disagree(why) = verdict {
        panic!("{:?}: {why}", String::from_utf8_lossy(line));
    }
}

/// Compares the parsers on one line (without its LF; a trailing CR is dropped).
pub fn compare_line(line: &[u8]) -> Verdict {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.contains(&b'\r') || line.contains(&b'\n') {
        return Verdict::Agree;
    }
    let petrel = Command::parse(line, OPTS);
    let mut wire = line.to_vec();
    wire.extend_from_slice(b"\r\n");
    let proto = Request::parse(&mut wire.iter());
    match (&petrel, &proto) {
        (Ok(cmd), Ok(req)) => compare_accepted(line, cmd, req),
        (Err(_), Err(_)) => Verdict::Agree,
        (Err(e), Ok(req)) => explain_petrel_refusal(line, e, req),
        (Ok(cmd), Err(e)) => explain_proto_refusal(line, cmd, e),
    }
}

/// The verb as RFC 5321 reads it: the octets before the first SP.
fn verb_field(line: &[u8]) -> &[u8] {
    line.split(|&b| b == b' ').next().unwrap_or_default()
}

fn verb_is_plain(line: &[u8]) -> bool {
    let verb = verb_field(line);
    !verb.is_empty() && verb.iter().all(u8::is_ascii_alphabetic)
}

fn args_of(line: &[u8]) -> &[u8] {
    line.get(verb_field(line).len() + 1..).unwrap_or_default()
}

fn disagree(what: impl Into<String>) -> Verdict {
    Verdict::Disagree(what.into())
}

/// Petrel refused a line smtp-proto accepted.
fn explain_petrel_refusal(line: &[u8], e: &CommandError, req: &Request<Cow<'_, str>>) -> Verdict {
    use Reason::*;
    let allowed = match (e, req) {
        (_, Request::Lhlo { .. } | Request::Etrn { .. } | Request::Atrn { .. })
        | (_, Request::Burl { .. }) => Some(ExtensionVerb),
        (CommandError::NotUtf8, _) => Some(NotUtf8),
        (CommandError::Unrecognized, _) if !verb_is_plain(line) => Some(VerbSyntax),
        (_, _) if !verb_field(line).eq_ignore_ascii_case(req.name().as_bytes()) => Some(VerbSyntax),
        (CommandError::Syntax("no arguments allowed"), _) => Some(ArgumentsNotAllowed),
        (CommandError::BadHelo(_), Request::Helo { host } | Request::Ehlo { host }) => {
            // smtp-proto stops at the first space; a lone, well-formed domain must pass.
            let whole = String::from_utf8_lossy(args_of(line));
            (whole != *host || !domain_ok(host, false)).then_some(HeloSyntax)
        }
        (CommandError::BadSender(PathError::NonAscii), Request::Mail { .. }) => {
            Some(Utf8WithoutSmtputf8)
        }
        (CommandError::BadSender(_), Request::Mail { from }) => {
            path_refusal(line, e, &from.address, false)
        }
        (CommandError::BadRecipient(_), Request::Rcpt { to }) => {
            path_refusal(line, e, &to.address, true)
        }
        (CommandError::Syntax(_), Request::Mail { .. } | Request::Rcpt { .. }) => {
            // "MAIL FROM:" / "RCPT TO:" spelled in a way smtp-proto tolerates (spaces around
            // the colon, no colon).
            let keyword: &[u8] = if req.name() == "MAIL" {
                b"FROM:"
            } else {
                b"TO:"
            };
            let args = args_of(line);
            (!args
                .get(..keyword.len())
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword)))
            .then_some(PathSyntax)
        }
        (
            CommandError::Param(ParamError::Unknown(_)),
            Request::Mail { .. } | Request::Rcpt { .. },
        ) => Some(UnimplementedParameter),
        (
            CommandError::Param(ParamError::Duplicate(_)),
            Request::Mail { .. } | Request::Rcpt { .. },
        ) => Some(ParameterTwice),
        (
            CommandError::Param(ParamError::Invalid(name)),
            Request::Mail { .. } | Request::Rcpt { .. },
        ) => params_after_path(line)
            .iter()
            .any(|(k, v)| {
                if *name == "parameter keyword" {
                    !esmtp_keyword_ok(k)
                } else {
                    k.eq_ignore_ascii_case(name) && !param_value_ok(name, v.as_deref())
                }
            })
            .then_some(ParameterSyntax),
        (CommandError::Syntax(_), Request::Auth { .. }) => {
            let args = String::from_utf8_lossy(args_of(line));
            let words: Vec<&str> = args.split(' ').filter(|w| !w.is_empty()).collect();
            let mech_ok = words.first().is_some_and(|m| {
                (1..=20).contains(&m.len())
                    && m.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
            (!mech_ok || words.len() > 2).then_some(AuthMechanism)
        }
        (CommandError::Syntax(_), Request::Bdat { .. }) => {
            let args = String::from_utf8_lossy(args_of(line));
            let words: Vec<&str> = args.split(' ').filter(|w| !w.is_empty()).collect();
            let ok = match words.as_slice() {
                [size] | [size, _] => {
                    size.bytes().all(|b| b.is_ascii_digit())
                        && size.trim_start_matches('0').parse::<u64>().is_ok()
                        && words.get(1).is_none_or(|l| l.eq_ignore_ascii_case("LAST"))
                }
                _ => false,
            };
            (!ok).then_some(BdatSyntax)
        }
        _ => None,
    };
    match allowed {
        Some(r) => Verdict::Allowed(r),
        None => disagree(format!("Petrel refuses ({e}), smtp-proto accepts {req:?}")),
    }
}

/// Petrel refused a path smtp-proto read as `address`: allowed when that address is not a
/// valid RFC 5321 mailbox itself (or is the null path for a line that is not `<>`), or when
/// smtp-proto did not take the path as written (it drops quotes, backslashes and source routes
/// wherever they are, and stops at the first `>`), or when the path is followed by something
/// other than SP and parameters.
fn path_refusal(line: &[u8], e: &CommandError, address: &str, rcpt: bool) -> Option<Reason> {
    if let CommandError::BadSender(PathError::Syntax(why))
    | CommandError::BadRecipient(PathError::Syntax(why)) = e
        && *why == "garbage after the path"
    {
        return Some(Reason::PathSyntax);
    }
    let args = String::from_utf8_lossy(args_of(line));
    let inner = args
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(inner, _)| inner);
    // RFC 5321 `A-d-l = At-domain *( "," At-domain )`, ended by the first ":".
    let written = match inner {
        Some(inner) if inner.starts_with('@') => {
            let Some((route, mailbox)) = inner.split_once(':') else {
                return Some(Reason::PathSyntax);
            };
            let route_ok = route
                .split(',')
                .all(|d| d.strip_prefix('@').is_some_and(|d| domain_ok(d, true)));
            if !route_ok {
                return Some(Reason::PathSyntax);
            }
            Some(mailbox)
        }
        other => other,
    };
    if written != Some(address) && !address.is_empty() {
        return Some(Reason::PathSyntax);
    }
    let valid = if address.is_empty() {
        // smtp-proto's null path: `<>`, or `<postmaster>` (which it empties).
        let text = String::from_utf8_lossy(args_of(line)).to_ascii_uppercase();
        if rcpt {
            text.contains("<POSTMASTER>")
        } else {
            text.contains("<>")
        }
    } else {
        mailbox_ok(address)
    };
    (!valid).then_some(Reason::PathSyntax)
}

/// Petrel accepted a line smtp-proto refused.
fn explain_proto_refusal(line: &[u8], cmd: &Command, e: &smtp_proto::Error) -> Verdict {
    use Reason::*;
    let args = String::from_utf8_lossy(args_of(line));
    let allowed = match cmd {
        Command::Mail { from, params } => {
            if from.mailbox().is_some_and(odd_for_proto) {
                Some(PathSyntax)
            } else if params.size.is_some_and(|s| s > usize::MAX as u64 / 10) {
                Some(HugeNumber)
            } else if params
                .envid
                .as_deref()
                .into_iter()
                .chain(params.auth.as_deref())
                .any(|v| !v.is_ascii() || v.is_empty())
            {
                Some(XtextNonAscii)
            } else if params.auth.as_deref().is_some_and(|a| a.len() > 256) {
                Some(XtextLength)
            } else {
                None
            }
        }
        Command::Rcpt { to, params } => {
            if to.mailbox().is_some_and(odd_for_proto) {
                Some(PathSyntax)
            } else if let Some(orcpt) = &params.orcpt {
                if !orcpt.addr_type.eq_ignore_ascii_case("rfc822") {
                    Some(OrcptAddrType)
                } else if !orcpt.address.is_ascii() {
                    Some(XtextNonAscii)
                } else if orcpt.address.len() > 256 {
                    Some(XtextLength)
                } else {
                    None
                }
            } else {
                None
            }
        }
        Command::Bdat { size, .. } if *size > usize::MAX as u64 / 10 => Some(HugeNumber),
        Command::Auth { mechanism, .. } if mechanism_flag(mechanism).is_none() => {
            Some(AuthMechanism)
        }
        Command::Vrfy(s) | Command::Expn(s) if s.len() > 256 || s.contains(['"', '\\']) => {
            Some(VrfyArgument)
        }
        _ => None,
    };
    match allowed {
        Some(r) => Verdict::Allowed(r),
        None => disagree(format!(
            "Petrel accepts {cmd:?}, smtp-proto refuses ({e:?}); arguments {args:?}"
        )),
    }
}

/// Mailboxes RFC 5321 allows that smtp-proto's address scanner refuses: address literals,
/// quoted local parts, and addresses longer than its 256-octet limit.
fn odd_for_proto(m: &Mailbox) -> bool {
    matches!(m.host, Host::Literal(_)) || m.local.starts_with('"') || m.to_string().len() > 256
}

/// Both accepted: same verb and same values.
fn compare_accepted(line: &[u8], cmd: &Command, req: &Request<Cow<'_, str>>) -> Verdict {
    if cmd.verb() != req.name() {
        return disagree(format!("verbs differ: Petrel {cmd:?}, smtp-proto {req:?}"));
    }
    match (cmd, req) {
        (Command::Helo(h), Request::Helo { host }) | (Command::Ehlo(h), Request::Ehlo { host }) => {
            // Equal as written, or the same value (`[096.0.2.1]` is printed `[96.0.2.1]`).
            if h.to_string() == *host || Host::parse(host, false).as_ref() == Ok(h) {
                Verdict::Agree
            } else {
                disagree(format!("hosts differ: Petrel {h}, smtp-proto {host:?}"))
            }
        }
        (Command::Mail { from, params }, Request::Mail { from: proto }) => {
            let address = match from {
                ReversePath::Null => String::new(),
                ReversePath::Mailbox(m) => plain_address(m),
            };
            if address != proto.address {
                return disagree(format!(
                    "senders differ: Petrel {address:?}, smtp-proto {:?}",
                    proto.address
                ));
            }
            compare_mail_params(params, proto)
        }
        (Command::Rcpt { to, params }, Request::Rcpt { to: proto }) => {
            let address = match to {
                // smtp-proto gives `<postmaster>` as an empty address.
                ForwardPath::Postmaster(_) => String::new(),
                ForwardPath::Mailbox(m) => plain_address(m),
            };
            if address != proto.address {
                return disagree(format!(
                    "recipients differ: Petrel {address:?}, smtp-proto {:?}",
                    proto.address
                ));
            }
            compare_rcpt_params(params, proto)
        }
        (
            Command::Bdat { size, last },
            Request::Bdat {
                chunk_size,
                is_last,
            },
        ) => {
            if *size == *chunk_size as u64 && last == is_last {
                Verdict::Agree
            } else {
                disagree(format!(
                    "BDAT differs: Petrel {size} {last}, smtp-proto {chunk_size} {is_last}"
                ))
            }
        }
        (
            Command::Auth { mechanism, initial },
            Request::Auth {
                mechanism: m,
                initial_response,
            },
        ) => {
            // smtp-proto reads names into flags, by a hash of their letters and digits; the
            // name Petrel read must give the same flag on its own.
            if mechanism_flag(mechanism) != Some(*m) {
                return disagree(format!(
                    "mechanisms differ: Petrel {mechanism}, smtp-proto flag {m:#x}"
                ));
            }
            let initial = initial.as_deref().unwrap_or("");
            if initial == initial_response {
                Verdict::Agree
            } else {
                disagree(format!(
                    "initial responses differ: Petrel {initial:?}, smtp-proto {initial_response:?}"
                ))
            }
        }
        (Command::Vrfy(s), Request::Vrfy { value })
        | (Command::Expn(s), Request::Expn { value }) => {
            if s.contains(['"', '\\']) || s.trim_matches(' ').contains(' ') {
                Verdict::Allowed(Reason::VrfyArgument)
            } else if s.trim_matches(' ') == value {
                Verdict::Agree
            } else {
                disagree(format!(
                    "arguments differ: Petrel {s:?}, smtp-proto {value:?}"
                ))
            }
        }
        _ => {
            let _ = line;
            Verdict::Agree
        }
    }
}

/// smtp-proto's form of a mailbox: the local part without quotes and escapes, `@`, the domain.
fn plain_address(m: &Mailbox) -> String {
    format!("{}@{}", m.local_unquoted(), m.host)
}

fn compare_mail_params(p: &MailParams, proto: &MailFrom<Cow<'_, str>>) -> Verdict {
    use smtp_proto::*;
    let mut diffs = Vec::new();
    if p.size.unwrap_or(0) != proto.size as u64 {
        diffs.push(format!("SIZE {:?} / {}", p.size, proto.size));
    }
    let body = match p.body {
        None => 0,
        Some(Body::SevenBit) => MAIL_BODY_7BIT,
        Some(Body::EightBitMime) => MAIL_BODY_8BITMIME,
        Some(Body::BinaryMime) => MAIL_BODY_BINARYMIME,
    };
    let body_mask = MAIL_BODY_7BIT | MAIL_BODY_8BITMIME | MAIL_BODY_BINARYMIME;
    if body != proto.flags & body_mask {
        diffs.push(format!(
            "BODY {:?} / {:#x}",
            p.body,
            proto.flags & body_mask
        ));
    }
    if p.smtputf8 != (proto.flags & MAIL_SMTPUTF8 != 0) {
        diffs.push("SMTPUTF8".into());
    }
    let ret = match p.ret {
        None => 0,
        Some(Ret::Full) => MAIL_RET_FULL,
        Some(Ret::Headers) => MAIL_RET_HDRS,
    };
    if ret != proto.flags & (MAIL_RET_FULL | MAIL_RET_HDRS) {
        diffs.push(format!("RET {:?} / {:#x}", p.ret, proto.flags));
    }
    let mut xtext_non_ascii = false;
    for (name, ours, theirs) in [
        ("ENVID", &p.envid, &proto.env_id),
        ("AUTH", &p.auth, &proto.auth),
    ] {
        // RFC 4954 section 5: `AUTH=<>` (no identity) is an empty identity to Petrel;
        // smtp-proto keeps `<>`, which it also gives for the xtext `+3C+3E`.
        let theirs = theirs.as_deref();
        let no_identity = name == "AUTH" && ours.as_deref() == Some("") && theirs == Some("<>");
        if ours.as_deref() != theirs && !no_identity {
            if ours.as_deref().is_some_and(|v| !v.is_ascii()) {
                xtext_non_ascii = true;
            } else {
                diffs.push(format!("{name} {ours:?} / {theirs:?}"));
            }
        }
    }
    params_verdict(diffs, xtext_non_ascii)
}

fn compare_rcpt_params(p: &RcptParams, proto: &RcptTo<Cow<'_, str>>) -> Verdict {
    use smtp_proto::*;
    let mut diffs = Vec::new();
    let notify = p.notify.map_or(0, |n| {
        (if n.never { RCPT_NOTIFY_NEVER } else { 0 })
            | (if n.success { RCPT_NOTIFY_SUCCESS } else { 0 })
            | (if n.failure { RCPT_NOTIFY_FAILURE } else { 0 })
            | (if n.delay { RCPT_NOTIFY_DELAY } else { 0 })
    });
    let mask = RCPT_NOTIFY_NEVER | RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_DELAY;
    if notify != proto.flags & mask {
        diffs.push(format!("NOTIFY {:?} / {:#x}", p.notify, proto.flags & mask));
    }
    let mut xtext_non_ascii = false;
    let ours = p.orcpt.as_ref().map(|o| o.address.as_str());
    if ours != proto.orcpt.as_deref() {
        if ours.is_some_and(|v| !v.is_ascii()) {
            xtext_non_ascii = true;
        } else {
            diffs.push(format!("ORCPT {:?} / {:?}", p.orcpt, proto.orcpt));
        }
    }
    params_verdict(diffs, xtext_non_ascii)
}

fn params_verdict(diffs: Vec<String>, xtext_non_ascii: bool) -> Verdict {
    if !diffs.is_empty() {
        disagree(format!(
            "parameters differ (Petrel / smtp-proto): {}",
            diffs.join("; ")
        ))
    } else if xtext_non_ascii {
        Verdict::Allowed(Reason::XtextNonAscii)
    } else {
        Verdict::Agree
    }
}

/// smtp-proto's flag for a mechanism name, found by parsing an AUTH line with it.
fn mechanism_flag(name: &str) -> Option<u64> {
    let wire = format!("AUTH {name}\r\n");
    match Request::parse(&mut wire.as_bytes().iter()) {
        Ok(Request::Auth { mechanism, .. }) => Some(mechanism),
        _ => None,
    }
}

// Independent checks of the RFC grammar, so that a disagreement is excused only when the
// input really is outside it (and not because Petrel's own parser says so).

/// RFC 5321 `Domain` (letters, digits and hyphens in dot-separated labels; non-ASCII octets
/// count as letters when `utf8`), or an address literal in brackets.
fn domain_ok(d: &str, utf8: bool) -> bool {
    if let Some(inner) = d.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return address_literal_ok(inner);
    }
    (1..=255).contains(&d.len())
        && d.split('.').all(|label| {
            let b = label.as_bytes();
            let let_dig = |c: u8| c.is_ascii_alphanumeric() || (utf8 && c >= 0x80);
            (1..=63).contains(&b.len())
                && let_dig(b[0])
                && let_dig(b[b.len() - 1])
                && b.iter().all(|&c| let_dig(c) || c == b'-')
        })
}

/// RFC 5321 section 4.1.3: an IPv4 address, `IPv6:` and an IPv6 address, or a
/// general address literal (`tag:content`).
fn address_literal_ok(inner: &str) -> bool {
    if inner.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let parts: Vec<&str> = inner.split('.').collect();
        return parts.len() == 4
            && parts
                .iter()
                .all(|p| (1..=3).contains(&p.len()) && p.parse::<u8>().is_ok());
    }
    if let Some(v6) = inner
        .get(..5)
        .filter(|tag| tag.eq_ignore_ascii_case("IPv6:"))
        .map(|tag| &inner[tag.len()..])
    {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    inner.split_once(':').is_some_and(|(tag, content)| {
        esmtp_keyword_ok(tag)
            && !tag.ends_with('-')
            && !content.is_empty()
            && content
                .bytes()
                .all(|b| (33..=90).contains(&b) || (94..=126).contains(&b))
    })
}

/// RFC 5321 `Mailbox` with a dot-string local part (smtp-proto strips the quotes of a quoted
/// one, which `path_refusal` detects before asking this), UTF-8 allowed (RFC 6531).
fn mailbox_ok(m: &str) -> bool {
    let Some((local, domain)) = m.rsplit_once('@') else {
        return false;
    };
    let atext =
        |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c) || c >= 0x80;
    (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(atext))
        && domain_ok(domain, true)
}

/// RFC 5321 `esmtp-keyword`.
fn esmtp_keyword_ok(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// The parameters after the path of a MAIL or RCPT line, as `keyword[=value]` words.
fn params_after_path(line: &[u8]) -> Vec<(String, Option<String>)> {
    let args = String::from_utf8_lossy(args_of(line)).into_owned();
    let Some((_, rest)) = args.split_once('>') else {
        return Vec::new();
    };
    rest.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (w.to_owned(), None),
        })
        .collect()
}

/// RFC 3461 `xtext` (UTF-8 allowed, RFC 6533): the decoded octets, or `None`.
fn xtext(v: &str) -> Option<Vec<u8>> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex
                    .iter()
                    .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
                {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'=' => return None,
            c if (0x21..=0x7e).contains(&c) || c >= 0x80 => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out.clone()).ok()?;
    Some(out)
}

/// The length of the xtext form of `octets` as passed on (non-ASCII, `+` and `=` encoded).
fn xtext_len(octets: &[u8]) -> usize {
    octets
        .iter()
        .map(|&c| {
            if (0x21..=0x7e).contains(&c) && c != b'+' && c != b'=' {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Whether a parameter value follows its RFC's grammar.
fn param_value_ok(name: &str, v: Option<&str>) -> bool {
    let is = |v: &str, words: &[&str]| words.iter().any(|w| v.eq_ignore_ascii_case(w));
    match (name, v) {
        ("SIZE", Some(v)) => (1..=20).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()),
        ("BODY", Some(v)) => is(v, &["7BIT", "8BITMIME", "BINARYMIME"]),
        ("RET", Some(v)) => is(v, &["FULL", "HDRS"]),
        ("SMTPUTF8", v) => v.is_none(),
        ("ENVID", Some(v)) => xtext(v).is_some_and(|o| !o.is_empty() && xtext_len(&o) <= 100),
        ("AUTH", Some(v)) => v == "<>" || xtext(v).is_some_and(|o| !o.is_empty()),
        ("NOTIFY", Some(v)) => {
            v.eq_ignore_ascii_case("NEVER")
                || v.split(',')
                    .all(|e| is(e, &["SUCCESS", "FAILURE", "DELAY"]))
        }
        ("ORCPT", Some(v)) => v.split_once(';').is_some_and(|(t, a)| {
            esmtp_keyword_ok(t) && xtext(a).is_some_and(|o| !o.is_empty() && xtext_len(&o) <= 500)
        }),
        _ => false,
    }
}
