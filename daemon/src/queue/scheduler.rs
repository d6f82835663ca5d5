//! The scheduler: decides when each envelope is tried, hands batches to delivery, and turns
//! outcomes into retries, removals and delivery status notifications.
//!
//! One task owns the in-memory state (every queued envelope, ordered by its next try). It never
//! waits on the disk itself: deliveries, bounce composition and store updates run in tasks of
//! their own and report back, so a slow disk or a slow remote server delays only its own work.
//!
//! Safety rules kept here:
//! - an envelope leaves the queue only after its outcome is final and, for a failure, after the
//!   notification to the sender has been committed to the queue (a crash in between delivers
//!   the notification twice rather than never);
//! - no notification is ever sent to the null sender; a failed notification goes to the
//!   postmaster once, and a failure of that is only logged;
//! - store failures are retried with growing pauses, never in a busy loop.
//!
//! # Throttling
//!
//! Due envelopes are grouped into batches per message, action and destination domain. Relaying
//! is throttled per destination: the delivery agent names, per batch, the destination it goes
//! to and how many batches may go there at once ([`Deliver::throttle`]); a batch over that
//! limit waits, claimed, in its destination's line until one of the running batches ends,
//! rather than being counted as a failure. Local deliveries and notifications to the null
//! sender's recipients (bounces) are never throttled: a remote domain that accepts mail slowly
//! must not hold up the postmaster's own mailbox, nor a bounce wait behind the mail that caused
//! it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use petrel_core::Time;
use petrel_core::bugs::{self, Bug};
use petrel_core::queue::{Dsn, DsnKind, DsnRecipient, Envelope, EnvelopeId, MsgId, RetryPolicy};
use petrel_core::session::client::OutcomeKind;
use petrel_core::smtp::{EnhancedCode, Reply, Ret};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;

use super::fs::{Blocking, Fs};
use super::store::Store;
use crate::clock::Clock;

/// Envelopes of one message, for one action and destination domain, delivered together.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The message.
    pub msg: MsgId,
    /// The action every envelope of the batch was routed to.
    pub action: String,
    /// The envelopes.
    pub envelopes: Vec<Envelope>,
    /// The message content (headers and body, CRLF).
    pub content: Arc<[u8]>,
}

/// The outcome of one envelope's delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The envelope.
    pub id: EnvelopeId,
    /// Delivered, temporary or permanent failure.
    pub kind: OutcomeKind,
    /// The reply that decided it (the remote server's, or one made up for a local failure).
    pub reply: Reply,
    /// The remote server involved, if any.
    pub remote_mta: Option<String>,
    /// DSN parameters were passed on to the next hop (false when it does not support DSN).
    pub dsn_passed: bool,
}

/// How deliveries to one destination are limited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttle {
    /// The destination: a domain, or the smarthost every domain of a relay goes through.
    /// Batches with the same key share the limit.
    pub key: String,
    /// Batches delivered to it at once (each uses at most one connection at a time).
    pub max_in_flight: usize,
}

/// Delivers batches: local delivery agents and relaying live behind this seam.
pub trait Deliver: Send + Sync + 'static {
    /// Delivers a batch and returns one attempt per envelope.
    fn deliver(&self, batch: Batch) -> impl Future<Output = Vec<Attempt>> + Send;

    /// How batches of `action` to `domain` are throttled; `None`, the default, for not at all
    /// (local delivery).
    fn throttle(&self, action: &str, domain: &str) -> Option<Throttle> {
        let _ = (action, domain);
        None
    }

    /// Whether `action` relays to other servers (paused by `pause mta`) rather than delivers
    /// locally (`pause mda`). The default: local.
    fn is_relay(&self, action: &str) -> bool {
        let _ = action;
        false
    }
}

/// One delivery of a message the daemon itself produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalRoute {
    /// The address delivered for.
    pub dest: String,
    /// The action.
    pub action: String,
    /// The encoded local delivery target (see [`crate::routing::encode_target`]); `None` for
    /// a relay.
    pub target: Option<String>,
}

/// Routes mail the daemon itself produces (notifications), as internal mail from local.
pub trait Router: Send + Sync + 'static {
    /// Where mail for `rcpt` goes: one route per resulting delivery, or the refusal.
    fn route_internal(&self, rcpt: &str) -> Result<Vec<InternalRoute>, Reply>;

    /// Where a queued envelope's recipient goes with the routing in force now (after a
    /// configuration or table change): its deliveries, or the refusal — 5xx when the recipient
    /// can no longer be delivered, 4xx when that cannot be decided now. The default keeps the
    /// envelope's current route.
    fn reroute(&self, envelope: &Envelope) -> Result<Vec<InternalRoute>, Reply> {
        Ok(vec![InternalRoute {
            dest: envelope.dest.clone(),
            action: envelope.action.clone().unwrap_or_default(),
            target: envelope.target.clone(),
        }])
    }
}

/// What a re-routing pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RerouteReport {
    /// Recipients whose deliveries changed.
    pub changed: usize,
    /// Recipients no longer deliverable (bounced).
    pub failed: usize,
    /// Recipients left as they were because routing failed temporarily or they were busy.
    pub kept: usize,
}

/// Scheduler settings.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Retry spacing.
    pub retry: RetryPolicy,
    /// Ages at which delay notices are sent (`bounce warn-interval`).
    pub warn_intervals: Vec<Duration>,
    /// Our host name, for notifications.
    pub hostname: String,
    /// Most batches in delivery at once.
    pub max_in_flight: usize,
    /// How long notifications stay queued.
    pub bounce_ttl: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            retry: RetryPolicy::default(),
            warn_intervals: vec![Duration::from_secs(4 * 3600)],
            hostname: "localhost".into(),
            max_in_flight: 64,
            bounce_ttl: Duration::from_secs(4 * 86_400),
        }
    }
}

/// What happened in the queue; for logs, `petrelctl monitor` and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueEvent {
    /// A message was committed with these envelopes.
    Queued(MsgId, usize),
    /// An envelope was delivered.
    Delivered(EnvelopeId),
    /// An envelope failed temporarily; it will be tried again at this time.
    Deferred(EnvelopeId, Time),
    /// An envelope failed permanently (or expired) and left the queue.
    Failed(EnvelopeId),
    /// A notification was queued for the sender of this envelope.
    Notified(EnvelopeId, DsnKind),
    /// Every envelope of the message is done and its files are gone from the queue.
    Removed(MsgId),
}

/// A line of `show queue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeStatus {
    /// The envelope as it is now.
    pub envelope: Envelope,
    /// Taken by delivery: being delivered right now, or waiting for its destination's
    /// throttle to let it go.
    pub in_flight: bool,
    /// Not tried while paused: the envelope itself, or the deliveries of its kind.
    pub paused: bool,
    /// The attempts made since the daemon started, oldest first (at most
    /// [`HISTORY_LEN`]).
    pub history: Vec<HistoryEntry>,
}

/// Attempts kept per envelope for `show envelope`.
pub const HISTORY_LEN: usize = 16;

/// One delivery attempt, as `show envelope` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When the attempt ended.
    pub at: Time,
    /// Delivered, temporary or permanent failure.
    pub kind: OutcomeKind,
    /// The reply that decided it.
    pub reply: String,
    /// The remote server, for a relay.
    pub remote_mta: Option<String>,
}

/// Which queued envelopes a command is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Every envelope.
    All,
    /// Every envelope of one message.
    Message(MsgId),
    /// One envelope.
    Envelope(EnvelopeId),
}

/// What `pause` and `resume` apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseTarget {
    /// Local deliveries (maildir, mbox, LMTP, MDA).
    Local,
    /// Relaying to other servers.
    Relay,
    /// One envelope.
    Envelope(EnvelopeId),
}

/// What a removal did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// Envelopes gone from the queue (their files are removed or rewritten next).
    pub removed: usize,
    /// Envelopes being delivered right now: each goes when its attempt ends, whatever the
    /// outcome, without a retry or a notification.
    pub in_delivery: usize,
}

/// A throttled destination, for `show hosts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostStatus {
    /// The domain or smarthost.
    pub destination: String,
    /// Batches being delivered to it.
    pub active: usize,
    /// Most batches at once.
    pub max: usize,
    /// Batches waiting for a free place.
    pub waiting: usize,
}

/// Counters since the scheduler started, for `show stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Messages committed (received, and notifications produced).
    pub messages_queued: u64,
    /// Envelopes delivered.
    pub delivered: u64,
    /// Temporary failures (each one a retry later).
    pub deferred: u64,
    /// Envelopes that failed permanently or expired.
    pub failed: u64,
    /// Delivery status notifications queued.
    pub notifications: u64,
    /// Envelopes removed by an operator.
    pub removed: u64,
    /// Messages in the queue now.
    pub messages: u64,
    /// Envelopes in the queue now.
    pub envelopes: u64,
    /// Local deliveries are paused.
    pub local_paused: bool,
    /// Relaying is paused.
    pub relay_paused: bool,
}

enum Command {
    Enqueue(MsgId, Vec<Envelope>),
    Snapshot(oneshot::Sender<Vec<EnvelopeStatus>>),
    Schedule(Selector, oneshot::Sender<usize>),
    Reroute(oneshot::Sender<RerouteReport>),
    Remove(Selector, oneshot::Sender<RemoveReport>),
    Pause(PauseTarget, bool, oneshot::Sender<bool>),
    Hosts(oneshot::Sender<Vec<HostStatus>>),
    Counters(oneshot::Sender<QueueCounters>),
}

/// A handle on the running scheduler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SchedulerHandle {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<QueueEvent>,
}

impl SchedulerHandle {
    /// Hands newly committed envelopes to the scheduler.
    pub fn enqueue(&self, msg: MsgId, envelopes: Vec<Envelope>) {
        let _ = self.commands.send(Command::Enqueue(msg, envelopes));
    }

    /// Every queued envelope.
    pub async fn snapshot(&self) -> Vec<EnvelopeStatus> {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Snapshot(tx));
        rx.await.unwrap_or_default()
    }

    /// Makes one envelope (or all, with `None`) due now.
    pub fn schedule_now(&self, id: Option<EnvelopeId>) {
        let sel = id.map_or(Selector::All, Selector::Envelope);
        let (tx, _) = oneshot::channel();
        let _ = self.commands.send(Command::Schedule(sel, tx));
    }

    /// Makes the selected envelopes due now; returns how many were found (envelopes being
    /// delivered are not counted: they are being tried already).
    pub async fn schedule(&self, sel: Selector) -> usize {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Schedule(sel, tx));
        rx.await.unwrap_or_default()
    }

    /// Removes the selected envelopes from the queue: from the scheduler's memory at once and
    /// from the disk next, without a notification to their senders.
    pub async fn remove(&self, sel: Selector) -> RemoveReport {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Remove(sel, tx));
        rx.await.unwrap_or_default()
    }

    /// Pauses (`true`) or resumes deliveries; returns whether the target exists (an envelope
    /// id that is not queued does not).
    pub async fn pause(&self, target: PauseTarget, paused: bool) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Pause(target, paused, tx));
        rx.await.unwrap_or_default()
    }

    /// The throttled destinations and their state.
    pub async fn hosts(&self) -> Vec<HostStatus> {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Hosts(tx));
        rx.await.unwrap_or_default()
    }

    /// The counters since start.
    pub async fn counters(&self) -> QueueCounters {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Counters(tx));
        rx.await.unwrap_or_default()
    }

    /// Routes every waiting envelope again with the routing in force now (after a table
    /// reload, or at start with a changed configuration): fixing the configuration fixes mail
    /// that is already queued. Envelopes being delivered are left for the next pass.
    pub async fn reroute(&self) -> RerouteReport {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Reroute(tx));
        rx.await.unwrap_or_default()
    }

    /// Subscribes to queue events.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.events.subscribe()
    }
}

/// Per-message state.
struct Message {
    envelopes: HashMap<EnvelopeId, Envelope>,
    in_flight: BTreeSet<EnvelopeId>,
}

/// A batch that is due but waits for its destination's throttle.
struct Waiting {
    msg: MsgId,
    action: String,
    ids: Vec<EnvelopeId>,
}

/// A throttled destination: its batches in delivery, and those waiting their turn in order.
struct Route {
    active: usize,
    max: usize,
    waiting: VecDeque<Waiting>,
}

/// What a finished background task reports.
enum Done {
    /// A batch was delivered; it held a place of this throttled destination, if any.
    Delivery(MsgId, Vec<Attempt>, Option<String>),
    /// Notification for these envelopes committed (`Ok`, with the new message to schedule,
    /// if one was needed) or not (`Err`).
    Notified(
        MsgId,
        Vec<EnvelopeId>,
        DsnKind,
        Result<Option<NewMessage>, ()>,
    ),
    /// Store changes for this message were written (or not: `false`); `true` in the second
    /// field when they removed it.
    Persisted(MsgId, bool, bool),
}

/// A message the scheduler itself queued (a notification).
type NewMessage = (MsgId, Vec<Envelope>);

struct State<F: Fs, B: Blocking, D: Deliver, R: Router, C: Clock> {
    store: Store<F, B>,
    deliver: Arc<D>,
    router: Arc<R>,
    clock: Arc<C>,
    config: SchedulerConfig,
    messages: HashMap<MsgId, Message>,
    due: BTreeSet<(Time, EnvelopeId)>,
    /// Envelopes whose final failure awaits its notification's commit.
    notifying: BTreeSet<EnvelopeId>,
    /// Messages whose on-disk envelopes are stale.
    dirty: BTreeSet<MsgId>,
    /// Messages being written now.
    persisting: BTreeSet<MsgId>,
    /// Store writes that failed in a row, for the pause before the next try.
    persist_failures: u32,
    persist_retry_at: Option<Time>,
    tasks: JoinSet<Done>,
    in_flight_batches: usize,
    /// Throttled destinations with batches in delivery or waiting (ordered, so that waiting
    /// batches are released in a reproducible order).
    routes: BTreeMap<String, Route>,
    events: broadcast::Sender<QueueEvent>,
    unique: u64,
    /// `pause mda` and `pause mta`.
    local_paused: bool,
    relay_paused: bool,
    /// Envelopes paused one by one.
    held: BTreeSet<EnvelopeId>,
    /// Due envelopes set aside because they are paused; they are due again on resume.
    parked: BTreeSet<EnvelopeId>,
    /// Envelopes removed while being delivered: they go when their attempt ends.
    removing: BTreeSet<EnvelopeId>,
    history: HashMap<EnvelopeId, VecDeque<HistoryEntry>>,
    counters: QueueCounters,
}

/// Starts the scheduler with the envelopes recovered from the store.
pub fn spawn<F, B, D, R, C>(
    store: Store<F, B>,
    deliver: Arc<D>,
    router: Arc<R>,
    clock: Arc<C>,
    config: SchedulerConfig,
    recovered: Vec<(MsgId, Vec<Envelope>)>,
) -> SchedulerHandle
where
    F: Fs,
    B: Blocking,
    D: Deliver,
    R: Router,
    C: Clock,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let (events, _) = broadcast::channel(4096);
    let mut state = State {
        store,
        deliver,
        router,
        clock,
        config,
        messages: HashMap::new(),
        due: BTreeSet::new(),
        notifying: BTreeSet::new(),
        dirty: BTreeSet::new(),
        persisting: BTreeSet::new(),
        persist_failures: 0,
        persist_retry_at: None,
        tasks: JoinSet::new(),
        in_flight_batches: 0,
        routes: BTreeMap::new(),
        events: events.clone(),
        unique: 0,
        local_paused: false,
        relay_paused: false,
        held: BTreeSet::new(),
        parked: BTreeSet::new(),
        removing: BTreeSet::new(),
        history: HashMap::new(),
        counters: QueueCounters::default(),
    };
    for (msg, envelopes) in recovered {
        state.add(msg, envelopes);
    }
    tokio::spawn(state.run(rx));
    SchedulerHandle {
        commands: tx,
        events,
    }
}

impl<F: Fs, B: Blocking, D: Deliver, R: Router, C: Clock> State<F, B, D, R, C> {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        if !self.messages.is_empty() {
            // Recovered envelopes are routed with the configuration in force now, before any
            // is tried: the configuration may have changed while the daemon was down.
            let report = self.reroute_all();
            if report != RerouteReport::default() {
                tracing::info!(
                    ?report,
                    "recovered envelopes routed with the current configuration"
                );
            }
        }
        loop {
            self.dispatch();
            self.persist();
            let now = self.clock.now();
            let wake = [self.next_due(), self.persist_retry_at]
                .into_iter()
                .flatten()
                .min();
            let sleep = wake.map(|t| t.saturating_since(now));
            // Biased: the branches are polled in this order, so that the same inputs give the
            // same sequence of decisions (tokio otherwise picks a branch at random, which a
            // simulation cannot reproduce). Finished work first: it is bounded by the tasks in
            // flight, so it can never starve commands.
            tokio::select! {
                biased;
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => match done {
                    Ok(done) => self.finished(done),
                    Err(e) => tracing::error!(error = %e, "queue task failed"),
                },
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                () = sleep_or_forever(sleep) => {}
            }
        }
        // The daemon is stopping: let running work finish so that nothing is half-recorded.
        while let Some(done) = self.tasks.join_next().await {
            if let Ok(done) = done {
                self.finished(done);
            }
        }
        self.persist();
        while let Some(done) = self.tasks.join_next().await {
            if let Ok(done) = done {
                self.finished(done);
            }
        }
    }

    fn emit(&mut self, event: QueueEvent) {
        let c = &mut self.counters;
        match &event {
            QueueEvent::Queued(..) => c.messages_queued += 1,
            QueueEvent::Delivered(_) => c.delivered += 1,
            QueueEvent::Deferred(..) => c.deferred += 1,
            QueueEvent::Failed(_) => c.failed += 1,
            QueueEvent::Notified(..) => c.notifications += 1,
            QueueEvent::Removed(_) => {}
        }
        let _ = self.events.send(event);
    }

    /// Forgets what the scheduler keeps about an envelope beside the envelope itself.
    fn forget(&mut self, id: EnvelopeId) {
        self.history.remove(&id);
        self.held.remove(&id);
        self.parked.remove(&id);
        self.removing.remove(&id);
    }

    fn selected(&self, sel: Selector) -> Vec<EnvelopeId> {
        let mut ids: Vec<EnvelopeId> = match sel {
            Selector::All => self
                .messages
                .values()
                .flat_map(|m| m.envelopes.keys().copied())
                .collect(),
            Selector::Message(msg) => self
                .messages
                .get(&msg)
                .map(|m| m.envelopes.keys().copied().collect())
                .unwrap_or_default(),
            Selector::Envelope(id) => self
                .messages
                .get(&id.msg())
                .filter(|m| m.envelopes.contains_key(&id))
                .map(|_| vec![id])
                .unwrap_or_default(),
        };
        ids.sort();
        ids
    }

    /// Whether an envelope may not be tried now: paused itself, or its kind of delivery is.
    fn is_paused(&self, e: &Envelope) -> bool {
        if self.held.contains(&e.id) {
            return true;
        }
        if !self.local_paused && !self.relay_paused {
            return false;
        }
        let relay = self
            .deliver
            .is_relay(e.action.as_deref().unwrap_or_default());
        if relay {
            self.relay_paused
        } else {
            self.local_paused
        }
    }

    fn remove(&mut self, sel: Selector) -> RemoveReport {
        let mut report = RemoveReport::default();
        for id in self.selected(sel) {
            let msg = id.msg();
            let Some(m) = self.messages.get_mut(&msg) else {
                continue;
            };
            if m.in_flight.contains(&id) || self.notifying.contains(&id) {
                self.removing.insert(id);
                report.in_delivery += 1;
                continue;
            }
            if let Some(e) = m.envelopes.remove(&id) {
                self.due.remove(&(e.next_try, id));
                tracing::info!(evpid = %id, rcpt = %e.dest, "envelope removed from the queue");
                report.removed += 1;
                self.counters.removed += 1;
            }
            self.forget(id);
            self.dirty.insert(msg);
            self.drop_if_done(msg);
        }
        report
    }

    fn pause(&mut self, target: PauseTarget, paused: bool) -> bool {
        match target {
            PauseTarget::Local => self.local_paused = paused,
            PauseTarget::Relay => self.relay_paused = paused,
            PauseTarget::Envelope(id) => {
                if self.selected(Selector::Envelope(id)).is_empty() {
                    return false;
                }
                if paused {
                    self.held.insert(id);
                } else {
                    self.held.remove(&id);
                }
            }
        }
        tracing::info!(
            ?target,
            paused,
            "deliveries {}",
            if paused { "paused" } else { "resumed" }
        );
        // Parked envelopes that may go now are due again, at their own time.
        let parked = std::mem::take(&mut self.parked);
        for id in parked {
            let Some(e) = self
                .messages
                .get(&id.msg())
                .and_then(|m| m.envelopes.get(&id))
            else {
                continue;
            };
            if self.is_paused(e) {
                self.parked.insert(id);
            } else {
                self.due.insert((e.next_try, id));
            }
        }
        true
    }

    fn add(&mut self, msg: MsgId, envelopes: Vec<Envelope>) {
        let entry = self.messages.entry(msg).or_insert_with(|| Message {
            envelopes: HashMap::new(),
            in_flight: BTreeSet::new(),
        });
        for e in envelopes {
            self.due.insert((e.next_try, e.id));
            entry.envelopes.insert(e.id, e);
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Enqueue(msg, envelopes) => {
                self.emit(QueueEvent::Queued(msg, envelopes.len()));
                self.add(msg, envelopes);
            }
            Command::Snapshot(reply) => {
                let mut all: Vec<EnvelopeStatus> = self
                    .messages
                    .values()
                    .flat_map(|m| {
                        m.envelopes.values().map(|e| EnvelopeStatus {
                            envelope: e.clone(),
                            in_flight: m.in_flight.contains(&e.id),
                            paused: self.is_paused(e),
                            history: self
                                .history
                                .get(&e.id)
                                .map(|h| h.iter().cloned().collect())
                                .unwrap_or_default(),
                        })
                    })
                    .collect();
                all.sort_by_key(|s| s.envelope.id);
                let _ = reply.send(all);
            }
            Command::Schedule(sel, done) => {
                let now = self.clock.now();
                let mut n = 0;
                for id in self.selected(sel) {
                    if self.reschedule(id, now) {
                        n += 1;
                    }
                }
                let _ = done.send(n);
            }
            Command::Remove(sel, done) => {
                let report = self.remove(sel);
                let _ = done.send(report);
            }
            Command::Pause(target, paused, done) => {
                let found = self.pause(target, paused);
                let _ = done.send(found);
            }
            Command::Hosts(done) => {
                let mut hosts: Vec<HostStatus> = self
                    .routes
                    .iter()
                    .map(|(key, r)| HostStatus {
                        destination: key.clone(),
                        active: r.active,
                        max: r.max,
                        waiting: r.waiting.len(),
                    })
                    .collect();
                hosts.sort_by(|a, b| a.destination.cmp(&b.destination));
                let _ = done.send(hosts);
            }
            Command::Counters(done) => {
                let mut c = self.counters;
                c.messages = self.messages.len() as u64;
                c.envelopes = self
                    .messages
                    .values()
                    .map(|m| m.envelopes.len() as u64)
                    .sum();
                c.local_paused = self.local_paused;
                c.relay_paused = self.relay_paused;
                let _ = done.send(c);
            }
            Command::Reroute(done) => {
                let report = self.reroute_all();
                tracing::info!(?report, "queued envelopes routed again");
                let _ = done.send(report);
            }
        }
    }

    fn reroute_all(&mut self) -> RerouteReport {
        let now = self.clock.now();
        let mut report = RerouteReport::default();
        let mut msgs: Vec<MsgId> = self.messages.keys().copied().collect();
        msgs.sort();
        for msg in msgs {
            let Some(m) = self.messages.get(&msg) else {
                continue;
            };
            // Envelopes of one original recipient are routed again together: an alias may
            // have expanded it into several.
            let mut groups: BTreeMap<String, Vec<EnvelopeId>> = BTreeMap::new();
            for e in m.envelopes.values() {
                groups.entry(e.rcpt.clone()).or_default().push(e.id);
            }
            for mut ids in groups.into_values() {
                ids.sort();
                let Some(m) = self.messages.get(&msg) else {
                    break;
                };
                let busy = ids
                    .iter()
                    .any(|id| m.in_flight.contains(id) || self.notifying.contains(id));
                if busy {
                    report.kept += 1;
                    continue;
                }
                let envelopes: Vec<Envelope> =
                    ids.iter().map(|id| m.envelopes[id].clone()).collect();
                let template = envelopes[0].clone();
                let current: BTreeSet<(String, Option<String>, Option<String>)> = envelopes
                    .iter()
                    .map(|e| (e.dest.clone(), e.action.clone(), e.target.clone()))
                    .collect();
                match self.router.reroute(&template) {
                    Ok(routes) => {
                        let wanted: BTreeSet<(String, Option<String>, Option<String>)> = routes
                            .iter()
                            .map(|r| (r.dest.clone(), Some(r.action.clone()), r.target.clone()))
                            .collect();
                        if wanted == current {
                            continue;
                        }
                        report.changed += 1;
                        self.replace_envelopes(msg, &ids, &template, &routes, now);
                    }
                    Err(reply) if reply.is_permanent() => {
                        report.failed += 1;
                        let items: Vec<(Envelope, Attempt)> = envelopes
                            .into_iter()
                            .map(|e| {
                                let attempt = Attempt {
                                    id: e.id,
                                    kind: OutcomeKind::Permanent,
                                    reply: reply.clone(),
                                    remote_mta: None,
                                    dsn_passed: true,
                                };
                                (e, attempt)
                            })
                            .collect();
                        for (e, _) in &items {
                            self.due.remove(&(e.next_try, e.id));
                        }
                        self.notify(msg, DsnKind::Failure, items);
                    }
                    Err(_) => report.kept += 1,
                }
            }
        }
        report
    }

    /// Replaces the envelopes `old` of a message with one per route, keeping everything else
    /// (sender, dates, DSN parameters, attempts) from `template`; the new ones are due now.
    fn replace_envelopes(
        &mut self,
        msg: MsgId,
        old: &[EnvelopeId],
        template: &Envelope,
        routes: &[InternalRoute],
        now: Time,
    ) {
        let Some(m) = self.messages.get_mut(&msg) else {
            return;
        };
        for id in old {
            if let Some(e) = m.envelopes.remove(id) {
                self.due.remove(&(e.next_try, *id));
            }
        }
        let mut next = m
            .envelopes
            .keys()
            .map(|id| (id.0 & 0xffff_ffff) as u32)
            .max()
            .map_or(0, |n| n + 1);
        for id in old {
            next = next.max((id.0 & 0xffff_ffff) as u32 + 1);
        }
        for r in routes {
            let mut e = template.clone();
            e.id = EnvelopeId::new(msg, next);
            next += 1;
            e.dest.clone_from(&r.dest);
            e.action = Some(r.action.clone());
            e.target.clone_from(&r.target);
            e.next_try = now;
            self.due.insert((now, e.id));
            m.envelopes.insert(e.id, e);
        }
        self.dirty.insert(msg);
    }

    /// Makes a queued envelope due at `at`; false when it is not queued or being delivered.
    fn reschedule(&mut self, id: EnvelopeId, at: Time) -> bool {
        let Some(m) = self.messages.get_mut(&id.msg()) else {
            return false;
        };
        let Some(e) = m.envelopes.get_mut(&id) else {
            return false;
        };
        if m.in_flight.contains(&id) || self.notifying.contains(&id) {
            return false;
        }
        self.due.remove(&(e.next_try, id));
        // A paused envelope is parked again by the next dispatch if it is still paused.
        self.parked.remove(&id);
        e.next_try = at;
        self.due.insert((at, id));
        true
    }

    fn next_due(&self) -> Option<Time> {
        if self.in_flight_batches >= self.config.max_in_flight {
            return None;
        }
        self.due.iter().next().map(|(t, _)| *t)
    }

    /// Starts deliveries for every due envelope, batched by message, action and domain, and
    /// the waiting batches of throttled destinations that have a free place.
    fn dispatch(&mut self) {
        self.release_waiting();
        let now = self.clock.now();
        let mut batches: Vec<((MsgId, String, String), Vec<EnvelopeId>)> = Vec::new();
        while self.in_flight_batches + batches.len() < self.config.max_in_flight {
            let Some(&(at, id)) = self.due.iter().next() else {
                break;
            };
            if at > now {
                break;
            }
            self.due.remove(&(at, id));
            let Some(e) = self
                .messages
                .get(&id.msg())
                .and_then(|m| m.envelopes.get(&id))
            else {
                continue;
            };
            if self.is_paused(e) {
                self.parked.insert(id);
                continue;
            }
            let action = e.action.clone().unwrap_or_default();
            let domain = e
                .dest
                .rsplit_once('@')
                .map(|(_, d)| d.to_lowercase())
                .unwrap_or_default();
            let key = (id.msg(), action, domain);
            match batches.iter_mut().find(|(k, _)| *k == key) {
                Some((_, ids)) => ids.push(id),
                None => batches.push((key, vec![id])),
            }
        }
        for ((msg, action, domain), ids) in batches {
            let Some(m) = self.messages.get_mut(&msg) else {
                continue;
            };
            // Claimed from now on, whether it starts now or waits for its destination.
            m.in_flight.extend(ids.iter().copied());
            let bounce = ids
                .first()
                .and_then(|id| m.envelopes.get(id))
                .is_some_and(|e| e.sender.is_empty());
            let throttle = if bounce {
                None
            } else {
                self.deliver.throttle(&action, &domain)
            };
            let Some(throttle) = throttle else {
                self.start(msg, action, ids, None);
                continue;
            };
            let route = self.routes.entry(throttle.key.clone()).or_insert(Route {
                active: 0,
                max: throttle.max_in_flight,
                waiting: VecDeque::new(),
            });
            route.max = throttle.max_in_flight.max(1);
            if route.active >= route.max || !route.waiting.is_empty() {
                tracing::debug!(msgid = %msg, destination = %throttle.key, "waiting for a connection slot");
                route.waiting.push_back(Waiting { msg, action, ids });
            } else {
                route.active += 1;
                self.start(msg, action, ids, Some(throttle.key));
            }
        }
    }

    /// Starts waiting batches of throttled destinations that have a free place, within the
    /// global limit.
    fn release_waiting(&mut self) {
        let mut ready = Vec::new();
        for (key, route) in &mut self.routes {
            while route.active < route.max
                && self.in_flight_batches + ready.len() < self.config.max_in_flight
            {
                let Some(w) = route.waiting.pop_front() else {
                    break;
                };
                route.active += 1;
                ready.push((key.clone(), w));
            }
        }
        for (key, w) in ready {
            self.start(w.msg, w.action, w.ids, Some(key));
        }
    }

    /// Delivers one batch of claimed envelopes in a background task.
    fn start(&mut self, msg: MsgId, action: String, ids: Vec<EnvelopeId>, route: Option<String>) {
        let Some(m) = self.messages.get(&msg) else {
            return;
        };
        let envelopes: Vec<Envelope> = ids
            .iter()
            .filter_map(|id| m.envelopes.get(id).cloned())
            .collect();
        self.in_flight_batches += 1;
        let store = self.store.clone();
        let deliver = self.deliver.clone();
        self.tasks.spawn(async move {
            let attempts = match store.read_content(msg).await {
                Ok(content) => {
                    let batch = Batch {
                        msg,
                        action,
                        envelopes,
                        content: content.into(),
                    };
                    deliver.deliver(batch).await
                }
                Err(e) => {
                    tracing::error!(msgid = %msg, error = %e, "cannot read queued message");
                    let reply = Reply::new(
                        451,
                        EnhancedCode::new(4, 3, 0),
                        format!("queue read error: {e}"),
                    );
                    envelopes
                        .iter()
                        .map(|e| Attempt {
                            id: e.id,
                            kind: OutcomeKind::Temporary,
                            reply: reply.clone(),
                            remote_mta: None,
                            dsn_passed: true,
                        })
                        .collect()
                }
            };
            Done::Delivery(msg, attempts, route)
        });
    }

    fn finished(&mut self, done: Done) {
        match done {
            Done::Delivery(msg, attempts, route) => {
                if let Some(key) = route
                    && let Some(r) = self.routes.get_mut(&key)
                {
                    r.active = r.active.saturating_sub(1);
                    if r.active == 0 && r.waiting.is_empty() {
                        self.routes.remove(&key);
                    }
                }
                self.delivered(msg, attempts);
            }
            Done::Notified(msg, ids, kind, result) => {
                let ok = result.is_ok();
                if let Ok(Some((new, envelopes))) = result {
                    self.emit(QueueEvent::Queued(new, envelopes.len()));
                    self.add(new, envelopes);
                }
                self.notified(msg, &ids, kind, ok);
            }
            Done::Persisted(msg, ok, removed) => {
                self.persisting.remove(&msg);
                if ok {
                    self.persist_failures = 0;
                    if removed {
                        self.emit(QueueEvent::Removed(msg));
                    }
                } else {
                    // Write it again later (with whatever changed meanwhile): 1 s, 2 s, 4 s …
                    // up to a minute between tries, never a busy loop.
                    self.dirty.insert(msg);
                    self.persist_failures += 1;
                    let pause = Duration::from_secs(1 << self.persist_failures.min(6))
                        .min(Duration::from_secs(60));
                    self.persist_retry_at = Some(self.clock.now() + pause);
                }
            }
        }
    }

    fn delivered(&mut self, msg: MsgId, attempts: Vec<Attempt>) {
        self.in_flight_batches = self.in_flight_batches.saturating_sub(1);
        let now = self.clock.now();
        let mut failed = Vec::new();
        let mut delayed = Vec::new();
        let mut success_dsn = Vec::new();
        let Some(m) = self.messages.get_mut(&msg) else {
            return;
        };
        for a in attempts {
            m.in_flight.remove(&a.id);
            if self.removing.remove(&a.id) {
                // Removed by an operator during the attempt: gone, whatever the outcome.
                if let Some(e) = m.envelopes.remove(&a.id) {
                    tracing::info!(evpid = %a.id, rcpt = %e.dest, "envelope removed from the queue");
                    self.counters.removed += 1;
                }
                self.history.remove(&a.id);
                self.held.remove(&a.id);
                continue;
            }
            let Some(e) = m.envelopes.get_mut(&a.id) else {
                continue;
            };
            e.last_try = Some(now);
            let history = self.history.entry(a.id).or_default();
            if history.len() == HISTORY_LEN {
                history.pop_front();
            }
            history.push_back(HistoryEntry {
                at: now,
                kind: a.kind,
                reply: a.reply.to_string().replace('\n', " "),
                remote_mta: a.remote_mta.clone(),
            });
            match a.kind {
                OutcomeKind::Delivered => {
                    tracing::info!(evpid = %a.id, rcpt = %e.dest, result = "Ok", reply = %a.reply, "delivery");
                    let notify = e.notify.unwrap_or_default();
                    let relayed = !a.dsn_passed && notify.success;
                    if notify.success && !e.sender.is_empty() {
                        success_dsn.push((e.clone(), a.clone(), relayed));
                    }
                    m.envelopes.remove(&a.id);
                    self.history.remove(&a.id);
                    self.held.remove(&a.id);
                    self.counters.delivered += 1;
                    let _ = self.events.send(QueueEvent::Delivered(a.id));
                }
                OutcomeKind::Temporary
                    if now < e.expires && bugs::active(Bug::LoseEnvelopeOn4xx) =>
                {
                    // Deliberate bug (simulator tests only): the envelope is forgotten.
                    m.envelopes.remove(&a.id);
                }
                OutcomeKind::Temporary if now < e.expires => {
                    e.attempts += 1;
                    e.last_error = Some(a.reply.to_string().replace('\n', " "));
                    let local = a.remote_mta.is_none();
                    e.next_try = self
                        .config
                        .retry
                        .next_try(e.created, e.attempts, now, local)
                        .min(e.expires);
                    if bugs::active(Bug::RetryWithoutBackoff) {
                        // Deliberate bug (simulator tests only): no backoff.
                        e.next_try = (now + Duration::from_secs(1)).min(e.expires);
                    }
                    tracing::info!(
                        evpid = %a.id, rcpt = %e.dest, result = "TempFail", reply = %a.reply,
                        attempts = e.attempts, "delivery"
                    );
                    self.due.insert((e.next_try, a.id));
                    self.counters.deferred += 1;
                    let _ = self.events.send(QueueEvent::Deferred(a.id, e.next_try));
                    let age = now.saturating_since(e.created);
                    let warn_due = self
                        .config
                        .warn_intervals
                        .get(usize::from(e.warnings))
                        .is_some_and(|w| age >= *w);
                    if warn_due && wants(e, DsnKind::Delay) {
                        e.warnings += 1;
                        delayed.push((e.clone(), a.clone()));
                    }
                }
                OutcomeKind::Temporary | OutcomeKind::Permanent => {
                    let mut a = a;
                    if a.kind == OutcomeKind::Temporary {
                        // Out of time: the last temporary failure becomes the final one, with
                        // RFC 3463's "delivery time expired" status.
                        a.reply = Reply::new(
                            a.reply.code,
                            EnhancedCode::new(4, 4, 7),
                            format!(
                                "delivery time expired; last error: {}",
                                a.reply.to_string().replace('\n', " ")
                            ),
                        );
                    }
                    tracing::info!(evpid = %a.id, rcpt = %e.dest, result = "PermFail", reply = %a.reply, "delivery");
                    failed.push((e.clone(), a));
                }
            }
        }
        self.dirty.insert(msg);
        if !failed.is_empty() {
            self.notify(msg, DsnKind::Failure, failed);
        }
        if !delayed.is_empty() {
            self.notify(msg, DsnKind::Delay, delayed);
        }
        for (e, a, relayed) in success_dsn {
            let kind = if relayed {
                DsnKind::Relayed
            } else {
                DsnKind::Delivered
            };
            self.notify(msg, kind, vec![(e, a)]);
        }
        self.drop_if_done(msg);
    }

    /// Composes and commits a notification for these envelopes in a background task. For
    /// failures the envelopes stay queued (marked) until the notification is committed.
    fn notify(&mut self, msg: MsgId, kind: DsnKind, items: Vec<(Envelope, Attempt)>) {
        let ids: Vec<EnvelopeId> = items.iter().map(|(e, _)| e.id).collect();
        if kind == DsnKind::Failure {
            self.notifying.extend(ids.iter().copied());
        }
        let sender = items[0].0.sender.clone();
        let to = if sender.is_empty()
            && kind == DsnKind::Failure
            && bugs::active(Bug::BounceToNullSender)
        {
            // Deliberate bug (simulator tests only): a failed bounce is bounced, to the
            // recipient that refused it.
            items[0].0.rcpt.clone()
        } else if sender.is_empty() {
            // A notification that failed: tell the postmaster once, never the null sender.
            let any_to_postmaster = items
                .iter()
                .any(|(e, _)| e.dest.to_lowercase().starts_with("postmaster"));
            if kind != DsnKind::Failure || any_to_postmaster {
                if kind == DsnKind::Failure {
                    tracing::warn!(msgid = %msg, "a notification to the postmaster failed; dropping it");
                }
                self.tasks
                    .spawn(async move { Done::Notified(msg, ids, kind, Ok(None)) });
                return;
            }
            "postmaster".to_owned()
        } else if !items.iter().any(|(e, _)| wants(e, kind)) {
            self.tasks
                .spawn(async move { Done::Notified(msg, ids, kind, Ok(None)) });
            return;
        } else {
            sender
        };
        self.unique += 1;
        let unique = format!("{}.{}", self.clock.now().as_millis(), self.unique);
        let store = self.store.clone();
        let router = self.router.clone();
        let hostname = self.config.hostname.clone();
        let now = self.clock.now();
        let ttl = self.config.bounce_ttl;
        self.tasks.spawn(async move {
            let result = match store.read_content(msg).await {
                Ok(original) => {
                    let first = &items[0].0;
                    let recipients: Vec<DsnRecipient> = items
                        .iter()
                        .map(|(e, a)| DsnRecipient {
                            address: e.rcpt.clone(),
                            original: e.orcpt.clone(),
                            status: a.reply.enhanced.unwrap_or(EnhancedCode::new(
                                (a.reply.code / 100) as u8,
                                0,
                                0,
                            )),
                            remote_mta: a.remote_mta.clone(),
                            diagnostic: Some(a.reply.clone()),
                            last_attempt: e.last_try,
                            will_retry_until: (kind == DsnKind::Delay).then_some(e.expires),
                        })
                        .collect();
                    let dsn = Dsn {
                        kind,
                        reporting_mta: &hostname,
                        to: &to,
                        arrival: first.created,
                        now,
                        envid: first.envid.as_deref(),
                        recipients: &recipients,
                        original: &original,
                        ret: first.ret.unwrap_or(Ret::Headers),
                        unique: &unique,
                    };
                    let content = dsn.render();
                    enqueue_internal(&store, &*router, "", &to, &content, now, ttl).await
                }
                Err(e) => {
                    tracing::error!(msgid = %msg, error = %e, "cannot read the message to notify its sender");
                    Err(())
                }
            };
            Done::Notified(msg, ids, kind, result)
        });
    }

    fn notified(&mut self, msg: MsgId, ids: &[EnvelopeId], kind: DsnKind, ok: bool) {
        for id in ids {
            if ok {
                self.counters.notifications += 1;
                let _ = self.events.send(QueueEvent::Notified(*id, kind));
            }
            if kind != DsnKind::Failure {
                continue;
            }
            self.notifying.remove(id);
            let Some(m) = self.messages.get_mut(&msg) else {
                continue;
            };
            if ok {
                m.envelopes.remove(id);
                self.history.remove(id);
                self.held.remove(id);
                self.removing.remove(id);
                self.counters.failed += 1;
                let _ = self.events.send(QueueEvent::Failed(*id));
            } else if self.removing.remove(id) {
                // Removed by an operator meanwhile: no second try.
                m.envelopes.remove(id);
                self.history.remove(id);
                self.held.remove(id);
                self.counters.removed += 1;
            } else if let Some(e) = m.envelopes.get_mut(id) {
                // Try the whole failure again later; the notification is not lost.
                let retry = self.clock.now() + Duration::from_secs(60);
                e.next_try = retry;
                self.due.insert((retry, *id));
            }
        }
        if kind == DsnKind::Failure {
            self.dirty.insert(msg);
            self.drop_if_done(msg);
        }
    }

    fn drop_if_done(&mut self, msg: MsgId) {
        if let Some(m) = self.messages.get(&msg)
            && m.envelopes.is_empty()
            && m.in_flight.is_empty()
        {
            self.dirty.insert(msg);
        }
    }

    /// Writes changed messages to the store in background tasks, one at a time per message.
    fn persist(&mut self) {
        let now = self.clock.now();
        if self.persist_retry_at.is_some_and(|t| t > now) {
            return;
        }
        self.persist_retry_at = None;
        // A message being written waits for that write to finish; it stays dirty meanwhile,
        // so a change made during the write is written after it.
        let ready: Vec<MsgId> = self
            .dirty
            .iter()
            .filter(|m| !self.persisting.contains(m))
            .copied()
            .collect();
        for msg in ready {
            self.dirty.remove(&msg);
            self.persisting.insert(msg);
            let store = self.store.clone();
            let remaining: Option<Vec<Envelope>> = match self.messages.get(&msg) {
                Some(m) if m.envelopes.is_empty() && m.in_flight.is_empty() => None,
                Some(m) => {
                    let mut v: Vec<Envelope> = m.envelopes.values().cloned().collect();
                    v.sort_by_key(|e| e.id);
                    Some(v)
                }
                None => None,
            };
            if remaining.is_none() {
                self.messages.remove(&msg);
            }
            self.tasks.spawn(async move {
                let result = match &remaining {
                    None => store.remove(msg).await,
                    Some(envelopes) => store.update(msg, envelopes).await,
                };
                if let Err(e) = &result {
                    tracing::error!(msgid = %msg, error = %e, "cannot update the queue; will retry");
                }
                Done::Persisted(msg, result.is_ok(), remaining.is_none())
            });
        }
    }
}

/// Whether the envelope's NOTIFY parameter asks for this kind of notification (RFC 3461: by
/// default failures and delays are reported, successes are not).
fn wants(e: &Envelope, kind: DsnKind) -> bool {
    if e.sender.is_empty() {
        return false;
    }
    match e.notify {
        None => matches!(kind, DsnKind::Failure | DsnKind::Delay),
        Some(n) if n.never => false,
        Some(n) => match kind {
            DsnKind::Failure => n.failure,
            DsnKind::Delay => n.delay,
            DsnKind::Delivered | DsnKind::Relayed => n.success,
        },
    }
}

/// Commits a message produced by the daemon (a notification) and returns it once it is
/// durable, for the scheduler to take on; `Ok(None)` when it has nowhere to go.
async fn enqueue_internal<F: Fs, B: Blocking, R: Router>(
    store: &Store<F, B>,
    router: &R,
    sender: &str,
    rcpt: &str,
    content: &[u8],
    now: Time,
    ttl: Duration,
) -> Result<Option<NewMessage>, ()> {
    let routes = match router.route_internal(rcpt) {
        Ok(r) if !r.is_empty() => r,
        Ok(_) | Err(_) => {
            tracing::warn!(%rcpt, "no route for a notification; dropping it");
            // Nothing can ever deliver it: keeping the original failure queued would not help.
            return Ok(None);
        }
    };
    let mut incoming = store.begin();
    incoming.write(content).await;
    let msg = incoming.msg();
    let envelopes: Vec<Envelope> = routes
        .into_iter()
        .enumerate()
        .map(|(i, route)| {
            let mut e = Envelope::new(EnvelopeId::new(msg, i as u32), sender, rcpt, now, now + ttl);
            e.dest = route.dest;
            e.action = Some(route.action);
            // Without its target a local delivery cannot tell where the mailbox is.
            e.target = route.target;
            e.origin.local = true;
            e
        })
        .collect();
    match incoming.commit(&envelopes).await {
        Ok(msg) => Ok(Some((msg, envelopes))),
        Err(e) => {
            tracing::error!(error = %e, "cannot queue a notification");
            Err(())
        }
    }
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
