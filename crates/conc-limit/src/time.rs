//! Instant arithmetic that never panics on caller input.

use std::time::{Duration, Instant};

/// How far ahead "never" is: about a century, safely representable as an
/// instant on every platform.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `at + wait`, or about a century after `at` if that cannot be
/// represented, or, for an `at` within a century of the last instant the
/// platform can represent, that last instant: never earlier than `at +
/// wait` would be unless it cannot be represented, and never `at` itself
/// when there is room after it.
pub(crate) fn saturating_add(at: Instant, wait: Duration) -> Instant {
    if let Some(later) = at.checked_add(wait).or_else(|| at.checked_add(FAR_FUTURE)) {
        return later;
    }
    latest_after(at, FAR_FUTURE)
}

/// The latest instant up to `limit` after `at` that can be represented, to
/// the nanosecond: each step size is tried once, halving after a miss
/// (cold: only instants within a century of the end of time come here).
#[cold]
fn latest_after(at: Instant, limit: Duration) -> Instant {
    let mut latest = at;
    let mut step = limit;
    while !step.is_zero() {
        match latest.checked_add(step) {
            Some(later) => latest = later,
            None => step /= 2,
        }
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_past_the_last_instant_ends_at_the_last_instant_not_now() {
        let now = Instant::now();
        let last = latest_after(now, Duration::MAX);
        assert!(last.checked_add(Duration::from_nanos(1)).is_none(), "the search reaches the last instant");
        let near_the_end = last - Duration::from_secs(10);
        assert_eq!(saturating_add(near_the_end, Duration::from_secs(1)), near_the_end + Duration::from_secs(1));
        assert_eq!(saturating_add(near_the_end, Duration::MAX), last);
        assert_eq!(saturating_add(last, Duration::from_secs(1)), last, "nothing is left after the last instant");
    }
}
