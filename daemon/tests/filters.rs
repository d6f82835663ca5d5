//! Filters end to end: a daemon in this process, `petrel-test-filter` as the filter process,
//! SMTP over loopback, mail delivered into maildirs.

mod e2e_support;

use std::path::Path;

use e2e_support::*;
use petrel_daemon::queue::scheduler::QueueEvent;

const FILTER: &str = env!("CARGO_BIN_EXE_petrel-test-filter");

/// A daemon whose listener runs `filters` (text declaring a chain named `chain`), delivering
/// everything for mx.test into `mail/<user>`.
async fn daemon(dir: &Path, filters: &str) -> Running {
    let port = free_port();
    let conf = format!(
        "table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         {filters}\n\
         listen on 127.0.0.1 port {port} hostname mx.test filter chain\n\
         action \"local\" maildir \"mail/%{{rcpt.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"local\"\n"
    );
    start(&conf, dir, |_| {}).await
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
    let d = daemon(dir.path(), &filters).await;
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
    let seen = log_lines(&log);
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
