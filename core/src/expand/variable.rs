//! The `%{name}` variables and where their values come from.

use std::fmt;

use super::ExpandContext;

/// A variable that can appear inside `%{…}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variable {
    /// `%{sender}`: the envelope sender, empty for bounces.
    Sender,
    /// `%{sender.user}`: local part of the sender.
    SenderUser,
    /// `%{sender.domain}`: domain of the sender.
    SenderDomain,
    /// `%{rcpt}`: the recipient as given in `RCPT TO`.
    Rcpt,
    /// `%{rcpt.user}`: local part of the recipient.
    RcptUser,
    /// `%{rcpt.domain}`: domain of the recipient.
    RcptDomain,
    /// `%{dest}`: the recipient after alias and virtual expansion.
    Dest,
    /// `%{dest.user}`: local part of the expanded recipient.
    DestUser,
    /// `%{dest.domain}`: domain of the expanded recipient.
    DestDomain,
    /// `%{user.username}`: the local user the mail is delivered as.
    UserName,
    /// `%{user.directory}`: that user's home directory (not sanitised).
    UserDirectory,
    /// `%{mbox.from}`: the sender for mbox `From ` lines, `MAILER-DAEMON` for bounces.
    MboxFrom,
    /// `%{mda}`: the wrapped mda command, only in mda wrappers (not sanitised).
    Mda,
}

/// What a value is made of, which decides where `:strip` cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `local@domain`: the tag is cut from the local part only.
    Address,
    /// A local part or user name: cut from the delimiter to the end.
    LocalPart,
    /// A domain: never has a tag.
    Domain,
    /// A path or command from the configuration: cut like OpenSMTPD does.
    Other,
}

impl Variable {
    /// Every variable, in the order `smtpd.conf(5)` lists them.
    pub const ALL: [Variable; 13] = [
        Variable::Sender,
        Variable::SenderUser,
        Variable::SenderDomain,
        Variable::Rcpt,
        Variable::RcptUser,
        Variable::RcptDomain,
        Variable::Dest,
        Variable::DestUser,
        Variable::DestDomain,
        Variable::UserName,
        Variable::UserDirectory,
        Variable::MboxFrom,
        Variable::Mda,
    ];

    /// The variable called `name`; like OpenSMTPD, ASCII case is ignored.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Variable> {
        Variable::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(name))
    }

    /// The canonical name, as written between `%{` and `}`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Variable::Sender => "sender",
            Variable::SenderUser => "sender.user",
            Variable::SenderDomain => "sender.domain",
            Variable::Rcpt => "rcpt",
            Variable::RcptUser => "rcpt.user",
            Variable::RcptDomain => "rcpt.domain",
            Variable::Dest => "dest",
            Variable::DestUser => "dest.user",
            Variable::DestDomain => "dest.domain",
            Variable::UserName => "user.username",
            Variable::UserDirectory => "user.directory",
            Variable::MboxFrom => "mbox.from",
            Variable::Mda => "mda",
        }
    }

    /// Whether unsafe characters in the value are replaced (unless `:raw`).
    ///
    /// The home directory and the mda command come from the user database and the
    /// configuration, not from the peer, and legitimately contain `/` and spaces; OpenSMTPD
    /// leaves them alone too.
    #[must_use]
    pub fn is_sanitised(self) -> bool {
        !matches!(self, Variable::UserDirectory | Variable::Mda)
    }

    pub(crate) fn shape(self) -> Shape {
        match self {
            Variable::Sender | Variable::Rcpt | Variable::Dest | Variable::MboxFrom => {
                Shape::Address
            }
            Variable::SenderUser | Variable::RcptUser | Variable::DestUser | Variable::UserName => {
                Shape::LocalPart
            }
            Variable::SenderDomain | Variable::RcptDomain | Variable::DestDomain => Shape::Domain,
            Variable::UserDirectory | Variable::Mda => Shape::Other,
        }
    }

    /// The raw value in `ctx`, or `None` for `%{mda}` outside a wrapper.
    pub(crate) fn value(self, ctx: &ExpandContext) -> Option<String> {
        Some(match self {
            Variable::Sender => ctx.sender.to_string(),
            Variable::SenderUser => ctx.sender.user.clone(),
            Variable::SenderDomain => ctx.sender.domain.clone(),
            Variable::Rcpt => ctx.rcpt.to_string(),
            Variable::RcptUser => ctx.rcpt.user.clone(),
            Variable::RcptDomain => ctx.rcpt.domain.clone(),
            Variable::Dest => ctx.dest.to_string(),
            Variable::DestUser => ctx.dest.user.clone(),
            Variable::DestDomain => ctx.dest.domain.clone(),
            Variable::UserName => ctx.user_name.clone(),
            Variable::UserDirectory => ctx.user_directory.clone(),
            Variable::MboxFrom if ctx.sender.is_empty() => "MAILER-DAEMON".to_owned(),
            Variable::MboxFrom => ctx.sender.to_string(),
            Variable::Mda => ctx.mda.clone()?,
        })
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ignore_case() {
        for v in Variable::ALL {
            assert_eq!(Variable::from_name(v.name()), Some(v));
            assert_eq!(Variable::from_name(&v.name().to_ascii_uppercase()), Some(v));
        }
        assert_eq!(Variable::from_name("Rcpt.User"), Some(Variable::RcptUser));
        assert_eq!(Variable::from_name("rcpt.usr"), None);
        assert_eq!(Variable::from_name(" rcpt"), None);
        assert_eq!(Variable::from_name(""), None);
        assert_eq!(Variable::MboxFrom.to_string(), "mbox.from");
    }
}
