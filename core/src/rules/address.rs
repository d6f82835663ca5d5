//! Mail addresses as the rules see them: a user part and a domain, either possibly empty.
//!
//! Match rules, tables and expansion work on OpenSMTPD's `struct mailaddr`, not on RFC 5321
//! paths: the text is split at its **last** `@`, a string without `@` is a user part alone, and
//! `@domain` is a domain alone (the form of catch-all entries). The null sender `<>` is the
//! address with both parts empty, whose text is `@` — which is what a `mail-from` condition
//! sees for a bounce.

use std::fmt;

/// A user part and a domain, as written (no case folding: lookups fold where OpenSMTPD does).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailAddr {
    /// The part before the last `@`; empty for `@domain` and the null sender.
    pub user: String,
    /// The part after the last `@`; empty for a bare user and the null sender.
    pub domain: String,
}

impl MailAddr {
    /// `user@domain`.
    pub fn new(user: impl Into<String>, domain: impl Into<String>) -> MailAddr {
        MailAddr {
            user: user.into(),
            domain: domain.into(),
        }
    }

    /// The null sender of bounces (`MAIL FROM:<>`).
    #[must_use]
    pub fn null() -> MailAddr {
        MailAddr::default()
    }

    /// Splits `text` at its last `@` (OpenSMTPD's `text_to_mailaddr`): `user` alone, `@domain`
    /// alone, or both. Never fails: the rules decide what an odd address means.
    #[must_use]
    pub fn parse(text: &str) -> MailAddr {
        match text.rsplit_once('@') {
            None => MailAddr::new(text, ""),
            Some((user, domain)) => MailAddr::new(user, domain),
        }
    }

    /// True for the null sender (both parts empty).
    #[must_use]
    pub fn is_null(&self) -> bool {
        self.user.is_empty() && self.domain.is_empty()
    }

    /// The same address with the user part lowercased (keys of alias and virtual lookups).
    #[must_use]
    pub fn lowercased_user(&self) -> MailAddr {
        MailAddr::new(self.user.to_lowercase(), self.domain.clone())
    }
}

impl fmt::Display for MailAddr {
    /// `user@domain`, always with the `@` (so the null sender prints as `@`), as OpenSMTPD's
    /// `mailaddr_to_text` does: this is the key `mail-from` and `rcpt-to` conditions test.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_last_at_sign() {
        assert_eq!(
            MailAddr::parse("a@b@example.org"),
            MailAddr::new("a@b", "example.org")
        );
        assert_eq!(MailAddr::parse("alice"), MailAddr::new("alice", ""));
        assert_eq!(
            MailAddr::parse("@example.org"),
            MailAddr::new("", "example.org")
        );
        assert!(MailAddr::parse("@").is_null());
        assert_eq!(MailAddr::null().to_string(), "@");
        assert_eq!(
            MailAddr::parse("Bob+X@Example.ORG").lowercased_user(),
            MailAddr::new("bob+x", "Example.ORG")
        );
    }
}
