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
