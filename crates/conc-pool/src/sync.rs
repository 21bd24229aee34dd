//! Synchronisation primitives, swapped for loom's under `--cfg conc_loom`
//! so the models in `gate.rs` and `job.rs` explore every interleaving of
//! the admission protocol and of a job's start, cancel, outcome and handle
//! drop racing each other.

#[cfg(not(conc_loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(conc_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(conc_loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(conc_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Locks `mutex`, going on past a poisoned lock: every critical section in
/// this crate leaves its data consistent before anything can panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
