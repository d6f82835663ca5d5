//! Global settings: `smtp`, `queue`, `bounce`, `srs`, `mta`, `scheduler`, and Petrel's own.

use std::time::Duration;

use super::listener::AddressFamily;
use crate::config::span::Span;

/// `smtp …` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpOptions {
    /// `smtp max-message-size`: 35M (36700160 bytes) by default.
    pub max_message_size: u64,
    /// `smtp limit max-mails`: messages per session, 100 by default.
    pub max_mails: u64,
    /// `smtp limit max-rcpt`: recipients per transaction, 1000 by default.
    pub max_rcpt: u64,
    /// `smtp sub-addr-delim`: `+` by default.
    pub sub_addr_delim: char,
    /// `smtp ciphers`: `HIGH:!aNULL:!MD5` by default.
    pub ciphers: String,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            max_message_size: 35 << 20,
            max_mails: 100,
            max_rcpt: 1000,
            sub_addr_delim: '+',
            ciphers: "HIGH:!aNULL:!MD5".into(),
        }
    }
}

/// `queue …` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// `queue ttl`: 4d by default.
    pub ttl: Duration,
    /// `queue compression`.
    pub compression: bool,
    /// `queue encryption …`.
    pub encryption: Option<QueueEncryption>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            ttl: Duration::from_secs(4 * 86_400),
            compression: false,
            encryption: None,
        }
    }
}

/// Where the queue encryption key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueEncryption {
    /// `queue encryption`: asked for at startup.
    Prompt,
    /// `queue encryption stdin` or `-`: read from standard input.
    Stdin,
    /// `queue encryption KEY`.
    Key(String),
}

/// `bounce …` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BounceOptions {
    /// `bounce warn-interval`: delays after which a warning is sent; `[4h]` by default, at most 4.
    pub warn_intervals: Vec<Duration>,
}

impl Default for BounceOptions {
    fn default() -> Self {
        BounceOptions {
            warn_intervals: vec![Duration::from_secs(4 * 3_600)],
        }
    }
}

/// `srs …` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrsOptions {
    /// `srs key SECRET`: SRS is disabled without it.
    pub key: Option<String>,
    /// `srs key backup SECRET`: accepted when decoding only.
    pub backup_key: Option<String>,
    /// `srs ttl`: whole days, at least 1; 4 by default.
    pub ttl_days: u32,
}

impl Default for SrsOptions {
    fn default() -> Self {
        SrsOptions {
            key: None,
            backup_key: None,
            ttl_days: 4,
        }
    }
}

/// `mta …` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtaOptions {
    /// `mta max-deferred`: 100 by default.
    pub max_deferred: u64,
    /// `mta limit …` directives, in order.
    pub limits: Vec<MtaLimits>,
}

impl Default for MtaOptions {
    fn default() -> Self {
        MtaOptions {
            max_deferred: 100,
            limits: Vec::new(),
        }
    }
}

/// One `mta limit [for domain D] [inet4|inet6] KEY N …` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtaLimits {
    /// `for domain D`: limits for one destination domain; the defaults when `None`.
    pub domain: Option<String>,
    /// `inet4` / `inet6`: connect with this family only.
    pub family: Option<AddressFamily>,
    /// The limits, in written order.
    pub values: Vec<(MtaLimit, u64)>,
    /// The directive.
    pub span: Span,
}

macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every key.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The key as written.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The key for a written word.
            #[must_use]
            pub fn from_keyword(word: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|k| k.as_str() == word)
            }
        }
    };
}

keyword_enum! {
    /// The keys of `mta limit`.
    MtaLimit {
        /// Connections per MX host.
        MaxConnPerHost = "max-conn-per-host",
        /// Connections per route (source, destination pair).
        MaxConnPerRoute = "max-conn-per-route",
        /// Connections per source address.
        MaxConnPerSource = "max-conn-per-source",
        /// Connections per connector.
        MaxConnPerConnector = "max-conn-per-connector",
        /// Connections per relay.
        MaxConnPerRelay = "max-conn-per-relay",
        /// Connections per domain.
        MaxConnPerDomain = "max-conn-per-domain",
        /// Seconds between connections to a host.
        ConnDelayHost = "conn-delay-host",
        /// Seconds between connections on a route.
        ConnDelayRoute = "conn-delay-route",
        /// Seconds between connections from a source.
        ConnDelaySource = "conn-delay-source",
        /// Seconds between connections of a connector.
        ConnDelayConnector = "conn-delay-connector",
        /// Seconds between connections to a relay.
        ConnDelayRelay = "conn-delay-relay",
        /// Seconds between connections to a domain.
        ConnDelayDomain = "conn-delay-domain",
        /// Seconds before reconnecting a route.
        ReconnDelayRoute = "reconn-delay-route",
        /// Messages per session.
        SessionMailMax = "session-mail-max",
        /// Seconds between transactions of a session.
        SessionTransactionDelay = "session-transaction-delay",
        /// Seconds an idle session is kept.
        SessionKeepalive = "session-keepalive",
        /// Failures before a session is dropped.
        MaxFailuresPerSession = "max-failures-per-session",
        /// Task queue high-water mark.
        TaskHiwat = "task-hiwat",
        /// Task queue low-water mark.
        TaskLowat = "task-lowat",
        /// Tasks released at once.
        TaskRelease = "task-release",
    }
}

keyword_enum! {
    /// The keys of `scheduler limit`.
    SchedulerLimit {
        /// Envelopes in flight.
        MaxInflight = "max-inflight",
        /// Envelopes per batch.
        MaxEvpBatchSize = "max-evp-batch-size",
        /// Messages per batch.
        MaxMsgBatchSize = "max-msg-batch-size",
        /// Envelopes scheduled at once.
        MaxSchedule = "max-schedule",
    }
}

/// `scheduler limit …` settings: only those written (the scheduler's own defaults otherwise).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulerLimits {
    /// The limits, in written order, each key at most once.
    pub values: Vec<(SchedulerLimit, u64)>,
}

/// Petrel's own directives, which OpenSMTPD does not have.
///
/// Each is parsed by a function of its own in the parser's directive dispatch (`resolver` in
/// the parser's `petrel` module; greylisting settings are planned here too, and options of one
/// listener or rule would go in a `petrel` field of that item). They use contextual keywords,
/// never reserved words (see the keywords module), so every OpenSMTPD configuration keeps
/// parsing unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PetrelOptions {
    /// `resolver …`: where DNS answers come from.
    pub resolver: ResolverOptions,
}

/// The `resolver` directive: where Petrel's DNS answers (MX, A/AAAA, PTR, TXT) come from.
///
/// ```text
/// resolver nameserver ADDRESS[:PORT]   # repeatable: these nameservers, in order
/// resolver static "FILE"               # a file of records, no DNS at all
/// ```
///
/// - Without a `resolver` directive, the system's configuration is used (`/etc/resolv.conf`).
/// - `nameserver` takes an IP address, with an optional port (53 by default): `127.0.0.1`,
///   `127.0.0.1:5353`, `::1`, `"[::1]:5353"` (quoted: `[` cannot start a bare word). Repeat
///   the directive for several nameservers; the same address twice is an error.
/// - `static` reads a file of `NAME TYPE VALUE` lines (MX, A, AAAA, PTR, TXT, and NXDOMAIN or
///   SERVFAIL to inject failures; see `petrel_core::relay::records` for the format), for
///   tests, simulations and closed networks. A relative path is taken from the configuration
///   file's folder. `petreld -n` reads and checks the file. It excludes `nameserver`, and may
///   be given once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolverOptions {
    /// Where the answers come from.
    pub source: ResolverSource,
    /// The first `resolver` directive; the default span when there is none.
    pub span: Span,
}

/// Where DNS answers come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ResolverSource {
    /// The system's resolver configuration (`/etc/resolv.conf`): no `resolver` directive.
    #[default]
    System,
    /// `resolver nameserver …`: these nameservers, in the order written.
    Nameservers(Vec<std::net::SocketAddr>),
    /// `resolver static "FILE"`: the records of this file.
    Static(String),
}
