//! smtp-out: relaying mail to other servers.
//!
//! The queue hands [`Mta::deliver`] a batch of messages for one destination with the relay
//! action's [`RelaySettings`]; it gets back one outcome per recipient. Underneath:
//!
//! - [`resolver`]: the DNS seam (hickory-resolver, or a static table of records);
//! - `petrel_core::relay` turns the answers into a connection plan (MX order, IPv6 first,
//!   smarthosts), and classifies failures;
//! - [`net`]: the TCP seam (connect timeout, source address);
//! - [`tls`]: the TLS seam, implemented with rustls in [`tls_client`];
//! - [`connection`]: one session machine driven over a stream, the handle a scheduler keeps
//!   to reuse a connection (idle, closed, send another message, quit);
//! - [`log`]: OpenSMTPD-style log lines.

pub mod connection;
pub mod deliver;
pub mod log;
pub mod net;
pub mod resolver;
pub mod tls;
pub mod tls_client;

pub use connection::{Connection, Delivery, OutgoingMessage, RcptOutcome};
pub use deliver::{Destination, Mta, MtaTimeouts, RelaySettings, TlsProfile};
pub use tls_client::RustlsUpgrade;
