//! The acquire futures, and the small executor of the blocking forms.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::{CancelledOwned, Cause, Token};

use super::queue::{Outcome, Waiting};
use super::{AcquireError, OwnedPermit, Permit, Semaphore};

/// One wait for `permits`, the state machine every acquire future runs.
struct Wait {
    permits: usize,
    state: State,
}

enum State {
    /// Not polled yet.
    Start,
    /// In the queue.
    Queued(Waiting),
    /// Completed (the permits, if any, belong to a guard now) or left.
    Done,
}

impl Wait {
    fn new(permits: usize) -> Self {
        Wait { permits, state: State::Start }
    }

    fn poll(&mut self, semaphore: &Semaphore, cx: &mut Context<'_>) -> Poll<Result<(), AcquireError>> {
        let result = match &mut self.state {
            State::Start => {
                if semaphore.try_take(self.permits).is_ok() {
                    Ok(())
                } else {
                    match semaphore.enqueue(self.permits, cx.waker()) {
                        Ok(None) => Ok(()),
                        Err(error) => Err(error),
                        Ok(Some(waiting)) => {
                            // Granted by the enqueue's own settle, or queued.
                            if semaphore.board.granted(&waiting) {
                                Ok(())
                            } else {
                                self.state = State::Queued(waiting);
                                return Poll::Pending;
                            }
                        }
                    }
                }
            }
            State::Queued(waiting) => {
                // The board tells a grant without the lock; anything else
                // (still pending, a failure, a new waker) takes it.
                let outcome = if semaphore.board.granted(waiting) {
                    Outcome::Granted
                } else {
                    semaphore.poll_queued(waiting, cx.waker())
                };
                match outcome_result(outcome, self.permits) {
                    Some(result) => result,
                    None => return Poll::Pending,
                }
            }
            State::Done => panic!("an acquire future was polled after it completed"),
        };
        self.state = State::Done;
        Poll::Ready(result)
    }

    /// Leaves the queue if queued; whatever was granted goes back.
    fn cancel(&mut self, semaphore: &Semaphore) {
        if let State::Queued(waiting) = std::mem::replace(&mut self.state, State::Done) {
            semaphore.leave(waiting, self.permits);
        }
    }

    fn is_queued(&self) -> bool {
        matches!(self.state, State::Queued(_))
    }
}

fn outcome_result(outcome: Outcome, requested: usize) -> Option<Result<(), AcquireError>> {
    match outcome {
        Outcome::Pending => None,
        Outcome::Granted => Some(Ok(())),
        Outcome::Closed => Some(Err(AcquireError::Closed)),
        Outcome::TooLarge { capacity } => Some(Err(AcquireError::TooLarge { requested, capacity })),
    }
}

/// Races `wait` against `cancelled`, cancellation first (as
/// `Token::run_until_cancelled`): an already cancelled token fails even an
/// acquire that could complete, and gives back what was granted.
fn poll_until(
    wait: &mut Wait,
    semaphore: &Semaphore,
    cancelled: &mut CancelledOwned,
    cx: &mut Context<'_>,
) -> Poll<Result<(), AcquireError>> {
    if cancelled.token().is_cancelled() {
        return Poll::Ready(Err(cancel_wait(wait, semaphore, cancelled.token())));
    }
    if let Poll::Ready(result) = wait.poll(semaphore, cx) {
        // Looked at again, as Go's `Acquire` does once it is granted: a
        // cancel that came before the permits did (between the check above
        // and the grant) fails the acquire, and the permits go back.
        if result.is_ok() && cancelled.token().is_cancelled() {
            semaphore.release(wait.permits);
            return Poll::Ready(Err(cancelled_error(cancelled.token())));
        }
        return Poll::Ready(result);
    }
    match Pin::new(&mut *cancelled).poll(cx) {
        Poll::Ready(()) => Poll::Ready(Err(cancel_wait(wait, semaphore, cancelled.token()))),
        Poll::Pending => Poll::Pending,
    }
}

fn cancel_wait(wait: &mut Wait, semaphore: &Semaphore, token: &Token) -> AcquireError {
    wait.cancel(semaphore);
    cancelled_error(token)
}

fn cancelled_error(token: &Token) -> AcquireError {
    AcquireError::Cancelled(token.cause().unwrap_or(Cause::Cancelled))
}

/// Future returned by [`Semaphore::acquire`]: resolves to a [`Permit`].
///
/// # Cancel safety
///
/// Dropping it gives up its place in the queue and loses no permits: what
/// was granted to it at that moment goes back, and the waiters behind it
/// that now fit are woken.
///
/// # Panics
///
/// If polled again after it completed.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    semaphore: &'a Semaphore,
    wait: Wait,
}

impl<'a> Acquire<'a> {
    pub(super) fn new(semaphore: &'a Semaphore, permits: usize) -> Self {
        Acquire { semaphore, wait: Wait::new(permits) }
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<Permit<'a>, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.wait.poll(this.semaphore, cx).map_ok(|()| Permit::new(this.semaphore, this.wait.permits))
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.wait.cancel(self.semaphore);
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("permits", &self.wait.permits)
            .field("queued", &self.wait.is_queued())
            .finish_non_exhaustive()
    }
}

/// Future returned by [`Semaphore::acquire_owned`]: resolves to an
/// [`OwnedPermit`], and is `'static`.
///
/// # Cancel safety
///
/// As [`Acquire`].
///
/// # Panics
///
/// If polled again after it completed.
#[must_use = "futures do nothing unless polled"]
pub struct AcquireOwned {
    semaphore: Arc<Semaphore>,
    wait: Wait,
}

impl AcquireOwned {
    pub(super) fn new(semaphore: Arc<Semaphore>, permits: usize) -> Self {
        AcquireOwned { semaphore, wait: Wait::new(permits) }
    }
}

impl Future for AcquireOwned {
    type Output = Result<OwnedPermit, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.wait
            .poll(&this.semaphore, cx)
            .map_ok(|()| OwnedPermit::new(Arc::clone(&this.semaphore), this.wait.permits))
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        self.wait.cancel(&self.semaphore);
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned")
            .field("permits", &self.wait.permits)
            .field("queued", &self.wait.is_queued())
            .finish_non_exhaustive()
    }
}

/// Future returned by [`Semaphore::acquire_until`]: resolves to a
/// [`Permit`], or to [`AcquireError::Cancelled`] once the token is
/// cancelled.
///
/// # Cancel safety
///
/// As [`Acquire`].
#[must_use = "futures do nothing unless polled"]
pub struct AcquireUntil<'a> {
    semaphore: &'a Semaphore,
    wait: Wait,
    cancelled: CancelledOwned,
}

impl<'a> AcquireUntil<'a> {
    pub(super) fn new(semaphore: &'a Semaphore, permits: usize, token: &Token) -> Self {
        AcquireUntil { semaphore, wait: Wait::new(permits), cancelled: token.clone().cancelled_owned() }
    }
}

impl<'a> Future for AcquireUntil<'a> {
    type Output = Result<Permit<'a>, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        poll_until(&mut this.wait, this.semaphore, &mut this.cancelled, cx)
            .map_ok(|()| Permit::new(this.semaphore, this.wait.permits))
    }
}

impl Drop for AcquireUntil<'_> {
    fn drop(&mut self) {
        self.wait.cancel(self.semaphore);
    }
}

impl fmt::Debug for AcquireUntil<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireUntil")
            .field("permits", &self.wait.permits)
            .field("queued", &self.wait.is_queued())
            .field("token", self.cancelled.token())
            .finish_non_exhaustive()
    }
}

/// Future returned by [`Semaphore::acquire_owned_until`]: the `'static`
/// form of [`AcquireUntil`].
///
/// # Cancel safety
///
/// As [`Acquire`].
#[must_use = "futures do nothing unless polled"]
pub struct AcquireOwnedUntil {
    semaphore: Arc<Semaphore>,
    wait: Wait,
    cancelled: CancelledOwned,
}

impl AcquireOwnedUntil {
    pub(super) fn new(semaphore: Arc<Semaphore>, permits: usize, token: &Token) -> Self {
        AcquireOwnedUntil { semaphore, wait: Wait::new(permits), cancelled: token.clone().cancelled_owned() }
    }
}

impl Future for AcquireOwnedUntil {
    type Output = Result<OwnedPermit, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        poll_until(&mut this.wait, &this.semaphore, &mut this.cancelled, cx)
            .map_ok(|()| OwnedPermit::new(Arc::clone(&this.semaphore), this.wait.permits))
    }
}

impl Drop for AcquireOwnedUntil {
    fn drop(&mut self) {
        self.wait.cancel(&self.semaphore);
    }
}

impl fmt::Debug for AcquireOwnedUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwnedUntil")
            .field("permits", &self.wait.permits)
            .field("queued", &self.wait.is_queued())
            .field("token", self.cancelled.token())
            .finish_non_exhaustive()
    }
}
