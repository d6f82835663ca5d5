//! Grading SMTP *clients*: a scripted server plays a scenario on each connection (greeting,
//! extensions offered, odd replies, STARTTLS), records what the client does, and judges it
//! against the client-side requirements of the RFCs. `petrel-conformance serve` runs it for
//! any client (swaks, msmtp, Python's smtplib); the tests run Petrel's own smtp-out against it.
//!
//! The client is expected to send one message per connection, whose body has a line starting
//! with a dot (so that dot-stuffing can be checked), to any recipient.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::case::{Group, Level, Verdict};
use crate::interp::escape;
use crate::suite::{CaseResult, Profile, Status, SuiteReport};
use crate::transport::Target;

use Level::{May, Must, Should};

/// What the scripted server offers and how it answers.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Its name (`plain`, `starttls`…).
    pub name: &'static str,
    /// What it does, for people running clients by hand.
    pub description: &'static str,
    /// The lines of the 220 greeting (written one at a time, with a pause between).
    pub greeting: &'static [&'static str],
    /// Refuse EHLO (500), to see the client fall back to HELO.
    pub refuse_ehlo: bool,
    /// The EHLO keywords before TLS.
    pub keywords: &'static [&'static str],
    /// The EHLO keywords once TLS is on.
    pub tls_keywords: &'static [&'static str],
    /// The reply to MAIL (the first line of each reply is the code and text).
    pub mail_reply: &'static str,
    /// The reply to RCPT.
    pub rcpt_reply: &'static str,
    /// The reply to DATA.
    pub data_reply: &'static str,
    /// The reply after the end of data, lines separated by `\n` and written one at a time.
    pub end_reply: &'static str,
    /// The ids of the client cases this scenario grades.
    pub grades: &'static [&'static str],
}

/// A client-side requirement.
#[derive(Clone, Copy, Debug)]
pub struct ClientCase {
    /// Its id (`client.rfc5321.4.5.2.dot-stuffing`).
    pub id: &'static str,
    /// The RFC.
    pub rfc: u16,
    /// The section.
    pub section: &'static str,
    /// The requirement level.
    pub level: Level,
    /// What the client must do.
    pub title: &'static str,
    /// The judgement of what was observed.
    pub judge: fn(&Observation) -> Verdict,
}

/// A command the client sent, with the extensions in force when it did.
#[derive(Clone, Debug)]
pub struct Cmd {
    /// The command line, without CRLF.
    pub line: String,
    /// Sent inside TLS.
    pub tls: bool,
    /// The EHLO keywords in force (empty after HELO or before any greeting).
    pub offered: Vec<String>,
}

impl Cmd {
    fn verb(&self) -> String {
        self.line
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    }
}

/// How the session ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum End {
    /// The client said QUIT (and the server closed).
    Quit,
    /// The client closed the connection without QUIT.
    #[default]
    ClientClosed,
    /// The client stopped talking.
    Timeout,
    /// Something failed (the text says what).
    Error(String),
}

/// What the scripted server saw.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// The scenario played.
    pub scenario: String,
    /// Replies the client did not wait for in full before sending ("greeting", "EHLO"…).
    pub premature: Vec<String>,
    /// The commands, in order.
    pub commands: Vec<Cmd>,
    /// Commands after which the client sent more before the reply came, with whether
    /// PIPELINING was offered at the time.
    pub ahead: Vec<(String, bool)>,
    /// Message content as received after 354 (dot-stuffed, final `.` line included).
    pub messages: Vec<Vec<u8>>,
    /// Content arrived before the 354.
    pub data_before_354: bool,
    /// The client sent STARTTLS.
    pub starttls: bool,
    /// TLS was established.
    pub tls: bool,
    /// Why the handshake failed.
    pub tls_error: Option<String>,
    /// Bytes followed the STARTTLS line before the 220 was sent.
    pub plaintext_after_starttls: bool,
    /// How it ended.
    pub end: End,
    /// The exchange, from the server's side.
    pub transcript: String,
}

/// How long the scripted server waits.
#[derive(Clone, Copy, Debug)]
pub struct ServeTiming {
    /// For the client's next bytes before giving up on it.
    pub idle: Duration,
    /// Before each reply, so that bytes a client sends ahead have arrived.
    pub settle: Duration,
    /// Between the lines of a multi-line reply.
    pub line_pause: Duration,
    /// For the client to connect.
    pub accept: Duration,
}

impl Default for ServeTiming {
    fn default() -> Self {
        ServeTiming {
            idle: Duration::from_secs(30),
            settle: Duration::from_millis(60),
            line_pause: Duration::from_millis(150),
            accept: Duration::from_secs(300),
        }
    }
}

const PLAIN_GREETING: &[&str] = &[
    "220-conformance.test ESMTP scripted server",
    "220-(a multi-line greeting: wait for its last line)",
    "220 conformance.test ready",
];

/// The scenarios, in the order `serve` plays them.
#[must_use]
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "plain",
            description: "multi-line greeting and EHLO reply sent in pieces, no PIPELINING, no parameters offered",
            greeting: PLAIN_GREETING,
            refuse_ehlo: false,
            keywords: &["HELP", "X-CONFORMANCE some parameters", "VRFY"],
            tls_keywords: &[],
            mail_reply: "250 2.1.0 Sender ok",
            rcpt_reply: "250 2.1.5 Recipient ok",
            data_reply: "354 End data with <CR><LF>.<CR><LF>",
            end_reply: "250 2.0.0 Ok: queued",
            grades: &[
                "client.rfc5321.4.3.1.waits-for-greeting",
                "client.rfc5321.4.2.1.multiline-replies",
                "client.rfc5321.4.3.1.no-pipelining-unless-offered",
                "client.rfc5321.3.2.ehlo-first",
                "client.rfc5321.4.1.4.helo-before-mail",
                "client.rfc5321.2.2.no-unoffered-parameters",
                "client.rfc5321.4.5.2.dot-stuffing",
                "client.rfc5321.2.3.8.no-bare-cr-lf",
                "client.rfc5321.4.5.3.1.6.line-length",
                "client.rfc5321.4.1.1.10.quit",
            ],
        },
        Scenario {
            name: "ehlo-refused",
            description: "EHLO answered 500, as an old server would",
            greeting: &["220 conformance.test SMTP"],
            refuse_ehlo: true,
            keywords: &[],
            tls_keywords: &[],
            mail_reply: "250 Ok",
            rcpt_reply: "250 Ok",
            data_reply: "354 Go ahead",
            end_reply: "250 Ok",
            grades: &[
                "client.rfc5321.3.2.helo-fallback",
                "client.rfc5321.2.2.no-parameters-after-helo",
            ],
        },
        Scenario {
            name: "pipelining",
            description: "PIPELINING, SIZE, 8BITMIME, DSN and ENHANCEDSTATUSCODES offered",
            greeting: &["220 conformance.test ESMTP"],
            refuse_ehlo: false,
            keywords: &[
                "PIPELINING",
                "SIZE 10485760",
                "8BITMIME",
                "DSN",
                "ENHANCEDSTATUSCODES",
            ],
            tls_keywords: &[],
            mail_reply: "250 2.1.0 Ok",
            rcpt_reply: "250 2.1.5 Ok",
            data_reply: "354 End data with <CR><LF>.<CR><LF>",
            end_reply: "250 2.0.0 Ok: queued",
            grades: &[
                "client.rfc2920.3.1.data-ends-group",
                "client.rfc1870.6.size-declared",
            ],
        },
        Scenario {
            name: "odd-replies",
            description: "replies without text, 251 to RCPT, a multi-line reply after the data",
            greeting: &["220 conformance.test"],
            refuse_ehlo: false,
            keywords: &["help"],
            tls_keywords: &[],
            mail_reply: "250",
            rcpt_reply: "251 2.1.5 User not local; will forward",
            data_reply: "354",
            end_reply: "250-2.0.0 Ok\n250-2.0.0 queued as CONFORMANCE\n250 2.0.0 thank you",
            grades: &[
                "client.rfc5321.4.2.replies-without-text",
                "client.rfc5321.3.4.rcpt-251",
                "client.rfc5321.4.2.1.multiline-end-of-data-reply",
            ],
        },
        Scenario {
            name: "unrecognised-codes",
            description: "positive replies with codes the client cannot know (259, 258)",
            greeting: &["220 conformance.test ESMTP"],
            refuse_ehlo: false,
            keywords: &["HELP"],
            tls_keywords: &[],
            mail_reply: "259 2.1.0 sender fine (an unusual code)",
            rcpt_reply: "258 2.1.5 recipient fine (an unusual code)",
            data_reply: "354 Go ahead",
            end_reply: "250 2.0.0 Ok",
            grades: &["client.rfc5321.4.3.2.first-digit-only"],
        },
        Scenario {
            name: "starttls",
            description: "STARTTLS and PIPELINING offered in plaintext; inside TLS, neither PIPELINING nor STARTTLS",
            greeting: &["220 conformance.test ESMTP"],
            refuse_ehlo: false,
            keywords: &["PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES"],
            tls_keywords: &["ENHANCEDSTATUSCODES", "8BITMIME"],
            mail_reply: "250 2.1.0 Ok",
            rcpt_reply: "250 2.1.5 Ok",
            data_reply: "354 Go ahead",
            end_reply: "250 2.0.0 Ok",
            grades: &[
                "client.rfc3207.4.uses-starttls",
                "client.rfc3207.4.no-plaintext-after-starttls",
                "client.rfc3207.4.2.ehlo-after-tls",
                "client.rfc3207.4.2.forgets-extensions",
            ],
        },
    ]
}

fn cmds_of<'a>(obs: &'a Observation, verb: &'a str) -> impl Iterator<Item = &'a Cmd> + 'a {
    obs.commands.iter().filter(move |c| c.verb() == verb)
}

fn sent_message(obs: &Observation) -> Verdict {
    if obs.messages.is_empty() {
        Verdict::fail(format!(
            "no message was sent (commands: {})",
            obs.commands
                .iter()
                .map(|c| c.verb())
                .collect::<Vec<_>>()
                .join(" ")
        ))
    } else {
        Verdict::Pass
    }
}

/// Content lines (split on CRLF) of every message, the final `.` excluded.
fn content_lines(obs: &Observation) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    for m in &obs.messages {
        let body = m.strip_suffix(b".\r\n").unwrap_or(m);
        let mut start = 0;
        let mut i = 0;
        while i + 1 < body.len() {
            if body[i] == b'\r' && body[i + 1] == b'\n' {
                lines.push(&body[start..i]);
                i += 2;
                start = i;
            } else {
                i += 1;
            }
        }
        if start < body.len() {
            lines.push(&body[start..]);
        }
    }
    lines
}

/// What the client did after its first `verb`: the next command, or how the session ended.
fn after(obs: &Observation, verb: &str) -> Option<String> {
    let i = obs.commands.iter().position(|c| c.verb() == verb)?;
    Some(match obs.commands.get(i + 1) {
        Some(c) => format!("sent `{}`", c.verb()),
        None => match &obs.end {
            End::Timeout => "sent nothing more (the server gave up waiting)".into(),
            End::ClientClosed => "closed the connection".into(),
            End::Quit => "quit".into(),
            End::Error(e) => format!("failed ({e})"),
        },
    })
}

fn replies_without_text(obs: &Observation) -> Verdict {
    if !obs.messages.is_empty() {
        return Verdict::Pass;
    }
    match after(obs, "MAIL") {
        None => Verdict::fail("the client never sent MAIL"),
        Some(what) if !what.contains("RCPT") => {
            Verdict::fail(format!("after the bare `250` to MAIL the client {what}"))
        }
        Some(_) => match after(obs, "DATA") {
            Some(what) => Verdict::fail(format!("after the bare `354` to DATA the client {what}")),
            None => sent_message(obs),
        },
    }
}

fn rcpt_251(obs: &Observation) -> Verdict {
    if !obs.messages.is_empty() {
        return Verdict::Pass;
    }
    match after(obs, "RCPT") {
        None => Verdict::skip("the client did not get as far as RCPT"),
        Some(what) if what.contains("DATA") => Verdict::Pass,
        Some(what) => Verdict::fail(format!("after `251` to RCPT the client {what}")),
    }
}

fn multiline_end_of_data(obs: &Observation) -> Verdict {
    if obs.messages.is_empty() {
        return Verdict::skip("the client did not get as far as the end of data");
    }
    multiline_replies(obs)
}

fn first_digit_only(obs: &Observation) -> Verdict {
    if !obs.messages.is_empty() {
        return Verdict::Pass;
    }
    match after(obs, "MAIL") {
        None => Verdict::fail("the client never sent MAIL"),
        Some(what) if !what.contains("RCPT") => {
            Verdict::fail(format!("after `259` to MAIL the client {what}"))
        }
        Some(_) => match after(obs, "RCPT") {
            Some(what) => Verdict::fail(format!("after `258` to RCPT the client {what}")),
            None => sent_message(obs),
        },
    }
}

fn waits_for_greeting(obs: &Observation) -> Verdict {
    if obs.premature.iter().any(|p| p == "greeting") {
        Verdict::fail("the client sent a command before the last line of the greeting")
    } else {
        Verdict::Pass
    }
}

fn multiline_replies(obs: &Observation) -> Verdict {
    if let Some(p) = obs.premature.iter().find(|p| *p != "greeting") {
        return Verdict::fail(format!(
            "the client went on before the last line of the multi-line {p} reply"
        ));
    }
    sent_message(obs)
}

fn no_pipelining_unless_offered(obs: &Observation) -> Verdict {
    match obs.ahead.iter().find(|(_, offered)| !offered) {
        Some((after, _)) => Verdict::fail(format!(
            "the client sent more after `{after}` without waiting for the reply, and PIPELINING was not offered"
        )),
        None => Verdict::Pass,
    }
}

fn ehlo_first(obs: &Observation) -> Verdict {
    match obs.commands.first() {
        Some(c) if c.verb() == "EHLO" => Verdict::Pass,
        Some(c) => Verdict::fail(format!("the first command was `{}`", c.line)),
        None => Verdict::fail("no command"),
    }
}

fn helo_before_mail(obs: &Observation) -> Verdict {
    for c in &obs.commands {
        match c.verb().as_str() {
            "EHLO" | "HELO" => return Verdict::Pass,
            "MAIL" => return Verdict::fail("MAIL before any EHLO or HELO"),
            _ => {}
        }
    }
    Verdict::Pass
}

/// The extension that defines a MAIL or RCPT parameter.
fn param_extension(param: &str) -> &'static str {
    match param.to_ascii_uppercase().as_str() {
        "SIZE" => "SIZE",
        "BODY" => "8BITMIME",
        "SMTPUTF8" => "SMTPUTF8",
        "RET" | "ENVID" | "NOTIFY" | "ORCPT" => "DSN",
        "AUTH" => "AUTH",
        "REQUIRETLS" => "REQUIRETLS",
        "MT-PRIORITY" => "MT-PRIORITY",
        _ => "(unknown)",
    }
}

fn unoffered_parameter(obs: &Observation) -> Option<String> {
    for c in &obs.commands {
        if !matches!(c.verb().as_str(), "MAIL" | "RCPT") {
            continue;
        }
        let after_path = c.line.rsplit_once('>').map_or("", |(_, p)| p);
        for param in after_path.split_whitespace() {
            let name = param.split('=').next().unwrap_or(param);
            let ext = param_extension(name);
            if !c.offered.iter().any(|k| {
                k.split_whitespace()
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case(ext))
            }) {
                return Some(format!(
                    "`{}` uses {name}= although {ext} was not offered",
                    c.line
                ));
            }
        }
    }
    None
}

fn no_unoffered_parameters(obs: &Observation) -> Verdict {
    match unoffered_parameter(obs) {
        Some(why) => Verdict::fail(why),
        None => Verdict::Pass,
    }
}

fn dot_stuffing(obs: &Observation) -> Verdict {
    if obs.messages.is_empty() {
        return Verdict::skip("no message was sent");
    }
    let lines = content_lines(obs);
    if let Some(l) = lines
        .iter()
        .find(|l| l.first() == Some(&b'.') && l.get(1) != Some(&b'.'))
    {
        return Verdict::fail(format!(
            "a line starting with a single dot was not stuffed: `{}`",
            escape(l, 60)
        ));
    }
    if lines.iter().any(|l| l.starts_with(b"..")) {
        Verdict::Pass
    } else {
        Verdict::skip("the message had no line starting with a dot")
    }
}

fn no_bare_cr_lf(obs: &Observation) -> Verdict {
    if obs.messages.is_empty() {
        return Verdict::skip("no message was sent");
    }
    for l in content_lines(obs) {
        if l.contains(&b'\r') || l.contains(&b'\n') {
            return Verdict::fail(format!("bare CR or LF in the content: `{}`", escape(l, 80)));
        }
    }
    Verdict::Pass
}

fn line_length(obs: &Observation) -> Verdict {
    if obs.messages.is_empty() {
        return Verdict::skip("no message was sent");
    }
    for l in content_lines(obs) {
        let len = if l.starts_with(b"..") {
            l.len() - 1
        } else {
            l.len()
        };
        if len + 2 > 1000 {
            return Verdict::fail(format!("a line of {} octets (CRLF included)", len + 2));
        }
    }
    Verdict::Pass
}

fn quit(obs: &Observation) -> Verdict {
    match &obs.end {
        End::Quit => Verdict::Pass,
        End::ClientClosed => Verdict::fail("the client closed the connection without QUIT"),
        End::Timeout => Verdict::fail("the client stopped talking without QUIT"),
        End::Error(e) => Verdict::fail(format!("the session failed: {e}")),
    }
}

fn helo_fallback(obs: &Observation) -> Verdict {
    let mut refused = false;
    for c in &obs.commands {
        match c.verb().as_str() {
            "EHLO" => refused = true,
            "HELO" if refused => return Verdict::Pass,
            other if refused => {
                return Verdict::fail(format!(
                    "after EHLO was refused the client sent `{other}` instead of HELO"
                ));
            }
            _ => {}
        }
    }
    if refused {
        Verdict::fail("after EHLO was refused the client gave up")
    } else {
        Verdict::fail("the client did not say EHLO")
    }
}

fn no_parameters_after_helo(obs: &Observation) -> Verdict {
    if cmds_of(obs, "MAIL").next().is_none() {
        return Verdict::skip("no MAIL command (the client did not fall back to HELO)");
    }
    no_unoffered_parameters(obs)
}

fn data_ends_group(obs: &Observation) -> Verdict {
    if obs.data_before_354 {
        Verdict::fail("message content arrived before the 354 reply to DATA")
    } else {
        sent_message(obs)
    }
}

fn size_declared(obs: &Observation) -> Verdict {
    match cmds_of(obs, "MAIL").next() {
        None => Verdict::skip("no MAIL command"),
        Some(c) if c.line.to_ascii_uppercase().contains(" SIZE=") => Verdict::Pass,
        Some(c) => Verdict::fail(format!("`{}` declares no SIZE", c.line)),
    }
}

fn uses_starttls(obs: &Observation) -> Verdict {
    if obs.starttls {
        Verdict::Pass
    } else {
        Verdict::fail("STARTTLS was offered but not used")
    }
}

fn no_plaintext_after_starttls(obs: &Observation) -> Verdict {
    if !obs.starttls {
        return Verdict::skip("the client did not use STARTTLS");
    }
    if obs.plaintext_after_starttls {
        return Verdict::fail("the client sent more plaintext after STARTTLS, before the 220");
    }
    match &obs.tls_error {
        Some(e) => Verdict::fail(format!("the TLS handshake after 220 failed: {e}")),
        None => Verdict::Pass,
    }
}

fn ehlo_after_tls(obs: &Observation) -> Verdict {
    if !obs.tls {
        return Verdict::skip("TLS was not established");
    }
    match obs.commands.iter().find(|c| c.tls) {
        Some(c) if c.verb() == "EHLO" => Verdict::Pass,
        Some(c) => Verdict::fail(format!("the first command inside TLS was `{}`", c.line)),
        None => Verdict::fail("no command inside TLS"),
    }
}

fn forgets_extensions(obs: &Observation) -> Verdict {
    if !obs.tls {
        return Verdict::skip("TLS was not established");
    }
    if let Some((after, _)) = obs
        .ahead
        .iter()
        .find(|(after, offered)| !offered && !after.is_empty())
    {
        return Verdict::fail(format!(
            "inside TLS the client pipelined after `{after}`, but PIPELINING was only offered before TLS"
        ));
    }
    match unoffered_parameter(obs) {
        Some(why) => Verdict::fail(why),
        None => sent_message(obs),
    }
}

/// Every client case.
#[must_use]
pub fn cases() -> Vec<ClientCase> {
    let c = |id, rfc, section, level, title, judge| ClientCase {
        id,
        rfc,
        section,
        level,
        title,
        judge,
    };
    vec![
        c(
            "client.rfc5321.4.3.1.waits-for-greeting",
            5321,
            "4.3.1",
            Should,
            "The client waits for the (whole) greeting before sending",
            waits_for_greeting,
        ),
        c(
            "client.rfc5321.4.2.1.multiline-replies",
            5321,
            "4.2.1",
            Must,
            "The client reads multi-line replies to their last line",
            multiline_replies,
        ),
        c(
            "client.rfc5321.4.3.1.no-pipelining-unless-offered",
            5321,
            "4.3.1",
            Must,
            "Without PIPELINING the client waits for each reply before the next command",
            no_pipelining_unless_offered,
        ),
        c(
            "client.rfc5321.3.2.ehlo-first",
            5321,
            "3.2",
            Should,
            "The client opens the session with EHLO",
            ehlo_first,
        ),
        c(
            "client.rfc5321.4.1.4.helo-before-mail",
            5321,
            "4.1.4",
            Must,
            "The client says EHLO or HELO before MAIL",
            helo_before_mail,
        ),
        c(
            "client.rfc5321.2.2.no-unoffered-parameters",
            5321,
            "2.2.2",
            Must,
            "The client uses no MAIL/RCPT parameter of an extension the server did not offer",
            no_unoffered_parameters,
        ),
        c(
            "client.rfc5321.4.5.2.dot-stuffing",
            5321,
            "4.5.2",
            Must,
            "Lines starting with a dot are sent with an extra dot",
            dot_stuffing,
        ),
        c(
            "client.rfc5321.2.3.8.no-bare-cr-lf",
            5321,
            "2.3.8",
            Must,
            "The content has no bare CR or bare LF",
            no_bare_cr_lf,
        ),
        c(
            "client.rfc5321.4.5.3.1.6.line-length",
            5321,
            "4.5.3.1.6",
            Must,
            "No content line exceeds 1000 octets (CRLF included)",
            line_length,
        ),
        c(
            "client.rfc5321.4.1.1.10.quit",
            5321,
            "4.1.1.10",
            Must,
            "The client says QUIT before closing the connection",
            quit,
        ),
        c(
            "client.rfc5321.3.2.helo-fallback",
            5321,
            "3.2",
            Should,
            "When EHLO is refused the client falls back to HELO",
            helo_fallback,
        ),
        c(
            "client.rfc5321.2.2.no-parameters-after-helo",
            5321,
            "2.2.2",
            Must,
            "After HELO the client uses no extension parameters",
            no_parameters_after_helo,
        ),
        c(
            "client.rfc2920.3.1.data-ends-group",
            2920,
            "3.1",
            Must,
            "With PIPELINING, DATA ends its group: the content waits for the 354",
            data_ends_group,
        ),
        c(
            "client.rfc1870.6.size-declared",
            1870,
            "6",
            May,
            "The client declares the message size when SIZE is offered",
            size_declared,
        ),
        c(
            "client.rfc5321.4.2.replies-without-text",
            5321,
            "4.2",
            Must,
            "Replies made of a code alone (`250`, `354`) are understood",
            replies_without_text,
        ),
        c(
            "client.rfc5321.3.4.rcpt-251",
            5321,
            "3.4",
            Must,
            "251 to RCPT is a success",
            rcpt_251,
        ),
        c(
            "client.rfc5321.4.2.1.multiline-end-of-data-reply",
            5321,
            "4.2.1",
            Must,
            "A multi-line reply after the data is read to its end",
            multiline_end_of_data,
        ),
        c(
            "client.rfc5321.4.3.2.first-digit-only",
            5321,
            "4.3.2",
            Must,
            "Unrecognised codes are understood by their first digit (259 and 258 are successes)",
            first_digit_only,
        ),
        c(
            "client.rfc3207.4.uses-starttls",
            3207,
            "4",
            May,
            "The client uses STARTTLS when offered",
            uses_starttls,
        ),
        c(
            "client.rfc3207.4.no-plaintext-after-starttls",
            3207,
            "4",
            Must,
            "After STARTTLS the client sends nothing until the TLS negotiation",
            no_plaintext_after_starttls,
        ),
        c(
            "client.rfc3207.4.2.ehlo-after-tls",
            3207,
            "4.2",
            Should,
            "The first command inside TLS is EHLO",
            ehlo_after_tls,
        ),
        c(
            "client.rfc3207.4.2.forgets-extensions",
            3207,
            "4.2",
            Must,
            "Inside TLS the client forgets what the plaintext EHLO offered (no PIPELINING)",
            forgets_extensions,
        ),
    ]
}

/// Judges one session: one result per case the scenario grades.
#[must_use]
pub fn grade(scenario: &Scenario, obs: &Observation) -> Vec<CaseResult> {
    cases()
        .into_iter()
        .filter(|c| scenario.grades.contains(&c.id))
        .map(|c| {
            let (status, detail) = match (c.judge)(obs) {
                Verdict::Pass => (Status::Pass, String::new()),
                Verdict::Fail(w) => (Status::Fail, w),
                Verdict::Skip(w) => (Status::Skip, w),
            };
            CaseResult {
                id: c.id.into(),
                rfc: c.rfc,
                section: c.section.into(),
                level: c.level,
                group: Group::Client,
                title: c.title.into(),
                status,
                detail: if detail.is_empty() {
                    detail
                } else {
                    format!("scenario {}: {detail}", scenario.name)
                },
                transcript: obs.transcript.clone(),
                millis: 0,
            }
        })
        .collect()
}

/// Results for every client case from the sessions played (cases of scenarios not played are
/// skipped), as a report for the client named `client`.
#[must_use]
pub fn report(client: &str, address: &str, mut played: Vec<CaseResult>) -> SuiteReport {
    let mut results = Vec::new();
    for c in cases() {
        match played.iter().position(|r| r.id == c.id) {
            Some(i) => results.push(played.remove(i)),
            None => results.push(CaseResult {
                id: c.id.into(),
                rfc: c.rfc,
                section: c.section.into(),
                level: c.level,
                group: Group::Client,
                title: c.title.into(),
                status: Status::Skip,
                detail: "its scenario was not played".into(),
                transcript: String::new(),
                millis: 0,
            }),
        }
    }
    SuiteReport {
        tool: format!("petrel-conformance {}", env!("CARGO_PKG_VERSION")),
        target: Target {
            name: client.into(),
            address: address.into(),
            runner: "serve".into(),
        },
        started: crate::report::now_rfc3339(),
        millis: 0,
        profile: Profile::default(),
        results,
    }
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost` (ring).
///
/// # Panics
/// If rcgen or rustls cannot make a certificate and a configuration (they always can).
#[must_use]
pub fn self_signed_acceptor() -> TlsAcceptor {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])
        .expect("self-signed certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("default versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server configuration");
    TlsAcceptor::from(Arc::new(config))
}

enum Conn<S> {
    Plain(S),
    Tls(Box<tokio_rustls::server::TlsStream<S>>),
    Gone,
}

/// One scripted session.
struct Session<'a, S> {
    conn: Conn<S>,
    buf: Vec<u8>,
    eof: bool,
    obs: Observation,
    scenario: &'a Scenario,
    timing: ServeTiming,
    offered: Vec<String>,
    started: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    fn note(&mut self, prefix: &str, bytes: &[u8]) {
        if self.obs.transcript.len() > 64 * 1024 {
            return;
        }
        let ms = self.started.elapsed().as_millis();
        let _ = writeln!(
            self.obs.transcript,
            "{ms:>6} ms {prefix}{}",
            escape(bytes, 300)
        );
    }

    async fn read_some(&mut self, wait: Duration) -> io::Result<Option<usize>> {
        let mut chunk = [0u8; 8192];
        let read = async {
            match &mut self.conn {
                Conn::Plain(s) => s.read(&mut chunk).await,
                Conn::Tls(s) => s.read(&mut chunk).await,
                Conn::Gone => Ok(0),
            }
        };
        match tokio::time::timeout(wait, read).await {
            Err(_) => Ok(None),
            Ok(Ok(0)) => {
                self.eof = true;
                Ok(Some(0))
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(Some(n))
            }
            Ok(Err(e)) => Err(e),
        }
    }

    /// Waits a little and takes whatever arrived meanwhile; true when something is buffered.
    async fn settle(&mut self) -> bool {
        tokio::time::sleep(self.timing.settle).await;
        while !self.eof {
            match self.read_some(Duration::from_millis(1)).await {
                Ok(Some(n)) if n > 0 => {}
                _ => break,
            }
        }
        !self.buf.is_empty()
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.note("S: ", bytes);
        match &mut self.conn {
            Conn::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Writes a reply one line at a time, pausing between lines; records it as premature
    /// when the client sends anything before the last line.
    async fn reply_lines(&mut self, what: &str, lines: &[&str]) -> io::Result<()> {
        for (i, line) in lines.iter().enumerate() {
            self.write(format!("{line}\r\n").as_bytes()).await?;
            if i + 1 < lines.len() {
                tokio::time::sleep(self.timing.line_pause).await;
                if self.settle().await && !self.obs.premature.iter().any(|p| p == what) {
                    self.obs.premature.push(what.to_owned());
                }
            }
        }
        Ok(())
    }

    /// The next line (CRLF or LF ended), waiting at most the idle time.
    async fn line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + self.timing.idle;
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Ok(Some(line));
            }
            if self.eof {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.read_some(left).await?.is_none() {
                self.obs.end = End::Timeout;
                return Ok(None);
            }
        }
    }

    async fn data(&mut self) -> io::Result<bool> {
        let deadline = Instant::now() + self.timing.idle;
        // The content starts right after the DATA line; CRLF.CRLF ends it (the CRLF before
        // the dot may be the DATA line's own, for an empty message).
        let mut content = Vec::new();
        loop {
            content.append(&mut self.buf);
            let probe: Vec<u8> = [b"\r\n".as_slice(), &content].concat();
            if let Some(i) = probe.windows(5).position(|w| w == b"\r\n.\r\n") {
                let end = i + 3; // in `content` coordinates: i - 2 + 5
                self.buf = content.split_off(end);
                self.note("C: ", &content);
                self.obs.messages.push(content);
                return Ok(true);
            }
            if self.eof {
                return Ok(false);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.read_some(left).await?.is_none() {
                self.obs.end = End::Timeout;
                return Ok(false);
            }
        }
    }

    async fn ehlo_reply(&mut self) -> io::Result<()> {
        let keywords = if matches!(self.conn, Conn::Tls(_)) {
            self.scenario.tls_keywords
        } else {
            self.scenario.keywords
        };
        self.offered = keywords.iter().map(|k| (*k).to_owned()).collect();
        let mut lines = vec!["250-conformance.test greets you".to_owned()];
        for (i, k) in keywords.iter().enumerate() {
            let sep = if i + 1 == keywords.len() { ' ' } else { '-' };
            lines.push(format!("250{sep}{k}"));
        }
        if keywords.is_empty() {
            lines[0] = "250 conformance.test greets you".into();
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        self.reply_lines("EHLO", &refs).await
    }

    fn pipelining_offered(&self) -> bool {
        self.offered
            .iter()
            .any(|k| k.eq_ignore_ascii_case("PIPELINING"))
    }

    async fn starttls(&mut self, acceptor: &TlsAcceptor) -> io::Result<bool> {
        self.obs.starttls = true;
        if !self.buf.is_empty() {
            self.obs.plaintext_after_starttls = true;
        }
        self.write(b"220 2.0.0 Ready to start TLS\r\n").await?;
        let Conn::Plain(stream) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Ok(false);
        };
        if self.obs.plaintext_after_starttls {
            return Ok(false);
        }
        match tokio::time::timeout(self.timing.idle, acceptor.accept(stream)).await {
            Ok(Ok(s)) => {
                self.conn = Conn::Tls(Box::new(s));
                self.obs.tls = true;
                self.offered.clear();
                self.obs.transcript.push_str("-- TLS established\n");
                Ok(true)
            }
            Ok(Err(e)) => {
                self.obs.tls_error = Some(e.to_string());
                Ok(false)
            }
            Err(_) => {
                self.obs.tls_error = Some("handshake timed out".into());
                Ok(false)
            }
        }
    }

    async fn run(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let greeting = self.scenario.greeting;
        self.reply_lines("greeting", greeting).await?;
        loop {
            let Some(raw) = self.line().await? else {
                return Ok(());
            };
            self.note("C: ", &raw);
            let text = String::from_utf8_lossy(&raw);
            let line = text.trim_end_matches(['\r', '\n']).to_owned();
            let cmd = Cmd {
                line,
                tls: matches!(self.conn, Conn::Tls(_)),
                offered: self.offered.clone(),
            };
            let verb = cmd.verb();
            self.obs.commands.push(cmd);
            let ahead = self.settle().await;
            if ahead && verb != "STARTTLS" && verb != "QUIT" {
                let offered = self.pipelining_offered();
                self.obs.ahead.push((verb.clone(), offered));
            }
            match verb.as_str() {
                "EHLO" if self.scenario.refuse_ehlo => {
                    self.write(b"500 5.5.1 Command unrecognized\r\n").await?;
                }
                "EHLO" => self.ehlo_reply().await?,
                "HELO" => {
                    self.offered.clear();
                    self.write(b"250 conformance.test\r\n").await?;
                }
                "STARTTLS" if !self.obs.tls && self.offered.iter().any(|k| k == "STARTTLS") => {
                    if !self.starttls(acceptor).await? {
                        return Ok(());
                    }
                }
                "MAIL" => {
                    let r = format!("{}\r\n", self.scenario.mail_reply);
                    self.write(r.as_bytes()).await?;
                }
                "RCPT" => {
                    let r = format!("{}\r\n", self.scenario.rcpt_reply);
                    self.write(r.as_bytes()).await?;
                }
                "DATA" => {
                    if ahead {
                        self.obs.data_before_354 = true;
                    }
                    let r = format!("{}\r\n", self.scenario.data_reply);
                    self.write(r.as_bytes()).await?;
                    if !self.data().await? {
                        return Ok(());
                    }
                    if self.settle().await {
                        let offered = self.pipelining_offered();
                        self.obs.ahead.push(("end of data".into(), offered));
                    }
                    let lines: Vec<&str> = self.scenario.end_reply.split('\n').collect();
                    self.reply_lines("end of data", &lines).await?;
                }
                "RSET" | "NOOP" => self.write(b"250 2.0.0 Ok\r\n").await?,
                "QUIT" => {
                    self.write(b"221 2.0.0 Bye\r\n").await?;
                    self.obs.end = End::Quit;
                    match &mut self.conn {
                        Conn::Plain(s) => {
                            let _ = s.shutdown().await;
                        }
                        Conn::Tls(s) => {
                            let _ = s.shutdown().await;
                        }
                        Conn::Gone => {}
                    }
                    return Ok(());
                }
                _ => self.write(b"502 5.5.1 Command not implemented\r\n").await?,
            }
        }
    }
}

/// Plays `scenario` on `stream` and returns what the client did.
pub async fn play<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    scenario: &Scenario,
    acceptor: &TlsAcceptor,
    timing: ServeTiming,
) -> Observation {
    let mut session = Session {
        conn: Conn::Plain(stream),
        buf: Vec::new(),
        eof: false,
        obs: Observation {
            scenario: scenario.name.into(),
            ..Observation::default()
        },
        scenario,
        timing,
        offered: Vec::new(),
        started: Instant::now(),
    };
    if let Err(e) = session.run(acceptor).await {
        session.obs.end = End::Error(e.to_string());
    } else if session.eof && session.obs.end != End::Quit {
        session.obs.end = End::ClientClosed;
    }
    session.obs
}

/// Accepts one connection on `listener` and plays `scenario` on it.
///
/// # Errors
/// Accepting failed, or no client came within `timing.accept`.
pub async fn serve_one(
    listener: &TcpListener,
    scenario: &Scenario,
    acceptor: &TlsAcceptor,
    timing: ServeTiming,
) -> io::Result<Vec<CaseResult>> {
    let (stream, _) = tokio::time::timeout(timing.accept, listener.accept())
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no client connected"))??;
    stream.set_nodelay(true)?;
    let obs = play(stream, scenario, acceptor, timing).await;
    Ok(grade(scenario, &obs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_graded_case_exists_and_ids_are_unique() {
        let ids: Vec<&str> = cases().iter().map(|c| c.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        for s in scenarios() {
            for g in s.grades {
                assert!(ids.contains(g), "{} grades unknown case {g}", s.name);
            }
        }
    }

    #[test]
    fn judges_dot_stuffing_and_line_endings() {
        let mut obs = Observation {
            messages: vec![b"Subject: x\r\n\r\n..dot\r\nplain\r\n.\r\n".to_vec()],
            ..Observation::default()
        };
        assert_eq!(dot_stuffing(&obs), Verdict::Pass);
        assert_eq!(no_bare_cr_lf(&obs), Verdict::Pass);
        obs.messages = vec![b"Subject: x\r\n\r\n.dot\nbare\r\n.\r\n".to_vec()];
        assert!(matches!(dot_stuffing(&obs), Verdict::Fail(_)));
        assert!(matches!(no_bare_cr_lf(&obs), Verdict::Fail(_)));
        obs.messages = vec![b"Subject: x\r\n\r\nnone\r\n.\r\n".to_vec()];
        assert!(matches!(dot_stuffing(&obs), Verdict::Skip(_)));
    }
}
