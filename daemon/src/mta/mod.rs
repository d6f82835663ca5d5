//! smtp-out: relaying mail to other servers.
//!
//! - [`resolver`]: the DNS seam (hickory-resolver, or a static table).
pub mod resolver;
