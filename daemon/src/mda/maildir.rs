//! Writing into maildirs (the `maildir` method).
//!
//! The maildir protocol (D. J. Bernstein's `maildir(5)`): write the message into `tmp/` under a
//! name no other delivery can pick, sync it, then `rename` it into `new/`, where readers look.
//! The rename is atomic, so a reader sees the whole message or nothing; syncing the `new/`
//! directory afterwards makes the rename itself durable, and only then does the delivery count.
//!
//! [`write_batch`] takes several messages at once and syncs each directory once, whatever the
//! number of files renamed into it: on a busy system that is most of the cost of a delivery.
//!
//! A delivery from the queue has a stable name ([`Item::unique`]): if the daemon dies after
//! the file reached `new/` but before the queue recorded the delivery, the queue delivers it
//! again after the restart, and the second attempt finds the first copy under the same name
//! and keeps it rather than adding a duplicate. (A copy a reader already moved to `cur/` in
//! that instant is not looked for: that would mean reading the whole of `cur/` on every
//! delivery.)

use std::collections::BTreeSet;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::DeliveryError;

/// One file to deliver.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The maildir (created, with its parents, when missing).
    pub root: &'a Path,
    /// File it into the `.Junk` folder (created when missing).
    pub junk: bool,
    /// The recipient's sub-address: the message goes into the folder `.EXTENSION` when that
    /// folder exists, as OpenSMTPD does.
    pub extension: Option<&'a str>,
    /// The trace header fields.
    pub head: &'a [u8],
    /// The message, LF line endings.
    pub body: &'a [u8],
    /// A stable name for this delivery (see the module documentation): the file is named
    /// `UNIQUE.HOST,S=SIZE`. `None`: a fresh unique name.
    pub unique: Option<&'a str>,
}

/// Delivers every item; returns, per item, the path of the new file. Each directory that
/// received a file, or a new subdirectory, is synced once, before any result is returned.
pub fn write_batch(items: &[Item<'_>], hostname: &str) -> Vec<Result<PathBuf, DeliveryError>> {
    let mut to_sync = BTreeSet::new();
    // Per item: the file and the directories whose sync it depends on.
    let mut written: Vec<Result<(PathBuf, Vec<PathBuf>), DeliveryError>> = Vec::new();
    for item in items {
        let mut dirs = Vec::new();
        let result = write_one(item, hostname, &mut dirs);
        if result.is_ok() {
            to_sync.extend(dirs.iter().cloned());
        }
        written.push(result.map(|file| (file, dirs)));
    }
    let mut failed = Vec::new();
    for dir in &to_sync {
        if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %dir.display(), error = %e, "maildir: directory sync failed");
            failed.push((dir.clone(), e));
        }
    }
    written
        .into_iter()
        .map(|r| {
            let (file, dirs) = r?;
            match failed.iter().find(|(d, _)| dirs.contains(d)) {
                // The file may or may not survive a crash; the retry might duplicate it,
                // which beats losing it.
                Some((dir, e)) => Err(DeliveryError::io(
                    "syncing",
                    dir,
                    io::Error::new(e.kind(), e.to_string()),
                )),
                None => Ok(file),
            }
        })
        .collect()
}

fn write_one(
    item: &Item<'_>,
    hostname: &str,
    dirs: &mut Vec<PathBuf>,
) -> Result<PathBuf, DeliveryError> {
    let root = item.root;
    if !root.is_absolute() {
        return Err(DeliveryError::RelativePath {
            path: root.to_owned(),
        });
    }
    ensure_maildir(root, dirs)?;
    let folder = if item.junk {
        let junk = root.join(".Junk");
        ensure_maildir(&junk, dirs)?;
        junk
    } else if let Some(folder) = item
        .extension
        .map(sub_folder)
        // "" and "." would name the maildir itself and its parent.
        .filter(|f| !f.is_empty() && f != ".")
        .map(|f| root.join(format!(".{f}")))
        .filter(|f| f.is_dir())
    {
        ensure_maildir(&folder, dirs)?;
        folder
    } else {
        root.to_owned()
    };

    let size = item.head.len() + item.body.len();
    let new_dir = folder.join("new");
    let (name, tmp, mut file) = match item.unique.filter(|u| valid_unique(u)) {
        Some(unique) => {
            let name = format!("{unique}.{hostname},S={size}");
            let new = new_dir.join(&name);
            if new.exists() {
                // Delivered by an attempt the queue did not get to record. Its rename may not
                // be durable yet if that attempt failed on the directory sync: sync again.
                tracing::info!(file = %new.display(), "maildir: the copy of an earlier attempt is there; not delivered again");
                dirs.push(new_dir);
                return Ok(new);
            }
            create_named(&folder.join("tmp"), name)?
        }
        None => create_unique(&folder.join("tmp"), hostname, size)?,
    };
    let written = (|| {
        file.write_all(item.head)?;
        file.write_all(item.body)?;
        file.sync_all()
    })();
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(DeliveryError::io("writing", tmp, e));
    }
    let new = new_dir.join(&name);
    if let Err(e) = std::fs::rename(&tmp, &new) {
        let _ = std::fs::remove_file(&tmp);
        return Err(DeliveryError::io("renaming into", new_dir, e));
    }
    dirs.push(new_dir);
    Ok(new)
}

/// OpenSMTPD's folder name for a sub-address: characters that mean something to a shell or a
/// path become `:`.
fn sub_folder(extension: &str) -> String {
    extension
        .chars()
        .map(|c| {
            if "!#$%&'*/?^`{|}~".contains(c) {
                ':'
            } else {
                c
            }
        })
        .collect()
}

/// Creates `dir` and its missing parents (0700), then `tmp`, `new` and `cur`; every directory
/// that gained an entry is added to `dirs` to be synced.
fn ensure_maildir(dir: &Path, dirs: &mut Vec<PathBuf>) -> Result<(), DeliveryError> {
    mkdirs(dir, dirs)?;
    for sub in ["tmp", "new", "cur"] {
        mkdir(&dir.join(sub), dirs)?;
    }
    Ok(())
}

fn mkdirs(dir: &Path, dirs: &mut Vec<PathBuf>) -> Result<(), DeliveryError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(DeliveryError::io(
                "creating",
                dir,
                io::Error::from(io::ErrorKind::NotADirectory),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(DeliveryError::io("inspecting", dir, e)),
    }
    if let Some(parent) = dir.parent() {
        mkdirs(parent, dirs)?;
    }
    mkdir(dir, dirs)
}

fn mkdir(dir: &Path, dirs: &mut Vec<PathBuf>) -> Result<(), DeliveryError> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            if let Some(parent) = dir.parent() {
                dirs.push(parent.to_owned());
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(DeliveryError::io("creating", dir, e)),
    }
}

/// Creates a new file in `tmp` under a unique name, retrying on the (unlikely) collision.
fn create_unique(
    tmp: &Path,
    hostname: &str,
    size: usize,
) -> Result<(String, PathBuf, File), DeliveryError> {
    let mut attempts = 0;
    loop {
        let name = unique_name(hostname, size);
        let path = tmp.join(&name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((name, path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 10 => attempts += 1,
            Err(e) => return Err(DeliveryError::io("creating", path, e)),
        }
    }
}

/// A stable name must not climb out of the folder nor clash with maildir's own separators.
fn valid_unique(unique: &str) -> bool {
    !unique.is_empty()
        && !unique.starts_with('.')
        && unique
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Creates (or truncates: a crashed attempt may have left it) the file `name` in `tmp`.
fn create_named(tmp: &Path, name: String) -> Result<(String, PathBuf, File), DeliveryError> {
    let path = tmp.join(&name);
    match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(file) => Ok((name, path, file)),
        Err(e) => Err(DeliveryError::io("creating", path, e)),
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file name unique across deliveries, in the form maildir(5) and Dovecot use:
/// `SECONDS.M<microseconds>P<pid>Q<counter>R<random>.HOST,S=<size>`. The seconds, pid and a
/// per-process counter already make it unique on one host; the random part guards against a pid
/// reused within the same microsecond after a restart. `,S=` lets Dovecot skip a `stat`.
fn unique_name(hostname: &str, size: usize) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let q = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let random = mix(now.as_nanos() as u64 ^ (u64::from(pid) << 40) ^ q.rotate_left(20));
    format!(
        "{}.M{}P{pid}Q{q}R{:08x}.{hostname},S={size}",
        now.as_secs(),
        now.subsec_micros(),
        random as u32
    )
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// This host's name as it goes into maildir file names: `/` and `:` are escaped as maildir(5)
/// asks, and `,` as Dovecot does (it separates the `,S=` field).
pub fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let uname = rustix::system::uname();
        let name = uname.nodename().to_string_lossy();
        let name = if name.is_empty() { "localhost" } else { &name };
        escape_hostname(name)
    })
}

/// Escapes a host name for use in maildir file names.
#[must_use]
pub fn escape_hostname(name: &str) -> String {
    name.replace('/', "\\057")
        .replace(':', "\\072")
        .replace(',', "\\054")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let a = unique_name("host", 10);
        let b = unique_name("host", 10);
        assert_ne!(a, b);
        assert!(a.ends_with(".host,S=10"), "{a}");
        assert!(!a.contains('/') && !a.contains(':'));
        assert_eq!(escape_hostname("a/b:c,d"), "a\\057b\\072c\\054d");
    }

    #[test]
    fn stable_names_are_checked() {
        assert!(valid_unique("1700000000.E0123abcd00000001"));
        assert!(!valid_unique(""));
        assert!(!valid_unique(".."));
        assert!(!valid_unique("a/b"));
        assert!(!valid_unique("a:2,S"));
    }

    #[test]
    fn sub_folders() {
        assert_eq!(sub_folder("lists"), "lists");
        assert_eq!(sub_folder("../x|y"), "..:x:y");
    }
}
