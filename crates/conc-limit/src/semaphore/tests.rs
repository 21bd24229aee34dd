//! Unit tests of the semaphore's internals: the state word's flags, the
//! debt, the waiter queue and the futures' waker handling. Behaviour seen
//! from outside is tested in `tests/tests/limit_semaphore_conformance.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::task::{Context, Poll, Wake, Waker};

use conc_core::{Cause, Token};

use super::*;

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl CountingWaker {
    fn new() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        (counter.clone(), Waker::from(counter))
    }

    fn wakes(&self) -> usize {
        self.0.load(StdOrdering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, StdOrdering::SeqCst);
    }
}

fn poll_with<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

fn owed(semaphore: &Semaphore) -> bool {
    semaphore.state.load(Ordering::SeqCst) & OWED != 0
}

fn debt(semaphore: &Semaphore) -> usize {
    lock(&semaphore.queue).debt
}

#[test]
fn the_fast_paths_leave_no_flag_behind() {
    let semaphore = Semaphore::new(3);
    let a = semaphore.try_acquire(2).unwrap();
    let b = semaphore.try_acquire(1).unwrap();
    assert_eq!(semaphore.available(), 0);
    assert!(!owed(&semaphore));
    drop((a, b));
    assert_eq!(semaphore.state.load(Ordering::SeqCst), 3 << SHIFT);
}

#[test]
fn a_queued_waiter_sets_owed_and_serving_it_clears_it() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire(1).unwrap();
    let (counter, waker) = CountingWaker::new();
    let mut waiting = semaphore.acquire(1);
    assert!(poll_with(&mut waiting, &waker).is_pending());
    assert!(owed(&semaphore));
    assert_eq!(semaphore.waiters(), 1);

    drop(held);
    assert_eq!(counter.wakes(), 1);
    assert!(!owed(&semaphore), "nothing is owed once the only waiter is granted");
    assert_eq!(semaphore.available(), 0, "the released permit went to the waiter, not the free count");
    let permit = match poll_with(&mut waiting, &waker) {
        Poll::Ready(Ok(permit)) => permit,
        other => panic!("expected a permit, got {other:?}"),
    };
    drop(permit);
    assert_eq!(semaphore.available(), 1);
}

#[test]
fn a_release_while_the_head_needs_more_stays_free_but_is_not_taken() {
    let semaphore = Semaphore::new(3);
    let held = semaphore.try_acquire(3).unwrap();
    let waker = Waker::noop();
    let mut big = semaphore.acquire(2);
    assert!(poll_with(&mut big, waker).is_pending());
    let mut held = held;
    drop(held.split(1).unwrap());
    assert_eq!(semaphore.available(), 1, "kept for the head waiter");
    assert_eq!(semaphore.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
    let mut small = semaphore.acquire(1);
    assert!(poll_with(&mut small, waker).is_pending(), "a small request queues behind the big one");
    drop(held.split(1).unwrap());
    let big = match poll_with(&mut big, waker) {
        Poll::Ready(Ok(permit)) => permit,
        other => panic!("the head should be granted, got {other:?}"),
    };
    assert!(poll_with(&mut small, waker).is_pending(), "the head took both free permits");
    drop(big);
    assert!(poll_with(&mut small, waker).is_ready());
    drop(held);
}

#[test]
fn shrinking_below_what_is_held_leaves_a_debt_that_releases_pay() {
    let semaphore = Semaphore::new(10);
    let mut held = semaphore.try_acquire(8).unwrap();
    semaphore.set_capacity(4).unwrap();
    assert_eq!(semaphore.capacity(), 4);
    assert_eq!(semaphore.available(), 0, "the 2 free permits were taken first");
    assert_eq!(debt(&semaphore), 4);
    assert!(owed(&semaphore), "releases must settle the debt");

    drop(held.split(3).unwrap());
    assert_eq!((debt(&semaphore), semaphore.available()), (1, 0));
    drop(held.split(3).unwrap());
    assert_eq!((debt(&semaphore), semaphore.available()), (0, 2));
    assert!(!owed(&semaphore));
    drop(held);
    assert_eq!(semaphore.available(), 4);
}

#[test]
fn growing_pays_the_debt_before_adding_free_permits() {
    let semaphore = Semaphore::new(10);
    let held = semaphore.try_acquire(10).unwrap();
    semaphore.set_capacity(4).unwrap();
    assert_eq!(debt(&semaphore), 6);
    semaphore.add_permits(2).unwrap();
    assert_eq!((semaphore.capacity(), debt(&semaphore), semaphore.available()), (6, 4, 0));
    semaphore.set_capacity(12).unwrap();
    assert_eq!((debt(&semaphore), semaphore.available()), (0, 2));
    assert!(!owed(&semaphore));
    drop(held);
    assert_eq!(semaphore.available(), 12);
}

#[test]
fn forgetting_pays_the_debt_before_lowering_the_capacity() {
    let semaphore = Semaphore::new(10);
    let mut held = semaphore.try_acquire(10).unwrap();
    semaphore.set_capacity(4).unwrap();
    held.split(3).unwrap().forget();
    assert_eq!((semaphore.capacity(), debt(&semaphore)), (4, 3));
    held.split(5).unwrap().forget();
    assert_eq!((semaphore.capacity(), debt(&semaphore)), (2, 0));
    drop(held);
    assert_eq!(semaphore.available(), 2);
    assert!(!owed(&semaphore));
}

#[test]
fn a_new_waker_replaces_the_old_one() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire(1).unwrap();
    let (first, first_waker) = CountingWaker::new();
    let (second, second_waker) = CountingWaker::new();
    let mut waiting = semaphore.acquire(1);
    assert!(poll_with(&mut waiting, &first_waker).is_pending());
    assert!(poll_with(&mut waiting, &second_waker).is_pending());
    drop(held);
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert!(poll_with(&mut waiting, &second_waker).is_ready());
}

#[test]
fn a_waiter_dropped_after_its_grant_gives_the_permits_to_the_next() {
    let semaphore = Semaphore::new(2);
    let held = semaphore.try_acquire(2).unwrap();
    let waker = Waker::noop();
    let mut first = semaphore.acquire(2);
    let (next, next_waker) = CountingWaker::new();
    let mut second = semaphore.acquire(2);
    assert!(poll_with(&mut first, waker).is_pending());
    assert!(poll_with(&mut second, &next_waker).is_pending());
    drop(held); // grants `first`, which never sees it
    assert_eq!((semaphore.waiters(), semaphore.available()), (1, 0), "`first` left the queue with both permits");
    drop(first);
    assert_eq!(next.wakes(), 1);
    assert!(matches!(poll_with(&mut second, &next_waker), Poll::Ready(Ok(ref permit)) if permit.num_permits() == 2));
    assert_eq!(semaphore.waiters(), 0);
}

#[test]
fn a_zero_permit_request_waits_its_turn() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire(1).unwrap();
    let waker = Waker::noop();
    let mut one = semaphore.acquire(1);
    assert!(poll_with(&mut one, waker).is_pending());
    assert_eq!(semaphore.try_acquire(0).unwrap_err(), TryAcquireError::NoPermits);
    let mut zero = semaphore.acquire(0);
    assert!(poll_with(&mut zero, waker).is_pending());
    drop(held);
    assert!(poll_with(&mut one, waker).is_ready());
    assert!(matches!(poll_with(&mut zero, waker), Poll::Ready(Ok(ref permit)) if permit.num_permits() == 0));
}

#[test]
#[should_panic(expected = "polled after it completed")]
fn polling_a_completed_acquire_panics() {
    let semaphore = Semaphore::new(1);
    let mut acquire = semaphore.acquire(1);
    let waker = Waker::noop();
    let _permit = poll_with(&mut acquire, waker);
    let _ = poll_with(&mut acquire, waker);
}

#[test]
fn a_cancelled_acquire_until_can_be_polled_again() {
    let semaphore = Semaphore::new(1);
    let token = Token::new();
    token.cancel();
    let mut acquire = semaphore.acquire_until(1, &token);
    let waker = Waker::noop();
    for _ in 0..2 {
        assert!(matches!(poll_with(&mut acquire, waker), Poll::Ready(Err(AcquireError::Cancelled(Cause::Cancelled)))));
    }
    assert_eq!(semaphore.available(), 1);
}

fn records_left(semaphore: &Semaphore) -> bool {
    !lock(&semaphore.queue).has_no_records()
}

#[test]
fn a_waiter_failed_by_a_shrink_learns_it_and_its_record_goes() {
    let semaphore = Semaphore::new(3);
    let held = semaphore.try_acquire(3).unwrap();
    let (large_wakes, large_waker) = CountingWaker::new();
    let mut large = semaphore.acquire(3);
    let mut small = semaphore.acquire(1);
    let mut dropped = semaphore.acquire(3);
    assert!(poll_with(&mut large, &large_waker).is_pending());
    assert!(poll_with(&mut small, Waker::noop()).is_pending());
    assert!(poll_with(&mut dropped, Waker::noop()).is_pending());

    semaphore.set_capacity(2).unwrap();
    assert_eq!(large_wakes.wakes(), 1);
    assert_eq!(semaphore.waiters(), 1, "only the waiter that fits stays");
    assert!(records_left(&semaphore));
    match poll_with(&mut large, &large_waker) {
        Poll::Ready(Err(error)) => assert_eq!(error, AcquireError::TooLarge { requested: 3, capacity: 2 }),
        other => panic!("the shrink should have failed the waiter, got {other:?}"),
    }
    drop(dropped); // failed too, and leaves without asking
    assert!(!records_left(&semaphore), "every failed waiter's record went with it");

    // The waiter that fits still gets its permit once the debt is paid.
    assert!(poll_with(&mut small, Waker::noop()).is_pending());
    drop(held);
    assert!(matches!(poll_with(&mut small, Waker::noop()), Poll::Ready(Ok(_))));
}

#[test]
fn a_waiter_queued_through_a_failure_of_others_is_still_granted() {
    let semaphore = Semaphore::new(2);
    let held = semaphore.try_acquire(2).unwrap();
    let mut small = semaphore.acquire(1);
    let mut large = semaphore.acquire(2);
    assert!(poll_with(&mut small, Waker::noop()).is_pending());
    assert!(poll_with(&mut large, Waker::noop()).is_pending());
    semaphore.set_capacity(1).unwrap(); // fails `large` only
    // `small` looks again after a failure it was not part of: still queued.
    assert!(poll_with(&mut small, Waker::noop()).is_pending());
    assert!(matches!(poll_with(&mut large, Waker::noop()), Poll::Ready(Err(AcquireError::TooLarge { .. }))));
    drop(held); // one pays the debt, one is granted
    let Poll::Ready(Ok(permit)) = poll_with(&mut small, Waker::noop()) else {
        panic!("the waiter that fits should hold its permit");
    };
    assert_eq!((semaphore.available(), semaphore.capacity()), (0, 1));
    drop(permit);
    assert_eq!(semaphore.available(), 1);
}

#[test]
fn waiters_granted_before_a_close_keep_their_permits_and_the_rest_fail() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire(1).unwrap();
    let mut granted = semaphore.acquire(1);
    let mut closed = semaphore.acquire(1);
    assert!(poll_with(&mut granted, Waker::noop()).is_pending());
    assert!(poll_with(&mut closed, Waker::noop()).is_pending());
    drop(held); // grants `granted`, which has not looked yet
    semaphore.close();
    assert!(matches!(poll_with(&mut closed, Waker::noop()), Poll::Ready(Err(AcquireError::Closed))));
    let permit = match poll_with(&mut granted, Waker::noop()) {
        Poll::Ready(Ok(permit)) => permit,
        other => panic!("a grant made before the close stands, got {other:?}"),
    };
    drop(permit);
    assert_eq!(semaphore.available(), 1);
}

#[test]
fn a_granted_waiter_dropped_after_a_close_gives_its_permits_back() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire(1).unwrap();
    let mut granted = semaphore.acquire(1);
    assert!(poll_with(&mut granted, Waker::noop()).is_pending());
    drop(held);
    semaphore.close(); // the board's failure count moves: `leave` asks the lock
    assert_eq!(semaphore.available(), 0);
    drop(granted);
    assert_eq!(semaphore.available(), 1);
}

#[test]
fn capacities_above_the_maximum_are_rejected() {
    let max = Semaphore::MAX_PERMITS;
    assert_eq!(Semaphore::try_new(max + 1).unwrap_err(), CapacityError { requested: max + 1, max });
    let semaphore = Semaphore::try_new(max).unwrap();
    assert_eq!(semaphore.available(), max);
    assert_eq!(semaphore.add_permits(1).unwrap_err(), CapacityError { requested: max + 1, max });
    assert_eq!(semaphore.add_permits(usize::MAX).unwrap_err(), CapacityError { requested: usize::MAX, max });
    assert_eq!(semaphore.set_capacity(usize::MAX).unwrap_err().requested, usize::MAX);
    assert_eq!(semaphore.capacity(), max, "a rejected change changes nothing");
    let all = semaphore.try_acquire(max).unwrap();
    assert_eq!(semaphore.available(), 0);
    drop(all);
    assert_eq!(semaphore.available(), max);
}

#[test]
#[should_panic(expected = "exceeds the maximum")]
fn new_panics_above_the_maximum() {
    let _ = Semaphore::new(usize::MAX);
}

#[test]
fn the_public_types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Semaphore>();
    send_sync::<Permit<'_>>();
    send_sync::<OwnedPermit>();
    send_sync::<Acquire<'_>>();
    send_sync::<AcquireOwned>();
    send_sync::<AcquireUntil<'_>>();
    send_sync::<AcquireOwnedUntil>();
    send_sync::<AcquireError>();
}

#[test]
fn debug_output_names_the_state() {
    let semaphore = Semaphore::new(2).with_max_waiters(Some(3));
    let permit = semaphore.try_acquire(1).unwrap();
    assert_eq!(
        format!("{semaphore:?}"),
        "Semaphore { capacity: 2, available: 1, closed: false, max_waiters: Some(3) }"
    );
    assert_eq!(format!("{permit:?}"), "Permit { permits: 1, .. }");
    assert_eq!(format!("{:?}", semaphore.acquire(1)), "Acquire { permits: 1, queued: false, .. }");
}

#[test]
fn a_request_for_nothing_is_not_held_back_by_a_shrinks_debt() {
    let semaphore = Semaphore::new(2);
    let held = semaphore.try_acquire(2).unwrap();
    semaphore.set_capacity(1).unwrap(); // a debt of 1, nobody waiting
    assert!(owed(&semaphore));
    assert_eq!(semaphore.try_acquire(0).unwrap().num_permits(), 0);
    let mut zero = semaphore.acquire(0);
    assert!(matches!(poll_with(&mut zero, Waker::noop()), Poll::Ready(Ok(_))));
    assert_eq!(semaphore.waiters(), 0);

    // Behind a queued waiter it waits its turn, and goes as soon as the
    // waiter ahead of it does, though the debt is still unpaid.
    let mut one = semaphore.acquire(1);
    let mut behind = semaphore.acquire(0);
    assert!(poll_with(&mut one, Waker::noop()).is_pending());
    assert_eq!(semaphore.try_acquire(0).unwrap_err(), TryAcquireError::NoPermits);
    assert!(poll_with(&mut behind, Waker::noop()).is_pending());
    drop(one); // leaves: the request for nothing is now the head
    assert!(matches!(poll_with(&mut behind, Waker::noop()), Poll::Ready(Ok(_))));
    assert_eq!(debt(&semaphore), 1);
    drop(held);
    assert_eq!((debt(&semaphore), semaphore.available()), (0, 1));
    assert!(!owed(&semaphore));
}
