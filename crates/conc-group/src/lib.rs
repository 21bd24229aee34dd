//! errgroup for tokio: spawn tasks under one Token, the first error cancels the rest, with limits, ordered results, captured panics and first-response-wins.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
