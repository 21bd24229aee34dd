//! Asking a breaker how it stands, waiting for it, and commanding it.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::state::generation_of;
use crate::{Breaker, Metrics, State, StateChange};

/// Polls both futures until either completes; the first one's output, or
/// `None` if the second completed first.
pub(crate) async fn race<A: Future, B: Future>(first: A, second: B) -> Option<A::Output> {
    let (mut first, mut second) = (pin!(first), pin!(second));
    poll_fn(move |cx| {
        if let Poll::Ready(output) = first.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if second.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

impl Breaker {
    /// The current state, after any transition that time has made due
    /// (open to half-open, the `interval`, the half-open wait), as
    /// gobreaker's `State()` does.
    pub fn state(&self) -> State {
        State::of(self.refresh())
    }

    /// A snapshot of the state, the window's counts and rates, timeouts and
    /// rejections. Reading it sums the stripes and the window: cheap, but
    /// not free; it takes no lock.
    pub fn metrics(&self) -> Metrics {
        let word = self.refresh();
        let now = self.now_nanos();
        let generation = generation_of(word);
        let counts = self.counts(generation, now);
        let config = &self.config;
        let failure_minimum = config.failure_rate.map_or(1, |rule| rule.minimum_calls);
        let slow_minimum = config.slow_rate.map_or(1, |rule| rule.minimum_calls);
        Metrics {
            state: State::of(word),
            time_in_state: Duration::from_nanos(now.saturating_sub(self.since())),
            counts,
            failure_rate: (counts.calls >= failure_minimum).then(|| counts.failure_rate()).flatten(),
            slow_call_rate: (counts.calls >= slow_minimum).then(|| counts.slow_call_rate()).flatten(),
            timeouts: self.totals().tally(generation).timeouts,
            rejected: self.totals().rejected(),
        }
    }

    /// How long until the breaker lets a trial call through: `Some` while
    /// it is open (for a `Retry-After` header), `None` when it lets calls
    /// through now, is half-open, or was forced open (no trial is
    /// scheduled; see [`state`](Breaker::state)).
    pub fn retry_after(&self) -> Option<Duration> {
        let word = self.refresh();
        (State::of(word) == State::Open)
            .then(|| Duration::from_nanos(self.open_until().saturating_sub(self.now_nanos())))
    }

    /// Waits until the breaker would let a call through: it is closed (or
    /// disabled, or metrics-only), or half-open with a trial place free.
    /// While open it sleeps on the breaker's clock until the open duration
    /// ends; while forced open, or half-open with every place taken, until
    /// the state changes.
    ///
    /// Another caller may take the place first: `ready` is a hint, and a
    /// following [`try_acquire`](Breaker::try_acquire) can still be
    /// rejected.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future only stops the wait.
    pub async fn ready(&self) {
        loop {
            // Listen before looking, so a change in between is not missed.
            let listener = self.changed.listen();
            let word = self.refresh();
            let wake_at = match State::of(word) {
                State::Closed | State::Disabled | State::MetricsOnly => return,
                State::HalfOpen => {
                    if self.trials_taken(word) < self.config.half_open_trials {
                        return;
                    }
                    self.config.half_open_max_wait.map(|_| self.half_open_until())
                }
                State::Open => Some(self.open_until()),
                State::ForcedOpen => None,
            };
            match wake_at {
                Some(at) => {
                    race(listener, self.config.clock.sleep_until(self.instant_at(at))).await;
                }
                None => listener.await,
            }
        }
    }

    /// Calls `listener` after every change of state, in order (gobreaker's
    /// `OnStateChange`).
    ///
    /// Listeners run on the thread that caused the change, after the
    /// breaker's internal lock is released, one change at a time: a
    /// listener may use the breaker, even change its state (that change is
    /// delivered after the current one). Keep listeners short. A listener
    /// that panics propagates the panic to the caller that caused the
    /// change; later changes are still delivered.
    pub fn on_state_change(&self, listener: impl Fn(&StateChange) + Send + Sync + 'static) {
        self.add_listener(Arc::new(listener));
    }

    /// Rejects every call until [`force_closed`](Breaker::force_closed) or
    /// [`reset`](Breaker::reset) (resilience4j's `FORCED_OPEN`).
    pub fn force_open(&self) {
        self.force(State::ForcedOpen, false);
    }

    /// Closes the breaker now with empty counts, whatever its state (also
    /// ending the forced, disabled and metrics-only modes). The backoff
    /// level is kept: if the breaker trips again before a half-open trial
    /// closes it, it stays open for the next, longer duration.
    pub fn force_closed(&self) {
        self.force(State::Closed, false);
    }

    /// Lets every call through and records nothing, until
    /// [`force_closed`](Breaker::force_closed) or
    /// [`reset`](Breaker::reset) (resilience4j's `DISABLED`).
    pub fn disable(&self) {
        self.force(State::Disabled, false);
    }

    /// Lets every call through and records outcomes (so
    /// [`metrics`](Breaker::metrics) stay meaningful) but never trips,
    /// until [`force_closed`](Breaker::force_closed) or
    /// [`reset`](Breaker::reset) (resilience4j's `METRICS_ONLY`).
    pub fn metrics_only(&self) {
        self.force(State::MetricsOnly, false);
    }

    /// Returns the breaker to its initial state: closed, empty counts, the
    /// backoff at its first step. Calls admitted before are ignored when
    /// they report.
    pub fn reset(&self) {
        self.force(State::Closed, true);
    }
}
