//! conc-breaker's `Breaker` beside failsafe's `CircuitBreaker` (the sync
//! `call`, which failsafe has with its default features off), on the same
//! trip rule (5 consecutive failures, a constant 60 s open duration), at
//! 1, 2 and all cores:
//!
//! - `breaker/closed_call`: every thread runs a call that succeeds through
//!   a closed breaker: the overhead a healthy service pays on every call.
//! - `breaker/open_reject`: every thread's call is rejected by an open
//!   breaker: the cost of shedding load while a dependency is down.
//!
//! Runs follow `per_thread_ops`'s convention: the reported time is one
//! call while the other threads make the same call on the same breaker.

use std::hint::black_box;
use std::time::Duration;

use conc_benches::{OURS, per_thread_ops, thread_counts, threads_param};
use conc_breaker::Breaker;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use failsafe::{CircuitBreaker, backoff, failure_policy};

const OPEN: Duration = Duration::from_secs(60);

/// The operations the workloads use, implemented by both breakers.
trait BenchBreaker: Sync {
    /// The criterion function id of this implementation.
    const ID: &'static str;
    /// A closed breaker that trips after 5 consecutive failures.
    fn closed() -> Self;
    /// Runs `call` through the breaker; whether it ran.
    fn run(&self, call: impl FnOnce() -> Result<u64, ()>) -> bool;
}

impl BenchBreaker for Breaker {
    const ID: &'static str = OURS;

    fn closed() -> Self {
        Breaker::builder().consecutive_failures(5).open_duration(OPEN).build().expect("valid settings")
    }

    #[inline]
    fn run(&self, call: impl FnOnce() -> Result<u64, ()>) -> bool {
        match self.call_blocking(call) {
            Ok(value) => {
                black_box(value);
                true
            }
            Err(error) => !error.is_rejected(),
        }
    }
}

type Failsafe = failsafe::StateMachine<failure_policy::ConsecutiveFailures<backoff::Constant>, ()>;

impl BenchBreaker for Failsafe {
    const ID: &'static str = "failsafe";

    fn closed() -> Self {
        let policy = failure_policy::consecutive_failures(5, backoff::constant(OPEN));
        failsafe::Config::new().failure_policy(policy).build()
    }

    #[inline]
    fn run(&self, call: impl FnOnce() -> Result<u64, ()>) -> bool {
        match self.call(call) {
            Ok(value) => {
                black_box(value);
                true
            }
            Err(failsafe::Error::Inner(())) => true,
            Err(failsafe::Error::Rejected) => false,
        }
    }
}

/// A successful call through a closed breaker.
fn closed_call(c: &mut Criterion) {
    fn bench<B: BenchBreaker>(group: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
        let breaker = B::closed();
        group.bench_function(BenchmarkId::new(B::ID, threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                per_thread_ops(threads, iters, |index| {
                    let ran = black_box(&breaker).run(|| Ok(black_box(index as u64)));
                    assert!(ran, "a closed breaker runs every call");
                })
            });
        });
    }
    let mut group = c.benchmark_group("breaker/closed_call");
    for threads in thread_counts() {
        bench::<Breaker>(&mut group, threads);
        bench::<Failsafe>(&mut group, threads);
    }
    group.finish();
}

/// A call rejected by an open breaker.
fn open_reject(c: &mut Criterion) {
    fn bench<B: BenchBreaker>(group: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
        let breaker = B::closed();
        for _ in 0..5 {
            breaker.run(|| Err(()));
        }
        assert!(!breaker.run(|| Ok(0)), "five failures open the breaker");
        group.bench_function(BenchmarkId::new(B::ID, threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                per_thread_ops(threads, iters, |_| {
                    let ran = black_box(&breaker).run(|| Ok(1));
                    assert!(!ran, "an open breaker rejects every call");
                })
            });
        });
    }
    let mut group = c.benchmark_group("breaker/open_reject");
    for threads in thread_counts() {
        bench::<Breaker>(&mut group, threads);
        bench::<Failsafe>(&mut group, threads);
    }
    group.finish();
}

/// A shorter warm-up and measurement than criterion's defaults (3 s, 5 s),
/// as the other benches; command-line flags still override them.
fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = closed_call, open_reject
}
criterion_main!(benches);
