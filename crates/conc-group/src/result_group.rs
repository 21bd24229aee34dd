//! [`ResultGroup`]: tasks that return values, collected in spawn order.

use std::fmt;
use std::future::Future;
use std::panic::Location;

use conc_core::Token;

use crate::tasks::{Failure, Tasks};
use crate::{GroupError, LimitError, SpawnError};

/// A [`Group`](crate::Group) whose tasks return values, handed back in
/// spawn order (sourcegraph/conc's `ResultErrorPool`).
///
/// Everything [`Group`](crate::Group) says holds: the first failure cancels
/// the group's token, limits, panics captured, dropping aborts. In addition
/// [`wait`](ResultGroup::wait) returns the values in the order the tasks
/// were spawned, and [`wait_results`](ResultGroup::wait_results) every
/// task's own outcome. [`collect_errored`](ResultGroup::collect_errored)
/// makes failures leave the others running, to collect every outcome.
///
/// # Examples
///
/// ```
/// use conc_group::ResultGroup;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut group = ResultGroup::<u64, std::io::Error>::new();
/// for n in [30u64, 10, 20] {
///     group.spawn(move |_| async move {
///         tokio::task::yield_now().await;
///         Ok(n * 2)
///     }).await.unwrap();
/// }
/// assert_eq!(group.wait().await.unwrap(), [60, 20, 40]); // spawn order
/// # }
/// ```
pub struct ResultGroup<T, E> {
    tasks: Tasks<T, E>,
}

impl<T, E> ResultGroup<T, E>
where
    T: Send + 'static,
    E: fmt::Display + Send + 'static,
{
    /// An empty group with a token of its own (a new root).
    pub fn new() -> Self {
        ResultGroup { tasks: Tasks::new(None) }
    }

    /// An empty group whose token is a child of `token`; see
    /// [`Group::with_token`](crate::Group::with_token).
    pub fn with_token(token: &Token) -> Self {
        ResultGroup { tasks: Tasks::new(Some(token)) }
    }

    /// Failures no longer cancel the group: every task runs to its end, and
    /// [`wait_results`](ResultGroup::wait_results) returns each value and
    /// each error (sourcegraph/conc's `WithCollectErrored`).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_group::ResultGroup;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut group = ResultGroup::new().collect_errored();
    /// for n in 0..4u32 {
    ///     group.spawn(move |_| async move { if n % 2 == 1 { Err(n) } else { Ok(n) } }).await.unwrap();
    /// }
    /// let outcomes: Vec<_> = group.wait_results().await.into_iter().map(|r| r.map_err(|e| e.into_failed())).collect();
    /// assert_eq!(outcomes, [Ok(0), Err(Some(1)), Ok(2), Err(Some(3))]);
    /// # }
    /// ```
    pub fn collect_errored(self) -> Self {
        self.tasks.set_cancel_on_failure(false);
        self
    }

    /// Bounds how many tasks run at once; see [`Group::limit`](crate::Group::limit).
    ///
    /// # Errors
    ///
    /// [`LimitError::Zero`] for 0, [`LimitError::TasksRunning`] while tasks
    /// are running.
    pub fn limit(&mut self, limit: usize) -> Result<(), LimitError> {
        self.tasks.set_limit(limit)
    }

    /// Starts `task`, waiting for a slot under a limit; see
    /// [`Group::spawn`](crate::Group::spawn).
    ///
    /// # Errors
    ///
    /// [`SpawnError::Cancelled`] with `task` if the group's token is
    /// cancelled.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting for a slot, nothing is started.
    #[track_caller]
    pub fn spawn<F, Fut>(&mut self, task: F) -> impl Future<Output = Result<(), SpawnError<F>>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let spawned_at = Location::caller();
        self.tasks.spawn(task, spawned_at)
    }

    /// Starts `task` if the group is under its limit, or hands it back; see
    /// [`Group::try_spawn`](crate::Group::try_spawn).
    ///
    /// # Errors
    ///
    /// [`SpawnError::Full`] at the limit, [`SpawnError::Cancelled`] if the
    /// group's token is cancelled.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    #[track_caller]
    pub fn try_spawn<F, Fut>(&mut self, task: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.tasks.try_spawn(task, Location::caller())
    }

    /// The group's token: the one every task gets.
    pub fn token(&self) -> &Token {
        self.tasks.token()
    }

    /// Tasks spawned and not yet waited for.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task was spawned.
    pub fn is_empty(&self) -> bool {
        self.tasks.len() == 0
    }

    /// Tasks started and not yet finished.
    pub fn running(&self) -> usize {
        self.tasks.running()
    }

    /// Tasks handed back because the group was cancelled.
    pub fn not_started(&self) -> usize {
        self.tasks.not_started()
    }

    /// Waits for every task, then returns their values in spawn order.
    ///
    /// # Errors
    ///
    /// The first failure to happen (see [`Group::wait`](crate::Group::wait));
    /// the values of the tasks that succeeded are dropped.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the group: its tasks are aborted.
    pub async fn wait(self) -> Result<Vec<T>, GroupError<E>> {
        let ResultGroup { mut tasks } = self;
        let mut values = Vec::with_capacity(tasks.len());
        let mut first: Option<Failure<E>> = None;
        tasks
            .join(|outcome| match outcome {
                Ok(value) => values.push(value),
                Err(failure) => {
                    if first.as_ref().is_none_or(|first| failure.ticket < first.ticket) {
                        first = Some(failure);
                    }
                }
            })
            .await;
        match first {
            Some(failure) => Err(failure.error),
            None => Ok(values),
        }
    }

    /// Waits for every task, then returns each task's outcome in spawn
    /// order: its value or its failure (a task aborted because the parent
    /// token was cancelled gives [`GroupError::Cancelled`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the group: its tasks are aborted.
    pub async fn wait_results(self) -> Vec<Result<T, GroupError<E>>> {
        let ResultGroup { mut tasks } = self;
        let mut outcomes = Vec::with_capacity(tasks.len());
        tasks.join(|outcome| outcomes.push(outcome.map_err(|failure| failure.error))).await;
        outcomes
    }

    /// Gives up ownership of the tasks: they run on, unsupervised, and the
    /// group's token is not cancelled. Their outcomes are lost.
    pub fn detach(self) {
        self.tasks.detach();
    }
}

impl<T, E> Default for ResultGroup<T, E>
where
    T: Send + 'static,
    E: fmt::Display + Send + 'static,
{
    fn default() -> Self {
        ResultGroup::new()
    }
}

impl<T, E> fmt::Debug for ResultGroup<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.tasks.debug("ResultGroup", f)
    }
}
