//! The typed configuration the parser produces.
//!
//! Named items (tables, actions, filters, …) keep their declaration order and the [`Span`] of the
//! directive that declared them. Defaults of spec §10 are filled in, so a consumer never has to
//! know them: [`SmtpOptions::default`] is what an empty configuration means.

use std::net::IpAddr;
use std::time::Duration;

use super::span::Span;
use super::url::RelayUrl;
use super::values::SmtpReply;

/// A parsed smtpd.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The files the configuration was read from: the main file first, then each included file;
    /// [`Span::file`] indexes this list.
    pub files: Vec<String>,
    /// `table` declarations.
    pub tables: Vec<Table>,
    /// `pki` declarations (all `pki NAME …` lines of one name merged).
    pub pkis: Vec<Pki>,
    /// `ca` declarations.
    pub cas: Vec<Ca>,
    /// `proc` declarations.
    pub procs: Vec<Proc>,
    /// `filter` declarations.
    pub filters: Vec<Filter>,
    /// `mda wrapper` declarations.
    pub mda_wrappers: Vec<MdaWrapper>,
    /// `listen on` directives.
    pub listeners: Vec<Listener>,
    /// `action` declarations.
    pub actions: Vec<Action>,
    /// `match` rules, in evaluation order.
    pub rules: Vec<MatchRule>,
    /// `smtp …` settings.
    pub smtp: SmtpOptions,
    /// `queue …` settings.
    pub queue: QueueOptions,
    /// `bounce …` settings.
    pub bounce: BounceOptions,
    /// `srs …` settings.
    pub srs: SrsOptions,
    /// `mta …` settings.
    pub mta: MtaOptions,
    /// `scheduler limit …` settings.
    pub scheduler: SchedulerLimits,
    /// `admd NAME`: the authserv-id passed to filters; the server name when unset.
    pub admd: Option<String>,
    /// Petrel's own directives, which OpenSMTPD does not have.
    pub petrel: PetrelOptions,
}

impl Config {
    /// The table of that name.
    #[must_use]
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The action of that name.
    #[must_use]
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The filter of that name.
    #[must_use]
    pub fn filter(&self, name: &str) -> Option<&Filter> {
        self.filters.iter().find(|f| f.name == name)
    }

    /// The proc of that name.
    #[must_use]
    pub fn proc(&self, name: &str) -> Option<&Proc> {
        self.procs.iter().find(|p| p.name == name)
    }

    /// The pki of that name (names are lowercase).
    #[must_use]
    pub fn pki(&self, name: &str) -> Option<&Pki> {
        self.pkis.iter().find(|p| p.name == name)
    }

    /// The ca of that name (names are lowercase).
    #[must_use]
    pub fn ca(&self, name: &str) -> Option<&Ca> {
        self.cas.iter().find(|c| c.name == name)
    }

    /// The mda wrapper of that name.
    #[must_use]
    pub fn mda_wrapper(&self, name: &str) -> Option<&MdaWrapper> {
        self.mda_wrappers.iter().find(|w| w.name == name)
    }

    /// `file:line:column` of a span, for messages about this configuration at run time (a table
    /// file that cannot be opened, a filter that exits).
    #[must_use]
    pub fn location(&self, span: Span) -> String {
        let file = self
            .files
            .get(span.file as usize)
            .map_or("?", String::as_str);
        format!("{file}:{}:{}", span.line, span.column)
    }

    /// The same configuration with every span and file name cleared: two configurations are
    /// "the same" modulo spans when their `without_spans` are equal.
    #[must_use]
    pub fn without_spans(&self) -> Config {
        let mut config = self.clone();
        config.files.clear();
        let none = Span::default();
        config.tables.iter_mut().for_each(|x| x.span = none);
        config.pkis.iter_mut().for_each(|x| x.span = none);
        config.cas.iter_mut().for_each(|x| x.span = none);
        config.procs.iter_mut().for_each(|x| x.span = none);
        config.filters.iter_mut().for_each(|x| x.span = none);
        config.mda_wrappers.iter_mut().for_each(|x| x.span = none);
        config.listeners.iter_mut().for_each(|x| x.span = none);
        config.actions.iter_mut().for_each(|x| x.span = none);
        config.rules.iter_mut().for_each(|x| x.span = none);
        config.mta.limits.iter_mut().for_each(|x| x.span = none);
        config
    }
}

// ---------------------------------------------------------------------------------------------
// Tables, certificates, processes

/// `table NAME …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The name, referred to as `<NAME>`.
    pub name: String,
    /// Where the entries come from.
    pub source: TableSource,
    /// The declaring directive.
    pub span: Span,
}

/// Where a table's entries come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableSource {
    /// `file:/path` or `/path`: a text file, read by the shell.
    File(String),
    /// `db:/path`: a Berkeley DB file built by makemap.
    Db(String),
    /// `proc:/path`: an external table process.
    Proc(String),
    /// `{ v1, v2 }`: a static list (also what `{ }` is).
    List(Vec<String>),
    /// `{ k1 = v1, k2 = v2 }`: a static mapping, in written order.
    Map(Vec<(String, String)>),
}

/// `pki NAME cert …` / `key …` / `dhe …`, merged by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pki {
    /// The name, lowercased (usually the host name it serves; `*` is the fallback).
    pub name: String,
    /// Certificate chain file.
    pub cert: String,
    /// Private key file.
    pub key: String,
    /// Diffie-Hellman parameters.
    pub dhe: Dhe,
    /// The first `pki NAME` directive.
    pub span: Span,
}

/// `pki NAME dhe …`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dhe {
    /// No DHE key exchange (the default).
    #[default]
    None,
    /// Automatic parameters.
    Auto,
    /// 1024-bit legacy parameters.
    Legacy,
}

/// `ca NAME cert PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ca {
    /// The name, lowercased.
    pub name: String,
    /// CA certificate file.
    pub cert: String,
    /// The declaring directive.
    pub span: Span,
}

/// A command run as a filter process, with the identity it runs under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcExec {
    /// The command line, run by the shell's `/bin/sh -c`.
    pub command: String,
    /// `user U`: run as this user.
    pub user: Option<String>,
    /// `group G`: run with this group.
    pub group: Option<String>,
    /// `chroot "dir"`: run chrooted there.
    pub chroot: Option<String>,
}

/// `proc NAME "command" …`: a filter process several filters can share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    /// The name, referred to by `filter NAME proc PROC`.
    pub name: String,
    /// What to run.
    pub exec: ProcExec,
    /// The declaring directive.
    pub span: Span,
}

/// `mda wrapper NAME "command"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdaWrapper {
    /// The name, referred to by `wrapper NAME` in local actions.
    pub name: String,
    /// The wrapper command; format specifiers are expanded at delivery.
    pub command: String,
    /// The declaring directive.
    pub span: Span,
}

// ---------------------------------------------------------------------------------------------
// Filters

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

// ---------------------------------------------------------------------------------------------
// Conditions shared by match rules and builtin filters

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

// ---------------------------------------------------------------------------------------------
// Listeners

/// `listen on …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Where to listen.
    pub on: ListenOn,
    /// `inet4` / `inet6`: only addresses of this family.
    pub family: Option<AddressFamily>,
    /// The port: as written, else 465 with `smtps` and 25 otherwise; `None` on the socket.
    pub port: Option<u16>,
    /// TLS mode.
    pub tls: TlsMode,
    /// `pki NAME`, repeatable for SNI; empty means the pki named like the server.
    pub pki: Vec<String>,
    /// `ca NAME`: trust anchors for client certificates.
    pub ca: Option<String>,
    /// `auth [<t>]` / `auth-optional [<t>]`.
    pub auth: Option<ListenAuth>,
    /// `filter …`.
    pub filter: Option<FilterRef>,
    /// `hostname NAME`: the banner and EHLO name; the server name when unset.
    pub hostname: Option<String>,
    /// `hostnames <t>`: names per local address.
    pub hostnames: Option<String>,
    /// `tag TAG`: tag for `match tag`.
    pub tag: Option<String>,
    /// `mask-src`: omit the client from the Received header.
    pub mask_src: bool,
    /// `senders <t> [masquerade]`.
    pub senders: Option<Senders>,
    /// `received-auth`: name the authenticated user in the Received header.
    pub received_auth: bool,
    /// `no-dsn`: do not offer DSN.
    pub no_dsn: bool,
    /// `proxy-v2`: expect a PROXY protocol v2 header.
    pub proxy_v2: bool,
    /// `protocols STR`: TLS protocol versions.
    pub protocols: Option<String>,
    /// `ciphers STR`: TLS cipher list.
    pub ciphers: Option<String>,
    /// The directive.
    pub span: Span,
}

impl Listener {
    /// A listener with no options.
    #[must_use]
    pub fn new(on: ListenOn) -> Listener {
        let port = (on != ListenOn::Socket).then_some(25);
        Listener {
            on,
            family: None,
            port,
            tls: TlsMode::Off,
            pki: Vec::new(),
            ca: None,
            auth: None,
            filter: None,
            hostname: None,
            hostnames: None,
            tag: None,
            mask_src: false,
            senders: None,
            received_auth: false,
            no_dsn: false,
            proxy_v2: false,
            protocols: None,
            ciphers: None,
            span: Span::default(),
        }
    }
}

/// What a listener listens on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListenOn {
    /// `socket`: the local enqueue socket used by `sendmail`.
    Socket,
    /// `all`: every address of every interface.
    All,
    /// `localhost`: the loopback addresses.
    Localhost,
    /// One address.
    Address(IpAddr),
    /// An interface, interface group (`egress`) or host name, resolved by the shell.
    Interface(String),
}

/// `inet4` / `inet6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 only.
    Inet4,
    /// IPv6 only.
    Inet6,
}

impl AddressFamily {
    /// The keyword.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AddressFamily::Inet4 => "inet4",
            AddressFamily::Inet6 => "inet6",
        }
    }
}

/// A listener's TLS mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// No TLS.
    #[default]
    Off,
    /// `tls`: STARTTLS offered.
    StartTls,
    /// `tls-require [verify]`: STARTTLS mandatory before MAIL; `verify` checks client certificates.
    StartTlsRequired {
        /// Require and verify a client certificate.
        verify: bool,
    },
    /// `smtps [verify]`: TLS from the first byte.
    Smtps {
        /// Require and verify a client certificate.
        verify: bool,
    },
}

impl TlsMode {
    /// Whether the listener does TLS at all.
    #[must_use]
    pub fn is_on(self) -> bool {
        self != TlsMode::Off
    }
}

/// `auth [<t>]` / `auth-optional [<t>]` on a listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAuth {
    /// `auth`: MAIL is refused until authenticated; `auth-optional`: AUTH offered only.
    pub required: bool,
    /// The credentials table; system passwords when `None`.
    pub table: Option<String>,
}

/// `senders <t> [masquerade]` on a listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Senders {
    /// The table of senders allowed per authenticated user.
    pub table: String,
    /// `masquerade`: rewrite the From: header to the envelope sender.
    pub masquerade: bool,
}

// ---------------------------------------------------------------------------------------------
// Actions

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

// ---------------------------------------------------------------------------------------------
// Match rules

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

// ---------------------------------------------------------------------------------------------
// Global options

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
/// Empty for now. The planned `resolver` directive and greylisting options land here (or, for
/// per-listener and per-rule options, in a `petrel` field of those items), parsed by
/// `parser/petrel.rs` with contextual keywords (see the keywords module) so OpenSMTPD
/// configurations keep parsing unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PetrelOptions {}
