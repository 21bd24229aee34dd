//! The Go guides' pipeline programs (in `shared/seeds/`), ported to
//! `conc-pipeline` with their known outputs:
//!
//! - "Concurrency Patterns Advanced": generate -> square -> filter, and
//!   fan-out to 3 workers sharing one input channel, then `merge`;
//! - "Advanced Concurrency Patterns in Go": the primes pipeline (numbers
//!   2..=20 -> filterPrimes -> square) with a `done` channel;
//! - fan-out/fan-in with error handling: a failing processor cancels the rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_core::Token;
use conc_pipeline::{ErrorPolicy, Pipeline, PipelineError};

fn is_prime(n: u64) -> bool {
    n > 1 && (2..).take_while(|i| i * i <= n).all(|i| n % i != 0)
}

/// `ch := filter(square(generate(1, 2, 3, 4, 5)), 10)` prints 16, 25.
#[tokio::test]
async fn generate_square_filter() {
    let pipeline = Pipeline::generate(|out, _done| async move {
        for n in [1, 2, 3, 4, 5] {
            if out.send(n).await.is_err() {
                return;
            }
        }
    })
    .map(|n| n * n)
    .named("square")
    .filter(|&n| n > 10)
    .named("filter");
    let progress = pipeline.progress();
    assert_eq!(pipeline.collect().await.unwrap(), vec![16, 25]);
    let stages = progress.stages();
    assert_eq!(
        stages.iter().map(|s| (s.name.as_str(), s.items_in, s.items_out)).collect::<Vec<_>>(),
        vec![("generate", 5, 5), ("square", 5, 5), ("filter", 5, 2)]
    );
    assert_eq!(progress.live_tasks(), 0);
}

/// Fan-out: 3 workers share the input channel; fan-in: `merge(w1, w2, w3)`.
/// Go prints six "worker-N processed X" lines in a nondeterministic order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_three_workers_and_merge() {
    let items = ["a", "b", "c", "d", "e", "f"];
    // Go's workers read one shared channel; here the shared input is one
    // pipeline's stream handed to three worker pipelines.
    let (input_tx, input_rx) = conc_core::channel::bounded::<&str>(1).unwrap();
    let producer = Pipeline::from_iter(items).for_each(move |item| {
        let input_tx = input_tx.clone();
        async move { conc_core::channel::Sender::send(&input_tx, item).await.unwrap() }
    });
    let workers = (1..=3)
        .map(|id| Pipeline::from_receiver(input_rx.clone()).map(move |item| format!("worker-{id} processed {item}")));
    let merged = Pipeline::merge(workers.collect::<Vec<_>>());
    drop(input_rx);
    let (produced, results) = tokio::join!(producer, merged.collect());
    produced.unwrap();
    let mut results = results.unwrap();
    assert_eq!(results.len(), 6);
    results.sort_by_key(|line| line.chars().last());
    for (line, item) in results.iter().zip(items) {
        assert!(line.starts_with("worker-") && line.ends_with(&format!(" processed {item}")), "{line}");
    }

    // The same pattern in one stage: three workers over one input, merged.
    let mut results = Pipeline::from_iter(items)
        .map_concurrent(3, |item| async move { format!("processed {item}") })
        .unwrap()
        .collect()
        .await
        .unwrap();
    results.sort();
    assert_eq!(results, items.map(|item| format!("processed {item}")));
}

/// generateNumbers(2..=20) -> filterPrimes -> square prints
/// "4 9 25 49 121 169 289 361".
#[tokio::test]
async fn primes_pipeline() {
    let squares = Pipeline::generate(|out, done: Token| async move {
        for n in 2..=20_u64 {
            if done.is_cancelled() || out.send(n).await.is_err() {
                return;
            }
        }
    })
    .filter(|&n| is_prime(n))
    .map(|n| n * n)
    .collect()
    .await
    .unwrap();
    assert_eq!(squares, vec![4, 9, 25, 49, 121, 169, 289, 361]);
}

/// Go's `defer close(done)`: the consumer leaves early and every stage
/// stops; here the consumer cancels the token after three primes.
#[tokio::test]
async fn primes_pipeline_stops_when_the_consumer_is_done() {
    let done = Token::new();
    let generated = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&generated);
    let pipeline = Pipeline::generate(move |out, done: Token| async move {
        for n in 2_u64.. {
            if done.is_cancelled() || out.send(n).await.is_err() {
                return;
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
    })
    .with_token(done.clone())
    .filter(|&n| is_prime(n))
    .map(|n| n * n);
    let progress = pipeline.progress();
    let mut seen = Vec::new();
    let result = pipeline
        .for_each(|square| {
            seen.push(square);
            if seen.len() == 3 {
                done.cancel();
            }
            async {}
        })
        .await;
    assert_eq!(seen, vec![4, 9, 25]);
    assert!(result.unwrap_err().is_cancelled());
    assert!(generated.load(Ordering::SeqCst) < 1000, "the generator kept going after the consumer left");
    assert_eq!(progress.live_tasks(), 0);
}

/// Fan-out fan-in with error handling: processors that fail on bad input;
/// the first error cancels the others (fail fast) or is collected.
#[tokio::test(start_paused = true)]
async fn fan_out_with_errors() {
    let process = |n: u32| async move {
        tokio::time::sleep(Duration::from_millis(u64::from(n % 5))).await;
        if n == 13 { Err(format!("processing item {n}: unlucky")) } else { Ok(n * 10) }
    };
    let error = Pipeline::from_iter(0..1000_u32).try_map_concurrent(3, process).unwrap().run().await.unwrap_err();
    let PipelineError::Stage { source, report, .. } = error else { panic!("expected the stage's error") };
    assert_eq!(source.to_string(), "processing item 13: unlucky");
    assert!(report.stages[1].items_out < 1000);

    let (errors_tx, errors_rx) = conc_core::channel::unbounded();
    let results = Pipeline::from_iter(0..100_u32)
        .try_map_concurrent(3, process)
        .unwrap()
        .on_error(ErrorPolicy::SideOutput(errors_tx))
        .collect()
        .await
        .unwrap();
    assert_eq!(results.len(), 99);
    assert_eq!(errors_rx.try_recv().unwrap().error.to_string(), "processing item 13: unlucky");
}
