//! smtp-out delivery outcomes against loopback servers: per-recipient results exactly as the
//! server answered, failures at every stage, MX fallback, null MX and DNS failures.

mod mta_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mta_common::smtp::{Behaviour, SmtpServer, closed_port};
use mta_common::{CONTENT, message, mta, one_mx, settings};
use petrel_core::relay::{DnsError, StaticRecords};
use petrel_core::session::Decision;
use petrel_core::session::client::OutcomeKind;
use petrel_core::session::server::Request;
use petrel_core::smtp::{EnhancedCode, Reply};
use petrel_daemon::mta::{Delivery, Destination};

fn dest() -> Destination {
    Destination::Domain("dest.test".into())
}

fn kinds(d: &Delivery) -> Vec<OutcomeKind> {
    d.rcpts.iter().map(|r| r.outcome.kind).collect()
}

fn reply(code: u16, enhanced: (u8, u16, u16), text: &'static str) -> Reply {
    Reply::new(
        code,
        EnhancedCode::new(enhanced.0, enhanced.1, enhanced.2),
        text,
    )
}

fn rcpt_of(request: &Request) -> Option<String> {
    match request {
        Request::Rcpt { to, .. } => Some(to.to_string()),
        _ => None,
    }
}

#[tokio::test]
async fn accepted_recipients_are_delivered_with_the_mx_named() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let out = mta(one_mx(server.addr))
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test", "carol@dest.test"]).into()],
            7,
        )
        .await;
    assert_eq!(
        kinds(&out[0]),
        [OutcomeKind::Delivered, OutcomeKind::Delivered]
    );
    let first = &out[0].rcpts[0];
    assert_eq!(first.host.as_deref(), Some("mx.dest.test"));
    assert_eq!(first.addr, Some(server.addr));
    assert!(first.outcome.remote);
    assert_eq!(first.outcome.reply.code, 250);
    let stored = server.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].content, CONTENT, "content survives dot-stuffing");
    assert_eq!(stored[0].envelope.rcpts.len(), 2);
}

#[tokio::test]
async fn each_recipient_gets_its_own_reply() {
    let server = SmtpServer::start(Behaviour::new().policy(|r| match rcpt_of(r).as_deref() {
        Some("<temp@dest.test>") => Decision::Reply(reply(450, (4, 2, 0), "mailbox busy")),
        Some("<perm@dest.test>") => Decision::Reply(reply(550, (5, 1, 1), "no such user")),
        _ => Decision::Accept,
    }))
    .await;
    let m = message(&["ok@dest.test", "temp@dest.test", "perm@dest.test"]);
    let out = mta(one_mx(server.addr))
        .deliver(&dest(), &settings(), vec![m.into()], 0)
        .await;
    assert_eq!(
        kinds(&out[0]),
        [
            OutcomeKind::Delivered,
            OutcomeKind::Temporary,
            OutcomeKind::Permanent
        ]
    );
    assert_eq!(
        out[0].rcpts[1].outcome.reply.to_string(),
        "450 4.2.0 mailbox busy"
    );
    assert_eq!(
        out[0].rcpts[2].outcome.reply.to_string(),
        "550 5.1.1 no such user"
    );
    assert!(out[0].rcpts.iter().all(|r| r.outcome.remote));
    assert_eq!(server.stored()[0].envelope.rcpts.len(), 1);
}

#[tokio::test]
async fn a_temporary_refusal_then_success() {
    let commits = Arc::new(AtomicUsize::new(0));
    let seen = commits.clone();
    let server = SmtpServer::start(Behaviour::new().policy(move |r| match r {
        Request::Commit { .. } if seen.fetch_add(1, Ordering::SeqCst) == 0 => {
            Decision::Reply(reply(451, (4, 3, 0), "try again later"))
        }
        _ => Decision::Accept,
    }))
    .await;
    let mta = mta(one_mx(server.addr));
    let first = mta
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(kinds(&first[0]), [OutcomeKind::Temporary]);
    assert_eq!(
        first[0].rcpts[0].outcome.reply.to_string(),
        "451 4.3.0 try again later"
    );
    let second = mta
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(kinds(&second[0]), [OutcomeKind::Delivered]);
    assert_eq!(server.stored().len(), 1);
}

#[tokio::test]
async fn greylisting_passes_on_retry() {
    let triplets = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let known = triplets.clone();
    let server = SmtpServer::start(Behaviour::new().policy(move |r| match rcpt_of(r) {
        Some(rcpt) if known.lock().unwrap().insert(rcpt.clone()) => {
            Decision::Reply(reply(451, (4, 7, 1), "greylisted, come back later"))
        }
        _ => Decision::Accept,
    }))
    .await;
    let mta = mta(one_mx(server.addr));
    let first = mta
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(kinds(&first[0]), [OutcomeKind::Temporary]);
    assert_eq!(
        first[0].rcpts[0].outcome.reply.enhanced,
        Some(EnhancedCode::new(4, 7, 1))
    );
    let second = mta
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(kinds(&second[0]), [OutcomeKind::Delivered]);
}

#[tokio::test]
async fn a_connection_dropped_during_the_data_is_temporary_for_the_accepted() {
    // With DATA and with BDAT.
    for chunking in [false, true] {
        let mut behaviour = Behaviour::new().policy(|r| match rcpt_of(r).as_deref() {
            Some("<perm@dest.test>") => Decision::Reply(reply(550, (5, 1, 1), "no such user")),
            _ => Decision::Accept,
        });
        behaviour.config.chunking = chunking;
        behaviour.drop_on = Some("line one".into());
        let server = SmtpServer::start(behaviour).await;
        let m = message(&["bob@dest.test", "perm@dest.test"]);
        let out = mta(one_mx(server.addr))
            .deliver(&dest(), &settings(), vec![m.into()], 0)
            .await;
        assert_eq!(
            kinds(&out[0]),
            [OutcomeKind::Temporary, OutcomeKind::Permanent],
            "chunking {chunking}"
        );
        assert!(!out[0].rcpts[0].outcome.remote);
        assert_eq!(out[0].rcpts[0].outcome.reply.code, 421);
        assert!(server.stored().is_empty());
        let lines = server.sessions()[0].lines();
        let verb = if chunking { "BDAT" } else { "DATA" };
        assert!(lines.iter().any(|l| l.starts_with(verb)), "{lines:?}");
    }
}

#[tokio::test]
async fn a_server_too_slow_to_answer_times_out() {
    let mut behaviour = Behaviour::new();
    behaviour.delay_commit = Some(Duration::from_secs(3));
    let server = SmtpServer::start(behaviour).await;
    let mut s = settings();
    s.timeouts.session.data_end = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let out = mta(one_mx(server.addr))
        .deliver(&dest(), &s, vec![message(&["bob@dest.test"]).into()], 0)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the client gave up on time"
    );
    assert_eq!(kinds(&out[0]), [OutcomeKind::Temporary]);
    assert!(
        out[0].rcpts[0].outcome.reply.text.contains("timeout"),
        "{}",
        out[0].rcpts[0].outcome.reply
    );
}

#[tokio::test]
async fn the_next_mx_takes_over_when_the_first_refuses_connections() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut t = StaticRecords::new();
    t.add_mx("dest.test", 10, "mx1.dest.test")
        .add_mx("dest.test", 20, "mx2.dest.test")
        .add_addr("mx1.dest.test", closed_port())
        .add_addr("mx2.dest.test", server.addr);
    let out = mta(t)
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(kinds(&out[0]), [OutcomeKind::Delivered]);
    assert_eq!(out[0].rcpts[0].host.as_deref(), Some("mx2.dest.test"));
    assert_eq!(server.stored().len(), 1);
}

#[tokio::test]
async fn the_next_mx_takes_over_when_the_first_refuses_the_session() {
    let mut refusing = Behaviour::new();
    refusing.policy = Arc::new(|r| match r {
        Request::Connect => Decision::Disconnect(reply(554, (5, 3, 2), "no service here")),
        _ => Decision::Accept,
    });
    let bad = SmtpServer::start(refusing).await;
    let good = SmtpServer::start(Behaviour::new()).await;
    let mut t = StaticRecords::new();
    t.add_mx("dest.test", 10, "mx1.dest.test")
        .add_mx("dest.test", 20, "mx2.dest.test")
        .add_addr("mx1.dest.test", bad.addr)
        .add_addr("mx2.dest.test", good.addr);
    let out = mta(t)
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(kinds(&out[0]), [OutcomeKind::Delivered]);
    assert_eq!(out[0].rcpts[0].host.as_deref(), Some("mx2.dest.test"));
}

#[tokio::test]
async fn every_mx_failing_is_temporary() {
    let mut t = StaticRecords::new();
    t.add_mx("dest.test", 10, "mx1.dest.test")
        .add_mx("dest.test", 20, "mx2.dest.test")
        .add_addr("mx1.dest.test", closed_port())
        .add_addr("mx2.dest.test", closed_port());
    let out = mta(t)
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    let outcome = &out[0].rcpts[0].outcome;
    assert_eq!(outcome.kind, OutcomeKind::Temporary);
    assert_eq!(outcome.reply.code, 451);
    assert_eq!(outcome.reply.enhanced, Some(EnhancedCode::new(4, 4, 1)));
    assert!(
        outcome.reply.text.contains("2 attempts"),
        "{}",
        outcome.reply
    );
    assert_eq!(out[0].rcpts[0].host, None);
}

#[tokio::test]
async fn a_null_mx_bounces_at_once() {
    let mut t = StaticRecords::new();
    t.add_mx("dest.test", 0, ".");
    let out = mta(t)
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test", "x@dest.test"]).into()],
            0,
        )
        .await;
    for r in &out[0].rcpts {
        assert_eq!(r.outcome.kind, OutcomeKind::Permanent);
        assert_eq!(r.outcome.reply.code, 556);
        assert_eq!(r.outcome.reply.enhanced, Some(EnhancedCode::new(5, 1, 10)));
    }
}

#[tokio::test]
async fn dns_failures_of_the_domain() {
    let mut t = StaticRecords::new();
    t.fail("flaky.test", DnsError::Temporary("SERVFAIL".into()));
    let mta = mta(t);
    let gone = mta
        .deliver(
            &Destination::Domain("gone.test".into()),
            &settings(),
            vec![message(&["a@gone.test"]).into()],
            0,
        )
        .await;
    assert_eq!(gone[0].rcpts[0].outcome.kind, OutcomeKind::Permanent);
    assert_eq!(
        gone[0].rcpts[0].outcome.reply.enhanced,
        Some(EnhancedCode::new(5, 1, 2))
    );
    let flaky = mta
        .deliver(
            &Destination::Domain("flaky.test".into()),
            &settings(),
            vec![message(&["a@flaky.test"]).into()],
            0,
        )
        .await;
    assert_eq!(flaky[0].rcpts[0].outcome.kind, OutcomeKind::Temporary);
    assert_eq!(flaky[0].rcpts[0].outcome.reply.code, 451);
}

#[tokio::test]
async fn a_domain_without_mx_is_its_own_exchanger() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut t = StaticRecords::new();
    t.add_addr("dest.test", server.addr);
    let out = mta(t)
        .deliver(
            &dest(),
            &settings(),
            vec![message(&["bob@dest.test"]).into()],
            0,
        )
        .await;
    assert_eq!(kinds(&out[0]), [OutcomeKind::Delivered]);
    assert_eq!(out[0].rcpts[0].host.as_deref(), Some("dest.test"));
}

#[tokio::test]
async fn a_batch_shares_one_connection() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let batch = vec![
        message(&["a@dest.test"]).into(),
        message(&["b@dest.test", "c@dest.test"]).into(),
        message(&["d@dest.test"]).into(),
    ];
    let out = mta(one_mx(server.addr))
        .deliver(&dest(), &settings(), batch, 0)
        .await;
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|d| {
        d.rcpts
            .iter()
            .all(|r| r.outcome.kind == OutcomeKind::Delivered)
    }));
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 1, "one connection for the batch");
    assert_eq!(sessions[0].stored.len(), 3);
    assert!(sessions[0].lines().iter().any(|l| l == "QUIT"));
}

/// A relay action's options become the delivery settings.
#[test]
fn settings_from_a_relay_action() {
    use petrel_core::config::{Delivery as Method, ParseOptions, RelayTls, parse};
    use petrel_core::relay::BackupMx;
    use petrel_daemon::mta::RelaySettings;

    let text = "table secrets { isp = \"alice:pw\" }\n\
                action out relay host smtp+tls://isp@smtp.example:587 auth <secrets> \
                tls no-verify helo mx.example.org src 192.0.2.1\n\
                action backup relay backup mx mx2.example.org\n\
                match from local for any action out\n";
    let config = parse("t.conf", text, &ParseOptions::default()).unwrap();
    let relay = |name: &str| match &config.action(name).unwrap().delivery {
        Method::Relay(r) => r.clone(),
        Method::Local(_) => unreachable!(),
    };
    let s = RelaySettings::from_relay(&relay("out"), "host.example.org");
    assert_eq!(s.helo, "mx.example.org");
    assert_eq!(
        s.smarthosts[0].to_string(),
        "smtp+tls://isp@smtp.example:587"
    );
    assert_eq!(s.tls, Some(RelayTls { verify: false }));
    assert_eq!(s.src, Some("192.0.2.1".parse().unwrap()));
    assert!(s.local_names.contains(&"host.example.org".to_owned()));
    assert_eq!(s.auth, None, "credentials are looked up by the caller");
    let s = RelaySettings::from_relay(&relay("backup"), "host.example.org");
    assert_eq!(s.helo, "host.example.org");
    assert_eq!(s.backup, Some(BackupMx::Named("mx2.example.org".into())));
    assert!(s.smarthosts.is_empty());
}
