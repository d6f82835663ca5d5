//! petrel-sim: deterministic simulation of networks of Petrel MTAs.
