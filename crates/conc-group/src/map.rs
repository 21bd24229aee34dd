//! Bounded parallel helpers over iterators: [`map`], [`try_map`],
//! [`for_each`] (sourcegraph/conc's `iter.Map`, the Go guides'
//! `BoundedParallel`).
//!
//! `limit` worker tasks share the items: each claims the next run of
//! indices from one atomic cursor, takes each item out of its own slot,
//! runs the function on it and keeps `(index, value)` locally; the values
//! are put back in input order at the end. So an item costs an uncontended
//! slot lock and a share of an atomic increment rather than a task spawn,
//! and at most `limit` items are in flight (a worker runs its items one
//! after another). Runs are short enough that every worker gets several on
//! average, so a slow item does not leave the others idle for long.

use std::convert::Infallible;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use crate::panic::catch_unwind;
use crate::{MapError, Panic};

/// Runs `f` on every item, at most `limit` at a time, on tokio tasks, and
/// returns the results in input order.
///
/// If `f` panics for an item, no further item is started and the panic
/// comes back as [`MapError::Panicked`] once the items in flight finish.
///
/// # Errors
///
/// [`MapError::ZeroLimit`] for a limit of 0, [`MapError::Panicked`] as
/// above, [`MapError::Aborted`] if the runtime shut down under it.
///
/// # Panics
///
/// Outside a tokio runtime, like `tokio::spawn`.
///
/// # Cancel safety
///
/// Dropping the future aborts the work: items in flight are dropped at
/// their next await and no more start.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let lengths = conc_group::map(["a", "bcd", "ef"], 2, |s| async move { s.len() }).await.unwrap();
/// assert_eq!(lengths, [1, 3, 2]);
/// # }
/// ```
#[track_caller]
pub fn map<I, F, Fut>(
    items: I,
    limit: usize,
    f: F,
) -> impl Future<Output = Result<Vec<Fut::Output>, MapError<Infallible>>>
where
    I: IntoIterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    run(items, limit, Infallibly(f), Location::caller())
}

/// Runs the fallible `f` on every item, at most `limit` at a time, and
/// returns the results in input order; the first error stops it.
///
/// After an error (or a panic) no further item is started; the items in
/// flight finish, and the first failure to happen is returned. Items not
/// started are dropped.
///
/// # Errors
///
/// [`MapError::Failed`] with the item's index and error,
/// [`MapError::Panicked`], [`MapError::ZeroLimit`], [`MapError::Aborted`].
///
/// # Panics
///
/// Outside a tokio runtime, like `tokio::spawn`.
///
/// # Cancel safety
///
/// Dropping the future aborts the work.
///
/// # Examples
///
/// ```
/// use conc_group::MapError;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let parsed = conc_group::try_map(["1", "2", "x"], 4, |s| async move { s.parse::<u8>() }).await;
/// assert!(matches!(parsed, Err(MapError::Failed { index: 2, .. })));
/// # }
/// ```
#[track_caller]
pub fn try_map<I, F, Fut, R, E>(items: I, limit: usize, f: F) -> impl Future<Output = Result<Vec<R>, MapError<E>>>
where
    I: IntoIterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    run(items, limit, f, Location::caller())
}

/// Runs `f` on every item, at most `limit` at a time.
///
/// # Errors
///
/// As [`map`].
///
/// # Panics
///
/// Outside a tokio runtime, like `tokio::spawn`.
///
/// # Cancel safety
///
/// Dropping the future aborts the work.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let total = Arc::new(AtomicU64::new(0));
/// let sum = total.clone();
/// conc_group::for_each(1..=100u64, 8, move |n| {
///     let sum = sum.clone();
///     async move { sum.fetch_add(n, Ordering::Relaxed); }
/// })
/// .await
/// .unwrap();
/// assert_eq!(total.load(Ordering::Relaxed), 5050);
/// # }
/// ```
#[track_caller]
pub fn for_each<I, F, Fut>(items: I, limit: usize, f: F) -> impl Future<Output = Result<(), MapError<Infallible>>>
where
    I: IntoIterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let run = run(items, limit, Infallibly(f), Location::caller());
    async move { run.await.map(drop) }
}

/// The function of a bounded run: an item in, a fallible future out.
trait ItemFn<T>: Send + Sync + 'static {
    type Value: Send + 'static;
    type Error: Send + 'static;
    fn call(&self, item: T) -> impl Future<Output = Result<Self::Value, Self::Error>> + Send + 'static;
}

impl<T, F, Fut, R, E> ItemFn<T> for F
where
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    type Value = R;
    type Error = E;

    fn call(&self, item: T) -> impl Future<Output = Result<R, E>> + Send + 'static {
        self(item)
    }
}

/// An infallible function seen as one that never fails.
struct Infallibly<F>(F);

impl<T, F, Fut> ItemFn<T> for Infallibly<F>
where
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    type Value = Fut::Output;
    type Error = Infallible;

    fn call(&self, item: T) -> impl Future<Output = Result<Fut::Output, Infallible>> + Send + 'static {
        let future = (self.0)(item);
        async move { Ok(future.await) }
    }
}

/// The longest run of indices a worker claims at once.
const MAX_RUN: usize = 32;

/// The items and the function, shared by the workers.
struct Work<T, F> {
    /// One slot per item; each is locked once, by the worker that claimed
    /// its index from `next`, so these locks are never contended.
    items: Vec<Mutex<Option<T>>>,
    next: AtomicUsize,
    /// How many indices a worker claims at once: claiming one at a time
    /// would make every item a write to the cursor's cache line, which the
    /// workers on other cores then have to fetch back.
    run: usize,
    stop: AtomicBool,
    /// Tickets that order failures by when they happened.
    failures: AtomicUsize,
    f: F,
}

/// What a worker hands back: values with their index, and its failures
/// with their ticket.
struct Done<R, E> {
    values: Vec<(usize, R)>,
    failures: Vec<(usize, MapError<E>)>,
}

/// The worker tasks, aborted if the run is dropped before it ends.
struct Workers<R, E> {
    handles: Vec<JoinHandle<Done<R, E>>>,
}

impl<R, E> Drop for Workers<R, E> {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

async fn run<I, F>(
    items: I,
    limit: usize,
    f: F,
    spawned_at: &'static Location<'static>,
) -> Result<Vec<F::Value>, MapError<F::Error>>
where
    I: IntoIterator,
    I::Item: Send + 'static,
    F: ItemFn<I::Item>,
{
    if limit == 0 {
        return Err(MapError::ZeroLimit);
    }
    let items: Vec<_> = items.into_iter().map(|item| Mutex::new(Some(item))).collect();
    let len = items.len();
    let workers_wanted = limit.min(len);
    let run = (len / (workers_wanted * 4).max(1)).clamp(1, MAX_RUN);
    let work = Arc::new(Work {
        items,
        next: AtomicUsize::new(0),
        run,
        stop: AtomicBool::new(false),
        failures: AtomicUsize::new(0),
        f,
    });
    let mut workers = Workers { handles: Vec::with_capacity(workers_wanted) };
    for _ in 0..workers_wanted {
        workers.handles.push(tokio::spawn(worker(Arc::clone(&work), spawned_at)));
    }

    let mut slots: Vec<Option<F::Value>> = std::iter::repeat_with(|| None).take(len).collect();
    let mut first: Option<(usize, MapError<F::Error>)> = None;
    for handle in &mut workers.handles {
        let done = match handle.await {
            Ok(done) => done,
            Err(error) => match error.try_into_panic() {
                // The workers catch the function's panics; nothing else in
                // them panics, but if it did the caller should see it.
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(_) => return Err(MapError::Aborted),
            },
        };
        for (index, value) in done.values {
            slots[index] = Some(value);
        }
        for failure in done.failures {
            if first.as_ref().is_none_or(|first| failure.0 < first.0) {
                first = Some(failure);
            }
        }
    }
    match first {
        Some((_, error)) => Err(error),
        // Without a failure every item ran, so every slot is filled.
        None => Ok(slots.into_iter().flatten().collect()),
    }
}

async fn worker<T, F>(work: Arc<Work<T, F>>, spawned_at: &'static Location<'static>) -> Done<F::Value, F::Error>
where
    T: Send + 'static,
    F: ItemFn<T>,
{
    let mut done = Done { values: Vec::new(), failures: Vec::new() };
    let mut claimed = 0..0;
    while !work.stop.load(Ordering::Relaxed) {
        let index = match claimed.next() {
            Some(index) => index,
            None => {
                let start = work.next.fetch_add(work.run, Ordering::Relaxed);
                claimed = start..start.saturating_add(work.run).min(work.items.len());
                match claimed.next() {
                    Some(index) => index,
                    None => break,
                }
            }
        };
        let Some(slot) = work.items.get(index) else { break };
        let item = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let Some(item) = item else { continue };
        let failure = match catch_unwind(async { work.f.call(item).await }).await {
            Ok(Ok(value)) => {
                done.values.push((index, value));
                None
            }
            Ok(Err(error)) => Some(MapError::Failed { index, error }),
            Err(payload) => Some(MapError::Panicked { index, panic: Panic::new(payload, spawned_at) }),
        };
        if let Some(failure) = failure {
            work.stop.store(true, Ordering::Relaxed);
            done.failures.push((work.failures.fetch_add(1, Ordering::AcqRel), failure));
        }
        // A worker whose items never wait would otherwise hold its thread
        // until the input runs out.
        tokio::task::consume_budget().await;
    }
    done
}
