//! The engine under [`Group`](crate::Group) and
//! [`ResultGroup`](crate::ResultGroup): one tokio task per spawned task, its
//! `JoinHandle` kept in spawn order, and the state the tasks share.
//!
//! Per task the hot path is one `tokio::spawn`, two reference-count
//! increments (the shared state and the token handed to the task), a `Vec`
//! push, and one atomic add and subtract on the running count (see
//! `slots.rs`), which lets `wait` sleep until the last task ends instead
//! of waking once per task. Failures take a ticket from an atomic counter,
//! which orders them by completion and picks the one that cancels the
//! token.

use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::Location;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use conc_core::{Cause, Token};
use tokio::task::{JoinError, JoinHandle};

use crate::panic::catch_unwind;
use crate::slots::{Slots, UNLIMITED};
use crate::{GroupError, LimitError, Panic, SpawnError, TaskFailure};

/// A failure with its completion ticket: failures are numbered in the
/// order they happened, so `wait` can tell which came first.
pub(crate) struct Failure<E> {
    pub(crate) ticket: usize,
    pub(crate) error: GroupError<E>,
}

/// What a task's `JoinHandle` yields.
pub(crate) type Outcome<T, E> = Result<T, Failure<E>>;

/// State every task of a group shares.
struct Shared {
    token: Token,
    /// Tickets handed to failures; the first (0) cancels the token.
    failures: AtomicUsize,
    /// Whether a failure cancels the token (not in `collect_errored` mode).
    cancel_on_failure: AtomicBool,
    slots: Slots,
}

impl Shared {
    fn fail<E: fmt::Display>(&self, error: GroupError<E>) -> Failure<E> {
        let ticket = self.failures.fetch_add(1, Ordering::AcqRel);
        if ticket == 0 && self.cancel_on_failure.load(Ordering::Acquire) {
            let failure = match &error {
                GroupError::Failed(error) => TaskFailure::error(error),
                GroupError::Panicked(panic) => TaskFailure::panic(panic),
                GroupError::Cancelled(cause) => TaskFailure::error(cause),
            };
            self.token.cancel_with(Cause::error(failure));
        }
        Failure { ticket, error }
    }
}

/// What a running task owns besides its future: the shared state, and its
/// slot, given back when the task ends, is aborted, or is dropped unpolled.
struct TaskGuard {
    shared: Arc<Shared>,
    limit: usize,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.shared.slots.give_back(self.limit);
    }
}

/// The tasks of one group, in spawn order.
pub(crate) struct Tasks<T, E> {
    shared: Arc<Shared>,
    /// The token the group was made under: when it is cancelled, `wait`
    /// aborts what has not finished.
    parent: Option<Token>,
    handles: Vec<JoinHandle<Outcome<T, E>>>,
    limit: Option<usize>,
    not_started: usize,
    detached: bool,
}

impl<T, E> Tasks<T, E>
where
    T: Send + 'static,
    E: fmt::Display + Send + 'static,
{
    pub(crate) fn new(parent: Option<&Token>) -> Self {
        let token = parent.map_or_else(Token::new, Token::child);
        Tasks {
            shared: Arc::new(Shared {
                token,
                failures: AtomicUsize::new(0),
                cancel_on_failure: AtomicBool::new(true),
                slots: Slots::default(),
            }),
            parent: parent.cloned(),
            handles: Vec::new(),
            limit: None,
            not_started: 0,
            detached: false,
        }
    }

    pub(crate) fn token(&self) -> &Token {
        &self.shared.token
    }

    pub(crate) fn set_cancel_on_failure(&self, cancel: bool) {
        self.shared.cancel_on_failure.store(cancel, Ordering::Release);
    }

    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    pub(crate) fn not_started(&self) -> usize {
        self.not_started
    }

    /// Tasks running now (started, not finished).
    pub(crate) fn running(&self) -> usize {
        self.shared.slots.running()
    }

    pub(crate) fn set_limit(&mut self, limit: usize) -> Result<(), LimitError> {
        if limit == 0 {
            return Err(LimitError::Zero);
        }
        // Running tasks give their slot back against the limit they started
        // under, so the limit changes only while none runs (Go's SetLimit
        // asks the same, and panics otherwise).
        let running = self.running();
        if running > 0 {
            return Err(LimitError::TasksRunning { running });
        }
        self.limit = Some(limit);
        Ok(())
    }

    pub(crate) fn limit(&self) -> Option<usize> {
        self.limit
    }

    pub(crate) async fn spawn<F, Fut>(
        &mut self,
        task: F,
        spawned_at: &'static Location<'static>,
    ) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let Some(limit) = self.limit else {
            return self.start_unlimited(task, spawned_at);
        };
        let shared = &*self.shared;
        let took = {
            let mut cancelled = pin!(shared.token.cancelled());
            poll_fn(|cx| {
                if shared.token.is_cancelled() {
                    return Poll::Ready(false);
                }
                if shared.slots.poll_take(limit, cx).is_ready() {
                    return Poll::Ready(true);
                }
                cancelled.as_mut().poll(cx).map(|()| false)
            })
            .await
        };
        if !took {
            self.not_started += 1;
            return Err(SpawnError::Cancelled(task));
        }
        self.start(task, limit, spawned_at);
        Ok(())
    }

    pub(crate) fn try_spawn<F, Fut>(
        &mut self,
        task: F,
        spawned_at: &'static Location<'static>,
    ) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let Some(limit) = self.limit else {
            return self.start_unlimited(task, spawned_at);
        };
        if self.shared.token.is_cancelled() {
            self.not_started += 1;
            return Err(SpawnError::Cancelled(task));
        }
        if !self.shared.slots.try_take(limit) {
            return Err(SpawnError::Full(task));
        }
        self.start(task, limit, spawned_at);
        Ok(())
    }

    fn start_unlimited<F, Fut>(&mut self, task: F, spawned_at: &'static Location<'static>) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        if self.shared.token.is_cancelled() {
            self.not_started += 1;
            return Err(SpawnError::Cancelled(task));
        }
        self.shared.slots.try_take(UNLIMITED);
        self.start(task, UNLIMITED, spawned_at);
        Ok(())
    }

    /// Starts `task` in the slot the caller took under `limit`.
    fn start<F, Fut>(&mut self, task: F, limit: usize, spawned_at: &'static Location<'static>)
    where
        F: FnOnce(Token) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let guard = TaskGuard { shared: Arc::clone(&self.shared), limit };
        let token = self.shared.token.clone();
        let handle = tokio::spawn(async move {
            let outcome = match catch_unwind(async move { task(token).await }).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(guard.shared.fail(GroupError::Failed(error))),
                Err(payload) => Err(guard.shared.fail(GroupError::Panicked(Panic::new(payload, spawned_at)))),
            };
            // The slot goes back only now, after a failure has cancelled the
            // token: a spawn that gets this slot sees the cancellation.
            drop(guard);
            outcome
        });
        self.handles.push(handle);
    }

    /// Awaits every task and hands each outcome to `each`, in spawn order.
    /// If the parent token is cancelled first, the tasks not finished are
    /// aborted and yield `Cancelled` with its cause.
    pub(crate) async fn join(&mut self, mut each: impl FnMut(Outcome<T, E>)) {
        let mut handles = std::mem::take(&mut self.handles);
        let parent = self.parent.clone();
        let mut parent_cancelled = pin!(async move {
            match &parent {
                Some(parent) => {
                    parent.cancelled().await;
                    parent.cause().unwrap_or(Cause::Cancelled)
                }
                None => std::future::pending().await,
            }
        });
        // Sleep until the last task ends (or the parent is cancelled), so
        // the handles below are ready when polled: one wake-up in all.
        let slots = &self.shared.slots;
        let cause = poll_fn(|cx| {
            if slots.poll_idle(cx).is_ready() {
                return Poll::Ready(None);
            }
            parent_cancelled.as_mut().poll(cx).map(Some)
        })
        .await;
        if cause.is_some() {
            for handle in &handles {
                handle.abort();
            }
        }
        for handle in &mut handles {
            each(outcome_of(handle.await, cause.as_ref()));
        }
    }

    /// Lets the tasks run on, unowned: the token is not cancelled and no
    /// task is aborted.
    pub(crate) fn detach(mut self) {
        self.detached = true;
        self.handles.clear();
    }
}

impl<E> Tasks<(), E>
where
    E: fmt::Display + Send + 'static,
{
    /// Drops the handles of tasks that finished, keeping their failures in
    /// `failures`, once the handle list is full; so a long-lived group that
    /// is never waited on holds memory for its running tasks only. It runs
    /// at most once per half a capacity of spawns: O(1) amortised.
    pub(crate) fn reap_finished(&mut self, failures: &mut Vec<Failure<E>>) {
        const MIN_REAP: usize = 64;
        if self.handles.len() < self.handles.capacity() || self.handles.len() < MIN_REAP {
            return;
        }
        let mut cx = Context::from_waker(Waker::noop());
        self.handles.retain_mut(|handle| {
            if !handle.is_finished() {
                return true;
            }
            match Pin::new(handle).poll(&mut cx) {
                Poll::Ready(result) => {
                    if let Err(failure) = outcome_of(result, None) {
                        failures.push(failure);
                    }
                    false
                }
                // tokio's cooperative budget ran out: keep it for `wait`.
                Poll::Pending => true,
            }
        });
        if self.handles.len() > self.handles.capacity() / 2 {
            self.handles.reserve(self.handles.capacity());
        }
    }
}

/// A joined task's outcome; `cancel_cause` is the parent's cause once
/// `wait` has aborted the unfinished tasks.
fn outcome_of<T, E>(result: Result<Outcome<T, E>, JoinError>, cancel_cause: Option<&Cause>) -> Outcome<T, E> {
    match result {
        Ok(outcome) => outcome,
        Err(error) => match error.try_into_panic() {
            // Only a panicking `on_cancel` callback, run by the failure that
            // cancels the token, gets here: the task's own panics are caught.
            Ok(payload) => Err(Failure {
                ticket: usize::MAX,
                error: GroupError::Panicked(Panic::new(payload, Location::caller())),
            }),
            // Aborted by `wait` (parent cancelled) or by the runtime shutting down.
            Err(_) => Err(Failure {
                ticket: usize::MAX,
                error: GroupError::Cancelled(cancel_cause.cloned().unwrap_or(Cause::Cancelled)),
            }),
        },
    }
}

impl<T, E> Drop for Tasks<T, E> {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        self.shared.token.cancel();
        for handle in &self.handles {
            handle.abort();
        }
    }
}

impl<T, E> Tasks<T, E> {
    /// The `Debug` output of the group type `name` built on these tasks.
    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("unjoined", &self.handles.len())
            .field("running", &self.shared.slots.running())
            .field("limit", &self.limit)
            .field("not_started", &self.not_started)
            .field("token", &self.shared.token)
            .finish()
    }
}
