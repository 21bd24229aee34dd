//! [`CpuPool`]: blocking, CPU-bound closures on OS threads the pool owns.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle as ThreadHandle;
use std::time::Instant;

use conc_core::Token;
use conc_core::task::block_on;

use crate::builder::Builder;
use crate::core::{Core, Entry, Next, Spawn};
use crate::error::{AnyJob, BuildError, JobError, SubmitError};
use crate::job::{Completion, JobHandle, JobId, Outcome, Owned, Shared, Sink};
use crate::queue::Empty;
use crate::shutdown::ShutdownReport;
use crate::stats::Stats;

/// A queued CPU job.
pub(crate) trait CpuEntry: Entry {
    /// Runs the job under `token` and delivers its outcome.
    fn run(self: Arc<Self>, token: Token) -> Outcome;
}

/// Runs a blocking job, catching its panic.
fn call<F, T>(job: F, token: Token) -> Result<T, JobError<F>>
where
    F: FnOnce(Token) -> T,
{
    catch_unwind(AssertUnwindSafe(|| job(token))).map_err(JobError::Panicked)
}

impl<F, T> CpuEntry for Shared<T, F>
where
    F: FnOnce(Token) -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Arc<Self>, token: Token) -> Outcome {
        match self.start(&token) {
            Some((job, true)) => {
                let result = call(job, token);
                Completion::new(self).deliver(result).0
            }
            // Detached: nobody is left to take the outcome.
            Some((job, false)) => Outcome::of(&call(job, token)),
            None => Completion::new(self).deliver(Err(JobError::Cancelled)).0,
        }
    }
}

pub(crate) struct CpuJob<F, S> {
    pub(crate) id: JobId,
    pub(crate) job: F,
    pub(crate) sink: S,
}

impl<F, T, S> Entry for Owned<CpuJob<F, S>>
where
    F: FnOnce(Token) -> T + Send + 'static,
    S: Sink<F, T>,
{
    fn not_run(self: Arc<Self>) -> (Outcome, Option<(JobId, AnyJob)>) {
        let CpuJob { id, job, sink } = self.take();
        sink.deliver(id, Err(JobError::NotRun(job)))
    }
}

impl<F, T, S> CpuEntry for Owned<CpuJob<F, S>>
where
    F: FnOnce(Token) -> T + Send + 'static,
    S: Sink<F, T>,
{
    fn run(self: Arc<Self>, token: Token) -> Outcome {
        let CpuJob { id, job, sink } = self.take();
        let result = call(job, sink.job_token(token));
        sink.deliver(id, result).0
    }
}

/// A worker thread's loop; `true` if it retired (and already left the count).
fn work(core: &Arc<Core<dyn CpuEntry>>) -> bool {
    let mut kept = None;
    loop {
        let entry = match core.try_next() {
            Ok(entry) => entry,
            Err(Empty::Closed) => return false,
            Err(Empty::Empty) => match core.spin_for_next().map_or_else(|| block_on(core.next()), Next::Job) {
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
        let outcome = entry.run(core.job_token(&mut kept));
        core.counters.stopped();
        core.finish(outcome);
        if core.retire(false) {
            return true;
        }
    }
}

type Threads = Arc<Mutex<Vec<ThreadHandle<()>>>>;

/// The pool's shared state; the last `CpuPool` clone to go closes it.
struct Owner {
    core: Arc<Core<dyn CpuEntry>>,
    /// Cold path: touched when a thread starts and when the pool is joined.
    threads: Threads,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.core.close();
    }
}

/// A bounded pool of OS threads for blocking, CPU-bound closures, so CPU
/// work never stalls an async runtime (the threads are the pool's own,
/// not tokio's blocking pool).
///
/// The same contract as [`Pool`](crate::Pool): a job is a closure that gets
/// the job's [`Token`] (check it in long loops: a thread cannot be
/// interrupted, so cancellation is cooperative here), the queue is
/// bounded, every accepted job has exactly one outcome in its
/// [`JobHandle`], and a panic is caught without losing the thread.
/// Submitting works from async code ([`submit`](CpuPool::submit)) and from
/// plain threads ([`submit_blocking`](CpuPool::submit_blocking)).
///
/// Dropping the last handle closes the pool: queued jobs still run, then
/// the threads exit on their own. [`join`](CpuPool::join) also joins them.
///
/// # Examples
///
/// ```
/// use conc_pool::Pool;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder().workers(2).name("hash").build_cpu()?;
/// let handle = pool.submit_blocking(|_token| (1..=20u64).product::<u64>()).map_err(|e| e.to_string())?;
/// assert_eq!(handle.wait_blocking()?, 2_432_902_008_176_640_000);
/// pool.join_blocking();
/// assert_eq!(pool.stats().workers, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct CpuPool {
    owner: Arc<Owner>,
}

impl CpuPool {
    pub(crate) fn from_builder(builder: Builder) -> Result<CpuPool, BuildError> {
        builder.validate()?;
        let threads: Threads = Arc::default();
        let spawn: Spawn<dyn CpuEntry> = {
            let threads = threads.clone();
            Box::new(move |core| {
                let name = format!("{}-{}", core.name, core.worker_number());
                let body = core.tasks.track_fn({
                    let core = core.clone();
                    move || work(&core)
                });
                let exit = core.clone();
                let started = std::thread::Builder::new().name(name).spawn(move || {
                    if !body() {
                        exit.worker_exited();
                    }
                });
                match started {
                    Ok(thread) => {
                        let mut threads = threads.lock().unwrap_or_else(PoisonError::into_inner);
                        threads.retain(|thread| !thread.is_finished());
                        threads.push(thread);
                        true
                    }
                    Err(_) => false,
                }
            })
        };
        // Room for every job the pool lets be in flight: see `Queue`.
        let core = Core::new(&builder, builder.capacity.saturating_add(builder.max), spawn);
        Ok(CpuPool { owner: Arc::new(Owner { core, threads }) })
    }

    pub(crate) fn core(&self) -> &Arc<Core<dyn CpuEntry>> {
        &self.owner.core
    }

    fn enqueue<F, T>(&self, id: JobId, job: F) -> JobHandle<T, F>
    where
        F: FnOnce(Token) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (handle, shared) = JobHandle::new(id, job);
        self.core().push(shared);
        handle
    }

    /// Submits `job`, waiting (asynchronously) for room in the queue (woken
    /// in bursts, as [`Pool::submit`](crate::Pool::submit)).
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] with the job if the pool is closed, or
    /// closes while this waits.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes drops the job unsubmitted.
    pub async fn submit<F, T>(&self, job: F) -> Result<JobHandle<T, F>, SubmitError<F>>
    where
        F: FnOnce(Token) -> T + Send + 'static,
        T: Send + 'static,
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
    pub fn try_submit<F, T>(&self, job: F) -> Result<JobHandle<T, F>, SubmitError<F>>
    where
        F: FnOnce(Token) -> T + Send + 'static,
        T: Send + 'static,
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
    /// As [`submit`](CpuPool::submit).
    pub async fn submit_until<F, T>(&self, job: F, token: &Token) -> Result<JobHandle<T, F>, SubmitError<F>>
    where
        F: FnOnce(Token) -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.core().admit(Some(token)).await {
            Ok(id) => Ok(self.enqueue(id, job)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }

    /// Submits `job` from a plain thread, blocking it while the queue is full.
    ///
    /// # Errors
    ///
    /// As [`submit`](CpuPool::submit).
    pub fn submit_blocking<F, T>(&self, job: F) -> Result<JobHandle<T, F>, SubmitError<F>>
    where
        F: FnOnce(Token) -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.core().try_admit_quietly() {
            Some(id) => Ok(self.enqueue(id, job)),
            None => block_on(self.submit(job)),
        }
    }

    /// Stops accepting jobs; accepted ones still run. Idempotent.
    pub fn close(&self) {
        self.core().close();
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.core().is_closed()
    }

    fn join_threads(&self) {
        let threads = std::mem::take(&mut *self.owner.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            // A worker body catches every job's panic; nothing is left to
            // report from a thread that ended.
            let _ = thread.join();
        }
    }

    /// Closes the pool, waits until every accepted job has its outcome,
    /// and joins every worker thread.
    ///
    /// Do not call it from one of the pool's own jobs: it would wait for
    /// itself.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the pool stays closed and goes on draining.
    pub async fn join(&self) {
        self.close();
        self.core().wait_done().await;
        self.join_threads();
    }

    /// [`join`](CpuPool::join) for plain threads.
    pub fn join_blocking(&self) {
        block_on(self.join());
    }

    /// Closes the pool and lets jobs finish until `deadline` (by the
    /// pool's [clock](Builder::clock)); then cancels the running jobs'
    /// tokens, hands queued ones back unrun ([`JobError::NotRun`]), waits
    /// for the running ones to return (a thread cannot be interrupted: a
    /// job that ignores its token delays this), joins the threads and
    /// reports.
    pub async fn shutdown(&self, deadline: Instant) -> ShutdownReport {
        let report = self.core().shutdown(deadline).await;
        self.join_threads();
        report
    }

    /// [`shutdown`](CpuPool::shutdown) for plain threads.
    pub fn shutdown_blocking(&self, deadline: Instant) -> ShutdownReport {
        block_on(self.shutdown(deadline))
    }

    /// Sets the number of worker threads, as [`Pool::resize`](crate::Pool::resize).
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

    /// The pool's name (its threads are `<name>-<n>`).
    pub fn name(&self) -> &str {
        &self.core().name
    }
}

impl fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpuPool").field("name", &self.name()).field("stats", &self.stats()).finish()
    }
}
