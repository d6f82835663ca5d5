//! End to end, in-process daemon over loopback: SMTP in, then relaying to a scripted SMTP
//! server found through `resolver static`: temporary failures retried, permanent ones bounced
//! with an RFC 3464 report, a connection dropped in the middle of DATA, and the per-destination
//! connection limit with connections reused between batches.
//!
//! Retries are made due at once with `schedule_now` when the queue reports the deferral,
//! instead of waiting for the retry schedule's minutes.

mod e2e_support;
#[allow(dead_code)]
#[path = "mta_common/smtp.rs"]
mod smtp;
mod tls_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e_support::*;
use petrel_core::session::Decision;
use petrel_core::session::server::Request;
use petrel_core::smtp::{EnhancedCode, Reply};
use petrel_daemon::queue::scheduler::QueueEvent;
use petrel_daemon::tls;
use smtp::{Behaviour, SmtpServer};

/// A daemon for `mx.test` that files local mail into `mail/<user>/` and relays mail for
/// `dest.test` to `server`, with `extra` configuration lines.
async fn daemon(dir: &std::path::Path, server: &SmtpServer, extra: &str) -> Running {
    daemon_with(dir, server, extra, "").await
}

/// [`daemon`], with options added to the relay action.
async fn daemon_with(
    dir: &std::path::Path,
    server: &SmtpServer,
    extra: &str,
    relay_options: &str,
) -> Running {
    std::fs::write(
        dir.join("records"),
        format!(
            "dest.test MX 10 mx.dest.test\nmx.dest.test A 127.0.0.1:{}\n",
            server.addr.port()
        ),
    )
    .unwrap();
    let port = free_port();
    let conf = format!(
        "listen on 127.0.0.1 port {port} hostname mx.test\n\
         resolver static \"records\"\n{extra}\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         action \"out\" relay {relay_options}\n\
         match from any for domain \"mx.test\" action \"local\"\n\
         match from local for domain \"dest.test\" action \"out\"\n"
    );
    start(&conf, dir, |_| {}).await
}

const CONTENT: &str = "From: alice@mx.test\r\nSubject: relayed\r\n\r\nline one\r\n..dotted\r\nMARKER line\r\nlast\r\n";
const RELAYED: &[u8] = b"From: alice@mx.test\r\nSubject: relayed\r\n\r\nline one\r\n.dotted\r\nMARKER line\r\nlast\r\n";

/// Sends the test message from alice@mx.test to bob@dest.test.
async fn send(d: &Running) {
    let reply = Client::send_one(d.addr, "alice@mx.test", &["bob@dest.test"], CONTENT).await;
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
}

/// The relayed copies the server stored, checked for the content (our Received header first).
fn stored_copies(server: &SmtpServer) -> usize {
    let stored = server.stored();
    for s in &stored {
        assert!(
            s.content
                .starts_with(b"Received: from client.test ([127.0.0.1])")
        );
        assert!(
            s.content.ends_with(RELAYED),
            "{:?}",
            String::from_utf8_lossy(&s.content)
        );
        assert_eq!(s.envelope.from.to_string(), "<alice@mx.test>");
    }
    stored.len()
}

#[tokio::test]
async fn a_temporary_failure_is_retried_and_delivered() {
    let commits = Arc::new(AtomicUsize::new(0));
    let seen = commits.clone();
    let server = SmtpServer::start(Behaviour::new().policy(move |r| match r {
        Request::Commit { .. } if seen.fetch_add(1, Ordering::SeqCst) == 0 => Decision::Reply(
            Reply::new(451, EnhancedCode::new(4, 3, 0), "try again later"),
        ),
        _ => Decision::Accept,
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path(), &server, "").await;
    let mut events = d.engine.scheduler().subscribe();
    send(&d).await;
    until(&mut events, |e| matches!(e, QueueEvent::Deferred(..))).await;
    let queued = d.engine.scheduler().snapshot().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].envelope.attempts, 1);
    assert!(
        queued[0]
            .envelope
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("451 4.3.0 try again later")),
        "{queued:?}"
    );
    assert_eq!(stored_copies(&server), 0);

    d.engine.scheduler().schedule_now(None);
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    assert_eq!(stored_copies(&server), 1);
    assert_eq!(commits.load(Ordering::SeqCst), 2);
    assert!(d.engine.scheduler().snapshot().await.is_empty());
    d.engine.shutdown().await;
}

/// The value of a header field (first occurrence) in a block of `Name: value` lines.
fn field<'a>(block: &'a str, name: &str) -> Option<&'a str> {
    block.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Splits a message (LF line endings) into its header and body.
fn split_message(text: &str) -> (&str, &str) {
    text.split_once("\n\n").expect("a header and a body")
}

/// Parses a multipart body into its parts, each (header, body).
fn parts<'a>(body: &'a str, boundary: &str) -> Vec<(&'a str, &'a str)> {
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    for chunk in body.split(delimiter.as_str()).skip(1) {
        if chunk.starts_with("--") {
            break; // the close delimiter
        }
        let chunk = chunk.strip_prefix('\n').unwrap_or(chunk);
        let (header, body) = chunk.split_once("\n\n").unwrap_or((chunk, ""));
        out.push((header, body));
    }
    out
}

/// A `param="value"` or `param=value` of a Content-Type, unfolded.
fn param(content_type: &str, name: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Unfolds header lines (continuations start with white space).
fn unfold(header: &str) -> String {
    header.replace("\n\t", " ").replace("\n ", " ")
}

#[tokio::test]
async fn a_permanent_failure_is_bounced_with_a_delivery_status_report() {
    let server = SmtpServer::start(Behaviour::new().policy(|r| match r {
        Request::Rcpt { .. } => Decision::Reply(Reply::new(
            550,
            EnhancedCode::new(5, 1, 1),
            "no such user here",
        )),
        _ => Decision::Accept,
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path(), &server, "").await;
    let mut events = d.engine.scheduler().subscribe();
    send(&d).await;
    let QueueEvent::Failed(failed) =
        until(&mut events, |e| matches!(e, QueueEvent::Failed(_))).await
    else {
        unreachable!()
    };
    // The bounce is its own message, delivered into alice's maildir.
    until(
        &mut events,
        |e| matches!(e, QueueEvent::Delivered(id) if id.msg() != failed.msg()),
    )
    .await;
    let mails = maildir(&dir.path().join("mail/alice"));
    assert_eq!(mails.len(), 1);
    let text = String::from_utf8(mails[0].clone()).unwrap();

    let (header, body) = split_message(&text);
    let header = unfold(header);
    assert_eq!(field(&header, "Return-Path"), Some("<>"), "{text}");
    assert!(field(&header, "To").is_some_and(|to| to.contains("alice@mx.test")));
    let content_type = field(&header, "Content-Type").expect("a Content-Type");
    assert!(
        content_type.starts_with("multipart/report"),
        "{content_type}"
    );
    assert_eq!(
        param(content_type, "report-type").as_deref(),
        Some("delivery-status")
    );
    let boundary = param(content_type, "boundary").expect("a boundary");
    let parts = parts(body, &boundary);
    assert!(parts.len() >= 2, "{text}");
    // RFC 3464: the first part is for people, the second the machine-readable report.
    let (status_header, status) = parts[1];
    assert_eq!(
        field(&unfold(status_header), "Content-Type"),
        Some("message/delivery-status"),
        "{text}"
    );
    // Per-message fields, a blank line, then one block per recipient.
    let mut blocks = status.split("\n\n").filter(|b| !b.trim().is_empty());
    let per_message = blocks.next().expect("per-message fields");
    assert_eq!(
        field(per_message, "Reporting-MTA"),
        Some("dns; mx.test"),
        "{status}"
    );
    let recipient = unfold(blocks.next().expect("a per-recipient block"));
    assert_eq!(
        field(&recipient, "Final-Recipient"),
        Some("rfc822; bob@dest.test")
    );
    assert_eq!(field(&recipient, "Action"), Some("failed"));
    let code = field(&recipient, "Status").expect("a Status");
    assert!(
        code.starts_with("5.") && code.split('.').count() == 3,
        "{code}"
    );
    assert_eq!(code, "5.1.1");
    assert_eq!(
        field(&recipient, "Remote-MTA"),
        Some("dns; mx.dest.test"),
        "{recipient}"
    );
    assert!(
        field(&recipient, "Diagnostic-Code")
            .is_some_and(|d| d.starts_with("smtp; 550 5.1.1 no such user here")),
        "{recipient}"
    );
    assert!(
        blocks.next().is_none(),
        "one failed recipient only: {status}"
    );
    assert!(d.engine.scheduler().snapshot().await.is_empty());
    d.engine.shutdown().await;
}

#[tokio::test]
async fn a_connection_dropped_in_the_middle_of_data_is_retried_and_delivered_once() {
    let mut behaviour = Behaviour::new();
    behaviour.drop_on = Some("MARKER".into());
    behaviour.drops_left = Some(Arc::new(AtomicUsize::new(1)));
    let server = SmtpServer::start(behaviour).await;
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path(), &server, "").await;
    let mut events = d.engine.scheduler().subscribe();
    send(&d).await;
    until(&mut events, |e| matches!(e, QueueEvent::Deferred(..))).await;
    assert_eq!(stored_copies(&server), 0);
    assert!(
        server.sessions()[0]
            .lines()
            .iter()
            .any(|l| l == "DATA" || l.starts_with("BDAT")),
        "the drop happened during the data"
    );
    d.engine.scheduler().schedule_now(None);
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    assert_eq!(stored_copies(&server), 1);
    assert_eq!(
        server.sessions().len(),
        2,
        "a fresh connection for the retry"
    );
    d.engine.shutdown().await;
}

#[tokio::test]
async fn connections_per_destination_are_limited_and_reused() {
    let mut behaviour = Behaviour::new();
    // Slow enough that the batches overlap: without the limit, each would open its own.
    behaviour.delay_commit = Some(Duration::from_millis(200));
    let server = SmtpServer::start(behaviour).await;
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path(), &server, "mta limit max-conn-per-domain 2").await;
    let mut events = d.engine.scheduler().subscribe();
    // Six messages, each its own batch, all due at once.
    let mut c = Client::connect(d.addr).await;
    c.send(b"EHLO client.test\r\n").await;
    for _ in 0..6 {
        let reply = c.mail("alice@mx.test", &["bob@dest.test"], CONTENT).await;
        assert!(reply.starts_with("250 "), "{reply}");
    }
    c.send(b"QUIT\r\n").await;
    for _ in 0..6 {
        until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    }
    assert_eq!(stored_copies(&server), 6);
    assert!(
        server.peak_sessions() <= 2,
        "{} connections at once",
        server.peak_sessions()
    );
    // Later batches went over the connections the first ones left idle.
    let sessions = server.sessions();
    assert!(sessions.len() <= 2, "{} connections", sessions.len());
    assert_eq!(sessions.iter().map(|s| s.stored.len()).sum::<usize>(), 6);
    d.engine.shutdown().await;
}

#[tokio::test]
async fn report_filters_of_a_relay_action_hear_the_outgoing_session() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let filter = format!(
        "filter watch proc-exec \"{} --no-reports --out-reports --phases '' --log {}\"",
        env!("CARGO_BIN_EXE_petrel-test-filter"),
        log.display()
    );
    let d = daemon_with(dir.path(), &server, &filter, "filter watch").await;
    let mut events = d.engine.scheduler().subscribe();
    send(&d).await;
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    assert_eq!(stored_copies(&server), 1);
    let wanted = [
        "|smtp-out|link-connect|",
        "|smtp-out|link-greeting|",
        "|smtp-out|link-identify|",
        "|smtp-out|protocol-client|",
        "|smtp-out|protocol-server|",
        "|smtp-out|tx-begin|",
        "|smtp-out|tx-mail|",
        "|smtp-out|tx-rcpt|",
        "|smtp-out|tx-commit|",
        "|smtp-out|tx-reset|",
    ];
    let text = tokio::time::timeout(PATIENCE, async {
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if wanted.iter().all(|w| text.contains(w)) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{}", std::fs::read_to_string(&log).unwrap_or_default()));
    assert!(text.contains("|smtp-out|tx-rcpt|"), "{text}");
    assert!(text.contains("|ok|bob@dest.test"), "{text}");
    assert!(
        text.contains("|protocol-client|") && text.contains("MAIL FROM:<alice@mx.test>"),
        "{text}"
    );
    // Nothing of the smtp-in side: the filter is attached to the relay action only.
    assert!(!text.contains("|smtp-in|"), "{text}");
    d.engine.shutdown().await;
}

#[tokio::test]
async fn a_relay_action_verifies_with_its_ca_and_presents_its_pki() {
    let pkis = tls_support::Pkis::new();
    // The smarthost: smtps as other.test, asking for a client certificate from the test CA.
    let mut settings = tls::ServerTlsSettings::new(
        vec![tls::load_pki("other.test", &pkis.other.cert_path, &pkis.other.key_path).unwrap()],
        "other.test",
    );
    settings.client_ca = Some(Arc::new(tls::load_ca(&pkis.ca.cert_path).unwrap()));
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&settings).unwrap());
    let server = SmtpServer::start(Behaviour {
        tls: Some(acceptor),
        implicit_tls: true,
        ..Behaviour::new()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("records"), "other.test A 127.0.0.1\n").unwrap();
    let port = free_port();
    let host = format!("host smtps://other.test:{}", server.addr.port());
    let conf = format!(
        "listen on 127.0.0.1 port {port} hostname mx.test\n\
         resolver static \"records\"\n\
         pki client.test cert \"{cert}\"\npki client.test key \"{key}\"\n\
         ca testca cert \"{ca}\"\n\
         action \"both\" relay {host} ca testca pki client.test protocols \"tlsv1.2\" ciphers \"ECDHE+AESGCM\"\n\
         action \"no-pki\" relay {host} ca testca\n\
         action \"no-ca\" relay {host} pki client.test\n\
         match from local for domain \"good.test\" action \"both\"\n\
         match from local for domain \"no-pki.test\" action \"no-pki\"\n\
         match from local for domain \"no-ca.test\" action \"no-ca\"\n",
        cert = pkis.client.cert_path.display(),
        key = pkis.client.key_path.display(),
        ca = pkis.ca.cert_path.display(),
    );
    let d = start(&conf, dir.path(), |_| {}).await;
    let mut events = d.engine.scheduler().subscribe();
    let reply = Client::send_one(d.addr, "alice@mx.test", &["bob@good.test"], CONTENT).await;
    assert!(reply.starts_with("250"), "{reply}");
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    let sessions = server.sessions();
    assert!(sessions.iter().all(|s| s.tls));
    assert_eq!(server.stored().len(), 1);

    // Without the client certificate the server ends the handshake; without the CA the
    // server's certificate is not trusted. Either way the message waits.
    for (to, why) in [
        ("bob@no-pki.test", "connection lost during Greeting"),
        ("bob@no-ca.test", "UnknownIssuer"),
    ] {
        let reply = Client::send_one(d.addr, "alice@mx.test", &[to], CONTENT).await;
        assert!(reply.starts_with("250"), "{reply}");
        until(&mut events, |e| matches!(e, QueueEvent::Deferred(..))).await;
        let queued = d.engine.scheduler().snapshot().await;
        let waiting = queued
            .iter()
            .find(|q| q.envelope.rcpt == to)
            .unwrap_or_else(|| panic!("{to} not queued: {queued:?}"));
        let error = waiting.envelope.last_error.clone().unwrap_or_default();
        assert!(error.contains(why), "{to}: {error}");
    }
    assert_eq!(server.stored().len(), 1);
    d.engine.shutdown().await;
}

#[tokio::test]
async fn a_relay_without_its_credentials_waits_instead_of_sending_unauthenticated() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "table creds { \"other\" = \"user:secret\" }";
    let options = format!(
        "host smtp://isp@mx.dest.test:{} auth <creds>",
        server.addr.port()
    );
    let d = daemon_with(dir.path(), &server, extra, &options).await;
    let mut events = d.engine.scheduler().subscribe();
    send(&d).await;
    until(&mut events, |e| matches!(e, QueueEvent::Deferred(..))).await;
    let queued = d.engine.scheduler().snapshot().await;
    let error = queued[0].envelope.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("no credentials for \"isp\" in table creds"),
        "{error}"
    );
    // Nothing went out.
    assert!(server.sessions().is_empty());
    d.engine.shutdown().await;
}
