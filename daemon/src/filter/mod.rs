//! Filters in the daemon: the state the core's filter decisions need kept across sessions and
//! restarts.

pub mod greylist;
