//! The running daemon: listeners, one task per session, and an orderly shutdown in which every
//! session is told 421 before the process exits.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use petrel_core::config::{AddressFamily, Config, ListenOn};
use petrel_core::session::Decision;
use petrel_core::session::server::{Request, ServerConfig};
use petrel_core::smtp::{EnhancedCode, Reply};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::SystemClock;
use crate::ids::IdGenerator;
use crate::listener;
use crate::smtp_in::{self, Connection, SessionHandler, hex};

/// How long sessions get to finish after a shutdown request before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// One address to listen on and how its sessions behave.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// The address.
    pub addr: SocketAddr,
    /// The server machine's settings for sessions on it.
    pub server: Arc<ServerConfig>,
}

/// What the daemon listens on.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The listeners.
    pub listeners: Vec<ListenerConfig>,
}

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The configuration asks for something this daemon cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// No listener could be bound.
    #[error("cannot listen: {0}")]
    Bind(#[source] io::Error),
}

impl ServiceConfig {
    /// The listeners of a parsed configuration. `server_name` is the machine's name, used where
    /// a listener names no `hostname`.
    pub fn from_config(config: &Config, server_name: &str) -> Result<ServiceConfig, ServiceError> {
        let mut listeners = Vec::new();
        for l in &config.listeners {
            if l.on == ListenOn::Socket {
                // The local enqueue socket arrives with local submission.
                continue;
            }
            if l.tls.is_on() || l.auth.is_some() {
                return Err(ServiceError::Unsupported(format!(
                    "line {}: TLS and AUTH listeners are not available in this version of petreld",
                    l.span.line
                )));
            }
            let server = Arc::new(ServerConfig {
                hostname: l.hostname.clone().unwrap_or_else(|| server_name.to_owned()),
                max_message_size: config.smtp.max_message_size,
                max_recipients: usize::try_from(config.smtp.max_rcpt).unwrap_or(usize::MAX),
                max_messages: usize::try_from(config.smtp.max_mails).unwrap_or(usize::MAX),
                dsn: !l.no_dsn,
                ..ServerConfig::default()
            });
            let port = l.port.unwrap_or(25);
            for ip in listen_addresses(&l.on, l.family).map_err(ServiceError::Unsupported)? {
                listeners.push(ListenerConfig {
                    addr: SocketAddr::new(ip, port),
                    server: server.clone(),
                });
            }
        }
        Ok(ServiceConfig { listeners })
    }
}

/// The addresses a `listen on` names.
fn listen_addresses(on: &ListenOn, family: Option<AddressFamily>) -> Result<Vec<IpAddr>, String> {
    let v4 = family != Some(AddressFamily::Inet6);
    let v6 = family != Some(AddressFamily::Inet4);
    let pick = |a: IpAddr, b: IpAddr| {
        let mut out = Vec::new();
        if v4 {
            out.push(a);
        }
        if v6 {
            out.push(b);
        }
        out
    };
    Ok(match on {
        ListenOn::Address(ip) => vec![*ip],
        ListenOn::Localhost => pick(Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()),
        ListenOn::All => pick(Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()),
        ListenOn::Interface(name) if name == "lo" || name == "lo0" => {
            pick(Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into())
        }
        ListenOn::Interface(name) => {
            return Err(format!(
                "listen on {name}: interface names other than lo are not available yet; listen on an address"
            ));
        }
        ListenOn::Socket => Vec::new(),
    })
}

/// The daemon's listeners, bound and ready to accept.
#[derive(Debug)]
pub struct Service {
    listeners: Vec<(TcpListener, Arc<ServerConfig>)>,
}

impl Service {
    /// Binds every listener. An address that cannot be bound is logged and skipped (a machine
    /// without IPv6 still serves IPv4), but at least one must succeed.
    pub fn bind(config: ServiceConfig) -> Result<Service, ServiceError> {
        let mut listeners = Vec::new();
        let mut last_error = None;
        for l in &config.listeners {
            match listener::bind(l.addr) {
                Ok(tcp) => listeners.push((tcp, l.server.clone())),
                Err(e) => {
                    tracing::warn!(addr = %l.addr, error = %e, "cannot listen");
                    last_error = Some(e);
                }
            }
        }
        if listeners.is_empty() {
            let e = last_error.unwrap_or_else(|| io::Error::other("no listen address configured"));
            return Err(ServiceError::Bind(e));
        }
        Ok(Service { listeners })
    }

    /// The addresses actually bound (with the ports the kernel chose for port 0).
    #[must_use]
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// Accepts and serves sessions until `shutdown` turns true, then lets sessions end.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let ids = Arc::new(IdGenerator::new());
        let mut sessions = JoinSet::new();
        let mut accepts = JoinSet::new();
        for (listener, server) in self.listeners {
            let ids = ids.clone();
            let stop = shutdown.clone();
            accepts.spawn(accept_loop(listener, server, ids, stop));
        }
        let _ = shutdown.wait_for(|stop| *stop).await;
        tracing::info!("shutting down");
        accepts.abort_all();
        while let Some(Ok(set)) = accepts.join_next().await {
            sessions.extend_from(set);
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
    }
}

/// Spawned sessions of one listener, collected so that shutdown can wait for them.
type Sessions = JoinSet<()>;

trait ExtendFrom {
    fn extend_from(&mut self, other: Sessions);
}

impl ExtendFrom for Sessions {
    fn extend_from(&mut self, mut other: Sessions) {
        // Tasks cannot move between sets; wait for them from a task of this set instead.
        self.spawn(async move { while other.join_next().await.is_some() {} });
    }
}

async fn accept_loop(
    listener: TcpListener,
    server: Arc<ServerConfig>,
    ids: Arc<IdGenerator>,
    shutdown: watch::Receiver<bool>,
) -> Sessions {
    let mut sessions = JoinSet::new();
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Running out of file descriptors must not spin: pause, then go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let conn = Connection {
            id: ids.next_id(),
            peer,
            local,
        };
        let server = server.clone();
        let stop = shutdown.clone();
        sessions.spawn(async move {
            tracing::info!(session = %hex(conn.id), %peer, %local, "connected");
            let mut handler = NoQueue::new(conn.id);
            let result =
                smtp_in::drive(&mut stream, server, &conn, &mut handler, &SystemClock, stop).await;
            match result {
                Ok(ending) => tracing::info!(session = %hex(conn.id), ?ending, "disconnected"),
                Err(e) => tracing::info!(session = %hex(conn.id), error = %e, "disconnected"),
            }
        });
        // Reap finished sessions so the set does not grow without bound.
        while sessions.try_join_next().is_some() {}
    }
}

/// The session handler used until the durable queue exists: it accepts every command but
/// refuses to take responsibility for a message, answering the end of data with an honest
/// temporary failure instead of a 250 it could not keep.
#[derive(Debug)]
pub struct NoQueue {
    id: u64,
    size: u64,
}

impl NoQueue {
    /// A handler for session `id`.
    #[must_use]
    pub fn new(id: u64) -> NoQueue {
        NoQueue { id, size: 0 }
    }
}

impl SessionHandler for NoQueue {
    async fn decide(&mut self, request: Request) -> Decision {
        let session = hex(self.id);
        match request {
            Request::Helo { ehlo, host } => tracing::info!(%session, ehlo, %host, "helo"),
            Request::Mail { from, .. } => tracing::info!(%session, %from, "mail from"),
            Request::Rcpt { to, .. } => tracing::info!(%session, %to, "rcpt to"),
            Request::Commit { envelope, size } => {
                tracing::warn!(
                    %session, from = %envelope.from, rcpts = envelope.rcpts.len(), size,
                    "message not accepted: no queue"
                );
                self.size = 0;
                return Decision::Reply(Reply::new(
                    451,
                    EnhancedCode::new(4, 3, 0),
                    "Queue not available: message not accepted, try again later",
                ));
            }
            Request::Auth { .. } => {
                return Decision::Reply(Reply::new(
                    454,
                    EnhancedCode::new(4, 7, 0),
                    "Authentication not available",
                ));
            }
            _ => {}
        }
        Decision::Accept
    }

    async fn data(&mut self, chunk: Vec<u8>) {
        self.size += chunk.len() as u64;
    }

    async fn aborted(&mut self) {
        self.size = 0;
    }
}
