//! Answers from a static table of records: no network at all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use petrel_core::relay::{MxRecord, StaticRecords};

use super::{BoxFuture, Lookup, Resolver};

/// A [`Resolver`] over a [`StaticRecords`] table. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    records: Arc<StaticRecords>,
}

impl StaticResolver {
    /// A resolver answering from `records`.
    #[must_use]
    pub fn new(records: StaticRecords) -> StaticResolver {
        StaticResolver {
            records: Arc::new(records),
        }
    }

    /// The table.
    #[must_use]
    pub fn records(&self) -> &StaticRecords {
        &self.records
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Resolver for StaticResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Lookup<MxRecord>> {
        ready(self.records.mx(domain))
    }

    fn ipv4<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Lookup<Ipv4Addr>> {
        ready(self.records.ipv4(host))
    }

    fn ipv6<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Lookup<Ipv6Addr>> {
        ready(self.records.ipv6(host))
    }

    fn ptr(&self, ip: IpAddr) -> BoxFuture<'_, Lookup<String>> {
        ready(self.records.ptr(ip))
    }

    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<String>> {
        ready(self.records.txt(name))
    }

    fn port(&self, host: &str) -> Option<u16> {
        self.records.port(host)
    }
}
