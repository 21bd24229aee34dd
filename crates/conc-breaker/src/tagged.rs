//! Counter words stamped with the generation they count for.
//!
//! **Invariant:** every counter of the breaker is a word whose top 16 bits
//! are the low bits of the generation it belongs to (its tag) and whose low
//! 48 bits are the count. A recorder only adds to a word tagged with its
//! own generation; a word tagged with an older generation reads as zero and
//! is taken over; a word tagged with a newer one means the recorder is late,
//! and its outcome is dropped. So an outcome from an earlier state or window
//! can never land in the current one, whatever the interleaving: the check
//! and the add are one compare-and-swap.
//!
//! A transition re-tags every word to the new generation before it
//! publishes that generation (see `Breaker::sweep`), so no live word lags
//! more than one generation and 16 bits of tag never wrap into a false match.

use crate::sync::{AtomicU64, Ordering};

/// Bits of payload under the tag.
pub(crate) const PAYLOAD_BITS: u32 = 48;
/// The payload part of a word.
pub(crate) const PAYLOAD: u64 = (1 << PAYLOAD_BITS) - 1;
/// The tag part of a generation.
const TAG: u64 = 0xFFFF;

/// The 16-bit tag of generation `generation`.
#[inline]
pub(crate) fn tag_of(generation: u64) -> u64 {
    generation & TAG
}

/// Whether tag `a` is later than tag `b`, modulo 2^16.
#[inline]
pub(crate) fn is_newer(a: u64, b: u64) -> bool {
    let distance = a.wrapping_sub(b) & TAG;
    distance != 0 && distance < 0x8000
}

/// A zero count tagged for `generation`.
#[inline]
pub(crate) fn fresh(generation: u64) -> u64 {
    tag_of(generation) << PAYLOAD_BITS
}

/// What [`update`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Update {
    /// The payload is now this value.
    Written(u64),
    /// The update function declined; the payload is this value.
    Declined(u64),
    /// The word belongs to a later generation: nothing was written.
    Stale,
}

/// Replaces the payload `p` of `word` (read as 0 if it is tagged with an
/// older generation) with `f(p)` for `generation`, unless `f` declines
/// (`None`) or the word already belongs to a later generation.
#[inline]
pub(crate) fn update(word: &AtomicU64, generation: u64, mut f: impl FnMut(u64) -> Option<u64>) -> Update {
    let tag = tag_of(generation);
    let mut current = word.load(Ordering::Acquire);
    loop {
        let current_tag = current >> PAYLOAD_BITS;
        let payload = if current_tag == tag {
            current & PAYLOAD
        } else if is_newer(current_tag, tag) {
            return Update::Stale;
        } else {
            0
        };
        let Some(next) = f(payload) else {
            return Update::Declined(payload);
        };
        let next_word = (tag << PAYLOAD_BITS) | (next & PAYLOAD);
        if next_word == current {
            return Update::Written(next & PAYLOAD);
        }
        match word.compare_exchange_weak(current, next_word, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Update::Written(next & PAYLOAD),
            Err(actual) => current = actual,
        }
    }
}

/// Adds one to the count of `word` for `generation` (saturating).
#[inline]
pub(crate) fn increment(word: &AtomicU64, generation: u64) {
    update(word, generation, |count| Some(count.saturating_add(1).min(PAYLOAD)));
}

/// Adds `delta` to a signed 48-bit count (two's complement, wrapping).
#[inline]
pub(crate) fn add_signed(word: &AtomicU64, generation: u64, delta: i64) {
    if delta != 0 {
        // The cast keeps the two's complement bits; the mask wraps at 48 bits.
        update(word, generation, |count| Some(count.wrapping_add(delta as u64) & PAYLOAD));
    }
}

/// The payload of `word` for `generation`: zero if the word belongs to
/// another generation.
#[inline]
pub(crate) fn read(word: &AtomicU64, generation: u64) -> u64 {
    let current = word.load(Ordering::Acquire);
    if current >> PAYLOAD_BITS == tag_of(generation) { current & PAYLOAD } else { 0 }
}

/// A signed 48-bit count of `word` for `generation`, clamped at zero: a
/// count that another recorder has taken from but not yet added to reads
/// as zero for that moment.
#[inline]
pub(crate) fn read_signed(word: &AtomicU64, generation: u64) -> u64 {
    let payload = read(word, generation);
    if payload >> (PAYLOAD_BITS - 1) == 1 { 0 } else { payload }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn newer_is_modular() {
        assert!(is_newer(1, 0));
        assert!(!is_newer(0, 1));
        assert!(!is_newer(5, 5));
        assert!(is_newer(0, 0xFFFF), "the tag after 0xFFFF is 0");
    }

    #[test]
    fn words_of_another_generation_read_as_zero_and_late_writers_are_dropped() {
        let word = AtomicU64::new(fresh(7));
        increment(&word, 7);
        increment(&word, 7);
        assert_eq!(read(&word, 7), 2);
        assert_eq!(read(&word, 8), 0);
        increment(&word, 8);
        assert_eq!(read(&word, 8), 1, "an older tag is taken over from zero");
        assert_eq!(update(&word, 7, |c| Some(c + 1)), Update::Stale);
        assert_eq!(read(&word, 8), 1);
    }

    #[test]
    fn signed_counts_clamp_at_zero() {
        let word = AtomicU64::new(fresh(1));
        add_signed(&word, 1, -1);
        assert_eq!(read_signed(&word, 1), 0);
        add_signed(&word, 1, 3);
        assert_eq!(read_signed(&word, 1), 2);
    }
}
