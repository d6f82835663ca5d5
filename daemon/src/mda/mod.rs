//! Local delivery: the `maildir`, `mbox`, `lmtp` and `mda` methods of `action`, and the
//! `/path` (file) and `|command` (pipe) targets of aliases and `.forward` files.
//!
//! The queue calls [`deliver`] once per recipient, or once per batch of recipients of one
//! message that go the same way (same method, same expanded path, command or destination), and
//! gets one [`Outcome`] per recipient: delivered, or a temporary or permanent failure with a
//! reason an operator can act on (see [`error`] for which failures are which). Paths and commands
//! arrive already expanded from format specifiers.
//!
//! # What each method does
//!
//! - [`Method::Maildir`]: `tmp/` → sync → `new/` → sync the directory (see [`maildir`]).
//! - [`Method::Mbox`] and [`Method::File`]: append an mboxrd entry under dot, `flock` and
//!   `fcntl` locks, sync, cut back on failure (see [`mbox`] and [`lock`]).
//! - [`Method::Lmtp`]: one LMTP transaction for all the recipients, one reply each, driving
//!   [`petrel_core::session::client::ClientSession`] (see [`lmtp`]).
//! - [`Method::Mda`] and [`Method::Pipe`]: `/bin/sh -c COMMAND` with the message on standard
//!   input and OpenSMTPD's environment (see [`command`]).
//!
//! Every method but LMTP hands over the message with LF line endings and with `Return-Path:`
//! and `Delivered-To:` prepended, as OpenSMTPD does; the LMTP server is the final delivery agent
//! and adds its own (a batch of recipients shares one copy, so it could not carry a per-recipient
//! `Delivered-To:` anyway). A message whose header already has `Delivered-To:` naming the
//! recipient has looped and fails permanently.
//!
//! # Whose rights
//!
//! The daemon may run as an ordinary user (a laptop, CI): everything is then done as that user,
//! whatever the recipient's uid. Running as root, a recipient with a uid other than 0 is never
//! written to as root, because a user who controls the directories on the way could make root
//! write anywhere (symbolic links, hard links): commands get the user's uid and gid on their
//! `Command`, and file deliveries run in the `petrel-deliver` helper started with the user's
//! uid and gid (see [`as_user`]). A recipient without a uid (a virtual user) is delivered as the
//! daemon itself: give virtual users the uid of a mail account (the `user` option of `action`)
//! when the daemon runs as root. Commands are never run as root: under a root daemon, a
//! recipient with uid 0 or without a uid fails permanently for `mda` and pipes (OpenSMTPD's
//! "MDA not allowed to deliver to root").

pub mod as_user;
pub mod command;
pub mod error;
pub mod lmtp;
pub mod local;
pub mod lock;
pub mod maildir;
pub mod mbox;
pub mod message;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use petrel_core::session::client::ClientTimeouts;

pub use as_user::helper_main;
pub use error::DeliveryError;

use as_user::RunAs;
use local::FileMethod;

/// The account a recipient's mail is delivered to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalUser {
    /// The user name (`USER`, `LOGNAME`; the LMTP recipient without `rcpt-to`).
    pub name: String,
    /// Its uid; `None` for a virtual user without a system account (delivered as the daemon).
    pub uid: Option<u32>,
    /// Its primary gid; needed with `uid` when the daemon runs as root.
    pub gid: Option<u32>,
    /// Its home directory (`HOME`, the working directory of commands).
    pub home: PathBuf,
}

/// One recipient of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Where the message goes now, `user@domain` (OpenSMTPD's `dest`): `RECIPIENT`, and the LMTP
    /// recipient with `rcpt-to`.
    pub address: String,
    /// The recipient as the client gave it, before alias or virtual expansion (OpenSMTPD's
    /// `rcpt`): `Delivered-To:`, `ORIGINAL_RECIPIENT`, `LOCAL`, `DOMAIN`. `None`: `address`.
    pub original: Option<String>,
    /// The sub-address (`bob+lists@…` gives `lists`): `EXTENSION`, and the maildir folder
    /// `.lists` when it exists.
    pub extension: Option<String>,
    /// The account.
    pub user: LocalUser,
}

impl Recipient {
    /// A recipient with no expansion history and no sub-address.
    pub fn new(address: impl Into<String>, user: LocalUser) -> Recipient {
        Recipient {
            address: address.into(),
            original: None,
            extension: None,
            user,
        }
    }

    /// The address as originally given.
    #[must_use]
    pub fn original(&self) -> &str {
        self.original.as_deref().unwrap_or(&self.address)
    }
}

/// Where an LMTP server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LmtpDest {
    /// `host:port` or `[address]:port`.
    Tcp {
        /// A host name or an address (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
    },
    /// A unix socket, by absolute path.
    Unix(PathBuf),
}

/// An LMTP destination that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid LMTP destination {dest:?}: {reason}")]
pub struct BadLmtpDest {
    /// The text given.
    pub dest: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl LmtpDest {
    /// Parses `host:port`, `[ipv6]:port` or `/path/to/socket`, the forms of `action … lmtp`.
    pub fn parse(s: &str) -> Result<LmtpDest, BadLmtpDest> {
        let bad = |reason| BadLmtpDest {
            dest: s.to_owned(),
            reason,
        };
        if s.starts_with('/') {
            return Ok(LmtpDest::Unix(PathBuf::from(s)));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ]"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("a port is required"))?;
            let host = host
                .get(..5)
                .filter(|p| p.eq_ignore_ascii_case("IPv6:"))
                .map_or(host, |_| &host[5..]);
            (host, port)
        } else {
            s.rsplit_once(':')
                .ok_or_else(|| bad("a port is required"))?
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = port.parse().map_err(|_| bad("invalid port"))?;
        Ok(LmtpDest::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for LmtpDest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LmtpDest::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            LmtpDest::Tcp { host, port } => write!(f, "{host}:{port}"),
            LmtpDest::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How to deliver (an `action`'s local method, or an alias target), with its paths and
/// commands already expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// `maildir [PATH] [junk]`.
    Maildir {
        /// The maildir.
        path: PathBuf,
        /// File messages marked `X-Spam: yes` into `.Junk`.
        junk: bool,
    },
    /// `mbox`: the user's mailbox, `/var/mail/USER` as the caller expands it.
    Mbox {
        /// The mailbox file.
        path: PathBuf,
    },
    /// `lmtp DEST [rcpt-to]`.
    Lmtp {
        /// The server.
        dest: LmtpDest,
        /// Send the recipient's address; otherwise the local user name.
        rcpt_to: bool,
    },
    /// `mda "COMMAND"`.
    Mda {
        /// The command, for `/bin/sh -c`.
        command: String,
    },
    /// A `/path` target of an alias or `.forward`: appended to like an mbox.
    File {
        /// The file.
        path: PathBuf,
    },
    /// A `|command` target of an alias or `.forward`: run like `mda`.
    Pipe {
        /// The command, for `/bin/sh -c`.
        command: String,
    },
}

impl Method {
    /// The method's name, for logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Method::Maildir { .. } => "maildir",
            Method::Mbox { .. } => "mbox",
            Method::Lmtp { .. } => "lmtp",
            Method::Mda { .. } => "mda",
            Method::File { .. } => "file",
            Method::Pipe { .. } => "pipe",
        }
    }
}

/// Settings shared by all deliveries.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `petrel-deliver` helper used to write files as another user; `None`: the one next to
    /// the running executable.
    pub helper: Option<PathBuf>,
    /// The host name in maildir file names and in LHLO; `None`: the system's.
    pub hostname: Option<String>,
    /// How long to wait for a mailbox lock before a temporary failure.
    pub lock_timeout: Duration,
    /// How long a command (or the helper) may run before it is killed (OpenSMTPD: 5 minutes).
    pub command_timeout: Duration,
    /// How much of a command's output is kept to explain a failure.
    pub output_limit: usize,
    /// How long to wait for an LMTP connection.
    pub lmtp_connect_timeout: Duration,
    /// How long to wait for each LMTP reply.
    pub lmtp_timeouts: ClientTimeouts,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            helper: None,
            hostname: None,
            lock_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            output_limit: 4096,
            lmtp_connect_timeout: Duration::from_secs(30),
            lmtp_timeouts: ClientTimeouts::default(),
        }
    }
}

impl Options {
    fn hostname(&self) -> String {
        match &self.hostname {
            Some(h) => maildir::escape_hostname(h),
            None => maildir::hostname().to_owned(),
        }
    }
}

static DEFAULT_OPTIONS: LazyLock<Options> = LazyLock::new(Options::default);

/// One message to deliver to some recipients by one method.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryRequest<'a> {
    /// The envelope sender, without brackets; empty for `<>`.
    pub sender: &'a str,
    /// The message as queued: headers and body, CRLF line endings.
    pub message: &'a [u8],
    /// The recipients; the outcomes come back in this order.
    pub recipients: &'a [Recipient],
    /// The method, expanded for these recipients.
    pub method: &'a Method,
    /// Timeouts and the helper's location.
    pub options: &'a Options,
}

impl<'a> DeliveryRequest<'a> {
    /// A request with the default [`Options`].
    #[must_use]
    pub fn new(
        sender: &'a str,
        message: &'a [u8],
        recipients: &'a [Recipient],
        method: &'a Method,
    ) -> Self {
        DeliveryRequest {
            sender,
            message,
            recipients,
            method,
            options: &DEFAULT_OPTIONS,
        }
    }
}

/// What became of one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The message is safely in the mailbox, or accepted by the command or LMTP server.
    Delivered,
    /// Not delivered; try again later. The reason is for logs and delay notices.
    Temporary(String),
    /// Not delivered and never will be: bounce. The reason goes into the bounce.
    Permanent(String),
}

impl Outcome {
    /// True for [`Outcome::Delivered`].
    #[must_use]
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered)
    }

    /// The reason of a failure.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Delivered => None,
            Outcome::Temporary(r) | Outcome::Permanent(r) => Some(r),
        }
    }
}

impl From<Result<(), DeliveryError>> for Outcome {
    fn from(result: Result<(), DeliveryError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Delivered,
            Err(e) if e.is_temporary() => Outcome::Temporary(e.to_string()),
            Err(e) => Outcome::Permanent(e.to_string()),
        }
    }
}

/// Delivers one message to its recipients; one outcome per recipient, in order. Never fails as
/// a whole: every problem is some recipient's outcome.
pub async fn deliver(req: DeliveryRequest<'_>) -> Vec<Outcome> {
    let n = req.recipients.len();
    let mut results: Vec<Option<Result<(), DeliveryError>>> = (0..n).map(|_| None).collect();
    let mut live = Vec::with_capacity(n);
    for (i, rcpt) in req.recipients.iter().enumerate() {
        match precheck(req.message, req.method, rcpt) {
            Ok(()) => live.push(i),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    let rcpts: Vec<&Recipient> = live.iter().map(|&i| &req.recipients[i]).collect();
    let done = match req.method {
        Method::Maildir { path, junk } => {
            files(&req, path, FileMethod::Maildir, *junk, &rcpts).await
        }
        Method::Mbox { path } | Method::File { path } => {
            files(&req, path, FileMethod::Mbox, false, &rcpts).await
        }
        Method::Lmtp { dest, rcpt_to } => {
            lmtp::deliver(dest, *rcpt_to, req.sender, req.message, &rcpts, req.options).await
        }
        Method::Mda { command } | Method::Pipe { command } => {
            let mut done = Vec::with_capacity(rcpts.len());
            for rcpt in &rcpts {
                done.push(
                    command::deliver(command, req.sender, req.message, rcpt, req.options).await,
                );
            }
            done
        }
    };
    for (i, r) in live.into_iter().zip(done) {
        results[i] = Some(r);
    }
    results
        .into_iter()
        .zip(req.recipients)
        .map(|(r, rcpt)| {
            let outcome = Outcome::from(r.unwrap_or_else(not_attempted));
            log(req.method, req.sender, rcpt, &outcome);
            outcome
        })
        .collect()
}

/// One copy of one message for one recipient in a [`deliver_maildir_batch`].
#[derive(Clone, Copy, Debug)]
pub struct MaildirJob<'a> {
    /// The envelope sender, empty for `<>`.
    pub sender: &'a str,
    /// The message as queued (CRLF).
    pub message: &'a [u8],
    /// The recipient.
    pub recipient: &'a Recipient,
    /// Its maildir, expanded.
    pub path: &'a Path,
    /// The `junk` option.
    pub junk: bool,
}

/// Delivers many messages into maildirs at once, syncing each directory once for all of them
/// (directory syncs are most of the cost of maildir delivery). One outcome per job, in order.
/// Jobs for users the daemon must switch to go through one helper process per user, message
/// and `junk` setting.
pub async fn deliver_maildir_batch(jobs: &[MaildirJob<'_>], options: &Options) -> Vec<Outcome> {
    let mut results: Vec<Option<Result<(), DeliveryError>>> = jobs.iter().map(|_| None).collect();
    let mut in_process = Vec::new();
    let mut helpers: Vec<HelperGroup> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let method = Method::Maildir {
            path: job.path.to_owned(),
            junk: job.junk,
        };
        let checked = precheck(job.message, &method, job.recipient)
            .and_then(|()| as_user::run_as(&job.recipient.user));
        match checked {
            Err(e) => results[i] = Some(Err(e)),
            Ok(RunAs::Daemon) => in_process.push(i),
            Ok(RunAs::User { uid, gid }) => {
                let message = jobs
                    .iter()
                    .position(|j| std::ptr::eq(j.message, job.message))
                    .unwrap_or(i);
                let key = HelperGroup {
                    uid,
                    gid,
                    message,
                    junk: job.junk,
                    members: Vec::new(),
                };
                match helpers.iter_mut().find(|h| h.same(&key)) {
                    Some(h) => h.members.push(i),
                    None => helpers.push(HelperGroup {
                        members: vec![i],
                        ..key
                    }),
                }
            }
        }
    }
    if !in_process.is_empty() {
        let owned: Vec<OwnedJob> = in_process
            .iter()
            .map(|&i| {
                let job = &jobs[i];
                OwnedJob::new(
                    job.sender,
                    job.message.into(),
                    job.recipient,
                    job.path,
                    job.junk,
                )
            })
            .collect();
        let done = blocking(FileMethod::Maildir, owned, options).await;
        for (i, r) in in_process.into_iter().zip(done) {
            results[i] = Some(r);
        }
    }
    for group in helpers {
        let targets: Vec<(&Recipient, &Path)> = group
            .members
            .iter()
            .map(|&i| (jobs[i].recipient, jobs[i].path))
            .collect();
        let first = &jobs[group.message];
        let method = as_user::HelperMethod::Maildir { junk: group.junk };
        let (uid, gid) = (group.uid, group.gid);
        let done = as_user::deliver_files(
            method,
            first.sender,
            first.message,
            &targets,
            uid,
            gid,
            options,
        )
        .await;
        for (i, r) in group.members.into_iter().zip(done) {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .zip(jobs)
        .map(|(r, job)| {
            let outcome = Outcome::from(r.unwrap_or_else(not_attempted));
            let method = Method::Maildir {
                path: job.path.to_owned(),
                junk: job.junk,
            };
            log(&method, job.sender, job.recipient, &outcome);
            outcome
        })
        .collect()
}

/// Maildir jobs that one helper process can do: same user, same message, same `junk`.
struct HelperGroup {
    uid: u32,
    gid: u32,
    /// The first job with this message.
    message: usize,
    junk: bool,
    members: Vec<usize>,
}

impl HelperGroup {
    fn same(&self, other: &HelperGroup) -> bool {
        (self.uid, self.gid, self.message, self.junk)
            == (other.uid, other.gid, other.message, other.junk)
    }
}

fn not_attempted() -> Result<(), DeliveryError> {
    Err(DeliveryError::Temporary("delivery not attempted".into()))
}

/// Checks made before any method runs: loops, and the user's home for the methods that need it.
fn precheck(message: &[u8], method: &Method, rcpt: &Recipient) -> Result<(), DeliveryError> {
    if let Some(addr) = message::delivered_before(message, &[&rcpt.address, rcpt.original()]) {
        return Err(DeliveryError::Loop(addr.to_owned()));
    }
    let needs_home = match method {
        Method::Maildir { path, .. } => path.starts_with(&rcpt.user.home),
        Method::Mda { .. } | Method::Pipe { .. } => true,
        Method::Mbox { .. } | Method::File { .. } | Method::Lmtp { .. } => false,
    };
    if needs_home {
        check_home(&rcpt.user)?;
    }
    Ok(())
}

fn check_home(user: &LocalUser) -> Result<(), DeliveryError> {
    let no_home = || DeliveryError::NoHome {
        user: user.name.clone(),
        home: user.home.clone(),
    };
    match std::fs::metadata(&user.home) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(no_home()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_home()),
        Err(e) => Err(DeliveryError::io(
            "inspecting home directory",
            &user.home,
            e,
        )),
    }
}

/// A file job with owned data, to move onto a blocking thread.
struct OwnedJob {
    sender: String,
    message: Arc<[u8]>,
    path: PathBuf,
    delivered_to: String,
    extension: Option<String>,
    junk: bool,
}

impl OwnedJob {
    fn new(sender: &str, message: Arc<[u8]>, rcpt: &Recipient, path: &Path, junk: bool) -> Self {
        OwnedJob {
            sender: sender.to_owned(),
            message,
            path: path.to_owned(),
            delivered_to: rcpt.original().to_owned(),
            extension: rcpt.extension.clone(),
            junk,
        }
    }

    fn as_job(&self) -> local::Job<'_> {
        local::Job {
            sender: &self.sender,
            message: &self.message,
            path: &self.path,
            delivered_to: &self.delivered_to,
            extension: self.extension.as_deref(),
            junk: self.junk,
        }
    }
}

/// Runs file deliveries as the daemon, on a blocking thread; a panic becomes a temporary
/// failure.
async fn blocking(
    method: FileMethod,
    jobs: Vec<OwnedJob>,
    options: &Options,
) -> Vec<Result<(), DeliveryError>> {
    let n = jobs.len();
    let hostname = options.hostname();
    let lock_timeout = options.lock_timeout;
    let work = move || {
        let borrowed: Vec<local::Job<'_>> = jobs.iter().map(OwnedJob::as_job).collect();
        local::deliver(method, &borrowed, &hostname, lock_timeout)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(results) => results,
        Err(e) => {
            let e = DeliveryError::Temporary(format!("delivery task failed: {e}"));
            error::fan_out(e, n).into_iter().map(Err).collect()
        }
    }
}

/// Maildir, mbox and file deliveries of one message: grouped by whose rights they need,
/// in-process or through the helper.
async fn files(
    req: &DeliveryRequest<'_>,
    path: &Path,
    method: FileMethod,
    junk: bool,
    rcpts: &[&Recipient],
) -> Vec<Result<(), DeliveryError>> {
    let mut results: Vec<Option<Result<(), DeliveryError>>> = rcpts.iter().map(|_| None).collect();
    let mut groups: Vec<(RunAs, Vec<usize>)> = Vec::new();
    for (i, rcpt) in rcpts.iter().enumerate() {
        match as_user::run_as(&rcpt.user) {
            Ok(run_as) => match groups.iter_mut().find(|g| g.0 == run_as) {
                Some(g) => g.1.push(i),
                None => groups.push((run_as, vec![i])),
            },
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    let message: Arc<[u8]> = req.message.into();
    for (run_as, members) in groups {
        let done = match run_as {
            RunAs::Daemon => {
                let owned = members
                    .iter()
                    .map(|&i| OwnedJob::new(req.sender, message.clone(), rcpts[i], path, junk))
                    .collect();
                blocking(method, owned, req.options).await
            }
            RunAs::User { uid, gid } => {
                if matches!(req.method, Method::Mbox { .. }) {
                    // The spool directory is usually writable by root only.
                    as_user::create_spool_mbox(path, uid, gid);
                }
                let targets: Vec<(&Recipient, &Path)> =
                    members.iter().map(|&i| (rcpts[i], path)).collect();
                let method = match method {
                    FileMethod::Maildir => as_user::HelperMethod::Maildir { junk },
                    FileMethod::Mbox => as_user::HelperMethod::Mbox,
                };
                let (sender, message) = (req.sender, req.message);
                as_user::deliver_files(method, sender, message, &targets, uid, gid, req.options)
                    .await
            }
        };
        for (i, r) in members.into_iter().zip(done) {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(not_attempted))
        .collect()
}

/// One log line per recipient, in the spirit of OpenSMTPD's `delivery:` lines.
fn log(method: &Method, sender: &str, rcpt: &Recipient, outcome: &Outcome) {
    let method = method.name();
    let user = rcpt.user.name.as_str();
    let to = rcpt.address.as_str();
    match outcome {
        Outcome::Delivered => {
            tracing::info!(method, from = sender, to, user, "delivery: Ok");
        }
        Outcome::Temporary(reason) => {
            tracing::warn!(method, from = sender, to, user, reason = %reason, "delivery: TempFail");
        }
        Outcome::Permanent(reason) => {
            tracing::warn!(method, from = sender, to, user, reason = %reason, "delivery: PermFail");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lmtp_destinations() {
        assert_eq!(
            LmtpDest::parse("localhost:24").unwrap(),
            LmtpDest::Tcp {
                host: "localhost".into(),
                port: 24
            }
        );
        assert_eq!(
            LmtpDest::parse("[IPv6:::1]:2424").unwrap().to_string(),
            "[::1]:2424"
        );
        assert_eq!(
            LmtpDest::parse("/run/dovecot/lmtp").unwrap(),
            LmtpDest::Unix("/run/dovecot/lmtp".into())
        );
        assert!(LmtpDest::parse("localhost").is_err());
        assert!(LmtpDest::parse(":24").is_err());
        assert!(LmtpDest::parse("host:port").is_err());
    }
}
