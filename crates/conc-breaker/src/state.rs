//! The breaker's states and the one word that holds state and generation.
//!
//! **Invariant:** the state word is `generation << 3 | state`. Every
//! transition (Interval clearing in `Closed` included) stores a word with
//! the next generation, so a permit, which remembers the word it was issued
//! under, can tell whether its outcome still belongs to the current state.

use std::fmt;
use std::time::Instant;

/// Where a breaker stands.
///
/// The first three are the classic circuit-breaker states; the other three
/// are modes an operator puts a breaker in by hand (resilience4j's
/// `FORCED_OPEN`, `DISABLED` and `METRICS_ONLY`), which it stays in until
/// told otherwise ([`Breaker::reset`](crate::Breaker::reset) or
/// [`Breaker::force_closed`](crate::Breaker::force_closed)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls pass and their outcomes are recorded; the trip rule is checked.
    Closed,
    /// Calls are rejected until the open duration has passed.
    Open,
    /// A bounded number of trial calls pass; their outcomes decide whether
    /// the breaker closes or opens again.
    HalfOpen,
    /// Every call is rejected until the breaker is closed by hand.
    ForcedOpen,
    /// Every call passes and nothing is recorded.
    Disabled,
    /// Every call passes and is recorded, but the breaker never trips.
    MetricsOnly,
}

impl State {
    pub(crate) const fn code(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
            State::MetricsOnly => 5,
        }
    }

    /// The state of a state word.
    pub(crate) const fn of(word: u64) -> State {
        match word & 0b111 {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::Disabled,
            _ => State::MetricsOnly,
        }
    }

    /// Whether calls are rejected in this state (all of them).
    pub fn is_open(self) -> bool {
        matches!(self, State::Open | State::ForcedOpen)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
            State::ForcedOpen => "forced-open",
            State::Disabled => "disabled",
            State::MetricsOnly => "metrics-only",
        })
    }
}

/// The generation of a state word.
#[inline]
pub(crate) const fn generation_of(word: u64) -> u64 {
    word >> 3
}

/// The state word of `state` in `generation`.
#[inline]
pub(crate) const fn word(generation: u64, state: State) -> u64 {
    (generation << 3) | state.code()
}

/// A transition, as passed to state-change listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// When it happened, by the breaker's clock.
    pub at: Instant,
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for state in
            [State::Closed, State::Open, State::HalfOpen, State::ForcedOpen, State::Disabled, State::MetricsOnly]
        {
            let packed = word(12345, state);
            assert_eq!(State::of(packed), state);
            assert_eq!(generation_of(packed), 12345);
        }
        assert_eq!(State::HalfOpen.to_string(), "half-open");
    }
}
