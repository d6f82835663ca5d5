//! AUTH on listeners: credentials tables, password hashes, and the check behind
//! `Request::Auth`.
//!
//! A listener's `auth <creds>` / `auth-optional <creds>` names a table that maps user names to
//! crypt(3) hashes, one `username  hash` per line as `smtpctl encrypt` makes them:
//! bcrypt (`$2a$`, `$2b$`, `$2y$`), SHA-512-crypt (`$6$`) or SHA-256-crypt (`$5$`). An inline
//! table (`table creds { alice = "$2b$…" }`) works too.
//!
//! A `file:` table is read and checked when the daemon starts (a missing file or a malformed
//! line stops it, naming the file). Afterwards the file is re-read whenever its modification
//! time or size changes, so that users can be added or removed without a restart; if it then
//! cannot be read or parsed, AUTH answers `454 4.7.0` (a temporary failure: the client will try
//! again) until the file is fixed.
//!
//! `auth` without a table means system passwords in OpenSMTPD. Petrel refuses that
//! configuration at start ([`AuthError::SystemPasswords`]): checking them needs root to read
//! `/etc/shadow` and crypt(3) for the system's hash (yescrypt on current Debian), neither of which
//! this daemon should have.
//!
//! Verifying a password costs tens of milliseconds of CPU by design, so [`Authenticator::check`]
//! runs it on tokio's blocking pool. Every failure is answered at the same time after the
//! attempt ([`FAILURE_DELAY`]), so that the time of the answer tells nothing about whether the
//! user exists, and password guessing is slowed down.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use petrel_core::config::{Config, TableSource};
use petrel_core::rules::Entries;
use petrel_core::rules::table_file;
use petrel_core::session::{Credentials, Decision};
use petrel_core::smtp::{EnhancedCode, Reply};
use sha_crypt::{PasswordHasher as _, PasswordVerifier as _, ShaCrypt};

/// Time from an AUTH attempt to its failure reply (unless checking took longer).
pub const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Cost of the bcrypt hashes [`hash_password`] makes: 2^10 rounds, about 50 ms on a current
/// core, the default of OpenBSD's `encrypt(1)` for user passwords.
pub const BCRYPT_COST: u32 = 10;

/// A password hashing scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PasswordScheme {
    /// bcrypt (`$2b$`), what OpenSMTPD's `smtpctl encrypt` makes.
    Bcrypt,
    /// SHA-512-crypt (`$6$`), glibc's long-standing default.
    Sha512Crypt,
    /// SHA-256-crypt (`$5$`).
    Sha256Crypt,
}

impl PasswordScheme {
    /// The scheme of a stored hash, from its `$id$` prefix.
    #[must_use]
    pub fn of_hash(hash: &str) -> Option<PasswordScheme> {
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
            Some(PasswordScheme::Bcrypt)
        } else if hash.starts_with("$6$") {
            Some(PasswordScheme::Sha512Crypt)
        } else if hash.starts_with("$5$") {
            Some(PasswordScheme::Sha256Crypt)
        } else {
            None
        }
    }
}

impl std::str::FromStr for PasswordScheme {
    type Err = String;

    /// `bcrypt`, `sha512-crypt` (or `sha512`), `sha256-crypt` (or `sha256`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "bcrypt" | "blowfish" => Ok(PasswordScheme::Bcrypt),
            "sha512-crypt" | "sha512" => Ok(PasswordScheme::Sha512Crypt),
            "sha256-crypt" | "sha256" => Ok(PasswordScheme::Sha256Crypt),
            _ => Err(format!(
                "unknown password scheme \"{s}\" (bcrypt, sha512-crypt, sha256-crypt)"
            )),
        }
    }
}

/// Hashes `password` with a fresh random salt, in the crypt(3) form a credentials table holds
/// (for `petrelctl encrypt`).
///
/// # Panics
/// If the operating system cannot supply random bytes for the salt: there is no safe way to
/// make a hash without them.
#[must_use]
pub fn hash_password(password: &str, scheme: PasswordScheme) -> String {
    let mut salt = [0u8; 16];
    crate::tls::provider()
        .secure_random
        .fill(&mut salt)
        .expect("the system random number generator failed");
    match scheme {
        PasswordScheme::Bcrypt => bcrypt::hash_with_salt(password, BCRYPT_COST, salt)
            .expect("BCRYPT_COST is a valid cost")
            .format_for_version(bcrypt::Version::TwoB),
        PasswordScheme::Sha512Crypt | PasswordScheme::Sha256Crypt => {
            let hasher = if scheme == PasswordScheme::Sha512Crypt {
                ShaCrypt::SHA512
            } else {
                ShaCrypt::SHA256
            };
            // 12 random bytes make the 16 characters of salt the scheme allows.
            hasher
                .hash_password_with_salt(password.as_bytes(), &salt[..12])
                .expect("a 12-byte salt is valid")
                .to_string()
        }
    }
}

/// Why a stored hash cannot be checked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The `$id$` prefix names no supported scheme.
    #[error(
        "unsupported password hash (expected bcrypt $2b$, SHA-512-crypt $6$ or SHA-256-crypt $5$)"
    )]
    Unsupported,
    /// The hash has a known prefix but is malformed.
    #[error("malformed {0:?} password hash")]
    Malformed(PasswordScheme),
}

/// Checks `password` against a stored crypt(3) `hash`, in constant time with respect to the
/// password.
pub fn verify_password(password: &str, hash: &str) -> Result<bool, HashError> {
    let scheme = PasswordScheme::of_hash(hash).ok_or(HashError::Unsupported)?;
    match scheme {
        PasswordScheme::Bcrypt => {
            bcrypt::verify(password, hash).map_err(|_| HashError::Malformed(scheme))
        }
        PasswordScheme::Sha512Crypt | PasswordScheme::Sha256Crypt => {
            match ShaCrypt::default().verify_password(password.as_bytes(), hash) {
                Ok(()) => Ok(true),
                Err(sha_crypt::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(_) => Err(HashError::Malformed(scheme)),
            }
        }
    }
}

/// Why AUTH cannot be set up, or a credentials table cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// `auth` without a table (system passwords).
    #[error(
        "`auth` without a credentials table (system passwords) is not supported: \
         name a table of user names and password hashes, e.g. `auth <creds>` \
         with `table creds file:/etc/mail/creds`"
    )]
    SystemPasswords,
    /// The table is not declared.
    #[error("table <{0}> is not declared")]
    UnknownTable(String),
    /// The table's kind cannot hold credentials here.
    #[error("table <{table}>: {reason}")]
    UnsupportedTable {
        /// The table.
        table: String,
        /// Why.
        reason: String,
    },
    /// The table's file cannot be read.
    #[error("table <{table}>: {}: cannot read: {source}", path.display())]
    Read {
        /// The table.
        table: String,
        /// Its file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of the table's file is malformed.
    #[error("table <{table}>: {}:{line}: {message}", path.display())]
    Syntax {
        /// The table.
        table: String,
        /// Its file (empty for an inline table).
        path: PathBuf,
        /// The line, from 1 (the entry's position for an inline table).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A credentials table: user names (compared without regard to case, as OpenSMTPD's table
/// lookups are) and their password hashes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CredentialsTable {
    users: HashMap<String, String>,
}

impl fmt::Debug for CredentialsTable {
    /// Shows the user names only: hashes do not belong in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.users.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("CredentialsTable")
            .field("users", &names)
            .finish()
    }
}

impl CredentialsTable {
    /// A table from entries (a mapping of users to hashes). `table` and `path` only serve
    /// error messages. Every hash must be of a supported scheme, so that a typo shows at start
    /// rather than as a user who cannot log in.
    pub fn from_entries(
        table: &str,
        path: &Path,
        entries: &Entries,
    ) -> Result<CredentialsTable, AuthError> {
        let syntax = |line: usize, message: String| AuthError::Syntax {
            table: table.to_owned(),
            path: path.to_owned(),
            line,
            message,
        };
        let pairs = match entries {
            Entries::Map(pairs) => pairs.as_slice(),
            Entries::List(values) if values.is_empty() => &[],
            Entries::List(_) => {
                return Err(syntax(
                    1,
                    "a credentials table maps user names to password hashes (`user  hash`)"
                        .to_owned(),
                ));
            }
        };
        let mut users = HashMap::new();
        for (i, (user, hash)) in pairs.iter().enumerate() {
            if PasswordScheme::of_hash(hash).is_none() {
                return Err(syntax(
                    i + 1,
                    format!("user \"{user}\": {}", HashError::Unsupported),
                ));
            }
            users
                .entry(user.to_lowercase())
                .or_insert_with(|| hash.clone());
        }
        Ok(CredentialsTable { users })
    }

    /// Parses the text of a credentials file (`username  hash` per line).
    pub fn parse(table: &str, path: &Path, text: &str) -> Result<CredentialsTable, AuthError> {
        let entries = table_file::parse(text).map_err(|e| AuthError::Syntax {
            table: table.to_owned(),
            path: path.to_owned(),
            line: e.line,
            message: e.message,
        })?;
        CredentialsTable::from_entries(table, path, &entries).map_err(|e| match e {
            // from_entries counts entries; the administrator needs the line in the file.
            AuthError::Syntax {
                table,
                path,
                line,
                message,
            } => AuthError::Syntax {
                table,
                path,
                line: entry_line(text, line),
                message,
            },
            other => other,
        })
    }

    /// The hash stored for `user`.
    #[must_use]
    pub fn hash_of(&self, user: &str) -> Option<&str> {
        self.users.get(&user.to_lowercase()).map(String::as_str)
    }

    /// The number of users.
    #[must_use]
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when the table has no users.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// What identifies a version of a file, to notice that it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// Where a table's entries come from.
#[derive(Debug)]
enum Source {
    /// Fixed at start (inline in the configuration).
    Static(Arc<CredentialsTable>),
    /// A file, re-read when it changes.
    File {
        path: PathBuf,
        cache: Mutex<(FileStamp, Arc<CredentialsTable>)>,
    },
}

/// The result of an AUTH attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The password is right: the session is authenticated.
    Accepted,
    /// The user is unknown or the password wrong (the two are not told apart to the client).
    Rejected(RejectReason),
    /// The credentials could not be checked (the table cannot be read): try again later.
    Unavailable(String),
}

/// Why credentials were rejected, for the log (never shown to the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// No such user in the table.
    UnknownUser,
    /// The password does not match.
    WrongPassword,
    /// A PLAIN authorisation identity other than the user (acting for someone else is not
    /// supported).
    AuthzidMismatch,
    /// The stored hash cannot be checked.
    BadHash,
}

impl AuthOutcome {
    /// The answer to give the session machine.
    #[must_use]
    pub fn decision(&self) -> Decision {
        match self {
            AuthOutcome::Accepted => Decision::Accept,
            AuthOutcome::Rejected(_) => Decision::Reply(Reply::new(
                535,
                EnhancedCode::new(5, 7, 8),
                "Authentication credentials invalid",
            )),
            AuthOutcome::Unavailable(_) => Decision::Reply(Reply::new(
                454,
                EnhancedCode::new(4, 7, 0),
                "Temporary authentication failure",
            )),
        }
    }
}

/// Checks AUTH credentials against one listener's credentials table. Cheap to clone; clones
/// share the table.
#[derive(Clone, Debug)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    table: String,
    source: Source,
    failure_delay: Duration,
}

impl Authenticator {
    /// The authenticator of a listener's `auth`/`auth-optional` option: `table` is its table
    /// name (`None` for system passwords, which are refused). A `file:` table is read now.
    pub fn from_config(config: &Config, table: Option<&str>) -> Result<Authenticator, AuthError> {
        let name = table.ok_or(AuthError::SystemPasswords)?;
        let declared = config
            .table(name)
            .ok_or_else(|| AuthError::UnknownTable(name.to_owned()))?;
        match &declared.source {
            TableSource::File(path) => Authenticator::from_file(name, path),
            TableSource::Map(pairs) => Ok(Authenticator::with_table(
                name,
                CredentialsTable::from_entries(name, Path::new(""), &Entries::Map(pairs.clone()))?,
            )),
            TableSource::List(values) => Ok(Authenticator::with_table(
                name,
                CredentialsTable::from_entries(
                    name,
                    Path::new(""),
                    &Entries::List(values.clone()),
                )?,
            )),
            TableSource::Db(_) | TableSource::Proc(_) => Err(AuthError::UnsupportedTable {
                table: name.to_owned(),
                reason: "only file: and inline tables can hold credentials in this version"
                    .to_owned(),
            }),
        }
    }

    /// An authenticator over a fixed table.
    #[must_use]
    pub fn with_table(name: &str, table: CredentialsTable) -> Authenticator {
        Authenticator::new(name, Source::Static(Arc::new(table)))
    }

    /// An authenticator over a credentials file, read now (and again whenever it changes).
    pub fn from_file(name: &str, path: impl AsRef<Path>) -> Result<Authenticator, AuthError> {
        let path = path.as_ref().to_owned();
        let (stamp, table) = load_file(name, &path)?;
        Ok(Authenticator::new(
            name,
            Source::File {
                path,
                cache: Mutex::new((stamp, Arc::new(table))),
            },
        ))
    }

    fn new(name: &str, source: Source) -> Authenticator {
        Authenticator {
            inner: Arc::new(Inner {
                table: name.to_owned(),
                source,
                failure_delay: FAILURE_DELAY,
            }),
        }
    }

    /// The same authenticator with another delay before failure replies (tests use a short one).
    #[must_use]
    pub fn with_failure_delay(self, delay: Duration) -> Authenticator {
        Authenticator {
            inner: Arc::new(Inner {
                table: self.inner.table.clone(),
                source: match &self.inner.source {
                    Source::Static(t) => Source::Static(t.clone()),
                    Source::File { path, cache } => {
                        let cached = cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        Source::File {
                            path: path.clone(),
                            cache: Mutex::new(cached),
                        }
                    }
                },
                failure_delay: delay,
            }),
        }
    }

    /// The name of the table the credentials are checked against.
    #[must_use]
    pub fn table_name(&self) -> &str {
        &self.inner.table
    }

    /// Checks credentials. Hashing runs on the blocking pool; a failure is answered
    /// [`FAILURE_DELAY`] after the call started.
    pub async fn check(&self, credentials: &Credentials) -> AuthOutcome {
        let started = Instant::now();
        let inner = self.inner.clone();
        let credentials = credentials.clone();
        let outcome = tokio::task::spawn_blocking(move || inner.check_blocking(&credentials))
            .await
            .unwrap_or_else(|e| AuthOutcome::Unavailable(format!("check failed: {e}")));
        if outcome != AuthOutcome::Accepted {
            tokio::time::sleep_until((started + self.inner.failure_delay).into()).await;
        }
        outcome
    }
}

impl Inner {
    fn check_blocking(&self, credentials: &Credentials) -> AuthOutcome {
        let table = match self.current_table() {
            Ok(t) => t,
            Err(e) => return AuthOutcome::Unavailable(e.to_string()),
        };
        let user = &credentials.username;
        if !credentials.authzid.is_empty() && !credentials.authzid.eq_ignore_ascii_case(user) {
            return AuthOutcome::Rejected(RejectReason::AuthzidMismatch);
        }
        let Some(hash) = table.hash_of(user) else {
            return AuthOutcome::Rejected(RejectReason::UnknownUser);
        };
        match verify_password(&credentials.password, hash) {
            Ok(true) => AuthOutcome::Accepted,
            Ok(false) => AuthOutcome::Rejected(RejectReason::WrongPassword),
            Err(_) => AuthOutcome::Rejected(RejectReason::BadHash),
        }
    }

    /// The table as it is now: a file that changed since it was last read is read again.
    fn current_table(&self) -> Result<Arc<CredentialsTable>, AuthError> {
        let (path, cache) = match &self.source {
            Source::Static(table) => return Ok(table.clone()),
            Source::File { path, cache } => (path, cache),
        };
        let stamp = stamp_of(&self.table, path)?;
        let mut cached = cache.lock().unwrap_or_else(|p| p.into_inner());
        if cached.0 != stamp {
            let (stamp, table) = load_file(&self.table, path)?;
            tracing::info!(table = %self.table, path = %path.display(), users = table.len(), "credentials reloaded");
            *cached = (stamp, Arc::new(table));
        }
        Ok(cached.1.clone())
    }
}

/// The line of a table file on which entry `n` (from 1) starts: blank lines, comments and
/// continuation lines do not start entries.
fn entry_line(text: &str, n: usize) -> usize {
    let mut seen = 0;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with([' ', '\t']) {
            continue;
        }
        seen += 1;
        if seen == n {
            return i + 1;
        }
    }
    n
}

fn stamp_of(table: &str, path: &Path) -> Result<FileStamp, AuthError> {
    let meta = std::fs::metadata(path).map_err(|source| AuthError::Read {
        table: table.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    Ok(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

fn load_file(table: &str, path: &Path) -> Result<(FileStamp, CredentialsTable), AuthError> {
    // The stamp is taken before reading: a change during the read shows at the next check.
    let stamp = stamp_of(table, path)?;
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        table: table.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    Ok((stamp, CredentialsTable::parse(table, path, &text)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_in_every_scheme() {
        for scheme in [
            PasswordScheme::Bcrypt,
            PasswordScheme::Sha512Crypt,
            PasswordScheme::Sha256Crypt,
        ] {
            let hash = hash_password("s3cret", scheme);
            assert_eq!(PasswordScheme::of_hash(&hash), Some(scheme), "{hash}");
            assert_eq!(verify_password("s3cret", &hash), Ok(true), "{hash}");
            assert_eq!(verify_password("s3cret!", &hash), Ok(false), "{hash}");
        }
    }

    #[test]
    fn known_hashes_from_other_implementations_verify() {
        // glibc crypt(3) test vectors (`$5$`/`$6$` with the default 5000 rounds).
        let sha512 = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        let sha256 = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";
        assert_eq!(verify_password("Hello world!", sha512), Ok(true));
        assert_eq!(verify_password("Hello world!", sha256), Ok(true));
        // OpenBSD bcrypt vector with the $2a$ and $2y$ prefixes.
        let bcrypt = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        assert_eq!(verify_password("U*U", bcrypt), Ok(true));
        assert_eq!(
            verify_password("U*U", &bcrypt.replace("$2a$", "$2y$")),
            Ok(true)
        );
        assert_eq!(verify_password("x", "plain"), Err(HashError::Unsupported));
        assert_eq!(
            verify_password("x", "$6$"),
            Err(HashError::Malformed(PasswordScheme::Sha512Crypt))
        );
    }

    #[test]
    fn a_table_with_an_unknown_hash_is_refused_with_its_line() {
        let path = Path::new("/etc/mail/creds");
        let err = CredentialsTable::parse("creds", path, "# users\nalice $2b$10$x\nbob secret\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "table <creds>: /etc/mail/creds:3: user \"bob\": unsupported password hash \
             (expected bcrypt $2b$, SHA-512-crypt $6$ or SHA-256-crypt $5$)"
        );
    }

    #[test]
    fn credentials_debug_shows_no_hash() {
        let t = CredentialsTable::parse("c", Path::new("f"), "Alice $6$abc$def\n").unwrap();
        assert_eq!(format!("{t:?}"), "CredentialsTable { users: [\"alice\"] }");
        assert_eq!(t.hash_of("ALICE"), Some("$6$abc$def"));
    }
}
