//! Helpers shared by the `mta_*` tests: a loopback DNS server and scripted SMTP servers.
#![allow(dead_code)]

pub mod dns;
pub mod smtp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use petrel_core::relay::StaticRecords;
use petrel_core::session::client::{ClientTimeouts, Message};
use petrel_core::smtp::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};
use petrel_daemon::ids::IdGenerator;
use petrel_daemon::mta::resolver::StaticResolver;
use petrel_daemon::mta::{Mta, RelaySettings};

/// The content every test sends: a dot-stuffing case and a bare LF included.
pub const CONTENT: &[u8] =
    b"From: alice@src.test\r\nSubject: hello\r\n\r\nline one\r\n.starts with a dot\r\nlast\r\n";

/// A message from alice@src.test to these recipients.
pub fn message(rcpts: &[&str]) -> Message {
    Message {
        from: ReversePath::Mailbox(Mailbox::parse("alice@src.test", false).unwrap()),
        params: MailParams::default(),
        rcpts: rcpts
            .iter()
            .map(|r| {
                (
                    ForwardPath::Mailbox(Mailbox::parse(r, false).unwrap()),
                    RcptParams::default(),
                )
            })
            .collect(),
        content: Arc::from(CONTENT),
    }
}

/// An Mta over a static table, without TLS, with reproducible session ids.
pub fn mta(records: StaticRecords) -> Mta {
    let mut mta = Mta::new(Arc::new(StaticResolver::new(records)));
    mta.ids = Arc::new(IdGenerator::with_seed(1));
    mta
}

/// `dest.test` with one MX, `mx.dest.test`, at `addr`.
pub fn one_mx(addr: SocketAddr) -> StaticRecords {
    let mut t = StaticRecords::new();
    t.add_mx("dest.test", 10, "mx.dest.test")
        .add_addr("mx.dest.test", addr);
    t
}

/// MX delivery with short timeouts (tests must not wait minutes).
pub fn settings() -> RelaySettings {
    let mut s = RelaySettings::mx("petrel.test");
    let short = Duration::from_secs(5);
    s.timeouts.connect = short;
    s.timeouts.session = ClientTimeouts {
        greeting: short,
        command: short,
        mail: short,
        rcpt: short,
        data_init: short,
        data_end: short,
    };
    s
}
pub mod tls;
