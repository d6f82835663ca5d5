//! petrel-conformance: SMTP conformance cases, runners and reports.
//!
//! **One library of cases, three runners.** A [`case::Case`] names its RFC, section and
//! requirement level (MUST, SHOULD, MAY) and carries a small script of [`case::Step`]s written
//! against the [`transport::Transport`] seam: send bytes, read a reply with a timeout, let time
//! pass, upgrade to TLS. The same cases run
//!
//! - in memory, straight against the core server machine ([`memory::MemoryRunner`]), with a
//!   virtual clock, so the whole library runs inside `cargo test` in milliseconds;
//! - over TCP against any server ([`tcp::TcpRunner`]): Petrel, OpenSMTPD, Postfix;
//! - in the simulator: a turmoil runner implements [`transport::Runner`] with
//!   [`tcp::StreamTransport`] over a `turmoil::net::TcpStream` (the transport is generic over
//!   the stream, and under turmoil `tokio::time` is simulated, so cases that wait minutes run
//!   instantly).
//!
//! Results are judged the way the RFCs allow: a class of codes where the RFC gives a class,
//! exact codes only where one is mandated. Cases needing a feature the server does not offer
//! are skipped, never failed. [`report`] renders the results (Markdown, JSON, JUnit XML,
//! HTML); [`client`] grades SMTP *clients* with a scripted server (`petrel-conformance serve`);
//! [`sink`] is a server that answers 250 to everything, to prove that the suite has teeth.

pub mod case;
pub mod cases;
pub mod client;
pub mod filter_kit;
pub mod interp;
pub mod memory;
pub mod report;
pub mod sink;
pub mod suite;
pub mod tcp;
pub mod transport;
