//! Tables in the daemon: loading `file:` tables, running `proc:` tables, and reloading them
//! while the daemon runs.
//!
//! | kind | where its entries live | on reload |
//! | --- | --- | --- |
//! | inline (`{ a, b }`, `{ k = v }`) | the configuration | unchanged (the configuration is) |
//! | `file:/path` (or `/path`) | a text file (table(5)), read when routing is built | read again |
//! | `proc:/path/to/prog args` | an external process ([`proc`]) | sent `update` |
//! | the built-ins (`<localhost>`, `<localnames>`, `<getpwnam>` …) | the server's names, `/etc/passwd` | unchanged |
//!
//! AUTH credentials tables are not routing's: [`crate::auth`] re-reads their files by itself
//! whenever they change.
//!
//! # Lookups from synchronous rules
//!
//! The core's [`Lookups`](petrel_core::rules::Lookups) seam is synchronous: rule evaluation
//! and expansion are pure functions that ask tables as they go. `file:` and inline tables are
//! in memory and answer at once. A `proc:` table's answer comes from another process, so a
//! lookup in one blocks its caller until the answer comes or the request times out (see
//! [`proc`] for why that cannot deadlock). The daemon keeps that blocking off its runtime
//! threads: [`SharedRouting::resolve`], which the smtp-in handler calls for each `RCPT TO`,
//! runs the resolution on tokio's blocking pool when the routing has a `proc:` table (and
//! inline otherwise: a table in memory costs less than a trip to the pool). Notifications the
//! scheduler routes go through [`SharedRouting`]'s `Router` implementation, which steps out
//! of the runtime with `block_in_place` on a multi-threaded runtime.
//!
//! # Reloading
//!
//! [`Reloader::reload_tables`] (what `SIGHUP` runs in `petreld`) reads every `file:` table
//! again and builds new routing around the same `proc:` processes; the new routing replaces
//! the old in [`SharedRouting`] in one step. Sessions are not interrupted: each recipient is
//! resolved with the routing current when its `RCPT TO` arrives, so a session that started
//! before the reload sees the new tables from its next recipient on. If a table file cannot
//! be read or parsed, nothing changes — the current routing stays, `proc:` tables are not
//! sent `update` — and the error names the file and line. After a successful swap, every
//! `proc:` table is sent `update`; a table answering `error` is logged and keeps running.
//!
//! [`SharedRouting::resolve`]: crate::routing::SharedRouting::resolve
//! [`SharedRouting`]: crate::routing::SharedRouting

pub mod proc;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use petrel_core::config::{Config, TableSource};
use petrel_core::rules::lookups::{LoadError, LocalNames, StaticLookups};
use thiserror::Error;

pub use proc::{ProcTable, ProcTableError, ProcTableOptions, ProcTables, TableStatus};

use crate::routing::{Routing, RoutingError, RoutingSetup, SharedRouting};

/// Why the tables of a configuration cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TableLoadError {
    /// A `file:` table cannot be read.
    #[error("{path}: cannot read table <{table}>: {reason}")]
    Read {
        /// The table.
        table: String,
        /// The file, as read.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A `file:` table has a malformed line.
    #[error("{path}:{line}: {message} (table <{table}>)", path = .path.display())]
    Parse {
        /// The table.
        table: String,
        /// The file, as read.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A `proc:` table cannot be started.
    #[error(transparent)]
    Proc(#[from] ProcTableError),
    /// Another failure the core reported, in its words.
    #[error("{0}")]
    Other(String),
}

/// The built-in, inline and `file:` tables of `config` (relative paths from `base`), over the
/// server's `local` names.
///
/// # Errors
/// A `file:` table that cannot be read or parsed.
pub fn load_static(
    config: &Config,
    local: &LocalNames,
    base: &Path,
) -> Result<StaticLookups, TableLoadError> {
    StaticLookups::from_config(config, local, |path| {
        std::fs::read_to_string(base.join(path)).map_err(|e| e.to_string())
    })
    .map_err(|e| match e {
        LoadError::Read {
            table,
            path,
            reason,
        } => TableLoadError::Read {
            table,
            path: base.join(path),
            reason,
        },
        LoadError::Parse {
            table,
            path,
            source,
        } => TableLoadError::Parse {
            table,
            path: base.join(path),
            line: source.line,
            message: source.message,
        },
        // A variant added to the core's error later: keep its words.
        other => TableLoadError::Other(other.to_string()),
    })
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// The `file:` tables read again: name and file.
    pub files: Vec<(String, PathBuf)>,
    /// The `proc:` tables that answered `update` with `ok`.
    pub updated: Vec<String>,
    /// The `proc:` tables whose `update` failed, and why (they keep running).
    pub update_failed: Vec<(String, String)>,
}

impl fmt::Display for ReloadReport {
    /// One line, e.g. `file tables <aliases> (/etc/mail/aliases); proc tables updated <users>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(t, p)| format!("<{t}> ({})", p.display()))
            .collect();
        if files.is_empty() {
            write!(f, "no file tables")?;
        } else {
            write!(f, "file tables {}", files.join(", "))?;
        }
        if !self.updated.is_empty() {
            let names: Vec<String> = self.updated.iter().map(|t| format!("<{t}>")).collect();
            write!(f, "; proc tables updated {}", names.join(", "))?;
        }
        if !self.update_failed.is_empty() {
            let failed: Vec<String> = self
                .update_failed
                .iter()
                .map(|(t, why)| format!("<{t}>: {why}"))
                .collect();
            write!(f, "; proc tables failing update {}", failed.join(", "))?;
        }
        Ok(())
    }
}

/// Rebuilds routing from the configuration it was built from, re-reading the tables: the
/// `reload` of the daemon's tables. See the module documentation.
#[derive(Debug)]
pub struct Reloader {
    /// Replaced by [`Reloader::reload_config`].
    config: Mutex<Config>,
    setup: RoutingSetup,
    procs: ProcTables,
    routing: SharedRouting,
    /// Reloads one at a time: two signals in a row must not interleave their swaps.
    busy: Mutex<()>,
}

impl Reloader {
    /// A reloader that builds routing from `config` and `setup` around `procs`, and swaps it
    /// into `routing`.
    #[must_use]
    pub fn new(
        config: Config,
        setup: RoutingSetup,
        procs: ProcTables,
        routing: SharedRouting,
    ) -> Reloader {
        Reloader {
            config: Mutex::new(config),
            setup,
            procs,
            routing,
            busy: Mutex::new(()),
        }
    }

    /// The configuration routing is built from.
    #[must_use]
    pub fn config(&self) -> Config {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Builds routing from a new configuration (its rules, actions and tables, reading the
    /// tables), swaps it in and keeps the configuration for later table reloads. Sessions in
    /// progress go on. Blocks: call it from a blocking context.
    ///
    /// # Errors
    /// The new configuration's routing could not be built (a table file missing or
    /// malformed); the current routing and configuration stay.
    pub fn reload_config(&self, config: Config) -> Result<ReloadReport, RoutingError> {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let routing = match Routing::from_config(&config, &self.setup, &self.procs) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("configuration not reloaded, keeping the current one: {e}");
                return Err(e);
            }
        };
        self.routing.replace(routing);
        let previous = std::mem::replace(
            &mut *self.config.lock().unwrap_or_else(|e| e.into_inner()),
            config,
        );
        let now = self.config();
        if previous.queue.compression != now.queue.compression
            || previous.queue.encryption != now.queue.encryption
        {
            // The store seals files with what it was opened with; switching while files are
            // being written would mix formats under one key.
            tracing::warn!(
                "`queue compression` and `queue encryption` take effect at the next start"
            );
        }
        let report = self.report();
        tracing::info!("configuration reloaded: {report}");
        Ok(report)
    }

    /// Reads every `file:` table again, swaps the new routing in, and sends `update` to every
    /// `proc:` table. Logs one line saying what was reloaded, or the error. Blocks (file reads,
    /// `update` answers): call it from a blocking context.
    ///
    /// # Errors
    /// A table file could not be read or parsed ([`RoutingError::Tables`]); the current
    /// routing stays.
    pub fn reload_tables(&self) -> Result<ReloadReport, RoutingError> {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let config = self.config();
        let routing = match Routing::from_config(&config, &self.setup, &self.procs) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("tables not reloaded, keeping the current ones: {e}");
                return Err(e);
            }
        };
        self.routing.replace(routing);
        let report = self.report();
        tracing::info!("tables reloaded: {report}");
        Ok(report)
    }

    /// Lists the tables read and sends `update` to every `proc:` table.
    fn report(&self) -> ReloadReport {
        let config = self.config();
        let mut report = ReloadReport {
            files: config
                .tables
                .iter()
                .filter_map(|t| match &t.source {
                    TableSource::File(path) => Some((t.name.clone(), self.setup.base.join(path))),
                    _ => None,
                })
                .collect(),
            ..ReloadReport::default()
        };
        for table in self.procs.all() {
            match table.update() {
                Ok(()) => report.updated.push(table.name().to_owned()),
                Err(e) => {
                    tracing::warn!(table = %table.name(), error = %e, "table update failed");
                    report
                        .update_failed
                        .push((table.name().to_owned(), e.to_string()));
                }
            }
        }
        report
    }
}
