//! The daemon's filters, built from the configuration: the processes, the compiled builtin
//! filters, the greylist, and each listener's chain.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_core::config::{Action, Config, Delivery, FilterKind, FilterRef, ProcExec};
use petrel_core::filter::builtin::Builtin;
use petrel_core::filter::chain::{Chain, Member};
use petrel_core::filter::wire::Handshake;
use petrel_core::filter::{Phase, Subsystem};
use tokio::task::JoinHandle;

use super::event_log::EventLog;
use super::greylist::{Greylist, STATE_FILE};
use super::process::{DEFAULT_TIMEOUT, FilterProc, FilterSpawner, ProcSpec, ProcStatus};
use crate::clock::Clock;
use crate::control::protocol::FilterView;

/// The reference a chain member carries for the greylist (processes are numbered from 0).
pub const GREYLIST: usize = usize::MAX;

/// How long the daemon waits at start for filter processes to register before it accepts
/// clients anyway (sessions then get each filter's failure policy until it is ready).
pub const REGISTER_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
enum Def {
    Builtin(Builtin),
    Proc(usize),
    Greylist,
}

/// Every filter of the configuration, ready for sessions.
pub struct FilterSet {
    procs: Vec<Arc<FilterProc>>,
    defs: HashMap<String, Def>,
    greylist: Option<Greylist>,
    event_log: Option<EventLog>,
    clock: Arc<dyn Clock>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    events: AtomicU64,
    chains: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for FilterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterSet")
            .field("procs", &self.procs.len())
            .finish_non_exhaustive()
    }
}

/// The filter names of a listener's or relay action's `filter …`, chains flattened, in order.
#[must_use]
pub fn flatten(config: &Config, filter: Option<&FilterRef>) -> Vec<String> {
    let names = match filter {
        None => return Vec::new(),
        Some(FilterRef::Named(name)) => vec![name.clone()],
        Some(FilterRef::Chain(names)) => names.clone(),
    };
    let mut out = Vec::new();
    for name in names {
        match config
            .filters
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.kind)
        {
            Some(FilterKind::Chain(members)) => out.extend(members.iter().cloned()),
            _ => out.push(name),
        }
    }
    out
}

impl FilterSet {
    /// The filters of `config`; `None` when it declares none and no event log is wanted. The
    /// greylist keeps its state in `data_dir`, or in memory only when `data_dir` is `None`.
    ///
    /// # Errors
    /// A builtin filter's regular expression does not compile.
    pub async fn from_config(
        config: &Config,
        data_dir: Option<&Path>,
        clock: Arc<dyn Clock>,
        admd: &str,
        event_log: Option<EventLog>,
        spawner: Arc<dyn FilterSpawner>,
    ) -> Result<Option<Arc<FilterSet>>, String> {
        if config.filters.is_empty() && event_log.is_none() {
            return Ok(None);
        }
        let delim = config.smtp.sub_addr_delim;
        // Which subsystems use which filter names.
        let smtp_in: Vec<String> = config
            .listeners
            .iter()
            .flat_map(|l| flatten(config, l.filter.as_ref()))
            .collect();
        let smtp_out: Vec<String> = config
            .actions
            .iter()
            .filter_map(relay_filter)
            .flat_map(|f| flatten(config, Some(f)))
            .collect();
        let mut defs = HashMap::new();
        let mut procs: Vec<Arc<FilterProc>> = Vec::new();
        let mut by_proc_name: HashMap<String, usize> = HashMap::new();
        let mut greylist = None;
        let mut chains = HashMap::new();
        for filter in &config.filters {
            let subsystems = |name: &str| {
                let mut s = Vec::new();
                if smtp_in.iter().any(|n| n == name) {
                    s.push(Subsystem::SmtpIn);
                }
                if smtp_out.iter().any(|n| n == name) {
                    s.push(Subsystem::SmtpOut);
                }
                if s.is_empty() {
                    s.push(Subsystem::SmtpIn);
                }
                s
            };
            let mut add_proc = |proc_name: &str, exec: &ProcExec, subsystems: Vec<Subsystem>| {
                if let Some(&i) = by_proc_name.get(proc_name) {
                    return i;
                }
                let index = procs.len();
                let spec = ProcSpec {
                    name: proc_name.to_owned(),
                    command: exec.command.clone(),
                    policy: exec.on_failure,
                    timeout: exec.timeout.unwrap_or(DEFAULT_TIMEOUT),
                    version: exec.protocol.unwrap_or_default(),
                    subsystems: subsystems.clone(),
                    user: exec.user.clone(),
                    group: exec.group.clone(),
                };
                let handshake = Handshake {
                    smtpd_version: petrel_core::rules::proc_table::SMTPD_VERSION.to_owned(),
                    version: spec.version,
                    session_timeout_secs: 300,
                    subsystems,
                    admd: admd.to_owned(),
                };
                procs.push(FilterProc::new(
                    index,
                    spec,
                    handshake,
                    clock.clone(),
                    spawner.clone(),
                ));
                by_proc_name.insert(proc_name.to_owned(), index);
                index
            };
            let def = match &filter.kind {
                FilterKind::Builtin(b) => Def::Builtin(
                    Builtin::compile(&filter.name, b, delim).map_err(|e| e.to_string())?,
                ),
                FilterKind::ProcExec(exec) => {
                    Def::Proc(add_proc(&filter.name, exec, subsystems(&filter.name)))
                }
                FilterKind::Proc(proc_name) => {
                    let Some(p) = config.procs.iter().find(|p| &p.name == proc_name) else {
                        return Err(format!("filter {}: no proc {proc_name}", filter.name));
                    };
                    Def::Proc(add_proc(proc_name, &p.exec, subsystems(&filter.name)))
                }
                FilterKind::Greylist(settings) => {
                    greylist = Some(match data_dir {
                        Some(dir) => Greylist::open(dir.join(STATE_FILE), settings.clone()).await,
                        None => Greylist::in_memory(settings.clone()),
                    });
                    Def::Greylist
                }
                FilterKind::Chain(members) => {
                    chains.insert(filter.name.clone(), members.clone());
                    continue;
                }
            };
            defs.insert(filter.name.clone(), def);
        }
        Ok(Some(Arc::new(FilterSet {
            procs,
            defs,
            greylist,
            event_log,
            clock,
            tasks: Mutex::new(Vec::new()),
            events: AtomicU64::new(0),
            chains,
        })))
    }

    /// Starts the filter processes and waits (at most [`REGISTER_WAIT`]) for them to register.
    pub async fn start(&self) {
        {
            let mut tasks = self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for p in &self.procs {
                tasks.push(tokio::spawn(p.clone().run()));
            }
        }
        let all = async {
            for p in &self.procs {
                p.wait_registered().await;
            }
        };
        if tokio::time::timeout(REGISTER_WAIT, all).await.is_err() {
            for p in self.procs.iter().filter(|p| !p.is_ready()) {
                tracing::warn!(filter = %p.spec().name, "filter not registered yet: accepting clients anyway; its sessions follow its failure policy");
            }
        }
    }

    /// Stops the filter processes and writes the greylist out.
    pub async fn stop(&self) {
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
            .collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        if let Some(g) = &self.greylist {
            g.save_now().await;
        }
    }

    /// The processes behind these filter names (a relay action's report filters).
    #[must_use]
    pub fn procs_of(&self, names: &[String]) -> Vec<usize> {
        let mut procs: Vec<usize> = names
            .iter()
            .filter_map(|n| match self.defs.get(n) {
                Some(Def::Proc(i)) => Some(*i),
                _ => None,
            })
            .collect();
        procs.dedup();
        procs
    }

    /// The filter names of a `filter …` reference, chains flattened.
    #[must_use]
    pub fn flatten(&self, filter: &FilterRef) -> Vec<String> {
        let names = match filter {
            FilterRef::Named(name) => vec![name.clone()],
            FilterRef::Chain(names) => names.clone(),
        };
        names
            .into_iter()
            .flat_map(|n| self.chains.get(&n).cloned().unwrap_or_else(|| vec![n]))
            .collect()
    }

    /// The filter processes, indexed as chain members refer to them.
    #[must_use]
    pub fn procs(&self) -> &[Arc<FilterProc>] {
        &self.procs
    }

    /// The greylist, when one is configured.
    #[must_use]
    pub fn greylist(&self) -> Option<&Greylist> {
        self.greylist.as_ref()
    }

    /// The event log, when one is wanted.
    #[must_use]
    pub fn event_log(&self) -> Option<&EventLog> {
        self.event_log.as_ref()
    }

    /// Counts a request sent to a filter.
    pub fn count_event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests sent to filters since start.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Every filter process and the greylist, for `petrelctl show filters`.
    #[must_use]
    pub fn views(&self) -> Vec<FilterView> {
        let mut views: Vec<FilterView> = self
            .procs
            .iter()
            .map(|p| {
                let r = p.report();
                FilterView {
                    name: r.name,
                    state: match r.status {
                        ProcStatus::Starting => "starting".into(),
                        ProcStatus::Ready => "running".into(),
                        ProcStatus::Restarting { at } => {
                            format!("down, restarting at {}", rfc3339(at))
                        }
                    },
                    restarts: u64::from(r.restarts),
                    last_error: r.last_error.map(|(at, e)| format!("{} {e}", rfc3339(at))),
                    command: r.command,
                    pid: r.pid,
                    phases: r.phases.iter().map(|p| p.as_str().to_owned()).collect(),
                    policy: if r.fail_open {
                        "fail-open"
                    } else {
                        "fail-closed"
                    }
                    .into(),
                }
            })
            .collect();
        if let Some(g) = &self.greylist {
            let state = g.state();
            views.push(FilterView {
                name: "greylist".into(),
                state: format!(
                    "builtin, {} triplet(s), {} network(s) passed",
                    state.triplet_count(),
                    state.network_count()
                ),
                restarts: 0,
                last_error: None,
                command: String::new(),
                pid: None,
                phases: vec!["rcpt-to".into()],
                policy: "fail-closed".into(),
            });
        }
        views
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The chain of these filter names with what the processes registered now. A process
    /// that has not registered yet is taken to handle every phase, so that its failure policy
    /// applies until it has.
    #[must_use]
    pub fn chain(&self, names: &[String]) -> Chain {
        let mut members = Vec::new();
        for name in names {
            match self.defs.get(name) {
                Some(Def::Builtin(b)) => members.push(Member::builtin(b.clone())),
                Some(Def::Greylist) => {
                    members.push(Member::external(name, GREYLIST, [Phase::RcptTo]))
                }
                Some(Def::Proc(i)) => {
                    let phases: Vec<Phase> = match self.procs[*i].registrations() {
                        Some(r) => r.phases.into_iter().collect(),
                        None => Phase::ALL.to_vec(),
                    };
                    members.push(Member::external(name, *i, phases));
                }
                None => {}
            }
        }
        Chain::new(members)
    }
}

fn relay_filter(action: &Action) -> Option<&FilterRef> {
    match &action.delivery {
        Delivery::Relay(relay) => relay.filter.as_ref(),
        Delivery::Local(_) => None,
    }
}

/// A time as `petrelctl` shows times: `2026-11-22 09:30:00Z`.
fn rfc3339(t: petrel_core::Time) -> String {
    crate::control::render::date(t.as_secs())
}
