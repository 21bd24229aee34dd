//! A bounded worker pool for async jobs and CPU-bound closures, with backpressure, shutdown with a deadline and exactly one outcome per job.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
