//! [`tower`](https://docs.rs/tower) middleware (feature `tower`): rate
//! limits and a concurrency limit as [`Layer`](tower_layer::Layer)s and
//! [`Service`](tower_service::Service)s.
//!
//! | layer | service | sheds with |
//! | --- | --- | --- |
//! | [`RateLimitLayer`] | [`RateLimit`]: one [`Limiter`](crate::Limiter) for every request | [`LimitError::RateLimited`] |
//! | [`KeyedRateLimitLayer`] | [`KeyedRateLimit`]: a limiter per key taken from the request | [`LimitError::RateLimited`], [`LimitError::TooManyKeys`] |
//! | [`ConcurrencyLimitLayer`] | [`ConcurrencyLimit`]: at most N in flight on a [`Semaphore`](crate::Semaphore), queued or shed | [`LimitError::Saturated`], [`LimitError::Closed`] |
//!
//! Where they differ from tower's own `RateLimit` and `ConcurrencyLimit`:
//!
//! - **Clones share the limit.** Each layer holds its limiter or semaphore
//!   in an `Arc`, and every service it makes, and every clone of those,
//!   takes from that one (tower's `RateLimit` gives each clone its own
//!   budget, tower#794). A service cloned per request, as axum does, is
//!   limited as a whole.
//! - **The limit is applied in `call`, not in `poll_ready`.**
//!   `poll_ready` only forwards to the inner service; a request is checked
//!   when it arrives, and a rejected one fails at once, without reaching
//!   the inner service, rather than waiting in `poll_ready` (a rate limit
//!   never queues; the concurrency limit queues only in
//!   [`ConcurrencyLimitLayer::new`]'s mode, and can shed instead,
//!   tower#793).
//! - **Rejections are typed.** [`LimitError`] says why, with a
//!   `retry_after` for a `Retry-After` header, and wraps the inner
//!   service's error as [`LimitError::Inner`].
//!
//! # Example: per-client rate limits
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::time::Duration;
//! use conc_core::ManualClock;
//! use conc_limit::tower::{KeyedRateLimitLayer, LimitError};
//! use conc_limit::{Gcra, Keyed, Rate};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! // A request: which client sent it, and what it asks.
//! struct Request {
//!     client: &'static str,
//!     n: u32,
//! }
//!
//! # futures_lite::future::block_on(async {
//! let clock = ManualClock::new(); // the system clock in production: Gcra::new
//! // Each client may make 1 request a second, in bursts of up to 2.
//! let per_client = Arc::new(Keyed::new(Gcra::with_clock(Rate::per_second(1.0)?, 2, clock.clone())?));
//! let service = ServiceBuilder::new()
//!     .layer(KeyedRateLimitLayer::new(per_client, |request: &Request| request.client))
//!     .service_fn(|request: Request| async move { Ok::<_, Infallible>(request.n * 2) });
//!
//! assert_eq!(service.clone().oneshot(Request { client: "alice", n: 1 }).await?, 2);
//! assert_eq!(service.clone().oneshot(Request { client: "alice", n: 2 }).await?, 4);
//! // Alice spent her burst: her third request is shed, with when to retry.
//! let error = service.clone().oneshot(Request { client: "alice", n: 3 }).await.unwrap_err();
//! assert_eq!(error, LimitError::RateLimited { retry_after: Duration::from_secs(1) });
//! // Bob has a budget of his own.
//! assert_eq!(service.clone().oneshot(Request { client: "bob", n: 4 }).await?, 8);
//!
//! clock.advance(Duration::from_secs(1));
//! assert_eq!(service.oneshot(Request { client: "alice", n: 5 }).await?, 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod concurrency;
mod error;
mod future;
mod keyed;
mod rate_limit;

pub use self::concurrency::{ConcurrencyLimit, ConcurrencyLimitFuture, ConcurrencyLimitLayer};
pub use self::error::LimitError;
pub use self::future::RateLimitFuture;
pub use self::keyed::{KeyedRateLimit, KeyedRateLimitLayer};
pub use self::rate_limit::{RateLimit, RateLimitLayer};
