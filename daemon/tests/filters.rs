//! Filters end to end: a daemon in this process, `petrel-test-filter` as the filter process,
//! SMTP over loopback, mail delivered into maildirs.

mod e2e_support;

use std::path::Path;

use e2e_support::*;
use petrel_daemon::queue::scheduler::QueueEvent;

const FILTER: &str = env!("CARGO_BIN_EXE_petrel-test-filter");

/// The filter's log, once it has a line containing `needle`.
async fn log_until(path: &Path, needle: &str) -> Vec<String> {
    log_until_count(path, needle, 1).await
}

/// The log's lines once `count` of them contain `needle`.
async fn log_until_count(path: &Path, needle: &str, count: usize) -> Vec<String> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let lines = log_lines(path);
            if lines.iter().filter(|l| l.contains(needle)).count() >= count {
                return lines;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle} in {:#?}", log_lines(path)))
}

fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_filter_rejects_a_recipient_and_data_lines_survive_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("filter.log");
    let filters = format!(
        "filter chain proc-exec \"{FILTER} --log {} --on 'rcpt-to:reject-me:reject=550 5.7.1 go away' --header 'X-Filtered: yes'\"",
        log.display()
    );
    let d = filtered(dir.path(), &filters).await;
    let mut events = d.engine.scheduler().subscribe();
    let mut c = Client::connect(d.addr).await;
    assert!(c.send(b"EHLO client.test\r\n").await.starts_with("250"));
    assert!(
        c.send(b"MAIL FROM:<alice@client.test>\r\n")
            .await
            .starts_with("250")
    );
    let refused = c.send(b"RCPT TO:<reject-me@mx.test>\r\n").await;
    assert!(refused.starts_with("550 5.7.1 go away"), "{refused}");
    assert!(
        c.send(b"RCPT TO:<bob@mx.test>\r\n")
            .await
            .starts_with("250")
    );
    assert!(c.send(b"DATA\r\n").await.starts_with("354"));
    let body = "Subject: a|b\r\n\r\n..leading dot\r\n...two dots\r\n..\r\n\r\nlast|line\r\n";
    let reply = c.send(format!("{body}.\r\n").as_bytes()).await;
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.send(b"QUIT\r\n").await;
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;

    let mail = maildir(&dir.path().join("mail/bob"));
    assert_eq!(mail.len(), 1);
    let text = String::from_utf8(mail[0].clone()).unwrap();
    // The filter's header, then the content exactly as sent (unstuffed once, by Petrel).
    assert!(text.contains("X-Filtered: yes\n"), "{text}");
    assert!(
        text.ends_with("Subject: a|b\n\n.leading dot\n..two dots\n.\n\nlast|line\n"),
        "{text}"
    );
    // The filter saw the lines dot-stuffed, as on the wire, and the end as a single dot.
    let seen = log_until(&log, "|link-disconnect|").await;
    let data: Vec<&str> = seen
        .iter()
        .filter(|l| l.contains("|data-line|"))
        .map(|l| l.splitn(8, '|').nth(7).unwrap())
        .collect();
    assert!(data.contains(&"..leading dot"), "{seen:#?}");
    assert!(data.contains(&"...two dots"), "{seen:#?}");
    assert!(data.contains(&".."), "{seen:#?}");
    assert!(data.contains(&"last|line"), "{seen:#?}");
    assert_eq!(data.last(), Some(&"."), "{seen:#?}");
    // The reports it registered for arrived.
    for event in [
        "link-connect",
        "link-identify",
        "tx-begin",
        "tx-mail",
        "tx-rcpt",
        "tx-commit",
        "link-disconnect",
    ] {
        assert!(
            seen.iter()
                .any(|l| l.contains(&format!("|smtp-in|{event}|"))),
            "no {event}: {seen:#?}"
        );
    }
    d.engine.shutdown().await;
}

/// A filter running `petrel-test-filter` with these arguments and options after the command.
fn test_filter(name: &str, args: &str, options: &str) -> String {
    format!("filter {name} proc-exec \"{FILTER} --no-reports {args}\" {options}")
}

/// Opens a session and says EHLO; the reply to MAIL and to RCPT.
async fn mail_rcpt(d: &Running, rcpt: &str) -> (Client, String, String) {
    let mut c = Client::connect(d.addr).await;
    let ehlo = c.send(b"EHLO client.test\r\n").await;
    assert!(ehlo.starts_with("250"), "{ehlo}");
    let mail = c.send(b"MAIL FROM:<alice@client.test>\r\n").await;
    let rcpt = c.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes()).await;
    (c, mail, rcpt)
}

/// Waits until the first filter process has been restarted and is serving again.
async fn wait_restarted(d: &Running) {
    let proc = d.engine.filters().unwrap().procs()[0].clone();
    tokio::time::timeout(PATIENCE, async {
        while !proc.is_ready() || proc.report().restarts == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the filter restarted");
}

fn proc_view(d: &Running, name: &str) -> petrel_daemon::control::protocol::FilterView {
    d.engine
        .filters()
        .expect("filters")
        .views()
        .into_iter()
        .find(|v| v.name == name)
        .expect("the filter")
}

#[tokio::test]
async fn a_hung_filter_fails_closed_with_a_temporary_failure_and_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let filters = test_filter("chain", "--on rcpt-to:hang-me:hang", "timeout 1s");
    let d = filtered(dir.path(), &filters).await;
    let (mut c, mail, rcpt) = mail_rcpt(&d, "hang-me@mx.test").await;
    assert!(mail.starts_with("250"), "{mail}");
    assert!(rcpt.starts_with("451 4.7.0 "), "{rcpt}");
    // The session goes on; the filter was killed and comes back.
    assert!(c.send(b"RSET\r\n").await.starts_with("250"));
    c.send(b"QUIT\r\n").await;
    let view = proc_view(&d, "chain");
    assert!(
        view.last_error
            .as_deref()
            .unwrap_or("")
            .contains("no answer"),
        "{view:?}"
    );
    tokio::time::timeout(PATIENCE, async {
        while !d.engine.filters().unwrap().procs()[0].is_ready()
            || proc_view(&d, "chain").restarts == 0
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the filter restarted");
    let (_c, _, rcpt) = mail_rcpt(&d, "bob@mx.test").await;
    assert!(rcpt.starts_with("250"), "{rcpt}");
    d.engine.shutdown().await;
}

#[tokio::test]
async fn a_hung_filter_that_fails_open_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let filters = test_filter("chain", "--on rcpt-to:hang-me:hang", "fail-open timeout 1s");
    let d = filtered(dir.path(), &filters).await;
    let (_c, _, rcpt) = mail_rcpt(&d, "hang-me@mx.test").await;
    assert!(rcpt.starts_with("250"), "{rcpt}");
    d.engine.shutdown().await;
}

#[tokio::test]
async fn a_crashing_filter_never_takes_the_daemon_down() {
    let dir = tempfile::tempdir().unwrap();
    let filters = test_filter("chain", "--on mail-from:crash@:crash", "");
    let d = filtered(dir.path(), &filters).await;
    let mut c = Client::connect(d.addr).await;
    assert!(c.send(b"EHLO client.test\r\n").await.starts_with("250"));
    let mail = c.send(b"MAIL FROM:<crash@client.test>\r\n").await;
    assert!(mail.starts_with("451 4.7.0 "), "{mail}");
    c.send(b"QUIT\r\n").await;
    // The daemon still serves, and once the filter is back mail flows again.
    wait_restarted(&d).await;
    let (_c, mail, rcpt) = mail_rcpt(&d, "bob@mx.test").await;
    assert!(
        mail.starts_with("250") && rcpt.starts_with("250"),
        "{mail} {rcpt}"
    );
    assert!(proc_view(&d, "chain").restarts >= 1);
    d.engine.shutdown().await;
}

#[tokio::test]
async fn garbage_from_a_filter_is_a_failure_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let filters = test_filter("chain", "--on ehlo::garbage", "");
    let d = filtered(dir.path(), &filters).await;
    let mut c = Client::connect(d.addr).await;
    // Before a transaction can exist, fail-closed means 421 and the connection closes.
    let ehlo = c.send(b"EHLO client.test\r\n").await;
    assert!(ehlo.starts_with("421 4.7.0 "), "{ehlo}");
    assert!(c.closed().await);
    let view = proc_view(&d, "chain");
    assert!(
        view.last_error
            .as_deref()
            .unwrap_or("")
            .contains("protocol error"),
        "{view:?}"
    );
    d.engine.shutdown().await;
}

#[tokio::test]
async fn junk_marks_the_message_and_rewrite_and_disconnect_work() {
    let dir = tempfile::tempdir().unwrap();
    let filters = test_filter(
        "chain",
        "--on mail-from:spam@:junk --on 'rcpt-to:old@:rewrite=<bob@mx.test>' --on 'rcpt-to:bye@:disconnect=421 4.7.1 go away'",
        "",
    );
    let d = filtered(dir.path(), &filters).await;
    let mut events = d.engine.scheduler().subscribe();
    let mut c = Client::connect(d.addr).await;
    assert!(c.send(b"EHLO client.test\r\n").await.starts_with("250"));
    assert!(
        c.send(b"MAIL FROM:<spam@client.test>\r\n")
            .await
            .starts_with("250")
    );
    let rcpt = c.send(b"RCPT TO:<old@mx.test>\r\n").await;
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert!(c.send(b"DATA\r\n").await.starts_with("354"));
    assert!(
        c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
            .await
            .starts_with("250")
    );
    // A second transaction of the same session is not junk.
    assert!(
        c.send(b"MAIL FROM:<alice@client.test>\r\n")
            .await
            .starts_with("250")
    );
    assert!(
        c.send(b"RCPT TO:<carol@mx.test>\r\n")
            .await
            .starts_with("250")
    );
    assert!(c.send(b"DATA\r\n").await.starts_with("354"));
    assert!(
        c.send(b"Subject: y\r\n\r\nbody\r\n.\r\n")
            .await
            .starts_with("250")
    );
    let bye = c.send(b"RCPT TO:<bye@mx.test>\r\n").await;
    assert!(bye.starts_with("503") || bye.starts_with("421"), "{bye}");
    for _ in 0..2 {
        until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    }
    let bob = String::from_utf8(maildir(&dir.path().join("mail/bob"))[0].clone()).unwrap();
    assert!(bob.contains("X-Spam: yes\n"), "{bob}");
    let carol = String::from_utf8(maildir(&dir.path().join("mail/carol"))[0].clone()).unwrap();
    assert!(!carol.contains("X-Spam"), "{carol}");
    // Disconnect: a new transaction, then the filter closes the session.
    assert!(
        c.send(b"MAIL FROM:<alice@client.test>\r\n")
            .await
            .starts_with("250")
    );
    let bye = c.send(b"RCPT TO:<bye@mx.test>\r\n").await;
    assert!(bye.starts_with("421 4.7.1 go away"), "{bye}");
    assert!(c.closed().await);
    d.engine.shutdown().await;
}

#[tokio::test]
async fn builtin_filters_check_rdns_helo_and_senders() {
    let dir = tempfile::tempdir().unwrap();
    let filters = "table bad-senders { \"spammer@client.test\" }\n\
        filter rdns phase connect match !rdns disconnect \"550 5.7.1 no rDNS\"\n\
        filter helo phase ehlo match helo regex \"^[0-9.]+$\" reject \"550 5.7.1 bare IP in EHLO\"\n\
        filter senders phase mail-from match mail-from <bad-senders> reject \"550 5.7.1 not you\"\n\
        filter chain chain { rdns, helo, senders }";
    let d = filtered(dir.path(), filters).await;
    let mut c = Client::connect(d.addr).await;
    assert!(
        c.send(b"EHLO 1.2.3.4\r\n")
            .await
            .starts_with("550 5.7.1 bare IP")
    );
    assert!(c.send(b"EHLO client.test\r\n").await.starts_with("250"));
    assert!(
        c.send(b"MAIL FROM:<spammer@client.test>\r\n")
            .await
            .starts_with("550 5.7.1 not you")
    );
    assert!(
        c.send(b"MAIL FROM:<alice@client.test>\r\n")
            .await
            .starts_with("250")
    );
    c.send(b"QUIT\r\n").await;
    // 127.0.0.2 has no PTR record: turned away at connect.
    let c = Client::connect_from("127.0.0.2", d.addr).await;
    assert!(
        c.greeting.starts_with("550 5.7.1 no rDNS"),
        "{}",
        c.greeting
    );
    d.engine.shutdown().await;
}

#[tokio::test]
async fn greylisting_defers_a_first_attempt_and_passes_a_timely_retry() {
    let dir = tempfile::tempdir().unwrap();
    let filters = "filter chain greylist delay 1s retry-window 1h";
    let d = filtered(dir.path(), filters).await;
    let (_c, _, first) = mail_rcpt(&d, "bob@mx.test").await;
    assert!(first.starts_with("451 4.7.1 Greylisted"), "{first}");
    // Too early: still deferred. Postmaster is never greylisted.
    let (_c, _, early) = mail_rcpt(&d, "bob@mx.test").await;
    assert!(early.starts_with("451 4.7.1"), "{early}");
    let (_c, _, postmaster) = mail_rcpt(&d, "postmaster@mx.test").await;
    assert!(postmaster.starts_with("250"), "{postmaster}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_c, _, retry) = mail_rcpt(&d, "bob@mx.test").await;
    assert!(retry.starts_with("250"), "{retry}");
    // The network has passed: another triplet from it passes at once.
    let (_c, _, other) = mail_rcpt(&d, "carol@mx.test").await;
    assert!(other.starts_with("250"), "{other}");
    let state = d.engine.filters().unwrap().greylist().unwrap().state();
    assert_eq!(state.network_count(), 1);
    d.engine.shutdown().await;
    // The state survives a restart.
    let saved = std::fs::read_to_string(dir.path().join("data/greylist.state")).unwrap();
    assert!(saved.contains("127.0.0.0/24"), "{saved}");
}

#[tokio::test]
async fn the_event_log_has_one_json_line_per_event_with_the_session_state() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("records"),
        "127.0.0.1 PTR client.test\nclient.test A 127.0.0.1\n",
    )
    .unwrap();
    let log = dir.path().join("events.json");
    let port = free_port();
    // No filters at all: the log alone turns the reporting stream on.
    let conf = format!(
        "resolver static \"records\"\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         listen on 127.0.0.1 port {port} hostname mx.test\n\
         action \"local\" maildir \"mail/%{{rcpt.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"local\"\n"
    );
    let d = start(&conf, dir.path(), |o| o.event_log = Some(log.clone())).await;
    let reply = Client::send_one(
        d.addr,
        "alice@client.test",
        &["bob@mx.test"],
        "Subject: x\r\n\r\nbody\r\n",
    )
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    let lines = log_until(&log, "link-disconnect").await;
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let rcpt = events
        .iter()
        .find(|e| e["event"] == "tx-rcpt")
        .expect("a tx-rcpt event");
    assert_eq!(rcpt["subsystem"], "smtp-in");
    assert_eq!(rcpt["fields"][1], "ok");
    assert_eq!(rcpt["fields"][2], "bob@mx.test");
    assert_eq!(rcpt["session"]["helo"], "client.test");
    assert_eq!(rcpt["session"]["rdns"], "client.test");
    assert_eq!(rcpt["session"]["fcrdns"], "pass");
    assert_eq!(rcpt["session"]["mail_from"], "alice@client.test");
    assert_eq!(rcpt["session"]["rcpts"][0], "bob@mx.test");
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for wanted in [
        "link-connect",
        "link-greeting",
        "link-identify",
        "tx-begin",
        "tx-mail",
        "tx-data",
        "tx-commit",
        "tx-reset",
        "protocol-client",
        "protocol-server",
        "link-disconnect",
    ] {
        assert!(names.contains(&wanted), "no {wanted} in {names:?}");
    }
    d.engine.shutdown().await;
}

#[tokio::test]
async fn a_no_rdns_listener_looks_no_client_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("records"),
        "127.0.0.1 PTR client.test\nclient.test A 127.0.0.1\n",
    )
    .unwrap();
    let log = dir.path().join("events.json");
    let (looked_up, not_looked_up) = (free_port(), free_port());
    // Mail is taken only from clients with a confirmed name: the rules need lookups.
    let conf = format!(
        "resolver static \"records\"\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         listen on 127.0.0.1 port {looked_up} hostname mx.test\n\
         listen on 127.0.0.1 port {not_looked_up} hostname mx.test no-rdns\n\
         action \"local\" maildir \"mail/%{{rcpt.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from rdns for domain \"mx.test\" action \"local\"\n"
    );
    let d = start(&conf, dir.path(), |o| o.event_log = Some(log.clone())).await;
    let with_name = std::net::SocketAddr::from(([127, 0, 0, 1], looked_up));
    let without = std::net::SocketAddr::from(([127, 0, 0, 1], not_looked_up));
    let mut c = Client::connect(with_name).await;
    c.send(b"EHLO client.test\r\n").await;
    c.send(b"MAIL FROM:<alice@client.test>\r\n").await;
    let rcpt = c.send(b"RCPT TO:<bob@mx.test>\r\n").await;
    assert!(rcpt.starts_with("250"), "{rcpt}");
    c.send(b"QUIT\r\n").await;
    let mut c = Client::connect(without).await;
    c.send(b"EHLO client.test\r\n").await;
    c.send(b"MAIL FROM:<alice@client.test>\r\n").await;
    let rcpt = c.send(b"RCPT TO:<bob@mx.test>\r\n").await;
    assert!(rcpt.starts_with("550"), "{rcpt}");
    c.send(b"QUIT\r\n").await;
    // Both sessions in the log: a name and `pass` on the first, none and `error` on the second.
    let lines = log_until_count(&log, "link-disconnect", 2).await;
    let connects: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "link-connect")
        .collect();
    assert_eq!(connects.len(), 2, "{lines:?}");
    let by_port = |port: u16| {
        connects
            .iter()
            .find(|e| {
                e["fields"][3]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!(":{port}"))
            })
            .unwrap_or_else(|| panic!("no link-connect to port {port}: {connects:?}"))
    };
    assert_eq!(by_port(looked_up)["fields"][0], "client.test");
    assert_eq!(by_port(looked_up)["fields"][1], "pass");
    assert_eq!(by_port(not_looked_up)["fields"][0], "");
    assert_eq!(by_port(not_looked_up)["fields"][1], "error");
    d.engine.shutdown().await;
}
