//! # petrel-core
//!
//! The protocol core of the Petrel mail transfer agent. Everything in this crate is
//! **sans-IO**: it performs no networking, reads no files, never reads a clock and draws no
//! random numbers. Machines take bytes, time values and answers in, and give bytes and events
//! out; the production daemon (`petrel-daemon`), the deterministic simulator (`petrel-sim`),
//! the conformance runners and the fuzzers all drive the very same code.
//!
//! Modules:
//! - [`smtp`]: the SMTP grammar — commands, paths, ESMTP parameters, replies, line framing and
//!   dot-stuffing codecs.
//! - [`session`]: the server (smtp-in) and client (smtp-out) session state machines.
//! - [`config`]: the `smtpd.conf` lexer and parser, producing a typed configuration with spans.
//! - [`expand`]: `%{…}` format specifiers in delivery paths and commands, with sanitising.
//! - [`filter`]: the filter and report protocol, filter chains, builtin filters, greylisting.
//! - [`queue`]: retry schedule, delivery status notifications, dates.
//! - [`rules`]: tables, alias values and match rules.
//! - [`relay`]: MX and smarthost connection plans, and the failures of relaying.
//! - [`srs`]: Sender Rewriting Scheme encoding and decoding.
//! - [`time`]: the [`Time`] value every machine is driven with.
//! - [`bugs`]: deliberate bugs the simulator's tests switch on (feature `sim-bugs` only).
#![forbid(unsafe_code)]

pub mod bugs;
pub mod config;
pub mod expand;
pub mod filter;
pub mod fuzzing;
pub mod queue;
pub mod relay;
pub mod rules;
pub mod session;
pub mod smtp;
pub mod srs;
pub mod time;

pub use time::Time;
