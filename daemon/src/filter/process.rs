//! Filter processes: starting them, the configuration handshake, moving lines, and keeping
//! them running.
//!
//! Each `filter NAME proc-exec "…"` and each `proc NAME "…"` is one [`FilterProc`], shared by
//! every session whose listener uses it. A supervisor task
//!
//! 1. starts `/bin/sh -c "exec COMMAND"` (a command without a `/` in its first word is looked
//!    for in `/usr/libexec/opensmtpd` first, where Debian and OpenBSD install filters) in a
//!    process group of its own, with pipes on its standard input, output and error;
//! 2. sends the `config|…` block and records the `register|…` lines up to `register|ready`;
//! 3. routes every `filter-result` and `filter-dataline` to the session it names (a session
//!    attaches a channel with [`FilterProc::attach`]); report events go the other way with
//!    [`FilterProc::send`];
//! 4. logs what the process writes on its standard error, as OpenSMTPD does;
//! 5. when the process exits, writes a line that is not the protocol, or a session finds it
//!    hung ([`FilterProc::fail`]): kills it, tells every attached session that it failed, and
//!    starts it again after a delay that doubles at each failure (1 s up to 60 s; back to 1 s
//!    once a process has stayed up a minute).
//!
//! # Where Petrel differs from OpenSMTPD
//!
//! OpenSMTPD shuts the whole daemon down when a filter exits or breaks the protocol, and waits
//! for answers without a deadline. Petrel isolates the filter instead: sessions it serves fail
//! temporarily (or skip it, with `fail-open`), nothing is lost, and the filter is restarted.
//! Standard input and output are two pipes rather than one socket; filters read one and write
//! the other either way.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_core::Time;
use petrel_core::filter::chain::FailurePolicy;
use petrel_core::filter::wire::{self, FilterLine, Handshake, Registration};
use petrel_core::filter::{EventName, Phase, Response, Subsystem, Version};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Notify, mpsc, watch};

use crate::clock::Clock;

/// Where Debian and OpenBSD install filters; relative commands are looked for here first.
pub const LIBEXEC: &str = "/usr/libexec/opensmtpd";

/// How long a process may take to register after it started.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// The first restart delay, doubled at each failure up to [`MAX_RESTART_DELAY`].
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// The longest restart delay.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);
/// A process that stayed up this long starts again from the first delay.
const STABLE: Duration = Duration::from_secs(60);
/// Why a process ended when a session had it killed ([`FilterProc::fail`] records the cause).
const KILLED: &str = "killed after a failure";
/// The default time a filter may take to answer a request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a filter process is and how it is run.
#[derive(Clone, Debug)]
pub struct ProcSpec {
    /// The name: the filter's for `proc-exec`, the proc's for `proc`.
    pub name: String,
    /// The command line.
    pub command: String,
    /// What sessions get while it is down.
    pub policy: FailurePolicy,
    /// How long it may take to answer.
    pub timeout: Duration,
    /// The protocol version it is spoken to in.
    pub version: Version,
    /// The subsystems it serves (smtp-in for listeners, smtp-out for relay actions).
    pub subsystems: Vec<Subsystem>,
    /// `user U`: run as this user (when the daemon runs as root).
    pub user: Option<String>,
    /// `group G`: with this group (the user's primary group when unset).
    pub group: Option<String>,
}

/// What a process says to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromProc {
    /// A `filter-result`.
    Result {
        /// The token it echoes.
        token: u64,
        /// The decision.
        response: Response,
    },
    /// A `filter-dataline` (the line as sent, still dot-stuffed).
    DataLine {
        /// The token it echoes.
        token: u64,
        /// The line.
        line: Vec<u8>,
    },
    /// The process failed: nothing more will come from this instance.
    Failed,
}

/// A message for a session: which process (its index among the daemon's filter processes) and
/// what it said.
pub type Delivery = (usize, FromProc);

/// What a process registered for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registrations {
    /// Phases it filters.
    pub phases: BTreeSet<Phase>,
    /// Report events it wants, per subsystem; `None` in the inner option means every event.
    pub reports: HashMap<Subsystem, Option<HashSet<EventName>>>,
}

impl Registrations {
    fn add(&mut self, r: Registration) {
        match r {
            Registration::Filter { phase } => {
                self.phases.insert(phase);
            }
            Registration::Report { subsystem, event } => {
                let entry = self
                    .reports
                    .entry(subsystem)
                    .or_insert_with(|| Some(HashSet::new()));
                match (entry.as_mut(), event) {
                    (_, None) => *entry = None,
                    (Some(set), Some(e)) => {
                        set.insert(e);
                    }
                    (None, Some(_)) => {}
                }
            }
            Registration::Ready => {}
        }
    }

    /// True when the process registered for `event` of `subsystem`.
    #[must_use]
    pub fn wants(&self, subsystem: Subsystem, event: EventName) -> bool {
        match self.reports.get(&subsystem) {
            None => false,
            Some(None) => true,
            Some(Some(set)) => set.contains(&event),
        }
    }
}

/// The state of a process, as `petrelctl show filters` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcStatus {
    /// Started, handshake not finished.
    Starting,
    /// Registered and serving.
    Ready,
    /// Down, to be started again at this time.
    Restarting {
        /// When it will be started again.
        at: Time,
    },
}

/// A snapshot of a process for `petrelctl show filters`.
#[derive(Clone, Debug)]
pub struct ProcReport {
    /// Its name.
    pub name: String,
    /// Its command.
    pub command: String,
    /// Its state.
    pub status: ProcStatus,
    /// Its process id, while it runs.
    pub pid: Option<u32>,
    /// Times it was started again after a failure.
    pub restarts: u32,
    /// The last failure and when it happened.
    pub last_error: Option<(Time, String)>,
    /// Phases it registered.
    pub phases: Vec<Phase>,
    /// Whether sessions skip it when it fails.
    pub fail_open: bool,
}

struct State {
    status: ProcStatus,
    registrations: Option<Registrations>,
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    pid: Option<u32>,
    restarts: u32,
    last_error: Option<(Time, String)>,
}

/// One filter process, shared by the sessions that use it. See the [module
/// documentation](self).
pub struct FilterProc {
    /// Its index among the daemon's filter processes.
    pub index: usize,
    spec: ProcSpec,
    handshake: Handshake,
    state: Mutex<State>,
    /// Ordered, so that a failure reaches the sessions in the same order on every run.
    sessions: Mutex<BTreeMap<u64, mpsc::UnboundedSender<Delivery>>>,
    kill: Notify,
    clock: Arc<dyn Clock>,
    spawner: Arc<dyn FilterSpawner>,
    /// Bumped each time the process (re)registers, so chains can be rebuilt.
    registered: watch::Sender<u64>,
}

impl std::fmt::Debug for FilterProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterProc")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl FilterProc {
    /// A process to be started by [`FilterProc::run`].
    #[must_use]
    pub fn new(
        index: usize,
        spec: ProcSpec,
        handshake: Handshake,
        clock: Arc<dyn Clock>,
        spawner: Arc<dyn FilterSpawner>,
    ) -> Arc<FilterProc> {
        Arc::new(FilterProc {
            index,
            spec,
            handshake,
            state: Mutex::new(State {
                status: ProcStatus::Starting,
                registrations: None,
                writer: None,
                pid: None,
                restarts: 0,
                last_error: None,
            }),
            sessions: Mutex::new(BTreeMap::new()),
            kill: Notify::new(),
            clock,
            spawner,
            registered: watch::channel(0).0,
        })
    }

    /// Its settings.
    #[must_use]
    pub fn spec(&self) -> &ProcSpec {
        &self.spec
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What it registered; `None` until its first handshake completes.
    #[must_use]
    pub fn registrations(&self) -> Option<Registrations> {
        self.state().registrations.clone()
    }

    /// True while it is registered and running.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.state().status == ProcStatus::Ready
    }

    /// Resolves once the process has registered (at least once).
    pub async fn wait_registered(&self) {
        let mut rx = self.registered.subscribe();
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    /// Routes what the process says about `session` to `tx`.
    pub fn attach(&self, session: u64, tx: mpsc::UnboundedSender<Delivery>) {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(session, tx);
    }

    /// Stops routing to `session`.
    pub fn detach(&self, session: u64) {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&session);
    }

    /// Sends one line (without its newline). False when the process is not running.
    pub fn send(&self, line: &[u8]) -> bool {
        let state = self.state();
        if state.status != ProcStatus::Ready {
            return false;
        }
        let Some(writer) = &state.writer else {
            return false;
        };
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        writer.send(bytes).is_ok()
    }

    /// A session found the process hung or broken: kill it (it is restarted).
    pub fn fail(&self, reason: &str) {
        tracing::warn!(filter = %self.spec.name, reason, "filter failed");
        self.record_error(reason);
        self.kill.notify_one();
    }

    fn record_error(&self, reason: &str) {
        let now = self.clock.now();
        self.state().last_error = Some((now, reason.to_owned()));
    }

    /// A snapshot for `petrelctl show filters`.
    #[must_use]
    pub fn report(&self) -> ProcReport {
        let state = self.state();
        ProcReport {
            name: self.spec.name.clone(),
            command: self.spec.command.clone(),
            status: state.status.clone(),
            pid: state.pid,
            restarts: state.restarts,
            last_error: state.last_error.clone(),
            phases: state
                .registrations
                .as_ref()
                .map(|r| r.phases.iter().copied().collect())
                .unwrap_or_default(),
            fail_open: self.spec.policy == FailurePolicy::Open,
        }
    }

    /// Tells every attached session that the process failed.
    fn fail_sessions(&self) {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for tx in sessions.values() {
            let _ = tx.send((self.index, FromProc::Failed));
        }
    }

    fn route(&self, session: u64, message: FromProc) {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A session that is gone is silently ignored, as in OpenSMTPD.
        if let Some(tx) = sessions.get(&session) {
            let _ = tx.send((self.index, message));
        }
    }

    /// Runs the process for as long as the daemon runs: start, handshake, serve, restart.
    pub async fn run(self: Arc<Self>) {
        let mut delay = RESTART_DELAY;
        loop {
            let started = tokio::time::Instant::now();
            let reason = self.run_once().await;
            {
                let mut state = self.state();
                state.writer = None;
                state.pid = None;
            }
            self.fail_sessions();
            if started.elapsed() >= STABLE {
                delay = RESTART_DELAY;
            }
            let at = self.clock.now() + delay;
            tracing::warn!(
                filter = %self.spec.name, reason = %reason, restart_in = ?delay,
                "filter process down; sessions it serves fail {}",
                if self.spec.policy == FailurePolicy::Open { "open (it is skipped)" } else { "closed (temporary failure)" }
            );
            if reason != KILLED {
                // A kill was asked for with its own reason, already recorded.
                self.record_error(&reason);
            }
            {
                let mut state = self.state();
                state.status = ProcStatus::Restarting { at };
                state.restarts += 1;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RESTART_DELAY);
            self.state().status = ProcStatus::Starting;
        }
    }

    /// Runs one instance of the process; returns why it ended.
    async fn run_once(&self) -> String {
        let FilterIo {
            mut input,
            output: stdout,
            errors,
            mut handle,
        } = match self.spawner.spawn(&self.spec) {
            Ok(io) => io,
            Err(why) => return why,
        };
        let pid = handle.pid();
        self.state().pid = pid;
        if let Some(stderr) = errors {
            tokio::spawn(log_stderr(self.spec.name.clone(), stderr));
        }
        let (writer, mut lines) = mpsc::unbounded_channel::<Vec<u8>>();
        // Writes go through a task of their own: a filter that stops reading must not stop
        // the sessions (they time out instead).
        let write_task = tokio::spawn(async move {
            while let Some(first) = lines.recv().await {
                let mut batch = first;
                while let Ok(more) = lines.try_recv() {
                    batch.extend_from_slice(&more);
                }
                if input.write_all(&batch).await.is_err() || input.flush().await.is_err() {
                    return;
                }
            }
        });
        for line in wire::handshake_lines(&self.handshake) {
            let mut bytes = line.into_bytes();
            bytes.push(b'\n');
            let _ = writer.send(bytes);
        }
        let mut reader = BufReader::new(stdout);
        let reason = match self.handshake_phase(&mut reader).await {
            Err(reason) => reason,
            Ok(registrations) => {
                tracing::info!(
                    filter = %self.spec.name, pid = pid.unwrap_or(0),
                    phases = ?registrations.phases, "filter registered"
                );
                {
                    let mut state = self.state();
                    state.registrations = Some(registrations);
                    state.writer = Some(writer.clone());
                    state.status = ProcStatus::Ready;
                }
                self.registered.send_modify(|n| *n += 1);
                self.serve(&mut reader).await
            }
        };
        drop(writer);
        write_task.abort();
        handle.stop().await;
        reason
    }

    async fn handshake_phase(
        &self,
        reader: &mut BufReader<BoxRead>,
    ) -> Result<Registrations, String> {
        let mut registrations = Registrations::default();
        let handshake = async {
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) => return Err("exited during its handshake".to_owned()),
                    Err(e) => return Err(format!("cannot read: {e}")),
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                match wire::parse_filter_line(&text) {
                    Ok(FilterLine::Register(Registration::Ready)) => return Ok(()),
                    Ok(FilterLine::Register(r)) => registrations.add(r),
                    Ok(other) => {
                        return Err(format!("`{}` before register|ready", other.to_line()));
                    }
                    Err(e) => return Err(format!("handshake: {e}")),
                }
            }
        };
        // Biased: tokio otherwise picks among ready branches at random, and the simulator
        // replays a run only if every choice is the same.
        tokio::select! {
            biased;
            r = handshake => r.map(|()| registrations),
            () = tokio::time::sleep(HANDSHAKE_TIMEOUT) => Err("no register|ready within 30 seconds".into()),
            () = self.kill.notified() => Err("stopped".into()),
        }
    }

    async fn serve(&self, reader: &mut BufReader<BoxRead>) -> String {
        let mut line = Vec::new();
        loop {
            line.clear();
            tokio::select! {
                biased;
                read = reader.read_until(b'\n', &mut line) => match read {
                    Ok(0) => return "exited".into(),
                    Err(e) => return format!("cannot read: {e}"),
                    Ok(_) => {
                        if let Err(reason) = self.dispatch(&line) {
                            return reason;
                        }
                    }
                },
                () = self.kill.notified() => return KILLED.into(),
            }
        }
    }

    /// One line from the process, after its handshake.
    fn dispatch(&self, raw: &[u8]) -> Result<(), String> {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Data-lines are bytes: message content need not be UTF-8.
        if let Some((session, token, data)) = parse_dataline(line) {
            self.route(
                session,
                FromProc::DataLine {
                    token,
                    line: data.to_vec(),
                },
            );
            return Ok(());
        }
        let text = String::from_utf8_lossy(line);
        match wire::parse_filter_line(&text) {
            Ok(FilterLine::Result {
                session,
                token,
                response,
            }) => {
                self.route(session, FromProc::Result { token, response });
                Ok(())
            }
            Ok(FilterLine::Report { message, .. }) => {
                tracing::info!(filter = %self.spec.name, %message, "filter report");
                Ok(())
            }
            Ok(other) => Err(format!("unexpected line `{}`", other.to_line())),
            Err(e) => Err(format!("protocol error: {e}")),
        }
    }
}

/// The user and group a filter runs as: `None` when none is configured, or when the daemon is
/// not root (it cannot change identity; the filter then runs as the daemon's user).
fn identity(user: Option<&str>, group: Option<&str>) -> Result<Option<(u32, u32)>, String> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let field = |file: &str, name: &str, at: usize| -> Result<Option<u32>, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        Ok(text.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > at && f[0] == name)
                .then(|| f[at].parse().ok())
                .flatten()
        }))
    };
    let (uid, primary) = match user {
        Some(u) => {
            let uid = field("/etc/passwd", u, 2)?.ok_or(format!("no user {u}"))?;
            (uid, field("/etc/passwd", u, 3)?)
        }
        None => (0, None),
    };
    let gid = match group {
        Some(g) => field("/etc/group", g, 2)?.ok_or(format!("no group {g}"))?,
        None => primary.unwrap_or(0),
    };
    Ok(Some((uid, gid)))
}

/// `filter-dataline|SESSION|TOKEN|LINE` read as bytes.
fn parse_dataline(line: &[u8]) -> Option<(u64, u64, &[u8])> {
    let rest = line.strip_prefix(b"filter-dataline|")?;
    let mut parts = rest.splitn(3, |&b| b == b'|');
    let session = hex(parts.next()?)?;
    let token = hex(parts.next()?)?;
    Some((session, token, parts.next()?))
}

fn hex(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok()
}

/// The command as run: a first word without `/` names a program in [`LIBEXEC`] when one is
/// there (as OpenSMTPD runs filters), otherwise it is looked up in `PATH` by the shell.
#[must_use]
pub fn resolve_command(command: &str) -> String {
    let command = command.trim_start();
    let first = command.split_whitespace().next().unwrap_or("");
    if !first.is_empty() && !first.contains('/') {
        let candidate = std::path::Path::new(LIBEXEC).join(first);
        if candidate.is_file() {
            return format!("{}{}", candidate.display(), &command[first.len()..]);
        }
    }
    command.to_owned()
}

async fn log_stderr(filter: String, stderr: BoxRead) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::warn!(filter = %filter, "{line}");
    }
}

/// Bytes from a filter.
pub type BoxRead = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
/// Bytes to a filter.
pub type BoxWrite = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// A running filter, as its supervisor holds it.
pub trait FilterHandle: Send {
    /// Its process id, when it is a process.
    fn pid(&self) -> Option<u32>;
    /// Stops it for good.
    fn stop(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

/// A started filter: its input, its output, its error output and a handle to stop it.
pub struct FilterIo {
    /// What the daemon writes to (the filter's standard input).
    pub input: BoxWrite,
    /// What the daemon reads (the filter's standard output).
    pub output: BoxRead,
    /// The filter's complaints, logged line by line (standard error).
    pub errors: Option<BoxRead>,
    /// Stops it.
    pub handle: Box<dyn FilterHandle>,
}

/// Starts filters: processes on the real machine, simulated filters in the simulator.
pub trait FilterSpawner: Send + Sync {
    /// Starts the filter `spec` describes.
    ///
    /// # Errors
    /// It cannot be started, in words.
    fn spawn(&self, spec: &ProcSpec) -> Result<FilterIo, String>;
}

/// Filters as processes: `/bin/sh -c "exec COMMAND"` in a process group of its own, as the
/// configured user when the daemon is root.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessSpawner;

impl FilterSpawner for ProcessSpawner {
    fn spawn(&self, spec: &ProcSpec) -> Result<FilterIo, String> {
        let mut command = crate::child::shell(&resolve_command(&spec.command));
        if let Some((uid, gid)) = identity(spec.user.as_deref(), spec.group.as_deref())? {
            command.uid(uid).gid(gid);
        }
        let mut child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("no pipes to the process".into());
        };
        Ok(FilterIo {
            input: Box::new(stdin),
            output: Box::new(stdout),
            errors: Some(Box::new(stderr)),
            handle: Box::new(ChildHandle(child)),
        })
    }
}

struct ChildHandle(tokio::process::Child);

impl FilterHandle for ChildHandle {
    fn pid(&self) -> Option<u32> {
        self.0.id()
    }

    fn stop(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        // The whole group: a filter started through a wrapper leaves no orphan.
        Box::pin(crate::child::stop(&mut self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_are_read_as_bytes() {
        assert_eq!(
            parse_dataline(b"filter-dataline|00000000000000ab|0000000000000001|..x|y\xff"),
            Some((0xab, 1, &b"..x|y\xff"[..]))
        );
        assert_eq!(parse_dataline(b"filter-dataline|zz|1|x"), None);
        assert_eq!(parse_dataline(b"filter-result|1|2|proceed"), None);
    }

    #[test]
    fn registrations_collect_phases_and_reports() {
        let mut r = Registrations::default();
        r.add(Registration::Filter {
            phase: Phase::RcptTo,
        });
        r.add(Registration::Report {
            subsystem: Subsystem::SmtpIn,
            event: Some(EventName::LinkConnect),
        });
        assert!(r.wants(Subsystem::SmtpIn, EventName::LinkConnect));
        assert!(!r.wants(Subsystem::SmtpIn, EventName::TxMail));
        assert!(!r.wants(Subsystem::SmtpOut, EventName::LinkConnect));
        r.add(Registration::Report {
            subsystem: Subsystem::SmtpIn,
            event: None,
        });
        assert!(r.wants(Subsystem::SmtpIn, EventName::TxMail));
        assert_eq!(r.phases, BTreeSet::from([Phase::RcptTo]));
    }

    #[test]
    fn relative_commands_keep_their_arguments() {
        assert_eq!(resolve_command("/bin/cat -u"), "/bin/cat -u");
        assert_eq!(resolve_command("no-such-filter -x"), "no-such-filter -x");
    }
}
