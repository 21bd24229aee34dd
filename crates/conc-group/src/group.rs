//! [`Group`]: Go's `errgroup.Group`, structured.

use std::fmt;
use std::future::Future;
use std::panic::Location;

use conc_core::Token;

use crate::tasks::{Failure, Tasks};
use crate::{GroupError, LimitError, SpawnError};

/// A set of tasks that succeed or fail together: Go's `errgroup.Group`
/// (made with `errgroup.WithContext`) for tokio.
///
/// - Every task gets the group's [`Token`], a child of the token the group
///   was made under. The first task that returns an error (or panics)
///   cancels that token, with a [`TaskFailure`](crate::TaskFailure) as its
///   cause, and its error is what [`wait`](Group::wait) returns.
///   [`wait_all`](Group::wait_all) returns every failure instead, in the
///   order they happened.
/// - [`limit`](Group::limit) bounds how many tasks run at once (Go's
///   `SetLimit`): [`spawn`](Group::spawn) then waits for a slot,
///   [`try_spawn`](Group::try_spawn) hands the task back (Go's `TryGo`).
/// - Once the token is cancelled, no new task starts: `spawn` and
///   `try_spawn` hand the task back with [`SpawnError::Cancelled`] and
///   [`not_started`](Group::not_started) counts them. Go would still start
///   them, with a cancelled context.
/// - A panicking task is caught: it cancels the group like an error and
///   comes back from `wait` as [`GroupError::Panicked`], with its payload
///   (re-raise it with [`GroupError::resume_panic`]).
/// - If the token the group was made under ([`with_token`](Group::with_token))
///   is cancelled or its deadline passes, `wait` aborts the tasks that have
///   not finished and returns [`GroupError::Cancelled`] (unless a task
///   failed first).
/// - **Structured:** dropping a group without waiting cancels its token and
///   aborts its tasks, so no task outlives its group; [`detach`](Group::detach)
///   lets them run on when that is what you want. Like Go, `wait` also
///   cancels the token once every task has finished.
///
/// Spawning takes `&mut self` (as `tokio::task::JoinSet`): tasks cannot
/// spawn siblings into their own group; give such a task a group of its
/// own. The error type needs `Display` (for the token's cause), `Send` and
/// `'static`; it need not be `Clone` or `std::error::Error`, so `anyhow`
/// errors and strings work.
///
/// # Examples
///
/// ```
/// use conc_group::{Group, GroupError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut group = Group::new();
/// group.limit(2).unwrap();
/// for id in 0..5u32 {
///     group
///         .spawn(move |token| async move {
///             if id == 3 {
///                 return Err(format!("shard {id} is down"));
///             }
///             // Siblings end early once one has failed.
///             let _ = token.run_until_cancelled(tokio::task::yield_now()).await;
///             Ok(())
///         })
///         .await
///         .ok(); // a task handed back: the group was already cancelled
/// }
/// match group.wait().await {
///     Err(GroupError::Failed(message)) => assert_eq!(message, "shard 3 is down"),
///     other => panic!("unexpected {other:?}"),
/// }
/// # }
/// ```
pub struct Group<E> {
    tasks: Tasks<(), E>,
    /// Failures of tasks whose handles were already dropped to save memory.
    reaped: Vec<Failure<E>>,
}

impl<E> Group<E>
where
    E: fmt::Display + Send + 'static,
{
    /// An empty group with a token of its own (a new root).
    pub fn new() -> Self {
        Group { tasks: Tasks::new(None), reaped: Vec::new() }
    }

    /// An empty group whose token is a child of `token`: cancelling `token`,
    /// or its deadline passing, cancels the group's tasks (Go's
    /// `errgroup.WithContext`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::{Cause, ManualClock, Token};
    /// use conc_group::{Group, GroupError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let clock = ManualClock::new();
    /// let request = Token::with_clock(clock.clone()).with_timeout(Duration::from_secs(1));
    /// let mut group = Group::<std::io::Error>::with_token(&request);
    /// group.spawn(|_| std::future::pending()).await.unwrap(); // ignores its token
    ///
    /// clock.advance(Duration::from_secs(1));
    /// assert!(group.spawn(|_| async { Ok(()) }).await.is_err()); // no new task starts
    /// match group.wait().await {
    ///     Err(GroupError::Cancelled(cause)) => assert_eq!(cause, Cause::DeadlineExceeded),
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// # }
    /// ```
    pub fn with_token(token: &Token) -> Self {
        Group { tasks: Tasks::new(Some(token)), reaped: Vec::new() }
    }

    /// Bounds how many tasks run at once (Go's `SetLimit`).
    ///
    /// # Errors
    ///
    /// [`LimitError::Zero`] for 0, and [`LimitError::TasksRunning`] while
    /// tasks are running (they are not counted against a new limit).
    pub fn limit(&mut self, limit: usize) -> Result<(), LimitError> {
        self.tasks.set_limit(limit)
    }

    /// Starts `task` with the group's token, waiting first for a slot if
    /// the group is at its [`limit`](Group::limit).
    ///
    /// `task` runs on the tokio runtime, with a clone of the group's
    /// token; its error (or panic) cancels the group. Its future is awaited
    /// only for the slot: without a limit it is ready at once.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Cancelled`] with `task` if the group's token is
    /// cancelled, before or while waiting for a slot.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting for a slot, nothing is started
    /// and `task` is dropped.
    #[track_caller]
    pub fn spawn<F, Fut>(&mut self, task: F) -> impl Future<Output = Result<(), SpawnError<F>>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let spawned_at = Location::caller();
        async move {
            self.tasks.reap_finished(&mut self.reaped);
            self.tasks.spawn(task, spawned_at).await
        }
    }

    /// Starts `task` if the group is under its limit, or hands it back
    /// (Go's `TryGo`).
    ///
    /// # Errors
    ///
    /// [`SpawnError::Full`] with `task` if the group is at its limit,
    /// [`SpawnError::Cancelled`] if its token is cancelled.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    #[track_caller]
    pub fn try_spawn<F, Fut>(&mut self, task: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        self.tasks.reap_finished(&mut self.reaped);
        self.tasks.try_spawn(task, Location::caller())
    }

    /// The group's token: the one every task gets.
    pub fn token(&self) -> &Token {
        self.tasks.token()
    }

    /// The limit set with [`limit`](Group::limit), if any.
    pub fn current_limit(&self) -> Option<usize> {
        self.tasks.limit()
    }

    /// Tasks started and not yet finished.
    pub fn running(&self) -> usize {
        self.tasks.running()
    }

    /// Tasks handed back because the group was cancelled.
    pub fn not_started(&self) -> usize {
        self.tasks.not_started()
    }

    /// Waits for every task to finish, then cancels the group's token.
    ///
    /// # Errors
    ///
    /// The first failure: the first task error ([`GroupError::Failed`]) or
    /// panic ([`GroupError::Panicked`]) to happen. Without one, if the
    /// parent token was cancelled and tasks had to be aborted,
    /// [`GroupError::Cancelled`] with its cause.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the group: its tasks are aborted.
    pub async fn wait(self) -> Result<(), GroupError<E>> {
        let Group { mut tasks, reaped } = self;
        let mut first = reaped.into_iter().min_by_key(|failure| failure.ticket);
        tasks
            .join(|outcome| {
                if let Err(failure) = outcome {
                    if first.as_ref().is_none_or(|first| failure.ticket < first.ticket) {
                        first = Some(failure);
                    }
                }
            })
            .await;
        first.map_or(Ok(()), |failure| Err(failure.error))
    }

    /// Waits for every task to finish, then cancels the group's token.
    ///
    /// # Errors
    ///
    /// Every failure, in the order they happened (tasks aborted because the
    /// parent token was cancelled come last, as [`GroupError::Cancelled`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the group: its tasks are aborted.
    pub async fn wait_all(self) -> Result<(), Vec<GroupError<E>>> {
        let Group { mut tasks, mut reaped } = self;
        tasks
            .join(|outcome| {
                if let Err(failure) = outcome {
                    reaped.push(failure);
                }
            })
            .await;
        if reaped.is_empty() {
            return Ok(());
        }
        reaped.sort_by_key(|failure| failure.ticket);
        Err(reaped.into_iter().map(|failure| failure.error).collect())
    }

    /// Gives up ownership of the tasks: they run on, unsupervised, and the
    /// group's token is not cancelled. Their outcomes are lost.
    pub fn detach(self) {
        self.tasks.detach();
    }
}

impl<E> Default for Group<E>
where
    E: fmt::Display + Send + 'static,
{
    fn default() -> Self {
        Group::new()
    }
}

impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.tasks.debug("Group", f)
    }
}
