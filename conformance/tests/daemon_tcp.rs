//! CI: the whole library over real TCP against the assembled daemon (`Engine`), started in
//! this process with STARTTLS (a certificate made by rcgen), AUTH against a credentials file,
//! and local delivery into a temporary maildir. Every MUST case must pass.

use std::net::SocketAddr;
use std::time::Duration;

use petrel_conformance::case::Level;
use petrel_conformance::cases;
use petrel_conformance::interp::Options;
use petrel_conformance::report;
use petrel_conformance::suite::{self, Status};
use petrel_conformance::tcp::TcpRunner;
use petrel_core::config::{self, ParseOptions};
use petrel_daemon::auth::{PasswordScheme, hash_password};
use petrel_daemon::engine::{Engine, EngineOptions};

/// MUST cases that fail because of a known Petrel bug, with the reason; they are reported,
/// not asserted, until the bug is fixed. Keep this list empty when possible.
const KNOWN_MUST_FAILURES: &[(&str, &str)] = &[];

struct Daemon {
    engine: Engine,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["mx.test".into()]).unwrap();
    let cert_path = dir.path().join("mx.test.crt");
    let key_path = dir.path().join("mx.test.key");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let creds = dir.path().join("creds");
    std::fs::write(
        &creds,
        format!(
            "conformance {}\n",
            hash_password("secret", PasswordScheme::Sha512Crypt)
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "pki mx.test cert \"{}\"\n\
         pki mx.test key \"{}\"\n\
         table creds file:{}\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         smtp max-message-size 2M\n\
         listen on 127.0.0.1 port {port} hostname mx.test tls pki mx.test auth-optional <creds>\n\
         action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain \"test.example\" action \"local\"\n\
         match from any for local action \"local\"\n",
        cert_path.display(),
        key_path.display(),
        creds.display(),
    );
    let config = config::parse("conformance.conf", &text, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let options = EngineOptions {
        hostname: "mx.test".into(),
        data_dir: dir.path().join("data"),
        base: dir.path().to_owned(),
        ..EngineOptions::default()
    };
    let engine = Engine::start(&config, options).await.unwrap();
    let addr = engine.addrs()[0];
    Daemon {
        engine,
        addr,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_must_case_passes_against_the_daemon_over_tcp() {
    let daemon = start().await;
    let mut runner = TcpRunner::new(&daemon.addr.to_string(), "petreld");
    runner.reply_timeout = Duration::from_secs(15);
    runner.silence = Duration::from_millis(300);
    let mut opts = Options::for_domain("test.example");
    opts.credentials = Some(("conformance".into(), "secret".into()));
    let report = suite::run_suite(&runner, &cases::all(), &opts, 6).await;
    daemon.engine.shutdown().await;

    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-petreld");
    report::write_all(&out, std::slice::from_ref(&report)).unwrap();
    eprint!("{}", report::summary(&report));
    eprintln!("reports in {}", out.display());

    // The features were all offered, so the MUST cases ran rather than skipped.
    assert!(report.profile.error.is_none(), "{:?}", report.profile);
    assert!(
        report.profile.tls_extensions.is_some(),
        "STARTTLS did not work: {:?}",
        report.profile
    );
    let mut unexpected = Vec::new();
    for r in report.must_failures() {
        match KNOWN_MUST_FAILURES.iter().find(|(id, _)| *id == r.id) {
            Some((_, why)) => eprintln!("known failure {}: {why}", r.id),
            None => unexpected.push(format!("{}: {}\n{}", r.id, r.detail, r.transcript)),
        }
    }
    assert!(
        unexpected.is_empty(),
        "MUST cases failed against petreld:\n{}",
        unexpected.join("\n")
    );
    let skipped: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.level == Level::Must && r.status == Status::Skip)
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        skipped.len() <= 4,
        "too many MUST cases skipped against petreld: {skipped:?}"
    );
}
