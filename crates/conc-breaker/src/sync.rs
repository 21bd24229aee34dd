//! Synchronisation primitives, swapped for loom's under `--cfg conc_loom`
//! so the models explore every interleaving of the atomic protocols.

#[cfg(not(conc_loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(conc_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(conc_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(conc_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: critical sections in this crate run
/// no user code and leave their data consistent at every step.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
