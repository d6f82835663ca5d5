//! `proc:` tables: the external process behind a table, and the blocking lookups that ask it.
//!
//! A [`ProcTable`] is a handle; the process itself is run by a thread of its own (named
//! `table-NAME`) with a small current-thread tokio runtime. That thread
//!
//! 1. starts `/bin/sh -c "exec COMMAND"` in a process group of its own, with pipes on its
//!    standard input, output and error;
//! 2. runs the handshake with a [`ProcTableClient`] (the sans-IO machine of the protocol; see
//!    [`petrel_core::rules::proc_table`] for the protocol itself) and waits for
//!    `register|ready`;
//! 3. turns each request from a [`ProcTable`] handle into a request line, and each reply line
//!    into the answer the caller waits for; requests that arrive during the handshake wait for
//!    it (within their deadline);
//! 4. logs every line the process writes on its standard error as a warning naming the table;
//! 5. when the process exits, or fails its handshake, fails the requests it had not answered,
//!    answers every request with a temporary failure while it waits, and starts the process
//!    again after a delay that doubles at each failure ([`ProcTableOptions::restart_delay`] up
//!    to [`ProcTableOptions::max_restart_delay`]; back to the first delay once a process has
//!    stayed up that long).
//!
//! # Where the daemon differs from OpenSMTPD 7.8
//!
//! - OpenSMTPD runs `/usr/libexec/smtpd/table-NAME ARG` for `proc:NAME:ARG`, over one
//!   socketpair serving as both standard input and output. Petrel takes `proc:` as an absolute
//!   command line (the parser insists on the `/`) run by `/bin/sh -c "exec COMMAND"`, over two
//!   pipes, so that any program can be a table and arguments can be given.
//! - OpenSMTPD leaves a table's standard error on its own; Petrel logs each line as a warning
//!   naming the table, so that a table's complaints land in the daemon's log with context.
//! - OpenSMTPD exits when a table process exits or writes a line it cannot parse, and waits for
//!   each answer without a deadline. Petrel restarts the process with backoff, skips (and
//!   logs) unusable lines, and fails a request temporarily when its deadline passes.
//! - Like OpenSMTPD, a table that cannot complete its handshake when the daemon starts stops
//!   the start ([`ProcTables::wait_ready`]).
//!
//! # Why a thread per table
//!
//! [`Lookups`](petrel_core::rules::Lookups) is synchronous, so a lookup in a `proc:` table
//! blocks its caller until the answer comes. If the task that talks to the process ran on the
//! caller's runtime, a caller blocking a runtime thread — the scheduler routing a notification,
//! or any caller on a current-thread runtime — could starve the very task that would answer
//! it. On a thread of its own the process is always served, whoever waits and wherever; a
//! caller waits at most the request timeout. The daemon still keeps blocking waits off its
//! runtime threads where it can: the smtp-in handler resolves recipients on the blocking pool
//! when the routing has `proc:` tables ([`SharedRouting::resolve`]).
//!
//! # Failures are temporary
//!
//! A request that is not answered within [`Timeouts::request`], a table that answers `error`,
//! one that is restarting, stopped or not registered for the service asked: every one of them
//! is a [`LookupError`], which the rules turn into a temporary failure (`451 4.3.0` for a
//! recipient). Nothing is ever read as "not found".
//!
//! [`SharedRouting::resolve`]: crate::routing::SharedRouting::resolve

use std::collections::HashMap;
use std::fmt;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_core::Time;
use petrel_core::rules::lookups::LookupError;
use petrel_core::rules::proc_table::{
    self, Answer, EncodeError, Event, Operation, ProcTableClient, RequestError, RequestId,
    SMTPD_VERSION, Timeouts,
};
use petrel_core::rules::service::Service;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

use crate::child::stop as stop_child;
use crate::clock::{Clock, SystemClock};

/// How long a caller waits beyond the request timeout before giving up on its own, should the
/// table's thread not answer at all (it always does; this is a backstop, not a timeout).
const CALLER_GRACE: Duration = Duration::from_secs(1);

/// Settings of `proc:` table processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcTableOptions {
    /// Deadlines: for the handshake, and for each request (a request not answered in time is
    /// a temporary failure).
    pub timeouts: Timeouts,
    /// The delay before the first restart of a process that exited; it doubles at each
    /// further failure.
    pub restart_delay: Duration,
    /// The longest delay between restarts. A process that stayed up at least this long is
    /// restarted after [`restart_delay`](Self::restart_delay) again.
    pub max_restart_delay: Duration,
}

impl Default for ProcTableOptions {
    /// A 10 s handshake and 5 s requests; restarts after 1 s, then 2, 4 … up to 60 s.
    fn default() -> Self {
        ProcTableOptions {
            timeouts: Timeouts {
                handshake: Duration::from_secs(10),
                request: Duration::from_secs(5),
            },
            restart_delay: Duration::from_secs(1),
            max_restart_delay: Duration::from_secs(60),
        }
    }
}

/// Where a table process stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableStatus {
    /// The process was started and the handshake is under way.
    Starting {
        /// The how-manieth process this is (1 for the first).
        generation: u64,
    },
    /// The handshake completed: the table answers.
    Ready {
        /// The how-manieth process this is.
        generation: u64,
        /// Its process id.
        pid: u32,
        /// The services it registered.
        services: Vec<Service>,
    },
    /// The process exited or failed its handshake; it is started again after `restart_in`.
    Down {
        /// The generation that failed.
        generation: u64,
        /// Why.
        reason: String,
        /// The delay before the next start.
        restart_in: Duration,
    },
    /// The table was shut down.
    Stopped,
}

/// Why a `proc:` table cannot be started or used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProcTableError {
    /// The table name cannot be written in the protocol (it contains `|` or a line break).
    #[error("table <{table}>: {source}")]
    Name {
        /// The table.
        table: String,
        /// What is wrong with it.
        source: EncodeError,
    },
    /// The thread that runs the process could not be started.
    #[error("table <{table}>: cannot start its thread: {reason}")]
    Thread {
        /// The table.
        table: String,
        /// Why.
        reason: String,
    },
    /// The process did not become ready: it could not be started, exited, failed its
    /// handshake, or took too long.
    #[error("table <{table}> ({command}): {reason}")]
    NotReady {
        /// The table.
        table: String,
        /// Its command.
        command: String,
        /// Why.
        reason: String,
    },
}

/// A request from a handle to the table's thread.
enum Command {
    /// Ask the process; the answer goes to `reply`.
    Request {
        op: Operation,
        reply: std_mpsc::SyncSender<Answer>,
    },
    /// Stop the process and the thread.
    Shutdown,
}

/// A running `proc:` table. See the module documentation.
///
/// The lookup methods block the calling thread until the table answers or the request times
/// out; call them from a blocking context (a blocking-pool task or a plain thread).
pub struct ProcTable {
    name: String,
    command: String,
    options: ProcTableOptions,
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<TableStatus>,
}

impl fmt::Debug for ProcTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcTable")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl ProcTable {
    /// Starts table `name` served by `command` (run as `/bin/sh -c "exec COMMAND"`). Returns at
    /// once; [`wait_ready`](Self::wait_ready) waits for the handshake.
    ///
    /// # Errors
    /// The name cannot be written in the protocol, or the thread cannot be started.
    pub fn spawn(
        name: &str,
        command: &str,
        options: ProcTableOptions,
    ) -> Result<Arc<ProcTable>, ProcTableError> {
        // Checked here, once, rather than failing every start in the thread.
        proc_table::handshake(SMTPD_VERSION, name).map_err(|source| ProcTableError::Name {
            table: name.to_owned(),
            source,
        })?;
        let (commands, rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(TableStatus::Starting { generation: 1 });
        let runner = Runner {
            name: name.to_owned(),
            command: command.to_owned(),
            options,
            commands: rx,
            status: status_tx,
            next_id: 0,
        };
        std::thread::Builder::new()
            .name(format!("table-{name}"))
            .spawn(move || runner.run_on_own_runtime())
            .map_err(|e| ProcTableError::Thread {
                table: name.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Arc::new(ProcTable {
            name: name.to_owned(),
            command: command.to_owned(),
            options,
            commands,
            status,
        }))
    }

    /// The table's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command that serves it.
    #[must_use]
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Where the process stands now.
    #[must_use]
    pub fn status(&self) -> TableStatus {
        self.status.borrow().clone()
    }

    /// A receiver of every change of [`status`](Self::status), to wait on.
    #[must_use]
    pub fn watch_status(&self) -> watch::Receiver<TableStatus> {
        self.status.clone()
    }

    /// Waits until the table is ready, for at most `timeout`.
    ///
    /// # Errors
    /// The process went down (exited, failed its handshake) or `timeout` passed first.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ProcTableError> {
        let not_ready = |reason: String| ProcTableError::NotReady {
            table: self.name.clone(),
            command: self.command.clone(),
            reason,
        };
        let mut status = self.status.clone();
        let wait = status.wait_for(|s| !matches!(s, TableStatus::Starting { .. }));
        let settled = match tokio::time::timeout(timeout, wait).await {
            Err(_) => return Err(not_ready(format!("not ready after {timeout:?}"))),
            Ok(Err(_)) => TableStatus::Stopped,
            Ok(Ok(s)) => s.clone(),
        };
        match settled {
            TableStatus::Ready { .. } => Ok(()),
            TableStatus::Down { reason, .. } => Err(not_ready(reason)),
            TableStatus::Stopped | TableStatus::Starting { .. } => Err(not_ready("stopped".into())),
        }
    }

    /// Sends `op` and waits for its answer (blocking).
    fn ask(&self, op: Operation) -> Answer {
        let (reply, answer) = std_mpsc::sync_channel(1);
        if self.commands.send(Command::Request { op, reply }).is_err() {
            return Answer::Failed("the table is stopped".into());
        }
        match answer.recv_timeout(self.options.timeouts.request + CALLER_GRACE) {
            Ok(answer) => answer,
            Err(std_mpsc::RecvTimeoutError::Timeout) => Answer::TimedOut,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                Answer::Failed("the table is stopped".into())
            }
        }
    }

    /// Whether `key` is in the table for `service` (a `check` request). Blocks.
    ///
    /// # Errors
    /// A temporary failure: see the module documentation.
    pub fn check(&self, service: Service, key: &str) -> Result<bool, LookupError> {
        self.ask(Operation::Check {
            service,
            key: key.to_owned(),
        })
        .into_present(&self.name)
    }

    /// The value of `key` for `service` (a `lookup` request). Blocks.
    ///
    /// # Errors
    /// A temporary failure: see the module documentation.
    pub fn lookup(&self, service: Service, key: &str) -> Result<Option<String>, LookupError> {
        self.ask(Operation::Lookup {
            service,
            key: key.to_owned(),
        })
        .into_value(&self.name)
    }

    /// The next value for `service` (a `fetch` request: `source`, `relayhost`). Blocks.
    ///
    /// # Errors
    /// A temporary failure: see the module documentation.
    pub fn fetch(&self, service: Service) -> Result<Option<String>, LookupError> {
        self.ask(Operation::Fetch { service })
            .into_value(&self.name)
    }

    /// Asks the table to reload its own data (an `update` request). Blocks.
    ///
    /// # Errors
    /// The table answered `error`, did not answer in time, or is down.
    pub fn update(&self) -> Result<(), LookupError> {
        match self.ask(Operation::Update) {
            Answer::Updated => Ok(()),
            Answer::Failed(reason) => Err(LookupError::Backend {
                table: self.name.clone(),
                reason,
            }),
            Answer::TimedOut => Err(LookupError::Backend {
                table: self.name.clone(),
                reason: "no answer in time".into(),
            }),
            other => Err(LookupError::Backend {
                table: self.name.clone(),
                reason: format!("unexpected answer {other:?} to update"),
            }),
        }
    }

    /// Stops the process (it is killed with its process group) and the thread. Lookups fail
    /// from now on. Dropping the last handle does the same.
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }

    /// Stops the table and waits until its process is gone, for at most `timeout`.
    pub async fn stop(&self, timeout: Duration) {
        self.shutdown();
        let mut status = self.status.clone();
        let _ = tokio::time::timeout(
            timeout,
            status.wait_for(|s| matches!(s, TableStatus::Stopped)),
        )
        .await;
    }
}

impl Drop for ProcTable {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Table processes by table name, shared by every routing built from the same configuration:
/// a reload builds new routing around the same running processes rather than starting them
/// again.
#[derive(Clone, Debug, Default)]
pub struct ProcTables {
    options: ProcTableOptions,
    tables: Arc<Mutex<HashMap<String, Arc<ProcTable>>>>,
}

impl ProcTables {
    /// No tables yet; processes started later use `options`.
    #[must_use]
    pub fn new(options: ProcTableOptions) -> ProcTables {
        ProcTables {
            options,
            tables: Arc::default(),
        }
    }

    /// The options processes are started with.
    #[must_use]
    pub fn options(&self) -> ProcTableOptions {
        self.options
    }

    /// The table `name` served by `command`: the running one if there is one with that
    /// command, else a new one (a table whose command changed is replaced; the old process
    /// stops when the last routing using it is dropped).
    ///
    /// # Errors
    /// See [`ProcTable::spawn`].
    pub fn get_or_spawn(
        &self,
        name: &str,
        command: &str,
    ) -> Result<Arc<ProcTable>, ProcTableError> {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = tables.get(name)
            && t.command == command
        {
            return Ok(t.clone());
        }
        let table = ProcTable::spawn(name, command, self.options)?;
        tables.insert(name.to_owned(), table.clone());
        Ok(table)
    }

    /// The table of that name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Arc<ProcTable>> {
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Every table, by name.
    #[must_use]
    pub fn all(&self) -> Vec<Arc<ProcTable>> {
        let mut all: Vec<_> = self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Keeps only the tables named in `names` (the others are stopped once no routing uses
    /// them any more).
    pub fn retain(&self, names: &[&str]) {
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| names.contains(&name.as_str()));
    }

    /// Waits until every table is ready: each gets the handshake timeout.
    ///
    /// # Errors
    /// The first table that did not become ready.
    pub async fn wait_ready(&self) -> Result<(), ProcTableError> {
        for table in self.all() {
            table.wait_ready(self.options.timeouts.handshake).await?;
        }
        Ok(())
    }

    /// Stops every table and waits for their processes, at most `timeout` each.
    pub async fn stop_all(&self, timeout: Duration) {
        let all: Vec<_> = self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, t)| t)
            .collect();
        for table in &all {
            table.shutdown();
        }
        for table in all {
            table.stop(timeout).await;
        }
    }
}

/// How one process ended.
enum End {
    /// It exited or failed; restart it.
    Died(String),
    /// Shutdown was asked (or every handle is gone).
    Shutdown,
}

/// A request waiting for the handshake to finish.
struct Queued {
    op: Operation,
    reply: std_mpsc::SyncSender<Answer>,
    since: Instant,
}

/// The table's thread: starts the process, moves lines, restarts it.
struct Runner {
    name: String,
    command: String,
    options: ProcTableOptions,
    commands: mpsc::UnboundedReceiver<Command>,
    status: watch::Sender<TableStatus>,
    next_id: u32,
}

impl Runner {
    fn run_on_own_runtime(self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(table = %self.name, error = %e, "cannot start the table's runtime");
                self.status.send_replace(TableStatus::Stopped);
                return;
            }
        };
        runtime.block_on(self.run());
    }

    async fn run(mut self) {
        let mut delay = self.options.restart_delay;
        let mut generation = 0;
        loop {
            generation += 1;
            self.status
                .send_replace(TableStatus::Starting { generation });
            let started = Instant::now();
            let reason = match self.run_process(generation).await {
                End::Shutdown => break,
                End::Died(reason) => reason,
            };
            // A process that stayed up long enough starts the delays over.
            if started.elapsed() >= self.options.max_restart_delay {
                delay = self.options.restart_delay;
            }
            tracing::warn!(table = %self.name, command = %self.command, %reason, restart_in = ?delay, "table process down");
            self.status.send_replace(TableStatus::Down {
                generation,
                reason: reason.clone(),
                restart_in: delay,
            });
            if !self.refuse_until(Instant::now() + delay, &reason).await {
                break;
            }
            delay = (delay * 2).min(self.options.max_restart_delay);
        }
        self.status.send_replace(TableStatus::Stopped);
    }

    /// Fails every request until `deadline`; false when shutdown was asked meanwhile.
    async fn refuse_until(&mut self, deadline: Instant, reason: &str) -> bool {
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => return false,
                    Some(Command::Request { reply, .. }) => {
                        let _ = reply.try_send(Answer::Failed(format!("table process down ({reason}); restarting")));
                    }
                },
            }
        }
    }

    fn fresh_id(
        &mut self,
        pending: &HashMap<RequestId, std_mpsc::SyncSender<Answer>>,
    ) -> RequestId {
        loop {
            let id = RequestId(self.next_id);
            self.next_id = self.next_id.wrapping_add(1);
            if !pending.contains_key(&id) {
                return id;
            }
        }
    }

    /// Runs one process until it dies or shutdown is asked.
    async fn run_process(&mut self, generation: u64) -> End {
        let mut child = match crate::child::shell(&self.command).spawn() {
            Ok(c) => c,
            Err(e) => return End::Died(format!("cannot start {}: {e}", self.command)),
        };
        let pid = child.id().unwrap_or_default();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return End::Died("no pipes to the process".into());
        };
        tokio::spawn(log_stderr(self.name.clone(), stderr));
        // Writes go through a task of their own: a process that stops reading must not stop
        // this loop (its requests then time out).
        let (lines_tx, mut lines_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            let mut stdin = stdin;
            while let Some(mut line) = lines_rx.recv().await {
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let mut stdout = BufReader::new(stdout).lines();

        let now = SystemClock.now();
        let mut client =
            match ProcTableClient::new(&self.name, SMTPD_VERSION, now, self.options.timeouts) {
                Ok(c) => c,
                Err(e) => return End::Died(e.to_string()),
            };
        let mut pending: HashMap<RequestId, std_mpsc::SyncSender<Answer>> = HashMap::new();
        let mut queued: Vec<Queued> = Vec::new();
        loop {
            // Everything the client has to say before waiting again: its lines, then its
            // events (an event may queue more lines, hence the loop).
            loop {
                while let Some(line) = client.poll_output() {
                    let _ = lines_tx.send(line);
                }
                let Some(event) = client.poll_event() else {
                    break;
                };
                match event {
                    Event::Ready { services } => {
                        tracing::info!(table = %self.name, pid, ?services, "table ready");
                        self.status.send_replace(TableStatus::Ready {
                            generation,
                            pid,
                            services,
                        });
                        let now = SystemClock.now();
                        for q in std::mem::take(&mut queued) {
                            if q.since.elapsed() >= self.options.timeouts.request {
                                let _ = q.reply.try_send(Answer::TimedOut);
                            } else {
                                self.submit(&mut client, &mut pending, q.op, q.reply, now);
                            }
                        }
                    }
                    Event::Answer { id, answer } => {
                        if let Answer::Failed(reason) = &answer {
                            tracing::warn!(table = %self.name, %reason, "table request failed");
                        }
                        if let Some(reply) = pending.remove(&id) {
                            let _ = reply.try_send(answer);
                        }
                    }
                    Event::HandshakeFailed(e) => {
                        fail_queued(queued, &e.to_string());
                        stop_child(&mut child).await;
                        return End::Died(format!("handshake failed: {e}"));
                    }
                }
            }
            let wait = client
                .poll_timeout()
                .map(|t| t.saturating_since(SystemClock.now()));
            tokio::select! {
                biased;
                line = stdout.next_line() => match line {
                    Ok(Some(line)) => {
                        if let Err(e) = client.handle_line(&line, SystemClock.now()) {
                            tracing::warn!(table = %self.name, error = %e, line = %line, "unusable line from the table");
                        }
                    }
                    Ok(None) | Err(_) => {
                        let reason = exit_reason(&mut child).await;
                        client.fail(&reason);
                        self.answer_all(&mut client, &mut pending);
                        fail_queued(queued, &reason);
                        return End::Died(reason);
                    }
                },
                status = child.wait() => {
                    let reason = match status {
                        Ok(s) => describe_exit(s),
                        Err(e) => e.to_string(),
                    };
                    client.fail(&reason);
                    self.answer_all(&mut client, &mut pending);
                    fail_queued(queued, &reason);
                    return End::Died(reason);
                }
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => {
                        client.fail("the table is shutting down");
                        self.answer_all(&mut client, &mut pending);
                        fail_queued(queued, "the table is shutting down");
                        stop_child(&mut child).await;
                        return End::Shutdown;
                    }
                    Some(Command::Request { op, reply }) => {
                        if client.is_ready() {
                            self.submit(&mut client, &mut pending, op, reply, SystemClock.now());
                        } else {
                            queued.push(Queued { op, reply, since: Instant::now() });
                        }
                    }
                },
                () = sleep_or_never(wait) => client.handle_timeout(SystemClock.now()),
            }
        }
    }

    fn submit(
        &mut self,
        client: &mut ProcTableClient,
        pending: &mut HashMap<RequestId, std_mpsc::SyncSender<Answer>>,
        op: Operation,
        reply: std_mpsc::SyncSender<Answer>,
        now: Time,
    ) {
        let id = self.fresh_id(pending);
        match client.request(id, op, now) {
            Ok(()) => {
                pending.insert(id, reply);
            }
            Err(e) => {
                let reason = match e {
                    RequestError::Unsupported { service, .. } => {
                        format!("the table does not provide the {service} service")
                    }
                    other => other.to_string(),
                };
                let _ = reply.try_send(Answer::Failed(reason));
            }
        }
    }

    /// Hands the failures [`ProcTableClient::fail`] produced to their callers.
    fn answer_all(
        &self,
        client: &mut ProcTableClient,
        pending: &mut HashMap<RequestId, std_mpsc::SyncSender<Answer>>,
    ) {
        while let Some(event) = client.poll_event() {
            if let Event::Answer { id, answer } = event
                && let Some(reply) = pending.remove(&id)
            {
                let _ = reply.try_send(answer);
            }
        }
        for (_, reply) in pending.drain() {
            let _ = reply.try_send(Answer::Failed("the table process stopped".into()));
        }
    }
}

fn fail_queued(queued: Vec<Queued>, reason: &str) {
    for q in queued {
        let _ = q.reply.try_send(Answer::Failed(reason.to_owned()));
    }
}

async fn sleep_or_never(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Logs what the table writes on its standard error, a line at a time.
async fn log_stderr(table: String, stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::warn!(table = %table, "{line}");
    }
}

/// After the process closed its output: how it ended (it is killed if it lingers).
async fn exit_reason(child: &mut tokio::process::Child) -> String {
    match tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
        Ok(Ok(status)) => describe_exit(status),
        Ok(Err(e)) => e.to_string(),
        Err(_) => {
            stop_child(child).await;
            "closed its output".into()
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table answering `lookup` for `source` (`192.0.2.1`) and `fetch` with `192.0.2.2`; it
    /// writes a line on its standard error at start.
    const TABLE: &str = r#"
        while IFS= read -r line; do [ "$line" = "config|ready" ] && break; done
        echo "starting" >&2
        printf 'register|source\nregister|ready\n'
        while IFS='|' read -r kind version stamp name op a b c; do
            case "$op" in
            lookup) printf 'lookup-result|%s|found|192.0.2.1\n' "$b" ;;
            check) printf 'check-result|%s|error|no checks here\n' "$b" ;;
            fetch) printf 'fetch-result|%s|found|192.0.2.2\n' "$b" ;;
            update) printf 'update-result|%s|ok\n' "$a" ;;
            esac
        done
    "#;

    fn command(dir: &std::path::Path, script: &str) -> String {
        let path = dir.join("table.sh");
        std::fs::write(&path, script).unwrap();
        format!("/bin/sh {}", path.display())
    }

    fn wait_ready(table: &ProcTable) {
        // No runtime here: the table's thread has its own.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(table.wait_ready(Duration::from_secs(10)))
            .unwrap();
    }

    #[test]
    fn answers_callers_without_a_runtime_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let table = ProcTable::spawn(
            "nets",
            &command(dir.path(), TABLE),
            ProcTableOptions::default(),
        )
        .unwrap();
        wait_ready(&table);
        assert!(matches!(
            table.status(),
            TableStatus::Ready { generation: 1, ref services, .. } if services == &[Service::Source]
        ));
        assert_eq!(
            table.lookup(Service::Source, "x").unwrap().as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            table.fetch(Service::Source).unwrap().as_deref(),
            Some("192.0.2.2")
        );
        table.update().unwrap();
        // `error` from the table, and a service it did not register: temporary failures.
        let err = table.check(Service::Source, "x").unwrap_err();
        assert!(err.to_string().contains("no checks here"), "{err}");
        let err = table.lookup(Service::Alias, "x").unwrap_err();
        assert!(
            matches!(&err, LookupError::Backend { reason, .. } if reason.contains("alias")),
            "{err}"
        );
        // Many callers at once, from many threads, each get their own answer.
        let table = &table;
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(move || {
                    for _ in 0..20 {
                        assert!(table.lookup(Service::Source, "x").unwrap().is_some());
                    }
                });
            }
        });
        table.shutdown();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(table.stop(Duration::from_secs(5)));
        assert_eq!(table.status(), TableStatus::Stopped);
        assert!(table.lookup(Service::Source, "x").is_err());
    }

    #[test]
    fn a_name_the_protocol_cannot_carry_is_refused() {
        let err = ProcTable::spawn("a|b", "/bin/cat", ProcTableOptions::default()).unwrap_err();
        assert!(matches!(err, ProcTableError::Name { .. }), "{err}");
    }

    #[test]
    fn registry_reuses_running_tables_and_replaces_changed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = command(dir.path(), TABLE);
        let procs = ProcTables::new(ProcTableOptions::default());
        let a = procs.get_or_spawn("nets", &cmd).unwrap();
        let b = procs.get_or_spawn("nets", &cmd).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = procs.get_or_spawn("nets", &format!("{cmd} ")).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(procs.all().len(), 1);
        procs.retain(&[]);
        assert!(procs.get("nets").is_none());
    }
}
