//! The suite has teeth: a server that answers 250 to everything fails many MUST cases, and the
//! command line exits non-zero for it. The report files are all written and well formed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use petrel_conformance::case::Level;
use petrel_conformance::cases;
use petrel_conformance::interp::Options;
use petrel_conformance::report;
use petrel_conformance::sink;
use petrel_conformance::suite::{self, Status};
use petrel_conformance::tcp::TcpRunner;

const BIN: &str = env!("CARGO_BIN_EXE_petrel-conformance");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_250_to_everything_sink_fails_loudly() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sink::run(listener));
    let mut runner = TcpRunner::new(&addr.to_string(), "fake-sink");
    runner.reply_timeout = Duration::from_secs(5);
    runner.silence = Duration::from_millis(200);
    let report = suite::run_suite(
        &runner,
        &cases::all(),
        &Options::for_domain("test.example"),
        8,
    )
    .await;
    let failed: Vec<&str> = report
        .must_failures()
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        failed.len() >= 20,
        "only {} MUST failures: {failed:?}",
        failed.len()
    );
    for id in [
        "rfc5321.4.1.4.rcpt-before-mail",
        "rfc5321.4.1.4.nested-mail",
        "rfc5321.4.2.4.unknown-command",
        "rfc5321.4.1.2.bad-recipient-syntax",
        "smuggling.lf-dot-lf",
        "smuggling.crlf-dot-lf.split",
        "rfc5321.4.1.1.4.bare-lf-line-endings",
    ] {
        assert!(failed.contains(&id), "{id} did not fail: {failed:?}");
    }
    assert_eq!(
        report.result("rfc5321.7.9.no-open-relay").unwrap().status,
        Status::Fail
    );
    // Every failure says what was observed.
    for r in report.must_failures() {
        assert!(
            r.detail.contains('`') || r.detail.contains("replies"),
            "{}: {}",
            r.id,
            r.detail
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(addr: SocketAddr) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing listens on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check_report_dir(dir: &Path, cases: usize) {
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| case | RFC § | level |"), "{md}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.starts_with("<?xml"));
    assert_eq!(junit.matches("<testcase ").count(), cases);
    assert_eq!(junit.matches("<testsuite ").count(), 1);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for needle in [
        "id=\"f-rfc\"",
        "id=\"f-level\"",
        "td.fail{",
        "<script>",
        "</html>",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
    let runs = report::read_json(&dir.join("report.json")).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].results.len(), cases);
}

#[test]
fn the_command_line_exits_non_zero_when_a_must_case_fails() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _sink = Running(
        Command::new(BIN)
            .args(["fake-sink", "--listen", &addr.to_string()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(addr);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["run", "--target"])
        .arg(format!("sink={addr}"))
        .args([
            "--domain",
            "test.example",
            "--timeout",
            "5",
            "--jobs",
            "8",
            "--report-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("MUST case(s) failed"), "{stdout}");
    check_report_dir(dir.path(), cases::all().len());

    // The core machine in memory passes: exit 0.
    let out = Command::new(BIN)
        .args(["run", "--target", "memory", "--domain", "test.example"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Merging two runs gives one matrix with two servers.
    let mem = tempfile::tempdir().unwrap();
    let status = Command::new(BIN)
        .args([
            "run",
            "--target",
            "core=memory",
            "--domain",
            "test.example",
            "--level",
            "MUST",
            "--report-dir",
        ])
        .arg(mem.path())
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let merged = tempfile::tempdir().unwrap();
    let status = Command::new(BIN)
        .args(["report", "--out"])
        .arg(merged.path())
        .arg(dir.path().join("report.json"))
        .arg(mem.path().join("report.json"))
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let md = std::fs::read_to_string(merged.path().join("report.md")).unwrap();
    assert!(
        md.contains("| case | RFC § | level | sink | core |"),
        "{md}"
    );
    let runs = report::read_json(&merged.path().join("report.json")).unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[1].results.iter().all(|r| r.level == Level::Must));
}

#[test]
fn list_shows_every_case() {
    let out = Command::new(BIN).arg("list").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), cases::all().len());
    assert!(text.contains("rfc5321.4.5.1.postmaster"));
    let out = Command::new(BIN)
        .args(["list", "--client"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("client.rfc5321.4.5.2.dot-stuffing"));
}
