//! Placeholder until the breaker benches land.

fn main() {}
