//! Routing in the daemon: the core's rules and expansion over the daemon's lookups (tables read
//! from disk, the system's user database, `.forward` and `:include:` files).
//!
//! A recipient is resolved once, when the client gives it (so a refusal is the RCPT reply),
//! into deliveries: an action and, for local actions, the target (mailbox, file, command) and
//! the identity it runs with. Each delivery becomes one envelope; the target travels in the
//! envelope in the encoding of [`encode_target`].
//!
//! Routing is replaced as a whole while the daemon runs ([`SharedRouting`]): a reload of the
//! tables builds new routing and swaps it in (see [`crate::tables`]). Tables that live in other
//! processes (`proc:`) make lookups block; [`SharedRouting::resolve`] keeps that off the
//! runtime's threads.
//!
//! # Routing queued envelopes again
//!
//! When the configuration or its tables change, envelopes already queued were routed with the
//! old ones. [`Routing::reroute`] resolves an envelope's recipient again from what the envelope
//! kept — the original `RCPT TO`, the sender, and the facts of the session it came from
//! ([`Origin`](petrel_core::queue::envelope::Origin): address, rDNS name, HELO, authenticated
//! user, TLS, listener tag) — exactly as the session would be resolved now, and
//! [`Resolved::apply_to`] turns each resulting delivery into an envelope. A recipient that
//! expanded into several deliveries was queued as several envelopes with the same `rcpt`: the
//! scheduler re-routes such a group once, and replaces the whole group with the result. A 5xx
//! refusal means the recipient is no longer deliverable (bounce it); a 4xx means routing could
//! not be decided now (a table is down): keep the envelopes as they are and try again later.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petrel_core::Time;
use petrel_core::config::{self, Config, TableSource};
use petrel_core::queue::{Envelope, EnvelopeId};
use petrel_core::rules::lookups::{ForwardFile, LocalNames, LookupError, Lookups, UserInfo};
use petrel_core::rules::resolve::{Recipient, RunAs, Target};
use petrel_core::rules::router::{Ruleset, RulesetError, SessionFacts, TEMPORARY_FAILURE};
use petrel_core::rules::service::Service;
use petrel_core::rules::{MailAddr, StaticLookups, resolve};
use petrel_core::smtp::Reply;
use thiserror::Error;

use crate::mta::deliver::TlsProfile;
use crate::queue::scheduler::{InternalRoute, Router};
use crate::tables::{self, ProcTable, ProcTables, TableLoadError};
use crate::tls::OutgoingTls;

/// One delivery a recipient resolved to, ready to be written into an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The action.
    pub action: String,
    /// The address delivered for (`%{dest}`).
    pub dest: String,
    /// The encoded target of a local action; `None` for relays.
    pub target: Option<String>,
}

impl Resolved {
    /// The envelope for this delivery, made from `template` (an envelope of the same recipient,
    /// when re-routing): everything is kept — message, sender, recipient, origin, DSN
    /// parameters, dates, attempts — but the id, which is `id`, and where it goes: `dest`,
    /// `action` and `target` are this delivery's.
    #[must_use]
    pub fn apply_to(&self, template: &Envelope, id: EnvelopeId) -> Envelope {
        let mut e = template.clone();
        e.id = id;
        e.dest.clone_from(&self.dest);
        e.action = Some(self.action.clone());
        e.target.clone_from(&self.target);
        e
    }
}

/// The daemon's lookups: in-memory tables, `proc:` tables, and the system around them.
#[derive(Debug)]
pub struct DaemonLookups {
    tables: StaticLookups,
    procs: Vec<Arc<ProcTable>>,
    passwd: PathBuf,
}

impl DaemonLookups {
    /// Lookups over `tables`, with system users read from `/etc/passwd`.
    #[must_use]
    pub fn new(tables: StaticLookups) -> DaemonLookups {
        DaemonLookups {
            tables,
            procs: Vec::new(),
            passwd: PathBuf::from("/etc/passwd"),
        }
    }

    /// Adds a `proc:` table, answering for its name (before any in-memory table of that name).
    #[must_use]
    pub fn with_proc_table(mut self, table: Arc<ProcTable>) -> DaemonLookups {
        self.procs.retain(|t| t.name() != table.name());
        self.procs.push(table);
        self
    }

    /// The `proc:` tables.
    #[must_use]
    pub fn proc_tables(&self) -> &[Arc<ProcTable>] {
        &self.procs
    }

    fn proc(&self, name: &str) -> Option<&ProcTable> {
        // A handful of tables at most: a scan beats a map.
        self.procs.iter().find(|t| t.name() == name).map(|t| &**t)
    }
}

fn file_error(path: &str, e: &io::Error) -> LookupError {
    LookupError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

impl Lookups for DaemonLookups {
    fn check(&self, table: &str, service: Service, key: &str) -> Result<bool, LookupError> {
        if table == petrel_core::rules::lookups::GETPWNAM {
            return Ok(self.user(key)?.is_some());
        }
        if let Some(proc) = self.proc(table) {
            return proc.check(service, key);
        }
        self.tables.check(table, service, key)
    }

    fn lookup(
        &self,
        table: &str,
        service: Service,
        key: &str,
    ) -> Result<Option<String>, LookupError> {
        if table == petrel_core::rules::lookups::GETPWNAM {
            return Ok(self.user(key)?.map(|u| {
                format!(
                    "{}:{}:{}",
                    u.uid.map_or("-".into(), |v| v.to_string()),
                    u.gid.map_or("-".into(), |v| v.to_string()),
                    u.home
                )
            }));
        }
        if let Some(proc) = self.proc(table) {
            return proc.lookup(service, key);
        }
        self.tables.lookup(table, service, key)
    }

    fn user(&self, name: &str) -> Result<Option<UserInfo>, LookupError> {
        if let Some(u) = self.tables.user(name)? {
            return Ok(Some(u));
        }
        // The user database as a file: no NSS modules, which is what an MTA reading
        // /etc/passwd from a chroot or a container sees as well.
        let text = match std::fs::read_to_string(&self.passwd) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LookupError::Users(e.to_string())),
        };
        Ok(text.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 7 && f[0] == name).then(|| {
                UserInfo::account(
                    name,
                    f[2].parse().unwrap_or(u32::MAX),
                    f[3].parse().unwrap_or(u32::MAX),
                    f[5],
                )
            })
        }))
    }

    fn include(&self, path: &str) -> Result<String, LookupError> {
        std::fs::read_to_string(path).map_err(|e| file_error(path, &e))
    }

    fn forward(&self, user: &UserInfo) -> Result<ForwardFile, LookupError> {
        let Some(uid) = user.uid else {
            // Virtual users have no home of their own to keep a .forward in.
            return Ok(ForwardFile::Missing);
        };
        let path = Path::new(&user.home).join(".forward");
        let shown = path.display().to_string();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ForwardFile::Missing),
            Err(e) => return Err(file_error(&shown, &e)),
        };
        // forward(5): a regular file owned by the user, writable by nobody else.
        if !meta.file_type().is_file() {
            return Ok(ForwardFile::Refused(format!(
                "{shown} is not a regular file"
            )));
        }
        if meta.uid() != uid || meta.mode() & 0o022 != 0 {
            return Ok(ForwardFile::Refused(format!(
                "{shown} must belong to {} and be writable by nobody else",
                user.name
            )));
        }
        std::fs::read_to_string(&path)
            .map(ForwardFile::Contents)
            .map_err(|e| file_error(&shown, &e))
    }
}

/// What routing is built from besides the configuration: the server's names and where
/// relative paths start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingSetup {
    /// The server's name (a bare `postmaster` is completed with it; `for local`).
    pub hostname: String,
    /// More names mail `for local` is addressed to.
    pub names: Vec<String>,
    /// The addresses mail `for local` is addressed to.
    pub addresses: Vec<IpAddr>,
    /// Relative table paths are taken from here.
    pub base: PathBuf,
}

impl RoutingSetup {
    /// The server's names as the core's built-in tables want them.
    #[must_use]
    pub fn local_names(&self) -> LocalNames {
        let mut local = LocalNames::new(self.hostname.clone(), self.addresses.iter().copied());
        local.names.clone_from(&self.names);
        local
    }
}

/// The TLS of every relay action that configures its own.
fn relay_tls(config: &Config) -> Result<HashMap<String, TlsProfile>, RoutingError> {
    let mut profiles = HashMap::new();
    for action in &config.actions {
        let config::Delivery::Relay(relay) = &action.delivery else {
            continue;
        };
        let tls = OutgoingTls::for_relay(config, relay).map_err(|e| RoutingError::Tls {
            action: action.name.clone(),
            reason: e.to_string(),
        })?;
        if let Some(tls) = tls {
            profiles.insert(action.name.clone(), TlsProfile(Arc::new(tls)));
        }
    }
    Ok(profiles)
}

/// Why routing cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// The match rules do not compile.
    #[error(transparent)]
    Rules(#[from] RulesetError),
    /// A table cannot be loaded (a `file:` table that cannot be read or parsed, a `proc:`
    /// table that cannot be started).
    #[error(transparent)]
    Tables(#[from] TableLoadError),
    /// A relay action's TLS settings cannot be used (an unknown pki or ca, a file that cannot
    /// be read, `protocols` or `ciphers` not understood).
    #[error("action \"{action}\": {reason}")]
    Tls {
        /// The action.
        action: String,
        /// What is wrong.
        reason: String,
    },
}

/// Routing: the rules and the lookups they consult.
#[derive(Debug)]
pub struct Routing {
    ruleset: Ruleset,
    lookups: DaemonLookups,
    hostname: String,
    /// The TLS of relay actions that configure their own, by action name.
    relay_tls: HashMap<String, TlsProfile>,
}

impl Routing {
    /// Builds routing from a configuration: compiles the rules, reads its `file:` tables
    /// (relative paths from `setup.base`), and takes its `proc:` tables from `procs` — the
    /// running processes when `procs` has them, new ones otherwise (which this returns without
    /// waiting for: [`ProcTables::wait_ready`] does). Tables `procs` holds that the
    /// configuration no longer names are dropped from it.
    ///
    /// # Errors
    /// Rules that do not compile, a table file that cannot be read or parsed, a `proc:` table
    /// that cannot be started.
    pub fn from_config(
        config: &Config,
        setup: &RoutingSetup,
        procs: &ProcTables,
    ) -> Result<Routing, RoutingError> {
        let ruleset = Ruleset::new(config)?;
        let tables = tables::load_static(config, &setup.local_names(), &setup.base)?;
        let mut lookups = DaemonLookups::new(tables);
        let mut names = Vec::new();
        for table in &config.tables {
            if let TableSource::Proc(command) = &table.source {
                let proc = procs
                    .get_or_spawn(&table.name, command)
                    .map_err(TableLoadError::from)?;
                lookups = lookups.with_proc_table(proc);
                names.push(table.name.as_str());
            }
        }
        procs.retain(&names);
        Ok(Routing {
            ruleset,
            lookups,
            hostname: setup.hostname.clone(),
            relay_tls: relay_tls(config)?,
        })
    }

    /// The TLS settings of a relay action, when it has its own ([`OutgoingTls::for_relay`]).
    #[must_use]
    pub fn relay_tls(&self, action: &str) -> Option<TlsProfile> {
        self.relay_tls.get(action).cloned()
    }

    /// Whether resolving may block on another process (the routing has `proc:` tables).
    #[must_use]
    pub fn may_block(&self) -> bool {
        !self.lookups.procs.is_empty()
    }

    /// The compiled rules.
    #[must_use]
    pub fn ruleset(&self) -> &Ruleset {
        &self.ruleset
    }

    /// The lookups.
    #[must_use]
    pub fn lookups(&self) -> &DaemonLookups {
        &self.lookups
    }

    /// Resolves one recipient of a session into its deliveries, or the reply refusing it.
    /// A bare `postmaster` is completed with the server's name.
    pub fn resolve(
        &self,
        session: &SessionFacts,
        sender: &str,
        rcpt: &str,
        now: Time,
    ) -> Result<Vec<Resolved>, Reply> {
        let sender = if sender.is_empty() {
            MailAddr::null()
        } else {
            MailAddr::parse(sender)
        };
        let rcpt = if rcpt.contains('@') {
            MailAddr::parse(rcpt)
        } else {
            MailAddr::new(rcpt, self.hostname.clone())
        };
        let recipient = Recipient {
            session,
            sender: &sender,
            rcpt: &rcpt,
        };
        match self.ruleset.resolve(&recipient, &self.lookups, now) {
            Ok(deliveries) => Ok(deliveries
                .into_iter()
                .map(|d| Resolved {
                    target: encode_target(&d.target),
                    dest: d.dest.to_string(),
                    action: d.action,
                })
                .collect()),
            Err(refusal) => {
                tracing::info!(rcpt = %rcpt, reply = %refusal.reply, cause = %refusal.cause, "recipient refused");
                Err(refusal.reply)
            }
        }
    }
}

impl Routing {
    /// Routes a queued envelope's recipient again, with this routing: the original `RCPT TO`
    /// from the envelope's sender, in a session with the facts the envelope kept (see the
    /// module documentation for what the scheduler does with the result). May block on a
    /// `proc:` table ([`SharedRouting::reroute`] does not).
    ///
    /// # Errors
    /// The refusal of the recipient: 4xx when routing cannot be decided now, 5xx when the
    /// recipient is no longer deliverable.
    pub fn reroute(&self, envelope: &Envelope, now: Time) -> Result<Vec<Resolved>, Reply> {
        let session = SessionFacts::from_origin(&envelope.origin);
        self.resolve(&session, &envelope.sender, &envelope.rcpt, now)
    }
}

impl Routing {
    /// Routes mail the daemon itself produces (a notification) for `rcpt`, as of `now`.
    ///
    /// # Errors
    /// The refusal of the recipient.
    pub fn route_internal_at(&self, rcpt: &str, now: Time) -> Result<Vec<InternalRoute>, Reply> {
        self.resolve(&SessionFacts::socket(), "", rcpt, now)
            .map(|ds| {
                ds.into_iter()
                    .map(|d| InternalRoute {
                        dest: d.dest,
                        action: d.action,
                        target: d.target,
                    })
                    .collect()
            })
    }
}

impl Router for Routing {
    fn route_internal(&self, rcpt: &str) -> Result<Vec<InternalRoute>, Reply> {
        self.route_internal_at(rcpt, crate::clock::Clock::now(&crate::clock::SystemClock))
    }
}

/// Routing that can be replaced while the daemon runs (`reload`).
#[derive(Debug, Clone)]
pub struct SharedRouting(pub Arc<std::sync::RwLock<Arc<Routing>>>);

impl SharedRouting {
    /// Shares `routing`.
    #[must_use]
    pub fn new(routing: Routing) -> SharedRouting {
        SharedRouting(Arc::new(std::sync::RwLock::new(Arc::new(routing))))
    }

    /// The current routing.
    #[must_use]
    pub fn current(&self) -> Arc<Routing> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `routing` the current routing and returns the one it replaces. Whoever holds
    /// the old one (a recipient being resolved) finishes with it.
    pub fn replace(&self, routing: Routing) -> Arc<Routing> {
        let mut current = self.0.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *current, Arc::new(routing))
    }

    /// Resolves one recipient with the current routing ([`Routing::resolve`]): on tokio's
    /// blocking pool when the routing has `proc:` tables, so that waiting for their answers
    /// never holds a runtime thread; in place otherwise.
    ///
    /// # Errors
    /// The reply refusing the recipient.
    pub async fn resolve(
        &self,
        session: &SessionFacts,
        sender: &str,
        rcpt: &str,
        now: Time,
    ) -> Result<Vec<Resolved>, Reply> {
        let routing = self.current();
        if !routing.may_block() {
            return routing.resolve(session, sender, rcpt, now);
        }
        let (session, sender, rcpt) = (session.clone(), sender.to_owned(), rcpt.to_owned());
        tokio::task::spawn_blocking(move || routing.resolve(&session, &sender, &rcpt, now))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "recipient resolution failed");
                Err(TEMPORARY_FAILURE)
            })
    }

    /// Routes a queued envelope again with the current routing ([`Routing::reroute`]), on the
    /// blocking pool when the routing has `proc:` tables.
    ///
    /// # Errors
    /// The refusal of the recipient (see [`Routing::reroute`]).
    pub async fn reroute(&self, envelope: &Envelope, now: Time) -> Result<Vec<Resolved>, Reply> {
        let routing = self.current();
        if !routing.may_block() {
            return routing.reroute(envelope, now);
        }
        let envelope = envelope.clone();
        tokio::task::spawn_blocking(move || routing.reroute(&envelope, now))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "re-routing failed");
                Err(TEMPORARY_FAILURE)
            })
    }
}

fn to_routes(resolved: Vec<Resolved>) -> Vec<InternalRoute> {
    resolved
        .into_iter()
        .map(|d| InternalRoute {
            dest: d.dest,
            action: d.action,
            target: d.target,
        })
        .collect()
}

impl SharedRouting {
    /// [`Router::reroute`] as of `now` (the scheduler's clock, not the system's).
    ///
    /// # Errors
    /// As for [`Router::reroute`].
    pub fn reroute_at(&self, envelope: &Envelope, now: Time) -> Result<Vec<InternalRoute>, Reply> {
        let routing = self.current();
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let result = if routing.may_block() && multi_thread {
            tokio::task::block_in_place(|| routing.reroute(envelope, now))
        } else {
            routing.reroute(envelope, now)
        };
        result.map(to_routes)
    }

    /// [`Router::route_internal`] as of `now` (the scheduler's clock, not the system's).
    ///
    /// # Errors
    /// As for [`Router::route_internal`].
    pub fn route_internal_at(&self, rcpt: &str, now: Time) -> Result<Vec<InternalRoute>, Reply> {
        let routing = self.current();
        // The scheduler calls this from a task. A lookup in a `proc:` table blocks, so on a
        // multi-threaded runtime step out of it; on a current-thread runtime (tests) the wait
        // is bounded by the request timeout, and the table's own thread still answers.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if routing.may_block() && multi_thread {
            tokio::task::block_in_place(|| routing.route_internal_at(rcpt, now))
        } else {
            routing.route_internal_at(rcpt, now)
        }
    }
}

impl Router for SharedRouting {
    fn reroute(&self, envelope: &Envelope) -> Result<Vec<InternalRoute>, Reply> {
        self.reroute_at(
            envelope,
            crate::clock::Clock::now(&crate::clock::SystemClock),
        )
    }

    fn route_internal(&self, rcpt: &str) -> Result<Vec<InternalRoute>, Reply> {
        self.route_internal_at(rcpt, crate::clock::Clock::now(&crate::clock::SystemClock))
    }
}

/// [`SharedRouting`] as the scheduler's [`Router`], reading the time from `clock`.
#[derive(Debug)]
pub struct ClockedRouting<C> {
    /// The routing.
    pub routing: SharedRouting,
    /// The clock.
    pub clock: Arc<C>,
}

impl<C: crate::clock::Clock> Router for ClockedRouting<C> {
    fn reroute(&self, envelope: &Envelope) -> Result<Vec<InternalRoute>, Reply> {
        self.routing.reroute_at(envelope, self.clock.now())
    }

    fn route_internal(&self, rcpt: &str) -> Result<Vec<InternalRoute>, Reply> {
        self.routing.route_internal_at(rcpt, self.clock.now())
    }
}

fn field(s: &str) -> String {
    // Tabs separate fields; none of these values may hold one (paths and commands with tabs
    // are not worth supporting), so they are replaced rather than escaped.
    s.replace('\t', " ")
}

fn encode_user(u: &UserInfo) -> String {
    format!(
        "{}\t{}\t{}\t{}",
        field(&u.name),
        u.uid.map_or("-".into(), |v| v.to_string()),
        u.gid.map_or("-".into(), |v| v.to_string()),
        field(&u.home)
    )
}

fn encode_run_as(r: &RunAs) -> String {
    match r {
        RunAs::Daemon => "daemon".into(),
        RunAs::User(name) => format!("user\t{}", field(name)),
        RunAs::Account(u) => format!("account\t{}", encode_user(u)),
    }
}

/// The text form of a delivery target kept in an envelope; `None` for relays.
#[must_use]
pub fn encode_target(t: &Target) -> Option<String> {
    Some(match t {
        Target::Relay => return None,
        Target::Mailbox {
            user,
            subaddress,
            run_as,
        } => format!(
            "mailbox\t{}\t{}\t{}",
            subaddress.as_deref().map(field).unwrap_or_default(),
            encode_user(user),
            encode_run_as(run_as)
        ),
        Target::File { path, run_as } => {
            format!("file\t{}\t{}", field(path), encode_run_as(run_as))
        }
        Target::Command { command, run_as } => {
            format!("command\t{}\t{}", field(command), encode_run_as(run_as))
        }
    })
}

fn decode_user<'a>(f: &mut impl Iterator<Item = &'a str>) -> Option<UserInfo> {
    let name = f.next()?;
    let uid = f.next()?;
    let gid = f.next()?;
    let home = f.next()?;
    Some(UserInfo {
        name: name.to_owned(),
        uid: uid.parse().ok(),
        gid: gid.parse().ok(),
        home: home.to_owned(),
    })
}

fn decode_run_as<'a>(f: &mut impl Iterator<Item = &'a str>) -> Option<RunAs> {
    Some(match f.next()? {
        "daemon" => RunAs::Daemon,
        "user" => RunAs::User(f.next()?.to_owned()),
        "account" => RunAs::Account(decode_user(f)?),
        _ => return None,
    })
}

/// Reads back what [`encode_target`] wrote.
#[must_use]
pub fn decode_target(text: &str) -> Option<Target> {
    let mut f = text.split('\t');
    let target = match f.next()? {
        "mailbox" => {
            let sub = f.next()?;
            Target::Mailbox {
                subaddress: (!sub.is_empty()).then(|| sub.to_owned()),
                user: decode_user(&mut f)?,
                run_as: decode_run_as(&mut f)?,
            }
        }
        "file" => Target::File {
            path: f.next()?.to_owned(),
            run_as: decode_run_as(&mut f)?,
        },
        "command" => Target::Command {
            command: f.next()?.to_owned(),
            run_as: decode_run_as(&mut f)?,
        },
        _ => return None,
    };
    f.next().is_none().then_some(target)
}

/// Used by tests and by `resolve`'s callers that need the core's types.
pub use resolve::Delivery;

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_core::config::{self, ParseOptions};
    use petrel_core::queue::MsgId;

    fn routing(text: &str) -> Routing {
        let config = config::parse("t.conf", text, &ParseOptions::default()).unwrap();
        let setup = RoutingSetup {
            hostname: "mx.test".into(),
            ..RoutingSetup::default()
        };
        Routing::from_config(&config, &setup, &ProcTables::default()).unwrap()
    }

    #[test]
    fn queued_envelopes_are_routed_again_from_their_origin() {
        let mut e = Envelope::new(
            EnvelopeId::new(MsgId(7), 0),
            "sender@client.test",
            "list@mx.test",
            Time::from_secs(1_700_000_000),
            Time::from_secs(1_700_400_000),
        );
        e.origin.src = Some("192.0.2.1".parse().unwrap());
        e.origin.tag = Some("in".into());
        e.origin.helo = Some("client.test".into());
        e.attempts = 2;
        let now = Time::from_secs(1_700_000_100);
        // The recipient as the configuration first routed it: through the listener's tag.
        let first = routing(
            "table lists { list = \"alice@remote.test, bob@remote.test\" }\n\
             action \"relay\" relay\n\
             action \"local\" maildir virtual <lists>\n\
             match from any tag \"in\" for domain \"mx.test\" action \"local\"\n\
             match from local for any action \"relay\"\n",
        );
        let resolved = first.reroute(&e, now).unwrap();
        let dests: Vec<&str> = resolved.iter().map(|r| r.dest.as_str()).collect();
        assert_eq!(dests, ["alice@remote.test", "bob@remote.test"]);
        let again = resolved[1].apply_to(&e, EnvelopeId::new(MsgId(7), 1));
        assert_eq!(again.id, EnvelopeId::new(MsgId(7), 1));
        assert_eq!(again.dest, "bob@remote.test");
        assert_eq!(again.action.as_deref(), Some("relay"));
        assert_eq!(again.target, None);
        assert_eq!((again.rcpt.as_str(), again.attempts), ("list@mx.test", 2));
        assert_eq!(again.origin, e.origin);
        // A configuration where that listener's mail is no longer accepted for the domain.
        let second = routing(
            "action \"relay\" relay\n\
             match from any tag \"other\" for domain \"mx.test\" action \"relay\"\n",
        );
        let refused = second.reroute(&e, now).unwrap_err();
        assert_eq!(refused.code, 550, "{refused}");
        // The same envelope, from the local socket (no address kept): `from local` matches.
        e.origin.src = None;
        e.origin.tag = None;
        let local = routing(
            "action \"relay\" relay\n\
             match from local for any action \"relay\"\n",
        );
        assert_eq!(local.reroute(&e, now).unwrap().len(), 1);
    }

    #[test]
    fn targets_round_trip() {
        let alice = UserInfo::account("alice", 1000, 100, "/home/alice");
        for t in [
            Target::Mailbox {
                user: alice.clone(),
                subaddress: Some("lists".into()),
                run_as: RunAs::Account(alice.clone()),
            },
            Target::Mailbox {
                user: UserInfo::virtual_user("petrel", "petrel-data"),
                subaddress: None,
                run_as: RunAs::Daemon,
            },
            Target::File {
                path: "/var/log/mail.archive".into(),
                run_as: RunAs::User("vmail".into()),
            },
            Target::Command {
                command: "/usr/bin/vacation -a alice".into(),
                run_as: RunAs::Account(alice),
            },
        ] {
            let text = encode_target(&t).unwrap();
            assert_eq!(decode_target(&text), Some(t), "{text}");
        }
        assert_eq!(encode_target(&Target::Relay), None);
        assert_eq!(decode_target("mailbox\tx"), None);
    }
}
