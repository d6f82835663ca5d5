//! Delivery through commands (`mda` and `|pipe` targets), with real processes.
//!
//! Commands never run as root: when the tests run as root, the recipient is uid 65534 and the
//! command runs as that user; otherwise it runs as the test's own user.

mod mda_support;

use std::path::Path;
use std::time::{Duration, Instant};

use mda_support::*;
use petrel_daemon::mda::{DeliveryRequest, Method, Options, Outcome, Recipient, deliver};

async fn run_with(command: &str, message: &[u8], rcpt: &Recipient, options: &Options) -> Outcome {
    let method = Method::Mda {
        command: command.to_owned(),
    };
    let mut req = DeliveryRequest::new(
        "alice@example.org",
        message,
        std::slice::from_ref(rcpt),
        &method,
    );
    req.options = options;
    deliver(req).await.pop().unwrap()
}

async fn run(command: &str, rcpt: &Recipient) -> Outcome {
    run_with(command, MESSAGE, rcpt, &Options::default()).await
}

fn bob(home: &Path) -> Recipient {
    let mut r = rcpt("bob@example.org", nobody(home));
    r.original = Some("bob+lists@example.net".into());
    r.extension = Some("lists".into());
    r
}

#[tokio::test]
async fn message_on_stdin_environment_and_working_directory() {
    let home = tempfile::tempdir().unwrap();
    let rcpt = bob(home.path());
    let outcome = run(
        r#"cat > "$HOME/message"; env > "$HOME/env"; pwd > "$HOME/pwd"; id -u > "$HOME/uid"; id -G > "$HOME/groups""#,
        &rcpt,
    )
    .await;
    assert_eq!(outcome, Outcome::Delivered);

    let mut want =
        b"Return-Path: <alice@example.org>\nDelivered-To: bob+lists@example.net\n".to_vec();
    want.extend(message_lf());
    assert_eq!(std::fs::read(home.path().join("message")).unwrap(), want);

    let env = std::fs::read_to_string(home.path().join("env")).unwrap();
    let home_str = home.path().to_str().unwrap();
    for var in [
        "PATH=/bin:/usr/bin:/usr/local/bin".to_owned(),
        format!("HOME={home_str}"),
        "USER=nobody".to_owned(),
        "LOGNAME=nobody".to_owned(),
        "SHELL=/bin/sh".to_owned(),
        "SENDER=alice@example.org".to_owned(),
        "RECIPIENT=bob@example.org".to_owned(),
        "ORIGINAL_RECIPIENT=bob+lists@example.net".to_owned(),
        "LOCAL=bob+lists".to_owned(),
        "DOMAIN=example.net".to_owned(),
        "EXTENSION=lists".to_owned(),
    ] {
        assert!(env.lines().any(|l| l == var), "{var} missing from:\n{env}");
    }
    // Nothing of the daemon's environment leaks through.
    assert!(!env.contains("CARGO"), "{env}");
    let pwd = std::fs::read_to_string(home.path().join("pwd")).unwrap();
    assert_eq!(Path::new(pwd.trim()), home.path().canonicalize().unwrap());
    if is_root() {
        let uid = std::fs::read_to_string(home.path().join("uid")).unwrap();
        assert_eq!(uid.trim(), NOBODY.to_string());
        // Root's supplementary groups are dropped too.
        let groups = std::fs::read_to_string(home.path().join("groups")).unwrap();
        assert_eq!(groups.trim(), NOBODY.to_string());
    }
}

#[tokio::test]
async fn exit_statuses() {
    let home = tempfile::tempdir().unwrap();
    let rcpt = bob(home.path());
    assert_eq!(
        run("cat > /dev/null; exit 0", &rcpt).await,
        Outcome::Delivered
    );

    let r = run(
        "cat > /dev/null; echo 'mailbox locked, try later' >&2; exit 75",
        &rcpt,
    )
    .await;
    assert!(
        matches!(&r, Outcome::Temporary(m) if m.contains("75") && m.contains("mailbox locked")),
        "{r:?}"
    );

    let r = run(
        "cat > /dev/null; echo progress; echo 'no such folder' >&2; echo more; exit 1",
        &rcpt,
    )
    .await;
    assert!(
        matches!(&r, Outcome::Permanent(m) if m.contains("status 1") && m.contains("no such folder")),
        "{r:?}"
    );

    let r = run("cat > /dev/null; echo 'unknown user'; exit 67", &rcpt).await;
    assert!(
        matches!(&r, Outcome::Permanent(m) if m.contains("user unknown") && m.contains("unknown user")),
        "{r:?}"
    );

    let r = run("kill -KILL $$", &rcpt).await;
    assert!(
        matches!(&r, Outcome::Temporary(m) if m.contains("signal 9")),
        "{r:?}"
    );

    // Long output: only the end is kept.
    let r = run(
        "cat > /dev/null; yes filler | head -c 1000000; echo; echo 'the last word'; exit 2",
        &rcpt,
    )
    .await;
    assert!(
        matches!(&r, Outcome::Permanent(m) if m.ends_with("the last word") && m.len() < 700),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_command_that_does_not_read_its_input_has_not_delivered() {
    let home = tempfile::tempdir().unwrap();
    let rcpt = bob(home.path());
    let big: Vec<u8> = b"Subject: big\r\n\r\n"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'x', 1 << 20))
        .chain(*b"\r\n")
        .collect();
    let r = run_with("exit 0", &big, &rcpt, &Options::default()).await;
    assert!(
        matches!(&r, Outcome::Temporary(m) if m.contains("before reading")),
        "{r:?}"
    );
    assert_eq!(
        run_with("cat > /dev/null", &big, &rcpt, &Options::default()).await,
        Outcome::Delivered
    );
}

#[tokio::test]
async fn slow_commands_are_killed_with_their_children() {
    let home = tempfile::tempdir().unwrap();
    let rcpt = bob(home.path());
    let options = Options {
        command_timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let started = Instant::now();
    // A background child keeps the output pipe open: the whole group must die.
    let r = run_with(
        r#"cat > /dev/null; (sleep 29.75; touch "$HOME/survived") & sleep 29.75"#,
        MESSAGE,
        &rcpt,
        &options,
    )
    .await;
    assert!(
        matches!(&r, Outcome::Temporary(m) if m.contains("timed out")),
        "{r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !sleepers_running(),
        "the command's background child survived"
    );
    assert!(!home.path().join("survived").exists());
}

/// True when a `sleep 29.75` process is running (only the test above starts one).
fn sleepers_running() -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x0029.75\x00")
    })
}

#[tokio::test]
async fn pipe_targets_run_like_mda() {
    let home = tempfile::tempdir().unwrap();
    let rcpt = bob(home.path());
    let method = Method::Pipe {
        command: r#"cat > "$HOME/piped""#.into(),
    };
    let outcomes = deliver(DeliveryRequest::new(
        "",
        MESSAGE,
        std::slice::from_ref(&rcpt),
        &method,
    ))
    .await;
    assert_eq!(outcomes, vec![Outcome::Delivered]);
    let piped = std::fs::read(home.path().join("piped")).unwrap();
    assert!(
        piped.starts_with(b"Return-Path: <>\nDelivered-To: bob+lists@example.net\nFrom: Alice")
    );
}

#[tokio::test]
async fn refusals() {
    let home = tempfile::tempdir().unwrap();
    // No home directory.
    let mut ghost = bob(home.path());
    ghost.user.home = home.path().join("gone");
    let r = run("cat > /dev/null", &ghost).await;
    assert!(
        matches!(&r, Outcome::Permanent(m) if m.contains("home directory")),
        "{r:?}"
    );

    // Never a root shell.
    if is_root() {
        let mut root = bob(home.path());
        root.user.uid = Some(0);
        root.user.gid = Some(0);
        let r = run("cat > /dev/null", &root).await;
        assert!(
            matches!(&r, Outcome::Permanent(m) if m.contains("as root")),
            "{r:?}"
        );
        let virtual_rcpt = rcpt("v@example.org", virtual_user(home.path()));
        let r = run("cat > /dev/null", &virtual_rcpt).await;
        assert!(
            matches!(&r, Outcome::Permanent(m) if m.contains("as root")),
            "{r:?}"
        );
        let mut no_gid = bob(home.path());
        no_gid.user.gid = None;
        let r = run("cat > /dev/null", &no_gid).await;
        assert!(
            matches!(&r, Outcome::Permanent(m) if m.contains("no gid")),
            "{r:?}"
        );
    }
}
