//! Relaying: from DNS answers and the relay action's settings to an ordered connection plan,
//! and what to tell the recipients when the plan cannot be made or every target fails.
//!
//! Like the rest of the core this does no I/O: the shell asks its resolver, passes the typed
//! answers in ([`dns`]), and walks the resulting [`Plan`] with real connections. The shell
//! also passes the seed that orders equal MX preferences, so one seed always gives one plan.
//!
//! The steps, for MX delivery:
//! 1. [`mx_hops`] turns the MX answer into mail exchangers by preference (implicit MX, null
//!    MX, our own names, backup MX);
//! 2. the shell looks up each hop's addresses (AAAA and A);
//! 3. [`build_plan`] orders the addresses (IPv6 before IPv4 within a host) into [`Target`]s.
//!
//! For a smarthost, [`smarthost_hops`] replaces step 1 (the URL's scheme decides port, TLS and
//! protocol); an address-literal destination is a single [`literal_hop`]. While walking the
//! plan, [`Attempts`] records the failures that move on to the next target and gives the
//! temporary outcome when all of them failed; a [`PlanError`] gives the outcome when there
//! was nothing to walk. [`StaticRecords`] is the static table of records a shell can serve
//! instead of DNS.

pub mod dns;
pub mod failure;
pub mod hop;
pub mod mx;
pub mod plan;
pub mod records;
mod shuffle;
pub mod smarthost;

pub use dns::{DnsError, HostAddresses, MxRecord, normalize_name};
pub use failure::{AttemptError, Attempts, FailedAttempt};
pub use hop::{Hop, HopKind, TlsMode, TlsPolicy};
pub use mx::{BackupMx, MxOptions, SMTP_PORT, mx_hops};
pub use plan::{Plan, PlanError, Target, build_plan, literal_hop};
pub use records::{RecordError, StaticRecords};
pub use smarthost::{smarthost_hops, smarthost_tls};
