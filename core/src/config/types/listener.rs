//! Listeners: `listen on …`.

use std::net::IpAddr;

use super::filter::FilterRef;
use crate::config::span::Span;

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
    /// `no-rdns`: never look up the client's reverse DNS name on this listener, even when
    /// rules (`from rdns`) or filters would use it; they see no name.
    pub no_rdns: bool,
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
            no_rdns: false,
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
