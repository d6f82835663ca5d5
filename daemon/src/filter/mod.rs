//! Filters in the daemon: the processes behind `proc-exec` filters, and the state the core's
//! filter decisions need kept across sessions and restarts.

pub mod greylist;
pub mod process;
