//! The simulated DNS: a table of records (MX, A/AAAA, PTR, TXT) with failures that can be
//! injected for a while — timeouts, SERVFAIL, NXDOMAIN — behind the daemon's
//! [`Resolver`] seam. No query ever leaves the process.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use petrel_core::relay::{DnsError, MxRecord, StaticRecords};
use petrel_daemon::mta::resolver::{BoxFuture, DNS_TIMEOUT, Lookup, Resolver};

use crate::clock::sim_elapsed;

/// A failure injected for a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DnsFault {
    /// The query times out (after the daemon's DNS timeout): a temporary failure.
    Timeout,
    /// SERVFAIL: a temporary failure.
    ServFail,
    /// NXDOMAIN: the name does not exist.
    NxDomain,
}

#[derive(Debug, Default)]
struct Inner {
    records: StaticRecords,
    /// Name -> (fault, until this elapsed time; `None`: for ever).
    faults: BTreeMap<String, (DnsFault, Option<Duration>)>,
    queries: u64,
}

/// The DNS of a simulated world. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct SimDns(Arc<Mutex<Inner>>);

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl SimDns {
    /// An empty DNS: every name is NXDOMAIN.
    #[must_use]
    pub fn new() -> SimDns {
        SimDns::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the records.
    pub fn records(&self, f: impl FnOnce(&mut StaticRecords)) {
        f(&mut self.lock().records);
    }

    /// Makes lookups of `name` fail with `fault` until the simulation's elapsed time reaches
    /// `until` (`None`: for ever).
    pub fn inject(&self, name: &str, fault: DnsFault, until: Option<Duration>) {
        self.lock().faults.insert(key(name), (fault, until));
    }

    /// Queries answered so far.
    #[must_use]
    pub fn queries(&self) -> u64 {
        self.lock().queries
    }

    fn fault(&self, name: &str) -> Option<DnsFault> {
        let mut s = self.lock();
        s.queries += 1;
        let now = sim_elapsed();
        match s.faults.get(&key(name)) {
            Some((fault, until)) if until.is_none_or(|u| now < u) => Some(*fault),
            _ => None,
        }
    }

    fn answer<'a, T: Send + 'a>(
        &'a self,
        name: String,
        lookup: impl FnOnce(&StaticRecords) -> Lookup<T> + Send + 'a,
    ) -> BoxFuture<'a, Lookup<T>> {
        Box::pin(async move {
            match self.fault(&name) {
                Some(DnsFault::Timeout) => {
                    tokio::time::sleep(DNS_TIMEOUT).await;
                    Err(DnsError::Temporary("timed out".into()))
                }
                Some(DnsFault::ServFail) => Err(DnsError::Temporary("SERVFAIL".into())),
                Some(DnsFault::NxDomain) => Err(DnsError::NxDomain),
                None => lookup(&self.lock().records),
            }
        })
    }
}

impl Resolver for SimDns {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Lookup<MxRecord>> {
        self.answer(domain.to_owned(), move |r| r.mx(domain))
    }

    fn ipv4<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Lookup<Ipv4Addr>> {
        self.answer(host.to_owned(), move |r| r.ipv4(host))
    }

    fn ipv6<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Lookup<Ipv6Addr>> {
        self.answer(host.to_owned(), move |r| r.ipv6(host))
    }

    fn ptr(&self, ip: IpAddr) -> BoxFuture<'_, Lookup<String>> {
        self.answer(ip.to_string(), move |r| r.ptr(ip))
    }

    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<String>> {
        self.answer(name.to_owned(), move |r| r.txt(name))
    }

    fn port(&self, host: &str) -> Option<u16> {
        self.lock().records.port(host)
    }
}
