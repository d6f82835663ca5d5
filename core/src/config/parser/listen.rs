//! `listen on …`.

use std::net::IpAddr;

use super::super::error::{Diag, ErrorKind, ItemKind};
use super::super::span::Span;
use super::super::types::{AddressFamily, ListenAuth, ListenOn, Listener, Senders, TlsMode};
use super::super::values::parse_port;
use super::cursor::{Cursor, PResult};
use super::seen::Seen;
use super::{Parser, TableUse, invalid};

const OPTIONS: &[&str] = &[
    "inet4",
    "inet6",
    "port",
    "tls",
    "tls-require",
    "smtps",
    "pki",
    "ca",
    "auth",
    "auth-optional",
    "filter",
    "hostname",
    "hostnames",
    "tag",
    "mask-src",
    "senders",
    "received-auth",
    "no-dsn",
    "no-rdns",
    "proxy-v2",
    "protocols",
    "ciphers",
];

/// What the local enqueue socket accepts: it has no address, port or TLS.
const SOCKET_OPTIONS: &[&str] = &["filter", "mask-src", "tag", "no-dsn"];

const TLS_NEEDED: &str = "`tls`, `tls-require` or `smtps`";

impl Parser<'_> {
    pub(super) fn listen(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        c.expect("on")?;
        let on = listen_target(c)?;
        let socket = on == ListenOn::Socket;
        let mut listener = Listener::new(on);
        listener.port = None;
        listener.span = span;
        let mut seen = Seen::default();
        let mut needs_tls = Vec::new();
        while !c.at_end() {
            let (option, at) = c.keyword("a listen option", OPTIONS)?;
            if socket && !SOCKET_OPTIONS.contains(&option) {
                let context = "on `listen on socket`".to_owned();
                return Err(Diag::new(
                    at,
                    ErrorKind::NotAllowed {
                        option: format!("`{option}`"),
                        context,
                    },
                ));
            }
            match option {
                "inet4" | "inet6" => {
                    seen.group("address family", option, at)?;
                    let family = if option == "inet4" {
                        AddressFamily::Inet4
                    } else {
                        AddressFamily::Inet6
                    };
                    listener.family = Some(family);
                }
                "port" => {
                    seen.once(option, at)?;
                    let (port, span) = c.name("a port")?;
                    let parsed = parse_port(&port)
                        .map_err(|reason| Diag::new(span, invalid("port", &port, reason)))?;
                    listener.port = Some(parsed);
                }
                "tls" | "tls-require" | "smtps" => {
                    seen.group("tls", option, at)?;
                    let verify = option != "tls" && c.eat("verify").is_some();
                    listener.tls = match option {
                        "tls" => TlsMode::StartTls,
                        "tls-require" => TlsMode::StartTlsRequired { verify },
                        _ => TlsMode::Smtps { verify },
                    };
                }
                "pki" => {
                    listener.pki.push(self.certificate_ref(c, ItemKind::Pki)?);
                    needs_tls.push(("pki", at));
                }
                "ca" => {
                    seen.once(option, at)?;
                    listener.ca = Some(self.certificate_ref(c, ItemKind::Ca)?);
                }
                "auth" | "auth-optional" => {
                    seen.group("auth", option, at)?;
                    let table = if c.at_table_ref() {
                        Some(self.table_arg(c, TableUse::map("listener credentials"))?)
                    } else {
                        None
                    };
                    listener.auth = Some(ListenAuth {
                        required: option == "auth",
                        table,
                    });
                    needs_tls.push((option, at));
                }
                "filter" => {
                    seen.once(option, at)?;
                    listener.filter = Some(self.filter_ref(c)?);
                }
                "hostname" => {
                    seen.once(option, at)?;
                    listener.hostname = Some(c.string("a host name")?.0);
                }
                "hostnames" => {
                    seen.once(option, at)?;
                    listener.hostnames = Some(self.table_arg(c, TableUse::map("hostnames"))?);
                }
                "tag" => {
                    seen.once(option, at)?;
                    listener.tag = Some(c.string("a tag")?.0);
                }
                "senders" => {
                    seen.once(option, at)?;
                    let table = self.table_arg(c, TableUse::map("senders"))?;
                    let masquerade = c.eat("masquerade").is_some();
                    listener.senders = Some(Senders { table, masquerade });
                }
                "protocols" | "ciphers" => {
                    seen.once(option, at)?;
                    let value = Some(c.string("a value")?.0);
                    if option == "protocols" {
                        listener.protocols = value;
                    } else {
                        listener.ciphers = value;
                    }
                }
                flag => {
                    seen.once(flag, at)?;
                    match flag {
                        "mask-src" => listener.mask_src = true,
                        "received-auth" => listener.received_auth = true,
                        "no-dsn" => listener.no_dsn = true,
                        "no-rdns" => listener.no_rdns = true,
                        _ => listener.proxy_v2 = true,
                    }
                }
            }
        }
        if !listener.tls.is_on() {
            // AUTH is only offered after TLS, and a certificate without TLS serves nothing.
            for (option, at) in needs_tls {
                let kind = ErrorKind::Requires {
                    option: format!("`{option}`"),
                    requirement: TLS_NEEDED.into(),
                };
                self.diag(at, kind);
            }
        }
        if socket {
            self.setting("listen on socket", span)?;
        } else if listener.port.is_none() {
            listener.port = Some(if matches!(listener.tls, TlsMode::Smtps { .. }) {
                465
            } else {
                25
            });
        }
        self.config.listeners.push(listener);
        Ok(())
    }
}

/// `socket`, `all`, `localhost`, an address, or an interface / group / host name.
fn listen_target(c: &mut Cursor<'_>) -> PResult<ListenOn> {
    if c.eat("socket").is_some() {
        return Ok(ListenOn::Socket);
    }
    let (target, _) = c.string("an interface, address, host name or `socket`")?;
    Ok(match target.as_str() {
        "all" => ListenOn::All,
        "localhost" => ListenOn::Localhost,
        _ => match target.parse::<IpAddr>() {
            Ok(address) => ListenOn::Address(address),
            Err(_) => ListenOn::Interface(target),
        },
    })
}
