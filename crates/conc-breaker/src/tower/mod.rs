//! [`tower`](https://docs.rs/tower) middleware (feature `tower`): a
//! circuit breaker around any [`Service`], which tower itself does not
//! have.
//!
//! [`BreakerLayer`] wraps a service in a [`BreakerService`]: each request
//! takes a permit from the shared [`Breaker`] in [`call`](Service::call);
//! while the breaker is open it is rejected at once with
//! [`BreakerError::Open`] (with when a trial will be allowed: a
//! `Retry-After`) without reaching the inner service. An admitted
//! request's outcome is recorded when its response future completes, as a
//! [`Classify`] decides: by default an `Err` is a failure, and
//! [`BreakerLayer::classify`] takes a closure that can count an HTTP `5xx`
//! response as one too. The breaker's
//! [`call_timeout`](crate::BreakerBuilder::call_timeout), if it has one,
//! applies to the response future ([`BreakerError::Timeout`]).
//!
//! As with `conc_limit::tower`, every clone of the service shares the one
//! breaker (it is held in an `Arc`), and
//! [`poll_ready`](Service::poll_ready) only forwards to the inner service.
//! A response future dropped before it completes records nothing; a panic
//! inside it records a failure.
//!
//! # Example: an HTTP-like downstream that fails with 503
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::time::Duration;
//! use conc_breaker::tower::BreakerLayer;
//! use conc_breaker::{Breaker, BreakerError, State};
//! use conc_core::{Clock, ManualClock};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # futures_lite::future::block_on(async {
//! let clock = ManualClock::new(); // the system clock unless told otherwise
//! let breaker = Arc::new(
//!     Breaker::builder()
//!         .consecutive_failures(2)
//!         .open_duration(Duration::from_secs(30))
//!         .clock(clock.clone())
//!         .build()?,
//! );
//! // The downstream answers with a status code; 5xx counts as a failure.
//! let downstream = ServiceBuilder::new()
//!     .layer(BreakerLayer::new(Arc::clone(&breaker)).classify(|result: &Result<u16, Infallible>| {
//!         result.as_ref().map_or(true, |status| *status >= 500)
//!     }))
//!     .service_fn(|path: &'static str| async move { Ok::<u16, Infallible>(if path == "/flaky" { 503 } else { 200 }) });
//!
//! assert_eq!(downstream.clone().oneshot("/flaky").await?, 503);
//! assert_eq!(downstream.clone().oneshot("/flaky").await?, 503);
//! assert_eq!(breaker.state(), State::Open);
//! // Rejected at once, with when to come back.
//! let Err(BreakerError::Open { retry_at }) = downstream.clone().oneshot("/").await else { panic!() };
//! assert_eq!(retry_at, Some(clock.now() + Duration::from_secs(30)));
//!
//! clock.advance(Duration::from_secs(30));
//! assert_eq!(downstream.oneshot("/").await?, 200); // the trial succeeds
//! assert_eq!(breaker.state(), State::Closed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod classify;
mod future;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

pub use self::classify::{Classify, DefaultClassifier};
pub use self::future::ResponseFuture;
use crate::{Breaker, BreakerError};

/// A [`Layer`] that puts a [`BreakerService`] around a service, all of
/// them (and their clones) sharing one [`Breaker`]; `C` classifies the
/// responses (see [`Classify`]).
#[derive(Clone)]
pub struct BreakerLayer<C = DefaultClassifier> {
    breaker: Arc<Breaker>,
    classifier: C,
}

impl BreakerLayer {
    /// A layer around `breaker` that counts an `Err` from the inner service
    /// as a failure and an `Ok` as a success.
    pub fn new(breaker: Arc<Breaker>) -> Self {
        BreakerLayer { breaker, classifier: DefaultClassifier }
    }
}

impl<C> BreakerLayer<C> {
    /// Replaces the response classifier: `classifier` returns `true` when
    /// a call's result counts as a failure (an HTTP `5xx`, say), `false`
    /// when it counts as a success (a `404` is the client's mistake, not
    /// the downstream's). The result reaches the caller unchanged either
    /// way.
    ///
    /// A closure names its parameter's type (`|result: &Result<Response,
    /// Error>| ...`): the layer does not know the service's types yet.
    pub fn classify<T, E, C2>(self, classifier: C2) -> BreakerLayer<C2>
    where
        C2: Fn(&Result<T, E>) -> bool + Clone,
    {
        BreakerLayer { breaker: self.breaker, classifier }
    }

    /// The shared breaker: its [`state`](Breaker::state) and
    /// [`metrics`](Breaker::metrics) are the figures to export.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }
}

impl<C> fmt::Debug for BreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerLayer").field("breaker", &self.breaker).finish_non_exhaustive()
    }
}

impl<S, C: Clone> Layer<S> for BreakerLayer<C> {
    type Service = BreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService { inner, breaker: Arc::clone(&self.breaker), classifier: self.classifier.clone() }
    }
}

/// A service behind a circuit breaker: made by [`BreakerLayer`].
///
/// [`call`](Service::call) asks the breaker for a permit: if it refuses,
/// the response future fails with [`BreakerError::Open`] or
/// [`BreakerError::HalfOpenFull`] and the inner service is not called.
/// Otherwise the inner service's response future runs, and its outcome is
/// recorded when it completes, as the classifier says; an `Err` reaches
/// the caller as [`BreakerError::Inner`]. With a breaker
/// [`call_timeout`](crate::BreakerBuilder::call_timeout), a response not
/// ready in time is dropped and recorded as a timeout
/// ([`BreakerError::Timeout`]).
///
/// An error from the inner service's [`poll_ready`](Service::poll_ready)
/// is passed on as [`BreakerError::Inner`] and recorded as nothing: no call
/// was made.
#[derive(Clone)]
pub struct BreakerService<S, C = DefaultClassifier> {
    inner: S,
    breaker: Arc<Breaker>,
    classifier: C,
}

impl<S> BreakerService<S> {
    /// `inner` behind `breaker`, with the [`DefaultClassifier`].
    pub fn new(inner: S, breaker: Arc<Breaker>) -> Self {
        BreakerService { inner, breaker, classifier: DefaultClassifier }
    }
}

impl<S, C> BreakerService<S, C> {
    /// The shared breaker.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
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

impl<S: fmt::Debug, C> fmt::Debug for BreakerService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<S, C, Req> Service<Req> for BreakerService<S, C>
where
    S: Service<Req>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BreakerError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakerError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => {
                let config = &self.breaker.config;
                let timeout = config.call_timeout.map(|after| (config.clock.sleep(after), after));
                ResponseFuture::admitted(self.inner.call(request), permit, self.classifier.clone(), timeout)
            }
            Err(rejected) => ResponseFuture::rejected(rejected),
        }
    }
}
