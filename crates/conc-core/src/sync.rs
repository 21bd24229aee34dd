//! The synchronisation primitives the token protocol uses, swapped for
//! loom's under `--cfg conc_loom` so the models in `token/loom_tests.rs`
//! explore every interleaving of the protocol.
//!
//! Only what a modelled protocol races on goes through here: the
//! per-node lock and the cancelled flag, and the system clock's anchors
//! (`clock/tsc.rs`). Reference counts stay on std's
//! `Arc`/`Weak` (loom has no `Weak`), which is sound: the models check our
//! protocol, not std's reference counting.

#[cfg(not(conc_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
#[cfg(not(conc_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(conc_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
#[cfg(conc_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in this crate only moves plain data in and out
/// of the guarded state and runs no user code, so a panic while the lock is
/// held cannot leave that state half-updated.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The data behind `mutex`, through exclusive access: no locking needed.
pub(crate) fn get_mut<T>(mutex: &mut Mutex<T>) -> &mut T {
    match mutex.get_mut() {
        Ok(data) => data,
        Err(poisoned) => poisoned.into_inner(),
    }
}
