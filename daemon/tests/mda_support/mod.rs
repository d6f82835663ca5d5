//! Helpers shared by the local delivery tests (`mda_*.rs`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use petrel_daemon::mda::{LocalUser, Recipient};

/// A message as the queue holds it: CRLF, a line starting with `From `, a lone dot.
pub const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\n\
To: bob@example.org\r\n\
Subject: hello\r\n\
\r\n\
Hello Bob,\r\n\
From the top: a line that mbox must quote.\r\n\
.\r\n\
Bye\r\n";

/// `MESSAGE` with LF line endings.
pub fn message_lf() -> Vec<u8> {
    String::from_utf8(MESSAGE.to_vec())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes()
}

/// The uid and gid the tests deliver as when they run as root.
pub const NOBODY: u32 = 65534;

/// True when the tests run as root (then deliveries to other uids switch users).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A virtual user (no uid): delivered as the test process itself.
pub fn virtual_user(home: &Path) -> LocalUser {
    LocalUser {
        name: "bob".into(),
        uid: None,
        gid: None,
        home: home.to_owned(),
    }
}

/// User 65534, whose home is `home` (handed over to it when the tests run as root).
pub fn nobody(home: &Path) -> LocalUser {
    give_to_nobody(home);
    LocalUser {
        name: "nobody".into(),
        uid: Some(NOBODY),
        gid: Some(NOBODY),
        home: home.to_owned(),
    }
}

/// Makes `path` belong to uid/gid 65534 (when root) and lets it be reached: temporary
/// directories are created 0700 by root.
pub fn give_to_nobody(path: &Path) {
    if is_root() {
        std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    open_path_to(path);
}

/// Lets other users traverse every directory from `/` to `path`.
pub fn open_path_to(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for dir in path.ancestors().skip(1) {
        if let Ok(meta) = std::fs::metadata(dir) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                let _ =
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o011));
            }
        }
    }
}

/// A recipient of `user`.
pub fn rcpt(address: &str, user: LocalUser) -> Recipient {
    Recipient::new(address, user)
}

/// The files in a directory, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Splits an mboxrd file into its entries: (From line, content with the `>From` quoting undone).
pub fn parse_mbox(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with("From ") {
            entries.push((line.trim_end().to_owned(), Vec::new()));
            continue;
        }
        let entry = entries
            .last_mut()
            .expect("content before the first From line");
        let quotes = line.bytes().take_while(|&b| b == b'>').count();
        if quotes > 0 && line[quotes..].starts_with("From ") {
            entry.1.extend_from_slice(&line.as_bytes()[1..]);
        } else {
            entry.1.extend_from_slice(line.as_bytes());
        }
    }
    for entry in &mut entries {
        // Each entry ends with the empty separator line.
        assert!(
            entry.1.ends_with(b"\n\n"),
            "entry not terminated: {:?}",
            entry.0
        );
        entry.1.pop();
    }
    entries
}
