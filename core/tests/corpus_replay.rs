//! Replays every fuzz corpus in `corpora/fuzz/<target>/` through the target's body in
//! `petrel_core::fuzzing`, so that plain `cargo test` (and CI) checks the corpora without
//! libFuzzer. A missing or empty corpus directory fails the test.

use std::fs;
use std::path::{Path, PathBuf};

use petrel_core::fuzzing::{self, TARGETS};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/fuzz")
}

/// The files of one target's corpus, sorted; panics if the directory is missing or empty.
fn corpus_in(root: &Path, target: &str) -> Vec<PathBuf> {
    let dir = root.join(target);
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {} missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("reading the corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "corpus directory {} is empty",
        dir.display()
    );
    files
}

fn replay(target: &str, body: fn(&[u8])) -> usize {
    replay_dir(&corpus_root(), target, body)
}

/// Feeds every file of `root/target` to `body`; the first that panics fails the test with its
/// name and the command that reproduces it.
fn replay_dir(root: &Path, target: &str, body: fn(&[u8])) -> usize {
    let files = corpus_in(root, target);
    for file in &files {
        let data = fs::read(file).expect("reading a corpus file");
        let result = std::panic::catch_unwind(|| body(&data));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!(
                "{target}: {} fails: {msg}\nreplay with: cargo fuzz run -s none {target} {}",
                file.display(),
                file.display()
            );
        }
    }
    files.len()
}

#[test]
fn every_target_has_a_corpus_directory() {
    let mut on_disk: Vec<String> = fs::read_dir(corpus_root())
        .expect("corpora/fuzz exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut targets: Vec<String> = TARGETS
        .iter()
        .map(|(n, _)| *n)
        .chain(OTHER_TARGETS.iter().copied())
        .map(str::to_owned)
        .collect();
    targets.sort();
    assert_eq!(on_disk, targets, "corpus directories and targets differ");

    // Every libFuzzer target of fuzz/ has its corpus, which .ci/run replays.
    let mut fuzz_targets: Vec<String> =
        fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets"))
            .expect("fuzz/fuzz_targets exists")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
    fuzz_targets.sort();
    assert_eq!(
        fuzz_targets, targets,
        "fuzz targets and corpus directories differ"
    );
}

/// Targets whose body is not in `petrel_core::fuzzing`: `command_diff` compares with
/// smtp-proto, a dev-dependency, and its corpus is replayed by `tests/command_diff.rs`.
const OTHER_TARGETS: &[&str] = &["command_diff"];

/// A failing corpus file fails the replay, naming the file and how to reproduce it.
#[test]
fn a_failing_input_fails_the_replay_loudly() {
    fn body(data: &[u8]) {
        assert!(!data.starts_with(b"QUIT"), "the property does not hold");
    }
    let dir = std::env::temp_dir().join(format!("petrel-replay-{}", std::process::id()));
    let target = dir.join("corpora/fuzz/fake");
    fs::create_dir_all(&target).unwrap();
    fs::write(target.join("good"), b"NOOP").unwrap();
    fs::write(target.join("regression-0123"), b"QUIT").unwrap();
    let result = std::panic::catch_unwind(|| replay_dir(&dir.join("corpora/fuzz"), "fake", body));
    fs::remove_dir_all(&dir).unwrap();
    let panic = result.expect_err("a failing input must fail the replay");
    let msg = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        msg.contains("regression-0123 fails: the property does not hold"),
        "{msg}"
    );
    assert!(msg.contains("cargo fuzz run -s none fake"), "{msg}");
}

#[test]
fn command_corpus() {
    assert!(replay("command", fuzzing::command) >= 10);
}

#[test]
fn path_corpus() {
    assert!(replay("path", fuzzing::path) >= 10);
}

#[test]
fn reply_corpus() {
    assert!(replay("reply", fuzzing::reply) >= 10);
}

#[test]
fn dot_unstuff_corpus() {
    assert!(replay("dot_unstuff", fuzzing::dot_unstuff) >= 10);
}

#[test]
fn dot_roundtrip_corpus() {
    assert!(replay("dot_roundtrip", fuzzing::dot_roundtrip) >= 10);
}

#[test]
fn server_session_corpus() {
    assert!(replay("server_session", fuzzing::server_session) >= 10);
}

#[test]
fn client_session_corpus() {
    assert!(replay("client_session", fuzzing::client_session) >= 10);
}

#[test]
fn config_corpus() {
    assert!(replay("config", fuzzing::config) >= 20);
}

#[test]
fn table_file_corpus() {
    assert!(replay("table_file", fuzzing::table_file) >= 10);
}

#[test]
fn alias_value_corpus() {
    assert!(replay("alias_value", fuzzing::alias_value) >= 10);
}

#[test]
fn expansion_corpus() {
    assert!(replay("expansion", fuzzing::expansion) >= 5);
}

#[test]
fn proc_reply_corpus() {
    assert!(replay("proc_reply", fuzzing::proc_reply) >= 5);
}

#[test]
fn srs_decode_corpus() {
    assert!(replay("srs_decode", fuzzing::srs_decode) >= 10);
}

#[test]
fn filter_line_corpus() {
    assert!(replay("filter_line", fuzzing::filter_line) >= 10);
}

#[test]
fn filter_report_corpus() {
    assert!(replay("filter_report", fuzzing::filter_report) >= 10);
}

/// Every valid configuration of `corpora/configs/` is a seed of the `config` target (the
/// broken ones too, as `seed-broken-*`), so the fuzzer starts from real configurations.
#[test]
fn config_seeds_cover_the_configuration_corpus() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/configs");
    for (dir, prefix) in [
        (configs.clone(), "seed-"),
        (configs.join("broken"), "seed-broken-"),
    ] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "conf") {
                continue;
            }
            let stem = path.file_stem().unwrap().to_string_lossy();
            let seed = corpus_root().join("config").join(format!("{prefix}{stem}"));
            assert_eq!(
                fs::read(&seed).ok(),
                Some(fs::read(&path).unwrap()),
                "{} is not (or no longer) the seed {}",
                path.display(),
                seed.display()
            );
        }
    }
}

/// The `seed-*` files of the session corpora and of `filter_report` are the inputs written by
/// `petrel_core::fuzzing::seeds`. `PETREL_WRITE_SEEDS=1 cargo test --test corpus_replay`
/// (re)writes them after a change there.
#[test]
fn session_seeds_match_the_corpus() {
    let write = std::env::var_os("PETREL_WRITE_SEEDS").is_some_and(|v| v == "1");
    for (target, seeds) in [
        ("server_session", fuzzing::seeds::server_session()),
        ("client_session", fuzzing::seeds::client_session()),
        ("filter_report", fuzzing::seeds::filter_report()),
    ] {
        for (name, bytes) in seeds {
            let file = corpus_root().join(target).join(format!("seed-{name}"));
            if write {
                fs::create_dir_all(file.parent().unwrap()).unwrap();
                fs::write(&file, &bytes).unwrap();
            }
            let on_disk = fs::read(&file).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run PETREL_WRITE_SEEDS=1 cargo test --test corpus_replay)",
                    file.display()
                )
            });
            assert_eq!(on_disk, bytes, "{} is stale", file.display());
        }
    }
}

/// The operation encoders write what the decoders read.
#[test]
fn operations_round_trip_through_their_encoding() {
    use arbitrary::Unstructured;
    use petrel_core::fuzzing::{Canned, CannedReply, ClientOp, DecisionKind, ServerOp};
    let server_ops = vec![
        ServerOp::Raw(b"EHLO x\r\n".to_vec()),
        ServerOp::Mapped(vec![0, 1, 2, 255]),
        ServerOp::Line(Canned::BdatLast, 9),
        ServerOp::Hold,
        ServerOp::Auto(DecisionKind::Disconnect554),
        ServerOp::Answer(DecisionKind::Temp451),
        ServerOp::AnswerStale(3),
        ServerOp::Advance(200),
        ServerOp::Timeout,
        ServerOp::TlsEstablished,
        ServerOp::Shutdown,
    ];
    let mut bytes = Vec::new();
    for op in &server_ops {
        op.encode(&mut bytes);
    }
    let mut u = Unstructured::new(&bytes);
    let mut decoded = Vec::new();
    while !u.is_empty() {
        decoded.push(ServerOp::decode(&mut u));
    }
    assert_eq!(decoded, server_ops);

    let client_ops = vec![
        ClientOp::Reply(CannedReply::Ehlo, 0xff),
        ClientOp::Raw(b"250 ok\r\n".to_vec()),
        ClientOp::Mapped(vec![9; 300]),
        ClientOp::Send { rcpts: 3, flags: 7 },
        ClientOp::Quit,
        ClientOp::Eof,
        ClientOp::Timeout,
        ClientOp::Advance(1),
        ClientOp::TlsEstablished,
    ];
    let mut bytes = Vec::new();
    for op in &client_ops {
        op.encode(&mut bytes);
    }
    let mut u = Unstructured::new(&bytes);
    let mut decoded = Vec::new();
    while !u.is_empty() {
        decoded.push(ClientOp::decode(&mut u));
    }
    // A blob is cut at 255 bytes.
    let mut expected = client_ops;
    expected[2] = ClientOp::Mapped(vec![9; 255]);
    assert_eq!(decoded, expected);
}

/// Session inputs cut anywhere are still valid (operations read zeros past the end), and
/// replaying them exercises every prefix of a whole session.
#[test]
fn truncated_session_seeds_pass() {
    // A session seed still passes when cut anywhere (operations read zeros past the end).
    let seeds = fuzzing::seeds::server_session();
    let (_, plain) = &seeds[0];
    for cut in 0..plain.len() {
        fuzzing::server_session(&plain[..cut]);
    }
    let seeds = fuzzing::seeds::client_session();
    let (_, pipelined) = &seeds[0];
    for cut in 0..pipelined.len() {
        fuzzing::client_session(&pipelined[..cut]);
    }
}
