//! The connection plan: every address to try, in order, and why a plan could not be made.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use super::dns::{DnsError, HostAddresses};
use super::hop::{Hop, HopKind, TlsPolicy};
use crate::session::client::{Outcome, OutcomeKind, Protocol};
use crate::smtp::{EnhancedCode, Reply};

/// One address to connect to, and how to talk to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host it belongs to.
    pub hop: Hop,
    /// Where to connect.
    pub addr: SocketAddr,
}

impl Target {
    /// The host name (or the address, for literals), for logs and outcomes.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.hop.name
    }

    /// The relay as OpenSMTPD's logs write it: `smtp://192.0.2.1:25`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}://{}", self.hop.scheme(), self.addr)
    }
}

/// Every address to try, most preferred first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The targets, in the order to try them.
    pub targets: Vec<Target>,
    /// Hosts that gave no address, and why (for logs; the plan goes on without them).
    pub unresolved: Vec<(String, DnsError)>,
}

/// Why no connection plan could be made.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PlanError {
    /// RFC 7505 null MX: the domain accepts no mail.
    #[error("the domain accepts no mail (null MX)")]
    NullMx,
    /// NXDOMAIN for the destination domain.
    #[error("no such domain")]
    NoSuchDomain,
    /// The MX lookup failed in a way that may go away.
    #[error("MX lookup failed: {0}")]
    DnsTemporary(String),
    /// Every exchanger is ourselves or less preferred than us.
    #[error("mail for this domain loops back to us")]
    MailLoop,
    /// DNS says authoritatively that no exchanger has an address.
    #[error("no mail exchanger has an address")]
    NoAddress,
    /// No exchanger has an address, and some lookups failed in a way that may go away.
    #[error("no address for any mail exchanger: {0}")]
    AddressTemporary(String),
}

impl PlanError {
    /// Whether the recipients bounce or wait.
    #[must_use]
    pub fn kind(&self) -> OutcomeKind {
        match self {
            PlanError::DnsTemporary(_) | PlanError::AddressTemporary(_) => OutcomeKind::Temporary,
            _ => OutcomeKind::Permanent,
        }
    }

    /// The reply recorded for every recipient of the destination (RFC 3463 codes: 5.1.10 null
    /// MX per RFC 7505, 5.1.2 bad destination system, 5.4.6 routing loop, 5.4.4 unable to
    /// route, 4.4.3 directory server failure).
    #[must_use]
    pub fn reply(&self, domain: &str) -> Reply {
        let (code, enhanced) = match self {
            PlanError::NullMx => (556, (5, 1, 10)),
            PlanError::NoSuchDomain => (550, (5, 1, 2)),
            PlanError::MailLoop => (554, (5, 4, 6)),
            PlanError::NoAddress => (550, (5, 4, 4)),
            PlanError::DnsTemporary(_) | PlanError::AddressTemporary(_) => (451, (4, 4, 3)),
        };
        let text = match self {
            PlanError::NullMx => format!("Domain {domain} does not accept mail (null MX)"),
            PlanError::NoSuchDomain => format!("Domain {domain} does not exist"),
            other => format!("{domain}: {other}"),
        };
        Reply::new(
            code,
            EnhancedCode::new(enhanced.0, enhanced.1, enhanced.2),
            text,
        )
    }

    /// The outcome for every recipient of the destination.
    #[must_use]
    pub fn outcome(&self, domain: &str) -> Outcome {
        Outcome {
            kind: self.kind(),
            reply: self.reply(domain),
            remote: false,
        }
    }
}

/// The hop for an address-literal destination (`user@[192.0.2.1]`): no MX lookup.
#[must_use]
pub fn literal_hop(ip: IpAddr, port: u16, tls: TlsPolicy) -> Hop {
    Hop {
        name: ip.to_string(),
        kind: HopKind::Literal,
        address: Some(ip),
        port,
        tls,
        protocol: Protocol::Smtp,
        auth_label: None,
    }
}

/// Builds the plan from hops in order and what the resolver said about each hop that needs a
/// lookup (`addresses` is asked once per such hop; `None` counts as a temporary failure).
///
/// Within a host, IPv6 addresses come before IPv4 ones (RFC 6724's preference for IPv6, as
/// most MTAs do it); each family keeps the resolver's order. An address already in the plan
/// is not repeated. A resolver-given port replaces the default for MX hops only.
///
/// # Errors
/// When no hop has an address: [`PlanError::AddressTemporary`] if any lookup failed
/// temporarily, [`PlanError::NoAddress`] if DNS said there is none.
pub fn build_plan(
    hops: Vec<Hop>,
    mut addresses: impl FnMut(&Hop) -> Option<HostAddresses>,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let mut seen = HashSet::new();
    for hop in hops {
        if let Some(ip) = hop.address {
            let addr = SocketAddr::new(ip, hop.port);
            if seen.insert(addr) {
                plan.targets.push(Target { hop, addr });
            }
            continue;
        }
        let answer = addresses(&hop)
            .unwrap_or_else(|| HostAddresses::failed(DnsError::Temporary("not looked up".into())));
        let port = match (answer.port, &hop.kind) {
            (Some(port), HopKind::Mx { .. }) => port,
            _ => hop.port,
        };
        let ips: Vec<IpAddr> = answer
            .v6
            .iter()
            .flatten()
            .map(|ip| IpAddr::V6(*ip))
            .chain(answer.v4.iter().flatten().map(|ip| IpAddr::V4(*ip)))
            .collect();
        if ips.is_empty() {
            plan.unresolved
                .push((hop.name.clone(), host_error(&answer)));
            continue;
        }
        for ip in ips {
            let addr = SocketAddr::new(ip, port);
            if seen.insert(addr) {
                plan.targets.push(Target {
                    hop: hop.clone(),
                    addr,
                });
            }
        }
    }
    if plan.targets.is_empty() {
        return Err(
            match plan.unresolved.iter().find(|(_, e)| e.is_temporary()) {
                Some((host, e)) => PlanError::AddressTemporary(format!("{host}: {e}")),
                None => PlanError::NoAddress,
            },
        );
    }
    Ok(plan)
}

/// Why a host has no address: a temporary failure of either family wins (the addresses may
/// be there), then NXDOMAIN, then "no data".
fn host_error(answer: &HostAddresses) -> DnsError {
    let errors = [answer.v6.as_ref().err(), answer.v4.as_ref().err()];
    let errors = errors.into_iter().flatten();
    errors
        .clone()
        .find(|e| e.is_temporary())
        .or_else(|| errors.clone().find(|e| **e == DnsError::NxDomain))
        .cloned()
        .unwrap_or(DnsError::NoData)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::mx::{MxOptions, mx_hops};
    use crate::relay::{MxRecord, smarthost_hops};

    fn hops(records: &[(u16, &str)]) -> Vec<Hop> {
        let answer = Ok(records.iter().map(|(p, n)| MxRecord::new(*p, *n)).collect());
        mx_hops("example.org", answer, &MxOptions::default(), 0).unwrap()
    }

    fn addrs(plan: &Plan) -> Vec<String> {
        plan.targets.iter().map(|t| t.addr.to_string()).collect()
    }

    #[test]
    fn ipv6_first_within_a_host_and_hosts_in_order() {
        let plan = build_plan(hops(&[(10, "a.test"), (20, "b.test")]), |h| {
            Some(match h.name.as_str() {
                "a.test" => HostAddresses::new(
                    vec!["2001:db8::1".parse().unwrap()],
                    vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()],
                ),
                _ => HostAddresses::new(vec![], vec!["192.0.2.3".parse().unwrap()]),
            })
        })
        .unwrap();
        assert_eq!(
            addrs(&plan),
            [
                "[2001:db8::1]:25",
                "192.0.2.1:25",
                "192.0.2.2:25",
                "192.0.2.3:25"
            ]
        );
        assert_eq!(plan.targets[3].host(), "b.test");
        assert_eq!(plan.targets[0].url(), "smtp://[2001:db8::1]:25");
    }

    #[test]
    fn hosts_without_addresses_are_skipped_and_reported() {
        let plan = build_plan(hops(&[(10, "gone.test"), (20, "b.test")]), |h| {
            Some(if h.name == "gone.test" {
                HostAddresses::failed(DnsError::NxDomain)
            } else {
                HostAddresses::new(vec![], vec!["192.0.2.3".parse().unwrap()])
            })
        })
        .unwrap();
        assert_eq!(addrs(&plan), ["192.0.2.3:25"]);
        assert_eq!(
            plan.unresolved,
            [("gone.test".to_owned(), DnsError::NxDomain)]
        );
    }

    #[test]
    fn no_address_at_all() {
        let none = |_: &Hop| Some(HostAddresses::failed(DnsError::NoData));
        assert_eq!(
            build_plan(hops(&[(10, "a.test")]), none),
            Err(PlanError::NoAddress)
        );
        let flaky = |h: &Hop| {
            Some(HostAddresses {
                v6: Err(DnsError::NoData),
                v4: if h.name == "a.test" {
                    Err(DnsError::Temporary("timeout".into()))
                } else {
                    Err(DnsError::NxDomain)
                },
                port: None,
            })
        };
        let err = build_plan(hops(&[(10, "a.test"), (20, "b.test")]), flaky).unwrap_err();
        assert_eq!(err.kind(), OutcomeKind::Temporary);
        assert_eq!(err.reply("example.org").code, 451);
    }

    #[test]
    fn resolver_ports_apply_to_mx_hosts_only() {
        let with_port = |_: &Hop| {
            Some(HostAddresses {
                port: Some(2526),
                ..HostAddresses::new(vec![], vec!["127.0.0.1".parse().unwrap()])
            })
        };
        let plan = build_plan(hops(&[(10, "a.test")]), with_port).unwrap();
        assert_eq!(addrs(&plan), ["127.0.0.1:2526"]);
        let smarthost = smarthost_hops(&["smtp://relay.test:587".parse().unwrap()], None);
        let plan = build_plan(smarthost, with_port).unwrap();
        assert_eq!(addrs(&plan), ["127.0.0.1:587"]);
    }

    #[test]
    fn literals_need_no_lookup_and_duplicates_go() {
        let hop = literal_hop("192.0.2.9".parse().unwrap(), 25, TlsPolicy::OPPORTUNISTIC);
        let plan = build_plan(vec![hop.clone(), hop], |_| unreachable!()).unwrap();
        assert_eq!(addrs(&plan), ["192.0.2.9:25"]);
    }

    #[test]
    fn replies_carry_the_standard_codes() {
        let r = PlanError::NullMx.reply("x.test");
        assert_eq!(
            r.to_string(),
            "556 5.1.10 Domain x.test does not accept mail (null MX)"
        );
        assert_eq!(
            PlanError::NoSuchDomain
                .reply("x.test")
                .enhanced
                .unwrap()
                .to_string(),
            "5.1.2"
        );
        assert_eq!(PlanError::NoSuchDomain.kind(), OutcomeKind::Permanent);
        assert_eq!(PlanError::MailLoop.reply("x.test").code, 554);
    }
}
