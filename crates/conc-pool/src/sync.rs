//! Synchronisation primitives, swapped for loom's under `--cfg conc_loom`
//! so the models in `gate.rs` and `job.rs` explore every interleaving of
//! the admission protocol and of a job's start racing its cancel.

#[cfg(not(conc_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

#[cfg(conc_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
