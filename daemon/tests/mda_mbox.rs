//! Mbox and file delivery against real files.

mod mda_support;

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use mda_support::*;
use petrel_daemon::mda::{DeliveryRequest, Method, Options, Outcome, Recipient, deliver};

async fn append(path: &Path, sender: &str, message: &[u8], rcpt: &Recipient) -> Outcome {
    append_with(path, sender, message, rcpt, &Options::default()).await
}

async fn append_with(
    path: &Path,
    sender: &str,
    message: &[u8],
    rcpt: &Recipient,
    options: &Options,
) -> Outcome {
    let method = Method::Mbox {
        path: path.to_owned(),
    };
    let mut req = DeliveryRequest::new(sender, message, std::slice::from_ref(rcpt), &method);
    req.options = options;
    deliver(req).await.pop().unwrap()
}

#[tokio::test]
async fn entries_have_a_from_line_trace_fields_and_quoting() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("bob");
    let bob = rcpt("bob@example.org", virtual_user(dir.path()));
    assert_eq!(
        append(&mbox, "alice@example.org", MESSAGE, &bob).await,
        Outcome::Delivered
    );
    assert_eq!(
        append(
            &mbox,
            "",
            b"Subject: bounce\r\n\r\n>From here\r\nno newline",
            &bob
        )
        .await,
        Outcome::Delivered
    );

    let bytes = std::fs::read(&mbox).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!text.contains('\r'));
    assert!(text.contains("\n>From the top: a line that mbox must quote.\n"));
    assert!(text.contains("\nBye\n\nFrom MAILER-DAEMON "));
    assert!(text.ends_with("\n>>From here\nno newline\n\n"));
    let entries = parse_mbox(&bytes);
    assert_eq!(entries.len(), 2);
    let (from, content) = &entries[0];
    assert!(from.starts_with("From alice@example.org "), "{from}");
    // asctime: "Www Mmm dd hh:mm:ss yyyy"
    let date: Vec<&str> = from.split(' ').skip(2).filter(|s| !s.is_empty()).collect();
    assert_eq!(date.len(), 5, "{from}");
    let mut want = b"Return-Path: <alice@example.org>\nDelivered-To: bob@example.org\n".to_vec();
    want.extend(message_lf());
    assert_eq!(content, &want);
    let (from, content) = &entries[1];
    assert!(from.starts_with("From MAILER-DAEMON "), "{from}");
    assert_eq!(
        content,
        b"Return-Path: <>\nDelivered-To: bob@example.org\nSubject: bounce\n\n>From here\nno newline\n"
    );

    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&mbox).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !dir.path().join("bob.lock").exists(),
        "dot lock left behind"
    );
}

#[tokio::test]
async fn file_targets_append_like_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    std::fs::write(
        &path,
        b"From old@example.org Thu Jan  1 00:00:00 1970\nSubject: old\n\nunterminated",
    )
    .unwrap();
    let method = Method::File { path: path.clone() };
    let recipients = [
        rcpt("bob@example.org", virtual_user(dir.path())),
        rcpt("carol@example.org", virtual_user(dir.path())),
    ];
    let outcomes = deliver(DeliveryRequest::new(
        "alice@example.org",
        MESSAGE,
        &recipients,
        &method,
    ))
    .await;
    assert_eq!(outcomes, vec![Outcome::Delivered, Outcome::Delivered]);
    let entries = parse_mbox(&std::fs::read(&path).unwrap());
    assert_eq!(entries.len(), 3);
    // The previous writer's missing newlines were supplied.
    assert_eq!(entries[0].1, b"Subject: old\n\nunterminated\n");
    assert!(
        entries[1]
            .1
            .starts_with(b"Return-Path: <alice@example.org>\nDelivered-To: bob@example.org\n")
    );
    assert!(
        entries[2]
            .1
            .starts_with(b"Return-Path: <alice@example.org>\nDelivered-To: carol@example.org\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("bob");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (mbox, home) = (mbox.clone(), dir.path().to_owned());
        tasks.push(tokio::spawn(async move {
            let bob = rcpt("bob@example.org", virtual_user(&home));
            // Big enough that one write could be split, with lines that need quoting.
            let body: String = (0..2000)
                .map(|l| format!("From line {l} of message {i}\r\n"))
                .collect();
            let message = format!("Subject: {i}\r\n\r\n{body}");
            let outcome = append(
                &mbox,
                &format!("sender{i}@example.org"),
                message.as_bytes(),
                &bob,
            )
            .await;
            (i, message, outcome)
        }));
    }
    let mut sent = Vec::new();
    for task in tasks {
        let (i, message, outcome) = task.await.unwrap();
        assert_eq!(outcome, Outcome::Delivered);
        sent.push((i, message));
    }
    let entries = parse_mbox(&std::fs::read(&mbox).unwrap());
    assert_eq!(entries.len(), 24);
    for (from, content) in entries {
        let i: usize = from
            .strip_prefix("From sender")
            .and_then(|s| s.split('@').next())
            .unwrap()
            .parse()
            .unwrap();
        let mut want =
            format!("Return-Path: <sender{i}@example.org>\nDelivered-To: bob@example.org\n")
                .into_bytes();
        want.extend(sent[i].1.replace("\r\n", "\n").into_bytes());
        assert!(content == want, "entry {i} damaged");
    }
}

#[tokio::test]
async fn waits_for_locks_held_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("bob");
    std::fs::write(&mbox, b"").unwrap();
    let bob = rcpt("bob@example.org", virtual_user(dir.path()));
    let options = Options {
        lock_timeout: Duration::from_millis(300),
        ..Options::default()
    };

    // A reader holding flock (mutt with flock, BSD tools).
    let held = File::open(&mbox).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let started = Instant::now();
    let r = append_with(&mbox, "a@b.c", MESSAGE, &bob, &options).await;
    assert!(
        matches!(&r, Outcome::Temporary(m) if m.contains("lock")),
        "{r:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    drop(held);

    // A reader holding the dot lock.
    let lock = dir.path().join("bob.lock");
    std::fs::write(&lock, b"").unwrap();
    let r = append_with(&mbox, "a@b.c", MESSAGE, &bob, &options).await;
    assert!(
        matches!(&r, Outcome::Temporary(m) if m.contains("lock")),
        "{r:?}"
    );
    assert!(lock.exists(), "someone else's dot lock must stay");
    // Released while we wait: the delivery goes through.
    let remover = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::remove_file(&lock).unwrap();
    });
    let r = append_with(&mbox, "a@b.c", MESSAGE, &bob, &Options::default()).await;
    remover.await.unwrap();
    assert_eq!(r, Outcome::Delivered);

    // A reader holding an fcntl lock (Postfix, Dovecot, mutt on Linux), in another process:
    // python's lockf is fcntl(F_SETLKW). Skipped where there is no python3.
    let holder = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import fcntl, sys, time\n\
             f = open(sys.argv[1], 'a')\n\
             fcntl.lockf(f, fcntl.LOCK_EX)\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n",
        )
        .arg(&mbox)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    if let Ok(mut child) = holder {
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line.trim(), "locked");
        let r = append_with(&mbox, "a@b.c", MESSAGE, &bob, &options).await;
        assert!(
            matches!(&r, Outcome::Temporary(m) if m.contains("lock")),
            "{r:?}"
        );
        drop(child.stdin.take());
        child.wait().unwrap();
    }
    assert_eq!(parse_mbox(&std::fs::read(&mbox).unwrap()).len(), 1);
}

#[tokio::test]
async fn refuses_links_and_special_files() {
    let dir = tempfile::tempdir().unwrap();
    let bob = rcpt("bob@example.org", virtual_user(dir.path()));
    let target = dir.path().join("target");
    std::fs::write(&target, b"precious\n").unwrap();

    let symlink = dir.path().join("symlink");
    std::os::unix::fs::symlink(&target, &symlink).unwrap();
    let r = append(&symlink, "a@b.c", MESSAGE, &bob).await;
    assert!(
        matches!(&r, Outcome::Permanent(m) if m.contains("symbolic link")),
        "{r:?}"
    );

    let hardlink = dir.path().join("hardlink");
    std::fs::hard_link(&target, &hardlink).unwrap();
    let r = append(&hardlink, "a@b.c", MESSAGE, &bob).await;
    assert!(matches!(&r, Outcome::Permanent(_)), "{r:?}");

    let r = append(dir.path(), "a@b.c", MESSAGE, &bob).await;
    assert!(matches!(&r, Outcome::Permanent(_)), "{r:?}");

    assert_eq!(std::fs::read(&target).unwrap(), b"precious\n");
}
