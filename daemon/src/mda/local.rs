//! File deliveries (maildir, mbox, file) as plain blocking code, shared by the daemon (on a
//! blocking thread, as its own user) and by the `petrel-deliver` helper (as the recipient).

use std::path::Path;
use std::time::Duration;

use super::error::DeliveryError;
use super::{maildir, mbox, message};

/// The file-based methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileMethod {
    /// A maildir.
    Maildir,
    /// An mbox (the `mbox` method or a `/path` target): appended to under locks.
    Mbox,
}

/// One copy of one message for one recipient.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// The envelope sender, empty for `<>`.
    pub sender: &'a str,
    /// The message as queued (CRLF).
    pub message: &'a [u8],
    /// The maildir or mbox.
    pub path: &'a Path,
    /// The address for `Delivered-To:`.
    pub delivered_to: &'a str,
    /// The recipient's sub-address (maildir folder choice).
    pub extension: Option<&'a str>,
    /// Maildir: file the message into `.Junk` if it is marked as spam (the `junk` option).
    pub junk: bool,
    /// Maildir: the stable name of this delivery (see [`super::Recipient::unique`]).
    pub unique: Option<&'a str>,
}

/// Converts each distinct message once, however many recipients it has.
struct Converted<'a> {
    cache: Vec<(&'a [u8], Vec<u8>)>,
    convert: fn(&[u8]) -> Vec<u8>,
}

impl<'a> Converted<'a> {
    fn new(convert: fn(&[u8]) -> Vec<u8>) -> Self {
        Converted {
            cache: Vec::new(),
            convert,
        }
    }

    fn index(&mut self, message: &'a [u8]) -> usize {
        if let Some(i) = self
            .cache
            .iter()
            .position(|(m, _)| std::ptr::eq(*m, message))
        {
            return i;
        }
        self.cache.push((message, (self.convert)(message)));
        self.cache.len() - 1
    }
}

/// Delivers every job with `method`; one result per job, in order.
pub fn deliver(
    method: FileMethod,
    jobs: &[Job<'_>],
    hostname: &str,
    lock_timeout: Duration,
) -> Vec<Result<(), DeliveryError>> {
    match method {
        FileMethod::Maildir => deliver_maildir(jobs, hostname),
        FileMethod::Mbox => deliver_mbox(jobs, lock_timeout),
    }
}

fn deliver_maildir(jobs: &[Job<'_>], hostname: &str) -> Vec<Result<(), DeliveryError>> {
    let mut bodies = Converted::new(message::to_lf);
    let prepared: Vec<(usize, Vec<u8>, bool)> = jobs
        .iter()
        .map(|job| {
            let body = bodies.index(job.message);
            let head = message::trace_headers(job.sender, job.delivered_to);
            (body, head, job.junk && message::is_spam(job.message))
        })
        .collect();
    let items: Vec<maildir::Item<'_>> = jobs
        .iter()
        .zip(&prepared)
        .map(|(job, (body, head, junk))| maildir::Item {
            root: job.path,
            junk: *junk,
            extension: job.extension,
            head,
            body: &bodies.cache[*body].1,
            unique: job.unique,
        })
        .collect();
    maildir::write_batch(&items, hostname)
        .into_iter()
        .zip(jobs)
        .map(|(r, job)| {
            r.map(|file| {
                tracing::debug!(rcpt = job.delivered_to, file = %file.display(), "maildir: delivered");
            })
        })
        .collect()
}

fn deliver_mbox(jobs: &[Job<'_>], lock_timeout: Duration) -> Vec<Result<(), DeliveryError>> {
    let mut bodies = Converted::new(message::mbox_body);
    let now = message::now_secs();
    let prepared: Vec<(usize, Vec<u8>)> = jobs
        .iter()
        .map(|job| {
            let mut head = message::mbox_from_line(job.sender, now);
            head.extend(message::trace_headers(job.sender, job.delivered_to));
            (bodies.index(job.message), head)
        })
        .collect();
    let mut results: Vec<Option<Result<(), DeliveryError>>> = jobs.iter().map(|_| None).collect();
    // One lock and one sync per mailbox.
    let mut paths: Vec<&Path> = jobs.iter().map(|j| j.path).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let members: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].path == path).collect();
        let entries: Vec<mbox::Entry<'_>> = members
            .iter()
            .map(|&i| mbox::Entry {
                head: &prepared[i].1,
                body: &bodies.cache[prepared[i].0].1,
            })
            .collect();
        for (i, r) in members
            .into_iter()
            .zip(mbox::append(path, &entries, lock_timeout))
        {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err(DeliveryError::Temporary("delivery not attempted".into())))
        })
        .collect()
}
