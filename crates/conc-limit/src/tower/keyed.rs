//! [`KeyedRateLimitLayer`] and [`KeyedRateLimit`]: a limit per key taken
//! from the request.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::error::Reject;
use super::{LimitError, RateLimitFuture};
use crate::{Keyed, KeyedError, Limiter};

/// A [`Layer`] that puts a [`KeyedRateLimit`] around a service: each
/// request is checked against the limiter of its own key (a client id, a
/// peer address, a tenant), which `key` extracts from the request.
///
/// Every service it makes, and every clone of those, shares the one
/// [`Keyed`] store.
pub struct KeyedRateLimitLayer<K, L, F> {
    keyed: Arc<Keyed<K, L>>,
    key: F,
}

impl<K, L, F> KeyedRateLimitLayer<K, L, F>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    L: Limiter,
{
    /// A layer whose services check `keyed` under the key `key` extracts
    /// from each request (`key: Fn(&Request) -> K`).
    pub fn new(keyed: Arc<Keyed<K, L>>, key: F) -> Self {
        KeyedRateLimitLayer { keyed, key }
    }

    /// The shared keyed limiter.
    pub fn keyed(&self) -> &Arc<Keyed<K, L>> {
        &self.keyed
    }
}

impl<K, L, F: Clone> Clone for KeyedRateLimitLayer<K, L, F> {
    fn clone(&self) -> Self {
        KeyedRateLimitLayer { keyed: Arc::clone(&self.keyed), key: self.key.clone() }
    }
}

impl<K, L, F> fmt::Debug for KeyedRateLimitLayer<K, L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitLayer").finish_non_exhaustive()
    }
}

impl<S, K, L, F: Clone> Layer<S> for KeyedRateLimitLayer<K, L, F> {
    type Service = KeyedRateLimit<S, K, L, F>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimit { inner, keyed: Arc::clone(&self.keyed), key: self.key.clone() }
    }
}

/// A service that admits a request only if the limiter of the request's
/// key does: made by [`KeyedRateLimitLayer`].
///
/// The key is extracted and checked in [`call`](Service::call); a denied
/// request is shed at once with [`LimitError::RateLimited`] (its
/// `retry_after` by the limiters' clock), a new key that finds the store
/// full of active keys with [`LimitError::TooManyKeys`], and the inner
/// service is not called. Keys are independent: one client over its limit
/// does not slow another. [`poll_ready`](Service::poll_ready) only forwards
/// to the inner service.
pub struct KeyedRateLimit<S, K, L, F> {
    inner: S,
    keyed: Arc<Keyed<K, L>>,
    key: F,
}

impl<S, K, L, F> KeyedRateLimit<S, K, L, F>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    L: Limiter,
{
    /// Limits `inner` per key with `keyed`, `key` extracting each
    /// request's key.
    pub fn new(inner: S, keyed: Arc<Keyed<K, L>>, key: F) -> Self {
        KeyedRateLimit { inner, keyed, key }
    }

    /// The shared keyed limiter.
    pub fn keyed(&self) -> &Arc<Keyed<K, L>> {
        &self.keyed
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

impl<S: Clone, K, L, F: Clone> Clone for KeyedRateLimit<S, K, L, F> {
    fn clone(&self) -> Self {
        KeyedRateLimit { inner: self.inner.clone(), keyed: Arc::clone(&self.keyed), key: self.key.clone() }
    }
}

impl<S: fmt::Debug, K, L, F> fmt::Debug for KeyedRateLimit<S, K, L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimit").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S, K, L, F, Req> Service<Req> for KeyedRateLimit<S, K, L, F>
where
    S: Service<Req>,
    K: Hash + Eq + Clone,
    L: Limiter,
    F: Fn(&Req) -> K,
{
    type Response = S::Response;
    type Error = LimitError<S::Error>;
    type Future = RateLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(LimitError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let key = (self.key)(&request);
        match self.keyed.check(&key) {
            Ok(()) => RateLimitFuture::admitted(self.inner.call(request)),
            Err(KeyedError::Denied(denied)) => {
                RateLimitFuture::rejected(Reject::denied(denied, self.keyed.template().now()))
            }
            Err(KeyedError::TooManyKeys { .. }) => RateLimitFuture::rejected(Reject::TooManyKeys),
        }
    }
}
