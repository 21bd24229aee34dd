//! Loom models of the slot protocol in `slots.rs`: a group at its limit
//! whose owner waits for a slot while tasks give theirs back. A lost
//! wake-up shows up as a deadlock, which loom reports.

use std::future::poll_fn;

use loom::sync::Arc;
use loom::thread;

use crate::slots::{Slots, UNLIMITED};

/// Takes one slot, waiting as `Group::spawn` does.
fn take(slots: &Slots, limit: usize) {
    loom::future::block_on(poll_fn(|cx| slots.poll_take(limit, cx)));
}

#[test]
fn a_slot_given_back_wakes_the_waiting_owner() {
    loom::model(|| {
        let slots = Arc::new(Slots::default());
        take(&slots, 1);
        let task = {
            let slots = Arc::clone(&slots);
            thread::spawn(move || slots.give_back(1))
        };
        take(&slots, 1);
        task.join().unwrap();
        assert_eq!(slots.running(), 1);
    });
}

#[test]
fn two_tasks_ending_together_let_the_owner_take_two_slots() {
    loom::model(|| {
        let slots = Arc::new(Slots::default());
        take(&slots, 2);
        take(&slots, 2);
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let slots = Arc::clone(&slots);
                thread::spawn(move || slots.give_back(2))
            })
            .collect();
        for _ in 0..2 {
            take(&slots, 2);
            assert!(slots.running() <= 2, "the limit was exceeded");
        }
        for task in tasks {
            task.join().unwrap();
        }
        assert_eq!(slots.running(), 2);
    });
}

#[test]
fn the_last_task_to_end_wakes_the_owner_waiting_for_idle() {
    loom::model(|| {
        let slots = Arc::new(Slots::default());
        take(&slots, UNLIMITED);
        take(&slots, UNLIMITED);
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let slots = Arc::clone(&slots);
                thread::spawn(move || slots.give_back(UNLIMITED))
            })
            .collect();
        loom::future::block_on(poll_fn(|cx| slots.poll_idle(cx)));
        assert_eq!(slots.running(), 0);
        for task in tasks {
            task.join().unwrap();
        }
    });
}

#[test]
fn try_take_never_exceeds_the_limit() {
    loom::model(|| {
        let slots = Arc::new(Slots::default());
        assert!(slots.try_take(1));
        let task = {
            let slots = Arc::clone(&slots);
            thread::spawn(move || slots.give_back(1))
        };
        let took = slots.try_take(1);
        task.join().unwrap();
        assert_eq!(slots.running(), usize::from(took));
    });
}
