//! The `Resolver` seam: MX, A/AAAA, PTR and TXT lookups with typed failures.
//!
//! Two implementations: [`HickoryResolver`] asks real nameservers (the system's, or those of
//! `resolver nameserver …`), [`StaticResolver`] answers from a table of records (`resolver
//! static "FILE"`, or built in code by tests and the simulator). Nothing else in the daemon
//! talks to DNS, so a test or a simulation never sends a query off the machine.
//!
//! The trait returns boxed futures so that `Arc<dyn Resolver>` can be chosen from the
//! configuration at run time; a lookup costs far more than the allocation.

mod hickory;
mod table;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use petrel_core::config::{Config, ResolverOptions, ResolverSource};
use petrel_core::relay::{DnsError, HostAddresses, MxRecord, StaticRecords};

pub use hickory::HickoryResolver;
pub use table::StaticResolver;

/// A boxed future, `Send`, borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of a lookup.
pub type Lookup<T> = Result<Vec<T>, DnsError>;

/// DNS lookups as the daemon needs them. Names may be given with or without the root's
/// trailing dot; they are always taken as fully qualified (no search domains).
pub trait Resolver: Send + Sync {
    /// The MX records of a domain.
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Lookup<MxRecord>>;
    /// The A records of a host.
    fn ipv4<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Lookup<Ipv4Addr>>;
    /// The AAAA records of a host.
    fn ipv6<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Lookup<Ipv6Addr>>;
    /// The PTR records of an address (names without the trailing dot).
    fn ptr(&self, ip: IpAddr) -> BoxFuture<'_, Lookup<String>>;
    /// The TXT records of a name (each record's strings joined).
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<String>>;
    /// A port the resolver names for a host's mail service: only a static table does (see
    /// [`HostAddresses::port`]).
    fn port(&self, _host: &str) -> Option<u16> {
        None
    }
}

/// Both address families of a host, looked up concurrently, with its port if any.
pub async fn host_addresses(resolver: &dyn Resolver, host: &str) -> HostAddresses {
    let (v6, v4) = tokio::join!(resolver.ipv6(host), resolver.ipv4(host));
    HostAddresses {
        v6,
        v4,
        port: resolver.port(host),
    }
}

/// How long a DNS query may take before it counts as a temporary failure.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The resolver the configuration asks for. A relative `resolver static` path is taken from
/// `base` (the configuration file's folder).
///
/// # Errors
/// The static file cannot be read or parsed, or the system configuration cannot be read.
pub fn from_config(options: &ResolverOptions, base: &Path) -> Result<Arc<dyn Resolver>, String> {
    Ok(match &options.source {
        ResolverSource::System => Arc::new(HickoryResolver::system()?),
        ResolverSource::Nameservers(servers) => {
            Arc::new(HickoryResolver::with_nameservers(servers, DNS_TIMEOUT)?)
        }
        ResolverSource::Static(path) => Arc::new(StaticResolver::new(load_static(path, base)?)),
    })
}

/// Reads and parses a `resolver static` file.
///
/// # Errors
/// `PATH: reason` or `PATH: line N: reason`, one line per error.
pub fn load_static(path: &str, base: &Path) -> Result<StaticRecords, String> {
    let full = base.join(path);
    let text = std::fs::read_to_string(&full).map_err(|e| format!("{}: {e}", full.display()))?;
    StaticRecords::parse(&text).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("{}: {e}", full.display()))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// What `petreld -n` checks beyond the grammar: a `resolver static` file must read and parse.
/// (Nameserver addresses are checked by the parser; the system configuration is read at
/// startup.)
///
/// # Errors
/// As for [`load_static`].
pub fn check_config(config: &Config, base: &Path) -> Result<(), String> {
    match &config.petrel.resolver.source {
        ResolverSource::Static(path) => load_static(path, base).map(|_| ()).map_err(|e| {
            format!(
                "{}: resolver static: {e}",
                config.location(config.petrel.resolver.span)
            )
        }),
        _ => Ok(()),
    }
}
