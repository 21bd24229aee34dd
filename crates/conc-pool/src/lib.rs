//! A bounded worker pool for async jobs and CPU-bound closures, with
//! backpressure, shutdown with a deadline and exactly one outcome per job:
//! Go's worker pools (pond, ants, the `jobs`/`results` channel pattern) for
//! tokio, and the crate to reach for instead of hand-rolled worker loops,
//! rayon's unbounded queue or `threadpool`.
//!
//! - [`Pool`] runs async jobs on worker tasks; [`CpuPool`] runs blocking
//!   closures on OS threads it owns. Both are made by [`Pool::builder`]:
//!   fixed or growing (min..max, idle workers retire), a bounded queue, a
//!   name, an injectable clock.
//! - A job is a closure that receives the job's [`Token`](conc_core::Token)
//!   and returns a future (or, for [`CpuPool`], the value): cancelling the
//!   token reaches a running job, and a job that never started can be
//!   handed back whole.
//! - Backpressure: [`submit`](Pool::submit) waits for room,
//!   [`try_submit`](Pool::try_submit) hands the job back in
//!   [`SubmitError::Full`], [`submit_until`](Pool::submit_until) gives up
//!   when a token is cancelled, [`submit_blocking`](Pool::submit_blocking)
//!   serves plain threads.
//! - **Exactly one outcome per accepted job**: its [`JobHandle`] yields the
//!   value or a [`JobError`]: `Panicked(payload)` (the worker survives),
//!   `Cancelled`, or `NotRun(job)` with the input handed back. Detached jobs
//!   cut off by a shutdown come back in the [`ShutdownReport`].
//! - Lifecycle: [`close`](Pool::close), [`join`](Pool::join),
//!   [`shutdown`](Pool::shutdown) with a deadline; [`resize`](Pool::resize)
//!   and [`stats`](Pool::stats) at run time.
//! - Fan-in: [`results`](Pool::results) (and [`CpuPool::results`]) tags
//!   each outcome with its [`JobId`] on a stream; [`group`](Pool::group)
//!   submits into the shared async pool, waits only for its own jobs, with
//!   its own error policy and cap.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use conc_pool::{JobError, Pool};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder().workers(4).queue_capacity(64).build()?;
//!
//! let mut handles = Vec::new();
//! for n in 1..=10u64 {
//!     let handle = pool.submit(move |_token| async move { n * n }).await.map_err(|e| e.to_string())?;
//!     handles.push(handle);
//! }
//! // A job that panics: its handle says so, the worker lives on.
//! let boom = pool.submit(|_token| async { panic!("boom") }).await.map_err(|e| e.to_string())?;
//! // A job that waits on its token ends when a shutdown's deadline passes.
//! let slow = pool
//!     .submit(|token| async move { token.cancelled().await })
//!     .await
//!     .map_err(|e| e.to_string())?;
//!
//! let mut sum = 0;
//! for handle in handles {
//!     sum += handle.await?;
//! }
//! assert_eq!(sum, 385);
//! assert!(matches!(boom.await, Err(JobError::Panicked(_))));
//!
//! // A deadline already past: cancel what still runs now.
//! let report = pool.shutdown(Instant::now()).await;
//! assert!(matches!(slow.await, Err(JobError::Cancelled)));
//! assert!(report.deadline_passed);
//! assert_eq!((report.completed, report.panicked, report.cancelled), (10, 1, 1));
//! # Ok(())
//! # }
//! ```
//!
//! # Differences from Go's pools
//!
//! - A job's outcome is never dropped: pond's `Submit` after `Stop`
//!   panics, here it returns the job in [`SubmitError::Closed`]; a job cut
//!   off by a shutdown comes back as `NotRun(job)` instead of vanishing.
//! - `queue_capacity` counts jobs waiting beyond those running; 0 means
//!   hand-off (a job is accepted only while a worker will take it).
//! - Cancellation is Go's `context`: each job gets its own token (on the
//!   pool's clock), cancelled by its handle's `cancel` or by a shutdown
//!   past its deadline. An async job whose token is cancelled is dropped
//!   at its next await; a CPU job must check its token.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod core;
mod cpu;
mod error;
mod gate;
mod group;
mod job;
mod pool;
mod queue;
mod results;
mod shutdown;
mod stats;
mod sync;
#[cfg(all(test, not(conc_loom)))]
mod tests;

pub use builder::Builder;
pub use cpu::CpuPool;
pub use error::{AnyJob, BuildError, JobError, Panic, SubmitError};
pub use group::{ErrorPolicy, Group, GroupError, GroupResults};
pub use job::{JobHandle, JobId};
pub use pool::Pool;
pub use results::{ResultItem, ResultStream, Results};
pub use shutdown::ShutdownReport;
pub use stats::Stats;
