//! The greylisting store: the core's [`GreylistState`] shared by every session, and kept on disk
//! so that a restart forgets no one.
//!
//! Decisions are the core's ([`GreylistState::decide`]); this module only holds the state
//! behind a lock and writes it out. Writing is debounced: a change wakes a background task
//! that waits [`SAVE_DELAY`] and then writes the whole state (purged of expired records) to a
//! temporary file, syncs it, renames it over the state file and syncs the folder, so the file
//! on disk is always one complete state. Losing the last few seconds in a crash costs little:
//! a client whose first attempt was forgotten is deferred once more. [`Greylist::save_now`]
//! writes at shutdown.
//!
//! The store never refuses to start: a missing file is an empty state, and so is one that
//! cannot be read or parsed (with a warning naming it) — greylisting then starts over, which
//! delays mail but loses none.

use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use petrel_core::Time;
use petrel_core::filter::greylist::{GreylistSettings, GreylistState, Triplet, Verdict};
use tokio::sync::mpsc;

/// The state file's name in the data folder (`-d`, by default `petrel-data`).
pub const STATE_FILE: &str = "greylist.state";

/// How long a change waits before the state is written: changes within it share one write.
pub const SAVE_DELAY: Duration = Duration::from_secs(5);

/// A greylisting filter's state, shared by every session: cheap to clone, every clone the same
/// store.
#[derive(Clone, Debug)]
pub struct Greylist {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: GreylistSettings,
    path: PathBuf,
    /// A plain mutex: it is held only for a decision or a snapshot, never across an await.
    memory: Mutex<Memory>,
    /// Wakes the saving task. One slot: a pending wake-up already covers any later change.
    wake: mpsc::Sender<()>,
    /// Held while the file is written, so that an older snapshot never replaces a newer one.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Memory {
    state: GreylistState,
    /// Changed since the last write.
    dirty: bool,
    /// The latest time a check was made at: what expiry is judged against when saving, so the
    /// store reads no clock of its own (the simulator's time stays the only time).
    latest: Time,
}

impl Greylist {
    /// Opens the store kept in `path` (normally [`STATE_FILE`] in the data folder) and starts
    /// its saving task; needs a tokio runtime. A missing file is an empty state; one that
    /// cannot be read or parsed is an empty state too, with a warning naming it.
    pub async fn open(path: impl Into<PathBuf>, settings: GreylistSettings) -> Greylist {
        Greylist::open_with(path.into(), settings, SAVE_DELAY).await
    }

    async fn open_with(
        path: PathBuf,
        settings: GreylistSettings,
        save_delay: Duration,
    ) -> Greylist {
        let load_path = path.clone();
        let state = match tokio::task::spawn_blocking(move || load(&load_path)).await {
            Ok(state) => state,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let (wake, woken) = mpsc::channel(1);
        let inner = Arc::new(Inner {
            settings,
            path,
            memory: Mutex::new(Memory {
                state,
                dirty: false,
                latest: Time::ZERO,
            }),
            wake,
            writing: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(saver(Arc::downgrade(&inner), woken, save_delay));
        Greylist { inner }
    }

    /// A store kept in memory only: nothing is read or written (the simulator, whose hosts
    /// have no real disk for it).
    #[must_use]
    pub fn in_memory(settings: GreylistSettings) -> Greylist {
        // Nobody listens: wake-ups are dropped, and `save` has nothing to write to.
        let (wake, _) = mpsc::channel(1);
        Greylist {
            inner: Arc::new(Inner {
                settings,
                path: PathBuf::new(),
                memory: Mutex::new(Memory {
                    state: GreylistState::new(),
                    dirty: false,
                    latest: Time::ZERO,
                }),
                wake,
                writing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Decides on a recipient: the triplet of the client address, the sender (the mailbox
    /// without angle brackets, empty for the null sender) and the recipient, at `now`. Bypass
    /// tables, authenticated sessions and the like are the caller's to skip: every call counts
    /// as an attempt.
    pub fn check(&self, ip: IpAddr, sender: &str, recipient: &str, now: Time) -> Verdict {
        let triplet = Triplet::new(ip, sender, recipient, &self.inner.settings);
        let verdict = {
            let mut memory = self.inner.lock();
            memory.latest = memory.latest.max(now);
            memory.dirty = true;
            memory.state.decide(&self.inner.settings, &triplet, now)
        };
        // Full: a write is already due. Closed: the runtime is shutting down, and `save_now`
        // is the shutdown's business.
        let _ = self.inner.wake.try_send(());
        verdict
    }

    /// Writes the state now if it changed (at shutdown, so the last seconds are not lost).
    /// A failure is logged; the state stays in memory and is written again on the next change.
    pub async fn save_now(&self) {
        self.inner.save().await;
    }

    /// The filter's settings (the caller looks up the bypass table itself).
    #[must_use]
    pub fn settings(&self) -> &GreylistSettings {
        &self.inner.settings
    }

    /// Where the state is kept.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A copy of the current state.
    #[must_use]
    pub fn state(&self) -> GreylistState {
        self.inner.lock().state.clone()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Memory> {
        // A panic while deciding leaves a state that is still a state: keep using it.
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn save(&self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        let _writing = self.writing.lock().await;
        let text = {
            let mut memory = self.lock();
            if !memory.dirty {
                return;
            }
            memory.dirty = false;
            let now = memory.latest;
            memory.state.purge(&self.settings, now);
            memory.state.to_text()
        };
        let path = self.path.clone();
        let written =
            match tokio::task::spawn_blocking(move || write_atomically(&path, &text)).await {
                Ok(result) => result,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
        if let Err(error) = written {
            tracing::warn!(file = %self.path.display(), %error, "cannot write the greylisting state");
            self.lock().dirty = true;
        }
    }
}

/// Writes the state a while after each change, until the store is dropped.
async fn saver(inner: Weak<Inner>, mut woken: mpsc::Receiver<()>, delay: Duration) {
    // `recv` ends when the last handle (and with it the sender) is gone.
    while woken.recv().await.is_some() {
        tokio::time::sleep(delay).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.save().await;
    }
}

/// The state in `path`; an empty one when there is none or it is unusable.
fn load(path: &Path) -> GreylistState {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return GreylistState::new(),
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "cannot read the greylisting state; starting with an empty one");
            return GreylistState::new();
        }
    };
    match GreylistState::from_text(&text) {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "damaged greylisting state; starting with an empty one");
            GreylistState::new()
        }
    }
}

/// Replaces `path` with `text` so that a crash leaves either the old file or the new one: a
/// temporary file beside it, synced, renamed over it, and the folder synced so the rename
/// itself is durable.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the state path names no file",
        ));
    };
    let mut temporary = name.to_os_string();
    temporary.push(".tmp");
    let temporary = dir.join(temporary);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> Time {
        Time::from_secs(T0 + secs)
    }

    fn client() -> IpAddr {
        "192.0.2.7".parse().unwrap()
    }

    fn defer(secs: u64) -> Verdict {
        Verdict::Defer {
            retry_in: Duration::from_secs(secs),
        }
    }

    #[tokio::test]
    async fn defers_then_passes_after_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let grey = Greylist::open(dir.path().join(STATE_FILE), GreylistSettings::default()).await;
        assert_eq!(
            grey.check(client(), "a@example.org", "b@example.net", at(0)),
            defer(300)
        );
        // Too early: the rest of the delay, counted from the first attempt.
        assert_eq!(
            grey.check(client(), "a@example.org", "b@example.net", at(60)),
            defer(240)
        );
        assert_eq!(
            grey.check(client(), "A@Example.org", "B@example.NET", at(300)),
            Verdict::Pass
        );
        // Another host of the same /24 passes with the network.
        let neighbour: IpAddr = "192.0.2.99".parse().unwrap();
        assert_eq!(
            grey.check(neighbour, "c@example.com", "d@example.net", at(400)),
            Verdict::Pass
        );
        assert_eq!(grey.clone().state(), grey.state());
    }

    #[tokio::test]
    async fn the_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let grey = Greylist::open(&path, GreylistSettings::default()).await;
        assert_eq!(
            grey.check(client(), "a@example.org", "b@example.net", at(0)),
            defer(300)
        );
        grey.save_now().await;
        let before = grey.state();
        drop(grey);
        assert!(!dir.path().join("greylist.state.tmp").exists());

        let grey = Greylist::open(&path, GreylistSettings::default()).await;
        assert_eq!(grey.state(), before);
        assert_eq!(
            grey.check(client(), "a@example.org", "b@example.net", at(300)),
            Verdict::Pass
        );
        grey.save_now().await;
        let reopened = Greylist::open(&path, GreylistSettings::default()).await;
        assert_eq!(
            reopened.check("192.0.2.200".parse().unwrap(), "x@y", "z@w", at(600)),
            Verdict::Pass
        );
    }

    #[tokio::test]
    async fn a_damaged_or_unreadable_file_is_an_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        for damage in [
            &b"not a greylisting state\n"[..],
            b"petrel-greylist 1\ntriplet 1 2 passed 192.0.2.0/24 <a@b>\n",
            b"petrel-greylist 1\nnetwork 5 \xff\n",
            b"",
        ] {
            std::fs::write(&path, damage).unwrap();
            let grey = Greylist::open(&path, GreylistSettings::default()).await;
            assert!(grey.state().is_empty());
            assert_eq!(grey.check(client(), "a@b", "c@d", at(0)), defer(300));
        }
        // A folder where the file should be: unreadable, still no refusal to start.
        let odd = dir.path().join("odd");
        std::fs::create_dir(&odd).unwrap();
        let grey = Greylist::open(&odd, GreylistSettings::default()).await;
        assert!(grey.state().is_empty());
        // …and saving over it fails with a warning, not a panic.
        grey.check(client(), "a@b", "c@d", at(0));
        grey.save_now().await;
    }

    #[tokio::test]
    async fn changes_are_written_after_the_save_delay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let grey = Greylist::open_with(
            path.clone(),
            GreylistSettings::default(),
            Duration::from_millis(20),
        )
        .await;
        grey.check(client(), "a@example.org", "b@example.net", at(0));
        let mut waited = Duration::ZERO;
        while !path.exists() && waited < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += Duration::from_millis(10);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(GreylistState::from_text(&text).unwrap(), grey.state());
    }

    #[tokio::test]
    async fn saving_drops_expired_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let grey = Greylist::open(&path, GreylistSettings::default()).await;
        grey.check(client(), "old@example.org", "b@example.net", at(0));
        // Five hours later the first attempt's retry window (4 h) is over.
        grey.check(
            "198.51.100.1".parse().unwrap(),
            "new@example.org",
            "b@example.net",
            at(5 * 3600),
        );
        assert_eq!(grey.state().triplet_count(), 2);
        grey.save_now().await;
        let saved = GreylistState::from_text(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(saved.triplet_count(), 1);
        assert_eq!(saved, grey.state());
    }
}
