//! loom models of the semaphore's protocol (`cargo xtask loom`): the state
//! word's fast paths racing the queue's lock.
//!
//! Each model races one path against another and checks the promise: the
//! permit count stays exact, a waiter granted as it leaves leaks nothing
//! and the next one proceeds, a waiter never sleeps through `close`, and
//! `try_acquire` never takes permits from a queued waiter.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};
use std::task::{Context, Poll, Wake, Waker};

use conc_core::Token;
use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::{AcquireError, AcquireOwned, OWED, OwnedPermit, Semaphore, TryAcquireError};
use crate::sync::lock;

/// A waker that records that it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, StdOrdering::SeqCst);
    }
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// Nothing owed, no waiter, every permit free.
fn assert_at_rest(semaphore: &Semaphore, capacity: usize) {
    assert_eq!(semaphore.available(), capacity);
    assert_eq!(semaphore.state.load(Ordering::SeqCst) & OWED, 0);
    let queue = lock(&semaphore.queue);
    assert_eq!((queue.len(), queue.debt), (0, 0));
    assert!(queue.has_no_records(), "a failed waiter's record was left behind");
}

/// A semaphore of `capacity` with every permit held, and a waiter for all
/// of them queued (polled once, with a waker that does nothing).
fn full_with_a_waiter(capacity: usize) -> (Arc<Semaphore>, OwnedPermit, AcquireOwned) {
    let semaphore = Arc::new(Semaphore::new(capacity));
    let held = semaphore.try_acquire_owned(capacity).unwrap();
    let mut waiting = semaphore.acquire_owned(capacity);
    assert!(poll_once(&mut waiting, Waker::noop()).is_pending());
    (semaphore, held, waiting)
}

#[test]
fn loom_concurrent_acquire_release_keeps_the_count_exact() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let in_use = Arc::new(AtomicUsize::new(0));
        let use_one = {
            let semaphore = semaphore.clone();
            move || {
                let permit = block_on(semaphore.acquire(1)).unwrap();
                assert_eq!(in_use.fetch_add(1, Ordering::SeqCst), 0, "two holders of the only permit");
                in_use.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            }
        };
        let other = thread::spawn(use_one.clone());
        use_one();
        other.join().unwrap();
        assert_at_rest(&semaphore, 1);
    });
}

#[test]
fn loom_weighted_waiters_racing_a_release_all_get_through() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(2));
        let in_use = Arc::new(AtomicUsize::new(0));
        let held = semaphore.try_acquire_owned(1).unwrap();
        let weighted = |n: usize| {
            let (semaphore, in_use) = (semaphore.clone(), in_use.clone());
            thread::spawn(move || {
                let permit = block_on(semaphore.acquire(n)).unwrap();
                assert!(in_use.fetch_add(n, Ordering::SeqCst) + n <= 2, "more than the capacity in use");
                in_use.fetch_sub(n, Ordering::SeqCst);
                drop(permit);
            })
        };
        let large = weighted(2);
        let small = weighted(1);
        drop(held);
        large.join().unwrap();
        small.join().unwrap();
        assert_at_rest(&semaphore, 2);
    });
}

#[test]
fn loom_a_waiter_dropped_as_it_is_granted_leaks_nothing_and_the_next_proceeds() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let held = semaphore.try_acquire_owned(1).unwrap();
        let mut leaving = semaphore.acquire_owned(1);
        let mut next = semaphore.acquire_owned(1);
        let next_flag = Arc::new(Flag::default());
        let next_waker = Waker::from(next_flag.clone());
        assert!(poll_once(&mut leaving, Waker::noop()).is_pending());
        assert!(poll_once(&mut next, &next_waker).is_pending());

        let releaser = thread::spawn(move || drop(held));
        drop(leaving);
        releaser.join().unwrap();

        assert!(next_flag.0.load(StdOrdering::SeqCst), "the next waiter was never woken");
        let permit = match poll_once(&mut next, &next_waker) {
            Poll::Ready(Ok(permit)) => permit,
            other => panic!("the next waiter should hold the permit, got {other:?}"),
        };
        drop(permit);
        assert_at_rest(&semaphore, 1);
    });
}

#[test]
fn loom_a_large_head_leaving_lets_the_smaller_waiter_behind_it_in() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(2));
        let mut held = semaphore.try_acquire_owned(2).unwrap();
        let one = held.split(1).unwrap();
        let mut large = semaphore.acquire_owned(2);
        let mut small = semaphore.acquire_owned(1);
        let small_flag = Arc::new(Flag::default());
        let small_waker = Waker::from(small_flag.clone());
        assert!(poll_once(&mut large, Waker::noop()).is_pending());
        assert!(poll_once(&mut small, &small_waker).is_pending());

        let releaser = thread::spawn(move || drop(one));
        drop(large);
        releaser.join().unwrap();

        assert!(small_flag.0.load(StdOrdering::SeqCst), "the waiter behind the one that left was never woken");
        assert!(matches!(poll_once(&mut small, &small_waker), Poll::Ready(Ok(_))));
        drop(held);
        assert_at_rest(&semaphore, 2);
    });
}

#[test]
fn loom_a_token_cancelled_as_the_waiter_is_granted_leaks_nothing() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let token = Token::new();
        let held = semaphore.try_acquire_owned(1).unwrap();
        let mut waiting = semaphore.acquire_owned_until(1, &token);
        assert!(poll_once(&mut waiting, Waker::noop()).is_pending());

        let canceller = thread::spawn(move || token.cancel());
        drop(held);
        canceller.join().unwrap();

        match block_on(&mut waiting) {
            Err(AcquireError::Cancelled(_)) => {}
            other => panic!("a cancelled token wins over the grant, got {other:?}"),
        }
        assert_at_rest(&semaphore, 1);
    });
}

#[test]
fn loom_close_racing_acquire_never_leaves_a_waiter_asleep() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let held = semaphore.try_acquire_owned(1).unwrap();
        let waiter = {
            let semaphore = semaphore.clone();
            thread::spawn(move || match block_on(semaphore.acquire(1)) {
                Ok(permit) => drop(permit),
                Err(error) => assert_eq!(error, AcquireError::Closed),
            })
        };
        drop(held);
        semaphore.close();
        waiter.join().unwrap();
        assert_eq!(semaphore.try_acquire(1).unwrap_err(), TryAcquireError::Closed);
        assert_at_rest(&semaphore, 1);
    });
}

#[test]
fn loom_try_acquire_never_takes_a_queued_waiters_permits() {
    loom::model(|| {
        let (semaphore, held, mut waiting) = full_with_a_waiter(1);

        let releaser = thread::spawn(move || drop(held));
        assert_eq!(semaphore.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
        releaser.join().unwrap();

        assert!(matches!(poll_once(&mut waiting, Waker::noop()), Poll::Ready(Ok(_))));
        assert_at_rest(&semaphore, 1);
    });
}

#[test]
fn loom_shrink_racing_release_and_acquire_keeps_the_count_exact() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(2));
        let held = semaphore.try_acquire_owned(1).unwrap();
        let other = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                drop(held);
                // Whatever it finds: the permit, or none while the debt is owed.
                drop(semaphore.try_acquire(1));
            })
        };
        semaphore.set_capacity(1).unwrap();
        other.join().unwrap();
        assert_at_rest(&semaphore, 1);
    });
}

#[test]
fn loom_a_shrink_racing_a_grant_gives_the_waiter_exactly_one_outcome() {
    loom::model(|| {
        let (semaphore, held, waiting) = full_with_a_waiter(2);

        // The waiter looks (without the lock, on the board) while the
        // release grants it and the shrink may fail it.
        let waiter = thread::spawn(move || match block_on(waiting) {
            Ok(permit) => drop(permit),
            Err(error) => assert_eq!(error, AcquireError::TooLarge { requested: 2, capacity: 1 }),
        });
        let releaser = thread::spawn(move || drop(held));
        // Granted first (then the shrink is a debt its permit pays), or
        // failed first (then the released permits pay the debt).
        semaphore.set_capacity(1).unwrap();
        waiter.join().unwrap();
        releaser.join().unwrap();
        assert_at_rest(&semaphore, 1);
    });
}

#[test]
fn loom_a_waiter_leaving_as_a_shrink_fails_it_leaves_no_record() {
    loom::model(|| {
        let (semaphore, held, waiting) = full_with_a_waiter(2);

        let shrinker = {
            let semaphore = semaphore.clone();
            thread::spawn(move || semaphore.set_capacity(1).unwrap())
        };
        drop(waiting);
        shrinker.join().unwrap();
        drop(held);
        assert_at_rest(&semaphore, 1);
    });
}

#[test]
fn loom_a_token_cancelled_before_the_permits_come_free_always_fails_the_acquire() {
    loom::model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let token = Token::new();
        let held = semaphore.try_acquire_owned(1).unwrap();
        let mut waiting = semaphore.acquire_owned_until(1, &token);
        assert!(poll_once(&mut waiting, Waker::noop()).is_pending());

        // The permit comes free only after the cancel: Go's rule (its
        // `TestWeightedAcquireCanceled`) is that the acquire must fail,
        // even when its poll sees the grant after the cancelled check.
        let other = thread::spawn(move || {
            token.cancel();
            drop(held);
        });
        match block_on(&mut waiting) {
            Err(AcquireError::Cancelled(_)) => {}
            other => panic!("the cancel came before the permit: {other:?}"),
        }
        other.join().unwrap();
        assert_at_rest(&semaphore, 1);
    });
}
