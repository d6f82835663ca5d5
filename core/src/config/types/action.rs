//! Actions: local delivery methods and relaying.

use std::net::IpAddr;
use std::time::Duration;

use super::filter::FilterRef;
use crate::config::span::Span;
use crate::config::url::RelayUrl;

/// `action NAME …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// The name, referred to by `match … action NAME`.
    pub name: String,
    /// How mail is delivered.
    pub delivery: Delivery,
    /// `ttl D`: how long mail for this action may stay queued; the queue ttl when unset.
    pub ttl: Option<Duration>,
    /// The declaring directive.
    pub span: Span,
}

/// Local delivery or relaying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A local method (mbox, maildir, lmtp, mda, expand-only, forward-only).
    Local(LocalDelivery),
    /// `relay` (boxed: it is several times the size of a local delivery).
    Relay(Box<Relay>),
}

/// A local delivery method and its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalDelivery {
    /// The method.
    pub method: LocalMethod,
    /// `alias <t>` or `virtual <t>`.
    pub expansion: Option<Expansion>,
    /// `userbase <t>`: user database; the system's (`<getpwnam>`) when unset.
    pub userbase: Option<String>,
    /// `user NAME`: deliver as this user.
    pub user: Option<String>,
    /// `wrapper NAME`: run the delivery through this mda wrapper.
    pub wrapper: Option<String>,
}

impl LocalDelivery {
    /// A local delivery with no options.
    #[must_use]
    pub fn new(method: LocalMethod) -> LocalDelivery {
        LocalDelivery {
            method,
            expansion: None,
            userbase: None,
            user: None,
            wrapper: None,
        }
    }
}

/// How local mail is delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalMethod {
    /// `mbox`: the user's system mailbox.
    Mbox,
    /// `maildir [PATH] [junk]`.
    Maildir {
        /// The maildir; format specifiers allowed; `~/Maildir` when `None`.
        path: Option<String>,
        /// File `X-Spam: yes` messages into `.Junk`.
        junk: bool,
    },
    /// `lmtp DEST [rcpt-to]`.
    Lmtp {
        /// `host:port` or a Unix socket path.
        destination: String,
        /// Send the expanded recipient address instead of the local user.
        rcpt_to: bool,
    },
    /// `mda "COMMAND"`: pipe the message to a command.
    Mda {
        /// The command; format specifiers allowed.
        command: String,
    },
    /// `expand-only`: accept only if expansion yields a delivery.
    ExpandOnly,
    /// `forward-only`: accept only if expansion yields remote addresses.
    ForwardOnly,
}

impl LocalMethod {
    /// The method keyword.
    #[must_use]
    pub fn keyword(&self) -> &'static str {
        match self {
            LocalMethod::Mbox => "mbox",
            LocalMethod::Maildir { .. } => "maildir",
            LocalMethod::Lmtp { .. } => "lmtp",
            LocalMethod::Mda { .. } => "mda",
            LocalMethod::ExpandOnly => "expand-only",
            LocalMethod::ForwardOnly => "forward-only",
        }
    }
}

/// Recipient expansion of a local action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expansion {
    /// `alias <t>`: aliases keyed by local user.
    Alias(String),
    /// `virtual <t>`: virtual users keyed by address.
    Virtual(String),
}

/// `relay` and its options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Relay {
    /// `host URL`: a smarthost instead of MX lookups.
    pub host: Option<RelayUrl>,
    /// `backup [mx NAME]`: act as a backup MX.
    pub backup: Option<Backup>,
    /// `domain <t>`: relay URL per destination domain.
    pub domain: Option<String>,
    /// `helo NAME`: the EHLO name to send.
    pub helo: Option<String>,
    /// `helo-src <t>`: the EHLO name per source address.
    pub helo_src: Option<String>,
    /// `tls [no-verify]`: require TLS on every hop.
    pub tls: Option<RelayTls>,
    /// `auth <t>`: credentials for the smarthost, by the URL's label.
    pub auth: Option<String>,
    /// `pki NAME`: client certificate.
    pub pki: Option<String>,
    /// `ca NAME`: trust anchors for server certificates.
    pub ca: Option<String>,
    /// `src ADDR|<t>`: source addresses to bind.
    pub src: Option<RelaySource>,
    /// `mail-from ADDR`: force the envelope sender.
    pub mail_from: Option<String>,
    /// `srs`: rewrite forwarded senders with SRS.
    pub srs: bool,
    /// `filter …`: report filters for the outgoing sessions.
    pub filter: Option<FilterRef>,
    /// `protocols STR`: TLS protocol versions.
    pub protocols: Option<String>,
    /// `ciphers STR`: TLS cipher list.
    pub ciphers: Option<String>,
}

/// `backup [mx NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// `mx NAME`: only relay to MXs preferred over this one; over our own name when `None`.
    pub mx: Option<String>,
}

/// `tls [no-verify]` on a relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RelayTls {
    /// Verify server certificates (false with `no-verify`).
    pub verify: bool,
}

/// `src ADDR|<t>` on a relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelaySource {
    /// One address.
    Address(IpAddr),
    /// A table of addresses, used round-robin.
    Table(String),
}
