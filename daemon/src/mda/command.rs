//! Delivery through a command (the `mda` method and `|command` targets).
//!
//! The command runs as `/bin/sh -c COMMAND`, with the message (trace fields prepended, LF line
//! endings) on standard input, in the user's home directory, with the user's uid and gid when
//! the daemon is root (never as root: a recipient that would need it, uid 0 or a user without
//! a uid, fails permanently), in a process group of its own, and with the environment OpenSMTPD
//! gives
//! (`mda_unpriv.c`):
//!
//! | variable | value |
//! | --- | --- |
//! | `PATH` | `/bin:/usr/bin:/usr/local/bin` |
//! | `HOME`, `USER`, `LOGNAME` | the user's |
//! | `SHELL` | `/bin/sh` |
//! | `SENDER` | the envelope sender, empty for `<>` |
//! | `RECIPIENT` | the address delivered to (after expansion) |
//! | `ORIGINAL_RECIPIENT` | the address as received |
//! | `LOCAL`, `DOMAIN` | the two halves of `ORIGINAL_RECIPIENT` |
//! | `EXTENSION` | the sub-address, when there is one |
//!
//! Exit status 0 delivers, `EX_TEMPFAIL` (75) and `EX_OSERR` (71) and signals are temporary
//! failures, any other status permanent; the last line of the command's output (standard error
//! first, else standard output) is the reason. A command that outlives its timeout is killed
//! with its whole process group. As in OpenSMTPD, a command that exits 0 without reading the
//! whole message fails temporarily: it cannot have delivered it.

use std::os::unix::process::ExitStatusExt as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_core::expand::MailAddr;
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

use super::as_user::{self, RunAs, SAFE_PATH};
use super::error::DeliveryError;
use super::{Options, Recipient, message};

/// How long output is still collected after the command exited (a background child of the
/// command may keep the pipe open forever).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Runs `command` for `rcpt`.
pub async fn deliver(
    command: &str,
    sender: &str,
    msg: &[u8],
    rcpt: &Recipient,
    options: &Options,
) -> Result<(), DeliveryError> {
    let run_as = as_user::run_as(&rcpt.user)?;
    if run_as == RunAs::Daemon && rustix::process::geteuid().is_root() {
        // Mail content must never drive a root shell (OpenSMTPD: "MDA not allowed to deliver
        // to root").
        return Err(DeliveryError::RootCommand(rcpt.user.name.clone()));
    }
    let mut input = message::trace_headers(sender, rcpt.original());
    input.extend(message::to_lf(msg));

    let original = MailAddr::parse(rcpt.original());
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("HOME", &rcpt.user.home)
        .env("USER", &rcpt.user.name)
        .env("LOGNAME", &rcpt.user.name)
        .env("SHELL", "/bin/sh")
        .env("SENDER", sender)
        .env("RECIPIENT", &rcpt.address)
        .env("ORIGINAL_RECIPIENT", rcpt.original())
        .env("LOCAL", &original.user)
        .env("DOMAIN", &original.domain)
        .current_dir(&rcpt.user.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills whatever it started too.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(ext) = rcpt.extension.as_deref().filter(|e| !e.is_empty()) {
        cmd.env("EXTENSION", ext);
    }
    if let RunAs::User { uid, gid } = run_as {
        cmd.uid(uid).gid(gid);
    }
    let mut child = cmd.spawn().map_err(|error| DeliveryError::Spawn {
        what: format!("/bin/sh -c {command:?}"),
        error,
    })?;
    let pid = child.id();
    let stdout = Arc::new(Mutex::new(Tail::new(options.output_limit)));
    let stderr = Arc::new(Mutex::new(Tail::new(options.output_limit)));
    let readers = [
        child
            .stdout
            .take()
            .map(|r| tokio::spawn(collect(r, stdout.clone()))),
        child
            .stderr
            .take()
            .map(|r| tokio::spawn(collect(r, stderr.clone()))),
    ];
    let stdin = child.stdin.take();
    let write = async move {
        let Some(mut stdin) = stdin else {
            return false;
        };
        // Closing stdin (by dropping it) is the end of the message.
        stdin.write_all(&input).await.is_ok() && stdin.shutdown().await.is_ok()
    };
    let run = async { tokio::join!(write, child.wait()) };
    let waited = tokio::time::timeout(options.command_timeout, run).await;
    if waited.is_err()
        && let Some(pid) = pid.and_then(|p| Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
    for reader in readers.into_iter().flatten() {
        let abort = reader.abort_handle();
        if tokio::time::timeout(OUTPUT_GRACE, reader).await.is_err() {
            abort.abort();
        }
    }
    let output = || {
        let err = stderr.lock().map(|t| t.last_line()).unwrap_or_default();
        if err.is_empty() {
            stdout.lock().map(|t| t.last_line()).unwrap_or_default()
        } else {
            err
        }
    };
    let (wrote_all, status) = match waited {
        Err(_) => return Err(DeliveryError::Timeout(options.command_timeout)),
        Ok((_, Err(e))) => {
            return Err(DeliveryError::Temporary(format!(
                "waiting for the command: {e}"
            )));
        }
        Ok((wrote_all, Ok(status))) => (wrote_all, status),
    };
    if let Some(signal) = status.signal() {
        return Err(DeliveryError::Signal {
            signal,
            output: output(),
        });
    }
    match status.code() {
        Some(0) if wrote_all => Ok(()),
        Some(0) => Err(DeliveryError::Premature),
        Some(code) => Err(DeliveryError::Exit {
            code,
            output: output(),
        }),
        None => Err(DeliveryError::Temporary(format!(
            "command ended abnormally: {status}"
        ))),
    }
}

/// The last `limit` bytes of a stream.
#[derive(Debug)]
struct Tail {
    buf: Vec<u8>,
    limit: usize,
}

impl Tail {
    fn new(limit: usize) -> Tail {
        Tail {
            buf: Vec::new(),
            limit: limit.max(1),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > self.limit {
            let excess = self.buf.len() - self.limit;
            self.buf.drain(..excess);
        }
    }

    /// The last non-empty line, with control characters made visible, at most 512 bytes.
    fn last_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.buf);
        let line = text
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let mut out: String = line.escape_debug().collect();
        if out.len() > 512 {
            let mut cut = 512;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
        }
        out
    }
}

async fn collect(mut reader: impl AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if let Ok(mut t) = tail.lock() {
            t.push(&buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_line() {
        let mut t = Tail::new(16);
        t.push(b"first line\nsecond\n");
        t.push(b"third \"x\"\n\n");
        assert_eq!(t.last_line(), "third \\\"x\\\"");
        assert!(t.buf.len() <= 16);
        assert_eq!(Tail::new(8).last_line(), "");
    }
}
