//! The file-system seam of the queue.
//!
//! The queue store is written against this trait so that the very same code runs on the real
//! file system and, in the simulator, on a simulated disk that loses whatever was not synced
//! when a host crashes. The operations are the few the store needs, each synchronous: the
//! store runs them off the async runtime (see [`Blocking`]).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An open file being written.
pub trait FsFile: Write + Send + 'static {
    /// Flushes data and metadata to stable storage (fsync).
    fn sync_all(&mut self) -> io::Result<()>;
}

/// File-system operations used by the queue.
pub trait Fs: Send + Sync + 'static {
    /// The open-file type.
    type File: FsFile;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Renames a file, replacing the target atomically.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory's entries durable (fsync on the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// Runs blocking work off the async runtime: the blocking pool in production, inline in the
/// simulator (whose disk never blocks and must stay deterministic).
pub trait Blocking: Clone + Send + Sync + 'static {
    /// Runs `f` and returns its result.
    fn run<T, F>(&self, f: F) -> impl Future<Output = T> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

/// A real open file.
#[derive(Debug)]
pub struct RealFile(std::fs::File);

impl Write for RealFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FsFile for RealFile {
    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}

impl Fs for RealFs {
    type File = RealFile;

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }

    fn create(&self, path: &Path) -> io::Result<RealFile> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map(RealFile)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }
}

/// Tokio's blocking pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioBlocking;

impl Blocking for TokioBlocking {
    async fn run<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        match tokio::task::spawn_blocking(f).await {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// Runs work inline (for the simulator and tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct Inline;

impl Blocking for Inline {
    async fn run<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        f()
    }
}

/// `dir/name` as a path.
#[must_use]
pub fn join(dir: &Path, name: impl AsRef<Path>) -> PathBuf {
    dir.join(name)
}
