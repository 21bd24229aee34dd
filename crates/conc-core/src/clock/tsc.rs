//! The fast reading behind [`SystemClock`](super::SystemClock)'s
//! [`now_nanos`](super::Clock::now_nanos): the CPU's time-stamp counter,
//! scaled to nanoseconds and re-anchored to `Instant::now` every few
//! milliseconds.
//!
//! `Instant::now` is a `clock_gettime` call: 20–30 ns on the virtual
//! machines services run on, more than a whole rate-limit check. Reading
//! the counter takes about 7 ns. Where the counter is invariant (it ticks at
//! one rate whatever the core's frequency or sleep state, and cores agree)
//! the scaled count tracks the monotonic clock closely between anchors.
//!
//! **Invariant:** a fast reading is `nanos + (ticks_now - ticks) * mult >> 32`
//! for one whole anchor `(ticks, nanos, mult)`: anchors are published under a
//! sequence lock, and a reader that sees a write in progress, or an anchor
//! older than [`REANCHOR_TICKS`], reads `Instant::now` instead.
//!
//! Accuracy: an anchor is only taken when the counter reads around the
//! `Instant::now` call are at most [`GAP_TICKS`] apart (so a preempted
//! reading never becomes an anchor), and `mult` is measured from the first
//! anchor to the latest, so its error shrinks as the process runs. Between
//! anchors a reading drifts from `Instant::now` by the rate error times a
//! few milliseconds: under a microsecond in practice, a few microseconds
//! with NTP slewing the clock at its maximum rate.

// Where the counter is not read (miri, loom, other CPUs) only the tests and
// models use the anchors.
#![cfg_attr(any(miri, conc_loom, not(target_arch = "x86_64")), allow(dead_code))]

use std::sync::OnceLock;
use std::time::Instant;

use crate::sync::{AtomicU64, Ordering, fence};

/// An anchor older than this many ticks (3.2 ms at 2.6 GHz) is renewed.
pub(crate) const REANCHOR_TICKS: u64 = 1 << 23;

/// The most ticks the two counter reads around an `Instant::now` call may
/// be apart for the reading to become an anchor (under a microsecond at
/// the usual rates; an uninterrupted call takes 50–100 ticks).
pub(crate) const GAP_TICKS: u64 = 2048;

/// The shortest span from the first anchor over which the rate is measured
/// before the fast path is used (0.4 ms at 2.6 GHz).
pub(crate) const MIN_BASELINE_TICKS: u64 = 1 << 20;

/// `mult` is nanoseconds per tick in 32.32 fixed point; this bound (256 ns
/// a tick, a 4 MHz counter) keeps `REANCHOR_TICKS * mult` inside a `u64`.
const MAX_MULT: u64 = 1 << 40;

/// The anchor of fast readings and the baseline its rate is measured over,
/// on one cache line of its own: every fast reading loads it, and it is
/// written only every few milliseconds.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Anchors {
    /// The sequence lock: odd while an anchor is being written.
    seq: AtomicU64,
    ticks: AtomicU64,
    nanos: AtomicU64,
    /// Nanoseconds per tick, 32.32 fixed point; 0 until calibrated.
    mult: AtomicU64,
    /// The first good anchor, which `mult` is measured from. Only the
    /// writer holding the sequence lock touches these.
    base_ticks: AtomicU64,
    base_nanos: AtomicU64,
}

macro_rules! anchors {
    () => {
        Anchors {
            seq: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            mult: AtomicU64::new(0),
            base_ticks: AtomicU64::new(0),
            base_nanos: AtomicU64::new(0),
        }
    };
}

impl Anchors {
    /// No anchor yet: every reading is slow until two good anchors are
    /// [`MIN_BASELINE_TICKS`] apart.
    #[cfg(not(conc_loom))]
    pub(crate) const fn new() -> Anchors {
        anchors!()
    }

    /// No anchor yet (loom's atomics cannot be built in a `const fn`).
    #[cfg(conc_loom)]
    pub(crate) fn new() -> Anchors {
        anchors!()
    }

    /// The reading at counter value `ticks` from the current anchor, or
    /// `None` when there is no fresh, whole anchor to read from.
    #[inline]
    pub(crate) fn read(&self, ticks: u64) -> Option<u64> {
        let seq = self.seq.load(Ordering::Acquire);
        let anchor_ticks = self.ticks.load(Ordering::Relaxed);
        let anchor_nanos = self.nanos.load(Ordering::Relaxed);
        let mult = self.mult.load(Ordering::Relaxed);
        // Pairs with the writer's release fence: if any of the loads above
        // saw a value of a write in progress, this load sees its odd `seq`.
        fence(Ordering::Acquire);
        if seq & 1 == 1 || self.seq.load(Ordering::Relaxed) != seq || mult == 0 {
            return None;
        }
        // A counter read before the anchor was taken wraps to a huge span:
        // stale, like an old anchor.
        let elapsed = ticks.wrapping_sub(anchor_ticks);
        if elapsed >= REANCHOR_TICKS {
            return None;
        }
        // `elapsed < 2^23` and `mult < 2^40`: the product fits.
        Some(anchor_nanos.saturating_add((elapsed * mult) >> 32))
    }

    /// Offers `nanos`, read from `Instant::now` between counter reads
    /// `before` and `after`, as the new anchor. Does nothing if the reads
    /// are too far apart or another thread is writing an anchor.
    pub(crate) fn offer(&self, before: u64, nanos: u64, after: u64) {
        let gap = after.wrapping_sub(before);
        if gap > GAP_TICKS {
            return;
        }
        let ticks = before + gap / 2;
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 1 || self.seq.compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return;
        }
        // Orders the odd `seq` before the anchor's stores (see `read`).
        fence(Ordering::Release);
        let base_ticks = self.base_ticks.load(Ordering::Relaxed);
        let base_nanos = self.base_nanos.load(Ordering::Relaxed);
        let mult = if base_ticks == 0 || ticks <= base_ticks || nanos <= base_nanos {
            // The first anchor, or a counter that went back (a migrated
            // virtual machine): measure the rate again from here.
            self.base_ticks.store(ticks, Ordering::Relaxed);
            self.base_nanos.store(nanos, Ordering::Relaxed);
            0
        } else if ticks - base_ticks < MIN_BASELINE_TICKS {
            0
        } else {
            let scaled = (u128::from(nanos - base_nanos) << 32) / u128::from(ticks - base_ticks);
            u64::try_from(scaled).ok().filter(|&mult| mult < MAX_MULT).unwrap_or(0)
        };
        self.ticks.store(ticks, Ordering::Relaxed);
        self.nanos.store(nanos, Ordering::Relaxed);
        self.mult.store(mult, Ordering::Relaxed);
        self.seq.store(seq + 2, Ordering::Release);
    }
}

/// The instant [`now_nanos`] counts from: the first time it was asked for.
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `Instant::now` as nanoseconds since [`epoch`] (saturating after 584
/// years).
fn real_nanos() -> u64 {
    let since = Instant::now().saturating_duration_since(epoch());
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds since [`epoch`]: from the time-stamp counter where it is
/// invariant, else from `Instant::now`.
#[inline]
pub(crate) fn now_nanos() -> u64 {
    #[cfg(all(target_arch = "x86_64", not(miri), not(conc_loom)))]
    {
        static ANCHORS: Anchors = Anchors::new();
        // Where the counter is not invariant no anchor is ever offered, so
        // this reads no further than the anchor's zero rate.
        let before = counter::read();
        if let Some(nanos) = ANCHORS.read(before) {
            return nanos;
        }
        let nanos = real_nanos();
        if counter::invariant() {
            ANCHORS.offer(before, nanos, counter::read());
        }
        nanos
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(conc_loom))))]
    real_nanos()
}

/// The x86-64 time-stamp counter. Not under miri (which has no such
/// counter) nor loom (whose models use [`Anchors`] directly).
#[cfg(all(target_arch = "x86_64", not(miri), not(conc_loom)))]
mod counter {
    use std::sync::atomic::{AtomicU8, Ordering};

    /// Whether the counter is invariant: CPUID leaf 0x8000_0007, EDX bit 8
    /// (the bit Linux reports as `constant_tsc` and `nonstop_tsc`).
    #[inline]
    pub(super) fn invariant() -> bool {
        const UNKNOWN: u8 = 0;
        const YES: u8 = 1;
        static INVARIANT: AtomicU8 = AtomicU8::new(UNKNOWN);
        match INVARIANT.load(Ordering::Relaxed) {
            UNKNOWN => {
                let max_extended = std::arch::x86_64::__cpuid(0x8000_0000).eax;
                let invariant =
                    max_extended >= 0x8000_0007 && std::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0;
                INVARIANT.store(if invariant { YES } else { YES + 1 }, Ordering::Relaxed);
                invariant
            }
            state => state == YES,
        }
    }

    /// The counter's current value.
    #[inline]
    #[allow(unsafe_code)]
    pub(super) fn read() -> u64 {
        // SAFETY: `rdtsc` has no preconditions on x86-64: every x86-64 CPU
        // has it, and it only reads a register.
        unsafe { std::arch::x86_64::_rdtsc() }
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::*;

    /// One nanosecond a tick, in 32.32 fixed point.
    const ONE: u64 = 1 << 32;

    /// Anchors at `ticks` = `nanos` (one nanosecond a tick), calibrated.
    fn calibrated(at: u64) -> Anchors {
        let anchors = Anchors::new();
        anchors.offer(1_000, 1_000, 1_000);
        anchors.offer(at, at, at);
        anchors
    }

    #[test]
    fn nothing_is_read_fast_before_the_rate_is_measured() {
        let anchors = Anchors::new();
        assert_eq!(anchors.read(5), None);
        anchors.offer(1_000, 1_000, 1_000);
        assert_eq!(anchors.read(1_010), None, "one anchor gives no rate");
        anchors.offer(2_000, 2_000, 2_000);
        assert_eq!(anchors.read(2_010), None, "a baseline shorter than MIN_BASELINE_TICKS gives none either");
        let at = 1_000 + MIN_BASELINE_TICKS;
        anchors.offer(at, at, at);
        assert_eq!(anchors.read(at + 10), Some(at + 10));
    }

    #[test]
    fn readings_scale_by_the_measured_rate() {
        let anchors = Anchors::new();
        // Two ticks a nanosecond: 2^21 ticks are 2^20 ns.
        anchors.offer(1 << 22, 1 << 30, 1 << 22);
        anchors.offer((1 << 22) + (1 << 21), (1 << 30) + (1 << 20), (1 << 22) + (1 << 21));
        assert_eq!(anchors.mult.load(Ordering::Relaxed), ONE / 2);
        assert_eq!(anchors.read((1 << 22) + (1 << 21) + 1_000), Some((1 << 30) + (1 << 20) + 500));
    }

    #[test]
    fn stale_anchors_and_earlier_counter_reads_fall_back() {
        let at = 1_000 + MIN_BASELINE_TICKS;
        let anchors = calibrated(at);
        assert_eq!(anchors.read(at + REANCHOR_TICKS - 1), Some(at + REANCHOR_TICKS - 1));
        assert_eq!(anchors.read(at + REANCHOR_TICKS), None, "an old anchor is renewed, not extrapolated");
        assert_eq!(anchors.read(at - 1), None, "a counter read from before the anchor is not trusted");
    }

    #[test]
    fn a_reading_taken_across_a_preemption_is_no_anchor() {
        let at = 1_000 + MIN_BASELINE_TICKS;
        let anchors = calibrated(at);
        anchors.offer(at + 100, 9_999_999, at + 100 + GAP_TICKS + 1);
        assert_eq!(anchors.read(at + 200), Some(at + 200), "the old anchor stands");
        // Within the gap, the anchor's counter value is the midpoint.
        anchors.offer(at + 100, at + 600, at + 1_100);
        assert_eq!(anchors.read(at + 700), Some(at + 700));
    }

    #[test]
    fn a_counter_that_goes_back_restarts_the_measurement() {
        let at = 1_000 + MIN_BASELINE_TICKS;
        let anchors = calibrated(at);
        anchors.offer(500, at + 5, 500);
        assert_eq!(anchors.read(510), None, "no rate until measured again");
        let later = 500 + MIN_BASELINE_TICKS;
        anchors.offer(later, at + 5 + MIN_BASELINE_TICKS, later);
        assert_eq!(anchors.read(later + 3), Some(at + 5 + MIN_BASELINE_TICKS + 3));
    }

    #[test]
    fn absurd_rates_are_not_used() {
        let anchors = Anchors::new();
        anchors.offer(1_000, 1_000, 1_000);
        let at = 1_000 + MIN_BASELINE_TICKS;
        // 512 ns a tick is past MAX_MULT.
        anchors.offer(at, 1_000 + 512 * MIN_BASELINE_TICKS, at);
        assert_eq!(anchors.read(at + 1), None);
    }

    #[test]
    fn the_system_reading_follows_instant_now() {
        let start = Instant::now().saturating_duration_since(epoch());
        let mut last = 0;
        for _ in 0..if cfg!(miri) { 10 } else { 10_000 } {
            let nanos = now_nanos();
            let real = Instant::now().saturating_duration_since(epoch());
            // Within a millisecond of the real clock, whichever way; the
            // accuracy itself is not a unit-test matter on shared machines.
            assert!(u128::from(nanos) + 1_000_000 >= start.as_nanos());
            assert!(u128::from(nanos) <= real.as_nanos() + 1_000_000);
            last = last.max(nanos);
        }
        assert!(last > 0);
    }
}

#[cfg(all(test, conc_loom))]
mod loom_tests {
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    /// Anchors calibrated at one nanosecond a tick, anchored at `at`.
    fn calibrated(at: u64) -> Anchors {
        let anchors = Anchors::new();
        anchors.offer(1_000, 1_000, 1_000);
        anchors.offer(at, at, at);
        anchors
    }

    /// A reader racing a re-anchoring reads from the old anchor whole, from
    /// the new one whole, or falls back: never from a mix of the two.
    #[test]
    fn a_reader_never_reads_half_an_anchor() {
        let at = 1_000 + MIN_BASELINE_TICKS;
        let (new_ticks, new_nanos) = (at + 1_000, at + 5_000);
        let read_at = at + 2_000;
        loom::model(move || {
            let anchors = Arc::new(calibrated(at));
            let writer = {
                let anchors = Arc::clone(&anchors);
                thread::spawn(move || anchors.offer(new_ticks, new_nanos, new_ticks))
            };
            let reading = anchors.read(read_at);
            writer.join().expect("the writer does not panic");

            let old = calibrated(at).read(read_at);
            let new = {
                let anchors = calibrated(at);
                anchors.offer(new_ticks, new_nanos, new_ticks);
                anchors.read(read_at)
            };
            assert!(old.is_some() && new.is_some() && old != new);
            assert!(reading.is_none() || reading == old || reading == new, "{reading:?} mixes {old:?} and {new:?}");
            assert_eq!(anchors.read(read_at), new, "once written, the new anchor is read");
        });
    }

    /// Of two threads offering anchors at once, one writes and the other
    /// backs off: the anchor read afterwards is one of the two, whole.
    #[test]
    fn concurrent_offers_write_one_whole_anchor() {
        let at = 1_000 + MIN_BASELINE_TICKS;
        loom::model(move || {
            let anchors = Arc::new(calibrated(at));
            let other = {
                let anchors = Arc::clone(&anchors);
                thread::spawn(move || anchors.offer(at + 100, at + 900, at + 100))
            };
            anchors.offer(at + 200, at + 300, at + 200);
            other.join().expect("the other writer does not panic");
            let reading = anchors.read(at + 1_000);
            let by = |ticks: u64, nanos: u64| {
                let anchors = calibrated(at);
                anchors.offer(ticks, nanos, ticks);
                anchors.read(at + 1_000)
            };
            assert!(
                reading == by(at + 100, at + 900) || reading == by(at + 200, at + 300),
                "{reading:?} is neither offer's anchor"
            );
        });
    }
}
