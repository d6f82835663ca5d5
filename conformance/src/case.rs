//! The model of a conformance case: what it checks (RFC, section, requirement level) and the
//! small script that checks it.
//!
//! A case is data: an id, where its requirement comes from, and a list of [`Step`]s written
//! against the [`Transport`](crate::transport::Transport) seam, so that every runner (in memory,
//! over TCP, in the simulator) executes the same script. Cases are built with the methods of
//! [`Case`], for example:
//!
//! ```
//! use petrel_conformance::case::{Case, Expect, Group, Level};
//!
//! let case = Case::new("rfc5321.4.5.1.postmaster", 5321, "4.5.1", Level::Must, Group::Postmaster,
//!         "RCPT TO:<postmaster> is accepted")
//!     .ehlo()
//!     .cmd("MAIL FROM:<{from}>", Expect::code(250))
//!     .cmd("RCPT TO:<postmaster>", Expect::code(250));
//! assert_eq!(case.steps.len(), 5);
//! ```
//!
//! Text sent by a step may hold placeholders, replaced when the case runs: `{domain}` (a domain
//! the server accepts mail for), `{rcpt}` (an address at it), `{from}` (the sender), `{helo}`
//! (the name given in EHLO), `{plain}` (the base64 of an AUTH PLAIN response with the
//! credentials given), `{user64}` and `{pass64}` (the base64 of each, for AUTH LOGIN).

use std::fmt;
use std::time::Duration;

use petrel_core::smtp::Reply;
use serde::{Deserialize, Serialize};

use crate::interp::Ctx;

/// How strongly an RFC asks for the behaviour a case checks (RFC 2119).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// MUST, MUST NOT, REQUIRED: a failure is a conformance failure.
    Must,
    /// SHOULD, SHOULD NOT, RECOMMENDED: a failure needs a reason.
    Should,
    /// MAY, OPTIONAL: a failure only says the option is not taken.
    May,
}

impl Level {
    /// `MUST`, `SHOULD` or `MAY`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }

    /// Every level, strongest first.
    pub const ALL: [Level; 3] = [Level::Must, Level::Should, Level::May];
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The family a case belongs to, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// Command sequencing and the basic commands (RFC 5321).
    Sequencing,
    /// Reply codes and reply syntax (RFC 5321).
    Replies,
    /// Path and address syntax (RFC 5321).
    Paths,
    /// The postmaster mailbox (RFC 5321 section 4.5.1).
    Postmaster,
    /// Size limits (RFC 5321 section 4.5.3.1).
    Limits,
    /// Data transparency and the end of data (RFC 5321 section 4.5.2).
    Transparency,
    /// Timeouts (RFC 5321 section 4.5.3.2).
    Timeouts,
    /// RFC 1870 SIZE.
    Size,
    /// RFC 2920 PIPELINING.
    Pipelining,
    /// RFC 3207 STARTTLS.
    Starttls,
    /// RFC 4954 AUTH.
    Auth,
    /// RFC 6152 8BITMIME.
    EightBitMime,
    /// RFC 6531 SMTPUTF8.
    Smtputf8,
    /// RFC 3461 DSN parameters.
    Dsn,
    /// RFC 3030 CHUNKING and BINARYMIME.
    Chunking,
    /// RFC 2034 / RFC 3463 enhanced status codes.
    EnhancedCodes,
    /// SMTP smuggling: end-of-data variants with bare CR or LF (RFC 5321 sections 2.3.8 and
    /// 4.1.1.4).
    Smuggling,
    /// A client's behaviour, graded by `petrel-conformance serve`.
    Client,
}

impl Group {
    /// The name used in reports and case ids.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Sequencing => "sequencing",
            Group::Replies => "replies",
            Group::Paths => "paths",
            Group::Postmaster => "postmaster",
            Group::Limits => "limits",
            Group::Transparency => "transparency",
            Group::Timeouts => "timeouts",
            Group::Size => "size",
            Group::Pipelining => "pipelining",
            Group::Starttls => "starttls",
            Group::Auth => "auth",
            Group::EightBitMime => "8bitmime",
            Group::Smtputf8 => "smtputf8",
            Group::Dsn => "dsn",
            Group::Chunking => "chunking",
            Group::EnhancedCodes => "enhanced-codes",
            Group::Smuggling => "smuggling",
            Group::Client => "client",
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a check, a step or a whole case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The behaviour is what the RFC asks for.
    Pass,
    /// It is not; the text says what was observed.
    Fail(String),
    /// The case does not apply to this server (a feature not offered, something not
    /// observable through this runner); the text says why.
    Skip(String),
}

impl Verdict {
    /// A failure with this observation.
    pub fn fail(why: impl Into<String>) -> Verdict {
        Verdict::Fail(why.into())
    }

    /// A skip for this reason.
    pub fn skip(why: impl Into<String>) -> Verdict {
        Verdict::Skip(why.into())
    }
}

/// Something a case needs from the server or the runner; without it the case is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// The EHLO reply (before TLS) lists this keyword.
    Ext(&'static str),
    /// The EHLO reply (before TLS) does not list this keyword.
    NoExt(&'static str),
    /// STARTTLS is offered and the runner can do TLS.
    StartTls,
    /// AUTH is offered, before TLS or after STARTTLS.
    Auth,
    /// This AUTH mechanism is offered, before TLS or after STARTTLS.
    AuthMechanism(&'static str),
    /// Credentials were given to the runner (`--auth USER:PASS`).
    Credentials,
    /// SIZE is offered with a fixed limit.
    SizeLimit,
    /// The case waits minutes: it needs a runner with virtual time (or `--slow`).
    VirtualTime,
    /// The server refuses mail for domains it does not serve from this client: the runner
    /// was not told that the server relays for it (`--relay-client`).
    RelayRefused,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Feature::Ext(k) => write!(f, "{k} offered"),
            Feature::NoExt(k) => write!(f, "{k} not offered"),
            Feature::StartTls => f.write_str("STARTTLS offered"),
            Feature::Auth => f.write_str("AUTH offered"),
            Feature::AuthMechanism(m) => write!(f, "AUTH {m} offered"),
            Feature::Credentials => f.write_str("credentials (--auth USER:PASS)"),
            Feature::SizeLimit => f.write_str("SIZE with a fixed limit"),
            Feature::VirtualTime => f.write_str("virtual time (or --slow)"),
            Feature::RelayRefused => {
                f.write_str("a client the server does not relay for (no --relay-client)")
            }
        }
    }
}

/// A check of one reply.
#[derive(Clone, Copy, Debug)]
pub enum Accept {
    /// Exactly this code.
    Code(u16),
    /// One of these codes.
    Codes(&'static [u16]),
    /// Any code of this class (2, 3, 4 or 5).
    Class(u8),
    /// Any 4xx or 5xx.
    Failure,
    /// The command was not refused as a syntax error (500, 501, 553, 555): the server
    /// understood it, whatever its policy decided.
    NotSyntaxError,
    /// Any reply at all (the case only needs one to look at).
    Any,
    /// A check of its own.
    Custom(fn(&Reply, &Ctx) -> Verdict),
}

impl Accept {
    /// Judges `reply`.
    #[must_use]
    pub fn judge(&self, reply: &Reply, ctx: &Ctx) -> Verdict {
        let ok = match *self {
            Accept::Code(c) => reply.code == c,
            Accept::Codes(cs) => cs.contains(&reply.code),
            Accept::Class(c) => reply.code / 100 == u16::from(c),
            Accept::Failure => reply.code >= 400,
            Accept::NotSyntaxError => !matches!(reply.code, 500 | 501 | 553 | 555),
            Accept::Any => true,
            Accept::Custom(f) => return f(reply, ctx),
        };
        if ok {
            Verdict::Pass
        } else {
            Verdict::Fail(String::new())
        }
    }

    /// What is expected, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match *self {
            Accept::Code(c) => c.to_string(),
            Accept::Codes(cs) => cs
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            Accept::Class(c) => format!("{c}xx"),
            Accept::Failure => "4xx or 5xx".into(),
            Accept::NotSyntaxError => "a reply other than 500, 501, 553 or 555".into(),
            Accept::Any => "a reply".into(),
            Accept::Custom(_) => "a reply passing the case's check".into(),
        }
    }
}

/// What a step expects of the next reply.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    /// The check.
    pub accept: Accept,
    /// A closed connection instead of a reply is also acceptable (the server ended the
    /// session rather than answer; the case then passes and stops).
    pub or_closed: bool,
    /// A 5xx reply is also acceptable and ends the case as passed: the server refused what
    /// was sent as a whole (for example pipelined input it does not allow), which is a safe
    /// answer to what the case probes.
    pub or_refused: bool,
}

impl Expect {
    /// Exactly this code.
    #[must_use]
    pub fn code(code: u16) -> Expect {
        Expect::from(Accept::Code(code))
    }

    /// One of these codes.
    #[must_use]
    pub fn codes(codes: &'static [u16]) -> Expect {
        Expect::from(Accept::Codes(codes))
    }

    /// Any code of this class.
    #[must_use]
    pub fn class(class: u8) -> Expect {
        Expect::from(Accept::Class(class))
    }

    /// Any 4xx or 5xx.
    #[must_use]
    pub fn failure() -> Expect {
        Expect::from(Accept::Failure)
    }

    /// Any reply.
    #[must_use]
    pub fn any() -> Expect {
        Expect::from(Accept::Any)
    }

    /// Not refused as a syntax error.
    #[must_use]
    pub fn not_syntax_error() -> Expect {
        Expect::from(Accept::NotSyntaxError)
    }

    /// A check of its own.
    #[must_use]
    pub fn custom(f: fn(&Reply, &Ctx) -> Verdict) -> Expect {
        Expect::from(Accept::Custom(f))
    }

    /// A closed connection is acceptable too.
    #[must_use]
    pub fn or_closed(mut self) -> Expect {
        self.or_closed = true;
        self
    }

    /// A 5xx reply or a closed connection is acceptable too, and ends the case as passed.
    #[must_use]
    pub fn or_refused(mut self) -> Expect {
        self.or_closed = true;
        self.or_refused = true;
        self
    }
}

impl From<Accept> for Expect {
    fn from(accept: Accept) -> Expect {
        Expect {
            accept,
            or_closed: false,
            or_refused: false,
        }
    }
}

/// Generates bytes to send from the session's state, or says why the case cannot run.
pub type Generator = fn(&Ctx) -> Result<Vec<u8>, Verdict>;

/// Judges every reply read until the server fell silent or closed the connection.
pub type Collector = fn(&[Reply], bool, &Ctx) -> Verdict;

/// One step of a case's script.
#[derive(Clone, Debug)]
pub enum Step {
    /// Send these bytes (placeholders replaced) in one write.
    Send(Vec<u8>),
    /// Send generated bytes in one write.
    SendWith(Generator),
    /// Read one reply and check it.
    Expect(Expect),
    /// Say EHLO and expect 250; the keywords of the reply become the session's extensions.
    Ehlo,
    /// Say EHLO; if AUTH is not offered and STARTTLS is, upgrade and say EHLO again.
    EhloForAuth,
    /// Do the TLS handshake (after a 220 to STARTTLS).
    StartTls,
    /// Skip the case unless this feature is available in the session as it stands.
    Require(Feature),
    /// Read replies until the server is silent (or closed) and judge them all.
    Collect(Collector),
    /// Expect no reply: the server stays silent (a closed connection is acceptable). The text,
    /// if any, says what a reply would mean.
    ExpectSilence(Option<String>),
    /// Expect the server to close the connection without a further reply.
    ExpectClosed,
    /// Let time pass (virtual time in memory and in the simulator, real time over TCP).
    Wait(Duration),
    /// Check the session's state (the last EHLO reply, the last reply).
    Check(fn(&Ctx) -> Verdict),
    /// Check the content of the last message the server stored; skipped where the runner
    /// cannot see it (over TCP).
    Stored(fn(&[u8]) -> Verdict),
}

/// A conformance case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Unique id, `rfcNNNN.section.slug` (for example `rfc5321.4.5.1.postmaster`).
    pub id: String,
    /// The RFC the requirement comes from.
    pub rfc: u16,
    /// Its section.
    pub section: String,
    /// The requirement level.
    pub level: Level,
    /// The family of the case.
    pub group: Group,
    /// One line saying what the server must do.
    pub title: String,
    /// What the case needs; without it the case is skipped.
    pub requires: Vec<Feature>,
    /// The script, after the greeting (which the runner reads and checks first).
    pub steps: Vec<Step>,
}

impl Case {
    /// A case without steps yet.
    #[must_use]
    pub fn new(id: &str, rfc: u16, section: &str, level: Level, group: Group, title: &str) -> Case {
        Case {
            id: id.to_owned(),
            rfc,
            section: section.to_owned(),
            level,
            group,
            title: title.to_owned(),
            requires: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// `RFC 5321 §4.5.1`.
    #[must_use]
    pub fn reference(&self) -> String {
        format!("RFC {} §{}", self.rfc, self.section)
    }

    /// Needs `feature` (checked against the server's profile before connecting).
    #[must_use]
    pub fn requires(mut self, feature: Feature) -> Case {
        self.requires.push(feature);
        self
    }

    /// Appends a step.
    #[must_use]
    pub fn step(mut self, step: Step) -> Case {
        self.steps.push(step);
        self
    }

    /// Says EHLO (expects 250 and records the extensions).
    #[must_use]
    pub fn ehlo(self) -> Case {
        self.step(Step::Ehlo)
    }

    /// Sends `line` with CRLF appended.
    #[must_use]
    pub fn send_line(self, line: &str) -> Case {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.step(Step::Send(bytes))
    }

    /// Sends raw bytes (nothing appended).
    #[must_use]
    pub fn send(self, bytes: &[u8]) -> Case {
        self.step(Step::Send(bytes.to_vec()))
    }

    /// Sends `line` with CRLF and checks the reply.
    #[must_use]
    pub fn cmd(self, line: &str, expect: Expect) -> Case {
        self.send_line(line).expect(expect)
    }

    /// Checks the next reply.
    #[must_use]
    pub fn expect(self, expect: Expect) -> Case {
        self.step(Step::Expect(expect))
    }

    /// Opens a transaction: `MAIL FROM:<{from}>` and `RCPT TO:<{rcpt}>`, both expecting 250.
    #[must_use]
    pub fn transaction(self) -> Case {
        self.cmd("MAIL FROM:<{from}>", Expect::code(250))
            .cmd("RCPT TO:<{rcpt}>", Expect::class(2))
    }

    /// `DATA` (expects 354), a small message, the end of data (expects 250).
    #[must_use]
    pub fn data_ok(self) -> Case {
        self.cmd("DATA", Expect::code(354))
            .send(MESSAGE)
            .expect(Expect::code(250))
    }
}

/// A small, well-formed message with its end-of-data line.
pub const MESSAGE: &[u8] = b"From: <conformance@example.org>\r\nTo: <rcpt@example.org>\r\nSubject: conformance\r\nMessage-ID: <conformance@example.org>\r\n\r\nHello.\r\n.\r\n";
