//! The lookups seam: everything rule evaluation and expansion need from outside the core.
//!
//! The core reads no files and talks to no processes, so tables, the user database, `:include:`
//! files and `~/.forward` files are consulted through [`Lookups`], which the shell implements.
//! [`StaticLookups`] is the implementation over in-memory [`Table`]s — inline tables of the
//! configuration and `file:` tables whose text the shell read — and in-memory users and files;
//! tests use it alone, and the daemon uses it for every table but `proc:` ones.
//!
//! The trait is synchronous. A `proc:` table answers asynchronously ([`ProcTableClient`]
//! multiplexes the requests of several callers over one process), so the daemon evaluates
//! rules and expansions that reach a `proc:` table on a blocking worker that waits for the
//! answer, much as OpenSMTPD's lookup process waits for its table processes.
//!
//! A [`LookupError`] is a **temporary** failure: the recipient gets a 4xx and the client tries
//! again later. It is never turned into "not found", which could bounce mail or — worse —
//! let a negated condition match.
//!
//! [`ProcTableClient`]: super::proc_table::ProcTableClient

use std::collections::HashMap;
use std::net::IpAddr;

use thiserror::Error;

use super::service::Service;
use super::table::{Table, TableError};
use super::table_file::{self, TableFileError};
use crate::config::{Config, TableSource};

/// `<localhost>`: the string `local` (the local socket and internal envelopes), loopback
/// addresses and the server's own addresses. `from local` tests it.
pub const LOCALHOST: &str = "<localhost>";
/// `<anyhost>`: `local` and every address. `from any` tests it.
pub const ANYHOST: &str = "<anyhost>";
/// `<localnames>`: `localhost`, the server's names and addresses. `for local` tests it.
pub const LOCALNAMES: &str = "<localnames>";
/// `<anydestination>`: every domain. `for any` tests it.
pub const ANYDESTINATION: &str = "<anydestination>";
/// `<getpwnam>`: the system's users, the userbase when an action names none; answered by
/// [`Lookups::user`].
pub const GETPWNAM: &str = "<getpwnam>";

/// A user account, as a userbase table or the system's user database describes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// The numeric user id, when the account is a system account (or a userbase maps it to
    /// one). `None` for virtual users without one: the daemon delivers with its own identity.
    pub uid: Option<u32>,
    /// The numeric group id, when known.
    pub gid: Option<u32>,
    /// The home directory (where `.forward` is read and `~` points).
    pub home: String,
}

impl UserInfo {
    /// A virtual user without a system account.
    pub fn virtual_user(name: impl Into<String>, home: impl Into<String>) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: None,
            gid: None,
            home: home.into(),
        }
    }

    /// A system account.
    pub fn account(
        name: impl Into<String>,
        uid: u32,
        gid: u32,
        home: impl Into<String>,
    ) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: Some(uid),
            gid: Some(gid),
            home: home.into(),
        }
    }

    /// Reads a `userinfo` table value, `uid:gid:/home/dir`, for user `name` (OpenSMTPD's
    /// `text_to_userinfo`); `None` when malformed. Petrel also accepts `-:-:/home/dir`: a
    /// virtual user without a system account, delivered with the daemon's own identity.
    #[must_use]
    pub fn from_table_value(name: &str, value: &str) -> Option<UserInfo> {
        if let Some(home) = value.strip_prefix("-:-:") {
            return Some(UserInfo::virtual_user(name, home));
        }
        let mut parts = value.splitn(3, ':');
        let uid = parts.next()?.parse().ok()?;
        let gid = parts.next()?.parse().ok()?;
        let home = parts.next()?;
        Some(UserInfo::account(name, uid, gid, home))
    }
}

/// What the shell found when asked for a user's `~/.forward`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardFile {
    /// There is none: deliver to the user.
    Missing,
    /// Its text, read after the shell checked it is safe to use (a regular file owned by the
    /// user, not writable by others, not reached through a symbolic link).
    Contents(String),
    /// It exists but must not be used (unsafe ownership or permissions): a permanent failure.
    Refused(String),
}

/// A lookup that could not be answered: a temporary failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The configuration names a table the lookups do not have (not loaded, or a `proc:` table
    /// asked of [`StaticLookups`]).
    #[error("table <{0}> is not available")]
    NoSuchTable(String),
    /// A static table cannot answer (bad regular expression, unsupported service).
    #[error(transparent)]
    Table(#[from] TableError),
    /// A table backend failed (a `proc:` table replied `error`, timed out or died).
    #[error("table <{table}>: {reason}")]
    Backend {
        /// The table.
        table: String,
        /// What went wrong.
        reason: String,
    },
    /// A file (`:include:`, `.forward`) could not be read.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The user database could not be consulted.
    #[error("user database: {0}")]
    Users(String),
}

/// Everything the rules and the resolver consult outside the core. See the module
/// documentation.
pub trait Lookups {
    /// Whether `key` is in `table` for `service` (compared as that service compares).
    ///
    /// # Errors
    /// The table is missing or its backend failed.
    fn check(&self, table: &str, service: Service, key: &str) -> Result<bool, LookupError>;

    /// The value `table` maps `key` to for `service`.
    ///
    /// # Errors
    /// The table is missing or its backend failed.
    fn lookup(
        &self,
        table: &str,
        service: Service,
        key: &str,
    ) -> Result<Option<String>, LookupError>;

    /// A system user (the `<getpwnam>` userbase).
    ///
    /// # Errors
    /// The user database could not be consulted.
    fn user(&self, name: &str) -> Result<Option<UserInfo>, LookupError>;

    /// The text of an `:include:` file named in an aliases table.
    ///
    /// # Errors
    /// The file cannot be read (OpenSMTPD skips such an include silently; Petrel fails the
    /// recipient temporarily so that an unreadable mailing list does not lose its mail).
    fn include(&self, path: &str) -> Result<String, LookupError>;

    /// The `~/.forward` file of `user`.
    ///
    /// # Errors
    /// The file exists but cannot be read now.
    fn forward(&self, user: &UserInfo) -> Result<ForwardFile, LookupError>;
}

/// The server's names and addresses, from which the built-in tables are made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalNames {
    /// The server name (`smtpd.conf`'s hostname, or the system's).
    pub hostname: String,
    /// More names `for local` should match. OpenSMTPD has only the server name; the shell
    /// may add, say, the names of its listeners.
    pub names: Vec<String>,
    /// The addresses of the server's interfaces.
    pub addresses: Vec<IpAddr>,
}

impl LocalNames {
    /// Names for a server called `hostname` with interface `addresses`.
    pub fn new(hostname: impl Into<String>, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        LocalNames {
            hostname: hostname.into(),
            names: Vec::new(),
            addresses: addresses.into_iter().collect(),
        }
    }

    /// The built-in tables `<localhost>`, `<anyhost>`, `<localnames>`, `<anydestination>`
    /// (`config.c`'s `set_local`, `set_localaddrs`). Loopback blocks are in `<localhost>` even
    /// when the shell does not list the loopback interface, and `<localnames>` also holds the
    /// address literals (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) a recipient domain is written as.
    #[must_use]
    pub fn builtin_tables(&self) -> Vec<Table> {
        let addrs: Vec<String> = self.addresses.iter().map(ToString::to_string).collect();
        let mut localhost = vec!["local".to_owned(), "127.0.0.0/8".into(), "::1".into()];
        localhost.extend(addrs.iter().cloned());
        let mut localnames = vec!["localhost".to_owned()];
        localnames.extend(
            std::iter::once(&self.hostname)
                .chain(&self.names)
                .filter(|n| !n.is_empty())
                .cloned(),
        );
        for addr in &self.addresses {
            localnames.push(addr.to_string());
            localnames.push(match addr {
                IpAddr::V4(a) => format!("[{a}]"),
                IpAddr::V6(a) => format!("[IPv6:{a}]"),
            });
        }
        vec![
            Table::list(LOCALHOST, localhost),
            Table::list(ANYHOST, ["local", "0.0.0.0/0", "::/0"]),
            Table::list(LOCALNAMES, localnames),
            Table::list(ANYDESTINATION, ["*"]),
        ]
    }
}

/// Why [`StaticLookups::from_config`] could not load a table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The shell could not read a `file:` table.
    #[error("table <{table}>: cannot read {path}: {reason}")]
    Read {
        /// The table.
        table: String,
        /// Its file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A `file:` table is malformed.
    #[error("table <{table}>: {path}: {source}")]
    Parse {
        /// The table.
        table: String,
        /// Its file.
        path: String,
        /// The malformed line.
        source: TableFileError,
    },
}

/// [`Lookups`] over in-memory tables, users and files. See the module documentation.
#[derive(Clone, Debug)]
pub struct StaticLookups {
    tables: HashMap<String, Table>,
    users: HashMap<String, UserInfo>,
    includes: HashMap<String, String>,
    forwards: HashMap<String, ForwardFile>,
    delim: char,
}

impl StaticLookups {
    /// The built-in tables for `local` and nothing else; sub-address delimiter `+`.
    #[must_use]
    pub fn new(local: &LocalNames) -> StaticLookups {
        let mut lookups = StaticLookups {
            tables: HashMap::new(),
            users: HashMap::new(),
            includes: HashMap::new(),
            forwards: HashMap::new(),
            delim: '+',
        };
        for table in local.builtin_tables() {
            lookups.insert_table(table);
        }
        lookups
    }

    /// The built-in tables, the configuration's inline tables, and its `file:` tables whose
    /// text `read` returns for a path; the configuration's sub-address delimiter. `db:` and
    /// `proc:` tables are left to the shell.
    ///
    /// # Errors
    /// A `file:` table that cannot be read or parsed.
    pub fn from_config(
        config: &Config,
        local: &LocalNames,
        mut read: impl FnMut(&str) -> Result<String, String>,
    ) -> Result<StaticLookups, LoadError> {
        let mut lookups = StaticLookups::new(local).with_sub_addr_delim(config.smtp.sub_addr_delim);
        for table in &config.tables {
            let name = table.name.clone();
            match &table.source {
                TableSource::List(values) => {
                    lookups.insert_table(Table::list(name, values.iter().cloned()));
                }
                TableSource::Map(pairs) => {
                    lookups.insert_table(Table::map(name, pairs.iter().cloned()));
                }
                TableSource::File(path) => {
                    let text = read(path).map_err(|reason| LoadError::Read {
                        table: name.clone(),
                        path: path.clone(),
                        reason,
                    })?;
                    lookups
                        .insert_table_text(&name, &text)
                        .map_err(|source| LoadError::Parse {
                            table: name.clone(),
                            path: path.clone(),
                            source,
                        })?;
                }
                TableSource::Db(_) | TableSource::Proc(_) => {}
            }
        }
        Ok(lookups)
    }

    /// Uses `delim` as the sub-address delimiter in `mailaddr` comparisons.
    #[must_use]
    pub fn with_sub_addr_delim(mut self, delim: char) -> StaticLookups {
        self.delim = delim;
        self
    }

    /// Adds (or replaces) a table under its name.
    pub fn insert_table(&mut self, table: Table) {
        self.tables.insert(table.name().to_owned(), table);
    }

    /// Adds a table from the text of a table file.
    ///
    /// # Errors
    /// The text is not a valid table file.
    pub fn insert_table_text(&mut self, name: &str, text: &str) -> Result<(), TableFileError> {
        let entries = table_file::parse(text)?;
        self.insert_table(Table::new(name, entries));
        Ok(())
    }

    /// Adds a user to the `<getpwnam>` database.
    pub fn insert_user(&mut self, user: UserInfo) {
        self.users.insert(user.name.clone(), user);
    }

    /// Adds a file `:include:` can name.
    pub fn insert_include(&mut self, path: impl Into<String>, text: impl Into<String>) {
        self.includes.insert(path.into(), text.into());
    }

    /// Sets what reading the `.forward` of user `name` gives.
    pub fn insert_forward(&mut self, name: impl Into<String>, file: ForwardFile) {
        self.forwards.insert(name.into(), file);
    }

    /// The table of that name.
    #[must_use]
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    fn get(&self, name: &str) -> Result<&Table, LookupError> {
        self.tables
            .get(name)
            .ok_or_else(|| LookupError::NoSuchTable(name.to_owned()))
    }
}

impl Lookups for StaticLookups {
    fn check(&self, table: &str, service: Service, key: &str) -> Result<bool, LookupError> {
        if table == GETPWNAM {
            return Ok(self.user(key)?.is_some());
        }
        Ok(self.get(table)?.check(service, key, self.delim)?)
    }

    fn lookup(
        &self,
        table: &str,
        service: Service,
        key: &str,
    ) -> Result<Option<String>, LookupError> {
        if table == GETPWNAM {
            return Ok(self.user(key)?.map(|u| {
                format!(
                    "{}:{}:{}",
                    u.uid.unwrap_or_default(),
                    u.gid.unwrap_or_default(),
                    u.home
                )
            }));
        }
        Ok(self
            .get(table)?
            .lookup(service, key, self.delim)?
            .map(str::to_owned))
    }

    fn user(&self, name: &str) -> Result<Option<UserInfo>, LookupError> {
        Ok(self.users.get(name).cloned())
    }

    fn include(&self, path: &str) -> Result<String, LookupError> {
        self.includes
            .get(path)
            .cloned()
            .ok_or_else(|| LookupError::File {
                path: path.to_owned(),
                reason: "No such file or directory".into(),
            })
    }

    fn forward(&self, user: &UserInfo) -> Result<ForwardFile, LookupError> {
        Ok(self
            .forwards
            .get(&user.name)
            .cloned()
            .unwrap_or(ForwardFile::Missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, ParseOptions};

    fn local() -> LocalNames {
        LocalNames::new(
            "mx.example.org",
            [
                "192.0.2.25".parse().unwrap(),
                "2001:db8::25".parse().unwrap(),
            ],
        )
    }

    #[test]
    fn builtin_tables() {
        let l = StaticLookups::new(&local());
        let check = |t, s, k| l.check(t, s, k).unwrap();
        assert!(check(LOCALHOST, Service::Netaddr, "local"));
        assert!(check(LOCALHOST, Service::Netaddr, "127.0.0.1"));
        assert!(check(LOCALHOST, Service::Netaddr, "::1"));
        assert!(check(LOCALHOST, Service::Netaddr, "192.0.2.25"));
        assert!(!check(LOCALHOST, Service::Netaddr, "192.0.2.26"));
        assert!(check(ANYHOST, Service::Netaddr, "203.0.113.1"));
        assert!(check(ANYHOST, Service::Netaddr, "2001:db8:ffff::1"));
        assert!(check(ANYHOST, Service::Netaddr, "local"));
        for name in [
            "localhost",
            "MX.example.org",
            "192.0.2.25",
            "[192.0.2.25]",
            "[IPv6:2001:db8::25]",
        ] {
            assert!(check(LOCALNAMES, Service::Domain, name), "{name}");
        }
        assert!(!check(LOCALNAMES, Service::Domain, "example.org"));
        assert!(check(ANYDESTINATION, Service::Domain, "anything.example"));
    }

    #[test]
    fn users_includes_and_forwards() {
        let mut l = StaticLookups::new(&local());
        l.insert_user(UserInfo::account("alice", 1000, 1000, "/home/alice"));
        assert_eq!(l.user("alice").unwrap().unwrap().uid, Some(1000));
        assert_eq!(l.user("bob").unwrap(), None);
        assert!(l.check(GETPWNAM, Service::Userinfo, "alice").unwrap());
        assert_eq!(
            l.lookup(GETPWNAM, Service::Userinfo, "alice")
                .unwrap()
                .as_deref(),
            Some("1000:1000:/home/alice")
        );
        l.insert_include("/etc/mail/staff", "alice, bob");
        assert_eq!(l.include("/etc/mail/staff").unwrap(), "alice, bob");
        assert!(matches!(l.include("/nope"), Err(LookupError::File { .. })));
        let alice = l.user("alice").unwrap().unwrap();
        assert_eq!(l.forward(&alice).unwrap(), ForwardFile::Missing);
        l.insert_forward(
            "alice",
            ForwardFile::Contents("alice@elsewhere.example".into()),
        );
        assert!(matches!(
            l.forward(&alice).unwrap(),
            ForwardFile::Contents(_)
        ));
    }

    #[test]
    fn missing_tables_are_errors_not_misses() {
        let l = StaticLookups::new(&local());
        assert_eq!(
            l.check("nope", Service::Domain, "x"),
            Err(LookupError::NoSuchTable("nope".into()))
        );
        assert!(l.lookup("nope", Service::Alias, "x").is_err());
    }

    #[test]
    fn userinfo_values() {
        assert_eq!(
            UserInfo::from_table_value("vmail", "2000:2000:/var/vmail"),
            Some(UserInfo::account("vmail", 2000, 2000, "/var/vmail"))
        );
        assert_eq!(UserInfo::from_table_value("x", "a:1:/h"), None);
        assert_eq!(UserInfo::from_table_value("x", "1:1"), None);
        assert_eq!(
            UserInfo::from_table_value("x", "1:2:/a:b").unwrap().home,
            "/a:b"
        );
    }

    #[test]
    fn loads_the_tables_of_a_configuration() {
        let text = "table inline { example.org, example.net }\n\
                    table pairs { alice }\n\
                    table aliases file:/etc/mail/aliases\n\
                    table users proc:/usr/libexec/table-ldap\n\
                    smtp sub-addr-delim \"-\"\n\
                    action local maildir alias <aliases> userbase <users>\n\
                    match for domain <inline> rcpt-to <pairs> action local\n";
        let config = config::parse("t.conf", text, &ParseOptions::default()).unwrap();
        let l = StaticLookups::from_config(&config, &local(), |path| {
            assert_eq!(path, "/etc/mail/aliases");
            Ok("root: alice\n".into())
        })
        .unwrap();
        assert!(l.check("inline", Service::Domain, "example.net").unwrap());
        assert_eq!(
            l.lookup("aliases", Service::Alias, "ROOT")
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        assert!(l.check("pairs", Service::Mailaddr, "alice-tag@x").unwrap());
        assert!(matches!(
            l.check("users", Service::Userinfo, "x"),
            Err(LookupError::NoSuchTable(_))
        ));
        let err =
            StaticLookups::from_config(&config, &local(), |_| Err("Permission denied".into()))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "table <aliases>: cannot read /etc/mail/aliases: Permission denied"
        );
        let err =
            StaticLookups::from_config(&config, &local(), |_| Ok("a b\nc\n".into())).unwrap_err();
        assert!(matches!(err, LoadError::Parse { .. }), "{err}");
    }
}
