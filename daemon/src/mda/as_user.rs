//! Delivering with the recipient's rights.
//!
//! When the daemon runs as root, files are written by the `petrel-deliver` helper, started with
//! the recipient's uid and gid (the standard library's `Command::uid` also drops supplementary
//! groups): a user who plants a symbolic link or a hard link in the path can then only make the
//! helper write where that user could write anyway. The helper refuses to run as root.
//!
//! # The helper's interface
//!
//! ```text
//! petrel-deliver maildir [--junk] | mbox
//!     --sender ADDR --hostname NAME --lock-timeout-ms N
//!     -- PATH DELIVERED-TO EXTENSION [PATH DELIVERED-TO EXTENSION …]
//! ```
//!
//! The message, as queued (CRLF), comes on standard input. Each group of three arguments after
//! `--` is one recipient's copy (an empty EXTENSION for none). For each, in order, the helper
//! prints one line on standard output: `ok`, `temporary REASON` or `permanent REASON`, then exits
//! 0. Anything else (a crash, a usage error: exit 64, running as root: exit 75) leaves copies
//! without a line, which the daemon counts as temporary failures.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;

use super::error::{DeliveryError, EX_TEMPFAIL, fan_out};
use super::local::{self, FileMethod};
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
    cmd.arg("--");
    for (rcpt, path) in targets {
        cmd.arg(path)
            .arg(rcpt.original())
            .arg(rcpt.extension.as_deref().unwrap_or(""));
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

/// The helper's arguments.
#[derive(Debug, PartialEq, Eq)]
struct HelperArgs {
    method: HelperMethod,
    sender: String,
    hostname: String,
    lock_timeout: Duration,
    targets: Vec<(PathBuf, String, Option<String>)>,
}

fn parse_args(args: Vec<OsString>) -> Result<HelperArgs, String> {
    let mut args = args.into_iter();
    let mut next = |what: &str| -> Result<Option<String>, String> {
        args.next()
            .map(|a| {
                a.into_string()
                    .map_err(|a| format!("{what} {a:?} is not UTF-8"))
            })
            .transpose()
    };
    let mut method = match next("method")?.as_deref() {
        Some("maildir") => HelperMethod::Maildir { junk: false },
        Some("mbox") => HelperMethod::Mbox,
        m => return Err(format!("unknown method {m:?}")),
    };
    let mut sender = None;
    let mut hostname = None;
    let mut lock_timeout = Duration::from_secs(30);
    loop {
        let option = next("option")?.ok_or("missing --")?;
        let mut value = |what: &str| next(what)?.ok_or_else(|| format!("missing {what}"));
        match option.as_str() {
            "--junk" if method != HelperMethod::Mbox => {
                method = HelperMethod::Maildir { junk: true };
            }
            "--sender" => sender = Some(value("sender")?),
            "--hostname" => hostname = Some(value("host name")?),
            "--lock-timeout-ms" => {
                let ms = value("lock timeout")?;
                let ms = ms
                    .parse()
                    .map_err(|_| format!("invalid lock timeout {ms:?}"))?;
                lock_timeout = Duration::from_millis(ms);
            }
            "--" => break,
            a => return Err(format!("unknown option {a:?}")),
        }
    }
    let mut targets = Vec::new();
    while let Some(path) = next("path")? {
        let delivered_to = next("recipient")?.ok_or("missing recipient")?;
        let extension = next("extension")?.ok_or("missing extension")?;
        let extension = Some(extension).filter(|e| !e.is_empty());
        targets.push((PathBuf::from(path), delivered_to, extension));
    }
    if targets.is_empty() {
        return Err("no mailbox given".into());
    }
    Ok(HelperArgs {
        method,
        sender: sender.ok_or("missing --sender")?,
        hostname: hostname.unwrap_or_else(|| super::maildir::hostname().to_owned()),
        lock_timeout,
        targets,
    })
}

/// The `petrel-deliver` program (see the [module documentation](self)).
#[must_use]
pub fn helper_main() -> ExitCode {
    let args = match parse_args(std::env::args_os().skip(1).collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("petrel-deliver: {e}");
            eprintln!(
                "usage: petrel-deliver maildir [--junk] | mbox --sender ADDR [--hostname NAME] \
                 [--lock-timeout-ms N] -- PATH DELIVERED-TO EXTENSION ..."
            );
            return ExitCode::from(64);
        }
    };
    if rustix::process::geteuid().is_root() {
        // The whole point is not to write as root.
        eprintln!("petrel-deliver: refusing to run as root");
        return ExitCode::from(EX_TEMPFAIL as u8);
    }
    let mut message = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut message) {
        eprintln!("petrel-deliver: reading the message: {e}");
        return ExitCode::from(EX_TEMPFAIL as u8);
    }
    let method = match args.method {
        HelperMethod::Maildir { .. } => FileMethod::Maildir,
        HelperMethod::Mbox => FileMethod::Mbox,
    };
    let junk = args.method == HelperMethod::Maildir { junk: true };
    let jobs: Vec<local::Job<'_>> = args
        .targets
        .iter()
        .map(|(path, delivered_to, extension)| local::Job {
            sender: &args.sender,
            message: &message,
            path,
            delivered_to,
            extension: extension.as_deref(),
            junk,
        })
        .collect();
    let results = local::deliver(method, &jobs, &args.hostname, args.lock_timeout);
    let mut out = std::io::stdout().lock();
    for r in results {
        let line = match r {
            Ok(()) => "ok".to_owned(),
            Err(e) => {
                let class = if e.is_temporary() {
                    "temporary"
                } else {
                    "permanent"
                };
                format!("{class} {}", e.to_string().replace(['\r', '\n'], " "))
            }
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(EX_TEMPFAIL as u8);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(EX_TEMPFAIL as u8);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn helper_arguments() {
        let parsed = parse_args(args(&[
            "maildir",
            "--junk",
            "--sender",
            "-odd@example.org",
            "--hostname",
            "mx",
            "--lock-timeout-ms",
            "1500",
            "--",
            "/home/bob/Maildir",
            "bob@example.org",
            "",
            "/home/bob/Maildir",
            "bob+lists@example.org",
            "lists",
        ]))
        .unwrap();
        assert_eq!(parsed.method, HelperMethod::Maildir { junk: true });
        assert_eq!(parsed.sender, "-odd@example.org");
        assert_eq!(parsed.lock_timeout, Duration::from_millis(1500));
        assert_eq!(parsed.targets.len(), 2);
        assert_eq!(parsed.targets[0].2, None);
        assert_eq!(parsed.targets[1].2.as_deref(), Some("lists"));

        assert!(parse_args(args(&["mbox", "--sender", "a", "--"])).is_err());
        assert!(parse_args(args(&["mbox", "--", "/x", "a", ""])).is_err());
        assert!(parse_args(args(&["mbox", "--sender", "a", "--", "/x", "a"])).is_err());
        assert!(
            parse_args(args(&[
                "mbox", "--junk", "--sender", "a", "--", "/x", "a", ""
            ]))
            .is_err()
        );
        assert!(parse_args(args(&["exec", "--sender", "a", "--", "/x", "a", ""])).is_err());
    }
}
