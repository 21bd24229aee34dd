//! conc-group beside tokio's `JoinSet` and the `futures` combinators, on
//! two workloads, each on a multi-threaded tokio runtime with 1, 2 and all
//! cores as workers:
//!
//! - `group/spawn_wait`: spawn 10,000 trivial tasks and wait for them all.
//!   `conc` is `Group::spawn`, then `Group::wait`; `tokio` is
//!   `JoinSet::spawn`, then `join_next` until empty; `futures` is the same
//!   10,000 futures in a
//!   `FuturesUnordered` polled by one task (no spawning: the floor of what
//!   "run 10,000 things and wait" costs without parallelism).
//! - `group/map`: a bounded map of 100,000 items with at most 64 in
//!   flight. `conc` is `conc_group::map` (results in input order);
//!   `futures` is `stream::iter(..).map(..).buffer_unordered(64)` collected
//!   into a `Vec` (any order).
//!
//! Each workload body runs inside a spawned task, as application code
//! would, and the time reported is one whole body (10,000 tasks or 100,000
//! items).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use conc_benches::{OURS, thread_counts, threads_param};
use conc_group::Group;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main, measurement::WallTime};
use futures::StreamExt;
use futures::stream::{self, FuturesUnordered};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

const TASKS: usize = 10_000;
const ITEMS: u64 = 100_000;
const LIMIT: usize = 64;

fn runtime(threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(threads).build().expect("a tokio runtime")
}

/// Times `iters` runs of `body`, each inside a task spawned on `runtime`.
fn bench_body<F, Fut>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, threads: usize, runtime: &Runtime, body: F)
where
    F: Fn() -> Fut + Copy + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    group.bench_function(BenchmarkId::new(id, threads_param(threads)), |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::spawn(body()).await.expect("the bench body does not panic");
                }
                start.elapsed()
            })
        });
    });
}

async fn spawn_wait_conc() {
    let mut group = Group::<Infallible>::new();
    for i in 0..TASKS {
        let spawned = group.spawn(move |_| async move {
            black_box(i);
            Ok(())
        });
        if spawned.await.is_err() {
            unreachable!("the group is never cancelled");
        }
    }
    black_box(group.wait().await).ok();
}

async fn spawn_wait_join_set() {
    let mut set = JoinSet::new();
    for i in 0..TASKS {
        set.spawn(async move {
            black_box(i);
        });
    }
    while let Some(joined) = set.join_next().await {
        black_box(joined).ok();
    }
}

async fn spawn_wait_futures_unordered() {
    let mut futures: FuturesUnordered<_> = (0..TASKS)
        .map(|i| async move {
            black_box(i);
        })
        .collect();
    while let Some(()) = futures.next().await {}
}

fn spawn_wait(c: &mut Criterion) {
    let mut group = c.benchmark_group("group/spawn_wait");
    group.sample_size(30);
    for threads in thread_counts() {
        let runtime = runtime(threads);
        bench_body(&mut group, OURS, threads, &runtime, spawn_wait_conc);
        bench_body(&mut group, "tokio", threads, &runtime, spawn_wait_join_set);
        bench_body(&mut group, "futures", threads, &runtime, spawn_wait_futures_unordered);
    }
    group.finish();
}

async fn map_conc() {
    let doubled = conc_group::map(0..ITEMS, LIMIT, |x| async move { black_box(x) * 2 }).await;
    assert_eq!(doubled.map(|values| values.len()).ok(), Some(ITEMS as usize));
}

async fn map_buffer_unordered() {
    let doubled: Vec<u64> =
        stream::iter(0..ITEMS).map(|x| async move { black_box(x) * 2 }).buffer_unordered(LIMIT).collect().await;
    assert_eq!(doubled.len(), ITEMS as usize);
}

fn bounded_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("group/map");
    group.sample_size(20);
    for threads in thread_counts() {
        let runtime = runtime(threads);
        bench_body(&mut group, OURS, threads, &runtime, map_conc);
        bench_body(&mut group, "futures", threads, &runtime, map_buffer_unordered);
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
    targets = spawn_wait, bounded_map
}
criterion_main!(benches);
