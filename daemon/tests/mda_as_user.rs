//! Delivering as the recipient: the `petrel-deliver` helper invoked directly, and through
//! `deliver` when the daemon is root. These tests need root (to switch to uid 65534); run as
//! another user they return at once.

mod mda_support;

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use mda_support::*;
use petrel_daemon::mda::{DeliveryRequest, Method, Options, Outcome, deliver};

const HELPER: &str = env!("CARGO_BIN_EXE_petrel-deliver");

fn options() -> Options {
    Options {
        helper: Some(PathBuf::from(HELPER)),
        ..Options::default()
    }
}

/// Runs `command` with `message` on stdin and returns its output.
fn feed(mut command: Command, message: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A helper that fails early stops reading; that is not the test's concern.
    let _ = child.stdin.take().unwrap().write_all(message);
    child.wait_with_output().unwrap()
}

fn helper_as_nobody() -> Command {
    let mut cmd = Command::new(HELPER);
    cmd.uid(NOBODY).gid(NOBODY).env_clear();
    cmd
}

/// A temporary directory that belongs to uid 65534.
fn nobody_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    give_to_nobody(dir.path());
    dir
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root to switch users");
            return;
        }
    };
}

#[test]
fn helper_writes_a_maildir_owned_by_the_user() {
    require_root!();
    let home = nobody_dir();
    let root = home.path().join("Maildir");
    let mut cmd = helper_as_nobody();
    cmd.args([
        "maildir",
        "--sender",
        "alice@example.org",
        "--hostname",
        "mx.test",
        "--",
    ])
    .arg(&root)
    .args(["bob@example.org", ""]);
    let out = feed(cmd, MESSAGE);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
    assert!(out.status.success());

    let files = files_in(&root.join("new"));
    assert_eq!(files.len(), 1);
    for path in [&files[0], &root, &root.join("new"), &root.join("tmp")] {
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (NOBODY, NOBODY),
            "{}",
            path.display()
        );
    }
    assert!(files[0].to_str().unwrap().contains(".mx.test,S="));
    let mut want = b"Return-Path: <alice@example.org>\nDelivered-To: bob@example.org\n".to_vec();
    want.extend(message_lf());
    assert_eq!(std::fs::read(&files[0]).unwrap(), want);
}

#[test]
fn helper_reports_each_mailbox_and_cannot_write_where_the_user_cannot() {
    require_root!();
    let home = nobody_dir();
    // Root's own directory, closed to others.
    let closed = tempfile::tempdir().unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    open_path_to(closed.path());
    let mut cmd = helper_as_nobody();
    cmd.args(["mbox", "--sender", "", "--lock-timeout-ms", "1000", "--"])
        .arg(home.path().join("mbox"))
        .args(["bob@example.org", ""])
        .arg(closed.path().join("mbox"))
        .args(["bob@example.org", ""]);
    let out = feed(cmd, MESSAGE);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(lines[0], "ok");
    assert!(
        lines[1].starts_with("permanent ") && lines[1].contains("Permission denied"),
        "{}",
        lines[1]
    );
    assert!(!closed.path().join("mbox").exists());
    assert_eq!(
        std::fs::metadata(home.path().join("mbox")).unwrap().uid(),
        NOBODY
    );
}

#[test]
fn helper_refuses_root_and_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(HELPER);
    cmd.args(["maildir", "--sender", "a@b.c", "--"])
        .arg(dir.path().join("Maildir"))
        .args(["bob@example.org", ""]);
    let out = feed(cmd, MESSAGE);
    if is_root() {
        assert_eq!(out.status.code(), Some(75), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to run as root"));
        assert!(!dir.path().join("Maildir").exists());
    }
    let mut cmd = Command::new(HELPER);
    cmd.args(["maildir", "--sender"]);
    let out = feed(cmd, b"");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_failed_append_is_cut_back() {
    require_root!();
    let home = nobody_dir();
    let mbox = home.path().join("mbox");
    let before =
        b"From old@example.org Thu Jan  1 00:00:00 1970\nSubject: old\n\nold\n\n".repeat(10);
    std::fs::write(&mbox, &before).unwrap();
    give_to_nobody(&mbox);
    // A file size limit of 4 blocks of 512 bytes makes the write fail part of the way (EFBIG,
    // with SIGXFSZ ignored).
    let big: Vec<u8> = b"Subject: big\r\n\r\n"
        .iter()
        .copied()
        .chain((0..200).flat_map(|i| format!("line {i} of a long message\r\n").into_bytes()))
        .collect();
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        r#"ulimit -f 4 && trap '' XFSZ && exec "$0" "$@""#,
        HELPER,
    ])
    .args(["mbox", "--sender", "a@b.c", "--"])
    .arg(&mbox)
    .args(["bob@example.org", ""])
    .uid(NOBODY)
    .gid(NOBODY)
    .env_clear();
    let out = feed(cmd, &big);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("temporary ") && stdout.contains("File too large"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(&mbox).unwrap(),
        before,
        "the mbox must be cut back"
    );
    assert!(!home.path().join("mbox.lock").exists());
}

#[tokio::test]
async fn root_daemon_delivers_files_through_the_helper() {
    require_root!();
    let home = nobody_dir();
    let user = nobody(home.path());
    let rcpt = rcpt("bob@example.org", user);
    let opts = options();

    // Maildir.
    let method = Method::Maildir {
        path: home.path().join("Maildir"),
        junk: true,
    };
    let spam = b"X-Spam: yes\r\n\r\nspam\r\n";
    for message in [MESSAGE, spam] {
        let mut req = DeliveryRequest::new("a@b.c", message, std::slice::from_ref(&rcpt), &method);
        req.options = &opts;
        assert_eq!(deliver(req).await, vec![Outcome::Delivered]);
    }
    let new = files_in(&home.path().join("Maildir/new"));
    let junk = files_in(&home.path().join("Maildir/.Junk/new"));
    assert_eq!((new.len(), junk.len()), (1, 1));
    assert_eq!(std::fs::metadata(&junk[0]).unwrap().uid(), NOBODY);

    // A delivery with a stable name, repeated (as after a crash), keeps one copy; the helper
    // gets the name too.
    let mut named = rcpt.clone();
    named.unique = Some("1700000000.M1E00000001000000000".into());
    for _ in 0..2 {
        let mut req = DeliveryRequest::new("a@b.c", MESSAGE, std::slice::from_ref(&named), &method);
        req.options = &opts;
        assert_eq!(deliver(req).await, vec![Outcome::Delivered]);
    }
    let new = files_in(&home.path().join("Maildir/new"));
    assert_eq!(new.len(), 2);
    assert!(new.iter().any(|f| {
        f.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("1700000000.M1E00000001000000000.")
    }));

    // A spool directory only root may write to: root creates the mailbox for the user, the
    // helper appends to it (without a dot lock, which it cannot create there).
    let spool = tempfile::tempdir().unwrap();
    std::fs::set_permissions(spool.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    open_path_to(spool.path());
    let method = Method::Mbox {
        path: spool.path().join("nobody"),
    };
    let mut req = DeliveryRequest::new("a@b.c", MESSAGE, std::slice::from_ref(&rcpt), &method);
    req.options = &opts;
    assert_eq!(deliver(req).await, vec![Outcome::Delivered]);
    let meta = std::fs::metadata(spool.path().join("nobody")).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (NOBODY, 0o600));
    assert_eq!(
        parse_mbox(&std::fs::read(spool.path().join("nobody")).unwrap()).len(),
        1
    );

    // A missing helper is a temporary failure, not a delivery as root.
    let missing = Options {
        helper: Some(home.path().join("no-such-helper")),
        ..Options::default()
    };
    let method = Method::Maildir {
        path: home.path().join("Other"),
        junk: false,
    };
    let mut req = DeliveryRequest::new("a@b.c", MESSAGE, std::slice::from_ref(&rcpt), &method);
    req.options = &missing;
    let r = deliver(req).await.pop().unwrap();
    assert!(
        matches!(&r, Outcome::Temporary(m) if m.contains("helper")),
        "{r:?}"
    );
    assert!(!home.path().join("Other").exists());
}

#[tokio::test]
async fn symlinks_planted_by_the_user_lead_nowhere() {
    require_root!();
    let home = nobody_dir();
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("shadow");
    std::fs::write(&secret, b"root only\n").unwrap();
    // The user points its mailbox, and a maildir, at root's files.
    let link = home.path().join("mbox");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    let maildir_link = home.path().join("Maildir");
    std::os::unix::fs::symlink(secret_dir.path(), &maildir_link).unwrap();
    std::os::unix::fs::lchown(&maildir_link, Some(NOBODY), Some(NOBODY)).unwrap();

    let rcpt = rcpt("bob@example.org", nobody(home.path()));
    let opts = options();
    for method in [
        Method::File { path: link.clone() },
        Method::Maildir {
            path: maildir_link.clone(),
            junk: false,
        },
    ] {
        let mut req = DeliveryRequest::new("a@b.c", MESSAGE, std::slice::from_ref(&rcpt), &method);
        req.options = &opts;
        let r = deliver(req).await.pop().unwrap();
        assert!(!r.is_delivered(), "{method:?}: {r:?}");
    }
    assert_eq!(std::fs::read(&secret).unwrap(), b"root only\n");
    assert_eq!(files_in(secret_dir.path()), vec![secret]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helpers_and_the_daemon_share_the_locks() {
    require_root!();
    let home = nobody_dir();
    let mbox = home.path().join("mbox");
    // The user's mailbox, which root (for the virtual user) may append to as well.
    std::fs::write(&mbox, b"").unwrap();
    give_to_nobody(&mbox);
    let opts = options();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (home, mbox, opts) = (home.path().to_owned(), mbox.clone(), opts.clone());
        tasks.push(tokio::spawn(async move {
            // Even: written by the daemon itself (a virtual user); odd: by helper processes.
            let user = if i % 2 == 0 {
                virtual_user(&home)
            } else {
                nobody(&home)
            };
            let rcpt = rcpt("bob@example.org", user);
            let body: String = (0..500).map(|l| format!("From line {l}\r\n")).collect();
            let message = format!("Subject: {i}\r\n\r\n{body}");
            let method = Method::File { path: mbox };
            let sender = format!("s{i}@example.org");
            let mut req = DeliveryRequest::new(
                &sender,
                message.as_bytes(),
                std::slice::from_ref(&rcpt),
                &method,
            );
            req.options = &opts;
            (deliver(req).await.pop().unwrap(), message)
        }));
    }
    let mut messages = Vec::new();
    for task in tasks {
        let (outcome, message) = task.await.unwrap();
        assert_eq!(outcome, Outcome::Delivered);
        messages.push(message);
    }
    let entries = parse_mbox(&std::fs::read(&mbox).unwrap());
    assert_eq!(entries.len(), 16);
    for (from, content) in entries {
        let i: usize = from["From s".len()..]
            .split('@')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let text = String::from_utf8(content).unwrap();
        assert!(
            text.ends_with(&messages[i].replace("\r\n", "\n")),
            "entry {i} damaged"
        );
    }
}
