//! The admission gate: the one atomic word that decides whether a job is
//! accepted, and that tells when the last accepted job has its outcome.
//!
//! **Invariant:** the word holds a `CLOSED` bit and the number of jobs in
//! flight (accepted and without an outcome yet, queued or running). A job
//! is accepted only by a compare-and-swap that sees the bit clear and room
//! under the limit, so no job is accepted after [`Gate::close`]; and the
//! word reaches "closed and empty" exactly once, seen by exactly one
//! caller of [`Gate::close`] or [`Gate::leave`], who then ends the queue.
//! A job accepted before the close keeps the count above zero until its
//! outcome is delivered, so it cannot be lost by ending the queue early.

use crate::sync::{AtomicUsize, Ordering};

const CLOSED: usize = 1;
const ONE: usize = 2;

/// Why the gate refused a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// As many jobs in flight as the limit allows.
    Full,
    /// The gate is closed for good.
    Closed,
}

/// Admission control: `CLOSED` bit plus the in-flight count, in one word.
///
/// Aligned to 128 bytes: every submit and every finish writes the word,
/// so it keeps its cache lines to itself.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct Gate {
    state: AtomicUsize,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate { state: AtomicUsize::new(0) }
    }

    /// Admits one job if the gate is open and fewer than `limit` are in flight.
    pub(crate) fn try_enter(&self, limit: usize) -> Result<(), Refused> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                return Err(Refused::Closed);
            }
            if state / ONE >= limit {
                return Err(Refused::Full);
            }
            match self.state.compare_exchange_weak(state, state + ONE, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
        }
    }

    /// Records that one admitted job has its outcome. Returns `true` to the
    /// one caller that leaves the gate closed and empty.
    ///
    /// `SeqCst`: the caller's next `SeqCst` load (of the waiting
    /// submitters' count) is ordered after it without a separate fence.
    pub(crate) fn leave(&self) -> bool {
        self.state.fetch_sub(ONE, Ordering::SeqCst) == CLOSED | ONE
    }

    /// Closes the gate. Returns `true` if this call closed it while nothing
    /// was in flight (the caller then ends the queue).
    pub(crate) fn close(&self) -> bool {
        self.state.fetch_or(CLOSED, Ordering::AcqRel) == 0
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// How many more jobs `limit` admits now (0 once closed).
    pub(crate) fn room(&self, limit: usize) -> usize {
        let state = self.state.load(Ordering::Acquire);
        if state & CLOSED != 0 { 0 } else { limit.saturating_sub(state / ONE) }
    }

    /// Jobs accepted and without an outcome yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.state.load(Ordering::Acquire) / ONE
    }

    /// Whether the gate is closed and nothing is in flight.
    pub(crate) fn is_drained(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_then_refuses() {
        let gate = Gate::new();
        assert_eq!(gate.try_enter(2), Ok(()));
        assert_eq!(gate.try_enter(2), Ok(()));
        assert_eq!(gate.try_enter(2), Err(Refused::Full));
        assert!(!gate.leave());
        assert_eq!(gate.in_flight(), 1);
        assert!(!gate.close());
        assert_eq!(gate.try_enter(2), Err(Refused::Closed));
        assert!(!gate.is_drained());
        assert!(gate.leave());
        assert!(gate.is_drained());
    }

    #[test]
    fn closing_an_empty_gate_drains_it_at_once() {
        let gate = Gate::new();
        assert!(gate.close());
        assert!(!gate.close(), "only the first close reports the drain");
        assert!(gate.is_closed() && gate.is_drained());
    }
}

#[cfg(all(test, conc_loom))]
mod loom_tests {
    //! The submit/close race: every job accepted before the close gets its
    //! outcome before the queue ends, none is accepted after, and the end
    //! is signalled exactly once.

    use std::collections::VecDeque;

    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    use super::*;

    struct Model {
        gate: Gate,
        queue: Mutex<VecDeque<usize>>,
        ended: AtomicUsize,
        done: AtomicUsize,
    }

    impl Model {
        /// What the pool does when the gate drains: the queue must be empty
        /// and every job accepted before must have its outcome.
        fn end(&self) {
            assert!(self.queue.lock().unwrap().is_empty(), "queue ended with a job in it");
            self.ended.fetch_add(1, Ordering::SeqCst);
        }

        fn submit(&self, job: usize) -> bool {
            match self.gate.try_enter(2) {
                Ok(()) => {
                    assert_eq!(self.ended.load(Ordering::SeqCst), 0, "accepted after the end");
                    self.queue.lock().unwrap().push_back(job);
                    true
                }
                Err(_) => false,
            }
        }

        /// One worker step: take a job, give its outcome, leave the gate.
        fn work(&self) -> bool {
            let job = self.queue.lock().unwrap().pop_front();
            match job {
                Some(_) => {
                    self.done.fetch_add(1, Ordering::SeqCst);
                    if self.gate.leave() {
                        self.end();
                    }
                    true
                }
                None => false,
            }
        }
    }

    #[test]
    fn loom_no_job_accepted_before_close_is_lost_and_none_after() {
        loom::model(|| {
            let model = Arc::new(Model {
                gate: Gate::new(),
                queue: Mutex::new(VecDeque::new()),
                ended: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
            });
            let submitter = {
                let model = model.clone();
                thread::spawn(move || usize::from(model.submit(1)) + usize::from(model.submit(2)))
            };
            let closer = {
                let model = model.clone();
                thread::spawn(move || {
                    if model.gate.close() {
                        model.end();
                    }
                    assert_eq!(model.gate.try_enter(2), Err(Refused::Closed));
                })
            };
            // A worker racing both.
            model.work();
            let accepted = submitter.join().unwrap();
            closer.join().unwrap();
            while model.work() {}
            assert_eq!(model.done.load(Ordering::SeqCst), accepted, "an accepted job lost");
            assert_eq!(model.ended.load(Ordering::SeqCst), 1, "the end signalled other than once");
            assert!(model.gate.is_drained());
        });
    }

    #[test]
    fn loom_concurrent_admissions_never_pass_the_limit() {
        loom::model(|| {
            let gate = Arc::new(Gate::new());
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let gate = gate.clone();
                    thread::spawn(move || gate.try_enter(1).is_ok())
                })
                .collect();
            let admitted = threads.into_iter().map(|t| usize::from(t.join().unwrap())).sum::<usize>();
            assert_eq!(admitted, 1);
            assert_eq!(gate.in_flight(), 1);
            assert!(!gate.close());
            assert!(gate.leave());
        });
    }
}
