//! [`RateLimitLayer`] and [`RateLimit`]: one limiter shared by every clone.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::error::Reject;
use super::{LimitError, RateLimitFuture};
use crate::Limiter;

/// A [`Layer`] that puts a [`RateLimit`] around a service: every request
/// takes one event from the shared limiter, or is shed with
/// [`LimitError::RateLimited`].
///
/// Every service it makes, and every clone of those, checks the same
/// limiter (unlike tower's own `RateLimit`, whose clones each get their
/// own budget).
pub struct RateLimitLayer<L> {
    limiter: Arc<L>,
}

impl<L: Limiter> RateLimitLayer<L> {
    /// A layer whose services all take from `limiter`: a
    /// [`Gcra`](crate::Gcra), a [`TokenBucket`](crate::TokenBucket), a
    /// [`SlidingWindow`](crate::SlidingWindow) or any other [`Limiter`].
    pub fn new(limiter: Arc<L>) -> Self {
        RateLimitLayer { limiter }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &Arc<L> {
        &self.limiter
    }
}

impl<L> Clone for RateLimitLayer<L> {
    fn clone(&self) -> Self {
        RateLimitLayer { limiter: Arc::clone(&self.limiter) }
    }
}

impl<L: fmt::Debug> fmt::Debug for RateLimitLayer<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer").field("limiter", &self.limiter).finish()
    }
}

impl<S, L: Limiter> Layer<S> for RateLimitLayer<L> {
    type Service = RateLimit<S, L>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.limiter))
    }
}

/// A service that admits a request only if a shared rate limiter does:
/// made by [`RateLimitLayer`].
///
/// The limiter is checked in [`call`](Service::call), when the request
/// arrives; a denied request is shed at once (never queued) with
/// [`LimitError::RateLimited`], whose `retry_after` is the time until it
/// would be admitted by the limiter's own clock, and the inner service is
/// not called. [`poll_ready`](Service::poll_ready) only forwards to the
/// inner service, so a service cloned per request (as axum does) is fine:
/// every clone shares the one limiter.
pub struct RateLimit<S, L> {
    inner: S,
    limiter: Arc<L>,
}

impl<S, L: Limiter> RateLimit<S, L> {
    /// Limits `inner` with `limiter`.
    pub fn new(inner: S, limiter: Arc<L>) -> Self {
        RateLimit { inner, limiter }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &Arc<L> {
        &self.limiter
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, L> Clone for RateLimit<S, L> {
    fn clone(&self) -> Self {
        RateLimit { inner: self.inner.clone(), limiter: Arc::clone(&self.limiter) }
    }
}

impl<S: fmt::Debug, L: fmt::Debug> fmt::Debug for RateLimit<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit").field("inner", &self.inner).field("limiter", &self.limiter).finish()
    }
}

impl<S, L, Req> Service<Req> for RateLimit<S, L>
where
    S: Service<Req>,
    L: Limiter,
{
    type Response = S::Response;
    type Error = LimitError<S::Error>;
    type Future = RateLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(LimitError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.limiter.check_n(1) {
            Ok(()) => RateLimitFuture::admitted(self.inner.call(request)),
            Err(denied) => RateLimitFuture::rejected(Reject::denied(denied, self.limiter.now())),
        }
    }
}
