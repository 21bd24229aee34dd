//! loom models of the token's cancellation protocol (`cargo xtask loom`).
//!
//! Each model races one registration path against `cancel` and checks the
//! protocol's promise: a child is never missed, a waiter is never left
//! asleep, a callback runs at most once and `stop` tells the truth.

use std::sync::Arc;

use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::{Cause, Token};

fn registrations(token: &Token) -> usize {
    crate::sync::lock(&token.node.state).registry.len()
}

#[test]
fn loom_cancel_racing_child_never_misses_the_child() {
    loom::model(|| {
        let parent = Token::new();
        let canceller = parent.clone();
        let cancel = thread::spawn(move || canceller.cancel());
        let child = parent.child();
        assert!(cancel.join().unwrap());
        assert_eq!(child.cause(), Some(Cause::Cancelled));
        assert_eq!(registrations(&parent), 0);
    });
}

#[test]
fn loom_cancel_racing_child_drop_keeps_the_registry_consistent() {
    loom::model(|| {
        let parent = Token::new();
        let dropped = parent.child();
        let kept = parent.child();
        let canceller = parent.clone();
        let cancel = thread::spawn(move || canceller.cancel());
        drop(dropped);
        cancel.join().unwrap();
        assert!(kept.is_cancelled());
        assert_eq!(registrations(&parent), 0);
    });
}

#[test]
fn loom_child_drop_racing_sibling_creation_unregisters_only_itself() {
    loom::model(|| {
        let parent = Token::new();
        let dropped = parent.child();
        let dropper = thread::spawn(move || drop(dropped));
        let sibling = parent.child();
        dropper.join().unwrap();
        assert_eq!(registrations(&parent), 1);
        parent.cancel();
        assert!(sibling.is_cancelled());
    });
}

#[test]
fn loom_cancelled_registration_racing_cancel_loses_no_wake_up() {
    loom::model(|| {
        let token = Token::new();
        let canceller = token.clone();
        let cancel = thread::spawn(move || {
            canceller.cancel();
        });
        // If the wake-up were lost, this would park forever and loom would
        // report a deadlock.
        block_on(token.cancelled());
        cancel.join().unwrap();
        assert_eq!(registrations(&token), 0);
    });
}

#[test]
fn loom_owned_waiter_on_a_child_is_woken_through_the_parent() {
    loom::model(|| {
        let parent = Token::new();
        let child = parent.child();
        let waiter = thread::spawn(move || block_on(child.cancelled_owned()));
        parent.cancel();
        waiter.join().unwrap();
    });
}

#[test]
fn loom_on_cancel_stop_racing_cancel_runs_at_most_once_and_stop_is_truthful() {
    loom::model(|| {
        let token = Token::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let registration = token.on_cancel(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let canceller = token.clone();
        let cancel = thread::spawn(move || canceller.cancel());
        let stopped = registration.stop();
        cancel.join().unwrap();
        let runs = runs.load(Ordering::SeqCst);
        assert!(runs <= 1);
        assert_eq!(stopped, runs == 0, "stop() is true exactly when the callback never ran");
    });
}

#[test]
fn loom_on_cancel_registration_racing_cancel_runs_exactly_once() {
    loom::model(|| {
        let token = Token::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let canceller = token.clone();
        let cancel = thread::spawn(move || canceller.cancel());
        let counted = runs.clone();
        let _registration = token.on_cancel(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        cancel.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn loom_racing_causes_agree_on_one_winner() {
    loom::model(|| {
        let parent = Token::new();
        let child = parent.child();
        let other = child.clone();
        let first = thread::spawn(move || other.cancel_with(Cause::DeadlineExceeded));
        let won_here = parent.cancel();
        let won_there = first.join().unwrap();
        assert!(won_here, "the parent had no other canceller");
        let expected = if won_there { Cause::DeadlineExceeded } else { Cause::Cancelled };
        assert_eq!(child.cause(), Some(expected), "the reported winner's cause is the one kept");
        assert_eq!(parent.cause(), Some(Cause::Cancelled));
    });
}

#[test]
fn loom_any_of_takes_the_cause_of_the_first_parent_to_cancel() {
    loom::model(|| {
        let a = Token::new();
        let b = Token::new();
        let linked = Token::any_of(&[a.clone(), b.clone()]);
        let observer = linked.clone();
        let cancel_b = thread::spawn(move || {
            b.cancel_with(Cause::DeadlineExceeded);
            // Once b's cancel returns, the linked token is cancelled.
            assert!(observer.is_cancelled());
        });
        a.cancel();
        assert!(linked.is_cancelled());
        cancel_b.join().unwrap();
        let cause = linked.cause().unwrap();
        assert!(cause == Cause::Cancelled || cause == Cause::DeadlineExceeded);
    });
}

/// A worker pool keeps a job's token for the next job while it is
/// pristine; a parent cancel racing that check must still reach whichever
/// token the next job gets.
#[test]
fn loom_a_pristine_check_racing_a_parent_cancel_never_hands_out_a_live_token() {
    loom::model(|| {
        let parent = Token::new();
        let mut kept = parent.child();
        let canceller = parent.clone();
        let cancel = thread::spawn(move || canceller.cancel());
        let next = if kept.is_pristine() { kept.clone() } else { parent.child() };
        assert!(cancel.join().unwrap());
        assert!(next.is_cancelled(), "the next job's token outlived its parent's cancel");
        assert!(kept.is_cancelled());
        assert!(!kept.is_pristine(), "a cancelled token is never reused");
    });
}
