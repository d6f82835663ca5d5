//! Routing in the daemon: the core's rules and expansion over the daemon's lookups (tables read
//! from disk, the system's user database, `.forward` and `:include:` files).
//!
//! A recipient is resolved once, when the client gives it (so a refusal is the RCPT reply),
//! into deliveries: an action and, for local actions, the target (mailbox, file, command) and
//! the identity it runs with. Each delivery becomes one envelope; the target travels in the
//! envelope in the encoding of [`encode_target`].

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petrel_core::Time;
use petrel_core::config::Config;
use petrel_core::rules::lookups::{
    ForwardFile, LocalNames, LookupError, Lookups, StaticLookups, UserInfo,
};
use petrel_core::rules::resolve::{Recipient, RunAs, Target};
use petrel_core::rules::router::{Ruleset, SessionFacts};
use petrel_core::rules::service::Service;
use petrel_core::rules::{MailAddr, resolve};
use petrel_core::smtp::Reply;

use crate::queue::scheduler::{InternalRoute, Router};

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

/// The daemon's lookups: in-memory tables plus the system around it.
#[derive(Debug)]
pub struct DaemonLookups {
    tables: StaticLookups,
    passwd: PathBuf,
}

impl DaemonLookups {
    /// Lookups over `tables`, with system users read from `/etc/passwd`.
    #[must_use]
    pub fn new(tables: StaticLookups) -> DaemonLookups {
        DaemonLookups {
            tables,
            passwd: PathBuf::from("/etc/passwd"),
        }
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

/// Routing: the rules and the lookups they consult.
#[derive(Debug)]
pub struct Routing {
    ruleset: Ruleset,
    lookups: DaemonLookups,
    hostname: String,
}

impl Routing {
    /// Builds routing from a configuration: compiles the rules and reads its `file:` tables
    /// (relative paths from `base`). `hostname` is the server's name; `names` more names and
    /// `addresses` the addresses mail `for local` is addressed to.
    pub fn from_config(
        config: &Config,
        hostname: &str,
        names: &[String],
        addresses: &[std::net::IpAddr],
        base: &Path,
    ) -> Result<Routing, String> {
        let ruleset = Ruleset::new(config).map_err(|e| e.to_string())?;
        let mut local = LocalNames::new(hostname, addresses.iter().copied());
        local.names = names.to_vec();
        let tables = StaticLookups::from_config(config, &local, |path| {
            std::fs::read_to_string(base.join(path)).map_err(|e| e.to_string())
        })
        .map_err(|e| e.to_string())?;
        Ok(Routing {
            ruleset,
            lookups: DaemonLookups::new(tables),
            hostname: hostname.to_owned(),
        })
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

impl Router for Routing {
    fn route_internal(&self, rcpt: &str) -> Result<Vec<InternalRoute>, Reply> {
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
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
}

impl Router for SharedRouting {
    fn route_internal(&self, rcpt: &str) -> Result<Vec<InternalRoute>, Reply> {
        self.current().route_internal(rcpt)
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
