//! conc-limit's `Gcra` beside governor's direct `RateLimiter`, with the same
//! quota, on two workloads, each at 1, 2 and all cores:
//!
//! - `gcra/check`: a very high rate, so nearly every check is admitted and
//!   writes the shared state (the CAS path);
//! - `gcra/check_saturated`: a low rate, so nearly every check is denied
//!   (the read-only path a flood of rejected callers takes).
//!
//! Both read the time on every check from their default clock (ours: the
//! system clock's `now_nanos`, the time-stamp counter anchored to
//! `Instant::now`; governor's: quanta's, the time-stamp counter). Contended runs follow
//! `per_thread_ops`'s convention: the reported time is one check's latency
//! while the other threads check the same limiter.

use std::hint::black_box;
use std::num::NonZeroU32;

use conc_benches::{OURS, per_thread_ops, thread_counts, threads_param};
use conc_limit::{Gcra, Rate};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};

/// The burst both limiters get.
const BURST: u32 = 1_000;

fn bench_pair(group: &mut BenchmarkGroup<'_, WallTime>, per_second: u32, threads: usize) {
    let burst = NonZeroU32::new(BURST).expect("BURST is not zero");
    let rate = NonZeroU32::new(per_second).expect("the rate is not zero");
    let ours = Gcra::new(Rate::per_second(f64::from(per_second)).expect("a valid rate"), BURST).expect("a valid burst");
    group.bench_function(BenchmarkId::new(OURS, threads_param(threads)), |b| {
        b.iter_custom(|iters| {
            per_thread_ops(threads, iters, |_| {
                let _ = black_box(black_box(&ours).check());
            })
        });
    });
    let governor = RateLimiter::direct(Quota::per_second(rate).allow_burst(burst));
    group.bench_function(BenchmarkId::new("governor", threads_param(threads)), |b| {
        b.iter_custom(|iters| {
            per_thread_ops(threads, iters, |_| {
                let _ = black_box(black_box(&governor).check());
            })
        });
    });
}

/// One billion a second: every check is admitted and moves the TAT.
fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("gcra/check");
    for threads in thread_counts() {
        bench_pair(&mut group, 1_000_000_000, threads);
    }
    group.finish();
}

/// Ten a second: after the first burst, every check is denied.
fn check_saturated(c: &mut Criterion) {
    let mut group = c.benchmark_group("gcra/check_saturated");
    for threads in thread_counts() {
        bench_pair(&mut group, 10, threads);
    }
    group.finish();
}

criterion_group!(benches, check, check_saturated);
criterion_main!(benches);
