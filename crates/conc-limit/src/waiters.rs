//! A cap on concurrent waiters (`max_waiters`), shared by every limiter
//! and the semaphore: beyond it, a wait is rejected at once instead of
//! queueing, which turns overload into a fast typed error.

use std::fmt;
use std::time::Instant;

use conc_core::{Clock, Token};

use crate::sync::{AtomicUsize, Ordering};
use crate::{Denied, WaitError};

/// Counts waiters and admits at most `max` at once.
pub(crate) struct WaiterCap {
    /// `usize::MAX`: no cap.
    max: AtomicUsize,
    current: AtomicUsize,
}

/// One admitted waiter; leaving (drop) frees its place.
pub(crate) struct Waiting<'a> {
    cap: &'a WaiterCap,
}

impl WaiterCap {
    pub(crate) fn unbounded() -> Self {
        WaiterCap { max: AtomicUsize::new(usize::MAX), current: AtomicUsize::new(0) }
    }

    /// Sets the cap; `None` removes it. Waiters already admitted stay.
    pub(crate) fn set_max(&self, max: Option<usize>) {
        self.max.store(max.unwrap_or(usize::MAX), Ordering::Release);
    }

    /// The cap, if any.
    pub(crate) fn max(&self) -> Option<usize> {
        Some(self.max.load(Ordering::Acquire)).filter(|&max| max != usize::MAX)
    }

    /// How many are waiting now.
    pub(crate) fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Admits one more waiter, or returns the cap that is full.
    pub(crate) fn enter(&self) -> Result<Waiting<'_>, usize> {
        let max = self.max.load(Ordering::Acquire);
        let mut current = self.current.load(Ordering::Relaxed);
        loop {
            if current >= max {
                return Err(max);
            }
            match self.current.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok(Waiting { cap: self }),
                Err(actual) => current = actual,
            }
        }
    }
}

/// The wait of a limiter that reserves nothing ahead (GCRA, keyed GCRA):
/// `check` says `None` when the events are admitted, else the instant to
/// retry at; this sleeps on `clock` until then (ending early if `token` is
/// cancelled) and checks again, as one of at most `cap`'s waiters.
pub(crate) async fn retry_until_admitted<C, E>(
    clock: &C,
    cap: &WaiterCap,
    token: Option<&Token>,
    mut check: impl FnMut() -> Result<Option<Instant>, E>,
) -> Result<(), E>
where
    C: Clock,
    E: From<WaitError>,
{
    if let Some(cause) = token.and_then(Token::cause) {
        return Err(WaitError::Cancelled(cause).into());
    }
    let Some(mut retry_at) = check()? else {
        return Ok(());
    };
    let _waiting = cap.enter().map_err(|max| WaitError::TooManyWaiters { max })?;
    loop {
        let sleep = clock.sleep_until(retry_at);
        match token {
            Some(token) => token.run_until_cancelled(sleep).await.map_err(WaitError::Cancelled)?,
            None => sleep.await,
        }
        retry_at = match check()? {
            Some(at) => at,
            None => return Ok(()),
        };
    }
}

/// What a denied check means to a waiter: the instant to retry at, or why
/// waiting cannot help (more than the burst; `token`'s deadline comes no
/// later than the events would be admitted).
pub(crate) fn retry_at(denied: Denied, token: Option<&Token>) -> Result<Instant, WaitError> {
    match denied {
        Denied::ExceedsBurst { requested, burst } => Err(WaitError::ExceedsBurst { requested, burst }),
        Denied::NotUntil(ready_at) => match token.and_then(Token::deadline) {
            Some(deadline) if deadline <= ready_at => Err(WaitError::DeadlineTooSoon { ready_at, deadline }),
            _ => Ok(ready_at),
        },
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.cap.current.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for WaiterCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaiterCap").field("max", &self.max()).field("current", &self.current()).finish()
    }
}

impl fmt::Debug for Waiting<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waiting")
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_cap_admits_up_to_max_and_frees_on_drop() {
        let cap = WaiterCap::unbounded();
        assert_eq!(cap.max(), None);
        cap.set_max(Some(2));
        let a = cap.enter().unwrap();
        let _b = cap.enter().unwrap();
        assert_eq!(cap.enter().unwrap_err(), 2);
        drop(a);
        assert!(cap.enter().is_ok());
        assert_eq!(cap.current(), 1);
        cap.set_max(Some(0));
        assert!(cap.enter().is_err());
    }
}
