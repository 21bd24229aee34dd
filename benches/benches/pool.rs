//! conc-pool beside the pools a user would pick instead, on three
//! workloads:
//!
//! - `pool/async_jobs`: N trivial async jobs (1,000,000 by default; set
//!   `CONC_POOL_BENCH_JOBS` to change it) through a limit of 64 at once,
//!   on a tokio runtime of 1, 2 and all cores: our `Pool` (64 worker
//!   tasks, `submit` + `detach`) beside `tokio::spawn` gated by a
//!   `tokio::sync::Semaphore` of 64 permits (`tokio`) and `futures`'
//!   `buffer_unordered(64)` (`futures`, one task, so its thread count does
//!   not matter). One iteration is the whole batch.
//! - `pool/cpu_closures`: 10,000 closures of about a microsecond of
//!   arithmetic each on 1, 2 and all threads: our `CpuPool`
//!   (`submit_blocking` + `detach`, a queue as large as the batch, as the
//!   peers' queues are unbounded) beside rayon's `ThreadPool::spawn` and
//!   the `threadpool` crate's `execute`. One iteration is the whole batch.
//! - memory per queued job, measured once with a counting allocator and
//!   printed to stderr: the bytes allocated per job while 10,000 jobs wait
//!   behind a busy worker (for ours: the job, sharing one allocation
//!   with its handle's state).
//!
//! Every job counts down one shared `Countdown` that the bench thread
//! waits on, for every implementation alike; pools and runtimes are built
//! outside the timed region.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conc_benches::{Countdown, OURS, thread_counts, threads_param};
use conc_core::Token;
use conc_pool::Pool;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures::StreamExt;

/// Counts bytes allocated while `TRACKING` is set (the memory probe only).
struct Counting;

static TRACKING: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged; the
// counting on the side touches only atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// At most this many async jobs run at once, for every implementation.
const LIMIT: usize = 64;
const CPU_JOBS: usize = 10_000;
const QUEUED: usize = 10_000;

fn async_jobs_count() -> usize {
    std::env::var("CONC_POOL_BENCH_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000)
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(threads).build().unwrap()
}

/// Times `iters` batches, each run by `batch` (which returns once every
/// job has counted down).
fn batches(iters: u64, mut batch: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        batch();
    }
    start.elapsed()
}

fn async_jobs(c: &mut Criterion) {
    let jobs = async_jobs_count();
    let mut group = c.benchmark_group("pool/async_jobs");
    group.sample_size(10);
    for threads in thread_counts() {
        let rt = runtime(threads);
        let pool = rt.block_on(async { Pool::builder().workers(LIMIT).queue_capacity(1024).build().unwrap() });
        group.bench_function(BenchmarkId::new(OURS, threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                batches(iters, || {
                    let done = Arc::new(Countdown::new(jobs));
                    rt.block_on(async {
                        for i in 0..jobs {
                            let done = done.clone();
                            let job = move |_: Token| async move {
                                black_box(i);
                                done.count_down();
                            };
                            pool.submit(job).await.unwrap().detach();
                        }
                    });
                    done.wait();
                })
            });
        });
        rt.block_on(pool.join());

        let permits = Arc::new(tokio::sync::Semaphore::new(LIMIT));
        group.bench_function(BenchmarkId::new("tokio", threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                batches(iters, || {
                    let done = Arc::new(Countdown::new(jobs));
                    rt.block_on(async {
                        for i in 0..jobs {
                            let permit = permits.clone().acquire_owned().await.unwrap();
                            let done = done.clone();
                            drop(tokio::spawn(async move {
                                black_box(i);
                                done.count_down();
                                drop(permit);
                            }));
                        }
                    });
                    done.wait();
                })
            });
        });

        group.bench_function(BenchmarkId::new("futures", threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                batches(iters, || {
                    let done = Arc::new(Countdown::new(jobs));
                    rt.block_on(
                        futures::stream::iter(0..jobs)
                            .map(|i| {
                                let done = done.clone();
                                async move {
                                    black_box(i);
                                    done.count_down();
                                }
                            })
                            .buffer_unordered(LIMIT)
                            .for_each(|()| async {}),
                    );
                    done.wait();
                })
            });
        });
    }
    group.finish();
}

/// About a microsecond of arithmetic the optimiser cannot remove.
fn crunch(seed: usize) -> u64 {
    let mut x = seed as u64 | 1;
    for _ in 0..250 {
        // `black_box` in the loop keeps every step: a chain of dependent
        // multiplies, about 4 ns each.
        x = black_box(x).wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    }
    x
}

fn cpu_closures(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool/cpu_closures");
    group.sample_size(20);
    for threads in thread_counts() {
        let pool = Pool::builder().workers(threads).queue_capacity(CPU_JOBS).build_cpu().unwrap();
        group.bench_function(BenchmarkId::new(OURS, threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                batches(iters, || {
                    let done = Arc::new(Countdown::new(CPU_JOBS));
                    for i in 0..CPU_JOBS {
                        let done = done.clone();
                        let job = move |_: Token| {
                            black_box(crunch(i));
                            done.count_down();
                        };
                        pool.submit_blocking(job).unwrap().detach();
                    }
                    done.wait();
                })
            });
        });
        pool.join_blocking();

        let rayon = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        group.bench_function(BenchmarkId::new("rayon", threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                batches(iters, || {
                    let done = Arc::new(Countdown::new(CPU_JOBS));
                    for i in 0..CPU_JOBS {
                        let done = done.clone();
                        rayon.spawn(move || {
                            black_box(crunch(i));
                            done.count_down();
                        });
                    }
                    done.wait();
                })
            });
        });

        let threadpool = threadpool::ThreadPool::new(threads);
        group.bench_function(BenchmarkId::new("threadpool", threads_param(threads)), |b| {
            b.iter_custom(|iters| {
                batches(iters, || {
                    let done = Arc::new(Countdown::new(CPU_JOBS));
                    for i in 0..CPU_JOBS {
                        let done = done.clone();
                        threadpool.execute(move || {
                            black_box(crunch(i));
                            done.count_down();
                        });
                    }
                    done.wait();
                })
            });
        });
        threadpool.join();
    }
    group.finish();
}

/// Bytes allocated per job by `queue_all`, which queues `QUEUED` jobs
/// while the workers are held busy.
fn bytes_per_job(queue_all: impl FnOnce()) -> usize {
    ALLOCATED.store(0, Ordering::SeqCst);
    TRACKING.store(true, Ordering::SeqCst);
    queue_all();
    TRACKING.store(false, Ordering::SeqCst);
    ALLOCATED.load(Ordering::SeqCst) / QUEUED
}

/// Memory per queued job, printed once (criterion has no unit for it).
fn memory_per_queued_job(_: &mut Criterion) {
    let rt = runtime(1);
    let hold = Token::new();

    let pool = rt.block_on(async { Pool::builder().workers(1).queue_capacity(QUEUED).build().unwrap() });
    let mut handles = Vec::with_capacity(QUEUED);
    let blocker = hold.clone();
    let busy = rt.block_on(pool.submit(move |_| async move { blocker.cancelled().await })).unwrap();
    let ours = bytes_per_job(|| {
        rt.block_on(async {
            for _ in 0..QUEUED {
                handles.push(pool.submit(|_: Token| async {}).await.unwrap());
            }
        });
    });

    let permits = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::with_capacity(QUEUED);
    let tokio_spawn = bytes_per_job(|| {
        let _enter = rt.enter();
        for _ in 0..QUEUED {
            let permits = permits.clone();
            tasks.push(tokio::spawn(async move { drop(permits.acquire().await) }));
        }
    });

    let rayon = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let blocker = hold.clone();
    rayon.spawn(move || blocker.wait_blocking());
    let rayon_bytes = bytes_per_job(|| {
        for _ in 0..QUEUED {
            rayon.spawn(|| {});
        }
    });

    let threadpool = threadpool::ThreadPool::new(1);
    let blocker = hold.clone();
    threadpool.execute(move || blocker.wait_blocking());
    let threadpool_bytes = bytes_per_job(|| {
        for _ in 0..QUEUED {
            threadpool.execute(|| {});
        }
    });

    eprintln!(
        "pool/memory_per_queued_job: {OURS} {ours} B (async job + handle), tokio {tokio_spawn} B (spawned task waiting \
         on a semaphore), rayon {rayon_bytes} B, threadpool {threadpool_bytes} B"
    );
    hold.cancel();
    permits.close();
    rt.block_on(async {
        busy.await.unwrap();
        for handle in handles {
            handle.await.unwrap();
        }
        for task in tasks {
            task.await.unwrap();
        }
        pool.join().await;
    });
    threadpool.join();
}

/// A shorter warm-up and measurement than criterion's defaults (3 s, 5 s),
/// as the other benches; command-line flags still override them.
fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = memory_per_queued_job, async_jobs, cpu_closures
}
criterion_main!(benches);
