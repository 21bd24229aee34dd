//! Where outcomes are counted: striped totals, the run of consecutive
//! outcomes, and the optional count- or time-based sliding window.
//!
//! Every word is tagged with its generation (see [`crate::tagged`]), so a
//! transition clears them all by re-tagging, and a late recorder cannot
//! write into a newer generation.

use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::tagged::{self, PAYLOAD_BITS, Update};

/// The largest count window, in calls.
pub(crate) const MAX_COUNT_WINDOW: u64 = 1 << 20;
/// The most buckets a time window may have.
pub(crate) const MAX_BUCKETS: u64 = 1024;

/// What one call came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Counted as a failure.
    pub(crate) failure: bool,
    /// Took at least the slow-call duration.
    pub(crate) slow: bool,
    /// Ran past the call timeout (also a failure).
    pub(crate) timeout: bool,
}

/// Keeps a value on its own cache line(s), so stripes written by different
/// cores do not share one. 128 bytes covers the adjacent-line prefetch of
/// x86 and the 128-byte lines of some ARM cores.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Thread slots: each live thread that records outcomes owns one index,
/// handed back when it exits, so while no more threads record than a
/// breaker has owned stripes, every owned stripe has a single writer and
/// is updated with a plain load and store, no read-modify-write.
mod slot {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Indices handed back by exited threads; taken at thread start and
    /// exit only (a cold path).
    static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    static NEXT: AtomicUsize = AtomicUsize::new(0);

    struct Slot(usize);

    impl Slot {
        fn claim() -> Slot {
            let reused = FREE.lock().map_or(None, |mut free| free.pop());
            Slot(reused.unwrap_or_else(|| NEXT.fetch_add(1, Ordering::Relaxed)))
        }
    }

    impl Drop for Slot {
        fn drop(&mut self) {
            if let Ok(mut free) = FREE.lock() {
                free.push(self.0);
            }
        }
    }

    thread_local! {
        static SLOT: Slot = Slot::claim();
    }

    /// This thread's index, unique among live threads; `None` while the
    /// thread's locals are being torn down (and under loom, whose threads
    /// share the locals of one OS thread).
    #[inline]
    pub(super) fn index() -> Option<usize> {
        if cfg!(conc_loom) {
            return None;
        }
        SLOT.try_with(|slot| slot.0).ok()
    }
}

/// How many owned stripes the totals get: twice the cores, so that a
/// runtime's workers and a few more threads each own one.
fn owned_stripes() -> usize {
    if cfg!(conc_loom) {
        return 1;
    }
    if cfg!(miri) {
        return 4;
    }
    std::thread::available_parallelism().map_or(1, usize::from).saturating_mul(2).next_power_of_two().clamp(4, 128)
}

/// Adds one to a tagged count that only this thread writes: a plain load
/// and store. A transition's sweep may re-tag the word in between; the
/// store then writes the old tag back, which reads as zero for the new
/// generation and is taken over at this thread's next write, like any
/// older tag.
#[inline]
fn add_owned(word: &AtomicU64, generation: u64, amount: u64) {
    let current = word.load(Ordering::Relaxed);
    let tag = tagged::tag_of(generation);
    let current_tag = current >> PAYLOAD_BITS;
    let count = if current_tag == tag {
        current & tagged::PAYLOAD
    } else if tagged::is_newer(current_tag, tag) {
        return;
    } else {
        0
    };
    word.store((tag << PAYLOAD_BITS) | count.saturating_add(amount).min(tagged::PAYLOAD), Ordering::Release);
}

/// One writer's share of the totals (or the shared overflow share).
#[derive(Debug)]
struct Stripe {
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
    timeouts: AtomicU64,
    /// Rejected calls over the breaker's life: the same tag forever.
    rejected: AtomicU64,
}

impl Stripe {
    #[inline]
    fn add(&self, word: &AtomicU64, generation: u64, owned: bool) {
        if owned {
            add_owned(word, generation, 1);
        } else {
            tagged::increment(word, generation);
        }
    }
}

/// Counts per generation, striped by thread: each thread writes its own
/// stripe (without a read-modify-write while it owns one), so recording a
/// success writes a line no other core writes. Threads beyond the owned
/// stripes share one last stripe, updated by compare-and-swap.
#[derive(Debug)]
pub(crate) struct Totals {
    /// `owned` single-writer stripes, then the shared one.
    stripes: Box<[Padded<Stripe>]>,
}

/// Calls, failures, slow calls and timeouts of one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
    pub(crate) timeouts: u64,
}

impl Totals {
    pub(crate) fn new(generation: u64) -> Totals {
        let fresh = tagged::fresh(generation);
        let stripes = (0..=owned_stripes())
            .map(|_| {
                Padded(Stripe {
                    calls: AtomicU64::new(fresh),
                    failures: AtomicU64::new(fresh),
                    slow: AtomicU64::new(fresh),
                    timeouts: AtomicU64::new(fresh),
                    rejected: AtomicU64::new(0),
                })
            })
            .collect();
        Totals { stripes }
    }

    /// This thread's stripe, and whether it is the only writer of it.
    #[inline]
    fn mine(&self) -> (&Stripe, bool) {
        let shared = self.stripes.len() - 1;
        match slot::index() {
            Some(index) if index < shared => (&self.stripes[index], true),
            _ => (&self.stripes[shared], false),
        }
    }

    #[inline]
    pub(crate) fn record(&self, generation: u64, outcome: Outcome) {
        let (stripe, owned) = self.mine();
        stripe.add(&stripe.calls, generation, owned);
        if outcome.failure {
            stripe.add(&stripe.failures, generation, owned);
        }
        if outcome.slow {
            stripe.add(&stripe.slow, generation, owned);
        }
        if outcome.timeout {
            stripe.add(&stripe.timeouts, generation, owned);
        }
    }

    pub(crate) fn reject(&self) {
        let (stripe, owned) = self.mine();
        if owned {
            let count = stripe.rejected.load(Ordering::Relaxed);
            stripe.rejected.store(count.saturating_add(1), Ordering::Release);
        } else {
            stripe.rejected.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub(crate) fn rejected(&self) -> u64 {
        self.stripes.iter().map(|stripe| stripe.rejected.load(Ordering::Acquire)).fold(0, u64::saturating_add)
    }

    pub(crate) fn tally(&self, generation: u64) -> Tally {
        let mut tally = Tally::default();
        for stripe in self.stripes.iter() {
            tally.calls = tally.calls.saturating_add(tagged::read(&stripe.calls, generation));
            tally.failures = tally.failures.saturating_add(tagged::read(&stripe.failures, generation));
            tally.slow = tally.slow.saturating_add(tagged::read(&stripe.slow, generation));
            tally.timeouts = tally.timeouts.saturating_add(tagged::read(&stripe.timeouts, generation));
        }
        tally
    }

    pub(crate) fn sweep(&self, generation: u64) {
        let fresh = tagged::fresh(generation);
        for stripe in self.stripes.iter() {
            for word in [&stripe.calls, &stripe.failures, &stripe.slow, &stripe.timeouts] {
                word.store(fresh, Ordering::Release);
            }
        }
    }
}

/// The current run of failures (low 24 bits) or successes (next 24 bits).
const RUN: u64 = (1 << 24) - 1;

/// The runs of consecutive failures and successes, in one tagged word.
///
/// A success writes only when it ends a run of failures (or when success
/// runs are tracked for a `trip_when` predicate), so under a stream of
/// successes every core keeps this line shared and reads it for free.
#[derive(Debug)]
pub(crate) struct Runs {
    word: Padded<AtomicU64>,
}

impl Runs {
    pub(crate) fn new(generation: u64) -> Runs {
        Runs { word: Padded(AtomicU64::new(tagged::fresh(generation))) }
    }

    /// Records one outcome; returns the failure run after it, or `None` if
    /// the generation has passed.
    #[inline]
    pub(crate) fn record(&self, generation: u64, failure: bool, track_successes: bool) -> Option<u64> {
        let update = tagged::update(&self.word, generation, |runs| {
            let (failures, successes) = (runs & RUN, (runs >> 24) & RUN);
            if failure {
                Some((failures + 1).min(RUN))
            } else if track_successes {
                Some(((successes + 1).min(RUN)) << 24)
            } else if runs != 0 {
                Some(0)
            } else {
                None
            }
        });
        match update {
            Update::Written(runs) | Update::Declined(runs) => Some(runs & RUN),
            Update::Stale => None,
        }
    }

    /// `(consecutive failures, consecutive successes)` in `generation`.
    pub(crate) fn read(&self, generation: u64) -> (u64, u64) {
        let runs = tagged::read(&self.word, generation);
        (runs & RUN, (runs >> 24) & RUN)
    }

    pub(crate) fn sweep(&self, generation: u64) {
        self.word.store(tagged::fresh(generation), Ordering::Release);
    }
}

/// Slot bits of a count window.
const SLOT_PRESENT: u32 = 1;
const SLOT_FAILURE: u32 = 2;
const SLOT_SLOW: u32 = 4;

/// The last `size` calls (resilience4j's `COUNT_BASED` window), lock-free.
///
/// A recorder takes a sequence number from `head`, writes its outcome into
/// slot `seq % size` (swapping out the outcome a lap earlier) and adds the
/// difference to the failure and slow counts. So the counts are always the
/// sum of the slots, give or take the recorders between those two steps,
/// and `calls` is `min(seq, size)`.
#[derive(Debug)]
pub(crate) struct CountWindow {
    size: u64,
    head: Padded<AtomicU64>,
    failures: Padded<AtomicU64>,
    slow: Padded<AtomicU64>,
    /// `tag << 16 | SLOT_*` bits.
    slots: Box<[AtomicU32]>,
}

fn slot_word(generation: u64, bits: u32) -> u32 {
    // The tag is 16 bits, so it fits.
    ((tagged::tag_of(generation) as u32) << 16) | bits
}

impl CountWindow {
    pub(crate) fn new(size: u32, generation: u64) -> CountWindow {
        let fresh = tagged::fresh(generation);
        CountWindow {
            size: u64::from(size),
            head: Padded(AtomicU64::new(fresh)),
            failures: Padded(AtomicU64::new(fresh)),
            slow: Padded(AtomicU64::new(fresh)),
            slots: (0..size).map(|_| AtomicU32::new(slot_word(generation, 0))).collect(),
        }
    }

    /// Records one outcome; `false` if the generation has passed.
    pub(crate) fn record(&self, generation: u64, outcome: Outcome) -> bool {
        let seq = match tagged::update(&self.head, generation, |seq| Some(seq + 1)) {
            Update::Written(seq) => seq - 1,
            Update::Declined(_) | Update::Stale => return false,
        };
        // `seq % size` is below `size`, at most 2^20.
        let slot = &self.slots[(seq % self.size) as usize];
        let tag = tagged::tag_of(generation);
        let bits =
            SLOT_PRESENT | if outcome.failure { SLOT_FAILURE } else { 0 } | if outcome.slow { SLOT_SLOW } else { 0 };
        let mut current = slot.load(Ordering::Acquire);
        let old = loop {
            let current_tag = u64::from(current >> 16);
            if tagged::is_newer(current_tag, tag) {
                return false;
            }
            let old = if current_tag == tag { current & 0xFFFF } else { 0 };
            match slot.compare_exchange_weak(current, slot_word(generation, bits), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break old,
                Err(actual) => current = actual,
            }
        };
        let delta = |flag: u32| i64::from(bits & flag != 0) - i64::from(old & flag != 0);
        tagged::add_signed(&self.failures, generation, delta(SLOT_FAILURE));
        tagged::add_signed(&self.slow, generation, delta(SLOT_SLOW));
        true
    }

    /// `(calls, failures, slow)` in the window for `generation`.
    pub(crate) fn counts(&self, generation: u64) -> (u64, u64, u64) {
        let calls = tagged::read(&self.head, generation).min(self.size);
        let failures = tagged::read_signed(&self.failures, generation).min(calls);
        let slow = tagged::read_signed(&self.slow, generation).min(calls);
        (calls, failures, slow)
    }

    pub(crate) fn sweep(&self, generation: u64) {
        let fresh = tagged::fresh(generation);
        self.head.store(fresh, Ordering::Release);
        self.failures.store(fresh, Ordering::Release);
        self.slow.store(fresh, Ordering::Release);
        let empty = slot_word(generation, 0);
        for slot in self.slots.iter() {
            slot.store(empty, Ordering::Release);
        }
    }
}

/// A bucket's epoch before it has counted anything in its generation.
const NO_EPOCH: u64 = tagged::PAYLOAD;

/// One bucket of a time window.
#[derive(Debug)]
struct Bucket {
    /// `tag << 48 | epoch`: which generation and which bucket-length span
    /// of time (counted from the breaker's origin) the counts are for.
    stamp: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

/// The calls of the last `buckets * bucket_nanos` of time
/// (resilience4j's `TIME_BASED` window), in a ring of buckets.
///
/// The bucket for the current span is claimed with one compare-and-swap on
/// its stamp, then its counts are reset. Counting is exact for one thread;
/// under concurrency an outcome recorded in the instant between another
/// thread's claim and reset of the same bucket can be lost. Stamps carry
/// the generation, so a transition empties the window.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    bucket_nanos: u64,
    buckets: Box<[Padded<Bucket>]>,
}

impl TimeWindow {
    pub(crate) fn new(bucket_nanos: u64, buckets: u32, generation: u64) -> TimeWindow {
        let stamp = tagged::fresh(generation) | NO_EPOCH;
        TimeWindow {
            bucket_nanos: bucket_nanos.max(1),
            buckets: (0..buckets)
                .map(|_| {
                    Padded(Bucket {
                        stamp: AtomicU64::new(stamp),
                        calls: AtomicU64::new(0),
                        failures: AtomicU64::new(0),
                        slow: AtomicU64::new(0),
                    })
                })
                .collect(),
        }
    }

    fn epoch_of(&self, now_nanos: u64) -> u64 {
        (now_nanos / self.bucket_nanos).min(NO_EPOCH - 1)
    }

    pub(crate) fn record(&self, generation: u64, now_nanos: u64, outcome: Outcome) {
        let epoch = self.epoch_of(now_nanos);
        let len = self.buckets.len() as u64;
        // Below `len`, at most `MAX_BUCKETS`.
        let bucket = &self.buckets[(epoch % len) as usize];
        let tag = tagged::tag_of(generation);
        let mine = (tag << PAYLOAD_BITS) | epoch;
        let mut stamp = bucket.stamp.load(Ordering::Acquire);
        loop {
            if stamp == mine {
                bucket.calls.fetch_add(1, Ordering::AcqRel);
                bucket.failures.fetch_add(u64::from(outcome.failure), Ordering::AcqRel);
                bucket.slow.fetch_add(u64::from(outcome.slow), Ordering::AcqRel);
                return;
            }
            let (stamp_tag, stamp_epoch) = (stamp >> PAYLOAD_BITS, stamp & tagged::PAYLOAD);
            let later_epoch = stamp_tag == tag && stamp_epoch != NO_EPOCH && stamp_epoch > epoch;
            if tagged::is_newer(stamp_tag, tag) || later_epoch {
                return;
            }
            match bucket.stamp.compare_exchange_weak(stamp, mine, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    bucket.calls.store(1, Ordering::Release);
                    bucket.failures.store(u64::from(outcome.failure), Ordering::Release);
                    bucket.slow.store(u64::from(outcome.slow), Ordering::Release);
                    return;
                }
                Err(actual) => stamp = actual,
            }
        }
    }

    /// `(calls, failures, slow)` in the window ending at `now_nanos`.
    pub(crate) fn counts(&self, generation: u64, now_nanos: u64) -> (u64, u64, u64) {
        let epoch = self.epoch_of(now_nanos);
        let len = self.buckets.len() as u64;
        let tag = tagged::tag_of(generation);
        let (mut calls, mut failures, mut slow) = (0u64, 0u64, 0u64);
        for bucket in self.buckets.iter() {
            let stamp = bucket.stamp.load(Ordering::Acquire);
            let (stamp_tag, stamp_epoch) = (stamp >> PAYLOAD_BITS, stamp & tagged::PAYLOAD);
            if stamp_tag == tag && stamp_epoch != NO_EPOCH && stamp_epoch <= epoch && epoch - stamp_epoch < len {
                calls = calls.saturating_add(bucket.calls.load(Ordering::Acquire));
                failures = failures.saturating_add(bucket.failures.load(Ordering::Acquire));
                slow = slow.saturating_add(bucket.slow.load(Ordering::Acquire));
            }
        }
        (calls, failures.min(calls), slow.min(calls))
    }

    pub(crate) fn sweep(&self, generation: u64) {
        let stamp = tagged::fresh(generation) | NO_EPOCH;
        for bucket in self.buckets.iter() {
            bucket.stamp.store(stamp, Ordering::Release);
        }
    }
}

/// The sliding window a breaker judges rates over.
#[derive(Debug)]
pub(crate) enum Window {
    /// Everything since the generation began (gobreaker's counts, cleared
    /// by transitions and by the `interval`).
    Generation,
    /// The last N calls.
    Count(Box<CountWindow>),
    /// The last N seconds, in buckets.
    Time(TimeWindow),
}
