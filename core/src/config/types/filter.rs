//! Filters: builtin checks, greylisting, filter processes and chains.

use std::time::Duration;

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

/// The kinds of filter declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterKind {
    /// `phase PHASE match CONDITIONS DECISION`: evaluated in the core.
    Builtin(BuiltinFilter),
    /// `greylist [OPTIONS]`: Petrel's builtin greylisting, decided at RCPT TO (see
    /// [`crate::filter::greylist`]). At most one per configuration — one state, one set of
    /// timers for every listener it is attached to.
    Greylist(GreylistSettings),
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

/// `filter NAME greylist [delay D] [retry-window D] [pass-lifetime D] [ipv4-mask N]
/// [ipv6-mask N] [bypass <table>]`: how a greylisting filter keys and times its records.
///
/// The defaults are the common ground of postgrey and OpenBSD spamd: a retry is accepted after
/// 5 minutes (real MTAs retry within 15 to 30 minutes, most bulk senders never do), a first retry
/// must come within 4 hours (spamd's window; postgrey's 2 days lets a lot of slow spam through),
/// and a sender that passed stays known for 36 days since it was last seen (spamd's 864 hours:
/// longer than a monthly newsletter's period, so it is never delayed again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreylistSettings {
    /// The minimum time between a first attempt and an accepted retry.
    pub delay: Duration,
    /// How long after the first attempt a retry may still pass; later, the record restarts.
    /// Always longer than [`delay`](Self::delay) (checked when parsing).
    pub retry_window: Duration,
    /// How long a triplet (and its client network) that passed stays accepted since it was last
    /// seen; every pass renews it.
    pub pass_lifetime: Duration,
    /// The prefix length IPv4 clients are grouped by (0 to 32): big senders retry from another
    /// host of the same pool.
    pub ipv4_mask: u8,
    /// The prefix length IPv6 clients are grouped by (0 to 128).
    pub ipv6_mask: u8,
    /// A table of client networks that are never greylisted.
    pub bypass: Option<String>,
}

impl GreylistSettings {
    /// The default minimum delay: 5 minutes.
    pub const DEFAULT_DELAY: Duration = Duration::from_secs(5 * 60);
    /// The default retry window: 4 hours.
    pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(4 * 3_600);
    /// The default pass lifetime: 36 days.
    pub const DEFAULT_PASS_LIFETIME: Duration = Duration::from_secs(36 * 86_400);
    /// The default IPv4 grouping: /24.
    pub const DEFAULT_IPV4_MASK: u8 = 24;
    /// The default IPv6 grouping: /64, what one site is usually given.
    pub const DEFAULT_IPV6_MASK: u8 = 64;
}

impl Default for GreylistSettings {
    fn default() -> Self {
        GreylistSettings {
            delay: Self::DEFAULT_DELAY,
            retry_window: Self::DEFAULT_RETRY_WINDOW,
            pass_lifetime: Self::DEFAULT_PASS_LIFETIME,
            ipv4_mask: Self::DEFAULT_IPV4_MASK,
            ipv6_mask: Self::DEFAULT_IPV6_MASK,
            bypass: None,
        }
    }
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
