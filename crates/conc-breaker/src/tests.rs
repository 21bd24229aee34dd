use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use conc_core::{Clock, ManualClock};

use crate::*;

const SEC: Duration = Duration::from_secs(1);

fn manual(builder: BreakerBuilder) -> (Breaker, ManualClock) {
    let clock = ManualClock::new();
    (builder.clock(clock.clone()).build().expect("valid settings"), clock)
}

fn fail(breaker: &Breaker) {
    breaker.try_acquire().expect("admitted").failure();
}

fn succeed(breaker: &Breaker) {
    breaker.try_acquire().expect("admitted").success();
}

fn poll<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

fn recorder(breaker: &Breaker) -> Arc<Mutex<Vec<(State, State)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    breaker.on_state_change(move |change| sink.lock().unwrap().push((change.from, change.to)));
    seen
}

#[test]
fn bad_settings_are_typed_errors() {
    let cases: Vec<(BreakerBuilder, BuildError)> = vec![
        (Breaker::builder().count_window(0), BuildError::ZeroWindow),
        (Breaker::builder().time_window(SEC, 0), BuildError::ZeroWindow),
        (Breaker::builder().time_window(Duration::ZERO, 10), BuildError::ZeroDuration("time window")),
        (Breaker::builder().failure_rate(100.5, 1), BuildError::ThresholdOutOfRange(100.5)),
        (Breaker::builder().failure_rate(-1.0, 1), BuildError::ThresholdOutOfRange(-1.0)),
        (Breaker::builder().slow_call_rate(101.0, SEC, 1), BuildError::ThresholdOutOfRange(101.0)),
        (Breaker::builder().half_open_trials(0), BuildError::ZeroHalfOpenTrials),
        (Breaker::builder().consecutive_failures(0), BuildError::ZeroConsecutiveFailures),
        (Breaker::builder().failure_rate(50.0, 0), BuildError::ZeroMinimumCalls),
        (
            Breaker::builder().failure_rate(50.0, 11).count_window(10),
            BuildError::MinimumCallsExceedWindow { minimum_calls: 11, window: 10 },
        ),
        (
            Breaker::builder().failure_rate(50.0, 101),
            BuildError::MinimumCallsExceedWindow { minimum_calls: 101, window: 100 },
        ),
        (Breaker::builder().interval(Duration::ZERO), BuildError::ZeroDuration("interval")),
        (Breaker::builder().call_timeout(Duration::ZERO), BuildError::ZeroDuration("call timeout")),
        (Breaker::builder().half_open_max_wait(Duration::ZERO), BuildError::ZeroDuration("half-open max wait")),
        (Breaker::builder().open_backoff(2 * SEC, SEC), BuildError::BackoffAboveCap { initial: 2 * SEC, max: SEC }),
        (
            Breaker::builder().count_window(u32::MAX),
            BuildError::TooLarge { setting: "count window", requested: u64::from(u32::MAX), max: 1 << 20 },
        ),
    ];
    for (builder, expected) in cases {
        assert_eq!(builder.build().unwrap_err(), expected);
    }
    assert!(Breaker::builder().failure_rate(f64::NAN, 1).build().is_err());
    assert!(Breaker::builder().failure_rate(0.0, 1).build().is_ok());
    assert!(Breaker::builder().failure_rate(100.0, 100).build().is_ok());
    assert_eq!(Breakers::<u32>::new(Breaker::builder(), 0).unwrap_err(), BuildError::ZeroMaxKeys);
}

#[test]
fn consecutive_failures_trip_and_a_success_ends_the_run() {
    let (breaker, _clock) = manual(Breaker::builder().consecutive_failures(3));
    fail(&breaker);
    fail(&breaker);
    succeed(&breaker);
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().counts.consecutive_failures, 2);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn open_rejects_with_the_retry_instant_then_half_opens() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(1).open_duration(10 * SEC));
    let tripped_at = clock.now();
    fail(&breaker);
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected, Rejected::Open { retry_at: Some(tripped_at + 10 * SEC) });
    assert_eq!(rejected.retry_after(clock.now()), Some(10 * SEC));
    clock.advance(4 * SEC);
    assert_eq!(breaker.retry_after(), Some(6 * SEC));
    assert_eq!(breaker.state(), State::Open);
    clock.advance(6 * SEC);
    assert_eq!(breaker.retry_after(), None);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.metrics().rejected, 1);
}

#[test]
fn half_open_admits_the_trials_then_closes_or_reopens() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(1).open_duration(SEC).half_open_trials(2));
    fail(&breaker);
    clock.advance(SEC);
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert_eq!(first.state(), State::HalfOpen);
    assert_eq!(breaker.try_acquire().unwrap_err(), Rejected::HalfOpenFull);
    first.success();
    assert_eq!(breaker.state(), State::HalfOpen, "one success of two is not enough");
    assert_eq!(breaker.try_acquire().unwrap_err(), Rejected::HalfOpenFull, "places are not reused");
    second.success();
    assert_eq!(breaker.state(), State::Closed);

    fail(&breaker);
    clock.advance(SEC);
    let trial = breaker.try_acquire().unwrap();
    trial.failure();
    assert_eq!(breaker.state(), State::Open, "a failed trial reopens");
}

#[test]
fn a_dropped_trial_gives_its_place_back() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(1).open_duration(SEC));
    fail(&breaker);
    clock.advance(SEC);
    let trial = breaker.try_acquire().unwrap();
    assert_eq!(breaker.try_acquire().unwrap_err(), Rejected::HalfOpenFull);
    drop(trial);
    assert_eq!(breaker.state(), State::HalfOpen, "dropping records nothing");
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn half_open_max_wait_reopens_when_trials_never_report() {
    let (breaker, clock) =
        manual(Breaker::builder().consecutive_failures(1).open_duration(SEC).half_open_max_wait(5 * SEC));
    fail(&breaker);
    clock.advance(SEC);
    let stuck = breaker.try_acquire().unwrap();
    clock.advance(5 * SEC);
    assert_eq!(breaker.state(), State::Open);
    stuck.success();
    assert_eq!(breaker.state(), State::Open, "the late trial is of an old generation");
    assert_eq!(breaker.retry_after(), Some(SEC), "reopened for the (fixed) open duration");
}

#[test]
fn outcomes_of_an_earlier_generation_are_ignored() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(2).open_duration(SEC));
    let early = breaker.try_acquire().unwrap();
    fail(&breaker);
    fail(&breaker);
    clock.advance(SEC);
    assert!(early.is_stale());
    early.success();
    assert_eq!(breaker.state(), State::HalfOpen, "a success from before the trip does not close");
}

#[test]
fn interval_clears_closed_counts_and_starts_a_generation() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(3).interval(10 * SEC));
    fail(&breaker);
    fail(&breaker);
    let late = breaker.try_acquire().unwrap();
    clock.advance(10 * SEC);
    assert_eq!(breaker.metrics().counts, Counts::default());
    late.failure();
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Closed, "the late failure counted in no generation");
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn count_window_rate_needs_the_minimum_calls_and_slides() {
    let (breaker, _clock) = manual(Breaker::builder().failure_rate(50.0, 4).count_window(4));
    fail(&breaker);
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Closed, "3 calls are below the minimum of 4");
    assert_eq!(breaker.metrics().failure_rate, None);
    succeed(&breaker);
    assert_eq!(breaker.state(), State::Open, "75% at the 4th call");

    let (breaker, _clock) = manual(Breaker::builder().failure_rate(50.0, 4).count_window(4));
    for _ in 0..3 {
        succeed(&breaker);
    }
    fail(&breaker);
    for _ in 0..4 {
        succeed(&breaker);
    }
    let counts = breaker.metrics().counts;
    assert_eq!((counts.calls, counts.failures), (4, 0), "the failure slid out of the window");
    fail(&breaker);
    assert_eq!(breaker.state(), State::Closed, "1 of 4");
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open, "2 of 4");
}

#[test]
fn time_window_forgets_old_buckets() {
    let (breaker, clock) = manual(Breaker::builder().failure_rate(50.0, 2).time_window(10 * SEC, 10));
    fail(&breaker);
    clock.advance(10 * SEC);
    succeed(&breaker);
    let counts = breaker.metrics().counts;
    assert_eq!((counts.calls, counts.failures), (1, 0));
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open, "1 of 2 within the window");
}

#[test]
fn slow_calls_trip_the_slow_call_rule_and_timeouts_are_not_slow() {
    let (breaker, clock) = manual(Breaker::builder().slow_call_rate(100.0, SEC, 2).count_window(2));
    let permit = breaker.try_acquire().unwrap();
    clock.advance(SEC);
    permit.success();
    let metrics = breaker.metrics();
    assert_eq!((metrics.counts.slow_calls, metrics.counts.failures), (1, 0));
    let permit = breaker.try_acquire().unwrap();
    permit.timed_out();
    let metrics = breaker.metrics();
    assert_eq!((metrics.counts.slow_calls, metrics.counts.failures, metrics.timeouts), (1, 1, 1));
    assert_eq!(breaker.state(), State::Closed, "50% slow");

    let (breaker, clock) = manual(Breaker::builder().slow_call_rate(100.0, SEC, 2).count_window(2));
    for _ in 0..2 {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(2 * SEC);
        permit.success();
    }
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn predicate_sees_the_counts_after_each_failure() {
    let (breaker, _clock) = manual(
        Breaker::builder()
            .trip_when(|counts| counts.calls >= 3 && counts.failure_rate().is_some_and(|rate| rate >= 60.0)),
    );
    succeed(&breaker);
    fail(&breaker);
    succeed(&breaker);
    assert_eq!(
        breaker.metrics().counts,
        Counts {
            calls: 3,
            successes: 2,
            failures: 1,
            slow_calls: 0,
            consecutive_failures: 0,
            consecutive_successes: 1
        }
    );
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open, "3 of 5");
}

#[test]
fn backoff_doubles_up_to_the_cap_and_closing_resets_it() {
    let (breaker, clock) =
        manual(Breaker::builder().consecutive_failures(1).open_backoff(SEC, 3 * SEC).half_open_trials(1));
    fail(&breaker);
    for expected in [SEC, 2 * SEC, 3 * SEC, 3 * SEC] {
        assert_eq!(breaker.retry_after(), Some(expected));
        clock.advance(expected);
        fail(&breaker); // the trial fails
    }
    clock.advance(3 * SEC);
    succeed(&breaker);
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker);
    assert_eq!(breaker.retry_after(), Some(SEC));
}

#[test]
fn listeners_see_every_change_in_order_and_may_use_the_breaker() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(1).open_duration(SEC));
    let breaker = Arc::new(breaker);
    let seen = recorder(&breaker);
    let weak = Arc::downgrade(&breaker);
    breaker.on_state_change(move |change| {
        if change.to == State::HalfOpen {
            // Re-entrant: forcing from inside a listener must not deadlock.
            weak.upgrade().unwrap().force_open();
        }
    });
    fail(&breaker);
    clock.advance(SEC);
    assert_eq!(breaker.state(), State::ForcedOpen);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(State::Closed, State::Open), (State::Open, State::HalfOpen), (State::HalfOpen, State::ForcedOpen)]
    );
}

#[test]
fn operator_modes() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(1));
    breaker.force_open();
    assert_eq!(breaker.try_acquire().unwrap_err(), Rejected::Open { retry_at: None });
    clock.advance(1000 * SEC);
    assert_eq!(breaker.state(), State::ForcedOpen, "forced open does not time out");
    assert_eq!(breaker.retry_after(), None);

    breaker.disable();
    fail(&breaker);
    assert_eq!(breaker.state(), State::Disabled);
    assert_eq!(breaker.metrics().counts.calls, 0, "disabled records nothing");

    breaker.metrics_only();
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), State::MetricsOnly);
    assert_eq!(breaker.metrics().counts.failures, 2, "metrics-only records");

    breaker.force_closed();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().counts.calls, 0);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn force_closed_keeps_the_backoff_level_and_reset_clears_it() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(1).open_backoff(SEC, 60 * SEC));
    fail(&breaker);
    clock.advance(SEC);
    fail(&breaker);
    assert_eq!(breaker.retry_after(), Some(2 * SEC));
    breaker.force_closed();
    fail(&breaker);
    assert_eq!(breaker.retry_after(), Some(4 * SEC));
    breaker.reset();
    fail(&breaker);
    assert_eq!(breaker.retry_after(), Some(SEC));
}

#[test]
fn metrics_report_state_time_and_rates() {
    let (breaker, clock) = manual(Breaker::builder().failure_rate(60.0, 2).count_window(10));
    fail(&breaker);
    assert_eq!(breaker.metrics().failure_rate, None, "below the minimum");
    succeed(&breaker);
    succeed(&breaker);
    clock.advance(3 * SEC);
    let metrics = breaker.metrics();
    assert_eq!(metrics.state, State::Closed);
    assert_eq!(metrics.time_in_state, 3 * SEC);
    let rate = metrics.failure_rate.unwrap();
    assert!((rate - 100.0 / 3.0).abs() < 1e-9, "{rate}");
    assert_eq!(metrics.slow_call_rate, Some(0.0));
}

#[test]
fn call_records_errors_and_the_classifier_decides() {
    let (breaker, _clock) = manual(Breaker::builder().consecutive_failures(2));
    futures_lite::future::block_on(async {
        assert_eq!(breaker.call(async { Ok::<_, u16>(1) }).await, Ok(1));
        let not_found = |result: &Result<(), u16>| !matches!(result, Err(404));
        for _ in 0..3 {
            assert_eq!(breaker.call_with(not_found, async { Err(404) }).await, Err(BreakerError::Inner(404)));
        }
        assert_eq!(breaker.state(), State::Closed, "404 is not a failure");
        assert_eq!(breaker.metrics().counts.successes, 4);
        let _ = breaker.call(async { Err::<(), _>(500) }).await;
        let _ = breaker.call(async { Err::<(), _>(500) }).await;
        assert_eq!(
            breaker.call(async { Ok::<_, u16>(1) }).await,
            Err(BreakerError::Open {
                retry_at: breaker.try_acquire().err().and_then(|r| match r {
                    Rejected::Open { retry_at } => retry_at,
                    Rejected::HalfOpenFull => None,
                })
            })
        );
    });
}

#[test]
fn a_cancelled_call_records_nothing() {
    let (breaker, _clock) = manual(Breaker::builder().consecutive_failures(1));
    {
        let mut call = pin!(breaker.call(std::future::pending::<Result<(), ()>>()));
        assert!(poll(call.as_mut()).is_pending());
    }
    assert_eq!(breaker.metrics().counts.calls, 0);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn call_timeout_fails_the_call_on_the_breakers_clock() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(1).call_timeout(SEC));
    let mut call = pin!(breaker.call(std::future::pending::<Result<(), ()>>()));
    assert!(poll(call.as_mut()).is_pending());
    clock.advance(SEC - Duration::from_nanos(1));
    assert!(poll(call.as_mut()).is_pending());
    clock.advance(Duration::from_nanos(1));
    assert_eq!(poll(call.as_mut()), Poll::Ready(Err(BreakerError::Timeout(SEC))));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().timeouts, 0, "counts of the closed generation are cleared by the trip");
}

#[test]
fn call_blocking_records_panics_as_failures_and_overruns_as_timeouts() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(3).call_timeout(SEC));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = breaker.call_blocking(|| -> Result<(), ()> { panic!("boom") });
    }));
    assert!(panicked.is_err());
    assert_eq!(breaker.metrics().counts.failures, 1);
    let value = breaker.call_blocking(|| {
        clock.advance(SEC);
        Ok::<_, ()>(7)
    });
    assert_eq!(value, Ok(7), "the value of an overrunning blocking call is still returned");
    let metrics = breaker.metrics();
    assert_eq!((metrics.counts.failures, metrics.timeouts), (2, 1));
}

#[test]
fn ready_waits_for_the_open_duration_on_the_clock() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(1).open_duration(SEC));
    assert!(poll(pin!(breaker.ready())).is_ready());
    fail(&breaker);
    let mut ready = pin!(breaker.ready());
    assert!(poll(ready.as_mut()).is_pending());
    clock.advance(SEC);
    assert!(poll(ready.as_mut()).is_ready());
    let trial = breaker.try_acquire().unwrap();
    let mut ready = pin!(breaker.ready());
    assert!(poll(ready.as_mut()).is_pending(), "every trial place is taken");
    drop(trial);
    assert!(poll(ready.as_mut()).is_ready());
}

#[test]
fn ready_wakes_when_a_forced_open_breaker_is_closed() {
    let (breaker, _clock) = manual(Breaker::builder());
    breaker.force_open();
    let (counter, waker) = counting_waker();
    let mut ready = pin!(breaker.ready());
    assert!(ready.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    breaker.force_closed();
    assert!(counter.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert!(ready.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
}

fn counting_waker() -> (Arc<std::sync::atomic::AtomicUsize>, Waker) {
    struct Count(Arc<std::sync::atomic::AtomicUsize>);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    (Arc::clone(&counter), Waker::from(Arc::new(Count(counter))))
}

#[test]
fn registry_is_bounded_and_evicts_idle_closed_breakers_first() {
    let hosts: Breakers<String> = Breakers::new(Breaker::builder().consecutive_failures(1), 1).unwrap();
    let tripped = hosts.get("a");
    fail(&tripped);
    drop(tripped);
    assert!(Arc::ptr_eq(&hosts.get("a"), &hosts.get("a")));
    let b = hosts.get("b");
    assert_eq!(hosts.len(), 1);
    assert_eq!(b.state(), State::Closed);
    assert!(hosts.get_if_present("a").is_none());
    assert!(hosts.remove("b").is_some());
    assert!(hosts.is_empty());

    let hosts: Breakers<u32> = Breakers::new(Breaker::builder().consecutive_failures(1), 32).unwrap();
    let keys = if cfg!(miri) { 100 } else { 1000 };
    for key in 0..keys {
        let _ = hosts.get(&key);
    }
    assert!(hosts.len() <= 32);
    let open = hosts.get(&5000);
    fail(&open);
    drop(open);
    for key in 2000..2000 + keys / 10 {
        let _ = hosts.get(&key);
    }
    assert_eq!(hosts.get_if_present(&5000).map(|b| b.state()), Some(State::Open), "tripped breakers are kept");
}

#[test]
fn default_breaker_matches_gobreaker() {
    let breaker = Breaker::new();
    for _ in 0..5 {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    assert!(breaker.retry_after().is_some_and(|wait| wait <= 60 * SEC && wait > 59 * SEC));
}

#[test]
fn call_futures_are_send_and_breakers_are_shareable() {
    fn send<T: Send>(_: &T) {}
    fn shareable<T: Send + Sync + std::panic::RefUnwindSafe>() {}
    shareable::<Breaker>();
    shareable::<Breakers<String>>();
    let breaker = Breaker::builder().call_timeout(SEC).build().unwrap();
    send(&breaker.call(async { Ok::<_, ()>(1) }));
    send(&breaker.ready());
    send(&breaker.try_acquire());
}

#[test]
fn a_count_window_stays_consistent_under_concurrent_recording() {
    const WINDOW: u32 = 64;
    let breaker = Breaker::builder().failure_rate(100.0, 1).count_window(WINDOW).build().unwrap();
    breaker.metrics_only(); // records, never trips
    let (threads, calls) = if cfg!(miri) { (3, 40) } else { (8, 2_000) };
    for failed in [true, false, true] {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..calls {
                        breaker.try_acquire().unwrap().record(failed);
                    }
                });
            }
        });
        let counts = breaker.metrics().counts;
        let expected = if failed { u64::from(WINDOW) } else { 0 };
        assert_eq!((counts.calls, counts.failures), (u64::from(WINDOW), expected));
    }
}

#[test]
fn a_cancellation_the_classifier_excuses_is_not_a_failure() {
    let (breaker, _clock) = manual(Breaker::builder().consecutive_failures(1));
    let token = conc_core::Token::new();
    token.cancel();
    let excused = |result: &Result<(), conc_core::Cause>| !matches!(result, Err(conc_core::Cause::Cancelled));
    let outcome = futures_lite::future::block_on(
        breaker.call_with(excused, token.run_until_cancelled(std::future::pending::<()>())),
    );
    assert_eq!(outcome, Err(BreakerError::Inner(conc_core::Cause::Cancelled)));
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().counts.successes, 1, "recorded as the classifier said");
}

#[test]
fn a_timed_out_trial_reopens() {
    let (breaker, clock) = manual(Breaker::builder().consecutive_failures(1).open_duration(SEC).call_timeout(SEC));
    fail(&breaker);
    clock.advance(SEC);
    let mut trial = pin!(breaker.call(std::future::pending::<Result<(), ()>>()));
    assert!(poll(trial.as_mut()).is_pending());
    clock.advance(SEC);
    assert_eq!(poll(trial.as_mut()), Poll::Ready(Err(BreakerError::Timeout(SEC))));
    assert_eq!(breaker.state(), State::Open);
}
