//! End to end, in-process daemon over loopback: bounds on concurrent sessions (in total and per
//! client address), and the reverse lookup of clients made only when rules need it.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::*;
use petrel_daemon::queue::scheduler::QueueEvent;
use petrel_daemon::service::SessionLimits;

const LOCAL: &str = "table everyone { \"@\" = \"petrel\" }\n\
                     table accounts { \"petrel\" = \"-:-:.\" }\n\
                     action \"local\" maildir \"mail/%{dest.user:lowercase}\" virtual <everyone> userbase <accounts>\n";

/// Connects until the server greets with 220: a session that just ended frees its place as
/// its task finishes, a moment after the client saw the connection close, and nothing outside
/// the daemon can watch for that moment.
async fn connect_when_free(source: &str, addr: std::net::SocketAddr) -> Client {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let c = Client::connect_from(source, addr).await;
        if c.greeting.starts_with("220") {
            return c;
        }
        assert!(Instant::now() < deadline, "still refused: {}", c.greeting);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sessions_over_the_limits_are_refused_with_421() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = format!(
        "listen on 127.0.0.1 port {port} hostname mx.test\n{LOCAL}\
         match from any for domain \"mx.test\" action \"local\"\n"
    );
    let d = start(&conf, dir.path(), |o| {
        o.limits = SessionLimits {
            max_sessions: 3,
            max_per_source: 2,
        };
    })
    .await;

    let mut a1 = Client::connect_from("127.0.0.1", d.addr).await;
    let a2 = Client::connect_from("127.0.0.1", d.addr).await;
    assert!(a1.greeting.starts_with("220 mx.test "), "{}", a1.greeting);
    assert!(a2.greeting.starts_with("220 "), "{}", a2.greeting);
    // A third from the same address: over the per-address limit.
    let mut a3 = Client::connect_from("127.0.0.1", d.addr).await;
    assert_eq!(
        a3.greeting,
        "421 4.7.0 mx.test Too many connections, try again later\r\n"
    );
    assert!(a3.closed().await, "closed after the 421");
    // Another address still gets in …
    let mut b1 = Client::connect_from("127.0.0.2", d.addr).await;
    assert!(b1.greeting.starts_with("220 "), "{}", b1.greeting);
    // … until the total is reached.
    let mut c1 = Client::connect_from("127.0.0.3", d.addr).await;
    assert!(c1.greeting.starts_with("421 4.7.0 "), "{}", c1.greeting);
    assert!(c1.closed().await);

    // The sessions that got in work normally.
    assert!(b1.send(b"EHLO b.test\r\n").await.starts_with("250"));
    let reply = b1
        .mail("b@b.test", &["bob@mx.test"], "Subject: x\r\n\r\nx\r\n")
        .await;
    assert!(reply.starts_with("250 "), "{reply}");

    // A session that ends frees its place.
    assert!(a1.send(b"QUIT\r\n").await.starts_with("221"));
    assert!(a1.closed().await);
    let mut a4 = connect_when_free("127.0.0.1", d.addr).await;
    assert!(a4.send(b"NOOP\r\n").await.starts_with("250"));
    drop(a2);
    d.engine.shutdown().await;
}

/// A daemon whose static resolver says 127.0.0.1 is `client.test` (confirmed: its A record
/// is 127.0.0.1) and 127.0.0.2 is `forged.test` (not confirmed: its A record is elsewhere).
async fn rdns_daemon(dir: &std::path::Path, rules: &str) -> Running {
    std::fs::write(
        dir.join("records"),
        "127.0.0.1 PTR client.test\nclient.test A 127.0.0.1\n\
         127.0.0.2 PTR forged.test\nforged.test A 192.0.2.1\n",
    )
    .unwrap();
    let port = free_port();
    let conf = format!(
        "listen on 127.0.0.1 port {port} hostname mx.test\nresolver static \"records\"\n{LOCAL}{rules}"
    );
    start(&conf, dir, |_| {}).await
}

/// Sends a message to bob from `source`; the reply to RCPT, and the delivered copy if any.
async fn deliver_from(d: &Running, source: &str) -> (String, Option<String>) {
    let mut events = d.engine.scheduler().subscribe();
    let mut c = Client::connect_from(source, d.addr).await;
    c.send(b"EHLO client.test\r\n").await;
    c.send(b"MAIL FROM:<a@client.test>\r\n").await;
    let rcpt = c.send(b"RCPT TO:<bob@mx.test>\r\n").await;
    if !rcpt.starts_with("250") {
        return (rcpt, None);
    }
    c.send(b"DATA\r\n").await;
    assert!(
        c.send(b"Subject: r\r\n\r\nx\r\n.\r\n")
            .await
            .starts_with("250")
    );
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    let mails = maildir(&d.dir.join("mail/bob"));
    let last = String::from_utf8(mails.last().unwrap().clone()).unwrap();
    (rcpt, Some(last))
}

#[tokio::test]
async fn reverse_names_are_looked_up_for_from_rdns_rules_and_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let d = rdns_daemon(
        dir.path(),
        "match from rdns for domain \"mx.test\" action \"local\"\n",
    )
    .await;
    // 127.0.0.1 has a confirmed name: the rule matches, the name is in the Received header.
    let (rcpt, mail) = deliver_from(&d, "127.0.0.1").await;
    assert!(rcpt.starts_with("250"), "{rcpt}");
    let mail = mail.unwrap();
    assert!(
        mail.contains("Received: from client.test (client.test [127.0.0.1])\n"),
        "{mail}"
    );
    // 127.0.0.2's PTR name does not lead back to it: no name, and `from rdns` does not match.
    let (rcpt, _) = deliver_from(&d, "127.0.0.2").await;
    assert!(rcpt.starts_with("550 5.7.1 "), "{rcpt}");
    d.engine.shutdown().await;
}

#[tokio::test]
async fn without_rdns_rules_no_reverse_lookup_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = rdns_daemon(
        dir.path(),
        "match from any for domain \"mx.test\" action \"local\"\n",
    )
    .await;
    let (rcpt, mail) = deliver_from(&d, "127.0.0.1").await;
    assert!(rcpt.starts_with("250"), "{rcpt}");
    let mail = mail.unwrap();
    // The table has a name for 127.0.0.1, but nothing needed it, so it was not asked.
    assert!(
        mail.contains("Received: from client.test ([127.0.0.1])\n"),
        "{mail}"
    );
    d.engine.shutdown().await;
}
