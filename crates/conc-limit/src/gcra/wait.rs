//! Waiting for a [`Gcra`] to admit: async, cancellable and blocking forms.

use conc_core::task::block_on;
use conc_core::{Clock, Token};

use super::Gcra;
use crate::WaitError;
use crate::sync::Ordering;
use crate::waiters::{retry_at, retry_until_admitted};

impl<C: Clock> Gcra<C> {
    /// Waits until one event is admitted, sleeping on the limiter's clock.
    ///
    /// # Errors
    ///
    /// [`WaitError::TooManyWaiters`] if [`max_waiters`](Gcra::set_max_waiters)
    /// are already waiting.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a GCRA wait reserves nothing, so dropping the future
    /// loses nothing and admits nothing.
    pub async fn until_ready(&self) -> Result<(), WaitError> {
        self.wait(1, None).await
    }

    /// Waits until `n` events are admitted at once, sleeping on the
    /// limiter's clock until they would be, then checking again (and
    /// sleeping again if other callers took the room meanwhile: a GCRA
    /// waiter reserves nothing ahead).
    ///
    /// # Errors
    ///
    /// At once, without waiting: [`WaitError::ExceedsBurst`] if `n` is more
    /// than the burst (unless the rate is [`Rate::INFINITE`](crate::Rate::INFINITE));
    /// [`WaitError::TooManyWaiters`] if it would have to wait and
    /// [`max_waiters`](Gcra::set_max_waiters) are already waiting.
    /// [`WaitError::ExceedsBurst`] also if the burst is lowered below `n`
    /// while it waits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses nothing and admits nothing.
    pub async fn until_n_ready(&self, n: u32) -> Result<(), WaitError> {
        self.wait(n, None).await
    }

    /// [`until_n_ready`](Gcra::until_n_ready) that ends when `token` is
    /// cancelled, and fails at once when the token's deadline comes before
    /// the events would be admitted (Go's `WaitN(ctx, n)`).
    ///
    /// The order of the checks is Go's: `n` beyond the burst, then a
    /// cancelled token, then admission now, then the deadline. Unlike Go,
    /// events that would be admitted exactly at the deadline count as too
    /// late: the deadline cancels the token at that very instant.
    ///
    /// # Errors
    ///
    /// As [`until_n_ready`](Gcra::until_n_ready), and
    /// [`WaitError::Cancelled`] with the token's cause if it is cancelled
    /// before the events are admitted, [`WaitError::DeadlineTooSoon`] if the
    /// token's deadline is not after the instant they would be admitted
    /// (checked at the start and after every wake-up).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses nothing and admits nothing.
    pub async fn until_n_ready_until(&self, n: u32, token: &Token) -> Result<(), WaitError> {
        self.wait(n, Some(token)).await
    }

    /// [`until_n_ready`](Gcra::until_n_ready) for plain threads: blocks the
    /// calling thread until the events are admitted.
    ///
    /// With a [`ManualClock`](conc_core::ManualClock) it returns only once
    /// another thread advances the clock far enough.
    ///
    /// # Errors
    ///
    /// As [`until_n_ready`](Gcra::until_n_ready).
    pub fn until_n_ready_blocking(&self, n: u32) -> Result<(), WaitError> {
        block_on(self.wait(n, None))
    }

    /// [`until_n_ready_until`](Gcra::until_n_ready_until) for plain
    /// threads: blocks until the events are admitted or `token` ends the
    /// wait.
    ///
    /// # Errors
    ///
    /// As [`until_n_ready_until`](Gcra::until_n_ready_until).
    pub fn until_n_ready_until_blocking(&self, n: u32, token: &Token) -> Result<(), WaitError> {
        block_on(self.wait(n, Some(token)))
    }

    /// Caps how many callers may wait at once; beyond it a wait fails at
    /// once with [`WaitError::TooManyWaiters`] (load shedding). `None`, the
    /// default, removes the cap. Waiters already waiting stay.
    pub fn set_max_waiters(&self, max: Option<usize>) {
        self.waiters.set_max(max);
    }

    /// The cap set by [`set_max_waiters`](Gcra::set_max_waiters), if any.
    pub fn max_waiters(&self) -> Option<usize> {
        self.waiters.max()
    }

    /// How many callers are waiting now (sleeping until they may retry).
    pub fn waiters(&self) -> usize {
        self.waiters.current()
    }

    /// The cap on waiters, for a [`Keyed`](crate::Keyed) whose template
    /// this is: its waits, over all keys, count against it.
    pub(crate) fn waiter_cap(&self) -> &crate::waiters::WaiterCap {
        &self.waiters
    }

    async fn wait(&self, n: u32, token: Option<&Token>) -> Result<(), WaitError> {
        let interval = self.interval.load(Ordering::Relaxed);
        let burst = self.burst();
        if interval != 0 && n > burst {
            return Err(WaitError::ExceedsBurst { requested: n, burst });
        }
        retry_until_admitted(&self.clock, &self.waiters, token, || match self.check_n_at(self.clock.now(), n) {
            Ok(()) => Ok(None),
            Err(denied) => retry_at(denied, token).map(Some),
        })
        .await
    }
}
