//! The configuration corpus: every `corpora/configs/*.conf` parses, prints a stable normal form
//! that parses back to the same configuration, and matches its snapshot; every
//! `corpora/configs/broken/*.conf` fails with the errors in its snapshot.
//!
//! Files are named relative to the repository root, as errors and snapshots show them, so the
//! snapshots do not depend on where the repository is checked out.

use std::fs;
use std::path::{Path, PathBuf};

use petrel_core::config::{Config, ParseOptions, SourceLoader, parse};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Serves `include`d files from the repository, by paths relative to its root.
struct RepositoryFiles;

impl SourceLoader for RepositoryFiles {
    fn load(&self, path: &str) -> Result<String, String> {
        fs::read_to_string(repository().join(path)).map_err(|e| e.to_string())
    }
}

/// The `.conf` files of a corpus directory, as repository-relative names, sorted.
fn corpus(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(repository().join(dir))
        .expect("corpus directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".conf"))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    names.sort();
    names
}

fn snapshot_name(file: &str) -> String {
    Path::new(file)
        .file_stem()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

fn parse_file(file: &str) -> Result<Config, String> {
    let text = fs::read_to_string(repository().join(file)).expect("readable corpus file");
    parse(file, &text, &ParseOptions::with_loader(&RepositoryFiles)).map_err(|e| e.to_string())
}

#[test]
fn valid_configurations_parse_and_round_trip() {
    let files = corpus("corpora/configs");
    assert!(
        files.len() >= 20,
        "only {} valid configurations",
        files.len()
    );
    for file in files {
        let config =
            parse_file(&file).unwrap_or_else(|errors| panic!("{file} does not parse:\n{errors}"));
        let normal = config.to_string();
        let reparsed =
            parse("normal form", &normal, &ParseOptions::default()).unwrap_or_else(|errors| {
                panic!("the normal form of {file} does not parse:\n{errors}\n{normal}")
            });
        assert_eq!(
            reparsed.without_spans(),
            config.without_spans(),
            "{file}: normal form changes the meaning"
        );
        assert_eq!(
            reparsed.to_string(),
            normal,
            "{file}: normal form is not stable"
        );
        insta::assert_snapshot!(snapshot_name(&file), normal);
    }
}

#[test]
fn broken_configurations_report_their_errors() {
    let files = corpus("corpora/configs/broken");
    assert!(
        files.len() >= 20,
        "only {} broken configurations",
        files.len()
    );
    for file in files {
        let errors = match parse_file(&file) {
            Ok(config) => panic!("{file} parses but should not:\n{config}"),
            Err(errors) => errors,
        };
        insta::assert_snapshot!(format!("broken-{}", snapshot_name(&file)), errors);
    }
}

/// The typed form of a few configurations, spans included: the snapshots above show meaning
/// through the normal form, these pin the structure the rest of Petrel consumes.
#[test]
fn typed_form_of_selected_configurations() {
    for name in ["spec-sample", "filter-stack", "unprivileged-laptop"] {
        let file = format!("corpora/configs/{name}.conf");
        let config = parse_file(&file).unwrap_or_else(|errors| panic!("{file}:\n{errors}"));
        insta::assert_debug_snapshot!(format!("typed-{name}"), config);
    }
}
