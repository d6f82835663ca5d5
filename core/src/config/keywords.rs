//! The words the grammar reserves.
//!
//! A bare word equal to a reserved word is a keyword, not a value: `listen on lo tag local` is an
//! error, `tag "local"` is fine. Where only a name can follow (`table NAME`, `filter NAME`,
//! `action NAME`, chain members, `match … action NAME`) a reserved word is taken as the name,
//! since smtpd.conf(5)'s own examples write `table senders …` and `filter rdns …`; the normal
//! form quotes such names all the same. The list is OpenSMTPD 7.8's, so exactly the
//! configurations OpenSMTPD accepts stay unambiguous here. Petrel's own additions must not extend
//! it: they use contextual keywords (recognised only where they can appear) so that no valid
//! OpenSMTPD configuration stops parsing.

/// OpenSMTPD 7.8's reserved words, sorted.
pub(crate) const RESERVED: &[&str] = &[
    "action",
    "admd",
    "alias",
    "any",
    "auth",
    "auth-optional",
    "backup",
    "bounce",
    "bypass",
    "ca",
    "cert",
    "chain",
    "chroot",
    "ciphers",
    "commit",
    "compression",
    "connect",
    "data",
    "data-line",
    "dhe",
    "disconnect",
    "domain",
    "ehlo",
    "encryption",
    "expand-only",
    "fcrdns",
    "filter",
    "for",
    "forward-only",
    "from",
    "group",
    "helo",
    "helo-src",
    "host",
    "hostname",
    "hostnames",
    "include",
    "inet4",
    "inet6",
    "junk",
    "key",
    "limit",
    "listen",
    "lmtp",
    "local",
    "mail-from",
    "maildir",
    "mask-src",
    "masquerade",
    "match",
    "max-deferred",
    "max-message-size",
    "mbox",
    "mda",
    "mta",
    "mx",
    "no-dsn",
    "no-verify",
    "noop",
    "on",
    "phase",
    "pki",
    "port",
    "proc",
    "proc-exec",
    "protocols",
    "proxy-v2",
    "queue",
    "quit",
    "rcpt-to",
    "rdns",
    "received-auth",
    "recipient",
    "regex",
    "reject",
    "relay",
    "report",
    "rewrite",
    "rset",
    "scheduler",
    "senders",
    "smtp",
    "smtp-in",
    "smtp-out",
    "smtps",
    "socket",
    "src",
    "srs",
    "sub-addr-delim",
    "table",
    "tag",
    "tagged",
    "tls",
    "tls-require",
    "ttl",
    "user",
    "userbase",
    "verify",
    "virtual",
    "warn-interval",
    "wrapper",
];

/// Words that begin a directive. Besides dispatching, they let a missing `}` be detected at the
/// next directive instead of swallowing the rest of the file.
pub(crate) const DIRECTIVES: &[&str] = &[
    "action",
    "admd",
    "bounce",
    "ca",
    "filter",
    "include",
    "listen",
    "match",
    "mda",
    "mta",
    "pki",
    "proc",
    "queue",
    "scheduler",
    "smtp",
    "srs",
    "table",
];

/// The options of `filter NAME greylist …`, Petrel's own filter kind: contextual keywords,
/// recognised only after `greylist` (and offered there as "did you mean" hints), never reserved.
/// `bypass` happens to be reserved already, as a filter decision.
pub(crate) const GREYLIST_OPTIONS: &[&str] = &[
    "delay",
    "retry-window",
    "pass-lifetime",
    "ipv4-mask",
    "ipv6-mask",
    "bypass",
];

/// The kinds of `filter NAME KIND …`: OpenSMTPD's four and Petrel's contextual `greylist`.
pub(crate) const FILTER_KINDS: &[&str] = &["phase", "proc", "proc-exec", "chain", "greylist"];

/// Whether a bare word is a keyword rather than a name or value.
pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED.binary_search(&word).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_and_directives_are_reserved() {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]));
        assert!(DIRECTIVES.iter().all(|d| is_reserved(d)));
        assert!(is_reserved("tls-require"));
        assert!(!is_reserved("max-rcpt"));
    }

    #[test]
    fn petrel_keywords_stay_unreserved() {
        // A new reserved word would stop configurations that use it as a bare name or value
        // from parsing: Petrel's additions are contextual.
        assert!(!is_reserved("greylist"));
        assert!(!is_reserved("no-rdns"));
        assert!(
            GREYLIST_OPTIONS
                .iter()
                .all(|o| *o == "bypass" || !is_reserved(o))
        );
    }
}
