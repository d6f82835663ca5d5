//! The simulated disk under a Petrel host's queue: an in-memory file system behind the
//! daemon's [`Fs`] seam that forgets, on [`SimDisk::crash`], everything that was not synced —
//! file contents not followed by `sync_all`, and directory entries (creations, renames,
//! removals) not followed by `sync_dir` on their directory. The disk outlives the host's
//! software, so a restarted host recovers from exactly what was durable.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use petrel_daemon::queue::{Fs, FsFile};

#[derive(Clone, Default, Debug)]
struct Node {
    data: Vec<u8>,
    synced: Option<Vec<u8>>,
}

#[derive(Clone, Default, Debug)]
struct State {
    nodes: BTreeMap<u64, Node>,
    next_inode: u64,
    /// Directory -> name -> inode, as seen now.
    dirs: BTreeMap<PathBuf, BTreeMap<String, u64>>,
    /// Directory -> name -> inode, as last synced.
    durable: BTreeMap<PathBuf, BTreeMap<String, u64>>,
    syncs: u64,
}

/// A host's disk; clones share it.
#[derive(Clone, Default, Debug)]
pub struct SimDisk(Arc<Mutex<State>>);

/// An open file: writes go straight to its node.
#[derive(Debug)]
pub struct SimFile {
    disk: SimDisk,
    inode: u64,
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((dir.to_owned(), name.to_string_lossy().into_owned())),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "no file name")),
    }
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "not found")
}

impl SimDisk {
    /// An empty disk.
    #[must_use]
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The power goes: everything not synced is lost.
    pub fn crash(&self) {
        let mut s = self.lock();
        s.dirs = s.durable.clone();
        let live: BTreeSet<u64> = s.dirs.values().flat_map(|d| d.values().copied()).collect();
        let nodes = std::mem::take(&mut s.nodes);
        for (inode, node) in nodes {
            if let (true, Some(synced)) = (live.contains(&inode), node.synced) {
                s.nodes.insert(
                    inode,
                    Node {
                        data: synced.clone(),
                        synced: Some(synced),
                    },
                );
            }
        }
        let nodes: BTreeSet<u64> = s.nodes.keys().copied().collect();
        for d in s.dirs.values_mut() {
            d.retain(|_, inode| nodes.contains(inode));
        }
        s.durable = s.dirs.clone();
    }

    /// An independent copy of the disk as it is now (for inspection after a run).
    #[must_use]
    pub fn fork(&self) -> SimDisk {
        SimDisk(Arc::new(Mutex::new(self.lock().clone())))
    }

    /// fsync calls so far.
    #[must_use]
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// The names in a directory, sorted.
    #[must_use]
    pub fn list(&self, dir: &Path) -> Vec<String> {
        self.lock()
            .dirs
            .get(dir)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl Write for SimFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.disk.lock();
        s.nodes
            .get_mut(&self.inode)
            .ok_or_else(not_found)?
            .data
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FsFile for SimFile {
    fn sync_all(&mut self) -> io::Result<()> {
        let mut s = self.disk.lock();
        s.syncs += 1;
        let node = s.nodes.get_mut(&self.inode).ok_or_else(not_found)?;
        node.synced = Some(node.data.clone());
        Ok(())
    }
}

impl Fs for SimDisk {
    type File = SimFile;

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        for p in path.ancestors() {
            s.dirs.entry(p.to_owned()).or_default();
            s.durable.entry(p.to_owned()).or_default();
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<SimFile> {
        let mut s = self.lock();
        let (dir, name) = split(path)?;
        s.next_inode += 1;
        let inode = s.next_inode;
        s.nodes.insert(inode, Node::default());
        s.dirs
            .get_mut(&dir)
            .ok_or_else(not_found)?
            .insert(name, inode);
        Ok(SimFile {
            disk: self.clone(),
            inode,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.lock();
        let (dir, name) = split(path)?;
        let inode = s
            .dirs
            .get(&dir)
            .and_then(|d| d.get(&name))
            .ok_or_else(not_found)?;
        Ok(s.nodes
            .get(inode)
            .map(|n| n.data.clone())
            .unwrap_or_default())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let (fd, fname) = split(from)?;
        let (td, tname) = split(to)?;
        if !s.dirs.contains_key(&td) {
            return Err(not_found());
        }
        let inode = s
            .dirs
            .get_mut(&fd)
            .and_then(|d| d.remove(&fname))
            .ok_or_else(not_found)?;
        s.dirs
            .get_mut(&td)
            .ok_or_else(not_found)?
            .insert(tname, inode);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let (dir, name) = split(path)?;
        s.dirs
            .get_mut(&dir)
            .and_then(|d| d.remove(&name))
            .ok_or_else(not_found)?;
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        Ok(s.dirs
            .get(path)
            .ok_or_else(not_found)?
            .keys()
            .cloned()
            .collect())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.syncs += 1;
        let current = s.dirs.get(path).cloned().ok_or_else(not_found)?;
        s.durable.insert(path.to_owned(), current);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_writes_and_renames_are_lost_on_crash() {
        let disk = SimDisk::new();
        let dir = Path::new("/q/messages");
        disk.create_dir_all(dir).unwrap();
        let mut a = disk.create(&dir.join("a")).unwrap();
        a.write_all(b"synced").unwrap();
        a.sync_all().unwrap();
        disk.sync_dir(dir).unwrap();
        let mut b = disk.create(&dir.join("b")).unwrap();
        b.write_all(b"not synced").unwrap();
        disk.sync_dir(dir).unwrap();
        disk.create(&dir.join("c")).unwrap();
        disk.crash();
        assert_eq!(disk.read_dir(dir).unwrap(), vec!["a".to_owned()]);
        assert_eq!(disk.read(&dir.join("a")).unwrap(), b"synced");
    }
}
