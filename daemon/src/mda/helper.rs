//! `petrel-deliver`: the helper that writes files with a user's rights (see
//! [`as_user`](super::as_user) for when and how the daemon starts it).
//!
//! # The helper's interface
//!
//! ```text
//! petrel-deliver maildir [--junk] | mbox
//!     --sender ADDR --hostname NAME --lock-timeout-ms N [--named]
//!     -- PATH DELIVERED-TO EXTENSION [UNIQUE] [PATH DELIVERED-TO EXTENSION [UNIQUE] …]
//! ```
//!
//! The message, as queued (CRLF), comes on standard input. Each group of three arguments after
//! `--` is one recipient's copy (an empty EXTENSION for none); with `--named`, each group has a
//! fourth, the delivery's stable maildir name (empty for none; see
//! [`Recipient::unique`](super::Recipient::unique)). For each, in order, the helper
//! prints one line on standard output: `ok`, `temporary REASON` or `permanent REASON`, then exits
//! 0. Anything else (a crash, a usage error: exit 64, running as root: exit 75) leaves copies
//! without a line, which the daemon counts as temporary failures.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::as_user::HelperMethod;
use super::error::EX_TEMPFAIL;
use super::local::{self, FileMethod};

/// The helper's arguments.
#[derive(Debug, PartialEq, Eq)]
struct HelperArgs {
    method: HelperMethod,
    sender: String,
    hostname: String,
    lock_timeout: Duration,
    /// Path, delivered-to, extension, stable name.
    targets: Vec<Target>,
}

type Target = (PathBuf, String, Option<String>, Option<String>);

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
    let mut named = false;
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
            "--named" => named = true,
            "--" => break,
            a => return Err(format!("unknown option {a:?}")),
        }
    }
    let mut targets = Vec::new();
    while let Some(path) = next("path")? {
        let delivered_to = next("recipient")?.ok_or("missing recipient")?;
        let extension = next("extension")?.ok_or("missing extension")?;
        let extension = Some(extension).filter(|e| !e.is_empty());
        let unique = if named {
            let unique = next("unique name")?.ok_or("missing unique name")?;
            Some(unique).filter(|u| !u.is_empty())
        } else {
            None
        };
        targets.push((PathBuf::from(path), delivered_to, extension, unique));
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
                 [--lock-timeout-ms N] [--named] -- PATH DELIVERED-TO EXTENSION [UNIQUE] ..."
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
        .map(|(path, delivered_to, extension, unique)| local::Job {
            sender: &args.sender,
            message: &message,
            path,
            delivered_to,
            extension: extension.as_deref(),
            junk,
            unique: unique.as_deref(),
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

        let named = parse_args(args(&[
            "maildir", "--sender", "a", "--named", "--", "/x", "a", "", "1.E2", "/y", "b", "", "",
        ]))
        .unwrap();
        assert_eq!(named.targets[0].3.as_deref(), Some("1.E2"));
        assert_eq!(named.targets[1].3, None);
        assert!(
            parse_args(args(&[
                "maildir", "--sender", "a", "--named", "--", "/x", "a", ""
            ]))
            .is_err()
        );
    }
}
