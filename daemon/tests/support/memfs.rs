//! An in-memory file system that forgets, on `crash()`, everything that was not synced:
//! file contents not followed by `sync_all`, and directory entries (creations, renames,
//! removals) not followed by `sync_dir` on their directory.
#![allow(dead_code)] // each test binary uses a different part of it

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use petrel_daemon::queue::{Fs, FsFile};

#[derive(Default, Debug)]
struct Node {
    data: Vec<u8>,
    synced: Option<Vec<u8>>,
}

#[derive(Default, Debug)]
struct State {
    /// Inode number -> contents.
    nodes: BTreeMap<u64, Node>,
    next_inode: u64,
    /// Directory -> name -> inode, as seen now.
    dirs: BTreeMap<PathBuf, BTreeMap<String, u64>>,
    /// Directory -> name -> inode, as last synced.
    durable: BTreeMap<PathBuf, BTreeMap<String, u64>>,
    /// Count of fsync calls, for assertions.
    syncs: u64,
}

/// The file system; clones share state.
#[derive(Clone, Default, Debug)]
pub struct MemFs(Arc<Mutex<State>>);

/// An open file: writes go straight to the node.
pub struct MemFile {
    fs: MemFs,
    inode: u64,
}

fn split(path: &Path) -> (PathBuf, String) {
    (
        path.parent().unwrap().to_owned(),
        path.file_name().unwrap().to_string_lossy().into_owned(),
    )
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "not found")
}

impl MemFs {
    /// Loses everything that was not synced.
    pub fn crash(&self) {
        let mut s = self.0.lock().unwrap();
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
        // A durable entry whose file content was never synced points at nothing.
        let nodes: BTreeSet<u64> = s.nodes.keys().copied().collect();
        for d in s.dirs.values_mut() {
            d.retain(|_, inode| nodes.contains(inode));
        }
        s.durable = s.dirs.clone();
    }

    /// Number of fsync calls (files and directories) so far.
    pub fn syncs(&self) -> u64 {
        self.0.lock().unwrap().syncs
    }

    /// Names in a directory.
    pub fn list(&self, dir: &Path) -> Vec<String> {
        let s = self.0.lock().unwrap();
        s.dirs
            .get(dir)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Overwrites a file's content as if an attacker or a bad disk did (synced).
    pub fn corrupt(&self, path: &Path, data: &[u8]) {
        let mut s = self.0.lock().unwrap();
        let (dir, name) = split(path);
        let inode = s.dirs[&dir][&name];
        let node = s.nodes.get_mut(&inode).unwrap();
        node.data = data.to_vec();
        node.synced = Some(data.to_vec());
    }
}

impl Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.fs.0.lock().unwrap();
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

impl FsFile for MemFile {
    fn sync_all(&mut self) -> io::Result<()> {
        let mut s = self.fs.0.lock().unwrap();
        s.syncs += 1;
        let node = s.nodes.get_mut(&self.inode).ok_or_else(not_found)?;
        node.synced = Some(node.data.clone());
        Ok(())
    }
}

impl Fs for MemFs {
    type File = MemFile;

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        s.dirs.entry(path.to_owned()).or_default();
        s.durable.entry(path.to_owned()).or_default();
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<MemFile> {
        let mut s = self.0.lock().unwrap();
        let (dir, name) = split(path);
        s.next_inode += 1;
        let inode = s.next_inode;
        s.nodes.insert(inode, Node::default());
        s.dirs
            .get_mut(&dir)
            .ok_or_else(not_found)?
            .insert(name, inode);
        Ok(MemFile {
            fs: self.clone(),
            inode,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.0.lock().unwrap();
        let (dir, name) = split(path);
        let inode = s
            .dirs
            .get(&dir)
            .and_then(|d| d.get(&name))
            .ok_or_else(not_found)?;
        Ok(s.nodes[inode].data.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        let (fd, fname) = split(from);
        let (td, tname) = split(to);
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
        let mut s = self.0.lock().unwrap();
        let (dir, name) = split(path);
        s.dirs
            .get_mut(&dir)
            .and_then(|d| d.remove(&name))
            .ok_or_else(not_found)?;
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let s = self.0.lock().unwrap();
        Ok(s.dirs
            .get(path)
            .ok_or_else(not_found)?
            .keys()
            .cloned()
            .collect())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        s.syncs += 1;
        let current = s.dirs.get(path).cloned().ok_or_else(not_found)?;
        s.durable.insert(path.to_owned(), current);
        Ok(())
    }
}
