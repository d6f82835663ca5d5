//! `ciphers` in the OpenSSL/LibreSSL cipher-list syntax, evaluated over the suites that the TLS
//! library implements.
//!
//! A list is terms separated by `:` (or `,`, `;`, a space). A term is a suite name
//! (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_256_GCM_SHA384`) or aliases joined by `+`, which
//! select the suites they all match (`ECDHE+AESGCM`). A term adds its suites at the end of the
//! list; `-` removes them, `!` removes them for good, `+` moves them to the end; `@STRENGTH`
//! sorts the list by key size and `@SECLEVEL=n` is accepted. The whole value may instead be one
//! of libtls' keywords: `secure` or `default`, `compat` or `legacy`, `insecure` or `all`.
//!
//! Two things differ from OpenSSL, both so that a mistake cannot pass unnoticed:
//! - a word that names nothing OpenSSL or LibreSSL knows is an error, where OpenSSL skips it;
//!   a word they know for suites Petrel never offers (`RC4`, `3DES`, `aNULL`, `CAMELLIA` …)
//!   selects nothing, so that lists written for OpenSSL keep working;
//! - a list that leaves no suite at all is an error when it is read, not at the first
//!   handshake.
//!
//! TLS 1.3 suites follow LibreSSL (the library OpenSMTPD's libtls uses): they belong to `ALL`,
//! `HIGH`, `AEAD`, `TLSv1.3` and their cipher's aliases; and when no term of the list selects
//! any of them, all three are offered, first, as OpenSSL does with its separate TLS 1.3 list.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{CipherSuite, SupportedCipherSuite, SupportedProtocolVersion};

/// Why a `ciphers` value cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    /// A word that neither OpenSSL nor LibreSSL knows.
    #[error("unknown cipher or alias \"{0}\"")]
    Unknown(String),
    /// An `@` command other than `@STRENGTH` and `@SECLEVEL=n`.
    #[error("unknown command \"{0}\" (known: @STRENGTH, @SECLEVEL=n)")]
    Command(String),
    /// Nothing is left once the list has been applied.
    #[error("selects no cipher suite that Petrel implements ({})", implemented())]
    Empty,
}

/// One suite the TLS library implements, with the aliases that select it.
struct Suite {
    /// OpenSSL's name.
    name: &'static str,
    id: CipherSuite,
    tls13: bool,
    /// The symmetric key size, for `@STRENGTH`.
    bits: u16,
    aliases: &'static [&'static str],
}

/// Aliases of every TLS 1.2 suite here: ECDHE key exchange, AEAD ciphers, all of them "high".
const TLS12: &[&str] = &[
    "ALL", "DEFAULT", "HIGH", "TLSv1.2", "AEAD", "ECDHE", "EECDH", "kECDHE", "kEECDH", "ECDH",
];
/// Aliases of every TLS 1.3 suite here (LibreSSL's).
const TLS13: &[&str] = &["ALL", "DEFAULT", "HIGH", "TLSv1.3", "AEAD"];

/// In OpenSSL's default order of preference: TLS 1.3 first, then AES-256, ChaCha20, AES-128,
/// ECDSA before RSA.
const SUITES: &[Suite] = &[
    Suite {
        name: "TLS_AES_256_GCM_SHA384",
        id: CipherSuite::TLS13_AES_256_GCM_SHA384,
        tls13: true,
        bits: 256,
        aliases: &["AES", "AESGCM", "AES256"],
    },
    Suite {
        name: "TLS_CHACHA20_POLY1305_SHA256",
        id: CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        tls13: true,
        bits: 256,
        aliases: &["CHACHA20"],
    },
    Suite {
        name: "TLS_AES_128_GCM_SHA256",
        id: CipherSuite::TLS13_AES_128_GCM_SHA256,
        tls13: true,
        bits: 128,
        aliases: &["AES", "AESGCM", "AES128"],
    },
    Suite {
        name: "ECDHE-ECDSA-AES256-GCM-SHA384",
        id: CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        tls13: false,
        bits: 256,
        aliases: &["aECDSA", "ECDSA", "AES", "AESGCM", "AES256", "FIPS"],
    },
    Suite {
        name: "ECDHE-RSA-AES256-GCM-SHA384",
        id: CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        tls13: false,
        bits: 256,
        aliases: &["aRSA", "AES", "AESGCM", "AES256", "FIPS"],
    },
    Suite {
        name: "ECDHE-ECDSA-CHACHA20-POLY1305",
        id: CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        tls13: false,
        bits: 256,
        aliases: &["aECDSA", "ECDSA", "CHACHA20"],
    },
    Suite {
        name: "ECDHE-RSA-CHACHA20-POLY1305",
        id: CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        tls13: false,
        bits: 256,
        aliases: &["aRSA", "CHACHA20"],
    },
    Suite {
        name: "ECDHE-ECDSA-AES128-GCM-SHA256",
        id: CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        tls13: false,
        bits: 128,
        aliases: &["aECDSA", "ECDSA", "AES", "AESGCM", "AES128", "FIPS"],
    },
    Suite {
        name: "ECDHE-RSA-AES128-GCM-SHA256",
        id: CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        tls13: false,
        bits: 128,
        aliases: &["aRSA", "AES", "AESGCM", "AES128", "FIPS"],
    },
];

/// Words OpenSSL or LibreSSL know that select none of the suites above: weak or unimplemented
/// ciphers, key exchanges and MACs, and the protocol versions before TLS 1.2.
const SELECT_NOTHING: &[&str] = &[
    "3DES",
    "ADH",
    "AECDH",
    "AESCCM",
    "AESCCM8",
    "ARIA",
    "ARIA128",
    "ARIA256",
    "ARIAGCM",
    "CAMELLIA",
    "CAMELLIA128",
    "CAMELLIA256",
    "CBC",
    "COMPLEMENTOFALL",
    "COMPLEMENTOFDEFAULT",
    "DES",
    "DH",
    "DHE",
    "DHEPSK",
    "DSS",
    "ECDHEPSK",
    "EDH",
    "EXP",
    "EXPORT",
    "GOST2001",
    "GOST2012",
    "GOST89MAC",
    "GOST94",
    "IDEA",
    "LOW",
    "MD5",
    "MEDIUM",
    "NULL",
    "PSK",
    "RC2",
    "RC4",
    "RSA",
    "RSAPSK",
    "SEED",
    "SHA",
    "SHA1",
    "SHA256",
    "SHA384",
    "SRP",
    "SSLv3",
    "STREEBOG256",
    "TLSv1",
    "TLSv1.0",
    "aDH",
    "aDSS",
    "aGOST",
    "aGOST01",
    "aGOST12",
    "aNULL",
    "aPSK",
    "aSRP",
    "eNULL",
    "kDH",
    "kDHE",
    "kDHEPSK",
    "kEDH",
    "kECDHEPSK",
    "kGOST",
    "kGOST18",
    "kPSK",
    "kRSA",
    "kRSAPSK",
    "kSRP",
];

/// The suites a `ciphers` value selects, in its order of preference.
pub fn parse_ciphers(value: &str) -> Result<Vec<SupportedCipherSuite>, CipherError> {
    let chosen = select(value)?;
    let provider = super::provider();
    Ok(chosen
        .iter()
        .filter_map(|&i| {
            provider
                .cipher_suites
                .iter()
                .find(|s| s.suite() == SUITES[i].id)
                .copied()
        })
        .collect())
}

/// The crypto provider with only `ciphers` (all of its suites when `None`), in that order.
#[must_use]
pub fn provider_with(ciphers: Option<&[SupportedCipherSuite]>) -> Arc<CryptoProvider> {
    let base = super::provider();
    match ciphers {
        None => base,
        Some(suites) => Arc::new(CryptoProvider {
            cipher_suites: suites.to_vec(),
            ..(*base).clone()
        }),
    }
}

/// Checks that every protocol version left has a suite: a list of TLS 1.2 suites with
/// `protocols "tlsv1.3"` (or the reverse) could never complete a handshake.
pub fn check_versions(
    versions: &[&'static SupportedProtocolVersion],
    ciphers: &[SupportedCipherSuite],
) -> Result<(), String> {
    let usable = versions
        .iter()
        .any(|v| ciphers.iter().any(|s| s.version() == *v));
    if usable {
        Ok(())
    } else {
        let names: Vec<String> = versions
            .iter()
            .map(|v| format!("{:?}", v.version))
            .collect();
        Err(format!(
            "the cipher list leaves no suite for {}",
            names.join(" or ")
        ))
    }
}

/// OpenSSL's names of the suites a `ciphers` value selects, in order: what `petreld -n`
/// and the tests show.
pub fn cipher_names(value: &str) -> Result<Vec<&'static str>, CipherError> {
    Ok(select(value)?.into_iter().map(|i| SUITES[i].name).collect())
}

/// Applies a cipher list; the result indexes [`SUITES`].
fn select(value: &str) -> Result<Vec<usize>, CipherError> {
    let value = value.trim();
    let rules = match value.to_ascii_lowercase().as_str() {
        // libtls' keywords name whole lists.
        "secure" | "default" => "TLSv1.3:TLSv1.2+AEAD+ECDHE:TLSv1.2+AEAD+DHE",
        "compat" | "legacy" => "HIGH:!aNULL",
        "insecure" | "all" => "ALL:!aNULL:!eNULL",
        _ => value,
    };
    if !rules.split([':', ',', ';', ' ']).any(|t| !t.is_empty()) {
        return Err(CipherError::Empty);
    }
    let mut list: Vec<usize> = Vec::new();
    let mut killed = [false; SUITES.len()];
    let mut tls13_seen = false;
    for term in rules.split([':', ',', ';', ' ']).filter(|t| !t.is_empty()) {
        if let Some(command) = term.strip_prefix('@') {
            match command {
                "STRENGTH" => list.sort_by_key(|&i| std::cmp::Reverse(SUITES[i].bits)),
                c if c.strip_prefix("SECLEVEL=").is_some_and(is_digits) => {}
                _ => return Err(CipherError::Command(term.to_owned())),
            }
            continue;
        }
        let (op, words) = match term.as_bytes()[0] {
            b'!' | b'-' | b'+' => (term.as_bytes()[0], &term[1..]),
            _ => (b'\0', term),
        };
        let matched = matching(words)?;
        tls13_seen |= matched.iter().any(|&i| SUITES[i].tls13);
        match op {
            b'!' => {
                list.retain(|i| !matched.contains(i));
                for &i in &matched {
                    killed[i] = true;
                }
            }
            b'-' => list.retain(|i| !matched.contains(i)),
            b'+' => {
                // Moved to the end, in their current order; suites not in the list stay out.
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    list.iter().partition(|i| matched.contains(i));
                list = kept;
                list.extend(moved);
            }
            _ => {
                for i in matched {
                    if !killed[i] && !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
    }
    // A list that selects nothing is a mistake (OpenSSL's "no cipher match"), even though
    // TLS 1.3 would be left.
    if list.is_empty() {
        return Err(CipherError::Empty);
    }
    if !tls13_seen {
        // The list said nothing about TLS 1.3: its suites stay on, as with OpenSSL.
        let tls13: Vec<usize> = (0..SUITES.len()).filter(|&i| SUITES[i].tls13).collect();
        list.splice(0..0, tls13);
    }
    Ok(list)
}

/// The suites that every alias of `A+B+…` matches, in the default order.
fn matching(words: &str) -> Result<Vec<usize>, CipherError> {
    let mut matched: Vec<usize> = (0..SUITES.len()).collect();
    for word in words.split('+') {
        if word.is_empty() {
            return Err(CipherError::Unknown(words.to_owned()));
        }
        if let Some(i) = SUITES.iter().position(|s| s.name == word) {
            matched.retain(|&m| m == i);
        } else if is_tls13_name(word) || is_tls12_name(word) || SELECT_NOTHING.contains(&word) {
            matched.clear();
        } else if TLS12.contains(&word) || TLS13.contains(&word) || is_alias(word) {
            matched.retain(|&m| {
                let s = &SUITES[m];
                s.aliases.contains(&word) || if s.tls13 { TLS13 } else { TLS12 }.contains(&word)
            });
        } else {
            return Err(CipherError::Unknown(word.to_owned()));
        }
    }
    Ok(matched)
}

/// A per-suite alias of some suite above.
fn is_alias(word: &str) -> bool {
    SUITES.iter().any(|s| s.aliases.contains(&word))
}

/// A TLS 1.3 suite name this library does not implement (`TLS_AES_128_CCM_SHA256`).
fn is_tls13_name(word: &str) -> bool {
    word.starts_with("TLS_") && word.len() > 4
}

/// A name in OpenSSL's style for a TLS 1.2-or-older suite (`AES128-SHA`, `DHE-RSA-AES256-SHA`):
/// upper-case words joined by `-`, ending in a MAC or AEAD mode. Such names select nothing here.
fn is_tls12_name(word: &str) -> bool {
    let ends = [
        "-SHA",
        "-SHA256",
        "-SHA384",
        "-MD5",
        "-POLY1305",
        "-CCM",
        "-CCM8",
    ];
    word.contains('-')
        && ends.iter().any(|e| word.ends_with(e))
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The names of every suite implemented, for error messages.
fn implemented() -> String {
    SUITES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TLS13_ALL: [&str; 3] = [
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_GCM_SHA256",
    ];

    /// The TLS 1.2 suites a list selects, in order.
    fn tls12(value: &str) -> Vec<&'static str> {
        cipher_names(value)
            .unwrap()
            .into_iter()
            .filter(|n| !n.starts_with("TLS_"))
            .collect()
    }

    // Every expected list below is what `openssl ciphers -s -tls1_2 LIST` (OpenSSL 3.0) prints,
    // kept to the suites implemented here.
    #[test]
    fn aliases_select_as_openssl_does() {
        let all = [
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-CHACHA20-POLY1305",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ];
        for list in [
            "ALL",
            "DEFAULT",
            "HIGH",
            "HIGH:!aNULL:!MD5",
            "ECDHE",
            "eNULL:HIGH",
        ] {
            assert_eq!(tls12(list), all, "{list}");
        }
        assert_eq!(
            tls12("AES128"),
            [
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256"
            ]
        );
        assert_eq!(
            tls12("HIGH:!ECDSA"),
            [
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "ECDHE-RSA-AES128-GCM-SHA256"
            ]
        );
        assert_eq!(
            tls12("AESGCM+ECDSA"),
            [
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-AES128-GCM-SHA256"
            ]
        );
        assert_eq!(tls12("CHACHA20+aRSA"), ["ECDHE-RSA-CHACHA20-POLY1305"]);
        assert_eq!(
            tls12("DEFAULT:!AES"),
            [
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305"
            ]
        );
    }

    #[test]
    fn operators_order_and_remove_as_openssl_does() {
        assert_eq!(
            tls12("CHACHA20:ALL"),
            [
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256"
            ]
        );
        // `-` lets a later term add them back (at the end); `!` does not.
        assert_eq!(
            tls12("ALL:-AES256:AES256"),
            [
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384"
            ]
        );
        assert_eq!(
            tls12("ALL:!AES256:AES256"),
            [
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256"
            ]
        );
        assert_eq!(
            tls12("ALL:+AES256"),
            [
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384"
            ]
        );
        // @STRENGTH sorts what is in the list so far, keeping the order of equals.
        assert_eq!(
            tls12("AES128:CHACHA20:@STRENGTH:AES256"),
            [
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384"
            ]
        );
        assert_eq!(
            tls12("ECDHE-RSA-AES128-GCM-SHA256,HIGH:@SECLEVEL=2")[0],
            "ECDHE-RSA-AES128-GCM-SHA256"
        );
    }

    #[test]
    fn tls13_suites_stay_on_unless_the_list_speaks_of_them() {
        let names = cipher_names("ECDHE-RSA-AES128-GCM-SHA256").unwrap();
        assert_eq!(names[..3], TLS13_ALL);
        assert_eq!(names[3..], ["ECDHE-RSA-AES128-GCM-SHA256"]);
        assert_eq!(
            cipher_names("TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-CHACHA20-POLY1305").unwrap(),
            [
                "TLS_CHACHA20_POLY1305_SHA256",
                "ECDHE-RSA-CHACHA20-POLY1305"
            ]
        );
        assert!(
            cipher_names("HIGH:!TLSv1.3")
                .unwrap()
                .iter()
                .all(|n| !n.starts_with("TLS_"))
        );
        assert_eq!(cipher_names("TLSv1.3").unwrap(), TLS13_ALL);
    }

    #[test]
    fn libtls_keywords() {
        let secure = cipher_names("secure").unwrap();
        assert_eq!(secure[..3], TLS13_ALL);
        assert_eq!(secure.len(), SUITES.len());
        assert_eq!(cipher_names("DEFAULT").unwrap().len(), SUITES.len());
        for k in ["default", "compat", "legacy", "insecure", "all", "SECURE"] {
            assert_eq!(cipher_names(k).unwrap().len(), SUITES.len(), "{k}");
        }
    }

    #[test]
    fn words_for_suites_never_offered_select_nothing() {
        // Lists written for OpenSSL keep working …
        assert_eq!(
            tls12("HIGH:!aNULL:!eNULL:!3DES:!RC4:!CAMELLIA:!kRSA:!DHE"),
            tls12("HIGH")
        );
        assert_eq!(tls12("DHE-RSA-AES256-SHA:AES128-SHA:HIGH"), tls12("HIGH"));
        // … but one that leaves nothing is refused.
        assert_eq!(select("RC4:3DES"), Err(CipherError::Empty));
        assert_eq!(select("TLS_AES_128_CCM_SHA256"), Err(CipherError::Empty));
        assert_eq!(select("ALL:!ALL"), Err(CipherError::Empty));
    }

    #[test]
    fn unknown_words_are_errors() {
        assert_eq!(select("HIGH:FOO"), Err(CipherError::Unknown("FOO".into())));
        assert_eq!(
            select("ECDHE+high"),
            Err(CipherError::Unknown("high".into()))
        );
        assert_eq!(select("HIGH:+"), Err(CipherError::Unknown(String::new())));
        assert_eq!(
            select("HIGH:@FAST"),
            Err(CipherError::Command("@FAST".into()))
        );
        let message = select("").unwrap_err().to_string();
        assert!(message.contains("TLS_AES_256_GCM_SHA384"), "{message}");
    }

    #[test]
    fn every_suite_is_implemented_by_the_provider() {
        let all = parse_ciphers("ALL").unwrap();
        assert_eq!(all.len(), SUITES.len());
        for (s, r) in SUITES.iter().zip(&all) {
            assert_eq!(s.id, r.suite());
        }
    }
}
