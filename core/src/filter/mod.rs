//! Filters and the reporting stream: OpenSMTPD's line-based filter protocol as pure logic.
//!
//! The daemon spawns filter processes and moves lines; everything that decides what a line
//! means or what to send next lives here:
//!
//! - [`wire`]: the lines in both directions (handshake, registrations, filter requests and
//!   results, data-lines, report events), for protocol versions 0.5 to 0.7.
//! - [`report`]: report events and their layout in each protocol version.
//! - [`chain`]: one SMTP session's filter chain — which filter is asked next at each phase, the
//!   token each request carries, the decision once the chain has spoken, the data-line stream
//!   through the chain.
//! - [`builtin`]: builtin filters (`filter NAME phase PHASE match … DECISION`) evaluated against
//!   what the session knows.
//! - [`greylist`]: greylisting decisions as a pure function of (state, triplet, now).
//!
//! The vocabulary shared by all of them is defined here.

pub mod builtin;
pub mod chain;
pub mod greylist;
pub mod report;
pub mod wire;

use std::fmt;

/// A filter protocol version. Petrel speaks 0.7 unless a filter is configured for an older one:
/// the versions differ only in the order of a few report fields and in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Version {
    /// OpenSMTPD-current of December 2019: responses carry the session before the token.
    V0_5,
    /// OpenSMTPD 6.7 to 7.3: `tx-mail`/`tx-rcpt` put the address last.
    V0_6,
    /// OpenSMTPD 7.4 and later: `link-auth` puts the user name last; the handshake names the
    /// version.
    #[default]
    V0_7,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 3] = [Version::V0_5, Version::V0_6, Version::V0_7];

    /// The version as it appears on the wire (`0.7`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_5 => "0.5",
            Version::V0_6 => "0.6",
            Version::V0_7 => "0.7",
        }
    }

    /// Parses `0.5`, `0.6` or `0.7`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of the MTA an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subsystem {
    /// Sessions of clients connecting to us.
    SmtpIn,
    /// Sessions we open to relay mail.
    SmtpOut,
}

impl Subsystem {
    /// The wire name (`smtp-in`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Subsystem::SmtpIn => "smtp-in",
            Subsystem::SmtpOut => "smtp-out",
        }
    }

    /// Parses `smtp-in` or `smtp-out`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Subsystem> {
        match text {
            "smtp-in" => Some(Subsystem::SmtpIn),
            "smtp-out" => Some(Subsystem::SmtpOut),
            _ => None,
        }
    }
}

/// A point of an smtp-in session where filters are asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// The client connected; before the greeting.
    Connect,
    /// HELO.
    Helo,
    /// EHLO.
    Ehlo,
    /// STARTTLS.
    StartTls,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO.
    RcptTo,
    /// DATA.
    Data,
    /// Each line of the message.
    DataLine,
    /// The message is complete, before it is accepted.
    Commit,
    /// RSET.
    Rset,
    /// QUIT.
    Quit,
    /// NOOP.
    Noop,
    /// HELP.
    Help,
    /// `WIZ` (an old sendmail command, kept in the phase table).
    Wiz,
}

impl Phase {
    /// Every phase, in session order.
    pub const ALL: [Phase; 15] = [
        Phase::Connect,
        Phase::Helo,
        Phase::Ehlo,
        Phase::StartTls,
        Phase::Auth,
        Phase::MailFrom,
        Phase::RcptTo,
        Phase::Data,
        Phase::DataLine,
        Phase::Commit,
        Phase::Rset,
        Phase::Quit,
        Phase::Noop,
        Phase::Help,
        Phase::Wiz,
    ];

    /// The name in `register|filter|…` and `filter|…` lines.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Helo => "helo",
            Phase::Ehlo => "ehlo",
            Phase::StartTls => "starttls",
            Phase::Auth => "auth",
            Phase::MailFrom => "mail-from",
            Phase::RcptTo => "rcpt-to",
            Phase::Data => "data",
            Phase::DataLine => "data-line",
            Phase::Commit => "commit",
            Phase::Rset => "rset",
            Phase::Quit => "quit",
            Phase::Noop => "noop",
            Phase::Help => "help",
            Phase::Wiz => "wiz",
        }
    }

    /// The name in `filter-response` report events, which differs for two phases
    /// (`connected`, `tls`).
    #[must_use]
    pub fn report_name(self) -> &'static str {
        match self {
            Phase::Connect => "connected",
            Phase::StartTls => "tls",
            other => other.as_str(),
        }
    }

    /// Parses a phase name as filters register it.
    #[must_use]
    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a report event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventName {
    /// A connection was accepted (or opened, smtp-out).
    LinkConnect,
    /// The greeting was sent (smtp-out: received).
    LinkGreeting,
    /// HELO, EHLO or LHLO.
    LinkIdentify,
    /// TLS is established.
    LinkTls,
    /// An AUTH attempt ended.
    LinkAuth,
    /// The connection is closed.
    LinkDisconnect,
    /// The transaction ended (committed, rolled back or reset).
    TxReset,
    /// A transaction started.
    TxBegin,
    /// MAIL FROM and its outcome.
    TxMail,
    /// RCPT TO and its outcome.
    TxRcpt,
    /// An envelope was created for an accepted recipient.
    TxEnvelope,
    /// DATA and its outcome.
    TxData,
    /// The message was accepted.
    TxCommit,
    /// The transaction was abandoned after DATA.
    TxRollback,
    /// A line the client sent.
    ProtocolClient,
    /// A reply line the server sent.
    ProtocolServer,
    /// A filter's free-text report.
    FilterReport,
    /// A filter chain's decision at a phase.
    FilterResponse,
    /// The session timed out.
    Timeout,
}

impl EventName {
    /// Every event.
    pub const ALL: [EventName; 19] = [
        EventName::LinkConnect,
        EventName::LinkGreeting,
        EventName::LinkIdentify,
        EventName::LinkTls,
        EventName::LinkAuth,
        EventName::LinkDisconnect,
        EventName::TxReset,
        EventName::TxBegin,
        EventName::TxMail,
        EventName::TxRcpt,
        EventName::TxEnvelope,
        EventName::TxData,
        EventName::TxCommit,
        EventName::TxRollback,
        EventName::ProtocolClient,
        EventName::ProtocolServer,
        EventName::FilterReport,
        EventName::FilterResponse,
        EventName::Timeout,
    ];

    /// The wire name (`link-connect`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::LinkConnect => "link-connect",
            EventName::LinkGreeting => "link-greeting",
            EventName::LinkIdentify => "link-identify",
            EventName::LinkTls => "link-tls",
            EventName::LinkAuth => "link-auth",
            EventName::LinkDisconnect => "link-disconnect",
            EventName::TxReset => "tx-reset",
            EventName::TxBegin => "tx-begin",
            EventName::TxMail => "tx-mail",
            EventName::TxRcpt => "tx-rcpt",
            EventName::TxEnvelope => "tx-envelope",
            EventName::TxData => "tx-data",
            EventName::TxCommit => "tx-commit",
            EventName::TxRollback => "tx-rollback",
            EventName::ProtocolClient => "protocol-client",
            EventName::ProtocolServer => "protocol-server",
            EventName::FilterReport => "filter-report",
            EventName::FilterResponse => "filter-response",
            EventName::Timeout => "timeout",
        }
    }

    /// Parses an event's wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<EventName> {
        EventName::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A filter's answer to a request (every phase but data-line).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Response {
    /// Ask the next filter; after the last, the command goes ahead.
    Proceed,
    /// Mark the transaction (or the session) as spam; the chain stops and the command goes
    /// ahead.
    Junk,
    /// Refuse the command with this reply (`550 5.7.1 text`).
    Reject(String),
    /// Send this reply and close the session.
    Disconnect(String),
    /// Replace the command's argument; the chain stops.
    Rewrite(String),
    /// Emit a `filter-report` event with this text, then go on as for [`Response::Proceed`].
    Report(String),
}

impl Response {
    /// The decision's wire name (`proceed`, `reject`, …).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Response::Proceed => "proceed",
            Response::Junk => "junk",
            Response::Reject(_) => "reject",
            Response::Disconnect(_) => "disconnect",
            Response::Rewrite(_) => "rewrite",
            Response::Report(_) => "report",
        }
    }

    /// The decision's parameter, for those that have one.
    #[must_use]
    pub fn param(&self) -> Option<&str> {
        match self {
            Response::Proceed | Response::Junk => None,
            Response::Reject(p)
            | Response::Disconnect(p)
            | Response::Rewrite(p)
            | Response::Report(p) => Some(p),
        }
    }
}

/// Formats a session id as the protocol does: 16 lowercase hex digits.
#[must_use]
pub fn session_hex(id: u64) -> String {
    format!("{id:016x}")
}

/// Formats a time as the protocol does: seconds, a dot, exactly six digits of microseconds.
#[must_use]
pub fn timestamp(now: crate::Time) -> String {
    let ms = now.as_millis();
    format!("{}.{:06}", ms / 1000, (ms % 1000) * 1000)
}
