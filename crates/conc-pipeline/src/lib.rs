//! Typed pipelines of tokio tasks and bounded channels — Go's pipeline
//! pattern without the hand-wiring: sources, map/filter/batch stages,
//! ordered or unordered fan-out/fan-in, error policies, cancellation under a
//! [`Token`](conc_core::Token), and a per-stage report that shows the
//! bottleneck.
//!
//! Each stage runs as its own task (a parallel stage as several), connected
//! to the next by a bounded channel, so stages overlap and a slow consumer
//! holds the whole pipeline back instead of letting buffers grow. Building a
//! [`Pipeline`] starts nothing; a sink ([`collect`](Pipeline::collect),
//! [`for_each`](Pipeline::for_each), [`fold`](Pipeline::fold),
//! [`run`](Pipeline::run), [`into_stream`](Pipeline::into_stream)) spawns
//! the tasks and joins every one of them before it returns.
//!
//! # Example: generate → square → filter (the Go guides' first pipeline)
//!
//! ```
//! use conc_pipeline::Pipeline;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let big_squares = Pipeline::from_iter([1, 2, 3, 4, 5])
//!     .map(|n| n * n)
//!     .filter(|&n| n > 10)
//!     .collect()
//!     .await
//!     .unwrap();
//! assert_eq!(big_squares, vec![16, 25]);
//! # }
//! ```
//!
//! # Example: parallel, ordered, batched, with a report
//!
//! ```
//! use std::time::Duration;
//! use conc_pipeline::{ErrorPolicy, Pipeline};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pipeline = Pipeline::from_iter(1..=100_u64)
//!     .map_ordered(8, |n| async move { n * 2 })? // 8 workers, input order kept
//!     .named("double")
//!     .try_map(|n| if n % 20 == 0 { Err("multiple of twenty") } else { Ok(n) })
//!     .on_error(ErrorPolicy::Skip) // count and drop failed items
//!     .batch(16, Duration::from_millis(5))?;
//! let progress = pipeline.progress(); // live counters, e.g. for a progress bar
//! let mut batches = 0;
//! let report = pipeline.for_each(|batch| { batches += 1; async move { assert!(batch.len() <= 16) } }).await?;
//! assert_eq!(report.stage("double").unwrap().items_out, 100);
//! assert_eq!(report.errors(), 10);
//! assert_eq!(progress.live_tasks(), 0); // every task joined
//! # assert!(batches >= 6);
//! # Ok(())
//! # }
//! ```
//!
//! # The model
//!
//! - **Backpressure.** Every link is a bounded channel of `capacity` items
//!   ([`Pipeline::capacity`], default 1024). Items travel in chunks of up
//!   to `min(capacity, 256)` (64 after the workers of a parallel stage) so
//!   cheap items do not pay a channel operation and a thread wake-up each,
//!   but a stage never holds an item back to fill a chunk: a chunk leaves
//!   as soon as the stage would otherwise wait (for `then`, once results
//!   have waited about a millisecond for a slow call). The items held by a
//!   pipeline are at most the sum of its capacities plus one input and one
//!   output chunk per stage task.
//! - **Parallel stages** ([`map_concurrent`](Pipeline::map_concurrent),
//!   [`map_ordered`](Pipeline::map_ordered),
//!   [`partition_by`](Pipeline::partition_by)) run each worker as its own
//!   task, so work keeps going while the consumer is busy (no
//!   `StreamExt::buffered` stall, futures-rs #2387), and CPU-bound work
//!   spreads over the runtime's threads. [`Concurrency`] changes the worker
//!   count while it runs.
//! - **Sequential async.** [`then`](Pipeline::then) awaits an async
//!   function on one item at a time, in order, in the stage's own task:
//!   cheaper than `map_concurrent(1, f)`, and overlapped with the stages
//!   around it.
//! - **Errors.** Fallible stages (`try_*`) follow an [`ErrorPolicy`]: fail
//!   fast (default), skip and count, or send to a side output.
//! - **Cancellation.** Cancelling the pipeline's [`Token`](conc_core::Token)
//!   stops every task promptly; the run ends with
//!   [`PipelineError::Cancelled`], whose report counts the items that were
//!   in flight and dropped. A call of an async stage function that is
//!   waiting when the cancel comes (`then`, the parallel stages) is dropped
//!   with its item, so a call that would never end cannot hold the run
//!   up; a generator gets the token to watch. Dropping a sink's future
//!   cancels and aborts the tasks too. Nothing outlives the sink
//!   ([`Progress::live_tasks`]).
//!
//! # Differences from Go
//!
//! Go's unbuffered channels are rendezvous points; here every link is
//! buffered (capacity 0 is rejected with [`BuildError::ZeroCapacity`]). A
//! Go stage that fails usually needs an extra error channel and a `done`
//! channel; here the policy and the token are part of the pipeline.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod link;
mod parallel;
mod pipeline;
mod policy;
mod report;
mod run;
mod sink;
mod source;
mod stage;
mod sync;
mod tee;

pub use error::{BoxError, BuildError, PipelineError, StageError};
pub use link::DEFAULT_CAPACITY;
pub use parallel::Concurrency;
pub use pipeline::Pipeline;
pub use policy::ErrorPolicy;
pub use report::{PipelineReport, Progress, StageReport};
pub use sink::PipelineStream;
pub use source::Emitter;

#[cfg(all(test, not(conc_loom)))]
mod tests;

#[cfg(all(test, conc_loom))]
mod loom_tests;
