//! The daemon's [`Platform`] on a simulated host: turmoil's network for listening and
//! connecting, the host's [`SimClock`], the world's [`SimDns`], the host's [`SimDisk`] with
//! blocking work run inline, no TLS, and identifiers seeded from the run's seed.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use petrel_core::config::Config;
use petrel_daemon::listener::{Accepted, Listener};
use petrel_daemon::mta::net::{Connected, Connector};
use petrel_daemon::mta::resolver::{BoxFuture, Resolver};
use petrel_daemon::mta::tls::TlsUpgrade;
use petrel_daemon::platform::Platform;
use petrel_daemon::queue::Inline;

use crate::clock::SimClock;
use crate::disk::SimDisk;
use crate::dns::SimDns;

/// A listening socket on the simulated network.
pub struct SimListener(turmoil::net::TcpListener);

impl std::fmt::Debug for SimListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SimListener")
            .field(&self.0.local_addr().ok())
            .finish()
    }
}

impl Listener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&self) -> io::Result<Accepted<turmoil::net::TcpStream>> {
        let (stream, peer) = self.0.accept().await?;
        let local = stream.local_addr()?;
        Ok(Accepted {
            stream,
            peer,
            local,
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Outgoing connections over the simulated network (the source address is the host's own).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimConnector;

impl Connector for SimConnector {
    fn connect(
        &self,
        addr: SocketAddr,
        _src: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'_, io::Result<Connected>> {
        Box::pin(async move {
            let stream = tokio::time::timeout(timeout, turmoil::net::TcpStream::connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connection timed out"))??;
            let local = stream.local_addr()?;
            Ok(Connected {
                stream: Box::new(stream),
                local,
            })
        })
    }
}

/// Everything a Petrel host runs on in the simulator.
#[derive(Clone, Debug)]
pub struct SimPlatform {
    /// The host's disk (it outlives the host's software).
    pub disk: SimDisk,
    /// The host's clock.
    pub clock: SimClock,
    /// The world's DNS.
    pub dns: SimDns,
    /// Seed of session and message identifiers (differs between restarts of a host).
    pub seed: u64,
}

impl Platform for SimPlatform {
    type Fs = SimDisk;
    type Blocking = Inline;
    type Clock = SimClock;
    type Listener = SimListener;

    fn fs(&self) -> Arc<SimDisk> {
        Arc::new(self.disk.clone())
    }

    fn blocking(&self) -> Inline {
        Inline
    }

    fn clock(&self) -> Arc<SimClock> {
        Arc::new(self.clock.clone())
    }

    async fn bind(&self, addr: SocketAddr) -> io::Result<SimListener> {
        turmoil::net::TcpListener::bind(addr).await.map(SimListener)
    }

    fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(SimConnector)
    }

    fn resolver(&self, _config: &Config, _base: &Path) -> Result<Arc<dyn Resolver>, String> {
        Ok(Arc::new(self.dns.clone()))
    }

    fn tls(&self) -> Option<Arc<dyn TlsUpgrade>> {
        None
    }

    fn id_seed(&self) -> u64 {
        self.seed
    }

    fn keeps_files(&self) -> bool {
        false
    }

    fn filters(&self) -> Arc<dyn petrel_daemon::filter::process::FilterSpawner> {
        Arc::new(crate::filter::SimSpawner::new(self.seed))
    }
}
