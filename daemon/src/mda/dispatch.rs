//! From a [`DeliveryRequest`] to one outcome per recipient: the checks made before any
//! method, the choice between delivering in-process and through the helper, and the log line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::as_user::{self, RunAs};
use super::local::{self, FileMethod};
use super::{
    DeliveryError, DeliveryRequest, LocalUser, MaildirJob, Method, Options, Outcome, Recipient,
    command, error, lmtp, message,
};

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
                // One helper run carries one message from one sender.
                let message = jobs
                    .iter()
                    .position(|j| std::ptr::eq(j.message, job.message) && j.sender == job.sender)
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
        // One copy of each message, however many recipients share it (the writers convert
        // each distinct message once, too).
        let mut copies: Vec<(&[u8], Arc<[u8]>)> = Vec::new();
        let mut owned = Vec::with_capacity(in_process.len());
        for &i in &in_process {
            let job = &jobs[i];
            let message = match copies.iter().find(|(m, _)| std::ptr::eq(*m, job.message)) {
                Some((_, arc)) => arc.clone(),
                None => {
                    let arc: Arc<[u8]> = job.message.into();
                    copies.push((job.message, arc.clone()));
                    arc
                }
            };
            owned.push(OwnedJob::new(
                job.sender,
                message,
                job.recipient,
                job.path,
                job.junk,
            ));
        }
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
        // A maildir elsewhere (a virtual user's spool) does not need the home directory.
        Method::Maildir { path, .. } => {
            rcpt.user.home.is_absolute() && path.starts_with(&rcpt.user.home)
        }
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
    unique: Option<String>,
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
            unique: rcpt.unique.clone(),
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
            unique: self.unique.as_deref(),
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
