//! OpenSMTPD format specifiers: `%{…}` in maildir paths, mda commands and LMTP destinations.
//!
//! ```text
//! template := [ "~/" ] { literal | "%%" | "%{" token "}" }
//! token    := variable [ "[" substring "]" ] [ ":" modifier { "|" modifier } ]
//! substring:= N | N ":" | ":" M | N ":" M        (integers, optionally negative)
//! modifier := lowercase | uppercase | strip | raw
//! ```
//!
//! Variables (names and modifiers ignore ASCII case): `sender`, `sender.user`,
//! `sender.domain`, `rcpt`, `rcpt.user`, `rcpt.domain`, `dest`, `dest.user`, `dest.domain`,
//! `user.username`, `user.directory`, `mbox.from`, `mda`. A leading `~/` is the user's home
//! directory; `%%` is a literal `%`. Each token is expanded as OpenSMTPD's `mda_variables.c`
//! does: modifiers left to right, then sanitising, then the substring. Substrings count
//! characters; a negative begin counts from the end, a non-negative end is inclusive and a
//! negative end `-k` drops the last `k` characters (`example.org[0:6]` and `[0:-4]` are both
//! `example`); `[-k]` is the k-th character from the end.
//! Case is kept as received: OpenSMTPD lower-cases the local part only to look the user up,
//! never in expansions, so `%{rcpt.user:lowercase}` is how to fold it.
//!
//! # Sanitising
//!
//! Sender and recipient come from the network, and expanded values are pasted into paths and
//! into commands run by `/bin/sh -c`. Unless `:raw` is given, every variable except
//! `user.directory` and `mda` (which come from the user database and the configuration and
//! legitimately contain `/` and spaces) is sanitised with an allow-list:
//!
//! - kept: ASCII letters and digits, letters and digits of other scripts, and `@ . + - = _ :`
//!   (what addresses, SRS addresses, domains and IPv6 literals are made of);
//! - replaced by `:`: everything else — `/` and `\`, whitespace and control characters, quotes
//!   and shell metacharacters (OpenSMTPD's ``!#$%&'*?`{|}~`` among them), `^` (a pipe in the
//!   historic Bourne shell), `[` `]` (globs), and non-ASCII symbols and format characters;
//! - dots: each dot of a run of two or more becomes `:`, and a value that ends up exactly `.`
//!   (for instance through `[N]`) becomes `:`.
//!
//! So no value expanded without `:raw` contains `/` or `..`, or is `.`: a recipient cannot
//! climb out of, or collapse, the directory a maildir template puts it in. OpenSMTPD uses a
//! deny-list and lets `/` through (its address grammar allows `a/b@example.org`); Petrel does
//! not rely on the SMTP grammar for this. A leading `-` is kept: templates should pass values to
//! commands after `--` or as an option's argument.

mod error;
mod modifier;
mod sanitise;
mod substring;
mod template;
mod variable;

use std::fmt;

pub use error::ExpandError;
pub use template::Template;
pub use variable::Variable;

/// An address split into local part and domain, as OpenSMTPD's `struct mailaddr`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MailAddr {
    /// The local part.
    pub user: String,
    /// The domain.
    pub domain: String,
}

impl MailAddr {
    /// An address from its two parts.
    pub fn new(user: impl Into<String>, domain: impl Into<String>) -> MailAddr {
        MailAddr {
            user: user.into(),
            domain: domain.into(),
        }
    }

    /// Splits `address` at its last `@`; without one, all of it is the local part.
    #[must_use]
    pub fn parse(address: &str) -> MailAddr {
        match address.rsplit_once('@') {
            Some((user, domain)) => MailAddr::new(user, domain),
            None => MailAddr::new(address, ""),
        }
    }

    /// True for the null address `<>` of bounces.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.user.is_empty() && self.domain.is_empty()
    }
}

impl fmt::Display for MailAddr {
    /// `user@domain`, or nothing at all for the null address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            Ok(())
        } else {
            write!(f, "{}@{}", self.user, self.domain)
        }
    }
}

/// The values of one delivery that templates can refer to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpandContext {
    /// The envelope sender; empty for bounces (`%{mbox.from}` is then `MAILER-DAEMON`).
    pub sender: MailAddr,
    /// The recipient as given in `RCPT TO`.
    pub rcpt: MailAddr,
    /// The recipient after alias and virtual expansion.
    pub dest: MailAddr,
    /// The local user the mail is delivered as.
    pub user_name: String,
    /// That user's home directory.
    pub user_directory: String,
    /// The command an mda wrapper wraps; `None` anywhere else.
    pub mda: Option<String>,
}

/// Expands `template` for one delivery; `delim` is the sub-address delimiter (`+` by default).
pub fn expand(template: &str, ctx: &ExpandContext, delim: char) -> Result<String, ExpandError> {
    Template::parse(template)?.expand(ctx, delim)
}

/// Checks `template` at configuration load time, without an envelope.
///
/// Everything but a substring that does not fit a particular value and `%{mda}` outside a
/// wrapper is caught here; use [`Template::uses`] to reject `%{mda}` where no wrapper applies.
pub fn validate(template: &str) -> Result<(), ExpandError> {
    Template::parse(template).map(drop)
}
