//! The core of conc: Go's `context` as a cancellation tree ([`Token`]), an
//! injectable [`Clock`], channel traits whose sends hand the value back
//! when they cannot complete, and a live-task counter for leak checks.
//!
//! Every other conc crate stands on these. A [`Token`] is what Go code
//! passes as `ctx`: cancel a parent and every descendant ends; give a
//! subtree a deadline with [`Token::with_timeout`]; ask why it ended with
//! [`Token::cause`]. It works from async tasks on any runtime and from
//! plain threads, and [`is_cancelled`](Token::is_cancelled) is a single
//! atomic load.
//!
//! # Example: a deadline-bound job tree
//!
//! ```
//! use std::time::Duration;
//! use conc_core::{Cause, Clock, ManualClock, Token};
//!
//! # futures_lite::future::block_on(async {
//! // A manual clock makes the deadline deterministic; production code uses
//! // `Token::new()` and the system clock.
//! let clock = ManualClock::new();
//! let root = Token::with_clock(clock.clone());
//! let request = root.with_timeout(Duration::from_millis(100));
//! let fetch = request.child();
//! let render = request.child();
//!
//! render.cancel(); // ending one branch leaves its siblings and parent alone
//! assert!(!fetch.is_cancelled() && !request.is_cancelled());
//!
//! clock.advance(Duration::from_millis(100)); // the request's deadline passes
//! fetch.cancelled().await;
//! assert_eq!(fetch.cause(), Some(Cause::DeadlineExceeded));
//! assert_eq!(render.cause(), Some(Cause::Cancelled)); // its first cause stays
//! assert!(!root.is_cancelled()); // a child never cancels its parent
//!
//! // Work that races a token hands back the reason it stopped.
//! let result = request.run_until_cancelled(clock.sleep(Duration::from_secs(1))).await;
//! assert_eq!(result, Err(Cause::DeadlineExceeded));
//! # });
//! ```
//!
//! # Features
//!
//! - `tokio` (default): [`TaskCounter::spawn`] and the channel traits for
//!   `tokio::sync::mpsc`.
//! - `tokio-util`: conversions between [`Token`] and
//!   `tokio_util::sync::CancellationToken`.
#![warn(missing_docs)]
// One `unsafe` block in the crate: reading the CPU's time-stamp counter
// (`clock/tsc.rs`), allowed there alone.
#![deny(unsafe_code)]

mod cause;
pub mod channel;
mod clock;
mod sync;
pub mod task;
#[cfg(all(test, not(conc_loom)))]
mod test_support;
mod timer;
mod token;

pub use cause::Cause;
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use task::{TaskCounter, live_tasks};
pub use token::{Cancelled, CancelledOwned, DropGuard, OnCancel, Token};
