//! Loom models of the breaker's atomic protocols: transitions racing with
//! outcome recording, and half-open admission.
//!
//! Run with `RUSTFLAGS="--cfg conc_loom" cargo test --release -p conc-breaker --lib loom`.

use std::sync::Arc;
use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::{Breaker, State};

fn changes(breaker: &Breaker) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let sink = Arc::clone(&count);
    breaker.on_state_change(move |_| {
        sink.fetch_add(1, Ordering::SeqCst);
    });
    count
}

/// Two failures recorded at once reach the threshold together: the breaker
/// trips exactly once, and the Open generation starts with empty counts.
#[test]
fn loom_concurrent_failures_trip_exactly_once() {
    loom::model(|| {
        let breaker = Arc::new(Breaker::builder().consecutive_failures(2).build().unwrap());
        let changed = changes(&breaker);
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        drop((first, second));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let breaker = Arc::clone(&breaker);
                let permit_word = breaker.load();
                thread::spawn(move || breaker.record(permit_word, None, true, false))
            })
            .collect();
        for handle in threads {
            handle.join().unwrap();
        }
        assert_eq!(State::of(breaker.load()), State::Open);
        assert_eq!(changed.load(Ordering::SeqCst), 1, "one transition, one event");
        assert_eq!(breaker.counts(crate::state::generation_of(breaker.load()), 0), crate::Counts::default());
    });
}

/// A success racing with the failure that trips the breaker never leaks
/// into the Open generation, and never closes it.
#[test]
fn loom_outcome_racing_a_trip_does_not_leak_into_the_next_generation() {
    loom::model(|| {
        let breaker = Arc::new(Breaker::builder().consecutive_failures(1).count_window(4).build().unwrap());
        let word = breaker.load();
        let tripper = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.record(word, None, true, false))
        };
        let late = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.record(word, None, false, false))
        };
        tripper.join().unwrap();
        late.join().unwrap();
        let now = breaker.load();
        assert_eq!(State::of(now), State::Open);
        let generation = crate::state::generation_of(now);
        assert_eq!(breaker.counts(generation, 0), crate::Counts::default());
        assert_eq!(breaker.totals().tally(generation).calls, 0);
    });
}

/// Three callers race for the half-open state's two trial places (and to
/// make the Open-to-HalfOpen transition): exactly two are admitted.
#[test]
fn loom_half_open_admits_exactly_the_trials() {
    loom::model(|| {
        let breaker = Arc::new(
            Breaker::builder()
                .consecutive_failures(1)
                .open_duration(Duration::ZERO)
                .half_open_trials(2)
                .build()
                .unwrap(),
        );
        let changed = changes(&breaker);
        breaker.try_acquire().unwrap().failure();
        assert_eq!(State::of(breaker.load()), State::Open);
        let admitted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (breaker, admitted) = (Arc::clone(&breaker), Arc::clone(&admitted));
                thread::spawn(move || {
                    if let Ok(permit) = breaker.try_acquire() {
                        assert_eq!(permit.state(), State::HalfOpen);
                        admitted.fetch_add(1, Ordering::SeqCst);
                        std::mem::forget(permit);
                    }
                })
            })
            .collect();
        for handle in threads {
            handle.join().unwrap();
        }
        assert_eq!(admitted.load(Ordering::SeqCst), 2);
        assert_eq!(State::of(breaker.load()), State::HalfOpen);
        assert_eq!(changed.load(Ordering::SeqCst), 2, "Closed->Open, Open->HalfOpen, once each");
    });
}

/// Two half-open trials report at once, one success and one failure: the
/// breaker always ends open (closing needs both trials to succeed), and a
/// success reported after the failure reopened it is ignored.
#[test]
fn loom_trial_outcomes_race() {
    loom::model(|| {
        let breaker = Arc::new(
            Breaker::builder()
                .consecutive_failures(1)
                .open_duration(Duration::ZERO)
                .half_open_trials(2)
                .build()
                .unwrap(),
        );
        breaker.try_acquire().unwrap().failure();
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        let word = breaker.load();
        std::mem::forget((first, second));
        let failing = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.record(word, None, true, false))
        };
        let succeeding = {
            let breaker = Arc::clone(&breaker);
            thread::spawn(move || breaker.record(word, None, false, false))
        };
        failing.join().unwrap();
        succeeding.join().unwrap();
        // Closing needs both trials to succeed: one failed, so it is open.
        assert_eq!(State::of(breaker.load()), State::Open);
    });
}
