//! conc-limit's `Keyed`: one limiter per key, bounded memory, run-time
//! changes, and races between threads on shared and new keys.
//!
//! Sources, ported by meaning: governor `tests/keyed.rs` and
//! `tests/memory_leaks.rs` (each key limited on its own; memory does not grow
//! with the number of keys ever seen, which governor leaves to the caller's
//! `retain_recent` and `Keyed` does itself). Every time rule runs on a
//! `ManualClock`.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use conc_core::{Cause, Clock, ManualClock, Token};
use conc_limit::{ConfigError, Denied, Gcra, Keyed, KeyedWaitError, Limiter, Rate, WaitError};

const MS: Duration = Duration::from_millis(1);

/// A template: one event a millisecond, in bursts of `burst`.
fn template(burst: u32) -> (ManualClock, Gcra<ManualClock>) {
    let clock = ManualClock::new();
    let gcra = Gcra::with_clock(Rate::every(MS).unwrap(), burst, clock.clone()).unwrap();
    (clock, gcra)
}

// Ported from governor tests/keyed.rs: accepts_first_cell, rejects_too_many
// (per key), and the retry instant of a key's denial.
#[test]
fn each_key_has_its_own_limiter() {
    let (clock, gcra) = template(2);
    let keyed: Keyed<u32, _> = Keyed::new(gcra);
    for key in 0..3 {
        assert_eq!(keyed.check(&key), Ok(()), "key {key}: first");
        assert_eq!(keyed.check(&key), Ok(()), "key {key}: second");
        let denied = keyed.check(&key).unwrap_err();
        assert_eq!(denied.denied(), Some(Denied::NotUntil(clock.now() + MS)), "key {key}: burst spent");
        assert_eq!(denied.retry_at(), Some(clock.now() + MS));
        assert!(!denied.is_too_many_keys());
    }
    assert_eq!(keyed.len(), 3);
    clock.advance(MS);
    assert_eq!(keyed.check_n(&0, 1), Ok(()));
    assert_eq!(keyed.check_n(&1, 2).unwrap_err().denied(), Some(Denied::NotUntil(clock.now() + MS)));
    assert_eq!(keyed.check_n(&9, 3).unwrap_err().denied(), Some(Denied::ExceedsBurst { requested: 3, burst: 2 }));
}

#[test]
fn keys_can_be_looked_up_by_a_borrowed_form() {
    let (clock, gcra) = template(1);
    let keyed: Keyed<String, _> = Keyed::new(gcra);
    let tenant = String::from("tenant-a");
    assert_eq!(keyed.check("tenant-a"), Ok(()));
    assert!(keyed.check(&tenant).is_err(), "the owned and the borrowed key are the same key");
    assert!(keyed.contains_key("tenant-a"));
    assert!(!keyed.contains_key("tenant-b"));
    assert_eq!(keyed.check_at("tenant-b", clock.now()), Ok(()));
    assert_eq!(keyed.check_n_at("tenant-b", clock.now() + MS, 1), Ok(()));
}

#[test]
fn a_first_check_that_changes_nothing_stores_nothing() {
    let (clock, gcra) = template(2);
    let keyed: Keyed<u32, _> = Keyed::new(gcra);
    assert!(keyed.check_n(&1, 3).is_err(), "beyond the burst: denied by a fresh limiter");
    assert_eq!(keyed.check_n(&2, 0), Ok(()), "zero events leave the fresh limiter idle");
    assert!(keyed.is_empty());

    keyed.reconfigure(|gcra| gcra.set_rate_at(clock.now(), Rate::INFINITE));
    assert_eq!(keyed.check_n(&3, 100), Ok(()));
    assert!(keyed.is_empty(), "an infinite rate has no state to keep");
}

// Ported from governor tests/memory_leaks.rs by meaning: a million distinct
// keys, with `max_keys` = 1,000, never hold more than 1,000; idle keys make
// room for new ones; a hot key that carries state is never evicted.
#[test]
fn a_million_distinct_keys_stay_within_max_keys() {
    let (keys, max_keys, batch) = if cfg!(miri) { (600, 100, 40) } else { (1_000_000u64, 1_000, 500) };
    let (clock, gcra) = template(1);
    let keyed = Keyed::builder(gcra).max_keys(max_keys).build().unwrap();
    let hot = u64::MAX;
    for key in 0..keys {
        if key % batch == 0 {
            // A new batch, a millisecond on: the previous one is idle. The
            // hot key takes its event, so it carries state all batch long.
            clock.advance(MS);
            assert_eq!(keyed.check(&hot), Ok(()));
        }
        assert_eq!(keyed.check(&key), Ok(()), "key {key}: the idle keys make room");
        assert!(keyed.len() <= max_keys, "{} keys stored", keyed.len());
        if key % batch == batch - 1 {
            let denied = keyed.check(&hot).unwrap_err();
            assert_eq!(denied.denied(), Some(Denied::NotUntil(clock.now() + MS)), "the hot key kept its state");
        }
    }
    assert!(keyed.contains_key(&hot));
    clock.advance(MS);
    let stored = keyed.len();
    assert_eq!(keyed.evict_idle(), stored);
    assert!(keyed.is_empty());
}

#[test]
fn a_new_key_is_rejected_when_every_stored_key_is_active() {
    let (clock, gcra) = template(1);
    let keyed = Keyed::builder(gcra).max_keys(3).shards(2).build().unwrap();
    assert_eq!(keyed.max_keys(), Some(3));
    for key in 0..3u32 {
        assert_eq!(keyed.check(&key), Ok(()));
    }
    let rejected = keyed.check(&3).unwrap_err();
    assert!(rejected.is_too_many_keys());
    assert_eq!((rejected.denied(), rejected.retry_at()), (None, None));
    assert_eq!(rejected.to_string(), "too many keys (at most 3) and none idle to evict");
    assert_eq!(keyed.len(), 3);
    assert_eq!(keyed.check(&0).unwrap_err().denied(), Some(Denied::NotUntil(clock.now() + MS)), "known keys go on");

    // Fail closed, not forgetful: once the stored keys are idle, there is
    // room, and the rejected key got nothing meanwhile.
    clock.advance(MS);
    assert_eq!(keyed.check(&3), Ok(()));
    assert!(keyed.check(&3).is_err(), "its first admission was the one just now");
    assert!(keyed.len() <= 3);
}

#[test]
fn evict_idle_drops_only_the_keys_whose_state_carries_nothing() {
    let (clock, gcra) = template(2);
    let keyed: Keyed<&str, _> = Keyed::builder(gcra).shards(1).build().unwrap();
    assert_eq!(keyed.shard_count(), 1);
    assert_eq!(keyed.check_n(&"spent", 2), Ok(()));
    assert_eq!(keyed.check(&"half"), Ok(()));
    assert_eq!(keyed.evict_idle(), 0, "nothing is idle yet");
    clock.advance(MS);
    assert_eq!(keyed.evict_idle(), 1, "\"half\" is full again");
    assert!(keyed.contains_key(&"spent") && !keyed.contains_key(&"half"));
    assert_eq!(keyed.check_n(&"spent", 2).unwrap_err().denied(), Some(Denied::NotUntil(clock.now() + MS)));
    clock.advance(MS);
    assert_eq!(keyed.evict_idle_at(clock.now()), 1);
    assert!(keyed.is_empty());
}

#[test]
fn reconfigure_changes_every_key_and_the_keys_to_come() {
    let (clock, gcra) = template(1);
    let keyed: Keyed<u32, _> = Keyed::new(gcra);
    assert_eq!(keyed.check(&1), Ok(()));
    keyed.reconfigure(|gcra| {
        gcra.set_rate(Rate::every(MS * 10).unwrap());
        gcra.set_burst(2).unwrap();
    });
    assert_eq!(keyed.template().burst(), 2);
    // Key 1 keeps its available events (none), now refilled every 10 ms.
    assert_eq!(keyed.check(&1).unwrap_err().denied(), Some(Denied::NotUntil(clock.now() + MS * 10)));
    assert_eq!(keyed.check_n(&2, 2), Ok(()), "a new key gets the new burst");
    assert_eq!(keyed.check(&2).unwrap_err().denied(), Some(Denied::NotUntil(clock.now() + MS * 10)));
}

#[test]
fn the_builder_rejects_bad_settings() {
    let (_clock, gcra) = template(1);
    let zero = Keyed::<u32, _>::builder(gcra.fresh_at(gcra.now())).max_keys(0).build();
    assert_eq!(zero.err().map(|error| error.to_string()), Some(ConfigError::ZeroMaxKeys.to_string()));
    for shards in [0, 3, 12, 1 << 17] {
        let built = Keyed::<u32, _>::builder(gcra.fresh_at(gcra.now())).shards(shards).build();
        assert!(matches!(built, Err(ConfigError::BadShards(n)) if n == shards), "shards = {shards}");
    }
    // The largest shard count allowed; miri builds a smaller one (each
    // shard is a map behind a lock, slow to make under the interpreter).
    let many = if cfg!(miri) { 1 << 8 } else { 1 << 16 };
    let keyed = Keyed::<u32, _>::builder(gcra).shards(many).build().unwrap();
    assert_eq!(keyed.shard_count(), many);
    assert_eq!(keyed.max_keys(), None);
    let default: Keyed<u32, _> = Keyed::new(template(1).1);
    assert!(default.shard_count().is_power_of_two());
}

// By meaning of x/time/rate rate_test.go TestSimultaneousRequests, per key:
// threads racing on shared keys (some new to the map, so the insert races
// too) at one instant admit exactly the burst of each key.
#[test]
fn racing_threads_admit_exactly_the_burst_of_each_key() {
    const BURST: u32 = 3;
    let (threads, keys, rounds) = if cfg!(miri) { (3, 4, 1) } else { (8, 32, 20) };
    for _ in 0..rounds {
        let (clock, gcra) = template(BURST);
        let keyed: Keyed<u32, _> = Keyed::builder(gcra).shards(4).build().unwrap();
        let now = clock.now();
        let admitted: Vec<AtomicUsize> = (0..keys).map(|_| AtomicUsize::new(0)).collect();
        let barrier = Barrier::new(threads);
        thread::scope(|scope| {
            for thread in 0..threads {
                let (keyed, admitted, barrier) = (&keyed, &admitted, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    for round in 0..2 {
                        for key in 0..keys {
                            let key = (key + thread + round) % keys;
                            if keyed.check_at(&u32::try_from(key).unwrap(), now).is_ok() {
                                admitted[key].fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                });
            }
        });
        let want = usize::try_from(BURST).unwrap().min(2 * threads);
        for (key, count) in admitted.iter().enumerate() {
            assert_eq!(count.load(Ordering::SeqCst), want, "key {key}");
        }
        assert_eq!(keyed.len(), keys);
    }
}

#[test]
fn debug_shows_the_size_and_the_template() {
    let (_clock, gcra) = template(1);
    let keyed: Keyed<u32, _> = Keyed::builder(gcra).max_keys(10).shards(2).build().unwrap();
    keyed.check(&1).unwrap();
    let debug = format!("{keyed:?}");
    assert!(debug.contains("len: 1") && debug.contains("max_keys: Some(10)") && debug.contains("Gcra"), "{debug}");
    let builder = format!("{:?}", Keyed::<u32, _>::builder(template(1).1).max_keys(5));
    assert!(builder.contains("max_keys: Some(5)"), "{builder}");
}

fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

// Governor's `until_key_ready`: a key's waiter sleeps until its own
// limiter admits, whatever the other keys do.
#[test]
fn a_key_waits_for_its_own_turn_only() {
    let (clock, gcra) = template(1);
    let keyed: Keyed<String, _> = Keyed::new(gcra);
    keyed.check("alice").unwrap();
    let mut alice = pin!(keyed.until_ready("alice"));
    assert!(poll_once(alice.as_mut()).is_pending(), "alice spent her burst");
    assert_eq!(poll_once(pin!(keyed.until_ready("bob"))), Poll::Ready(Ok(())), "bob is not held up");
    clock.advance(MS / 2);
    assert!(poll_once(alice.as_mut()).is_pending());
    clock.advance(MS / 2);
    assert_eq!(poll_once(alice.as_mut()), Poll::Ready(Ok(())));
    assert!(keyed.check("alice").is_err(), "the wait took alice's event");
}

#[test]
fn keyed_waits_fail_at_once_where_waiting_cannot_help() {
    let (clock, gcra) = template(2);
    let keyed: Keyed<u32, _> = Keyed::builder(gcra).max_keys(1).shards(1).build().unwrap();
    let cancelled = Token::new();
    cancelled.cancel();
    // Go's order: more than the burst before a cancelled token.
    let too_many = WaitError::ExceedsBurst { requested: 3, burst: 2 };
    assert_eq!(keyed.until_n_ready_until_blocking(&1, 3, &cancelled), Err(KeyedWaitError::Wait(too_many)));
    assert_eq!(
        keyed.until_n_ready_until_blocking(&1, 1, &cancelled),
        Err(KeyedWaitError::Wait(WaitError::Cancelled(Cause::Cancelled)))
    );
    keyed.check_n(&1, 2).unwrap();
    assert_eq!(keyed.until_n_ready_blocking(&2, 1), Err(KeyedWaitError::TooManyKeys { max: 1 }), "key 1 holds state");
    let soon = Token::with_clock(clock.clone()).with_timeout(MS / 2);
    assert_eq!(
        keyed.until_n_ready_until_blocking(&1, 1, &soon),
        Err(KeyedWaitError::Wait(WaitError::DeadlineTooSoon {
            ready_at: clock.now() + MS,
            deadline: clock.now() + MS / 2
        }))
    );
}

#[test]
fn the_templates_max_waiters_caps_the_waiters_of_all_keys() {
    let (clock, gcra) = template(1);
    gcra.set_max_waiters(Some(1));
    let keyed: Keyed<u32, _> = Keyed::new(gcra);
    keyed.check(&1).unwrap();
    keyed.check(&2).unwrap();
    let mut first = pin!(keyed.until_ready(&1));
    assert!(poll_once(first.as_mut()).is_pending());
    assert_eq!(keyed.template().waiters(), 1);
    assert_eq!(
        poll_once(pin!(keyed.until_ready(&2))),
        Poll::Ready(Err(KeyedWaitError::Wait(WaitError::TooManyWaiters { max: 1 }))),
        "another key's waiter is shed"
    );
    assert_eq!(poll_once(pin!(keyed.until_ready(&3))), Poll::Ready(Ok(())), "a key that need not wait is admitted");
    clock.advance(MS);
    assert_eq!(poll_once(first.as_mut()), Poll::Ready(Ok(())));
    assert_eq!(keyed.template().waiters(), 0, "the waiter left the cap");
}

#[test]
fn a_blocked_thread_wakes_when_its_key_is_ready_and_a_token_ends_a_wait() {
    let (clock, gcra) = template(1);
    let keyed: Arc<Keyed<u32, _>> = Arc::new(Keyed::new(gcra));
    keyed.check(&7).unwrap();
    let token = Token::new();
    let waiter = {
        let keyed = Arc::clone(&keyed);
        thread::spawn(move || keyed.until_n_ready_blocking(&7, 1))
    };
    let cancelled = {
        let (keyed, token) = (Arc::clone(&keyed), token.clone());
        thread::spawn(move || keyed.until_n_ready_until_blocking(&7, 1, &token))
    };
    while keyed.template().waiters() < 2 {
        thread::yield_now();
    }
    token.cancel();
    assert_eq!(cancelled.join().unwrap(), Err(KeyedWaitError::Wait(WaitError::Cancelled(Cause::Cancelled))));
    clock.advance(MS);
    assert_eq!(waiter.join().unwrap(), Ok(()));
}
