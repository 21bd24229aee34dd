//! `Clock` is sealed: only conc's own clocks implement it.

use std::time::Instant;

use conc_core::Clock;

#[derive(Debug)]
struct FrozenClock(Instant);

impl Clock for FrozenClock {
    fn now(&self) -> Instant {
        self.0
    }

    fn epoch(&self) -> Instant {
        self.0
    }

    fn now_nanos(&self) -> u64 {
        0
    }
}

fn main() {}
