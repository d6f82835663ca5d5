//! The running daemon: listeners, one task per session, and an orderly shutdown in which every
//! session is told 421 before the process exits.
//!
//! Concurrent sessions are bounded, over all listeners together and per client address
//! ([`SessionLimits`]): a connection over either limit is told `421 4.7.0` and closed at once,
//! before any session state, TLS handshake or DNS lookup is spent on it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_core::config::{AddressFamily, Config, ListenOn, Listener, TlsMode};
use petrel_core::session::server::{AuthPolicy, ServerConfig, TlsPolicy};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::{AuthError, Authenticator};
use crate::clock::{Clock, SystemClock};
use crate::ids::IdGenerator;
use crate::inbound::ListenerFacts;
use crate::listener::{self, Accepted, Listener as Bound};
use crate::smtp_in::{self, Connection, SessionHandler, SessionSecurity, hex};
use crate::tls::{self, MaybeTls, ServerTlsSettings, TlsError};

/// How long sessions get to finish after a shutdown request before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// One address to listen on and how its sessions behave.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// The address.
    pub addr: SocketAddr,
    /// The server machine's settings for sessions on it.
    pub server: Arc<ServerConfig>,
    /// Its TLS and AUTH.
    pub security: SessionSecurity,
    /// Its settings that the session handler needs (tag, Received header options).
    pub facts: ListenerFacts,
}

/// Makes the session handler of each connection.
pub trait HandlerFactory: Send + Sync + 'static {
    /// The handler type.
    type Handler: SessionHandler + 'static;
    /// A handler for a new connection on a listener with these settings.
    fn handler(&self, conn: &Connection, listener: &ListenerFacts) -> Self::Handler;
}

/// What the daemon listens on.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The listeners.
    pub listeners: Vec<ListenerConfig>,
    /// How many sessions may be open at once.
    pub limits: SessionLimits,
    /// The local enqueue socket.
    pub enqueue: EnqueueConfig,
}

/// The local enqueue socket: `sendmail` and `petrelctl sendmail` speak SMTP to it, and its
/// sessions match `from socket` and `from local`. It always exists on the real machine, as
/// OpenSMTPD's does; `listen on socket` only gives it options (`filter`, `tag`, `mask-src`,
/// `no-dsn`). Anyone on the machine may connect (mode 0666): the session knows who did, from
/// the kernel.
#[derive(Clone, Debug)]
pub struct EnqueueConfig {
    /// Where it is; none when `None` (the engine sets it on the real machine).
    pub path: Option<std::path::PathBuf>,
    /// The server machine's settings for its sessions.
    pub server: Arc<ServerConfig>,
    /// Its settings that the session handler needs.
    pub facts: ListenerFacts,
    /// Where to record its sessions (`petreld -T`).
    pub transcripts: Option<crate::transcript::TranscriptDir>,
}

/// The file name of the enqueue socket in the daemon's state folder.
pub const ENQUEUE_SOCKET: &str = "enqueue.sock";

impl EnqueueConfig {
    /// The socket's settings from `listen on socket` (if the configuration has one).
    fn from_config(config: &Config, server_name: &str) -> EnqueueConfig {
        let l = config.listeners.iter().find(|l| l.on == ListenOn::Socket);
        let server = Arc::new(ServerConfig {
            hostname: server_name.to_owned(),
            max_message_size: config.smtp.max_message_size,
            max_recipients: usize::try_from(config.smtp.max_rcpt).unwrap_or(usize::MAX),
            max_messages: usize::try_from(config.smtp.max_mails).unwrap_or(usize::MAX),
            dsn: !l.is_some_and(|l| l.no_dsn),
            tls: TlsPolicy::Off,
            auth: AuthPolicy::Off,
            ..ServerConfig::default()
        });
        let facts = ListenerFacts {
            hostname: server_name.to_owned(),
            tag: l.and_then(|l| l.tag.clone()),
            mask_src: l.is_some_and(|l| l.mask_src),
            filters: l
                .map(|l| crate::filter::set::flatten(config, l.filter.as_ref()))
                .unwrap_or_default(),
            ..ListenerFacts::default()
        };
        EnqueueConfig {
            path: None,
            server,
            facts,
            transcripts: None,
        }
    }
}

/// Bounds on concurrent sessions, over all listeners together.
///
/// The configuration language has no directive for these (OpenSMTPD's `smtp limit` knows only
/// `max-mails` and `max-rcpt`), so they are set in code: [`crate::engine::EngineOptions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Sessions open at once, from everywhere.
    pub max_sessions: usize,
    /// Sessions open at once from one client address.
    pub max_per_source: usize,
}

impl SessionLimits {
    /// The default: 1000 sessions, 50 per client address. A server expecting many idle
    /// clients (a benchmark holding 10,000 open) raises them.
    pub const DEFAULT: SessionLimits = SessionLimits {
        max_sessions: 1000,
        max_per_source: 50,
    };
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits::DEFAULT
    }
}

/// Which limit refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitExceeded {
    /// [`SessionLimits::max_sessions`].
    Global(usize),
    /// [`SessionLimits::max_per_source`].
    PerSource(usize),
}

/// Counts open sessions against [`SessionLimits`]. Shared by every accept loop.
#[derive(Debug)]
pub struct SessionCounter {
    limits: SessionLimits,
    /// Sessions open in total, and per client address (addresses with none are removed, so the
    /// map holds only current clients).
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One counted session; dropping it frees its place.
#[derive(Debug)]
pub struct SessionPermit {
    counter: Arc<SessionCounter>,
    ip: IpAddr,
}

impl SessionCounter {
    /// A counter with nothing open.
    #[must_use]
    pub fn new(limits: SessionLimits) -> Arc<SessionCounter> {
        Arc::new(SessionCounter {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// Counts a new session from `ip`, or says which limit it would exceed.
    ///
    /// # Errors
    /// The limit that refuses it.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Result<SessionPermit, LimitExceeded> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *open;
        if *total >= self.limits.max_sessions {
            return Err(LimitExceeded::Global(self.limits.max_sessions));
        }
        let from_ip = per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.limits.max_per_source {
            let limit = self.limits.max_per_source;
            if *from_ip == 0 {
                per_ip.remove(&ip);
            }
            return Err(LimitExceeded::PerSource(limit));
        }
        *from_ip += 1;
        *total += 1;
        Ok(SessionPermit {
            counter: self.clone(),
            ip,
        })
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let mut open = self.counter.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
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
    /// A listener's certificates or TLS settings cannot be used.
    #[error("{location}: {source}")]
    Tls {
        /// `file:line:column` of the listener.
        location: String,
        /// What is wrong.
        #[source]
        source: TlsError,
    },
    /// A listener's AUTH cannot be set up.
    #[error("{location}: {source}")]
    Auth {
        /// `file:line:column` of the listener.
        location: String,
        /// What is wrong.
        #[source]
        source: AuthError,
    },
}

impl ServiceConfig {
    /// The listeners of a parsed configuration. `server_name` is the machine's name, used where
    /// a listener names no `hostname`. Certificates, keys, CA bundles and credentials files are
    /// read here, so that a mistake in any of them stops the daemon at start, naming the file.
    pub fn from_config(config: &Config, server_name: &str) -> Result<ServiceConfig, ServiceError> {
        let mut listeners = Vec::new();
        // Reverse lookups cost a DNS round trip per connection: only when the rules use them.
        let needs_rdns = crate::inbound::needs_rdns(config);
        for l in &config.listeners {
            if l.on == ListenOn::Socket {
                // The enqueue socket: see `EnqueueConfig`.
                continue;
            }
            let hostname = l.hostname.clone().unwrap_or_else(|| server_name.to_owned());
            let security = listener_security(config, l, &hostname)?;
            let server = Arc::new(ServerConfig {
                hostname,
                max_message_size: config.smtp.max_message_size,
                max_recipients: usize::try_from(config.smtp.max_rcpt).unwrap_or(usize::MAX),
                max_messages: usize::try_from(config.smtp.max_mails).unwrap_or(usize::MAX),
                dsn: !l.no_dsn,
                tls: match l.tls {
                    TlsMode::StartTls => TlsPolicy::Offer,
                    TlsMode::StartTlsRequired { .. } => TlsPolicy::Require,
                    // smtps is TLS before the machine starts: nothing to offer.
                    TlsMode::Off | TlsMode::Smtps { .. } => TlsPolicy::Off,
                },
                auth: match &l.auth {
                    None => AuthPolicy::Off,
                    Some(a) if a.required => AuthPolicy::Required,
                    Some(_) => AuthPolicy::Optional,
                },
                ..ServerConfig::default()
            });
            let port = l.port.unwrap_or(25);
            let facts = ListenerFacts {
                hostname: server.hostname.clone(),
                tag: l.tag.clone(),
                mask_src: l.mask_src,
                received_auth: l.received_auth,
                senders: l.senders.as_ref().map(|s| s.table.clone()),
                rdns: needs_rdns && !l.no_rdns,
                no_rdns: l.no_rdns,
                filters: crate::filter::set::flatten(config, l.filter.as_ref()),
            };
            for ip in listen_addresses(&l.on, l.family).map_err(ServiceError::Unsupported)? {
                listeners.push(ListenerConfig {
                    addr: SocketAddr::new(ip, port),
                    server: server.clone(),
                    security: security.clone(),
                    facts: facts.clone(),
                });
            }
        }
        Ok(ServiceConfig {
            listeners,
            limits: SessionLimits::default(),
            enqueue: EnqueueConfig::from_config(config, server_name),
        })
    }
}

/// A listener's TLS (certificates chosen by SNI, client certificates checked against its `ca`
/// for `verify`) and AUTH (its credentials table).
fn listener_security(
    config: &Config,
    l: &Listener,
    hostname: &str,
) -> Result<SessionSecurity, ServiceError> {
    let location = || config.location(l.span);
    let mut security = SessionSecurity::default();
    if l.tls.is_on() {
        let tls = listener_tls(config, l, hostname).map_err(|source| ServiceError::Tls {
            location: location(),
            source,
        })?;
        security.tls = Some(tls);
        security.implicit_tls = matches!(l.tls, TlsMode::Smtps { .. });
    }
    if let Some(auth) = &l.auth {
        let authenticator =
            Authenticator::from_config(config, auth.table.as_deref()).map_err(|source| {
                ServiceError::Auth {
                    location: location(),
                    source,
                }
            })?;
        security.auth = Some(authenticator);
    }
    Ok(security)
}

fn listener_tls(
    config: &Config,
    l: &Listener,
    hostname: &str,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    // Without `pki NAME`, OpenSMTPD serves the pki named like the listener's host name.
    let names = if l.pki.is_empty() {
        vec![hostname.to_lowercase()]
    } else {
        l.pki.iter().map(|n| n.to_lowercase()).collect()
    };
    let mut pkis = Vec::new();
    for name in &names {
        let pki = config.pki(name).ok_or_else(|| {
            if l.pki.is_empty() {
                TlsError::NoPki(name.clone())
            } else {
                TlsError::UnknownPki(name.clone())
            }
        })?;
        pkis.push(tls::load_pki(&pki.name, &pki.cert, &pki.key)?);
    }
    let mut settings = ServerTlsSettings::new(pkis, hostname);
    let verify = matches!(
        l.tls,
        TlsMode::StartTlsRequired { verify: true } | TlsMode::Smtps { verify: true }
    );
    if verify {
        let name = l.ca.as_deref().ok_or(TlsError::VerifyWithoutCa)?;
        let ca = config
            .ca(&name.to_lowercase())
            .ok_or_else(|| TlsError::UnknownCa(name.to_owned()))?;
        settings.client_ca = Some(Arc::new(tls::load_ca(&ca.cert)?));
    }
    // `smtp ciphers` is the default of every listener.
    let ciphers = l.ciphers.as_deref().unwrap_or(&config.smtp.ciphers);
    settings.limits = tls::TlsLimits::parse(l.protocols.as_deref(), Some(ciphers))?;
    tls::server_config(&settings)
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
        ListenOn::Interface(name) => interface_addresses(name, v4, v6)?,
        ListenOn::Socket => Vec::new(),
    })
}

/// The addresses an interface has now, of the families wanted. IPv6 link-local addresses are
/// left out: they cannot be bound without a scope.
fn interface_addresses(name: &str, v4: bool, v6: bool) -> Result<Vec<IpAddr>, String> {
    let interfaces = if_addrs::get_if_addrs()
        .map_err(|e| format!("listen on {name}: cannot list the network interfaces: {e}"))?;
    let mut addrs: Vec<IpAddr> = interfaces
        .iter()
        .filter(|i| i.name == name)
        .map(if_addrs::Interface::ip)
        .filter(|ip| match ip {
            IpAddr::V4(_) => v4,
            IpAddr::V6(a) => v6 && (a.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        let mut known: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
        known.sort_unstable();
        known.dedup();
        return Err(format!(
            "listen on {name}: no such interface with an address of the wanted family (interfaces: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    }
    Ok(addrs)
}

/// The daemon's listeners, bound and ready to accept: tokio's TCP listeners in production,
/// any [`crate::listener::Listener`] in the simulator.
pub struct Service<L: Bound = TcpListener> {
    listeners: Vec<(L, ListenerConfig)>,
    enqueue: Option<(UnixListener, EnqueueConfig)>,
    limits: SessionLimits,
    clock: Arc<dyn Clock>,
    ids: Arc<IdGenerator>,
}

impl<L: Bound> std::fmt::Debug for Service<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("listeners", &self.local_addrs())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Binds every listener. An address that cannot be bound is logged and skipped (a machine
    /// without IPv6 still serves IPv4), but at least one must succeed.
    pub fn bind(config: ServiceConfig) -> Result<Service, ServiceError> {
        let mut listeners = Vec::new();
        let mut last_error = None;
        for l in &config.listeners {
            match listener::bind(l.addr) {
                Ok(tcp) => listeners.push((tcp, l.clone())),
                Err(e) => {
                    tracing::warn!(addr = %l.addr, error = %e, "cannot listen");
                    last_error = Some(e);
                }
            }
        }
        let enqueue = bind_enqueue(&config.enqueue)?;
        Service::from_bound(listeners, last_error, config.limits, enqueue)
    }
}

/// Binds the enqueue socket, when it has a path: a socket left by a daemon that did not stop
/// cleanly is replaced, and anyone may connect.
fn bind_enqueue(
    config: &EnqueueConfig,
) -> Result<Option<(UnixListener, EnqueueConfig)>, ServiceError> {
    let Some(path) = &config.path else {
        return Ok(None);
    };
    let bind = || {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        Ok(listener)
    };
    let listener = bind().map_err(|e| {
        ServiceError::Bind(io::Error::new(
            e.kind(),
            format!("enqueue socket {}: {e}", path.display()),
        ))
    })?;
    Ok(Some((listener, config.clone())))
}

impl<L: Bound> Service<L> {
    /// Binds every listener with `bind` (the platform's sockets), with the same rules as
    /// [`Service::bind`].
    pub async fn bind_with<F, Fut>(config: ServiceConfig, mut bind: F) -> Result<Self, ServiceError>
    where
        F: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<L>>,
    {
        let mut listeners = Vec::new();
        let mut last_error = None;
        for l in &config.listeners {
            match bind(l.addr).await {
                Ok(bound) => listeners.push((bound, l.clone())),
                Err(e) => {
                    tracing::warn!(addr = %l.addr, error = %e, "cannot listen");
                    last_error = Some(e);
                }
            }
        }
        let enqueue = bind_enqueue(&config.enqueue)?;
        Service::from_bound(listeners, last_error, config.limits, enqueue)
    }

    fn from_bound(
        listeners: Vec<(L, ListenerConfig)>,
        last_error: Option<io::Error>,
        limits: SessionLimits,
        enqueue: Option<(UnixListener, EnqueueConfig)>,
    ) -> Result<Self, ServiceError> {
        // A daemon that only takes local submissions (no `listen on` but the socket) is a
        // null client, as with OpenSMTPD; one whose every configured address failed is not.
        if listeners.is_empty() && (last_error.is_some() || enqueue.is_none()) {
            let e = last_error.unwrap_or_else(|| io::Error::other("no listen address configured"));
            return Err(ServiceError::Bind(e));
        }
        Ok(Service {
            listeners,
            enqueue,
            limits,
            clock: Arc::new(SystemClock),
            ids: Arc::new(IdGenerator::new()),
        })
    }

    /// The clock handed to the session machines (the system's by default).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The session identifiers (seeded from the clock by default).
    #[must_use]
    pub fn with_ids(mut self, ids: Arc<IdGenerator>) -> Self {
        self.ids = ids;
        self
    }

    /// The addresses actually bound (with the ports the kernel chose for port 0).
    #[must_use]
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// Accepts and serves sessions, with handlers made by `factory`, until `shutdown` turns
    /// true, then lets sessions end.
    pub async fn run<H: HandlerFactory>(
        self,
        factory: Arc<H>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let ids = self.ids.clone();
        let counter = SessionCounter::new(self.limits);
        let mut sessions = JoinSet::new();
        let mut accepts = JoinSet::new();
        for (listener, config) in self.listeners {
            let shared = Shared {
                factory: factory.clone(),
                ids: ids.clone(),
                counter: counter.clone(),
                clock: self.clock.clone(),
            };
            let stop = shutdown.clone();
            accepts.spawn(accept_loop(listener, config, shared, stop));
        }
        if let Some((listener, config)) = self.enqueue {
            let shared = Shared {
                factory: factory.clone(),
                ids: ids.clone(),
                counter: counter.clone(),
                clock: self.clock.clone(),
            };
            accepts.spawn(enqueue_loop(listener, config, shared, shutdown.clone()));
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

/// What every accept loop shares.
struct Shared<H> {
    factory: Arc<H>,
    ids: Arc<IdGenerator>,
    counter: Arc<SessionCounter>,
    clock: Arc<dyn Clock>,
}

/// How long a refused client gets to take its `421` before the socket is closed anyway.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Tells a connection over the limits `421 4.7.0` (in plaintext, so not on an smtps listener,
/// where the client expects a handshake: that one is just closed) and closes it.
async fn refuse<S>(mut stream: S, hostname: String, plaintext: bool)
where
    S: tokio::io::AsyncWrite + Unpin,
{
    if plaintext {
        let line = format!("421 4.7.0 {hostname} Too many connections, try again later\r\n");
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
            stream.write_all(line.as_bytes()).await?;
            stream.shutdown().await
        })
        .await;
    }
}

async fn accept_loop<H: HandlerFactory, L: Bound>(
    listener: L,
    config: ListenerConfig,
    shared: Shared<H>,
    shutdown: watch::Receiver<bool>,
) -> Sessions {
    let Shared {
        factory,
        ids,
        counter,
        clock,
    } = shared;
    let mut sessions = JoinSet::new();
    loop {
        let Accepted {
            stream,
            peer,
            local,
        } = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Running out of file descriptors must not spin: pause, then go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match counter.try_open(peer.ip()) {
            Ok(permit) => permit,
            Err(limit) => {
                let (which, max) = match limit {
                    LimitExceeded::Global(n) => ("sessions", n),
                    LimitExceeded::PerSource(n) => ("sessions from this address", n),
                };
                tracing::warn!(%peer, %local, limit = which, max, "too many connections: refused with 421");
                // Written from a task of its own: a client that does not read must not hold
                // up the accept loop.
                let plaintext = !config.security.implicit_tls;
                sessions.spawn(refuse(stream, config.server.hostname.clone(), plaintext));
                while sessions.try_join_next().is_some() {}
                continue;
            }
        };
        let conn = Connection {
            id: ids.next_id(),
            peer,
            local,
            local_user: None,
        };
        let handler = factory.handler(&conn, &config.facts);
        let session = Session {
            conn,
            server: config.server.clone(),
            security: config.security.clone(),
            clock: clock.clone(),
            stop: shutdown.clone(),
            permit,
        };
        // An smtps handshake runs inside the session task, never in this accept loop, so a slow
        // client cannot hold up the others.
        sessions.spawn(session.serve(stream, handler));
        // Reap finished sessions so the set does not grow without bound.
        while sessions.try_join_next().is_some() {}
    }
}

/// One accepted session, ready to be served in a task of its own.
struct Session {
    conn: Connection,
    server: Arc<ServerConfig>,
    security: SessionSecurity,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
    /// Held for as long as the session runs.
    permit: SessionPermit,
}

impl Session {
    /// Drives the session to its end and logs how it ended.
    async fn serve<S, H>(self, stream: S, mut handler: H)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
        H: SessionHandler,
    {
        let Session {
            conn,
            server,
            security,
            clock,
            stop,
            permit: _permit,
        } = self;
        tracing::info!(session = %hex(conn.id), client = %conn.client(), local = %conn.local, "connected");
        let mut stream = MaybeTls::Plain(stream);
        let result = smtp_in::drive(
            &mut stream,
            server,
            &security,
            &conn,
            &mut handler,
            &*clock,
            stop,
        )
        .await;
        match result {
            Ok(ending) => tracing::info!(session = %hex(conn.id), ?ending, "disconnected"),
            Err(e) => tracing::info!(session = %hex(conn.id), error = %e, "disconnected"),
        }
    }
}

/// Serves the enqueue socket: each client's user id comes from the kernel (`SO_PEERCRED`).
/// Local sessions count towards the global limit, all of them as one source.
async fn enqueue_loop<H: HandlerFactory>(
    listener: UnixListener,
    config: EnqueueConfig,
    shared: Shared<H>,
    shutdown: watch::Receiver<bool>,
) -> Sessions {
    let Shared {
        factory,
        ids,
        counter,
        clock,
    } = shared;
    let socket = config
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let security = SessionSecurity {
        transcripts: config.transcripts.clone(),
        ..SessionSecurity::default()
    };
    let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let mut sessions = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept on the enqueue socket failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(cred) = stream.peer_cred() else {
            // Nobody to attribute the mail to: not taken.
            continue;
        };
        let Ok(permit) = counter.try_open(IpAddr::V4(Ipv4Addr::UNSPECIFIED)) else {
            tracing::warn!(
                uid = cred.uid(),
                "too many sessions: local client refused with 421"
            );
            sessions.spawn(refuse(stream, config.server.hostname.clone(), true));
            while sessions.try_join_next().is_some() {}
            continue;
        };
        let conn = Connection {
            id: ids.next_id(),
            peer: unspecified,
            local: unspecified,
            local_user: Some(smtp_in::LocalPeer {
                uid: cred.uid(),
                socket: socket.clone(),
            }),
        };
        let handler = factory.handler(&conn, &config.facts);
        let session = Session {
            conn,
            server: config.server.clone(),
            security: security.clone(),
            clock: clock.clone(),
            stop: shutdown.clone(),
            permit,
        };
        sessions.spawn(session.serve(stream, handler));
        while sessions.try_join_next().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_listens_on_its_addresses() {
        let lo = listen_addresses(&ListenOn::Interface("lo".into()), None).unwrap();
        assert!(lo.contains(&IpAddr::from(Ipv4Addr::LOCALHOST)), "{lo:?}");
        assert!(lo.iter().all(|a| a.is_loopback()), "{lo:?}");
        let v4 = listen_addresses(
            &ListenOn::Interface("lo".into()),
            Some(AddressFamily::Inet4),
        )
        .unwrap();
        assert_eq!(v4, [IpAddr::from(Ipv4Addr::LOCALHOST)]);
        let err = listen_addresses(&ListenOn::Interface("nosuch0".into()), None).unwrap_err();
        assert!(
            err.contains("listen on nosuch0: no such interface"),
            "{err}"
        );
        assert!(err.contains("lo"), "the known interfaces are named: {err}");
    }
}
