//! Placeholder until the pool benches land.

fn main() {}
