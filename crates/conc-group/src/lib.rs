//! errgroup for tokio: spawn tasks under one [`Token`](conc_core::Token),
//! the first error cancels the rest, with limits, ordered results,
//! captured panics and first-response-wins.
//!
//! The crate to reach for instead of Go's `errgroup`, sourcegraph/conc's
//! pools and hand-written `tokio::task::JoinSet` plumbing:
//!
//! - [`Group`]: Go's `errgroup.Group`. Tasks get the group's token; the
//!   first failure cancels it and is what [`wait`](Group::wait) returns
//!   ([`wait_all`](Group::wait_all) returns them all). A
//!   [`limit`](Group::limit) bounds how many run at once
//!   ([`try_spawn`](Group::try_spawn) is Go's `TryGo`).
//! - [`ResultGroup`]: tasks return values, handed back in spawn order.
//! - Panics are caught, cancel the group like an error and come back as
//!   [`GroupError::Panicked`] with their payload ([`Panic`]); re-raise one
//!   with [`GroupError::resume_panic`].
//! - Structured: dropping a group cancels its token and aborts its tasks;
//!   nothing outlives it unless you [`detach`](Group::detach) it. A group
//!   made under a token with a deadline ([`Group::with_token`]) stops
//!   starting tasks and ends those left when the deadline passes.
//! - Bounded helpers: [`map`] (results in input order), [`try_map`] (stops
//!   at the first error), [`for_each`].
//! - First response wins: [`first_ok`], and [`hedge`] for a second attempt
//!   when the first is slow.
//!
//! # Example: fetch with a fan-out limit, fail fast
//!
//! ```
//! use std::time::Duration;
//! use conc_core::Token;
//! use conc_group::{GroupError, ResultGroup};
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("{0}: not found")]
//! struct NotFound(&'static str);
//!
//! async fn fetch(token: Token, path: &'static str) -> Result<usize, NotFound> {
//!     if path.ends_with(".gone") {
//!         return Err(NotFound(path));
//!     }
//!     // Real work would stop early once a sibling has failed.
//!     token.run_until_cancelled(tokio::task::yield_now()).await.ok();
//!     Ok(path.len())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let request = Token::new().with_timeout(Duration::from_secs(5));
//! let mut group = ResultGroup::with_token(&request);
//! group.limit(4)?; // at most 4 fetches at once
//! for path in ["/a", "/bb", "/ccc"] {
//!     group.spawn(move |token| fetch(token, path)).await?;
//! }
//! assert_eq!(group.wait().await?, [2, 3, 4]); // in spawn order
//!
//! let mut group = ResultGroup::with_token(&request);
//! for path in ["/a", "/old.gone", "/c"] {
//!     group.spawn(move |token| fetch(token, path)).await.ok();
//! }
//! match group.wait().await {
//!     Err(GroupError::Failed(NotFound(path))) => assert_eq!(path, "/old.gone"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Differences from Go's errgroup
//!
//! - Once the group's token is cancelled, `spawn` hands tasks back
//!   ([`SpawnError::Cancelled`]) instead of starting them.
//! - Panics are caught and returned (Go re-panics, or crashes the process).
//! - `spawn` takes `&mut self`, as `JoinSet` does: tasks cannot add
//!   siblings to their own group.
//! - The token's cause on failure is a [`TaskFailure`] carrying the error's
//!   message; the error value itself comes back from `wait`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod group;
#[cfg(all(test, conc_loom))]
mod loom_tests;
mod map;
mod panic;
mod race;
mod result_group;
mod slots;
mod sync;
mod tasks;
#[cfg(all(test, not(conc_loom)))]
mod tests;

pub use error::{GroupError, LimitError, MapError, SpawnError, TaskFailure};
pub use group::Group;
pub use map::{for_each, map, try_map};
pub use panic::Panic;
pub use race::{first_ok, hedge, hedge_with_clock};
pub use result_group::ResultGroup;
