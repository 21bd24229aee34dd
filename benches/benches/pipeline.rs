//! Placeholder until the pipeline benches land.

fn main() {}
