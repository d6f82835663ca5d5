//! Mailbox locking.
//!
//! An mbox is one file that the delivery agent appends to while mail readers rewrite it, so both
//! sides must agree on a lock. No single kind of lock is honoured by every reader:
//!
//! - a **dot lock** (`mbox.lock`, created with `O_EXCL`) is what mutt, Dovecot, procmail,
//!   Postfix's local and mail.local all take; it also works over old NFS;
//! - **`fcntl`** (POSIX) locks are what Linux mail software uses by default (Postfix, Dovecot,
//!   mutt); on Linux they do not interact with `flock` locks at all;
//! - **`flock`** is what BSD software uses (mail.local's `O_EXLOCK`, `mail.mboxfile`).
//!
//! So Petrel takes all three, always in this order, each with a non-blocking attempt retried
//! until one shared deadline: the retries mean a reader that takes the same locks in another
//! order cannot deadlock with us, only make us wait, and the deadline turns a stuck lock into a
//! temporary failure. A dot lock that cannot be created because the directory is not writable
//! by the user (a `/var/mail` that only group `mail` may write, say) is skipped: the kernel
//! locks still exclude every cooperating writer, and a dot lock we cannot create is one no other
//! user of that account can hold either.
//!
//! One trap: a POSIX lock belongs to the *process* and is dropped when the process closes *any*
//! descriptor of the file. Two tasks of the daemon appending to the same mbox would break each
//! other's lock just by opening and closing it, so writers within the process are first
//! serialised by path ([`ProcessLock`]) before anything is opened.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use super::error::DeliveryError;

/// A dot lock older than this is taken to be left over from a crash and removed (procmail and
/// mutt use the same age).
const STALE_DOTLOCK: Duration = Duration::from_secs(300);

/// Retries a non-blocking attempt with a growing pause until it succeeds, fails for good, or
/// `deadline` passes.
fn retry<T>(
    path: &Path,
    started: Instant,
    deadline: Instant,
    mut attempt: impl FnMut() -> Result<Option<T>, DeliveryError>,
) -> Result<T, DeliveryError> {
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = attempt()? {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(DeliveryError::LockTimeout {
                path: path.to_owned(),
                waited: now - started,
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

static BUSY: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Mutex::default);

/// Serialises this process's writers to one mailbox (see the [module documentation](self)).
#[derive(Debug)]
pub struct ProcessLock {
    path: PathBuf,
}

impl ProcessLock {
    /// Waits until no other task of this process holds `path`.
    pub fn acquire(
        path: &Path,
        started: Instant,
        deadline: Instant,
    ) -> Result<ProcessLock, DeliveryError> {
        retry(path, started, deadline, || {
            let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
            Ok(busy.insert(path.to_owned()).then(|| ProcessLock {
                path: path.to_owned(),
            }))
        })
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        BUSY.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.path);
    }
}

/// A held `path.lock` file, removed on drop.
#[derive(Debug)]
pub struct DotLock {
    path: PathBuf,
}

impl DotLock {
    /// Creates `mailbox.lock`, waiting while another holder has it; `None` when the directory
    /// does not let us create it (see the [module documentation](self)).
    pub fn acquire(
        mailbox: &Path,
        started: Instant,
        deadline: Instant,
    ) -> Result<Option<DotLock>, DeliveryError> {
        let mut name = mailbox.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        retry(mailbox, started, deadline, || {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut file) => {
                    // The pid, as other dot lockers write it; purely informative.
                    let _ = writeln!(file, "{}", std::process::id());
                    Ok(Some(Some(DotLock { path: path.clone() })))
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    remove_if_stale(&path);
                    Ok(None)
                }
                Err(e)
                    if matches!(
                        Errno::from_io_error(&e),
                        Some(Errno::ACCESS | Errno::PERM | Errno::ROFS)
                    ) =>
                {
                    tracing::debug!(lock = %path.display(), error = %e,
                        "cannot create a dot lock; relying on flock and fcntl locks");
                    Ok(Some(None))
                }
                Err(e) => Err(DeliveryError::io("creating lock file", &path, e)),
            }
        })
    }
}

fn remove_if_stale(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok());
    if age.is_some_and(|age| age > STALE_DOTLOCK) {
        tracing::warn!(lock = %path.display(), "removing stale dot lock");
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes an exclusive `flock` and an exclusive `fcntl` lock on the whole of `file`. Both are
/// released when the file is closed.
pub fn lock_file(
    file: &File,
    path: &Path,
    started: Instant,
    deadline: Instant,
) -> Result<(), DeliveryError> {
    retry(path, started, deadline, || {
        match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(())),
            Err(Errno::WOULDBLOCK | Errno::INTR) => Ok(None),
            Err(e) => Err(DeliveryError::io("locking (flock)", path, e.into())),
        }
    })?;
    retry(path, started, deadline, || {
        match rustix::fs::fcntl_lock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(())),
            Err(Errno::AGAIN | Errno::ACCESS | Errno::INTR) => Ok(None),
            Err(e) => Err(DeliveryError::io("locking (fcntl)", path, e.into())),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_lock_excludes_and_times_out() {
        let path = Path::new("/nonexistent/petrel-lock-test");
        let now = Instant::now();
        let held = ProcessLock::acquire(path, now, now + Duration::from_secs(1)).unwrap();
        let start = Instant::now();
        let err = ProcessLock::acquire(path, start, start + Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, DeliveryError::LockTimeout { .. }));
        assert!(err.is_temporary());
        drop(held);
        ProcessLock::acquire(path, start, start + Duration::from_millis(50)).unwrap();
    }

    #[test]
    fn dot_lock_waits_for_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("mbox");
        let now = Instant::now();
        let held = DotLock::acquire(&mbox, now, now + Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert!(dir.path().join("mbox.lock").exists());
        let start = Instant::now();
        let err = DotLock::acquire(&mbox, start, start + Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, DeliveryError::LockTimeout { .. }));
        drop(held);
        assert!(!dir.path().join("mbox.lock").exists());
    }
}
