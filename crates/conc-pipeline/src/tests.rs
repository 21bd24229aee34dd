//! Unit tests of the pipeline's stages, sinks, policies and accounting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_core::Token;
use futures_lite::StreamExt;

use crate::{BoxError, BuildError, ErrorPolicy, Pipeline, PipelineError};

/// `full` items normally, a twentieth under miri (which runs ~1000x slower).
const fn scaled(full: u64) -> u64 {
    if cfg!(miri) { full / 20 } else { full }
}

/// A deterministic spread of small delays, so timing tests reorder items
/// without depending on luck.
fn delay_for(n: u64) -> Duration {
    Duration::from_millis(n.wrapping_mul(7919) % 13)
}

/// Tracks how many calls run at once and the most ever seen.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn stages_transform_in_order() {
    let out = Pipeline::from_iter(0..scaled(1000) as u32)
        .map(|n| n + 1)
        .filter(|n| n % 2 == 0)
        .filter_map(|n| (n % 3 != 0).then_some(n))
        .flat_map(|n| [n, n])
        .inspect(|_| {})
        .collect()
        .await
        .unwrap();
    let expected: Vec<u32> =
        (1..=scaled(1000) as u32).filter(|n| n % 2 == 0 && n % 3 != 0).flat_map(|n| [n, n]).collect();
    assert_eq!(out, expected);
}

#[tokio::test]
async fn every_sink_sees_every_item() {
    let sum = Pipeline::from_iter(1..=100_u64).fold(0, |acc, n| acc + n).await.unwrap();
    assert_eq!(sum, 5050);

    let mut seen = Vec::new();
    let report = Pipeline::from_iter(1..=10).map(|n| n * 10).for_each(|n| {
        seen.push(n);
        async {}
    });
    let report = report.await.unwrap();
    assert_eq!(seen, (1..=10).map(|n| n * 10).collect::<Vec<_>>());
    assert_eq!(report.stage("map").unwrap().items_out, 10);
    assert_eq!(report.dropped_in_flight, 0);

    let report = Pipeline::from_iter(0..77).map(|n| n).run().await.unwrap();
    assert_eq!(report.stages[0].items_out, 77);

    let mut stream = Pipeline::from_iter(0..5).map(|n| n * 2).into_stream();
    let mut got = Vec::new();
    while let Some(n) = stream.next().await {
        got.push(n);
    }
    assert_eq!(got, vec![0, 2, 4, 6, 8]);
    assert!(stream.finish().await.is_ok());
}

#[tokio::test]
async fn bad_settings_are_rejected_when_built() {
    assert_eq!(Pipeline::from_iter(0..1).capacity(0).unwrap_err(), BuildError::ZeroCapacity);
    assert_eq!(Pipeline::from_iter(0..1).buffer(0).unwrap_err(), BuildError::ZeroCapacity);
    assert_eq!(Pipeline::from_iter(0..1).batch(0, Duration::ZERO).unwrap_err(), BuildError::ZeroBatchSize);
    assert_eq!(
        Pipeline::from_iter(0..1).map_concurrent(0, |n| async move { n }).unwrap_err(),
        BuildError::ZeroConcurrency
    );
    assert_eq!(
        Pipeline::from_iter(0..1).map_ordered(0, |n| async move { n }).unwrap_err(),
        BuildError::ZeroConcurrency
    );
    assert_eq!(
        Pipeline::from_iter(0..1).partition_by(|n| *n, 0, |n| async move { n }).unwrap_err(),
        BuildError::ZeroConcurrency
    );
    assert_eq!(Pipeline::from_iter(0..1).tee(0).unwrap_err(), BuildError::ZeroBranches);
    let running = Pipeline::from_iter(0..1).map_concurrent(2, |n| async move { n }).unwrap();
    assert_eq!(running.concurrency().unwrap().set_concurrency(0), Err(BuildError::ZeroConcurrency));
}

/// A source that, for each step, waits its milliseconds and then sends its
/// items; it ends after the last step.
fn scripted(script: Vec<(u64, Vec<i32>)>) -> Pipeline<i32> {
    Pipeline::generate(|out, _| async move {
        for (wait, items) in script {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            for n in items {
                out.send(n).await.unwrap();
            }
        }
    })
}

/// Every batch the pipeline emits, with the milliseconds since the start.
async fn timed_batches<T: Send + 'static>(pipeline: Pipeline<Vec<T>>) -> Vec<(Vec<T>, u128)> {
    let start = tokio::time::Instant::now();
    let mut stream = pipeline.into_stream();
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push((batch, start.elapsed().as_millis()));
    }
    stream.finish().await.unwrap();
    batches
}

#[tokio::test(start_paused = true)]
async fn batches_fill_or_time_out() {
    // Items 0..5 at once, then one more after 50 ms, then two after 200 ms.
    let pipeline = scripted(vec![(0, vec![0, 1, 2, 3, 4]), (50, vec![5]), (200, vec![6, 7])])
        .batch(4, Duration::from_millis(100))
        .unwrap();
    let batches = timed_batches(pipeline).await;
    // [0..4) is full at once; [4, 5] times out 100 ms after item 4 came;
    // [6, 7] is sent when the input ends at 250 ms.
    assert_eq!(batches, vec![(vec![0, 1, 2, 3], 0), (vec![4, 5], 100), (vec![6, 7], 250)]);
}

#[tokio::test]
async fn unbatch_undoes_batch() {
    let out = Pipeline::from_iter(0..100).batch(7, Duration::from_secs(1)).unwrap().unbatch().collect().await.unwrap();
    assert_eq!(out, (0..100).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn map_ordered_keeps_input_order_under_random_delays() {
    let flight = Arc::new(InFlight::default());
    let f = Arc::clone(&flight);
    let items = scaled(300);
    let out = Pipeline::from_iter(0..items)
        .map_ordered(6, move |n| {
            let f = Arc::clone(&f);
            async move {
                f.enter();
                tokio::time::sleep(delay_for(n)).await;
                f.exit();
                n * 3
            }
        })
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out, (0..items).map(|n| n * 3).collect::<Vec<_>>());
    assert_eq!(flight.max.load(Ordering::SeqCst), 6);
}

#[tokio::test(start_paused = true)]
async fn map_concurrent_runs_n_at_once_and_loses_nothing() {
    let flight = Arc::new(InFlight::default());
    let f = Arc::clone(&flight);
    let items = scaled(300);
    let mut out = Pipeline::from_iter(0..items)
        .map_concurrent(5, move |n| {
            let f = Arc::clone(&f);
            async move {
                f.enter();
                tokio::time::sleep(delay_for(n)).await;
                f.exit();
                n
            }
        })
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_ne!(out, (0..items).collect::<Vec<_>>(), "delays should reorder an unordered stage");
    out.sort_unstable();
    assert_eq!(out, (0..items).collect::<Vec<_>>());
    assert_eq!(flight.max.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn map_ordered_memory_is_bounded_by_its_window() {
    // Item 0 takes an hour; the stage must stop taking input once it is a
    // window ahead, instead of buffering every later result.
    let taken = Arc::new(AtomicUsize::new(0));
    let t = Arc::clone(&taken);
    let pipeline = Pipeline::from_iter(0..10_000_u64)
        .capacity(1)
        .unwrap()
        .inspect(move |_| {
            t.fetch_add(1, Ordering::SeqCst);
        })
        .capacity(1)
        .unwrap()
        .map_ordered(2, |n| async move {
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            n
        })
        .unwrap();
    let token = pipeline.token();
    let run = tokio::spawn(pipeline.run());
    tokio::time::sleep(Duration::from_secs(60)).await;
    // The window (64 for 2 workers), the item the dispatcher holds until
    // it fits, one in the capacity-1 link before it and one in the hands
    // of the inspect stage, blocked on that link.
    let taken_now = taken.load(Ordering::SeqCst);
    assert_eq!(taken_now, 64 + 1 + 1 + 1, "items taken while item 0 was stuck");
    token.cancel();
    let error = run.await.unwrap().unwrap_err();
    assert!(error.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn partition_by_keeps_each_keys_order() {
    let items = scaled(400);
    let out = Pipeline::from_iter(0..items)
        .partition_by(
            |n| n % 7,
            3,
            |n| async move {
                tokio::time::sleep(delay_for(n)).await;
                n
            },
        )
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.len() as u64, items);
    for key in 0..7 {
        let of_key: Vec<u64> = out.iter().copied().filter(|n| n % 7 == key).collect();
        assert!(of_key.is_sorted(), "key {key} out of order: {of_key:?}");
    }
    assert_ne!(out, (0..items).collect::<Vec<_>>(), "different keys should interleave");
}

#[tokio::test(start_paused = true)]
async fn workers_keep_going_while_the_sink_is_busy() {
    // futures-rs #2387: `buffered` polls its futures only when the consumer
    // polls, so a busy consumer stalls them. Here workers are tasks.
    let done = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&done);
    let mut first = true;
    let done_seen = Arc::clone(&done);
    Pipeline::from_iter(0..200_u64)
        .map_concurrent(4, move |n| {
            let d = Arc::clone(&d);
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                d.fetch_add(1, Ordering::SeqCst);
                n
            }
        })
        .unwrap()
        .capacity(32)
        .unwrap()
        .for_each(|_| {
            let busy = first;
            first = false;
            let done_seen = Arc::clone(&done_seen);
            async move {
                if busy {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    // 10 s of work at 4 x 10 ms: the workers filled the
                    // output (32, in chunks of a quarter) and their own
                    // hands (a chunk of 8 each) while the sink was busy
                    // with the first item of the chunk of 8 it took.
                    let finished = done_seen.load(Ordering::SeqCst);
                    assert_eq!(finished, 32 + 8 + 4 * 8, "items done while the sink was busy");
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 200);
}

#[tokio::test(start_paused = true)]
async fn concurrency_changes_while_running() {
    let flight = Arc::new(InFlight::default());
    let f = Arc::clone(&flight);
    // Enough items to outlast the three phases below (about 40 items).
    let items = if cfg!(miri) { 80 } else { 200 };
    let pipeline = Pipeline::from_iter(0..items)
        .map_concurrent(1, move |n| {
            let f = Arc::clone(&f);
            async move {
                f.enter();
                tokio::time::sleep(Duration::from_millis(10)).await;
                f.exit();
                n
            }
        })
        .unwrap();
    let control = pipeline.concurrency().unwrap();
    let progress = pipeline.progress();
    let run = tokio::spawn(pipeline.run());
    tokio::time::sleep(Duration::from_millis(55)).await;
    assert_eq!(flight.max.load(Ordering::SeqCst), 1);
    control.set_concurrency(4).unwrap();
    tokio::time::sleep(Duration::from_millis(55)).await;
    assert_eq!(flight.max.load(Ordering::SeqCst), 4);
    assert_eq!(control.live_workers(), 4);
    control.set_concurrency(2).unwrap();
    tokio::time::sleep(Duration::from_millis(55)).await;
    assert_eq!(control.live_workers(), 2);
    assert_eq!(flight.now.load(Ordering::SeqCst), 2);
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.stage("map_concurrent").unwrap().items_out, items);
    assert_eq!(progress.live_tasks(), 0);
}

#[tokio::test]
async fn fail_fast_cancels_every_stage_and_reports_the_first_error() {
    let pipeline = Pipeline::from_iter(0..u64::MAX)
        .map(|n| n + 1)
        .try_map(|n| if n == 50 { Err(format!("bad item {n}")) } else { Ok(n) })
        .map_concurrent(3, |n| async move { n })
        .unwrap();
    let progress = pipeline.progress();
    let error = pipeline.run().await.unwrap_err();
    match &error {
        PipelineError::Stage { stage, source, .. } => {
            assert_eq!(stage, "try_map");
            assert_eq!(source.to_string(), "bad item 50");
        }
        other => panic!("expected a stage error, got {other:?}"),
    }
    assert_eq!(error.report().stage("try_map").unwrap().errors, 1);
    assert_eq!(progress.live_tasks(), 0);
}

#[tokio::test]
async fn skip_counts_and_side_output_receives_errors() {
    let out = Pipeline::from_iter(0..100)
        .try_map(|n| if n % 10 == 0 { Err("tens") } else { Ok(n) })
        .on_error(ErrorPolicy::Skip)
        .collect()
        .await
        .unwrap();
    assert_eq!(out.len(), 90);

    let (errors_tx, errors_rx) = conc_core::channel::unbounded();
    let report = Pipeline::from_iter(0..100_u32)
        .error_policy(ErrorPolicy::SideOutput(errors_tx))
        .try_map_ordered(4, |n| async move { if n % 25 == 0 { Err(format!("no {n}")) } else { Ok(n) } })
        .unwrap()
        .named("check")
        .run()
        .await
        .unwrap();
    assert_eq!(report.stage("check").unwrap().errors, 4);
    assert_eq!(report.stage("check").unwrap().items_out, 96);
    let mut messages = Vec::new();
    while let Ok(error) = errors_rx.try_recv() {
        assert_eq!(error.stage, "check");
        messages.push(error.error.to_string());
    }
    messages.sort();
    assert_eq!(messages, vec!["no 0", "no 25", "no 50", "no 75"]);
}

#[tokio::test]
async fn a_panicking_stage_fails_the_run_without_leaks() {
    let pipeline = Pipeline::from_iter(0..10_000).map(|n| {
        assert!(n != 123, "boom at {n}");
        n
    });
    let progress = pipeline.progress();
    match pipeline.run().await.unwrap_err() {
        PipelineError::Panicked { stage, message, .. } => {
            assert_eq!(stage, "map");
            assert_eq!(message, "boom at 123");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(progress.live_tasks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_drops_in_flight_items_and_counts_every_one() {
    for concurrent in [false, true] {
        let token = Token::new();
        let received = Arc::new(AtomicUsize::new(0));
        // Small links: the source runs ahead by their sum before the cancel,
        // and every item it makes costs time under miri.
        let pipeline = Pipeline::from_iter(0..u64::MAX).with_token(token.clone()).capacity(64).unwrap();
        let pipeline = pipeline.map(|n| n * 2).capacity(64).unwrap();
        let pipeline = if concurrent {
            let ordered = pipeline.map_ordered(3, |n| async move { n }).unwrap().capacity(64).unwrap();
            ordered.map_concurrent(2, |n| async move { n }).unwrap()
        } else {
            pipeline.filter(|_| true)
        };
        let progress = pipeline.progress();
        let r = Arc::clone(&received);
        let result = pipeline
            .for_each(move |_| {
                if r.fetch_add(1, Ordering::SeqCst) == scaled(5000) as usize {
                    token.cancel();
                }
                async {}
            })
            .await;
        let PipelineError::Cancelled { cause, report } = result.unwrap_err() else { panic!("expected a cancel") };
        assert!(matches!(cause, conc_core::Cause::Cancelled));
        // The source's items_in counts what it took from the iterator.
        let produced = report.stages[0].items_in;
        let consumed = received.load(Ordering::SeqCst) as u64;
        // Every item the source produced was either consumed or counted.
        assert_eq!(produced, consumed + report.dropped_in_flight, "{report:#?}");
        assert!(report.dropped_in_flight > 0);
        assert_eq!(progress.live_tasks(), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_sink_bounds_what_is_buffered_upstream() {
    let produced = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&produced);
    let consumed = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&consumed);
    let max_buffered = Arc::new(AtomicUsize::new(0));
    let m = Arc::clone(&max_buffered);
    let items = scaled(2000) as usize;
    Pipeline::from_iter(0..items)
        .inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        })
        .capacity(8)
        .unwrap()
        .map(|n| n)
        .capacity(8)
        .unwrap()
        .filter(|_| true)
        .capacity(8)
        .unwrap()
        .for_each(move |_| {
            let buffered = produced.load(Ordering::SeqCst) - c.fetch_add(1, Ordering::SeqCst);
            m.fetch_max(buffered, Ordering::SeqCst);
            async { tokio::time::sleep(Duration::from_millis(1)).await }
        })
        .await
        .unwrap();
    assert_eq!(consumed.load(Ordering::SeqCst), items);
    // Links 8 + 8 + 8 (plus the source's, which the inspect stage drains),
    // and one input and one output chunk of 8 in the hands of the map and
    // filter stages, and the chunk the sink is working through.
    let bound = 8 + 8 + 8 + 2 * 8 * 2 + 8;
    let max = max_buffered.load(Ordering::SeqCst);
    assert!(max <= bound, "{max} items buffered, bound {bound}");
    assert!(max >= 16, "the stages should have run ahead of the sink ({max})");
}

#[tokio::test(start_paused = true)]
async fn progress_shows_busy_and_waiting_time() {
    let pipeline = Pipeline::from_iter(0..20_u64)
        .named("numbers")
        .map_concurrent(1, |n| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            n
        })
        .unwrap()
        .named("slow")
        .capacity(1)
        .unwrap();
    let progress = pipeline.progress();
    let report = pipeline.for_each(|_| async { tokio::time::sleep(Duration::from_millis(300)).await }).await.unwrap();
    let slow = report.stage("slow").unwrap();
    assert_eq!(slow.busy, Duration::from_millis(2000));
    // The sink (300 ms an item) is slower still: the slow stage waits on it.
    assert!(slow.waiting_downstream >= Duration::from_millis(3000), "{slow:?}");
    assert_eq!(progress.stages().len(), 2);
    assert_eq!(progress.stages()[1], *slow);
}

#[tokio::test]
async fn sources_from_stream_receiver_and_generator() {
    let out = Pipeline::from_stream(futures_lite::stream::iter(0..50)).map(|n| n + 1).collect().await.unwrap();
    assert_eq!(out, (1..=50).collect::<Vec<_>>());

    let (tx, rx) = conc_core::channel::bounded(4).unwrap();
    let feeder = tokio::spawn(async move {
        for n in 0..30 {
            conc_core::channel::Sender::send(&tx, n).await.unwrap();
        }
    });
    let out = Pipeline::from_receiver(rx).collect().await.unwrap();
    feeder.await.unwrap();
    assert_eq!(out, (0..30).collect::<Vec<_>>());

    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        for n in 0..10 {
            tx.send(n).await.unwrap();
        }
    });
    assert_eq!(Pipeline::from_receiver(rx).collect().await.unwrap(), (0..10).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_a_waiting_generator_promptly() {
    let token = Token::new();
    let pipeline = Pipeline::generate(|out, token| async move {
        out.send(1).await.unwrap();
        // Ignores its token: the pipeline drops it on cancel anyway.
        let _ = token;
        std::future::pending::<()>().await;
    })
    .with_token(token.clone());
    let progress = pipeline.progress();
    let run = tokio::spawn(pipeline.collect());
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(progress.live_tasks(), 1);
    token.cancel();
    let error = run.await.unwrap().unwrap_err();
    assert!(error.is_cancelled());
    assert_eq!(progress.live_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_workers_stuck_in_calls_that_never_end() {
    for kind in ["map_concurrent", "map_ordered", "partition_by"] {
        let token = Token::new();
        let started = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&started);
        let call = move |n: u64| {
            s.fetch_add(1, Ordering::SeqCst);
            async move {
                std::future::pending::<()>().await;
                n
            }
        };
        let source = Pipeline::from_iter(0..10u64).with_token(token.clone());
        let pipeline = match kind {
            "map_concurrent" => source.map_concurrent(3, call).unwrap(),
            "map_ordered" => source.map_ordered(3, call).unwrap(),
            _ => source.partition_by(|n: &u64| *n, 3, call).unwrap(),
        };
        let progress = pipeline.progress();
        let run = tokio::spawn(pipeline.collect());
        // Waiting for a condition, not for time (paused time moves on by
        // itself): the first call is stuck; one more turn lets every task
        // run until it waits, so each worker with an item is in its call.
        while started.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        let stuck = started.load(Ordering::SeqCst) as u64;
        token.cancel();
        // Paused time jumps ahead once every task waits: a run still
        // waiting for its stuck calls fails here rather than hang.
        let Ok(finished) = tokio::time::timeout(Duration::from_secs(3600), run).await else {
            panic!("{kind}: the cancel did not stop the workers stuck in their calls")
        };
        let PipelineError::Cancelled { report, .. } = finished.unwrap().unwrap_err() else {
            panic!("{kind}: expected a cancel")
        };
        // Nothing came out: every item taken is counted as dropped, the
        // three stuck in calls included.
        assert_eq!(report.stages[0].items_in, report.dropped_in_flight, "{kind}: {report:#?}");
        assert!(report.dropped_in_flight >= stuck, "{kind}: {report:#?}");
        assert_eq!(progress.live_tasks(), 0, "{kind}");
    }
}

#[tokio::test]
async fn merge_and_tee() {
    let merged = Pipeline::merge([
        Pipeline::from_iter(0..100),
        Pipeline::from_iter(100..200).map(|n| n),
        Pipeline::from_iter(200..250),
    ]);
    let mut out = merged.collect().await.unwrap();
    out.sort_unstable();
    assert_eq!(out, (0..250).collect::<Vec<_>>());

    let items = scaled(1000);
    let mut branches = Pipeline::from_iter(0..items).tee(2).unwrap();
    let odd = branches.pop().unwrap().filter(|n| n % 2 == 1).fold(0, |a, n| a + n);
    let all = branches.pop().unwrap().collect();
    let (odd, all) = tokio::join!(odd, all);
    assert_eq!(odd.unwrap(), (0..items).filter(|n| n % 2 == 1).sum::<u64>());
    assert_eq!(all.unwrap(), (0..items).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_dropped_tee_branch_gets_nothing_and_holds_nothing_back() {
    let mut branches = Pipeline::from_iter(0..500).tee(3).unwrap();
    drop(branches.remove(1));
    let (a, b) = tokio::join!(branches.remove(0).collect(), branches.remove(0).collect());
    assert_eq!(a.unwrap().len(), 500);
    assert_eq!(b.unwrap().len(), 500);
}

#[tokio::test]
async fn dropping_the_sink_future_stops_every_task() {
    // Small links keep the run ahead of the sink short (and cheap under miri).
    let pipeline = Pipeline::from_iter(0..u64::MAX).capacity(64).unwrap().map(|n| n).capacity(64).unwrap();
    let pipeline = pipeline.map_concurrent(3, |n| async move { n }).unwrap();
    let progress = pipeline.progress();
    let mut stream = pipeline.into_stream();
    assert_eq!(stream.next().await, Some(0));
    assert!(progress.live_tasks() > 0);
    drop(stream);
    // Aborted tasks are dropped when the runtime next polls them.
    for _ in 0..100 {
        if progress.live_tasks() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(progress.live_tasks(), 0);
}

#[tokio::test]
async fn finishing_a_stream_early_reports_a_cancel() {
    let mut stream = Pipeline::from_iter(0..10_000).into_stream();
    assert_eq!(stream.next().await, Some(0));
    let progress = stream.progress();
    let error = stream.finish().await.unwrap_err();
    assert!(error.is_cancelled());
    assert_eq!(progress.live_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn then_awaits_one_item_at_a_time_in_order() {
    let flight = Arc::new(InFlight::default());
    let f = Arc::clone(&flight);
    let items = scaled(200);
    let mut calls = 0_u64;
    let out = Pipeline::from_iter(0..items)
        .then(move |n| {
            calls += 1;
            let call = calls;
            let f = Arc::clone(&f);
            async move {
                f.enter();
                tokio::time::sleep(delay_for(n)).await;
                f.exit();
                (n, call)
            }
        })
        .collect()
        .await
        .unwrap();
    assert_eq!(out, (0..items).map(|n| (n, n + 1)).collect::<Vec<_>>());
    assert_eq!(flight.max.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn then_sends_results_on_while_its_function_waits() {
    // Item 3's call takes an hour; items 0..3 must not wait for it in a
    // half-filled chunk: they leave once they have been held for HOLD.
    let pipeline = Pipeline::from_iter(0..10_u64).then(|n| async move {
        if n == 3 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        n
    });
    let token = pipeline.token();
    let progress = pipeline.progress();
    let received = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&received);
    let run = tokio::spawn(pipeline.for_each(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
        async {}
    }));
    tokio::time::sleep(crate::stage::HOLD / 2).await;
    assert_eq!(received.load(Ordering::SeqCst), 0);
    tokio::time::sleep(crate::stage::HOLD).await;
    assert_eq!(received.load(Ordering::SeqCst), 3);
    // Cancelling drops the waiting call at once: the hour does not pass.
    let cancelled_at = tokio::time::Instant::now();
    token.cancel();
    let error = run.await.unwrap().unwrap_err();
    assert_eq!(cancelled_at.elapsed(), Duration::ZERO);
    let PipelineError::Cancelled { report, .. } = error else { panic!("expected a cancel") };
    // Item 3 (waiting) and 4..10 (in the stage's input chunk) were dropped.
    assert_eq!(report.dropped_in_flight, 7);
    assert_eq!(report.stage("then").unwrap().items_out, 3);
    assert_eq!(progress.live_tasks(), 0);
}

#[tokio::test]
async fn then_is_fail_fast_and_skip_aware_in_its_fallible_form() {
    let error = Pipeline::from_iter(0..u64::MAX)
        .try_then(|n| async move { if n == 40 { Err(format!("write {n} failed")) } else { Ok(n) } })
        .map(|n| n * 2)
        .run()
        .await
        .unwrap_err();
    let PipelineError::Stage { stage, source, report } = error else { panic!("expected a stage error") };
    assert_eq!((stage.as_str(), source.to_string().as_str()), ("try_then", "write 40 failed"));
    assert_eq!(report.stage("try_then").unwrap().errors, 1);

    let out = Pipeline::from_iter(0..30_u64)
        .try_then(|n| async move {
            tokio::task::yield_now().await;
            if n % 3 == 0 { Err("multiple of three") } else { Ok(n) }
        })
        .on_error(ErrorPolicy::Skip)
        .collect()
        .await
        .unwrap();
    assert_eq!(out, (0..30).filter(|n| n % 3 != 0).collect::<Vec<_>>());
}

#[tokio::test]
async fn try_filter_and_try_flat_map_apply_their_policy() {
    let parse = |s: &&str| s.parse::<u8>().map(|n| n % 2 == 0);
    let error = Pipeline::from_iter(["2", "3", "x", "4"]).try_filter(parse).collect().await.unwrap_err();
    let PipelineError::Stage { stage, report, .. } = error else { panic!("expected a stage error") };
    assert_eq!(stage, "try_filter");
    assert_eq!(report.errors(), 1);

    let kept = Pipeline::from_iter(["2", "3", "x", "4", "y"])
        .try_filter(parse)
        .on_error(ErrorPolicy::Skip)
        .named("even")
        .run()
        .await
        .unwrap();
    let even = kept.stage("even").unwrap();
    assert_eq!((even.items_in, even.items_out, even.errors), (5, 2, 2));

    let (errors_tx, errors_rx) = conc_core::channel::unbounded();
    let out = Pipeline::from_iter(0..10_u32)
        .error_policy(ErrorPolicy::SideOutput(errors_tx))
        .try_flat_map(|n| if n == 4 { Err("four") } else { Ok(vec![n; n as usize % 3]) })
        .collect()
        .await
        .unwrap();
    let expected: Vec<u32> = (0..10).filter(|&n| n != 4).flat_map(|n| vec![n; n as usize % 3]).collect();
    assert_eq!(out, expected);
    let error = errors_rx.try_recv().unwrap();
    assert_eq!((error.stage.as_str(), error.error.to_string().as_str()), ("try_flat_map", "four"));
    assert!(errors_rx.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn try_partition_by_keeps_each_keys_order_past_skipped_errors() {
    let items = scaled(300);
    let pipeline = Pipeline::from_iter(0..items)
        .try_partition_by(
            |n| n % 5,
            3,
            |n| async move {
                tokio::time::sleep(delay_for(n)).await;
                if n % 11 == 0 { Err(format!("bad {n}")) } else { Ok(n) }
            },
        )
        .unwrap()
        .on_error(ErrorPolicy::Skip);
    let progress = pipeline.progress();
    let out = pipeline.collect().await.unwrap();
    assert_eq!(out.len() as u64, items - items.div_ceil(11));
    for key in 0..5 {
        let of_key: Vec<u64> = out.iter().copied().filter(|n| n % 5 == key).collect();
        let expected: Vec<u64> = (0..items).filter(|n| n % 5 == key && n % 11 != 0).collect();
        assert_eq!(of_key, expected, "key {key}");
    }
    assert_eq!(progress.stages()[1].errors, items.div_ceil(11));
    assert_eq!(progress.live_tasks(), 0);

    let error = Pipeline::from_iter(0..u64::MAX)
        .try_partition_by(|n| *n, 4, |n| async move { if n == 77 { Err("seventy-seven") } else { Ok(n) } })
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(matches!(error, PipelineError::Stage { ref stage, .. } if stage == "try_partition_by"), "{error:?}");
    assert_eq!(
        Pipeline::from_iter(0..1).try_partition_by(|n| *n, 0, |n| async move { Ok::<_, BoxError>(n) }).unwrap_err(),
        BuildError::ZeroConcurrency
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_waits_its_own_max_wait_after_an_earlier_batch_filled() {
    // Batch [0, 1, 2] fills at 0 ms; item 3 comes at 50 ms and must wait
    // until 150 ms, not leave when the first batch's 100 ms would be up.
    let pipeline =
        scripted(vec![(0, vec![0, 1, 2]), (50, vec![3]), (500, vec![])]).batch(3, Duration::from_millis(100)).unwrap();
    let batches = timed_batches(pipeline).await;
    assert_eq!(batches, vec![(vec![0, 1, 2], 0), (vec![3], 150)]);

    // A wait too long to represent never times out, and does not panic.
    let out = Pipeline::from_iter(0..5).batch(2, Duration::MAX).unwrap().collect().await.unwrap();
    assert_eq!(out, vec![vec![0, 1], vec![2, 3], vec![4]]);
}

#[tokio::test(start_paused = true)]
async fn then_keeps_working_while_the_sink_is_busy() {
    // A call takes 10 ms; the sink's first item takes 10 s. Results held
    // past HOLD go out only while the link has room, so the stage never
    // blocks on a busy sink before its own chunk is full.
    let done = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&done);
    let seen = Arc::clone(&done);
    let mut first = true;
    let mut order = Vec::new();
    let items = if cfg!(miri) { 20 } else { 100 };
    Pipeline::from_iter(0..items)
        .then(move |n| {
            let d = Arc::clone(&d);
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                d.fetch_add(1, Ordering::SeqCst);
                n
            }
        })
        .for_each(|n| {
            order.push(n);
            let busy = std::mem::take(&mut first);
            let seen = Arc::clone(&seen);
            async move {
                if busy {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    assert_eq!(seen.load(Ordering::SeqCst), items as usize, "calls done while the sink was busy");
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(order, (0..items).collect::<Vec<_>>());
}
