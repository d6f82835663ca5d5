//! smtp-out sessions on the wire: pipelining on and off, AUTH PLAIN to a smarthost, the
//! connection handle a scheduler keeps, the logs (with the source address), STARTTLS and
//! smtps with rustls.

mod mta_common;

use std::sync::{Arc, Mutex};

use mta_common::smtp::{Behaviour, SmtpServer};
use mta_common::tls::self_signed;
use mta_common::{message, mta, one_mx, settings};
use petrel_core::config::RelayTls;
use petrel_core::relay::{Attempts, StaticRecords};
use petrel_core::session::client::OutcomeKind;
use petrel_core::session::server::{AuthPolicy, Request, TlsPolicy};
use petrel_core::session::{Credentials, Decision};
use petrel_core::smtp::{EnhancedCode, Reply};
use petrel_daemon::mta::{Destination, RustlsUpgrade};

fn dest() -> Destination {
    Destination::Domain("dest.test".into())
}

/// True when some read from the client held both MAIL and RCPT: they were pipelined.
fn pipelined(server: &SmtpServer) -> bool {
    server
        .sessions()
        .iter()
        .flat_map(|s| s.reads.clone())
        .any(|r| r.contains("MAIL FROM") && r.contains("RCPT TO"))
}

#[tokio::test]
async fn pipelining_is_used_only_when_offered_and_enabled() {
    for (server_offers, client_wants, expected) in [
        (true, true, true),
        (true, false, false),
        (false, true, false),
    ] {
        let mut behaviour = Behaviour::new();
        behaviour.config.pipelining = server_offers;
        let server = SmtpServer::start(behaviour).await;
        let mut s = settings();
        s.pipelining = client_wants;
        let out = mta(one_mx(server.addr))
            .deliver(
                &dest(),
                &s,
                vec![message(&["a@dest.test", "b@dest.test"]).into()],
                0,
            )
            .await;
        assert!(
            out[0]
                .rcpts
                .iter()
                .all(|r| r.outcome.kind == OutcomeKind::Delivered)
        );
        assert_eq!(
            pipelined(&server),
            expected,
            "server offers {server_offers}, client wants {client_wants}: {:?}",
            server.sessions()[0].reads
        );
    }
}

fn auth_server_policy(request: &Request) -> Decision {
    match request {
        Request::Auth { credentials, .. }
            if credentials.username == "alice" && credentials.password == "s3cret" =>
        {
            Decision::Accept
        }
        Request::Auth { .. } => Decision::Reply(Reply::new(
            535,
            EnhancedCode::new(5, 7, 8),
            "authentication failed",
        )),
        _ => Decision::Accept,
    }
}

#[tokio::test]
async fn a_smarthost_with_auth_plain() {
    let mut behaviour = Behaviour::new().policy(auth_server_policy);
    behaviour.config.auth = AuthPolicy::Required;
    // Plaintext AUTH, because the URL says smtp+notls (credentials otherwise need TLS).
    behaviour.config.auth_plaintext = true;
    let server = SmtpServer::start(behaviour).await;
    let url = format!("smtp+notls://isp@[127.0.0.1]:{}", server.addr.port());
    let mut s = settings();
    s.smarthosts = vec![url.parse().unwrap()];
    s.auth = Some(("alice".into(), "s3cret".into()));
    // No DNS at all: the URL names an address.
    let mta = mta(StaticRecords::new());
    let out = mta
        .deliver(
            &Destination::Domain("far.example".into()),
            &s,
            vec![message(&["bob@far.example"]).into()],
            0,
        )
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Delivered);
    assert_eq!(out[0].rcpts[0].host.as_deref(), Some("127.0.0.1"));
    let session = &server.sessions()[0];
    assert_eq!(
        session.auth,
        [Credentials {
            authzid: String::new(),
            username: "alice".into(),
            password: "s3cret".into()
        }]
    );
    assert!(session.lines().iter().any(|l| l.starts_with("AUTH PLAIN ")));

    // Wrong credentials: the session cannot be used; the mail waits (a configuration fix
    // should deliver it).
    s.auth = Some(("alice".into(), "wrong".into()));
    let out = mta
        .deliver(
            &Destination::Domain("far.example".into()),
            &s,
            vec![message(&["bob@far.example"]).into()],
            0,
        )
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Temporary);
    assert!(
        out[0].rcpts[0].outcome.reply.text.contains("535"),
        "{}",
        out[0].rcpts[0].outcome.reply
    );
}

#[tokio::test]
async fn credentials_never_go_out_in_plaintext_by_accident() {
    let mut behaviour = Behaviour::new().policy(auth_server_policy);
    behaviour.config.auth = AuthPolicy::Required;
    behaviour.config.auth_plaintext = true;
    let server = SmtpServer::start(behaviour).await;
    let mut s = settings();
    // smtp:// is opportunistic, but with credentials TLS becomes mandatory.
    s.smarthosts = vec![
        format!("smtp://[127.0.0.1]:{}", server.addr.port())
            .parse()
            .unwrap(),
    ];
    s.auth = Some(("alice".into(), "s3cret".into()));
    let out = mta(StaticRecords::new())
        .with_tls(Arc::new(RustlsUpgrade::new().unwrap()))
        .deliver(&dest(), &s, vec![message(&["bob@dest.test"]).into()], 0)
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Temporary);
    assert!(server.sessions().iter().all(|s| s.auth.is_empty()));
}

#[tokio::test]
async fn the_connection_handle_for_a_scheduler() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mta = mta(one_mx(server.addr));
    let s = settings();
    let plan = mta.plan(&dest(), &s, 0).await.unwrap();
    let mut next = 0;
    let mut attempts = Attempts::default();
    let mut conn = mta
        .connect(&plan, &s, &mut next, &mut attempts)
        .await
        .unwrap();
    assert!(conn.is_idle());
    assert!(!conn.is_closed());
    assert_eq!(conn.local_addr().ip(), server.addr.ip());
    let d = conn.send(message(&["a@dest.test"]).into()).await;
    assert_eq!(d.rcpts[0].outcome.kind, OutcomeKind::Delivered);
    assert!(conn.is_idle(), "ready for another message");
    assert!(conn.check().await);
    let d = conn.send(message(&["b@dest.test"]).into()).await;
    assert_eq!(d.rcpts[0].outcome.kind, OutcomeKind::Delivered);
    assert_eq!(conn.messages(), 2);
    conn.quit().await;
    assert_eq!(server.sessions().len(), 1);
    assert_eq!(server.stored().len(), 2);
}

#[tokio::test]
async fn an_idle_connection_closed_by_the_server_is_noticed() {
    // The server accepts each message and hangs up right after.
    let server = SmtpServer::start(Behaviour::new().policy(|r| match r {
        Request::Commit { .. } => {
            Decision::Disconnect(Reply::new(250, EnhancedCode::new(2, 0, 0), "ok, bye"))
        }
        _ => Decision::Accept,
    }))
    .await;
    let batch = vec![
        message(&["a@dest.test"]).into(),
        message(&["b@dest.test"]).into(),
    ];
    let out = mta(one_mx(server.addr))
        .deliver(&dest(), &settings(), batch, 0)
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Delivered);
    assert_eq!(out[1].rcpts[0].outcome.kind, OutcomeKind::Delivered);
    assert_eq!(
        server.sessions().len(),
        2,
        "a new connection for the second message"
    );
    assert_eq!(server.stored().len(), 2);
}

/// Collects the log lines of the current thread (the tests run on one thread).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || Writer(writer.clone()))
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_the_session_the_source_and_the_relay() {
    let (logs, _guard) = capture_logs();
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut s = settings();
    s.src = Some("127.0.0.1".parse().unwrap());
    let out = mta(one_mx(server.addr))
        .deliver(&dest(), &s, vec![message(&["bob@dest.test"]).into()], 0)
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Delivered);
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" mta ")).collect();
    let id = lines[0]
        .split_whitespace()
        .find(|w| w.len() == 16 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .expect("a session id");
    assert!(lines.iter().all(|l| l.contains(id)), "{lines:#?}");
    let expect = [
        format!(
            "mta connecting address=smtp://{} host=mx.dest.test",
            server.addr
        ),
        "mta connected source=127.0.0.1:".to_owned(),
        "mta delivery evpid=- from=<alice@src.test> to=<bob@dest.test> source=\"127.0.0.1\" \
         relay=\"127.0.0.1 (mx.dest.test)\" result=\"Ok\" stat=\"250 "
            .to_owned(),
        "mta disconnected reason=quit messages=1".to_owned(),
    ];
    for e in expect {
        assert!(
            lines.iter().any(|l| l.contains(&e)),
            "no line with {e:?} in {lines:#?}"
        );
    }
}

#[tokio::test]
async fn a_source_address_of_the_other_family_cannot_connect() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut s = settings();
    s.src = Some("::1".parse().unwrap());
    let out = mta(one_mx(server.addr))
        .deliver(&dest(), &s, vec![message(&["bob@dest.test"]).into()], 0)
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Temporary);
    assert!(out[0].rcpts[0].outcome.reply.text.contains("cannot reach"));
}

fn tls_server(implicit: bool) -> (Behaviour, rustls_pki_types::CertificateDer<'static>) {
    let (acceptor, cert) = self_signed(&["mx.dest.test"]);
    let mut behaviour = Behaviour::new();
    behaviour.tls = Some(acceptor);
    behaviour.implicit_tls = implicit;
    if !implicit {
        behaviour.config.tls = TlsPolicy::Offer;
    }
    (behaviour, cert)
}

#[tokio::test]
async fn opportunistic_starttls_takes_any_certificate() {
    let (behaviour, _) = tls_server(false);
    let server = SmtpServer::start(behaviour).await;
    let out = mta(one_mx(server.addr))
        .with_tls(Arc::new(RustlsUpgrade::new().unwrap()))
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Delivered);
    let session = &server.sessions()[0];
    assert!(session.tls);
    assert_eq!(session.stored.len(), 1);
}

#[tokio::test]
async fn without_tls_support_opportunistic_stays_plaintext_and_required_waits() {
    let (behaviour, _) = tls_server(false);
    let server = SmtpServer::start(behaviour).await;
    let out = mta(one_mx(server.addr))
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Delivered);
    assert!(!server.sessions()[0].tls);
    assert!(!server.sessions()[0].lines().iter().any(|l| l == "STARTTLS"));

    let mut s = settings();
    s.tls = Some(RelayTls { verify: false });
    let out = mta(one_mx(server.addr))
        .deliver(&dest(), &s, vec![message(&["bob@dest.test"]).into()], 0)
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Temporary);
    assert!(out[0].rcpts[0].outcome.reply.text.contains("TLS"));
    assert_eq!(
        server.sessions().len(),
        1,
        "no connection without the TLS it needs"
    );
}

#[tokio::test]
async fn required_tls_verifies_the_certificate() {
    let (behaviour, cert) = tls_server(false);
    let server = SmtpServer::start(behaviour).await;
    let mut s = settings();
    s.tls = Some(RelayTls { verify: true });
    // Not trusted: the session is refused, the mail waits.
    let out = mta(one_mx(server.addr))
        .with_tls(Arc::new(RustlsUpgrade::new().unwrap()))
        .deliver(&dest(), &s, vec![message(&["bob@dest.test"]).into()], 0)
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Temporary);
    assert!(server.stored().is_empty());
    // Trusted: delivered over TLS.
    let out = mta(one_mx(server.addr))
        .with_tls(Arc::new(
            RustlsUpgrade::with_extra_roots(vec![cert]).unwrap(),
        ))
        .deliver(&dest(), &s, vec![message(&["bob@dest.test"]).into()], 0)
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Delivered);
    assert_eq!(server.stored().len(), 1);
}

#[tokio::test]
async fn smtps_smarthost() {
    let (behaviour, cert) = tls_server(true);
    let server = SmtpServer::start(behaviour).await;
    let mut s = settings();
    // The URL names the host, so the certificate's name can be checked; the static table
    // gives its address.
    s.smarthosts = vec![
        format!("smtps://mx.dest.test:{}", server.addr.port())
            .parse()
            .unwrap(),
    ];
    let mut t = StaticRecords::new();
    t.add_ip("mx.dest.test", server.addr.ip());
    let out = mta(t)
        .with_tls(Arc::new(
            RustlsUpgrade::with_extra_roots(vec![cert]).unwrap(),
        ))
        .deliver(&dest(), &s, vec![message(&["bob@dest.test"]).into()], 0)
        .await;
    assert_eq!(
        out[0].rcpts[0].outcome.kind,
        OutcomeKind::Delivered,
        "{:?}",
        out[0].rcpts[0]
    );
    assert!(server.sessions()[0].tls);
}

#[tokio::test]
async fn a_failed_opportunistic_handshake_falls_back_to_plaintext() {
    // The server offers STARTTLS, says 220, then cannot do TLS (a plaintext-only peer
    // pretending): the client tries the same server again without TLS.
    let mut behaviour = Behaviour::new();
    behaviour.config.tls = TlsPolicy::Offer;
    let (acceptor, _) = self_signed(&["mx.dest.test"]);
    behaviour.tls = Some(acceptor);
    let server = SmtpServer::start(behaviour).await;
    // A client that trusts nothing and checks everything fails any handshake... but
    // opportunistic TLS does not verify. Make the handshake fail instead with a TLS layer that
    // always errors.
    struct Broken;
    impl petrel_daemon::mta::tls::TlsUpgrade for Broken {
        fn upgrade<'a>(
            &'a self,
            _stream: petrel_daemon::mta::net::BoxedIo,
            _name: &'a str,
            _verify: bool,
            _profile: Option<&'a petrel_daemon::tls::OutgoingTls>,
        ) -> petrel_daemon::mta::resolver::BoxFuture<
            'a,
            std::io::Result<petrel_daemon::mta::tls::Upgraded>,
        > {
            Box::pin(async { Err(std::io::Error::other("handshake failure")) })
        }
    }
    let out = mta(one_mx(server.addr))
        .with_tls(Arc::new(Broken))
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(out[0].rcpts[0].outcome.kind, OutcomeKind::Delivered);
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "one try with TLS, one without");
    assert!(sessions[0].lines().iter().any(|l| l == "STARTTLS"));
    assert!(!sessions[1].lines().iter().any(|l| l == "STARTTLS"));
}
