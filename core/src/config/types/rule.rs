//! Match rules, and the conditions they share with builtin filters.

use crate::config::span::Span;

/// A condition, possibly negated with `!`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond<T> {
    /// Whether the condition was written `!…`.
    pub negated: bool,
    /// The condition itself.
    pub test: T,
}

/// What a condition compares against: a value or a table, literally or as regular expressions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// `regex …`: the value or table entries are case-insensitive extended regular expressions.
    pub regex: bool,
    /// The value or table.
    pub lookup: Lookup,
}

/// A literal value or a table reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A single value written in place.
    Value(String),
    /// `<NAME>`.
    Table(String),
}

/// `match … action NAME` / `match … reject`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchRule {
    /// `from …`: where the session comes from; `from local` when not written.
    pub from: Cond<Origin>,
    /// `for …`: where the recipient goes; `for local` when not written.
    pub to: Cond<Destination>,
    /// `tag TAG` / `tag regex …` (also spelt `tagged`).
    pub tag: Option<Cond<Matcher>>,
    /// `helo …`.
    pub helo: Option<Cond<Matcher>>,
    /// `auth [USER|<t>|regex …]` (or the `auth` of `from auth`).
    pub auth: Option<Cond<Option<Matcher>>>,
    /// `tls`: the session uses TLS.
    pub tls: Option<Cond<()>>,
    /// `mail-from …` (or the `mail-from` of `from mail-from`).
    pub mail_from: Option<Cond<Matcher>>,
    /// `rcpt-to …` (or the `rcpt-to` of `for rcpt-to`).
    pub rcpt_to: Option<Cond<Matcher>>,
    /// What happens to matching recipients.
    pub decision: MatchDecision,
    /// The directive.
    pub span: Span,
}

impl MatchRule {
    /// A rule with only the default conditions (`from local for local`).
    #[must_use]
    pub fn new(decision: MatchDecision) -> MatchRule {
        MatchRule {
            from: Cond {
                negated: false,
                test: Origin::Local,
            },
            to: Cond {
                negated: false,
                test: Destination::Local,
            },
            tag: None,
            helo: None,
            auth: None,
            tls: None,
            mail_from: None,
            rcpt_to: None,
            decision,
            span: Span::default(),
        }
    }
}

/// Where a session comes from.
///
/// `from auth …` and `from mail-from …` are not origins: they mean `from any` plus an `auth` or
/// `mail-from` condition, and are stored that way (`from any` here, the condition in
/// [`MatchRule::auth`] / [`MatchRule::mail_from`]), as OpenSMTPD does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `from any`.
    Any,
    /// `from local`: loopback or the local socket.
    Local,
    /// `from socket`: the local socket only.
    Socket,
    /// `from src ADDR|<t>|regex …`.
    Src(Matcher),
    /// `from rdns [NAME|<t>|regex …]`.
    Rdns(Option<Matcher>),
}

/// Where a recipient goes.
///
/// `for rcpt-to …` means `for any` plus a `rcpt-to` condition and is stored that way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// `for any`.
    Any,
    /// `for local`: the server's own names and addresses.
    Local,
    /// `for domain DOMAIN|<t>|regex …`.
    Domain(Matcher),
}

/// What a match rule does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchDecision {
    /// `action NAME`.
    Action(String),
    /// `reject`.
    Reject,
}
