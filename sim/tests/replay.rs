//! Every transcript in `corpora/transcripts/` replays against a simulated Petrel host with the
//! recorded reply codes; a transcript expecting a different code is reported.

use petrel_sim::replay::{Line, parse, replay};

#[test]
fn the_recorded_transcripts_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/transcripts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    for file in files {
        let lines = parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let report = replay(&lines).unwrap();
        assert!(
            report.passed(),
            "{}: {:?}\n{}",
            file.display(),
            report.mismatches,
            report.transcript.join("\n")
        );
    }
}

#[test]
fn a_different_reply_is_a_mismatch() {
    let lines = vec![
        Line::Server(220),
        Line::Client("EHLO client.test".into()),
        Line::Server(250),
        Line::Client("DATA".into()),
        Line::Server(354),
        Line::Client("QUIT".into()),
        Line::Server(221),
    ];
    let report = replay(&lines).unwrap();
    assert_eq!(report.replies, 4);
    assert_eq!(report.mismatches.len(), 1);
    let (n, expected, got, _) = &report.mismatches[0];
    assert_eq!((*n, *expected, *got), (2, 354, 503));
}

/// `petreld -T`: a session recorded by the real daemon over TCP replays against a simulated
/// Petrel with the same reply codes.
#[test]
fn a_session_recorded_by_the_daemon_replays() {
    use petrel_core::config::{self, ParseOptions};
    use petrel_daemon::engine::{Engine, EngineOptions};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let dir = tempfile::tempdir().unwrap();
    // No DNS answers: whatever the daemon tries to relay stays on the machine.
    std::fs::write(dir.path().join("dns.txt"), "").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A port bound by someone else between our check and the daemon's bind: try another.
        let mut engine = None;
        for _ in 0..20 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let text = format!(
                "resolver static \"dns.txt\"\nlisten on 127.0.0.1 port {port}\n\
                 action \"relay\" relay\nmatch from any for any action \"relay\"\n"
            );
            let config = config::parse("t.conf", &text, &ParseOptions::default()).unwrap();
            let options = EngineOptions {
                hostname: "mx.test".into(),
                data_dir: dir.path().join("data"),
                base: dir.path().to_owned(),
                transcripts: Some(dir.path().join("transcripts")),
                ..EngineOptions::default()
            };
            match Engine::start(&config, options).await {
                Ok(e) => {
                    engine = Some(e);
                    break;
                }
                Err(e) if e.contains("in use") => continue,
                Err(e) => panic!("{e}"),
            }
        }
        let engine = engine.expect("no free port");
        let stream = tokio::net::TcpStream::connect(engine.addrs()[0])
            .await
            .unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let mut reply = async || {
            loop {
                let mut l = String::new();
                r.read_line(&mut l).await.unwrap();
                if l.as_bytes().get(3) != Some(&b'-') {
                    return l;
                }
            }
        };
        assert!(reply().await.starts_with("220"));
        w.write_all(b"EHLO client.test\r\n").await.unwrap();
        assert!(reply().await.starts_with("250"));
        w.write_all(
            b"MAIL FROM:<alice@origin.test>\r\nRCPT TO:<bob@dest.test>\r\n\
              RCPT TO:<carol@dest.test>\r\nDATA\r\n",
        )
        .await
        .unwrap();
        for code in ["250", "250", "250", "354"] {
            assert!(reply().await.starts_with(code));
        }
        w.write_all(b"Subject: recorded\r\n\r\n..a stuffed line\r\n.\r\n")
            .await
            .unwrap();
        assert!(reply().await.starts_with("250"));
        w.write_all(b"MAIL FROM:alice@origin.test\r\n")
            .await
            .unwrap();
        assert!(reply().await.starts_with("501"));
        w.write_all(b"QUIT\r\n").await.unwrap();
        assert!(reply().await.starts_with("221"));
        engine.shutdown().await;
    });
    drop(runtime);

    let files: Vec<_> = std::fs::read_dir(dir.path().join("transcripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("C: ..a stuffed line\n"), "{text}");
    assert!(text.contains("S: 501 "), "{text}");
    let lines = parse(&text).unwrap();
    assert_eq!(
        lines
            .iter()
            .filter(|l| matches!(l, Line::Server(_)))
            .count(),
        9,
        "{text}"
    );
    let report = replay(&lines).unwrap();
    assert!(
        report.passed(),
        "{:?}\n{}",
        report.mismatches,
        report.transcript.join("\n")
    );
    assert_eq!(report.replies, 9);
}
