//! The service extensions: RFC 1870 SIZE, 2920 PIPELINING, 3207 STARTTLS, 4954 AUTH, 6152
//! 8BITMIME, 6531 SMTPUTF8, 3461 DSN, 3030 CHUNKING and BINARYMIME, 2034/3463 enhanced status
//! codes.

use petrel_core::smtp::{EnhancedCode, Reply};

use crate::case::{Case, Expect, Feature, Group, Level, MESSAGE, Step, Verdict};
use crate::interp::{Ctx, show};

use Level::{May, Must, Should};

fn size_over_limit(ctx: &Ctx) -> Result<Vec<u8>, Verdict> {
    let limit = ctx
        .size_limit()
        .ok_or_else(|| Verdict::skip("no fixed SIZE limit advertised"))?;
    Ok(ctx
        .opts
        .expand(format!("MAIL FROM:<{{from}}> SIZE={}\r\n", limit + 1).as_bytes()))
}

/// Most content a case sends to exceed a server's SIZE limit.
const MAX_OVERSIZE: u64 = 64 * 1024 * 1024;

fn content_over_limit(ctx: &Ctx) -> Result<Vec<u8>, Verdict> {
    let limit = ctx
        .size_limit()
        .ok_or_else(|| Verdict::skip("no fixed SIZE limit advertised"))?;
    if limit > MAX_OVERSIZE {
        return Err(Verdict::skip(format!(
            "SIZE limit {limit} is above the {MAX_OVERSIZE} octets this case sends"
        )));
    }
    // Well over the limit, whether the server counts CRLF as two octets or as one.
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let target = limit + limit / 100 + 4096;
    let mut m = Vec::with_capacity(target + 1000);
    m.extend_from_slice(b"Subject: too big\r\n\r\n");
    let line = [b'b'; 998];
    while m.len() < target {
        m.extend_from_slice(&line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b".\r\n");
    Ok(m)
}

fn size_keyword_syntax(ctx: &Ctx) -> Verdict {
    match ctx.ext_params("SIZE") {
        None => Verdict::skip("SIZE not offered"),
        Some(p)
            if p.is_empty() || p.split_whitespace().count() == 1 && p.parse::<u64>().is_ok() =>
        {
            Verdict::Pass
        }
        Some(p) => Verdict::fail(format!(
            "`SIZE {p}`: the parameter must be a number of octets"
        )),
    }
}

fn smtputf8_with_8bitmime(ctx: &Ctx) -> Verdict {
    if !ctx.has_ext("SMTPUTF8") {
        return Verdict::skip("SMTPUTF8 not offered");
    }
    if ctx.has_ext("8BITMIME") {
        Verdict::Pass
    } else {
        Verdict::fail("SMTPUTF8 is offered without 8BITMIME")
    }
}

fn no_starttls_after_tls(ctx: &Ctx) -> Verdict {
    if ctx.has_ext("STARTTLS") {
        Verdict::fail("STARTTLS is offered again after the TLS handshake")
    } else {
        Verdict::Pass
    }
}

fn no_plaintext_auth(ctx: &Ctx) -> Verdict {
    let Some(mechs) = ctx.ext_params("AUTH") else {
        return Verdict::Pass;
    };
    let weak: Vec<&str> = mechs
        .split_whitespace()
        .filter(|m| m.eq_ignore_ascii_case("PLAIN") || m.eq_ignore_ascii_case("LOGIN"))
        .collect();
    if weak.is_empty() {
        Verdict::Pass
    } else {
        Verdict::fail(format!(
            "plaintext mechanisms offered before TLS: AUTH {mechs}"
        ))
    }
}

/// Every 2xx/4xx/5xx reply after EHLO, on every line, starts with an enhanced code of the
/// reply's class.
fn enhanced_everywhere(ctx: &Ctx) -> Verdict {
    let mut after_ehlo = false;
    for (reply, raw) in &ctx.replies {
        if !after_ehlo {
            after_ehlo = ctx.ehlo_reply.as_ref() == Some(reply);
            continue;
        }
        if reply.code / 100 == 3 {
            continue;
        }
        if let Some(v) = enhanced_on_every_line(reply, raw) {
            return v;
        }
    }
    Verdict::Pass
}

fn enhanced_on_every_line(reply: &Reply, raw: &[u8]) -> Option<Verdict> {
    let text = String::from_utf8_lossy(raw);
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let rest = line.get(4..).unwrap_or("");
        match EnhancedCode::parse_prefix(rest) {
            Some((code, _)) if u16::from(code.class) == reply.code / 100 => {}
            Some((code, _)) => {
                return Some(Verdict::fail(format!(
                    "`{line}`: enhanced code {code} does not match the class of {}",
                    reply.code
                )));
            }
            None => {
                return Some(Verdict::fail(format!(
                    "`{line}` has no enhanced status code"
                )));
            }
        }
    }
    None
}

fn help_implemented(reply: &Reply, _: &Ctx) -> Verdict {
    if reply.is_positive() {
        Verdict::Pass
    } else {
        Verdict::skip("HELP is not implemented: no multi-line reply to check")
    }
}

fn protocol_subject(reply: &Reply, _: &Ctx) -> Verdict {
    subject_is(reply, 5)
}

fn subject_is(reply: &Reply, subject: u16) -> Verdict {
    if reply.code < 400 {
        return Verdict::fail("expected a refusal with an enhanced code");
    }
    match reply.enhanced {
        Some(e) if e.subject == subject => Verdict::Pass,
        Some(e) => Verdict::fail(format!("enhanced code {e}, expected X.{subject}.Y")),
        None => Verdict::fail("no enhanced status code"),
    }
}

fn injected_not_executed(reply: &Reply, _: &Ctx) -> Verdict {
    if reply.code == 250 {
        Verdict::Pass
    } else {
        Verdict::fail(
            "the first reply inside TLS is not the EHLO's: the command sent in plaintext \
             after STARTTLS was executed",
        )
    }
}

fn no_positive_after_bdat(replies: &[Reply], _closed: bool, _: &Ctx) -> Verdict {
    match replies {
        [] => Verdict::fail("no reply to the refused BDAT"),
        [r] if r.code >= 500 => Verdict::Pass,
        [r] => Verdict::fail(format!(
            "BDAT without a transaction was answered `{}`",
            show(r)
        )),
        many => Verdict::fail(format!(
            "the chunk's octets were taken for commands: {}",
            many.iter().map(show).collect::<Vec<_>>().join(" | ")
        )),
    }
}

fn exactly_250(replies: &[Reply], _closed: bool, _: &Ctx) -> Verdict {
    match replies {
        [r] if r.code == 250 => Verdict::Pass,
        [] => Verdict::fail("no reply"),
        many => Verdict::fail(format!(
            "expected one 250, got: {}",
            many.iter().map(show).collect::<Vec<_>>().join(" | ")
        )),
    }
}

fn bdat(content: &[u8], last: bool) -> Vec<u8> {
    let mut v = format!(
        "BDAT {}{}\r\n",
        content.len(),
        if last { " LAST" } else { "" }
    )
    .into_bytes();
    v.extend_from_slice(content);
    v
}

const BDAT_MESSAGE: &[u8] = b"Subject: chunking\r\n\r\nfirst chunk\r\n";
const BDAT_TAIL: &[u8] = b"second chunk\r\n";

/// RFC 1870 SIZE.
fn size() -> Vec<Case> {
    let c = |id: &str, section: &str, level, title: &str| {
        Case::new(id, 1870, section, level, Group::Size, title).requires(Feature::Ext("SIZE"))
    };
    vec![
        c("rfc1870.4.size-keyword", "4", Must, "The SIZE keyword has no parameter or a number")
            .ehlo()
            .step(Step::Check(size_keyword_syntax)),
        c("rfc1870.6.size-parameter", "6", Must, "MAIL with SIZE= under the limit is accepted")
            .ehlo()
            .cmd("MAIL FROM:<{from}> SIZE=1000", Expect::code(250))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
            .data_ok(),
        c("rfc1870.6.size-over-limit", "6.1", Must,
            "MAIL with SIZE= over the fixed limit is refused with 552")
            .requires(Feature::SizeLimit)
            .ehlo()
            .step(Step::SendWith(size_over_limit))
            .expect(Expect::code(552)),
        c("rfc1870.6.content-over-limit", "6.3", Must,
            "A message larger than the limit is refused at the end of data, and the session goes on")
            .requires(Feature::SizeLimit)
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .step(Step::SendWith(content_over_limit))
            .expect(Expect::codes(&[552, 554]))
            .cmd("NOOP", Expect::code(250)),
        c("rfc1870.6.size-syntax", "6", Must, "SIZE= with a value that is not a number is refused")
            .ehlo()
            .cmd("MAIL FROM:<{from}> SIZE=big", Expect::class(5)),
    ]
}

/// RFC 2920 PIPELINING.
fn pipelining() -> Vec<Case> {
    let c = |id: &str, section: &str, level, title: &str| {
        Case::new(id, 2920, section, level, Group::Pipelining, title)
            .requires(Feature::Ext("PIPELINING"))
    };
    vec![
        c("rfc2920.3.1.transaction-in-one-write", "3.1", Must,
            "MAIL, RCPT, RCPT and DATA sent at once are answered in order")
            .ehlo()
            .send(b"MAIL FROM:<{from}>\r\nRCPT TO:<{rcpt}>\r\nRCPT TO:<postmaster@{domain}>\r\nDATA\r\n")
            .expect(Expect::code(250))
            .expect(Expect::class(2))
            .expect(Expect::class(2))
            .expect(Expect::code(354))
            .send(MESSAGE)
            .expect(Expect::code(250)),
        c("rfc2920.3.1.refused-recipient-in-group", "3.1", Must,
            "In a pipelined group a refused RCPT gets its failure in place, the others their 250")
            .requires(Feature::RelayRefused)
            .ehlo()
            .send(b"MAIL FROM:<{from}>\r\nRCPT TO:<nobody@relay-test.invalid>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
            .expect(Expect::code(250))
            .expect(Expect::failure())
            .expect(Expect::class(2))
            .expect(Expect::code(354))
            .send(MESSAGE)
            .expect(Expect::code(250)),
        c("rfc2920.3.1.rset-and-noop-batched", "3.1", Must,
            "RSET, MAIL, RCPT, RSET and NOOP sent at once get five replies in order")
            .ehlo()
            .send(b"RSET\r\nMAIL FROM:<{from}>\r\nRCPT TO:<{rcpt}>\r\nRSET\r\nNOOP\r\n")
            .expect(Expect::code(250))
            .expect(Expect::code(250))
            .expect(Expect::class(2))
            .expect(Expect::code(250))
            .expect(Expect::code(250))
            .step(Step::ExpectSilence(None)),
        c("rfc2920.3.2.failed-mail-then-group", "3.2", Must,
            "After a refused MAIL, the pipelined RCPT and DATA are refused too")
            .ehlo()
            .send(b"MAIL FROM:<{from}> XCONFORMANCE=1\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
            .expect(Expect::class(5))
            .expect(Expect::class(5))
            .expect(Expect::class(5)),
        c("rfc2920.3.1.quit-after-end-of-data", "3.1", Must,
            "The end of data and QUIT sent at once are both answered")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
            .expect(Expect::code(250))
            .expect(Expect::code(221))
            .step(Step::ExpectClosed),
        c("rfc2920.3.1.next-transaction-after-data", "3.1", Must,
            "A message followed at once by the next MAIL and RCPT: every command is answered in order")
            .ehlo()
            .transaction()
            .cmd("DATA", Expect::code(354))
            .send(b"Subject: first\r\n\r\nbody\r\n.\r\nMAIL FROM:<{from}>\r\nRCPT TO:<{rcpt}>\r\n")
            .expect(Expect::code(250))
            .expect(Expect::code(250))
            .expect(Expect::class(2))
            .data_ok(),
    ]
}

/// RFC 3207 STARTTLS.
fn starttls() -> Vec<Case> {
    let c = |id: &str, section: &str, level, title: &str| {
        Case::new(id, 3207, section, level, Group::Starttls, title).requires(Feature::StartTls)
    };
    vec![
        c("rfc3207.4.starttls", "4", Must,
            "STARTTLS is answered 220 and the TLS handshake succeeds")
            .ehlo()
            .cmd("STARTTLS", Expect::code(220))
            .step(Step::StartTls)
            .ehlo(),
        c("rfc3207.4.starttls-argument", "4", Must, "STARTTLS with an argument is refused with 501")
            .ehlo()
            .cmd("STARTTLS now", Expect::code(501)),
        c("rfc3207.4.2.no-starttls-after-tls", "4.2", Must,
            "STARTTLS is not offered again once TLS is active")
            .ehlo()
            .cmd("STARTTLS", Expect::code(220))
            .step(Step::StartTls)
            .ehlo()
            .step(Step::Check(no_starttls_after_tls)),
        c("rfc3207.4.2.second-starttls-refused", "4.2", Should,
            "A second STARTTLS inside TLS is refused")
            .ehlo()
            .cmd("STARTTLS", Expect::code(220))
            .step(Step::StartTls)
            .ehlo()
            .cmd("STARTTLS", Expect::class(5)),
        c("rfc3207.4.2.mail-inside-tls", "4.2", Must,
            "After STARTTLS and a new EHLO a message is delivered inside TLS")
            .ehlo()
            .cmd("STARTTLS", Expect::code(220))
            .step(Step::StartTls)
            .ehlo()
            .transaction()
            .data_ok(),
        c("rfc3207.4.2.state-discarded", "4.2", May,
            "After the handshake the EHLO from before is forgotten: MAIL before a new EHLO gets 503")
            .ehlo()
            .cmd("STARTTLS", Expect::code(220))
            .step(Step::StartTls)
            .cmd("MAIL FROM:<{from}>", Expect::code(503)),
        c("rfc3207.4.2.command-injection", "4.2", Must,
            "A command sent in the same packet after STARTTLS is discarded, not run inside TLS")
            .ehlo()
            .send(b"STARTTLS\r\nHELP\r\n")
            .expect(Expect::code(220).or_refused())
            .step(Step::StartTls)
            .send(b"EHLO {helo}\r\n")
            .expect(Expect::custom(injected_not_executed))
            .cmd("NOOP", Expect::code(250))
            .step(Step::ExpectSilence(None)),
    ]
}

/// RFC 4954 AUTH.
fn auth() -> Vec<Case> {
    let c = |id: &str, section: &str, level, title: &str| {
        Case::new(id, 4954, section, level, Group::Auth, title).requires(Feature::Auth)
    };
    vec![
        c(
            "rfc4954.4.unknown-mechanism",
            "4",
            Must,
            "AUTH with an unsupported mechanism is refused with 504",
        )
        .step(Step::EhloForAuth)
        .cmd("AUTH X-CONFORMANCE", Expect::code(504)),
        c(
            "rfc4954.4.cancel",
            "4",
            Must,
            "A `*` response cancels the exchange with 501",
        )
        .requires(Feature::AuthMechanism("PLAIN"))
        .step(Step::EhloForAuth)
        .cmd("AUTH PLAIN", Expect::code(334))
        .cmd("*", Expect::code(501)),
        c(
            "rfc4954.4.bad-base64",
            "4",
            Must,
            "A response that is not base64 is refused with 501",
        )
        .requires(Feature::AuthMechanism("PLAIN"))
        .step(Step::EhloForAuth)
        .cmd("AUTH PLAIN", Expect::code(334))
        .cmd("!!not base64!!", Expect::code(501)),
        c(
            "rfc4954.6.invalid-credentials",
            "6",
            Must,
            "Wrong credentials are refused with 535",
        )
        .requires(Feature::AuthMechanism("PLAIN"))
        .step(Step::EhloForAuth)
        .cmd(
            "AUTH PLAIN AGNvbmZvcm1hbmNlLW5vYm9keQB3cm9uZy1wYXNzd29yZA==",
            Expect::code(535),
        ),
        c(
            "rfc4954.4.plain-success",
            "4",
            Must,
            "AUTH PLAIN with valid credentials (initial response) succeeds with 235",
        )
        .requires(Feature::AuthMechanism("PLAIN"))
        .requires(Feature::Credentials)
        .step(Step::EhloForAuth)
        .cmd("AUTH PLAIN {plain}", Expect::code(235)),
        c(
            "rfc4954.4.plain-challenge",
            "4",
            Must,
            "AUTH PLAIN without an initial response gets an empty 334 challenge, then 235",
        )
        .requires(Feature::AuthMechanism("PLAIN"))
        .requires(Feature::Credentials)
        .step(Step::EhloForAuth)
        .cmd("AUTH PLAIN", Expect::code(334))
        .cmd("{plain}", Expect::code(235)),
        c(
            "rfc4954.4.login",
            "4",
            May,
            "AUTH LOGIN (not standardised) works",
        )
        .requires(Feature::AuthMechanism("LOGIN"))
        .requires(Feature::Credentials)
        .step(Step::EhloForAuth)
        .cmd("AUTH LOGIN", Expect::code(334))
        .cmd("{user64}", Expect::code(334))
        .cmd("{pass64}", Expect::code(235)),
        c(
            "rfc4954.4.auth-twice",
            "4",
            Must,
            "AUTH after a successful AUTH is refused with 503",
        )
        .requires(Feature::AuthMechanism("PLAIN"))
        .requires(Feature::Credentials)
        .step(Step::EhloForAuth)
        .cmd("AUTH PLAIN {plain}", Expect::code(235))
        .cmd("AUTH PLAIN {plain}", Expect::code(503)),
        c(
            "rfc4954.4.auth-in-transaction",
            "4",
            Must,
            "AUTH during a mail transaction is refused with 503",
        )
        .requires(Feature::AuthMechanism("PLAIN"))
        .step(Step::EhloForAuth)
        .cmd("MAIL FROM:<{from}>", Expect::code(250))
        .cmd("AUTH PLAIN {plain}", Expect::code(503)),
        c(
            "rfc4954.5.mail-auth-parameter",
            "5",
            Must,
            "MAIL with the AUTH=<> parameter is accepted where AUTH is offered",
        )
        .step(Step::EhloForAuth)
        .cmd("MAIL FROM:<{from}> AUTH=<>", Expect::code(250)),
        c(
            "rfc4954.4.response-line-12288",
            "4",
            Must,
            "A 12288-octet AUTH response line is not refused as too long",
        )
        .requires(Feature::AuthMechanism("PLAIN"))
        .step(Step::EhloForAuth)
        .cmd("AUTH PLAIN", Expect::code(334))
        .cmd(&"QUFB".repeat(12286 / 4), Expect::custom(not_too_long)),
        c(
            "rfc4954.14.no-plaintext-mechanisms",
            "14",
            Should,
            "PLAIN and LOGIN are not offered before TLS when STARTTLS is available",
        )
        .requires(Feature::StartTls)
        .ehlo()
        .step(Step::Check(no_plaintext_auth)),
    ]
}

fn not_too_long(reply: &Reply, _: &Ctx) -> Verdict {
    if reply.code == 500 {
        Verdict::fail("refused as too long")
    } else if reply.code >= 400 {
        Verdict::Pass
    } else {
        Verdict::fail("garbage credentials were accepted")
    }
}

/// RFC 6152 8BITMIME.
fn eight_bit_mime() -> Vec<Case> {
    let c = |id: &str, section: &str, level, title: &str| {
        Case::new(id, 6152, section, level, Group::EightBitMime, title)
            .requires(Feature::Ext("8BITMIME"))
    };
    vec![
        c("rfc6152.3.body-8bitmime", "3", Must,
            "MAIL BODY=8BITMIME and 8-bit content are accepted")
            .ehlo()
            .cmd("MAIL FROM:<{from}> BODY=8BITMIME", Expect::code(250))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
            .cmd("DATA", Expect::code(354))
            .send("Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße, Łódź, 日本\r\n.\r\n".as_bytes())
            .expect(Expect::code(250)),
        c("rfc6152.3.body-7bit", "3", Must, "MAIL BODY=7BIT is accepted")
            .ehlo()
            .cmd("MAIL FROM:<{from}> BODY=7BIT", Expect::code(250)),
        c("rfc6152.3.body-invalid", "3", Must, "An unknown BODY= value is refused")
            .ehlo()
            .cmd("MAIL FROM:<{from}> BODY=9BIT", Expect::class(5)),
        c("rfc6152.3.body-case-insensitive", "3", Must, "BODY=8bitmime (lower case) is accepted")
            .ehlo()
            .cmd("MAIL FROM:<{from}> body=8bitmime", Expect::code(250)),
    ]
}

/// RFC 6531 SMTPUTF8.
fn smtputf8() -> Vec<Case> {
    let c = |id: &str, section: &str, level, title: &str| {
        Case::new(id, 6531, section, level, Group::Smtputf8, title)
    };
    vec![
        c(
            "rfc6531.3.1.requires-8bitmime",
            "3.1",
            Must,
            "SMTPUTF8 is offered only with 8BITMIME",
        )
        .requires(Feature::Ext("SMTPUTF8"))
        .ehlo()
        .step(Step::Check(smtputf8_with_8bitmime)),
        c(
            "rfc6531.3.4.smtputf8-parameter",
            "3.4",
            Must,
            "MAIL with the SMTPUTF8 parameter is accepted",
        )
        .requires(Feature::Ext("SMTPUTF8"))
        .ehlo()
        .cmd("MAIL FROM:<{from}> SMTPUTF8", Expect::code(250)),
        c(
            "rfc6531.3.3.utf8-recipient",
            "3.3",
            Must,
            "A UTF-8 local part is valid in a SMTPUTF8 transaction",
        )
        .requires(Feature::Ext("SMTPUTF8"))
        .ehlo()
        .cmd("MAIL FROM:<{from}> SMTPUTF8", Expect::code(250))
        .cmd("RCPT TO:<jösé@{domain}>", Expect::not_syntax_error()),
        c(
            "rfc6531.3.3.utf8-sender",
            "3.3",
            Must,
            "A UTF-8 sender is valid with the SMTPUTF8 parameter",
        )
        .requires(Feature::Ext("SMTPUTF8"))
        .ehlo()
        .cmd(
            "MAIL FROM:<ünïcode@conformance.example> SMTPUTF8",
            Expect::code(250),
        ),
        c(
            "rfc6531.3.5.utf8-without-parameter",
            "3.5",
            Should,
            "A non-ASCII address without the SMTPUTF8 parameter is refused",
        )
        .ehlo()
        .cmd("MAIL FROM:<{from}>", Expect::code(250))
        .cmd("RCPT TO:<jösé@{domain}>", Expect::class(5)),
        c(
            "rfc6531.3.5.utf8-without-parameter-553",
            "3.5",
            Should,
            "A non-ASCII address without SMTPUTF8 gets 553 5.6.7",
        )
        .requires(Feature::Ext("SMTPUTF8"))
        .ehlo()
        .cmd(
            "MAIL FROM:<ünïcode@conformance.example>",
            Expect::custom(utf8_553),
        ),
    ]
}

fn utf8_553(reply: &Reply, _: &Ctx) -> Verdict {
    match (reply.code, reply.enhanced) {
        (553 | 550, Some(e)) if e == EnhancedCode::new(5, 6, 7) => Verdict::Pass,
        (553 | 550, None) => Verdict::Pass,
        (553 | 550, Some(e)) => Verdict::fail(format!("enhanced code {e} instead of 5.6.7")),
        _ => Verdict::fail("expected 553 (or 550) with 5.6.7"),
    }
}

/// RFC 3461 DSN.
fn dsn() -> Vec<Case> {
    let c = |id: &str, section: &str, level, title: &str| {
        Case::new(id, 3461, section, level, Group::Dsn, title).requires(Feature::Ext("DSN"))
    };
    let rcpt_with = |id: &str, section: &str, level, title: &str, param: &str, expect: Expect| {
        c(id, section, level, title)
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd(&format!("RCPT TO:<{{rcpt}}> {param}"), expect)
    };
    vec![
        rcpt_with(
            "rfc3461.4.1.notify-success-failure",
            "4.1",
            Must,
            "NOTIFY=SUCCESS,FAILURE is accepted",
            "NOTIFY=SUCCESS,FAILURE",
            Expect::class(2),
        ),
        rcpt_with(
            "rfc3461.4.1.notify-never",
            "4.1",
            Must,
            "NOTIFY=NEVER is accepted",
            "NOTIFY=NEVER",
            Expect::class(2),
        ),
        rcpt_with(
            "rfc3461.4.1.notify-delay",
            "4.1",
            Must,
            "NOTIFY=DELAY is accepted",
            "NOTIFY=DELAY",
            Expect::class(2),
        ),
        rcpt_with(
            "rfc3461.4.1.notify-never-combined",
            "4.1",
            Must,
            "NOTIFY=NEVER combined with another value is refused",
            "NOTIFY=NEVER,SUCCESS",
            Expect::class(5),
        ),
        rcpt_with(
            "rfc3461.4.1.notify-case-insensitive",
            "4.1",
            Must,
            "notify=success,failure (lower case) is accepted",
            "notify=success,failure",
            Expect::class(2),
        ),
        rcpt_with(
            "rfc3461.4.2.orcpt",
            "4.2",
            Must,
            "ORCPT=rfc822;… with xtext is accepted",
            "ORCPT=rfc822;conformance+2Btag@example.org",
            Expect::class(2),
        ),
        rcpt_with(
            "rfc3461.4.2.orcpt-invalid-xtext",
            "4.2",
            Should,
            "ORCPT with invalid xtext (`+ZZ`) is refused",
            "ORCPT=rfc822;bad+ZZ@example.org",
            Expect::class(5),
        ),
        c(
            "rfc3461.4.3.ret-hdrs",
            "4.3",
            Must,
            "MAIL RET=HDRS is accepted",
        )
        .ehlo()
        .cmd("MAIL FROM:<{from}> RET=HDRS", Expect::code(250)),
        c(
            "rfc3461.4.3.ret-full",
            "4.3",
            Must,
            "MAIL RET=FULL is accepted",
        )
        .ehlo()
        .cmd("MAIL FROM:<{from}> RET=FULL", Expect::code(250)),
        c(
            "rfc3461.4.3.ret-invalid",
            "4.3",
            Should,
            "An unknown RET= value is refused",
        )
        .ehlo()
        .cmd("MAIL FROM:<{from}> RET=BODY", Expect::class(5)),
        c("rfc3461.4.4.envid", "4.4", Must, "MAIL ENVID= is accepted")
            .ehlo()
            .cmd("MAIL FROM:<{from}> ENVID=QQ314159", Expect::code(250)),
        c(
            "rfc3461.4.4.envid-too-long",
            "4.4",
            Should,
            "An ENVID longer than 100 characters is refused",
        )
        .ehlo()
        .cmd(
            &format!("MAIL FROM:<{{from}}> ENVID={}", "E".repeat(101)),
            Expect::class(5),
        ),
        c(
            "rfc3461.4.duplicate-parameter",
            "4",
            Should,
            "A repeated RET parameter is refused",
        )
        .ehlo()
        .cmd("MAIL FROM:<{from}> RET=FULL RET=HDRS", Expect::class(5)),
        c(
            "rfc3461.4.full-transaction",
            "4",
            Must,
            "A message with every DSN parameter is accepted",
        )
        .ehlo()
        .cmd(
            "MAIL FROM:<{from}> RET=HDRS ENVID=conformance-1",
            Expect::code(250),
        )
        .cmd(
            "RCPT TO:<{rcpt}> NOTIFY=FAILURE,DELAY ORCPT=rfc822;{rcpt}",
            Expect::class(2),
        )
        .data_ok(),
    ]
}

/// RFC 3030 CHUNKING and BINARYMIME.
fn chunking() -> Vec<Case> {
    let c = |id: &str, section: &str, level, title: &str| {
        Case::new(id, 3030, section, level, Group::Chunking, title)
            .requires(Feature::Ext("CHUNKING"))
    };
    let two = bdat(BDAT_MESSAGE, false);
    let last = bdat(BDAT_TAIL, true);
    let mut dotted = b"Subject: dots in BDAT\r\n\r\nline\r\n.\r\nMAIL FROM:<smuggled@conformance.example>\r\n..\r\n".to_vec();
    dotted = bdat(&dotted, true);
    let fake_commands = bdat(b"NOOP\r\nNOOP\r\nNOOP\r\n", true);
    let mut binary = b"Subject: binary\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    binary.extend_from_slice(&[0, 1, 2, b'\r', 0xff, b'\n', b'.', b'\r', b'\n', 0]);
    let binary = bdat(&binary, true);
    let mut pipelined = b"MAIL FROM:<{from}>\r\nRCPT TO:<{rcpt}>\r\n".to_vec();
    pipelined.extend_from_slice(&bdat(BDAT_MESSAGE, true));
    vec![
        c("rfc3030.2.bdat-last", "2", Must, "A message in one BDAT … LAST chunk is accepted")
            .ehlo()
            .transaction()
            .send(&bdat(BDAT_MESSAGE, true))
            .expect(Expect::code(250)),
        c("rfc3030.2.two-chunks", "2", Must, "A message in two chunks: 250 for each")
            .ehlo()
            .transaction()
            .send(&two)
            .expect(Expect::code(250))
            .send(&last)
            .expect(Expect::code(250)),
        c("rfc3030.2.bdat-0-last", "2", Must, "A final empty chunk `BDAT 0 LAST` ends the message")
            .ehlo()
            .transaction()
            .send(&two)
            .expect(Expect::code(250))
            .send(b"BDAT 0 LAST\r\n")
            .expect(Expect::code(250)),
        c("rfc3030.2.no-end-marker", "2", Must,
            "Inside a chunk, `<CRLF>.<CRLF>` and commands are content: only the octet count ends it")
            .ehlo()
            .transaction()
            .send(&dotted)
            .step(Step::Collect(exactly_250))
            .step(Step::ExpectSilence(None)),
        c("rfc3030.2.refused-chunk-read", "2", Must,
            "A BDAT refused for want of a transaction still has its octets read and discarded")
            .ehlo()
            .send(&fake_commands)
            .step(Step::Collect(no_positive_after_bdat))
            .cmd("NOOP", Expect::code(250))
            .step(Step::ExpectSilence(None)),
        c("rfc3030.2.data-after-bdat", "2", Should,
            "DATA in a transaction begun with BDAT is refused")
            .ehlo()
            .transaction()
            .send(&two)
            .expect(Expect::code(250))
            .cmd("DATA", Expect::class(5)),
        c("rfc3030.4.2.bdat-pipelined", "4.2", Must,
            "MAIL, RCPT and BDAT LAST with its chunk in one write get three replies")
            .requires(Feature::Ext("PIPELINING"))
            .ehlo()
            .send(&pipelined)
            .expect(Expect::code(250))
            .expect(Expect::class(2))
            .expect(Expect::code(250)),
        c("rfc3030.3.binarymime", "3", Must,
            "BODY=BINARYMIME content with NUL and bare CR/LF is accepted through BDAT")
            .requires(Feature::Ext("BINARYMIME"))
            .ehlo()
            .cmd("MAIL FROM:<{from}> BODY=BINARYMIME", Expect::code(250))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
            .send(&binary)
            .expect(Expect::code(250)),
        c("rfc3030.3.binarymime-needs-bdat", "3", Should,
            "DATA in a BODY=BINARYMIME transaction is refused")
            .requires(Feature::Ext("BINARYMIME"))
            .ehlo()
            .cmd("MAIL FROM:<{from}> BODY=BINARYMIME", Expect::code(250))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
            .cmd("DATA", Expect::class(5)),
    ]
}

/// RFC 2034 and RFC 3463 enhanced status codes.
fn enhanced() -> Vec<Case> {
    let c = |id: &str, rfc, section: &str, level, title: &str| {
        Case::new(id, rfc, section, level, Group::EnhancedCodes, title)
            .requires(Feature::Ext("ENHANCEDSTATUSCODES"))
    };
    vec![
        c("rfc2034.3.transaction-replies", 2034, "3", Must,
            "Replies to MAIL, RCPT, the end of data, RSET, NOOP and QUIT carry an enhanced code of their class")
            .ehlo()
            .transaction()
            .data_ok()
            .cmd("RSET", Expect::code(250))
            .cmd("NOOP", Expect::code(250))
            .step(Step::Check(enhanced_everywhere)),
        c("rfc2034.3.error-replies", 2034, "3", Must,
            "Error replies (unknown command, bad sequence, bad syntax) carry enhanced codes")
            .ehlo()
            .cmd("XCONFORMANCE", Expect::class(5))
            .cmd("RCPT TO:<{rcpt}>", Expect::code(503))
            .cmd("MAIL FROM:<{from}> XCONFORMANCE=1", Expect::class(5))
            .step(Step::Check(enhanced_everywhere)),
        c("rfc2034.3.multiline", 2034, "3", Must,
            "Every line of a multi-line reply (HELP) carries the enhanced code")
            .ehlo()
            .cmd("HELP", Expect::custom(help_implemented))
            .step(Step::Check(enhanced_everywhere)),
        c("rfc3463.3.5.syntax-subject", 3463, "3.5", Should,
            "An unknown command's enhanced code has subject 5 (protocol)")
            .ehlo()
            .cmd("XCONFORMANCE", Expect::custom(protocol_subject)),
        c("rfc3463.3.7.relay-subject", 3463, "3.7", Should,
            "A relay refusal's enhanced code has subject 7 (security or policy) or 1 (addressing)")
            .requires(Feature::RelayRefused)
            .ehlo()
            .cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<victim@relay-test.invalid>", Expect::custom(relay_subject)),
    ]
}

fn relay_subject(reply: &Reply, _: &Ctx) -> Verdict {
    match subject_is(reply, 7) {
        Verdict::Pass => Verdict::Pass,
        other => match subject_is(reply, 1) {
            Verdict::Pass => Verdict::Pass,
            _ => other,
        },
    }
}

/// The cases of the service extensions.
#[must_use]
pub fn cases() -> Vec<Case> {
    let mut v = size();
    v.extend(pipelining());
    v.extend(starttls());
    v.extend(auth());
    v.extend(eight_bit_mime());
    v.extend(smtputf8());
    v.extend(dsn());
    v.extend(chunking());
    v.extend(enhanced());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdat_frames_its_octets() {
        assert_eq!(bdat(b"abc", true), b"BDAT 3 LAST\r\nabc");
        assert_eq!(bdat(b"", false), b"BDAT 0\r\n");
    }
}
