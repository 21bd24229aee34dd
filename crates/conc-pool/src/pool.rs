//! [`Pool`]: async jobs, run by worker tasks on a tokio runtime.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use conc_core::Token;
use futures_lite::FutureExt;

use crate::builder::Builder;
use crate::core::{Core, Entry, Next, Spawn};
use crate::error::{AnyJob, BuildError, JobError, SubmitError};
use crate::job::{Completion, JobHandle, JobId, Outcome, Owned, Shared, Sink};
use crate::queue::Empty;
use crate::shutdown::ShutdownReport;
use crate::stats::Stats;

/// A queued async job.
pub(crate) trait AsyncEntry: Entry {
    /// Starts the job under `token`; the future runs it to its outcome and
    /// delivers it.
    fn run(self: Arc<Self>, token: Token) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;
}

pub(crate) struct AsyncJob<F, S> {
    pub(crate) id: JobId,
    pub(crate) job: F,
    pub(crate) sink: S,
}

/// Calls an async job and drives its future until it ends or `token` is
/// cancelled, catching its panics.
async fn drive<F, Fut>(job: F, token: Token) -> Result<Fut::Output, JobError<F>>
where
    F: FnOnce(Token) -> Fut,
    Fut: Future,
{
    match catch_unwind(AssertUnwindSafe(|| job(token.clone()))) {
        Err(payload) => Err(JobError::Panicked(payload)),
        // One catch around the race also catches a panic from
        // dropping a cancelled future, so no panic reaches the worker.
        Ok(future) => match AssertUnwindSafe(token.run_until_cancelled(future)).catch_unwind().await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(JobError::Cancelled),
            Err(payload) => Err(JobError::Panicked(payload)),
        },
    }
}

impl<F, Fut> AsyncEntry for Shared<Fut::Output, F>
where
    F: FnOnce(Token) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn run(self: Arc<Self>, token: Token) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        match self.start(&token) {
            Some((job, true)) => {
                // Dropped unfinished (the runtime shut down under the
                // worker), it leaves the handle `Cancelled`.
                let completion = Completion::new(self);
                Box::pin(async move {
                    let result = drive(job, token).await;
                    completion.deliver(result).0
                })
            }
            // Detached: nobody is left to take the outcome.
            Some((job, false)) => Box::pin(async move { Outcome::of(&drive(job, token).await) }),
            None => Box::pin(std::future::ready(Completion::new(self).deliver(Err(JobError::Cancelled)).0)),
        }
    }
}

impl<F, Fut, S> Entry for Owned<AsyncJob<F, S>>
where
    F: FnOnce(Token) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    S: Sink<F, Fut::Output>,
{
    fn not_run(self: Arc<Self>) -> (Outcome, Option<(JobId, AnyJob)>) {
        let AsyncJob { id, job, sink } = self.take();
        sink.deliver(id, Err(JobError::NotRun(job)))
    }
}

impl<F, Fut, S> AsyncEntry for Owned<AsyncJob<F, S>>
where
    F: FnOnce(Token) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    S: Sink<F, Fut::Output>,
{
    fn run(self: Arc<Self>, token: Token) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        let AsyncJob { id, job, sink } = self.take();
        let token = sink.job_token(token);
        Box::pin(async move {
            let result = drive(job, token).await;
            sink.deliver(id, result).0
        })
    }
}

/// A worker task's loop; `true` if it retired (and already left the count).
async fn work(core: Arc<Core<dyn AsyncEntry>>) -> bool {
    let mut kept = None;
    loop {
        let entry = match core.try_next() {
            Ok(entry) => entry,
            Err(Empty::Closed) => return false,
            Err(Empty::Empty) => match core.next().await {
                Next::Job(entry) => entry,
                Next::Woken => {
                    if core.retire(false) {
                        return true;
                    }
                    continue;
                }
                Next::IdleExpired => {
                    if core.retire(true) {
                        return true;
                    }
                    continue;
                }
                Next::Ended => return false,
            },
        };
        if core.draining() {
            core.give_back(entry);
            continue;
        }
        core.counters.started();
        let outcome = entry.run(core.job_token(&mut kept)).await;
        core.counters.stopped();
        core.finish(outcome);
        if core.retire(false) {
            return true;
        }
        // Jobs that finish without waiting would otherwise keep this task
        // on its thread for as long as the queue has work.
        tokio::task::consume_budget().await;
    }
}

/// The pool's shared state; the last `Pool` clone to go closes it.
struct Owner {
    core: Arc<Core<dyn AsyncEntry>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.core.close();
    }
}

/// A bounded pool of worker tasks for async jobs: Go's worker pool (pond,
/// ants) on tokio, with backpressure and exactly one outcome per job.
///
/// A job is a closure that gets the job's [`Token`] and returns a future;
/// a worker task calls it and drives the future, so at most `workers` jobs
/// run at once and no task is spawned per job. Jobs wait in a queue of
/// [`queue_capacity`](Builder::queue_capacity); when it is full,
/// [`submit`](Pool::submit) waits and [`try_submit`](Pool::try_submit)
/// hands the job back.
///
/// Every job accepted has exactly one outcome, delivered to its
/// [`JobHandle`]: its value, or a [`JobError`] (panicked, cancelled, or
/// not run with its input handed back). A panic is caught and the worker
/// lives on.
///
/// `Pool` is a cheap handle: clones share the pool. Dropping the last one
/// [closes](Pool::close) it: queued jobs still run, then the workers exit
/// on their own; nothing is leaked, but nobody waits for them either.
/// Call [`join`](Pool::join) or [`shutdown`](Pool::shutdown) to wait.
///
/// # Examples
///
/// ```
/// use conc_pool::{Pool, SubmitError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder().workers(4).queue_capacity(16).build()?;
/// let mut handles = Vec::new();
/// for n in 0..10u64 {
///     match pool.submit(move |_token| async move { n * n }).await {
///         Ok(handle) => handles.push(handle),
///         Err(SubmitError::Closed(_job)) => unreachable!("nobody closed the pool"),
///         Err(other) => return Err(other.to_string().into()),
///     }
/// }
/// let mut sum = 0;
/// for handle in handles {
///     sum += handle.await?;
/// }
/// assert_eq!(sum, 285);
/// pool.join().await;
/// assert_eq!(pool.stats().completed, 10);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Pool {
    owner: Arc<Owner>,
}

impl Pool {
    /// Configures a pool: see [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn from_builder(builder: Builder) -> Result<Pool, BuildError> {
        builder.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let spawn: Spawn<dyn AsyncEntry> = Box::new(move |core| {
            drop(runtime.spawn(core.worker_future(work(core.clone()))));
            true
        });
        Ok(Pool { owner: Arc::new(Owner { core: Core::new(&builder, 0, spawn) }) })
    }

    pub(crate) fn core(&self) -> &Arc<Core<dyn AsyncEntry>> {
        &self.owner.core
    }

    /// Queues an admitted job with its own handle.
    fn enqueue<F, Fut>(&self, id: JobId, job: F) -> JobHandle<Fut::Output, F>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let (handle, shared) = JobHandle::new(id, job);
        self.core().push(shared);
        handle
    }

    /// Submits `job`, waiting for room in the queue.
    ///
    /// Waiting submitters are woken once an eighth of the pool's places
    /// (`max workers + capacity`) are free, or when the last job in flight
    /// finishes, not at every single free place: a producer ahead of the
    /// workers then refills in bursts instead of taking turns sleeping
    /// with them. They are not served in order, nor ahead of `try_submit`.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] with the job if the pool is closed, or
    /// closes while this waits.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes drops the job unsubmitted.
    pub async fn submit<F, Fut>(&self, job: F) -> Result<JobHandle<Fut::Output, F>, SubmitError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        match self.core().admit(None).await {
            Ok(id) => Ok(self.enqueue(id, job)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }

    /// Submits `job` if the queue has room now.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Full`] or [`SubmitError::Closed`], with the job.
    pub fn try_submit<F, Fut>(&self, job: F) -> Result<JobHandle<Fut::Output, F>, SubmitError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        match self.core().try_admit() {
            Ok(id) => Ok(self.enqueue(id, job)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }

    /// Submits `job`, waiting for room until `token` is cancelled.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Cancelled`] with the job if `token` is cancelled
    /// first, [`SubmitError::Closed`] if the pool closes first.
    ///
    /// # Cancel safety
    ///
    /// As [`submit`](Pool::submit).
    pub async fn submit_until<F, Fut>(&self, job: F, token: &Token) -> Result<JobHandle<Fut::Output, F>, SubmitError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        match self.core().admit(Some(token)).await {
            Ok(id) => Ok(self.enqueue(id, job)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }

    /// Submits `job` from a plain thread, blocking it while the queue is
    /// full. Do not call it from an async task: it blocks the runtime's
    /// thread.
    ///
    /// # Errors
    ///
    /// As [`submit`](Pool::submit).
    pub fn submit_blocking<F, Fut>(&self, job: F) -> Result<JobHandle<Fut::Output, F>, SubmitError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        match self.core().try_admit_quietly() {
            Some(id) => Ok(self.enqueue(id, job)),
            None => conc_core::task::block_on(self.submit(job)),
        }
    }

    /// Stops accepting jobs: later submits, and those waiting for room,
    /// get [`SubmitError::Closed`] with their job. Jobs already accepted
    /// still run. Idempotent.
    pub fn close(&self) {
        self.core().close();
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.core().is_closed()
    }

    /// Closes the pool and waits until every accepted job has its outcome
    /// and every worker task has exited.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the pool stays closed and goes on draining.
    pub async fn join(&self) {
        self.close();
        self.core().wait_done().await;
    }

    /// Closes the pool and lets queued and running jobs finish until
    /// `deadline` (by the pool's [clock](Builder::clock)); then cancels the
    /// running jobs (their futures are dropped, their outcome is
    /// [`JobError::Cancelled`]), hands the queued ones back unrun
    /// ([`JobError::NotRun`]), waits for the workers to exit and reports.
    ///
    /// # Cancel safety
    ///
    /// Dropping it before the deadline leaves the pool closed and draining
    /// with nothing cancelled.
    pub async fn shutdown(&self, deadline: Instant) -> ShutdownReport {
        self.core().shutdown(deadline).await
    }

    /// Sets the number of workers: the maximum becomes `workers` (and the
    /// minimum too, for a fixed pool, or if it was above). New workers
    /// start at once when there is work for them; extra ones retire when
    /// they finish their current job. The queue's capacity stays the same.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroWorkers`] for 0.
    pub fn resize(&self, workers: usize) -> Result<(), BuildError> {
        if workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        self.core().resize(workers);
        Ok(())
    }

    /// A snapshot of the pool's counters.
    pub fn stats(&self) -> Stats {
        self.core().stats()
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.core().name
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("name", &self.name()).field("stats", &self.stats()).finish()
    }
}
