//! Properties of the server machine over generated input: built from SMTP fragments (so that it
//! reaches deep states), split anywhere, it never panics, only writes well-formed replies, and
//! writes the same bytes however the input is split.
#[path = "server_util.rs"]
mod util;

use petrel_core::session::Decision;
use petrel_core::session::harness::{Policy, ServerHarness};
use petrel_core::session::server::{AuthPolicy, Request, ServerConfig, TlsPolicy};
use petrel_core::smtp::{BareNewline, ReplyParser};
use proptest::prelude::*;
use util::{b64, plain, refuse};

const FRAGMENTS: &[&str] = &[
    "EHLO client.example\r\n",
    "HELO client.example\r\n",
    "MAIL FROM:<a@example.org>\r\n",
    "MAIL FROM:<> SIZE=10 BODY=8BITMIME\r\n",
    "MAIL FROM:<jö@example.org> SMTPUTF8\r\n",
    "RCPT TO:<b@example.org>\r\n",
    "RCPT TO:<refuse@example.org>\r\n",
    "RCPT TO:<postmaster> NOTIFY=NEVER\r\n",
    "DATA\r\n",
    "BDAT 3\r\n",
    "BDAT 0 LAST\r\n",
    "BDAT 2 LAST\r\n",
    "RSET\r\n",
    "NOOP\r\n",
    "VRFY x\r\n",
    "HELP\r\n",
    "QUIT\r\n",
    "STARTTLS\r\n",
    "AUTH PLAIN\r\n",
    "AUTH LOGIN\r\n",
    "*\r\n",
    "=\r\n",
    ".\r\n",
    "..\r\n",
    "text line\r\n",
    "\r\n",
    "\n",
    "\r",
    ".",
    "\n.\n",
    "\r\n.\r\n",
    "x",
    "FOO\r\n",
    "\u{0}\u{ff}",
];

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
        1 => Just(format!("AUTH PLAIN {}\r\n", plain("", "alice", "secret")).into_bytes()),
        1 => Just(format!("{}\r\n", b64("alice")).into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
}

fn configs() -> impl Strategy<Value = ServerConfig> {
    (any::<bool>(), any::<bool>(), any::<bool>(), 0usize..3).prop_map(
        |(normalize, pipelining, auth_plaintext, tls)| ServerConfig {
            bare_newline: if normalize {
                BareNewline::Normalize
            } else {
                BareNewline::Reject
            },
            pipelining,
            auth: AuthPolicy::Optional,
            auth_plaintext,
            tls: [TlsPolicy::Off, TlsPolicy::Offer, TlsPolicy::Require][tls],
            max_message_size: 64,
            max_recipients: 3,
            max_errors: 30,
            ..ServerConfig::default()
        },
    )
}

fn policy() -> Policy {
    Box::new(|r| match r {
        Request::Rcpt { to, .. } if to.to_string() == "<refuse@example.org>" => {
            refuse(550, (5, 1, 1), "No")
        }
        _ => Decision::Accept,
    })
}

/// Runs `pieces` through a harness, completing TLS handshakes as they are asked for.
fn run(config: &ServerConfig, pieces: &[&[u8]]) -> (Vec<u8>, ServerHarness) {
    let mut h = ServerHarness::new(config.clone(), policy());
    let mut out = h.greeting.clone();
    for piece in pieces {
        out.extend(h.send(piece));
        if h.tls_requested {
            out.extend(h.complete_tls());
        }
    }
    (out, h)
}

/// Checks that `out` is a sequence of complete, well-formed replies.
fn well_formed(out: &[u8]) -> Result<(), TestCaseError> {
    let mut parser = ReplyParser::new();
    let mut rest = out;
    while !rest.is_empty() {
        let (reply, used) = parser
            .feed(rest)
            .map_err(|e| TestCaseError::fail(format!("malformed reply: {e}")))?;
        prop_assert!(reply.is_some(), "incomplete reply at the end: {rest:?}");
        rest = &rest[used..];
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_input_gives_well_formed_replies_independent_of_splitting(
        config in configs(),
        input in input(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let (whole, h) = run(&config, &[&input]);
        well_formed(&whole)?;
        // Split the input at the chosen points. A split may only differ from the whole where
        // the timing of reads matters by design: plaintext in the same read as STARTTLS is
        // discarded, and so is a session that sends past the end of data without PIPELINING.
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces = Vec::new();
        let mut start = 0;
        for p in points {
            pieces.push(&input[start..p]);
            start = p;
        }
        pieces.push(&input[start..]);
        let (split, h2) = run(&config, &pieces);
        well_formed(&split)?;
        if !contains(&input, b"STARTTLS") && !unsynchronized(&whole) && !unsynchronized(&split) {
            prop_assert_eq!(String::from_utf8_lossy(&split), String::from_utf8_lossy(&whole));
            prop_assert_eq!(h2.stored, h.stored);
        }
    }

    #[test]
    fn byte_at_a_time_equals_whole(config in configs(), input in input()) {
        let (whole, h) = run(&config, &[&input]);
        if contains(&input, b"STARTTLS") || unsynchronized(&whole) {
            // Timing-dependent by design; see the test above.
            return Ok(());
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let (split, h2) = run(&config, &bytes);
        prop_assert_eq!(String::from_utf8_lossy(&split), String::from_utf8_lossy(&whole));
        prop_assert_eq!(h2.stored, h.stored);
        prop_assert_eq!(h2.aborted, h.aborted);
    }

    #[test]
    fn stored_content_never_holds_a_bare_line_ending(config in configs(), input in input()) {
        let (_, h) = run(&config, &[&input]);
        for stored in &h.stored {
            // BDAT content is binary and taken as is; DATA content always has CRLF.
            let via_bdat = h.transcript().contains("BDAT");
            if !via_bdat {
                let c = &stored.content;
                for (i, &b) in c.iter().enumerate() {
                    if b == b'\n' {
                        prop_assert!(i > 0 && c[i - 1] == b'\r', "bare LF in {c:?}");
                    }
                    if b == b'\r' {
                        prop_assert!(c.get(i + 1) == Some(&b'\n'), "bare CR in {c:?}");
                    }
                }
            }
        }
    }
}

/// The session was ended for sending past the end of data without PIPELINING.
fn unsynchronized(out: &[u8]) -> bool {
    contains(out, b"421 4.5.0")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
