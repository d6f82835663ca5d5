//! Replays the SRS fuzz seeds in `corpora/srs/` as ordinary tests.
//!
//! Seeds are one address per file, no trailing newline, minted with the spec's key at the
//! spec's time (`fuzzing::KEY`, `fuzzing::NOW`). `NAME.encoded` decodes to `NAME.decoded`;
//! `NAME.invalid` must not decode. `osmtpd-` seeds use the OpenSMTPD flavour, `std-` libsrs2's.

use std::fs;
use std::path::{Path, PathBuf};

use petrel_core::srs::{Flavour, Srs, SrsConfig, fuzzing};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/srs")
}

fn seeds() -> Vec<(String, PathBuf)> {
    let mut seeds: Vec<_> = fs::read_dir(corpus_dir())
        .expect("corpora/srs exists")
        .map(|entry| {
            let path = entry.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect();
    seeds.sort();
    seeds
}

fn codec_for(name: &str) -> Srs {
    let flavour = if name.starts_with("std-") {
        Flavour::Standard
    } else {
        Flavour::OpenSmtpd
    };
    Srs::new(SrsConfig {
        flavour,
        backup_key: Some(fuzzing::BACKUP_KEY.into()),
        ..SrsConfig::new(fuzzing::KEY)
    })
    .unwrap()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_seed_survives_the_fuzz_body() {
    let seeds = seeds();
    assert!(seeds.len() >= 10, "corpus went missing: {seeds:?}");
    for (_, path) in seeds {
        fuzzing::fuzz_decode(&fs::read(path).unwrap());
    }
}

#[test]
fn encoded_seeds_decode_to_their_pair() {
    let mut pairs = 0;
    for (name, path) in seeds() {
        let Some(stem) = name.strip_suffix(".encoded") else {
            continue;
        };
        let expected = read(&path.with_file_name(format!("{stem}.decoded")));
        let decoded = codec_for(&name).decode(&read(&path), fuzzing::NOW);
        assert_eq!(decoded.map(|d| d.address), Ok(expected), "{name}");
        pairs += 1;
    }
    assert!(pairs >= 5, "only {pairs} pairs");
}

#[test]
fn invalid_seeds_do_not_decode() {
    let mut invalid = 0;
    for (name, path) in seeds().into_iter().filter(|(n, _)| n.ends_with(".invalid")) {
        let srs = codec_for(&name);
        let address = read(&path);
        assert!(srs.is_srs(&address), "{name} should still look like SRS");
        assert!(srs.decode(&address, fuzzing::NOW).is_err(), "{name}");
        invalid += 1;
    }
    assert!(invalid >= 2);
}

#[test]
fn every_decoded_seed_has_an_encoded_pair() {
    for (name, path) in seeds() {
        if let Some(stem) = name.strip_suffix(".decoded") {
            assert!(
                path.with_file_name(format!("{stem}.encoded")).exists(),
                "{name}"
            );
        }
    }
}
