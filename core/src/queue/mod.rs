//! The queue's pure logic: retry schedule, delivery status notifications, dates.
//!
//! Storage lives in the shell; this module decides what to store and when to try again.

pub mod date;
pub mod dsn;
pub mod envelope;
pub mod received;
pub mod schedule;

pub use dsn::{Dsn, DsnKind, DsnRecipient};
pub use envelope::{Envelope, EnvelopeError, EnvelopeId, MsgId, Origin};
pub use received::{HopCounter, MAX_HOPS, ReceivedInfo};
pub use schedule::RetryPolicy;
