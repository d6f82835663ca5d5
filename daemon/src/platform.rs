//! The seams the daemon is assembled over: the file system under the queue, the executor of
//! blocking work, the clock, listening sockets, outgoing connections, DNS, outgoing TLS and
//! the seed of identifiers.
//!
//! [`Production`] is the real machine (files, tokio sockets, the system clock, hickory or a
//! `resolver static` table, rustls); [`crate::engine::Engine::start`] uses it. The simulator
//! passes its own implementation to [`crate::engine::Engine::start_on`] and so runs the same
//! engine — sessions, queue, scheduler, delivery — on simulated hosts, time, DNS and disk.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use petrel_core::config::Config;

use crate::clock::{Clock, SystemClock};
use crate::ids::IdGenerator;
use crate::listener::{self, Listener};
use crate::mta::RustlsUpgrade;
use crate::mta::net::{Connector, TcpConnector};
use crate::mta::resolver::{self, Resolver};
use crate::mta::tls::TlsUpgrade;
use crate::queue::{Blocking, Fs, RealFs, TokioBlocking};

/// Everything the engine takes from the machine it runs on.
pub trait Platform: Send + Sync + 'static {
    /// The file system of the queue.
    type Fs: Fs;
    /// Where blocking file-system work runs.
    type Blocking: Blocking;
    /// The wall clock.
    type Clock: Clock;
    /// Listening sockets.
    type Listener: Listener;

    /// The queue's file system.
    fn fs(&self) -> Arc<Self::Fs>;
    /// The executor of blocking work.
    fn blocking(&self) -> Self::Blocking;
    /// The clock handed to sessions, the queue and delivery.
    fn clock(&self) -> Arc<Self::Clock>;
    /// Binds a listening socket.
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// Makes outgoing connections.
    fn connector(&self) -> Arc<dyn Connector>;
    /// The resolver the configuration asks for (relative paths are taken from `base`).
    ///
    /// # Errors
    /// The resolver cannot be set up, in words.
    fn resolver(&self, config: &Config, base: &Path) -> Result<Arc<dyn Resolver>, String>;
    /// Outgoing TLS, when the platform has it.
    fn tls(&self) -> Option<Arc<dyn TlsUpgrade>>;
    /// The seed of session and message identifiers.
    fn id_seed(&self) -> u64;
    /// Whether state outside the queue (the greylist, the enqueue socket) lives in files of the
    /// real machine. A simulated host has no such files: its greylist lives in memory, and it
    /// has no enqueue socket.
    fn keeps_files(&self) -> bool {
        true
    }
    /// Starts filters: processes by default, simulated filters in the simulator.
    fn filters(&self) -> Arc<dyn crate::filter::process::FilterSpawner> {
        Arc::new(crate::filter::process::ProcessSpawner)
    }
}

/// The real machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Production;

impl Platform for Production {
    type Fs = RealFs;
    type Blocking = TokioBlocking;
    type Clock = SystemClock;
    type Listener = tokio::net::TcpListener;

    fn fs(&self) -> Arc<RealFs> {
        Arc::new(RealFs)
    }

    fn blocking(&self) -> TokioBlocking {
        TokioBlocking
    }

    fn clock(&self) -> Arc<SystemClock> {
        Arc::new(SystemClock)
    }

    async fn bind(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
        listener::bind(addr)
    }

    fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(TcpConnector)
    }

    fn resolver(&self, config: &Config, base: &Path) -> Result<Arc<dyn Resolver>, String> {
        resolver::from_config(&config.petrel.resolver, base)
    }

    fn tls(&self) -> Option<Arc<dyn TlsUpgrade>> {
        match RustlsUpgrade::new() {
            Ok(tls) => Some(Arc::new(tls)),
            Err(e) => {
                tracing::warn!(error = %e, "outgoing TLS unavailable");
                None
            }
        }
    }

    fn id_seed(&self) -> u64 {
        IdGenerator::new().next_id()
    }
}
