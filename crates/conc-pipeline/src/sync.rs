//! Synchronisation primitives of the concurrency-control protocol, swapped
//! for loom's under `--cfg conc_loom` so the models explore every
//! interleaving. Cold-path mutexes elsewhere use std directly.

#[cfg(not(conc_loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(conc_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(conc_loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
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

/// [`lock`] for the std mutexes of cold paths (stage names, task handles,
/// the first failure), which loom does not model.
pub(crate) fn lock_std<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
