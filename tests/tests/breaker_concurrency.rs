//! conc-breaker under contention: many threads or tasks hammer a
//! half-open breaker and exactly the permitted number of trials get
//! through; concurrent failures trip it exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use conc_breaker::{Breaker, Rejected, State};
use conc_core::ManualClock;

const TRIALS: u32 = 5;

/// A breaker that is half-open (or will be at its next use), with its
/// clock and a count of transitions into each state.
fn half_open() -> (Arc<Breaker>, ManualClock, Arc<[AtomicUsize; 6]>) {
    let clock = ManualClock::new();
    let entered: Arc<[AtomicUsize; 6]> = Arc::new(Default::default());
    let sink = Arc::clone(&entered);
    let breaker = Breaker::builder()
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(1))
        .half_open_trials(TRIALS)
        .on_state_change(move |change| {
            let index = match change.to {
                State::Closed => 0,
                State::Open => 1,
                State::HalfOpen => 2,
                _ => 3,
            };
            sink[index].fetch_add(1, Ordering::SeqCst);
        })
        .clock(clock.clone())
        .build()
        .unwrap();
    breaker.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(1));
    (Arc::new(breaker), clock, entered)
}

#[test]
fn threads_hammering_half_open_get_exactly_the_trials() {
    let (threads, attempts) = if cfg!(miri) { (4, 5) } else { (32, 200) };
    for _round in 0..if cfg!(miri) { 1 } else { 20 } {
        let (breaker, _clock, entered) = half_open();
        let barrier = Barrier::new(threads);
        let admitted = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let mut held = Vec::new();
                    barrier.wait();
                    for _ in 0..attempts {
                        match breaker.try_acquire() {
                            Ok(permit) => {
                                assert_eq!(permit.state(), State::HalfOpen);
                                admitted.fetch_add(1, Ordering::SeqCst);
                                held.push(permit);
                            }
                            Err(rejected) => assert_eq!(rejected, Rejected::HalfOpenFull),
                        }
                    }
                    // Held to the end, so no place is given back early.
                    barrier.wait();
                    for permit in held {
                        permit.success();
                    }
                });
            }
        });
        assert_eq!(admitted.load(Ordering::SeqCst), TRIALS as usize);
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(entered[2].load(Ordering::SeqCst), 1, "one transition to half-open");
        assert_eq!(entered[0].load(Ordering::SeqCst), 1, "one transition to closed");
    }
}

#[test]
fn tasks_hammering_half_open_get_exactly_the_trials() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
    let tasks = if cfg!(miri) { 8 } else { 256 };
    let (breaker, _clock, entered) = half_open();
    let trials = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (breaker, trials) = (Arc::clone(&breaker), Arc::clone(&trials));
                tokio::spawn(async move {
                    loop {
                        match breaker.try_acquire() {
                            Ok(permit) if permit.state() == State::HalfOpen => {
                                trials.fetch_add(1, Ordering::SeqCst);
                                tokio::task::yield_now().await; // the trial call
                                permit.success();
                            }
                            Ok(permit) => {
                                permit.success();
                                return;
                            }
                            Err(Rejected::HalfOpenFull) => tokio::task::yield_now().await,
                            Err(other) => panic!("a half-open breaker with good trials never opens: {other}"),
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
    assert_eq!(trials.load(Ordering::SeqCst), TRIALS as usize);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(entered[0].load(Ordering::SeqCst), 1);
    assert_eq!(breaker.metrics().counts.calls, tasks as u64, "each task ended with one closed-state call");
}

#[test]
fn concurrent_failures_trip_exactly_once() {
    let threads = if cfg!(miri) { 3 } else { 16 };
    let opened = Arc::new(AtomicUsize::new(0));
    let sink = Arc::clone(&opened);
    let breaker = Breaker::builder()
        .consecutive_failures(8)
        .on_state_change(move |change| {
            assert_eq!((change.from, change.to), (State::Closed, State::Open));
            sink.fetch_add(1, Ordering::SeqCst);
        })
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..10 {
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.failure();
                    }
                }
            });
        }
    });
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(opened.load(Ordering::SeqCst), 1);
}
