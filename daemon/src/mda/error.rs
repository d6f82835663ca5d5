//! Why a local delivery failed, and whether trying again later can help.
//!
//! # Classification
//!
//! The queue retries a temporary failure until the message expires and bounces a permanent one
//! at once, so the rule is: **permanent only when nothing will change without someone editing
//! the configuration, the user database or the file system by hand**; when in doubt, temporary
//! (a mistaken retry costs a little time, a mistaken bounce loses the mail).
//!
//! | failure | class | why |
//! | --- | --- | --- |
//! | `ENOSPC`, `EDQUOT`, `EFBIG` | temporary | the user or the operator frees space |
//! | `EAGAIN`, `EINTR`, `EBUSY`, `EIO`, `ESTALE`, `ENOMEM`, `EMFILE`, `ENFILE`, `EROFS` | temporary | load, a flaky or remounted file system |
//! | lock not obtained in time | temporary | a mail reader holds the mailbox |
//! | `EACCES`, `EPERM` | permanent | permissions do not change by themselves |
//! | `ENOENT`, `ENOTDIR`, `EISDIR`, `ELOOP`, `ENAMETOOLONG`, `EINVAL`, `EXDEV` | permanent | the path is wrong for good |
//! | a symbolic link, a hard link or a special file where a mailbox should be | permanent | refused on purpose (symlink attacks) |
//! | the user's home directory does not exist | permanent | the account is gone or misconfigured |
//! | a relative mailbox path, an unusable address | permanent | configuration |
//! | a mail loop (`Delivered-To:` already names the recipient) | permanent | as OpenSMTPD |
//! | any other errno | temporary | the safe default |
//! | command: exit 0 | delivered | |
//! | command: `EX_TEMPFAIL` (75), `EX_OSERR` (71), killed by a signal, timed out, could not start, stopped reading its input early | temporary | as OpenSMTPD |
//! | command: any other exit status | permanent | as OpenSMTPD |
//! | LMTP: connection refused or lost, timeouts, 4xx | temporary | |
//! | LMTP: 5xx | permanent | |

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use rustix::io::Errno;
use thiserror::Error;

/// A failed local delivery. [`DeliveryError::is_temporary`] tells how the queue should treat it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// A system call on a path failed; `errno` decides the class.
    #[error("{op} {}: {error}", path.display())]
    Io {
        /// What was being done (`"creating"`, `"writing"`, `"renaming into"` …).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The system's error.
        error: io::Error,
    },
    /// A mailbox lock was not obtained in time.
    #[error("timed out after {}s waiting for the lock on {}", waited.as_secs(), path.display())]
    LockTimeout {
        /// The mailbox.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// The mailbox is a symbolic link, has other hard links, or is not a regular file.
    #[error("{} is a symbolic link, hard-linked or not a regular file: refusing to write to it", path.display())]
    UnsafeFile {
        /// The mailbox.
        path: PathBuf,
    },
    /// Mailbox paths must be absolute (they come expanded from the configuration).
    #[error("mailbox path {} is not absolute", path.display())]
    RelativePath {
        /// The path.
        path: PathBuf,
    },
    /// The user's home directory does not exist.
    #[error("home directory {} of user {user} does not exist", home.display())]
    NoHome {
        /// The user.
        user: String,
        /// The home directory.
        home: PathBuf,
    },
    /// The message already carries `Delivered-To:` with this recipient.
    #[error("mail loop: the message was already delivered to {0}")]
    Loop(String),
    /// Delivering would mean running a command as root, which is never done.
    #[error("refusing to run a delivery command as root for user {0} (give the user a uid)")]
    RootCommand(String),
    /// The user has a uid but no gid, so we cannot switch to it.
    #[error("user {0} has a uid but no gid: cannot deliver as that user")]
    NoGid(String),
    /// An address cannot be used in the protocol (LMTP) or environment.
    #[error("unusable address {address:?}: {reason}")]
    BadAddress {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// A command could not be started.
    #[error("could not start {what}: {error}")]
    Spawn {
        /// What was being started.
        what: String,
        /// The system's error.
        error: io::Error,
    },
    /// A command exited with a non-zero status.
    #[error("command exited with status {code}{}{}", sysexit_text(*code), output_text(output))]
    Exit {
        /// The exit status.
        code: i32,
        /// The last line of its output.
        output: String,
    },
    /// A command was killed by a signal.
    #[error("command killed by signal {signal}{}", output_text(output))]
    Signal {
        /// The signal.
        signal: i32,
        /// The last line of its output.
        output: String,
    },
    /// A command ran for too long and was killed.
    #[error("command timed out after {}s and was killed", .0.as_secs())]
    Timeout(Duration),
    /// A command exited successfully without reading the whole message.
    #[error("command exited before reading the whole message")]
    Premature,
    /// A failure already classified as temporary by its source (LMTP, the helper process).
    #[error("{0}")]
    Temporary(String),
    /// A failure already classified as permanent by its source (an LMTP 5xx reply).
    #[error("{0}")]
    Permanent(String),
}

impl DeliveryError {
    /// True when trying again later may succeed (see the [module documentation](self)).
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        match self {
            DeliveryError::Io { error, .. } => errno_is_temporary(error),
            DeliveryError::Exit { code, .. } => matches!(*code, EX_TEMPFAIL | EX_OSERR),
            DeliveryError::LockTimeout { .. }
            | DeliveryError::Spawn { .. }
            | DeliveryError::Signal { .. }
            | DeliveryError::Timeout(_)
            | DeliveryError::Premature
            | DeliveryError::Temporary(_) => true,
            DeliveryError::UnsafeFile { .. }
            | DeliveryError::RelativePath { .. }
            | DeliveryError::NoHome { .. }
            | DeliveryError::Loop(_)
            | DeliveryError::RootCommand(_)
            | DeliveryError::NoGid(_)
            | DeliveryError::BadAddress { .. }
            | DeliveryError::Permanent(_) => false,
        }
    }

    /// An [`Io`](DeliveryError::Io) error.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, error: io::Error) -> Self {
        let path = path.into();
        if Errno::from_io_error(&error) == Some(Errno::LOOP) {
            // O_NOFOLLOW on a symbolic link: say what happened rather than "too many levels".
            return DeliveryError::UnsafeFile { path };
        }
        DeliveryError::Io { op, path, error }
    }
}

/// The same failure for `n` recipients of a batch (an `io::Error` cannot be cloned, so the
/// copies carry its text and class).
pub(crate) fn fan_out(error: DeliveryError, n: usize) -> Vec<DeliveryError> {
    let reason = error.to_string();
    let temporary = error.is_temporary();
    let mut first = Some(error);
    (0..n)
        .map(|_| {
            first.take().unwrap_or_else(|| {
                if temporary {
                    DeliveryError::Temporary(reason.clone())
                } else {
                    DeliveryError::Permanent(reason.clone())
                }
            })
        })
        .collect()
}

/// `EX_TEMPFAIL` from `<sysexits.h>`.
pub(crate) const EX_TEMPFAIL: i32 = 75;
/// `EX_OSERR` from `<sysexits.h>`: OpenSMTPD also retries it.
pub(crate) const EX_OSERR: i32 = 71;

fn errno_is_temporary(error: &io::Error) -> bool {
    let Some(errno) = Errno::from_io_error(error) else {
        // Not from the system (a short write turned into WriteZero, say): retry.
        return true;
    };
    !matches!(
        errno,
        Errno::ACCESS
            | Errno::PERM
            | Errno::NOENT
            | Errno::NOTDIR
            | Errno::ISDIR
            | Errno::LOOP
            | Errno::NAMETOOLONG
            | Errno::INVAL
            | Errno::XDEV
    )
}

fn output_text(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// The meaning of a `<sysexits.h>` status, as OpenSMTPD logs it.
fn sysexit_text(code: i32) -> &'static str {
    match code {
        64 => " (command line usage error)",
        65 => " (data format error)",
        66 => " (cannot open input)",
        67 => " (user unknown)",
        68 => " (host name unknown)",
        69 => " (service unavailable)",
        70 => " (internal software error)",
        71 => " (system resource problem)",
        72 => " (critical OS file missing)",
        73 => " (can't create user output file)",
        74 => " (input/output error)",
        75 => " (temporary failure)",
        76 => " (remote error in protocol)",
        77 => " (permission denied)",
        78 => " (local configuration error)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_err(errno: Errno) -> DeliveryError {
        DeliveryError::io(
            "writing",
            "/x",
            io::Error::from_raw_os_error(errno.raw_os_error()),
        )
    }

    #[test]
    fn errno_classes() {
        for e in [
            Errno::NOSPC,
            Errno::DQUOT,
            Errno::AGAIN,
            Errno::IO,
            Errno::FBIG,
        ] {
            assert!(io_err(e).is_temporary(), "{e:?}");
        }
        for e in [Errno::ACCESS, Errno::PERM, Errno::NOTDIR, Errno::ISDIR] {
            assert!(!io_err(e).is_temporary(), "{e:?}");
        }
        assert!(matches!(
            io_err(Errno::LOOP),
            DeliveryError::UnsafeFile { .. }
        ));
    }

    #[test]
    fn exit_statuses() {
        let exit = |code| DeliveryError::Exit {
            code,
            output: "oops".into(),
        };
        assert!(exit(75).is_temporary());
        assert!(exit(71).is_temporary());
        assert!(!exit(1).is_temporary());
        assert_eq!(
            exit(67).to_string(),
            "command exited with status 67 (user unknown): oops"
        );
    }
}
