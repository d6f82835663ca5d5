//! The offline queue: messages `sendmail` left in `<state>/offline/` while the daemon was not
//! running. The daemon takes them at start, and looks again every minute (a message written
//! while the daemon was restarting must not wait for the next restart).
//!
//! Each message goes through the enqueue socket like any local submission, so the same rules
//! and filters decide about it. A file that is taken is removed; one the daemon refuses for
//! good is renamed `.refused-NAME` (and logged: its sender is gone, nobody else would know);
//! one refused for now stays for the next look.
//!
//! Anyone on the machine can write into the folder, and the daemon may be root: only regular
//! files with one link, opened without following symbolic links and starting with the offline
//! magic line, are read, so that a planted link cannot make the daemon mail out a file its
//! owner could not read.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use crate::submit::{self, SubmitError};

/// How often the folder is looked at while the daemon runs.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(60);

/// What one look at the folder did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Messages handed to the daemon.
    pub submitted: usize,
    /// Messages refused for good (renamed `.refused-…`).
    pub refused: usize,
    /// Messages left for later (refused for now).
    pub deferred: usize,
    /// Files that are not offline messages (renamed `.damaged-…`, or skipped).
    pub skipped: usize,
}

/// Takes every complete message in the offline folder of `data_dir`, submitting each to the
/// enqueue socket `socket`. `max_size` bounds what is read (the configuration's message size
/// and room for the envelope). Blocking.
#[must_use]
pub fn drain(data_dir: &Path, socket: &Path, max_size: u64) -> Drained {
    let dir = submit::offline_dir(data_dir);
    let mut done = Drained::default();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return done;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let data = match read_offline_file(&path, max_size) {
            Ok(data) => data,
            Err(why) => {
                tracing::warn!(file = %path.display(), why, "skipping a file in the offline queue");
                done.skipped += 1;
                continue;
            }
        };
        let message = match submit::parse_offline(&data) {
            Ok(m) => m,
            Err(why) => {
                tracing::error!(file = %path.display(), why, "not an offline message: set aside");
                set_aside(&dir, &name, "damaged");
                done.skipped += 1;
                continue;
            }
        };
        match submit::submit(socket, &message) {
            Ok(()) => {
                tracing::info!(
                    file = %path.display(),
                    from = %message.sender,
                    rcpts = message.recipients.len(),
                    "offline message submitted"
                );
                if let Err(e) = std::fs::remove_file(&path) {
                    // Submitted but still there: it would be submitted again. Loud.
                    tracing::error!(file = %path.display(), error = %e, "cannot remove a submitted offline message");
                }
                done.submitted += 1;
            }
            Err(SubmitError::Permanent(reply)) => {
                tracing::error!(
                    file = %path.display(),
                    from = %message.sender,
                    %reply,
                    "offline message refused: set aside"
                );
                set_aside(&dir, &name, "refused");
                done.refused += 1;
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "offline message not taken yet");
                done.deferred += 1;
            }
        }
    }
    done
}

/// Reads one file if it is a plain file with one link and not larger than `max_size`.
fn read_offline_file(path: &Path, max_size: u64) -> Result<Vec<u8>, &'static str> {
    let nofollow = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow.bits() as i32)
        .open(path)
        .map_err(|_| "cannot be opened (a symbolic link?)")?;
    let meta = file.metadata().map_err(|_| "cannot be examined")?;
    if !meta.is_file() {
        return Err("not a regular file");
    }
    if meta.nlink() != 1 {
        return Err("a file with other links");
    }
    if meta.len() > max_size {
        return Err("larger than the largest message taken");
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(max_size + 1)
        .read_to_end(&mut data)
        .map_err(|_| "cannot be read")?;
    Ok(data)
}

fn set_aside(dir: &Path, name: &str, why: &str) {
    let _ = std::fs::rename(dir.join(name), dir.join(format!(".{why}-{name}")));
}

/// Looks at the offline folder now and every [`SCAN_INTERVAL`] until `shutdown`.
pub async fn run(
    data_dir: PathBuf,
    socket: PathBuf,
    max_size: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (dir, sock) = (data_dir.clone(), socket.clone());
        let drained = tokio::task::spawn_blocking(move || drain(&dir, &sock, max_size)).await;
        if let Ok(d) = drained
            && d != Drained::default()
        {
            tracing::info!(
                submitted = d.submitted,
                refused = d.refused,
                deferred = d.deferred,
                skipped = d.skipped,
                "offline queue"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(SCAN_INTERVAL) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
