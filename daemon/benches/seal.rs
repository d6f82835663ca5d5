//! What `queue compression` and `queue encryption` cost per message: sealing a queue file as
//! the store writes it, and opening it as recovery and delivery read it. Run with
//! `cargo bench -p petrel-daemon --bench seal`; the figures are in `BENCHMARKS.md`.

use std::io::Write;

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use petrel_daemon::queue::Sealing;

fn main() {
    divan::main();
}

const KINDS: &[&str] = &["compressed", "encrypted", "both"];

fn sealing(kind: &str) -> Sealing {
    match kind {
        "compressed" => Sealing::compressed(),
        "encrypted" => Sealing::with_key(false, [7; 32]),
        _ => Sealing::with_key(true, [7; 32]),
    }
}

/// A mail-like message: headers, then base64-like lines (what attachments look like).
fn message(len: usize) -> Vec<u8> {
    let mut out = b"Received: from client.example.net\r\nFrom: alice@example.org\r\n\
        To: bob@example.net\r\nSubject: quarterly report\r\n\r\n"
        .to_vec();
    let mut x = 0x9e37_79b9_u32;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while out.len() < len {
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.push(alphabet[(x % 64) as usize]);
        }
        out.extend_from_slice(b"\r\n");
    }
    out.truncate(len);
    out
}

#[divan::bench(args = KINDS, consts = [1024, 65536, 1048576])]
fn seal<const N: usize>(bencher: Bencher, kind: &str) {
    let s = sealing(kind);
    let data = message(N);
    bencher.counter(BytesCount::new(N)).bench(|| {
        let mut w = s
            .writer("1234abcd/message", Vec::with_capacity(N + 512))
            .unwrap();
        w.write_all(black_box(&data)).unwrap();
        w.finish().unwrap()
    });
}

#[divan::bench(args = KINDS, consts = [1024, 65536, 1048576])]
fn open<const N: usize>(bencher: Bencher, kind: &str) {
    let s = sealing(kind);
    let sealed = s.seal("1234abcd/message", &message(N));
    bencher
        .counter(BytesCount::new(N))
        .bench(|| s.open("1234abcd/message", black_box(&sealed)).unwrap());
}
