//! `listen on … senders <t>`: the addresses an authenticated user may send as.
//!
//! The table maps a user name (as authenticated) to a list of addresses, `@domain` entries and
//! bare user names, compared as `mailaddr` tables compare (a `+tag` of the sender is ignored
//! unless the entry names one). A user without an entry may send as nobody: on a listener with
//! `senders`, every authenticated MAIL FROM must be allowed, as OpenSMTPD checks it.

use super::address::MailAddr;
use super::lookups::{LookupError, Lookups};
use super::service::Service;
use super::table::mailaddr_match;

/// Whether `user` may use `sender` as its envelope sender, per `table`.
///
/// # Errors
/// The table cannot be consulted (the session answers 4xx and the client tries again).
pub fn sender_allowed(
    lookups: &impl Lookups,
    table: &str,
    user: &str,
    sender: &MailAddr,
    delim: char,
) -> Result<bool, LookupError> {
    let Some(list) = lookups.lookup(table, Service::Mailaddrmap, user)? else {
        return Ok(false);
    };
    Ok(list
        .split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| !sender.is_null() && mailaddr_match(sender, &MailAddr::parse(entry), delim)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::StaticLookups;
    use crate::rules::lookups::LocalNames;
    use crate::rules::table::Table;

    fn lookups() -> StaticLookups {
        let mut l = StaticLookups::new(&LocalNames::new("mx.example.org", []));
        l.insert_table(Table::map(
            "senders",
            [("alice", "alice@example.org, @example.net"), ("bob", "bob")],
        ));
        l
    }

    fn allowed(user: &str, sender: &str) -> bool {
        sender_allowed(&lookups(), "senders", user, &MailAddr::parse(sender), '+').unwrap()
    }

    #[test]
    fn users_send_as_their_listed_addresses_only() {
        assert!(allowed("alice", "alice@example.org"));
        assert!(allowed("alice", "alice+lists@example.org"));
        assert!(allowed("alice", "anyone@example.net"));
        assert!(!allowed("alice", "bob@example.org"));
        assert!(!allowed("alice", "alice@example.com"));
        // A bare user name allows that local part at any domain.
        assert!(allowed("bob", "bob@example.com"));
        assert!(!allowed("bob", "alice@example.com"));
        // No entry, or the null sender: refused.
        assert!(!allowed("carol", "carol@example.org"));
        assert!(!allowed("alice", ""));
        assert!(
            sender_allowed(&lookups(), "nosuch", "alice", &MailAddr::parse("a@b"), '+').is_err()
        );
    }
}
