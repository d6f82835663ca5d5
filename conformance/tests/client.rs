//! Client-side cases: Petrel's smtp-out (the daemon's `Mta`, the path relayed mail takes) is
//! graded by the scripted server, one scenario per connection; every MUST case passes. Python's
//! smtplib is graded too when `python3` is installed (its results are only printed).

use std::sync::Arc;
use std::time::Duration;

use petrel_conformance::client::{self, ServeTiming};
use petrel_conformance::report;
use petrel_conformance::suite::{CaseResult, Status};
use petrel_core::relay::StaticRecords;
use petrel_core::session::client::{ClientTimeouts, Message, OutcomeKind};
use petrel_core::smtp::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};
use petrel_daemon::mta::resolver::StaticResolver;
use petrel_daemon::mta::{Destination, Mta, RelaySettings, RustlsUpgrade};

/// A message with a line starting with a dot, a bare LF and a long line: the machine must
/// stuff, normalise and send it within the limits.
const CONTENT: &[u8] = b"From: <alice@src.test>\r\nTo: <bob@dest.test>\r\nSubject: graded\r\n\r\nfirst line\r\n.a line starting with a dot\r\n.\r\nbare LF here\nand CRLF again\r\nlast\r\n";

fn message() -> Message {
    Message {
        from: ReversePath::Mailbox(Mailbox::parse("alice@src.test", false).unwrap()),
        params: MailParams::default(),
        rcpts: vec![(
            ForwardPath::Mailbox(Mailbox::parse("bob@dest.test", false).unwrap()),
            RcptParams::default(),
        )],
        content: Arc::from(CONTENT),
    }
}

fn timing() -> ServeTiming {
    ServeTiming {
        idle: Duration::from_secs(10),
        settle: Duration::from_millis(40),
        line_pause: Duration::from_millis(100),
        accept: Duration::from_secs(30),
    }
}

async fn grade_petrel(scenario: &client::Scenario) -> Vec<CaseResult> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = client::self_signed_acceptor();
    let scenario_copy = scenario.clone();
    let server = tokio::spawn(async move {
        client::serve_one(&listener, &scenario_copy, &acceptor, timing())
            .await
            .unwrap()
    });
    let mta = Mta::new(Arc::new(StaticResolver::new(StaticRecords::new())))
        .with_tls(Arc::new(RustlsUpgrade::new().unwrap()));
    let mut settings = RelaySettings::mx("petrel.test");
    settings.smarthosts = vec![format!("smtp://[127.0.0.1]:{port}").parse().unwrap()];
    let short = Duration::from_secs(10);
    settings.timeouts.connect = short;
    settings.timeouts.session = ClientTimeouts {
        greeting: short,
        command: short,
        mail: short,
        rcpt: short,
        data_init: short,
        data_end: short,
    };
    let out = mta
        .deliver(
            &Destination::Domain("dest.test".into()),
            &settings,
            vec![message().into()],
            0,
        )
        .await;
    let results = server.await.unwrap();
    assert_eq!(
        out[0].rcpts[0].outcome.kind,
        OutcomeKind::Delivered,
        "scenario {}: {:?}\n{results:#?}",
        scenario.name,
        out[0].rcpts[0].outcome
    );
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petrel_smtp_out_passes_every_must_client_case() {
    let mut played = Vec::new();
    for scenario in client::scenarios() {
        played.extend(grade_petrel(&scenario).await);
    }
    let report = client::report("petrel smtp-out", "in-process", played);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-smtp-out");
    report::write_all(&out, std::slice::from_ref(&report)).unwrap();
    eprint!("{}", report::summary(&report));
    let failed: Vec<String> = report
        .must_failures()
        .iter()
        .map(|r| format!("{}: {}\n{}", r.id, r.detail, r.transcript))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // Every scenario was played, and what it grades was observable: nothing is skipped.
    let skipped: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Skip)
        .map(|r| r.id.as_str())
        .collect();
    assert!(skipped.is_empty(), "skipped: {skipped:?}");
    for id in [
        "client.rfc5321.4.5.2.dot-stuffing",
        "client.rfc5321.2.3.8.no-bare-cr-lf",
        "client.rfc3207.4.2.forgets-extensions",
        "client.rfc5321.3.2.helo-fallback",
    ] {
        assert_eq!(report.result(id).unwrap().status, Status::Pass, "{id}");
    }
}

const SMTPLIB: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
msg = "From: <alice@src.test>\r\nTo: <bob@dest.test>\r\nSubject: smtplib\r\n\r\nfirst\r\n.dot line\r\nlast\r\n"
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10)
s.ehlo_or_helo_if_needed()
if s.has_extn("starttls"):
    s.starttls()
try:
    s.sendmail("alice@src.test", ["bob@dest.test"], msg)
except smtplib.SMTPException as e:
    print("sendmail:", e, file=sys.stderr)
s.quit()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_can_be_graded() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("python3 not installed: skipped");
        return;
    }
    let mut played = Vec::new();
    for scenario in client::scenarios() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = client::self_signed_acceptor();
        let s = scenario.clone();
        let server = tokio::spawn(async move {
            client::serve_one(&listener, &s, &acceptor, timing())
                .await
                .unwrap()
        });
        let status = tokio::process::Command::new("python3")
            .args(["-c", SMTPLIB, &port.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .unwrap();
        let _ = status;
        played.extend(server.await.unwrap());
    }
    let report = client::report("python smtplib", "in-process", played);
    eprint!("{}", report::summary(&report));
    // smtplib stuffs dots: the grading itself works on a real client.
    assert_eq!(
        report
            .result("client.rfc5321.4.5.2.dot-stuffing")
            .unwrap()
            .status,
        Status::Pass
    );
}
