//! [`Group`]: a task group on a shared pool (pond's subpools, errgroup on
//! a pool): its own jobs, its own error policy, optionally its own cap.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use conc_core::Token;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{AnyJob, BuildError, JobError, Panic, SubmitError};
use crate::job::{JobId, Outcome, Owned, Sink};
use crate::pool::{AsyncJob, Pool};

/// What a [`Group`] does when one of its jobs fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// The first error (or panic) cancels the group's token, so its other
    /// jobs stop (errgroup's `WithContext`).
    #[default]
    FirstErrorCancels,
    /// Every job runs; every error is collected.
    CollectAll,
}

/// Why a group job has no value.
#[derive(thiserror::Error)]
pub enum GroupError<E> {
    /// The job returned this error.
    #[error("the job failed")]
    Failed(E),
    /// The job panicked; this is the payload.
    #[error("the job panicked")]
    Panicked(Panic),
    /// The job was cancelled (by the group's first error, the group's
    /// [`cancel`](Group::cancel) or a pool shutdown).
    #[error("the job was cancelled")]
    Cancelled,
    /// The job never ran (the pool shut down first); its input, boxed.
    #[error("the job never ran")]
    NotRun(AnyJob),
}

impl<E: fmt::Debug> fmt::Debug for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
            GroupError::Panicked(_) => f.write_str("Panicked(..)"),
            GroupError::Cancelled => f.write_str("Cancelled"),
            GroupError::NotRun(_) => f.write_str("NotRun(..)"),
        }
    }
}

type Item<T, E> = (JobId, Result<T, GroupError<E>>);

struct GroupSink<T, E> {
    tx: Sender<Item<T, E>>,
    token: Token,
    policy: ErrorPolicy,
    /// The group's cap; released when the outcome is delivered.
    _permit: Option<OwnedSemaphorePermit>,
}

impl<F, T, E> Sink<F, Result<T, E>> for GroupSink<T, E>
where
    F: Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn job_token(&self, token: Token) -> Token {
        Token::any_of(&[token, self.token.clone()])
    }

    fn deliver(self, id: JobId, outcome: Result<Result<T, E>, JobError<F>>) -> (Outcome, Option<(JobId, AnyJob)>) {
        let (kind, result) = match outcome {
            Ok(Ok(value)) => (Outcome::Completed, Ok(value)),
            Ok(Err(error)) => (Outcome::Failed, Err(GroupError::Failed(error))),
            Err(JobError::Panicked(payload)) => (Outcome::Panicked, Err(GroupError::Panicked(payload))),
            Err(JobError::Cancelled) => (Outcome::Cancelled, Err(GroupError::Cancelled)),
            Err(JobError::NotRun(job)) => (Outcome::NotRun, Err(GroupError::NotRun(Box::new(job)))),
        };
        if matches!(kind, Outcome::Failed | Outcome::Panicked) && self.policy == ErrorPolicy::FirstErrorCancels {
            self.token.cancel();
        }
        match self.tx.try_send((id, result)) {
            Err(error) => match error.into_inner() {
                (id, Err(GroupError::NotRun(job))) => (kind, Some((id, job))),
                _ => (kind, None),
            },
            Ok(()) => (kind, None),
        }
    }
}

/// A group of jobs on a shared [`Pool`]: submitted into the pool's queue
/// and run by its workers, but waited for on their own, with the group's
/// own [`ErrorPolicy`] and, optionally, a lower concurrency cap.
///
/// Group jobs return `Result<T, E>`. Each job's token is cancelled when
/// its worker's is (a pool shutdown) or when the group's
/// [`token`](Group::token) is (the first error, under
/// [`ErrorPolicy::FirstErrorCancels`], or [`cancel`](Group::cancel)).
///
/// # Examples
///
/// ```
/// use conc_pool::{GroupError, Pool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder().workers(4).build()?;
/// // At most 2 of this group's jobs in the pool at once; collect every error.
/// let group = pool.group::<u32, String>().collect_all().limit(2)?;
/// for n in 0..4u32 {
///     group
///         .submit(move |_token| async move { if n == 2 { Err(format!("job {n} failed")) } else { Ok(n) } })
///         .await
///         .map_err(|e| e.to_string())?;
/// }
/// let results = group.wait().await;
/// assert_eq!(results.values().copied().sum::<u32>(), 4);
/// assert!(matches!(results.into_result(), Err(GroupError::Failed(message)) if message == "job 2 failed"));
/// # Ok(())
/// # }
/// ```
pub struct Group<T, E> {
    pool: Pool,
    token: Token,
    policy: ErrorPolicy,
    limit: Option<Arc<Semaphore>>,
    tx: Sender<Item<T, E>>,
    rx: Receiver<Item<T, E>>,
}

/// The outcomes of a group's jobs, in the order they finished.
pub struct GroupResults<T, E> {
    /// Each job's id and outcome.
    pub results: Vec<(JobId, Result<T, GroupError<E>>)>,
}

impl<T, E> GroupResults<T, E> {
    /// The values of the jobs that succeeded.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.results.iter().filter_map(|(_, result)| result.as_ref().ok())
    }

    /// Every value, in job id order; or the failure of the earliest job
    /// that failed (an error or a panic; `Cancelled` or `NotRun` only if
    /// nothing failed), like errgroup's `Wait`.
    ///
    /// # Errors
    ///
    /// The first [`GroupError`], as said.
    pub fn into_result(mut self) -> Result<Vec<T>, GroupError<E>> {
        self.results.sort_by_key(|(id, _)| *id);
        // Rank 0 beats rank 1; among equals the earliest job wins.
        let mut values = Vec::with_capacity(self.results.len());
        let mut first: Option<(usize, GroupError<E>)> = None;
        for (_, result) in self.results {
            match result {
                Ok(value) => values.push(value),
                Err(error) => {
                    let rank = match error {
                        GroupError::Failed(_) | GroupError::Panicked(_) => 0,
                        GroupError::Cancelled | GroupError::NotRun(_) => 1,
                    };
                    if first.as_ref().is_none_or(|(best, _)| rank < *best) {
                        first = Some((rank, error));
                    }
                }
            }
        }
        match first {
            Some((_, error)) => Err(error),
            None => Ok(values),
        }
    }
}

impl Pool {
    /// A group of jobs on this pool; see [`Group`].
    pub fn group<T: Send + 'static, E: Send + 'static>(&self) -> Group<T, E> {
        let (tx, rx) = async_channel::unbounded();
        Group { pool: self.clone(), token: Token::new(), policy: ErrorPolicy::default(), limit: None, tx, rx }
    }
}

impl<T: Send + 'static, E: Send + 'static> Group<T, E> {
    /// Every job runs and every error is collected
    /// ([`ErrorPolicy::CollectAll`]).
    pub fn collect_all(mut self) -> Self {
        self.policy = ErrorPolicy::CollectAll;
        self
    }

    /// At most `limit` of this group's jobs in the pool (queued or running)
    /// at once; they share the pool's workers.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroWorkers`] for 0.
    pub fn limit(mut self, limit: usize) -> Result<Self, BuildError> {
        if limit == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        self.limit = Some(Arc::new(Semaphore::new(limit)));
        Ok(self)
    }

    /// The group's token: cancelled by the first error (under
    /// [`ErrorPolicy::FirstErrorCancels`]) or by [`cancel`](Group::cancel);
    /// every job's token is cancelled with it.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Cancels the group's jobs: queued ones end `Cancelled` without
    /// running, running ones are dropped at their next await.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    fn enqueue<F, Fut>(&self, id: JobId, job: F, permit: Option<OwnedSemaphorePermit>) -> JobId
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let sink = GroupSink { tx: self.tx.clone(), token: self.token.clone(), policy: self.policy, _permit: permit };
        self.pool.core().push(Owned::new(AsyncJob { id, job, sink }));
        id
    }

    /// Submits `job`, waiting for the group's cap and for room in the pool.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the job unsubmitted.
    pub async fn submit<F, Fut>(&self, job: F) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let permit = match &self.limit {
            Some(limit) => match limit.clone().acquire_owned().await {
                Ok(permit) => Some(permit),
                Err(_) => return Err(SubmitError::Closed(job)),
            },
            None => None,
        };
        match self.pool.core().admit(None).await {
            Ok(id) => Ok(self.enqueue(id, job, permit)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }

    /// Submits `job` if the group's cap and the pool have room now.
    ///
    /// # Errors
    ///
    /// As [`Pool::try_submit`]; a group at its cap is `Full` too.
    pub fn try_submit<F, Fut>(&self, job: F) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let permit = match &self.limit {
            Some(limit) => match limit.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Err(SubmitError::Full(job)),
            },
            None => None,
        };
        match self.pool.core().try_admit() {
            Ok(id) => Ok(self.enqueue(id, job, permit)),
            Err(refusal) => Err(refusal.with(job)),
        }
    }

    /// Waits for every job submitted to this group (and only those) and
    /// returns their outcomes.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping it loses the outcomes collected so far
    /// (the jobs still run).
    pub async fn wait(self) -> GroupResults<T, E> {
        let Group { tx, rx, .. } = self;
        drop(tx);
        let mut results = Vec::new();
        while let Ok(item) = rx.recv().await {
            results.push(item);
        }
        GroupResults { results }
    }
}

impl<T, E> fmt::Debug for Group<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("policy", &self.policy).field("token", &self.token).finish_non_exhaustive()
    }
}

impl<T, E: fmt::Debug> fmt::Debug for GroupResults<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupResults").field("jobs", &self.results.len()).finish()
    }
}
