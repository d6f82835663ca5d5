//! Replays `corpora/fuzz/command_diff/` through the differential comparison of Petrel's command
//! parser with smtp-proto's (`support/command_diff.rs`, shared with the fuzz target), and
//! checks the comparison itself: lines both parsers read alike agree, and each known
//! disagreement is recognised as such, with the reason that Petrel is right.

#[path = "support/command_diff.rs"]
mod command_diff;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use command_diff::{Reason, Verdict, compare_line};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/fuzz/command_diff");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), fs::read(&p).unwrap()))
        .collect()
}

/// Every line of every corpus file agrees or differs in a known way.
#[test]
fn command_diff_corpus() {
    let corpus = corpus();
    assert!(corpus.len() >= 10, "the command_diff corpus is too small");
    let mut failures = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (name, data) in &corpus {
        for line in data.split(|&b| b == b'\n') {
            match compare_line(line) {
                Verdict::Agree => {}
                Verdict::Allowed(r) => *reasons.entry(format!("{r:?}")).or_default() += 1,
                Verdict::Disagree(why) => {
                    failures.push(format!(
                        "{name}: {:?}: {why}",
                        String::from_utf8_lossy(line)
                    ));
                }
            }
        }
    }
    eprintln!("known disagreements in the corpus: {reasons:?}");
    assert!(
        failures.is_empty(),
        "{} unexplained disagreements (replay with: cargo fuzz run -s none command_diff FILE):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[track_caller]
fn agree(line: &str) {
    assert_eq!(compare_line(line.as_bytes()), Verdict::Agree, "{line:?}");
}

#[track_caller]
fn allowed(line: &str, reason: Reason) {
    assert_eq!(
        compare_line(line.as_bytes()),
        Verdict::Allowed(reason),
        "{line:?}"
    );
}

#[test]
fn ordinary_commands_agree() {
    for line in [
        "EHLO mail.example.org",
        "HELO mail.example.org",
        "MAIL FROM:<alice@example.org> SIZE=1000 BODY=8BITMIME",
        "MAIL FROM:<> RET=HDRS ENVID=QQ314159",
        "MAIL FROM:<a@example.org> AUTH=<>",
        "MAIL FROM:<a@example.org> AUTH=alice+2Badmin@example.org",
        "mail from:<bounce+x@example.org> SMTPUTF8",
        "RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.net",
        "RCPT TO:<postmaster>",
        "RCPT TO:<@relay.example:carol@example.com>",
        "DATA",
        "BDAT 1000 LAST",
        "BDAT 0",
        // Refused by Petrel once (fixed): leading zeros in a chunk size, a NOTIFY element
        // named twice, leading zeros in an IPv4 address literal.
        "BDAT 00000000000000000000001 LAST",
        "RCPT TO:<bob@example.net> NOTIFY=SUCCESS,SUCCESS",
        "EHLO [096.0.2.1]",
        "RSET",
        "NOOP",
        "QUIT",
        "STARTTLS",
        "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
        "AUTH LOGIN",
        "VRFY alice",
        "HELP",
        // Both refuse.
        "GET / HTTP/1.1",
        "MAIL FROM alice@example.org",
        "MAIL FROM:<\"a b\"@example.org>",
    ] {
        agree(line);
    }
}

#[test]
fn known_disagreements_are_recognised() {
    use Reason::*;
    allowed("LHLO client.example", ExtensionVerb);
    allowed("ETRN example.org", ExtensionVerb);
    allowed(" QUIT", VerbSyntax);
    allowed("QUIT\tnow", VerbSyntax);
    allowed("DATA now", ArgumentsNotAllowed);
    allowed("RSET x", ArgumentsNotAllowed);
    allowed("EHLO -not-a-domain-", HeloSyntax);
    allowed("MAIL FROM:<a.@example.org>", PathSyntax);
    allowed("RCPT TO:<bob@>", PathSyntax);
    allowed("RCPT TO:<bob@[192.0.2.1]>", PathSyntax);
    allowed("RCPT TO:<>", PathSyntax);
    allowed("RCPT TO:<carol@e\"\">", PathSyntax);
    allowed("MAIL FROM:<alice@example.org>\tSIZE=10", PathSyntax);
    allowed("MAIL FROM:<@a@b,c:user@example.org>", PathSyntax);
    allowed(
        "RCPT TO:<@relay.example:@c@b,c:user@example.org>",
        PathSyntax,
    );
    allowed(
        &format!("MAIL FROM:<a@example.org> AUTH={}", "x".repeat(300)),
        XtextLength,
    );
    allowed("MAIL FROM:<dörte@example.org>", Utf8WithoutSmtputf8);
    allowed(
        "MAIL FROM:<a@example.org> REQUIRETLS",
        UnimplementedParameter,
    );
    allowed("MAIL FROM:<a@example.org> SIZE=1 SIZE=2", ParameterTwice);
    allowed(
        "MAIL FROM:<a@example.org> BODY=8BITMIME BODY=7BIT",
        ParameterTwice,
    );
    allowed("MAIL FROM:<a@example.org> ENVID=a+zz", ParameterSyntax);
    allowed(
        "RCPT TO:<a@example.org> NOTIFY=NEVER,SUCCESS",
        ParameterSyntax,
    );
    allowed("EHLO example.org extra", HeloSyntax);
    allowed("EHLO bücher.example", HeloSyntax);
    allowed("MAIL FROM :<a@example.org>", PathSyntax);
    allowed(
        "MAIL FROM:<a@example.org> SIZE=99999999999999999999",
        HugeNumber,
    );
    allowed("AUTH ABCDEFGHIJKLMNOPQRSTU", AuthMechanism);
    allowed("AUTH PL.AIN", AuthMechanism);
    allowed("AUTH PLAIN a b", AuthMechanism);
    allowed("BDAT 7 :x", BdatSyntax);
    allowed(&format!("VRFY {}", "a".repeat(300)), VrfyArgument);
    allowed("MAIL FROM:<a@example.org> ENVID=caf+C3+A9", XtextNonAscii);
    allowed(
        "RCPT TO:<a@example.org> ORCPT=utf-8;a@example.org",
        OrcptAddrType,
    );
}

/// Known disagreements pass; an unexplained one fails, naming the line.
#[test]
fn only_unexplained_differences_fail() {
    command_diff::command_diff(
        b"NOOP\r\nMAIL FROM:<a@example.org> SIZE=1 SIZE=2\r\nRCPT TO:<bob@[192.0.2.1]>\r\n",
    );
    let result = std::panic::catch_unwind(|| {
        command_diff::assert_explained(b"XYZZY", &Verdict::Disagree("they differ".into()));
    });
    let panic = result.expect_err("a disagreement must fail");
    let msg = panic.downcast_ref::<String>().unwrap();
    assert_eq!(msg, "\"XYZZY\": they differ");
}

/// Prints every unexplained disagreement of a directory of inputs (for triage):
/// `PETREL_DIFF_DIR=DIR cargo test -p petrel-core --test command_diff -- --ignored --nocapture`
/// (with `PETREL_DIFF_ALL=1`, the verdict of every line).
#[test]
#[ignore = "triage tool"]
fn triage_directory() {
    let Some(dir) = std::env::var_os("PETREL_DIFF_DIR") else {
        return;
    };
    // PETREL_DIFF_ALL=1 prints every line's verdict, not only the unexplained ones.
    let all = std::env::var_os("PETREL_DIFF_ALL").is_some_and(|v| v == "1");
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let data = fs::read(entry.unwrap().path()).unwrap();
        for line in data.split(|&b| b == b'\n') {
            match compare_line(line) {
                Verdict::Disagree(why) => {
                    let key: String = why.chars().take(40).collect();
                    seen.entry(key)
                        .or_insert_with(|| format!("{:?}: {why}", String::from_utf8_lossy(line)));
                }
                other if all => println!("{:?}: {other:?}", String::from_utf8_lossy(line)),
                _ => {}
            }
        }
    }
    for v in seen.values() {
        println!("{v}");
    }
}
