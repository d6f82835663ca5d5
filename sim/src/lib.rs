//! petrel-sim: deterministic simulation of networks of Petrel MTAs.
//!
//! The daemon's own engine — sessions, queue, scheduler, delivery — runs on turmoil hosts
//! through the daemon's [`Platform`](petrel_daemon::platform::Platform) seam, with simulated
//! time ([`clock`]), a simulated DNS ([`dns`]) and a simulated disk that loses unsynced writes
//! when a host crashes ([`disk`]). Around the Petrel hosts, independently written remote MX
//! hosts and clients ([`peers`]) script the world; faults (partitions, crashes, clock jumps,
//! DNS failures) are applied at times drawn from the seed ([`world`]). Every run is judged by
//! the [`invariants`]. [`scenarios`] holds the families of worlds, [`sweep`] runs many seeds.
//!
//! The same seed gives the same run, byte for byte.

pub mod clock;
pub mod conformance;
pub mod disk;
pub mod dns;
pub mod filter;
pub mod invariants;
pub mod peers;
pub mod platform;
pub mod record;
pub mod replay;
pub mod rng;
pub mod scenarios;
pub mod sweep;
pub mod world;
