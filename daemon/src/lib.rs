//! petrel-daemon: the production tokio shell around `petrel-core`.
//!
//! The shell owns sockets, clocks, files and processes; every protocol decision stays in the
//! core's machines. Modules:
//! - [`auth`]: AUTH credentials tables, password hashes, and the check behind `Request::Auth`.
//! - [`listener`]: binding listening sockets with a large backlog and the accept loop.
//! - [`smtp_in`]: drives one server session machine over a byte stream.
//! - [`config_file`]: reading the configuration file or the embedded default.
//! - [`clock`]: the wall clock handed to the machines as [`petrel_core::Time`].
//! - [`delivery`]: dispatching scheduled batches to local delivery or relaying.
//! - [`engine`]: the whole daemon assembled from its parts.
//! - [`filter`]: filter state kept by the daemon: the greylisting store.
//! - [`ids`]: session and message identifiers.
//! - [`inbound`]: the smtp-in session handler: routing, queueing, acknowledgement.
//! - [`queue`]: the durable queue store.
//! - [`routing`]: the rules and expansion over the daemon's lookups.
//! - [`service`]: the running daemon: listeners, sessions, shutdown.
//! - [`tables`]: `file:` and `proc:` tables, and reloading them at run time.
//! - [`tls`]: certificates, rustls configurations (server and client), and the plain-or-TLS
//!   stream that STARTTLS upgrades in place.
//! - [`mda`]: local delivery: maildir, mbox, LMTP, commands, as the recipient's user.
//! - [`platform`]: the seams the engine is assembled over (production or simulated).
//! - [`control`]: the control socket `petrelctl` talks to.
//! - [`mta`]: smtp-out: DNS, connection plans walked over TCP (and TLS), delivery outcomes.
//! - [`passwd_hash`]: password hashes for credentials tables (`encrypt`).
//! - [`spf`]: every network a domain's SPF record allows (`spf walk`).
//! - [`submit`]: local submission (`sendmail`): the enqueue socket's client and the offline
//!   queue.
//! - [`offline`]: the daemon taking messages from the offline queue.

pub mod auth;
pub mod child;
pub mod clock;
pub mod config_file;
pub mod control;
pub mod delivery;
pub mod engine;
pub mod filter;
pub mod ids;
pub mod inbound;
pub mod listener;
pub mod mda;
pub mod mta;
pub mod offline;
pub mod passwd_hash;
pub mod platform;
pub mod queue;
pub mod routing;
pub mod service;
pub mod smtp_in;
pub mod spf;
pub mod submit;
pub mod tables;
pub mod tls;
pub mod transcript;
