//! What travels with a job: its id, its cancel switch, where its outcome
//! goes, and the [`JobHandle`] that awaits it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use conc_core::Token;

use crate::core::Entry;
use crate::error::{AnyJob, JobError};
use crate::sync::{Mutex, MutexGuard, lock};

/// A job's id: unique in its pool, increasing in order of acceptance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub(crate) u64);

impl JobId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job-{}", self.0)
    }
}

/// How an accepted job ended, for the pool's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Failed,
    Panicked,
    Cancelled,
    NotRun,
}

impl Outcome {
    pub(crate) fn of<T, J>(result: &Result<T, JobError<J>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Completed,
            Err(JobError::Panicked(_)) => Outcome::Panicked,
            Err(JobError::Cancelled) => Outcome::Cancelled,
            Err(JobError::NotRun(_)) => Outcome::NotRun,
        }
    }
}

/// Inputs of jobs that never ran and whose handle was gone: they go to the
/// [`ShutdownReport`](crate::ShutdownReport). Cold path: only jobs cut off
/// by a shutdown come here.
pub(crate) type Returned = std::sync::Mutex<Vec<(JobId, AnyJob)>>;

/// Where a job stands, for its handle's cancel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Queued,
    Running,
    Done,
}

struct State<T, J> {
    phase: Phase,
    /// The handle cancelled the job (before or while it ran).
    cancelled: bool,
    /// The job's token while it runs, for a cancel to reach it.
    token: Option<Token>,
    /// The outcome, until the handle takes it.
    outcome: Option<Result<T, JobError<J>>>,
    waker: Option<Waker>,
    /// The handle still exists: a never-run input goes to it, not to the
    /// shutdown report.
    handle: bool,
    /// The job itself, until a worker takes it to run it or hands it back.
    job: Option<J>,
}

/// A job with a [`JobHandle`], in one allocation shared by the queue (it
/// is the queued entry) and the handle: the job, its cancel switch, its
/// token while it runs, and the slot its outcome is left in.
///
/// One mutex guards it all; it is taken a few times per job, by the worker
/// (start, deliver) and the handle (poll, cancel, drop), never across
/// jobs, so it is uncontended but for a handle racing its own job. Because
/// start, cancel and deliver each run whole under it, a cancel lands
/// either before the start (the job never runs), during the run (its
/// token is cancelled) or after the outcome (nothing to do, and no later
/// job's token is touched); and an outcome is stored exactly once.
pub(crate) struct Shared<T, J> {
    pub(crate) id: JobId,
    state: Mutex<State<T, J>>,
}

impl<T, J> Shared<T, J> {
    pub(crate) fn new(id: JobId, job: J) -> Shared<T, J> {
        Shared {
            id,
            state: Mutex::new(State {
                phase: Phase::Queued,
                cancelled: false,
                token: None,
                outcome: None,
                waker: None,
                handle: true,
                job: Some(job),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<T, J>> {
        lock(&self.state)
    }

    /// Called by the worker as the job starts: the job to run under
    /// `token`, and whether its handle still waits for the outcome (if not,
    /// it never will: the outcome can simply be dropped); or `None` if it
    /// was cancelled before it started (it must not run then; its outcome
    /// is `Cancelled`).
    pub(crate) fn start(&self, token: &Token) -> Option<(J, bool)> {
        let mut state = self.state();
        let job = state.job.take();
        if state.cancelled {
            drop(state);
            // Outside the lock: the job's captures may do anything on drop.
            drop(job);
            return None;
        }
        state.phase = Phase::Running;
        let watched = state.handle;
        // Only a handle cancels a running job: a detached one needs no copy.
        if watched {
            state.token = Some(token.clone());
        }
        job.map(|job| (job, watched))
    }

    /// Takes the job back unrun, for a shutdown or a pool that went away.
    pub(crate) fn take_unrun(&self) -> Option<J> {
        self.state().job.take()
    }

    /// Cancels the job: it will not start, or its token is cancelled now.
    pub(crate) fn cancel(&self) {
        let token = {
            let mut state = self.state();
            match state.phase {
                Phase::Done => return,
                Phase::Queued => {
                    state.cancelled = true;
                    return;
                }
                Phase::Running => {
                    state.cancelled = true;
                    state.token.clone()
                }
            }
        };
        // Outside the lock: a cancel runs the token's callbacks.
        if let Some(token) = token {
            token.cancel();
        }
    }

    /// Leaves the outcome for the handle and wakes it; a never-run input
    /// comes back if the handle is gone.
    pub(crate) fn complete(&self, outcome: Result<T, JobError<J>>) -> Option<J> {
        let mut state = self.state();
        state.phase = Phase::Done;
        let token = state.token.take();
        if !state.handle {
            drop(state);
            drop(token);
            return match outcome {
                Err(JobError::NotRun(job)) => Some(job),
                _ => None,
            };
        }
        state.outcome = Some(outcome);
        let waker = state.waker.take();
        drop(state);
        drop(token);
        if let Some(waker) = waker {
            waker.wake();
        }
        None
    }

    /// The outcome, if the job has one (`Err(())` once it was taken).
    fn poll_outcome(&self, waker: &Waker) -> Poll<Result<Result<T, JobError<J>>, ()>> {
        let mut state = self.state();
        if let Some(outcome) = state.outcome.take() {
            return Poll::Ready(Ok(outcome));
        }
        if state.phase == Phase::Done {
            return Poll::Ready(Err(()));
        }
        if !state.waker.as_ref().is_some_and(|old| old.will_wake(waker)) {
            state.waker = Some(waker.clone());
        }
        Poll::Pending
    }

    fn is_done(&self) -> bool {
        self.state().phase == Phase::Done
    }

    /// The handle is gone: later outcomes are dropped, a never-run input
    /// goes to the shutdown report.
    fn release(&self) {
        let mut state = self.state();
        state.handle = false;
        let outcome = state.outcome.take();
        let waker = state.waker.take();
        drop(state);
        drop((outcome, waker));
    }
}

/// Where a job's outcome goes when it has no handle: a results stream or
/// a group.
pub(crate) trait Sink<J, O>: Send + 'static {
    /// The token the job sees, from the one its worker made for it.
    fn job_token(&self, token: Token) -> Token {
        token
    }

    /// Hands the outcome over and says how it ended; a never-run input
    /// nobody is left to receive comes back for the shutdown report.
    fn deliver(self, id: JobId, outcome: Result<O, JobError<J>>) -> (Outcome, Option<(JobId, AnyJob)>);
}

/// A queued job without a handle. The queue holds entries in an `Arc` (a
/// job with a handle shares its allocation with it), which needs `Sync`;
/// the mutex gives that to jobs that are only `Send`, and is never locked:
/// the queue holds the only reference, so the job is simply taken out.
pub(crate) struct Owned<T>(std::sync::Mutex<T>);

impl<T> Owned<T> {
    pub(crate) fn new(job: T) -> Arc<Owned<T>> {
        Arc::new(Owned(std::sync::Mutex::new(job)))
    }

    /// The job, out of its entry.
    pub(crate) fn take(self: Arc<Self>) -> T {
        match Arc::try_unwrap(self) {
            Ok(Owned(job)) => job.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner),
            Err(_) => unreachable!("only the queue refers to a job without a handle"),
        }
    }
}

impl<T: Send + 'static, J: Send + 'static> Entry for Shared<T, J> {
    fn not_run(self: Arc<Self>) -> (Outcome, Option<(JobId, AnyJob)>) {
        let outcome = self.take_unrun().map_or(Err(JobError::Cancelled), |job| Err(JobError::NotRun(job)));
        Completion::new(self).deliver(outcome)
    }
}

/// Delivers a handle job's outcome; dropped before that (an async job's
/// runtime shut down under it), it leaves `Cancelled`, so the handle
/// never waits for nothing.
pub(crate) struct Completion<T, J> {
    shared: Option<Arc<Shared<T, J>>>,
}

impl<T, J: Send + 'static> Completion<T, J> {
    pub(crate) fn new(shared: Arc<Shared<T, J>>) -> Completion<T, J> {
        Completion { shared: Some(shared) }
    }

    /// Delivers `outcome` to the handle and says how it ended; a never-run
    /// input whose handle is gone comes back for the shutdown report.
    pub(crate) fn deliver(mut self, outcome: Result<T, JobError<J>>) -> (Outcome, Option<(JobId, AnyJob)>) {
        let kind = Outcome::of(&outcome);
        let leftover = self.shared.take().and_then(|shared| Some((shared.id, shared.complete(outcome)?)));
        (kind, leftover.map(|(id, job)| (id, Box::new(job) as AnyJob)))
    }
}

impl<T, J> Drop for Completion<T, J> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.complete(Err(JobError::Cancelled));
        }
    }
}

/// The handle to one accepted job: await it for the job's value or the
/// reason it has none.
///
/// `T` is the job's value; `J` is the job's own type (the closure), handed
/// back in [`JobError::NotRun`] if the pool shut down before the job
/// started.
///
/// Dropping the handle, or calling [`detach`](JobHandle::detach), lets the
/// job run to its end unobserved (fire and forget); a detached job cut off
/// by a shutdown has its input handed back in the
/// [`ShutdownReport`](crate::ShutdownReport) instead.
///
/// # Cancel safety
///
/// Awaiting is cancel safe: dropping an unfinished `.await` loses
/// nothing, the handle can be awaited again (through `&mut`), and the job
/// goes on. Like any future, a handle must not be polled again once it
/// has returned its outcome (that panics).
#[must_use = "a dropped handle detaches the job; call detach() to say so"]
pub struct JobHandle<T, J> {
    id: JobId,
    shared: Arc<Shared<T, J>>,
}

impl<T, J> JobHandle<T, J> {
    /// A handle and the job to queue, sharing one allocation.
    pub(crate) fn new(id: JobId, job: J) -> (JobHandle<T, J>, Arc<Shared<T, J>>) {
        let shared = Arc::new(Shared::new(id, job));
        (JobHandle { id, shared: shared.clone() }, shared)
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Cancels the job: if it has not started it never will (its outcome is
    /// [`JobError::Cancelled`]); if it is running, its token is cancelled
    /// (an async job is dropped at its next await point; a CPU job should
    /// check its token and return early).
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// Lets the job run on without waiting for it (the same as dropping
    /// the handle, said out loud).
    pub fn detach(self) {}

    /// Whether the outcome is ready.
    pub fn is_finished(&self) -> bool {
        self.shared.is_done()
    }

    /// Waits for the outcome on the current thread, for callers outside
    /// async code.
    ///
    /// # Errors
    ///
    /// As awaiting the handle: the job's [`JobError`].
    pub fn wait_blocking(self) -> Result<T, JobError<J>> {
        conc_core::task::block_on(self)
    }
}

impl<T, J> Future for JobHandle<T, J> {
    type Output = Result<T, JobError<J>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.shared.poll_outcome(cx.waker()) {
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
            Poll::Ready(Err(())) => panic!("a JobHandle polled after it returned its outcome"),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T, J> Drop for JobHandle<T, J> {
    fn drop(&mut self) {
        self.shared.release();
    }
}

impl<T, J> fmt::Debug for JobHandle<T, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.id).finish_non_exhaustive()
    }
}

#[cfg(all(test, conc_loom))]
mod loom_tests {
    //! The shared job state under every interleaving: a cancel racing the
    //! start is never lost, and an outcome racing the handle's drop is
    //! delivered exactly once (to the handle, or back as the input).

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::thread;

    use super::*;

    #[test]
    fn loom_a_cancel_racing_the_start_is_never_lost() {
        loom::model(|| {
            let shared = Arc::new(Shared::<(), ()>::new(JobId(0), ()));
            let canceller = {
                let shared = shared.clone();
                thread::spawn(move || shared.cancel())
            };
            let token = Token::new();
            let started = shared.start(&token).is_some();
            canceller.join().unwrap();
            assert!(!started || token.is_cancelled(), "a started job missed its cancel");
        });
    }

    #[test]
    fn loom_a_cancel_after_the_outcome_touches_no_token() {
        loom::model(|| {
            let shared = Arc::new(Shared::<(), ()>::new(JobId(0), ()));
            let token = Token::new();
            assert!(shared.start(&token).is_some());
            let worker = {
                let shared = shared.clone();
                thread::spawn(move || shared.complete(Ok(())))
            };
            let seen_done = shared.is_done();
            shared.cancel();
            worker.join().unwrap();
            assert!(!seen_done || !token.is_cancelled(), "a cancel after the outcome reached the token");
        });
    }

    #[test]
    fn loom_an_unrun_job_goes_to_its_handle_or_back_exactly_once() {
        loom::model(|| {
            let (handle, shared) = JobHandle::<(), u32>::new(JobId(0), 7);
            let released = Arc::new(AtomicBool::new(false));
            let worker = {
                let released = released.clone();
                thread::spawn(move || {
                    let job = shared.take_unrun().unwrap();
                    let saw_release = released.load(Ordering::SeqCst);
                    (saw_release, Completion::new(shared).deliver(Err(JobError::NotRun(job))))
                })
            };
            let outcome = handle.shared.poll_outcome(Waker::noop());
            drop(handle);
            released.store(true, Ordering::SeqCst);
            let (saw_release, (kind, leftover)) = worker.join().unwrap();
            assert_eq!(kind, Outcome::NotRun);
            let to_handle = matches!(outcome, Poll::Ready(Ok(Err(JobError::NotRun(7)))));
            assert!(!(to_handle && leftover.is_some()), "the input went to the handle and back");
            assert!(!saw_release || leftover.is_some(), "the handle was gone but the input did not come back");
        });
    }
}
