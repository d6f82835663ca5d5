//! The user's guide (`docs/`) checks itself: every configuration in it is accepted by
//! `petreld -n`, every shell example runs against a live daemon, and the configuration
//! reference names every keyword of the grammar.
//!
//! Conventions for writers: a ```conf block is a whole configuration; a ```sh block runs with
//! `sh -e` in a scratch folder where a petreld runs (see [`SCRATCH_CONF`]), with the project's
//! binaries on `PATH` and `PETREL_DATA=petrel-data`. Anything else (```text, ```console,
//! ```ini) is not run.

#[path = "support/petreld_bin.rs"]
mod petreld_bin;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use petreld_bin::{free_port, start_listening};

const PETRELD: &str = env!("CARGO_BIN_EXE_petreld");

/// The daemon the shell examples talk to: mail for `localhost` and `example.org` goes into
/// `petrel-data/mail/<user>/`, and nothing is relayed.
const SCRATCH_CONF: &str = "listen on 127.0.0.1 port $port\n\
    listen on socket\n\
    table everyone { \"@\" = \"petrel\" }\n\
    table accounts { \"petrel\" = \"-:-:.\" }\n\
    action \"local\" maildir \"petrel-data/mail/%{dest.user:lowercase}\" virtual <everyone> userbase <accounts>\n\
    match from any for domain \"localhost\" action \"local\"\n\
    match from any for domain \"example.org\" action \"local\"\n";

/// A fenced block: its language, the file and line it starts at, its text.
struct Block {
    lang: String,
    at: String,
    text: String,
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// Every fenced block of every page of the guide.
fn blocks() -> Vec<Block> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(docs_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    let mut out = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        let mut open: Option<Block> = None;
        for (n, line) in text.lines().enumerate() {
            let fence = line.trim_start();
            match open.take() {
                None => {
                    if let Some(lang) = fence.strip_prefix("```") {
                        open = Some(Block {
                            lang: lang.trim().to_owned(),
                            at: format!("docs/{name}:{}", n + 1),
                            text: String::new(),
                        });
                    }
                }
                Some(mut b) => {
                    if fence.starts_with("```") {
                        out.push(b);
                    } else {
                        b.text.push_str(line);
                        b.text.push('\n');
                        open = Some(b);
                    }
                }
            }
        }
        assert!(open.is_none(), "docs/{name}: a fenced block is not closed");
    }
    out
}

#[test]
fn every_configuration_in_the_guide_is_accepted() {
    let confs: Vec<Block> = blocks().into_iter().filter(|b| b.lang == "conf").collect();
    assert!(
        confs.len() >= 5,
        "only {} configurations in docs/",
        confs.len()
    );
    for b in confs {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtpd.conf"), &b.text).unwrap();
        let out = Command::new(PETRELD)
            .current_dir(dir.path())
            .args(["-n", "-f", "smtpd.conf"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: petreld -n refuses it:\n{}\n{}",
            b.at,
            String::from_utf8_lossy(&out.stderr),
            b.text
        );
    }
}

#[test]
fn every_shell_example_in_the_guide_runs() {
    let scripts: Vec<Block> = blocks().into_iter().filter(|b| b.lang == "sh").collect();
    assert!(!scripts.is_empty(), "no shell examples in docs/");
    let bin_dir = Path::new(PETRELD).parent().unwrap().to_owned();
    for bin in ["petrelctl", "sendmail", "petrel-sim", "petrel-conformance"] {
        assert!(
            bin_dir.join(bin).exists(),
            "{} is not built: run the tests with `cargo test --workspace`",
            bin_dir.join(bin).display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smtpd.conf"), SCRATCH_CONF).unwrap();
    let mut petreld = Command::new(PETRELD);
    petreld
        .current_dir(dir.path())
        .args(["-f", "smtpd.conf", "-d", "petrel-data"])
        .args(["-D", &format!("port={}", free_port())]);
    let _daemon = start_listening(petreld);
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for b in scripts {
        let mut child = Command::new("sh")
            .args(["-e", "-c", &b.text])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("PETREL_DATA", "petrel-data")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{}: still running after 60 s:\n{}", b.at, b.text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}: exits {:?}:\n{}\nstdout:\n{}\nstderr:\n{}",
            b.at,
            out.status.code(),
            b.text,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_configuration_reference_names_every_keyword() {
    let reference = std::fs::read_to_string(docs_dir().join("configuration.md")).unwrap();
    let petrel_own = [
        "resolver",
        "nameserver",
        "static",
        "no-rdns",
        "fail-open",
        "fail-closed",
    ];
    let missing: Vec<&str> = petrel_core::config::keywords()
        .into_iter()
        .chain(petrel_own)
        .filter(|k| !reference.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md never names these keywords: {missing:?}"
    );
}
