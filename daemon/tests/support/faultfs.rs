//! A file system that fails on demand: wraps [`MemFs`] and makes every operation on a chosen
//! folder fail (as a folder made unreadable or unwritable would, or a full disk), recording
//! each failed attempt with the (virtual) time it was made.
#![allow(dead_code)] // each test binary uses a different part of it

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use petrel_daemon::queue::{Fs, FsFile};

use super::memfs::{MemFile, MemFs};

/// Which operations fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Everything: the folder is unreadable and unwritable.
    All,
    /// Writes only (create, write, rename, remove, sync): unwritable, or a full disk.
    Writes,
    /// Reads only.
    Reads,
}

/// A failed attempt.
#[derive(Clone, Debug)]
pub struct Failure {
    /// When (tokio's clock, virtual under paused time).
    pub at: tokio::time::Instant,
    /// The operation.
    pub op: &'static str,
    /// The path.
    pub path: PathBuf,
}

#[derive(Default, Debug)]
struct Faults {
    dirs: Vec<(PathBuf, Fault)>,
    failures: Vec<Failure>,
}

/// The file system; clones share state.
#[derive(Clone, Default, Debug)]
pub struct FaultFs {
    /// The file system underneath.
    pub mem: MemFs,
    faults: Arc<Mutex<Faults>>,
}

/// An open file, failing its writes while its folder is faulty.
pub struct FaultFile {
    file: MemFile,
    path: PathBuf,
    fs: FaultFs,
}

impl FaultFs {
    /// Operations of kind `fault` on entries of `dir` fail from now on.
    pub fn fail(&self, dir: &Path, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .dirs
            .push((dir.to_owned(), fault));
    }

    /// Every fault is cleared.
    pub fn clear(&self) {
        self.faults.lock().unwrap().dirs.clear();
    }

    /// Failed attempts so far.
    pub fn failures(&self) -> Vec<Failure> {
        self.faults.lock().unwrap().failures.clone()
    }

    fn check(&self, op: &'static str, path: &Path, write: bool) -> io::Result<()> {
        let mut f = self.faults.lock().unwrap();
        let hit = f.dirs.iter().any(|(dir, fault)| {
            let applies = match fault {
                Fault::All => true,
                Fault::Writes => write,
                Fault::Reads => !write,
            };
            applies && (path.parent() == Some(dir.as_path()) || path == dir)
        });
        if !hit {
            return Ok(());
        }
        f.failures.push(Failure {
            at: tokio::time::Instant::now(),
            op,
            path: path.to_owned(),
        });
        Err(if write {
            io::Error::from_raw_os_error(28) // ENOSPC
        } else {
            io::Error::from(io::ErrorKind::PermissionDenied)
        })
    }
}

impl Write for FaultFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fs.check("write", &self.path, true)?;
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FsFile for FaultFile {
    fn sync_all(&mut self) -> io::Result<()> {
        self.fs.check("sync", &self.path, true)?;
        self.file.sync_all()
    }
}

impl Fs for FaultFs {
    type File = FaultFile;

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.mem.create_dir_all(path)
    }

    fn create(&self, path: &Path) -> io::Result<FaultFile> {
        self.check("create", path, true)?;
        Ok(FaultFile {
            file: self.mem.create(path)?,
            path: path.to_owned(),
            fs: self.clone(),
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.check("read", path, false)?;
        self.mem.read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check("rename", from, true)?;
        self.check("rename", to, true)?;
        self.mem.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check("remove", path, true)?;
        self.mem.remove_file(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.check("read_dir", path, false)?;
        self.mem.read_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.check("sync_dir", path, true)?;
        self.mem.sync_dir(path)
    }
}
