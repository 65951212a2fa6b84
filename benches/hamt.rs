//! Benchmarks of the persistent map: none in this branch yet.

fn main() {}
