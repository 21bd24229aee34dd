//! Rate limiters and a fair weighted semaphore, the crate to reach for
//! instead of Go's `x/time/rate` and `x/sync/semaphore`, governor,
//! leaky-bucket and `tokio::sync::Semaphore`.
//!
//! - [`Gcra`]: the generic cell rate algorithm in one atomic word,
//!   lock-free: the hot path for "N per second with bursts of B".
//! - [`TokenBucket`]: Go's `rate.Limiter`, with reservations.
//! - [`SlidingWindow`]: "at most N in any window of length W", exact (a
//!   log) or approximate (two counters).
//! - [`Keyed`]: one limiter per key (client, IP, tenant), sharded, with
//!   bounded memory.
//! - [`Semaphore`]: Go's `semaphore.Weighted` with tokio's ergonomics:
//!   weighted, FIFO fair, cancellable, closable.
//! - `tower` (the module, with the feature `tower`): `Layer`s for a shared
//!   rate limit, a per-key rate limit and a concurrency limit that can shed
//!   load instead of queueing.
//!
//! Every limiter reads time through a [`conc_core::Clock`] (the system
//! clock by default) and has explicit-time forms (`..._at(now, ...)`, the
//! instant first), so each rule can be tested with a `ManualClock` and
//! simulated deterministically. Waits end when a [`conc_core::Token`] is
//! cancelled, fail at once when the token's deadline comes too soon, and a
//! `max_waiters` cap turns unbounded queueing into a fast
//! [`WaitError::TooManyWaiters`].
//!
//! # Example: per-client limits and a concurrency cap
//!
//! ```
//! use std::time::Duration;
//! use conc_core::{Clock, ManualClock};
//! use conc_limit::{Gcra, Keyed, Rate, Semaphore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = ManualClock::new(); // the system clock in production: Gcra::new
//! // Each client may make 2 requests a second, in bursts of up to 3.
//! let per_client: Keyed<String, _> = Keyed::new(Gcra::with_clock(Rate::per_second(2.0)?, 3, clock.clone())?);
//! for _ in 0..3 {
//!     per_client.check("alice")?;
//! }
//! let denied = per_client.check("alice").unwrap_err();
//! assert_eq!(denied.retry_at(), Some(clock.now() + Duration::from_millis(500))); // a Retry-After
//! per_client.check("bob")?; // other clients are not affected
//!
//! // At most 64 requests in flight; the 65th is shed rather than queued.
//! let in_flight = Semaphore::new(64);
//! let _permit = in_flight.try_acquire(1)?;
//! assert_eq!(in_flight.available(), 63);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod gcra;
mod keyed;
mod limiter;
mod rate;
pub mod semaphore;
mod sliding_window;
mod sync;
mod time;
mod token_bucket;
#[cfg(feature = "tower")]
pub mod tower;
mod waiters;

pub use error::{ConfigError, Denied, WaitError};
pub use gcra::Gcra;
pub use keyed::{Keyed, KeyedBuilder, KeyedError, KeyedWaitError};
pub use limiter::Limiter;
pub use rate::{Rate, RateError};
pub use semaphore::Semaphore;
pub use sliding_window::SlidingWindow;
pub use token_bucket::{Reservation, TokenBucket};
