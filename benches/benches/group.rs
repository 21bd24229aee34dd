//! Placeholder until the group benches land.

fn main() {}
