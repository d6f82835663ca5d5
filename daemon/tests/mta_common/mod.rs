//! Helpers shared by the `mta_*` tests: a loopback DNS server and scripted SMTP servers.
#![allow(dead_code)]

pub mod dns;
