//! [`Token`]: a cancellation tree with Go's `context` semantics.

mod callback;
mod guard;
#[cfg(all(test, conc_loom))]
mod loom_tests;
mod node;
#[cfg(all(test, not(conc_loom)))]
mod tests;
#[cfg(feature = "tokio-util")]
mod tokio_util;
mod wait;

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

pub use callback::OnCancel;
pub use guard::DropGuard;
pub(crate) use node::{Node, cancel_node};
pub use wait::{Cancelled, CancelledOwned};

/// A waker that unparks the current thread.
pub(crate) fn thread_waker() -> std::task::Waker {
    wait::Unparker::current()
}

use crate::{Cause, Clock};

/// A cancellation token: a node in a tree where cancelling a parent cancels
/// every descendant, and a child never cancels its parent.
///
/// This is Go's `context.Context` without values: [`child`](Token::child)
/// is `WithCancel`, [`with_timeout`](Token::with_timeout) and
/// [`with_deadline`](Token::with_deadline) are `WithTimeout` and
/// `WithDeadline`, [`cancel_with`](Token::cancel_with) and
/// [`cause`](Token::cause) are `WithCancelCause` and `Cause`,
/// [`on_cancel`](Token::on_cancel) is `AfterFunc`. Unlike Go there is no
/// `cancel` function to remember to call: a child that is dropped
/// unregisters from its parent, so memory stays bounded however many
/// children a long-lived token has had.
///
/// A `Token` is a shared handle: clones refer to the same node, and the
/// node lives while any clone, any descendant, or an [`OnCancel`] handle
/// does. It is `Send + Sync` and works from async tasks (on any runtime)
/// and from plain threads.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::{Cause, Token};
///
/// # futures_lite::future::block_on(async {
/// let root = Token::new();
/// let request = root.with_timeout(Duration::from_secs(5));
/// let step = request.child();
///
/// step.cancel(); // a child never cancels its parent
/// assert!(!request.is_cancelled());
///
/// root.cancel_with(Cause::error("shutting down"));
/// request.cancelled().await; // resolves at once: the parent's cancel reached it
/// assert_eq!(request.cause().unwrap().to_string(), "shutting down");
/// assert_eq!(step.cause(), Some(Cause::Cancelled)); // the first cause wins
/// # });
/// ```
#[derive(Clone)]
pub struct Token {
    node: Arc<Node>,
}

impl Token {
    /// A new root token, on the system clock.
    pub fn new() -> Token {
        Token { node: Node::root(crate::timer::Timers::System) }
    }

    /// A new root token whose deadlines (and its descendants') are measured
    /// and fired by `clock`: pass a [`ManualClock`](crate::ManualClock) to
    /// test deadline rules without sleeping.
    pub fn with_clock(clock: impl Clock) -> Token {
        Token { node: Node::root(clock.timers().0) }
    }

    /// A child token: cancelled when this one is (with the same cause), and
    /// cancellable on its own without affecting this one.
    ///
    /// If this token is already cancelled, the child is born cancelled.
    pub fn child(&self) -> Token {
        let node = &self.node;
        Token { node: Node::under(&[node], node.deadline, node.timers.clone()) }
    }

    /// A child token that also cancels itself with
    /// [`Cause::DeadlineExceeded`] once `deadline` passes (by this token's
    /// clock).
    ///
    /// A deadline already past gives a child that is already cancelled;
    /// a deadline later than an inherited one changes nothing (the earlier
    /// one fires first), as in Go.
    pub fn with_deadline(&self, deadline: Instant) -> Token {
        let parent = &self.node;
        let inherited = parent.deadline;
        let effective = Some(inherited.map_or(deadline, |d| d.min(deadline)));
        let node = Node::under(&[parent], effective, parent.timers.clone());
        if inherited.is_none_or(|d| deadline < d) {
            if deadline <= parent.timers.now() {
                cancel_node(&node, Cause::DeadlineExceeded);
            } else {
                node.arm_deadline(deadline);
            }
        }
        Token { node }
    }

    /// A child token that cancels itself with [`Cause::DeadlineExceeded`]
    /// after `timeout` (by this token's clock).
    ///
    /// A zero timeout gives a child that is already cancelled; a timeout too
    /// large to represent as an instant means no deadline.
    pub fn with_timeout(&self, timeout: Duration) -> Token {
        match self.node.timers.now().checked_add(timeout) {
            Some(deadline) => self.with_deadline(deadline),
            None => self.child(),
        }
    }

    /// A token cancelled as soon as any of `parents` is, with the cause of
    /// the first parent cancelled (a linked token, like .NET's
    /// `CreateLinkedTokenSource`).
    ///
    /// Its deadline is the earliest of its parents'; it uses the first
    /// parent's clock. With no parents it is a root that only its own
    /// [`cancel`](Token::cancel) ends.
    pub fn any_of(parents: &[Token]) -> Token {
        let nodes: Vec<&Arc<Node>> = parents.iter().map(|token| &token.node).collect();
        let deadline = nodes.iter().filter_map(|node| node.deadline).min();
        let timers = nodes.first().map(|node| node.timers.clone()).unwrap_or_default();
        Token { node: Node::under(&nodes, deadline, timers) }
    }

    /// Cancels this token and every descendant with [`Cause::Cancelled`].
    ///
    /// Returns `true` if this call cancelled it, `false` if it already was
    /// (the earlier cause stays).
    ///
    /// The whole subtree is marked cancelled first; then waiters are woken
    /// and [`on_cancel`](Token::on_cancel) callbacks run, on the calling
    /// thread, before this returns, so a callback sees every descendant
    /// cancelled. (If another thread is cancelling part of the subtree at the
    /// same moment, that part is finished by that thread.)
    ///
    /// # Panics
    ///
    /// If an `on_cancel` callback panics, the whole tree is still cancelled
    /// and every other callback still runs; then the first panic is resumed
    /// here.
    pub fn cancel(&self) -> bool {
        cancel_node(&self.node, Cause::Cancelled)
    }

    /// Cancels this token and every descendant with `cause`, unless it is
    /// already cancelled: the first cause wins.
    ///
    /// Returns `true` if this call cancelled it.
    ///
    /// # Panics
    ///
    /// As [`cancel`](Token::cancel), only if an `on_cancel` callback panics.
    pub fn cancel_with(&self, cause: Cause) -> bool {
        cancel_node(&self.node, cause)
    }

    /// Whether this token is cancelled: a single atomic load.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.node.cancelled.load(Ordering::Acquire)
    }

    /// Whether this handle could be swapped for a new token made the same
    /// way ([`Token::new`], or a new [`child`](Token::child) of the same
    /// parent) with no one able to tell: it is the only handle, the token
    /// was never cancelled, and nothing observes it (no child, no waiter,
    /// no [`on_cancel`](Token::on_cancel) callback, no pending deadline of
    /// its own, no bridged tokio token).
    ///
    /// Code that makes a fresh token per unit of work (a worker pool giving
    /// each job a child of the pool's token) can keep the token instead of
    /// making a new one while this returns `true`.
    ///
    /// A parent cancelled concurrently may cancel the token right after
    /// this returns `true`; a new child made at that moment would be
    /// cancelled too.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::Token;
    ///
    /// let pool = Token::new();
    /// let mut job = pool.child();
    /// assert!(job.is_pristine());
    ///
    /// let kept = job.clone();
    /// assert!(!job.is_pristine(), "a clone can observe it");
    /// drop(kept);
    /// assert!(job.is_pristine());
    ///
    /// job.cancel();
    /// assert!(!job.is_pristine());
    /// ```
    pub fn is_pristine(&mut self) -> bool {
        // `&mut self`: no one can clone this very handle during the check.
        Node::is_pristine(&self.node)
    }

    /// Why this token was cancelled, or `None` while it is not.
    pub fn cause(&self) -> Option<Cause> {
        self.node.cause()
    }

    /// The earliest deadline of this token and its ancestors, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// A future that completes when this token is cancelled.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it unregisters its waker and loses nothing.
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled::new(&self.node)
    }

    /// Like [`cancelled`](Token::cancelled), but owns a clone of the token,
    /// so the future is `'static` and can be moved into a spawned task.
    pub fn cancelled_owned(self) -> CancelledOwned {
        CancelledOwned::new(self)
    }

    /// Blocks the current thread until this token is cancelled.
    ///
    /// For plain threads; in async code await [`cancelled`](Token::cancelled).
    pub fn wait_blocking(&self) {
        wait::wait_blocking(&self.node, None);
    }

    /// Blocks the current thread until this token is cancelled or `timeout`
    /// of real time passes; returns whether it is cancelled.
    ///
    /// The timeout is measured on the system clock even for a token made
    /// with [`with_clock`](Token::with_clock): it bounds how long a thread
    /// blocks, which only real time can.
    pub fn wait_blocking_timeout(&self, timeout: Duration) -> bool {
        wait::wait_blocking(&self.node, Instant::now().checked_add(timeout))
    }

    /// Runs `future` until it completes or this token is cancelled,
    /// whichever is first; cancellation is checked first, so an already
    /// cancelled token never polls the future.
    ///
    /// # Errors
    ///
    /// The token's [`Cause`] if it was cancelled first (the future is then
    /// dropped).
    pub async fn run_until_cancelled<F: Future>(&self, future: F) -> Result<F::Output, Cause> {
        let mut future = pin!(future);
        let mut cancelled = pin!(self.cancelled());
        std::future::poll_fn(|cx| {
            if self.is_cancelled() {
                return Poll::Ready(Err(self.cause_or_cancelled()));
            }
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            match cancelled.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(self.cause_or_cancelled())),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Registers `callback` to run once when this token is cancelled, on the
    /// thread that cancels it; if the token is already cancelled it runs now,
    /// on this thread (Go's `context.AfterFunc`).
    ///
    /// The returned handle's [`stop`](OnCancel::stop) deregisters the
    /// callback; dropping the handle does not. As in Go, the registration
    /// keeps the token alive until the callback runs or is stopped, so it
    /// runs when an ancestor or a deadline cancels the token even if every
    /// other handle was dropped: call `stop` when the callback is no longer
    /// wanted on a token that may never be cancelled. Keep callbacks short:
    /// they run inside `cancel`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use conc_core::Token;
    ///
    /// let token = Token::new();
    /// let closed = Arc::new(AtomicBool::new(false));
    /// let flag = closed.clone();
    /// let _registration = token.on_cancel(move || flag.store(true, Ordering::SeqCst));
    ///
    /// token.cancel();
    /// assert!(closed.load(Ordering::SeqCst));
    /// ```
    pub fn on_cancel<F>(&self, callback: F) -> OnCancel
    where
        F: FnOnce() + Send + 'static,
    {
        OnCancel::register(self.clone(), callback)
    }

    /// A guard that cancels this token when dropped, unless
    /// [`disarm`](DropGuard::disarm)ed first: Go's `defer cancel()`.
    pub fn drop_guard(self) -> DropGuard {
        DropGuard::new(self)
    }

    /// The cause, for paths that already saw the token cancelled.
    fn cause_or_cancelled(&self) -> Cause {
        self.cause().unwrap_or(Cause::Cancelled)
    }
}

impl Default for Token {
    fn default() -> Self {
        Token::new()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token").field("cause", &self.cause()).field("deadline", &self.deadline()).finish()
    }
}
