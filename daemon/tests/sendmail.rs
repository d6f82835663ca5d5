//! Local submission end to end with the real binaries: `sendmail` (and `petrelctl sendmail`)
//! through the enqueue socket of a running `petreld`, the socket's own filters, an SMTP
//! dialogue with `-bs`, and the offline queue: a message sent by an unprivileged user while the
//! daemon is stopped is delivered once it starts.

#[path = "support/petreld_bin.rs"]
mod petreld_bin;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use petreld_bin::{Petreld, free_port, start_listening};

const PETRELD: &str = env!("CARGO_BIN_EXE_petreld");
const SENDMAIL: &str = env!("CARGO_BIN_EXE_sendmail");
const PETRELCTL: &str = env!("CARGO_BIN_EXE_petrelctl");
const NOBODY: u32 = 65534;

/// A folder anyone may read (the unprivileged sender needs to reach the state folder), with
/// a configuration that files mail for `mx.test` into `mail/<user>/` and takes mail from the
/// enqueue socket through the builtin filter `no-spam`.
fn folder() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("smtpd.conf"),
        format!(
            "filter no-spam phase mail-from match mail-from regex \"^spam@\" reject \"550 5.7.1 no spam\"\n\
             listen on 127.0.0.1 port {port} hostname mx.test\n\
             listen on socket filter no-spam tag LOCAL\n\
             table everyone {{ \"@\" = \"petrel\" }}\n\
             table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
             action \"local\" maildir \"mail/%{{dest.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
             match from socket tag LOCAL for domain \"mx.test\" action \"local\"\n"
        ),
    )
    .unwrap();
    (tmp, dir)
}

/// Starts petreld in `dir` and waits until it listens.
fn start(dir: &Path) -> Petreld {
    let mut petreld = Command::new(PETRELD);
    petreld
        .current_dir(dir)
        .args(["-f", "smtpd.conf", "-d", "data"]);
    start_listening(petreld)
}

/// Runs `command` with `input` on its standard input.
fn feed(mut command: Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn sendmail(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(SENDMAIL);
    c.current_dir(dir)
        .env("PETREL_DATA", dir.join("data"))
        .args(args);
    c
}

/// The messages in a maildir, waiting up to 20 s for `count` of them.
fn wait_for_mail(maildir: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut found: Vec<String> = std::fs::read_dir(maildir.join("new"))
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        if found.len() >= count {
            found.sort();
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} messages in {}",
            found.len(),
            maildir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sendmail_hands_mail_to_the_running_daemon_through_the_socket_rules_and_filters() {
    let (_tmp, dir) = folder();
    let _daemon = start(&dir);
    let out = feed(
        sendmail(&dir, &["-t", "-F", "Test Sender"]),
        b"To: bob@mx.test\nBcc: carol@mx.test\nSubject: local\n\nhello\n.hidden dot line\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bob = wait_for_mail(&dir.join("mail/bob"), 1);
    let carol = wait_for_mail(&dir.join("mail/carol"), 1);
    for m in [&bob[0], &carol[0]] {
        assert!(m.contains("\nReceived: from localhost\n"), "{m}");
        // Maildir files end their lines with LF.
        assert!(m.contains("\nFrom: Test Sender <"), "{m}");
        assert!(
            m.contains("\nDate: ") && m.contains("\nMessage-ID: <"),
            "{m}"
        );
        assert!(!m.contains("Bcc:"), "{m}");
        // A line starting with a dot is content (dot-stuffed on the way, unstuffed on arrival).
        assert!(m.ends_with("\nhello\n.hidden dot line\n"), "{m}");
    }
    // The socket's filter refuses this sender: a permanent failure, sysexits' EX_NOUSER.
    let out = feed(
        sendmail(&dir, &["-f", "spam@example.org", "bob@mx.test"]),
        b"Subject: spam\n\nbuy\n",
    );
    assert_eq!(out.status.code(), Some(67));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("550 5.7.1 no spam"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A recipient the rules do not take (only mx.test is local here).
    let out = feed(
        sendmail(&dir, &["someone@elsewhere.test"]),
        b"Subject: x\n\nx\n",
    );
    assert_eq!(out.status.code(), Some(67), "{out:?}");
    // petrelctl sendmail is the same command.
    let mut ctl = Command::new(PETRELCTL);
    ctl.current_dir(&dir).args([
        "-s",
        "data/petreld.sock",
        "sendmail",
        "-f",
        "alice@mx.test",
        "dave@mx.test",
    ]);
    let out = feed(ctl, b"Subject: via petrelctl\n\nhi\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dave = wait_for_mail(&dir.join("mail/dave"), 1);
    assert!(dave[0].contains("Subject: via petrelctl"), "{}", dave[0]);
}

#[test]
fn sendmail_bs_is_an_smtp_dialogue_on_standard_input_and_output() {
    let (_tmp, dir) = folder();
    let _daemon = start(&dir);
    let dialogue = b"EHLO me\r\nMAIL FROM:<alice@mx.test>\r\nRCPT TO:<erin@mx.test>\r\nDATA\r\n\
        Subject: bs\r\n\r\nover -bs\r\n.\r\nQUIT\r\n";
    let out = feed(sendmail(&dir, &["-bs"]), dialogue);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let codes: Vec<&str> = text
        .lines()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| &l[..3])
        .collect();
    assert_eq!(
        codes,
        ["220", "250", "250", "250", "354", "250", "221"],
        "{text}"
    );
    let erin = wait_for_mail(&dir.join("mail/erin"), 1);
    assert!(erin[0].ends_with("\nover -bs\n"), "{}", erin[0]);
}

#[test]
fn mail_sent_while_the_daemon_is_down_is_delivered_when_it_starts() {
    let (_tmp, dir) = folder();
    // A first start makes the state folder and its offline queue, as installing would.
    drop(start(&dir));
    let offline = dir.join("data/offline");
    assert!(offline.is_dir());
    // An unprivileged user sends (when the tests run as root; as themselves otherwise).
    let mut cmd = sendmail(&dir, &["frank@mx.test"]);
    if rustix::process::getuid().is_root() {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let out = feed(
        cmd,
        b"Subject: offline\n\nwritten while the daemon was down\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let waiting: Vec<_> = std::fs::read_dir(&offline).unwrap().collect();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let _daemon = start(&dir);
    let frank = wait_for_mail(&dir.join("mail/frank"), 1);
    assert!(
        frank[0].ends_with("\nwritten while the daemon was down\n"),
        "{}",
        frank[0]
    );
    // Taken once: the file is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&offline).unwrap().count() > 0 {
        assert!(Instant::now() < deadline, "the offline file is still there");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(wait_for_mail(&dir.join("mail/frank"), 1).len(), 1);
}

#[test]
fn planted_files_in_the_offline_queue_are_not_read() {
    let (_tmp, dir) = folder();
    drop(start(&dir));
    let offline = dir.join("data/offline");
    // A link to a file the sender could not read, dressed as a message to be mailed out.
    let secret = dir.join("secret");
    std::fs::write(
        &secret,
        "PETREL-OFFLINE 1\nx@mx.test\ngrace@mx.test\n\nsecret\r\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret, offline.join("link")).unwrap();
    std::fs::hard_link(&secret, offline.join("hardlink")).unwrap();
    let _daemon = start(&dir);
    // A real message after them, to know the daemon has looked.
    let out = feed(sendmail(&dir, &["heidi@mx.test"]), b"Subject: after\n\nx\n");
    assert!(out.status.success());
    wait_for_mail(&dir.join("mail/heidi"), 1);
    drop(_daemon);
    assert!(
        !dir.join("mail/grace").exists(),
        "a planted file was mailed"
    );
    assert!(offline.join("link").exists() && offline.join("hardlink").exists());
}

#[test]
fn a_daemon_with_only_the_socket_takes_local_mail() {
    let (_tmp, dir) = folder();
    // A null client: no TCP listener at all.
    let conf = std::fs::read_to_string(dir.join("smtpd.conf")).unwrap();
    let conf: String = conf
        .lines()
        .filter(|l| !l.starts_with("listen on 127.0.0.1"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("smtpd.conf"), conf).unwrap();
    let _daemon = start(&dir);
    let out = feed(
        sendmail(&dir, &["judy@mx.test"]),
        b"Subject: null client\n\nx\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let judy = wait_for_mail(&dir.join("mail/judy"), 1);
    assert!(judy[0].contains("Subject: null client"), "{}", judy[0]);
}
