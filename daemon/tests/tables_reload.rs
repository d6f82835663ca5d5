//! Reloading `file:` tables at run time: in-process through `Engine::reload_tables`, and on
//! the real binary through SIGHUP.

mod tables_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use petrel_daemon::routing::RoutingError;
use petrel_daemon::tables::{ProcTableOptions, TableLoadError};
use tables_support::{Client, delivered, free_port, maildir_messages, start};

/// Mail for the domains listed in `DIR/domains` goes to maildirs under `DIR/mail/`.
fn config(dir: &Path) -> String {
    format!(
        "listen on 127.0.0.1 port {{port}} hostname mx.test\n\
         table domains file:{}/domains\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain <domains> action \"local\"\n",
        dir.display()
    )
}

#[tokio::test]
async fn a_changed_table_file_applies_after_reload_and_open_sessions_go_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("domains"), "mx.test\n").unwrap();
    let engine = start(dir.path(), &config(dir.path()), ProcTableOptions::default())
        .await
        .unwrap();
    let mut events = engine.scheduler().subscribe();

    // A session opened before the reload.
    let mut before = Client::connect(engine.addrs()[0]).await;
    assert!(
        before
            .send("MAIL FROM:<a@client.test>")
            .await
            .starts_with("250 ")
    );
    assert!(before.rcpt("one@mx.test").await.starts_with("250 "));
    assert!(before.rcpt("two@other.test").await.starts_with("550 "));

    std::fs::write(dir.path().join("domains"), "mx.test\nother.test\n").unwrap();
    let report = engine.reload_tables().await.unwrap();
    assert_eq!(
        report.files,
        [("domains".to_owned(), dir.path().join("domains"))]
    );
    assert!(report.to_string().contains("<domains>"), "{report}");

    // The open session sees the new table from its next recipient on, and its transaction
    // (with a recipient accepted before the reload) completes.
    assert!(before.rcpt("two@other.test").await.starts_with("250 "));
    assert!(before.data("across a reload").await.starts_with("250 "));
    delivered(&mut events, 2).await;
    for user in ["one", "two"] {
        assert_eq!(
            maildir_messages(&dir.path().join("mail").join(user)).len(),
            1,
            "{user}"
        );
    }
    // And a new session too.
    let mut after = Client::connect(engine.addrs()[0]).await;
    assert!(
        after
            .send("MAIL FROM:<a@client.test>")
            .await
            .starts_with("250 ")
    );
    assert!(after.rcpt("three@other.test").await.starts_with("250 "));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_table_file_that_does_not_parse_on_reload_keeps_the_current_routing() {
    let dir = tempfile::tempdir().unwrap();
    let domains = dir.path().join("domains");
    std::fs::write(&domains, "mx.test\n").unwrap();
    let engine = start(dir.path(), &config(dir.path()), ProcTableOptions::default())
        .await
        .unwrap();

    std::fs::write(&domains, "# domains\nother.test\n[broken\n").unwrap();
    let err = engine.reload_tables().await.unwrap_err();
    let RoutingError::Tables(TableLoadError::Parse {
        table, path, line, ..
    }) = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        (table.as_str(), path.as_path(), *line),
        ("domains", domains.as_path(), 3)
    );
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3: ", domains.display())),
        "{err}"
    );
    let mut c = Client::connect(engine.addrs()[0]).await;
    assert!(
        c.send("MAIL FROM:<a@client.test>")
            .await
            .starts_with("250 ")
    );
    assert!(c.rcpt("one@mx.test").await.starts_with("250 "));
    assert!(c.rcpt("two@other.test").await.starts_with("550 "));

    // A file that went missing: the same.
    std::fs::remove_file(&domains).unwrap();
    let err = engine.reload_tables().await.unwrap_err();
    assert!(
        matches!(err, RoutingError::Tables(TableLoadError::Read { .. })),
        "{err:?}"
    );
    assert!(c.rcpt("three@mx.test").await.starts_with("250 "));

    // Fixed: the next reload applies.
    std::fs::write(&domains, "other.test\n").unwrap();
    engine.reload_tables().await.unwrap();
    assert!(c.rcpt("two@other.test").await.starts_with("250 "));
    assert!(c.rcpt("four@mx.test").await.starts_with("550 "));
    engine.shutdown().await;
}

/// Runs the real binary; kills it when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the daemon's log until a line contains `what`; returns that line.
fn log_until(log: &mut impl BufRead, what: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "petreld stopped logging before {what:?}; it logged:\n{seen}"
        );
        if line.contains(what) {
            return line;
        }
        seen.push_str(&line);
    }
}

/// One blocking SMTP exchange: sends `line`, returns the reply.
fn exchange(s: &mut TcpStream, line: &str) -> String {
    s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn sighup_reloads_the_tables_of_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("domains"), "mx.test\n").unwrap();
    let conf = dir.path().join("smtpd.conf");
    std::fs::write(
        &conf,
        config(dir.path()).replace("{port}", &port.to_string()),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_petreld"))
        .arg("-f")
        .arg(&conf)
        .arg("-d")
        .arg(dir.path().join("data"))
        .env("PETREL_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let daemon = Daemon(child);
    log_until(&mut log, "listening");

    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"220 "));
    assert!(exchange(&mut s, "HELO client.test").starts_with("250 "));
    assert!(exchange(&mut s, "MAIL FROM:<a@client.test>").starts_with("250 "));
    assert!(exchange(&mut s, "RCPT TO:<two@other.test>").starts_with("550 "));

    std::fs::write(dir.path().join("domains"), "mx.test\nother.test\n").unwrap();
    let pid = daemon.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let line = log_until(&mut log, "tables reloaded");
    assert!(line.contains("<domains>"), "{line}");
    // The session opened before the signal goes on, with the new table.
    assert!(exchange(&mut s, "RCPT TO:<two@other.test>").starts_with("250 "));

    // A broken file: logged with its file and line, and the daemon keeps running.
    std::fs::write(dir.path().join("domains"), "[broken\n").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let line = log_until(&mut log, "tables not reloaded");
    assert!(
        line.contains(&format!("{}:1:", dir.path().join("domains").display())),
        "{line}"
    );
    assert!(exchange(&mut s, "RCPT TO:<three@other.test>").starts_with("250 "));

    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut daemon = daemon;
    assert!(daemon.0.wait().unwrap().success());
}
