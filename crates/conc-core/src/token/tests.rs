//! Unit tests of the token tree's own mechanics; the conformance suites
//! ported from Go and tokio-util live in the workspace's `tests/` crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::block_on;

use crate::test_support::CountingWaker;
use crate::{Cause, ManualClock, Token};

fn registrations(token: &Token) -> usize {
    crate::sync::lock(&token.node.state).registry.len()
}

/// Iterations for the bulk tests: miri runs them, slowly.
const fn scaled(n: usize) -> usize {
    if cfg!(miri) { n / 1000 } else { n }
}

#[test]
fn cancel_reaches_every_descendant_and_never_an_ancestor() {
    let root = Token::new();
    let child = root.child();
    let grandchild = child.child();
    let sibling = root.child();

    assert!(grandchild.cancel());
    assert!(grandchild.is_cancelled());
    assert!(!child.is_cancelled() && !root.is_cancelled() && !sibling.is_cancelled());

    assert!(root.cancel());
    assert!(child.is_cancelled() && sibling.is_cancelled());
    assert!(!root.cancel(), "a second cancel reports it did nothing");
}

#[test]
fn the_first_cause_wins_and_flows_down() {
    let root = Token::new();
    let child = root.child();
    let cause = Cause::error("upstream failed");
    assert!(root.cancel_with(cause.clone()));
    assert!(!root.cancel_with(Cause::error("too late")));
    assert!(!child.cancel());
    assert_eq!(root.cause(), Some(cause.clone()));
    assert_eq!(child.cause(), Some(cause.clone()));
    assert_eq!(root.child().cause(), Some(cause), "a child of a cancelled token is born cancelled");
}

#[test]
fn dropped_children_unregister_from_their_parent() {
    let parent = Token::new();
    let children: Vec<_> = (0..10).map(|_| parent.child()).collect();
    assert_eq!(registrations(&parent), 10);
    drop(children);
    assert_eq!(registrations(&parent), 0);

    // A child kept alive only by its own child stays registered.
    let grandchild = parent.child().child();
    assert_eq!(registrations(&parent), 1);
    parent.cancel();
    assert!(grandchild.is_cancelled());
}

#[test]
fn slots_are_reused_so_a_long_lived_parent_stays_small() {
    let parent = Token::new();
    for _ in 0..scaled(100_000) {
        let child = parent.child();
        let _grandchild = child.child();
    }
    assert_eq!(registrations(&parent), 0);
    assert!(crate::sync::lock(&parent.node.state).registry.capacity() <= 16);
}

#[test]
fn a_cancelled_future_registers_once_and_unregisters_on_drop() {
    let token = Token::new();
    let (counter, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    let mut first = std::pin::pin!(token.cancelled());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert_eq!(registrations(&token), 1, "re-polling reuses the slot");
    {
        let mut second = std::pin::pin!(token.cancelled());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert_eq!(registrations(&token), 2);
    }
    assert_eq!(registrations(&token), 1, "a dropped future leaves nothing behind");

    token.cancel();
    assert_eq!(counter.wakes(), 1, "cancel wakes the waiting future");
    assert_eq!(first.as_mut().poll(&mut cx), Poll::Ready(()));
}

#[test]
fn a_re_polled_future_wakes_its_latest_waker() {
    let token = Token::new();
    let (old, old_waker) = CountingWaker::new();
    let (new, new_waker) = CountingWaker::new();
    let mut future = std::pin::pin!(token.cancelled());
    assert!(future.as_mut().poll(&mut Context::from_waker(&old_waker)).is_pending());
    assert!(future.as_mut().poll(&mut Context::from_waker(&new_waker)).is_pending());
    token.cancel();
    assert_eq!(old.wakes(), 0);
    assert_eq!(new.wakes(), 1);
}

#[test]
fn the_owned_future_is_static_and_completes() {
    fn assert_static<F: std::future::Future + Send + 'static>(future: F) -> F {
        future
    }
    let token = Token::new();
    let future = assert_static(token.clone().cancelled_owned());
    token.cancel();
    block_on(future);
}

#[test]
fn on_cancel_runs_once_and_stop_tells_the_truth() {
    let token = Token::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = |runs: &Arc<AtomicUsize>| {
        let runs = runs.clone();
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    };
    let stopped = token.on_cancel(counted(&runs));
    let kept = token.on_cancel(counted(&runs));
    assert!(stopped.stop());
    token.cancel();
    token.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(!kept.stop(), "the callback already ran");

    let late = token.on_cancel(counted(&runs));
    assert_eq!(runs.load(Ordering::SeqCst), 2, "registering on a cancelled token runs it at once");
    assert!(!late.stop());
}

#[test]
fn a_registration_keeps_its_token_alive_until_it_runs_or_stops() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = |runs: &Arc<AtomicUsize>| {
        let runs = runs.clone();
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    };

    // Every handle dropped: the registration still holds the child, as Go's
    // tree holds an AfterFunc's context.
    let parent = Token::new();
    drop(parent.child().on_cancel(counter(&runs)));
    assert_eq!(registrations(&parent), 1);
    parent.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Running released it: nothing stays registered on a fresh parent's child.
    let parent = Token::new();
    let registration = parent.child().on_cancel(counter(&runs));
    assert!(registration.stop());
    assert_eq!(registrations(&parent), 0, "stopping released the child");
    parent.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // A deadline fires it too, with no handle left.
    let clock = ManualClock::new();
    let root = Token::with_clock(clock.clone());
    drop(root.with_timeout(Duration::from_secs(1)).on_cancel(counter(&runs)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(registrations(&root), 0, "the cancelled child let go of its parent");
}

#[test]
fn a_panicking_callback_still_lets_the_whole_tree_cancel() {
    let root = Token::new();
    let child = root.child();
    let runs = Arc::new(AtomicUsize::new(0));
    let _boom = root.on_cancel(|| panic!("callback failed"));
    let counted = runs.clone();
    let _after = child.on_cancel(move || {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| root.cancel()));
    assert!(outcome.is_err(), "the callback's panic is resumed");
    assert!(root.is_cancelled() && child.is_cancelled());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn callbacks_may_use_tokens_while_running() {
    let root = Token::new();
    let other = Token::new();
    let linked = other.clone();
    let observer = root.clone();
    let _registration = root.on_cancel(move || {
        assert!(observer.is_cancelled());
        linked.cancel_with(observer.cause().unwrap_or(Cause::Cancelled));
        drop(observer.child());
    });
    root.cancel_with(Cause::DeadlineExceeded);
    assert_eq!(other.cause(), Some(Cause::DeadlineExceeded));
}

#[test]
fn wait_blocking_wakes_on_cancel_from_another_thread() {
    let token = Token::new();
    let canceller = token.clone();
    let thread = std::thread::spawn(move || canceller.cancel());
    token.wait_blocking();
    assert!(token.is_cancelled());
    assert!(thread.join().unwrap());
}

#[test]
fn wait_blocking_timeout_gives_up_and_unregisters() {
    let token = Token::new();
    assert!(!token.wait_blocking_timeout(Duration::ZERO));
    assert!(!token.wait_blocking_timeout(Duration::from_millis(1)));
    assert_eq!(registrations(&token), 0);
    token.cancel();
    assert!(token.wait_blocking_timeout(Duration::MAX));
}

#[test]
fn deadline_timers_fire_on_the_tokens_clock_and_are_removed_when_moot() {
    let clock = ManualClock::new();
    let root = Token::with_clock(clock.clone());
    let timed = root.with_timeout(Duration::from_secs(5));
    let cancelled_early = root.with_timeout(Duration::from_secs(5));
    let dropped = root.with_timeout(Duration::from_secs(5));
    assert_eq!(clock.shared_timers_len(), 3);

    cancelled_early.cancel();
    drop(dropped);
    assert_eq!(clock.shared_timers_len(), 1, "cancel and drop remove their timers");

    clock.advance(Duration::from_secs(5));
    assert_eq!(timed.cause(), Some(Cause::DeadlineExceeded));
    assert_eq!(cancelled_early.cause(), Some(Cause::Cancelled));
    assert_eq!(clock.shared_timers_len(), 0);
}

#[test]
fn an_inherited_earlier_deadline_needs_no_timer_of_its_own() {
    let clock = ManualClock::new();
    let root = Token::with_clock(clock.clone());
    let outer = root.with_timeout(Duration::from_secs(1));
    let inner = outer.with_timeout(Duration::from_secs(10));
    assert_eq!(inner.deadline(), outer.deadline());
    assert_eq!(clock.shared_timers_len(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(inner.cause(), Some(Cause::DeadlineExceeded));
}

#[test]
fn run_until_cancelled_prefers_cancellation_and_returns_the_cause() {
    let token = Token::new();
    assert_eq!(block_on(token.run_until_cancelled(async { 7 })), Ok(7));
    token.cancel_with(Cause::DeadlineExceeded);
    let polled = AtomicUsize::new(0);
    let result = block_on(token.run_until_cancelled(async {
        polled.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(result, Err(Cause::DeadlineExceeded));
    assert_eq!(polled.load(Ordering::SeqCst), 0, "a cancelled token never polls the future");
}

#[test]
fn run_until_cancelled_ends_a_pending_future_on_cancel() {
    let token = Token::new();
    let canceller = token.clone();
    let thread = std::thread::spawn(move || canceller.cancel());
    let result = block_on(token.run_until_cancelled(std::future::pending::<()>()));
    assert_eq!(result, Err(Cause::Cancelled));
    thread.join().unwrap();
}

#[test]
fn any_of_links_several_parents_and_unregisters_from_all() {
    let a = Token::new();
    let b = Token::new();
    let linked = Token::any_of(&[a.clone(), b.clone()]);
    assert_eq!((registrations(&a), registrations(&b)), (1, 1));
    drop(linked);
    assert_eq!((registrations(&a), registrations(&b)), (0, 0));

    let linked = Token::any_of(&[a.clone(), b.clone()]);
    b.cancel_with(Cause::error("b failed"));
    a.cancel();
    assert_eq!(linked.cause().map(|c| c.to_string()), Some("b failed".to_string()));
}

#[test]
fn drop_guard_cancels_unless_disarmed() {
    let token = Token::new();
    let guard = token.clone().drop_guard();
    assert!(!guard.token().is_cancelled());
    drop(guard);
    assert!(token.is_cancelled());

    let token = Token::new();
    let kept = token.clone().drop_guard().disarm();
    assert!(!token.is_cancelled() && !kept.is_cancelled());
}

#[test]
fn tokens_are_send_sync_and_debug() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Token>();
    assert_send_sync::<super::OnCancel>();
    assert_send_sync::<super::DropGuard>();
    assert_send_sync::<super::Cancelled<'static>>();
    assert_send_sync::<super::CancelledOwned>();
    let token = Token::new();
    token.cancel();
    assert!(format!("{token:?}").contains("Cancelled"));
}

#[test]
fn callbacks_see_the_whole_subtree_cancelled() {
    let root = Token::new();
    let child = root.child();
    let grandchild = child.child();
    let seen = Arc::new(AtomicUsize::new(0));
    let observed = seen.clone();
    let (c, g) = (child, grandchild);
    let _registration = root.on_cancel(move || {
        if c.is_cancelled() && g.is_cancelled() {
            observed.fetch_add(1, Ordering::SeqCst);
        }
    });
    root.cancel();
    assert_eq!(seen.load(Ordering::SeqCst), 1, "descendants are marked before any callback runs");
}

#[test]
fn a_panicking_deadline_callback_on_a_manual_clock_still_fires_the_other_timers() {
    let clock = ManualClock::new();
    let root = Token::with_clock(clock.clone());
    let panicking = root.with_timeout(Duration::from_secs(1));
    let other = root.with_timeout(Duration::from_secs(1));
    let _boom = panicking.on_cancel(|| panic!("callback failed"));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| clock.advance(Duration::from_secs(1))));
    assert!(outcome.is_err(), "the callback's panic reaches the caller of advance");
    assert!(panicking.is_cancelled());
    assert_eq!(other.cause(), Some(Cause::DeadlineExceeded), "a timer due in the same batch still fired");
}

#[test]
fn a_panicking_deadline_callback_does_not_stop_the_timer_thread() {
    let first = Token::new().with_timeout(Duration::from_millis(50));
    // Panics only where a deadline fires it: should this thread lose the race
    // and register after the deadline, the callback runs here, harmlessly.
    let _boom = first.on_cancel(|| {
        if std::thread::current().name() == Some("conc-timer") {
            panic!("callback failed");
        }
    });
    first.wait_blocking();
    let later = Token::new().with_timeout(Duration::from_millis(1));
    assert!(later.wait_blocking_timeout(Duration::from_secs(30)), "deadlines still fire after the panic");
}

#[test]
fn a_drop_guard_dropped_while_unwinding_does_not_abort_on_a_panicking_callback() {
    let token = Token::new();
    let _boom = token.on_cancel(|| panic!("callback failed"));
    let guarded = token.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _guard = guarded.drop_guard();
        panic!("the work failed");
    }));
    let payload = outcome.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the work failed"), "the original panic survives");
    assert!(token.is_cancelled());
}

#[cfg(feature = "tokio-util")]
#[test]
fn converting_a_token_often_registers_one_bridge() {
    use tokio_util::sync::CancellationToken;
    let token = Token::new();
    for _ in 0..scaled(10_000) {
        drop(CancellationToken::from(&token));
    }
    assert_eq!(registrations(&token), 1);
    let kept = CancellationToken::from(&token);
    token.cancel();
    assert!(kept.is_cancelled());
}

#[cfg(feature = "tokio-util")]
#[test]
fn a_token_from_a_cancelled_cancellation_token_is_born_cancelled() {
    let ct = tokio_util::sync::CancellationToken::new();
    ct.cancel();
    // No runtime here: a bridge would need a thread, and none is needed.
    assert!(Token::from(ct).is_cancelled());
}

#[test]
fn a_token_is_pristine_only_while_nothing_can_observe_it() {
    let clock = ManualClock::new();
    let mut root = Token::with_clock(clock.clone());
    assert!(root.is_pristine(), "a new root");

    let mut child = root.child();
    assert!(!root.is_pristine(), "a live child would see a later cancel");
    assert!(child.is_pristine(), "a new child, as good as any other new child of this parent");
    drop(child);
    assert!(root.is_pristine(), "a dropped child leaves nothing behind");

    let mut deadline = root.with_timeout(Duration::from_secs(1));
    assert!(!root.is_pristine());
    assert!(!deadline.is_pristine(), "its own deadline is still to fire");
    clock.advance(Duration::from_secs(1));
    assert!(!deadline.is_pristine(), "it fired");
    drop(deadline);
    assert!(root.is_pristine());

    let callback = root.on_cancel(|| {});
    assert!(!root.is_pristine(), "a callback would run on a later cancel");
    assert!(callback.stop());
    assert!(root.is_pristine(), "a stopped callback unregisters");

    {
        let (_count, waker) = CountingWaker::new();
        let mut cancelled = Box::pin(root.cancelled());
        assert!(cancelled.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    }
    assert!(root.is_pristine(), "a dropped waiter unregisters");
    // A leaked waiter stays registered with no handle held: a later cancel
    // would wake it. (Miri would report the leak itself.)
    if !cfg!(miri) {
        let (_count, waker) = CountingWaker::new();
        let mut cancelled = Box::pin(root.cancelled());
        assert!(cancelled.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        std::mem::forget(cancelled);
        assert!(!root.is_pristine(), "a registered waiter would see a later cancel");
    }
    let mut root = Token::with_clock(clock);

    drop(root.on_cancel(|| {}));
    assert!(!root.is_pristine(), "a callback outlives its dropped handle, as Go's AfterFunc");

    let mut child = root.child();
    root.cancel();
    assert!(!root.is_pristine() && !child.is_pristine(), "a cancelled token is not a new one");
}
