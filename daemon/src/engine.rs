//! The whole daemon assembled from its parts: configuration → routing, queue store, scheduler,
//! delivery, listeners. `petreld` runs one; the end-to-end tests run one in-process.
//!
//! Routing is built once at start — `proc:` table processes are started and must finish their
//! handshake before the daemon accepts mail — and rebuilt by [`Engine::reload_tables`]
//! (`SIGHUP`), which re-reads the `file:` tables and swaps the new routing in while sessions go
//! on (see [`crate::tables`]).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use petrel_core::config::{Config, QueueEncryption};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::control::gate::Gated;
use crate::control::{self, ControlContext, ControlHooks, SessionGate};
use crate::delivery::{Dispatcher, RelayLimits, RelayPool};
use crate::filter::event_log::EventLog;
use crate::filter::set::FilterSet;
use crate::inbound::{Inbound, InboundContext, ListenerFacts};
use crate::mta::Mta;
use crate::mta::resolver::Resolver;
use crate::platform::{Platform, Production};
use crate::queue::scheduler::{self, SchedulerConfig, SchedulerHandle};
use crate::queue::{Blocking, Fs, Sealing, Store};
use crate::routing::{ClockedRouting, Routing, RoutingError, RoutingSetup, SharedRouting};
use crate::service::{HandlerFactory, Service, ServiceConfig, SessionLimits};
use crate::smtp_in::Connection;
use crate::tables::{ProcTableOptions, ProcTables, ReloadReport, Reloader, TableLoadError};
use crate::{ids::IdGenerator, mda};

/// What a daemon needs besides its configuration.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The server's name (greetings, Received headers, `for local`).
    pub hostname: String,
    /// Where the queue (and later the control socket) live.
    pub data_dir: PathBuf,
    /// Relative paths in the configuration (tables, maildirs) are taken from here.
    pub base: PathBuf,
    /// Concurrent sessions allowed (no configuration directive sets them).
    pub limits: SessionLimits,
    /// Where `mbox` deliveries go (`/var/mail`).
    pub mail_spool: PathBuf,
    /// Record every SMTP session's transcript into this folder (`petreld -T`).
    pub transcripts: Option<PathBuf>,
    /// The control socket `petrelctl` talks to; none when `None`.
    pub control_socket: Option<PathBuf>,
    /// What the control socket borrows from the binary (configuration reload, log level).
    pub hooks: ControlHooks,
    /// Write every report event as a JSON line here (`petreld -E`; `-` for standard output).
    pub event_log: Option<PathBuf>,
    /// The queue encryption key when the configuration says to ask for it (`queue encryption`,
    /// `queue encryption -`): petreld reads it before start. A key written in the
    /// configuration is taken from there.
    pub queue_key: Option<String>,
    /// The enqueue socket `sendmail` talks to; `<data_dir>/enqueue.sock` when `None`. petreld
    /// gives it relative to the folder it runs in, as the control socket, because a socket
    /// path is limited to about a hundred bytes.
    pub enqueue_socket: Option<PathBuf>,
}

impl Default for EngineOptions {
    /// `localhost`, `petrel-data` and the current folder, the default limits and `/var/mail`.
    fn default() -> Self {
        EngineOptions {
            hostname: "localhost".into(),
            data_dir: PathBuf::from("petrel-data"),
            base: PathBuf::from("."),
            limits: SessionLimits::default(),
            mail_spool: PathBuf::from("/var/mail"),
            transcripts: None,
            control_socket: None,
            hooks: ControlHooks::default(),
            event_log: None,
            queue_key: None,
            enqueue_socket: None,
        }
    }
}

/// Where the enqueue socket is.
fn enqueue_socket(options: &EngineOptions) -> PathBuf {
    options
        .enqueue_socket
        .clone()
        .unwrap_or_else(|| crate::submit::enqueue_socket(&options.data_dir))
}

/// How the queue keeps its files (`queue compression`, `queue encryption`).
fn queue_sealing<F: crate::queue::Fs>(
    config: &Config,
    options: &EngineOptions,
    fs: &F,
    root: &std::path::Path,
) -> Result<Sealing, String> {
    let key = match &config.queue.encryption {
        None => None,
        Some(QueueEncryption::Key(key)) => Some(key.as_str()),
        Some(QueueEncryption::Stdin | QueueEncryption::Prompt) => Some(
            options
                .queue_key
                .as_deref()
                .ok_or("queue encryption: no key was given")?,
        ),
    };
    Sealing::for_queue(fs, root, config.queue.compression, key)
        .map_err(|e| format!("queue encryption: {e}"))
}

/// How long shutdown waits for each `proc:` table process to go.
const TABLE_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A running daemon.
#[derive(Debug)]
pub struct Engine {
    addrs: Vec<SocketAddr>,
    scheduler: SchedulerHandle,
    routing: SharedRouting,
    procs: ProcTables,
    reloader: Arc<Reloader>,
    stop: watch::Sender<bool>,
    service: tokio::task::JoinHandle<()>,
    gate: Arc<SessionGate>,
    /// The control socket's task and path.
    control: Option<(tokio::task::JoinHandle<()>, PathBuf)>,
    /// The filters' processes and state.
    filters: Option<Arc<FilterSet>>,
}

/// Makes an [`Inbound`] handler per session.
struct InboundFactory<F: Fs, B: Blocking, C: Clock> {
    store: Store<F, B>,
    scheduler: SchedulerHandle,
    routing: SharedRouting,
    clock: Arc<C>,
    queue_ttl: std::time::Duration,
    /// For reverse lookups of clients, when the rules need them.
    resolver: Option<Arc<dyn Resolver>>,
    gate: Arc<SessionGate>,
    filters: Option<Arc<FilterSet>>,
}

impl<F: Fs, B: Blocking, C: Clock> HandlerFactory for InboundFactory<F, B, C> {
    type Handler = Gated<Inbound<F, B, C>>;

    fn handler(&self, conn: &Connection, listener: &ListenerFacts) -> Self::Handler {
        let ctx = InboundContext {
            store: self.store.clone(),
            scheduler: self.scheduler.clone(),
            routing: self.routing.clone(),
            clock: self.clock.clone(),
            queue_ttl: self.queue_ttl,
            listener: listener.clone(),
            resolver: self.resolver.clone(),
            filters: self.filters.clone(),
        };
        self.gate.wrap(Inbound::new(ctx, conn.clone()))
    }
}

/// The server's own names and addresses, as `for local` sees them: its name, `localhost`,
/// and the listeners' host names and addresses.
fn local_names(config: &ServiceConfig, hostname: &str) -> (Vec<String>, Vec<IpAddr>) {
    let mut names = vec!["localhost".to_owned()];
    let mut addrs = Vec::new();
    for l in &config.listeners {
        if l.facts.hostname != hostname && !names.contains(&l.facts.hostname) {
            names.push(l.facts.hostname.clone());
        }
        if !l.addr.ip().is_unspecified() && !addrs.contains(&l.addr.ip()) {
            addrs.push(l.addr.ip());
        }
    }
    (names, addrs)
}

impl Engine {
    /// Starts everything: recovers the queue, starts the scheduler and the listeners;
    /// `proc:` tables with the default [`ProcTableOptions`].
    ///
    /// # Errors
    /// Whatever stops the daemon from starting, in words.
    pub async fn start(config: &Config, options: EngineOptions) -> Result<Engine, String> {
        Engine::start_with_tables(config, options, ProcTableOptions::default()).await
    }

    /// [`start`](Self::start), with `proc:` tables run with `tables` (timeouts, restart
    /// delays).
    ///
    /// # Errors
    /// Whatever stops the daemon from starting, in words: among them a `proc:` table whose
    /// process does not complete its handshake.
    pub async fn start_with_tables(
        config: &Config,
        options: EngineOptions,
        tables: ProcTableOptions,
    ) -> Result<Engine, String> {
        Engine::start_on(config, options, tables, &Production).await
    }

    /// [`start_with_tables`](Self::start_with_tables) on `platform`'s file system, clock,
    /// sockets, resolver and TLS: the same engine in production ([`Production`]) and in the
    /// simulator.
    ///
    /// # Errors
    /// As for [`start_with_tables`](Self::start_with_tables).
    pub async fn start_on<P: Platform>(
        config: &Config,
        options: EngineOptions,
        tables: ProcTableOptions,
        platform: &P,
    ) -> Result<Engine, String> {
        let mut service_config =
            ServiceConfig::from_config(config, &options.hostname).map_err(|e| e.to_string())?;
        service_config.limits = options.limits;
        if let Some(dir) = &options.transcripts {
            for l in &mut service_config.listeners {
                l.security.transcripts = Some(crate::transcript::TranscriptDir(dir.clone()));
            }
        }
        // Sessions trace their lines for the reporting stream where someone listens.
        for l in &mut service_config.listeners {
            if !l.facts.filters.is_empty() || options.event_log.is_some() {
                let mut server = (*l.server).clone();
                server.trace = true;
                l.server = Arc::new(server);
            }
        }
        let enqueue = &mut service_config.enqueue;
        if !enqueue.facts.filters.is_empty() || options.event_log.is_some() {
            let mut server = (*enqueue.server).clone();
            server.trace = true;
            enqueue.server = Arc::new(server);
        }
        if platform.keeps_files() {
            // `sendmail` finds the daemon here (a simulated host has no such socket).
            std::fs::create_dir_all(&options.data_dir)
                .map_err(|e| format!("{}: {e}", options.data_dir.display()))?;
            enqueue.path = Some(enqueue_socket(&options));
            enqueue.transcripts = options
                .transcripts
                .clone()
                .map(crate::transcript::TranscriptDir);
        }
        let (names, addrs) = local_names(&service_config, &options.hostname);
        let ids = Arc::new(IdGenerator::with_seed(platform.id_seed()));
        let clock = platform.clock();
        // Listeners first: a daemon that cannot listen must not start delivering either.
        let service = Service::bind_with(service_config, |addr| platform.bind(addr))
            .await
            .map_err(|e| e.to_string())?
            .with_clock(clock.clone())
            .with_ids(ids.clone());
        let setup = RoutingSetup {
            hostname: options.hostname.clone(),
            names,
            addresses: addrs,
            base: options.base.clone(),
        };
        let procs = ProcTables::new(tables);
        let routing = match Routing::from_config(config, &setup, &procs) {
            Ok(r) => r,
            Err(e) => {
                procs.stop_all(TABLE_STOP_TIMEOUT).await;
                return Err(e.to_string());
            }
        };
        // As OpenSMTPD does, a table process that cannot complete its handshake stops the
        // start: a daemon that could only answer 4xx had better say so at once.
        if let Err(e) = procs.wait_ready().await {
            drop(routing);
            procs.stop_all(TABLE_STOP_TIMEOUT).await;
            return Err(e.to_string());
        }
        let routing = SharedRouting::new(routing);
        let reloader = Arc::new(Reloader::new(
            config.clone(),
            setup,
            procs.clone(),
            routing.clone(),
        ));

        let queue_root = options.data_dir.join("queue");
        let seed = (ids.next_id() >> 32) as u32;
        let sealing = queue_sealing(config, &options, &*platform.fs(), &queue_root)?;
        tracing::info!(
            compression = config.queue.compression,
            encryption = sealing.encrypts(),
            "queue files at rest"
        );
        let (store, recovered) = Store::open_sealed(
            platform.fs(),
            platform.blocking(),
            queue_root.clone(),
            seed,
            sealing,
        )
        .await
        .map_err(|e| format!("queue {}: {e}", queue_root.display()))?;
        let queued: usize = recovered.iter().map(|r| r.envelopes.len()).sum();
        tracing::info!(queue = %queue_root.display(), messages = recovered.len(), envelopes = queued, "queue recovered");

        let resolver = platform.resolver(config, &options.base)?;
        let event_log = match &options.event_log {
            Some(path) => Some(
                EventLog::open(path).map_err(|e| format!("event log {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let admd = config
            .admd
            .clone()
            .unwrap_or_else(|| options.hostname.clone());
        let filters = FilterSet::from_config(
            config,
            platform.keeps_files().then_some(options.data_dir.as_path()),
            clock.clone(),
            &admd,
            event_log,
            platform.filters(),
        )
        .await?;
        if let Some(f) = &filters {
            f.start().await;
        }
        let mut mta = Mta::new(resolver.clone());
        mta.connector = platform.connector();
        mta.clock = clock.clone();
        mta.ids = Arc::new(IdGenerator::with_seed(ids.next_id()));
        mta.filters = filters.clone();
        if let Some(tls) = platform.tls() {
            mta = mta.with_tls(tls);
        }
        let dispatcher = Dispatcher {
            routing: routing.clone(),
            mta: Arc::new(mta),
            mda: mda::Options {
                hostname: Some(options.hostname.clone()),
                ..mda::Options::default()
            },
            hostname: options.hostname.clone(),
            base: options.base.clone(),
            clock: clock.clone(),
            relay: RelayPool::new(RelayLimits::from_config(&config.mta)),
            mail_spool: options.mail_spool.clone(),
        };
        let scheduler_config = SchedulerConfig {
            warn_intervals: config.bounce.warn_intervals.clone(),
            hostname: options.hostname.clone(),
            bounce_ttl: config.queue.ttl,
            ..SchedulerConfig::default()
        };
        let scheduler = scheduler::spawn(
            store.clone(),
            Arc::new(dispatcher),
            Arc::new(ClockedRouting {
                routing: routing.clone(),
                clock: clock.clone(),
            }),
            clock.clone(),
            scheduler_config,
            recovered
                .into_iter()
                .map(|r| (r.msg, r.envelopes))
                .collect(),
        );

        let addrs = service.local_addrs();
        let gate = Arc::new(SessionGate::default());
        let control = match &options.control_socket {
            Some(path) => {
                let listener = control::server::bind(path).await?;
                let ctx = Arc::new(ControlContext {
                    scheduler: scheduler.clone(),
                    store: Arc::new(store.clone()),
                    reloader: reloader.clone(),
                    gate: gate.clone(),
                    hooks: options.hooks.clone(),
                    started: std::time::Instant::now(),
                    filters: filters.clone(),
                });
                tracing::info!(socket = %path.display(), "control socket ready");
                let task = tokio::spawn(control::server::serve(listener, ctx));
                Some((task, path.clone()))
            }
            None => None,
        };
        let factory = Arc::new(InboundFactory {
            gate: gate.clone(),
            store,
            scheduler: scheduler.clone(),
            routing: routing.clone(),
            clock,
            queue_ttl: config.queue.ttl,
            resolver: (crate::inbound::needs_rdns(config) || filters.is_some()).then_some(resolver),
            filters: filters.clone(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let service = tokio::spawn(service.run(factory, stop_rx));
        if platform.keeps_files() {
            // Anyone may leave a message here while the daemon is down (`sendmail`).
            let offline = crate::submit::offline_dir(&options.data_dir);
            if let Err(e) = crate::submit::create_offline_dir(&offline) {
                tracing::warn!(dir = %offline.display(), error = %e, "no offline queue");
            }
            let max = config.smtp.max_message_size.saturating_add(1 << 20);
            tokio::spawn(crate::offline::run(
                options.data_dir.clone(),
                enqueue_socket(&options),
                max,
                stop.subscribe(),
            ));
        }
        Ok(Engine {
            addrs,
            scheduler,
            routing,
            procs,
            reloader,
            stop,
            service,
            gate,
            control,
            filters,
        })
    }

    /// The filters, when the configuration has any (or events are logged).
    #[must_use]
    pub fn filters(&self) -> Option<&Arc<FilterSet>> {
        self.filters.as_ref()
    }

    /// Session counters and `pause smtp`.
    #[must_use]
    pub fn sessions(&self) -> &Arc<SessionGate> {
        &self.gate
    }

    /// The routing sessions and deliveries use (current after every reload).
    #[must_use]
    pub fn routing(&self) -> &SharedRouting {
        &self.routing
    }

    /// The `proc:` tables' processes.
    #[must_use]
    pub fn proc_tables(&self) -> &ProcTables {
        &self.procs
    }

    /// Reloads the tables: reads every `file:` table again, swaps the new routing in, sends
    /// `update` to every `proc:` table, and logs one line saying so. Sessions in progress go
    /// on; each recipient is resolved with the routing current when it arrives.
    ///
    /// # Errors
    /// A table file could not be read or parsed (the error names the file and line); the
    /// current routing stays.
    pub async fn reload_tables(&self) -> Result<ReloadReport, RoutingError> {
        let reloader = self.reloader.clone();
        match tokio::task::spawn_blocking(move || reloader.reload_tables()).await {
            Ok(result) => {
                if result.is_ok() {
                    // Mail already waiting follows the new tables too.
                    self.scheduler.reroute().await;
                }
                result
            }
            // The routing was not swapped in either case.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(RoutingError::Tables(TableLoadError::Other(
                "the daemon is shutting down".into(),
            ))),
        }
    }

    /// The addresses the listeners are bound to.
    #[must_use]
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The scheduler (queue inspection, events).
    #[must_use]
    pub fn scheduler(&self) -> &SchedulerHandle {
        &self.scheduler
    }

    /// Tells every session 421, waits for them, stops the `proc:` table processes, and stops.
    pub async fn shutdown(self) {
        if let Some((task, path)) = &self.control {
            task.abort();
            let _ = std::fs::remove_file(path);
        }
        let _ = self.stop.send(true);
        let _ = self.service.await;
        if let Some(f) = &self.filters {
            f.stop().await;
        }
        self.procs.stop_all(TABLE_STOP_TIMEOUT).await;
    }
}
