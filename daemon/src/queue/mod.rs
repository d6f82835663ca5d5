//! The queue: durable storage of messages and envelopes (the scheduler and delivery build on
//! it).

pub mod fs;
pub mod scheduler;
pub mod seal;
pub mod store;

pub use fs::{Blocking, Fs, FsFile, Inline, RealFs, TokioBlocking};
pub use seal::{SealError, Sealing};
pub use store::{Incoming, Recovered, Store, StoreError};
