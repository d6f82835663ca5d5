//! Every configuration in `examples/` passes `petreld -n`.

use std::process::Command;

#[test]
fn every_example_configuration_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "conf") {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_petreld"))
            .arg("-n")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty());
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} examples found");
}
