//! The seam between the cases and the server under test.
//!
//! A [`Transport`] is one connection to the server: send bytes, read one reply (with a
//! timeout), let time pass, upgrade to TLS. The in-memory runner implements it around the core
//! server machine with a virtual clock; the TCP runner around a tokio stream; a simulator
//! runner would implement it over a turmoil stream (see [`StreamTransport`], which is generic
//! over the stream). A [`Runner`] makes one fresh connection per case.
//!
//! The methods return futures but carry no `Send` bound: runners execute cases on one task
//! (the in-memory runner without any executor at all, see [`block_on_ready`]).

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use petrel_core::smtp::{Reply, ReplyParser};

pub use crate::tcp::StreamTransport;

/// What reading a reply produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// A complete reply, with the bytes it was made of.
    Reply(Reply, Vec<u8>),
    /// The server closed the connection (nothing more will come).
    Closed,
    /// Nothing complete arrived within the timeout.
    Timeout,
    /// The server sent something that is not a reply; the text says what.
    Malformed(String),
}

/// One connection to the server under test.
pub trait Transport {
    /// Writes `bytes` at once. An error means the connection is gone.
    fn send(&mut self, bytes: &[u8]) -> impl Future<Output = io::Result<()>>;

    /// Reads the next complete reply, waiting at most `timeout`.
    fn read_reply(&mut self, timeout: Duration) -> impl Future<Output = Read>;

    /// Lets `d` pass: a virtual clock jumps, a real one is slept on.
    fn wait(&mut self, d: Duration) -> impl Future<Output = ()>;

    /// Runs the client side of a TLS handshake (after the server's 220 to STARTTLS). Fails if
    /// the server sent anything in plaintext after that 220, or the handshake fails.
    fn start_tls(&mut self) -> impl Future<Output = Result<(), String>>;

    /// True when [`wait`](Self::wait) costs no real time, so cases that wait minutes can run.
    fn virtual_time(&self) -> bool;

    /// The content of the last message the server stored, when the runner can see it.
    fn last_stored(&self) -> Option<Vec<u8>> {
        None
    }
}

/// Makes connections to one server.
pub trait Runner {
    /// The connections it makes.
    type Transport: Transport;

    /// Connects; the server's greeting is read by the caller.
    fn connect(&self) -> impl Future<Output = Result<Self::Transport, String>>;

    /// What the server is, for reports: its name and address.
    fn target(&self) -> Target;

    /// Whether [`Transport::start_tls`] can work at all.
    fn can_tls(&self) -> bool;

    /// How long to wait for a reply before giving up on it.
    fn reply_timeout(&self) -> Duration;

    /// How long a server must stay silent for [`crate::case::Step::ExpectSilence`].
    fn silence(&self) -> Duration;
}

/// The server under test, as reports name it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// A short name (`petrel`, `postfix`).
    pub name: String,
    /// Where it was reached (`127.0.0.1:25`, `memory`).
    pub address: String,
    /// The runner that reached it (`memory`, `tcp`, `tcp+tls`).
    pub runner: String,
}

/// Parses replies out of a byte buffer that fills up as bytes arrive.
#[derive(Debug, Default)]
pub struct ReplyBuffer {
    buf: Vec<u8>,
}

impl ReplyBuffer {
    /// An empty buffer.
    #[must_use]
    pub fn new() -> ReplyBuffer {
        ReplyBuffer::default()
    }

    /// Appends bytes received.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// True when nothing is buffered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes buffered.
    #[must_use]
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Takes one complete reply off the front, if there is one. `Err` when the bytes are not a
    /// reply (they are then dropped).
    pub fn take(&mut self) -> Result<Option<(Reply, Vec<u8>)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut parser = ReplyParser::new();
        match parser.feed(&self.buf) {
            Ok((Some(reply), used)) => {
                let raw: Vec<u8> = self.buf.drain(..used).collect();
                Ok(Some((reply, raw)))
            }
            Ok((None, _)) => Ok(None),
            Err(e) => {
                let shown = crate::interp::escape(&self.buf, 200);
                self.buf.clear();
                Err(format!("{e}: {shown}"))
            }
        }
    }
}

/// Runs a future that never waits (the in-memory runner's), without an executor.
///
/// # Panics
/// If the future is not ready at its first poll: it was waiting on real I/O.
pub fn block_on_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("block_on_ready: the future waited on real I/O"),
    }
}
