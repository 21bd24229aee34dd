//! [`Semaphore`]: Go's `x/sync/semaphore.Weighted` with tokio's ergonomics,
//! weighted, FIFO fair, cancellable, resizable and closable.
//!
//! The hot path is one atomic word holding the free permits and two flags,
//! so an acquire that finds permits free is one compare-and-swap and a
//! release that finds nobody waiting is one atomic add. Everything else
//! (queueing, handing released permits to waiters, shrinking, closing) runs
//! under a mutex that only those cold paths take.

mod acquire;
mod error;
mod permit;
mod queue;
mod slow;

#[cfg(all(test, conc_loom))]
mod loom_tests;
#[cfg(all(test, not(conc_loom)))]
mod tests;

use std::fmt;
use std::sync::Arc;

use conc_core::Token;

pub use acquire::{Acquire, AcquireOwned, AcquireOwnedUntil, AcquireUntil};
pub use error::{AcquireError, CapacityError, TryAcquireError};
pub use permit::{OwnedPermit, Permit};

use self::queue::{Board, Queue, Wakers};
use crate::sync::{AtomicUsize, Mutex, Ordering, lock};
use crate::waiters::WaiterCap;

/// `state` bit: the semaphore is closed.
const CLOSED: usize = 1;
/// `state` bit: something is owed (waiters are queued, or a shrink left a
/// debt). While it is set the fast paths step aside: an acquire does not
/// take free permits (they belong to the head waiter or pay the debt
/// first) and a release goes on to the lock to settle what is owed.
const OWED: usize = 2;
/// The free permits sit above the flag bits.
const SHIFT: u32 = 2;

/// A weighted, FIFO-fair semaphore: at most [`capacity`](Semaphore::capacity)
/// permits are out at once, and a caller asks for any number of them.
///
/// This is Go's `semaphore.Weighted` with tokio's ergonomics:
///
/// - [`acquire`](Semaphore::acquire) waits for `n` permits and returns a
///   [`Permit`] that gives them back when dropped (RAII instead of Go's
///   `Release`); [`acquire_owned`](Semaphore::acquire_owned) gives an
///   [`OwnedPermit`] that can move into a spawned task;
///   [`acquire_until`](Semaphore::acquire_until) also ends when a
///   [`Token`] is cancelled; [`acquire_blocking`](Semaphore::acquire_blocking)
///   is for plain threads; [`try_acquire`](Semaphore::try_acquire) never
///   waits.
/// - **FIFO fair**, as Go: waiters are served in arrival order and a large
///   request at the head of the queue is not starved by a stream of small
///   ones: permits released while it waits are kept for it, and smaller
///   requests behind it wait too, even if they would fit.
///   `try_acquire` does not jump the queue: it fails while anyone waits.
/// - A request larger than the capacity fails at once with
///   [`AcquireError::TooLarge`] (Go's `Acquire` would block until its
///   context ends, tokio's would wait for permits to be added; Go's
///   `TryAcquire` returns false). Such a request is almost always a sizing
///   bug: failing names it instead of hanging.
/// - A waiter that leaves (its future dropped or its token cancelled) takes
///   nothing with it, even when it was granted at that very moment: the
///   permits go back and the waiters behind it that now fit are woken.
/// - The capacity changes at run time: [`add_permits`](Semaphore::add_permits)
///   and [`set_capacity`](Semaphore::set_capacity), which shrinks gracefully
///   (held permits are not revoked; the capacity falls as they come back).
/// - [`set_max_waiters`](Semaphore::set_max_waiters) bounds the queue: past
///   it an acquire fails at once with [`AcquireError::TooManyWaiters`].
/// - [`close`](Semaphore::close) fails every waiter and every later acquire
///   with `Closed`; permits already held stay valid.
///
/// A semaphore of capacity 0 is allowed: it grants only zero-permit
/// requests until [`add_permits`](Semaphore::add_permits) or
/// [`set_capacity`](Semaphore::set_capacity) grows it, and a request for
/// more than 0 fails with `TooLarge` meanwhile (it does not wait for the
/// growth, unlike `tokio::sync::Semaphore::new(0)` used as a signal).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conc_limit::Semaphore;
/// use conc_limit::semaphore::{AcquireError, TryAcquireError};
///
/// # futures_lite::future::block_on(async {
/// // 10 units of memory; each job takes as many as it needs.
/// let memory = Arc::new(Semaphore::new(10));
///
/// let big = memory.acquire(8).await?;
/// assert_eq!(memory.available(), 2);
/// // Only 2 are free: a job that needs 3 cannot start now.
/// assert_eq!(memory.try_acquire(3).unwrap_err(), TryAcquireError::NoPermits);
///
/// // An owned permit can move into another task or thread.
/// let small = memory.acquire_owned(2).await?;
/// std::thread::spawn(move || drop(small)).join().unwrap();
///
/// drop(big); // released on drop
/// assert_eq!(memory.available(), 10);
///
/// // More than the capacity could never be granted: it fails at once.
/// assert_eq!(memory.acquire(11).await.unwrap_err(), AcquireError::TooLarge { requested: 11, capacity: 10 });
/// # Ok::<(), AcquireError>(())
/// # }).unwrap();
/// ```
pub struct Semaphore {
    /// Free permits `<< SHIFT`, plus the `CLOSED` and `OWED` bits.
    state: AtomicUsize,
    /// The configured capacity; written only under `queue`'s lock.
    capacity: AtomicUsize,
    max_waiters: WaiterCap,
    /// Cold path: taken only to queue a waiter, to settle what is owed
    /// (while `OWED` is set), to resize and to close; never by an acquire
    /// that finds permits free or a release that finds nothing owed.
    queue: Mutex<Queue>,
    /// What a queued waiter reads to learn, without the lock, that it was
    /// granted; written under `queue`'s lock.
    board: Board,
}

impl Semaphore {
    /// The largest capacity a semaphore can have: `usize::MAX >> 2`, as the
    /// low two bits of the state word are flags (tokio's is `usize::MAX >> 3`).
    pub const MAX_PERMITS: usize = usize::MAX >> SHIFT;

    /// A semaphore with `capacity` permits, all free, and no cap on waiters.
    ///
    /// # Panics
    ///
    /// If `capacity` exceeds [`MAX_PERMITS`](Semaphore::MAX_PERMITS) (as
    /// tokio's); [`try_new`](Semaphore::try_new) returns an error instead.
    pub fn new(capacity: usize) -> Semaphore {
        match Semaphore::try_new(capacity) {
            Ok(semaphore) => semaphore,
            Err(error) => panic!("{error}"),
        }
    }

    /// A semaphore with `capacity` permits, all free.
    ///
    /// # Errors
    ///
    /// [`CapacityError`] if `capacity` exceeds
    /// [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    pub fn try_new(capacity: usize) -> Result<Semaphore, CapacityError> {
        check_capacity(capacity)?;
        Ok(Semaphore {
            state: AtomicUsize::new(capacity << SHIFT),
            capacity: AtomicUsize::new(capacity),
            max_waiters: WaiterCap::unbounded(),
            queue: Mutex::new(Queue::default()),
            board: Board::default(),
        })
    }

    /// Sets [`max_waiters`](Semaphore::set_max_waiters) while building:
    /// `Semaphore::new(4).with_max_waiters(Some(100))`.
    #[must_use]
    pub fn with_max_waiters(self, max: Option<usize>) -> Semaphore {
        self.set_max_waiters(max);
        self
    }

    /// Waits for `n` permits, in FIFO order behind earlier waiters.
    ///
    /// The returned future resolves to a [`Permit`] that releases the
    /// permits when dropped. An acquire that finds enough permits free and
    /// nobody waiting completes on its first poll without locking.
    ///
    /// # Errors
    ///
    /// The future resolves to
    /// - [`AcquireError::TooLarge`] at once if `n` exceeds the capacity, or
    ///   later if a shrink or a [`forget`](Permit::forget) lowers the
    ///   capacity below `n` while it waits;
    /// - [`AcquireError::Closed`] if the semaphore is or becomes closed;
    /// - [`AcquireError::TooManyWaiters`] if it would have to wait while
    ///   `max_waiters` others already do.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives up its place in the queue and loses no
    /// permits: permits granted to it at that moment are released again,
    /// and the waiters behind it that now fit are woken.
    pub fn acquire(&self, n: usize) -> Acquire<'_> {
        Acquire::new(self, n)
    }

    /// Like [`acquire`](Semaphore::acquire), but the permit holds an `Arc`
    /// of the semaphore, so it is `'static` and can move into a spawned
    /// task.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Semaphore::acquire).
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Semaphore::acquire).
    pub fn acquire_owned(self: &Arc<Self>, n: usize) -> AcquireOwned {
        AcquireOwned::new(Arc::clone(self), n)
    }

    /// Like [`acquire`](Semaphore::acquire), but also ends when `token` is
    /// cancelled (Go's `Acquire(ctx, n)`).
    ///
    /// Cancellation is checked first, as in current Go: a token already
    /// cancelled fails even when permits are free, and a token cancelled
    /// while the permits are being granted wins, and the permits go back.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Semaphore::acquire), plus
    /// [`AcquireError::Cancelled`] with the token's cause.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Semaphore::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_core::{Cause, ManualClock, Token};
    /// use conc_limit::Semaphore;
    /// use conc_limit::semaphore::AcquireError;
    ///
    /// # futures_lite::future::block_on(async {
    /// let clock = ManualClock::new();
    /// let request = Token::with_clock(clock.clone()).with_timeout(Duration::from_millis(50));
    /// let connections = Semaphore::new(1);
    /// let busy = connections.try_acquire(1).unwrap();
    ///
    /// let mut wait = std::pin::pin!(connections.acquire_until(1, &request));
    /// assert!(futures_lite::future::poll_once(wait.as_mut()).await.is_none()); // queued
    /// clock.advance(Duration::from_millis(50)); // the request's deadline passes
    /// assert_eq!(wait.await.unwrap_err(), AcquireError::Cancelled(Cause::DeadlineExceeded));
    /// assert_eq!(connections.waiters(), 0); // it left the queue
    /// # drop(busy);
    /// # });
    /// ```
    pub fn acquire_until(&self, n: usize, token: &Token) -> AcquireUntil<'_> {
        AcquireUntil::new(self, n, token)
    }

    /// The `'static` form of [`acquire_until`](Semaphore::acquire_until).
    ///
    /// # Errors
    ///
    /// As [`acquire_until`](Semaphore::acquire_until).
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Semaphore::acquire).
    pub fn acquire_owned_until(self: &Arc<Self>, n: usize, token: &Token) -> AcquireOwnedUntil {
        AcquireOwnedUntil::new(Arc::clone(self), n, token)
    }

    /// Takes `n` permits if they are free now and nobody is waiting: a
    /// try-acquire never jumps the queue (Go's `TryAcquire`).
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::NoPermits`] if fewer than `n` are free or a
    /// waiter is queued, [`TryAcquireError::TooLarge`] if `n` exceeds the
    /// capacity, [`TryAcquireError::Closed`] if the semaphore is closed.
    pub fn try_acquire(&self, n: usize) -> Result<Permit<'_>, TryAcquireError> {
        self.try_take(n)?;
        Ok(Permit::new(self, n))
    }

    /// The owned form of [`try_acquire`](Semaphore::try_acquire).
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Semaphore::try_acquire).
    pub fn try_acquire_owned(self: &Arc<Self>, n: usize) -> Result<OwnedPermit, TryAcquireError> {
        self.try_take(n)?;
        Ok(OwnedPermit::new(Arc::clone(self), n))
    }

    /// Blocks the current thread until `n` permits are granted: the form of
    /// [`acquire`](Semaphore::acquire) for plain threads. Do not call it
    /// from async code, where it would block an executor thread.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Semaphore::acquire).
    pub fn acquire_blocking(&self, n: usize) -> Result<Permit<'_>, AcquireError> {
        if self.try_take(n).is_ok() {
            return Ok(Permit::new(self, n));
        }
        conc_core::task::block_on(self.acquire(n))
    }

    /// Blocks the current thread until `n` permits are granted or `token`
    /// is cancelled: the form of [`acquire_until`](Semaphore::acquire_until)
    /// for plain threads.
    ///
    /// # Errors
    ///
    /// As [`acquire_until`](Semaphore::acquire_until).
    pub fn acquire_blocking_until(&self, n: usize, token: &Token) -> Result<Permit<'_>, AcquireError> {
        conc_core::task::block_on(self.acquire_until(n, token))
    }

    /// Adds `n` permits to the capacity. They go to the waiters first, in
    /// order; while a shrink's debt is unpaid they pay it off first.
    ///
    /// Same as `set_capacity(capacity() + n)`.
    ///
    /// # Errors
    ///
    /// [`CapacityError`] if the capacity would exceed
    /// [`MAX_PERMITS`](Semaphore::MAX_PERMITS); nothing changes then.
    pub fn add_permits(&self, n: usize) -> Result<(), CapacityError> {
        self.resize(|capacity| capacity.saturating_add(n))
    }

    /// Sets the capacity.
    ///
    /// Growing adds free permits (to the waiters first, in order). Shrinking
    /// takes free permits away, and if too few are free, does not revoke
    /// the held ones: the shortfall becomes a debt that permits coming back
    /// pay off before any becomes free again, so the permits out fall to
    /// the new capacity as their holders release them. Waiters that need
    /// more than the new capacity fail with [`AcquireError::TooLarge`].
    ///
    /// # Errors
    ///
    /// [`CapacityError`] if `capacity` exceeds
    /// [`MAX_PERMITS`](Semaphore::MAX_PERMITS); nothing changes then.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_limit::Semaphore;
    ///
    /// let workers = Semaphore::new(4);
    /// let busy = workers.try_acquire(3).unwrap();
    /// workers.set_capacity(2)?; // 3 are held: nothing is revoked
    /// assert_eq!((workers.capacity(), workers.available()), (2, 0));
    /// drop(busy); // the first permit back pays the shrink, the rest are free
    /// assert_eq!(workers.available(), 2);
    /// # Ok::<(), conc_limit::semaphore::CapacityError>(())
    /// ```
    pub fn set_capacity(&self, capacity: usize) -> Result<(), CapacityError> {
        self.resize(|_| capacity)
    }

    /// The capacity: the most permits out at once once any shrink's debt is
    /// paid.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Acquire)
    }

    /// Permits free now. While waiters are queued some may be free yet
    /// kept for the head waiter, which needs more.
    pub fn available(&self) -> usize {
        self.state.load(Ordering::Acquire) >> SHIFT
    }

    /// Sets the most acquires that may wait at once; `None` (the default)
    /// removes the cap. Past it an acquire that would wait fails at once
    /// with [`AcquireError::TooManyWaiters`]; waiters already queued stay.
    /// `Some(0)` makes every acquire that cannot complete at once fail.
    pub fn set_max_waiters(&self, max: Option<usize>) {
        self.max_waiters.set_max(max);
    }

    /// The cap on waiters, if any.
    pub fn max_waiters(&self) -> Option<usize> {
        self.max_waiters.max()
    }

    /// How many acquires are waiting now.
    pub fn waiters(&self) -> usize {
        lock(&self.queue).len()
    }

    /// Closes the semaphore: every waiter and every later acquire fails
    /// with `Closed`. Permits already held stay valid, and releasing them
    /// still works. Returns `true` if this call closed it.
    pub fn close(&self) -> bool {
        let mut wakers = Wakers::default();
        let closed = {
            let mut queue = lock(&self.queue);
            let previous = self.state.fetch_or(CLOSED, Ordering::AcqRel);
            queue.close_all(&self.board, &mut wakers);
            self.settle(&mut queue, &mut wakers);
            previous & CLOSED == 0
        };
        wakers.wake_all();
        closed
    }

    /// Whether the semaphore is closed.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// The fast path of every acquire: takes `n` free permits with one
    /// compare-and-swap, unless the semaphore is closed or something is
    /// owed (a waiter comes first).
    fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        // Read before the CAS: a failing check costs no write to the
        // shared line.
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current & (CLOSED | OWED) != 0 || current >> SHIFT < n {
                // A request for nothing is stopped only by a queued waiter:
                // `OWED` may stand for a shrink's unpaid debt alone.
                if n == 0 && current & CLOSED == 0 && lock(&self.queue).len() == 0 {
                    return Ok(());
                }
                return Err(self.try_failure(current, n));
            }
            let next = current - (n << SHIFT);
            match self.state.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    fn try_failure(&self, state: usize, n: usize) -> TryAcquireError {
        let capacity = self.capacity();
        if state & CLOSED != 0 {
            TryAcquireError::Closed
        } else if n > capacity {
            TryAcquireError::TooLarge { requested: n, capacity }
        } else {
            TryAcquireError::NoPermits
        }
    }

    /// Gives `n` permits back. Nothing owed: one atomic add. Otherwise the
    /// permits are added, then settled under the lock.
    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let previous = self.state.fetch_add(n << SHIFT, Ordering::AcqRel);
        // `OWED` was set by a read-modify-write that either comes before
        // this add (seen here) or after it (and that one settles after
        // setting it, seeing these permits).
        if previous & OWED != 0 {
            let mut wakers = Wakers::default();
            self.settle(&mut lock(&self.queue), &mut wakers);
            wakers.wake_all();
        }
    }
}

fn check_capacity(capacity: usize) -> Result<(), CapacityError> {
    if capacity > Semaphore::MAX_PERMITS {
        return Err(CapacityError { requested: capacity, max: Semaphore::MAX_PERMITS });
    }
    Ok(())
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .field("closed", &self.is_closed())
            .field("max_waiters", &self.max_waiters())
            .finish()
    }
}
