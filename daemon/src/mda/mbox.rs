//! Appending to an mbox file (the `mbox` method, and `/path` targets of aliases and `.forward`).
//!
//! Each copy is written as an mboxrd entry (see [`message`](super::message)): a `From ` line,
//! the trace fields, the message with `>From ` quoting, an empty line. The file is locked (see
//! [`lock`](super::lock)), appended to, and synced before the delivery counts; a failed write or
//! sync cuts the file back to its length before the failed copy, so a reader never sees half a
//! message.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::{DeliveryError, fan_out};
use super::lock::{DotLock, ProcessLock, lock_file};

/// One entry to append: the `From ` line and trace fields, then the quoted body (shared by the
/// copies of one message).
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// `From ` line and trace header fields, already in mbox form.
    pub head: &'a [u8],
    /// The rest, from [`mbox_body`](super::message::mbox_body).
    pub body: &'a [u8],
}

/// Appends `entries` to the mbox at `path` under one lock and one sync. Returns one result per
/// entry; an entry reported `Ok` is on disk.
pub fn append(
    path: &Path,
    entries: &[Entry<'_>],
    lock_timeout: Duration,
) -> Vec<Result<(), DeliveryError>> {
    match append_locked(path, entries, lock_timeout) {
        Ok(results) => results,
        // Nothing was written: every entry fails the same way.
        Err(e) => fan_out(e, entries.len()).into_iter().map(Err).collect(),
    }
}

fn append_locked(
    path: &Path,
    entries: &[Entry<'_>],
    lock_timeout: Duration,
) -> Result<Vec<Result<(), DeliveryError>>, DeliveryError> {
    if !path.is_absolute() {
        return Err(DeliveryError::RelativePath {
            path: path.to_owned(),
        });
    }
    let started = Instant::now();
    let deadline = started + lock_timeout;
    let _in_process = ProcessLock::acquire(path, started, deadline)?;
    let _dotlock = DotLock::acquire(path, started, deadline)?;
    let file = open_mailbox(path)?;
    lock_file(&file, path, started, deadline)?;

    // Only now, under the locks, is the length stable.
    let original = file
        .metadata()
        .map_err(|e| DeliveryError::io("reading the size of", path, e))?
        .len();
    let mut separator = missing_newlines(&file, original);
    let mut results = Vec::with_capacity(entries.len());
    let mut end = original;
    for entry in entries {
        match write_entry(&file, separator, entry) {
            Ok(n) => {
                end += n;
                separator = b"";
                results.push(Ok(()));
            }
            Err(e) => {
                // Cut off whatever part of this entry reached the file (O_APPEND writes go to
                // the new end afterwards).
                let _ = file.set_len(end);
                results.push(Err(DeliveryError::io("appending to", path, e)));
            }
        }
    }
    if let Err(e) = file.sync_all() {
        // Nothing is known to be on disk: undo every entry, so the retry cannot duplicate one.
        let _ = file.set_len(original);
        let _ = file.sync_all();
        let e = DeliveryError::io("syncing", path, e);
        return Ok(fan_out(e, entries.len()).into_iter().map(Err).collect());
    }
    Ok(results)
}

/// Opens (creating, mode 0600) the mailbox for appending, refusing symbolic links, hard-linked
/// files and anything but a regular file: mail.local's checks against tricking a privileged
/// writer into appending somewhere else.
fn open_mailbox(path: &Path) -> Result<File, DeliveryError> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| DeliveryError::io("opening", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| DeliveryError::io("inspecting", path, e))?;
    if !meta.file_type().is_file() || meta.nlink() != 1 {
        return Err(DeliveryError::UnsafeFile {
            path: path.to_owned(),
        });
    }
    Ok(file)
}

/// What must precede a new `From ` line so that it starts after an empty line even when the
/// previous writer left the file without one.
fn missing_newlines(file: &File, len: u64) -> &'static [u8] {
    if len == 0 {
        return b"";
    }
    let mut tail = [0u8; 2];
    let start = len.saturating_sub(2);
    let n = (len - start) as usize;
    if file.read_exact_at(&mut tail[..n], start).is_err() {
        return b"";
    }
    match &tail[..n] {
        [b'\n', b'\n'] => b"",
        [.., b'\n'] => b"\n",
        _ => b"\n\n",
    }
}

fn write_entry(mut file: &File, separator: &[u8], entry: &Entry<'_>) -> std::io::Result<u64> {
    file.write_all(separator)?;
    file.write_all(entry.head)?;
    file.write_all(entry.body)?;
    Ok((separator.len() + entry.head.len() + entry.body.len()) as u64)
}
