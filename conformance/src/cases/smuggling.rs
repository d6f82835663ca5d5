//! SMTP smuggling (SEC Consult, December 2023; CVE-2023-51764/51765/51766): a message whose
//! content holds a non-standard end-of-data sequence followed by SMTP commands. A server that
//! takes the sequence for the end of data runs the commands that follow: a second,
//! "smuggled" message with a forged sender.
//!
//! RFC 5321 section 4.1.1.4: only `<CRLF>.<CRLF>` ends the data, and `<LF>.<LF>` MUST NOT be
//! treated as equivalent; section 2.3.8: no other sequence is a line terminator. Each variant
//! is sent in one write and, separately, with the sequence at the end of one TCP write and the
//! smuggled commands in the next (an attacker relaying through a server that flushes there).
//! In one write, the server passes when it never answers the smuggled DATA with 354 and never
//! gives two positive replies: it kept the sequence as content (then `<CRLF>.<CRLF>` at the
//! end ends one message), refused the message, or refused the session. Split over two writes,
//! it must also stay silent after the first: any reply there means it took the look-alike for
//! the end of data, even if something else (a refusal of pipelined input) then stops the
//! smuggled commands.

use std::time::Duration;

use petrel_core::smtp::Reply;

use crate::case::{Case, Expect, Feature, Group, Level, Step, Verdict};
use crate::interp::{Ctx, show};

/// The end-of-data look-alikes: (slug, bytes, how it reads).
pub const VARIANTS: &[(&str, &[u8], &str)] = &[
    ("lf-dot-lf", b"\n.\n", "<LF>.<LF>"),
    ("lf-dot-crlf", b"\n.\r\n", "<LF>.<CR><LF>"),
    ("crlf-dot-lf", b"\r\n.\n", "<CR><LF>.<LF>"),
    ("cr-dot-cr", b"\r.\r", "<CR>.<CR>"),
    ("crlf-dot-cr", b"\r\n.\r", "<CR><LF>.<CR>"),
    ("cr-dot-crlf", b"\r.\r\n", "<CR>.<CR><LF>"),
    ("cr-dot-lf", b"\r.\n", "<CR>.<LF>"),
    ("lf-dot-cr", b"\n.\r", "<LF>.<CR>"),
];

/// Variants with a NUL next to the dot (servers that drop NULs).
pub const NUL_VARIANTS: &[(&str, &[u8], &str)] = &[
    (
        "crlf-nul-dot-crlf",
        b"\r\n\x00.\r\n",
        "<CR><LF><NUL>.<CR><LF>",
    ),
    (
        "crlf-dot-nul-crlf",
        b"\r\n.\x00\r\n",
        "<CR><LF>.<NUL><CR><LF>",
    ),
];

const HEAD: &[u8] =
    b"From: <{from}>\r\nTo: <{rcpt}>\r\nSubject: smuggling test\r\n\r\nthe first message";

/// The commands smuggled after the fake end of data; the real `<CRLF>.<CRLF>` comes last.
const SMUGGLED: &[u8] = b"MAIL FROM:<smuggled@conformance.example>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\nFrom: <smuggled@conformance.example>\r\nSubject: smuggled\r\n\r\nthe smuggled message\r\n.\r\n";

/// Passes unless the replies show that a second transaction ran.
fn not_smuggled(replies: &[Reply], _closed: bool, _: &Ctx) -> Verdict {
    let positive = replies.iter().filter(|r| r.is_positive()).count();
    let smuggled_data = replies.iter().any(|r| r.code == 354);
    if smuggled_data || positive >= 2 {
        return Verdict::fail(format!(
            "the look-alike ended the data and the following commands ran (replies: {})",
            replies.iter().map(show).collect::<Vec<_>>().join(" | ")
        ));
    }
    if replies.is_empty() {
        return Verdict::fail("no reply after the end of data");
    }
    Verdict::Pass
}

fn refused(replies: &[Reply], _closed: bool, _: &Ctx) -> Verdict {
    match replies.first() {
        Some(r) if r.code >= 400 => Verdict::Pass,
        Some(r) => Verdict::fail(format!(
            "a message whose lines end in bare LF was accepted: `{}`",
            show(r)
        )),
        None => Verdict::fail("no reply after the end of data"),
    }
}

fn refused_or_closed(replies: &[Reply], closed: bool, _: &Ctx) -> Verdict {
    match replies.first() {
        Some(r) if r.code == 250 => Verdict::fail(format!(
            "the message was accepted although commands followed its end of data unasked: `{}`",
            show(r)
        )),
        Some(_) => Verdict::Pass,
        None if closed => Verdict::Pass,
        None => Verdict::fail("no reply after the end of data"),
    }
}

fn smuggling_case(slug: &str, seq: &[u8], shown: &str, split: bool) -> Case {
    let id = if split {
        format!("smuggling.{slug}.split")
    } else {
        format!("smuggling.{slug}")
    };
    let title = if split {
        format!(
            "`{shown}` inside a message does not end the data (nothing is answered before the real end)"
        )
    } else {
        format!(
            "`{shown}` followed by SMTP commands in the same write does not start a smuggled transaction"
        )
    };
    let case = Case::new(&id, 5321, "4.1.1.4", Level::Must, Group::Smuggling, &title)
        .ehlo()
        .transaction()
        .cmd("DATA", Expect::code(354));
    let mut first = HEAD.to_vec();
    first.extend_from_slice(seq);
    if split {
        case.send(&first)
            .step(Step::Wait(Duration::from_millis(300)))
            .step(Step::ExpectSilence(Some(format!(
                "the server answered before the real end of data: it took `{shown}` for the end of data"
            ))))
            .send(SMUGGLED)
            .step(Step::Collect(not_smuggled))
    } else {
        first.extend_from_slice(SMUGGLED);
        case.send(&first).step(Step::Collect(not_smuggled))
    }
}

/// The smuggling cases.
#[must_use]
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (slug, seq, shown) in VARIANTS {
        v.push(smuggling_case(slug, seq, shown, false));
        v.push(smuggling_case(slug, seq, shown, true));
    }
    for (slug, seq, shown) in NUL_VARIANTS {
        v.push(smuggling_case(slug, seq, shown, false));
    }
    v.push(
        Case::new(
            "rfc5321.4.1.1.4.bare-lf-line-endings",
            5321,
            "4.1.1.4",
            Level::Must,
            Group::Smuggling,
            "A message whose lines end in bare LF is not accepted as if they were CRLF",
        )
        .ehlo()
        .transaction()
        .cmd("DATA", Expect::code(354))
        .send(b"Subject: bare LF\n\nline one\nline two\r\n.\r\n")
        .step(Step::Collect(refused)),
    );
    v.push(
        Case::new(
            "smuggling.unannounced-pipelining-after-data",
            2920,
            "3.1",
            Level::May,
            Group::Smuggling,
            "Without PIPELINING, commands sent right behind the end of data make the server refuse the message",
        )
        .requires(Feature::NoExt("PIPELINING"))
        .ehlo()
        .transaction()
        .cmd("DATA", Expect::code(354))
        .send(b"Subject: unsynchronised\r\n\r\nbody\r\n.\r\nMAIL FROM:<smuggled@conformance.example>\r\n")
        .step(Step::Collect(refused_or_closed)),
    );
    v
}
