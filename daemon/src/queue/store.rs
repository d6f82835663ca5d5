//! The durable queue store: messages and their envelopes on disk.
//!
//! # Layout
//!
//! ```text
//! <root>/incoming/<msgid>    a message being received (discarded at start)
//! <root>/messages/<msgid>    a committed message: content, then its envelopes, then a trailer
//! <root>/envelopes/<msgid>   the message's envelopes as they are now, once they have changed
//! ```
//!
//! # Durability
//!
//! A message is committed by writing its content and envelopes into one file under
//! `incoming/`, syncing that file, renaming it into `messages/` and syncing the `messages/`
//! directory. Only then does [`Incoming::commit`] return, and only then may the session answer
//! 250. The directory sync is shared: a committer task renames every message whose file is
//! synced and syncs the directory once for all of them (group commit), so N concurrent
//! sessions cost N file syncs (which the file system's journal merges) but one directory sync.
//!
//! Envelopes change after commit (attempts, next try, delivered recipients removed): the
//! current set is written to `envelopes/<msgid>` (synced, renamed into place), which takes
//! precedence over the copy in the message file. A crash between the removal of a message's
//! two files leaves an orphan that the next start removes.
//!
//! # At rest
//!
//! With `queue compression` or `queue encryption`, every file is written through
//! [`Sealing`](super::seal::Sealing) as it is produced, so a large message is sealed as it
//! arrives and the commit protocol above is unchanged: the sealed file is what gets synced
//! and renamed. A file that does not open (changed, truncated, planted, another key) is never
//! delivered: recovery moves it to `<root>/corrupt/` and says so in the log.

use std::collections::HashSet;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use petrel_core::bugs::{self, Bug};
use petrel_core::queue::{Envelope, MsgId};
use tokio::sync::{mpsc, oneshot};

use super::fs::{Blocking, Fs, FsFile};
use super::seal::{SealWriter, Sealing};

/// Content kept in memory before it is written to the incoming file: most messages never
/// touch the disk before their commit, which then costs a single write.
const SPILL_THRESHOLD: usize = 256 * 1024;

/// Magic of the trailer that ends a committed message file.
const TRAILER_MAGIC: &[u8; 8] = b"PETRELQ1";
/// `PETRELQ1 <content len, 20 digits> <envelopes len, 20 digits>\n`
const TRAILER_LEN: usize = 8 + 1 + 20 + 1 + 20 + 1;

/// Why the queue could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A queue file is damaged.
    #[error("{path}: damaged queue file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The committer task is gone (the daemon is shutting down).
    #[error("the queue is shutting down")]
    Closed,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A message found in the queue at start.
#[derive(Debug)]
pub struct Recovered {
    /// The message.
    pub msg: MsgId,
    /// Its current envelopes.
    pub envelopes: Vec<Envelope>,
}

struct Inner<F: Fs, B: Blocking> {
    fs: Arc<F>,
    blocking: B,
    root: PathBuf,
    in_use: Mutex<HashSet<MsgId>>,
    committer: mpsc::UnboundedSender<CommitRequest>,
    next_id: Mutex<u32>,
    sealing: Sealing,
}

/// The queue store. Cheap to clone.
pub struct Store<F: Fs, B: Blocking> {
    inner: Arc<Inner<F, B>>,
}

impl<F: Fs, B: Blocking> Clone for Store<F, B> {
    fn clone(&self) -> Self {
        Store {
            inner: self.inner.clone(),
        }
    }
}

impl<F: Fs, B: Blocking> std::fmt::Debug for Store<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

struct CommitRequest {
    msg: MsgId,
    done: oneshot::Sender<Result<(), StoreError>>,
}

impl<F: Fs, B: Blocking> Store<F, B> {
    /// Opens (creating if needed) the queue under `root`, discards messages that were never
    /// committed, and returns every committed message with its envelopes. `seed` starts the
    /// message-id sequence (the shell passes something random). Files are stored as they are.
    pub async fn open(
        fs: Arc<F>,
        blocking: B,
        root: PathBuf,
        seed: u32,
    ) -> Result<(Store<F, B>, Vec<Recovered>), StoreError> {
        Store::open_sealed(fs, blocking, root, seed, Sealing::plain()).await
    }

    /// [`open`](Self::open), with files compressed or encrypted as `sealing` says.
    pub async fn open_sealed(
        fs: Arc<F>,
        blocking: B,
        root: PathBuf,
        seed: u32,
        sealing: Sealing,
    ) -> Result<(Store<F, B>, Vec<Recovered>), StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let fs2 = fs.clone();
        let root2 = root.clone();
        let sealing2 = sealing.clone();
        let recovered = blocking
            .run(move || recover(&*fs2, &root2, &sealing2))
            .await?;
        let in_use = recovered.iter().map(|r| r.msg).collect();
        let inner = Arc::new(Inner {
            fs,
            blocking,
            root,
            in_use: Mutex::new(in_use),
            committer: tx,
            next_id: Mutex::new(seed),
            sealing,
        });
        tokio::spawn(committer(
            inner.fs.clone(),
            inner.blocking.clone(),
            inner.root.clone(),
            rx,
        ));
        Ok((Store { inner }, recovered))
    }

    /// The queue's root folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Starts receiving a new message.
    #[must_use]
    pub fn begin(&self) -> Incoming<F, B> {
        let msg = self.allocate();
        Incoming {
            store: self.clone(),
            msg,
            buffer: Vec::new(),
            file: None,
            spilled: 0,
            failed: None,
        }
    }

    fn allocate(&self) -> MsgId {
        let mut in_use = self.inner.in_use.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self.inner.next_id.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            // A multiplicative step through u32 visits every value once before repeating, so
            // ids look unrelated in logs yet never collide while any is free.
            *next = next.wrapping_mul(0x9E37_79B1).wrapping_add(0x7F4A_7C15);
            let id = MsgId(*next);
            if id.0 != 0 && in_use.insert(id) {
                return id;
            }
        }
    }

    fn release(&self, msg: MsgId) {
        self.inner
            .in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&msg);
    }

    fn path(&self, dir: &str, msg: MsgId) -> PathBuf {
        self.inner.root.join(dir).join(msg.to_string())
    }

    /// Reads a committed message's content.
    pub async fn read_content(&self, msg: MsgId) -> Result<Vec<u8>, StoreError> {
        let fs = self.inner.fs.clone();
        let path = self.path("messages", msg);
        let sealing = self.inner.sealing.clone();
        self.inner
            .blocking
            .run(move || {
                let data = fs.read(&path).map_err(io_err(&path))?;
                let data = sealing.read(&file_id(msg, MESSAGE), data).map_err(|e| {
                    StoreError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })?;
                let (content_len, _) =
                    parse_trailer(&data).map_err(|reason| StoreError::Corrupt {
                        path: path.clone(),
                        reason,
                    })?;
                let mut data = data;
                data.truncate(content_len);
                Ok(data)
            })
            .await
    }

    /// Records the current envelopes of `msg` durably (they replace any earlier set).
    pub async fn update(&self, msg: MsgId, envelopes: &[Envelope]) -> Result<(), StoreError> {
        let fs = self.inner.fs.clone();
        let dir = self.inner.root.join("envelopes");
        let text = serialize_envelopes(envelopes);
        let sealing = self.inner.sealing.clone();
        self.inner
            .blocking
            .run(move || {
                let tmp = dir.join(format!("{msg}.tmp"));
                let path = dir.join(msg.to_string());
                let bytes = sealing.store(&file_id(msg, ENVELOPES), text.into_bytes());
                let mut file = fs.create(&tmp).map_err(io_err(&tmp))?;
                file.write_all(&bytes).map_err(io_err(&tmp))?;
                file.sync_all().map_err(io_err(&tmp))?;
                drop(file);
                fs.rename(&tmp, &path).map_err(io_err(&path))?;
                fs.sync_dir(&dir).map_err(io_err(&dir))
            })
            .await
    }

    /// Removes a message whose envelopes are all done.
    pub async fn remove(&self, msg: MsgId) -> Result<(), StoreError> {
        let fs = self.inner.fs.clone();
        let message = self.path("messages", msg);
        let envelopes = self.path("envelopes", msg);
        let result = self
            .inner
            .blocking
            .run(move || {
                // The message file first: an envelopes file without its message is an orphan
                // the next start removes; the other way round would resurrect the message.
                match fs.remove_file(&message) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&message)(e)),
                }
                // Without this sync a crash could bring a delivered message back, and it
                // would be delivered again.
                if let Some(dir) = message.parent() {
                    fs.sync_dir(dir).map_err(io_err(dir))?;
                }
                match fs.remove_file(&envelopes) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(io_err(&envelopes)(e)),
                }
            })
            .await;
        if result.is_ok() {
            self.release(msg);
        }
        result
    }
}

/// A message being received. Write its content, then commit it with its envelopes, or drop
/// it (which discards what was written).
pub struct Incoming<F: Fs, B: Blocking> {
    store: Store<F, B>,
    msg: MsgId,
    buffer: Vec<u8>,
    file: Option<Sink<F::File>>,
    spilled: usize,
    failed: Option<io::Error>,
}

/// The incoming file: written as it is, or sealed as it goes.
enum Sink<W: std::io::Write> {
    Plain(W),
    // Boxed: the deflate state is large, and most queues write plain files.
    Sealed(Box<SealWriter<W>>),
}

impl<W: std::io::Write> Sink<W> {
    fn create<F: Fs<File = W>>(
        fs: &F,
        path: &Path,
        sealing: &Sealing,
        msg: MsgId,
    ) -> io::Result<Sink<W>> {
        let file = fs.create(path)?;
        if sealing.is_plain() {
            Ok(Sink::Plain(file))
        } else {
            sealing
                .writer(&file_id(msg, MESSAGE), file)
                .map(|w| Sink::Sealed(Box::new(w)))
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(data),
            Sink::Sealed(w) => w.write_all(data),
        }
    }

    /// The file, with everything written (a sealed file's last frame included).
    fn finish(self) -> io::Result<W> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Sealed(w) => (*w).finish(),
        }
    }
}

impl<F: Fs, B: Blocking> std::fmt::Debug for Incoming<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("msg", &self.msg)
            .finish_non_exhaustive()
    }
}

impl<F: Fs, B: Blocking> Incoming<F, B> {
    /// The id the message will have.
    #[must_use]
    pub fn msg(&self) -> MsgId {
        self.msg
    }

    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.spilled + self.buffer.len()
    }

    /// True when nothing has been written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends content. Large messages go to the incoming file as they arrive; an error is
    /// remembered and reported by [`commit`](Self::commit).
    pub async fn write(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
        if self.buffer.len() >= SPILL_THRESHOLD && self.failed.is_none() {
            let result = self.spill().await;
            if let Err(e) = result {
                self.failed = Some(e);
            }
        }
    }

    async fn spill(&mut self) -> io::Result<()> {
        let fs = self.store.inner.fs.clone();
        let path = self.store.path("incoming", self.msg);
        let data = std::mem::take(&mut self.buffer);
        let file = self.file.take();
        let len = data.len();
        let sealing = self.store.inner.sealing.clone();
        let msg = self.msg;
        let file = self
            .store
            .inner
            .blocking
            .run(move || {
                let mut file = match file {
                    Some(f) => f,
                    None => Sink::create(&*fs, &path, &sealing, msg)?,
                };
                file.write_all(&data)?;
                Ok::<_, io::Error>(file)
            })
            .await?;
        self.file = Some(file);
        self.spilled += len;
        Ok(())
    }

    /// Makes the message and its envelopes durable. When this returns `Ok`, the message
    /// survives a crash and may be acknowledged.
    pub async fn commit(mut self, envelopes: &[Envelope]) -> Result<MsgId, StoreError> {
        let incoming = self.store.path("incoming", self.msg);
        if let Some(e) = self.failed.take() {
            return Err(io_err(&incoming)(e));
        }
        let fs = self.store.inner.fs.clone();
        let content = std::mem::take(&mut self.buffer);
        let content_len = self.spilled + content.len();
        let env_text = serialize_envelopes(envelopes);
        let file = self.file.take();
        let path = incoming.clone();
        let sealing = self.store.inner.sealing.clone();
        let msg = self.msg;
        self.store
            .inner
            .blocking
            .run(move || {
                let written = (|| {
                    let mut file = match file {
                        Some(f) => f,
                        None => Sink::create(&*fs, &path, &sealing, msg)?,
                    };
                    file.write_all(&content)?;
                    file.write_all(env_text.as_bytes())?;
                    let trailer = format!("PETRELQ1 {content_len:020} {:020}\n", env_text.len());
                    file.write_all(trailer.as_bytes())?;
                    let mut file = file.finish()?;
                    if bugs::active(Bug::AckBeforeSync) {
                        // Deliberate bug (simulator tests only): acknowledged unsynced.
                        return Ok(());
                    }
                    file.sync_all()
                })();
                if written.is_err() {
                    // A full disk must not fill up further with the remains of messages
                    // that were refused.
                    let _ = fs.remove_file(&path);
                }
                written
            })
            .await
            .map_err(io_err(&incoming))?;
        let (done, wait) = oneshot::channel();
        let msg = self.msg;
        self.store
            .inner
            .committer
            .send(CommitRequest { msg, done })
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)??;
        // Committed: dropping `self` must not discard anything now.
        self.msg = MsgId(0);
        Ok(msg)
    }
}

impl<F: Fs, B: Blocking> Drop for Incoming<F, B> {
    fn drop(&mut self) {
        if self.msg.0 == 0 {
            return;
        }
        // Not committed: forget the id and remove what was spilled. Done inline because
        // drop cannot wait; the file is small or already closed, and a leftover is removed at
        // the next start anyway.
        self.file.take();
        if self.spilled > 0 {
            let _ = self
                .store
                .inner
                .fs
                .remove_file(&self.store.path("incoming", self.msg));
        }
        self.store.release(self.msg);
    }
}

/// Renames synced messages into place and syncs the directory once per batch.
async fn committer<F: Fs, B: Blocking>(
    fs: Arc<F>,
    blocking: B,
    root: PathBuf,
    mut rx: mpsc::UnboundedReceiver<CommitRequest>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let msgs: Vec<MsgId> = batch.iter().map(|r| r.msg).collect();
        let fs = fs.clone();
        let root = root.clone();
        let results = blocking
            .run(move || {
                let dir = root.join("messages");
                let mut results: Vec<Result<(), StoreError>> = msgs
                    .iter()
                    .map(|msg| {
                        let from = root.join("incoming").join(msg.to_string());
                        let to = dir.join(msg.to_string());
                        let renamed = fs.rename(&from, &to).map_err(io_err(&to));
                        if renamed.is_err() {
                            let _ = fs.remove_file(&from);
                        }
                        renamed
                    })
                    .collect();
                let synced = if bugs::active(Bug::AckBeforeSync) {
                    Ok(())
                } else {
                    fs.sync_dir(&dir)
                };
                if let Err(e) = synced {
                    // Nothing in this batch is known to be durable, and each of its sessions
                    // hears 451 and will send its message again: take the files back out, or
                    // a later directory sync could make them durable after all and the next
                    // start would deliver a second copy of a message refused once.
                    for (msg, r) in msgs.iter().zip(&mut results) {
                        if r.is_ok() {
                            let path = dir.join(msg.to_string());
                            if let Err(e) = fs.remove_file(&path) {
                                tracing::error!(file = %path.display(), error = %e, "cannot remove a message whose commit failed");
                            }
                            *r = Err(StoreError::Io {
                                path: dir.clone(),
                                source: io::Error::new(e.kind(), e.to_string()),
                            });
                        }
                    }
                }
                results
            })
            .await;
        for (req, result) in batch.into_iter().zip(results) {
            let _ = req.done.send(result);
        }
    }
}

fn serialize_envelopes(envelopes: &[Envelope]) -> String {
    let mut text = String::new();
    for e in envelopes {
        text.push_str(&e.serialize());
        text.push('\n');
    }
    text
}

fn parse_envelopes(text: &str) -> Result<Vec<Envelope>, String> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| Envelope::parse(block).map_err(|e| e.to_string()))
        .collect()
}

fn parse_trailer(data: &[u8]) -> Result<(usize, usize), String> {
    if data.len() < TRAILER_LEN {
        return Err("too short for a trailer".into());
    }
    let trailer = &data[data.len() - TRAILER_LEN..];
    if &trailer[..8] != TRAILER_MAGIC || trailer[TRAILER_LEN - 1] != b'\n' {
        return Err("no trailer".into());
    }
    let text = std::str::from_utf8(&trailer[9..TRAILER_LEN - 1]).map_err(|_| "bad trailer")?;
    let (a, b) = text.split_once(' ').ok_or("bad trailer")?;
    let content_len: usize = a.parse().map_err(|_| "bad trailer")?;
    let env_len: usize = b.parse().map_err(|_| "bad trailer")?;
    if content_len + env_len + TRAILER_LEN != data.len() {
        return Err("lengths do not match the file size".into());
    }
    Ok((content_len, env_len))
}

/// What a queue file holds, in the identity a sealed file is bound to.
const MESSAGE: &str = "message";
const ENVELOPES: &str = "envelopes";

/// The identity a sealed file is written for: a file moved to another message's name, or an
/// envelopes file swapped for a message file, does not open.
fn file_id(msg: MsgId, kind: &str) -> String {
    format!("{msg}/{kind}")
}

/// A committed message's envelopes, read from its files: the envelopes file when there is one,
/// else the copy in the message file.
fn load_message<F: Fs>(
    fs: &F,
    root: &Path,
    msg: MsgId,
    sealing: &Sealing,
) -> Result<Vec<Envelope>, StoreError> {
    let path = root.join("messages").join(msg.to_string());
    let corrupt = |path: &Path, reason: String| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let data = fs.read(&path).map_err(io_err(&path))?;
    let data = sealing
        .read(&file_id(msg, MESSAGE), data)
        .map_err(|e| corrupt(&path, e.to_string()))?;
    let (content_len, env_len) = parse_trailer(&data).map_err(|r| corrupt(&path, r))?;
    let override_path = root.join("envelopes").join(msg.to_string());
    let text = match fs.read(&override_path) {
        Ok(bytes) => {
            let bytes = sealing
                .read(&file_id(msg, ENVELOPES), bytes)
                .map_err(|e| corrupt(&override_path, e.to_string()))?;
            String::from_utf8(bytes).map_err(|_| corrupt(&override_path, "not UTF-8".into()))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            String::from_utf8_lossy(&data[content_len..content_len + env_len]).into_owned()
        }
        Err(e) => return Err(io_err(&override_path)(e)),
    };
    parse_envelopes(&text).map_err(|r| corrupt(&path, r))
}

/// Moves a message that does not load out of the queue, into `<root>/corrupt/`, so that it is
/// never delivered and never stops a start; the operator finds it there.
fn quarantine<F: Fs>(fs: &F, root: &Path, name: &str) -> Result<(), StoreError> {
    let corrupt = root.join("corrupt");
    fs.create_dir_all(&corrupt).map_err(io_err(&corrupt))?;
    for (dir, suffix) in [("messages", ""), ("envelopes", ".envelopes")] {
        let from = root.join(dir).join(name);
        let to = corrupt.join(format!("{name}{suffix}"));
        match fs.rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&from)(e)),
        }
    }
    fs.sync_dir(&corrupt).map_err(io_err(&corrupt))?;
    let messages = root.join("messages");
    fs.sync_dir(&messages).map_err(io_err(&messages))
}

/// Start-up recovery: discard incoming files, load committed messages (moving the ones that
/// do not load to `corrupt/`), remove orphans.
fn recover<F: Fs>(fs: &F, root: &Path, sealing: &Sealing) -> Result<Vec<Recovered>, StoreError> {
    for dir in ["incoming", "messages", "envelopes"] {
        let path = root.join(dir);
        fs.create_dir_all(&path).map_err(io_err(&path))?;
    }
    let incoming = root.join("incoming");
    for name in fs.read_dir(&incoming).map_err(io_err(&incoming))? {
        let path = incoming.join(&name);
        tracing::info!(file = %path.display(), "discarding a message that was never committed");
        fs.remove_file(&path).map_err(io_err(&path))?;
    }
    let messages = root.join("messages");
    let envelopes_dir = root.join("envelopes");
    let mut found = Vec::new();
    let mut known = HashSet::new();
    for name in fs.read_dir(&messages).map_err(io_err(&messages))? {
        let path = messages.join(&name);
        let Ok(msg) = name.parse::<MsgId>() else {
            tracing::warn!(file = %path.display(), "ignoring a file that is not a queued message");
            continue;
        };
        match load_message(fs, root, msg, sealing) {
            Ok(envelopes) => {
                known.insert(name);
                found.push(Recovered { msg, envelopes });
            }
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::error!(
                    error = %e,
                    moved_to = %root.join("corrupt").display(),
                    "refusing a damaged queue file: the message will not be delivered"
                );
                quarantine(fs, root, &name)?;
            }
            Err(e) => return Err(e),
        }
    }
    for name in fs
        .read_dir(&envelopes_dir)
        .map_err(io_err(&envelopes_dir))?
    {
        if !known.contains(&name) {
            let path = envelopes_dir.join(&name);
            fs.remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(found)
}
