//! RFC 5321: sessions, commands, sequencing, replies, paths, the postmaster, limits,
//! transparency and timeouts.

use std::time::Duration;

use petrel_core::smtp::Reply;

use crate::case::{Case, Expect, Feature, Group, Level, MESSAGE, Step, Verdict};
use crate::interp::{Ctx, escape, show};

use Group::{Limits, Paths, Postmaster, Replies, Sequencing, Timeouts, Transparency};
use Level::{May, Must, Should};

fn case(id: &str, section: &str, level: Level, group: Group, title: &str) -> Case {
    Case::new(id, 5321, section, level, group, title)
}

/// The greeting (the first reply of the session) names the server: `220 SP domain`.
fn greeting_names_host(ctx: &Ctx) -> Verdict {
    let Some((greeting, _)) = ctx.replies.first() else {
        return Verdict::fail("no greeting recorded");
    };
    let first = greeting.lines().next().unwrap_or("");
    match first.split_whitespace().next() {
        Some(name) if !name.is_empty() => Verdict::Pass,
        _ => Verdict::fail(format!(
            "the greeting `{}` does not start with the server's name",
            show(greeting)
        )),
    }
}

/// The first line of an EHLO reply starts with the server's domain.
fn ehlo_names_host(ctx: &Ctx) -> Verdict {
    let Some(reply) = &ctx.ehlo_reply else {
        return Verdict::fail("no EHLO reply");
    };
    match reply
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().next())
    {
        Some(_) => Verdict::Pass,
        None => Verdict::fail(format!(
            "the EHLO reply `{}` does not start with a domain",
            show(reply)
        )),
    }
}

/// Keywords that only an EHLO reply may carry.
const EXTENSION_KEYWORDS: &[&str] = &[
    "PIPELINING",
    "SIZE",
    "8BITMIME",
    "STARTTLS",
    "AUTH",
    "DSN",
    "CHUNKING",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "BINARYMIME",
];

fn helo_reply_plain(reply: &Reply, _: &Ctx) -> Verdict {
    if reply.code != 250 {
        return Verdict::fail("HELO was not accepted");
    }
    let keywords: Vec<&str> = reply
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|k| EXTENSION_KEYWORDS.iter().any(|e| e.eq_ignore_ascii_case(k)))
        .collect();
    if keywords.is_empty() {
        Verdict::Pass
    } else {
        Verdict::fail(format!(
            "the HELO reply lists extensions: {}",
            keywords.join(", ")
        ))
    }
}

fn repeated_ehlo(reply: &Reply, _: &Ctx) -> Verdict {
    match reply.code {
        250 => Verdict::Pass,
        500 | 501 | 502 | 550 => Verdict::skip("the server refuses a repeated EHLO"),
        _ => Verdict::fail(
            "a repeated EHLO must reset the session (250), or be refused with 500, 501, 502 or 550",
        ),
    }
}

fn noop_argument_accepted(reply: &Reply, _: &Ctx) -> Verdict {
    if reply.code == 250 {
        Verdict::Pass
    } else {
        Verdict::skip("the server refuses arguments to NOOP: a long line cannot be probed with it")
    }
}

fn vrfy_reply(reply: &Reply, _: &Ctx) -> Verdict {
    match reply.code {
        250 | 251 | 252 | 550 | 551 | 553 => Verdict::Pass,
        500 | 502 => Verdict::fail(
            "VRFY is required (section 4.5.1); a server that disables it must answer 252 \
             (section 7.3)",
        ),
        _ => Verdict::fail("expected 250, 251, 252, 550, 551 or 553"),
    }
}

fn recognised(reply: &Reply, _: &Ctx) -> Verdict {
    if reply.code == 500 {
        Verdict::fail("command not recognised")
    } else {
        Verdict::Pass
    }
}

fn not_503(reply: &Reply, _: &Ctx) -> Verdict {
    match reply.code {
        503 => Verdict::fail("refused before EHLO"),
        500 => Verdict::fail("command not recognised"),
        _ => Verdict::Pass,
    }
}

fn not_line_too_long(reply: &Reply, _: &Ctx) -> Verdict {
    if reply.code == 500 {
        Verdict::fail("a 512-octet command line was refused as too long")
    } else {
        Verdict::Pass
    }
}

/// Every reply line of the session: three digits, then `-` (not last) or space/end (last),
/// CRLF, at most 512 octets, one code per reply.
fn replies_well_formed(ctx: &Ctx) -> Verdict {
    for (_, raw) in &ctx.replies {
        let lines: Vec<&[u8]> = raw.split_inclusive(|&b| b == b'\n').collect();
        let code = &raw[..3.min(raw.len())];
        for (i, line) in lines.iter().enumerate() {
            let last = i + 1 == lines.len();
            let shown = escape(line, 120);
            if !line.ends_with(b"\r\n") || line[..line.len() - 2].contains(&b'\r') {
                return Verdict::fail(format!("reply line not ended by CRLF: `{shown}`"));
            }
            if line.len() < 5 || !line[..3].iter().all(u8::is_ascii_digit) || &line[..3] != code {
                return Verdict::fail(format!("malformed reply line: `{shown}`"));
            }
            let sep = line[3];
            let ok = if last {
                sep == b' ' || sep == b'\r'
            } else {
                sep == b'-'
            };
            if !ok {
                return Verdict::fail(format!("bad separator after the code: `{shown}`"));
            }
        }
    }
    Verdict::Pass
}

fn reply_lines_within_512(ctx: &Ctx) -> Verdict {
    for (_, raw) in &ctx.replies {
        for line in raw.split_inclusive(|&b| b == b'\n') {
            if line.len() > 512 {
                return Verdict::fail(format!(
                    "a reply line of {} octets: `{}`",
                    line.len(),
                    escape(line, 80)
                ));
            }
        }
    }
    Verdict::Pass
}

fn message_with_line(len: usize, first: u8) -> Vec<u8> {
    let mut m = b"From: <{from}>\r\nTo: <{rcpt}>\r\nSubject: long line\r\n\r\n".to_vec();
    m.push(first);
    m.extend(std::iter::repeat_n(b'x', len - 1));
    m.extend_from_slice(b"\r\nend\r\n.\r\n");
    m
}

fn message_of_size(size: usize) -> Vec<u8> {
    let mut m = b"From: <{from}>\r\nTo: <{rcpt}>\r\nSubject: 64K\r\n\r\n".to_vec();
    let line = [b'y'; 76];
    while m.len() < size {
        m.extend_from_slice(&line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b".\r\n");
    m
}

/// Content with dot-stuffed lines, and what the server must store for it.
const STUFFED: &[u8] = b"Subject: dots\r\n\r\n..leading dot\r\n...\r\n..\r\nx.\r\n.\r\n";
const UNSTUFFED_BODY: &[u8] = b"\r\n.leading dot\r\n..\r\n.\r\nx.\r\n";

fn unstuffed(content: &[u8]) -> Verdict {
    if content.ends_with(UNSTUFFED_BODY) {
        Verdict::Pass
    } else {
        Verdict::fail(format!(
            "stored content does not end with the unstuffed lines: `{}`",
            escape(&content[content.len().saturating_sub(80)..], 80)
        ))
    }
}

fn only_one_reply(replies: &[Reply], _closed: bool, _: &Ctx) -> Verdict {
    match replies {
        [r] if r.code == 250 => Verdict::Pass,
        [r] => Verdict::fail(format!("the message was refused: `{}`", show(r))),
        [] => Verdict::fail("no reply to the end of data"),
        many => Verdict::fail(format!(
            "{} replies where one was due; the content was taken for commands: {}",
            many.len(),
            many.iter().map(show).collect::<Vec<_>>().join(" | ")
        )),
    }
}

/// The cases of RFC 5321.
#[allow(clippy::too_many_lines)]
#[must_use]
pub fn cases() -> Vec<Case> {
    let mut v = vec![
        // ---- session opening, EHLO and HELO
        case("rfc5321.3.1.greeting", "3.1", Must, Sequencing,
            "The server speaks first with a 220 greeting naming itself")
            .step(Step::Check(greeting_names_host)),
        case("rfc5321.2.2.1.ehlo", "2.2.1", Must, Sequencing,
            "EHLO is supported and answered 250 with the server's domain first")
            .ehlo()
            .step(Step::Check(ehlo_names_host)),
        case("rfc5321.4.1.1.1.helo", "4.1.1.1", Must, Sequencing, "HELO is answered 250")
            .cmd("HELO {helo}", Expect::code(250)),
        case("rfc5321.3.2.helo-reply-lists-no-extensions", "3.2", Must, Sequencing,
            "The reply to HELO is not an EHLO-style list of extensions")
            .cmd("HELO {helo}", Expect::custom(helo_reply_plain)),
        case("rfc5321.4.1.4.ehlo-without-domain", "4.1.4", Must, Sequencing,
            "EHLO without a domain is refused with 500, 501, 502 or 550")
            .cmd("EHLO", Expect::codes(&[500, 501, 502, 550])),
        case("rfc5321.4.1.4.refused-ehlo-keeps-state", "4.1.4", Must, Sequencing,
            "After refusing an EHLO the server stays in the state it was in (the open transaction survives)")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("EHLO", Expect::class(5))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
            .data_ok(),
        case("rfc5321.4.1.1.1.helo-without-domain", "4.1.1.1", Must, Sequencing,
            "HELO without a domain is refused")
            .cmd("HELO", Expect::class(5)),
        case("rfc5321.4.1.3.ehlo-address-literal", "4.1.3", Must, Sequencing,
            "EHLO with an IPv4 address literal is accepted")
            .cmd("EHLO [192.0.2.1]", Expect::code(250)),
        case("rfc5321.4.1.3.ehlo-ipv6-literal", "4.1.3", Must, Sequencing,
            "EHLO with an IPv6 address literal is accepted")
            .cmd("EHLO [IPv6:2001:db8::25]", Expect::code(250)),
        case("rfc5321.4.1.4.ehlo-name-not-matching", "4.1.4", Must, Sequencing,
            "A message is not refused because the EHLO name does not match the client's address")
            .cmd("EHLO unrelated-name.conformance.example", Expect::code(250))
            .transaction()
            .data_ok(),
        case("rfc5321.4.1.4.second-ehlo", "4.1.4", Must, Sequencing,
            "A repeated EHLO is accepted (250), or refused only with 500, 501, 502 or 550")
            .ehlo()
            .cmd("EHLO {helo}", Expect::codes(&[250, 500, 501, 502, 550])),
        case("rfc5321.4.1.4.ehlo-resets-transaction", "4.1.4", Must, Sequencing,
            "A new EHLO clears the transaction as RSET would")
            .ehlo()
            .transaction()
            .cmd("EHLO {helo}", Expect::custom(repeated_ehlo))
            .cmd("RCPT TO:<{rcpt}>", Expect::code(503))
            .cmd("MAIL FROM:<{from}>", Expect::code(250)),
        // ---- the basic commands
        case("rfc5321.4.1.1.5.rset", "4.1.1.5", Must, Sequencing, "RSET is answered 250")
            .ehlo()
            .cmd("RSET", Expect::code(250)),
        case("rfc5321.4.1.1.5.rset-clears-transaction", "4.1.1.5", Must, Sequencing,
            "RSET discards the sender and recipients")
            .ehlo()
            .transaction()
            .cmd("RSET", Expect::code(250))
            .cmd("DATA", Expect::codes(&[503, 554]))
            .cmd("MAIL FROM:<{from}>", Expect::code(250)),
        case("rfc5321.4.1.1.5.rset-keeps-connection", "4.1.1.5", Must, Sequencing,
            "RSET does not close the connection")
            .ehlo()
            .cmd("RSET", Expect::code(250))
            .cmd("NOOP", Expect::code(250)),
        case("rfc5321.4.1.1.9.noop", "4.1.1.9", Must, Sequencing, "NOOP is answered 250")
            .ehlo()
            .cmd("NOOP", Expect::code(250)),
        case("rfc5321.4.1.1.9.noop-argument", "4.1.1.9", Should, Sequencing,
            "An argument to NOOP is ignored")
            .ehlo()
            .cmd("NOOP conformance test", Expect::code(250)),
        case("rfc5321.4.1.1.9.noop-in-transaction", "4.1.1.9", Must, Sequencing,
            "NOOP inside a transaction leaves it intact")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("NOOP", Expect::code(250))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
            .cmd("NOOP", Expect::code(250))
            .data_ok(),
        case("rfc5321.4.1.1.10.quit", "4.1.1.10", Must, Sequencing,
            "QUIT is answered 221 and the server closes the connection")
            .ehlo()
            .cmd("QUIT", Expect::code(221))
            .step(Step::ExpectClosed),
        case("rfc5321.4.1.1.10.quit-first", "4.1.1.10", Must, Sequencing,
            "QUIT is accepted before EHLO")
            .cmd("QUIT", Expect::code(221))
            .step(Step::ExpectClosed),
        case("rfc5321.4.5.1.vrfy", "4.5.1", Must, Sequencing,
            "VRFY is implemented (250/251/252, or 550/551/553); a disabled VRFY answers 252")
            .ehlo()
            .cmd("VRFY postmaster", Expect::custom(vrfy_reply)),
        case("rfc5321.4.1.1.7.expn", "4.1.1.7", May, Sequencing, "EXPN is recognised")
            .ehlo()
            .cmd("EXPN postmaster", Expect::custom(recognised)),
        case("rfc5321.4.1.1.8.help", "4.1.1.8", May, Sequencing, "HELP is answered 211 or 214")
            .ehlo()
            .cmd("HELP", Expect::codes(&[211, 214])),
        case("rfc5321.4.1.4.noop-before-ehlo", "4.1.4", Should, Sequencing,
            "NOOP is processed before EHLO")
            .cmd("NOOP", Expect::code(250)),
        case("rfc5321.4.1.4.rset-before-ehlo", "4.1.4", Should, Sequencing,
            "RSET is processed before EHLO")
            .cmd("RSET", Expect::code(250)),
        case("rfc5321.4.1.4.vrfy-before-ehlo", "4.1.4", Should, Sequencing,
            "VRFY is processed (not 503) before EHLO")
            .cmd("VRFY postmaster", Expect::custom(not_503)),
        case("rfc5321.4.1.4.mail-before-ehlo", "4.1.4", May, Sequencing,
            "MAIL before EHLO/HELO is refused with 503 (clients must say EHLO first)")
            .cmd("MAIL FROM:<{from}>", Expect::code(503)),
        // ---- sequencing errors
        case("rfc5321.4.1.4.rcpt-before-mail", "4.1.4", Must, Sequencing,
            "RCPT without MAIL is refused with 503")
            .ehlo()
            .cmd("RCPT TO:<{rcpt}>", Expect::code(503)),
        case("rfc5321.4.1.4.data-before-mail", "4.1.4", Must, Sequencing,
            "DATA without MAIL is refused with 503 or 554")
            .ehlo()
            .cmd("DATA", Expect::codes(&[503, 554])),
        case("rfc5321.3.3.data-before-rcpt", "3.3", Must, Sequencing,
            "DATA without RCPT is refused with 503 or 554")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("DATA", Expect::codes(&[503, 554])),
        case("rfc5321.3.3.data-without-valid-rcpt", "3.3", Should, Sequencing,
            "DATA after every RCPT was refused is answered 503 or 554, not 354")
            .requires(Feature::RelayRefused)
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<nobody@relay-test.invalid>", Expect::failure())
            .cmd("DATA", Expect::codes(&[503, 554])),
        case("rfc5321.4.1.4.nested-mail", "4.1.4", Must, Sequencing,
            "MAIL inside an open transaction is refused with 503")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("MAIL FROM:<{from}>", Expect::code(503)),
        case("rfc5321.4.1.4.nested-mail-keeps-state", "4.1.4", Must, Sequencing,
            "After a 503 the transaction is still there")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("MAIL FROM:<{from}>", Expect::code(503))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
            .data_ok(),
        case("rfc5321.4.1.4.bad-mail-argument-501", "4.1.4", Must, Sequencing,
            "A MAIL path that is not valid syntax is refused with 501 (or 553, mailbox syntax incorrect)")
            .ehlo()
            .cmd("MAIL FROM:<sender@@conformance.example>", Expect::codes(&[501, 553])),
        case("rfc5321.4.1.4.bad-mail-keeps-state", "4.1.4", Must, Sequencing,
            "After a refused MAIL the server stays in the same state: MAIL can be given again")
            .ehlo()
            .cmd("MAIL FROM:<sender@@conformance.example>", Expect::class(5))
            .cmd("MAIL FROM:<{from}>", Expect::code(250)),
        // ---- transactions
        case("rfc5321.3.3.transaction", "3.3", Must, Sequencing,
            "MAIL, RCPT, DATA and the end of data deliver a message (250)")
            .ehlo()
            .transaction()
            .data_ok(),
        case("rfc5321.4.1.1.4.data-354", "4.1.1.4", Must, Sequencing,
            "DATA after an accepted RCPT is answered 354")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354)),
        case("rfc5321.3.3.two-transactions", "3.3", Must, Sequencing,
            "Several transactions follow each other in one session")
            .ehlo()
            .transaction()
            .data_ok()
            .transaction()
            .data_ok(),
        case("rfc5321.4.1.1.3.two-recipients", "4.1.1.3", Must, Sequencing,
            "A transaction may have several recipients")
            .ehlo()
            .transaction()
            .cmd("RCPT TO:<postmaster@{domain}>", Expect::class(2))
            .data_ok(),
        case("rfc5321.2.4.lowercase-commands", "2.4", Must, Sequencing,
            "Verbs and keywords are case-insensitive (lower case)")
            .cmd("ehlo {helo}", Expect::code(250))
            .cmd("mail from:<{from}>", Expect::code(250))
            .cmd("rcpt to:<{rcpt}>", Expect::class(2))
            .cmd("data", Expect::code(354))
            .send(MESSAGE)
            .expect(Expect::code(250)),
        case("rfc5321.2.4.mixed-case-commands", "2.4", Must, Sequencing,
            "Verbs and keywords are case-insensitive (mixed case)")
            .cmd("EhLo {helo}", Expect::code(250))
            .cmd("MaIl FrOm:<{from}>", Expect::code(250))
            .cmd("RcPt To:<{rcpt}>", Expect::class(2))
            .cmd("NoOp", Expect::code(250))
            .cmd("rSeT", Expect::code(250)),
        case("rfc5321.4.5.5.null-sender", "4.5.5", Must, Sequencing,
            "The null reverse-path MAIL FROM:<> is accepted and the message delivered")
            .ehlo()
            .cmd("MAIL FROM:<>", Expect::code(250))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
            .data_ok(),
        // ---- replies
        case("rfc5321.4.2.4.unknown-command", "4.2.4", Must, Replies,
            "An unknown command is refused with a 5xx")
            .ehlo()
            .cmd("XCONFORMANCE test", Expect::class(5)),
        case("rfc5321.4.2.4.unknown-command-500", "4.2.4", Should, Replies,
            "An unrecognised command gets 500 (502 is for recognised but unimplemented ones)")
            .ehlo()
            .cmd("XCONFORMANCE test", Expect::code(500)),
        case("rfc5321.4.3.2.argument-to-rset-501", "4.3.2", Should, Replies,
            "RSET with an argument is refused with 501")
            .ehlo()
            .cmd("RSET now", Expect::code(501)),
        case("rfc5321.4.1.1.11.unknown-mail-parameter", "4.1.1.11", Must, Replies,
            "An unknown MAIL parameter is refused (5xx), not silently accepted")
            .ehlo()
            .cmd("MAIL FROM:<{from}> XCONFORMANCE=1", Expect::class(5)),
        case("rfc5321.4.1.1.11.unknown-mail-parameter-555", "4.1.1.11", Should, Replies,
            "An unknown MAIL parameter gets 555")
            .ehlo()
            .cmd("MAIL FROM:<{from}> XCONFORMANCE=1", Expect::code(555)),
        case("rfc5321.4.1.1.11.unknown-rcpt-parameter", "4.1.1.11", Must, Replies,
            "An unknown RCPT parameter is refused (5xx), not silently accepted")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<{rcpt}> XCONFORMANCE=1", Expect::class(5)),
        case("rfc5321.4.2.reply-syntax", "4.2", Must, Replies,
            "Every reply line is a code, a separator (`-` on all but the last line) and CRLF")
            .ehlo()
            .cmd("HELP", Expect::any())
            .cmd("NOOP", Expect::code(250))
            .cmd("XCONFORMANCE", Expect::class(5))
            .step(Step::Check(replies_well_formed)),
        case("rfc5321.4.5.3.1.5.reply-line-512", "4.5.3.1.5", Must, Replies,
            "No reply line is longer than 512 octets")
            .ehlo()
            .cmd("HELP", Expect::any())
            .cmd("XCONFORMANCE", Expect::class(5))
            .step(Step::Check(reply_lines_within_512)),
        case("rfc5321.7.9.no-open-relay", "7.9", Should, Replies,
            "Mail for a domain the server does not serve is refused (no open relay)")
            .requires(Feature::RelayRefused)
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<victim@relay-test.invalid>", Expect::failure()),
        // ---- paths
        case("rfc5321.4.1.1.3.source-route", "4.1.1.3", Must, Paths,
            "A source route in RCPT is recognised (not a syntax error)")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<@relay.conformance.example:{rcpt}>", Expect::not_syntax_error()),
        case("rfc5321.4.1.1.3.source-route-list", "4.1.1.3", Must, Paths,
            "A source route of several hosts is recognised")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<@a.conformance.example,@b.conformance.example:{rcpt}>",
                Expect::not_syntax_error()),
        case("rfc5321.4.1.1.3.source-route-ignored", "4.1.1.3", Should, Paths,
            "A source route is stripped and the final mailbox used")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<@relay.conformance.example:{rcpt}>", Expect::class(2)),
        case("rfc5321.4.1.2.quoted-local-part", "4.1.2", Must, Paths,
            "A quoted-string local part is valid syntax")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<\"conformance test\"@{domain}>", Expect::not_syntax_error()),
        case("rfc5321.4.1.2.quoted-sender", "4.1.2", Must, Paths,
            "A quoted-string local part is valid in MAIL")
            .ehlo()
            .cmd("MAIL FROM:<\"quoted sender\"@conformance.example>", Expect::not_syntax_error()),
        case("rfc5321.4.1.3.sender-address-literal", "4.1.3", Must, Paths,
            "An IPv4 address literal is valid in a path")
            .ehlo()
            .cmd("MAIL FROM:<sender@[192.0.2.1]>", Expect::not_syntax_error()),
        case("rfc5321.4.1.3.sender-ipv6-literal", "4.1.3", Must, Paths,
            "An IPv6 address literal is valid in a path")
            .ehlo()
            .cmd("MAIL FROM:<sender@[IPv6:2001:db8::1]>", Expect::not_syntax_error()),
        case("rfc5321.2.4.domain-case-insensitive", "2.4", Must, Paths,
            "Domains are case-insensitive")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<{local}@{DOMAIN}>", Expect::class(2)),
        case("rfc5321.4.1.2.bad-recipient-syntax", "4.1.2", Must, Paths,
            "A recipient that is not a valid path is refused")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<conformance@@{domain}>", Expect::class(5)),
        case("rfc5321.4.1.2.mail-from-space", "4.1.2", May, Paths,
            "`MAIL FROM: <path>` (a space before the path, outside the grammar) is tolerated")
            .ehlo()
            .cmd("MAIL FROM: <{from}>", Expect::code(250)),
        // ---- postmaster
        case("rfc5321.4.5.1.postmaster", "4.5.1", Must, Postmaster,
            "RCPT TO:<postmaster> (no domain) is accepted")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<postmaster>", Expect::class(2)),
        case("rfc5321.4.5.1.postmaster-case-insensitive", "4.5.1", Must, Postmaster,
            "RCPT TO:<PostMaster> is accepted (case-insensitive)")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<PostMaster>", Expect::class(2)),
        case("rfc5321.4.5.1.postmaster-at-domain", "4.5.1", Must, Postmaster,
            "postmaster at a served domain is accepted")
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<postmaster@{domain}>", Expect::class(2)),
        case("rfc5321.4.5.1.postmaster-message", "4.5.1", Must, Postmaster,
            "A message to <postmaster> from the null sender is accepted")
            .ehlo()
            .cmd("MAIL FROM:<>", Expect::code(250))
            .cmd("RCPT TO:<postmaster>", Expect::class(2))
            .data_ok(),
        // ---- limits
        case("rfc5321.4.5.3.1.1.local-part-64", "4.5.3.1.1", Must, Limits,
            "A 64-octet local part is accepted")
            .ehlo()
            .cmd(&format!("MAIL FROM:<{}@conformance.example>", "l".repeat(64)),
                Expect::not_syntax_error()),
        case("rfc5321.4.5.3.1.2.domain-250", "4.5.3.1.2", Must, Limits,
            "A 250-octet domain is accepted in a path")
            .ehlo()
            .cmd(&format!("MAIL FROM:<s@{}>", long_domain(250)), Expect::not_syntax_error()),
        case("rfc5321.4.5.3.1.3.path-256", "4.5.3.1.3", Must, Limits,
            "A 256-octet path (brackets included) is accepted")
            .ehlo()
            .cmd(&format!("MAIL FROM:<{}@{}>", "p".repeat(64), long_domain(256 - 2 - 65)),
                Expect::not_syntax_error()),
        case("rfc5321.4.5.3.1.4.command-line-512", "4.5.3.1.4", Must, Limits,
            "A 512-octet command line (CRLF included) is not refused as too long")
            .ehlo()
            .cmd("NOOP x", Expect::custom(noop_argument_accepted))
            .cmd(&format!("NOOP {}", "n".repeat(512 - 7)), Expect::custom(not_line_too_long))
            .cmd("NOOP", Expect::code(250)),
        case("rfc5321.4.5.3.1.6.text-line-1000", "4.5.3.1.6", Must, Limits,
            "A 1000-octet text line (CRLF included) is accepted")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(&message_with_line(998, b'x'))
            .expect(Expect::code(250)),
        case("rfc5321.4.5.3.1.6.stuffed-line-1000", "4.5.3.1.6", Must, Limits,
            "A 1000-octet text line starting with a dot is accepted (the stuffed dot is not counted)")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(&stuffed_long_line())
            .expect(Expect::code(250)),
        case("rfc5321.4.5.3.1.7.message-64k", "4.5.3.1.7", Must, Limits,
            "A 64 KiB message is accepted")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(&message_of_size(64 * 1024 + 100))
            .expect(Expect::code(250)),
        case("rfc5321.4.5.3.1.4.overlong-command", "4.5.3.1.9", Should, Limits,
            "A 70000-octet command line is refused (500) and the session goes on")
            .ehlo()
            .cmd(&format!("NOOP {}", "o".repeat(70_000)), Expect::class(5))
            .cmd("NOOP", Expect::code(250)),
        // ---- transparency
        case("rfc5321.4.5.2.stuffed-dot-line", "4.5.2", Must, Transparency,
            "Dot-stuffed lines (`..`, `...`) do not end the data")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(STUFFED)
            .step(Step::Collect(only_one_reply))
            .step(Step::ExpectSilence(None)),
        case("rfc5321.4.5.2.unstuffing", "4.5.2", Must, Transparency,
            "The leading dot of a stuffed line is removed from the stored message")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(STUFFED)
            .expect(Expect::code(250))
            .step(Step::Stored(unstuffed)),
        case("rfc5321.4.1.1.4.dot-space-not-end", "4.1.1.4", Must, Transparency,
            "A line `. ` (dot, space) does not end the data")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(b"Subject: dot space\r\n\r\n. \r\nNOOP\r\n.\r\n")
            .step(Step::Collect(only_one_reply))
            .step(Step::ExpectSilence(None)),
        case("rfc5321.4.1.1.4.end-of-data-split", "4.1.1.4", Must, Transparency,
            "The end of data is recognised when <CRLF>.<CRLF> arrives in pieces")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(b"Subject: split\r\n\r\nbody\r")
            .step(Step::Wait(Duration::from_millis(200)))
            .send(b"\n.")
            .step(Step::Wait(Duration::from_millis(200)))
            .send(b"\r")
            .step(Step::Wait(Duration::from_millis(200)))
            .send(b"\n")
            .expect(Expect::code(250)),
        case("rfc5321.4.1.1.4.empty-message", "4.1.1.4", May, Transparency,
            "A message with no content (DATA then `.` at once) is accepted")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(b".\r\n")
            .expect(Expect::code(250)),
        // ---- timeouts
        case("rfc5321.4.5.3.2.7.idle-5-minutes", "4.5.3.2.7", Should, Timeouts,
            "The server waits at least 5 minutes for the next command")
            .requires(Feature::VirtualTime)
            .ehlo()
            .step(Step::Wait(Duration::from_secs(299)))
            .cmd("NOOP", Expect::code(250)),
        case("rfc5321.4.5.3.2.7.idle-in-transaction", "4.5.3.2.7", Should, Timeouts,
            "The server waits at least 5 minutes for a command inside a transaction")
            .requires(Feature::VirtualTime)
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .step(Step::Wait(Duration::from_secs(299)))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
            .data_ok(),
        case("rfc5321.4.5.3.2.5.data-block-3-minutes", "4.5.3.2.5", Should, Timeouts,
            "The server waits at least 3 minutes between blocks of message data")
            .requires(Feature::VirtualTime)
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(b"Subject: slow\r\n\r\nfirst block\r\n")
            .step(Step::Wait(Duration::from_secs(179)))
            .send(b"second block\r\n.\r\n")
            .expect(Expect::code(250)),
        case("rfc5321.3.8.timeout-421", "3.8", May, Timeouts,
            "An idle session is eventually closed with 421")
            .requires(Feature::VirtualTime)
            .ehlo()
            .step(Step::Wait(Duration::from_secs(3600)))
            .expect(Expect::code(421))
            .step(Step::ExpectClosed),
    ];
    // 100 recipients in one transaction.
    let mut hundred = case(
        "rfc5321.4.5.3.1.8.100-recipients",
        "4.5.3.1.8",
        Must,
        Limits,
        "A transaction with 100 recipients is accepted",
    )
    .ehlo()
    .cmd("MAIL FROM:<{from}>", Expect::code(250));
    for _ in 0..100 {
        hundred = hundred.cmd("RCPT TO:<{rcpt}>", Expect::class(2));
    }
    v.push(hundred.data_ok());
    v
}

/// A syntactically valid domain of exactly `len` octets (labels of at most 63 octets).
#[must_use]
pub fn long_domain(len: usize) -> String {
    let suffix = ".example";
    let mut remaining = len.saturating_sub(suffix.len());
    let mut labels = Vec::new();
    while remaining > 0 {
        let take = if remaining <= 63 {
            remaining
        } else if remaining == 64 {
            // 62 + dot + 1: never leave an empty label.
            62
        } else {
            63
        };
        labels.push("d".repeat(take));
        remaining = remaining.saturating_sub(take + 1);
    }
    format!("{}{suffix}", labels.join("."))
}

fn stuffed_long_line() -> Vec<u8> {
    // 998 octets of text starting with a dot, sent stuffed: 999 octets + CRLF on the wire.
    let mut m = b"From: <{from}>\r\nTo: <{rcpt}>\r\nSubject: long dotted line\r\n\r\n.".to_vec();
    m.push(b'.');
    m.extend(std::iter::repeat_n(b'z', 997));
    m.extend_from_slice(b"\r\n.\r\n");
    m
}
