//! Delivering with the recipient's rights.
//!
//! When the daemon runs as root, files are written by the `petrel-deliver` helper, started with
//! the recipient's uid and gid (the standard library's `Command::uid` also drops supplementary
//! groups): a user who plants a symbolic link or a hard link in the path can then only make the
//! helper write where that user could write anyway. The helper refuses to run as root.
//!
//! The helper's interface is described in [`helper`](super::helper).

use std::fs::OpenOptions;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;

use super::error::{DeliveryError, fan_out};
use super::{LocalUser, Options, Recipient};

/// The `PATH` given to the helper and to delivery commands.
pub const SAFE_PATH: &str = "/bin:/usr/bin:/usr/local/bin";

/// Whose rights a delivery runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunAs {
    /// The daemon's own: it is not root, or the recipient is root or has no account.
    Daemon,
    /// Root switching to this uid and gid.
    User {
        /// The uid.
        uid: u32,
        /// The gid.
        gid: u32,
    },
}

/// Decides whose rights deliveries to `user` need.
pub fn run_as(user: &LocalUser) -> Result<RunAs, DeliveryError> {
    if !rustix::process::geteuid().is_root() {
        return Ok(RunAs::Daemon);
    }
    match user.uid {
        None | Some(0) => Ok(RunAs::Daemon),
        Some(uid) => match user.gid {
            Some(gid) => Ok(RunAs::User { uid, gid }),
            None => Err(DeliveryError::NoGid(user.name.clone())),
        },
    }
}

/// The file methods as the helper knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperMethod {
    /// `maildir [--junk]`.
    Maildir {
        /// File spam into `.Junk`.
        junk: bool,
    },
    /// `mbox` (also `/path` targets).
    Mbox,
}

/// Where the helper is: as configured, or next to the running executable.
fn helper_path(options: &Options) -> Result<PathBuf, DeliveryError> {
    let path = match &options.helper {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| DeliveryError::Temporary(format!("cannot locate petrel-deliver: {e}")))?
            .with_file_name("petrel-deliver"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(DeliveryError::Temporary(format!(
            "delivery helper {} not found: cannot deliver as another user",
            path.display()
        )))
    }
}

/// Runs the helper as `uid`:`gid` to deliver `message` to each of `targets`; one result per
/// target.
pub async fn deliver_files(
    method: HelperMethod,
    sender: &str,
    message: &[u8],
    targets: &[(&Recipient, &Path)],
    uid: u32,
    gid: u32,
    options: &Options,
) -> Vec<Result<(), DeliveryError>> {
    let n = targets.len();
    let all = |e: DeliveryError| fan_out(e, n).into_iter().map(Err).collect();
    let helper = match helper_path(options) {
        Ok(p) => p,
        Err(e) => return all(e),
    };
    let mut cmd = tokio::process::Command::new(&helper);
    match method {
        HelperMethod::Maildir { junk } => {
            cmd.arg("maildir");
            if junk {
                cmd.arg("--junk");
            }
        }
        HelperMethod::Mbox => {
            cmd.arg("mbox");
        }
    }
    cmd.arg("--sender").arg(sender);
    cmd.arg("--hostname").arg(options.hostname());
    cmd.arg("--lock-timeout-ms")
        .arg(options.lock_timeout.as_millis().to_string());
    let named = targets.iter().any(|(rcpt, _)| rcpt.unique.is_some());
    if named {
        cmd.arg("--named");
    }
    cmd.arg("--");
    for (rcpt, path) in targets {
        cmd.arg(path)
            .arg(rcpt.original())
            .arg(rcpt.extension.as_deref().unwrap_or(""));
        if named {
            cmd.arg(rcpt.unique.as_deref().unwrap_or(""));
        }
    }
    cmd.uid(uid)
        .gid(gid)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(error) => {
            return all(DeliveryError::Spawn {
                what: format!("{} as uid {uid}", helper.display()),
                error,
            });
        }
    };
    let Some(mut stdin) = child.stdin.take() else {
        return all(DeliveryError::Temporary(
            "helper has no standard input".into(),
        ));
    };
    let write = async move {
        // A helper that stops reading has failed; its output says why.
        let _ = stdin.write_all(message).await;
    };
    let run = async { tokio::join!(write, child.wait_with_output()).1 };
    let output = match tokio::time::timeout(options.command_timeout, run).await {
        // Dropping the child kills it.
        Err(_) => return all(DeliveryError::Timeout(options.command_timeout)),
        Ok(Err(e)) => {
            return all(DeliveryError::Temporary(format!(
                "waiting for the delivery helper: {e}"
            )));
        }
        Ok(Ok(output)) => output,
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let why = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_owned();
    (0..n)
        .map(|_| match lines.next() {
            Some("ok") => Ok(()),
            Some(line) => match line.split_once(' ') {
                Some(("temporary", reason)) => Err(DeliveryError::Temporary(reason.to_owned())),
                Some(("permanent", reason)) => Err(DeliveryError::Permanent(reason.to_owned())),
                _ => Err(DeliveryError::Temporary(format!(
                    "delivery helper said {line:?}"
                ))),
            },
            None => Err(DeliveryError::Temporary(format!(
                "delivery helper failed ({}): {why}",
                output.status
            ))),
        })
        .collect()
}

/// Creates a missing spool mailbox (`/var/mail/USER`) for its owner, as root, before the helper
/// runs: users usually cannot create files in the spool directory. Done only when that
/// directory belongs to root (so no user can have planted anything on the way), with
/// `O_EXCL | O_NOFOLLOW` (so an existing file or link is left alone). Failures are left for the
/// helper to report.
pub fn create_spool_mbox(path: &Path, uid: u32, gid: u32) {
    let Some(dir) = path.parent() else { return };
    let root_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == 0);
    if !rustix::process::geteuid().is_root() || !root_dir || path.symlink_metadata().is_ok() {
        return;
    }
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .and_then(|file| std::os::unix::fs::fchown(&file, Some(uid), Some(gid)));
    if let Err(e) = created {
        tracing::debug!(mbox = %path.display(), error = %e, "could not create the spool mailbox");
    }
}
