//! The response future of the rate limits.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::LimitError;
use super::error::Reject;

pin_project! {
    /// The response future of [`RateLimit`](super::RateLimit) and
    /// [`KeyedRateLimit`](super::KeyedRateLimit): the inner service's
    /// response future if the request was admitted, or the rejection.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner future. The limiter's event was spent
    /// when the request arrived and is not given back: a rate limit counts
    /// requests, not completed responses.
    #[must_use = "futures do nothing unless polled"]
    pub struct RateLimitFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Admitted { #[pin] future: F },
        Rejected { reject: Reject },
    }
}

impl<F> RateLimitFuture<F> {
    pub(super) fn admitted(future: F) -> Self {
        RateLimitFuture { state: State::Admitted { future } }
    }

    pub(super) fn rejected(reject: Reject) -> Self {
        RateLimitFuture { state: State::Rejected { reject } }
    }
}

impl<F, T, E> Future for RateLimitFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, LimitError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Admitted { future } => future.poll(cx).map_err(LimitError::Inner),
            StateProj::Rejected { reject } => Poll::Ready(Err(reject.into_error())),
        }
    }
}

impl<F> fmt::Debug for RateLimitFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Admitted { .. } => "admitted",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("RateLimitFuture").field("state", &state).finish()
    }
}
