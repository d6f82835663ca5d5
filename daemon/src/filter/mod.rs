//! Filters in the daemon: the processes behind `proc-exec` filters, each session's chain, the
//! JSON event log, and the state the core's filter decisions need kept across sessions and
//! restarts (the greylist).

pub mod event_log;
pub mod greylist;
pub mod outbound;
pub mod process;
pub mod session;
pub mod set;
