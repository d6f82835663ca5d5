//! The `config` target: arbitrary text as `smtpd.conf`.

use crate::config::{self, Config, ParseOptions, SourceLoader};

/// The files an `include` in a fuzzed configuration can reach, by the end of the path written
/// in the directive (so `include "/etc/mail/tables.inc"` and the corpus's
/// `include "corpora/configs/include/tables.inc"` both work). They cover what an include can
/// bring: tables, a macro used back in the main file, certificates, a broken directive, an
/// include of an include, and an include cycle.
pub const INCLUDE_FILES: &[(&str, &str)] = &[
    (
        "tables.inc",
        "table aliases file:/etc/mail/aliases\ntable domains { example.org, example.net }\n",
    ),
    (
        "pki.inc",
        "mxname = \"mx.example.org\"\n\
         pki $mxname cert \"/etc/ssl/mx.example.org.crt\"\n\
         pki $mxname key  \"/etc/ssl/private/mx.example.org.key\"\n",
    ),
    (
        "broken.inc",
        "table aliases file:/etc/mail/aliases\naction \"local\" mbox alias <aliases> junk\n",
    ),
    (
        "nested.inc",
        "include \"tables.inc\"\naction \"local\" maildir alias <aliases>\n",
    ),
    ("cycle.inc", "include \"cycle.inc\"\n"),
];

/// Serves [`INCLUDE_FILES`].
struct FuzzIncludes;

impl SourceLoader for FuzzIncludes {
    fn load(&self, path: &str) -> Result<String, String> {
        INCLUDE_FILES
            .iter()
            .find(|(name, _)| path.ends_with(name))
            .map(|(_, text)| (*text).to_owned())
            .ok_or_else(|| "No such file or directory".to_owned())
    }
}

/// Parses the bytes (lossy UTF-8) as a configuration whose includes are [`INCLUDE_FILES`].
///
/// Properties: no panic; a configuration that parses prints a normal form that parses (with
/// no includes available: the normal form has them inlined) to the same configuration up to
/// spans, and prints the same normal form again; every error renders with a location.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let options = ParseOptions::with_loader(&FuzzIncludes);
    let parsed = match config::parse("fuzz.conf", &text, &options) {
        Ok(c) => c,
        Err(errors) => {
            // Rendering (with the source line and a caret) must not panic on any input.
            let rendered = errors.to_string();
            assert!(!rendered.is_empty(), "errors without words for {text:?}");
            return;
        }
    };
    let normal = parsed.to_string();
    let reparsed: Config = config::parse("normal form", &normal, &ParseOptions::default())
        .unwrap_or_else(|errors| {
            panic!("the normal form does not parse:\n{errors}\n--- normal form\n{normal}--- input\n{text}")
        });
    assert!(
        reparsed.without_spans() == parsed.without_spans(),
        "the normal form changes the meaning\n--- normal form\n{normal}--- input\n{text}\n\
         --- parsed\n{:#?}\n--- reparsed\n{:#?}",
        parsed.without_spans(),
        reparsed.without_spans()
    );
    let again = reparsed.to_string();
    assert_eq!(again, normal, "the normal form is not stable for {text:?}");
}
