//! The running jobs' tokens, for a shutdown past its deadline to cancel.
//!
//! A job's token is a new root rather than a child of a pool token, so
//! starting a job takes no lock on a node every worker shares. Instead
//! each worker leaves its job's token in its own slot (a lock nobody else
//! takes but a shutdown) and a shutdown cancels the pool's token, then
//! every token in the slots.
//!
//! **Invariant:** a job's token is cancelled by a shutdown however the two
//! interleave: the worker publishes the token, then looks at the pool's
//! token; the shutdown cancels the pool's token, then looks in the slots.
//! Both look under the slot's lock, so one of them sees the other.

use std::sync::Arc;

use conc_core::Token;

use crate::sync::{Mutex, lock};

/// Every live worker's slot.
#[derive(Default)]
pub(crate) struct Running {
    /// Cold path: locked as a worker starts and exits, and by a shutdown.
    slots: Mutex<Vec<Arc<Mutex<Option<Token>>>>>,
}

impl Running {
    /// A slot for a worker that starts now, held while it lives.
    pub(crate) fn slot(&self) -> JobSlot<'_> {
        let slot = Arc::new(Mutex::new(None));
        lock(&self.slots).push(slot.clone());
        JobSlot { running: self, slot }
    }

    /// Cancels `pool`, then the token of every job running (or last run).
    pub(crate) fn cancel_all(&self, pool: &Token) {
        pool.cancel();
        let slots = lock(&self.slots).clone();
        let tokens: Vec<Token> = slots.iter().filter_map(|slot| lock(slot).clone()).collect();
        // Outside the locks: a cancel runs the tokens' callbacks.
        for token in tokens {
            token.cancel();
        }
    }
}

/// A worker's token slot; dropping it (as the worker exits) removes it.
pub(crate) struct JobSlot<'a> {
    running: &'a Running,
    slot: Arc<Mutex<Option<Token>>>,
}

impl JobSlot<'_> {
    /// Leaves the token of the job about to start in the slot; cancels it
    /// at once if `pool` already is (a shutdown got here first).
    pub(crate) fn publish(&self, token: &Token, pool: &Token) {
        let last = lock(&self.slot).replace(token.clone());
        if pool.is_cancelled() {
            token.cancel();
        }
        drop(last);
    }
}

impl Drop for JobSlot<'_> {
    fn drop(&mut self) {
        lock(&self.running.slots).retain(|slot| !Arc::ptr_eq(slot, &self.slot));
    }
}

#[cfg(all(test, conc_loom))]
mod loom_tests {
    //! A job starting on its worker while the pool shuts down: its token
    //! ends up cancelled, whichever comes first.

    use loom::thread;

    use super::*;

    #[test]
    fn loom_a_shutdown_racing_a_job_start_cancels_its_token() {
        loom::model(|| {
            let running = Arc::new(Running::default());
            let pool = Token::new();
            let shutdown = {
                let running = running.clone();
                let pool = pool.clone();
                thread::spawn(move || running.cancel_all(&pool))
            };
            let job = Token::new();
            {
                let slot = running.slot();
                slot.publish(&job, &pool);
                shutdown.join().unwrap();
            }
            assert!(job.is_cancelled(), "a job started during a shutdown kept running");
        });
    }
}
