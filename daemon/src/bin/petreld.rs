//! petreld: the Petrel mail transfer agent daemon.
fn main() {}
