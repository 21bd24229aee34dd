//! A circuit breaker with sony/gobreaker's semantics and resilience4j's
//! count and time windows, lock-free in the closed state: the crate to
//! reach for instead of failsafe, gobreaker or resilience4j's
//! `CircuitBreaker`.
//!
//! A [`Breaker`] stands in front of a downstream service. While
//! [`Closed`](State::Closed) it lets calls through and records their
//! outcomes; when its trip rule holds it [opens](State::Open) and rejects
//! calls at once, with the instant a trial will be allowed (a
//! `Retry-After`); after the open duration it goes
//! [half-open](State::HalfOpen) and lets a bounded number of trial calls
//! through: if they succeed it closes, a failure opens it again.
//!
//! - Trip rules: consecutive failures (gobreaker's default), a failure
//!   rate or a slow-call rate over a sliding window once it holds a
//!   minimum number of calls (resilience4j), or a predicate over the
//!   window's [`Counts`] (gobreaker's `ReadyToTrip`).
//! - Windows: the last N calls, the last N seconds in buckets, or
//!   gobreaker's counts cleared every `interval`. Each state change begins
//!   a new generation: outcomes of calls admitted before it are ignored.
//! - Open duration fixed or growing with each failed trial, up to a cap.
//! - Calls: async [`call`](Breaker::call) (with an optional timeout),
//!   [`call_blocking`](Breaker::call_blocking), or
//!   [`try_acquire`](Breaker::try_acquire) and a [`Permit`]; a classifier
//!   ([`call_with`](Breaker::call_with)) decides what counts as a failure.
//! - [`metrics`](Breaker::metrics), [`retry_after`](Breaker::retry_after),
//!   [`ready`](Breaker::ready), [`on_state_change`](Breaker::on_state_change),
//!   [`force_open`](Breaker::force_open) and the other operator commands.
//! - [`Breakers`]: one breaker per key, with bounded memory.
//! - `tower` (the module, with the feature `tower`): a `BreakerLayer` that
//!   puts a breaker, with a response classifier, around any tower service.
//!
//! Time is read through a [`conc_core::Clock`], so every rule can be
//! tested with a [`ManualClock`](conc_core::ManualClock); sleeping
//! (`ready`, the call timeout) uses conc-core's own timer and needs no
//! particular async runtime.
//!
//! # Example: a failing dependency
//!
//! ```
//! use std::time::Duration;
//! use conc_breaker::{Breaker, BreakerError, State};
//! use conc_core::{Clock, ManualClock};
//!
//! # futures_lite::future::block_on(async {
//! let clock = ManualClock::new(); // the system clock unless told otherwise
//! let breaker = Breaker::builder()
//!     .failure_rate(50.0, 4) // trip at 50% failures, judged over...
//!     .count_window(10) // ...the last 10 calls, once there are 4
//!     .open_backoff(Duration::from_secs(5), Duration::from_secs(60))
//!     .clock(clock.clone())
//!     .build()?;
//!
//! async fn fetch(ok: bool) -> Result<&'static str, std::io::Error> {
//!     if ok { Ok("page") } else { Err(std::io::ErrorKind::ConnectionRefused.into()) }
//! }
//!
//! assert_eq!(breaker.call(fetch(true)).await?, "page");
//! assert_eq!(breaker.call(fetch(true)).await?, "page");
//! assert!(matches!(breaker.call(fetch(false)).await, Err(BreakerError::Inner(_))));
//! assert!(matches!(breaker.call(fetch(false)).await, Err(BreakerError::Inner(_))));
//! assert_eq!(breaker.state(), State::Open); // 2 of 4 calls failed
//!
//! // Rejected without running, with when to come back.
//! let Err(BreakerError::Open { retry_at }) = breaker.call(fetch(true)).await else { panic!() };
//! assert_eq!(retry_at, Some(clock.now() + Duration::from_secs(5)));
//! assert_eq!(breaker.retry_after(), Some(Duration::from_secs(5)));
//!
//! clock.advance(Duration::from_secs(5));
//! breaker.ready().await; // a trial is allowed now
//! assert_eq!(breaker.call(fetch(true)).await?, "page"); // the trial succeeds
//! assert_eq!(breaker.state(), State::Closed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Differences from gobreaker and resilience4j
//!
//! - Half-open follows gobreaker: `half_open_trials` calls are admitted,
//!   the first failure reopens, all succeeding closes (resilience4j judges
//!   the trials' failure rate instead).
//! - A permit dropped without an outcome (a cancelled call) records
//!   nothing and gives a half-open place back; see [`Permit`].
//! - Time-driven transitions happen on the next use of the breaker, as in
//!   gobreaker; no background timer runs.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod breaker;
mod call;
mod clock;
mod config;
mod control;
mod error;
mod metrics;
mod permit;
mod registry;
mod state;
mod sync;
mod tagged;
#[cfg(feature = "tower")]
pub mod tower;
mod window;

#[cfg(all(test, conc_loom))]
mod loom_tests;
#[cfg(all(test, not(conc_loom)))]
mod tests;

pub use breaker::Breaker;
pub use config::BreakerBuilder;
pub use error::{BreakerError, BuildError, Rejected};
pub use metrics::{Counts, Metrics};
pub use permit::{OwnedPermit, Permit};
pub use registry::Breakers;
pub use state::{State, StateChange};
