//! Filters: builtin checks, filter processes and chains.

use super::resources::ProcExec;
use super::rule::{Cond, Matcher};
use crate::config::span::Span;
use crate::config::values::SmtpReply;

/// `filter NAME …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The name.
    pub name: String,
    /// What the filter is.
    pub kind: FilterKind,
    /// The declaring directive.
    pub span: Span,
}

/// The four kinds of filter declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterKind {
    /// `phase PHASE match CONDITIONS DECISION`: evaluated in the core.
    Builtin(BuiltinFilter),
    /// `proc-exec "command" …`: a process of its own.
    ProcExec(ProcExec),
    /// `proc PROC`: the named shared process.
    Proc(String),
    /// `chain { F1, F2, … }`: filters run in order; never another chain.
    Chain(Vec<String>),
}

/// A builtin filter: when any condition holds at its phase, apply the decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltinFilter {
    /// When it runs.
    pub phase: FilterPhase,
    /// The conditions, ORed (OpenSMTPD's grammar takes exactly one).
    pub conditions: Vec<Cond<FilterCheck>>,
    /// What to do when a condition holds.
    pub decision: FilterDecision,
}

/// The SMTP phase a builtin filter runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterPhase {
    /// Client connected.
    Connect,
    /// HELO received.
    Helo,
    /// EHLO received.
    Ehlo,
    /// AUTH completed.
    Auth,
    /// MAIL FROM received.
    MailFrom,
    /// RCPT TO received.
    RcptTo,
    /// DATA received.
    Data,
    /// Message complete, before it is accepted.
    Commit,
}

impl FilterPhase {
    /// Every phase, in session order.
    pub const ALL: [FilterPhase; 8] = [
        FilterPhase::Connect,
        FilterPhase::Helo,
        FilterPhase::Ehlo,
        FilterPhase::Auth,
        FilterPhase::MailFrom,
        FilterPhase::RcptTo,
        FilterPhase::Data,
        FilterPhase::Commit,
    ];

    /// The phase keyword.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FilterPhase::Connect => "connect",
            FilterPhase::Helo => "helo",
            FilterPhase::Ehlo => "ehlo",
            FilterPhase::Auth => "auth",
            FilterPhase::MailFrom => "mail-from",
            FilterPhase::RcptTo => "rcpt-to",
            FilterPhase::Data => "data",
            FilterPhase::Commit => "commit",
        }
    }

    /// The condition keywords available at this phase (spec §8): what the session knows by then.
    #[must_use]
    pub fn allowed_conditions(self) -> &'static [&'static str] {
        const CONNECT: &[&str] = &["fcrdns", "rdns", "src"];
        const HELO: &[&str] = &["fcrdns", "rdns", "src", "helo"];
        const AUTH: &[&str] = &["fcrdns", "rdns", "src", "helo", "auth"];
        const MAIL: &[&str] = &["fcrdns", "rdns", "src", "helo", "auth", "mail-from"];
        const RCPT: &[&str] = &[
            "fcrdns",
            "rdns",
            "src",
            "helo",
            "auth",
            "mail-from",
            "rcpt-to",
        ];
        match self {
            FilterPhase::Connect => CONNECT,
            FilterPhase::Helo | FilterPhase::Ehlo => HELO,
            FilterPhase::Auth => AUTH,
            FilterPhase::MailFrom | FilterPhase::Data | FilterPhase::Commit => MAIL,
            FilterPhase::RcptTo => RCPT,
        }
    }
}

/// A builtin filter condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterCheck {
    /// `fcrdns`: the client's reverse DNS name resolves back to its address.
    Fcrdns,
    /// `rdns [M]`: the client has a reverse DNS name (matching M).
    Rdns(Option<Matcher>),
    /// `src M`: the client address matches.
    Src(Matcher),
    /// `helo M`: the HELO/EHLO name matches.
    Helo(Matcher),
    /// `auth [M]`: the session is authenticated (as a matching user).
    Auth(Option<Matcher>),
    /// `mail-from M`: the sender matches.
    MailFrom(Matcher),
    /// `rcpt-to M`: the recipient matches.
    RcptTo(Matcher),
}

impl FilterCheck {
    /// The condition keyword.
    #[must_use]
    pub fn keyword(&self) -> &'static str {
        match self {
            FilterCheck::Fcrdns => "fcrdns",
            FilterCheck::Rdns(_) => "rdns",
            FilterCheck::Src(_) => "src",
            FilterCheck::Helo(_) => "helo",
            FilterCheck::Auth(_) => "auth",
            FilterCheck::MailFrom(_) => "mail-from",
            FilterCheck::RcptTo(_) => "rcpt-to",
        }
    }
}

/// What a builtin filter does when it triggers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterDecision {
    /// Mark the message as spam (`X-Spam: yes`); not at commit.
    Junk,
    /// Skip the remaining filters of the chain.
    Bypass,
    /// Refuse the command with this reply.
    Reject(SmtpReply),
    /// Send this reply and close the session.
    Disconnect(SmtpReply),
    /// Replace the command's parameter with this value.
    Rewrite(String),
    /// Emit this text as a report event.
    Report(String),
}

/// A filter attached to a listener or a relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterRef {
    /// `filter NAME`.
    Named(String),
    /// `filter { A, B }`: an anonymous chain.
    Chain(Vec<String>),
}
