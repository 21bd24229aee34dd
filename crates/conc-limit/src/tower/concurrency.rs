//! [`ConcurrencyLimitLayer`] and [`ConcurrencyLimit`]: at most N requests
//! in flight, on a shared [`Semaphore`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::LimitError;
use super::error::Reject;
use crate::Semaphore;
use crate::semaphore::{AcquireOwned, OwnedPermit};

/// What a request does when no permit is free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Wait in the semaphore's FIFO queue.
    Queue,
    /// Fail at once with `Saturated`.
    Shed,
}

/// A [`Layer`] that puts a [`ConcurrencyLimit`] around a service: each
/// request holds one permit of a shared [`Semaphore`] from the moment it is
/// admitted until its response future completes or is dropped.
///
/// Two modes: [`new`](ConcurrencyLimitLayer::new) queues a request for a
/// permit (FIFO, bounded by the semaphore's
/// [`max_waiters`](Semaphore::set_max_waiters)), and
/// [`shed`](ConcurrencyLimitLayer::shed) rejects it at once when no permit
/// is free (what tower's `ConcurrencyLimit` cannot do).
#[derive(Clone)]
pub struct ConcurrencyLimitLayer {
    semaphore: Arc<Semaphore>,
    mode: Mode,
}

impl ConcurrencyLimitLayer {
    /// Requests wait, in arrival order, for a permit of `semaphore`. If the
    /// semaphore's `max_waiters` are already waiting, a request fails at
    /// once with [`LimitError::Saturated`]; if it is closed, with
    /// [`LimitError::Closed`].
    pub fn new(semaphore: Arc<Semaphore>) -> Self {
        ConcurrencyLimitLayer { semaphore, mode: Mode::Queue }
    }

    /// Requests never wait: one that finds no free permit (or others
    /// already queued on the semaphore) fails at once with
    /// [`LimitError::Saturated`], and the inner service is not called (load
    /// shedding); a closed semaphore gives [`LimitError::Closed`].
    pub fn shed(semaphore: Arc<Semaphore>) -> Self {
        ConcurrencyLimitLayer { semaphore, mode: Mode::Shed }
    }

    /// The shared semaphore: its [`available`](Semaphore::available)
    /// permits and [`waiters`](Semaphore::waiters) are the figures to
    /// export, and [`set_capacity`](Semaphore::set_capacity) changes the
    /// limit at run time.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }
}

impl fmt::Debug for ConcurrencyLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitLayer")
            .field("semaphore", &self.semaphore)
            .field("shed", &(self.mode == Mode::Shed))
            .finish()
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit { inner, semaphore: Arc::clone(&self.semaphore), mode: self.mode }
    }
}

/// A service that lets at most as many requests run at once as its
/// [`Semaphore`] has permits: made by [`ConcurrencyLimitLayer`].
///
/// The permit is taken for the request in [`call`](Service::call) (shed
/// mode) or by its response future (queue mode), and held until the inner
/// response future completes or is dropped (the client went away), so the
/// limit counts requests in flight, not calls. In queue mode the inner
/// service's `call` runs at once, and its response future is first polled
/// once the permit is held: the work a future does when polled is what is
/// limited. [`poll_ready`](Service::poll_ready) only forwards to the inner
/// service; every clone shares the one semaphore.
pub struct ConcurrencyLimit<S> {
    inner: S,
    semaphore: Arc<Semaphore>,
    mode: Mode,
}

impl<S> ConcurrencyLimit<S> {
    /// The shared semaphore.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
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

impl<S: Clone> Clone for ConcurrencyLimit<S> {
    fn clone(&self) -> Self {
        ConcurrencyLimit { inner: self.inner.clone(), semaphore: Arc::clone(&self.semaphore), mode: self.mode }
    }
}

impl<S: fmt::Debug> fmt::Debug for ConcurrencyLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("inner", &self.inner)
            .field("semaphore", &self.semaphore)
            .field("shed", &(self.mode == Mode::Shed))
            .finish()
    }
}

impl<S, Req> Service<Req> for ConcurrencyLimit<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = LimitError<S::Error>;
    type Future = ConcurrencyLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(LimitError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.mode {
            Mode::Queue => ConcurrencyLimitFuture::new(
                Some(self.inner.call(request)),
                Some(self.semaphore.acquire_owned(1)),
                None,
                None,
            ),
            Mode::Shed => match self.semaphore.try_acquire_owned(1) {
                Ok(permit) => ConcurrencyLimitFuture::new(Some(self.inner.call(request)), None, Some(permit), None),
                Err(error) => ConcurrencyLimitFuture::new(None, None, None, Some(Reject::from(error))),
            },
        }
    }
}

pin_project! {
    /// The response future of [`ConcurrencyLimit`]: waits for a permit (in
    /// queue mode), then runs the inner response future holding it.
    ///
    /// # Cancel safety
    ///
    /// Dropping it while it waits gives up its place in the queue; dropping
    /// it while the inner future runs drops that future, then releases the
    /// permit.
    ///
    /// # Panics
    ///
    /// If polled again after it completed with the inner service's
    /// response.
    #[must_use = "futures do nothing unless polled"]
    pub struct ConcurrencyLimitFuture<F> {
        // Declared before `permit`, so that dropping this future drops the
        // inner one before the permit goes back.
        #[pin]
        inner: Option<F>,
        acquire: Option<AcquireOwned>,
        permit: Option<OwnedPermit>,
        reject: Option<Reject>,
    }
}

impl<F> ConcurrencyLimitFuture<F> {
    fn new(
        inner: Option<F>,
        acquire: Option<AcquireOwned>,
        permit: Option<OwnedPermit>,
        reject: Option<Reject>,
    ) -> Self {
        ConcurrencyLimitFuture { inner, acquire, permit, reject }
    }
}

impl<F, T, E> Future for ConcurrencyLimitFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, LimitError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(reject) = *this.reject {
            return Poll::Ready(Err(reject.into_error()));
        }
        if let Some(acquire) = this.acquire.as_mut() {
            let acquired = ready!(Pin::new(acquire).poll(cx));
            *this.acquire = None;
            match acquired {
                Ok(permit) => *this.permit = Some(permit),
                Err(error) => {
                    this.inner.set(None);
                    let reject = Reject::from(error);
                    *this.reject = Some(reject);
                    return Poll::Ready(Err(reject.into_error()));
                }
            }
        }
        let inner = this.inner.as_mut().as_pin_mut().expect("ConcurrencyLimitFuture polled after completion");
        let output = ready!(inner.poll(cx));
        // The request is over: drop its future, then give the permit back.
        this.inner.set(None);
        *this.permit = None;
        Poll::Ready(output.map_err(LimitError::Inner))
    }
}

impl<F> fmt::Debug for ConcurrencyLimitFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitFuture")
            .field("waiting", &self.acquire.is_some())
            .field("permit", &self.permit)
            .field("rejected", &self.reject.is_some())
            .finish()
    }
}
