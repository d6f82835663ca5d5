//! The delivery entry point for the queue: plan the destination, walk the plan until a
//! target gives a session, send the batch over it, and return one outcome per recipient.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use petrel_core::config::{Relay, RelaySource, RelayTls, RelayUrl};
use petrel_core::relay::{
    AttemptError, Attempts, BackupMx, MxOptions, Plan, PlanError, SMTP_PORT, Target, TlsMode,
    TlsPolicy, build_plan, literal_hop, mx_hops, smarthost_hops,
};
use petrel_core::session::client::{ClientConfig, ClientTimeouts, ClientTls, Outcome, Stage};

use super::connection::{Connection, Delivery, OutgoingMessage};
use super::log;
use super::net::{Connector, TcpConnector};
use super::resolver::{Resolver, host_addresses};
use super::tls::{NoTls, TlsUpgrade};
use crate::clock::{Clock, SystemClock};
use crate::filter::outbound::OutReporter;
use crate::filter::set::FilterSet;
use crate::ids::IdGenerator;
use crate::tls::OutgoingTls;

/// The shell's seams smtp-out runs on: DNS, the network, TLS, the clock and session ids.
/// Cheap to clone; the simulator builds one from its own parts.
#[derive(Clone)]
pub struct Mta {
    /// DNS.
    pub resolver: Arc<dyn Resolver>,
    /// Outgoing connections.
    pub connector: Arc<dyn Connector>,
    /// TLS handshakes.
    pub tls: Arc<dyn TlsUpgrade>,
    /// The clock handed to the session machines.
    pub clock: Arc<dyn Clock>,
    /// Session ids for the logs.
    pub ids: Arc<IdGenerator>,
    /// Filters and the event log, for smtp-out reports.
    pub filters: Option<Arc<FilterSet>>,
}

impl std::fmt::Debug for Mta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mta")
            .field("tls", &self.tls.available())
            .finish_non_exhaustive()
    }
}

impl Mta {
    /// Real TCP and the system clock over `resolver`, without TLS.
    #[must_use]
    pub fn new(resolver: Arc<dyn Resolver>) -> Mta {
        Mta {
            resolver,
            connector: Arc::new(TcpConnector),
            tls: Arc::new(NoTls),
            clock: Arc::new(SystemClock),
            ids: Arc::new(IdGenerator::new()),
            filters: None,
        }
    }

    /// The same with TLS handshakes done by `tls`.
    #[must_use]
    pub fn with_tls(mut self, tls: Arc<dyn TlsUpgrade>) -> Mta {
        self.tls = tls;
        self
    }
}

/// True when the connection was lost (not refused by the server) before the server answered
/// MAIL: no part of the message was delivered, and sending it again cannot duplicate it.
fn lost_before_mail(conn: &Connection) -> bool {
    conn.is_closed()
        && conn
            .failure()
            .is_some_and(|f| !f.remote && matches!(f.stage, Stage::Mail | Stage::Idle))
}

/// Where a batch goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A domain: its MX records (unless the relay names a smarthost).
    Domain(String),
    /// An address literal (`user@[192.0.2.1]`): that address, port 25.
    Literal(IpAddr),
}

impl Destination {
    fn name(&self) -> String {
        match self {
            Destination::Domain(d) => d.clone(),
            Destination::Literal(ip) => format!("[{ip}]"),
        }
    }
}

/// Timeouts of smtp-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MtaTimeouts {
    /// Making the TCP connection (and an smtps handshake uses the greeting timeout).
    pub connect: Duration,
    /// Each wait of the session (RFC 5321's minimums by default).
    pub session: ClientTimeouts,
}

impl Default for MtaTimeouts {
    fn default() -> Self {
        MtaTimeouts {
            connect: Duration::from_secs(30),
            session: ClientTimeouts::default(),
        }
    }
}

/// A relay action's settings, with its tables already looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelaySettings {
    /// `host URL`: the smarthost chain (the primary first, then its backups). Empty: MX
    /// delivery.
    pub smarthosts: Vec<RelayUrl>,
    /// `helo NAME`: the EHLO name.
    pub helo: String,
    /// `tls [no-verify]`.
    pub tls: Option<RelayTls>,
    /// `auth <table>`, looked up with the URL's label: (user, password). Sent to smarthosts
    /// only, and only over TLS unless the URL says `smtp+notls://`.
    pub auth: Option<(String, String)>,
    /// `src ADDR` (or the address picked from `src <table>`): the source address to bind.
    pub src: Option<IpAddr>,
    /// `backup [mx NAME]`.
    pub backup: Option<BackupMx>,
    /// Our own names, never relayed to (the server name and the listeners' hostnames).
    pub local_names: Vec<String>,
    /// The port of MX hosts (25); a static resolver may name a port per host instead.
    pub mx_port: u16,
    /// Pipeline commands when the server offers PIPELINING.
    pub pipelining: bool,
    /// Use BDAT when the server offers CHUNKING.
    pub chunking: bool,
    /// Timeouts.
    pub timeouts: MtaTimeouts,
    /// The relay action's report filters (`filter …`), chains flattened.
    pub filters: Vec<String>,
    /// The relay action's own TLS (`ca`, `pki`, `protocols`, `ciphers`); the shell's defaults
    /// when `None`.
    pub tls_profile: Option<TlsProfile>,
}

/// A relay action's TLS settings, shared by its deliveries. Two are equal when they are the
/// same object: they are built once per configuration.
#[derive(Clone, Debug)]
pub struct TlsProfile(pub Arc<OutgoingTls>);

impl PartialEq for TlsProfile {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsProfile {}

impl RelaySettings {
    /// MX delivery saying `helo` in EHLO, with the defaults.
    #[must_use]
    pub fn mx(helo: &str) -> RelaySettings {
        RelaySettings {
            smarthosts: Vec::new(),
            helo: helo.to_owned(),
            tls: None,
            auth: None,
            src: None,
            backup: None,
            local_names: vec![helo.to_owned()],
            mx_port: SMTP_PORT,
            pipelining: true,
            chunking: true,
            timeouts: MtaTimeouts::default(),
            filters: Vec::new(),
            tls_profile: None,
        }
    }

    /// The settings of a `relay` action. `hostname` is the server's name (the EHLO name
    /// unless `helo NAME`, and one of our own names). Credentials (`auth <table>`) and a
    /// `src <table>` address are looked up by the caller and set afterwards; `helo-src` is
    /// not applied.
    #[must_use]
    pub fn from_relay(relay: &Relay, hostname: &str) -> RelaySettings {
        let mut settings = RelaySettings::mx(relay.helo.as_deref().unwrap_or(hostname));
        if !settings.local_names.iter().any(|n| n == hostname) {
            settings.local_names.push(hostname.to_owned());
        }
        settings.smarthosts = relay.host.iter().cloned().collect();
        settings.tls = relay.tls;
        settings.backup = relay.backup.as_ref().map(BackupMx::from_config);
        if let Some(RelaySource::Address(ip)) = relay.src {
            settings.src = Some(ip);
        }
        settings
    }

    /// The session machine's settings for one target.
    fn client_config(&self, target: &Target, tls: ClientTls, trace: bool) -> ClientConfig {
        let smarthost = matches!(target.hop.kind, petrel_core::relay::HopKind::Smarthost(_));
        ClientConfig {
            helo: self.helo.clone(),
            protocol: target.hop.protocol,
            tls,
            // Credentials belong to the smarthost: never offered to an MX.
            auth: self.auth.clone().filter(|_| smarthost),
            pipelining: self.pipelining,
            chunking: self.chunking,
            timeouts: self.timeouts.session,
            trace,
        }
    }
}

impl Mta {
    /// The connection plan for a destination: smarthosts, an address literal, or the MX
    /// records. `seed` orders MX hosts of equal preference (pass a random one; a fixed one
    /// reproduces a run).
    ///
    /// # Errors
    /// The destination cannot be planned: see [`PlanError`].
    pub async fn plan(
        &self,
        destination: &Destination,
        settings: &RelaySettings,
        seed: u64,
    ) -> Result<Plan, PlanError> {
        let mut hops = if !settings.smarthosts.is_empty() {
            smarthost_hops(&settings.smarthosts, settings.tls)
        } else {
            match destination {
                Destination::Literal(ip) => {
                    vec![literal_hop(
                        *ip,
                        settings.mx_port,
                        TlsPolicy::for_mx(settings.tls),
                    )]
                }
                Destination::Domain(domain) => {
                    let options = MxOptions {
                        local_names: settings.local_names.clone(),
                        backup: settings.backup.clone(),
                        tls: TlsPolicy::for_mx(settings.tls),
                        port: settings.mx_port,
                    };
                    let answer = self.resolver.mx(domain).await;
                    mx_hops(domain, answer, &options, seed)?
                }
            }
        };
        if settings.auth.is_some() {
            // Credentials never go out in plaintext by accident: opportunistic TLS becomes
            // mandatory (an explicit smtp+notls:// URL is the operator's choice).
            for hop in &mut hops {
                if hop.tls.mode == TlsMode::Opportunistic {
                    hop.tls.mode = TlsMode::Required;
                }
            }
        }
        let mut resolved = std::collections::HashMap::new();
        for hop in hops.iter().filter(|h| h.needs_lookup()) {
            if !resolved.contains_key(&hop.name) {
                let addresses = host_addresses(self.resolver.as_ref(), &hop.name).await;
                resolved.insert(hop.name.clone(), addresses);
            }
        }
        build_plan(hops, |hop| resolved.remove(&hop.name))
    }

    /// Walks `plan` from `*next` until a target gives a session; failures are recorded in
    /// `attempts` and `*next` is left at the target that worked (so a reconnection starts
    /// there). `None` when every remaining target failed.
    pub async fn connect(
        &self,
        plan: &Plan,
        settings: &RelaySettings,
        next: &mut usize,
        attempts: &mut Attempts,
    ) -> Option<Connection> {
        while let Some(target) = plan.targets.get(*next) {
            match self.open(target, settings).await {
                Ok(conn) => return Some(conn),
                Err(error) => attempts.record(target, error),
            }
            *next += 1;
        }
        None
    }

    /// Opens one target, falling back to plaintext once when an opportunistic handshake fails.
    async fn open(
        &self,
        target: &Target,
        settings: &RelaySettings,
    ) -> Result<Connection, AttemptError> {
        let mut tls = target.hop.tls.client_tls();
        if !self.tls.available() {
            match target.hop.tls.mode {
                TlsMode::Off | TlsMode::Opportunistic => tls = ClientTls::Off,
                TlsMode::Required | TlsMode::Implicit => {
                    return Err(AttemptError::Tls(
                        "TLS is required but not available in this build".into(),
                    ));
                }
            }
        }
        let timeout = settings.timeouts.connect;
        let user = settings.auth.as_ref().map(|(u, _)| u.clone());
        let reporter = || {
            let set = self.filters.as_ref()?;
            OutReporter::new(set, &settings.filters, user.clone())
        };
        let first = reporter();
        let config = Arc::new(settings.client_config(target, tls, first.is_some()));
        let own_tls = settings.tls_profile.as_ref().map(|p| p.0.clone());
        match Connection::open(
            self,
            target,
            config,
            settings.src,
            timeout,
            first,
            own_tls.clone(),
        )
        .await
        {
            Err(e) if e.retry_in_plaintext(target) => {
                let again = reporter();
                let config =
                    Arc::new(settings.client_config(target, ClientTls::Off, again.is_some()));
                Connection::open(self, target, config, settings.src, timeout, again, own_tls).await
            }
            other => other,
        }
    }

    /// Delivers a batch of messages to one destination: plans it, walks the plan until a
    /// target gives a session, and sends the messages over that one connection in order,
    /// reconnecting (from the same target) if it is lost between messages. Returns one
    /// [`Delivery`] per message, in order.
    ///
    /// Recipients of a destination that cannot be planned get the plan's outcome (null MX:
    /// permanent 556 5.1.10; NXDOMAIN: permanent 5.1.2; a DNS failure: temporary); when every
    /// target fails, temporary. Once a message is handed to a server its replies decide:
    /// a message is never sent to a second server in the same call.
    pub async fn deliver(
        &self,
        destination: &Destination,
        settings: &RelaySettings,
        batch: Vec<OutgoingMessage>,
        seed: u64,
    ) -> Vec<Delivery> {
        let (deliveries, conn) = self
            .deliver_over(None, destination, settings, batch, seed)
            .await;
        if let Some(c) = conn {
            c.quit().await;
        }
        deliveries
    }

    /// [`deliver`](Self::deliver) starting on `conn`, an idle connection kept from an earlier
    /// batch to the same destination with the same settings, when given; and handing back the
    /// connection at the end (if it is still open) instead of closing it. The destination is
    /// planned only when a connection has to be opened, so a reused one costs no DNS lookup.
    pub async fn deliver_over(
        &self,
        mut conn: Option<Connection>,
        destination: &Destination,
        settings: &RelaySettings,
        batch: Vec<OutgoingMessage>,
        seed: u64,
    ) -> (Vec<Delivery>, Option<Connection>) {
        let mut walk = Walk::default();
        let mut deliveries = Vec::with_capacity(batch.len());
        for outgoing in batch {
            let alive = match &mut conn {
                Some(c) => c.check().await,
                None => false,
            };
            if !alive {
                if let Some(old) = conn.take() {
                    old.quit().await;
                }
                match walk.connect(self, destination, settings, seed).await {
                    Ok(c) => conn = Some(c),
                    Err(outcome) => {
                        deliveries.push(Delivery::all(&outgoing.message, &outcome));
                        continue;
                    }
                }
            }
            let Some(c) = &mut conn else {
                unreachable!("connected above");
            };
            let reused = c.messages() > 0;
            let delivery = c.send(outgoing.clone()).await;
            if reused && lost_before_mail(c) {
                // The server closed the idle connection as we reused it (the close crossed
                // our MAIL): nothing of the message reached it, so a new connection may
                // carry it.
                conn = None;
                if let Ok(mut fresh) = walk.connect(self, destination, settings, seed).await {
                    deliveries.push(fresh.send(outgoing).await);
                    conn = Some(fresh);
                    continue;
                }
            }
            deliveries.push(delivery);
        }
        (deliveries, conn.filter(|c| !c.is_closed()))
    }
}

/// The plan of one batch, made when the first connection has to be opened, and the walk
/// through its targets.
#[derive(Default)]
struct Walk {
    plan: Option<Result<Plan, Outcome>>,
    next: usize,
    attempts: Attempts,
}

impl Walk {
    /// A connection from the next target that gives one, or the outcome for the messages.
    async fn connect(
        &mut self,
        mta: &Mta,
        destination: &Destination,
        settings: &RelaySettings,
        seed: u64,
    ) -> Result<Connection, Outcome> {
        let plan = match &self.plan {
            Some(plan) => plan,
            None => {
                let planned = match mta.plan(destination, settings, seed).await {
                    Ok(plan) => {
                        for (host, error) in &plan.unresolved {
                            log::warn(&format!("mta resolve host={host} error=\"{error}\""));
                        }
                        Ok(plan)
                    }
                    Err(e) => {
                        let outcome = e.outcome(&destination.name());
                        log::warn(&format!(
                            "mta plan domain={} result=\"{}\"",
                            destination.name(),
                            outcome.reply
                        ));
                        Err(outcome)
                    }
                };
                self.plan.insert(planned)
            }
        };
        match plan {
            Ok(plan) => mta
                .connect(plan, settings, &mut self.next, &mut self.attempts)
                .await
                .ok_or_else(|| self.attempts.exhausted()),
            Err(outcome) => Err(outcome.clone()),
        }
    }
}
