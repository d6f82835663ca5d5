//! The daemon's side of the control socket: a unix socket under the state folder, one
//! connection per `petrelctl` command, a JSON [`Request`] line in and [`Response`] lines out.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_core::config::Config;
use petrel_core::queue::{EnvelopeId, MsgId};
use petrel_core::session::client::OutcomeKind;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;

use super::gate::SessionGate;
use super::protocol::{
    Answer, AttemptView, EnvelopeView, ErrorKind, HostView, MessageView, Request, Response,
    StatsView, TraceLine,
};
use crate::queue::scheduler::{EnvelopeStatus, PauseTarget, QueueEvent, SchedulerHandle, Selector};
use crate::queue::{Blocking, Fs, Store};
use crate::tables::Reloader;

/// Re-reads the configuration for `reload` (the file given to `-f`, with the same macros).
pub type ConfigLoader = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// Turns debug logging on (`true`) or off.
pub type LogSwitch = Arc<dyn Fn(bool) -> Result<(), String> + Send + Sync>;

/// What the daemon's binary lends the control socket: how to read the configuration again and
/// how to change the log level. Absent hooks make those commands say they are not available.
#[derive(Clone, Default)]
pub struct ControlHooks {
    /// For `reload`; without it, `reload` reloads the tables only.
    pub reload_config: Option<ConfigLoader>,
    /// For `log verbose|brief`.
    pub log: Option<LogSwitch>,
}

impl std::fmt::Debug for ControlHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlHooks")
            .field("reload_config", &self.reload_config.is_some())
            .field("log", &self.log.is_some())
            .finish()
    }
}

/// Reads a queued message's content, for `show message`: the queue's store, whatever file
/// system it sits on.
pub trait MessageSource: Send + Sync + 'static {
    /// The message's content, or why it cannot be read.
    fn read(
        &self,
        msg: MsgId,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + '_>>;
}

impl<F: Fs, B: Blocking> MessageSource for Store<F, B> {
    fn read(
        &self,
        msg: MsgId,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + '_>> {
        Box::pin(async move { self.read_content(msg).await.map_err(|e| e.to_string()) })
    }
}

/// Everything the control socket acts on.
pub struct ControlContext {
    /// The queue's scheduler.
    pub scheduler: SchedulerHandle,
    /// The queue's files, for `show message`.
    pub store: Arc<dyn MessageSource>,
    /// Rebuilds routing on `reload` and `update table`.
    pub reloader: Arc<Reloader>,
    /// Session counters and `pause smtp`.
    pub gate: Arc<SessionGate>,
    /// The binary's hooks.
    pub hooks: ControlHooks,
    /// When the daemon started, for the uptime.
    pub started: Instant,
    /// The filters, for `show filters`.
    pub filters: Option<Arc<crate::filter::set::FilterSet>>,
}

/// Binds the control socket at `path`: a socket file left by a daemon that is gone is
/// replaced, one that a running daemon answers on is not. The socket is private to the
/// daemon's user (mode 0600).
///
/// # Errors
/// Another daemon answers on `path`, or the socket cannot be created.
pub async fn bind(path: &Path) -> Result<UnixListener, String> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(format!(
                "{}: another daemon is running and answers on this control socket",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(listener)
}

/// Serves the control socket until the task is dropped.
pub async fn serve(listener: UnixListener, ctx: Arc<ControlContext>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, most likely: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &ctx).await {
                tracing::debug!(error = %e, "control connection ended");
            }
        });
    }
}

/// The path of the control socket for a state folder.
#[must_use]
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("petreld.sock")
}

async fn connection(stream: UnixStream, ctx: &ControlContext) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // A request is one short line; a client that sends more is not a petrelctl.
    let n = BufReader::new(read)
        .take(64 * 1024)
        .read_line(&mut line)
        .await?;
    if n == 0 {
        return Ok(());
    }
    let request: Request = match serde_json::from_str(line.trim_end()) {
        Ok(r) => r,
        Err(e) => {
            let response = error(ErrorKind::Usage, format!("malformed request: {e}"));
            return send(&mut write, &response).await;
        }
    };
    tracing::debug!(?request, "control request");
    match request {
        Request::Monitor => monitor(&mut write, ctx).await,
        Request::Trace { id } => trace(&mut write, ctx, id.as_deref()).await,
        request => {
            let response = handle(request, ctx).await;
            send(&mut write, &response).await
        }
    }
}

async fn send(
    write: &mut (impl AsyncWriteExt + Unpin),
    response: &Response,
) -> std::io::Result<()> {
    let mut line = serde_json::to_string(response).map_err(std::io::Error::other)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    write.flush().await
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error {
        message: message.into(),
        kind,
    }
}

fn ok(answer: Answer) -> Response {
    Response::Ok {
        answer: Box::new(answer),
    }
}

fn done(message: impl Into<String>, count: usize) -> Response {
    ok(Answer::Done {
        message: message.into(),
        count: count as u64,
    })
}

/// `all`, a message id (8 hex digits) or an envelope id (16).
fn selector(target: &str) -> Result<Selector, Response> {
    if target == "all" {
        return Ok(Selector::All);
    }
    if let Ok(id) = target.parse::<EnvelopeId>() {
        return Ok(Selector::Envelope(id));
    }
    if let Ok(msg) = target.parse::<MsgId>() {
        return Ok(Selector::Message(msg));
    }
    Err(error(
        ErrorKind::Usage,
        format!("{target:?} is not `all`, a message id (8 hex digits) or an envelope id (16)"),
    ))
}

fn envelope_id(id: &str) -> Result<EnvelopeId, Response> {
    id.parse().map_err(|_| {
        error(
            ErrorKind::Usage,
            format!("{id:?} is not an envelope id (16 hex digits)"),
        )
    })
}

async fn handle(request: Request, ctx: &ControlContext) -> Response {
    match request {
        Request::ShowQueue => {
            let queue = ctx.scheduler.snapshot().await;
            ok(Answer::Queue(queue.iter().map(view).collect()))
        }
        Request::ShowEnvelope { id } => {
            let id = match envelope_id(&id) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let queue = ctx.scheduler.snapshot().await;
            match queue.iter().find(|s| s.envelope.id == id) {
                Some(s) => ok(Answer::Envelope(view(s))),
                None => error(
                    ErrorKind::NotFound,
                    format!("no envelope {id} in the queue"),
                ),
            }
        }
        Request::ShowMessage { id } => show_message(&id, ctx).await,
        Request::ShowStats => ok(Answer::Stats(stats(ctx).await)),
        Request::ShowFilters => ok(Answer::Filters(
            ctx.filters.as_ref().map(|f| f.views()).unwrap_or_default(),
        )),
        Request::ShowHosts => {
            let hosts = ctx.scheduler.hosts().await;
            ok(Answer::Hosts(
                hosts
                    .into_iter()
                    .map(|h| HostView {
                        destination: h.destination,
                        active: h.active as u64,
                        max: h.max as u64,
                        waiting: h.waiting as u64,
                    })
                    .collect(),
            ))
        }
        Request::Schedule { target } => {
            let sel = match selector(&target) {
                Ok(s) => s,
                Err(e) => return e,
            };
            let n = ctx.scheduler.schedule(sel).await;
            if n == 0 && sel != Selector::All {
                return error(
                    ErrorKind::NotFound,
                    format!("nothing to schedule for {target} (not queued, or being delivered)"),
                );
            }
            tracing::info!(%target, envelopes = n, "scheduled by petrelctl");
            done(format!("{n} envelope(s) scheduled"), n)
        }
        Request::Remove { target } => {
            let sel = match selector(&target) {
                Ok(s) => s,
                Err(e) => return e,
            };
            let r = ctx.scheduler.remove(sel).await;
            if r.removed + r.in_delivery == 0 && sel != Selector::All {
                return error(
                    ErrorKind::NotFound,
                    format!("no envelope {target} in the queue"),
                );
            }
            let mut message = format!("{} envelope(s) removed", r.removed);
            if r.in_delivery > 0 {
                message.push_str(&format!(
                    "; {} being delivered now will be removed when the attempt ends",
                    r.in_delivery
                ));
            }
            done(message, r.removed + r.in_delivery)
        }
        Request::Pause { what, id } => pause(ctx, &what, id.as_deref(), true).await,
        Request::Resume { what, id } => pause(ctx, &what, id.as_deref(), false).await,
        Request::Log { verbose } => match &ctx.hooks.log {
            Some(switch) => match switch(verbose) {
                Ok(()) => {
                    let level = if verbose { "verbose" } else { "brief" };
                    tracing::info!("log level set to {level}");
                    done(format!("logging is {level}"), 0)
                }
                Err(e) => error(ErrorKind::Failed, e),
            },
            None => error(ErrorKind::Failed, "this daemon cannot change its log level"),
        },
        Request::UpdateTable { name } => update_table(ctx, &name).await,
        Request::Reload => reload(ctx).await,
        Request::Monitor | Request::Trace { .. } => {
            error(ErrorKind::Usage, "monitor and trace are streams")
        }
    }
}

async fn pause(ctx: &ControlContext, what: &str, id: Option<&str>, paused: bool) -> Response {
    let verb = if paused { "paused" } else { "resumed" };
    let target = match (what, id) {
        ("smtp", None) => {
            ctx.gate.set_paused(paused);
            tracing::info!("smtp sessions {verb}");
            return done(
                format!(
                    "smtp {verb}: new sessions are {}",
                    if paused {
                        "refused with 421"
                    } else {
                        "accepted"
                    }
                ),
                0,
            );
        }
        ("mda", None) => PauseTarget::Local,
        ("mta", None) => PauseTarget::Relay,
        ("envelope", Some(id)) => match envelope_id(id) {
            Ok(id) => PauseTarget::Envelope(id),
            Err(e) => return e,
        },
        ("envelope", None) => {
            return error(ErrorKind::Usage, "pause envelope needs an envelope id");
        }
        (_, _) => {
            return error(
                ErrorKind::Usage,
                format!("cannot pause {what:?}: say mda, mta, smtp or envelope ID"),
            );
        }
    };
    if ctx.scheduler.pause(target, paused).await {
        let name = match target {
            PauseTarget::Local => "mda (local deliveries)".to_owned(),
            PauseTarget::Relay => "mta (relaying)".to_owned(),
            PauseTarget::Envelope(id) => format!("envelope {id}"),
        };
        done(format!("{name} {verb}"), 0)
    } else {
        error(
            ErrorKind::NotFound,
            format!("no envelope {} in the queue", id.unwrap_or_default()),
        )
    }
}

async fn show_message(id: &str, ctx: &ControlContext) -> Response {
    let msg = match (id.parse::<MsgId>(), id.parse::<EnvelopeId>()) {
        (Ok(m), _) => m,
        (_, Ok(e)) => e.msg(),
        _ => {
            return error(
                ErrorKind::Usage,
                format!("{id:?} is not a message id (8 hex digits) or an envelope id (16)"),
            );
        }
    };
    let queue = ctx.scheduler.snapshot().await;
    let envelopes: Vec<String> = queue
        .iter()
        .filter(|s| s.envelope.id.msg() == msg)
        .map(|s| s.envelope.id.to_string())
        .collect();
    if envelopes.is_empty() {
        return error(
            ErrorKind::NotFound,
            format!("no message {msg} in the queue"),
        );
    }
    match ctx.store.read(msg).await {
        Ok(content) => {
            let end = memchr::memmem::find(&content, b"\r\n\r\n").map_or(content.len(), |i| i + 2);
            ok(Answer::Message(MessageView {
                msgid: msg.to_string(),
                size: content.len() as u64,
                headers: String::from_utf8_lossy(&content[..end]).into_owned(),
                envelopes,
            }))
        }
        Err(e) => error(ErrorKind::Failed, format!("cannot read message {msg}: {e}")),
    }
}

async fn stats(ctx: &ControlContext) -> StatsView {
    let c = ctx.scheduler.counters().await;
    StatsView {
        uptime: ctx.started.elapsed().as_secs(),
        sessions: ctx.gate.opened(),
        sessions_active: ctx.gate.active(),
        messages_queued: c.messages_queued,
        delivered: c.delivered,
        deferred: c.deferred,
        failed: c.failed,
        notifications: c.notifications,
        removed: c.removed,
        queue_messages: c.messages,
        queue_envelopes: c.envelopes,
        mda_paused: c.local_paused,
        mta_paused: c.relay_paused,
        smtp_paused: ctx.gate.paused(),
        filter_events: ctx.filters.as_ref().map_or(0, |f| f.events()),
    }
}

async fn update_table(ctx: &ControlContext, name: &str) -> Response {
    let config = ctx.reloader.config();
    if !config.tables.iter().any(|t| t.name == name) {
        return error(
            ErrorKind::NotFound,
            format!("no table {name:?} in the configuration"),
        );
    }
    // Routing is rebuilt as a whole: every file table is read again, which for the named one
    // is exactly `update table`, and the others are unchanged unless their files changed too.
    let reloader = ctx.reloader.clone();
    match tokio::task::spawn_blocking(move || reloader.reload_tables()).await {
        Ok(Ok(_)) => {
            let r = ctx.scheduler.reroute().await;
            done(
                format!(
                    "table {name} updated; queued mail routed again ({} changed, {} failed, {} kept)",
                    r.changed, r.failed, r.kept
                ),
                1,
            )
        }
        Ok(Err(e)) => error(ErrorKind::Failed, format!("table {name} not updated: {e}")),
        Err(e) => error(ErrorKind::Failed, format!("table {name} not updated: {e}")),
    }
}

/// Sections of the configuration that are read at start only.
const RESTART_ONLY: &[&str] = &[
    "listen ",
    "pki ",
    "ca ",
    "queue ",
    "smtp ",
    "mta ",
    "bounce ",
    "resolver ",
];

fn restart_only(config: &Config) -> Vec<String> {
    config
        .to_string()
        .lines()
        .filter(|l| RESTART_ONLY.iter().any(|k| l.starts_with(k)))
        .map(str::to_owned)
        .collect()
}

async fn reload(ctx: &ControlContext) -> Response {
    let reloader = ctx.reloader.clone();
    let loader = ctx.hooks.reload_config.clone();
    let result = tokio::task::spawn_blocking(move || match loader {
        Some(load) => {
            let new = load()?;
            let needs_restart = restart_only(&reloader.config()) != restart_only(&new);
            reloader
                .reload_config(new)
                .map(|report| (report, needs_restart, true))
                .map_err(|e| e.to_string())
        }
        None => reloader
            .reload_tables()
            .map(|report| (report, false, false))
            .map_err(|e| e.to_string()),
    })
    .await;
    match result {
        Ok(Ok((report, needs_restart, whole))) => {
            let r = ctx.scheduler.reroute().await;
            let mut message = format!(
                "{} reloaded ({report}); queued mail routed again ({} changed, {} failed, {} kept)",
                if whole { "configuration" } else { "tables" },
                r.changed,
                r.failed,
                r.kept
            );
            if needs_restart {
                message.push_str(
                    "; changes to listen, pki, ca, queue, smtp, mta, bounce or resolver lines take effect at the next start",
                );
                tracing::warn!("configuration changes that need a restart were not applied");
            }
            done(message, r.changed)
        }
        Ok(Err(e)) => error(
            ErrorKind::Failed,
            format!("not reloaded, the current configuration stays: {e}"),
        ),
        Err(e) => error(ErrorKind::Failed, format!("not reloaded: {e}")),
    }
}

fn secs(t: petrel_core::Time) -> u64 {
    t.as_secs()
}

/// The view of a queued envelope.
fn view(s: &EnvelopeStatus) -> EnvelopeView {
    let e = &s.envelope;
    let state = if s.in_flight {
        "in-delivery"
    } else if s.paused {
        "paused"
    } else {
        "queued"
    };
    EnvelopeView {
        id: e.id.to_string(),
        msgid: e.id.msg().to_string(),
        sender: e.sender.clone(),
        rcpt: e.rcpt.clone(),
        dest: e.dest.clone(),
        action: e.action.clone(),
        state: state.to_owned(),
        created: secs(e.created),
        attempts: e.attempts,
        last_try: e.last_try.map(secs),
        next_try: secs(e.next_try),
        expires: secs(e.expires),
        last_error: e.last_error.clone(),
        history: s
            .history
            .iter()
            .map(|h| AttemptView {
                at: secs(h.at),
                result: outcome(h.kind).to_owned(),
                reply: h.reply.clone(),
                remote: h.remote_mta.clone(),
            })
            .collect(),
    }
}

fn outcome(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Delivered => "delivered",
        OutcomeKind::Temporary => "temporary",
        OutcomeKind::Permanent => "permanent",
    }
}

async fn monitor(
    write: &mut (impl AsyncWriteExt + Unpin),
    ctx: &ControlContext,
) -> std::io::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        send(write, &ok(Answer::Stats(stats(ctx).await))).await?;
    }
}

async fn trace(
    write: &mut (impl AsyncWriteExt + Unpin),
    ctx: &ControlContext,
    filter: Option<&str>,
) -> std::io::Result<()> {
    let filter = match filter.map(selector) {
        None => Selector::All,
        Some(Ok(sel)) => sel,
        Some(Err(e)) => return send(write, &e).await,
    };
    let mut events = ctx.scheduler.subscribe();
    loop {
        let line = match events.recv().await {
            Ok(event) => trace_line(&event, filter),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(TraceLine {
                at: now_millis(),
                event: "lagged".into(),
                id: None,
                detail: format!("{n} events were missed"),
            }),
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        if let Some(line) = line {
            send(write, &ok(Answer::Trace(line))).await?;
        }
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn trace_line(event: &QueueEvent, filter: Selector) -> Option<TraceLine> {
    let (name, msg, id, detail) = match event {
        QueueEvent::Queued(msg, n) => ("queued", *msg, msg.to_string(), format!("{n} envelope(s)")),
        QueueEvent::Delivered(id) => ("delivered", id.msg(), id.to_string(), String::new()),
        QueueEvent::Deferred(id, at) => (
            "deferred",
            id.msg(),
            id.to_string(),
            format!("next try at {at}"),
        ),
        QueueEvent::Failed(id) => ("failed", id.msg(), id.to_string(), String::new()),
        QueueEvent::Notified(id, kind) => (
            "notified",
            id.msg(),
            id.to_string(),
            format!("{kind:?} notification queued for the sender"),
        ),
        QueueEvent::Removed(msg) => (
            "removed",
            *msg,
            msg.to_string(),
            "message files removed".into(),
        ),
    };
    let wanted = match filter {
        Selector::All => true,
        Selector::Message(m) => m == msg,
        Selector::Envelope(e) => e.to_string() == id || (e.msg() == msg && id.len() == 8),
    };
    wanted.then(|| TraceLine {
        at: now_millis(),
        event: name.to_owned(),
        id: Some(id),
        detail,
    })
}
