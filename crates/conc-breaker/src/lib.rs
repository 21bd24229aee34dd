//! A circuit breaker with sony/gobreaker's semantics and resilience4j's count and time windows, lock-free in the closed state.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
