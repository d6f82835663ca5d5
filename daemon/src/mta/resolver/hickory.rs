//! Answers from real nameservers, through hickory-resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver as Hickory, TokioResolver};
use petrel_core::relay::{DnsError, MxRecord, normalize_name};

use super::{BoxFuture, Lookup, Resolver};

/// A [`Resolver`] asking nameservers: the system's (`/etc/resolv.conf`) or given ones.
#[derive(Clone)]
pub struct HickoryResolver {
    inner: TokioResolver,
}

impl std::fmt::Debug for HickoryResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HickoryResolver").finish_non_exhaustive()
    }
}

impl HickoryResolver {
    /// The system's resolver configuration.
    ///
    /// # Errors
    /// The configuration cannot be read.
    pub fn system() -> Result<HickoryResolver, String> {
        let builder = TokioResolver::builder_tokio()
            .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?;
        let inner = builder
            .build()
            .map_err(|e| format!("cannot start the resolver: {e}"))?;
        Ok(HickoryResolver { inner })
    }

    /// These nameservers, asked in order over UDP (TCP for truncated answers), each query
    /// given `timeout`. The hosts file is not read: the nameservers are the only source.
    ///
    /// # Errors
    /// No nameserver given, or the resolver cannot start.
    pub fn with_nameservers(
        servers: &[SocketAddr],
        timeout: Duration,
    ) -> Result<HickoryResolver, String> {
        if servers.is_empty() {
            return Err("no nameserver given".into());
        }
        let name_servers = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let config = ResolverConfig::from_parts(None, Vec::new(), name_servers);
        let mut options = ResolverOpts::default();
        options.timeout = timeout;
        options.attempts = 1;
        options.use_hosts_file = ResolveHosts::Never;
        let inner = Hickory::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| format!("cannot start the resolver: {e}"))?;
        Ok(HickoryResolver { inner })
    }

    /// Asks for the records of one type and maps them with `pick` (records of other types,
    /// such as the CNAMEs of a chain, are skipped).
    async fn lookup<T>(
        &self,
        name: &str,
        kind: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Lookup<T> {
        // A trailing dot makes the name fully qualified: no search domains are tried.
        let fqdn = format!("{}.", normalize_name(name));
        let answer = self
            .inner
            .lookup(fqdn.as_str(), kind)
            .await
            .map_err(map_error)?;
        let records: Vec<T> = answer
            .answers()
            .iter()
            .filter_map(|r| pick(&r.data))
            .collect();
        if records.is_empty() {
            Err(DnsError::NoData)
        } else {
            Ok(records)
        }
    }
}

/// NXDOMAIN and empty answers are answers; everything else may go away.
fn map_error(e: NetError) -> DnsError {
    if e.is_nx_domain() {
        DnsError::NxDomain
    } else if e.is_no_records_found() {
        DnsError::NoData
    } else {
        DnsError::Temporary(e.to_string())
    }
}

/// A name as the rest of Petrel writes it: no trailing dot.
fn name_text(name: &hickory_resolver::proto::rr::Name) -> String {
    let text = name.to_ascii();
    text.strip_suffix('.').unwrap_or(&text).to_owned()
}

impl Resolver for HickoryResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Lookup<MxRecord>> {
        Box::pin(self.lookup(domain, RecordType::MX, |data| match data {
            RData::MX(mx) => Some(MxRecord::new(
                mx.preference,
                // The null MX's root name stays `.` so that the planner can recognise it.
                if mx.exchange.is_root() {
                    ".".to_owned()
                } else {
                    name_text(&mx.exchange)
                },
            )),
            _ => None,
        }))
    }

    fn ipv4<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Lookup<Ipv4Addr>> {
        Box::pin(self.lookup(host, RecordType::A, |data| match data {
            RData::A(a) => Some(a.0),
            _ => None,
        }))
    }

    fn ipv6<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Lookup<Ipv6Addr>> {
        Box::pin(self.lookup(host, RecordType::AAAA, |data| match data {
            RData::AAAA(aaaa) => Some(aaaa.0),
            _ => None,
        }))
    }

    fn ptr(&self, ip: IpAddr) -> BoxFuture<'_, Lookup<String>> {
        Box::pin(async move {
            let name = reverse_name(ip);
            self.lookup(&name, RecordType::PTR, |data| match data {
                RData::PTR(ptr) => Some(name_text(&ptr.0)),
                _ => None,
            })
            .await
        })
    }

    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<String>> {
        Box::pin(self.lookup(name, RecordType::TXT, |data| {
            match data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>(),
                ),
                _ => None,
            }
        }))
    }
}

/// The `in-addr.arpa` / `ip6.arpa` name of an address.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.1".parse().unwrap()),
            "1.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."));
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"));
    }
}
