//! Parsing benchmarks (filled in below).
fn main() {}
