//! The fallible stages of `conc-pipeline` under each error policy:
//!
//! - every fallible stage added after the first release (`try_filter`,
//!   `try_flat_map`, `try_then`, `try_partition_by`) against each
//!   `ErrorPolicy` — fail fast, skip, side output — set for the whole
//!   pipeline or overridden for the stage, with the items, error counts and
//!   task counts each must leave;
//! - the Go guide "Advanced Concurrency Patterns in Go" (`shared/seeds/`):
//!   a generator of 1..=100, three processors that fail on some numbers
//!   and double the rest, merged; Go sends `Result{Value, Err}` down one
//!   channel, here errors go to a side output.

use std::collections::BTreeSet;
use std::time::Duration;

use conc_core::channel::unbounded;
use conc_pipeline::{ErrorPolicy, Pipeline, PipelineError};

/// Items per run; fewer under miri, which runs ~1000x slower.
const ITEMS: u64 = if cfg!(miri) { 40 } else { 200 };

/// The items every stage below rejects.
fn is_bad(n: u64) -> bool {
    n % 7 == 3
}

fn check(n: u64) -> Result<u64, String> {
    if is_bad(n) { Err(format!("bad item {n}")) } else { Ok(n) }
}

/// A deterministic spread of delays, so the parallel stage reorders items.
fn delay_for(n: u64) -> Duration {
    Duration::from_millis(n.wrapping_mul(7919) % 5)
}

/// The fallible stages under test, each named by what it adds to `try_`.
#[derive(Clone, Copy, Debug)]
enum Stage {
    Filter,
    FlatMap,
    Then,
    PartitionBy,
}

const STAGES: [Stage; 4] = [Stage::Filter, Stage::FlatMap, Stage::Then, Stage::PartitionBy];

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Filter => "try_filter",
            Stage::FlatMap => "try_flat_map",
            Stage::Then => "try_then",
            Stage::PartitionBy => "try_partition_by",
        }
    }

    /// Adds the stage: each rejects the bad items and passes the others on
    /// unchanged (`try_flat_map` as one item each).
    fn add(self, pipeline: Pipeline<u64>) -> Pipeline<u64> {
        match self {
            Stage::Filter => pipeline.try_filter(|&n| check(n).map(|_| true)),
            Stage::FlatMap => pipeline.try_flat_map(|n| check(n).map(|n| [n])),
            Stage::Then => pipeline.try_then(|n| async move {
                tokio::task::yield_now().await;
                check(n)
            }),
            Stage::PartitionBy => pipeline
                .try_partition_by(
                    |n| n % 4,
                    3,
                    |n| async move {
                        tokio::time::sleep(delay_for(n)).await;
                        check(n)
                    },
                )
                .unwrap(),
        }
    }

    /// Whether the stage keeps input order (the partitioned one keeps it per key).
    fn ordered(self) -> bool {
        !matches!(self, Stage::PartitionBy)
    }
}

fn good_items() -> Vec<u64> {
    (0..ITEMS).filter(|&n| !is_bad(n)).collect()
}

fn bad_items() -> BTreeSet<u64> {
    (0..ITEMS).filter(|&n| is_bad(n)).collect()
}

/// The output holds exactly the good items: in input order, or for the
/// partitioned stage in input order within each key.
fn assert_good(stage: Stage, out: &[u64]) {
    if stage.ordered() {
        assert_eq!(out, good_items(), "{stage:?}");
        return;
    }
    for key in 0..4 {
        let of_key: Vec<u64> = out.iter().copied().filter(|n| n % 4 == key).collect();
        let expected: Vec<u64> = good_items().into_iter().filter(|n| n % 4 == key).collect();
        assert_eq!(of_key, expected, "{stage:?}, key {key}");
    }
}

#[tokio::test(start_paused = true)]
async fn fail_fast_stops_every_stage_on_the_first_error() {
    for stage in STAGES {
        let pipeline = stage.add(Pipeline::from_iter(0..u64::MAX)).map(|n| n + 1);
        let progress = pipeline.progress();
        let error = pipeline.run().await.unwrap_err();
        let PipelineError::Stage { stage: failed, source, report } = error else {
            panic!("{stage:?}: expected a stage error, got {error:?}")
        };
        assert_eq!(failed, stage.name());
        let message = source.to_string();
        let item: u64 = message.strip_prefix("bad item ").and_then(|n| n.parse().ok()).unwrap();
        assert!(is_bad(item), "{stage:?}: {message}");
        if stage.ordered() {
            assert_eq!(item, 3, "{stage:?}: a sequential stage fails on the first bad item");
        }
        assert!(report.stage(stage.name()).unwrap().errors >= 1);
        assert!(report.stages[0].items_in < u64::MAX, "{stage:?}: the source was stopped");
        assert_eq!(progress.live_tasks(), 0, "{stage:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn skip_for_the_whole_pipeline_drops_and_counts_each_failed_item() {
    for stage in STAGES {
        let pipeline = stage.add(Pipeline::from_iter(0..ITEMS).error_policy(ErrorPolicy::Skip));
        let progress = pipeline.progress();
        let out = pipeline.collect().await.unwrap();
        assert_good(stage, &out);
        let report = &progress.stages()[1];
        assert_eq!((report.items_in, report.errors), (ITEMS, bad_items().len() as u64), "{stage:?}");
        assert_eq!(report.items_out, good_items().len() as u64, "{stage:?}");
        assert_eq!(progress.dropped_in_flight(), 0);
        assert_eq!(progress.live_tasks(), 0, "{stage:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_stages_side_output_overrides_the_pipelines_policy() {
    for stage in STAGES {
        let (errors_tx, errors_rx) = unbounded();
        let pipeline = stage
            .add(Pipeline::from_iter(0..ITEMS).error_policy(ErrorPolicy::FailFast))
            .on_error(ErrorPolicy::SideOutput(errors_tx))
            .named("checked");
        let progress = pipeline.progress();
        let out = pipeline.collect().await.unwrap();
        assert_good(stage, &out);
        let mut rejected = BTreeSet::new();
        while let Ok(error) = errors_rx.try_recv() {
            assert_eq!(error.stage, "checked");
            let item = error.error.to_string().strip_prefix("bad item ").and_then(|n| n.parse().ok()).unwrap();
            assert!(rejected.insert(item), "{stage:?}: {item} reported twice");
        }
        assert_eq!(rejected, bad_items(), "{stage:?}");
        assert_eq!(progress.live_tasks(), 0, "{stage:?}");
    }
}

/// Go: `input := generator(ctx)`; `processor(ctx, i, input)` for three
/// processors reading the one input channel; `merge(ctx, p1, p2, p3)`; main
/// prints `Error: processor N: error processing X` or `Result: 2X`. The
/// Go program's errors are random (10%); here every tenth number fails, so
/// the output is known: 90 doubled values, 10 errors (under miri, 1..=30).
#[tokio::test(start_paused = true)]
async fn go_generator_processors_merge_with_errors() {
    let (input_tx, input_rx) = conc_core::channel::bounded::<u64>(1).unwrap();
    let last: u64 = if cfg!(miri) { 30 } else { 100 };
    let generator = Pipeline::from_iter(1..=last).for_each(move |n| {
        let input_tx = input_tx.clone();
        async move { conc_core::channel::Sender::send(&input_tx, n).await.unwrap() }
    });
    let (errors_tx, errors_rx) = unbounded();
    let processors = (1..=3).map(|id| {
        // A processor handles one number at a time: a sequential `try_then`.
        Pipeline::from_receiver(input_rx.clone())
            .try_then(move |num: u64| async move {
                tokio::time::sleep(Duration::from_millis(num * 37 % 100)).await;
                if num % 10 == 0 { Err(format!("processor {id}: error processing {num}")) } else { Ok(num * 2) }
            })
            // Each part of a merge keeps its own policy.
            .on_error(ErrorPolicy::SideOutput(errors_tx.clone()))
    });
    let merged = Pipeline::merge(processors.collect::<Vec<_>>());
    drop(errors_tx);
    drop(input_rx);
    let progress = merged.progress();
    let (generated, results) = tokio::join!(generator, merged.collect());
    generated.unwrap();
    let mut results = results.unwrap();
    results.sort_unstable();
    assert_eq!(results, (1..=last).filter(|n| n % 10 != 0).map(|n| n * 2).collect::<Vec<_>>());
    let mut failed = Vec::new();
    while let Ok(error) = errors_rx.try_recv() {
        let message = error.error.to_string();
        let (processor, num) = message.split_once(": error processing ").unwrap();
        assert!(["processor 1", "processor 2", "processor 3"].contains(&processor), "{message}");
        failed.push(num.parse::<u64>().unwrap());
    }
    failed.sort_unstable();
    assert_eq!(failed, (1..=last / 10).map(|n| n * 10).collect::<Vec<_>>());
    // Each processor took its share of the numbers.
    let busy: Vec<u64> =
        progress.stages().iter().filter(|stage| stage.name == "try_then").map(|stage| stage.items_in).collect();
    assert_eq!(busy.len(), 3);
    assert!(busy.iter().all(|&taken| taken > 0), "{busy:?}");
    assert_eq!(busy.iter().sum::<u64>(), last);
    assert_eq!(progress.live_tasks(), 0);
}
