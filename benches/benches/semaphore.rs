//! conc-limit's `Semaphore` beside `tokio::sync::Semaphore`, on two
//! workloads, each at 1, 2 and all cores:
//!
//! - `semaphore/acquire_release`: every thread acquires one permit and
//!   drops it, on a semaphore with a permit for every thread, so no acquire
//!   ever waits. The acquire future is polled once with a no-op waker and
//!   must be ready: the path an async caller takes when permits are free.
//! - `semaphore/contended`: every thread acquires the single permit of a
//!   shared semaphore and drops it, so callers queue and each release hands
//!   the permit on. Each thread drives its acquire futures with the same
//!   small park-based `block_on`, for both semaphores (tokio has no
//!   blocking acquire). At 2 threads every operation is a park on one core
//!   and an unpark from the other, so the figure is the OS's wake-up
//!   latency more than the semaphore's, and it scatters several-fold
//!   between runs of the same binary: judge contention by
//!   `contended_tasks`.
//!
//! - `semaphore/contended_tasks`: the contention a service sees: 64
//!   tasks on a multi-threaded tokio runtime (1, 2 and all cores) share
//!   4 permits; each acquires one, yields while it holds it (so the others
//!   queue), and releases it. Every release hands the permit to a queued
//!   task, whose wake-up goes through the runtime's queues instead of
//!   parking a thread. The reported time is the system's time per
//!   acquire + release (the inverse of its throughput): `iters` of them
//!   are shared among the tasks.
//!
//! All run through the same generic bodies (the [`BenchSemaphore`] trait),
//! so the workloads cannot drift apart. Runs follow `per_thread_ops`'s
//! convention: the reported time is one acquire + release while the other
//! threads do the same on the same semaphore.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use conc_benches::{OURS, per_thread_ops, thread_counts, threads_param};
use conc_limit::Semaphore;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};

/// The operations the workloads use, implemented by both semaphores.
trait BenchSemaphore: Send + Sync + 'static {
    /// The criterion function id of this implementation.
    const ID: &'static str;
    fn with_permits(permits: usize) -> Self;
    /// Acquires one permit; the output holds it until dropped.
    fn acquire_one(&self) -> impl Future<Output = impl Sized + Send + '_> + Send + '_;
}

impl BenchSemaphore for Semaphore {
    const ID: &'static str = OURS;

    fn with_permits(permits: usize) -> Self {
        Semaphore::new(permits)
    }

    #[inline]
    fn acquire_one(&self) -> impl Future<Output = impl Sized + Send + '_> + Send + '_ {
        self.acquire(1)
    }
}

impl BenchSemaphore for tokio::sync::Semaphore {
    const ID: &'static str = "tokio";

    fn with_permits(permits: usize) -> Self {
        tokio::sync::Semaphore::new(permits)
    }

    #[inline]
    fn acquire_one(&self) -> impl Future<Output = impl Sized + Send + '_> + Send + '_ {
        self.acquire()
    }
}

/// Acquire + release where permits are always free: one poll, ready.
fn acquire_release(c: &mut Criterion) {
    fn bench<S: BenchSemaphore>(group: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
        let semaphore = S::with_permits(threads);
        group.bench_function(BenchmarkId::new(S::ID, threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                per_thread_ops(threads, iters, |_| {
                    let mut cx = Context::from_waker(Waker::noop());
                    let acquire = pin!(black_box(&semaphore).acquire_one());
                    match acquire.poll(&mut cx) {
                        Poll::Ready(permit) => drop(black_box(permit)),
                        Poll::Pending => panic!("an uncontended acquire must be ready at once"),
                    }
                })
            });
        });
    }
    let mut group = c.benchmark_group("semaphore/acquire_release");
    for threads in thread_counts() {
        bench::<Semaphore>(&mut group, threads);
        bench::<tokio::sync::Semaphore>(&mut group, threads);
    }
    group.finish();
}

/// Acquire + release of the one permit every thread wants.
fn contended(c: &mut Criterion) {
    fn bench<S: BenchSemaphore>(group: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
        let semaphore = S::with_permits(1);
        group.bench_function(BenchmarkId::new(S::ID, threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                per_thread_ops(threads, iters, |_| {
                    let permit = block_on(black_box(&semaphore).acquire_one());
                    drop(black_box(permit));
                })
            });
        });
    }
    let mut group = c.benchmark_group("semaphore/contended");
    for threads in thread_counts() {
        bench::<Semaphore>(&mut group, threads);
        bench::<tokio::sync::Semaphore>(&mut group, threads);
    }
    group.finish();
}

/// Tasks sharing the semaphore in `contended_tasks`.
const TASKS: u64 = 64;
/// Permits of the semaphore in `contended_tasks`: fewer than the tasks.
const TASK_PERMITS: usize = 4;

/// Acquire + release by many tasks on a multi-threaded runtime, a few
/// permits among them.
fn contended_tasks(c: &mut Criterion) {
    fn bench<S: BenchSemaphore>(group: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .build()
            .expect("the bench needs a tokio runtime");
        let semaphore = Arc::new(S::with_permits(TASK_PERMITS));
        group.bench_function(BenchmarkId::new(S::ID, threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|task| {
                            // `iters` in all: the first tasks take the remainder.
                            let ops = iters / TASKS + u64::from(task < iters % TASKS);
                            let semaphore = Arc::clone(&semaphore);
                            tokio::spawn(async move {
                                for _ in 0..ops {
                                    let permit = semaphore.acquire_one().await;
                                    tokio::task::yield_now().await;
                                    drop(black_box(permit));
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("a bench task panicked");
                    }
                    start.elapsed()
                })
            });
        });
    }
    let mut group = c.benchmark_group("semaphore/contended_tasks");
    for threads in thread_counts() {
        bench::<Semaphore>(&mut group, threads);
        bench::<tokio::sync::Semaphore>(&mut group, threads);
    }
    group.finish();
}

/// Wakes a parked thread.
struct Unparker(Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// This thread's waker, made once per thread so no acquire allocates one.
    static THREAD_WAKER: Waker = Waker::from(Arc::new(Unparker(thread::current())));
}

/// Runs `future` to completion on this thread, parking while it waits.
fn block_on<F: Future>(future: F) -> F::Output {
    THREAD_WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        let mut future = pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            // Parking may wake spuriously; the loop polls again either way.
            thread::park();
        }
    })
}

/// A shorter warm-up and measurement than criterion's defaults (3 s, 5 s),
/// as the other benches; command-line flags still override them.
fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = acquire_release, contended, contended_tasks
}
criterion_main!(benches);
