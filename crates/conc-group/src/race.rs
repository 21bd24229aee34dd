//! First response wins: [`first_ok`] and [`hedge`].

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use conc_core::{Clock, SystemClock};

/// Runs every future concurrently; the first to succeed wins and the rest
/// are dropped, which cancels them (the Go guides' "first response wins").
///
/// The futures run on the calling task (nothing is spawned, so they need
/// not be `Send` or `'static`); every wake-up polls each future still
/// running, which suits the handful of replicas or mirrors this is for.
///
/// # Errors
///
/// If every future fails, every error, in input order (none for an empty
/// input).
///
/// # Cancel safety
///
/// Dropping the future drops every attempt.
///
/// # Examples
///
/// ```
/// # futures_lite::future::block_on(async {
/// let mirrors = [("eu", false), ("us", true), ("ap", true)];
/// let fetched = conc_group::first_ok(mirrors.map(|(name, up)| async move {
///     if up { Ok(name) } else { Err(format!("{name} is down")) }
/// }))
/// .await;
/// assert_eq!(fetched, Ok("us"));
///
/// let all_down = conc_group::first_ok([1, 2].map(|n| async move { Err::<(), _>(n) })).await;
/// assert_eq!(all_down, Err(vec![1, 2]));
/// # });
/// ```
pub async fn first_ok<I, F, T, E>(futures: I) -> Result<T, Vec<E>>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>>,
{
    let mut running: Vec<Option<Pin<Box<F>>>> = futures.into_iter().map(|future| Some(Box::pin(future))).collect();
    let mut errors: Vec<Option<E>> = std::iter::repeat_with(|| None).take(running.len()).collect();
    let mut left = running.len();
    poll_fn(|cx| {
        for (slot, error) in running.iter_mut().zip(errors.iter_mut()) {
            let Some(future) = slot else { continue };
            match future.as_mut().poll(cx) {
                Poll::Ready(Ok(value)) => return Poll::Ready(Ok(value)),
                Poll::Ready(Err(failed)) => {
                    *error = Some(failed);
                    *slot = None;
                    left -= 1;
                }
                Poll::Pending => {}
            }
        }
        if left == 0 { Poll::Ready(Err(errors.iter_mut().filter_map(Option::take).collect())) } else { Poll::Pending }
    })
    .await
}

/// Runs `attempt`; if it has not succeeded after `delay`, starts a second
/// attempt beside it, and the first success wins (a hedged request). The
/// loser is dropped, which cancels it.
///
/// A first attempt that fails before `delay` starts the second one at once
/// rather than waiting. The delay is measured on the system clock; see
/// [`hedge_with_clock`] to pass another (a `ManualClock` in tests).
///
/// # Errors
///
/// If both attempts fail, both errors, in the order the attempts started.
///
/// # Cancel safety
///
/// Dropping the future drops both attempts.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// # futures_lite::future::block_on(async {
/// let mut calls = 0;
/// let answer = conc_group::hedge(Duration::from_millis(50), || {
///     calls += 1;
///     let call = calls;
///     async move { if call == 1 { Err("replica 1 refused") } else { Ok(42) } }
/// })
/// .await;
/// assert_eq!(answer, Ok(42));
/// # });
/// ```
pub async fn hedge<A, Fut, T, E>(delay: Duration, attempt: A) -> Result<T, Vec<E>>
where
    A: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    hedge_with_clock(&SystemClock, delay, attempt).await
}

/// [`hedge`], with the delay measured on `clock`.
///
/// # Errors
///
/// As [`hedge`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::ManualClock;
///
/// # futures_lite::future::block_on(async {
/// let clock = ManualClock::new();
/// let mut started = 0;
/// let hedged = conc_group::hedge_with_clock(&clock, Duration::from_millis(100), || {
///     started += 1;
///     let this = started;
///     let clock = clock.clone();
///     async move {
///         if this == 1 {
///             clock.advance(Duration::from_millis(100)); // the first is slow...
///             std::future::pending::<()>().await;
///         }
///         Ok::<_, ()>(this) // ...so the second answers
///     }
/// })
/// .await;
/// assert_eq!(hedged, Ok(2));
/// # });
/// ```
pub async fn hedge_with_clock<C, A, Fut, T, E>(clock: &C, delay: Duration, mut attempt: A) -> Result<T, Vec<E>>
where
    C: Clock,
    A: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut first = pin!(attempt());
    let mut timer = pin!(clock.sleep(delay));
    let first_failed = poll_fn(|cx| {
        if let Poll::Ready(result) = first.as_mut().poll(cx) {
            return Poll::Ready(Some(result));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await;
    let mut errors = Vec::with_capacity(2);
    match first_failed {
        Some(Ok(value)) => return Ok(value),
        Some(Err(error)) => {
            errors.push(error);
            return match attempt().await {
                Ok(value) => Ok(value),
                Err(error) => {
                    errors.push(error);
                    Err(errors)
                }
            };
        }
        None => {}
    }
    let second = attempt();
    let raced = first_ok([first, pin!(second)]).await;
    raced.map_err(|mut both| {
        errors.append(&mut both);
        errors
    })
}
