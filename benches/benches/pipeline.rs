//! conc-pipeline beside the code a user would write instead, on four
//! workloads:
//!
//! - `pipeline/3_stage_map` (at 1, 2 and all runtime threads): 1,000,000
//!   integers through three cheap `map` stages into a sum, against a
//!   hand-written Go-style pipeline: one tokio task per stage joined by
//!   `async_channel::bounded(DEFAULT_CAPACITY)` channels (the capacity of
//!   our default link, 1024 items), one item per channel operation.
//! - `pipeline/map_ordered` and `pipeline/map_concurrent` (4 workers,
//!   100,000 items, a trivial async function): ours against `futures`'
//!   `StreamExt::buffered` / `buffer_unordered` over the same function.
//!   The ratio map_ordered / map_concurrent is read from the two `conc` rows.
//! - `pipeline/batching` (100,000 items, at 1, 2 and all threads): a stage whose every call pays a
//!   fixed cost — one `yield_now().await`, standing for the round trip of a
//!   database write or an RPC, the reason one batches — called per item
//!   (`map_concurrent(1, f)`, function id `unbatched`) against the same
//!   stage called per batch of 256 (`batch` -> `map_concurrent(1, f over
//!   the batch)` -> `unbatch`, function id `conc`). The issue asks for the
//!   batched form to move at least 5x the items per second.
//!
//! - `pipeline/then` (100,000 items, all threads): the sequential async
//!   stage `then(write_one)` against `map_concurrent(1, write_one)` (function
//!   id `map_concurrent_1`, the way to run one call at a time before `then`
//!   existed) and `futures`' `StreamExt::then`, which runs in the consumer's
//!   task with no channel.
//!
//! Every iteration builds and runs a whole pipeline on a runtime built once
//! per measurement, so task spawns and joins are included on both sides.

use std::hint::black_box;
use std::time::Duration;

use conc_benches::{OURS, thread_counts, threads_param};
use conc_pipeline::{DEFAULT_CAPACITY, Pipeline};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;

const MAP_ITEMS: u64 = 1_000_000;
const PARALLEL_ITEMS: u64 = 100_000;
const WORKERS: usize = 4;

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap()
}

async fn ours_three_maps(items: u64) -> u64 {
    Pipeline::from_iter(0..items)
        .map(|v| v + 1)
        .map(|v| v.wrapping_mul(3))
        .map(|v| v ^ 0x55)
        .fold(0_u64, u64::wrapping_add)
        .await
        .unwrap()
}

/// Go's pipeline pattern by hand: a goroutine (task) per stage, a channel
/// between each pair, `for v := range in { out <- f(v) }`.
async fn hand_written_three_maps(items: u64) -> u64 {
    let (tx0, rx0) = async_channel::bounded::<u64>(DEFAULT_CAPACITY);
    let (tx1, rx1) = async_channel::bounded::<u64>(DEFAULT_CAPACITY);
    let (tx2, rx2) = async_channel::bounded::<u64>(DEFAULT_CAPACITY);
    let (tx3, rx3) = async_channel::bounded::<u64>(DEFAULT_CAPACITY);
    let source = tokio::spawn(async move {
        for v in 0..items {
            if tx0.send(v).await.is_err() {
                return;
            }
        }
    });
    let stage = |rx: async_channel::Receiver<u64>, tx: async_channel::Sender<u64>, f: fn(u64) -> u64| {
        tokio::spawn(async move {
            while let Ok(v) = rx.recv().await {
                if tx.send(f(v)).await.is_err() {
                    return;
                }
            }
        })
    };
    let stages = [stage(rx0, tx1, |v| v + 1), stage(rx1, tx2, |v| v.wrapping_mul(3)), stage(rx2, tx3, |v| v ^ 0x55)];
    let mut sum = 0_u64;
    while let Ok(v) = rx3.recv().await {
        sum = sum.wrapping_add(v);
    }
    source.await.unwrap();
    for stage in stages {
        stage.await.unwrap();
    }
    sum
}

fn three_stage_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline/3_stage_map");
    group.sample_size(10).throughput(Throughput::Elements(MAP_ITEMS));
    for threads in thread_counts() {
        let rt = runtime(threads);
        group.bench_with_input(BenchmarkId::new(OURS, threads_param(threads)), &MAP_ITEMS, |b, &items| {
            b.iter(|| rt.block_on(ours_three_maps(black_box(items))));
        });
        group.bench_with_input(BenchmarkId::new("async-channel", threads_param(threads)), &MAP_ITEMS, |b, &items| {
            b.iter(|| rt.block_on(hand_written_three_maps(black_box(items))));
        });
    }
    group.finish();
}

/// Runs `pipeline` into a wrapping sum: the sink of every workload.
async fn sum(pipeline: Pipeline<u64>) -> u64 {
    pipeline.fold(0_u64, u64::wrapping_add).await.unwrap()
}

/// The same sum over a `futures` stream.
async fn sum_stream(stream: impl futures::Stream<Item = u64>) -> u64 {
    stream.fold(0_u64, |a, v| async move { a.wrapping_add(v) }).await
}

async fn double(v: u64) -> u64 {
    black_box(v) * 2
}

/// One call of a stage with a per-call cost (an await that goes back to
/// the scheduler, like an I/O round trip), on one item.
async fn write_one(v: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(v) * 2
}

/// The same stage called once for a whole batch.
async fn write_batch(batch: Vec<u64>) -> Vec<u64> {
    tokio::task::yield_now().await;
    batch.into_iter().map(|v| black_box(v) * 2).collect()
}

fn parallel_maps(c: &mut Criterion) {
    let threads = *thread_counts().last().unwrap_or(&1);
    let rt = runtime(threads);
    let value = threads_param(threads);

    let mut group = c.benchmark_group("pipeline/map_ordered");
    group.sample_size(10).throughput(Throughput::Elements(PARALLEL_ITEMS));
    group.bench_function(BenchmarkId::new(OURS, &value), |b| {
        b.iter(|| rt.block_on(sum(Pipeline::from_iter(0..PARALLEL_ITEMS).map_ordered(WORKERS, double).unwrap())));
    });
    group.bench_function(BenchmarkId::new("futures", &value), |b| {
        b.iter(|| rt.block_on(sum_stream(futures::stream::iter(0..PARALLEL_ITEMS).map(double).buffered(WORKERS))));
    });
    group.finish();

    let mut group = c.benchmark_group("pipeline/map_concurrent");
    group.sample_size(10).throughput(Throughput::Elements(PARALLEL_ITEMS));
    group.bench_function(BenchmarkId::new(OURS, &value), |b| {
        b.iter(|| rt.block_on(sum(Pipeline::from_iter(0..PARALLEL_ITEMS).map_concurrent(WORKERS, double).unwrap())));
    });
    group.bench_function(BenchmarkId::new("futures", &value), |b| {
        b.iter(|| {
            rt.block_on(sum_stream(futures::stream::iter(0..PARALLEL_ITEMS).map(double).buffer_unordered(WORKERS)))
        });
    });
    group.finish();
}

fn batching(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline/batching");
    group.sample_size(10).throughput(Throughput::Elements(PARALLEL_ITEMS));
    for threads in thread_counts() {
        let rt = runtime(threads);
        let value = threads_param(threads);
        group.bench_function(BenchmarkId::new(OURS, &value), |b| {
            b.iter(|| {
                let batched = Pipeline::from_iter(0..PARALLEL_ITEMS).batch(256, Duration::from_millis(1)).unwrap();
                rt.block_on(sum(batched.map_concurrent(1, write_batch).unwrap().unbatch()))
            });
        });
        group.bench_function(BenchmarkId::new("unbatched", &value), |b| {
            b.iter(|| rt.block_on(sum(Pipeline::from_iter(0..PARALLEL_ITEMS).map_concurrent(1, write_one).unwrap())));
        });
    }
    group.finish();
}

fn sequential_async(c: &mut Criterion) {
    let threads = *thread_counts().last().unwrap_or(&1);
    let rt = runtime(threads);
    let value = threads_param(threads);
    let mut group = c.benchmark_group("pipeline/then");
    group.sample_size(10).throughput(Throughput::Elements(PARALLEL_ITEMS));
    group.bench_function(BenchmarkId::new(OURS, &value), |b| {
        b.iter(|| rt.block_on(sum(Pipeline::from_iter(0..PARALLEL_ITEMS).then(write_one))));
    });
    group.bench_function(BenchmarkId::new("map_concurrent_1", &value), |b| {
        b.iter(|| rt.block_on(sum(Pipeline::from_iter(0..PARALLEL_ITEMS).map_concurrent(1, write_one).unwrap())));
    });
    group.bench_function(BenchmarkId::new("futures", &value), |b| {
        b.iter(|| rt.block_on(sum_stream(futures::stream::iter(0..PARALLEL_ITEMS).then(write_one))));
    });
    group.finish();
}

/// A shorter warm-up and measurement than criterion's defaults (3 s, 5 s).
fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = three_stage_map, parallel_maps, batching, sequential_async
}
criterion_main!(benches);
