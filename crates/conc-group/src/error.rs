//! The errors of groups and the bounded helpers.

use std::fmt;

use conc_core::Cause;

use crate::Panic;

/// Why a group's work did not all succeed: what [`Group::wait`](crate::Group::wait)
/// and [`ResultGroup::wait`](crate::ResultGroup::wait) return.
#[derive(Debug, thiserror::Error)]
pub enum GroupError<E> {
    /// A task returned this error.
    #[error("{0}")]
    Failed(E),
    /// A task panicked; the panic was caught.
    #[error("{0}")]
    Panicked(Panic),
    /// The token the group was made under was cancelled (or its deadline
    /// passed) and `wait` aborted tasks that had not finished; carries that
    /// token's cause.
    #[error("group cancelled before its tasks finished: {0}")]
    Cancelled(Cause),
}

impl<E> GroupError<E> {
    /// Re-raises a [`Panicked`](GroupError::Panicked) error as a panic on
    /// this thread, with the task's payload; returns any other error as is.
    ///
    /// # Panics
    ///
    /// That is its purpose, for `Panicked`.
    ///
    /// # Examples
    ///
    /// ```should_panic
    /// use conc_group::{Group, GroupError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut group = Group::<std::io::Error>::new();
    /// group.spawn(|_| async { panic!("boom") }).await.unwrap();
    /// let _ = group.wait().await.map_err(GroupError::resume_panic); // panics with "boom"
    /// # }
    /// ```
    pub fn resume_panic(self) -> Self {
        match self {
            GroupError::Panicked(panic) => panic.resume(),
            other => other,
        }
    }

    /// The task's error, if this is [`Failed`](GroupError::Failed).
    pub fn into_failed(self) -> Option<E> {
        match self {
            GroupError::Failed(error) => Some(error),
            _ => None,
        }
    }

    /// Whether a task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, GroupError::Panicked(_))
    }
}

/// A task the group did not start, handed back with the reason.
#[derive(thiserror::Error)]
pub enum SpawnError<F> {
    /// The group already runs as many tasks as its limit allows (only
    /// [`try_spawn`](crate::Group::try_spawn) returns this; `spawn` waits).
    #[error("the group is at its limit of running tasks")]
    Full(F),
    /// The group's token is cancelled (a task failed, or the parent token
    /// was cancelled or its deadline passed): no new task starts.
    #[error("the group is cancelled: no new task starts")]
    Cancelled(F),
}

impl<F> SpawnError<F> {
    /// The task that was not started.
    pub fn into_inner(self) -> F {
        match self {
            SpawnError::Full(task) | SpawnError::Cancelled(task) => task,
        }
    }

    /// Whether the group was cancelled (rather than full).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, SpawnError::Cancelled(_))
    }
}

impl<F> fmt::Debug for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Full(_) => f.write_str("Full(..)"),
            SpawnError::Cancelled(_) => f.write_str("Cancelled(..)"),
        }
    }
}

/// A limit that cannot be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A limit of 0 would start nothing, ever.
    #[error("limit must be at least 1")]
    Zero,
    /// Tasks are running: the limit changes only while none is (Go's
    /// `SetLimit` panics here).
    #[error("cannot change the limit while {running} tasks are running")]
    TasksRunning {
        /// Tasks still running.
        running: usize,
    },
}

/// Why [`map`](crate::map), [`try_map`](crate::try_map) or
/// [`for_each`](crate::for_each) did not return every result.
#[derive(Debug, thiserror::Error)]
pub enum MapError<E> {
    /// A limit of 0 would start nothing, ever.
    #[error("limit must be at least 1")]
    ZeroLimit,
    /// The function returned this error for the item at `index`.
    #[error("item {index} failed: {error}")]
    Failed {
        /// The item's position in the input.
        index: usize,
        /// The function's error.
        error: E,
    },
    /// The function panicked for the item at `index`.
    #[error("item {index}: {panic}")]
    Panicked {
        /// The item's position in the input.
        index: usize,
        /// The caught panic.
        panic: Panic,
    },
    /// The worker tasks were aborted under it: their runtime is shutting
    /// down.
    #[error("the workers were aborted: the runtime is shutting down")]
    Aborted,
}

impl<E> MapError<E> {
    /// Re-raises a [`Panicked`](MapError::Panicked) error as a panic on this
    /// thread; returns any other error as is.
    ///
    /// # Panics
    ///
    /// That is its purpose, for `Panicked`.
    pub fn resume_panic(self) -> Self {
        match self {
            MapError::Panicked { panic, .. } => panic.resume(),
            other => other,
        }
    }
}

/// The cause a group's token is cancelled with when one of its tasks fails
/// or panics: [`Cause::Error`] holding one of these.
///
/// It carries the task error's message rather than the error itself: the
/// error value goes to whoever calls `wait`, and an error type need not be
/// `Clone` to be used in a group. Tasks that see their token cancelled can
/// tell a sibling's failure from an outside cancellation with
/// `cause.downcast_ref::<TaskFailure>()`.
///
/// # Examples
///
/// ```
/// use conc_group::{Group, TaskFailure};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut group = Group::new();
/// let token = group.token().clone();
/// group.spawn(|_| async { Err("disk full") }).await.unwrap();
/// assert_eq!(group.wait().await.unwrap_err().into_failed(), Some("disk full"));
///
/// let cause = token.cause().unwrap();
/// let failure = cause.downcast_ref::<TaskFailure>().unwrap();
/// assert_eq!(failure.message(), "disk full");
/// assert!(!failure.is_panic());
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskFailure {
    message: String,
    panicked: bool,
}

impl TaskFailure {
    pub(crate) fn error(error: &impl fmt::Display) -> TaskFailure {
        TaskFailure { message: error.to_string(), panicked: false }
    }

    pub(crate) fn panic(panic: &Panic) -> TaskFailure {
        TaskFailure { message: panic.to_string(), panicked: true }
    }

    /// The failed task's error message (its `Display`), or the panic's.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the task panicked rather than returned an error.
    pub fn is_panic(&self) -> bool {
        self.panicked
    }
}
