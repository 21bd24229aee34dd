//! Loom models of the worker-count protocol of parallel stages ([`Ctl`]).

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::parallel::Ctl;

/// A control with `live` workers counted and a spawner that counts spawns.
fn control(target: usize, live: usize) -> (std::sync::Arc<Ctl>, Arc<AtomicUsize>) {
    let ctl = Ctl::new(target);
    for _ in 0..live {
        ctl.count_started();
    }
    let spawned = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&spawned);
    ctl.set_spawner(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    (ctl, spawned)
}

/// Two workers see the target drop from 3 to 1 at once: exactly two of
/// the three retire (never the last one), whatever the interleaving.
#[test]
fn concurrent_retires_never_take_the_last_worker() {
    loom::model(|| {
        let (ctl, _) = control(3, 3);
        ctl.set_target(1);
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let ctl = std::sync::Arc::clone(&ctl);
                thread::spawn(move || usize::from(ctl.try_retire()))
            })
            .collect();
        let retired: usize = workers.into_iter().map(|worker| worker.join().unwrap()).sum();
        assert_eq!(retired, 2);
        assert_eq!(ctl.live(), 1);
    });
}

/// A worker deciding to retire (the target was 1, 2 workers live) races
/// `set_concurrency(3)`: the count settles at the new target, and every
/// live worker is accounted for by a start or a survivor.
#[test]
fn raising_the_target_while_a_worker_retires_settles_at_the_target() {
    loom::model(|| {
        let (ctl, spawned) = control(1, 2);
        let worker = {
            let ctl = std::sync::Arc::clone(&ctl);
            thread::spawn(move || ctl.try_retire())
        };
        ctl.set_target(3);
        ctl.grow();
        let retired = worker.join().unwrap();
        assert_eq!(ctl.live(), 3);
        assert_eq!(2 - usize::from(retired) + spawned.load(Ordering::SeqCst), 3);
    });
}

/// Lowering and raising the target from two threads while a worker checks:
/// `live` ends equal to the last target set once a final `grow` runs, and
/// never drops below 1.
#[test]
fn racing_target_changes_keep_at_least_one_worker() {
    loom::model(|| {
        let (ctl, _) = control(2, 2);
        let lower = {
            let ctl = std::sync::Arc::clone(&ctl);
            thread::spawn(move || {
                ctl.set_target(1);
                ctl.try_retire()
            })
        };
        let check = {
            let ctl = std::sync::Arc::clone(&ctl);
            thread::spawn(move || ctl.try_retire())
        };
        lower.join().unwrap();
        check.join().unwrap();
        assert!(ctl.live() >= 1);
        ctl.grow();
        assert_eq!(ctl.live(), ctl.target());
    });
}
