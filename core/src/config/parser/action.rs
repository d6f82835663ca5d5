//! `action NAME METHOD [options…]`: local delivery methods and `relay`.

use std::net::IpAddr;
use std::time::Duration;

use super::super::error::{Diag, ErrorKind, ItemKind};
use super::super::span::Span;
use super::super::types::{
    Action, Backup, Delivery, Expansion, LocalDelivery, LocalMethod, Relay, RelaySource, RelayTls,
};
use super::super::url::RelayUrl;
use super::cursor::{Cursor, PResult};
use super::globals::duration;
use super::seen::Seen;
use super::{Parser, TableUse, invalid};

const METHODS: &[&str] = &[
    "mbox",
    "maildir",
    "lmtp",
    "mda",
    "expand-only",
    "forward-only",
    "relay",
];

const LOCAL_OPTIONS: &[&str] = &["alias", "virtual", "userbase", "user", "wrapper", "ttl"];

const RELAY_OPTIONS: &[&str] = &[
    "host",
    "backup",
    "domain",
    "helo",
    "helo-src",
    "tls",
    "auth",
    "pki",
    "ca",
    "src",
    "mail-from",
    "srs",
    "filter",
    "protocols",
    "ciphers",
    "ttl",
];

impl Parser<'_> {
    pub(super) fn action(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        let (name, name_span) = c.name("an action name")?;
        let fresh = self.declare(ItemKind::Action, &name, name_span);
        let (method, _) = c.keyword("a delivery method", METHODS)?;
        let mut ttl = None;
        let delivery = if method == "relay" {
            Delivery::Relay(Box::new(self.relay(c, &mut ttl)?))
        } else {
            Delivery::Local(self.local(c, method, &mut ttl)?)
        };
        if fresh {
            self.config.actions.push(Action {
                name,
                delivery,
                ttl,
                span,
            });
        }
        Ok(())
    }

    fn local(
        &mut self,
        c: &mut Cursor<'_>,
        method: &str,
        ttl: &mut Option<Duration>,
    ) -> PResult<LocalDelivery> {
        let method = match method {
            "mbox" => LocalMethod::Mbox,
            "maildir" => {
                let path = if c.at_string() {
                    Some(c.string("a maildir path")?.0)
                } else {
                    None
                };
                LocalMethod::Maildir {
                    path,
                    junk: c.eat("junk").is_some(),
                }
            }
            "lmtp" => {
                let (destination, _) =
                    c.string("an LMTP destination (host:port or a socket path)")?;
                LocalMethod::Lmtp {
                    destination,
                    rcpt_to: c.eat("rcpt-to").is_some(),
                }
            }
            "mda" => LocalMethod::Mda {
                command: c.string("a command")?.0,
            },
            "expand-only" => LocalMethod::ExpandOnly,
            _ => LocalMethod::ForwardOnly,
        };
        let mut local = LocalDelivery::new(method);
        let mut seen = Seen::default();
        while !c.at_end() {
            let (option, at) = c.keyword("a local delivery option", LOCAL_OPTIONS)?;
            match option {
                "alias" | "virtual" => {
                    seen.group("expansion", option, at)?;
                    let expansion = if option == "alias" {
                        Expansion::Alias(self.table_arg(c, TableUse::map("alias lookups"))?)
                    } else {
                        Expansion::Virtual(self.table_arg(c, TableUse::map("virtual lookups"))?)
                    };
                    local.expansion = Some(expansion);
                }
                "userbase" => {
                    seen.once(option, at)?;
                    local.userbase = Some(self.table_arg(c, TableUse::map("userbase lookups"))?);
                }
                "user" => {
                    seen.once(option, at)?;
                    // These methods deliver as the recipient, or not at all.
                    if matches!(
                        local.method,
                        LocalMethod::Mbox | LocalMethod::ExpandOnly | LocalMethod::ForwardOnly
                    ) {
                        let context = format!("with `{}`", local.method.keyword());
                        self.diag(
                            at,
                            ErrorKind::NotAllowed {
                                option: "`user`".into(),
                                context,
                            },
                        );
                    }
                    local.user = Some(c.string("a user name")?.0);
                }
                "wrapper" => {
                    seen.once(option, at)?;
                    let (name, span) = c.name("an mda wrapper name")?;
                    self.refer(ItemKind::MdaWrapper, &name, span);
                    local.wrapper = Some(name);
                }
                _ => {
                    seen.once(option, at)?;
                    *ttl = Some(duration(c)?);
                }
            }
        }
        Ok(local)
    }

    fn relay(&mut self, c: &mut Cursor<'_>, ttl: &mut Option<Duration>) -> PResult<Relay> {
        let mut relay = Relay::default();
        let mut seen = Seen::default();
        let mut auth_at = None;
        while !c.at_end() {
            let (option, at) = c.keyword("a relay option", RELAY_OPTIONS)?;
            match option {
                // One way to choose the next hop: a smarthost, a per-domain map, or backup MX.
                "host" => {
                    seen.group("route", option, at)?;
                    let (url, span) = c.string("a relay URL")?;
                    let parsed = url
                        .parse::<RelayUrl>()
                        .map_err(|r| Diag::new(span, invalid("relay URL", &url, r)))?;
                    relay.host = Some(parsed);
                }
                "domain" => {
                    seen.group("route", option, at)?;
                    relay.domain = Some(self.table_arg(c, TableUse::map("relay domain lookups"))?);
                }
                "backup" => {
                    seen.group("route", option, at)?;
                    let mx = match c.eat("mx") {
                        Some(_) => Some(c.string("an MX name")?.0),
                        None => None,
                    };
                    relay.backup = Some(Backup { mx });
                }
                "helo" => {
                    seen.once(option, at)?;
                    relay.helo = Some(c.string("a host name")?.0);
                }
                "helo-src" => {
                    seen.once(option, at)?;
                    relay.helo_src = Some(self.table_arg(c, TableUse::map("helo-src lookups"))?);
                }
                "tls" => {
                    seen.once(option, at)?;
                    relay.tls = Some(RelayTls {
                        verify: c.eat("no-verify").is_none(),
                    });
                }
                "auth" => {
                    seen.once(option, at)?;
                    relay.auth = Some(self.table_arg(c, TableUse::map("relay credentials"))?);
                    auth_at = Some(at);
                }
                "pki" => {
                    seen.once(option, at)?;
                    relay.pki = Some(self.certificate_ref(c, ItemKind::Pki)?);
                }
                "ca" => {
                    seen.once(option, at)?;
                    relay.ca = Some(self.certificate_ref(c, ItemKind::Ca)?);
                }
                "src" => {
                    seen.once(option, at)?;
                    relay.src = Some(if c.at_table_ref() {
                        RelaySource::Table(self.table_arg(c, TableUse::list("source addresses"))?)
                    } else {
                        let (address, span) = c.string("an address or <table>")?;
                        let parsed = address.parse::<IpAddr>();
                        RelaySource::Address(parsed.map_err(|_| {
                            Diag::new(
                                span,
                                invalid("source address", &address, "expected an IP address"),
                            )
                        })?)
                    });
                }
                "mail-from" => {
                    seen.once(option, at)?;
                    relay.mail_from = Some(c.string("an address")?.0);
                }
                "srs" => {
                    seen.once(option, at)?;
                    relay.srs = true;
                    self.srs_uses.push((at, self.seq));
                }
                "filter" => {
                    seen.once(option, at)?;
                    relay.filter = Some(self.filter_ref(c)?);
                }
                "protocols" | "ciphers" => {
                    seen.once(option, at)?;
                    let value = Some(c.string("a value")?.0);
                    if option == "protocols" {
                        relay.protocols = value;
                    } else {
                        relay.ciphers = value;
                    }
                }
                _ => {
                    seen.once(option, at)?;
                    *ttl = Some(duration(c)?);
                }
            }
        }
        if let (Some(at), None) = (auth_at, &relay.host) {
            // The credentials are looked up by the label of the host URL.
            let kind = ErrorKind::Requires {
                option: "`auth`".into(),
                requirement: "`host`".into(),
            };
            self.diag(at, kind);
        }
        Ok(relay)
    }
}
