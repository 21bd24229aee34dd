//! [`ResponseFuture`]: one call through the breaker.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use conc_core::Sleep;
use pin_project_lite::pin_project;

use super::Classify;
use crate::{BreakerError, OwnedPermit, Rejected};

/// An admitted call's permit, classifier and timeout: what it needs to
/// record its outcome.
struct Call<C> {
    permit: OwnedPermit,
    classifier: C,
    timeout: Option<(Sleep, Duration)>,
}

pin_project! {
    /// The response future of [`BreakerService`](super::BreakerService):
    /// the rejection, or the inner service's response future, whose outcome
    /// it records on the breaker when it completes.
    ///
    /// # Cancel safety
    ///
    /// Dropping it before it completes (the client went away) drops the
    /// inner future and records nothing: an abandoned call is neither a
    /// success nor a failure, and a half-open trial place is given back.
    /// A panic in the inner future or the classifier is recorded as a
    /// failure.
    ///
    /// # Panics
    ///
    /// If polled again after it completed with the inner service's
    /// response or a timeout.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C> {
        // Declared first, so that dropping this future drops the inner one
        // before its permit.
        #[pin]
        inner: Option<F>,
        call: Option<Call<C>>,
        rejected: Option<Rejected>,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn admitted(inner: F, permit: OwnedPermit, classifier: C, timeout: Option<(Sleep, Duration)>) -> Self {
        ResponseFuture { inner: Some(inner), call: Some(Call { permit, classifier, timeout }), rejected: None }
    }

    pub(super) fn rejected(rejected: Rejected) -> Self {
        ResponseFuture { inner: None, call: None, rejected: Some(rejected) }
    }
}

/// Drops the call's permit if the thread unwinds past it, so that a panic
/// in the inner future or the classifier records a failure (the permit's
/// drop while panicking). Without it the permit would stay in this future,
/// and an executor that catches the panic and drops the future later (not
/// while unwinding, as tokio does) would have it record nothing.
struct FailOnPanic<'a, C>(&'a mut Option<Call<C>>);

impl<C> Drop for FailOnPanic<'_, C> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            drop(self.0.take());
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, BreakerError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(rejected) = *this.rejected {
            return Poll::Ready(Err(rejected.into()));
        }
        let inner = this.inner.as_mut().as_pin_mut().expect("breaker ResponseFuture polled after completion");
        let guard = FailOnPanic(this.call);
        if let Poll::Ready(result) = inner.poll(cx) {
            this.inner.set(None);
            if let Some(call) = guard.0.take() {
                call.permit.record(call.classifier.is_failure(&result));
            }
            return Poll::Ready(result.map_err(BreakerError::Inner));
        }
        let Some(Call { timeout: Some((sleep, after)), .. }) = guard.0.as_mut() else {
            return Poll::Pending;
        };
        let after = *after;
        ready!(Pin::new(sleep).poll(cx));
        // Past the call timeout: the call is abandoned, as a failure.
        this.inner.set(None);
        if let Some(call) = guard.0.take() {
            call.permit.timed_out();
        }
        Poll::Ready(Err(BreakerError::Timeout(after)))
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("permit", &self.call.as_ref().map(|call| &call.permit))
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}
