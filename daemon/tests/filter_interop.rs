//! Third-party filters from Debian, unchanged, in front of an in-process daemon:
//! `filter-dkimsign` (its signature verifies after delivery), `filter-senderscore` (it runs
//! and answers) and `filter-rspamd` talking to a real `rspamd` (its headers reach the
//! delivered message).
//!
//! They need the Debian packages, so plain `cargo test` skips them; `.ci/run` installs the
//! packages with `.ci/install-filters` and runs them with `--ignored`. A missing package fails
//! the test: it never passes by skipping. Nothing here asks the machine's resolver: the
//! daemon's reverse lookups go to a static table, senderscore runs in a mount namespace whose
//! resolv.conf names a dead loopback server, and rspamd is given a dead loopback name server
//! and no fuzzy-hash servers.

mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use e2e_support::*;
use petrel_daemon::queue::scheduler::QueueEvent;

const LIBEXEC: &str = "/usr/libexec/opensmtpd";

/// The path of a Debian filter, or a failure naming the package to install.
fn filter(name: &str) -> PathBuf {
    let path = Path::new(LIBEXEC).join(name);
    assert!(
        path.is_file(),
        "{} is missing: install opensmtpd-{name} (.ci/install-filters)",
        path.display()
    );
    path
}

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .expect("sh");
    assert!(
        found.status.success(),
        "{name} is missing (.ci/install-filters)"
    );
    String::from_utf8(found.stdout).unwrap().trim().to_owned()
}

/// A daemon running `filters` (declaring `chain`), once every filter process registered.
async fn daemon(dir: &Path, filters: &str) -> Running {
    let d = filtered(dir, filters).await;
    for p in d.engine.filters().expect("filters").procs() {
        assert!(
            p.is_ready(),
            "{} did not register: {:?}",
            p.spec().name,
            p.report()
        );
    }
    d
}

/// Sends one message to bob and returns the delivered copy.
async fn deliver(d: &Running, content: &str) -> String {
    let mut events = d.engine.scheduler().subscribe();
    let reply = Client::send_one(d.addr, "alice@example.test", &["bob@mx.test"], content).await;
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    until(&mut events, |e| matches!(e, QueueEvent::Delivered(_))).await;
    let mail = maildir(&d.dir.join("mail/bob"));
    String::from_utf8(mail.last().expect("delivered").clone()).unwrap()
}

const CONTENT: &str = "From: Alice <alice@example.test>\r\nTo: bob@mx.test\r\n\
    Subject: a|b signed\r\nDate: Sun, 22 Nov 2026 09:00:00 +0000\r\n\
    Message-ID: <interop@example.test>\r\n\r\n\
    ..a line starting with a dot\r\n...two dots\r\n..\r\nx|y|z\r\n\r\nlast line\r\n";

/// Verifies a DKIM signature with python3-dkim, the public key given in place of DNS.
fn dkim_verifies(message: &str, public_key: &str, dir: &Path) -> bool {
    let msg = dir.join(format!("verify-{}.eml", message.len()));
    std::fs::write(&msg, message.replace('\n', "\r\n")).unwrap();
    let script = "import sys, dkim\n\
        msg = open(sys.argv[1], 'rb').read()\n\
        key = open(sys.argv[2]).read().strip()\n\
        record = ('v=DKIM1; k=rsa; p=' + key).encode()\n\
        ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: record)\n\
        sys.exit(0 if ok else 1)\n";
    let key = dir.join("public.b64");
    std::fs::write(&key, public_key).unwrap();
    // Debian's python3, where python3-dkim is installed (another one may come first in PATH).
    Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(&msg)
        .arg(&key)
        .status()
        .expect("python3")
        .success()
}

#[tokio::test]
#[ignore = "needs the Debian filter packages: run by .ci/run after .ci/install-filters"]
async fn dkimsign_signs_and_the_signature_verifies_after_delivery() {
    let dkimsign = filter("filter-dkimsign");
    let openssl = tool("openssl");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.key");
    assert!(
        Command::new(&openssl)
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .status()
            .unwrap()
            .success()
    );
    let der = Command::new(&openssl)
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(der.status.success());
    let public = base64_encode(&der.stdout);
    let filters = format!(
        "filter chain proc-exec \"{} -d example.test -s sel -k {}\"",
        dkimsign.display(),
        key.display()
    );
    let d = daemon(dir.path(), &filters).await;
    let delivered = deliver(&d, CONTENT).await;
    d.engine.shutdown().await;
    assert!(delivered.contains("DKIM-Signature: "), "{delivered}");
    assert!(delivered.contains("d=example.test"), "{delivered}");
    // The body arrived as sent: dot-escaping went through the filter and back intact.
    assert!(
        delivered.ends_with(".a line starting with a dot\n..two dots\n.\nx|y|z\n\nlast line\n"),
        "{delivered}"
    );
    assert!(
        dkim_verifies(&delivered, &public, dir.path()),
        "the signature does not verify:\n{delivered}"
    );
    // The check has teeth: one changed body byte breaks it.
    let tampered = delivered.replace("last line", "last lime");
    assert!(!dkim_verifies(&tampered, &public, dir.path()));
}

#[tokio::test]
#[ignore = "needs the Debian filter packages: run by .ci/run after .ci/install-filters"]
async fn senderscore_registers_and_answers() {
    let senderscore = filter("filter-senderscore");
    let dir = tempfile::tempdir().unwrap();
    // senderscore looks clients up in DNS through the system's resolver, even loopback ones:
    // it runs in a mount namespace of its own where resolv.conf names a dead loopback
    // server, so that no query leaves the machine.
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    tool("unshare");
    let filters = format!(
        "filter chain proc-exec \"unshare -m sh -c 'mount --bind {} /etc/resolv.conf && exec {} -blockBelow 10 -scoreHeader'\" timeout 10s",
        resolv.display(),
        senderscore.display()
    );
    let d = daemon(dir.path(), &filters).await;
    let report = d.engine.filters().unwrap().procs()[0].report();
    assert!(
        report.phases.iter().any(|p| p.as_str() == "connect"),
        "{report:?}"
    );
    let delivered = deliver(&d, CONTENT).await;
    assert!(delivered.contains("Subject: a|b signed"), "{delivered}");
    let report = d.engine.filters().unwrap().procs()[0].report();
    assert_eq!(report.restarts, 0, "{report:?}");
    d.engine.shutdown().await;
}

/// A real rspamd on loopback ports, killed when dropped.
struct Rspamd {
    child: Child,
    port: u16,
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        // SIGTERM: the main process stops its workers (a SIGKILL would orphan them).
        if let Some(pid) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_rspamd(dir: &Path) -> Rspamd {
    let rspamd = tool("rspamd");
    let conf = dir.join("rspamd");
    let local = conf.join("local.d");
    for sub in ["local.d", "db", "run"] {
        std::fs::create_dir_all(conf.join(sub)).unwrap();
    }
    let (normal, controller) = (free_port(), free_port());
    let files = [
        // Its own name server is a dead loopback port: nothing leaves the machine.
        (
            "options.inc",
            "dns {\n nameserver = [\"127.0.0.1:9\"];\n timeout = 0.1s;\n retransmits = 0;\n}\n"
                .to_owned(),
        ),
        (
            "worker-normal.inc",
            format!("bind_socket = \"127.0.0.1:{normal}\";\ncount = 1;\n"),
        ),
        (
            "worker-controller.inc",
            format!("bind_socket = \"127.0.0.1:{controller}\";\ncount = 1;\n"),
        ),
        ("worker-proxy.inc", "enabled = false;\n".to_owned()),
        ("worker-fuzzy.inc", "enabled = false;\n".to_owned()),
        // Fuzzy-hash servers are resolved with the system's resolver: off.
        ("fuzzy_check.conf", "enabled = false;\n".to_owned()),
        // Every message gets the "add header" action, so that filter-rspamd writes its
        // X-Spam headers whatever this message scores.
        (
            "actions.conf",
            "add_header = -100;\ngreylist = null;\nrewrite_subject = null;\n".to_owned(),
        ),
        (
            "logging.inc",
            "type = \"console\";\nlevel = \"error\";\n".to_owned(),
        ),
    ];
    for (name, text) in files {
        std::fs::write(local.join(name), text).unwrap();
    }
    let child = Command::new(rspamd)
        .args([
            "-f",
            "-i",
            "-u",
            "root",
            "-g",
            "root",
            "-c",
            "/etc/rspamd/rspamd.conf",
        ])
        .arg(format!("--var=LOCAL_CONFDIR={}", conf.display()))
        .arg(format!("--var=DBDIR={}", conf.join("db").display()))
        .arg(format!("--var=RUNDIR={}", conf.join("run").display()))
        .arg(format!("--var=LOGDIR={}", conf.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rspamd starts");
    Rspamd {
        child,
        port: normal,
    }
}

/// Waits until rspamd answers `/ping`.
async fn rspamd_ready(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let _ = s
                    .write_all(b"GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    .await;
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer).await;
                if answer.contains("pong") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .expect("rspamd answers within two minutes");
}

#[tokio::test]
#[ignore = "needs the Debian filter packages: run by .ci/run after .ci/install-filters"]
async fn rspamd_headers_reach_the_delivered_message() {
    let filter_rspamd = filter("filter-rspamd");
    let dir = tempfile::tempdir().unwrap();
    let rspamd = start_rspamd(dir.path());
    rspamd_ready(rspamd.port).await;
    let filters = format!(
        "filter chain proc-exec \"{} -url http://127.0.0.1:{}\" timeout 60s",
        filter_rspamd.display(),
        rspamd.port
    );
    let d = daemon(dir.path(), &filters).await;
    let delivered = deliver(&d, CONTENT).await;
    d.engine.shutdown().await;
    // filter-rspamd's own headers, from rspamd's verdict.
    assert!(delivered.contains("X-Spam: yes\n"), "{delivered}");
    assert!(delivered.contains("X-Spam-Score: "), "{delivered}");
    assert!(
        delivered.contains("X-Spam-Status: Yes, score="),
        "{delivered}"
    );
    assert!(
        delivered.ends_with(".a line starting with a dot\n..two dots\n.\nx|y|z\n\nlast line\n"),
        "{delivered}"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
