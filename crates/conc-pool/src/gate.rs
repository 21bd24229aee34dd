//! The admission gate: decides whether a job is accepted, and tells when
//! the last accepted job has its outcome.
//!
//! Two monotonic counts on separate cache lines: `entered` (jobs ever
//! admitted, with the `CLOSED` bit), written only by submitters and
//! `close`, and `left` (jobs ever given an outcome), written only by
//! workers. Jobs in flight (queued or running) are `entered - left`. A
//! single word for both would be written by a submitter and a worker for
//! every job, and its cache line would cross between their cores twice
//! per job.
//!
//! **Invariants:**
//! - A job is accepted only by a compare-and-swap of `entered` that sees
//!   `CLOSED` clear and fewer than `limit` in flight, so none is accepted
//!   after [`Gate::close`] and never more than `limit` are in flight.
//!   Submitters judge the room by `seen_left`, a recent value of `left`;
//!   `left` only grows, so a stale value over-counts what is in flight
//!   (never admits too many), and they read `left` itself only when the
//!   gate looks full.
//! - "Closed and empty" is reported exactly once, to one caller of
//!   [`Gate::close`] or [`Gate::leave`], who then ends the queue. `close`
//!   sets `CLOSED` in `entered` (freezing it), then in `left`, which hands
//!   it `left`'s count at that point; each `leave` adds to `left` and gets
//!   the bit with the count. Whichever comes later in `left`'s order
//!   decides: a `leave` that sees the bit compares its count with the
//!   final `entered`, and a `close` compares the count it got, so exactly
//!   one of them sees the two equal. A job accepted before the close keeps
//!   `left` short of `entered` until its outcome is delivered, so it cannot
//!   be lost by ending the queue early.

use crate::stats::Padded;
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

/// The submitters' side of the gate, on its own cache lines.
#[derive(Debug)]
struct Entered {
    /// Jobs ever admitted (times `ONE`), plus the `CLOSED` bit.
    count: AtomicUsize,
    /// A recent value of `left`, refreshed when the gate looks full.
    seen_left: AtomicUsize,
}

/// Admission control: the admitted and finished counts, apart.
#[derive(Debug)]
pub(crate) struct Gate {
    entered: Padded<Entered>,
    /// Jobs ever given an outcome (times `ONE`), plus the `CLOSED` bit:
    /// the workers' side, on its own cache lines.
    left: Padded<AtomicUsize>,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate {
            entered: Padded::new(Entered { count: AtomicUsize::new(0), seen_left: AtomicUsize::new(0) }),
            left: Padded::new(AtomicUsize::new(0)),
        }
    }

    /// Admits one job if the gate is open and fewer than `limit` are in flight.
    pub(crate) fn try_enter(&self, limit: usize) -> Result<(), Refused> {
        let mut entered = self.entered.count.load(Ordering::Acquire);
        loop {
            if entered & CLOSED != 0 {
                return Err(Refused::Closed);
            }
            let admitted = entered / ONE;
            // Saturating: a `left` newer than a stale `entered` reads as
            // room, and the compare-and-swap below then fails and retries.
            if admitted.saturating_sub(self.entered.seen_left.load(Ordering::Relaxed)) >= limit {
                // Looks full by a recent view: look at `left` itself.
                // `SeqCst`: a submitter waiting for room counts itself in,
                // then tries again; a finishing worker leaves, then looks
                // for waiters: one of the two sees the other.
                let left = self.left.load(Ordering::SeqCst) / ONE;
                self.entered.seen_left.fetch_max(left, Ordering::Relaxed);
                if admitted.saturating_sub(left) >= limit {
                    return Err(Refused::Full);
                }
            }
            match self.entered.count.compare_exchange_weak(entered, entered + ONE, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => entered = actual,
            }
        }
    }

    /// Records that one admitted job has its outcome. Returns `true` to the
    /// one caller that leaves the gate closed and empty.
    ///
    /// `SeqCst`: the caller's next `SeqCst` load (of the waiting
    /// submitters' count) is ordered after it without a separate fence.
    pub(crate) fn leave(&self) -> bool {
        let before = self.left.fetch_add(ONE, Ordering::SeqCst);
        // Once `left` is closed, so is `entered` (set first): it is final.
        before & CLOSED != 0 && self.entered.count.load(Ordering::Acquire) / ONE == before / ONE + 1
    }

    /// Closes the gate. Returns `true` if this call closed it while nothing
    /// was in flight (the caller then ends the queue).
    pub(crate) fn close(&self) -> bool {
        let entered = self.entered.count.fetch_or(CLOSED, Ordering::AcqRel);
        if entered & CLOSED != 0 {
            return false;
        }
        entered / ONE == self.left.fetch_or(CLOSED, Ordering::AcqRel) / ONE
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.entered.count.load(Ordering::Acquire) & CLOSED != 0
    }

    /// How many more jobs `limit` admits now (0 once closed).
    pub(crate) fn room(&self, limit: usize) -> usize {
        let entered = self.entered.count.load(Ordering::Acquire);
        if entered & CLOSED != 0 { 0 } else { limit.saturating_sub(self.in_flight_of(entered)) }
    }

    /// Jobs accepted and without an outcome yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight_of(self.entered.count.load(Ordering::Acquire))
    }

    /// At least the jobs in flight, read from the submitters' side only.
    pub(crate) fn in_flight_at_most(&self) -> usize {
        let admitted = self.entered.count.load(Ordering::Relaxed) / ONE;
        admitted.saturating_sub(self.entered.seen_left.load(Ordering::Relaxed))
    }

    fn in_flight_of(&self, entered: usize) -> usize {
        (entered / ONE).saturating_sub(self.left.load(Ordering::Acquire) / ONE)
    }

    /// Whether the gate is closed and nothing is in flight.
    pub(crate) fn is_drained(&self) -> bool {
        let entered = self.entered.count.load(Ordering::Acquire);
        entered & CLOSED != 0 && self.in_flight_of(entered) == 0
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

    #[test]
    fn loom_two_leaves_racing_a_close_report_the_end_once() {
        loom::model(|| {
            let gate = Arc::new(Gate::new());
            assert_eq!(gate.try_enter(2), Ok(()));
            assert_eq!(gate.try_enter(2), Ok(()));
            let leaves: Vec<_> = (0..2)
                .map(|_| {
                    let gate = gate.clone();
                    thread::spawn(move || usize::from(gate.leave()))
                })
                .collect();
            let closed = usize::from(gate.close());
            let ends = closed + leaves.into_iter().map(|t| t.join().unwrap()).sum::<usize>();
            assert_eq!(ends, 1, "the drain was reported other than once");
            assert!(gate.is_drained());
        });
    }

    #[test]
    fn loom_a_stale_view_of_the_finished_jobs_never_admits_too_many() {
        loom::model(|| {
            let gate = Arc::new(Gate::new());
            assert_eq!(gate.try_enter(1), Ok(()));
            let worker = {
                let gate = gate.clone();
                thread::spawn(move || {
                    assert!(!gate.leave());
                })
            };
            let submitters: Vec<_> = (0..2)
                .map(|_| {
                    let gate = gate.clone();
                    thread::spawn(move || usize::from(gate.try_enter(1).is_ok()))
                })
                .collect();
            let admitted = submitters.into_iter().map(|t| t.join().unwrap()).sum::<usize>();
            worker.join().unwrap();
            assert!(admitted <= 1, "two admitted under a limit of one");
            assert_eq!(gate.in_flight(), admitted);
        });
    }
}
