//! What travels with a job: its id, its cancel switch, where its outcome
//! goes, and the [`JobHandle`] that awaits it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use std::task::{Context, Poll};

use conc_core::Token;
use tokio::sync::oneshot;

use crate::error::{AnyJob, JobError};
use crate::sync::{AtomicU8, Ordering};

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
pub(crate) type Returned = Mutex<Vec<(JobId, AnyJob)>>;

const RUNNING: u8 = 1;
const CANCEL: u8 = 2;

/// A job's cancel switch, shared by its handle and the worker that runs it.
///
/// The worker publishes the job's token and then sets `RUNNING`; the handle
/// sets `CANCEL`. Both are read-modify-writes of one byte, so whichever
/// comes second sees the other and cancels the token: a cancel never slips
/// between "not started" and "started".
#[derive(Debug)]
pub(crate) struct Control {
    state: AtomicU8,
    token: OnceLock<Token>,
}

impl Control {
    pub(crate) fn new() -> Control {
        Control { state: AtomicU8::new(0), token: OnceLock::new() }
    }

    /// Called by the worker as the job starts. Returns `false` if the job
    /// was cancelled before it started (it must not run then).
    pub(crate) fn start(&self, token: &Token) -> bool {
        if self.state.load(Ordering::Acquire) & CANCEL != 0 {
            return false;
        }
        let _ = self.token.set(token.clone());
        if self.state.fetch_or(RUNNING, Ordering::AcqRel) & CANCEL != 0 {
            token.cancel();
        }
        true
    }

    /// Cancels the job: it will not start, or its token is cancelled now.
    pub(crate) fn cancel(&self) {
        if self.state.fetch_or(CANCEL, Ordering::AcqRel) & RUNNING != 0 {
            if let Some(token) = self.token.get() {
                token.cancel();
            }
        }
    }
}

/// Where a job's outcome goes: its handle, a results stream or a group.
pub(crate) trait Sink<J, O>: Send + 'static {
    /// The token the job sees, from the one its worker made for it.
    fn job_token(&self, token: Token) -> Token {
        token
    }

    /// Hands the outcome over and says how it ended; a never-run input
    /// nobody is left to receive comes back for the shutdown report.
    fn deliver(self, id: JobId, outcome: Result<O, JobError<J>>) -> (Outcome, Option<(JobId, AnyJob)>);
}

/// Delivers to a [`JobHandle`]; if the handle was dropped or detached, a
/// never-run input goes to the shutdown report instead.
pub(crate) struct HandleSink<T, J> {
    sender: oneshot::Sender<Result<T, JobError<J>>>,
}

impl<T: Send + 'static, J: Send + 'static> Sink<J, T> for HandleSink<T, J> {
    fn deliver(self, id: JobId, outcome: Result<T, JobError<J>>) -> (Outcome, Option<(JobId, AnyJob)>) {
        let kind = Outcome::of(&outcome);
        match self.sender.send(outcome) {
            Err(Err(JobError::NotRun(job))) => (kind, Some((id, Box::new(job)))),
            _ => (kind, None),
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
    receiver: oneshot::Receiver<Result<T, JobError<J>>>,
    control: Arc<Control>,
}

impl<T, J> JobHandle<T, J> {
    /// A handle and the sink the job delivers to.
    pub(crate) fn new(id: JobId, control: Arc<Control>) -> (JobHandle<T, J>, HandleSink<T, J>) {
        let (sender, receiver) = oneshot::channel();
        (JobHandle { id, receiver, control }, HandleSink { sender })
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
        self.control.cancel();
    }

    /// Lets the job run on without waiting for it (the same as dropping
    /// the handle, said out loud).
    pub fn detach(self) {}

    /// Whether the outcome is ready.
    pub fn is_finished(&self) -> bool {
        !self.receiver.is_empty() || self.receiver.is_terminated()
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

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.receiver).poll(cx) {
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
            // The job was dropped without an outcome: only when its runtime
            // shut down under the pool, which cancels every task.
            Poll::Ready(Err(_)) => Poll::Ready(Err(JobError::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T, J> fmt::Debug for JobHandle<T, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.id).finish_non_exhaustive()
    }
}

#[cfg(all(test, conc_loom))]
mod loom_tests {
    //! A job starting on its worker while its handle cancels it: either
    //! the job never starts, or it starts and its token ends up cancelled.

    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    #[test]
    fn loom_a_cancel_racing_the_start_is_never_lost() {
        loom::model(|| {
            let control = Arc::new(Control::new());
            let canceller = {
                let control = control.clone();
                thread::spawn(move || control.cancel())
            };
            let token = Token::new();
            let started = control.start(&token);
            canceller.join().unwrap();
            assert!(!started || token.is_cancelled(), "a started job missed its cancel");
        });
    }
}
