//! Petrel's own directives: `resolver`. They are recognised by a contextual keyword at the
//! start of a statement, a place where OpenSMTPD accepts only its own directives, so no
//! configuration OpenSMTPD reads changes meaning.

use std::net::{IpAddr, SocketAddr};

use super::super::error::{Diag, ErrorKind};
use super::super::span::Span;
use super::super::types::ResolverSource;
use super::cursor::{Cursor, PResult};
use super::{Parser, invalid};

/// The directives Petrel adds; not reserved words.
pub(super) const PETREL_DIRECTIVES: &[&str] = &["resolver"];

/// The port of a nameserver given without one.
const DNS_PORT: u16 = 53;

impl Parser<'_> {
    /// `resolver nameserver ADDRESS[:PORT] | static "FILE"` (see
    /// [`ResolverOptions`](super::super::types::ResolverOptions)).
    pub(super) fn resolver(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        let (kind, at) = c.keyword("nameserver or static", &["nameserver", "static"])?;
        let (value, value_span) = c.string(if kind == "static" {
            "a records file"
        } else {
            "a nameserver address"
        })?;
        c.finish()?;
        if self.config.petrel.resolver.source == ResolverSource::System {
            self.config.petrel.resolver.span = span;
        }
        let conflict = |first: &str| {
            Diag::new(
                at,
                ErrorKind::Conflict(format!("`resolver {first}`"), format!("`resolver {kind}`")),
            )
        };
        match (kind, &mut self.config.petrel.resolver.source) {
            ("static", ResolverSource::System) => {
                self.setting("resolver static", at)?;
                self.config.petrel.resolver.source = ResolverSource::Static(value);
            }
            ("static", ResolverSource::Static(_)) => self.setting("resolver static", at)?,
            ("static", ResolverSource::Nameservers(_)) => return Err(conflict("nameserver")),
            (_, ResolverSource::Static(_)) => return Err(conflict("static")),
            (_, source) => {
                let addr = nameserver(&value).map_err(|reason| {
                    Diag::new(value_span, invalid("nameserver address", &value, reason))
                })?;
                match source {
                    ResolverSource::Nameservers(list) if list.contains(&addr) => {
                        return Err(Diag::new(
                            value_span,
                            ErrorKind::Repeated(format!("nameserver {addr}")),
                        ));
                    }
                    ResolverSource::Nameservers(list) => list.push(addr),
                    _ => *source = ResolverSource::Nameservers(vec![addr]),
                }
            }
        }
        Ok(())
    }
}

/// `ADDRESS`, `ADDRESS:PORT`, `[ADDRESS]` or `[ADDRESS]:PORT`.
fn nameserver(value: &str) -> Result<SocketAddr, &'static str> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return if addr.port() == 0 {
            Err("port 0 is not a port")
        } else {
            Ok(addr)
        };
    }
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .map_err(|_| "expected an IP address, optionally with a port (ADDRESS:PORT, [IPv6]:PORT)")
}
