//! The meaning of resilience4j's sliding-window rules (its CircuitBreaker
//! documentation and `CircuitBreakerStateMachineTest`,
//! `FixedSizeSlidingWindowMetricsTest`, `SlidingTimeWindowMetricsTest`):
//! a rate is judged only once the window holds the minimum number of
//! calls; the breaker opens when the failure rate or the slow-call rate is
//! equal to or above its threshold; count windows keep the last N calls,
//! time windows the last N seconds in one-second buckets; half-open cannot
//! last longer than its maximum wait.

use std::time::Duration;

use conc_breaker::{Breaker, BreakerBuilder, Rejected, State};
use conc_core::{Clock, ManualClock};

const SEC: Duration = Duration::from_secs(1);

fn manual(builder: BreakerBuilder) -> (Breaker, ManualClock) {
    let clock = ManualClock::new();
    (builder.clock(clock.clone()).build().unwrap(), clock)
}

fn record(breaker: &Breaker, failed: bool) {
    breaker.try_acquire().expect("admitted").record(failed);
}

/// "If minimumNumberOfCalls is 10, then at least 10 calls must be recorded
/// before the failure rate can be calculated. If only 9 calls have been
/// evaluated the CircuitBreaker will not trip open even if all 9 calls
/// have failed."
#[test]
fn no_rate_before_the_minimum_number_of_calls() {
    let (breaker, _) = manual(Breaker::builder().failure_rate(50.0, 10).count_window(10));
    for _ in 0..9 {
        record(&breaker, true);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().failure_rate, None);
    record(&breaker, true);
    assert_eq!(breaker.state(), State::Open);
}

/// Opens at a failure rate equal to the threshold, not below it.
#[test]
fn opens_when_the_failure_rate_reaches_the_threshold() {
    let (breaker, _) = manual(Breaker::builder().failure_rate(50.0, 10).count_window(10));
    for index in 0..10 {
        record(&breaker, index < 4);
    }
    assert_eq!(breaker.state(), State::Closed, "40%");
    assert_eq!(breaker.metrics().failure_rate, Some(40.0));

    let (breaker, _) = manual(Breaker::builder().failure_rate(50.0, 10).count_window(10));
    for index in 0..10 {
        record(&breaker, index < 5);
    }
    assert_eq!(breaker.state(), State::Open, "50%");
}

/// The count window keeps the last N calls: old failures fall out.
#[test]
fn count_window_keeps_only_the_last_calls() {
    let (breaker, _) = manual(Breaker::builder().failure_rate(50.0, 5).count_window(5));
    for failed in [true, true, false, false, false, false, false] {
        record(&breaker, failed);
    }
    let counts = breaker.metrics().counts;
    assert_eq!((counts.calls, counts.failures), (5, 0), "both failures slid out");
    for _ in 0..2 {
        record(&breaker, true);
    }
    assert_eq!(breaker.state(), State::Closed, "2 of 5");
    record(&breaker, true);
    assert_eq!(breaker.state(), State::Open, "3 of 5");
}

/// The time window keeps the calls of the last N seconds, a bucket at a
/// time; the minimum number of calls applies to it too.
#[test]
fn time_window_keeps_only_the_last_seconds() {
    let (breaker, clock) = manual(Breaker::builder().failure_rate(50.0, 4).time_window(10 * SEC, 10));
    for _ in 0..3 {
        record(&breaker, true);
    }
    assert_eq!(breaker.state(), State::Closed, "3 calls, below the minimum of 4");
    clock.advance(9 * SEC);
    for _ in 0..3 {
        record(&breaker, false);
    }
    assert_eq!(breaker.metrics().failure_rate, Some(50.0));
    assert_eq!(breaker.state(), State::Closed, "successes do not trip a time window");
    clock.advance(SEC); // the first second's failures leave the window
    let counts = breaker.metrics().counts;
    assert_eq!((counts.calls, counts.failures), (3, 0));
    record(&breaker, true);
    assert_eq!(breaker.state(), State::Closed, "1 of 4");
    record(&breaker, true);
    assert_eq!(breaker.state(), State::Closed, "2 of 5");
    record(&breaker, true);
    assert_eq!(breaker.state(), State::Open, "3 of 6");
}

/// Calls at or over the slow-call duration are slow, successes included;
/// the slow-call rate trips like the failure rate.
#[test]
fn slow_call_rate_trips_on_slow_successes() {
    let (breaker, clock) = manual(Breaker::builder().slow_call_rate(50.0, 2 * SEC, 4).count_window(4));
    let slow = |breaker: &Breaker, clock: &ManualClock, took: Duration| {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(took);
        permit.success();
    };
    slow(&breaker, &clock, SEC);
    slow(&breaker, &clock, 2 * SEC - Duration::from_nanos(1));
    slow(&breaker, &clock, 2 * SEC);
    assert_eq!(breaker.metrics().counts.slow_calls, 1);
    assert_eq!(breaker.state(), State::Closed, "3 calls, below the minimum");
    slow(&breaker, &clock, 5 * SEC);
    assert_eq!(breaker.state(), State::Open, "2 of 4 slow");
}

/// Failure rate and slow-call rate are judged side by side.
#[test]
fn both_rates_together() {
    let (breaker, clock) =
        manual(Breaker::builder().failure_rate(50.0, 4).slow_call_rate(75.0, SEC, 4).count_window(4));
    record(&breaker, true);
    for _ in 0..3 {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(SEC);
        permit.success();
    }
    assert_eq!(breaker.state(), State::Open, "25% failures but 75% slow");
}

/// resilience4j's `maxWaitDurationInHalfOpenState`: a half-open breaker
/// whose trials never report goes back to open.
#[test]
fn half_open_max_wait_moves_on() {
    let (breaker, clock) = manual(
        Breaker::builder()
            .failure_rate(50.0, 2)
            .count_window(2)
            .open_duration(5 * SEC)
            .half_open_trials(2)
            .half_open_max_wait(3 * SEC),
    );
    record(&breaker, true);
    record(&breaker, true);
    clock.advance(5 * SEC);
    let _first = breaker.try_acquire().unwrap();
    let _second = breaker.try_acquire().unwrap();
    assert_eq!(breaker.try_acquire().unwrap_err(), Rejected::HalfOpenFull);
    clock.advance(3 * SEC);
    let Err(Rejected::Open { retry_at }) = breaker.try_acquire() else { panic!("open again") };
    assert_eq!(retry_at, Some(clock.now() + 5 * SEC));
}
