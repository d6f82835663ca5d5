//! Session machines.
