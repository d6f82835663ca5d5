//! `ciphers` lists evaluated as the `openssl` command evaluates them, suite for suite and in
//! order, kept to the TLS 1.2 suites Petrel implements. Needs the `openssl` command, which
//! `.ci/install-filters` installs; CI runs it with `--ignored`.

use std::process::Command;

use petrel_daemon::tls::cipher_names;

/// What OpenSSL selects, kept to the suites Petrel knows, in OpenSSL's order; `None` when
/// OpenSSL refuses the list.
fn openssl(list: &str, known: &[&str]) -> Option<Vec<String>> {
    let out = Command::new("openssl")
        .args(["ciphers", "-s", "-tls1_2", list])
        .output()
        .expect("the openssl command (installed by .ci/install-filters)");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.trim()
            .split(':')
            .filter(|s| known.contains(s))
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
#[ignore = "needs the openssl command: run by .ci/run after .ci/install-filters"]
fn cipher_lists_select_what_openssl_selects() {
    let known: Vec<&str> = cipher_names("ALL")
        .unwrap()
        .into_iter()
        .filter(|n| !n.starts_with("TLS_"))
        .collect();
    let lists = [
        "ALL",
        "DEFAULT",
        "HIGH",
        "HIGH:!aNULL:!MD5",
        "HIGH:!aNULL:!eNULL:!3DES:!RC4:!CAMELLIA:!kRSA:!DHE",
        "ECDHE",
        "EECDH+AESGCM:EDH+AESGCM",
        "ECDHE+AESGCM:ECDHE+CHACHA20",
        "AESGCM+ECDSA",
        "CHACHA20+aRSA",
        "AES128",
        "AES256:AES128",
        "HIGH:!ECDSA",
        "HIGH:!aRSA",
        "DEFAULT:!AES",
        "CHACHA20:ALL",
        "ALL:-AES256:AES256",
        "ALL:!AES256:AES256",
        "ALL:+AES256",
        "ALL:+CHACHA20:+AES128",
        "AES128:CHACHA20:@STRENGTH:AES256",
        "ALL:@STRENGTH",
        "ECDHE-RSA-AES128-GCM-SHA256,HIGH:@SECLEVEL=2",
        "ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES256-SHA:AES128-SHA:HIGH",
        "FIPS",
        "eNULL:HIGH",
        "kECDHE+aECDSA",
        "ALL:!ECDH",
    ];
    for list in lists {
        let ours: Vec<String> = cipher_names(list)
            .unwrap_or_else(|e| panic!("{list}: {e}"))
            .into_iter()
            .filter(|n| !n.starts_with("TLS_"))
            .map(str::to_owned)
            .collect();
        let theirs = openssl(list, &known).unwrap_or_else(|| panic!("openssl refuses {list}"));
        assert_eq!(ours, theirs, "{list}");
    }
    // Lists that select none of these suites: OpenSSL finds others (or none), Petrel refuses.
    for list in ["RC4:3DES", "ALL:!ALL", "aNULL"] {
        assert!(cipher_names(list).is_err(), "{list}");
        assert!(openssl(list, &known).is_none_or(|s| s.is_empty()), "{list}");
    }
}
