//! `proc:` tables in the running daemon: recipients routed and expanded through a table
//! process, a process killed mid-run (4xx until it is back), a process that never answers
//! (4xx within the timeout), a process that cannot start, and `update` on reload.

mod tables_support;

use std::path::Path;
use std::time::{Duration, Instant};

use petrel_core::rules::proc_table::Timeouts;
use petrel_daemon::tables::{ProcTableOptions, TableStatus};
use tables_support::{Client, delivered, maildir_messages, start, wait_status};

/// A table process in sh, serving `alias` (`list` → `alice, bob`) and `domain` (`mx.test`).
/// It refuses to start while `DIR/broken` exists, notes each `update` in `DIR/updates`, and
/// answers `update` with an error while `DIR/update-fails` exists.
fn table_script(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"#!/bin/sh
if [ -e "{dir}/broken" ]; then echo "broken on purpose" >&2; exit 3; fi
while IFS= read -r line; do
    [ "$line" = "config|ready" ] && break
done
printf 'register|alias\nregister|domain\nregister|ready\n'
while IFS='|' read -r kind version stamp name op a b c; do
    case "$op" in
    update)
        echo "$stamp" >> "{dir}/updates"
        if [ -e "{dir}/update-fails" ]; then
            printf 'update-result|%s|error|database unreachable\n' "$a"
        else
            printf 'update-result|%s|ok\n' "$a"
        fi ;;
    check)
        case "$a|$c" in
        "domain|mx.test") printf 'check-result|%s|found\n' "$b" ;;
        *) printf 'check-result|%s|not-found\n' "$b" ;;
        esac ;;
    lookup)
        case "$a|$c" in
        "alias|list") printf 'lookup-result|%s|found|alice, bob\n' "$b" ;;
        *) printf 'lookup-result|%s|not-found\n' "$b" ;;
        esac ;;
    *) echo "unexpected request: $op" >&2 ;;
    esac
done
"#
    )
}

/// A table that completes its handshake and then never answers.
const SILENT_TABLE: &str = r#"#!/bin/sh
while IFS= read -r line; do
    [ "$line" = "config|ready" ] && break
done
printf 'register|alias\nregister|domain\nregister|ready\n'
echo "listening, never answering" >&2
while IFS= read -r line; do :; done
"#;

/// The daemon's configuration around table `lists` run by `script`.
fn config(script: &Path) -> String {
    format!(
        "listen on 127.0.0.1 port {{port}} hostname mx.test\n\
         table lists \"proc:/bin/sh {}\"\n\
         table accounts {{ alice = \"-:-:.\", bob = \"-:-:.\" }}\n\
         action \"local\" maildir \"mail/%{{user.username}}\" alias <lists> userbase <accounts>\n\
         match from any for domain <lists> action \"local\"\n",
        script.display()
    )
}

/// Fast restarts and a short request timeout, so the tests do not wait long.
fn options() -> ProcTableOptions {
    ProcTableOptions {
        timeouts: Timeouts {
            handshake: Duration::from_secs(10),
            request: Duration::from_secs(1),
        },
        restart_delay: Duration::from_millis(50),
        max_restart_delay: Duration::from_millis(400),
    }
}

fn write_script(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("table.sh");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn recipients_are_routed_and_expanded_through_a_table_process() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), &table_script(dir.path()));
    let engine = start(dir.path(), &config(&script), options())
        .await
        .unwrap();
    assert!(matches!(
        engine.proc_tables().get("lists").unwrap().status(),
        TableStatus::Ready { generation: 1, .. }
    ));
    let mut events = engine.scheduler().subscribe();
    let mut c = Client::connect(engine.addrs()[0]).await;
    assert!(
        c.send("MAIL FROM:<sender@client.test>")
            .await
            .starts_with("250 ")
    );
    // `for domain <lists>`: a check in the process.
    let reply = c.rcpt("list@mx.test").await;
    assert_eq!(reply, "250 2.1.5 Recipient ok\r\n");
    // Not in the table's domains: no rule matches.
    assert!(c.rcpt("someone@elsewhere.test").await.starts_with("550 "));
    // In the domain, but neither an alias nor a user.
    assert!(c.rcpt("carol@mx.test").await.starts_with("550 5.1.1 "));
    assert!(c.data("through the table").await.starts_with("250 "));
    assert_eq!(c.send("QUIT").await, "221 2.0.0 Bye\r\n");
    // `list` expanded to two users, each its own delivery.
    delivered(&mut events, 2).await;
    for user in ["alice", "bob"] {
        let got = maildir_messages(&dir.path().join("mail").join(user));
        assert_eq!(got.len(), 1, "{user}: {got:?}");
        assert!(got[0].contains("Subject: through the table"), "{}", got[0]);
    }
    engine.shutdown().await;
}

#[tokio::test]
async fn a_killed_table_process_fails_lookups_temporarily_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), &table_script(dir.path()));
    let engine = start(dir.path(), &config(&script), options())
        .await
        .unwrap();
    let TableStatus::Ready { pid, .. } = engine.proc_tables().get("lists").unwrap().status() else {
        panic!("not ready");
    };
    let mut events = engine.scheduler().subscribe();
    let mut c = Client::connect(engine.addrs()[0]).await;
    assert!(
        c.send("MAIL FROM:<sender@client.test>")
            .await
            .starts_with("250 ")
    );
    assert!(c.rcpt("list@mx.test").await.starts_with("250 "));

    // Restarts fail while `broken` exists, so the table stays unavailable for as long as the
    // test needs it to be.
    std::fs::write(dir.path().join("broken"), "").unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let down = wait_status(&engine, "lists", |s| matches!(s, TableStatus::Down { .. })).await;
    let TableStatus::Down { reason, .. } = down else {
        unreachable!()
    };
    assert!(reason.contains("signal 9"), "{reason}");
    // Down, restarting, or failing its restart: a temporary failure, never a refusal. The
    // session goes on.
    for _ in 0..3 {
        assert_eq!(
            c.rcpt("list@mx.test").await,
            "451 4.3.0 Temporary failure: <list@mx.test>\r\n"
        );
    }
    // A restart failed meanwhile (the process exits at once).
    wait_status(
        &engine,
        "lists",
        |s| matches!(s, TableStatus::Down { generation, .. } if *generation >= 2),
    )
    .await;

    std::fs::remove_file(dir.path().join("broken")).unwrap();
    let ready = wait_status(&engine, "lists", |s| matches!(s, TableStatus::Ready { .. })).await;
    let TableStatus::Ready {
        generation,
        pid: new_pid,
        ..
    } = ready
    else {
        unreachable!()
    };
    assert!(generation >= 3 && new_pid != pid, "{generation} {new_pid}");
    // Back: the same session's next recipient is accepted, and the message goes through.
    assert!(c.rcpt("list@mx.test").await.starts_with("250 "));
    assert!(c.data("after the restart").await.starts_with("250 "));
    // Two recipients `list`, each expanding to alice and bob.
    delivered(&mut events, 4).await;
    assert_eq!(maildir_messages(&dir.path().join("mail/alice")).len(), 2);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_table_that_never_answers_fails_the_recipient_temporarily_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), SILENT_TABLE);
    let engine = start(dir.path(), &config(&script), options())
        .await
        .unwrap();
    let mut c = Client::connect(engine.addrs()[0]).await;
    assert!(
        c.send("MAIL FROM:<sender@client.test>")
            .await
            .starts_with("250 ")
    );
    let asked = Instant::now();
    let reply = c.rcpt("list@mx.test").await;
    let took = asked.elapsed();
    assert_eq!(reply, "451 4.3.0 Temporary failure: <list@mx.test>\r\n");
    // The request timeout is 1 s; the reply comes then, not before and not much later.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // The session is still usable.
    assert_eq!(c.send("NOOP").await, "250 2.0.0 Ok\r\n");
    engine.shutdown().await;
}

#[tokio::test]
async fn a_table_process_that_cannot_start_stops_the_daemon_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), &table_script(dir.path()));
    std::fs::write(dir.path().join("broken"), "").unwrap();
    let err = start(dir.path(), &config(&script), options())
        .await
        .unwrap_err();
    assert!(err.contains("table <lists>"), "{err}");
    assert!(err.contains("exited with status 3"), "{err}");

    let missing = dir.path().join("no-such-program");
    let err = start(dir.path(), &config(&missing), options())
        .await
        .unwrap_err();
    assert!(err.contains("table <lists>"), "{err}");
}

#[tokio::test]
async fn a_reload_sends_update_to_table_processes() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), &table_script(dir.path()));
    let engine = start(dir.path(), &config(&script), options())
        .await
        .unwrap();
    let report = engine.reload_tables().await.unwrap();
    assert_eq!(report.updated, ["lists"]);
    assert!(report.update_failed.is_empty());
    let updates = std::fs::read_to_string(dir.path().join("updates")).unwrap();
    assert_eq!(updates.lines().count(), 1);
    // A table whose update fails keeps running and answering.
    std::fs::write(dir.path().join("update-fails"), "").unwrap();
    let report = engine.reload_tables().await.unwrap();
    assert!(report.updated.is_empty());
    assert_eq!(report.update_failed.len(), 1);
    assert!(
        report.update_failed[0].1.contains("database unreachable"),
        "{report:?}"
    );
    assert!(report.to_string().contains("<lists>"), "{report}");
    let mut c = Client::connect(engine.addrs()[0]).await;
    assert!(
        c.send("MAIL FROM:<sender@client.test>")
            .await
            .starts_with("250 ")
    );
    assert!(c.rcpt("list@mx.test").await.starts_with("250 "));
    engine.shutdown().await;
}
